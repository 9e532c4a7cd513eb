//! Workflows: one pipeline for every mode, in the library.
//!
//! ```text
//! collect → resolve → check the destination → compile → diff → execute → publish
//! ```
//!
//! - [`collect`]: the configuration becomes a typed [`collect::ImageSet`],
//!   one [`collect::Collector`] per content kind, every image with its
//!   [`Category`]; images ferry builds itself are [`built`] images (their
//!   new blobs in the cache, every blob with its typed source).
//! - resolve (`crate::resolve`, `crate::disk`): every image pinned to a
//!   digest and its manifest tree read, from registries or deliveries.
//! - compile and diff: the pure planner (`ferry-planner`).
//! - execute: `crate::run` (to a registry, [`to_registry`]) or the archive
//!   writer (to disk, [`to_disk`]); disk-to-mirror's source is
//!   [`from_deliveries`], and [`registry_source`] chooses between it and
//!   the registries for a run to a registry.
//! - [`publish`]: every output file of a run, for every mode;
//!   [`registry_publish`] builds a run to a registry's from the planned
//!   run, the collected image set and the images that failed, and records
//!   what a later plan or delete needs.
//! - [`delete`]: the delete workflow, whose first step runs the collect
//!   stage on a delete configuration and whose second deletes manifests.
//!
//! [`workspace::Workspace`] owns every path under `working-dir/`, and
//! [`error::WorkflowError`] is what a stage that fails returns: the
//! command line decides what to print and which exit status it means.

pub mod built;
pub mod collect;
pub mod delete;
pub mod error;
pub mod from_deliveries;
pub mod graph_image;
pub mod needs;
pub mod operators;
pub mod options;
pub mod publish;
pub mod registries_conf;
pub mod registry_publish;
pub mod registry_source;
pub mod releases;
pub mod to_disk;
pub mod to_registry;
pub mod workspace;

pub use collect::{CollectContext, CollectedImage, Collector, ImageSet, collect};
pub use error::{ErrorKind, WorkflowError};
pub use ferry_planner::{Category, exit_bits};
pub use options::{DiskOptions, PlanOptions, TransferOptions};
pub use workspace::Workspace;

/// `bytes` for people: KiB below one MiB, else MiB (one decimal).
pub fn mebibytes(bytes: u64) -> String {
    if bytes < 1024 * 1024 {
        format!("{:.1} KiB", bytes as f64 / 1024.0)
    } else {
        format!("{:.1} MiB", bytes as f64 / (1024.0 * 1024.0))
    }
}
