//! The store's errors: each names the file or digest it is about.

use std::path::PathBuf;

use ferry_schemas::Digest;

#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum Error {
    #[error("{action} {path}: {source}")]
    Io {
        action: &'static str,
        path: PathBuf,
        source: std::io::Error,
    },
    #[error("content does not match its digest: expected {expected}, got {actual}")]
    DigestMismatch { expected: Digest, actual: Digest },
    #[error("content of {digest} has the wrong size: expected {expected} bytes, got {actual}")]
    SizeMismatch {
        digest: Digest,
        expected: u64,
        actual: u64,
    },
    #[error("the cache index {path}: {source}")]
    Database {
        path: PathBuf,
        source: rusqlite::Error,
    },
    /// The workspace state (`working-dir/state.db`), not the cache index.
    #[error(
        "the workspace state {path}: {source}; it records what this workspace has done: if it is damaged, move it away and run again (mirror-to-disk rebuilds the record of its deliveries from the segments in the folder; other runs redo what they cannot prove done)"
    )]
    State {
        path: PathBuf,
        source: rusqlite::Error,
    },
    #[error(
        "the workspace state {path} was written by a newer ferry (schema version {found}, this ferry knows up to {known}); use that ferry"
    )]
    StateNewerSchema {
        path: PathBuf,
        found: u32,
        known: u32,
    },
    #[error(
        "the cache index {path} was written by a newer ferry (schema version {found}, this ferry knows up to {known}); use that ferry or another --cache-dir"
    )]
    NewerSchema {
        path: PathBuf,
        found: u32,
        known: u32,
    },
}

pub type Result<T> = std::result::Result<T, Error>;

impl Error {
    /// The same problem, said of the workspace state rather than of the
    /// cache index (the two databases share their migration code).
    pub(crate) fn of_workspace_state(self) -> Self {
        match self {
            Error::Database { path, source } => Error::State { path, source },
            Error::NewerSchema { path, found, known } => {
                Error::StateNewerSchema { path, found, known }
            }
            other => other,
        }
    }
}

pub(crate) fn io(
    action: &'static str,
    path: impl Into<PathBuf>,
) -> impl FnOnce(std::io::Error) -> Error {
    let path = path.into();
    move |source| Error::Io {
        action,
        path,
        source,
    }
}
