//! `ferry delete`: oc-mirror's two delete steps (notes §1.5, §3.8).
//! `--generate -c DISC --workspace file://WS docker://REG` writes the
//! delete list offline from what earlier runs recorded in the workspace;
//! `--delete-yaml-file FILE docker://REG` deletes what such a list names.
//! The steps themselves are the library's (`workflow::delete`); this module
//! reads the flags, warns about the ones a step does not use, and prints.

use std::path::{Path, PathBuf};
use std::process::ExitCode;
use std::time::Duration;

use ferry_executor::workflow::delete::{self, DeleteImageList, ItemOutcome};
use ferry_executor::workflow::{Workspace, mebibytes};
use ferry_planner::Destination;

use crate::arguments::parse_destination;
use crate::cache_location::cache_folder;
use crate::common::{
    destination_client, error, hold_workspace, load_delete_configuration_text, print_notices,
    runtime,
};
use crate::{exit_status, logging};

/// `ferry delete`: oc-mirror's flags.
#[derive(Debug, clap::Args)]
pub struct Args {
    /// The DeleteImageSetConfiguration (with --generate).
    #[arg(short = 'c', long = "config")]
    config: Option<PathBuf>,
    /// The registry to delete from: `docker://REGISTRY[/PREFIX]`.
    destination: Option<String>,
    /// Step 1: write the delete list (working-dir/delete/delete-images.yaml)
    /// from -c and the --workspace earlier runs used, offline.
    #[arg(long)]
    generate: bool,
    /// With --generate: the workspace (or disk folder) earlier runs used, `file://DIR`.
    #[arg(long)]
    workspace: Option<String>,
    /// With --generate: suffix of the files written (`delete-images-<ID>.yaml`).
    #[arg(long)]
    delete_id: Option<String>,
    /// Step 2: the delete list to apply (from --generate).
    #[arg(long)]
    delete_yaml_file: Option<PathBuf>,
    /// With step 2: also remove the images from the local cache and free the
    /// blobs nothing else recorded there needs.
    #[arg(long)]
    force_cache_delete: bool,
    /// With --generate: also list the images' cosign signature tags.
    #[arg(long)]
    delete_signatures: bool,
    /// oc-mirror v1's tag scheme: refused (ferry never wrote v1 tags).
    #[arg(long)]
    delete_v1_images: bool,
    /// With --generate: also list what another image set mirrored to the
    /// same registry still needs (left out with a warning otherwise).
    #[arg(long)]
    force: bool,
    /// Print what would be written or deleted, and change nothing.
    #[arg(long)]
    dry_run: bool,
    /// Accepted for oc-mirror's command lines; a delete reads no source.
    #[arg(long, action = clap::ArgAction::Set)]
    src_tls_verify: Option<bool>,
    /// Verify TLS for the registry (false also allows plain HTTP).
    #[arg(long, action = clap::ArgAction::Set)]
    dest_tls_verify: Option<bool>,
    /// The cache --force-cache-delete cleans, and whose recorded image sets
    /// --generate protects (default: $FERRY_CACHE_DIR, else ~/.cache/ferry).
    #[arg(long)]
    cache_dir: Option<PathBuf>,
    /// Auth file (default: $REGISTRY_AUTH_FILE, then the containers and docker defaults).
    #[arg(long)]
    authfile: Option<PathBuf>,
    /// Accepted for oc-mirror's command lines; a delete reads no source.
    #[arg(long = "registries-conf")]
    registries_conf: Option<PathBuf>,
    /// info, debug, trace or error.
    #[arg(long, default_value = "info", value_parser = ["info", "debug", "trace", "error"])]
    log_level: String,
    /// Retries of a failed request (default 5).
    #[arg(long)]
    retry_times: Option<u32>,
    /// Fixed delay between retries, e.g. `500ms` or `2s` (default: exponential backoff).
    #[arg(long, value_parser = crate::arguments::parse_duration)]
    retry_delay: Option<Duration>,
    /// Accepted for oc-mirror's command lines (ferry is always v2).
    #[arg(long)]
    v2: bool,
}

/// Warns once per flag given that `step` does not use.
fn warn_unused(step: &str, why: &str, flags: &[(bool, &str)]) {
    for (given, flag) in flags {
        if *given {
            eprintln!("warning: {flag} is not used by {step} ({why}); ignored");
        }
    }
}

pub fn run(args: &Args) -> ExitCode {
    if let Err(cause) = logging::init(&args.log_level, None) {
        return error(cause);
    }
    if args.delete_v1_images {
        return error(
            "--delete-v1-images: ferry never wrote oc-mirror v1's tags (fnv32a hash tags, digest-prefix tags of OCI catalogs); it names every image as oc-mirror v2 does, so there are no v1 images of ferry's to delete; delete those with oc-mirror v1; nothing was done",
        );
    }
    let Some(destination_text) = &args.destination else {
        return error("name the registry: docker://REGISTRY[/PREFIX]");
    };
    let Some(destination_path) = destination_text.strip_prefix("docker://") else {
        return error(format!(
            "`{destination_text}`: the destination registry argument must have a docker:// protocol prefix"
        ));
    };
    let destination = match parse_destination(destination_text, destination_path) {
        Ok(destination) => destination,
        Err(code) => return code,
    };
    let result = if args.generate {
        generate(args, &destination)
    } else {
        delete_listed(args, &destination)
    };
    result.unwrap_or_else(|code| code)
}

/// Step 1: the delete list, from the configuration and the workspace.
fn generate(args: &Args, destination: &Destination) -> Result<ExitCode, ExitCode> {
    warn_unused(
        "--generate",
        "it reads the workspace only, never the network",
        &[
            (args.delete_yaml_file.is_some(), "--delete-yaml-file"),
            (args.force_cache_delete, "--force-cache-delete"),
            (args.src_tls_verify.is_some(), "--src-tls-verify"),
            (args.dest_tls_verify.is_some(), "--dest-tls-verify"),
            (args.authfile.is_some(), "--authfile"),
            (args.registries_conf.is_some(), "--registries-conf"),
            (args.retry_times.is_some(), "--retry-times"),
            (args.retry_delay.is_some(), "--retry-delay"),
        ],
    );
    let Some(workspace_text) = &args.workspace else {
        return Err(error(
            "use the --workspace flag, it is mandatory when using the delete command with the --generate flag",
        ));
    };
    let Some(folder) = workspace_text
        .strip_prefix("file://")
        .filter(|folder| !folder.is_empty())
    else {
        return Err(error(format!(
            "--workspace `{workspace_text}`: use file://DIR, the workspace (or disk folder) the mirror runs used"
        )));
    };
    let Some(config_path) = &args.config else {
        return Err(error(
            "use the --config flag with a DeleteImageSetConfiguration, it is mandatory with --generate",
        ));
    };
    if let Some(delete_id) = &args.delete_id {
        delete::check_delete_id(delete_id).map_err(error)?;
    }
    let configuration = load_configuration(config_path)?;
    let typed = ferry_schemas::read_configuration_file(config_path).unwrap_or_default();
    let workspace = Workspace::in_folder(folder);
    if !workspace.state_file().is_file() {
        return Err(error(format!(
            "{} holds no ferry workspace ({} is missing): --generate lists images from what earlier runs recorded there; name the --workspace (or disk folder) those runs used",
            folder,
            workspace.state_file().display()
        )));
    }
    let _lock = hold_workspace(workspace.root(), !args.dry_run)?;
    let state = workspace.open_state().map_err(error)?;
    let recorded =
        delete::WorkspaceRecord::load_in(&workspace, &state, destination).map_err(error)?;
    let cache = cache_folder(args.cache_dir.as_deref())?;
    let (shared, shared_notices) = delete::SharedContent::load(
        &cache,
        Path::new(folder),
        &destination.display(),
        &destination.registry,
    )
    .map_err(error)?;
    print_notices(&shared_notices);
    let generated = delete::generate(
        &configuration,
        destination,
        &recorded,
        args.delete_signatures,
        &delete::Protection {
            shared: &shared,
            force: args.force,
        },
    )
    .map_err(error)?;
    print_notices(&generated.notices);
    if args.dry_run {
        print!("{}", generated.list.to_yaml().map_err(error)?);
        eprintln!(
            "dry run: {} images would be listed for deletion; nothing was written",
            generated.list.items.len()
        );
        return Ok(ExitCode::SUCCESS);
    }
    let (list_path, configuration_path) =
        delete::write_generated(&workspace, args.delete_id.as_deref(), &generated, &typed)
            .map_err(error)?;
    println!(
        "{} items listed for deletion at docker://{} in {}",
        generated.list.items.len(),
        destination.display(),
        list_path.display()
    );
    println!(
        "the delete configuration as applied: {}",
        configuration_path.display()
    );
    println!(
        "check every image in the list, then: ferry delete --delete-yaml-file {} docker://{}",
        list_path.display(),
        destination.display()
    );
    Ok(ExitCode::SUCCESS)
}

/// Reads and checks a DeleteImageSetConfiguration, refusing parts ferry
/// does not delete yet.
pub(crate) fn load_configuration(
    path: &Path,
) -> Result<ferry_schemas::DeleteImageSetConfiguration, ExitCode> {
    let text = ferry_schemas::read_configuration_file(path)
        .map_err(|cause| error(format!("cannot read {}: {cause}", path.display())))?;
    load_delete_configuration_text(&path.display().to_string(), &text)
}

/// Step 2: deletes what the list names.
fn delete_listed(args: &Args, destination: &Destination) -> Result<ExitCode, ExitCode> {
    warn_unused(
        "--delete-yaml-file",
        "the list names everything to delete",
        &[
            (args.config.is_some(), "--config"),
            (args.workspace.is_some(), "--workspace"),
            (args.delete_id.is_some(), "--delete-id"),
            (args.delete_signatures, "--delete-signatures"),
            (args.force, "--force"),
        ],
    );
    warn_unused(
        "--delete-yaml-file",
        "a delete reads no source registry",
        &[
            (args.src_tls_verify.is_some(), "--src-tls-verify"),
            (args.registries_conf.is_some(), "--registries-conf"),
        ],
    );
    warn_unused(
        "--delete-yaml-file",
        "only --force-cache-delete uses the cache",
        &[(
            args.cache_dir.is_some() && !args.force_cache_delete,
            "--cache-dir",
        )],
    );
    let Some(list_path) = &args.delete_yaml_file else {
        return Err(error(
            "use --delete-yaml-file FILE (the list `ferry delete --generate` writes), or --generate to write one",
        ));
    };
    if !list_path.is_file() {
        return Err(error(format!("file not found {}", list_path.display())));
    }
    let text = ferry_schemas::read_configuration_file(list_path)
        .map_err(|cause| error(format!("cannot read {}: {cause}", list_path.display())))?;
    let list = DeleteImageList::parse(&list_path.display().to_string(), &text).map_err(error)?;
    let client = destination_client(
        destination,
        args.dest_tls_verify != Some(false),
        args.authfile.as_deref(),
        args.retry_times,
        args.retry_delay,
    )?;
    let report = runtime()?
        .block_on(delete::delete_listed(
            &list,
            destination,
            &client,
            args.dry_run,
        ))
        .map_err(error)?;
    for (item, outcome) in &report.outcomes {
        match outcome {
            ItemOutcome::Deleted(digest) => println!("deleted {} ({digest})", item.image_reference),
            ItemOutcome::WouldDelete(digest) => {
                println!("would delete {} ({digest})", item.image_reference);
            }
            ItemOutcome::AlreadyGone => println!("already gone {}", item.image_reference),
            ItemOutcome::Failed(why) => eprintln!("failed {}: {why}", item.image_reference),
        }
    }
    let deleted = report.count(|outcome| {
        matches!(
            outcome,
            ItemOutcome::Deleted(_) | ItemOutcome::WouldDelete(_)
        )
    });
    let gone = report.count(|outcome| matches!(outcome, ItemOutcome::AlreadyGone));
    let failed = report.failed();
    println!(
        "{}: {deleted} {}, {gone} already gone, {failed} failed (of {} listed)",
        if args.dry_run { "dry run" } else { "done" },
        if args.dry_run {
            "would be deleted"
        } else {
            "deleted"
        },
        list.items.len()
    );
    if deleted > 0 && !args.dry_run {
        println!(
            "blobs stay in the registry until its garbage collector runs (distribution: `registry garbage-collect --delete-untagged CONFIG`)"
        );
    }
    if args.force_cache_delete {
        forget_in_cache(args, &list, &report)?;
    }
    Ok(if failed > 0 {
        exit_status::ERROR.into()
    } else {
        ExitCode::SUCCESS
    })
}

/// `--force-cache-delete`: the cache forgets the items that are gone from
/// the registry (not those that failed) and frees what nothing else needs.
fn forget_in_cache(
    args: &Args,
    list: &DeleteImageList,
    report: &delete::DeleteReport,
) -> Result<(), ExitCode> {
    let cache = cache_folder(args.cache_dir.as_deref())?;
    let done = DeleteImageList::new(
        report
            .outcomes
            .iter()
            .filter(|(_, outcome)| !matches!(outcome, ItemOutcome::Failed(_)))
            .map(|(item, _)| item.clone())
            .collect(),
    );
    let forgotten = delete::forget_in_cache(&done, &cache, args.dry_run).map_err(error)?;
    if forgotten.forgotten.is_empty() {
        println!(
            "--force-cache-delete: the cache {} holds none of the {} listed images (mirror-to-mirror records no image in the cache: images stream from source to destination); nothing removed from it",
            cache.display(),
            list.items.len()
        );
    } else {
        println!(
            "--force-cache-delete: {} {} images from the cache {}, {} blobs that nothing else recorded there needs ({})",
            if args.dry_run {
                "would remove"
            } else {
                "removed"
            },
            forgotten.forgotten.len(),
            cache.display(),
            forgotten.removed_blobs,
            mebibytes(forgotten.freed_bytes)
        );
    }
    Ok(())
}
