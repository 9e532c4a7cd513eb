//! The ferry planner: resolved content and recorded state in, plan out.
//!
//! This crate is pure (no file, network, clock or environment access). It
//! will own the content-addressed action graph (fetch, verify, pack, push),
//! the action keys and the diff against state. Nothing is implemented yet:
//! that is issue "Planner and executor".
