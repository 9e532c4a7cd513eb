//! What the release listings print, as pure functions over graphs and tags.
//!
//! `oc mirror list releases` (notes §1.6): `--channels` needs `--version`
//! and lists the union of the channels the graph's nodes name; `--version`
//! alone means `--channel=stable-<version>`; a channel lists its versions
//! per architecture (`--filter-by-archs`, default amd64); neither lists the
//! X.Y versions found in the release repository's tags. The texts are
//! oc-mirror's.
//!
//! `ferry list releases -c ISC.yaml --format json` (ferry's own): one row
//! per selected release and architecture, `channel`, `architecture`,
//! `version`, `payload`.

use std::collections::BTreeSet;

use ferry_schemas::config::Architecture;
use serde::Serialize;

use crate::release::graph::UpdateGraph;
use crate::release::selection::Selection;

/// The repository whose tags give the X.Y versions.
pub const RELEASE_REPOSITORY: &str = "quay.io/openshift-release-dev/ocp-release";

/// What `list releases` does for its flags.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum ListReleases {
    /// `--channels --version V`: the channels the graph of `channel` names.
    Channels { version: String, channel: String },
    /// No channel, no version: X.Y versions from the release tags.
    MajorVersions,
    /// The versions of `channel`, for each architecture.
    Versions {
        /// As given (printed in the stable-channel hint).
        version: String,
        channel: String,
        architectures: Vec<Architecture>,
    },
}

/// Why the flags do not make a listing.
#[derive(Clone, Debug, PartialEq, Eq, thiserror::Error)]
pub enum ListError {
    #[error("must specify --version with --channels")]
    ChannelsWithoutVersion,
    #[error("must specify --version or --channel")]
    NoVersionOrChannel,
    #[error("invalid architecture(s) [{}]. Known architectures: [amd64 arm64 multi ppc64le s390x]", .0.join(" "))]
    InvalidArchitectures(Vec<String>),
}

/// Reads `list releases` flags as oc-mirror does.
pub fn list_releases(
    version: Option<&str>,
    channel: Option<&str>,
    channels: bool,
    architectures: &[String],
) -> Result<ListReleases, ListError> {
    let version = version.unwrap_or_default();
    if channels && version.is_empty() {
        return Err(ListError::ChannelsWithoutVersion);
    }
    let channel = match channel.unwrap_or_default() {
        "" if !version.is_empty() => format!("stable-{version}"),
        other => other.to_owned(),
    };
    if channel == "stable-" {
        return Err(ListError::NoVersionOrChannel);
    }
    let mut known = Vec::new();
    let mut unknown = BTreeSet::new();
    for name in architectures.iter().flat_map(|list| list.split(',')) {
        let name = name.trim();
        match Architecture::ALL
            .into_iter()
            .find(|candidate| candidate.name() == name)
        {
            Some(architecture) => known.push(architecture),
            None => {
                unknown.insert(name.to_owned());
            }
        }
    }
    if !unknown.is_empty() {
        return Err(ListError::InvalidArchitectures(
            unknown.into_iter().collect(),
        ));
    }
    if known.is_empty() {
        known.push(Architecture::Amd64);
    }
    if channels {
        return Ok(ListReleases::Channels {
            version: version.to_owned(),
            channel,
        });
    }
    if channel.is_empty() {
        return Ok(ListReleases::MajorVersions);
    }
    Ok(ListReleases::Versions {
        version: version.to_owned(),
        channel,
        architectures: known,
    })
}

/// `--channels`: every channel the graph's nodes name, sorted.
pub fn render_channels(version: &str, graph: &UpdateGraph) -> String {
    let mut text = format!("Listing channels for version {version}:\n\n");
    for channel in graph.channel_names() {
        text.push_str(&channel);
        text.push('\n');
    }
    text
}

/// The X.Y versions the release repository's tags name (signature tags
/// skipped), lowest first, as oc-mirror prints them.
pub fn render_major_versions(tags: &[String]) -> String {
    let mut versions = BTreeSet::new();
    for tag in tags.iter().filter(|tag| !tag.ends_with(".sig")) {
        if let Some(version) = major_minor(tag) {
            versions.insert(version);
        }
    }
    let mut text = "Available OpenShift Container Platform release versions:\n".to_owned();
    for (major, minor) in versions {
        text.push_str(&format!("  {major}.{minor}\n"));
    }
    text
}

/// The leading `X.Y` of a tag like `4.16.2-x86_64`.
fn major_minor(tag: &str) -> Option<(u64, u64)> {
    let digits = |text: &str| -> Option<(u64, usize)> {
        let end = text
            .find(|character: char| !character.is_ascii_digit())
            .unwrap_or(text.len());
        Some((text[..end].parse().ok()?, end))
    };
    // oc-mirror's pattern is unanchored: the first `digits.digits` anywhere.
    (0..tag.len()).find_map(|start| {
        let rest = tag.get(start..)?;
        if start > 0 && tag.as_bytes()[start - 1].is_ascii_digit() {
            return None;
        }
        let (major, length) = digits(rest)?;
        let after = rest[length..].strip_prefix('.')?;
        let (minor, _) = digits(after)?;
        Some((major, minor))
    })
}

/// The hint oc-mirror prints before the versions of a stable channel.
pub fn stable_channel_hint(channel: &str, version: &str) -> Option<String> {
    channel.starts_with("stable").then(|| {
        format!(
            "Listing stable channels. Use --channel=<name> to filter.\n\
             Use oc-mirror --v2 list releases --channels --version={version} to discover other channels.\n\n"
        )
    })
}

/// One architecture's block: `Channel:`, `Architecture:`, every version
/// lowest first. `None` when the graph has no versions (oc-mirror's error
/// "no versions found").
pub fn render_versions(
    channel: &str,
    architecture: Architecture,
    graph: &UpdateGraph,
) -> Option<String> {
    let versions = graph.versions();
    if versions.is_empty() {
        return None;
    }
    let mut text = format!(
        "Channel: {channel}\nArchitecture: {}\n",
        architecture.name()
    );
    for version in versions {
        text.push_str(&format!("{version}\n"));
    }
    Some(text)
}

/// One row of `ferry list releases -c ISC.yaml --format json`.
#[derive(Clone, Debug, PartialEq, Eq, Serialize)]
pub struct ReleaseRow {
    /// The channel whose graph holds the release (`null` for an explicit
    /// `platform.release`).
    pub channel: Option<String>,
    pub architecture: Option<String>,
    /// `null` for an explicit `platform.release` (known only from its payload).
    pub version: Option<String>,
    pub payload: String,
}

/// The rows of a selection: per architecture in the configuration's order,
/// each release once, lowest version first.
pub fn release_rows(selection: &Selection) -> Vec<ReleaseRow> {
    let mut rows = Vec::new();
    if let Some(release) = &selection.explicit_release {
        rows.push(ReleaseRow {
            channel: None,
            architecture: None,
            version: None,
            payload: release.to_string(),
        });
    }
    for architecture in &selection.architectures {
        for release in architecture.releases() {
            rows.push(ReleaseRow {
                channel: Some(release.channel.clone()),
                architecture: Some(architecture.architecture.name().to_owned()),
                version: Some(release.version.to_string()),
                payload: release.payload.to_string(),
            });
        }
    }
    rows
}

/// The rows as JSON: a bare array (`[]` when nothing is selected).
pub fn rows_json(rows: &[ReleaseRow]) -> String {
    serde_json::to_string_pretty(rows).expect("rows are plain strings")
}

/// The rows as a table for people.
pub fn rows_text(rows: &[ReleaseRow]) -> String {
    let cells: Vec<[String; 4]> = rows
        .iter()
        .map(|row| {
            [
                row.channel.clone().unwrap_or_else(|| "-".to_owned()),
                row.architecture.clone().unwrap_or_else(|| "-".to_owned()),
                row.version.clone().unwrap_or_else(|| "-".to_owned()),
                row.payload.clone(),
            ]
        })
        .collect();
    let header = ["CHANNEL", "ARCHITECTURE", "VERSION", "PAYLOAD"].map(str::to_owned);
    let mut widths = header.clone().map(|cell| cell.len());
    for row in &cells {
        for (width, cell) in widths.iter_mut().zip(row) {
            *width = (*width).max(cell.len());
        }
    }
    let mut text = String::new();
    for row in std::iter::once(&header).chain(&cells) {
        let line = format!(
            "{:<w0$}  {:<w1$}  {:<w2$}  {}",
            row[0],
            row[1],
            row[2],
            row[3],
            w0 = widths[0],
            w1 = widths[1],
            w2 = widths[2]
        );
        text.push_str(line.trim_end());
        text.push('\n');
    }
    text
}
