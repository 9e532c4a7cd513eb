//! The crate's errors. Each names the segment file and entry it is about,
//! says what is wrong, and what to do about it.

use std::path::PathBuf;

use ferry_schemas::Digest;

#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum ArchiveError {
    /// Reading or writing a file failed.
    #[error("{action} {path}: {source}")]
    Io {
        action: &'static str,
        path: PathBuf,
        source: std::io::Error,
    },

    /// The blob store refused or failed an operation (for example a
    /// tampered entry whose content does not match its digest).
    #[error("{context}: {source}")]
    Store {
        context: String,
        source: ferry_store::Error,
    },

    /// The caller handed in a delivery that cannot be written as given.
    #[error("invalid delivery {delivery}: {problem}")]
    InvalidInput { delivery: u32, problem: String },

    /// Strict mode: one blob does not fit in a segment of the allowed size.
    #[error(
        "{what} ({size} bytes) does not fit in a segment of {max_segment_bytes} bytes: it needs a segment of {needed} bytes; raise archiveSize to at least {needed} bytes or drop --strict-archive to give it a segment of its own"
    )]
    Oversize {
        /// The blob or manifest (`blob sha256:...`), or the delivery's metadata.
        what: String,
        size: u64,
        needed: u64,
        max_segment_bytes: u64,
    },

    /// `write_delivery` never overwrites a segment.
    #[error(
        "{path} already exists; ferry never overwrites a segment: move it away (or remove it if it belongs to no recorded delivery) and run again"
    )]
    SegmentExists { path: PathBuf },

    /// One segment file is damaged or is not what its metadata says.
    #[error("{file}{}: {problem}", entry.as_ref().map(|entry| format!(": entry {entry}")).unwrap_or_default())]
    Segment {
        /// The segment's file name, e.g. `mirror_000003.tar`.
        file: String,
        /// The entry inside the segment, when the problem is about one.
        entry: Option<String>,
        /// What is wrong, and what to do.
        problem: String,
    },

    /// The segments of a delivery, or the chain of deliveries, do not add up.
    #[error("delivery {delivery}: {problem}")]
    Delivery { delivery: u32, problem: String },

    /// The folder holds no `mirror_NNNNNN.tar` at all.
    #[error("no segments (files named mirror_NNNNNN.tar, 6 digits) in {folder}")]
    NoSegments { folder: PathBuf },

    /// A blob to write is missing from the blob store or differs from what
    /// the delivery says.
    #[error("{digest}: {problem}")]
    Blob { digest: Digest, problem: String },
}

pub type Result<T> = std::result::Result<T, ArchiveError>;

pub(crate) fn io(
    action: &'static str,
    path: impl Into<PathBuf>,
) -> impl FnOnce(std::io::Error) -> ArchiveError {
    let path = path.into();
    move |source| ArchiveError::Io {
        action,
        path,
        source,
    }
}

/// A problem with one segment (and optionally one entry of it).
pub(crate) fn segment_error(
    file: &str,
    entry: Option<&str>,
    problem: impl Into<String>,
) -> ArchiveError {
    ArchiveError::Segment {
        file: file.to_owned(),
        entry: entry.map(str::to_owned),
        problem: problem.into(),
    }
}
