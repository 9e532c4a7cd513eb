//! Workflows whose destination is a registry: mirror-to-mirror (sources
//! resolved through registries.conf) and disk-to-mirror (sources are the
//! deliveries and the cache; `crate::disk` resolves them).
//!
//! The stages after collecting, for both: [`from_registries`] (or the
//! deliveries) resolves and asks the destination about the top manifests
//! the state records while the sources are asked; [`plan`] compiles the
//! graph, diffs it against the workspace state and the destination;
//! [`execute`] runs it, records every action, and the caller publishes.

use std::collections::BTreeSet;
use std::path::{Path, PathBuf};

use ferry_planner::{
    Action, ActionGraph, ActionKey, Category, Destination, ImageNodes, Plan, Source, StateSnapshot,
    compile_against,
};
use ferry_registry::{ClientOptions, CredentialStore, RegistriesConf, RegistryClient};
use ferry_schemas::{Digest, ImageReference};
use ferry_store::WorkspaceState;

use crate::resolve::{self, Recorded, Resolution, ResolveOptions};
use crate::run::{self, Progress, RunReport, Target};
use crate::workflow::collect::ImageSet;
use crate::workflow::error::{Result, WorkflowError};
use crate::workflow::options::{PlanOptions, TransferOptions};
use crate::workflow::workspace::Workspace;

/// Where a run's content comes from, resolved.
pub struct Sourced {
    /// The `working-dir/` folder.
    pub workspace: PathBuf,
    pub client: RegistryClient,
    pub resolution: Resolution,
    pub local: Option<LocalSource>,
    /// Top manifests already looked for at the destination (while the
    /// sources were asked), and those it lacks.
    pub checked: Checked,
}

/// Destination checks answered before planning: (repository, digest) of
/// top manifests asked for, and the ones the destination lacks.
#[derive(Default)]
pub struct Checked {
    pub asked: BTreeSet<(String, Digest)>,
    pub absent: BTreeSet<(String, Digest)>,
}

/// Disk-to-mirror: blobs come from the cache, verified on import.
pub struct LocalSource {
    pub blobs: ferry_store::BlobStore,
    /// Deliveries whose content this run completes at the destination.
    pub deliveries: Vec<u32>,
}

/// The seconds since the epoch, for records.
pub fn unix_now() -> i64 {
    time::OffsetDateTime::now_utc().unix_timestamp()
}

/// registries.conf from `path` (`--registries-conf`), else the
/// containers defaults.
pub fn load_registries(path: Option<&Path>) -> Result<RegistriesConf> {
    match path {
        // A named file must exist; default paths may be absent.
        Some(path) => RegistriesConf::load_named(path),
        None => RegistriesConf::load_default(),
    }
    .map_err(WorkflowError::input)
}

/// The resolver's options for a destination prefix.
pub fn resolve_options(plan: &PlanOptions, prefix: &str) -> ResolveOptions {
    ResolveOptions {
        prefix: prefix.to_owned(),
        max_nested_paths: plan.max_nested_paths,
        remove_signatures: plan.remove_signatures,
        trust_state: plan.trust_state,
        concurrency: 32,
    }
}

/// The registry client for a run: plain HTTP allowed where registries.conf
/// says `insecure`, where TLS verification is off, and for
/// `insecure_destination`.
pub fn source_client(
    transfer: &TransferOptions,
    registries: &RegistriesConf,
    requests: &[resolve::Request],
    insecure_destination: Option<&str>,
) -> RegistryClient {
    let mut insecure_hosts: BTreeSet<String> = BTreeSet::new();
    if let Some(host) = insecure_destination {
        insecure_hosts.insert(host.to_owned());
    }
    for request in requests {
        for source in registries.pull_sources(&request.origin).unwrap_or_default() {
            if source.insecure || !transfer.source_tls_verify {
                insecure_hosts.insert(source.reference.registry().to_owned());
            }
        }
    }
    RegistryClient::new(ClientOptions {
        credentials: CredentialStore::discover(transfer.authfile.as_deref()),
        insecure_hosts: insecure_hosts.into_iter().collect(),
        retry_times: transfer.retry_times,
        retry_delay: transfer.retry_delay,
        header_timeout: transfer.header_timeout,
        stall_timeout: transfer.stall_timeout,
        transfers_per_registry: transfer.blob_transfers(),
        ..ClientOptions::default()
    })
}

/// Mirror-to-mirror: `image_set` resolved through registries.conf, what
/// earlier runs recorded in `workspace` reused, and (unless the state is
/// trusted) the destination asked about the top manifests the state
/// records while the sources are asked.
pub async fn from_registries(
    workspace: &Workspace,
    destination: &Destination,
    image_set: &ImageSet,
    transfer: &TransferOptions,
    planning: &PlanOptions,
) -> Result<Sourced> {
    let registries = load_registries(transfer.registries_conf.as_deref())?;
    let options = resolve_options(planning, &destination.prefix);
    let requests = &image_set.images;
    let client = source_client(
        transfer,
        &registries,
        requests,
        (!transfer.destination_tls_verify).then_some(destination.registry.as_str()),
    );
    workspace.create()?;
    // What earlier runs resolved: reused when a tag still points to the
    // same digest, or (with --trust-state) without asking the source.
    let mut state = workspace.open_state()?;
    let recorded = Recorded::load(&state, requests).map_err(WorkflowError::environment)?;
    // The destination is asked about the top manifests the state records
    // as pushed while the sources are asked for their tags: the same HEADs
    // the check before planning needs (see `plan`), with both registries
    // busy at once instead of one after the other.
    let to_check: BTreeSet<(String, Digest)> = if planning.trust_state {
        BTreeSet::new()
    } else {
        let history = state
            .history(&destination.display())
            .map_err(WorkflowError::environment)?;
        recorded_tops_pushed(requests, &recorded, &history.done, &options)
    };
    let (mut resolution, absent) = futures_util::join!(
        resolve::resolve_with(&client, &registries, requests, &options, &recorded),
        async {
            if !to_check.is_empty() {
                reachable_destination(&client, &destination.registry).await?;
            }
            Ok::<_, WorkflowError>(
                absent_at_destination(to_check.iter().cloned(), |pair| {
                    manifest_absent(&client, &destination.registry, pair)
                })
                .await,
            )
        }
    );
    let checked = Checked {
        asked: to_check,
        absent: absent?.into_iter().collect(),
    };
    resolution.blocked = image_set.blocked.clone();
    refuse_release_failures(&resolution)?;
    // Built images need no resolving: their manifests are in hand and their
    // new blobs in the cache, which the run then reads them from.
    crate::workflow::built::add_to_resolution(&mut resolution, &image_set.built);
    resolution.needs = image_set.needs.clone();
    crate::workflow::needs::drop_unmet(&mut resolution, &image_set.needs);
    let reads_cache = read_collected_blobs_from_cache(&mut resolution, &image_set.cached_reads);
    let local = match (&image_set.cache, image_set.built.is_empty() && !reads_cache) {
        (_, true) => None,
        (Some(blobs), false) => Some(LocalSource {
            blobs: blobs.clone(),
            deliveries: Vec::new(),
        }),
        (None, false) => {
            return Err(WorkflowError::internal(
                "built images or blobs read from the cache, without the cache",
            ));
        }
    };
    tracing::info!(
        images = requests.len(),
        reused = resolution.reused,
        changed = resolution.records.len(),
        "resolved"
    );
    if !resolution.records.is_empty() {
        state
            .record_resolutions(
                &resolution.records,
                &resolve::manifests_to_record(&resolution, &recorded),
                unix_now(),
            )
            .map_err(WorkflowError::environment)?;
    }
    Ok(Sourced {
        workspace: workspace.root().to_path_buf(),
        client,
        resolution,
        local,
        checked,
    })
}

/// Every blob of a resolved image that the collectors read and the cache
/// holds (`cached`: an operator catalog's or a release payload's layers,
/// the graph image's base) is read from the cache, not from its source
/// registry again; the others stay where they were. A plan's collectors
/// note only what the cache held when they read it, so a blob a pruned
/// cache lacks is read from its registry. Whether any blob now comes from
/// the cache.
fn read_collected_blobs_from_cache(resolution: &mut Resolution, cached: &BTreeSet<Digest>) -> bool {
    if cached.is_empty() {
        return false;
    }
    let mut any = false;
    for image in &mut resolution.images {
        let from_cache: Vec<Digest> = image
            .manifests
            .iter()
            .flat_map(|manifest| &manifest.blobs)
            .map(|(digest, _)| digest)
            .filter(|digest| {
                cached.contains(*digest) && matches!(image.blob_source(digest), Source::Registry(_))
            })
            .cloned()
            .collect();
        any |= !from_cache.is_empty();
        for digest in from_cache {
            image.blob_sources.insert(digest, Source::Cache);
        }
    }
    any
}

/// A release image that could not be resolved ends the run before anything
/// is pushed, with the release exit bit (notes §7).
pub fn refuse_release_failures(resolution: &Resolution) -> Result<()> {
    let failures: Vec<String> = resolution
        .failures
        .iter()
        .filter(|failure| failure.category == Category::Release)
        .map(|failure| format!("{}: {}", failure.name, failure.message))
        .collect();
    if failures.is_empty() {
        return Ok(());
    }
    Err(WorkflowError::environment(format!(
        "{} release images could not be resolved:\n  {}",
        failures.len(),
        failures.join("\n  ")
    ))
    .in_category(Category::Release))
}

/// (destination repository, digest) of each recorded top manifest (an
/// image's and, unless signatures are removed, its signature's) whose push
/// the state records as done at this destination: what the check before
/// planning asks about when the sources still name the recorded digests.
fn recorded_tops_pushed(
    requests: &[resolve::Request],
    recorded: &Recorded,
    done: &BTreeSet<ActionKey>,
    options: &ResolveOptions,
) -> BTreeSet<(String, Digest)> {
    let mut tops = BTreeSet::new();
    for request in requests {
        let Some(record) = recorded.images.get(&request.name) else {
            continue;
        };
        let signature = record
            .signature
            .as_ref()
            .filter(|_| !options.remove_signatures);
        for digest in std::iter::once(&record.top).chain(signature) {
            let Some(manifest) = recorded.manifests.get(digest) else {
                continue;
            };
            let push = Action::PushManifest {
                repository: request.destination_repository.clone(),
                digest: digest.clone(),
                media_type: manifest.media_type.clone(),
                size: manifest.bytes.len() as u64,
                source: ferry_planner::Source::Registry(record.source.clone()),
            };
            if done.contains(&push.key()) {
                tops.insert((request.destination_repository.clone(), digest.clone()));
            }
        }
    }
    tops
}

/// Whether the destination lacks a manifest (one HEAD; an error counts as
/// present: the run finds out).
fn manifest_absent<'a>(
    client: &'a RegistryClient,
    registry: &str,
    (repository, digest): &(String, Digest),
) -> impl std::future::Future<Output = bool> + use<'a> {
    let reference = format!("{registry}/{repository}@{digest}").parse::<ImageReference>();
    async move {
        match reference {
            Ok(reference) => matches!(client.head_manifest(&reference).await, Ok(None)),
            Err(_) => false,
        }
    }
}

/// Reaches the destination before it is asked whether the image set is
/// still there: a check that fails counts as present (see
/// [`absent_at_destination`]), so an unreachable destination would
/// otherwise make a plan with nothing to do.
async fn reachable_destination(client: &RegistryClient, registry: &str) -> Result<()> {
    client.check_reachable(registry).await.map_err(|cause| {
        WorkflowError::environment(format!(
            "cannot reach the destination {registry} to check what it holds of the image set: {}\nnothing was pushed; to plan from the workspace state alone, without asking the destination, use --trust-state",
            cause.kind
        ))
    })
}

/// Runs `absent` on every item, 32 at a time, and keeps the items it says
/// the destination lacks (an error counts as present: the run finds out).
async fn absent_at_destination<T, Check, Answer>(
    items: impl IntoIterator<Item = T>,
    absent: Check,
) -> Vec<T>
where
    Check: Fn(&T) -> Answer,
    Answer: std::future::Future<Output = bool>,
{
    use futures_util::StreamExt as _;
    futures_util::stream::iter(items)
        .map(|item| {
            let answer = absent(&item);
            async move { answer.await.then_some(item) }
        })
        .buffer_unordered(32)
        .filter_map(|found| async move { found })
        .collect()
        .await
}

/// The keys of the actions the destination has done already for `images`
/// (none of which the state records): an image whose top manifest is there
/// is there whole (a registry accepts a manifest only when what it names is
/// there), so every action of it counts as done, its tag too when the tag
/// names that manifest. One HEAD for the top manifest and, when it is
/// there, one for the tag; 32 images at a time.
async fn already_held(
    client: &RegistryClient,
    registry: &str,
    graph: &ActionGraph,
    images: &[&ImageNodes],
) -> Vec<ActionKey> {
    use futures_util::StreamExt as _;
    let asks = images.iter().filter_map(|image| {
        let Action::PushManifest {
            repository, digest, ..
        } = graph.action(image.top_manifest()?)
        else {
            return None;
        };
        let by_digest = format!("{registry}/{repository}@{digest}")
            .parse::<ImageReference>()
            .ok()?;
        let by_tag = image.tag_node().and_then(|node| match graph.action(node) {
            Action::Tag {
                repository, tag, ..
            } => format!("{registry}/{repository}:{tag}")
                .parse::<ImageReference>()
                .ok(),
            _ => None,
        });
        Some((*image, digest.clone(), by_digest, by_tag))
    });
    let held: Vec<Vec<ActionKey>> = futures_util::stream::iter(asks)
        .map(|(image, digest, by_digest, by_tag)| async move {
            if !matches!(client.head_manifest(&by_digest).await, Ok(Some(_))) {
                return Vec::new();
            }
            let tag_matches = match &by_tag {
                Some(reference) => matches!(
                    client.head_manifest(reference).await,
                    Ok(Some(head)) if head.digest.as_ref() == Some(&digest)
                ),
                None => false,
            };
            image
                .nodes()
                .filter(|node| tag_matches || Some(*node) != image.tag_node())
                .map(|node| graph.key(node))
                .collect()
        })
        .buffer_unordered(32)
        .collect()
        .await;
    held.into_iter().flatten().collect()
}

/// `--verify`: one HEAD per (repository, blob) the state says is at the
/// destination, 32 at a time; the pairs the destination lacks.
async fn missing_blobs(
    client: &RegistryClient,
    registry: &str,
    graph: &ActionGraph,
    snapshot: &StateSnapshot,
) -> BTreeSet<(String, Digest)> {
    let mut pairs: BTreeSet<(String, Digest)> = BTreeSet::new();
    for node in graph.nodes() {
        let action = graph.action(node);
        let recorded = snapshot.done.contains(&graph.key(node));
        match action {
            Action::LinkBlob {
                repository, digest, ..
            }
            | Action::UploadBlob {
                repository, digest, ..
            } if recorded => {
                pairs.insert((repository.clone(), digest.clone()));
            }
            _ => {}
        }
    }
    absent_at_destination(pairs, |(repository, digest)| {
        let (repository, digest) = (repository.clone(), digest.clone());
        async move {
            matches!(
                client.blob_size(registry, &repository, &digest).await,
                Ok(None)
            )
        }
    })
    .await
    .into_iter()
    .collect()
}

/// A plan to a registry, with everything needed to run it.
pub struct Planned {
    /// blake3 of what the state recorded for the destination, before this run.
    pub state_fingerprint: String,
    pub destination: Destination,
    /// The `working-dir/` folder.
    pub workspace: PathBuf,
    pub client: RegistryClient,
    pub resolution: Resolution,
    pub graph: ActionGraph,
    pub plan: Plan,
    pub state: WorkspaceState,
    /// Disk-to-mirror: the cache the deliveries were imported into.
    pub local: Option<LocalSource>,
}

/// Compiles `sourced` into the action graph and diffs it against the
/// workspace state and (unless the state is trusted) the destination.
pub async fn plan(
    sourced: Sourced,
    destination: Destination,
    planning: &PlanOptions,
) -> Result<Planned> {
    let Sourced {
        workspace,
        client,
        resolution,
        local,
        checked,
    } = sourced;
    let workspace_folder = Workspace::in_folder(&workspace);
    workspace_folder.create()?;
    let state = workspace_folder.open_state()?;
    let mut snapshot = state
        .snapshot(&destination.display())
        .map_err(WorkflowError::environment)?;
    let state_fingerprint = {
        // The bytes hashed are written out piece by piece (no string built
        // per key or tag) and hashed in one call: blake3 costs far more per
        // call than per byte for pieces this small.
        let mut hashed: Vec<u8> =
            Vec::with_capacity(snapshot.done.len() * 65 + snapshot.tags.len() * 128);
        for key in &snapshot.done {
            hashed.extend_from_slice(&key.hex_digits());
            hashed.push(b'\n');
        }
        for ((repository, tag), digest) in &snapshot.tags {
            // `{repository}:{tag}={digest}\n`
            for part in [
                repository,
                ":",
                tag,
                "=",
                digest.algorithm().name(),
                ":",
                digest.hex(),
                "\n",
            ] {
                hashed.extend_from_slice(part.as_bytes());
            }
        }
        blake3::hash(&hashed).to_hex().to_string()
    };
    if planning.verify {
        // Every blob of every image is checked: every image is compiled.
        snapshot.images.clear();
    }
    // Images the state records complete with the same inputs are left out
    // of the graph (the plan counts them as if compiled).
    let mut graph = compile_against(&resolution.images, &destination, &snapshot);
    crate::workflow::needs::order(&mut graph, &resolution.needs);
    let mut resolution = resolution;
    // Tags the state records here that no image of the set sets any more.
    let current_tags: BTreeSet<(&str, &str)> = graph
        .images()
        .iter()
        .filter_map(|image| Some((image.repository(), image.tag()?)))
        .collect();
    resolution.removed = snapshot
        .tags
        .keys()
        .filter(|(repository, tag)| !current_tags.contains(&(repository.as_str(), tag.as_str())))
        .map(|(repository, tag)| format!("{}/{repository}:{tag}", destination.registry))
        .collect();
    if !planning.trust_state {
        // The whole image set is verified at every run: one HEAD per image
        // whose top manifest the state says is there (an unchanged image's
        // is), 32 at a time (most of them asked already while the sources
        // were, see `Checked`).
        let checks: Vec<(String, Digest)> = graph
            .images()
            .iter()
            .filter(|image| {
                image.is_unchanged()
                    || image
                        .top_manifest()
                        .is_some_and(|node| snapshot.done.contains(&graph.key(node)))
            })
            .map(|image| (image.repository().to_owned(), image.top().clone()))
            .collect();
        let (answered, to_ask): (Vec<_>, Vec<_>) = checks
            .into_iter()
            .partition(|pair| checked.asked.contains(pair));
        snapshot.missing.extend(
            answered
                .into_iter()
                .filter(|pair| checked.absent.contains(pair)),
        );
        let registry = &destination.registry;
        // Images the state does not record at this destination (a first
        // plan, a lost workspace, a destination another tool filled): the
        // destination is asked whether it holds them already.
        let unrecorded = |graph: &ActionGraph| -> Vec<usize> {
            graph
                .images()
                .iter()
                .enumerate()
                .filter(|(_, image)| {
                    image
                        .top_manifest()
                        .is_some_and(|node| !snapshot.done.contains(&graph.key(node)))
                })
                .map(|(index, _)| index)
                .collect()
        };
        if !to_ask.is_empty() || !unrecorded(&graph).is_empty() {
            reachable_destination(&client, registry).await?;
        }
        let missing =
            absent_at_destination(to_ask, |pair| manifest_absent(&client, registry, pair)).await;
        snapshot.missing.extend(missing);
        if !snapshot.missing.is_empty() && graph.images().iter().any(ImageNodes::is_unchanged) {
            // An image found missing plans its work again, which images
            // left out may share: compiled again with what is missing.
            graph = compile_against(&resolution.images, &destination, &snapshot);
            crate::workflow::needs::order(&mut graph, &resolution.needs);
        }
        let unrecorded: Vec<&ImageNodes> = unrecorded(&graph)
            .into_iter()
            .map(|index| &graph.images()[index])
            .collect();
        let held = already_held(&client, registry, &graph, &unrecorded).await;
        tracing::info!(
            asked = unrecorded.len(),
            held = held.len(),
            "asked the destination for images the state does not record"
        );
        snapshot.done.extend(held);
    }
    if planning.verify {
        snapshot.missing_blobs =
            missing_blobs(&client, &destination.registry, &graph, &snapshot).await;
        tracing::info!(
            missing = snapshot.missing_blobs.len(),
            "checked every blob at the destination"
        );
    }
    let plan = ferry_planner::plan(&graph, &snapshot);
    Ok(Planned {
        state_fingerprint,
        destination,
        workspace,
        client,
        resolution,
        graph,
        plan,
        state,
        local,
    })
}

/// An image that did not reach the destination.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct FailedImage {
    pub name: String,
    pub category: Category,
    /// The line of the errors file (without the image's name).
    pub reason: String,
}

impl FailedImage {
    /// Every image of `resolution` that failed: those not resolved, then
    /// `failed` (name, line of the errors file) with the category of the
    /// resolved image of that name.
    pub fn all_of(
        resolution: &Resolution,
        failed: impl IntoIterator<Item = (String, String)>,
    ) -> Vec<FailedImage> {
        let mut images: Vec<FailedImage> = resolution
            .failures
            .iter()
            .map(|failure| FailedImage {
                name: failure.name.clone(),
                category: failure.category,
                reason: failure.reason(),
            })
            .collect();
        for (name, reason) in failed {
            let category = resolution
                .images
                .iter()
                .find(|resolved| resolved.name == name)
                .map_or(Category::Additional, |resolved| resolved.category);
            images.push(FailedImage {
                name,
                category,
                reason,
            });
        }
        images
    }
}

/// Logs (at info, so the run log names them) every image of the image set
/// with its outcome: `done` says where a whole image went; a failed one is
/// logged with its error, an unresolved one too.
pub fn log_image_outcomes(
    resolution: &Resolution,
    failed: &[FailedImage],
    done: impl Fn(&ferry_planner::ResolvedImage) -> String,
) {
    let failed_names: std::collections::BTreeSet<&str> =
        failed.iter().map(|image| image.name.as_str()).collect();
    for image in &resolution.images {
        if !failed_names.contains(image.name.as_str()) {
            tracing::info!(image = %image.name, digest = %image.top, "image {}", done(image));
        }
    }
    for image in failed {
        tracing::info!(image = %image.name, error = %image.reason, "image failed");
    }
}

/// What a run to a registry did.
pub struct Executed {
    pub report: RunReport,
    /// Images that were not resolved or whose actions failed, in that order.
    pub failed: Vec<FailedImage>,
    /// Per category with images: how many of the image set's images are at
    /// the destination now, of how many.
    pub categories: Vec<CategoryCount>,
}

/// Images of one category after a run (cosign signature tags travel with
/// their image and are not counted as images of their own).
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct CategoryCount {
    pub category: Category,
    pub mirrored: usize,
    pub total: usize,
}

impl Executed {
    /// The exit status bits of the categories whose images failed.
    pub fn exit_bits(&self) -> u8 {
        crate::workflow::exit_bits(self.failed.iter().map(|image| image.category))
    }
}

/// How many images of each category reached the destination.
pub(crate) fn count_categories(
    resolution: &Resolution,
    failed: &[FailedImage],
) -> Vec<CategoryCount> {
    let failed_names: BTreeSet<&str> = failed.iter().map(|image| image.name.as_str()).collect();
    Category::ALL
        .into_iter()
        .filter_map(|category| {
            let images: Vec<&str> = resolution
                .images
                .iter()
                // A signature travels with its image (the resolver says
                // which images are signatures).
                .filter(|image| image.category == category && image.signature_of.is_none())
                .map(|image| image.name.as_str())
                .collect();
            let unresolved = resolution
                .failures
                .iter()
                .filter(|failure| failure.category == category)
                .count();
            let total = images.len() + unresolved;
            let mirrored = images
                .iter()
                .filter(|name| !failed_names.contains(*name))
                .count();
            (total > 0).then_some(CategoryCount {
                category,
                mirrored,
                total,
            })
        })
        .collect()
}

/// Runs `planned` against its destination: the destination reached once
/// first (nothing runs when it cannot be), a run recorded in the state,
/// every action recorded as it succeeds, and the deliveries a
/// disk-to-mirror run completed recorded as applied when no image failed.
pub async fn execute(
    planned: &mut Planned,
    transfer: &TransferOptions,
    progress: &dyn Progress,
) -> Result<Executed> {
    let destination = planned.destination.display();
    // A destination that cannot be reached fails the run here, once,
    // instead of failing every action after its own retries.
    if !planned.plan.actions.is_empty()
        && let Err(cause) = planned
            .client
            .check_reachable(&planned.destination.registry)
            .await
    {
        return Err(WorkflowError::environment(format!(
            "cannot reach the destination {}: {}\nnothing was pushed",
            planned.destination.registry, cause.kind
        )));
    }
    let run_id = planned
        .state
        .begin_run(&destination, unix_now())
        .map_err(WorkflowError::environment)?;
    let target = Target {
        destination: &destination,
        registry: &planned.destination.registry,
        local_blobs: planned.local.as_ref().map(|local| local.blobs.clone()),
        stop_on_failure_of: planned
            .resolution
            .images
            .iter()
            .filter(|image| image.category == Category::Release)
            .map(|image| image.name.clone())
            .collect(),
    };
    let limits = run::Limits {
        blobs: transfer.blob_transfers(),
        manifests: transfer.parallel_images as usize,
    };
    let report = run::execute(
        &planned.plan,
        &planned.graph,
        &planned.resolution.manifests,
        &planned.client,
        &mut planned.state,
        &target,
        limits,
        progress,
    )
    .await
    .map_err(WorkflowError::environment)?;
    tracing::info!(
        completed = report.completed,
        failed = report.failed,
        skipped = report.skipped,
        bytes = report.bytes,
        "run finished"
    );
    let failed = FailedImage::all_of(
        &planned.resolution,
        report
            .failed_images()
            .map(|image| (image.name.clone(), image.error.clone().unwrap_or_default())),
    );
    log_image_outcomes(&planned.resolution, &failed, |image| {
        format!(
            "mirrored to {}/{}",
            planned.destination.registry, image.destination_repository
        )
    });
    let outcome = if report.failed + report.skipped == 0 && failed.is_empty() {
        "succeeded"
    } else {
        "failed"
    };
    planned
        .state
        .finish_run(run_id, outcome, unix_now())
        .map_err(WorkflowError::environment)?;
    if failed.is_empty()
        && let Some(local) = &planned.local
    {
        // Every image reached the destination: the deliveries are applied.
        for delivery in &local.deliveries {
            planned
                .state
                .record_applied_delivery(&destination, *delivery, unix_now())
                .map_err(WorkflowError::environment)?;
        }
    }
    let categories = count_categories(&planned.resolution, &failed);
    Ok(Executed {
        report,
        failed,
        categories,
    })
}

#[cfg(test)]
mod tests {
    use super::*;
    use ferry_planner::{ResolvedImage, ResolvedManifest};

    fn image(name: &str, tag: &str, signature_of: Option<Digest>) -> ResolvedImage {
        ResolvedImage {
            name: name.to_owned(),
            source: Source::Registry("quay.io/a/b".to_owned()),
            blob_sources: Default::default(),
            destination_repository: "a/b".to_owned(),
            destination_tag: Some(tag.to_owned()),
            top: Digest::sha256_of(name.as_bytes()),
            manifests: Vec::new(),
            category: Category::Additional,
            signature_of,
        }
    }

    #[test]
    fn signatures_are_known_by_the_resolver_not_by_their_tag() {
        let signed = Digest::sha256_of(b"quay.io/a/b:1");
        let signature_tag = format!("sha256-{}.sig", signed.hex());
        let resolution = Resolution {
            images: vec![
                image("quay.io/a/b:1", "1", None),
                image(
                    &format!("quay.io/a/b:{signature_tag}"),
                    &signature_tag,
                    Some(signed.clone()),
                ),
                // A tag shaped like a signature's, asked for by name: an
                // image of its own.
                image(
                    "quay.io/a/b:sha256-0000.sig",
                    &format!("sha256-{}.sig", "0".repeat(64)),
                    None,
                ),
            ],
            ..Resolution::default()
        };
        let failed = [FailedImage {
            name: "quay.io/a/b:1".to_owned(),
            category: Category::Additional,
            reason: "gone".to_owned(),
        }];
        assert_eq!(
            count_categories(&resolution, &failed),
            [CategoryCount {
                category: Category::Additional,
                mirrored: 1,
                total: 2,
            }]
        );
    }

    #[test]
    fn blobs_collection_read_into_the_cache_are_read_from_there_and_no_others() {
        let read = Digest::sha256_of(b"a layer collection read");
        let other = Digest::sha256_of(b"a layer nobody read");
        let built = Digest::sha256_of(b"a built layer");
        let manifest = |blobs: &[&Digest]| ResolvedManifest {
            digest: Digest::sha256_of(format!("{blobs:?}").as_bytes()),
            media_type: "application/vnd.oci.image.manifest.v1+json".to_owned(),
            size: 1,
            children: Vec::new(),
            blobs: blobs.iter().map(|digest| ((*digest).clone(), 1)).collect(),
        };
        let mut payload = image("quay.io/a/b:1", "1", None);
        payload.manifests = vec![manifest(&[&read, &other])];
        let mut rebuilt = image("quay.io/a/c:1", "1", None);
        rebuilt.manifests = vec![manifest(&[&read, &built])];
        rebuilt.blob_sources.insert(built.clone(), Source::Cache);
        let mut resolution = Resolution {
            images: vec![payload, rebuilt],
            ..Resolution::default()
        };
        let before = resolution.images.clone();
        assert!(!read_collected_blobs_from_cache(
            &mut resolution,
            &BTreeSet::new()
        ));
        assert_eq!(resolution.images, before, "nothing read, nothing changed");

        let cached = BTreeSet::from([read.clone()]);
        assert!(read_collected_blobs_from_cache(&mut resolution, &cached));
        for image in &resolution.images {
            assert_eq!(image.blob_source(&read), &Source::Cache, "{}", image.name);
        }
        let payload = &resolution.images[0];
        assert_eq!(
            payload.blob_source(&other),
            &Source::Registry("quay.io/a/b".to_owned())
        );
        assert_eq!(resolution.images[1].blob_source(&built), &Source::Cache);
    }
}
