//! The disk workflows on the command line.
//!
//! - Mirror-to-disk (`ferry mirror|plan -c isc.yaml file://DIR`): resolve
//!   through registries.conf, compile the delivery graph (fetch, pack,
//!   record), diff it against the workspace's earlier deliveries
//!   (`DIR/working-dir/state.db`) and the cache, then fetch what the cache
//!   lacks and write the next delivery as `mirror_NNNNNN.tar` segments in
//!   DIR. The delivery is recorded only after every segment is in place.
//! - Disk-to-mirror (`ferry mirror -c isc.yaml --from file://DIR
//!   docker://REG`): [`from_deliveries`] verifies and imports the
//!   deliveries into the cache and resolves the configuration's images from
//!   them, with no network but the destination; the rest is the
//!   mirror-to-mirror path (plan against the destination, push, cluster
//!   resources). `ferry plan --from` verifies the same way and imports
//!   nothing: the deliveries' manifests are read into memory and the cache
//!   is only read.
//! - `ferry verify file://DIR`: re-hashes every byte of every delivery.

use std::collections::{BTreeMap, BTreeSet};
use std::fmt::Write as _;
use std::path::{Path, PathBuf};
use std::process::ExitCode;

use ferry_archive::{DeliveryLayout, SurveyedDelivery};
use ferry_executor::disk::{self, DeliveredManifests, DeliveryContents, DeliverySettings};
use ferry_executor::resolve::{self, Resolution};
use ferry_planner::{
    Action, ActionGraph, ActionKey, Destination, Plan, StateSnapshot, compile_archive, plan,
};
use ferry_registry::{RegistriesConf, RegistryClient};
use ferry_schemas::{Digest, ImageSetConfiguration};
use ferry_store::{BlobStore, Cache, DeliveryRecord, RunLock, WorkspaceState};

use crate::exit_status;
use crate::logging;
use crate::mirror::{
    Deliveries, LocalSource, MirrorArgs, PlanFile, SavedPlan, Sourced, Staleness, error,
    load_config, load_registries, mebibytes, planned_images, render_image_lines, report_failures,
    resolve_options, runtime, source_client, stale_plan, unix_now, working_dir, write_file,
};

/// oc-mirror's default `archiveSize`, in GiB.
const DEFAULT_ARCHIVE_GIB: u64 = 500;

/// What a mirror-to-disk command does after planning.
pub enum Mode {
    Plan {
        format: String,
        out: Option<PathBuf>,
        detailed_exitcode: bool,
    },
    Mirror {
        dry_run: bool,
    },
}

fn cache_folder(arguments: &MirrorArgs) -> PathBuf {
    arguments
        .cache_dir
        .clone()
        .unwrap_or_else(crate::cache::default_cache_dir)
}

/// Takes `workspace` (a `working-dir`) for this run when it `writes`, so
/// that a second run is refused at once naming the first; a run that only
/// reads (a plan) takes nothing and says when another run holds it.
pub(crate) fn hold_workspace(workspace: &Path, writes: bool) -> Result<Option<RunLock>, ExitCode> {
    if !writes {
        if let Some(holder) = RunLock::holder(workspace) {
            eprintln!(
                "warning: workspace {} in use by pid {} since {}: this plan reads its state as it is now, and that run may still change it",
                workspace.display(),
                holder.pid,
                holder.since
            );
        }
        return Ok(None);
    }
    let now = time::OffsetDateTime::now_utc();
    let since = format!(
        "{:04}-{:02}-{:02} {:02}:{:02}:{:02} UTC",
        now.year(),
        u8::from(now.month()),
        now.day(),
        now.hour(),
        now.minute(),
        now.second()
    );
    // The subcommand only: the rest of a command line may name secrets.
    let command: Vec<String> = std::env::args().take(2).collect();
    RunLock::acquire(workspace, &since, &command.join(" "))
        .map(Some)
        .map_err(error)
}

/// [`hold_workspace`] for mirror-to-mirror and disk-to-mirror: the
/// workspace of `--workspace` or `--from`; `mirror` and `apply` write.
pub(crate) fn hold_workspace_of(arguments: &MirrorArgs) -> Result<Option<RunLock>, ExitCode> {
    let Some(folder) = arguments
        .from
        .as_deref()
        .or(arguments.workspace.as_deref())
        .and_then(|folder| folder.strip_prefix("file://"))
        .filter(|folder| !folder.is_empty())
    else {
        return Ok(None);
    };
    let folder = PathBuf::from(folder);
    refuse_filesystem_root(&folder)?;
    hold_workspace(
        &working_dir(&folder.to_string_lossy()),
        arguments.run_log.is_some(),
    )
}

/// Removes what killed writers left in the cache's `tmp/` (never a running
/// writer's file, in this process or another sharing the cache).
fn clean_cache_temporary(cache: &Cache) {
    match cache.clean_temporary() {
        Ok(0) => {}
        Ok(count) => eprintln!(
            "removed {count} temporary files that interrupted runs left in {}",
            cache.root().join("tmp").display()
        ),
        Err(cause) => eprintln!(
            "warning: cannot clean the temporary files in {}: {cause}",
            cache.root().join("tmp").display()
        ),
    }
}

/// A delivery folder holds `working-dir/` and the segments: the
/// filesystem root (`file:///`) is never one.
fn refuse_filesystem_root(folder: &Path) -> Result<(), ExitCode> {
    let root = folder.components().all(|part| {
        matches!(
            part,
            std::path::Component::RootDir | std::path::Component::CurDir
        )
    });
    if folder.has_root() && root {
        return Err(error(format!(
            "file://{} names the filesystem root, which cannot hold deliveries or a workspace (ferry would write {}working-dir there); name a folder of its own, e.g. file:///srv/ferry",
            folder.display(),
            folder.display()
        )));
    }
    Ok(())
}

/// Everything prepared before a delivery is written.
struct DiskPlan {
    config_text: String,
    folder: PathBuf,
    workspace: PathBuf,
    client: RegistryClient,
    resolution: Resolution,
    cache: Cache,
    state: WorkspaceState,
    graph: ActionGraph,
    plan: Plan,
    /// The plan against the delivery history only (the cache taken as
    /// empty): what the delivery embeds.
    delivery_plan: Plan,
    settings: DeliverySettings,
    /// blake3 of the delivery history the plan was made against.
    state_fingerprint: String,
    /// One run per workspace and delivery folder: held until the run ends.
    _run_lock: Option<RunLock>,
}

fn prepare(arguments: &MirrorArgs, folder: &str, mode: &Mode) -> Result<DiskPlan, ExitCode> {
    let Some(config_path) = &arguments.config else {
        return Err(error("use the --config flag, it is mandatory"));
    };
    if arguments.from.is_some() || arguments.workspace.is_some() {
        return Err(error(
            "when destination is file://, mirrorToDisk workflow is assumed, and the --workspace or --from flags cannot be used: the workspace is DIR/working-dir",
        ));
    }
    if folder.is_empty() {
        return Err(error("name a folder: file://DIR"));
    }
    let folder = PathBuf::from(folder);
    refuse_filesystem_root(&folder)?;
    let workspace = working_dir(&folder.to_string_lossy());
    std::fs::create_dir_all(&workspace)
        .map_err(|cause| error(format!("cannot create {}: {cause}", workspace.display())))?;
    let run_lock = hold_workspace(&workspace, matches!(mode, Mode::Mirror { .. }))?;
    // A run that writes a delivery keeps its log in working-dir/logs/.
    let logs_folder =
        matches!(mode, Mode::Mirror { dry_run: false }).then(|| workspace.join("logs"));
    logging::init(&arguments.log_level, logs_folder.as_deref()).map_err(error)?;
    tracing::info!(
        "ferry {} mirror to disk: configuration {}, folder {}",
        env!("CARGO_PKG_VERSION"),
        config_path.display(),
        folder.display()
    );
    let (config_text, loaded) = load_config(config_path)?;
    let registries = load_registries(arguments)?;
    let options = resolve_options(arguments, "");
    let (requests, blocked) = resolve::additional_image_requests(&loaded.config.mirror, &options);
    let client = source_client(arguments, &registries, &requests, None);
    let mut resolution =
        runtime()?.block_on(resolve::resolve(&client, &registries, &requests, &options));
    resolution.blocked = blocked;

    let cache_path = cache_folder(arguments);
    let cache = Cache::open(&cache_path).map_err(|cause| {
        error(format!(
            "cannot open the cache {}: {cause}",
            cache_path.display()
        ))
    })?;
    if matches!(mode, Mode::Mirror { dry_run: false }) {
        clean_cache_temporary(&cache);
    }
    let mut state = WorkspaceState::open(workspace.join("state.db")).map_err(error)?;
    let writes = matches!(mode, Mode::Mirror { dry_run: false });
    let rebuilt = reconcile_folder(&folder, &mut state, writes)?;
    let history = History::read(&state, arguments.since, &rebuilt).map_err(error)?;
    let History {
        deliveries,
        shipped,
        images: delivered_images,
        baseline,
    } = history;
    let graph = compile_archive(&resolution.images);
    let mut snapshot = StateSnapshot {
        done: shipped
            .iter()
            .filter_map(|key| ActionKey::from_hex(key))
            .collect(),
        tags: delivered_images
            .into_iter()
            .map(|(name, digest)| ((name, String::new()), digest))
            .collect(),
        missing: BTreeSet::new(),
        missing_blobs: BTreeSet::new(),
    };
    // What the delivery carries is planned against the history alone:
    // nothing in a delivery may depend on what the cache holds.
    let delivery_plan = plan(&graph, &snapshot);
    // A blob the cache holds needs no fetch.
    for node in graph.graph.node_indices() {
        if let Action::FetchBlob { digest, .. } = graph.action(node)
            && cache.blobs().contains(digest)
        {
            snapshot.done.insert(graph.action(node).key());
        }
    }
    let plan = plan(&graph, &snapshot);
    let state_fingerprint = {
        let mut hasher = blake3::Hasher::new();
        for delivery in &deliveries {
            hasher.update(format!("{delivery:?}\n").as_bytes());
        }
        // What was shipped (a sorted set), not what the cache holds:
        // another workspace sharing the cache changes that without
        // changing the plan.
        for key in &shipped {
            hasher.update(key.as_bytes());
        }
        hasher.finalize().to_hex().to_string()
    };
    let max_segment_bytes = arguments.max_segment_bytes.unwrap_or_else(|| {
        let gibibytes = loaded
            .config
            .archive_size
            .filter(|size| *size > 0)
            .unwrap_or(DEFAULT_ARCHIVE_GIB);
        gibibytes.saturating_mul(1 << 30)
    });
    let settings = DeliverySettings {
        delivery: deliveries.last().map_or(1, |last| last.number + 1),
        previous: baseline,
        first_segment: deliveries
            .iter()
            .map(|delivery| delivery.last_segment + 1)
            .max()
            .unwrap_or(1),
        max_segment_bytes,
        strict: arguments.strict_archive,
    };
    Ok(DiskPlan {
        config_text,
        folder,
        workspace,
        client,
        resolution,
        cache,
        state,
        graph,
        plan,
        delivery_plan,
        settings,
        state_fingerprint,
        _run_lock: run_lock,
    })
}

/// The workspace's record of its deliveries as a plan needs it: what the
/// state records, plus the deliveries rebuilt from the folder's segments
/// that a run without writes only holds in memory.
struct History {
    deliveries: Vec<DeliveryRecord>,
    /// Keys shipped before the `--since` date (all without it).
    shipped: BTreeSet<String>,
    /// Each image name with the digest the newest delivery naming it gave.
    images: BTreeMap<String, Digest>,
    /// The delivery the next one builds on.
    baseline: Option<u32>,
}

impl History {
    /// The state's record, with `rebuilt` deliveries it does not hold yet.
    fn read(
        state: &WorkspaceState,
        since: Option<i64>,
        rebuilt: &[Rebuilt],
    ) -> ferry_store::Result<Self> {
        let mut deliveries = state.deliveries()?;
        let mut shipped = state.shipped_keys(since)?;
        let mut images = state.delivered_images()?;
        let mut baseline = state.baseline_delivery(since)?;
        let newest_recorded = deliveries.last().map(|delivery| delivery.number);
        let recorded: BTreeSet<u32> = deliveries.iter().map(|delivery| delivery.number).collect();
        for found in rebuilt {
            if recorded.contains(&found.record.number) {
                continue;
            }
            deliveries.push(found.record.clone());
            let before_since = since.is_none_or(|since| found.record.created_at < since);
            if before_since {
                shipped.extend(found.keys.iter().cloned());
                baseline = baseline.max(Some(found.record.number));
            }
            for (name, digest) in &found.images {
                if newest_recorded.is_none_or(|newest| found.record.number > newest) {
                    images.insert(name.clone(), digest.clone());
                } else {
                    images.entry(name.clone()).or_insert_with(|| digest.clone());
                }
            }
        }
        deliveries.sort_by_key(|delivery| delivery.number);
        Ok(History {
            deliveries,
            shipped,
            images,
            baseline,
        })
    }
}

/// A delivery found whole in the folder that the workspace state does not
/// record, with its record rebuilt from its segments.
struct Rebuilt {
    record: DeliveryRecord,
    keys: Vec<String>,
    images: Vec<(String, Digest)>,
    segments: Vec<String>,
}

/// The record a delivery's segments describe: the pack and record actions
/// it carried out, computed from its segment tables and image list exactly
/// as the planner keys them.
fn rebuild_record(folder: &Path, found: &ferry_archive::DeliveryContents) -> Rebuilt {
    let mut keys = BTreeSet::new();
    for entry in &found.content {
        let action = match &entry.media_type {
            Some(media_type) => Action::PackManifest {
                digest: entry.digest.clone(),
                media_type: media_type.clone(),
                size: entry.size,
                source: ferry_planner::Source::Cache,
            },
            None => Action::PackBlob {
                digest: entry.digest.clone(),
                size: entry.size,
            },
        };
        keys.insert(action.key().to_hex());
    }
    for image in &found.summary.images {
        let action = Action::RecordImage {
            name: image.name.clone(),
            digest: image.digest.clone(),
        };
        keys.insert(action.key().to_hex());
    }
    // The archive holds no clock: the first segment's modification time
    // stands in for when the delivery was made (it only matters to
    // `--since`).
    let created_at = found
        .summary
        .segments
        .first()
        .and_then(|name| std::fs::metadata(folder.join(name)).ok())
        .and_then(|metadata| metadata.modified().ok())
        .and_then(|modified| modified.duration_since(std::time::UNIX_EPOCH).ok())
        .map_or(0, |elapsed| elapsed.as_secs() as i64);
    let first_segment = found.segment_numbers.iter().copied().min().unwrap_or(0);
    Rebuilt {
        record: DeliveryRecord {
            number: found.summary.delivery,
            previous: found.summary.previous,
            first_segment,
            last_segment: found
                .segment_numbers
                .iter()
                .copied()
                .max()
                .unwrap_or(first_segment),
            bytes: found.summary.bytes,
            created_at,
        },
        keys: keys.into_iter().collect(),
        images: found
            .summary
            .images
            .iter()
            .map(|image| (image.name.clone(), image.digest.clone()))
            .collect(),
        segments: found.summary.segments.clone(),
    }
}

/// Squares the folder's segment files with the workspace state before a
/// delivery is planned. A segment no recorded delivery covers is either
/// - part of a whole delivery (a lost or emptied state, segments copied
///   into a fresh folder, a run killed after publishing them): its record
///   is rebuilt from the segments, never the segments removed;
/// - part of the delivery an interrupted run of this workspace was
///   publishing (the state's pending note covers it) and not whole: that
///   run's unfinished work, removed;
/// - anything else: refused, naming the files and what to do, for ferry
///   cannot tell whose they are.
///
/// With `writes`, rebuilt records are stored and unfinished work removed;
/// otherwise (a plan, a dry run) both are only announced, and the rebuilt
/// deliveries are returned for the plan to count.
fn reconcile_folder(
    folder: &Path,
    state: &mut WorkspaceState,
    writes: bool,
) -> Result<Vec<Rebuilt>, ExitCode> {
    if !folder.is_dir() {
        return Ok(Vec::new());
    }
    let recorded = state.deliveries().map_err(error)?;
    let covered = |number: u32| {
        recorded
            .iter()
            .any(|delivery| (delivery.first_segment..=delivery.last_segment).contains(&number))
    };
    let pending = state.pending_delivery().map_err(error)?;
    let surveyed =
        ferry_archive::survey_folder(folder, &|number| !covered(number)).map_err(|cause| {
            error(format!(
                "cannot read the segments in {}: {cause}",
                folder.display()
            ))
        })?;
    let state_path = state.path().to_owned();
    let mut rebuilt = Vec::new();
    let mut unfinished = Vec::new();
    let mut problems = Vec::new();
    for found in surveyed {
        match found {
            SurveyedDelivery::Whole(contents) => {
                let number = contents.summary.delivery;
                if let Some(other) = recorded.iter().find(|delivery| delivery.number == number) {
                    problems.push(format!(
                        "{} hold a delivery {number}, but the workspace state records its delivery {number} as mirror_{:06}.tar to mirror_{:06}.tar: they come from another workspace",
                        contents.summary.segments.join(", "),
                        other.first_segment,
                        other.last_segment
                    ));
                    continue;
                }
                rebuilt.push(rebuild_record(folder, &contents));
            }
            SurveyedDelivery::NotWhole {
                delivery,
                present,
                problem,
            } => {
                let own = pending.is_some_and(|(number, first, last)| {
                    number == delivery
                        && present.iter().all(|name| {
                            ferry_archive::segment_number(name)
                                .is_some_and(|segment| (first..=last).contains(&segment))
                        })
                });
                if own {
                    unfinished.extend(present);
                } else {
                    problems.push(format!(
                        "{} belong to delivery {delivery}, which no record covers and which is not whole: {problem}",
                        present.join(", ")
                    ));
                }
            }
            SurveyedDelivery::Unreadable { file_name, problem } => {
                problems.push(format!("{file_name}, which no record covers: {problem}"));
            }
        }
    }
    rebuilt.sort_by_key(|found| found.record.number);
    let what_to_do = "ferry removes no segment it cannot prove to be its own unfinished work: bring the missing segments, or move these files out of the folder, and run again";
    if writes {
        if !problems.is_empty() {
            return Err(error(format!(
                "segments in {} that the workspace state {} does not record:
  {}
{what_to_do}",
                folder.display(),
                state_path.display(),
                problems.join(
                    "
  "
                )
            )));
        }
        for found in &rebuilt {
            state
                .record_delivery(&found.record, &found.keys, &found.images)
                .map_err(error)?;
            eprintln!(
                "rebuilt the record of delivery {} ({}) from its segments: the workspace state {} did not have it",
                found.record.number,
                found.segments.join(", "),
                state_path.display()
            );
        }
        for name in &unfinished {
            let path = folder.join(name);
            std::fs::remove_file(&path)
                .map_err(|cause| error(format!("cannot remove {}: {cause}", path.display())))?;
            eprintln!(
                "removed {name}: an interrupted run of this workspace published it, and its delivery is not whole"
            );
        }
        if pending.is_some() {
            state.clear_pending_delivery().map_err(error)?;
        }
        return Ok(Vec::new());
    }
    for found in &rebuilt {
        eprintln!(
            "warning: the workspace state {} does not record delivery {} ({}); this plan counts it as shipped, rebuilt from its segments, and `ferry mirror` records it so",
            state_path.display(),
            found.record.number,
            found.segments.join(", ")
        );
    }
    if !unfinished.is_empty() {
        eprintln!(
            "warning: {} in {}: an interrupted run of this workspace published them, and their delivery is not whole; `ferry mirror` removes them",
            unfinished.join(", "),
            folder.display()
        );
    }
    for problem in &problems {
        eprintln!("warning: in {}: {problem}", folder.display());
    }
    if !problems.is_empty() {
        eprintln!(
            "warning: `ferry mirror` refuses to write the next delivery until then: {what_to_do}"
        );
    }
    Ok(rebuilt)
}

/// The version of the document a delivery embeds as `plan.json`. 2: the
/// plan is made against the delivery history alone, so its fetch actions
/// are those of every blob packed, whatever the cache held (version 1
/// listed only the blobs the cache lacked).
const EMBEDDED_PLAN_VERSION: u32 = 2;

/// The plan as the delivery carries it: planned against the delivery
/// history alone (never the cache), with no source hosts (they differ by
/// site and say nothing about the content), so the same content and
/// history give the same bytes.
fn embedded_plan(plan: &Plan, settings: &DeliverySettings) -> String {
    fn strip_sources(value: &mut serde_json::Value) {
        match value {
            serde_json::Value::Object(map) => {
                map.remove("source");
                map.values_mut().for_each(strip_sources);
            }
            serde_json::Value::Array(items) => items.iter_mut().for_each(strip_sources),
            _ => {}
        }
    }
    let mut document = serde_json::json!({
        "version": EMBEDDED_PLAN_VERSION,
        "delivery": settings.delivery,
        "previous": settings.previous,
        "plan": plan,
    });
    strip_sources(&mut document);
    let mut text = serde_json::to_string_pretty(&document).unwrap_or_default();
    text.push('\n');
    text
}

fn contents(prepared: &DiskPlan, left_out: &BTreeSet<String>) -> DeliveryContents {
    disk::delivery_contents(
        &prepared.plan,
        &prepared.graph,
        &prepared.resolution,
        left_out,
        &prepared.settings,
        &prepared.config_text,
        &embedded_plan(&prepared.delivery_plan, &prepared.settings),
    )
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
        "Plan: {} images for the next delivery: {changed} new or changed, {} already shipped",
        plan.images.len(),
        plan.images.len() - changed
    );
    render_image_lines(plan, &prepared.resolution, &mut text);
    let _ = writeln!(
        text,
        "Cache: {} blobs to fetch ({}). Pack: {} blobs, {} manifests, {} image records ({}). Shipped before: {} blobs, {} manifests ({}).",
        totals.blobs_to_fetch,
        mebibytes(totals.bytes_to_fetch),
        totals.blobs_to_pack,
        totals.manifests_to_pack,
        totals.images_to_record,
        mebibytes(totals.bytes_to_pack),
        totals.blobs_to_skip,
        totals.manifests_to_skip,
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
            "| ! | `{}` | | not resolved: {} | | |",
            failure.name, failure.message
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

fn render_json(prepared: &DiskPlan, layout: Option<&DeliveryLayout>) -> String {
    let mut document = ferry_planner::PlanDocument::new(prepared.plan.clone());
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
    let mut text = serde_json::to_string_pretty(&document).unwrap_or_default();
    text.push('\n');
    text
}

/// `ferry plan|mirror|apply ... file://DIR`.
pub fn mirror_to_disk(arguments: &MirrorArgs, folder: &str, mode: &Mode) -> ExitCode {
    let mut prepared = match prepare(arguments, folder, mode) {
        Ok(prepared) => prepared,
        Err(code) => return code,
    };
    let planned = contents(&prepared, &BTreeSet::new());
    let layout = match ferry_archive::layout(&planned.input) {
        Ok(layout) => layout,
        Err(cause) => return error(cause),
    };
    match mode {
        Mode::Plan {
            format,
            out,
            detailed_exitcode,
        } => {
            let output = match format.as_str() {
                "json" => render_json(&prepared, Some(&layout)),
                "markdown" => render_markdown(&prepared, Some(&layout)),
                _ => render_text(&prepared, Some(&layout)),
            };
            print!("{output}");
            if let Some(out) = out
                && let Err(code) = save_plan(arguments, &prepared, out)
            {
                return code;
            }
            if !prepared.resolution.failures.is_empty() {
                return exit_status::ERROR.into();
            }
            if *detailed_exitcode && !prepared.plan.is_empty() {
                return exit_status::PLAN_HAS_CHANGES.into();
            }
            ExitCode::SUCCESS
        }
        Mode::Mirror { dry_run: true } => {
            eprint!("{}", render_text(&prepared, Some(&layout)));
            dry_run(&prepared)
        }
        Mode::Mirror { dry_run: false } => {
            eprint!("{}", render_text(&prepared, Some(&layout)));
            write_delivery(arguments, &mut prepared)
        }
    }
}

/// What a saved plan must match: the pack and record keys (a fetch depends
/// on the cache, not on what the delivery holds).
fn delivery_keys(plan: &Plan) -> Vec<String> {
    plan.actions
        .iter()
        .filter(|planned| !matches!(planned.action, Action::FetchBlob { .. }))
        .map(|planned| planned.key.to_hex())
        .collect()
}

/// `ferry plan --out FILE file://DIR`: the plan file `ferry apply` runs.
fn save_plan(arguments: &MirrorArgs, prepared: &DiskPlan, out: &Path) -> Result<(), ExitCode> {
    let file = PlanFile {
        version: 1,
        config: arguments.config.clone().unwrap_or_default(),
        config_text: prepared.config_text.clone(),
        destination: format!("file://{}", prepared.folder.display()),
        workspace: String::new(),
        from: String::new(),
        state_fingerprint: prepared.state_fingerprint.clone(),
        images: planned_images(&prepared.resolution),
        action_keys: delivery_keys(&prepared.plan),
        plan: prepared.plan.clone(),
    };
    let text = serde_json::to_string_pretty(&file).unwrap_or_default();
    write_file(out, &(text + "\n"))
}

/// `ferry apply PLANFILE` for a mirror-to-disk plan: writes exactly the
/// delivery the plan showed, or refuses a stale plan naming the cause.
pub fn apply_saved(saved: &SavedPlan, arguments: &MirrorArgs) -> ExitCode {
    let Some(folder) = saved.destination.strip_prefix("file://") else {
        return error("the plan names no file:// folder");
    };
    let mut arguments = arguments.clone();
    arguments.config = Some(saved.config.clone());
    arguments.destination = Some(saved.destination.clone());
    arguments.workspace = None;
    let mode = Mode::Mirror { dry_run: false };
    let mut prepared = match prepare(&arguments, folder, &mode) {
        Ok(prepared) => prepared,
        Err(code) => return code,
    };
    if let Some(stale) = stale_plan(
        saved,
        &prepared.state_fingerprint,
        &prepared.resolution,
        &delivery_keys(&prepared.plan),
        Staleness {
            state: "the workspace's deliveries changed since the plan was made (another delivery was written)",
            actions: "the delivery would no longer hold what the plan showed",
        },
    ) {
        return error(stale);
    }
    eprint!("{}", render_text(&prepared, None));
    write_delivery(&arguments, &mut prepared)
}

/// oc-mirror's `mapping.txt` (every image, `source=place in the archive`)
/// and `missing.txt` (the images the cache does not hold whole yet).
fn dry_run(prepared: &DiskPlan) -> ExitCode {
    let mut mapping = String::new();
    let mut missing = String::new();
    for (image, nodes) in prepared
        .resolution
        .images
        .iter()
        .zip(&prepared.graph.images)
    {
        let line = format!(
            "docker://{}@{}=file://{}/{}\n",
            image.source,
            image.top,
            prepared.folder.display(),
            nodes.destination
        );
        let cached = nodes
            .nodes
            .iter()
            .all(|node| match prepared.graph.action(*node) {
                Action::FetchBlob { digest, .. } => prepared.cache.blobs().contains(digest),
                _ => true,
            });
        if !cached {
            missing.push_str(&line);
        }
        mapping.push_str(&line);
    }
    let folder = prepared.workspace.join("dry-run");
    let _ = std::fs::remove_dir_all(&folder);
    for (name, text) in [("mapping.txt", &mapping), ("missing.txt", &missing)] {
        if let Err(code) = write_file(&folder.join(name), text) {
            return code;
        }
    }
    eprintln!(
        "dry run: wrote {} and {} ({} of {} images not wholly in the cache); nothing was fetched or written",
        folder.join("mapping.txt").display(),
        folder.join("missing.txt").display(),
        missing.lines().count(),
        mapping.lines().count()
    );
    ExitCode::SUCCESS
}

fn write_delivery(arguments: &MirrorArgs, prepared: &mut DiskPlan) -> ExitCode {
    let runtime = match runtime() {
        Ok(runtime) => runtime,
        Err(code) => return code,
    };
    let parallelism = (arguments.parallel_images * arguments.parallel_layers) as usize;
    let fetched = runtime.block_on(disk::fetch_blobs(
        &prepared.plan,
        &prepared.client,
        prepared.cache.blobs(),
        parallelism,
    ));
    if fetched.fetched > 0 {
        eprintln!(
            "fetched {} blobs ({}) into {}",
            fetched.fetched,
            mebibytes(fetched.bytes),
            prepared.cache.root().display()
        );
    }
    let failed = disk::failed_images(&prepared.graph, &fetched.failed);
    let left_out: BTreeSet<String> = failed.keys().cloned().collect();
    if let Err(cause) = disk::cache_manifests(&mut prepared.cache, &prepared.resolution, unix_now())
    {
        return error(format!("cannot store manifests in the cache: {cause}"));
    }
    let delivery = contents(prepared, &left_out);
    let mut written = None;
    if delivery.keys.is_empty() {
        eprintln!("Nothing to deliver: no delivery was written.");
    } else {
        // Noted first, so that a rerun after a kill while the segments
        // are published knows them for this run's unfinished work.
        let planned_last = ferry_archive::layout(&delivery.input)
            .ok()
            .and_then(|layout| layout.segments.last().map(|segment| segment.number))
            .unwrap_or(prepared.settings.first_segment);
        if let Err(cause) = prepared.state.begin_delivery(
            prepared.settings.delivery,
            prepared.settings.first_segment,
            planned_last,
        ) {
            return error(cause);
        }
        let layout = match ferry_archive::write_delivery(
            &delivery.input,
            prepared.cache.blobs(),
            &prepared.folder,
        ) {
            Ok(layout) => layout,
            Err(cause) => {
                // The write took back what it had published.
                let _ = prepared.state.clear_pending_delivery();
                return error(format!("{cause}; no delivery was recorded"));
            }
        };
        let record = DeliveryRecord {
            number: prepared.settings.delivery,
            previous: prepared.settings.previous,
            first_segment: prepared.settings.first_segment,
            last_segment: layout
                .segments
                .last()
                .map_or(prepared.settings.first_segment, |segment| segment.number),
            bytes: layout.total_bytes,
            created_at: unix_now(),
        };
        if let Err(cause) =
            prepared
                .state
                .record_delivery(&record, &delivery.keys, &delivery.images)
        {
            return error(cause);
        }
        for warning in &layout.warnings {
            eprintln!("warning: {warning}");
        }
        eprintln!(
            "{}\nwritten to {}",
            describe_delivery(&prepared.settings, &layout),
            prepared.folder.display()
        );
        written = Some(layout);
    }

    let mut errors = String::new();
    for failure in &prepared.resolution.failures {
        let _ = writeln!(
            errors,
            "{}: not resolved: {}",
            failure.name, failure.message
        );
    }
    for (name, reason) in &failed {
        let _ = writeln!(errors, "{name}: left out of the delivery: {reason}");
    }
    if written.is_some() {
        eprintln!(
            "carry the new segment files across; on the disconnected side run: ferry mirror -c {} --from file://DIR docker://REGISTRY",
            arguments
                .config
                .as_deref()
                .unwrap_or(Path::new("isc.yaml"))
                .display()
        );
    }
    if errors.is_empty() {
        return ExitCode::SUCCESS;
    }
    report_failures(&prepared.workspace, &errors)
}

/// Disk-to-mirror: verifies the deliveries in `from` and imports them into
/// the cache (or, for `Deliveries::Verify`, keeps their manifests in
/// memory and writes nothing to the cache), then resolves the
/// configuration's images from them.
pub fn from_deliveries(
    arguments: &MirrorArgs,
    from: &str,
    destination: &Destination,
    config: &ImageSetConfiguration,
    deliveries: Deliveries,
) -> Result<Sourced, ExitCode> {
    let Some(folder) = from.strip_prefix("file://") else {
        return Err(error("when --from is used, it must have file:// prefix"));
    };
    let folder = PathBuf::from(folder);
    refuse_filesystem_root(&folder)?;
    if !folder.is_dir() {
        return Err(error(format!("{} is not a folder", folder.display())));
    }
    let workspace = working_dir(&folder.to_string_lossy());
    std::fs::create_dir_all(&workspace)
        .map_err(|cause| error(format!("cannot create {}: {cause}", workspace.display())))?;
    let applied = WorkspaceState::open(workspace.join("state.db"))
        .and_then(|state| state.applied_deliveries(&destination.display()))
        .map_err(error)?;
    let cache_path = cache_folder(arguments);
    let refused =
        |cause: ferry_archive::ArchiveError| error(format!("{cause}\nnothing was pushed"));
    let (mut report, blobs) = match deliveries {
        Deliveries::Import => {
            let cache = Cache::open(&cache_path).map_err(|cause| {
                error(format!(
                    "cannot open the cache {}: {cause}",
                    cache_path.display()
                ))
            })?;
            clean_cache_temporary(&cache);
            let report =
                ferry_archive::import_folder(&folder, &applied, cache.blobs()).map_err(refused)?;
            (report, cache.blobs().clone())
        }
        Deliveries::Verify => (
            ferry_archive::preview_import(&folder, &applied).map_err(refused)?,
            BlobStore::read_only(&cache_path),
        ),
    };
    if report.deliveries.is_empty() && report.images.is_empty() {
        return Err(error(format!(
            "no tar archives matching \"mirror_[0-9]{{6}}\\.tar\" found in \"{}\"",
            folder.display()
        )));
    }
    if !report.deliveries.is_empty() {
        let numbers: Vec<String> = report
            .deliveries
            .iter()
            .map(|delivery| delivery.delivery.to_string())
            .collect();
        match deliveries {
            Deliveries::Import => eprintln!(
                "verified deliveries {}: {} blobs and manifests ({}) new to the cache {}",
                numbers.join(", "),
                report.blobs_imported,
                mebibytes(report.bytes_imported),
                blobs.root().display()
            ),
            Deliveries::Verify => eprintln!(
                "verified deliveries {}: nothing imported, the cache {} is left as it is",
                numbers.join(", "),
                blobs.root().display()
            ),
        }
    }
    let mut delivered = match deliveries {
        Deliveries::Import => DeliveredManifests::imported(blobs.clone()),
        Deliveries::Verify => {
            DeliveredManifests::held(std::mem::take(&mut report.manifests), blobs.clone())
        }
    };
    let options = resolve_options(arguments, &destination.prefix);
    let (requests, blocked) = resolve::additional_image_requests(&config.mirror, &options);
    let client = || {
        source_client(
            arguments,
            &RegistriesConf::default(),
            &[],
            (!arguments.dest_tls_verify).then_some(destination.registry.as_str()),
        )
    };
    // A client of its own: its pooled connections end with this runtime.
    let recovered = crate::mirror::runtime()?.block_on(disk::recover_from_destination(
        &client(),
        &destination.registry,
        &requests,
        &report.images,
        &mut delivered,
        arguments.remove_signatures,
    ));
    if recovered > 0 {
        eprintln!(
            "{recovered} manifests of images an earlier delivery brought were missing from the cache {}: read from the destination{}",
            blobs.root().display(),
            match deliveries {
                Deliveries::Import => "",
                Deliveries::Verify => " (kept in memory, not stored)",
            }
        );
    }
    let mut resolution = disk::resolve_from_deliveries(
        &requests,
        &report.images,
        &report.manifest_media_types,
        &delivered,
        arguments.remove_signatures,
    );
    resolution.blocked = blocked;
    Ok(Sourced {
        workspace,
        client: client(),
        resolution,
        checked: Default::default(),
        local: Some(LocalSource {
            blobs,
            deliveries: report
                .deliveries
                .iter()
                .map(|delivery| delivery.delivery)
                .collect(),
        }),
    })
}

/// `ferry verify`.
#[derive(Debug, clap::Args)]
pub struct VerifyArgs {
    /// The folder with the deliveries: `file://DIR`.
    folder: String,
}

/// `ferry verify file://DIR`: re-hashes every byte of every delivery.
pub fn verify_command(arguments: &VerifyArgs) -> ExitCode {
    let Some(folder) = arguments.folder.strip_prefix("file://") else {
        return error("name the folder as file://DIR");
    };
    let folder = PathBuf::from(folder);
    // Deliveries this workspace wrote earlier may have been carried across
    // already; their absence is not an error.
    let state_path = working_dir(&folder.to_string_lossy()).join("state.db");
    let known: BTreeSet<u32> = if state_path.is_file() {
        WorkspaceState::open(&state_path)
            .and_then(|state| state.deliveries())
            .map(|deliveries| deliveries.iter().map(|delivery| delivery.number).collect())
            .unwrap_or_default()
    } else {
        BTreeSet::new()
    };
    match ferry_archive::verify_folder(&folder, &known) {
        Ok(report) => {
            for delivery in &report.deliveries {
                println!(
                    "delivery {}: {} ({} blobs, {} manifests, {} images, {})",
                    delivery.delivery,
                    delivery.segments.join(", "),
                    delivery.blob_count,
                    delivery.manifest_count,
                    delivery.images.len(),
                    mebibytes(delivery.bytes)
                );
            }
            println!(
                "{}: {} deliveries verified: {} entries, {} re-hashed",
                folder.display(),
                report.deliveries.len(),
                report.entries_checked,
                mebibytes(report.bytes_checked)
            );
            ExitCode::SUCCESS
        }
        Err(cause) => error(format!("{}: {cause}", folder.display())),
    }
}
