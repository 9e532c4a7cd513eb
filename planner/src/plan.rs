//! Diffing the action graph against recorded state, and the plan that
//! comes out: what to do, in which order, and why.

use std::cmp::Reverse;
use std::collections::{BTreeMap, BTreeSet, BinaryHeap, HashMap};

use ferry_schemas::Digest;
use petgraph::graph::NodeIndex;
use serde::Serialize;

use crate::action::{Action, ActionKey};
use crate::fingerprint::ImageRecord;
use crate::graph::ActionGraph;

/// What the state says about a destination (handed in by the store; the
/// planner reads nothing itself).
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct StateSnapshot {
    /// Keys of actions that completed.
    pub done: BTreeSet<ActionKey>,
    /// Tags recorded at the destination: (repository, tag) → digest.
    pub tags: BTreeMap<(String, String), Digest>,
    /// Top manifests found missing at the destination by the check before
    /// planning: (repository, digest). Their images plan again.
    pub missing: BTreeSet<(String, Digest)>,
    /// Blobs found missing in a repository at the destination by
    /// `--verify`: (repository, digest). Each is put back (uploaded when
    /// the upload's own repository lacks it, else linked).
    pub missing_blobs: BTreeSet<(String, Digest)>,
    /// Images completed at this destination, by name: their fingerprint
    /// then and the keys of their actions (see [`crate::fingerprint`]).
    /// An image recorded with the same fingerprint, every key still done,
    /// is not compiled again ([`crate::graph::compile_against`]).
    pub images: HashMap<String, ImageRecord>,
}

/// Why an action is planned.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, schemars::JsonSchema)]
#[serde(tag = "reason", rename_all = "kebab-case")]
pub enum Reason {
    /// The blob was never uploaded to this destination.
    NewBlob,
    /// The blob is at the destination, but not in this repository yet.
    NewLink,
    /// The manifest was never pushed to this repository.
    NewManifest,
    /// The tag was never set.
    NewTag,
    /// The tag points elsewhere now.
    TagMoved { from: Digest, to: Digest },
    /// The state says done, but the destination lacks the image.
    MissingAtDestination,
    /// The state says done, but the destination lacks this blob in this
    /// repository (found by `--verify`).
    MissingBlobAtDestination,
    /// The blob is needed for the next delivery and the cache lacks it.
    NotCached,
    /// No earlier delivery shipped it.
    NotShipped,
}

impl Reason {
    pub fn describe(&self) -> String {
        match self {
            Reason::NewBlob => "new blob".to_owned(),
            Reason::NewLink => "new in this repository".to_owned(),
            Reason::NewManifest => "new manifest".to_owned(),
            Reason::NewTag => "new tag".to_owned(),
            Reason::TagMoved { from, to } => format!("tag moved from {from} to {to}"),
            Reason::MissingAtDestination => "missing at destination".to_owned(),
            Reason::MissingBlobAtDestination => "blob missing at destination".to_owned(),
            Reason::NotCached => "not in the cache".to_owned(),
            Reason::NotShipped => "not shipped before".to_owned(),
        }
    }
}

/// One action to run.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, schemars::JsonSchema)]
pub struct PlannedAction {
    pub key: ActionKey,
    pub action: Action,
    #[serde(flatten)]
    pub reason: Reason,
}

/// How an image changes.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Serialize, schemars::JsonSchema)]
#[serde(rename_all = "kebab-case")]
pub enum ImageChange {
    /// Nothing of it was done before.
    New,
    /// Some of its work is left (a moved tag, a missing manifest, new blobs).
    Changed,
    /// Nothing to do.
    Unchanged,
}

/// The plan's view of one image.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, schemars::JsonSchema)]
pub struct ImagePlan {
    pub name: String,
    pub destination: String,
    pub change: ImageChange,
    /// The most telling reason, for the one-line summary.
    pub reason: Option<String>,
    pub actions: usize,
    pub bytes: u64,
}

/// Totals for the summary.
#[derive(Clone, Debug, Default, PartialEq, Eq, Serialize, schemars::JsonSchema)]
pub struct Totals {
    pub images: usize,
    pub manifests_to_push: usize,
    pub manifests_to_skip: usize,
    pub blobs_to_upload: usize,
    pub blobs_to_link: usize,
    pub blobs_to_skip: usize,
    pub bytes_to_push: u64,
    pub bytes_to_skip: u64,
    pub tags_to_set: usize,
    /// Disk deliveries: blobs to fetch into the cache first.
    #[serde(skip_serializing_if = "is_zero", default)]
    pub blobs_to_fetch: usize,
    #[serde(skip_serializing_if = "is_zero", default)]
    pub bytes_to_fetch: u64,
    /// Disk deliveries: what the next delivery holds.
    #[serde(skip_serializing_if = "is_zero", default)]
    pub blobs_to_pack: usize,
    #[serde(skip_serializing_if = "is_zero", default)]
    pub manifests_to_pack: usize,
    #[serde(skip_serializing_if = "is_zero", default)]
    pub bytes_to_pack: u64,
    #[serde(skip_serializing_if = "is_zero", default)]
    pub images_to_record: usize,
}

fn is_zero<T: Default + PartialEq>(value: &T) -> bool {
    *value == T::default()
}

/// The plan: actions in dependency order, with reasons.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, schemars::JsonSchema)]
pub struct Plan {
    pub actions: Vec<PlannedAction>,
    pub images: Vec<ImagePlan>,
    pub totals: Totals,
}

impl Plan {
    /// Nothing to do.
    pub fn is_empty(&self) -> bool {
        self.actions.is_empty()
    }
}

/// Sorts actions that are ready at the same time: uploads, links,
/// manifests, tags; then by repository, digest and tag.
fn order_key(action: &Action) -> (u8, String, String, String) {
    match action {
        Action::UploadBlob {
            repository, digest, ..
        } => (0, repository.clone(), digest.to_string(), String::new()),
        Action::LinkBlob {
            repository, digest, ..
        } => (1, repository.clone(), digest.to_string(), String::new()),
        Action::PushManifest {
            repository, digest, ..
        } => (2, repository.clone(), digest.to_string(), String::new()),
        Action::Tag {
            repository,
            tag,
            digest,
        } => (3, repository.clone(), digest.to_string(), tag.clone()),
        Action::FetchBlob { digest, .. } => (0, String::new(), digest.to_string(), String::new()),
        Action::PackBlob { digest, .. } => (1, String::new(), digest.to_string(), String::new()),
        Action::PackManifest { digest, .. } => {
            (2, String::new(), digest.to_string(), String::new())
        }
        Action::RecordImage { name, digest } => {
            (3, name.clone(), digest.to_string(), String::new())
        }
    }
}

/// What the state recorded before for a tag, or for an image in a
/// delivery's index.
fn recorded_target<'a>(action: &Action, state: &'a StateSnapshot) -> Option<&'a Digest> {
    match action {
        Action::Tag {
            repository, tag, ..
        } => state.tags.get(&(repository.clone(), tag.clone())),
        Action::RecordImage { name, .. } => state.tags.get(&(name.clone(), String::new())),
        _ => None,
    }
}

/// Diffs `graph` against `state`.
pub fn plan(graph: &ActionGraph, state: &StateSnapshot) -> Plan {
    let keys = graph.node_keys();
    // Images whose top manifest is missing at the destination: all their
    // work is planned again, whatever the state says.
    let mut forced: BTreeSet<NodeIndex> = BTreeSet::new();
    for image in graph.images() {
        if !state.missing.is_empty()
            && let Some(top_manifest) = image.top_manifest()
            && let Action::PushManifest {
                repository, digest, ..
            } = graph.action(top_manifest)
            && state
                .missing
                .contains(&(repository.clone(), digest.clone()))
        {
            forced.extend(image.nodes());
        }
    }
    let mut reasons: BTreeMap<NodeIndex, Reason> = BTreeMap::new();
    // Images left out of the graph (unchanged): their actions are all
    // done, counted as skipped.
    let mut totals = Totals {
        images: graph.images().len(),
        manifests_to_skip: graph.unchanged.manifests,
        blobs_to_skip: graph.unchanged.blobs,
        bytes_to_skip: graph.unchanged.bytes,
        ..Totals::default()
    };
    // A blob `--verify` found missing in a repository: the upload into
    // that repository, or the link into it, is not done any more.
    let blob_missing = |node: NodeIndex| match graph.action(node) {
        _ if state.missing_blobs.is_empty() => false,
        Action::UploadBlob {
            repository, digest, ..
        }
        | Action::LinkBlob {
            repository, digest, ..
        } => state
            .missing_blobs
            .contains(&(repository.clone(), digest.clone())),
        _ => false,
    };
    let is_done = |node: NodeIndex| {
        state.done.contains(&keys[node.index()]) && !forced.contains(&node) && !blob_missing(node)
    };
    // A fetch into the cache is work only when the pack it feeds is.
    let is_planned = |node: NodeIndex| {
        !is_done(node)
            && (!matches!(graph.action(node), Action::FetchBlob { .. })
                || graph.downstream(node).any(|pack| !is_done(pack)))
    };
    // Repositories known to have each blob (their link is recorded), for
    // choosing where to mount from.
    let mut holders: BTreeMap<&Digest, BTreeSet<&str>> = BTreeMap::new();
    for (digest, repositories) in &graph.unchanged.holders {
        holders
            .entry(digest)
            .or_default()
            .extend(repositories.iter().map(String::as_str));
    }
    for node in graph.nodes() {
        if let Action::LinkBlob {
            repository, digest, ..
        } = graph.action(node)
            && is_done(node)
        {
            holders.entry(digest).or_default().insert(repository);
        }
    }
    for node in graph.nodes() {
        let action = graph.action(node);
        let key = keys[node.index()];
        let done = !is_planned(node);
        // The link into an upload's own repository: left out when the
        // upload runs (the upload puts the blob there), and counted only
        // when it is planned on its own.
        if let Action::LinkBlob {
            repository,
            from_repository,
            ..
        } = action
            && repository == from_repository
        {
            let upload_runs = graph.upstream(node).any(|upload| !is_done(upload));
            if done || upload_runs {
                continue;
            }
        }
        match action {
            Action::UploadBlob { size, .. } | Action::LinkBlob { size, .. } => {
                if done {
                    totals.blobs_to_skip += 1;
                    // Only an upload would have moved bytes.
                    if matches!(action, Action::UploadBlob { .. }) {
                        totals.bytes_to_skip += size;
                    }
                } else if matches!(action, Action::UploadBlob { .. }) {
                    totals.blobs_to_upload += 1;
                    totals.bytes_to_push += size;
                } else {
                    totals.blobs_to_link += 1;
                }
            }
            Action::PushManifest { size, .. } => {
                if done {
                    totals.manifests_to_skip += 1;
                    totals.bytes_to_skip += size;
                } else {
                    totals.manifests_to_push += 1;
                    totals.bytes_to_push += size;
                }
            }
            Action::Tag { .. } => {
                if !done {
                    totals.tags_to_set += 1;
                }
            }
            Action::FetchBlob { size, .. } => {
                if !done {
                    totals.blobs_to_fetch += 1;
                    totals.bytes_to_fetch += size;
                }
            }
            Action::PackBlob { size, .. } => {
                if done {
                    totals.blobs_to_skip += 1;
                    totals.bytes_to_skip += size;
                } else {
                    totals.blobs_to_pack += 1;
                    totals.bytes_to_pack += size;
                }
            }
            Action::PackManifest { size, .. } => {
                if done {
                    totals.manifests_to_skip += 1;
                    totals.bytes_to_skip += size;
                } else {
                    totals.manifests_to_pack += 1;
                    totals.bytes_to_pack += size;
                }
            }
            Action::RecordImage { .. } => {
                if !done {
                    totals.images_to_record += 1;
                }
            }
        }
        if done {
            continue;
        }
        let reason = if forced.contains(&node) && state.done.contains(&key) {
            Reason::MissingAtDestination
        } else if blob_missing(node) && state.done.contains(&key) {
            Reason::MissingBlobAtDestination
        } else {
            match action {
                Action::UploadBlob { .. } => Reason::NewBlob,
                Action::LinkBlob { .. } => Reason::NewLink,
                Action::PushManifest { .. } => Reason::NewManifest,
                Action::FetchBlob { .. } => Reason::NotCached,
                Action::PackBlob { .. } | Action::PackManifest { .. } => Reason::NotShipped,
                Action::Tag { digest, .. } | Action::RecordImage { digest, .. } => {
                    match recorded_target(action, state) {
                        Some(previous) if previous != digest => Reason::TagMoved {
                            from: previous.clone(),
                            to: digest.clone(),
                        },
                        _ => Reason::NewTag,
                    }
                }
            }
        };
        reasons.insert(node, reason);
    }

    // Dependency order, ties broken by kind, repository and digest (not by
    // key, which hashes the destination), so the same input always gives
    // the same plan and plans for two destinations list actions alike.
    let mut waiting: BTreeMap<NodeIndex, usize> = BTreeMap::new();
    let mut ready = BinaryHeap::new();
    for node in reasons.keys() {
        let blockers = graph
            .upstream(*node)
            .filter(|upstream| reasons.contains_key(upstream))
            .count();
        if blockers == 0 {
            ready.push(Reverse((order_key(graph.action(*node)), *node)));
        } else {
            waiting.insert(*node, blockers);
        }
    }
    let mut actions = Vec::new();
    while let Some(Reverse((_, node))) = ready.pop() {
        let mut action = graph.action(node).clone();
        // A link whose upload was done in an earlier run mounts from a
        // repository known to have the blob.
        if let Action::LinkBlob {
            repository,
            digest,
            from_repository,
            ..
        } = &mut action
            && graph.upstream(node).all(is_done)
            && let Some(holder) = holders
                .get(&*digest)
                .and_then(|found| found.iter().find(|holder| **holder != repository.as_str()))
        {
            *from_repository = (*holder).to_owned();
        }
        actions.push(PlannedAction {
            key: keys[node.index()],
            action,
            reason: reasons[&node].clone(),
        });
        for downstream in graph.downstream(node) {
            if let Some(count) = waiting.get_mut(&downstream) {
                *count -= 1;
                if *count == 0 {
                    waiting.remove(&downstream);
                    ready.push(Reverse((order_key(graph.action(downstream)), downstream)));
                }
            }
        }
    }

    let images = graph
        .images()
        .iter()
        .map(|image| {
            let Some(top_manifest) = image.top_manifest() else {
                return ImagePlan {
                    name: image.name().to_owned(),
                    destination: image.destination().to_owned(),
                    change: ImageChange::Unchanged,
                    reason: None,
                    actions: 0,
                    bytes: 0,
                };
            };
            // An upload into another image's repository is that image's
            // work: this image's share of it is its own link, so an intact
            // image that shares a re-uploaded layer stays unchanged.
            let own_repository = match graph.action(top_manifest) {
                Action::PushManifest { repository, .. } => Some(repository.as_str()),
                _ => None,
            };
            let planned: Vec<NodeIndex> = image
                .nodes()
                .filter(|node| reasons.contains_key(node))
                .filter(|node| match graph.action(*node) {
                    Action::UploadBlob { repository, .. } => {
                        own_repository.is_none_or(|own| own == repository)
                    }
                    _ => true,
                })
                .collect();
            // An image is new when neither its top manifest nor its tag was
            // ever recorded here.
            let tag_recorded = image
                .tag_node()
                .is_some_and(|tag| recorded_target(graph.action(tag), state).is_some());
            let ever_done = tag_recorded || state.done.contains(&keys[top_manifest.index()]);
            let change = match (planned.is_empty(), ever_done) {
                (true, _) => ImageChange::Unchanged,
                (false, false) => ImageChange::New,
                (false, true) => ImageChange::Changed,
            };
            let reason = match change {
                ImageChange::Unchanged => None,
                ImageChange::New => Some("new image".to_owned()),
                ImageChange::Changed => {
                    let tag_reason = image.tag_node().and_then(|tag| reasons.get(&tag));
                    let chosen = tag_reason
                        .filter(|reason| matches!(reason, Reason::TagMoved { .. }))
                        .or_else(|| {
                            planned.iter().map(|node| &reasons[node]).find(|reason| {
                                matches!(
                                    reason,
                                    Reason::MissingAtDestination | Reason::MissingBlobAtDestination
                                )
                            })
                        })
                        .or_else(|| planned.first().map(|node| &reasons[node]));
                    chosen.map(Reason::describe)
                }
            };
            ImagePlan {
                name: image.name().to_owned(),
                destination: image.destination().to_owned(),
                change,
                reason,
                actions: planned.len(),
                // What reaches the destination or the delivery (a fetch
                // into the cache only feeds a pack).
                bytes: planned
                    .iter()
                    .map(|node| graph.action(*node))
                    .filter(|action| !matches!(action, Action::FetchBlob { .. }))
                    .map(Action::bytes)
                    .sum(),
            }
        })
        .collect();
    Plan {
        actions,
        images,
        totals,
    }
}
