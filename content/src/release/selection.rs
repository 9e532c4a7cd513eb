//! Which releases a configuration's `platform` selects, per architecture
//! and channel, from update graphs already fetched (notes §5.2).
//!
//! Per channel: no `maxVersion` takes the channel's highest version, and
//! with no `minVersion` and no `full` also takes it as the minimum (the
//! channel head only); no `minVersion` otherwise takes the channel's lowest.
//! Then every version from min to max (inclusive), or with `shortestPath`
//! the versions on the breadth-first path from min to max over the plain
//! edges (both ends always included). With more than one channel the
//! cross-channel upgrade path is added: from the lowest minimum's channel to
//! the highest maximum's, channel `prefix-X.Y` to `prefix-X.(Y+1)` through
//! each channel's latest release, as oc-mirror does.
//!
//! Beyond oc-mirror: a range end that is not in the graph is warned about,
//! naming the nearest versions that exist, and a selection that leaves no
//! upgrade path from its lowest to its highest release is warned about with
//! the versions and configuration lines to add (`upgrade_path`).

use std::collections::{BTreeMap, BTreeSet};
use std::fmt;

use ferry_schemas::ImageReference;
use ferry_schemas::config::{Architecture, ChannelType, Platform, ReleaseChannel};

use crate::release::graph::UpdateGraph;
use crate::release::upgrade_path::{UpgradePathWarning, check_upgrade_path};

/// Update graphs by (channel, architecture).
pub type Graphs = BTreeMap<(String, Architecture), UpdateGraph>;

/// The architectures a platform asks for: `architectures`, or `multi` when
/// `platforms` is set (oc-mirror asks the service for `multi` then and
/// filters the payloads), or amd64.
pub fn architectures(platform: &Platform) -> Vec<Architecture> {
    if !platform.platforms.is_empty() {
        return vec![Architecture::Multi];
    }
    if platform.architectures.is_empty() {
        return vec![Architecture::Amd64];
    }
    let mut seen = BTreeSet::new();
    platform
        .architectures
        .iter()
        .copied()
        .filter(|architecture| seen.insert(*architecture))
        .collect()
}

/// The graphs selection needs first: every configured channel for every
/// architecture. Cross-channel paths may need more; selection then fails
/// with [`SelectionError::GraphMissing`] naming the next one to fetch.
pub fn configured_graphs(platform: &Platform) -> Vec<(String, Architecture)> {
    if platform.release.is_some() {
        return Vec::new();
    }
    architectures(platform)
        .into_iter()
        .flat_map(|architecture| {
            platform
                .channels
                .iter()
                .map(move |channel| (channel.name.clone(), architecture))
        })
        .collect()
}

/// One selected release.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct SelectedRelease {
    pub version: semver::Version,
    pub payload: ImageReference,
    /// The channel whose graph it was found in.
    pub channel: String,
}

/// What one configured channel selected for one architecture.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct ChannelSelection {
    pub channel: String,
    /// The range actually used (ends filled in from the graph).
    pub min: semver::Version,
    pub max: semver::Version,
    /// Lowest version first.
    pub releases: Vec<SelectedRelease>,
}

/// Everything selected for one architecture.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct ArchitectureSelection {
    pub architecture: Architecture,
    pub channels: Vec<ChannelSelection>,
    /// Releases the cross-channel upgrade path adds (also those already
    /// selected by a channel), lowest first.
    pub cross_channel: Vec<SelectedRelease>,
}

impl ArchitectureSelection {
    /// Every selected release once (by version), lowest first; a release
    /// several channels select keeps the first channel that named it.
    pub fn releases(&self) -> Vec<&SelectedRelease> {
        let mut by_version: BTreeMap<&semver::Version, &SelectedRelease> = BTreeMap::new();
        for release in self
            .channels
            .iter()
            .flat_map(|channel| &channel.releases)
            .chain(&self.cross_channel)
        {
            by_version.entry(&release.version).or_insert(release);
        }
        by_version.into_values().collect()
    }
}

/// The result of selection.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Selection {
    /// `platform.release`: one explicit payload, no graph asked.
    pub explicit_release: Option<ImageReference>,
    pub architectures: Vec<ArchitectureSelection>,
    pub warnings: Vec<SelectionWarning>,
}

/// Which end of a version range.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum RangeEnd {
    Min,
    Max,
}

impl fmt::Display for RangeEnd {
    fn fmt(&self, formatter: &mut fmt::Formatter<'_>) -> fmt::Result {
        formatter.write_str(match self {
            RangeEnd::Min => "minVersion",
            RangeEnd::Max => "maxVersion",
        })
    }
}

/// The nearest versions a graph has around one it lacks.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Nearest {
    pub below: Option<semver::Version>,
    pub above: Option<semver::Version>,
}

impl Nearest {
    fn of(graph: &UpdateGraph, version: &semver::Version) -> Nearest {
        let (below, above) = graph.neighbours_of(version);
        Nearest {
            below: below.cloned(),
            above: above.cloned(),
        }
    }
}

impl fmt::Display for Nearest {
    fn fmt(&self, formatter: &mut fmt::Formatter<'_>) -> fmt::Result {
        match (&self.below, &self.above) {
            (Some(below), Some(above)) => {
                write!(formatter, "the nearest versions are {below} and {above}")
            }
            (Some(below), None) => {
                write!(formatter, "the nearest version is {below} (the highest)")
            }
            (None, Some(above)) => write!(formatter, "the nearest version is {above} (the lowest)"),
            (None, None) => formatter.write_str("the graph has no versions"),
        }
    }
}

/// Something the user should know; selection went on.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum SelectionWarning {
    /// A range end is not in the graph: what lies between is selected.
    RangeEndNotInGraph {
        channel: String,
        architecture: Architecture,
        end: RangeEnd,
        version: semver::Version,
        nearest: Nearest,
    },
    /// An EUS channel whose range spans two minors or more (oc-mirror warns too).
    EusRange { channel: String },
    /// The cross-channel path could not continue: `version` is not in `channel`.
    CrossChannelBlocked {
        architecture: Architecture,
        version: semver::Version,
        channel: String,
    },
    /// Beyond oc-mirror: the selection leaves no upgrade path.
    NoUpgradePath(UpgradePathWarning),
}

impl fmt::Display for SelectionWarning {
    fn fmt(&self, formatter: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            SelectionWarning::RangeEndNotInGraph {
                channel,
                architecture,
                end,
                version,
                nearest,
            } => write!(
                formatter,
                "release channel \"{channel}\" ({}): {end} {version} is not in the update graph; \
                 the releases between the range ends are selected ({nearest})",
                architecture.name()
            ),
            SelectionWarning::EusRange { channel } => write!(
                formatter,
                "release channel \"{channel}\": an Extended Update Support (EUS) range over two minor \
                 versions or more; check the upgrade path (https://access.redhat.com/labs/ocpupgradegraph/update_path)"
            ),
            SelectionWarning::CrossChannelBlocked {
                architecture,
                version,
                channel,
            } => write!(
                formatter,
                "cross-channel upgrade path ({}): {version} is not in channel \"{channel}\", so the path \
                 stops there and only the requested release of the last channel is added",
                architecture.name()
            ),
            SelectionWarning::NoUpgradePath(warning) => warning.fmt(formatter),
        }
    }
}

/// Why selection failed.
#[derive(Clone, Debug, PartialEq, Eq, thiserror::Error)]
pub enum SelectionError {
    #[error("no update graph for channel \"{channel}\" ({})", architecture.name())]
    GraphMissing {
        channel: String,
        architecture: Architecture,
    },
    #[error("release channel \"{channel}\" ({}): the update graph has no releases", architecture.name())]
    EmptyChannel {
        channel: String,
        architecture: Architecture,
    },
    #[error(
        "release channel \"{channel}\" ({}): minVersion {min} is greater than maxVersion {max}",
        architecture.name()
    )]
    MinAboveMax {
        channel: String,
        architecture: Architecture,
        min: semver::Version,
        max: semver::Version,
    },
    #[error(
        "release channel \"{channel}\" ({}): {end} {version} is not in the update graph, and shortestPath \
         needs both ends in it ({nearest})",
        architecture.name()
    )]
    ShortestPathEndNotInGraph {
        channel: String,
        architecture: Architecture,
        end: RangeEnd,
        version: semver::Version,
        nearest: Box<Nearest>,
    },
    #[error(
        "cross-channel upgrade path ({}): version {version} is not in channel \"{channel}\" ({nearest})",
        architecture.name()
    )]
    CrossChannelVersionNotFound {
        channel: String,
        architecture: Architecture,
        version: semver::Version,
        nearest: Box<Nearest>,
    },
    #[error("cross-channel upgrade path: channel name \"{channel}\" does not end in -MAJOR.MINOR")]
    InvalidChannelName { channel: String },
    #[error(
        "release {version} in channel \"{channel}\" ({}): payload `{payload}` is not an image reference: {reason}",
        architecture.name()
    )]
    InvalidPayload {
        channel: String,
        architecture: Architecture,
        version: semver::Version,
        payload: String,
        reason: String,
    },
    #[error("no release images found")]
    NoReleasesFound,
}

/// Every error selection found (it goes on past one channel's error).
#[derive(Clone, Debug, PartialEq, Eq, thiserror::Error)]
#[error("{}", .errors.iter().map(ToString::to_string).collect::<Vec<_>>().join("; "))]
pub struct SelectionErrors {
    pub errors: Vec<SelectionError>,
}

impl SelectionErrors {
    /// The first graph selection lacked, if that is among the errors.
    pub fn missing_graph(&self) -> Option<(String, Architecture)> {
        self.errors.iter().find_map(|error| match error {
            SelectionError::GraphMissing {
                channel,
                architecture,
            } => Some((channel.clone(), *architecture)),
            _ => None,
        })
    }
}

/// Selects the releases of `platform` from `graphs`.
pub fn select(platform: &Platform, graphs: &Graphs) -> Result<Selection, SelectionErrors> {
    if let Some(release) = &platform.release {
        return Ok(Selection {
            explicit_release: Some(release.clone()),
            architectures: Vec::new(),
            warnings: Vec::new(),
        });
    }
    let mut errors = Vec::new();
    let mut warnings = Vec::new();
    if let Some(channel) = platform
        .channels
        .iter()
        .find(|channel| is_wide_eus_range(channel))
    {
        warnings.push(SelectionWarning::EusRange {
            channel: channel.name.clone(),
        });
    }
    let mut selected = Vec::new();
    for architecture in architectures(platform) {
        let mut channels = Vec::new();
        for channel in &platform.channels {
            match select_channel(channel, architecture, graphs, &mut warnings) {
                Ok(selection) => channels.push(selection),
                Err(error) => errors.push(error),
            }
        }
        let mut cross_channel = Vec::new();
        if platform.channels.len() > 1 {
            match cross_channel_releases(platform, &channels, architecture, graphs, &mut warnings) {
                Ok(releases) => cross_channel = releases,
                Err(error) => errors.push(error),
            }
        }
        let selection = ArchitectureSelection {
            architecture,
            channels,
            cross_channel,
        };
        if let Some(warning) = check_upgrade_path(platform, &selection, graphs) {
            warnings.push(SelectionWarning::NoUpgradePath(warning));
        }
        selected.push(selection);
    }
    let nothing = selected
        .iter()
        .all(|selection| selection.releases().is_empty());
    if errors.is_empty() && nothing && !platform.channels.is_empty() {
        errors.push(SelectionError::NoReleasesFound);
    }
    if !errors.is_empty() {
        return Err(SelectionErrors { errors });
    }
    Ok(Selection {
        explicit_release: None,
        architectures: selected,
        warnings,
    })
}

fn is_wide_eus_range(channel: &ReleaseChannel) -> bool {
    match (&channel.min_version, &channel.max_version) {
        (Some(min), Some(max)) => {
            channel.name.contains("eus") && max.semver().minor >= min.semver().minor + 2
        }
        _ => false,
    }
}

fn graph_for<'graphs>(
    graphs: &'graphs Graphs,
    channel: &str,
    architecture: Architecture,
) -> Result<&'graphs UpdateGraph, SelectionError> {
    graphs
        .get(&(channel.to_owned(), architecture))
        .ok_or_else(|| SelectionError::GraphMissing {
            channel: channel.to_owned(),
            architecture,
        })
}

fn release_of(
    graph: &UpdateGraph,
    index: usize,
    channel: &str,
    architecture: Architecture,
) -> Result<SelectedRelease, SelectionError> {
    let node = &graph.nodes[index];
    let payload =
        node.payload
            .parse::<ImageReference>()
            .map_err(|error| SelectionError::InvalidPayload {
                channel: channel.to_owned(),
                architecture,
                version: node.version.clone(),
                payload: node.payload.clone(),
                reason: error.to_string(),
            })?;
    Ok(SelectedRelease {
        version: node.version.clone(),
        payload,
        channel: channel.to_owned(),
    })
}

fn releases_of(
    graph: &UpdateGraph,
    indexes: impl IntoIterator<Item = usize>,
    channel: &str,
    architecture: Architecture,
) -> Result<Vec<SelectedRelease>, SelectionError> {
    let mut releases = indexes
        .into_iter()
        .collect::<BTreeSet<usize>>()
        .into_iter()
        .map(|index| release_of(graph, index, channel, architecture))
        .collect::<Result<Vec<_>, _>>()?;
    releases.sort_by(|left, right| left.version.cmp(&right.version));
    Ok(releases)
}

/// The range of one channel with its ends filled in (oc-mirror's
/// `resolveChannelVersions`): `(min, max)`.
fn resolve_range(
    channel: &ReleaseChannel,
    graph: &UpdateGraph,
    architecture: Architecture,
) -> Result<(semver::Version, semver::Version), SelectionError> {
    let empty = || SelectionError::EmptyChannel {
        channel: channel.name.clone(),
        architecture,
    };
    let max = match &channel.max_version {
        Some(max) => max.semver().clone(),
        None => graph.highest().ok_or_else(empty)?.clone(),
    };
    let min = match &channel.min_version {
        Some(min) => min.semver().clone(),
        None if channel.max_version.is_none() && !channel.full => max.clone(),
        None => graph.lowest().ok_or_else(empty)?.clone(),
    };
    if min > max {
        return Err(SelectionError::MinAboveMax {
            channel: channel.name.clone(),
            architecture,
            min,
            max,
        });
    }
    Ok((min, max))
}

fn select_channel(
    channel: &ReleaseChannel,
    architecture: Architecture,
    graphs: &Graphs,
    warnings: &mut Vec<SelectionWarning>,
) -> Result<ChannelSelection, SelectionError> {
    let graph = graph_for(graphs, &channel.name, architecture)?;
    let (min, max) = resolve_range(channel, graph, architecture)?;
    let releases = if channel.shortest_path {
        let find = |end: RangeEnd, version: &semver::Version| {
            graph
                .index_of(version)
                .ok_or_else(|| SelectionError::ShortestPathEndNotInGraph {
                    channel: channel.name.clone(),
                    architecture,
                    end,
                    version: version.clone(),
                    nearest: Box::new(Nearest::of(graph, version)),
                })
        };
        let from = find(RangeEnd::Min, &min)?;
        let to = find(RangeEnd::Max, &max)?;
        // Both ends are taken even when no path joins them (oc-mirror's
        // gatherUpdates); the upgrade-path check then warns.
        let path = graph.shortest_path(from, to).unwrap_or_default();
        releases_of(
            graph,
            path.into_iter().chain([from, to]),
            &channel.name,
            architecture,
        )?
    } else {
        for (end, written) in [
            (RangeEnd::Min, &channel.min_version),
            (RangeEnd::Max, &channel.max_version),
        ] {
            if let Some(version) = written.as_ref().map(|version| version.semver())
                && graph.index_of(version).is_none()
            {
                warnings.push(SelectionWarning::RangeEndNotInGraph {
                    channel: channel.name.clone(),
                    architecture,
                    end,
                    version: version.clone(),
                    nearest: Nearest::of(graph, version),
                });
            }
        }
        let inside = graph
            .nodes
            .iter()
            .enumerate()
            .filter(|(_, node)| node.version >= min && node.version <= max)
            .map(|(index, _)| index);
        releases_of(graph, inside, &channel.name, architecture)?
    };
    Ok(ChannelSelection {
        channel: channel.name.clone(),
        min,
        max,
        releases,
    })
}

/// `prefix`, major and minor of a channel named `prefix-MAJOR.MINOR`.
pub fn channel_minor(channel: &str) -> Option<(&str, u64, u64)> {
    let (prefix, version) = channel.rsplit_once('-')?;
    let (major, minor) = version.split_once('.')?;
    Some((prefix, major.parse().ok()?, minor.parse().ok()?))
}

/// The path from `start` to `end` in one channel (oc-mirror's `GetUpdates`):
/// both ends and the breadth-first path between them, if any.
fn updates_in(
    graphs: &Graphs,
    channel: &str,
    architecture: Architecture,
    start: &semver::Version,
    end: &semver::Version,
) -> Result<Vec<SelectedRelease>, SelectionError> {
    let graph = graph_for(graphs, channel, architecture)?;
    let find = |version: &semver::Version| {
        graph
            .index_of(version)
            .ok_or_else(|| SelectionError::CrossChannelVersionNotFound {
                channel: channel.to_owned(),
                architecture,
                version: version.clone(),
                nearest: Box::new(Nearest::of(graph, version)),
            })
    };
    let from = find(start)?;
    let to = find(end)?;
    let path = graph.shortest_path(from, to).unwrap_or_default();
    releases_of(
        graph,
        path.into_iter().chain([from, to]),
        channel,
        architecture,
    )
}

/// The cross-channel upgrade path (oc-mirror's `getCrossChannelDownloads`
/// and `CalculateUpgrades`), over the OCP channels that resolved.
fn cross_channel_releases(
    platform: &Platform,
    resolved: &[ChannelSelection],
    architecture: Architecture,
    graphs: &Graphs,
    warnings: &mut Vec<SelectionWarning>,
) -> Result<Vec<SelectedRelease>, SelectionError> {
    let ocp: Vec<&ChannelSelection> = resolved
        .iter()
        .filter(|selection| {
            platform.channels.iter().any(|channel| {
                channel.name == selection.channel && channel.channel_type == ChannelType::Ocp
            })
        })
        .collect();
    let Some(first) = ocp
        .iter()
        .copied()
        .reduce(|best, next| if next.min < best.min { next } else { best })
    else {
        return Ok(Vec::new());
    };
    let Some(last) = ocp
        .iter()
        .copied()
        .reduce(|best, next| if next.max > best.max { next } else { best })
    else {
        return Ok(Vec::new());
    };
    let mut releases = calculate_upgrades(
        graphs,
        architecture,
        &first.channel,
        &last.channel,
        &first.min,
        &last.max,
        warnings,
    )?;
    releases.sort_by(|left, right| left.version.cmp(&right.version));
    releases.dedup_by(|left, right| left.version == right.version);
    Ok(releases)
}

fn contains(
    graphs: &Graphs,
    channel: &str,
    architecture: Architecture,
    version: &semver::Version,
) -> Result<bool, SelectionError> {
    Ok(graph_for(graphs, channel, architecture)?
        .index_of(version)
        .is_some())
}

fn calculate_upgrades(
    graphs: &Graphs,
    architecture: Architecture,
    source: &str,
    target: &str,
    start: &semver::Version,
    requested: &semver::Version,
    warnings: &mut Vec<SelectionWarning>,
) -> Result<Vec<SelectedRelease>, SelectionError> {
    if source == target {
        return updates_in(graphs, target, architecture, start, requested);
    }
    let invalid = |channel: &str| SelectionError::InvalidChannelName {
        channel: channel.to_owned(),
    };
    let (prefix, major, minor) = channel_minor(source).ok_or_else(|| invalid(source))?;
    let (_, target_major, target_minor) = channel_minor(target).ok_or_else(|| invalid(target))?;
    if (major, minor) == (target_major, target_minor) {
        if !contains(graphs, target, architecture, start)? {
            warnings.push(SelectionWarning::CrossChannelBlocked {
                architecture,
                version: start.clone(),
                channel: target.to_owned(),
            });
            return updates_in(graphs, target, architecture, requested, requested);
        }
        return updates_in(graphs, target, architecture, start, requested);
    }
    let latest = graph_for(graphs, source, architecture)?
        .highest()
        .cloned()
        .ok_or_else(|| SelectionError::EmptyChannel {
            channel: source.to_owned(),
            architecture,
        })?;
    let mut releases = updates_in(graphs, source, architecture, start, &latest)?;
    // Walk the next minors up to the target (oc-mirror's `calculate`).
    let mut current_minor = minor;
    let mut from = latest;
    loop {
        current_minor += 1;
        let reached = (major, current_minor) >= (target_major, target_minor);
        let (channel, to) = if reached {
            (target.to_owned(), requested.clone())
        } else {
            let channel = format!("{prefix}-{major}.{current_minor}");
            let highest = graph_for(graphs, &channel, architecture)?
                .highest()
                .cloned()
                .ok_or_else(|| SelectionError::EmptyChannel {
                    channel: channel.clone(),
                    architecture,
                })?;
            (channel, highest)
        };
        if !contains(graphs, &channel, architecture, &from)? {
            // Blocked: the path stops; the requested release of the last
            // channel is still taken. (oc-mirror looks up the current
            // channel's latest in the target channel here, which fails when
            // they differ; ferry takes the requested release.)
            warnings.push(SelectionWarning::CrossChannelBlocked {
                architecture,
                version: from.clone(),
                channel: channel.clone(),
            });
            releases.extend(updates_in(
                graphs,
                target,
                architecture,
                requested,
                requested,
            )?);
            return Ok(releases);
        }
        releases.extend(updates_in(graphs, &channel, architecture, &from, &to)?);
        if reached {
            return Ok(releases);
        }
        from = to;
    }
}
