//! Pure content logic: what an image set holds, computed from data already
//! fetched. No file, network, clock or environment access: callers hand in
//! bytes and get typed results back, so every rule here is tested from
//! fixtures without a registry.
//!
//! - `catalog`: the file-based operator catalog model and oc-mirror's bundle
//!   filter *(being built, issue 10)*.
//! - `release`: the update graph and release selection *(being built,
//!   issue 11)*.

pub mod catalog;
pub mod release;
