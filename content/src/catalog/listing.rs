//! What the listing commands show, computed from a loaded catalog:
//! `list operators --catalog X` (packages and their default channel),
//! `--package P` (channels and their head), `--channel C` (versions), and
//! the rows of `ferry list bundles`.

use serde::Serialize;

use crate::catalog::error::FilterError;
use crate::catalog::filter::Filtered;
use crate::catalog::graph::ChannelGraph;
use crate::catalog::model::Catalog;
use crate::catalog::version::BundleVersion;

/// A package and its default channel.
#[derive(Clone, Debug, PartialEq, Eq, Serialize)]
pub struct PackageRow {
    pub name: String,
    pub default_channel: String,
}

/// A channel and its head (or why it has none).
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct ChannelRow {
    pub package: String,
    pub channel: String,
    pub head: Result<String, FilterError>,
}

/// One selected bundle, as `ferry list bundles` prints it.
#[derive(Clone, Debug, PartialEq, Eq, Serialize)]
pub struct BundleRow {
    /// The catalog as written in the configuration.
    pub catalog: String,
    pub package: String,
    pub bundle: String,
    pub version: String,
    pub channels: Vec<String>,
    pub image: String,
}

/// Every package, by name.
pub fn packages(catalog: &Catalog) -> Vec<PackageRow> {
    let mut rows: Vec<PackageRow> = catalog
        .packages
        .iter()
        .map(|package| PackageRow {
            name: package.name.clone(),
            default_channel: package.default_channel.clone().unwrap_or_default(),
        })
        .collect();
    rows.sort_by(|left, right| left.name.cmp(&right.name));
    rows
}

/// The channels of `package`, by name, with their heads.
pub fn channels(catalog: &Catalog, package: &str) -> Vec<ChannelRow> {
    let mut rows: Vec<ChannelRow> = catalog
        .channels
        .iter()
        .filter(|channel| channel.package == package)
        .map(|channel| ChannelRow {
            package: channel.package.clone(),
            channel: channel.name.clone(),
            head: ChannelGraph::new(channel)
                .map(|graph| graph.head().to_owned())
                .map_err(|reason| match reason {
                    crate::catalog::graph::GraphError::MultipleHeads(heads) => {
                        FilterError::MultipleHeads {
                            package: channel.package.clone(),
                            channel: channel.name.clone(),
                            heads,
                            fix: None,
                        }
                    }
                    reason => FilterError::InvalidChannel {
                        package: channel.package.clone(),
                        channel: channel.name.clone(),
                        reason,
                    },
                }),
        })
        .collect();
    rows.sort_by(|left, right| left.channel.cmp(&right.channel));
    rows
}

/// The versions of the bundles in `channel` of `package`, lowest first
/// (entries without a bundle or a readable version are left out).
pub fn versions(catalog: &Catalog, package: &str, channel: &str) -> Vec<String> {
    let mut versions: Vec<(BundleVersion, String)> = catalog
        .channels
        .iter()
        .filter(|c| c.package == package && c.name == channel)
        .flat_map(|c| &c.entries)
        .filter_map(|entry| catalog.bundle(package, &entry.name))
        .filter_map(|bundle| {
            let text = bundle.version.clone()?;
            Some((BundleVersion::parse(&text).ok()?, text))
        })
        .collect();
    versions.sort_by(|left, right| {
        left.0
            .precedence(&right.0)
            .then_with(|| left.1.cmp(&right.1))
    });
    versions.dedup_by(|a, b| a.1 == b.1);
    versions.into_iter().map(|(_, text)| text).collect()
}

/// The rows of `ferry list bundles` for one catalog's selection, in the
/// selection's order (package, then bundle name).
pub fn bundle_rows(catalog_name: &str, catalog: &Catalog, filtered: &Filtered) -> Vec<BundleRow> {
    filtered
        .bundles
        .iter()
        .map(|kept| BundleRow {
            catalog: catalog_name.to_owned(),
            package: kept.package.clone(),
            bundle: kept.name.clone(),
            version: kept.version.clone().unwrap_or_default(),
            channels: kept.channels.clone(),
            image: catalog.bundles[kept.index].image.clone(),
        })
        .collect()
}
