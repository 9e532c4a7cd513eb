//! The update graph as the update service (Cincinnati) answers it, and the
//! query that asks for it.
//!
//! A response is `{"version": 1, "nodes": [...], "edges": [[from, to], ...],
//! "conditionalEdges": [...]}`: each node a release (version, payload,
//! metadata), each edge a pair of 0-based node indexes, each conditional edge
//! a pair of versions with the risks that make it conditional. `version` and
//! `conditionalEdges` may be absent (the test world and older services leave
//! them out). Everything that would make selection wrong (an edge naming no
//! node, a version that is not semver, two nodes with one version, a
//! conditional edge naming a version the graph lacks or carrying no risks)
//! is an error naming the place; a payload is checked only when its release
//! is selected, as oc-mirror does.

use std::collections::{BTreeMap, BTreeSet};

use ferry_schemas::config::Architecture;
use serde::Deserialize;

/// The OpenShift update service oc-mirror asks by default.
pub const OCP_UPDATE_URL: &str = "https://api.openshift.com/api/upgrades_info/v1/graph";

/// OKD's update service (oc-mirror lets no variable override it).
pub const OKD_UPDATE_URL: &str = "https://origin-release.ci.openshift.org/graph";

/// The variable that replaces [`OCP_UPDATE_URL`] with a full endpoint.
pub const UPDATE_URL_OVERRIDE: &str = "UPDATE_URL_OVERRIDE";

/// The `Accept` header of a graph query.
pub const GRAPH_ACCEPT: &str = "application/json";

/// Node metadata: the channels a release is in, comma-separated.
pub const CHANNELS_METADATA: &str = "io.openshift.upgrades.graph.release.channels";

/// One release in the graph.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Node {
    pub version: semver::Version,
    /// The payload as the service wrote it (checked when selected).
    pub payload: String,
    pub metadata: BTreeMap<String, String>,
}

impl Node {
    /// The channels this release is listed in (its metadata).
    pub fn channels(&self) -> Vec<&str> {
        self.metadata
            .get(CHANNELS_METADATA)
            .map(|list| {
                list.split(',')
                    .map(str::trim)
                    .filter(|name| !name.is_empty())
                    .collect()
            })
            .unwrap_or_default()
    }
}

/// A risk that makes an update conditional.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Risk {
    pub name: String,
    pub url: String,
    pub message: String,
}

/// An update that is recommended only when its risks do not apply.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct ConditionalEdge {
    /// Node indexes.
    pub from: usize,
    pub to: usize,
    pub risks: Vec<Risk>,
}

/// A parsed, checked update graph of one channel and architecture.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct UpdateGraph {
    pub nodes: Vec<Node>,
    /// Plain (unconditional) updates as node indexes `(from, to)`.
    pub edges: Vec<(usize, usize)>,
    pub conditional_edges: Vec<ConditionalEdge>,
}

/// Why a response is not a usable update graph.
#[derive(Clone, Debug, PartialEq, Eq, thiserror::Error)]
pub enum GraphError {
    #[error("the update graph is not valid JSON of the expected shape: {0}")]
    Json(String),
    #[error("node {index}: version `{version}` is not a semantic version: {reason}")]
    InvalidVersion {
        index: usize,
        version: String,
        reason: String,
    },
    #[error("nodes {first} and {second} both have version {version}")]
    DuplicateVersion {
        version: String,
        first: usize,
        second: usize,
    },
    #[error(
        "edge {index} [{from}, {to}] names a node the graph does not have ({nodes} nodes, indexes from 0)"
    )]
    EdgeOutOfRange {
        index: usize,
        from: usize,
        to: usize,
        nodes: usize,
    },
    #[error(
        "conditional edge group {group}: `{from}` -> `{to}` names a version that is not a node of the graph"
    )]
    ConditionalEdgeUnknownVersion {
        group: usize,
        from: String,
        to: String,
    },
    #[error(
        "conditional edge group {group} has no risks (every conditional update must name at least one)"
    )]
    ConditionalEdgeWithoutRisks { group: usize },
}

#[derive(Deserialize)]
#[serde(rename_all = "camelCase")]
struct GraphDocument {
    nodes: Vec<NodeDocument>,
    edges: Vec<[usize; 2]>,
    #[serde(default)]
    conditional_edges: Vec<ConditionalEdgesDocument>,
}

#[derive(Deserialize)]
struct NodeDocument {
    version: String,
    payload: String,
    #[serde(default)]
    metadata: BTreeMap<String, String>,
}

#[derive(Deserialize)]
struct ConditionalEdgesDocument {
    edges: Vec<VersionPairDocument>,
    #[serde(default)]
    risks: Option<Vec<RiskDocument>>,
}

#[derive(Deserialize)]
struct VersionPairDocument {
    from: String,
    to: String,
}

#[derive(Deserialize)]
struct RiskDocument {
    #[serde(default)]
    name: String,
    #[serde(default)]
    url: String,
    #[serde(default)]
    message: String,
}

impl UpdateGraph {
    /// Parses and checks an update-service response body.
    pub fn parse(bytes: &[u8]) -> Result<UpdateGraph, GraphError> {
        let document: GraphDocument =
            serde_json::from_slice(bytes).map_err(|error| GraphError::Json(error.to_string()))?;
        let mut nodes = Vec::with_capacity(document.nodes.len());
        let mut index_of: BTreeMap<semver::Version, usize> = BTreeMap::new();
        for (index, node) in document.nodes.into_iter().enumerate() {
            let version = semver::Version::parse(&node.version).map_err(|error| {
                GraphError::InvalidVersion {
                    index,
                    version: node.version.clone(),
                    reason: error.to_string(),
                }
            })?;
            if let Some(first) = index_of.insert(version.clone(), index) {
                return Err(GraphError::DuplicateVersion {
                    version: version.to_string(),
                    first,
                    second: index,
                });
            }
            nodes.push(Node {
                version,
                payload: node.payload,
                metadata: node.metadata,
            });
        }
        let mut edges = Vec::with_capacity(document.edges.len());
        for (index, [from, to]) in document.edges.into_iter().enumerate() {
            if from >= nodes.len() || to >= nodes.len() {
                return Err(GraphError::EdgeOutOfRange {
                    index,
                    from,
                    to,
                    nodes: nodes.len(),
                });
            }
            edges.push((from, to));
        }
        let mut conditional_edges = Vec::new();
        for (group, conditional) in document.conditional_edges.into_iter().enumerate() {
            let risks: Vec<Risk> = conditional
                .risks
                .unwrap_or_default()
                .into_iter()
                .map(|risk| Risk {
                    name: risk.name,
                    url: risk.url,
                    message: risk.message,
                })
                .collect();
            if risks.is_empty() {
                return Err(GraphError::ConditionalEdgeWithoutRisks { group });
            }
            for pair in conditional.edges {
                let find = |text: &str| {
                    semver::Version::parse(text)
                        .ok()
                        .and_then(|version| index_of.get(&version).copied())
                };
                let (Some(from), Some(to)) = (find(&pair.from), find(&pair.to)) else {
                    return Err(GraphError::ConditionalEdgeUnknownVersion {
                        group,
                        from: pair.from,
                        to: pair.to,
                    });
                };
                conditional_edges.push(ConditionalEdge {
                    from,
                    to,
                    risks: risks.clone(),
                });
            }
        }
        Ok(UpdateGraph {
            nodes,
            edges,
            conditional_edges,
        })
    }

    /// The index of the node with `version`.
    pub fn index_of(&self, version: &semver::Version) -> Option<usize> {
        self.nodes.iter().position(|node| node.version == *version)
    }

    pub fn node(&self, version: &semver::Version) -> Option<&Node> {
        self.index_of(version).map(|index| &self.nodes[index])
    }

    /// Every version, lowest first.
    pub fn versions(&self) -> Vec<&semver::Version> {
        let mut versions: Vec<&semver::Version> =
            self.nodes.iter().map(|node| &node.version).collect();
        versions.sort();
        versions
    }

    pub fn lowest(&self) -> Option<&semver::Version> {
        self.nodes.iter().map(|node| &node.version).min()
    }

    pub fn highest(&self) -> Option<&semver::Version> {
        self.nodes.iter().map(|node| &node.version).max()
    }

    /// The nearest versions below and above `version` that the graph has.
    pub fn neighbours_of(
        &self,
        version: &semver::Version,
    ) -> (Option<&semver::Version>, Option<&semver::Version>) {
        let below = self
            .nodes
            .iter()
            .map(|node| &node.version)
            .filter(|candidate| *candidate < version)
            .max();
        let above = self
            .nodes
            .iter()
            .map(|node| &node.version)
            .filter(|candidate| *candidate > version)
            .min();
        (below, above)
    }

    /// Every channel named in the nodes' metadata, sorted.
    pub fn channel_names(&self) -> BTreeSet<String> {
        self.nodes
            .iter()
            .flat_map(|node| node.channels())
            .map(str::to_owned)
            .collect()
    }

    /// Breadth-first shortest path over the plain edges from `from` to `to`
    /// (node indexes), both ends included; `None` when there is none. The
    /// successors of a node are visited highest version first, as oc-mirror
    /// does, so the answer is the same on every run.
    pub fn shortest_path(&self, from: usize, to: usize) -> Option<Vec<usize>> {
        let successors = self.successors(false);
        breadth_first(&successors, from, to)
    }

    /// Successor lists, highest version first; with `conditional`, the
    /// conditional edges too.
    pub(crate) fn successors(&self, conditional: bool) -> Vec<Vec<usize>> {
        let mut successors = vec![Vec::new(); self.nodes.len()];
        for &(from, to) in &self.edges {
            successors[from].push(to);
        }
        if conditional {
            for edge in &self.conditional_edges {
                successors[edge.from].push(edge.to);
            }
        }
        for list in &mut successors {
            list.sort_by(|left, right| self.nodes[*right].version.cmp(&self.nodes[*left].version));
            list.dedup();
        }
        successors
    }
}

/// Breadth-first search over successor lists, both ends included.
pub(crate) fn breadth_first(
    successors: &[Vec<usize>],
    from: usize,
    to: usize,
) -> Option<Vec<usize>> {
    let mut previous: Vec<Option<usize>> = vec![None; successors.len()];
    let mut visited = vec![false; successors.len()];
    let mut queue = std::collections::VecDeque::from([from]);
    visited[from] = true;
    while let Some(node) = queue.pop_front() {
        if node == to {
            break;
        }
        for &next in &successors[node] {
            if !visited[next] {
                visited[next] = true;
                previous[next] = Some(node);
                queue.push_back(next);
            }
        }
    }
    if !visited[to] {
        return None;
    }
    let mut path = vec![to];
    let mut current = to;
    while let Some(before) = previous[current] {
        path.push(before);
        current = before;
    }
    path.reverse();
    Some(path)
}

/// Why a graph query URL cannot be built.
#[derive(Clone, Debug, PartialEq, Eq, thiserror::Error)]
#[error("update service URL `{url}` is not a valid URL: {reason}")]
pub struct QueryUrlError {
    pub url: String,
    pub reason: String,
}

/// The URL oc-mirror asks for one channel and architecture: `base` is the
/// full endpoint ([`OCP_UPDATE_URL`], or `UPDATE_URL_OVERRIDE` as written);
/// only the query string is added (`arch` named as in the configuration,
/// which is how the service names them too, then `channel`). oc-mirror also
/// sends a random `id`, which the service does not need; ferry leaves it out
/// so the same query is the same URL.
pub fn graph_query_url(
    base: &str,
    channel: &str,
    architecture: Architecture,
) -> Result<url::Url, QueryUrlError> {
    let mut url = url::Url::parse(base).map_err(|error| QueryUrlError {
        url: base.to_owned(),
        reason: error.to_string(),
    })?;
    if url.cannot_be_a_base() || !matches!(url.scheme(), "http" | "https") {
        return Err(QueryUrlError {
            url: base.to_owned(),
            reason: "it must be an http:// or https:// URL".to_owned(),
        });
    }
    url.query_pairs_mut()
        .append_pair("arch", architecture.name())
        .append_pair("channel", channel);
    Ok(url)
}
