//! Pure content logic: what an image set holds, computed from data already
//! fetched. No file, network, clock or environment access: callers hand in
//! bytes and get typed results back, so every rule here is tested from
//! fixtures without a registry.
//!
//! - [`catalog`]: the file-based operator catalog model, oc-mirror's bundle
//!   filter and what it selects (bundles, related images, listing rows,
//!   the lines that fix a filter error or a missing dependency).
//! - [`release`]: update graphs, oc-mirror's release selection, the
//!   upgrade-path check, payload metadata and release naming.
//!
//! `ferry list bundles` and `ferry list releases` use them today; the
//! operator and release collectors of the pipeline will (issues 10, 11).

pub mod catalog;
pub mod release;
