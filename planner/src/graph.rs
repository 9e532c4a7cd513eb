//! Compiling resolved images into the action graph.
//!
//! Input is pure data: every image pinned to a digest with its whole
//! manifest tree (what the resolver read). Output is a petgraph DAG whose
//! nodes are [`Action`]s, one per key (identical work is one node), and
//! whose edges say "must finish before": blobs before the manifests that
//! name them, child manifests before their index, the top manifest before
//! its tag.

use std::collections::{BTreeMap, BTreeSet, HashMap, HashSet};

use ferry_schemas::Digest;
use petgraph::graph::{DiGraph, NodeIndex};

use crate::action::{Action, ActionKey};
use crate::category::Category;
use crate::source::Source;

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

/// The nodes that belong to one image.
#[derive(Clone, Debug)]
pub struct ImageNodes {
    pub name: String,
    pub destination: String,
    pub nodes: BTreeSet<NodeIndex>,
    pub top_manifest: NodeIndex,
    pub tag: Option<NodeIndex>,
}

/// The compiled graph.
#[derive(Clone, Debug)]
pub struct ActionGraph {
    pub graph: DiGraph<Action, ()>,
    pub keys: HashMap<ActionKey, NodeIndex>,
    pub images: Vec<ImageNodes>,
}

impl ActionGraph {
    /// The action of a node.
    pub fn action(&self, node: NodeIndex) -> &Action {
        &self.graph[node]
    }

    /// Every node's key, by node index: read from [`ActionGraph::keys`]
    /// rather than hashed again (a key costs an encoding and a blake3 hash;
    /// plans and runs look keys up many times per node).
    pub fn node_keys(&self) -> Vec<ActionKey> {
        let mut keys = vec![ActionKey::from_bytes([0; 32]); self.graph.node_count()];
        for (key, node) in &self.keys {
            keys[node.index()] = *key;
        }
        keys
    }
}

/// An [`ActionGraph`] being built: adds each node once per key and each
/// edge once. Edges are deduplicated through a set, not by searching the
/// node's edges: a base layer's upload feeds the manifest of every image,
/// and a search per edge would make compiling quadratic in images.
struct Builder {
    graph: ActionGraph,
    edges: HashSet<(NodeIndex, NodeIndex)>,
}

impl Builder {
    fn new() -> Self {
        Builder {
            graph: ActionGraph {
                graph: DiGraph::new(),
                keys: HashMap::new(),
                images: Vec::new(),
            },
            edges: HashSet::new(),
        }
    }

    fn node(&mut self, action: Action) -> NodeIndex {
        let key = action.key();
        let graph = &mut self.graph;
        *graph
            .keys
            .entry(key)
            .or_insert_with(|| graph.graph.add_node(action))
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
}

/// Compiles images into the action graph for `destination`.
pub fn compile(images: &[ResolvedImage], destination: &Destination) -> ActionGraph {
    // Which destination repositories need each blob; the first (in name
    // order) receives the upload, the others link to it. Keys borrow from
    // `images`: compiling 10,000 images must not clone a digest per lookup.
    let mut repositories_of_blob: BTreeMap<&Digest, BTreeSet<&str>> = BTreeMap::new();
    let mut sizes: HashMap<&Digest, (u64, &Source)> = HashMap::new();
    for image in images {
        for manifest in &image.manifests {
            for (digest, size) in &manifest.blobs {
                repositories_of_blob
                    .entry(digest)
                    .or_default()
                    .insert(&image.destination_repository);
                sizes
                    .entry(digest)
                    .or_insert((*size, image.blob_source(digest)));
            }
        }
    }
    let destination_display = destination.display();
    let mut graph = Builder::new();
    // (repository, digest) → the link node that makes the blob present
    // there, and the upload behind it. Every repository that needs a blob
    // has a link node, the upload's own repository too: the upload makes
    // the blob present at the destination, the link in one repository. The
    // planner leaves out the link into the upload's own repository when
    // the upload itself is planned (the upload puts the blob there).
    let mut blob_nodes: HashMap<(&str, &Digest), (NodeIndex, NodeIndex)> = HashMap::new();
    for (digest, repositories) in &repositories_of_blob {
        let (size, source) = sizes[digest];
        let Some(first) = repositories.iter().next() else {
            continue;
        };
        let upload = graph.node(Action::UploadBlob {
            destination: destination_display.clone(),
            repository: (*first).to_owned(),
            digest: (*digest).clone(),
            size,
            source: source.clone(),
        });
        for repository in repositories {
            let link = graph.node(Action::LinkBlob {
                repository: (*repository).to_owned(),
                digest: (*digest).clone(),
                size,
                from_repository: (*first).to_owned(),
                source: source.clone(),
            });
            graph.edge(upload, link);
            blob_nodes.insert((repository, digest), (link, upload));
        }
    }
    for image in images {
        let repository = &image.destination_repository;
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
        let destination_name = match &image.destination_tag {
            Some(tag) => format!("{}/{repository}:{tag}", destination.registry),
            None => format!("{}/{repository}@{}", destination.registry, image.top),
        };
        graph.graph.images.push(ImageNodes {
            name: image.name.clone(),
            destination: destination_name,
            nodes,
            top_manifest,
            tag,
        });
    }
    graph.graph
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
        graph.graph.images.push(ImageNodes {
            name: image.name.clone(),
            destination: place,
            nodes,
            top_manifest,
            tag: Some(record),
        });
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
        let from = before.tag.unwrap_or(before.top_manifest);
        let to = after.top_manifest;
        if from == to
            || graph.graph.contains_edge(from, to)
            || petgraph::algo::has_path_connecting(&graph.graph, to, from, None)
        {
            continue;
        }
        graph.graph.add_edge(from, to, ());
    }
}
