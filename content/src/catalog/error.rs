//! The errors of loading and filtering a catalog. Each names what it is
//! about: the file (and line) for loading; package, channel and bundles for
//! the filter.

use std::fmt;

/// A catalog file that could not be read as a file-based catalog.
#[derive(Clone, Debug, PartialEq, Eq, thiserror::Error)]
pub struct LoadError {
    pub path: String,
    pub line: Option<usize>,
    pub column: Option<usize>,
    pub message: String,
}

impl fmt::Display for LoadError {
    fn fmt(&self, formatter: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(formatter, "catalog file {}", self.path)?;
        if let Some(line) = self.line {
            write!(formatter, ":{line}")?;
            if let Some(column) = self.column {
                write!(formatter, ":{column}")?;
            }
        }
        write!(formatter, ": {}", self.message)
    }
}

impl LoadError {
    pub(crate) fn json(path: &str, error: &serde_json::Error) -> LoadError {
        LoadError {
            path: path.to_owned(),
            line: Some(error.line()),
            column: Some(error.column()),
            message: format!("invalid JSON: {error}"),
        }
    }

    /// An error about the object that starts at byte `start` of `text`.
    pub(crate) fn at(
        path: &str,
        text: &[u8],
        start: usize,
        message: impl Into<String>,
    ) -> LoadError {
        let before = &text[..start.min(text.len())];
        let line = before.iter().filter(|&&byte| byte == b'\n').count() + 1;
        let column = before
            .iter()
            .rev()
            .take_while(|&&byte| byte != b'\n')
            .count()
            + 1;
        LoadError {
            path: path.to_owned(),
            line: Some(line),
            column: Some(column),
            message: message.into(),
        }
    }

    pub(crate) fn yaml(path: &str, document: usize, error: &serde_yaml::Error) -> LoadError {
        let location = error.location();
        LoadError {
            path: path.to_owned(),
            line: location.as_ref().map(|location| location.line()),
            column: location.as_ref().map(|location| location.column()),
            message: format!("invalid YAML in document {document}: {error}"),
        }
    }

    pub(crate) fn yaml_document(path: &str, document: usize, message: String) -> LoadError {
        LoadError {
            path: path.to_owned(),
            line: None,
            column: None,
            message: format!("document {document}: {message}"),
        }
    }
}
