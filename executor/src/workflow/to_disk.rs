//! Mirror-to-disk: the configuration's images resolved through
//! registries.conf, the delivery graph (fetch, pack, record) compiled and
//! diffed against the workspace's earlier deliveries (`state.db`) and the
//! cache, then what the cache lacks fetched and the next delivery written
//! as `mirror_NNNNNN.tar` segments in the folder. The delivery is recorded
//! only after every segment is in place.
//!
//! Before planning, [`prepare`] squares the folder's segment files with the
//! workspace state (see `reconcile_folder`): deliveries found whole are
//! counted (and, by a run that writes, recorded), an interrupted run's
//! unfinished segments removed, anything else refused. Resolving reuses
//! what the workspace's runs recorded, as mirror-to-mirror does (with
//! `--trust-state`, without asking the sources); with `--verify` the
//! cached blobs the delivery packs are re-hashed and a corrupt one fetched
//! again. Nothing here prints: what the user should read comes back as
//! [`Notice`]s and counts.

use std::collections::{BTreeMap, BTreeSet};
use std::path::{Path, PathBuf};

use ferry_archive::{DeliveryLayout, SurveyedDelivery};
use ferry_planner::{
    Action, ActionGraph, ActionKey, Category, Plan, StateSnapshot, compile_archive,
};
use ferry_registry::RegistryClient;
use ferry_schemas::{Digest, ImageSetConfiguration};
use ferry_store::{BlobStore, Cache, DeliveryRecord, WorkspaceState};

use crate::disk::{self, DeliveryContents, DeliverySettings, FetchOutcome};
use crate::resolve::{self, Recorded, Resolution};
use crate::workflow::collect::{CollectContext, ImageSet, collect};
use crate::workflow::error::{Result, WorkflowError};
use crate::workflow::operators::OperatorImageUse;
use crate::workflow::options::{DiskOptions, PlanOptions, TransferOptions};
use crate::workflow::publish;
use crate::workflow::to_registry::{
    CategoryCount, FailedImage, count_categories, load_registries, resolve_options, source_client,
    unix_now,
};
use crate::workflow::workspace::Workspace;

/// oc-mirror's default `archiveSize`, in GiB.
const DEFAULT_ARCHIVE_GIB: u64 = 500;

/// Something a disk workflow tells the user, in the order it happened.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum Notice {
    /// What ferry did on its own (rebuilt a record, removed a file).
    Info(String),
    /// What the user should look at.
    Warning(String),
}

/// Everything prepared before a delivery is written.
pub struct DiskPlan {
    /// The configuration's text, as the delivery embeds it.
    pub config_text: String,
    /// The folder the segments go to.
    pub folder: PathBuf,
    pub workspace: Workspace,
    pub client: RegistryClient,
    pub resolution: Resolution,
    pub cache: Cache,
    pub state: WorkspaceState,
    pub graph: ActionGraph,
    pub plan: Plan,
    /// The plan against the delivery history only (the cache taken as
    /// empty): what the delivery embeds.
    pub delivery_plan: Plan,
    pub settings: DeliverySettings,
    /// blake3 of the delivery history the plan was made against.
    pub state_fingerprint: String,
    /// What preparing found and did, for the user.
    pub notices: Vec<Notice>,
    /// `inputs.json` of the delivery: what the collectors read.
    pub inputs: Option<Vec<u8>>,
    /// Operator images by name: the bundles and packages needing them
    /// (for the errors file's lines).
    pub operator_images: std::collections::BTreeMap<String, OperatorImageUse>,
}

/// Refuses built images whose new blobs are not in `cache`, the cache the
/// delivery is written from (a collector wrote them elsewhere: a defect).
fn built_blobs_in(built_cache: Option<&BlobStore>, cache: &Cache) -> Result<()> {
    let same_folder = |first: &Path, second: &Path| match (
        std::fs::canonicalize(first),
        std::fs::canonicalize(second),
    ) {
        (Ok(first), Ok(second)) => first == second,
        _ => first == second,
    };
    match built_cache {
        Some(blobs) if same_folder(blobs.root(), cache.blobs().root()) => Ok(()),
        Some(blobs) => Err(WorkflowError::internal(format!(
            "the built images' blobs are in {}, not in the cache {} the delivery is written from",
            blobs.root().display(),
            cache.blobs().root().display()
        ))),
        None => Err(WorkflowError::internal(
            "built images without the cache that holds their blobs",
        )),
    }
}

/// Removes what killed writers left in the cache's `tmp/` (never a running
/// writer's file, in this process or another sharing the cache), and says
/// what it did.
pub fn clean_cache_temporary(cache: &Cache) -> Option<Notice> {
    let folder = cache.root().join("tmp");
    match cache.clean_temporary() {
        Ok(0) => None,
        Ok(count) => Some(Notice::Info(format!(
            "removed {count} temporary files that interrupted runs left in {}",
            folder.display()
        ))),
        Err(cause) => Some(Notice::Warning(format!(
            "cannot clean the temporary files in {}: {cause}",
            folder.display()
        ))),
    }
}

/// Opens the cache folder `path`.
pub fn open_cache(path: &Path) -> Result<Cache> {
    Cache::open(path).map_err(|cause| {
        WorkflowError::environment(format!("cannot open the cache {}: {cause}", path.display()))
    })
}

/// Resolves `configuration`, reconciles `folder` with its workspace state
/// and plans the next delivery. `writes`: the run writes a delivery
/// (`mirror`, `apply`), so it cleans the cache's temporaries and records
/// what reconciling finds; a plan or a dry run only reports it.
pub async fn prepare(
    folder: &Path,
    configuration: &ImageSetConfiguration,
    config_text: &str,
    transfer: &TransferOptions,
    planning: &PlanOptions,
    options: &DiskOptions,
    writes: bool,
) -> Result<DiskPlan> {
    let image_set = collect(
        configuration,
        &CollectContext {
            prefix: String::new(),
            max_nested_paths: planning.max_nested_paths,
            releases: None,
            registry: Some(transfer.catalog_access()),
            cache: Some(open_cache(&options.cache)?.blobs().clone()),
            operators_from_deliveries: false,
            // The original catalogs: disk-to-mirror filters them again.
            deliver_original_catalogs: true,
            plan_only: !writes,
            // What collectors read is packed from the cache, not fetched
            // again.
            cache_read_blobs: true,
            cached_reads: Default::default(),
        },
    )?;
    prepare_image_set(
        folder,
        configuration,
        config_text,
        image_set,
        transfer,
        planning,
        options,
        writes,
    )
    .await
}

/// [`prepare`] for an image set already collected (with the images a
/// collector built, whose new blobs must be in the cache the delivery is
/// written from: `options.cache`). The built images are packed like copied
/// ones: their new blobs read from the cache, their base layers fetched
/// from their registry source like any blob.
#[allow(clippy::too_many_arguments)]
pub async fn prepare_image_set(
    folder: &Path,
    configuration: &ImageSetConfiguration,
    config_text: &str,
    image_set: ImageSet,
    transfer: &TransferOptions,
    planning: &PlanOptions,
    options: &DiskOptions,
    writes: bool,
) -> Result<DiskPlan> {
    let workspace = Workspace::in_folder(folder);
    workspace.create()?;
    let inputs = crate::workflow::releases::inputs_document(&image_set.inputs)?;
    let registries = load_registries(transfer.registries_conf.as_deref())?;
    let resolve_options = resolve_options(planning, "");
    let client = source_client(transfer, &registries, &image_set.images, None);
    let mut state = workspace.open_state()?;
    // What earlier runs resolved: reused when a tag still points to the
    // same digest, or (with --trust-state) without asking the source.
    let recorded = Recorded::load(&state, &image_set.images).map_err(WorkflowError::environment)?;
    let mut resolution = resolve::resolve_with(
        &client,
        &registries,
        &image_set.images,
        &resolve_options,
        &recorded,
    )
    .await;
    resolution.blocked = image_set.blocked;
    crate::workflow::to_registry::refuse_release_failures(&resolution)?;
    // Built images need no resolving: their manifests are in hand, their
    // new blobs in the cache (no fetch is planned for them).
    crate::workflow::built::add_to_resolution(&mut resolution, &image_set.built);
    if writes && !resolution.records.is_empty() {
        state
            .record_resolutions(
                &resolution.records,
                &resolve::manifests_to_record(&resolution, &recorded),
                unix_now(),
            )
            .map_err(WorkflowError::environment)?;
    }

    let cache = open_cache(&options.cache)?;
    if !image_set.built.is_empty() {
        built_blobs_in(image_set.cache.as_ref(), &cache)?;
    }
    let mut notices = Vec::new();
    if writes {
        notices.extend(clean_cache_temporary(&cache));
    }
    let rebuilt = reconcile_folder(folder, &mut state, writes, &mut notices)?;
    let History {
        deliveries,
        shipped,
        images: delivered_images,
        baseline,
    } = History::read(&state, options.since, &rebuilt).map_err(WorkflowError::environment)?;
    let graph = compile_archive(&resolution.images);
    let mut snapshot = StateSnapshot {
        done: shipped.iter().copied().collect(),
        tags: delivered_images
            .into_iter()
            .map(|(name, digest)| ((name, String::new()), digest))
            .collect(),
        ..StateSnapshot::default()
    };
    // What the delivery carries is planned against the history alone:
    // nothing in a delivery may depend on what the cache holds.
    let delivery_plan = ferry_planner::plan(&graph, &snapshot);
    // With --verify, the cached blobs this delivery packs are re-hashed
    // first: a corrupt one is fetched again (and, by a run that writes,
    // removed from the cache so that the fetch can replace it).
    let corrupt = if planning.verify {
        verify_cached_blobs(&delivery_plan, &cache, writes, &mut notices)
    } else {
        BTreeSet::new()
    };
    // A blob the cache holds needs no fetch.
    for node in graph.nodes() {
        if let Action::FetchBlob { digest, .. } = graph.action(node)
            && cache.blobs().contains(digest)
            && !corrupt.contains(digest)
        {
            snapshot.done.insert(graph.key(node));
        }
    }
    let plan = ferry_planner::plan(&graph, &snapshot);
    let state_fingerprint = {
        let mut hasher = blake3::Hasher::new();
        for delivery in &deliveries {
            hasher.update(format!("{delivery:?}\n").as_bytes());
        }
        // What was shipped (a sorted set), not what the cache holds:
        // another workspace sharing the cache changes that without
        // changing the plan.
        for key in &shipped {
            hasher.update(key.to_hex().as_bytes());
        }
        hasher.finalize().to_hex().to_string()
    };
    let max_segment_bytes = options.max_segment_bytes.unwrap_or_else(|| {
        let gibibytes = configuration
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
        strict: options.strict_archive,
    };
    Ok(DiskPlan {
        config_text: config_text.to_owned(),
        folder: folder.to_path_buf(),
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
        notices,
        inputs,
        operator_images: image_set.operator_images,
    })
}

/// `--verify`: re-hashes every cached blob `delivery_plan` fetches (the
/// blobs the delivery packs) and returns those whose bytes no longer match
/// their digest; `remove` takes them out of the cache.
fn verify_cached_blobs(
    delivery_plan: &Plan,
    cache: &Cache,
    remove: bool,
    notices: &mut Vec<Notice>,
) -> BTreeSet<Digest> {
    let blobs = cache.blobs();
    let mut corrupt = BTreeSet::new();
    let (mut checked, mut bytes) = (0usize, 0u64);
    for planned in &delivery_plan.actions {
        let Action::FetchBlob { digest, size, .. } = &planned.action else {
            continue;
        };
        if !blobs.contains(digest) {
            continue;
        }
        checked += 1;
        bytes += size;
        // A blob that cannot be read counts as corrupt: fetched again.
        if blobs.is_intact(digest).unwrap_or(false) {
            continue;
        }
        let what = if !remove {
            "this plan fetches it again; `ferry mirror --verify` replaces it".to_owned()
        } else {
            match blobs.remove(digest) {
                Ok(()) => "removed, fetched again".to_owned(),
                Err(cause) => {
                    format!("it could not be removed ({cause}): run `ferry cache verify --remove`")
                }
            }
        };
        notices.push(Notice::Warning(format!(
            "the copy of blob {digest} in the cache {} is corrupt (its bytes no longer match its digest): {what}",
            blobs.root().display()
        )));
        corrupt.insert(digest.clone());
    }
    notices.push(Notice::Info(format!(
        "verified {checked} cached blobs ({}) the delivery packs: {} corrupt",
        crate::workflow::mebibytes(bytes),
        corrupt.len()
    )));
    corrupt
}

/// What a saved plan must match: the pack and record keys (a fetch depends
/// on the cache, not on what the delivery holds).
pub fn delivery_keys(plan: &Plan) -> Vec<ActionKey> {
    plan.actions
        .iter()
        .filter(|planned| !matches!(planned.action, Action::FetchBlob { .. }))
        .map(|planned| planned.key)
        .collect()
}

/// What the next delivery holds, leaving out whole every image in
/// `left_out`.
fn contents(prepared: &DiskPlan, left_out: &BTreeSet<String>) -> DeliveryContents {
    let mut contents = disk::delivery_contents(
        &prepared.plan,
        &prepared.graph,
        &prepared.resolution,
        left_out,
        &prepared.settings,
        &prepared.config_text,
        &embedded_plan(&prepared.delivery_plan, &prepared.settings),
    );
    contents.input.inputs = prepared.inputs.clone();
    contents
}

/// The segments the planned delivery would be cut into, if every image
/// reaches the cache.
pub fn planned_layout(prepared: &DiskPlan) -> Result<DeliveryLayout> {
    ferry_archive::layout(&contents(prepared, &BTreeSet::new()).input).map_err(WorkflowError::input)
}

/// What a dry run wrote.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct DryRun {
    /// `mapping.txt`: every image, `source=place in the archive`.
    pub mapping: PathBuf,
    /// `missing.txt`: the images the cache does not hold whole yet.
    pub missing: PathBuf,
    pub images: usize,
    pub missing_images: usize,
}

/// oc-mirror's `mapping.txt` and `missing.txt` in `working-dir/dry-run/`:
/// each image's source, and its name in the delivery (`file://DIR:REF`);
/// with `manifest_lists`, the images of each manifest list too.
pub fn dry_run(prepared: &DiskPlan, manifest_lists: bool) -> Result<DryRun> {
    let mut mapping = String::new();
    let mut missing = String::new();
    let mut missing_images = 0;
    for (image, nodes) in prepared
        .resolution
        .images
        .iter()
        .zip(prepared.graph.images())
    {
        let in_delivery = publish::delivery_name(&prepared.folder, &image.name);
        let origin = publish::origin_repository(image);
        let mapped = publish::MappedImage {
            source: format!("{origin}@{}", image.top),
            source_repository: Some(origin),
            destination: in_delivery.clone(),
            destination_repository: Some(in_delivery),
            children: publish::top_children(image),
        };
        let lines = publish::mapping(std::slice::from_ref(&mapped), manifest_lists);
        let cached = nodes.nodes().all(|node| match prepared.graph.action(node) {
            Action::FetchBlob { digest, .. } => prepared.cache.blobs().contains(digest),
            _ => true,
        });
        if !cached {
            missing.push_str(&lines);
            missing_images += 1;
        }
        mapping.push_str(&lines);
    }
    let written = publish::dry_run_files(
        &prepared.workspace,
        &[("mapping.txt", &mapping), ("missing.txt", &missing)],
    )?;
    let [mapping_path, missing_path] = <[PathBuf; 2]>::try_from(written)
        .map_err(|_| WorkflowError::internal("a dry run writes two files"))?;
    Ok(DryRun {
        mapping: mapping_path,
        missing: missing_path,
        images: prepared.resolution.images.len(),
        missing_images,
    })
}

/// What writing a delivery did.
pub struct Delivered {
    /// What was fetched into the cache.
    pub fetched: FetchOutcome,
    /// The delivery written (`None`: nothing was left to deliver).
    pub layout: Option<DeliveryLayout>,
    /// Images that were not resolved or were left out, in that order.
    pub failed: Vec<FailedImage>,
    /// Per category with images: how many of the image set's images the
    /// folder's deliveries now hold, of how many.
    pub categories: Vec<CategoryCount>,
}

impl Delivered {
    /// The exit status bits of the categories whose images failed.
    pub fn exit_bits(&self) -> u8 {
        crate::workflow::exit_bits(self.failed.iter().map(|image| image.category))
    }
}

/// Fetches what the cache lacks, writes the next delivery's segments into
/// the folder (leaving out whole every image a blob of which could not be
/// fetched) and records it in the workspace state once every segment is in
/// place.
pub async fn write_delivery(
    prepared: &mut DiskPlan,
    transfer: &TransferOptions,
) -> Result<Delivered> {
    let fetched = disk::fetch_blobs(
        &prepared.plan,
        &prepared.client,
        prepared.cache.blobs(),
        transfer.blob_transfers(),
    )
    .await;
    let left_out_reasons = disk::failed_images(&prepared.graph, &fetched.failed);
    let left_out: BTreeSet<String> = left_out_reasons.keys().cloned().collect();
    // A release image that could not be fetched: no delivery at all, as
    // oc-mirror writes no archive then (notes §7); what was fetched stays
    // in the cache for the rerun.
    let release_failures: Vec<String> = prepared
        .resolution
        .images
        .iter()
        .filter(|image| image.category == Category::Release)
        .filter_map(|image| {
            left_out_reasons
                .get(&image.name)
                .map(|reason| format!("{}: {reason}", image.name))
        })
        .collect();
    if !release_failures.is_empty() {
        return Err(WorkflowError::environment(format!(
            "{} release images could not be fetched, so no delivery was written:\n  {}",
            release_failures.len(),
            release_failures.join("\n  ")
        ))
        .in_category(Category::Release));
    }
    disk::cache_manifests(&mut prepared.cache, &prepared.resolution, unix_now()).map_err(
        |cause| WorkflowError::environment(format!("cannot store manifests in the cache: {cause}")),
    )?;
    let delivery = contents(prepared, &left_out);
    let layout = if delivery.keys.is_empty() {
        None
    } else {
        Some(write_and_record(prepared, &delivery)?)
    };
    let failed = FailedImage::all_of(
        &prepared.resolution,
        left_out_reasons
            .into_iter()
            .map(|(name, reason)| (name, format!("left out of the delivery: {reason}"))),
    );
    let folder = prepared.folder.clone();
    crate::workflow::to_registry::log_image_outcomes(&prepared.resolution, &failed, |image| {
        format!(
            "in the delivery as {}",
            publish::delivery_name(&folder, &image.name)
        )
    });
    let categories = count_categories(&prepared.resolution, &failed);
    Ok(Delivered {
        fetched,
        layout,
        failed,
        categories,
    })
}

/// Writes `delivery`'s segments and records the delivery.
fn write_and_record(
    prepared: &mut DiskPlan,
    delivery: &DeliveryContents,
) -> Result<DeliveryLayout> {
    // Noted first, so that a rerun after a kill while the segments are
    // published knows them for this run's unfinished work.
    let planned_last = ferry_archive::layout(&delivery.input)
        .ok()
        .and_then(|layout| layout.segments.last().map(|segment| segment.number))
        .unwrap_or(prepared.settings.first_segment);
    prepared
        .state
        .begin_delivery(
            prepared.settings.delivery,
            prepared.settings.first_segment,
            planned_last,
        )
        .map_err(WorkflowError::environment)?;
    let layout = match ferry_archive::write_delivery(
        &delivery.input,
        prepared.cache.blobs(),
        &prepared.folder,
    ) {
        Ok(layout) => layout,
        Err(cause) => {
            // The write took back what it had published.
            let _ = prepared.state.clear_pending_delivery();
            return Err(WorkflowError::environment(format!(
                "{cause}; no delivery was recorded"
            )));
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
    prepared
        .state
        .record_delivery(&record, &delivery.keys, &delivery.images)
        .map_err(WorkflowError::environment)?;
    Ok(layout)
}

/// The workspace's record of its deliveries as a plan needs it: what the
/// state records, plus the deliveries rebuilt from the folder's segments
/// that a run without writes only holds in memory.
struct History {
    deliveries: Vec<DeliveryRecord>,
    /// Keys shipped before the `--since` date (all without it).
    shipped: BTreeSet<ActionKey>,
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
    keys: Vec<ActionKey>,
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
        keys.insert(action.key());
    }
    for image in &found.summary.images {
        let action = Action::RecordImage {
            name: image.name.clone(),
            digest: image.digest.clone(),
        };
        keys.insert(action.key());
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
/// deliveries are returned for the plan to count. What it did or found
/// goes to `notices`.
fn reconcile_folder(
    folder: &Path,
    state: &mut WorkspaceState,
    writes: bool,
    notices: &mut Vec<Notice>,
) -> Result<Vec<Rebuilt>> {
    if !folder.is_dir() {
        return Ok(Vec::new());
    }
    let recorded = state.deliveries().map_err(WorkflowError::environment)?;
    let covered = |number: u32| {
        recorded
            .iter()
            .any(|delivery| (delivery.first_segment..=delivery.last_segment).contains(&number))
    };
    let pending = state
        .pending_delivery()
        .map_err(WorkflowError::environment)?;
    let surveyed =
        ferry_archive::survey_folder(folder, &|number| !covered(number)).map_err(|cause| {
            WorkflowError::environment(format!(
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
            return Err(WorkflowError::input(format!(
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
                .map_err(WorkflowError::environment)?;
            notices.push(Notice::Info(format!(
                "rebuilt the record of delivery {} ({}) from its segments: the workspace state {} did not have it",
                found.record.number,
                found.segments.join(", "),
                state_path.display()
            )));
        }
        for name in &unfinished {
            let path = folder.join(name);
            std::fs::remove_file(&path).map_err(|cause| {
                WorkflowError::environment(format!("cannot remove {}: {cause}", path.display()))
            })?;
            notices.push(Notice::Info(format!(
                "removed {name}: an interrupted run of this workspace published it, and its delivery is not whole"
            )));
        }
        if pending.is_some() {
            state
                .clear_pending_delivery()
                .map_err(WorkflowError::environment)?;
        }
        return Ok(Vec::new());
    }
    for found in &rebuilt {
        notices.push(Notice::Warning(format!(
            "the workspace state {} does not record delivery {} ({}); this plan counts it as shipped, rebuilt from its segments, and `ferry mirror` records it so",
            state_path.display(),
            found.record.number,
            found.segments.join(", ")
        )));
    }
    if !unfinished.is_empty() {
        notices.push(Notice::Warning(format!(
            "{} in {}: an interrupted run of this workspace published them, and their delivery is not whole; `ferry mirror` removes them",
            unfinished.join(", "),
            folder.display()
        )));
    }
    for problem in &problems {
        notices.push(Notice::Warning(format!(
            "in {}: {problem}",
            folder.display()
        )));
    }
    if !problems.is_empty() {
        notices.push(Notice::Warning(format!(
            "`ferry mirror` refuses to write the next delivery until then: {what_to_do}"
        )));
    }
    Ok(rebuilt)
}

/// The version of the document a delivery embeds as `plan.json` (stored
/// gzip-compressed as `plan.json.gz` from archive format 2). 2: the
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
