//! The `ferry` command line: parses arguments, dispatches to one subcommand
//! module, and turns its outcome into an exit status from the table in
//! `exit_status.rs` (the same table the README shows).

mod arguments;
mod cache;
mod cache_location;
mod collection;
mod common;
mod delete;
mod demo;
mod disk;
mod exit_status;
mod list;
mod list_operators;
mod list_releases;
mod logging;
mod mirror;
mod oc_mirror_flags;
mod plan_delete;
mod progress;
mod registries_conf;
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
#[command(
    name = "ferry",
    version,
    about,
    long_about = None,
    after_help = "As with oc-mirror, a command line that starts with a flag or a destination is a mirror: `ferry -c isc.yaml file://DIR --v2` runs `ferry mirror -c isc.yaml file://DIR --v2`."
)]
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
    /// image set selects, plan and mirror registry to registry, mirror one
    /// release with its signature verified, to disk, verify, and disk to
    /// registry with the sources stopped, each result checked with skopeo.
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
    /// Delete images from a mirror registry: `--generate` writes the list
    /// from a DeleteImageSetConfiguration and the workspace (offline);
    /// `--delete-yaml-file FILE` deletes what the list names.
    Delete(delete::Args),
    /// List what catalogs and configurations hold, without mirroring.
    #[command(subcommand_required = true)]
    List(ListArgs),
    /// Write a registries.conf from the IDMS/ITMS a run left in
    /// working-dir/cluster-resources: public names pulled from the mirror
    /// (for an enclave's mirror-to-disk from the enterprise registry).
    RegistriesConf(registries_conf::Args),
    /// Print ferry's version (as `oc-mirror version` prints its own).
    Version(VersionArgs),
}

/// Arguments of `ferry list`.
#[derive(Debug, clap::Args)]
struct ListArgs {
    #[command(subcommand)]
    what: ListWhat,
}

#[derive(Debug, clap::Subcommand)]
enum ListWhat {
    /// The bundles each operator catalog's filter selects (ferry's own).
    Bundles(list::BundlesArgs),
    /// oc-mirror's operator listing: a catalog's packages (`--catalog`), a
    /// package's channels (`--package`), a channel's versions (`--channel`),
    /// or Red Hat's catalogs of an OpenShift version (`--catalogs --version`).
    Operators(list_operators::OperatorsArgs),
    /// OpenShift releases: oc-mirror's listing (`--version`, `--channel`,
    /// `--channels`, `--filter-by-archs`), or with `-c` the releases a
    /// configuration selects, from the update graph alone.
    Releases(list_releases::Args),
}

/// Arguments of `ferry version`.
#[derive(Debug, clap::Args)]
struct VersionArgs {
    /// Accepted for pasted oc-mirror command lines; does nothing.
    #[arg(long, hide = true)]
    v2: bool,
}

/// oc-mirror's root command is its mirror command: `oc-mirror -c isc.yaml
/// file://DIR --v2` pastes as `ferry -c isc.yaml file://DIR --v2`, read as
/// `ferry mirror ...`. Only a command line that starts with a flag (other
/// than help and version) or a destination is read so; anything else is
/// parsed as it is.
fn with_mirror_as_default(mut arguments: Vec<std::ffi::OsString>) -> Vec<std::ffi::OsString> {
    let Some(first) = arguments.get(1).and_then(|first| first.to_str()) else {
        return arguments;
    };
    let own = ["-h", "--help", "-V", "--version"];
    let is_flag = first.starts_with('-') && !own.contains(&first);
    let is_destination = first.starts_with("docker://") || first.starts_with("file://");
    if is_flag || is_destination {
        arguments.insert(1, "mirror".into());
    }
    arguments
}

fn main() -> ExitCode {
    let cli = match Cli::try_parse_from(with_mirror_as_default(std::env::args_os().collect())) {
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
        Command::Plan(args) if args.delete => plan_delete::plan_command(&args),
        Command::Plan(args) if arguments::disk_destination(&args.common).is_some() => {
            disk::plan_command(&args)
        }
        Command::Plan(args) => mirror::plan_command(&args),
        Command::Apply(args) => apply(&args),
        Command::Verify(args) => verify::run(&args),
        Command::Cache(args) => cache::run(args),
        Command::Delete(args) => delete::run(&args),
        Command::List(args) => match &args.what {
            ListWhat::Bundles(args) => list::bundles_command(args),
            ListWhat::Operators(args) => list_operators::run(args),
            ListWhat::Releases(args) => list_releases::run(args),
        },
        Command::RegistriesConf(args) => registries_conf::run(&args),
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
    if let Err(code) = arguments::check_flags_for_mode(&args.common) {
        return code;
    }
    let Some(plan_path) = &args.common.destination else {
        return common::error(
            "name a plan file (from `ferry plan --out FILE`), or use -c to plan and apply in one step",
        );
    };
    if let Ok(text) = std::fs::read_to_string(plan_path)
        && ferry_executor::workflow::delete::document::DeletePlanDocument::is_delete_plan(&text)
    {
        return plan_delete::apply_document(plan_path, &text, &args.common.log_level);
    }
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

#[cfg(test)]
mod tests {
    use super::*;

    fn read(line: &[&str]) -> Vec<String> {
        with_mirror_as_default(line.iter().map(|word| (*word).into()).collect())
            .into_iter()
            .map(|word| word.to_string_lossy().into_owned())
            .collect()
    }

    #[test]
    fn an_oc_mirror_command_line_without_a_subcommand_is_a_mirror() {
        assert_eq!(
            read(&["ferry", "-c", "isc.yaml", "file://d", "--v2"]),
            ["ferry", "mirror", "-c", "isc.yaml", "file://d", "--v2"]
        );
        assert_eq!(
            read(&["ferry", "docker://m", "--from", "file://d"]),
            ["ferry", "mirror", "docker://m", "--from", "file://d"]
        );
        for unchanged in [
            &["ferry", "plan", "-c", "x"][..],
            &["ferry", "--help"],
            &["ferry", "-V"],
            &["ferry", "mirorr"],
            &["ferry"],
        ] {
            assert_eq!(read(unchanged), unchanged);
        }
        let parsed =
            Cli::try_parse_from(read(&["ferry", "-c", "isc.yaml", "file://d", "--v2"])).unwrap();
        assert!(matches!(parsed.command, Command::Mirror(_)));
    }
}
