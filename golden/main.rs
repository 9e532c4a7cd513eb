//! Golden tests: outputs people read, compared with committed files.
//! Set `FERRY_BLESS=1` to rewrite the committed files from the current
//! output, then review the diff (see `golden/README.md`).

mod compatibility;
mod delete;
mod delete_operators;
mod delete_plan;
mod delete_releases;
mod demo;
mod diagnostics;
mod disk;
mod dry_run;
mod enclave;
mod faults;
mod fixtures_table;
mod graph_image;
mod kill;
mod list_bundles;
mod list_releases;
mod messages;
mod operators;
mod pipeline;
mod plan_schema;
mod plans;
mod progress;
mod refresh;
mod registries_conf;
mod release_proof;
mod releases;
mod support;
mod unreachable;
mod verify;
mod world_references;
mod world_up;
