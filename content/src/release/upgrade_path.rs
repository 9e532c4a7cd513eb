//! Beyond oc-mirror: does the selection leave an upgrade path?
//!
//! The product documentation warns that an EUS-to-EUS upgrade may need an
//! intermediate release oc-mirror "might not always detect" and tells users
//! to check the graph by hand. ferry checks it: per architecture, over the
//! union of every fetched graph of that architecture, is there a path from
//! the lowest selected release to the highest through selected releases
//! only, over plain edges? If not, the shortest path over the whole graph
//! (plain edges first, then also conditional ones, which are named with
//! their risks) gives the releases to add, and the configuration lines that
//! add them: the configured channel that lists a release widened to cover
//! it, or a new entry for a channel the configuration does not name.

use std::collections::{BTreeMap, BTreeSet};
use std::fmt;

use ferry_schemas::config::{Architecture, ChannelType, Platform};

use crate::release::graph::breadth_first;
use crate::release::selection::{ArchitectureSelection, Graphs};

/// One conditional update on a suggested path.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct ConditionalStep {
    pub from: semver::Version,
    pub to: semver::Version,
    /// Names of the risks that make it conditional.
    pub risks: Vec<String>,
}

/// The selected releases leave no upgrade path from `from` to `to`.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct UpgradePathWarning {
    pub architecture: Architecture,
    pub from: semver::Version,
    pub to: semver::Version,
    /// The shortest path in the graphs (empty: there is none at all).
    pub path: Vec<semver::Version>,
    /// Releases on `path` the selection lacks.
    pub versions_to_add: Vec<semver::Version>,
    /// Steps of `path` that are conditional updates.
    pub conditional_steps: Vec<ConditionalStep>,
    /// YAML channel entries (under `mirror.platform.channels`) that add
    /// `versions_to_add`; empty when there is nothing to add.
    pub configuration: String,
}

impl fmt::Display for UpgradePathWarning {
    fn fmt(&self, formatter: &mut fmt::Formatter<'_>) -> fmt::Result {
        let architecture = self.architecture.name();
        if self.path.is_empty() {
            return write!(
                formatter,
                "no upgrade path from {} to {} ({architecture}) in the update graphs, not even over \
                 conditional updates",
                self.from, self.to
            );
        }
        write!(
            formatter,
            "the selected releases leave no upgrade path from {} to {} ({architecture})",
            self.from, self.to
        )?;
        let path: Vec<String> = self.path.iter().map(ToString::to_string).collect();
        write!(formatter, "; the shortest path is {}", path.join(" -> "))?;
        if !self.conditional_steps.is_empty() {
            let steps: Vec<String> = self
                .conditional_steps
                .iter()
                .map(|step| {
                    format!(
                        "{} -> {} (conditional: {})",
                        step.from,
                        step.to,
                        step.risks.join(", ")
                    )
                })
                .collect();
            write!(
                formatter,
                "; it needs conditional updates: {}",
                steps.join(", ")
            )?;
        }
        if !self.versions_to_add.is_empty() {
            let add: Vec<String> = self
                .versions_to_add
                .iter()
                .map(ToString::to_string)
                .collect();
            write!(
                formatter,
                "; add {} with these entries under mirror.platform.channels:\n{}",
                add.join(", "),
                self.configuration.trim_end()
            )?;
        }
        Ok(())
    }
}

/// All graphs of one architecture merged by version.
struct MergedGraph {
    versions: Vec<semver::Version>,
    plain: BTreeSet<(usize, usize)>,
    conditional: BTreeMap<(usize, usize), BTreeSet<String>>,
    /// Channels (fetched graphs) that list each version.
    channels: Vec<BTreeSet<String>>,
    /// Channels each version's node metadata names.
    metadata_channels: Vec<BTreeSet<String>>,
}

impl MergedGraph {
    fn of(graphs: &Graphs, architecture: Architecture) -> MergedGraph {
        let versions: Vec<semver::Version> = graphs
            .iter()
            .filter(|((_, graph_architecture), _)| *graph_architecture == architecture)
            .flat_map(|(_, graph)| graph.nodes.iter().map(|node| node.version.clone()))
            .collect::<BTreeSet<_>>()
            .into_iter()
            .collect();
        let index_of = |version: &semver::Version| {
            versions
                .binary_search(version)
                .expect("every version of every graph was collected")
        };
        let mut merged = MergedGraph {
            plain: BTreeSet::new(),
            conditional: BTreeMap::new(),
            channels: vec![BTreeSet::new(); versions.len()],
            metadata_channels: vec![BTreeSet::new(); versions.len()],
            versions: versions.clone(),
        };
        for ((channel, graph_architecture), graph) in graphs {
            if *graph_architecture != architecture {
                continue;
            }
            let global: Vec<usize> = graph
                .nodes
                .iter()
                .map(|node| index_of(&node.version))
                .collect();
            for (node, &index) in graph.nodes.iter().zip(&global) {
                merged.channels[index].insert(channel.clone());
                merged.metadata_channels[index]
                    .extend(node.channels().into_iter().map(str::to_owned));
            }
            for &(from, to) in &graph.edges {
                merged.plain.insert((global[from], global[to]));
            }
            for edge in &graph.conditional_edges {
                merged
                    .conditional
                    .entry((global[edge.from], global[edge.to]))
                    .or_default()
                    .extend(edge.risks.iter().map(|risk| risk.name.clone()));
            }
        }
        merged
    }

    /// Successor lists, highest version first, optionally with conditional
    /// edges, keeping only nodes `allowed` accepts.
    fn successors(&self, conditional: bool, allowed: &dyn Fn(usize) -> bool) -> Vec<Vec<usize>> {
        let mut successors = vec![Vec::new(); self.versions.len()];
        let edges = self.plain.iter().chain(
            conditional
                .then_some(self.conditional.keys())
                .into_iter()
                .flatten(),
        );
        for &(from, to) in edges {
            if allowed(from) && allowed(to) {
                successors[from].push(to);
            }
        }
        for list in &mut successors {
            list.sort_by(|left, right| right.cmp(left));
            list.dedup();
        }
        successors
    }
}

/// The warning for one architecture's selection, if it leaves no path.
pub fn check_upgrade_path(
    platform: &Platform,
    selection: &ArchitectureSelection,
    graphs: &Graphs,
) -> Option<UpgradePathWarning> {
    let selected: Vec<semver::Version> = selection
        .releases()
        .into_iter()
        .map(|release| release.version.clone())
        .collect();
    let (lowest, highest) = (selected.first()?, selected.last()?);
    if lowest == highest {
        return None;
    }
    let merged = MergedGraph::of(graphs, selection.architecture);
    let index = |version: &semver::Version| merged.versions.binary_search(version).ok();
    let (from, to) = (index(lowest)?, index(highest)?);
    let chosen: BTreeSet<usize> = selected.iter().filter_map(index).collect();
    let through_selection = merged.successors(false, &|node| chosen.contains(&node));
    if breadth_first(&through_selection, from, to).is_some() {
        return None;
    }
    let everything = |_: usize| true;
    let path = breadth_first(&merged.successors(false, &everything), from, to)
        .or_else(|| breadth_first(&merged.successors(true, &everything), from, to))
        .unwrap_or_default();
    let conditional_steps = path
        .windows(2)
        .filter(|step| !merged.plain.contains(&(step[0], step[1])))
        .map(|step| ConditionalStep {
            from: merged.versions[step[0]].clone(),
            to: merged.versions[step[1]].clone(),
            risks: merged
                .conditional
                .get(&(step[0], step[1]))
                .map(|risks| risks.iter().cloned().collect())
                .unwrap_or_default(),
        })
        .collect();
    let to_add: Vec<usize> = path
        .iter()
        .copied()
        .filter(|node| !chosen.contains(node))
        .collect();
    let configuration = suggested_entries(platform, selection, &merged, &to_add);
    Some(UpgradePathWarning {
        architecture: selection.architecture,
        from: lowest.clone(),
        to: highest.clone(),
        path: path
            .iter()
            .map(|&node| merged.versions[node].clone())
            .collect(),
        versions_to_add: to_add
            .iter()
            .map(|&node| merged.versions[node].clone())
            .collect(),
        conditional_steps,
        configuration,
    })
}

/// Channel entries that add `to_add`: a configured channel without
/// `shortestPath` that lists a release is widened to cover it (keeping its
/// type); otherwise a channel the release's metadata lists and the
/// configuration does not name gets an entry (same prefix as a configured
/// channel first, then stable, fast, eus, candidate), else a fetched graph's
/// channel that lists it.
fn suggested_entries(
    platform: &Platform,
    selection: &ArchitectureSelection,
    merged: &MergedGraph,
    to_add: &[usize],
) -> String {
    let configured_names: BTreeSet<&str> = platform
        .channels
        .iter()
        .map(|channel| channel.name.as_str())
        .collect();
    let configured_prefixes: Vec<&str> = platform
        .channels
        .iter()
        .filter_map(|channel| channel.name.rsplit_once('-').map(|(prefix, _)| prefix))
        .collect();
    let preference = |name: &str| {
        let prefix = name.rsplit_once('-').map_or(name, |(prefix, _)| prefix);
        let rank = configured_prefixes
            .iter()
            .position(|configured| *configured == prefix)
            .unwrap_or(
                configured_prefixes.len()
                    + ["stable", "fast", "eus", "candidate"]
                        .iter()
                        .position(|known| *known == prefix)
                        .unwrap_or(4),
            );
        (rank, name.to_owned())
    };
    // channel name -> (min, max) to write, in the order first needed
    let mut ranges: BTreeMap<String, (semver::Version, semver::Version)> = BTreeMap::new();
    let mut order: Vec<String> = Vec::new();
    for &node in to_add {
        let version = &merged.versions[node];
        let widen = platform.channels.iter().find(|channel| {
            !channel.shortest_path && merged.channels[node].contains(&channel.name)
        });
        let channel = match widen {
            Some(channel) => channel.name.clone(),
            None => {
                let listed = merged.metadata_channels[node]
                    .iter()
                    .filter(|name| !configured_names.contains(name.as_str()))
                    .min_by_key(|name| preference(name));
                let fetched = merged.channels[node]
                    .iter()
                    .find(|name| !configured_names.contains(name.as_str()));
                match listed.or(fetched) {
                    Some(channel) => channel.clone(),
                    None => continue,
                }
            }
        };
        let start = selection
            .channels
            .iter()
            .find(|resolved| resolved.channel == channel)
            .map(|resolved| (resolved.min.clone(), resolved.max.clone()))
            .unwrap_or_else(|| (version.clone(), version.clone()));
        let range = ranges.entry(channel.clone()).or_insert_with(|| {
            order.push(channel.clone());
            start
        });
        if *version < range.0 {
            range.0 = version.clone();
        }
        if *version > range.1 {
            range.1 = version.clone();
        }
    }
    let mut yaml = String::new();
    for name in order {
        let (min, max) = &ranges[&name];
        let configured = platform
            .channels
            .iter()
            .find(|channel| channel.name == name);
        yaml.push_str(&format!("- name: {name}\n"));
        if configured.is_some_and(|channel| channel.channel_type == ChannelType::Okd) {
            yaml.push_str("  type: okd\n");
        }
        yaml.push_str(&format!("  minVersion: {min}\n  maxVersion: {max}\n"));
    }
    yaml
}
