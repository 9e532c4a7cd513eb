//! Running a plan against the destination registry (mirror-to-mirror).
//!
//! 1. Blob uploads run concurrently (bounded by `parallelism` and the
//!    client's per-registry limit), streaming each blob from its source to
//!    the destination, verified on the way.
//! 2. Links (cross-repository mounts) run concurrently.
//! 3. Manifests are pushed in plan order (children before their index).
//! 4. Tags are set last.
//!
//! Each action is recorded in the workspace state right after it succeeds
//! and never before, so a kill at any point leaves the state naming only
//! finished work. An action whose prerequisite failed is skipped; an image
//! fails when any of its actions failed or was skipped, and the others go
//! on.

use std::collections::BTreeMap;
use std::sync::Arc;
use std::time::{SystemTime, UNIX_EPOCH};

use dependencies::upstream_keys;
use ferry_planner::{Action, ActionGraph, ActionKey, Plan};
use ferry_registry::{Manifest, RegistryClient};
use ferry_schemas::{Digest, ImageReference};
use ferry_store::{BlobStore, WorkspaceState};

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

/// Progress reports for whoever draws them; the executor never prints.
pub trait Progress: Send + Sync {
    fn action_finished(&self, action: &Action, succeeded: bool);
}

/// A progress sink that ignores everything.
pub struct NoProgress;

impl Progress for NoProgress {
    fn action_finished(&self, _: &Action, _: bool) {}
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
    use petgraph::Direction;

    pub fn upstream_keys(graph: &ActionGraph) -> BTreeMap<ActionKey, BTreeSet<ActionKey>> {
        let mut upstream: BTreeMap<ActionKey, BTreeSet<ActionKey>> = BTreeMap::new();
        for node in graph.graph.node_indices() {
            let key = graph.action(node).key();
            let before = graph
                .graph
                .neighbors_directed(node, Direction::Incoming)
                .map(|upstream| graph.action(upstream).key())
                .collect();
            upstream.insert(key, before);
        }
        upstream
    }
}

/// Runs one action.
async fn run_action(
    client: &RegistryClient,
    registry: &str,
    action: &Action,
    manifests: &BTreeMap<Digest, Manifest>,
    local_blobs: Option<&BlobStore>,
) -> Result<(), String> {
    match action {
        Action::UploadBlob {
            repository,
            digest,
            size,
            ..
        } if local_blobs.is_some() => {
            let path = local_blobs
                .map(|blobs| blobs.path(digest))
                .unwrap_or_default();
            client
                .push_blob(registry, repository, digest, *size, &path, None)
                .await
                .map(drop)
                .map_err(|error| error.to_string())
        }
        Action::UploadBlob {
            repository,
            digest,
            size,
            source,
            ..
        } => {
            let (source_registry, source_repository) = source
                .split_once('/')
                .ok_or("a source without repository")?;
            client
                .copy_blob(
                    source_registry,
                    source_repository,
                    registry,
                    repository,
                    digest,
                    *size,
                    None,
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
        } => {
            // A mount; a registry that refuses mounts gets the bytes again
            // from the repository that has them.
            client
                .copy_blob(
                    registry,
                    from_repository,
                    registry,
                    repository,
                    digest,
                    *size,
                    Some(from_repository),
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

/// Runs `plan` (made from `graph`) against `target`.
#[allow(clippy::too_many_arguments)] // the plan, its graph and where to run it
pub async fn execute(
    plan: &Plan,
    graph: &ActionGraph,
    manifests: &BTreeMap<Digest, Manifest>,
    client: &RegistryClient,
    state: &mut WorkspaceState,
    target: &Target<'_>,
    parallelism: usize,
    progress: &dyn Progress,
) -> Result<RunReport, ferry_store::Error> {
    let upstream = upstream_keys(graph);
    let mut failed: BTreeMap<ActionKey, String> = BTreeMap::new();
    let mut report = RunReport::default();
    let manifests = Arc::new(manifests.clone());
    let phases: [fn(&Action) -> bool; 4] = [
        |action| matches!(action, Action::UploadBlob { .. }),
        |action| matches!(action, Action::LinkBlob { .. }),
        |action| matches!(action, Action::PushManifest { .. }),
        |action| matches!(action, Action::Tag { .. }),
    ];
    for (phase, belongs) in phases.iter().enumerate() {
        let actions: Vec<_> = plan
            .actions
            .iter()
            .filter(|planned| belongs(&planned.action))
            .collect();
        // Manifests go one by one, in plan order; the rest in parallel.
        let width = if phase == 2 { 1 } else { parallelism.max(1) };
        for batch in actions.chunks(width) {
            let mut tasks = tokio::task::JoinSet::new();
            for planned in batch {
                let blocked_by = upstream
                    .get(&planned.key)
                    .into_iter()
                    .flatten()
                    .find(|before| failed.contains_key(*before))
                    .copied();
                if let Some(before) = blocked_by {
                    failed.insert(
                        planned.key,
                        format!("skipped: a step it needs failed ({})", failed[&before]),
                    );
                    report.skipped += 1;
                    continue;
                }
                let client = client.clone();
                let manifests = manifests.clone();
                let action = planned.action.clone();
                let key = planned.key;
                let registry = target.registry.to_owned();
                let local_blobs = target.local_blobs.clone();
                tasks.spawn(async move {
                    let outcome = run_action(
                        &client,
                        &registry,
                        &action,
                        &manifests,
                        local_blobs.as_ref(),
                    )
                    .await;
                    (key, action, outcome)
                });
            }
            while let Some(joined) = tasks.join_next().await {
                let Ok((key, action, outcome)) = joined else {
                    continue;
                };
                match outcome {
                    Ok(()) => {
                        match &action {
                            Action::Tag {
                                repository,
                                tag,
                                digest,
                            } => state.record_tag(
                                target.destination,
                                &key.to_hex(),
                                repository,
                                tag,
                                digest,
                                now(),
                            )?,
                            other => state.record_action(
                                target.destination,
                                &key.to_hex(),
                                other.kind_name(),
                                now(),
                            )?,
                        }
                        report.completed += 1;
                        report.bytes += action.bytes();
                        progress.action_finished(&action, true);
                    }
                    Err(message) => {
                        tracing::debug!(action = %action.describe(), %message, "action failed");
                        failed.insert(key, format!("{}: {message}", action.describe()));
                        report.failed += 1;
                        progress.action_finished(&action, false);
                    }
                }
            }
        }
    }
    for image in &graph.images {
        let error = image
            .nodes
            .iter()
            .map(|node| graph.action(*node).key())
            .find_map(|key| failed.get(&key).cloned());
        report.images.push(ImageOutcome {
            name: image.name.clone(),
            destination: image.destination.clone(),
            error,
        });
    }
    Ok(report)
}
