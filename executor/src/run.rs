//! Running a plan against the destination registry (mirror-to-mirror).
//!
//! The plan's actions run as a stream, driven by the graph's edges: an
//! action starts as soon as every planned action upstream of it has
//! finished, so a slow blob holds back only the manifests that name it,
//! never another image. Concurrency is bounded per class: blob transfers
//! (uploads and links) by [`Limits::blobs`], manifest pushes and tags by
//! [`Limits::manifests`] (and the client bounds transfers per registry).
//! Manifest writes in one repository run concurrently unless they touch
//! the same manifest or tag, or one is an index ([`ManifestWrite`]).
//! Among ready actions, links go before uploads (a link moves no bytes and
//! frees the manifests waiting for it); then the actions of images earlier
//! in the image set go first ([`image_ranks`]), so images complete one after
//! another as the run goes and an interrupted run leaves whole images at
//! the destination (a priority, not a barrier: a free slot always takes a
//! ready action, whichever image it serves); then the plan's order decides. A
//! manifest push whose only follower is its tag is done by one PUT by tag
//! (the registry keeps the manifest under its digest too), and both
//! actions are recorded when it succeeds.
//!
//! Each action is recorded in the workspace state after it succeeds and
//! never before, so a kill at any point leaves the state naming only
//! finished work. Records are written in small batches ([`Recorder`]: every
//! [`RECORD_BATCH`] actions or [`RECORD_INTERVAL`], one transaction and one
//! sync each, not one per action); a kill loses at most the last batch,
//! whose actions the rerun plans again and finds done at the destination. An action whose prerequisite failed is skipped, with the
//! failure as its reason; an image fails when any of its actions failed or
//! was skipped, and the others go on, except after a failed action of an
//! image in [`Target::stop_on_failure_of`] (release images): then no new
//! action starts and what never started fails its images.
//!
//! Bytes are reported to [`Progress`] while blobs stream (read from the
//! client's per-transfer counters a few times a second), not only when a
//! blob is done.

use std::collections::{BTreeMap, BTreeSet};
use std::sync::Arc;
use std::sync::atomic::{AtomicU64, Ordering};
use std::time::{Duration, Instant, SystemTime, UNIX_EPOCH};

use dependencies::upstream_keys;
use ferry_planner::{Action, ActionGraph, ActionKey, Plan, PlannedAction, Source};
use ferry_registry::{Manifest, RegistryClient};
use ferry_schemas::{Digest, ImageReference};
use ferry_store::{BlobStore, FinishedAction, WorkspaceState};

/// What happened to one image.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct ImageOutcome {
    pub name: String,
    pub destination: String,
    pub error: Option<String>,
}

/// What a run did.
#[derive(Clone, Debug, Default)]
pub struct RunReport {
    pub completed: usize,
    pub failed: usize,
    pub skipped: usize,
    pub bytes: u64,
    pub images: Vec<ImageOutcome>,
}

impl RunReport {
    pub fn failed_images(&self) -> impl Iterator<Item = &ImageOutcome> {
        self.images.iter().filter(|image| image.error.is_some())
    }
}

/// How an action ended.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Outcome {
    Succeeded,
    Failed,
    /// Not run: an action it needs failed.
    Skipped,
}

/// Progress reports for whoever draws them; the executor never prints.
pub trait Progress: Send + Sync {
    /// An action starts running.
    fn action_started(&self, _action: &Action) {}
    /// More bytes of a blob reached the destination (each byte is
    /// reported once, even when a transfer is retried).
    fn bytes_moved(&self, _action: &Action, _bytes: u64) {}
    /// An action ended.
    /// A planned action ended (its key as planned, never hashed again).
    fn action_finished(&self, planned: &PlannedAction, outcome: Outcome);
}

/// A progress sink that ignores everything.
pub struct NoProgress;

impl Progress for NoProgress {
    fn action_finished(&self, _: &PlannedAction, _: Outcome) {}
}

/// Concurrency bounds of a run.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct Limits {
    /// Blob uploads and links in flight at once.
    pub blobs: usize,
    /// Manifest pushes and tags in flight at once.
    pub manifests: usize,
}

/// Where the run goes.
pub struct Target<'a> {
    /// `registry[/prefix]`: the state's key for this destination.
    pub destination: &'a str,
    /// The destination registry host.
    pub registry: &'a str,
    /// Disk-to-mirror: blobs are read from this cache (where the
    /// deliveries were imported, verified), not from a source registry.
    pub local_blobs: Option<BlobStore>,
    /// Images whose failure stops the run (release images, notes §7): no
    /// new action starts, the actions in flight finish and are recorded,
    /// and what never started fails its images.
    pub stop_on_failure_of: BTreeSet<String>,
}

fn now() -> i64 {
    SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .map(|elapsed| elapsed.as_secs() as i64)
        .unwrap_or(0)
}

/// Keys of the actions that must finish before each action (only the
/// planned ones matter).
mod dependencies {
    use std::collections::{BTreeMap, BTreeSet};

    use ferry_planner::{ActionGraph, ActionKey};

    pub fn upstream_keys(graph: &ActionGraph) -> BTreeMap<ActionKey, BTreeSet<ActionKey>> {
        let mut upstream: BTreeMap<ActionKey, BTreeSet<ActionKey>> = BTreeMap::new();
        for node in graph.nodes() {
            let before = graph
                .upstream(node)
                .map(|upstream| graph.key(upstream))
                .collect();
            upstream.insert(graph.key(node), before);
        }
        upstream
    }
}

/// Finished actions written to the state at most this many at a time.
const RECORD_BATCH: usize = 256;
/// A finished action waits at most about this long to be written (the
/// scheduler's progress tick bounds the wait when nothing else finishes).
const RECORD_INTERVAL: Duration = Duration::from_millis(100);

/// Finished actions on their way into the workspace state, in the order
/// they finished (an action's upstream always in the same or an earlier
/// batch), written in batches.
struct Recorder<'a> {
    state: &'a mut WorkspaceState,
    destination: &'a str,
    pending: Vec<FinishedAction>,
    oldest: Option<Instant>,
}

impl<'a> Recorder<'a> {
    fn new(state: &'a mut WorkspaceState, destination: &'a str) -> Self {
        Recorder {
            state,
            destination,
            pending: Vec::new(),
            oldest: None,
        }
    }

    /// Queues the records of an action that succeeded: its own, and for
    /// an upload the link into its own repository.
    fn finished(&mut self, planned: &PlannedAction) {
        if self.pending.is_empty() {
            self.oldest = Some(Instant::now());
        }
        let key = planned.key;
        self.pending.push(match &planned.action {
            Action::Tag {
                repository,
                tag,
                digest,
            } => FinishedAction::Tag {
                key,
                repository: repository.clone(),
                tag: tag.clone(),
                digest: digest.clone(),
            },
            other => FinishedAction::Action {
                key,
                kind: other.kind_name(),
            },
        });
        // An upload puts the blob into its repository: record that
        // repository's link too, so later plans know who has it.
        if let Some(own_link) = planned.action.implied_link() {
            self.pending.push(FinishedAction::Action {
                key: own_link.key(),
                kind: own_link.kind_name(),
            });
        }
    }

    /// Writes the queued records when the batch is full or old enough.
    fn write_when_due(&mut self) -> Result<(), ferry_store::Error> {
        let due = self.pending.len() >= RECORD_BATCH
            || self
                .oldest
                .is_some_and(|oldest| oldest.elapsed() >= RECORD_INTERVAL);
        if due { self.write() } else { Ok(()) }
    }

    /// Writes every queued record, in one transaction.
    fn write(&mut self) -> Result<(), ferry_store::Error> {
        self.state
            .record_finished(self.destination, &self.pending, now())?;
        self.pending.clear();
        self.oldest = None;
        Ok(())
    }
}

/// Runs one action; `streamed` follows the bytes of a blob upload.
async fn run_action(
    client: &RegistryClient,
    registry: &str,
    action: &Action,
    manifests: &BTreeMap<Digest, Manifest>,
    streamed: &Arc<AtomicU64>,
    local_blobs: Option<&BlobStore>,
) -> Result<(), String> {
    match action {
        Action::UploadBlob {
            repository,
            digest,
            size,
            source: Source::Cache,
            ..
        }
        | Action::LinkBlob {
            repository,
            digest,
            size,
            source: Source::Cache,
            ..
        } => {
            // From the cache (disk-to-mirror's imported deliveries, built
            // images): the verified cached copy is uploaded, or a link
            // mounts it from the repository that has it.
            let Some(blobs) = local_blobs else {
                return Err(format!(
                    "blob {digest} is to be read from the cache, and this run has no cache"
                ));
            };
            let path = blobs.path(digest);
            let mount_from = match action {
                Action::LinkBlob {
                    from_repository, ..
                } if from_repository != repository => Some(from_repository.as_str()),
                _ => None,
            };
            client
                .push_blob(registry, repository, digest, *size, &path, mount_from)
                .await
                .map(drop)
                .map_err(|error| {
                    let corrupt = local_blobs
                        .and_then(|blobs| crate::disk::corrupt_cached_blob(blobs, digest));
                    if let Some(problem) = corrupt {
                        format!("{error}\n{problem}")
                    } else if path.is_file() {
                        error.to_string()
                    } else {
                        // An earlier delivery brought the blob and the
                        // cache no longer holds it: nothing here can send it.
                        format!(
                            "{error}\nblob {digest} is not in the cache {}: an earlier delivery \
                             brought it; run with the cache that imported that delivery, or bring \
                             the delivery again",
                            local_blobs
                                .map(|blobs| blobs.root().display().to_string())
                                .unwrap_or_default()
                        )
                    }
                })
        }
        Action::UploadBlob {
            repository,
            digest,
            size,
            source,
            ..
        } => {
            let (source_registry, source_repository) = source
                .registry_repository()
                .ok_or("a source without repository")?;
            client
                .copy_blob_counting(
                    source_registry,
                    source_repository,
                    registry,
                    repository,
                    digest,
                    *size,
                    None,
                    streamed,
                )
                .await
                .map(drop)
                .map_err(|error| error.to_string())
        }
        Action::LinkBlob {
            repository,
            digest,
            size,
            from_repository,
            source,
        } => {
            // A mount; when the registry refuses it (or the blob's own
            // repository is the one to fill), the bytes come from the
            // source. A repository that has the blob already costs a HEAD.
            let (source_registry, source_repository) = source
                .registry_repository()
                .ok_or("a source without repository")?;
            let mount_from = (from_repository != repository).then_some(from_repository.as_str());
            client
                .copy_blob_counting(
                    source_registry,
                    source_repository,
                    registry,
                    repository,
                    digest,
                    *size,
                    mount_from,
                    streamed,
                )
                .await
                .map(drop)
                .map_err(|error| error.to_string())
        }
        Action::PushManifest {
            repository, digest, ..
        } => {
            let manifest = manifests
                .get(digest)
                .ok_or_else(|| format!("manifest {digest} was not resolved"))?;
            let target: ImageReference = format!("{registry}/{repository}@{digest}")
                .parse()
                .map_err(|error| format!("{error}"))?;
            client
                .put_manifest(&target, manifest)
                .await
                .map_err(|error| error.to_string())
        }
        Action::Tag {
            repository,
            tag,
            digest,
        } => {
            let manifest = manifests
                .get(digest)
                .ok_or_else(|| format!("manifest {digest} was not resolved"))?;
            let target: ImageReference = format!("{registry}/{repository}:{tag}")
                .parse()
                .map_err(|error| format!("{error}"))?;
            client
                .put_manifest(&target, manifest)
                .await
                .map_err(|error| error.to_string())
        }
        Action::FetchBlob { .. }
        | Action::PackBlob { .. }
        | Action::PackManifest { .. }
        | Action::RecordImage { .. } => Err(format!(
            "{} is a disk-delivery action, not one for a registry",
            action.describe()
        )),
    }
}

/// The scheduler's view of the plan: for each planned action (by its
/// index in the plan), how many planned actions it still waits for and
/// which planned actions wait for it.
struct Schedule {
    waiting_for: Vec<usize>,
    downstream: Vec<Vec<usize>>,
}

impl Schedule {
    fn new(plan: &Plan, graph: &ActionGraph) -> Self {
        let index_of: BTreeMap<ActionKey, usize> = plan
            .actions
            .iter()
            .enumerate()
            .map(|(index, planned)| (planned.key, index))
            .collect();
        let upstream = upstream_keys(graph);
        let mut waiting_for = vec![0; plan.actions.len()];
        let mut downstream = vec![Vec::new(); plan.actions.len()];
        for (index, planned) in plan.actions.iter().enumerate() {
            // Upstream actions outside the plan are done already.
            for before in upstream.get(&planned.key).into_iter().flatten() {
                if let Some(&before_index) = index_of.get(before) {
                    waiting_for[index] += 1;
                    downstream[before_index].push(index);
                }
            }
        }
        Schedule {
            waiting_for,
            downstream,
        }
    }
}

/// For each planned action, the place in the image set of the first image
/// it serves (`usize::MAX` for an action of no image): the second key of
/// the order in which ready actions start.
fn image_ranks(plan: &Plan, graph: &ActionGraph) -> Vec<usize> {
    let mut first_image: BTreeMap<ActionKey, usize> = BTreeMap::new();
    for (rank, image) in graph.images().iter().enumerate() {
        for node in image.nodes() {
            first_image.entry(graph.key(node)).or_insert(rank);
        }
    }
    plan.actions
        .iter()
        .map(|planned| first_image.get(&planned.key).copied().unwrap_or(usize::MAX))
        .collect()
}

/// Which bound an action counts against.
fn is_blob_transfer(action: &Action) -> bool {
    matches!(action, Action::UploadBlob { .. } | Action::LinkBlob { .. })
}

/// Which of the ready actions of a class start first (lower first, then
/// the plan's order): a link moves no bytes and frees the manifests that
/// wait for it, so links go before uploads; otherwise the manifests of
/// every repository but the upload's own wait until all uploads are done.
fn start_rank(action: &Action) -> u8 {
    match action {
        Action::LinkBlob { .. } => 0,
        Action::UploadBlob { .. } => 1,
        _ => 0,
    }
}

/// What a manifest write (a push, a tag, or a push done by its tag's
/// request) touches in its repository. A registry that stores manifests as
/// files (distribution) rewrites a manifest's link files on every PUT of
/// it, and a reader in between may find them half-written: so two writes
/// of one manifest, or of one tag, never run at once, and a write of an
/// index (which the registry checks against its children) or of a manifest
/// of unknown type has its repository to itself. Image manifests with
/// different digests and tags are written concurrently.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
struct ManifestWrite<'a> {
    repository: &'a str,
    digest: &'a Digest,
    tag: Option<&'a str>,
    /// An index (or unknown): nothing else in the repository meanwhile.
    whole_repository: bool,
}

impl<'a> ManifestWrite<'a> {
    fn of(action: &'a Action, manifests: &BTreeMap<Digest, Manifest>) -> Option<Self> {
        let (repository, digest, tag, media_type) = match action {
            Action::PushManifest {
                repository,
                digest,
                media_type,
                ..
            } => (repository, digest, None, Some(media_type.as_str())),
            Action::Tag {
                repository,
                tag,
                digest,
            } => (
                repository,
                digest,
                Some(tag.as_str()),
                manifests
                    .get(digest)
                    .map(|manifest| manifest.media_type.as_str()),
            ),
            _ => return None,
        };
        Some(ManifestWrite {
            repository,
            digest,
            tag,
            whole_repository: !media_type.is_some_and(is_image_manifest),
        })
    }

    /// Whether this write may run while `other` runs.
    fn compatible_with(&self, other: &ManifestWrite<'_>) -> bool {
        self.repository != other.repository
            || !(self.whole_repository
                || other.whole_repository
                || self.digest == other.digest
                || (self.tag.is_some() && self.tag == other.tag))
    }
}

/// Whether a media type is a single image's manifest (not an index).
fn is_image_manifest(media_type: &str) -> bool {
    matches!(
        media_type,
        "application/vnd.oci.image.manifest.v1+json"
            | "application/vnd.docker.distribution.manifest.v2+json"
    )
}

/// The tag a manifest push can set in the same request: the push's only
/// planned follower is that tag, of the same repository and manifest, and
/// the tag waits for nothing else. The manifest is then PUT by tag, once:
/// a registry keeps a manifest pushed by tag under its digest too, so the
/// one request does both actions. A manifest something else waits for (an
/// index naming it, a second tag) is pushed by digest as planned.
fn tag_set_by_push(
    plan: &Plan,
    downstream: &[Vec<usize>],
    waiting_for: &[usize],
    index: usize,
) -> Option<usize> {
    let Action::PushManifest {
        repository, digest, ..
    } = &plan.actions[index].action
    else {
        return None;
    };
    let [after] = downstream[index].as_slice() else {
        return None;
    };
    match &plan.actions[*after].action {
        Action::Tag {
            repository: tag_repository,
            digest: tag_digest,
            ..
        } if tag_repository == repository && tag_digest == digest && waiting_for[*after] == 1 => {
            Some(*after)
        }
        _ => None,
    }
}

/// How often byte counters are read for progress reports.
const PROGRESS_TICK: Duration = Duration::from_millis(200);

/// Runs `plan` (made from `graph`) against `target`.
#[allow(clippy::too_many_arguments)] // the plan, its graph and where to run it
pub async fn execute(
    plan: &Plan,
    graph: &ActionGraph,
    manifests: &BTreeMap<Digest, Manifest>,
    client: &RegistryClient,
    state: &mut WorkspaceState,
    target: &Target<'_>,
    limits: Limits,
    progress: &dyn Progress,
) -> Result<RunReport, ferry_store::Error> {
    use futures_util::StreamExt as _;
    use futures_util::stream::FuturesUnordered;

    let Schedule {
        mut waiting_for,
        downstream,
    } = Schedule::new(plan, graph);
    let blob_limit = limits.blobs.max(1);
    let manifest_limit = limits.manifests.max(1);
    // Ready actions by (rank, image rank, plan index): links before
    // uploads, then earlier images first, then the plan's order.
    let image_rank = image_ranks(plan, graph);
    let order = |index: usize| {
        (
            start_rank(&plan.actions[index].action),
            image_rank[index],
            index,
        )
    };
    let mut ready_blobs: BTreeSet<(u8, usize, usize)> = BTreeSet::new();
    let mut ready_manifests: BTreeSet<(u8, usize, usize)> = BTreeSet::new();
    for (index, planned) in plan.actions.iter().enumerate() {
        if waiting_for[index] == 0 {
            if is_blob_transfer(&planned.action) {
                ready_blobs.insert(order(index));
            } else {
                ready_manifests.insert(order(index));
            }
        }
    }
    let mut failed: BTreeMap<ActionKey, String> = BTreeMap::new();
    let mut report = RunReport::default();
    // Actions of the images whose failure stops the run, and the failure
    // that stopped it.
    let critical: BTreeSet<ActionKey> = graph
        .images()
        .iter()
        .filter(|image| target.stop_on_failure_of.contains(image.name()))
        .flat_map(|image| image.nodes().map(|node| graph.key(node)))
        .collect();
    let mut stopped_by: Option<String> = None;
    let mut finished: Vec<bool> = vec![false; plan.actions.len()];
    // Byte counters of running uploads, and what was reported of each.
    let mut counters: BTreeMap<usize, (Arc<AtomicU64>, u64)> = BTreeMap::new();
    let mut running_blobs = 0;
    // Manifest writes running, by plan index (see `ManifestWrite`).
    let mut writing: BTreeMap<usize, ManifestWrite<'_>> = BTreeMap::new();
    let mut running_manifests = 0;
    // Manifest pushes running as a PUT by tag → the tag they set.
    let mut fused: BTreeMap<usize, usize> = BTreeMap::new();
    let mut running = FuturesUnordered::new();
    tracing::info!(
        actions = plan.actions.len(),
        blob_limit,
        manifest_limit,
        "running the plan"
    );
    let mut recorder = Recorder::new(state, target.destination);
    let mut tick = tokio::time::interval(PROGRESS_TICK);
    tick.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Delay);

    let report_bytes = |counters: &mut BTreeMap<usize, (Arc<AtomicU64>, u64)>| {
        for (index, (counter, reported)) in counters.iter_mut() {
            let now = counter.load(Ordering::Relaxed);
            if now > *reported {
                progress.bytes_moved(&plan.actions[*index].action, now - *reported);
                *reported = now;
            }
        }
    };

    loop {
        if stopped_by.is_some() {
            ready_blobs.clear();
            ready_manifests.clear();
        }
        // Start whatever is ready, within the bounds. A manifest write
        // waits while a write it conflicts with runs (see `ManifestWrite`).
        for (ready, running_count, limit) in [
            (&mut ready_blobs, &mut running_blobs, blob_limit),
            (&mut ready_manifests, &mut running_manifests, manifest_limit),
        ] {
            while *running_count < limit {
                // A push whose only follower is its tag is done by the
                // tag's request (one PUT by tag instead of two PUTs).
                let request_of = |index: usize| {
                    let fused_tag = tag_set_by_push(plan, &downstream, &waiting_for, index);
                    let request = &plan.actions[fused_tag.unwrap_or(index)].action;
                    (fused_tag, request, ManifestWrite::of(request, manifests))
                };
                let Some((position, (fused_tag, request, write))) =
                    ready.iter().find_map(|&position| {
                        let (fused_tag, request, write) = request_of(position.2);
                        let free = write.is_none_or(|write| {
                            writing.values().all(|other| write.compatible_with(other))
                        });
                        free.then_some((position, (fused_tag, request, write)))
                    })
                else {
                    break;
                };
                ready.remove(&position);
                let index = position.2;
                *running_count += 1;
                let action = &plan.actions[index].action;
                if let Some(write) = write {
                    writing.insert(index, write);
                }
                let streamed = Arc::new(AtomicU64::new(0));
                if is_blob_transfer(action) {
                    counters.insert(index, (streamed.clone(), 0));
                }
                progress.action_started(action);
                if let Some(tag) = fused_tag {
                    fused.insert(index, tag);
                    progress.action_started(&plan.actions[tag].action);
                }
                let registry = target.registry;
                let local_blobs = target.local_blobs.as_ref();
                running.push(async move {
                    let outcome =
                        run_action(client, registry, request, manifests, &streamed, local_blobs)
                            .await;
                    (index, outcome)
                });
            }
        }
        if running.is_empty() {
            break;
        }
        let (index, outcome) = tokio::select! {
            finished = running.next() => match finished {
                Some(finished) => finished,
                None => break,
            },
            _ = tick.tick() => {
                report_bytes(&mut counters);
                recorder.write_when_due()?;
                continue;
            }
        };
        let planned = &plan.actions[index];
        let action = &planned.action;
        if is_blob_transfer(action) {
            running_blobs -= 1;
        } else {
            running_manifests -= 1;
        }
        writing.remove(&index);
        let reported = counters.remove(&index).map_or(0, |(_, reported)| reported);
        let tag_set = fused.remove(&index);
        match outcome {
            Ok(()) => {
                // The action, then the tag its request set (if any): each
                // recorded, reported and releasing what waits for it.
                for done in std::iter::once(index).chain(tag_set) {
                    finished[done] = true;
                    let action = &plan.actions[done].action;
                    recorder.finished(&plan.actions[done]);
                    recorder.write_when_due()?;
                    if matches!(action, Action::UploadBlob { .. }) && action.bytes() > reported {
                        // (A link that had to copy reported its bytes as they moved.)
                        progress.bytes_moved(action, action.bytes() - reported);
                    }
                    tracing::debug!(action = %action.describe(), "action done");
                    report.completed += 1;
                    report.bytes += action.bytes();
                    progress.action_finished(&plan.actions[done], Outcome::Succeeded);
                    for &after in &downstream[done] {
                        if failed.contains_key(&plan.actions[after].key) {
                            continue;
                        }
                        waiting_for[after] -= 1;
                        if waiting_for[after] == 0 && Some(after) != tag_set {
                            if is_blob_transfer(&plan.actions[after].action) {
                                ready_blobs.insert(order(after));
                            } else {
                                ready_manifests.insert(order(after));
                            }
                        }
                    }
                }
            }
            Err(message) => {
                tracing::debug!(action = %action.describe(), %message, "action failed");
                let cause = format!("{}: {message}", action.describe());
                finished[index] = true;
                if stopped_by.is_none() && critical.contains(&planned.key) {
                    tracing::info!(action = %action.describe(), "a release image failed: no new action starts");
                    stopped_by = Some(cause.clone());
                }
                failed.insert(planned.key, cause.clone());
                report.failed += 1;
                progress.action_finished(planned, Outcome::Failed);
                // Everything downstream is skipped, with this failure as
                // its reason; none of it ever becomes ready.
                let mut stack = downstream[index].clone();
                while let Some(after) = stack.pop() {
                    let skipped = &plan.actions[after];
                    if failed.contains_key(&skipped.key) {
                        continue;
                    }
                    failed.insert(
                        skipped.key,
                        format!("skipped: a step it needs failed ({cause})"),
                    );
                    report.skipped += 1;
                    progress.action_finished(skipped, Outcome::Skipped);
                    stack.extend(downstream[after].iter().copied());
                }
            }
        }
    }
    recorder.write()?;
    if let Some(cause) = &stopped_by {
        // What never started fails with the release failure as its reason.
        for (index, planned) in plan.actions.iter().enumerate() {
            if finished[index] || failed.contains_key(&planned.key) {
                continue;
            }
            failed.insert(
                planned.key,
                format!("not started: a release image failed, the run stopped ({cause})"),
            );
            report.skipped += 1;
            progress.action_finished(planned, Outcome::Skipped);
        }
    }
    // Every compiled image with no failed action is complete at the
    // destination: its fingerprint and keys are recorded, so the next plan
    // need not compile it (unchanged images keep their record).
    let mut completed_images = Vec::new();
    for image in graph.images() {
        let error = image
            .nodes()
            .map(|node| graph.key(node))
            .find_map(|key| failed.get(&key).cloned());
        if error.is_none()
            && let Some(record) = graph.record_of(image)
        {
            completed_images.push((image.name().to_owned(), record));
        }
        report.images.push(ImageOutcome {
            name: image.name().to_owned(),
            destination: image.destination().to_owned(),
            error,
        });
    }
    recorder
        .state
        .record_images(target.destination, &completed_images, now())?;
    Ok(report)
}
