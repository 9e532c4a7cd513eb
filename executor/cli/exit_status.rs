//! ferry's exit statuses: one table, used by every subcommand and shown in
//! the README.
//!
//! | status | meaning |
//! |---|---|
//! | 0 | success, or nothing to do |
//! | 1 | any error outside the mirroring itself: bad command line, invalid configuration, I/O, network failure before mirroring starts |
//! | 2 | a release image failed to mirror |
//! | 4 | an operator image failed to mirror |
//! | 8 | an additional image failed to mirror |
//! | 16 | a helm image failed to mirror |
//!
//! The mirroring bits (2, 4, 8, 16) combine: 12 means operator and
//! additional images failed. `plan --detailed-exitcode` uses its own three
//! values: 0 nothing to do, 1 error, 2 changes pending.

#![allow(dead_code)] // The mirroring bits are used once mirroring lands.

/// Any error outside the mirroring itself.
pub const ERROR: u8 = 1;
/// A release image failed.
pub const RELEASE_FAILED: u8 = 2;
/// An operator image failed.
pub const OPERATOR_FAILED: u8 = 4;
/// An additional image failed.
pub const ADDITIONAL_IMAGE_FAILED: u8 = 8;
/// A helm chart image failed.
pub const HELM_FAILED: u8 = 16;
/// `plan --detailed-exitcode`: the plan has changes.
pub const PLAN_HAS_CHANGES: u8 = 2;
