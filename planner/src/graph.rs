//! Compiling resolved images into the action graph.
//!
//! Input is pure data: every image pinned to a digest with its whole
//! manifest tree (what the resolver read). Output is a petgraph DAG whose
//! nodes are [`Action`]s, one per key (identical work is one node), and
//! whose edges say "must finish before": blobs before the manifests that
//! name them, child manifests before their index, the top manifest before
//! its tag.

use std::collections::{BTreeMap, BTreeSet};

use ferry_schemas::Digest;
use petgraph::Direction;
use petgraph::graph::{DiGraph, NodeIndex};

use crate::action::{Action, ActionKey};
use crate::category::Category;
use crate::fingerprint::{ImageFingerprint, ImageRecord};
use crate::plan::StateSnapshot;
use crate::source::Source;
use crate::{FastMap, FastSet};

/// One manifest of a resolved image, with what it names.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct ResolvedManifest {
    pub digest: Digest,
    pub media_type: String,
    pub size: u64,
    /// Child manifests (for an index or list).
    pub children: Vec<Digest>,
    /// Config and layers, with sizes (for an image manifest).
    pub blobs: Vec<(Digest, u64)>,
}

/// An image pinned to a digest, with where it comes from and goes to.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct ResolvedImage {
    /// The name as the configuration wrote it.
    pub name: String,
    /// Where its manifests and (unless `blob_sources` says otherwise) its
    /// blobs are read.
    pub source: Source,
    /// Blobs read from elsewhere than `source`: a built image's new layers
    /// come from the cache while its base layers come from a registry.
    pub blob_sources: BTreeMap<Digest, Source>,
    /// Repository path at the destination registry.
    pub destination_repository: String,
    /// The tag to set at the destination, if any.
    pub destination_tag: Option<String>,
    /// The top manifest.
    pub top: Digest,
    /// The whole tree: the top manifest and every child.
    pub manifests: Vec<ResolvedManifest>,
    /// What the image is part of (a signature is its image's).
    pub category: Category,
    /// For a cosign signature, the top digest of the image it signs (a
    /// signature is not an image of its own in the counts people read).
    pub signature_of: Option<Digest>,
}

impl ResolvedImage {
    /// Where blob `digest` of this image is read.
    pub fn blob_source(&self, digest: &Digest) -> &Source {
        self.blob_sources.get(digest).unwrap_or(&self.source)
    }
}

/// Where everything goes: `registry[/prefix]`.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Destination {
    pub registry: String,
    pub prefix: String,
}

impl Destination {
    /// `registry/prefix` (or just the registry).
    pub fn display(&self) -> String {
        if self.prefix.is_empty() {
            self.registry.clone()
        } else {
            format!("{}/{}", self.registry, self.prefix)
        }
    }
}

/// The nodes that belong to one image. An image the state records as
/// complete with the same fingerprint is not compiled: it has no nodes
/// ([`ImageNodes::is_unchanged`]).
#[derive(Clone, Debug)]
pub struct ImageNodes {
    name: String,
    destination: String,
    repository: String,
    tag_name: Option<String>,
    top: Digest,
    fingerprint: Option<ImageFingerprint>,
    compiled: Option<CompiledNodes>,
}

#[derive(Clone, Debug)]
struct CompiledNodes {
    nodes: BTreeSet<NodeIndex>,
    top_manifest: NodeIndex,
    tag: Option<NodeIndex>,
}

impl ImageNodes {
    /// The name as the configuration wrote it.
    pub fn name(&self) -> &str {
        &self.name
    }

    /// Where it goes, for people (`registry/repository:tag`, or the
    /// delivery's `repository:tag`).
    pub fn destination(&self) -> &str {
        &self.destination
    }

    /// Its repository at the destination.
    pub fn repository(&self) -> &str {
        &self.repository
    }

    /// The tag it sets at the destination, if any.
    pub fn tag(&self) -> Option<&str> {
        self.tag_name.as_deref()
    }

    /// Its top manifest.
    pub fn top(&self) -> &Digest {
        &self.top
    }

    /// Its fingerprint (images compiled for a registry).
    pub fn fingerprint(&self) -> Option<ImageFingerprint> {
        self.fingerprint
    }

    /// Not compiled: the state records it complete with the same inputs.
    pub fn is_unchanged(&self) -> bool {
        self.compiled.is_none()
    }

    /// Every node of the image (none when unchanged).
    pub fn nodes(&self) -> impl Iterator<Item = NodeIndex> + '_ {
        self.compiled
            .iter()
            .flat_map(|compiled| compiled.nodes.iter().copied())
    }

    /// The node pushing its top manifest (packing it, for a delivery).
    pub fn top_manifest(&self) -> Option<NodeIndex> {
        self.compiled.as_ref().map(|compiled| compiled.top_manifest)
    }

    /// The node setting its tag (recording it, for a delivery).
    pub fn tag_node(&self) -> Option<NodeIndex> {
        self.compiled.as_ref().and_then(|compiled| compiled.tag)
    }
}

/// What the images left uncompiled contribute to a plan: their actions
/// the compiled graph does not hold (all done) counted as skipped, and the
/// repositories their done links say hold a blob the graph links.
#[derive(Clone, Debug, Default)]
pub(crate) struct UnchangedWork {
    pub(crate) manifests: usize,
    pub(crate) blobs: usize,
    pub(crate) bytes: u64,
    pub(crate) holders: BTreeMap<Digest, BTreeSet<String>>,
}

/// The compiled graph, read through its queries.
#[derive(Clone, Debug)]
pub struct ActionGraph {
    graph: DiGraph<Action, ()>,
    keys: FastMap<ActionKey, NodeIndex>,
    node_keys: Vec<ActionKey>,
    images: Vec<ImageNodes>,
    pub(crate) unchanged: UnchangedWork,
}

impl ActionGraph {
    fn empty() -> Self {
        ActionGraph {
            graph: DiGraph::new(),
            keys: FastMap::default(),
            node_keys: Vec::new(),
            images: Vec::new(),
            unchanged: UnchangedWork::default(),
        }
    }

    /// The action of a node.
    pub fn action(&self, node: NodeIndex) -> &Action {
        &self.graph[node]
    }

    /// The key of a node, as compiled (not hashed again).
    pub fn key(&self, node: NodeIndex) -> ActionKey {
        self.node_keys[node.index()]
    }

    /// The node of a key, if the graph holds it.
    pub fn node(&self, key: &ActionKey) -> Option<NodeIndex> {
        self.keys.get(key).copied()
    }

    /// Every node's key, by node index.
    pub fn node_keys(&self) -> &[ActionKey] {
        &self.node_keys
    }

    /// Every node, in the order compiled.
    pub fn nodes(&self) -> impl Iterator<Item = NodeIndex> + '_ {
        self.graph.node_indices()
    }

    /// How many nodes.
    pub fn node_count(&self) -> usize {
        self.graph.node_count()
    }

    /// The nodes that must finish before `node`.
    pub fn upstream(&self, node: NodeIndex) -> impl Iterator<Item = NodeIndex> + '_ {
        self.graph.neighbors_directed(node, Direction::Incoming)
    }

    /// The nodes waiting for `node`.
    pub fn downstream(&self, node: NodeIndex) -> impl Iterator<Item = NodeIndex> + '_ {
        self.graph.neighbors_directed(node, Direction::Outgoing)
    }

    /// How many edges.
    pub fn edge_count(&self) -> usize {
        self.graph.edge_count()
    }

    /// Whether `after` waits for `before` directly.
    pub fn has_edge(&self, before: NodeIndex, after: NodeIndex) -> bool {
        self.graph.contains_edge(before, after)
    }

    /// Whether no action waits for itself.
    pub fn is_acyclic(&self) -> bool {
        !petgraph::algo::is_cyclic_directed(&self.graph)
    }

    /// Every image, in the image set's order (unchanged ones too).
    pub fn images(&self) -> &[ImageNodes] {
        &self.images
    }

    /// What the state should record of each compiled image of `images`
    /// once every action of it is done: its fingerprint and keys.
    pub fn record_of(&self, image: &ImageNodes) -> Option<ImageRecord> {
        let fingerprint = image.fingerprint?;
        image.compiled.as_ref()?;
        Some(ImageRecord {
            fingerprint,
            keys: image.nodes().map(|node| self.key(node)).collect(),
        })
    }
}

/// An [`ActionGraph`] being built: adds each node once per key and each
/// edge once. Edges are deduplicated through a set, not by searching the
/// node's edges: a base layer's upload feeds the manifest of every image,
/// and a search per edge would make compiling quadratic in images.
struct Builder {
    graph: ActionGraph,
    edges: FastSet<(NodeIndex, NodeIndex)>,
}

impl Builder {
    fn new() -> Self {
        Builder {
            graph: ActionGraph::empty(),
            edges: FastSet::default(),
        }
    }

    fn node(&mut self, action: Action) -> NodeIndex {
        let key = action.key();
        let graph = &mut self.graph;
        *graph.keys.entry(key).or_insert_with(|| {
            graph.node_keys.push(key);
            graph.graph.add_node(action)
        })
    }

    fn edge(&mut self, before: NodeIndex, after: NodeIndex) {
        if self.edges.insert((before, after)) {
            self.graph.graph.add_edge(before, after, ());
        }
    }

    /// Edges from each child manifest of `image` to the index naming it.
    fn children_before_parents(
        &mut self,
        image: &ResolvedImage,
        manifest_nodes: &BTreeMap<&Digest, NodeIndex>,
    ) {
        for manifest in &image.manifests {
            let parent = manifest_nodes[&manifest.digest];
            for child in &manifest.children {
                if let Some(child_node) = manifest_nodes.get(child) {
                    self.edge(*child_node, parent);
                }
            }
        }
    }

    fn push_image(
        &mut self,
        image: &ResolvedImage,
        destination: String,
        fingerprint: Option<ImageFingerprint>,
        compiled: Option<CompiledNodes>,
    ) {
        self.graph.images.push(ImageNodes {
            name: image.name.clone(),
            destination,
            repository: image.destination_repository.clone(),
            tag_name: image.destination_tag.clone(),
            top: image.top.clone(),
            fingerprint,
            compiled,
        });
    }
}

/// Compiles every image into the action graph for `destination`.
pub fn compile(images: &[ResolvedImage], destination: &Destination) -> ActionGraph {
    compile_against(images, destination, &StateSnapshot::default())
}

/// What every image says of each blob: its size and source (the first
/// image naming it) and the repository that receives its upload (the
/// first, in name order, of those needing it; the others link to it).
/// Keys borrow from `images`: compiling 10,000 images must not clone a
/// digest per lookup.
struct BlobFacts<'a> {
    by_digest: FastMap<&'a Digest, BlobFact<'a>>,
}

#[derive(Clone, Copy)]
struct BlobFact<'a> {
    size: u64,
    source: &'a Source,
    /// The repository that receives the upload.
    first: &'a str,
}

impl<'a> BlobFacts<'a> {
    fn of(images: &'a [ResolvedImage]) -> Self {
        let mut by_digest: FastMap<&Digest, BlobFact<'_>> = FastMap::default();
        for image in images {
            let repository = image.destination_repository.as_str();
            for manifest in &image.manifests {
                for (digest, size) in &manifest.blobs {
                    by_digest
                        .entry(digest)
                        .and_modify(|fact| {
                            if repository < fact.first {
                                fact.first = repository;
                            }
                        })
                        .or_insert_with(|| BlobFact {
                            size: *size,
                            source: image.blob_source(digest),
                            first: repository,
                        });
                }
            }
        }
        BlobFacts { by_digest }
    }

    /// The size and source of a blob some image names.
    fn get(&self, digest: &Digest) -> BlobFact<'a> {
        self.by_digest[digest]
    }

    /// The repository that receives the blob's upload.
    fn first(&self, digest: &Digest) -> Option<&'a str> {
        self.by_digest.get(digest).map(|fact| fact.first)
    }
}

/// Which destination repositories of the compiled images need each blob,
/// in digest order (each gets a link node).
fn blob_repositories<'i>(
    images: impl Iterator<Item = &'i ResolvedImage>,
) -> BTreeMap<&'i Digest, BTreeSet<&'i str>> {
    let mut repositories: BTreeMap<&Digest, BTreeSet<&str>> = BTreeMap::new();
    for image in images {
        for manifest in &image.manifests {
            for (digest, _) in &manifest.blobs {
                repositories
                    .entry(digest)
                    .or_default()
                    .insert(&image.destination_repository);
            }
        }
    }
    repositories
}

/// Compiles images into the action graph for `destination`, leaving out
/// every image `state` records as complete with the same fingerprint (see
/// [`crate::fingerprint`]): its record's keys all done, no top manifest of
/// its repositories found missing, no blob found missing. Such an image
/// has no nodes, and [`crate::plan::plan`] counts its actions as skipped
/// exactly as if it had been compiled, so the plan is the same.
pub fn compile_against(
    images: &[ResolvedImage],
    destination: &Destination,
    state: &StateSnapshot,
) -> ActionGraph {
    let everything = BlobFacts::of(images);
    let unchanged = unchanged_images(images, destination, state, &everything);
    let compiled = || {
        images
            .iter()
            .zip(&unchanged)
            .filter(|(_, (_, unchanged))| !unchanged)
            .map(|(image, _)| image)
    };
    let needed = blob_repositories(compiled());
    let destination_display = destination.display();
    let mut graph = Builder::new();
    // (repository, digest) → the link node that makes the blob present
    // there, and the upload behind it. Every repository that needs a blob
    // has a link node, the upload's own repository too: the upload makes
    // the blob present at the destination, the link in one repository. The
    // planner leaves out the link into the upload's own repository when
    // the upload itself is planned (the upload puts the blob there). Only
    // compiled images' repositories get nodes; the upload goes where it
    // would if every image were compiled.
    let mut blob_nodes: FastMap<(&str, &Digest), (NodeIndex, NodeIndex)> = FastMap::default();
    for (digest, repositories) in &needed {
        let BlobFact {
            size,
            source,
            first,
        } = everything.get(digest);
        let upload = graph.node(Action::UploadBlob {
            destination: destination_display.clone(),
            repository: first.to_owned(),
            digest: (*digest).clone(),
            size,
            source: source.clone(),
        });
        for repository in repositories {
            let link = graph.node(Action::LinkBlob {
                repository: (*repository).to_owned(),
                digest: (*digest).clone(),
                size,
                from_repository: first.to_owned(),
                source: source.clone(),
            });
            graph.edge(upload, link);
            blob_nodes.insert((repository, digest), (link, upload));
        }
    }
    for (image, (fingerprint, unchanged)) in images.iter().zip(&unchanged) {
        let repository = &image.destination_repository;
        let destination_name = destination_name(&destination.registry, image);
        if *unchanged {
            graph.push_image(image, destination_name, Some(*fingerprint), None);
            continue;
        }
        let mut nodes = BTreeSet::new();
        let mut manifest_nodes: BTreeMap<&Digest, NodeIndex> = BTreeMap::new();
        for manifest in &image.manifests {
            let node = graph.node(Action::PushManifest {
                repository: repository.clone(),
                digest: manifest.digest.clone(),
                media_type: manifest.media_type.clone(),
                size: manifest.size,
                source: image.source.clone(),
            });
            manifest_nodes.insert(&manifest.digest, node);
            nodes.insert(node);
            for (digest, _) in &manifest.blobs {
                if let Some((link, upload)) = blob_nodes.get(&(repository.as_str(), digest)) {
                    // The upload comes first even when the link into its
                    // own repository is left out of the plan.
                    graph.edge(*link, node);
                    graph.edge(*upload, node);
                    nodes.insert(*link);
                    nodes.insert(*upload);
                }
            }
        }
        graph.children_before_parents(image, &manifest_nodes);
        let top_manifest = manifest_nodes[&image.top];
        let tag = image.destination_tag.as_ref().map(|tag| {
            let node = graph.node(Action::Tag {
                repository: repository.clone(),
                tag: tag.clone(),
                digest: image.top.clone(),
            });
            graph.edge(top_manifest, node);
            nodes.insert(node);
            node
        });
        graph.push_image(
            image,
            destination_name,
            Some(*fingerprint),
            Some(CompiledNodes {
                nodes,
                top_manifest,
                tag,
            }),
        );
    }
    let left_out = images
        .iter()
        .zip(&unchanged)
        .filter(|(_, (_, unchanged))| *unchanged)
        .map(|(image, _)| image);
    graph.graph.unchanged = unchanged_work(left_out, &graph.graph, &everything);
    graph.graph
}

/// `registry/repository:tag`, or `registry/repository@digest` for an
/// image without a tag: where an image goes, for people. Written piece by
/// piece into one allocation (no formatting machinery once per image).
fn destination_name(registry: &str, image: &ResolvedImage) -> String {
    let repository = image.destination_repository.as_str();
    let mut name = String::with_capacity(registry.len() + repository.len() + 80);
    name.push_str(registry);
    name.push('/');
    name.push_str(repository);
    match &image.destination_tag {
        Some(tag) => {
            name.push(':');
            name.push_str(tag);
        }
        None => {
            name.push('@');
            name.push_str(image.top.algorithm().name());
            name.push(':');
            name.push_str(image.top.hex());
        }
    }
    name
}

/// Each image's fingerprint, and whether it is left out of the graph.
fn unchanged_images(
    images: &[ResolvedImage],
    destination: &Destination,
    state: &StateSnapshot,
    places: &BlobFacts<'_>,
) -> Vec<(ImageFingerprint, bool)> {
    // An image found missing plans all its work again, and that work may be
    // shared with the other images of its repository and of the
    // repositories its uploads go to: those are compiled too.
    let mut touched: FastSet<&str> = FastSet::default();
    if !state.missing.is_empty() {
        for image in images {
            if state
                .missing
                .contains(&(image.destination_repository.clone(), image.top.clone()))
            {
                touched.insert(&image.destination_repository);
                for manifest in &image.manifests {
                    touched.extend(
                        manifest
                            .blobs
                            .iter()
                            .filter_map(|(digest, _)| places.first(digest)),
                    );
                }
            }
        }
    }
    images
        .iter()
        .map(|image| {
            let fingerprint = ImageFingerprint::of(image, destination);
            let unchanged = state.missing_blobs.is_empty()
                && !touched.contains(image.destination_repository.as_str())
                && state.images.get(&image.name).is_some_and(|record| {
                    record.fingerprint == fingerprint
                        && record.keys.iter().all(|key| state.done.contains(key))
                })
                // A blob another image names with another size is uploaded
                // with the first size: compiled, to be exact.
                && image.manifests.iter().all(|manifest| {
                    manifest
                        .blobs
                        .iter()
                        .all(|(digest, size)| places.get(digest).size == *size)
                });
            (fingerprint, unchanged)
        })
        .collect()
}

/// What the images left out contribute to a plan: every action of theirs
/// the graph does not hold (each done) counted once, as a plan over every
/// image would count it (not the link into an upload's own repository),
/// and which repositories hold the blobs the graph links.
fn unchanged_work<'i>(
    left_out: impl Iterator<Item = &'i ResolvedImage>,
    graph: &ActionGraph,
    places: &BlobFacts<'_>,
) -> UnchangedWork {
    let mut uploads: FastSet<&Digest> = FastSet::default();
    let mut links: FastSet<(&str, &Digest)> = FastSet::default();
    let mut pushes: FastSet<(&str, &Digest, &str)> = FastSet::default();
    for node in graph.nodes() {
        match graph.action(node) {
            Action::UploadBlob { digest, .. } => {
                uploads.insert(digest);
            }
            Action::LinkBlob {
                repository, digest, ..
            } => {
                links.insert((repository, digest));
            }
            Action::PushManifest {
                repository,
                digest,
                media_type,
                ..
            } => {
                pushes.insert((repository, digest, media_type));
            }
            _ => {}
        }
    }
    let linked: FastSet<&Digest> = uploads.clone();
    let mut work = UnchangedWork::default();
    for image in left_out {
        let repository = image.destination_repository.as_str();
        for manifest in &image.manifests {
            if pushes.insert((repository, &manifest.digest, &manifest.media_type)) {
                work.manifests += 1;
                work.bytes += manifest.size;
            }
            for (digest, _) in &manifest.blobs {
                if uploads.insert(digest) {
                    work.blobs += 1;
                    work.bytes += places.get(digest).size;
                }
                if places.first(digest) != Some(repository) && links.insert((repository, digest)) {
                    work.blobs += 1;
                }
                if linked.contains(digest) {
                    work.holders
                        .entry(digest.clone())
                        .or_default()
                        .insert(repository.to_owned());
                }
            }
        }
    }
    work
}

/// Compiles images into the action graph of a disk delivery: every blob
/// fetched into the cache, then packed; every manifest packed after the
/// blobs and child manifests it names; each image recorded in the
/// delivery's index after its top manifest. Keys name no folder, so the
/// workspace's earlier deliveries decide what is new.
pub fn compile_archive(images: &[ResolvedImage]) -> ActionGraph {
    let mut graph = Builder::new();
    let mut pack_nodes: BTreeMap<Digest, NodeIndex> = BTreeMap::new();
    let mut fetch_nodes: BTreeMap<Digest, NodeIndex> = BTreeMap::new();
    // Blobs in digest order, each fetched from the first image naming it.
    let mut sources: BTreeMap<&Digest, (u64, &Source)> = BTreeMap::new();
    for image in images {
        for manifest in &image.manifests {
            for (digest, size) in &manifest.blobs {
                sources
                    .entry(digest)
                    .or_insert((*size, image.blob_source(digest)));
            }
        }
    }
    for (digest, (size, source)) in sources {
        let pack = graph.node(Action::PackBlob {
            digest: digest.clone(),
            size,
        });
        // A blob the cache is the source of (a built image's) is there
        // already: nothing to fetch.
        if *source != Source::Cache {
            let fetch = graph.node(Action::FetchBlob {
                digest: digest.clone(),
                size,
                source: source.clone(),
            });
            graph.edge(fetch, pack);
            fetch_nodes.insert(digest.clone(), fetch);
        }
        pack_nodes.insert(digest.clone(), pack);
    }
    for image in images {
        let mut nodes = BTreeSet::new();
        let mut manifest_nodes: BTreeMap<&Digest, NodeIndex> = BTreeMap::new();
        for manifest in &image.manifests {
            let node = graph.node(Action::PackManifest {
                digest: manifest.digest.clone(),
                media_type: manifest.media_type.clone(),
                size: manifest.size,
                source: image.source.clone(),
            });
            manifest_nodes.insert(&manifest.digest, node);
            nodes.insert(node);
            for (digest, _) in &manifest.blobs {
                if let Some(pack) = pack_nodes.get(digest) {
                    graph.edge(*pack, node);
                    nodes.insert(*pack);
                    if let Some(fetch) = fetch_nodes.get(digest) {
                        nodes.insert(*fetch);
                    }
                }
            }
        }
        graph.children_before_parents(image, &manifest_nodes);
        let top_manifest = manifest_nodes[&image.top];
        let record = graph.node(Action::RecordImage {
            name: image.name.clone(),
            digest: image.top.clone(),
        });
        graph.edge(top_manifest, record);
        nodes.insert(record);
        let place = match &image.destination_tag {
            Some(tag) => format!("{}:{tag}", image.destination_repository),
            None => format!("{}@{}", image.destination_repository, image.top),
        };
        graph.push_image(
            image,
            place,
            None,
            Some(CompiledNodes {
                nodes,
                top_manifest,
                tag: Some(record),
            }),
        );
    }
    graph.graph
}

/// Makes whole images wait for others: for each `(before, after)` pair of
/// indexes into `graph.images`, the top manifest of `after` is written
/// only once `before` is complete (its tag set, or its top manifest
/// written when it has no tag), so a failure of `before` skips `after` and
/// `after` is never at its destination without `before` (a bundle image
/// and its related images). A pair whose edge would close a cycle (the two
/// share their top manifest) is left out.
pub fn order_images(graph: &mut ActionGraph, pairs: &[(usize, usize)]) {
    for &(before, after) in pairs {
        let (Some(before), Some(after)) = (graph.images.get(before), graph.images.get(after))
        else {
            continue;
        };
        // An unchanged image (left out of the graph) is complete already,
        // or has nothing to wait for.
        let (Some(before_top), Some(to)) = (before.top_manifest(), after.top_manifest()) else {
            continue;
        };
        let from = before.tag_node().unwrap_or(before_top);
        if from == to
            || graph.graph.contains_edge(from, to)
            || petgraph::algo::has_path_connecting(&graph.graph, to, from, None)
        {
            continue;
        }
        graph.graph.add_edge(from, to, ());
    }
}
