//! The ferry planner: resolved content and recorded state in, plan out.
//!
//! This crate is pure: no file, network, clock or environment access. The
//! path through it:
//!
//! 1. [`graph::compile_against`]: resolved images (every reference pinned
//!    to a digest, every manifest tree read) become a petgraph DAG of
//!    [`action::Action`]s, one node per content-addressed key, read
//!    through the graph's queries. An image the state records as complete
//!    with the same [`fingerprint`] is left out (the action cache at the
//!    image level).
//! 2. [`plan::plan`]: the graph is diffed against a
//!    [`plan::StateSnapshot`]; every action not recorded as done is planned,
//!    with its reason, in dependency order.
//!
//! [`document`] is the versioned JSON form of a plan and its JSON Schema.
//!
//! What is hashed into a key is tabled in `action.rs`. The resolver that
//! produces the input, the state that produces the snapshot, and the
//! executor that runs the plan live elsewhere (issue 4 builds them).

pub mod action;
pub mod category;
pub mod document;
pub mod fingerprint;
pub mod graph;
pub mod plan;
pub mod saved;
pub mod source;

/// Hash maps and sets of the hot paths (10,000 images compiled or left
/// out): foldhash with a fixed seed instead of SipHash with a random one.
/// The keys are digests, names and node indexes of the caller's own data,
/// so no flooding to defend against; a fixed seed also keeps the planner
/// free of the process's randomness.
pub type FastMap<K, V> = std::collections::HashMap<K, V, foldhash::fast::FixedState>;
/// See [`FastMap`].
pub type FastSet<T> = std::collections::HashSet<T, foldhash::fast::FixedState>;

pub use action::{Action, ActionKey, KEY_VERSION};
pub use category::{Category, exit_bits};
pub use document::{
    BundleChange, BundleChangeKind, PLAN_DOCUMENT_VERSION, PlanDocument, PlannedDelivery,
    PlannedSegment, plan_schema,
};
pub use fingerprint::{FINGERPRINT_VERSION, ImageFingerprint, ImageRecord};
pub use graph::{
    ActionGraph, Destination, ImageNodes, ResolvedImage, ResolvedManifest, compile,
    compile_against, compile_archive,
};
pub use plan::{ImageChange, Plan, PlannedAction, Reason, StateSnapshot, plan};
pub use saved::{ApplyInputs, PlannedImage, RunSettings, SavedConfiguration, Stale, staleness};
pub use source::Source;
