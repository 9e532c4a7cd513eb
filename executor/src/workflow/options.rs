//! The options of a run, resolved once from the command line into types
//! (as ripgrep's HiArgs): the workflow stages read these, never flags.

use std::path::PathBuf;
use std::time::Duration;

/// How ferry reaches registries.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct TransferOptions {
    /// Verify TLS for sources (false also allows plain HTTP).
    pub source_tls_verify: bool,
    /// Verify TLS for the destination (false also allows plain HTTP).
    pub destination_tls_verify: bool,
    /// `--authfile` (else the containers and docker defaults).
    pub authfile: Option<PathBuf>,
    /// `--registries-conf` (else the containers defaults).
    pub registries_conf: Option<PathBuf>,
    /// Images copied at once.
    pub parallel_images: u32,
    /// Layers copied at once per image.
    pub parallel_layers: u32,
    /// Retries of a failed request.
    pub retry_times: u32,
    /// Fixed delay between retries (`None`: exponential backoff).
    pub retry_delay: Option<Duration>,
    /// `--header-timeout`: how long to wait for an answer's headers.
    pub header_timeout: Duration,
    /// `--stall-timeout`: how long a body may send nothing.
    pub stall_timeout: Duration,
}

impl TransferOptions {
    /// How collectors that read content first (operator catalogs) reach
    /// the sources.
    pub fn catalog_access(&self) -> crate::catalog_image::RegistryAccessOptions {
        crate::catalog_image::RegistryAccessOptions {
            registries_conf: self.registries_conf.clone(),
            authfile: self.authfile.clone(),
            source_tls_verify: self.source_tls_verify,
        }
    }

    /// Blob transfers in flight at once: images × layers.
    pub fn blob_transfers(&self) -> usize {
        (self.parallel_images * self.parallel_layers) as usize
    }
}

/// What shapes the plan.
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct PlanOptions {
    /// `--remove-signatures`: no cosign signature tags.
    pub remove_signatures: bool,
    /// `--max-nested-paths` (0: keep destination paths as they are).
    pub max_nested_paths: usize,
    /// `--trust-state`: plan from the workspace state alone.
    pub trust_state: bool,
    /// `--verify`: check every blob at the destination too.
    pub verify: bool,
}

/// What shapes a mirror-to-disk delivery, and where the cache is (every
/// disk workflow reads or fills it).
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct DiskOptions {
    /// The content cache folder.
    pub cache: PathBuf,
    /// `--since` (seconds since the epoch): pack everything new since then,
    /// as if no delivery had been made from that day on.
    pub since: Option<i64>,
    /// `--strict-archive`: fail instead of giving a blob larger than the
    /// segment size a segment of its own.
    pub strict_archive: bool,
    /// `--max-segment-bytes` (else the configuration's `archiveSize`).
    pub max_segment_bytes: Option<u64>,
}
