//! What other image sets still need at a registry, so a delete leaves it
//! alone unless forced. Image sets are known from the cache they share:
//! every workspace (or disk folder) whose run mirrored to a registry
//! records itself in `<cache>/workspaces/` ([`ferry_store::image_sets`]);
//! each one's state says which tags it set at which destination, and its
//! recorded manifests which manifests and blobs those tags reach. The
//! deleting workspace's own other destinations on the same registry (other
//! prefixes) count as image sets too: the registry's storage is one.

use std::collections::{BTreeMap, BTreeSet};
use std::path::{Path, PathBuf};

use ferry_planner::{Action, ActionGraph, Destination, ResolvedManifest};
use ferry_schemas::Digest;
use ferry_store::{FinishedAction, WorkspaceState};

use crate::workflow::error::{Result, WorkflowError};
use crate::workflow::to_disk::Notice;
use crate::workflow::workspace::Workspace;

/// One other image set's content at the registry.
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct OtherImageSet {
    /// How messages name it: its workspace folder (and destination).
    pub name: String,
    /// (repository, tag) → digest it set at the registry.
    pub tags: BTreeMap<(String, String), Digest>,
    /// Every manifest its tags reach: (repository, digest).
    pub manifests: BTreeSet<(String, Digest)>,
    /// Every digest its tags reach (manifests, configs, layers): what the
    /// registry's garbage collector keeps for it.
    pub digests: BTreeSet<Digest>,
    /// The manifests its state recorded for them, by digest.
    pub known: BTreeMap<Digest, ResolvedManifest>,
}

/// The other image sets at one registry.
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct SharedContent {
    pub image_sets: Vec<OtherImageSet>,
}

/// A manifest tree as far as `lookup` knows it: every manifest reached
/// from `top` (top first), and whether every one of them was known.
pub fn manifest_tree(
    top: &Digest,
    lookup: &dyn Fn(&Digest) -> Option<ResolvedManifest>,
) -> (Vec<ResolvedManifest>, bool) {
    let mut tree = Vec::new();
    let mut complete = true;
    let mut seen = BTreeSet::new();
    let mut pending = vec![top.clone()];
    while let Some(digest) = pending.pop() {
        if !seen.insert(digest.clone()) {
            continue;
        }
        match lookup(&digest) {
            Some(manifest) => {
                pending.extend(manifest.children.iter().rev().cloned());
                tree.push(manifest);
            }
            None => complete = false,
        }
    }
    (tree, complete)
}

/// A manifest as a workspace state recorded it, described.
pub fn recorded_manifest(state: &WorkspaceState, digest: &Digest) -> Option<ResolvedManifest> {
    let recorded = state.manifest(digest).ok().flatten()?;
    crate::resolve::describe(&ferry_registry::Manifest {
        media_type: recorded.media_type,
        digest: recorded.digest,
        bytes: recorded.content.into(),
    })
    .ok()
}

/// Whether the destination `recorded` (`registry[/prefix]`) is on `registry`.
fn on_registry(recorded: &str, registry: &str) -> bool {
    recorded == registry
        || recorded
            .strip_prefix(registry)
            .is_some_and(|rest| rest.starts_with('/'))
}

impl OtherImageSet {
    /// What `state` recorded at `destination` (a `registry[/prefix]`).
    fn read(name: String, state: &WorkspaceState, destination: &str) -> Result<Self> {
        let history = state
            .history(destination)
            .map_err(WorkflowError::environment)?;
        let mut image_set = OtherImageSet {
            name,
            ..OtherImageSet::default()
        };
        for ((repository, _), digest) in &history.tags {
            let (tree, _) = manifest_tree(digest, &|digest| recorded_manifest(state, digest));
            image_set
                .manifests
                .insert((repository.clone(), digest.clone()));
            image_set.digests.insert(digest.clone());
            for manifest in tree {
                image_set
                    .manifests
                    .insert((repository.clone(), manifest.digest.clone()));
                image_set.digests.insert(manifest.digest.clone());
                image_set
                    .digests
                    .extend(manifest.blobs.iter().map(|(digest, _)| digest.clone()));
                image_set.known.insert(manifest.digest.clone(), manifest);
            }
        }
        image_set.tags = history.tags;
        Ok(image_set)
    }
}

impl SharedContent {
    /// The image sets the cache at `cache_root` records, other than the
    /// deleting workspace `own` at `own_destination`, with what each
    /// recorded at `registry`; `own`'s other destinations there too.
    /// Workspaces that cannot be read are named in the notices.
    pub fn load(
        cache_root: &Path,
        own: &Path,
        own_destination: &str,
        registry: &str,
    ) -> Result<(Self, Vec<Notice>)> {
        let mut shared = SharedContent::default();
        let mut notices = Vec::new();
        let root = |folder: &Path| {
            let root = Workspace::in_folder(folder).root().to_path_buf();
            std::path::absolute(&root).unwrap_or(root)
        };
        let own = root(own);
        let workspaces =
            ferry_store::image_sets::recorded_workspaces(cache_root).map_err(|cause| {
                WorkflowError::environment(format!(
                    "cannot read the image sets recorded in the cache {}: {cause}",
                    cache_root.display()
                ))
            })?;
        let mut workspaces: Vec<PathBuf> = workspaces.iter().map(|folder| root(folder)).collect();
        if !workspaces.contains(&own) {
            workspaces.push(own.clone());
        }
        workspaces.sort();
        workspaces.dedup();
        for folder in workspaces {
            let workspace = Workspace::in_folder(&folder);
            if !workspace.state_file().is_file() {
                continue;
            }
            let state = match workspace.open_state() {
                Ok(state) => state,
                Err(cause) => {
                    notices.push(Notice::Warning(format!(
                        "the image set in {} could not be read, so what it needs is not protected: {cause}",
                        folder.display()
                    )));
                    continue;
                }
            };
            let destinations = state.destinations().map_err(WorkflowError::environment)?;
            for destination in destinations {
                let is_own = folder == own && destination == own_destination;
                if is_own || !on_registry(&destination, registry) {
                    continue;
                }
                // The folder the user named (the one holding `working-dir`).
                let shown = folder.parent().unwrap_or(&folder).display();
                let name = if folder == own {
                    format!("this workspace's docker://{destination}")
                } else {
                    format!("{shown} (docker://{destination})")
                };
                shared
                    .image_sets
                    .push(OtherImageSet::read(name, &state, &destination)?);
            }
        }
        Ok((shared, notices))
    }

    /// The image sets that need the tag `repository:tag`, or the manifest
    /// `digest` in `repository`, each with the tags of theirs involved:
    /// `(image set, [repository:tag...])`.
    pub fn needing(
        &self,
        repository: &str,
        tag: &str,
        digest: Option<&Digest>,
    ) -> Vec<(String, Vec<String>)> {
        let mut needing = Vec::new();
        for image_set in &self.image_sets {
            let mut tags: Vec<String> = image_set
                .tags
                .iter()
                .filter(|((their_repository, their_tag), their_digest)| {
                    their_repository == repository
                        && (their_tag == tag || Some(*their_digest) == digest)
                })
                .map(|((their_repository, their_tag), _)| format!("{their_repository}:{their_tag}"))
                .collect();
            let child = digest.is_some_and(|digest| {
                image_set
                    .manifests
                    .contains(&(repository.to_owned(), digest.clone()))
            });
            if tags.is_empty() && child {
                tags.push(format!(
                    "{repository}@{}",
                    digest.map(ToString::to_string).unwrap_or_default()
                ));
            }
            if !tags.is_empty() {
                needing.push((image_set.name.clone(), tags));
            }
        }
        needing
    }

    /// Whether another image set reaches the manifest `digest` in `repository`.
    pub fn holds_manifest(&self, repository: &str, digest: &Digest) -> bool {
        self.image_sets.iter().any(|image_set| {
            image_set
                .manifests
                .contains(&(repository.to_owned(), digest.clone()))
        })
    }

    /// Every digest another image set reaches at the registry.
    pub fn digests(&self) -> BTreeSet<Digest> {
        self.image_sets
            .iter()
            .flat_map(|image_set| image_set.digests.iter().cloned())
            .collect()
    }
}

/// How a protected item is named: the image sets needing it and their tags.
pub fn describe_needing(needing: &[(String, Vec<String>)]) -> String {
    needing
        .iter()
        .map(|(name, tags)| format!("the image set {name} ({})", tags.join(", ")))
        .collect::<Vec<_>>()
        .join("; ")
}

/// Records in `state` the tag of every image of `graph` now at
/// `destination` (the images named in `failed` left out): the tags the
/// run set and those it found already there (which a run does not record
/// as it does not set them), so the state says everything this image set
/// needs at the registry, for another image set's delete to protect.
pub fn record_present_tags(
    state: &mut WorkspaceState,
    destination: &Destination,
    graph: &ActionGraph,
    failed: &BTreeSet<&str>,
    now: i64,
) -> Result<()> {
    // An unchanged image (left out of the graph) had its tag recorded
    // when it completed.
    let present: Vec<FinishedAction> = graph
        .images()
        .iter()
        .filter(|image| !failed.contains(image.name()))
        .filter_map(|image| image.tag_node())
        .filter_map(|node| match graph.action(node) {
            Action::Tag {
                repository,
                tag,
                digest,
            } => Some(FinishedAction::Tag {
                key: graph.key(node),
                repository: repository.clone(),
                tag: tag.clone(),
                digest: digest.clone(),
            }),
            _ => None,
        })
        .collect();
    state
        .record_finished(&destination.display(), &present, now)
        .map_err(WorkflowError::environment)
}
