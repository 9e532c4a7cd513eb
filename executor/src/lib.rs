//! The ferry executor: every side effect of a run, driven by a plan from
//! `ferry-planner`.
//!
//! 1. `resolve`: the configuration's images pinned to digests through
//!    registries.conf and the registry client, trees read, blocked images
//!    dropped, signatures added.
//! 2. (the planner compiles and diffs; the caller hands over the state)
//! 3. `run`: the plan executed against the destination, each action
//!    recorded in the workspace state only after it succeeded.
//!
//! `disk`: the disk workflows' side effects (fetching a delivery's blobs
//! into the cache, what a delivery holds, resolving from deliveries).
//!
//! `update_graph`: release graphs asked of the update service, and the
//! releases a configuration selects from them.
//!
//! `naming` says where each image goes; `cluster_resources` writes the
//! IDMS and ITMS for the image set at the destination. `layer_files` reads
//! one folder's files out of an image in an OCI layout on disk (an operator
//! catalog's configs), layer by layer, without unpacking the rest;
//! `source_image` hands it an image of any `source::ContentSource`, its
//! blobs kept in the cache or a temporary store. The command line front
//! end lives beside this crate in `executor/cli/`.

pub mod atomic_file;
pub mod catalog_image;
pub mod cluster_resources;
pub mod disk;
pub mod layer_files;
pub mod naming;
pub mod oci_manifest;
pub mod release_signature;
pub mod resolve;
pub mod run;
pub mod source;
pub mod source_image;
pub mod update_graph;
pub mod workflow;
