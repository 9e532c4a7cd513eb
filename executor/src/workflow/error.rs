//! The workflow's error type. Every error says whose fault it is, as
//! buck2 tags its errors: the user's input, the environment (network,
//! disk, a registry), or ferry itself. The command line turns them into
//! messages and exit statuses; nothing below it prints.

use std::fmt;

use ferry_planner::Category;

/// Whose fault an error is.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum ErrorKind {
    /// The command line, the configuration, a plan file or a delivery the
    /// user handed in.
    Input,
    /// Something outside ferry: a registry, the network, the disk.
    Environment,
    /// A broken promise inside ferry.
    Internal,
}

/// An error that ends a workflow before or between its stages.
#[derive(Clone, Debug, PartialEq, Eq, thiserror::Error)]
#[error("{message}")]
pub struct WorkflowError {
    pub kind: ErrorKind,
    pub message: String,
    /// The content category whose collection failed (a release error ends
    /// the run with that category's exit bit, notes §7), if any.
    pub category: Option<Category>,
}

impl WorkflowError {
    /// The user's input is wrong.
    pub fn input(message: impl fmt::Display) -> Self {
        WorkflowError {
            kind: ErrorKind::Input,
            message: message.to_string(),
            category: None,
        }
    }

    /// Something outside ferry failed.
    pub fn environment(message: impl fmt::Display) -> Self {
        WorkflowError {
            kind: ErrorKind::Environment,
            message: message.to_string(),
            category: None,
        }
    }

    /// The error belongs to collecting `category`'s content.
    pub fn in_category(mut self, category: Category) -> Self {
        self.category = Some(category);
        self
    }

    /// ferry broke one of its own promises.
    pub fn internal(message: impl fmt::Display) -> Self {
        WorkflowError {
            kind: ErrorKind::Internal,
            message: message.to_string(),
            category: None,
        }
    }
}

/// `Result` of the workflow stages.
pub type Result<T, E = WorkflowError> = std::result::Result<T, E>;
