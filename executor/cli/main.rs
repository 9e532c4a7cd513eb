//! The `ferry` command line: parses arguments, dispatches to one subcommand
//! module, and turns its outcome into an exit status from the table in
//! `exit_status.rs` (the same table the README shows).

mod cache;
mod demo;
mod disk;
mod exit_status;
mod list;
mod list_releases;
mod logging;
mod mirror;
mod not_built;
mod progress;
mod validate;
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
    Mirror(mirror::Mirror),
    /// Show what a mirror run would do, without doing it.
    Plan(mirror::PlanCommand),
    /// Execute a saved plan (`ferry apply PLANFILE`: the plan's own
    /// configuration copy, folders and options are used), or plan and apply
    /// in one step (`ferry apply -c ISC DESTINATION`).
    Apply(mirror::Apply),
    /// Check deliveries (archives) offline.
    Verify(disk::VerifyArgs),
    /// Inspect, verify or prune the content cache.
    Cache(cache::Args),
    /// Delete images from a mirror registry.
    Delete(not_built::Args),
    /// List what catalogs and configurations hold, without mirroring.
    #[command(subcommand_required = true)]
    List(list::Args),
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
        Command::Mirror(args) => mirror::mirror_command(&args),
        Command::Plan(args) => mirror::plan_command(&args),
        Command::Apply(args) => mirror::apply_command(&args),
        Command::Verify(args) => disk::verify_command(&args),
        Command::Cache(args) => cache::run(args),
        Command::Delete(_) => not_built::report("delete", "no issue yet"),
        Command::List(args) => list::run(&args),
    }
}
