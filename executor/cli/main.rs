//! The `ferry` command line: parses arguments, dispatches to one subcommand
//! module, and turns its outcome into an exit status from the table in
//! `exit_status.rs` (the same table the README shows).

mod arguments;
mod cache;
mod common;
mod demo;
mod disk;
mod exit_status;
mod list;
mod list_releases;
mod logging;
mod mirror;
mod not_built;
mod oc_mirror_flags;
mod progress;
mod render;
mod saved_plan;
mod validate;
mod verify;
mod world;

use std::process::ExitCode;

use clap::{Parser, Subcommand};

/// Mirror container images into disconnected environments.
///
/// ferry reads oc-mirror's ImageSetConfiguration files, compiles them into a
/// content-addressed plan of fetch, verify, pack and push actions, and
/// applies only what is missing.
#[derive(Debug, Parser)]
#[command(name = "ferry", version, about, long_about = None)]
struct Cli {
    #[command(subcommand)]
    command: Command,
}

#[derive(Debug, Subcommand)]
enum Command {
    /// Check ImageSetConfiguration / DeleteImageSetConfiguration files without
    /// touching the network (for CI lint steps).
    Validate(validate::Args),
    /// Start or stop ferry's demo world: real registries on 127.0.0.1 seeded
    /// with an OpenShift-shaped universe.
    World(world::Args),
    /// Run ferry's main job on the demo world: list the releases a fuller
    /// image set selects, plan and mirror registry to registry, to disk,
    /// verify, and disk to registry with the sources stopped, each result
    /// checked with skopeo.
    Demo(demo::Args),
    /// Mirror an image set (mirror-to-mirror, mirror-to-disk, disk-to-mirror).
    Mirror(arguments::Mirror),
    /// Show what a mirror run would do, without doing it.
    Plan(arguments::PlanCommand),
    /// Execute a saved plan (`ferry apply PLANFILE`: the plan's own
    /// configuration copy, folders and options are used), or plan and apply
    /// in one step (`ferry apply -c ISC DESTINATION`).
    Apply(arguments::Apply),
    /// Check deliveries (archives) offline.
    Verify(verify::Args),
    /// Inspect, verify or prune the content cache.
    Cache(cache::Args),
    /// Delete images from a mirror registry.
    Delete(not_built::Args),
    /// List what catalogs and configurations hold, without mirroring.
    #[command(subcommand_required = true)]
    List(list::Args),
    /// Print ferry's version (as `oc-mirror version` prints its own).
    Version(VersionArgs),
}

/// Arguments of `ferry version`.
#[derive(Debug, clap::Args)]
struct VersionArgs {
    /// Accepted for pasted oc-mirror command lines; does nothing.
    #[arg(long, hide = true)]
    v2: bool,
}

fn main() -> ExitCode {
    let cli = match Cli::try_parse() {
        Ok(cli) => cli,
        Err(error) => {
            // clap prints help and version to stdout with success; everything
            // else is a bad command line: exit 1, as the exit-code table says.
            let _ = error.print();
            return if error.use_stderr() {
                exit_status::ERROR.into()
            } else {
                ExitCode::SUCCESS
            };
        }
    };
    match cli.command {
        Command::Validate(args) => validate::run(&args),
        Command::World(args) => world::run(&args),
        Command::Demo(args) => demo::run(&args),
        Command::Mirror(args) if arguments::disk_destination(&args.common).is_some() => {
            disk::mirror_command(&args)
        }
        Command::Mirror(args) => mirror::mirror_command(&args),
        Command::Plan(args) if arguments::disk_destination(&args.common).is_some() => {
            disk::plan_command(&args)
        }
        Command::Plan(args) => mirror::plan_command(&args),
        Command::Apply(args) => apply(&args),
        Command::Verify(args) => verify::run(&args),
        Command::Cache(args) => cache::run(args),
        Command::Delete(_) => not_built::report("delete", "no issue yet"),
        Command::List(args) => list::run(&args),
        Command::Version(_) => {
            println!("ferry {}", env!("CARGO_PKG_VERSION"));
            ExitCode::SUCCESS
        }
    }
}

/// `ferry apply -c FILE DESTINATION` plans and applies in one step;
/// `ferry apply PLANFILE` runs exactly a saved plan (to a registry or to
/// disk, as it was made), refusing a stale one.
fn apply(args: &arguments::Apply) -> ExitCode {
    if args.common.config.is_some() {
        return if arguments::disk_destination(&args.common).is_some() {
            disk::apply_command(args)
        } else {
            mirror::apply_command(args)
        };
    }
    if let Err(code) = arguments::refuse_flags_of_other_modes(&args.common) {
        return code;
    }
    let Some(plan_path) = &args.common.destination else {
        return common::error(
            "name a plan file (from `ferry plan --out FILE`), or use -c to plan and apply in one step",
        );
    };
    let saved = match saved_plan::read_saved(plan_path) {
        Ok(saved) => saved,
        Err(code) => return code,
    };
    if saved.destination.starts_with("file://") {
        disk::apply_document(&saved, &args.common.log_level)
    } else {
        mirror::apply_document(&saved, &args.common.log_level)
    }
}
