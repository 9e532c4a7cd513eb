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

use std::collections::BTreeSet;
use std::path::{Path, PathBuf};
use std::process::ExitCode;

use ferry_executor::workflow::from_deliveries::{self, Deliveries};
use ferry_executor::workflow::operators::{self, CatalogImage, OperatorImageUse};
use ferry_executor::workflow::to_registry::{self, Planned, Sourced};
use ferry_executor::workflow::{CollectContext, ImageSet, Workspace};
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
    planned: Planned,
    /// What the plan was checked against (for what "nothing to do" means).
    planning: ferry_executor::workflow::PlanOptions,
    /// The run log (`mirror` and `apply`).
    log_file: Option<PathBuf>,
    /// One run per workspace: held until the run ends.
    _run_lock: Option<ferry_store::RunLock>,
    /// Mirrored operator catalogs (for their CatalogSource and
    /// ClusterCatalog).
    catalogs: Vec<CatalogImage>,
    /// Operator images by name: the bundles and packages needing them.
    operator_images: std::collections::BTreeMap<String, OperatorImageUse>,
    /// The release payloads' verified signatures, by payload image name
    /// (for the signature ConfigMap).
    release_signatures:
        std::collections::BTreeMap<String, ferry_executor::release_signature::ReleaseSignature>,
    /// What the UpdateService names (`graph: true`).
    update_service: Option<ferry_executor::workflow::graph_image::UpdateServiceTarget>,
    /// The bundles the operator catalogs' filters select, and how they
    /// differ from what the last run to the destination mirrored.
    selected_bundles: Vec<operators::selection::SelectedBundle>,
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

/// Where a run to a registry takes its content from: the deliveries of
/// `--from` (disk-to-mirror) or the sources through registries.conf with
/// the workspace of `--workspace` (mirror-to-mirror).
fn source(
    runtime: &tokio::runtime::Runtime,
    arguments: &MirrorArgs,
    destination: &Destination,
    config: &ferry_schemas::ImageSetConfiguration,
    image_set: &mut ImageSet,
    deliveries: Deliveries,
) -> Result<Sourced, ExitCode> {
    let transfer = arguments.transfer_options();
    let planning = arguments.plan_options();
    if let Some(from) = &arguments.from {
        let Some(folder) = from.strip_prefix("file://") else {
            return Err(error("when --from is used, it must have file:// prefix"));
        };
        // Operator catalogs are collected again from what the deliveries
        // brought, by this side's configuration.
        let context = CollectContext {
            prefix: destination.prefix.clone(),
            max_nested_paths: arguments.max_nested_paths,
            operators_from_deliveries: true,
            ..CollectContext::default()
        };
        let found = runtime
            .block_on(from_deliveries::from_deliveries(
                Path::new(folder),
                destination,
                image_set,
                Some(from_deliveries::CollectFromDeliveries {
                    mirror: &config.mirror,
                    context: &context,
                }),
                &transfer,
                &planning,
                &arguments.disk_options().cache,
                deliveries,
            ))
            .map_err(error)?;
        print_notices(&found.notices);
        return Ok(found.sourced);
    }
    let Some(workspace) = &arguments.workspace else {
        return Err(error(
            "when destination is docker://, either --from (assumes disk to mirror workflow) or --workspace (assumes mirror to mirror workflow) need to be provided",
        ));
    };
    let Some(workspace_path) = workspace.strip_prefix("file://") else {
        return Err(error(
            "when --workspace is used, it must have file:// prefix",
        ));
    };
    runtime
        .block_on(to_registry::from_registries(
            &Workspace::in_folder(workspace_path),
            destination,
            image_set,
            &transfer,
            &planning,
        ))
        .map_err(collect_error)
}

/// Disk-to-mirror's release sources: the latest delivery's `inputs.json`
/// (update graph answers and payload files) restored into the folder's
/// working-dir, read from there with nothing asked over the network.
/// `None` when no delivery carries inputs (the collector then refuses).
fn delivered_release_sources(
    arguments: &MirrorArgs,
    from: &str,
) -> Result<Option<ferry_executor::workflow::releases::ReleaseSources>, ExitCode> {
    let Some(folder) = from.strip_prefix("file://") else {
        return Err(error("when --from is used, it must have file:// prefix"));
    };
    let deliveries = ferry_archive::read_folder(Path::new(folder)).map_err(error)?;
    let Some(inputs) = deliveries
        .iter()
        .rev()
        .find_map(|delivery| delivery.inputs.as_deref())
    else {
        return Ok(None);
    };
    let workspace = Workspace::in_folder(folder);
    workspace.create().map_err(error)?;
    ferry_executor::workflow::releases::restore_inputs(&workspace, inputs).map_err(error)?;
    let mut sources = arguments.release_sources(&workspace);
    sources.offline = true;
    Ok(Some(sources))
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
        return Err(error(
            "when destination is docker://, --from (assumes disk to mirror workflow) and --workspace (assumes mirror to mirror workflow) cannot be used together",
        ));
    }
    let destination = parse_destination(destination_text, destination_path)?;
    let (text, loaded) = match &arguments.config_text {
        Some(text) => check_config(config_path, text.clone())?,
        None => load_config(config_path)?,
    };
    if arguments.from.is_none() && arguments.workspace.is_none() {
        return Err(error(
            "when destination is docker://, either --from (assumes disk to mirror workflow) or --workspace (assumes mirror to mirror workflow) need to be provided",
        ));
    }
    // Releases come from the update service and the registries
    // (mirror-to-mirror), or from what the deliveries carry (disk-to-mirror).
    let releases = match (&arguments.from, &arguments.workspace) {
        (None, Some(workspace)) => workspace
            .strip_prefix("file://")
            .map(|folder| arguments.release_sources(&Workspace::in_folder(folder))),
        (Some(from), None) if loaded.config.mirror.platform.is_some() => {
            delivered_release_sources(arguments, from)?
        }
        _ => None,
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
    let bundle_changes = if image_set.selected_bundles.is_empty() {
        Vec::new()
    } else {
        let recorded = operators::selection::recorded(
            &Workspace::in_folder(&planned.workspace),
            &planned.destination.display(),
        )
        .map_err(error)?;
        operators::selection::changes(&recorded, &image_set.selected_bundles)
    };
    Ok(Prepared {
        config_text: text,
        planned,
        selected_bundles: image_set.selected_bundles,
        bundle_changes,
        planning: arguments.plan_options(),
        log_file,
        _run_lock: run_lock,
        catalogs: image_set.catalogs,
        operator_images: image_set.operator_images,
        release_signatures: image_set.release_signatures,
        update_service: image_set.update_service,
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

/// Publishes the cluster resources for every image now at the
/// destination (failed ones left out) and the signature ConfigMap of every
/// payload now there, removing ferry's files that no longer apply.
fn write_cluster_resources(
    prepared: &Prepared,
    failed: &BTreeSet<&str>,
    repository_scope: bool,
) -> Result<(), ExitCode> {
    use ferry_executor::cluster_resources::MirroredImage;
    use ferry_executor::workflow::publish;
    // Images that failed to resolve are not at the destination either.
    let failed: BTreeSet<&str> = failed
        .iter()
        .copied()
        .chain(
            prepared
                .planned
                .resolution
                .failures
                .iter()
                .map(|failure| failure.name.as_str()),
        )
        .collect();
    let catalog_names: BTreeSet<&str> = prepared
        .catalogs
        .iter()
        .map(|catalog| catalog.name.as_str())
        .collect();
    // Catalogs get a CatalogSource and a ClusterCatalog, not mirror sets.
    let catalogs: Vec<publish::MirroredCatalog> = prepared
        .catalogs
        .iter()
        .filter(|catalog| !failed.contains(catalog.name.as_str()))
        .map(|catalog| publish::MirroredCatalog {
            registry: prepared.planned.destination.registry.clone(),
            repository: catalog.destination_repository.clone(),
            tag: catalog.destination_tag.clone(),
            template: catalog.source_template.clone(),
        })
        .collect();
    let images: Vec<MirroredImage> = prepared
        .planned
        .resolution
        .images
        .iter()
        .filter(|image| !failed.contains(image.name.as_str()))
        .filter(|image| !catalog_names.contains(image.name.as_str()))
        .filter_map(|image| {
            Some(MirroredImage {
                origin: ferry_executor::cluster_resources::origin_of(&image.name, image.category)?,
                destination: format!(
                    "{}/{}",
                    prepared.planned.destination.registry, image.destination_repository
                ),
                category: image.category,
            })
        })
        .collect();
    let workspace = Workspace::in_folder(&prepared.planned.workspace);
    let created_at = publish::creation_time();
    let mut published =
        publish::cluster_resources(&workspace, &images, &catalogs, repository_scope, created_at)
            .map_err(error)?;
    let signatures: Vec<_> = prepared
        .release_signatures
        .iter()
        .filter(|(payload, _)| !failed.contains(payload.as_str()))
        .map(|(_, signature)| signature.clone())
        .collect();
    let signature_files =
        publish::signature_config_map_files(&workspace, &signatures, created_at).map_err(error)?;
    published.written.extend(signature_files.written);
    published.removed.extend(signature_files.removed);
    let registry = &prepared.planned.destination.registry;
    let update_service = prepared
        .update_service
        .as_ref()
        .filter(|target| !failed.contains(target.graph_image_name.as_str()))
        .map(|target| publish::MirroredUpdateService {
            releases: format!("{registry}/{}", target.releases_repository),
            graph_data_image: format!(
                "{registry}/{}:{}",
                target.graph_image_repository, target.graph_image_tag
            ),
        });
    let update_service_files =
        publish::update_service_file(&workspace, update_service.as_ref(), created_at)
            .map_err(error)?;
    published.written.extend(update_service_files.written);
    published.removed.extend(update_service_files.removed);
    for path in &published.written {
        println!("wrote {}", path.display());
    }
    for path in &published.removed {
        println!(
            "removed {}: what it listed left the image set",
            path.display()
        );
    }
    Ok(())
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

/// A dry run to a registry, as oc-mirror's: `mapping.txt` (each image's
/// source, `file://DIR:REF` in disk-to-mirror, and its destination) and
/// the cluster resources the run would produce; nothing is copied.
fn dry_run(prepared: &Prepared, arguments: &MirrorArgs, manifest_lists: bool) -> ExitCode {
    use ferry_executor::workflow::publish::{self, MappedImage};
    let registry = &prepared.planned.destination.registry;
    let from_folder = arguments
        .from
        .as_deref()
        .and_then(|from| from.strip_prefix("file://"))
        .map(|folder| std::path::absolute(folder).unwrap_or_else(|_| PathBuf::from(folder)));
    let images: Vec<MappedImage> = prepared
        .planned
        .resolution
        .images
        .iter()
        .map(|image| {
            let destination = prepared
                .planned
                .graph
                .images()
                .iter()
                .find(|nodes| nodes.name() == image.name)
                .map(|nodes| nodes.destination().to_owned())
                .unwrap_or_default();
            let (source, source_repository) = match &from_folder {
                Some(folder) => (publish::delivery_name(folder, &image.name), None),
                None => {
                    let origin = publish::origin_repository(image);
                    (format!("{origin}@{}", image.top), Some(origin))
                }
            };
            MappedImage {
                source,
                source_repository,
                destination: format!("docker://{destination}"),
                destination_repository: Some(format!(
                    "docker://{registry}/{}",
                    image.destination_repository
                )),
                children: publish::top_children(image),
            }
        })
        .collect();
    let mapping = publish::mapping(&images, manifest_lists);
    let workspace = Workspace::in_folder(&prepared.planned.workspace);
    let written = match publish::dry_run_files(&workspace, &[("mapping.txt", &mapping)]) {
        Ok(written) => written,
        Err(cause) => return error(cause),
    };
    if let Err(code) =
        write_cluster_resources(prepared, &BTreeSet::new(), arguments.max_nested_paths > 0)
    {
        return code;
    }
    for path in written {
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
    // The image sets sharing this cache, and what each has at the
    // registry: what a delete by another must not take from it.
    let failed_images: BTreeSet<&str> = executed
        .report
        .failed_images()
        .map(|image| image.name.as_str())
        .collect();
    let recorded = ferry_store::image_sets::record_workspace(
        &arguments.disk_options().cache,
        Path::new(&prepared.planned.workspace),
    )
    .map_err(|cause| cause.to_string())
    .and_then(|()| {
        ferry_executor::workflow::delete::shared::record_present_tags(
            &mut prepared.planned.state,
            &prepared.planned.destination,
            &prepared.planned.graph,
            &failed_images,
            ferry_executor::workflow::to_registry::unix_now(),
        )
        .map_err(|cause| cause.to_string())
    });
    drop(failed_images);
    if let Err(cause) = recorded {
        eprintln!(
            "warning: {cause}: a delete from this registry by another image set will not know what this one needs"
        );
    }
    let report = &executed.report;
    let failed: BTreeSet<&str> = report
        .failed_images()
        .map(|image| image.name.as_str())
        .collect();
    if let Err(code) = write_cluster_resources(&prepared, &failed, arguments.max_nested_paths > 0) {
        return code;
    }
    if !prepared.selected_bundles.is_empty() {
        // What the next plan compares its bundles with: the catalogs that
        // reached the destination.
        let failed_catalogs: BTreeSet<&str> = executed
            .failed
            .iter()
            .map(|image| image.name.as_str())
            .collect();
        if let Err(cause) = operators::selection::record(
            &Workspace::in_folder(&prepared.planned.workspace),
            &prepared.planned.destination.display(),
            &prepared.selected_bundles,
            &failed_catalogs,
        ) {
            return error(cause);
        }
    }
    let mut errors = String::new();
    for image in &executed.failed {
        errors.push_str(&operators::error_line(
            &prepared.operator_images,
            &image.name,
            &image.reason,
        ));
        errors.push('\n');
    }
    println!(
        "Done: {} actions completed, {} failed, {} skipped; {} pushed.",
        report.completed,
        report.failed,
        report.skipped,
        mebibytes(report.bytes)
    );
    crate::common::print_category_counts(&executed.categories, "mirrored");
    if let Some(line) = operators::incomplete_line(
        &prepared.operator_images,
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
