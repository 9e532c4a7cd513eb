//! The ferry executor: every side effect of a run (registry traffic, archives,
//! state updates) happens here, driven by a plan from `ferry-planner`.
//!
//! Nothing is implemented yet: that is issue "Planner and executor". The
//! command line front end lives beside this crate in `executor/cli/`.
