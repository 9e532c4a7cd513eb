//! The disk workflows on the command line: `ferry mirror|plan|apply -c
//! isc.yaml file://DIR` (mirror-to-disk, run by `workflow::to_disk`) and
//! `ferry verify file://DIR` (re-hashes every byte of every delivery).
//! Disk-to-mirror (`--from`) is a run to a registry: `mirror.rs`.
//!
//! This file keeps the flags' checks, the run lock and log, the rendering
//! of the plan and the delivery, and the exit statuses.

use std::fmt::Write as _;
use std::path::{Path, PathBuf};
use std::process::ExitCode;

use ferry_archive::DeliveryLayout;
use ferry_executor::disk::DeliverySettings;
use ferry_executor::workflow::Workspace;
use ferry_executor::workflow::to_disk::{self, DiskPlan};
use ferry_executor::workflow::workspace::refuse_filesystem_root;
use ferry_planner::{ApplyInputs, PlanDocument};
use ferry_store::RunLock;

use crate::arguments::{Apply, Mirror, MirrorArgs, PlanCommand, check_flags_for_mode};
use crate::common::{
    counted, error, hold_workspace, load_config, mebibytes, print_notices, report_failures, runtime,
};
use crate::exit_status;
use crate::logging;
use crate::render::render_image_lines;
use crate::saved_plan::{self, Staleness};

/// A mirror-to-disk plan, with the run lock it holds until the run ends.
struct Prepared {
    disk: DiskPlan,
    _run_lock: Option<RunLock>,
}

/// Checks the flags and the folder, holds the workspace (for `mirror`,
/// dry runs included), starts the run log (for a run that writes), then
/// resolves and plans the next delivery. `writes`: `mirror` or `apply`
/// without `--dry-run`.
fn prepare(arguments: &MirrorArgs, holds: bool, writes: bool) -> Result<Prepared, ExitCode> {
    let Some(config_path) = &arguments.config else {
        return Err(error("use the --config flag, it is mandatory"));
    };
    if arguments.from.is_some() || arguments.workspace.is_some() {
        return Err(error(
            "when destination is file://, mirrorToDisk workflow is assumed, and the --workspace or --from flags cannot be used: the workspace is DIR/working-dir",
        ));
    }
    let folder = arguments
        .destination
        .as_deref()
        .and_then(|destination| destination.strip_prefix("file://"))
        .unwrap_or_default();
    if folder.is_empty() {
        return Err(error("name a folder: file://DIR"));
    }
    let folder = PathBuf::from(folder);
    refuse_filesystem_root(&folder).map_err(error)?;
    let workspace = Workspace::in_folder(&folder);
    workspace.create().map_err(error)?;
    let run_lock = hold_workspace(workspace.root(), holds)?;
    // A run that writes a delivery keeps its log in working-dir/logs/.
    let logs_folder = writes.then(|| workspace.logs());
    logging::init(&arguments.log_level, logs_folder.as_deref()).map_err(error)?;
    tracing::info!(
        "ferry {} mirror to disk: configuration {}, folder {}",
        env!("CARGO_PKG_VERSION"),
        config_path.display(),
        folder.display()
    );
    let (config_text, loaded) = match &arguments.config_text {
        Some(text) => crate::common::check_config(config_path, text.clone())?,
        None => load_config(config_path)?,
    };
    let image_set = crate::collection::collect(
        arguments,
        "",
        &loaded.config,
        Some(arguments.release_sources(&workspace)),
        !writes,
    )?;
    let disk = runtime()?
        .block_on(to_disk::prepare_image_set(
            &folder,
            &loaded.config,
            &config_text,
            image_set,
            &arguments.transfer_options(),
            &arguments.plan_options(),
            &arguments.disk_options(),
            writes,
        ))
        .map_err(crate::collection::collect_error)?;
    print_notices(&disk.notices);
    Ok(Prepared {
        disk,
        _run_lock: run_lock,
    })
}

/// `ferry plan ... file://DIR`.
pub fn plan_command(arguments: &PlanCommand) -> ExitCode {
    if let Err(code) = check_flags_for_mode(&arguments.common) {
        return code;
    }
    let prepared = match prepare(&arguments.common, false, false) {
        Ok(prepared) => prepared,
        Err(code) => return code,
    };
    let prepared = &prepared.disk;
    let layout = match to_disk::planned_layout(prepared) {
        Ok(layout) => layout,
        Err(cause) => return error(cause),
    };
    let document = plan_document(&arguments.common, prepared, Some(&layout));
    let output = match arguments.format.as_str() {
        "json" => saved_plan::render_json(&document),
        "markdown" => render_markdown(prepared, Some(&layout)),
        _ => render_text(prepared, Some(&layout)),
    };
    print!("{output}");
    if let Some(out) = &arguments.out
        && let Err(code) = saved_plan::write_plan_file(out, &document)
    {
        return code;
    }
    if !prepared.resolution.failures.is_empty() {
        return exit_status::ERROR.into();
    }
    if arguments.detailed_exitcode && !prepared.plan.is_empty() {
        return exit_status::PLAN_HAS_CHANGES.into();
    }
    ExitCode::SUCCESS
}

/// `ferry mirror ... file://DIR` (with `--dry-run`: oc-mirror's
/// `mapping.txt` and `missing.txt`, nothing fetched or written).
pub fn mirror_command(arguments: &Mirror) -> ExitCode {
    if let Err(code) = check_flags_for_mode(&arguments.common) {
        return code;
    }
    mirror_to_disk(
        &arguments.common,
        !arguments.is_dry_run(),
        arguments.dry_run_manifest_lists,
    )
}

/// `ferry apply -c FILE file://DIR`: plans and writes in one step.
pub fn apply_command(arguments: &Apply) -> ExitCode {
    if let Err(code) = check_flags_for_mode(&arguments.common) {
        return code;
    }
    mirror_to_disk(&arguments.common, true, false)
}

/// Plans, then writes the delivery (`writes`) or the dry-run files (with
/// the images of manifest lists: `manifest_lists`).
fn mirror_to_disk(arguments: &MirrorArgs, writes: bool, manifest_lists: bool) -> ExitCode {
    let mut prepared = match prepare(arguments, true, writes) {
        Ok(prepared) => prepared,
        Err(code) => return code,
    };
    let layout = match to_disk::planned_layout(&prepared.disk) {
        Ok(layout) => layout,
        Err(cause) => return error(cause),
    };
    // A run says what it delivered once, after writing it; a dry run
    // shows the delivery it would write with the plan.
    let planned = (!writes).then_some(&layout);
    print!("{}", render_text(&prepared.disk, planned));
    if !writes {
        return match to_disk::dry_run(&prepared.disk, manifest_lists) {
            Ok(written) => {
                println!(
                    "dry run: wrote {} and {} ({} of {} not wholly in the cache); nothing was fetched or written",
                    written.mapping.display(),
                    written.missing.display(),
                    written.missing_images,
                    counted(written.images as u64, "image", "images")
                );
                ExitCode::SUCCESS
            }
            Err(cause) => error(cause),
        };
    }
    write_delivery(arguments, &mut prepared.disk)
}

/// `ferry apply PLANFILE` for a mirror-to-disk plan: writes exactly the
/// delivery the plan showed, or refuses a stale plan naming the cause.
pub(crate) fn apply_document(apply: &ApplyInputs, log_level: &str) -> ExitCode {
    let arguments = saved_plan::arguments_of(apply, log_level);
    saved_plan::note_changed_configuration(apply);
    let mut prepared = match prepare(&arguments, true, true) {
        Ok(prepared) => prepared,
        Err(code) => return code,
    };
    if let Err(code) = saved_plan::refuse_stale(
        apply,
        &prepared.disk.state_fingerprint,
        &prepared.disk.resolution,
        &to_disk::delivery_keys(&prepared.disk.plan),
        Staleness {
            state: "the workspace's deliveries changed since the plan was made (another delivery was written)",
            actions: "the delivery would no longer hold what the plan showed",
        },
    ) {
        return code;
    }
    print!("{}", render_text(&prepared.disk, None));
    write_delivery(&arguments, &mut prepared.disk)
}

/// Fetches, writes and records the delivery, and says what happened.
fn write_delivery(arguments: &MirrorArgs, prepared: &mut DiskPlan) -> ExitCode {
    let runtime = match runtime() {
        Ok(runtime) => runtime,
        Err(code) => return code,
    };
    let delivered = match runtime.block_on(to_disk::write_delivery(
        prepared,
        &arguments.transfer_options(),
    )) {
        Ok(delivered) => delivered,
        Err(cause) => return crate::collection::collect_error(cause),
    };
    if delivered.fetched.fetched > 0 {
        println!(
            "fetched {} ({}) into {}",
            counted(delivered.fetched.fetched as u64, "blob", "blobs"),
            mebibytes(delivered.fetched.bytes),
            prepared.cache.root().display()
        );
    }
    match &delivered.layout {
        None => println!("No delivery was written."),
        Some(layout) => {
            for warning in &layout.warnings {
                eprintln!("warning: {warning}");
            }
            println!(
                "{}\nwritten to {}",
                describe_delivery(&prepared.settings, layout),
                prepared.folder.display()
            );
            println!(
                "carry the new segment files across; on the disconnected side run: ferry mirror -c {} --from file://DIR docker://REGISTRY",
                arguments
                    .config
                    .as_deref()
                    .unwrap_or(Path::new("isc.yaml"))
                    .display()
            );
        }
    }
    crate::common::print_category_counts(&delivered.categories, "delivered");
    let operators = &prepared.operator_images;
    if let Some(line) = ferry_executor::workflow::operators::incomplete_line(
        operators,
        delivered.failed.iter().map(|image| image.name.as_str()),
    ) {
        println!("{line}");
    }
    // Operator images name the bundles and packages needing them.
    let errors = ferry_executor::workflow::operators::errors_text(operators, &delivered.failed);
    if errors.is_empty() {
        return ExitCode::SUCCESS;
    }
    report_failures(&prepared.workspace, &errors, delivered.exit_bits())
}

fn describe_delivery(settings: &DeliverySettings, layout: &DeliveryLayout) -> String {
    let after = match settings.previous {
        Some(previous) => format!("after delivery {previous}"),
        None => "the first".to_owned(),
    };
    let segments: Vec<String> = layout
        .segments
        .iter()
        .map(|segment| format!("{} ({})", segment.file_name, mebibytes(segment.bytes)))
        .collect();
    format!(
        "Delivery {} ({after}): {} in {} segment{}: {}",
        settings.delivery,
        mebibytes(layout.total_bytes),
        layout.segments.len(),
        if layout.segments.len() == 1 { "" } else { "s" },
        segments.join(", ")
    )
}

fn render_text(prepared: &DiskPlan, layout: Option<&DeliveryLayout>) -> String {
    let plan = &prepared.plan;
    let totals = &plan.totals;
    let mut text = String::new();
    let changed = plan
        .images
        .iter()
        .filter(|image| image.change != ferry_planner::ImageChange::Unchanged)
        .count();
    let _ = writeln!(
        text,
        "Plan: {} for the next delivery: {changed} new or changed, {} already shipped",
        counted(plan.images.len() as u64, "image", "images"),
        plan.images.len() - changed
    );
    render_image_lines(plan, &prepared.resolution, &mut text);
    let _ = writeln!(
        text,
        "Cache: {} to fetch ({}). Pack: {}, {}, {} ({}). Shipped before: {}, {} ({}).",
        counted(totals.blobs_to_fetch as u64, "blob", "blobs"),
        mebibytes(totals.bytes_to_fetch),
        counted(totals.blobs_to_pack as u64, "blob", "blobs"),
        counted(totals.manifests_to_pack as u64, "manifest", "manifests"),
        counted(
            totals.images_to_record as u64,
            "image record",
            "image records"
        ),
        mebibytes(totals.bytes_to_pack),
        counted(totals.blobs_to_skip as u64, "blob", "blobs"),
        counted(totals.manifests_to_skip as u64, "manifest", "manifests"),
        mebibytes(totals.bytes_to_skip),
    );
    match layout {
        _ if plan.is_empty() && prepared.resolution.images.is_empty() => {
            let _ = writeln!(
                text,
                "Nothing to deliver: no image of the image set could be read from its source ({} failed).",
                prepared.resolution.failures.len()
            );
        }
        _ if plan.is_empty() && !prepared.resolution.failures.is_empty() => {
            let _ = writeln!(
                text,
                "Nothing to deliver: every image that could be read was shipped in an earlier delivery; {} could not be read from its source.",
                prepared.resolution.failures.len()
            );
        }
        _ if plan.is_empty() => {
            let _ = writeln!(
                text,
                "Nothing to deliver: every blob, manifest and image of the image set was shipped in an earlier delivery."
            );
        }
        Some(layout) => {
            let _ = writeln!(text, "{}", describe_delivery(&prepared.settings, layout));
            for warning in &layout.warnings {
                let _ = writeln!(text, "warning: {warning}");
            }
        }
        None => {}
    }
    text
}

fn render_markdown(prepared: &DiskPlan, layout: Option<&DeliveryLayout>) -> String {
    let mut text = String::from(
        "### ferry plan (mirror to disk)\n\n| | image | place in the delivery | reason | actions | bytes |\n|---|---|---|---|---|---|\n",
    );
    for image in &prepared.plan.images {
        let marker = match image.change {
            ferry_planner::ImageChange::New => "+",
            ferry_planner::ImageChange::Changed => "~",
            ferry_planner::ImageChange::Unchanged => "=",
        };
        let _ = writeln!(
            text,
            "| {marker} | `{}` | `{}` | {} | {} | {} |",
            image.name,
            image.destination,
            image.reason.as_deref().unwrap_or("shipped before"),
            image.actions,
            mebibytes(image.bytes)
        );
    }
    for failure in &prepared.resolution.failures {
        let _ = writeln!(
            text,
            "| ! | `{}` | | {} | | |",
            failure.name,
            failure.reason()
        );
    }
    let _ = writeln!(text);
    match layout {
        _ if prepared.plan.is_empty() => {
            let _ = writeln!(text, "**Nothing to deliver.**");
        }
        Some(layout) => {
            let _ = writeln!(
                text,
                "**{}**",
                describe_delivery(&prepared.settings, layout)
            );
        }
        None => {}
    }
    text
}

/// The plan document: the plan, the delivery it makes, and what `apply`
/// runs it from (what `--format json` prints and `--out` saves).
fn plan_document(
    arguments: &MirrorArgs,
    prepared: &DiskPlan,
    layout: Option<&DeliveryLayout>,
) -> PlanDocument {
    let mut document = PlanDocument::new(prepared.plan.clone());
    document.delivery =
        layout
            .filter(|_| !prepared.plan.is_empty())
            .map(|layout| ferry_planner::PlannedDelivery {
                number: prepared.settings.delivery,
                previous: prepared.settings.previous,
                bytes: layout.total_bytes,
                segments: layout
                    .segments
                    .iter()
                    .map(|segment| ferry_planner::PlannedSegment {
                        file: segment.file_name.clone(),
                        bytes: segment.bytes,
                        entries: segment.entries,
                    })
                    .collect(),
                warnings: layout.warnings.clone(),
            });
    document.apply = Some(saved_plan::apply_inputs(
        arguments,
        &prepared.config_text,
        &prepared.state_fingerprint,
        &prepared.resolution,
        to_disk::delivery_keys(&prepared.plan),
    ));
    document
}
