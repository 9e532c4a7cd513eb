//! `ferry mirror`, `ferry plan` and `ferry apply` to a registry
//! (`docker://`): mirror-to-mirror, and disk-to-mirror (`--from`, its
//! source being `workflow::from_deliveries`). `disk.rs` has the `file://`
//! destinations (mirror-to-disk); `main.rs` chooses between the two.
//!
//! The flow is the one in ARCHITECTURE.md, run by `workflow::to_registry`:
//! load the configuration (refusing parts ferry does not act on yet),
//! resolve through registries.conf or from the deliveries, compile the
//! action graph, diff it against the workspace state (and, by default,
//! against the destination: one HEAD per image), then print the plan
//! (`plan`) or run it (`mirror`, `apply`). This file keeps the flags'
//! checks, the rendering, the progress and the exit statuses.

use std::path::PathBuf;
use std::process::ExitCode;

use ferry_executor::workflow::from_deliveries::Deliveries;
use ferry_executor::workflow::operators;
use ferry_executor::workflow::publish::Published;
use ferry_executor::workflow::registry_publish::{self, PublishedContent};
use ferry_executor::workflow::registry_source::{self, RegistryOrigin, SourceOptions};
use ferry_executor::workflow::to_registry::{self, Planned};
use ferry_executor::workflow::{ImageSet, Workspace};
use ferry_planner::{Destination, Plan};

use crate::arguments::{
    Apply, Mirror, MirrorArgs, PlanCommand, check_flags_for_mode, parse_destination,
};
use crate::collection::{collect, collect_error};
use crate::common::{
    check_config, error, hold_workspace_of, load_config, mebibytes, print_notices, report_failures,
    runtime,
};
use crate::exit_status;
use crate::logging;
use crate::progress::{Mode, RunProgress};
use crate::render::{
    render_bundle_changes, render_bundle_changes_markdown, render_markdown, render_text,
};
use crate::saved_plan::{self, Staleness};

/// Everything prepared before the plan.
struct Prepared {
    config_text: String,
    /// Where the content comes from (`--from` or `--workspace`).
    origin: RegistryOrigin,
    planned: Planned,
    /// What the plan was checked against (for what "nothing to do" means).
    planning: ferry_executor::workflow::PlanOptions,
    /// The run log (`mirror` and `apply`).
    log_file: Option<PathBuf>,
    /// One run per workspace: held until the run ends.
    _run_lock: Option<ferry_store::RunLock>,
    /// What of the image set publishing and the records after a run need.
    content: PublishedContent,
    /// How the selected operator bundles differ from what the last run to
    /// the destination mirrored.
    bundle_changes: Vec<ferry_planner::BundleChange>,
}

/// The plan as text, with the operator bundles it adds or drops.
fn plan_text(prepared: &Prepared) -> String {
    let mut text = render_text(
        &prepared.planned.plan,
        &prepared.planned.resolution,
        &prepared.planning,
    );
    render_bundle_changes(&prepared.bundle_changes, &mut text);
    text
}

/// Resolves `image_set` from `origin` (printing what the deliveries
/// report); a workflow error becomes its exit status.
fn source(
    runtime: &tokio::runtime::Runtime,
    arguments: &MirrorArgs,
    origin: &RegistryOrigin,
    destination: &Destination,
    config: &ferry_schemas::ImageSetConfiguration,
    image_set: &mut ImageSet,
    deliveries: Deliveries,
) -> Result<to_registry::Sourced, ExitCode> {
    let options = SourceOptions {
        transfer: &arguments.transfer_options(),
        planning: &arguments.plan_options(),
        cache: &arguments.disk_options().cache,
        deliveries,
    };
    let sourced = runtime.block_on(registry_source::source(
        origin,
        destination,
        &config.mirror,
        image_set,
        &options,
    ));
    match (sourced, origin) {
        (Ok((sourced, notices)), _) => {
            print_notices(&notices);
            Ok(sourced)
        }
        (Err(cause), RegistryOrigin::Deliveries(_)) => Err(error(cause)),
        (Err(cause), RegistryOrigin::Registries(_)) => Err(collect_error(cause)),
    }
}

/// Checks the destination and flags the way oc-mirror does, then resolves,
/// compiles and plans. `deliveries`: whether disk-to-mirror imports.
fn prepare(arguments: &MirrorArgs, deliveries: Deliveries) -> Result<Prepared, ExitCode> {
    let run_lock = hold_workspace_of(arguments)?;
    // `mirror` and `apply` log to the workspace (mirror-to-mirror) or the
    // disk folder's working-dir (disk-to-mirror).
    let logs_folder = arguments
        .run_log
        .and_then(|_| arguments.from.as_deref().or(arguments.workspace.as_deref()))
        .and_then(|folder| folder.strip_prefix("file://"))
        .map(|folder| Workspace::in_folder(folder).logs());
    let log_file = logging::init(&arguments.log_level, logs_folder.as_deref()).map_err(error)?;
    if let (Some(command), Some(config), Some(destination)) =
        (arguments.run_log, &arguments.config, &arguments.destination)
    {
        tracing::info!(
            "ferry {} {command}: configuration {}, destination {destination}",
            env!("CARGO_PKG_VERSION"),
            config.display(),
        );
    }
    let Some(config_path) = &arguments.config else {
        return Err(error("use the --config flag, it is mandatory"));
    };
    let Some(destination_text) = &arguments.destination else {
        return Err(error("name a destination: docker://REGISTRY[/PREFIX]"));
    };
    if destination_text.starts_with("file://") {
        return Err(error(
            "a file:// destination is mirror-to-disk: use `ferry mirror` or `ferry plan` with it",
        ));
    }
    let Some(destination_path) = destination_text.strip_prefix("docker://") else {
        return Err(error(
            "destination must have either file:// (mirror to disk) or docker:// (mirror to mirror, disk to mirror) protocol prefixes",
        ));
    };
    if arguments.from.is_some() && arguments.workspace.is_some() {
        return Err(error(arguments.registry_origin().unwrap_err()));
    }
    let destination = parse_destination(destination_text, destination_path)?;
    let (text, loaded) = match &arguments.config_text {
        Some(text) => check_config(config_path, text.clone())?,
        None => load_config(config_path)?,
    };
    let origin = arguments.registry_origin().map_err(error)?;
    // Releases come from the update service and the registries
    // (mirror-to-mirror), or from what the deliveries carry (disk-to-mirror,
    // restored into the folder's working-dir and read offline).
    let releases = match &origin {
        RegistryOrigin::Registries(folder) => {
            Some(arguments.release_sources(&Workspace::in_folder(folder)))
        }
        RegistryOrigin::Deliveries(folder) if loaded.config.mirror.platform.is_some() => {
            registry_source::restore_delivered_inputs(folder)
                .map_err(error)?
                .map(|workspace| {
                    let mut sources = arguments.release_sources(&workspace);
                    sources.offline = true;
                    sources
                })
        }
        RegistryOrigin::Deliveries(_) => None,
    };
    // `plan` (no run log) leaves the cache as it is.
    let mut image_set = collect(
        arguments,
        &destination.prefix,
        &loaded.config,
        releases,
        arguments.run_log.is_none(),
    )?;
    let runtime = runtime()?;
    let sourced = source(
        &runtime,
        arguments,
        &origin,
        &destination,
        &loaded.config,
        &mut image_set,
        deliveries,
    )?;
    let planned = runtime
        .block_on(to_registry::plan(
            sourced,
            destination,
            &arguments.plan_options(),
        ))
        .map_err(error)?;
    let content = PublishedContent::of(image_set);
    let bundle_changes = content.bundle_changes(&planned).map_err(error)?;
    Ok(Prepared {
        config_text: text,
        origin,
        planned,
        planning: arguments.plan_options(),
        log_file,
        _run_lock: run_lock,
        content,
        bundle_changes,
    })
}

/// The plan document of a plan to a registry, with what `apply` runs it
/// from.
fn plan_document(arguments: &MirrorArgs, prepared: &Prepared) -> ferry_planner::PlanDocument {
    let planned = &prepared.planned;
    let mut document = ferry_planner::PlanDocument::new(planned.plan.clone());
    document.apply = Some(saved_plan::apply_inputs(
        arguments,
        &prepared.config_text,
        &planned.state_fingerprint,
        &planned.resolution,
        action_keys(&planned.plan),
    ));
    document.bundles = prepared.bundle_changes.clone();
    document
}

/// The keys of every planned action: what a saved plan must match.
fn action_keys(plan: &Plan) -> Vec<ferry_planner::ActionKey> {
    plan.actions.iter().map(|planned| planned.key).collect()
}

/// Runs a version 2 plan document to a registry exactly, or refuses it
/// naming why it is stale.
pub(crate) fn apply_document(apply: &ferry_planner::ApplyInputs, log_level: &str) -> ExitCode {
    let common = saved_plan::arguments_of(apply, log_level);
    saved_plan::note_changed_configuration(apply);
    let prepared = match prepare(&common, Deliveries::Import) {
        Ok(prepared) => prepared,
        Err(code) => return code,
    };
    if let Err(code) = saved_plan::refuse_stale(
        apply,
        &prepared.planned.state_fingerprint,
        &prepared.planned.resolution,
        &action_keys(&prepared.planned.plan),
        Staleness {
            state: "the workspace state changed since the plan was made (another run mirrored to this destination)",
            actions: "the destination no longer matches what the plan assumed (content went missing)",
        },
    ) {
        return code;
    }
    print!("{}", plan_text(&prepared));
    run_prepared(prepared, &common)
}

/// `ferry plan` to a registry.
pub fn plan_command(arguments: &PlanCommand) -> ExitCode {
    if let Err(code) = check_flags_for_mode(&arguments.common) {
        return code;
    }
    let mut prepared = match prepare(&arguments.common, Deliveries::Verify) {
        Ok(prepared) => prepared,
        Err(code) => return code,
    };
    let document = plan_document(&arguments.common, &prepared);
    let output = match arguments.format.as_str() {
        "json" => saved_plan::render_json(&document),
        "markdown" => {
            let mut text = render_markdown(&prepared.planned.plan, &prepared.planned.resolution);
            render_bundle_changes_markdown(&prepared.bundle_changes, &mut text);
            text
        }
        _ => plan_text(&prepared),
    };
    print!("{output}");
    if let Some(out) = &arguments.out
        && let Err(code) = saved_plan::write_plan_file(out, &document)
    {
        return code;
    }
    let code = if !prepared.planned.resolution.failures.is_empty() {
        exit_status::ERROR.into()
    } else if arguments.detailed_exitcode && !prepared.planned.plan.is_empty() {
        exit_status::PLAN_HAS_CHANGES.into()
    } else {
        ExitCode::SUCCESS
    };
    // Every image's tree is left to the operating system at exit: freeing
    // it piece by piece was a noticeable share of a no-op plan.
    std::mem::forget(std::mem::take(&mut prepared.planned.resolution));
    code
}

/// Says what publishing wrote and removed.
fn print_published(published: &Published) {
    for path in &published.written {
        println!("wrote {}", path.display());
    }
    for path in &published.removed {
        println!(
            "removed {}: what it listed left the image set",
            path.display()
        );
    }
}

/// `ferry mirror` to a registry.
pub fn mirror_command(arguments: &Mirror) -> ExitCode {
    if let Err(code) = check_flags_for_mode(&arguments.common) {
        return code;
    }
    let mut common = arguments.common.clone();
    common.run_log = Some("mirror");
    let deliveries = if arguments.is_dry_run() {
        Deliveries::Verify
    } else {
        Deliveries::Import
    };
    let prepared = match prepare(&common, deliveries) {
        Ok(prepared) => prepared,
        Err(code) => return code,
    };
    print!("{}", plan_text(&prepared));
    if arguments.is_dry_run() {
        return dry_run(&prepared, &common, arguments.dry_run_manifest_lists);
    }
    run_prepared(prepared, &common)
}

/// A dry run to a registry, as oc-mirror's: `mapping.txt` and the
/// cluster resources the run would produce; nothing is copied.
fn dry_run(prepared: &Prepared, arguments: &MirrorArgs, manifest_lists: bool) -> ExitCode {
    let written = match registry_publish::dry_run(
        &prepared.planned,
        &prepared.content,
        &prepared.origin,
        manifest_lists,
        arguments.max_nested_paths > 0,
    ) {
        Ok(written) => written,
        Err(cause) => return error(cause),
    };
    print_published(&written.published);
    for path in written.files {
        println!("dry run: wrote {}; nothing was copied", path.display());
    }
    ExitCode::SUCCESS
}

/// Runs a prepared plan: the shared end of `mirror` and `apply`.
fn run_prepared(mut prepared: Prepared, arguments: &MirrorArgs) -> ExitCode {
    let runtime = match runtime() {
        Ok(runtime) => runtime,
        Err(code) => return code,
    };
    let progress = RunProgress::start(
        &prepared.planned.plan,
        &prepared.planned.graph,
        Mode::choose(&arguments.log_level),
    );
    let executed = runtime.block_on(to_registry::execute(
        &mut prepared.planned,
        &arguments.transfer_options(),
        &progress,
    ));
    progress.finish();
    drop(progress);
    let executed = match executed {
        Ok(executed) => executed,
        Err(cause) => return error(cause),
    };
    let planned = &mut prepared.planned;
    let content = &prepared.content;
    if let Err(cause) =
        registry_publish::record_shared(planned, &executed, &arguments.disk_options().cache)
    {
        eprintln!(
            "warning: {cause}: a delete from this registry by another image set will not know what this one needs"
        );
    }
    let repository_scope = arguments.max_nested_paths > 0;
    match registry_publish::publish_after_run(planned, content, &executed, repository_scope) {
        Ok(published) => print_published(&published),
        Err(cause) => return error(cause),
    }
    if let Err(cause) = registry_publish::record_bundles(planned, content, &executed) {
        return error(cause);
    }
    let errors = operators::errors_text(&content.operator_images, &executed.failed);
    let report = &executed.report;
    println!(
        "Done: {} actions completed, {} failed, {} skipped; {} pushed.",
        report.completed,
        report.failed,
        report.skipped,
        mebibytes(report.bytes)
    );
    crate::common::print_category_counts(&executed.categories, "mirrored");
    if let Some(line) = operators::incomplete_line(
        &content.operator_images,
        executed.failed.iter().map(|image| image.name.as_str()),
    ) {
        println!("{line}");
    }
    if let Some(log_file) = &prepared.log_file
        && arguments.log_level != "error"
    {
        println!("log written to {}", log_file.display());
    }
    if errors.is_empty() {
        return ExitCode::SUCCESS;
    }
    report_failures(
        &Workspace::in_folder(&prepared.planned.workspace),
        &errors,
        executed.exit_bits(),
    )
}

/// `ferry apply -c FILE docker://...`: plans and applies in one step.
pub fn apply_command(arguments: &Apply) -> ExitCode {
    if let Err(code) = check_flags_for_mode(&arguments.common) {
        return code;
    }
    let mut common = arguments.common.clone();
    common.run_log = Some("apply");
    let prepared = match prepare(&common, Deliveries::Import) {
        Ok(prepared) => prepared,
        Err(code) => return code,
    };
    print!("{}", plan_text(&prepared));
    run_prepared(prepared, &common)
}
