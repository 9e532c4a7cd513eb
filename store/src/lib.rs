//! ferry's store: the content-addressed blob cache and its SQLite index.
//!
//! - [`blobs`]: `blobs/sha256/<hex>` files, each written to a temporary
//!   file, verified against its digest and size while it streams in, synced,
//!   then renamed into place. A reader never sees a partial or unverified
//!   blob, whatever kills the writer.
//! - [`index`]: one SQLite database (`index.db`, WAL) beside the blobs,
//!   recording blobs, manifests and which reference resolved to which
//!   digest. Shared by every workspace that uses this cache. Each
//!   workspace's own history (what was planned and done) is a separate
//!   database, added with the planner.
//!
//! The layout of a cache directory:
//!
//! ```text
//! <cache>/blobs/sha256/<hex>   verified content, one file per digest
//! <cache>/tmp/                 blobs being written (never read)
//! <cache>/index.db             the index
//! ```
//!
//! [`lock`]: one run per workspace at a time (`working-dir/run.lock`).
//! [`image_sets`]: the workspaces that use a cache (`<cache>/workspaces/`),
//! so a delete knows what other image sets still need.

pub mod blobs;
pub mod cache;
pub mod deliveries;
pub mod error;
pub mod image_sets;
pub mod index;
pub mod lock;
mod migrations;
pub mod state;
mod state_deleted;

pub use blobs::{BlobStore, BlobWriter, VerifyReport, digest_of};
pub use cache::{Cache, PruneReport};
pub use deliveries::DeliveryRecord;
pub use error::{Error, Result};
pub use index::Index;
pub use lock::{Holder, LockError, RunLock};
pub use state::{
    DestinationHistory, FinishedAction, RecordedManifest, RecordedResolution, WorkspaceState,
};
