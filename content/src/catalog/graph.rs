//! A channel's upgrade graph as oc-mirror's filter builds it: one node per
//! entry (and per bundle an entry names but the channel lacks), edges for
//! `replaces` and `skips`, the single head, cycle detection, and the walk
//! that keeps a version range without adding channel heads.

use std::collections::{BTreeSet, HashMap};

use crate::catalog::model::Channel;
use crate::catalog::version::{BundleVersion, FilterRange};

/// Why a channel's graph is not a valid upgrade graph.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum GraphError {
    Empty,
    DuplicateEntry(String),
    ReplacesItself(String),
    SkipsItself(String),
    NoHead,
    /// The heads, sorted by name.
    MultipleHeads(Vec<String>),
    /// The bundles on the cycle (left unvisited), sorted by name.
    Cycle(Vec<String>),
}

impl std::fmt::Display for GraphError {
    fn fmt(&self, formatter: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self {
            GraphError::Empty => write!(formatter, "channel has no entries"),
            GraphError::DuplicateEntry(name) => {
                write!(formatter, "duplicate channel entry {name:?}")
            }
            GraphError::ReplacesItself(name) => {
                write!(formatter, "invalid channel entry {name:?}: replaces itself")
            }
            GraphError::SkipsItself(name) => {
                write!(formatter, "invalid channel entry {name:?}: skips itself")
            }
            GraphError::NoHead => write!(formatter, "no channel heads found"),
            GraphError::MultipleHeads(heads) => {
                write!(
                    formatter,
                    "multiple channel heads found: [{}]",
                    heads.join(" ")
                )
            }
            GraphError::Cycle(bundles) => write!(
                formatter,
                "detected a cycle in the upgrade graph of the channel (bundles [{}])",
                bundles.join(" ")
            ),
        }
    }
}

/// A valid channel graph: exactly one head, no cycle.
#[derive(Debug)]
pub struct ChannelGraph<'c> {
    nodes: Vec<Node<'c>>,
    head: usize,
}

#[derive(Debug)]
struct Node<'c> {
    name: &'c str,
    replaces: Option<usize>,
    skips: Vec<usize>,
}

/// What the version-range walk keeps, and the bundles it keeps although
/// they are outside the range (to keep one head).
#[derive(Debug, Default, PartialEq, Eq)]
pub struct RangeSelection {
    pub kept: BTreeSet<String>,
    pub outside_range: Vec<String>,
}

impl<'c> ChannelGraph<'c> {
    pub fn new(channel: &'c Channel) -> Result<ChannelGraph<'c>, GraphError> {
        Self::from_entries(channel.entries.iter().map(|entry| {
            (
                entry.name.as_str(),
                entry.replaces.as_deref(),
                entry.skips.as_slice(),
            )
        }))
    }

    /// Builds the graph of the given entries (name, replaces, skips).
    pub fn from_entries<I>(entries: I) -> Result<ChannelGraph<'c>, GraphError>
    where
        I: IntoIterator<Item = (&'c str, Option<&'c str>, &'c [String])>,
    {
        let mut nodes: Vec<Node<'c>> = Vec::new();
        let mut index: HashMap<&'c str, usize> = HashMap::new();
        let mut node = |name: &'c str, nodes: &mut Vec<Node<'c>>| -> usize {
            *index.entry(name).or_insert_with(|| {
                nodes.push(Node {
                    name,
                    replaces: None,
                    skips: Vec::new(),
                });
                nodes.len() - 1
            })
        };
        let mut entry_nodes = Vec::new();
        let mut seen = std::collections::HashSet::new();
        for (name, replaces, skips) in entries {
            if !seen.insert(name) {
                return Err(GraphError::DuplicateEntry(name.to_owned()));
            }
            let current = node(name, &mut nodes);
            entry_nodes.push(current);
            if let Some(replaces) = replaces {
                if replaces == name {
                    return Err(GraphError::ReplacesItself(name.to_owned()));
                }
                let target = node(replaces, &mut nodes);
                nodes[current].replaces = Some(target);
            }
            for skip in skips {
                if skip == name {
                    return Err(GraphError::SkipsItself(name.to_owned()));
                }
                let target = node(skip.as_str(), &mut nodes);
                if !nodes[current].skips.contains(&target) {
                    nodes[current].skips.push(target);
                }
            }
        }
        if entry_nodes.is_empty() {
            return Err(GraphError::Empty);
        }
        // Incoming edges counted once per source node.
        let mut incoming = vec![0usize; nodes.len()];
        for node in &nodes {
            for target in Self::targets(node) {
                incoming[target] += 1;
            }
        }
        let heads: Vec<usize> = entry_nodes
            .iter()
            .copied()
            .filter(|&entry| incoming[entry] == 0)
            .collect();
        let head = match heads.as_slice() {
            [] => return Err(GraphError::NoHead),
            [head] => *head,
            _ => {
                let mut names: Vec<String> = heads
                    .iter()
                    .map(|&head| nodes[head].name.to_owned())
                    .collect();
                names.sort();
                return Err(GraphError::MultipleHeads(names));
            }
        };
        // Visit from the head, releasing a node when its last incoming edge
        // is used; nodes never released sit on a cycle (or below one).
        let mut queue = std::collections::VecDeque::from([head]);
        while let Some(current) = queue.pop_front() {
            for target in Self::targets(&nodes[current]) {
                incoming[target] -= 1;
                if incoming[target] == 0 {
                    queue.push_back(target);
                }
            }
        }
        let mut left: Vec<String> = incoming
            .iter()
            .enumerate()
            .filter(|(_, count)| **count > 0)
            .map(|(node, _)| nodes[node].name.to_owned())
            .collect();
        if !left.is_empty() {
            left.sort();
            return Err(GraphError::Cycle(left));
        }
        Ok(ChannelGraph { nodes, head })
    }

    /// The distinct nodes a node points to (replaces and skips).
    fn targets(node: &Node<'c>) -> Vec<usize> {
        let mut targets: Vec<usize> = node.replaces.into_iter().collect();
        for &skip in &node.skips {
            if !targets.contains(&skip) {
                targets.push(skip);
            }
        }
        targets
    }

    pub fn head(&self) -> &'c str {
        self.nodes[self.head].name
    }

    /// The replaces chain from the head down.
    fn chain(&self) -> Vec<usize> {
        let mut chain = vec![self.head];
        while let Some(next) = self.nodes[*chain.last().unwrap_or(&self.head)].replaces {
            chain.push(next);
        }
        chain
    }

    /// oc-mirror's version-range walk. For every node of the replaces chain
    /// it counts the in-range bundles at or below it (itself, its skips, and
    /// its replaces' count; each bundle counted once, lowest first). The new
    /// head is the lowest chain node with the largest count, the tail the
    /// first node with count 0 (excluded). Every chain node from head to tail
    /// is kept, in range or not, with the in-range bundles it skips.
    pub fn select_range(
        &self,
        range: &FilterRange,
        versions: &HashMap<&str, BundleVersion>,
    ) -> RangeSelection {
        let in_range = |node: usize| {
            versions
                .get(self.nodes[node].name)
                .is_some_and(|version| range.contains(version))
        };
        let chain = self.chain();
        let mut counts = vec![0usize; chain.len()];
        let mut counted = vec![false; self.nodes.len()];
        for position in (0..chain.len()).rev() {
            let node = chain[position];
            let mut count = counts.get(position + 1).copied().unwrap_or(0);
            for candidate in std::iter::once(node).chain(self.nodes[node].skips.iter().copied()) {
                if !counted[candidate] && in_range(candidate) {
                    counted[candidate] = true;
                    count += 1;
                }
            }
            counts[position] = count;
        }
        let mut head = 0;
        let mut tail = chain.len();
        let mut largest = None;
        for (position, &count) in counts.iter().enumerate() {
            if largest.is_none_or(|largest| count >= largest) {
                head = position;
                largest = Some(count);
            }
            if count == 0 {
                tail = position;
                break;
            }
        }
        let mut selection = RangeSelection::default();
        for &node in chain.iter().take(tail).skip(head) {
            let name = self.nodes[node].name;
            if !in_range(node) {
                selection.outside_range.push(name.to_owned());
            }
            selection.kept.insert(name.to_owned());
            for &skip in &self.nodes[node].skips {
                if in_range(skip) {
                    selection.kept.insert(self.nodes[skip].name.to_owned());
                }
            }
        }
        selection
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    /// The head of the graph of `entries` (name, replaces, skips).
    fn graph_of(entries: &[(&str, Option<&str>, &[&str])]) -> Result<Vec<String>, GraphError> {
        let skips: Vec<Vec<String>> = entries
            .iter()
            .map(|(_, _, skips)| skips.iter().map(|skip| (*skip).to_owned()).collect())
            .collect();
        ChannelGraph::from_entries(
            entries
                .iter()
                .zip(&skips)
                .map(|((name, replaces, _), skips)| (*name, *replaces, skips.as_slice())),
        )
        .map(|graph| vec![graph.head().to_owned()])
    }

    #[test]
    fn invalid_graphs_are_named() {
        assert_eq!(graph_of(&[]), Err(GraphError::Empty));
        assert_eq!(
            graph_of(&[("a", None, &[]), ("b", None, &[])]),
            Err(GraphError::MultipleHeads(vec![
                "a".to_owned(),
                "b".to_owned()
            ]))
        );
        assert_eq!(
            graph_of(&[("a", Some("b"), &[]), ("b", Some("a"), &[])]),
            Err(GraphError::NoHead)
        );
        assert_eq!(
            graph_of(&[
                ("c", Some("a"), &[]),
                ("a", Some("b"), &[]),
                ("b", Some("a"), &[])
            ]),
            Err(GraphError::Cycle(vec!["a".to_owned(), "b".to_owned()]))
        );
        assert_eq!(
            graph_of(&[("a", Some("a"), &[])]),
            Err(GraphError::ReplacesItself("a".to_owned()))
        );
        assert_eq!(
            graph_of(&[("a", None, &[]), ("a", None, &[])]),
            Err(GraphError::DuplicateEntry("a".to_owned()))
        );
        // Replacing and skipping the same bundle is one edge, not two.
        assert_eq!(
            graph_of(&[("a", None, &[]), ("b", Some("a"), &["a"])]),
            Ok(vec!["b".to_owned()])
        );
    }
}
