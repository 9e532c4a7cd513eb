//! oc-mirror v2's bundle selection for one `mirror.operators` entry (notes
//! §6.2), and the selection it results in.
//!
//! The rules, in order: listed packages only (all when none are listed),
//! listed channels only (all of a package's when none are listed); the
//! package's default channel must survive (or `defaultChannel` name one that
//! does); then per channel: `bundles` keeps exactly the named bundles, `full`
//! every entry, a version range (the channel's, else the package's) the
//! replaces-chain walk of [`ChannelGraph::select_range`] or, with
//! `minVersion == maxVersion`, that one bundle; otherwise only the head.
//! A channel left empty is dropped, or an error when it is the default.
//!
//! Where ferry differs, on purpose: a package or channel that is not in the
//! catalog is a warning (oc-mirror drops it silently); the default channel
//! that must not end empty is the one the filtered catalog will have (with
//! `defaultChannel` applied); a channel whose entries end empty after a
//! pinned version (the bundle lives in other channels) is dropped like any
//! empty channel instead of being written with no entries; when several
//! bundles share the pinned version (`1.0.0` and `1.0.0+build`) the one in
//! the channel with the exact text wins, then the first by name, instead of
//! a random one.

use std::collections::{BTreeMap, BTreeSet, HashMap, HashSet};

use ferry_schemas::config;

use crate::catalog::error::FilterError;
use crate::catalog::fix;
use crate::catalog::graph::{ChannelGraph, GraphError};
use crate::catalog::model::Catalog;
use crate::catalog::version::{BundleVersion, FilterRange};

/// The result of filtering a catalog: what oc-mirror would mirror.
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct Filtered {
    /// Kept packages, by name.
    pub packages: Vec<KeptPackage>,
    /// Kept bundles, by package then name.
    pub bundles: Vec<KeptBundle>,
    /// `full: true` with no packages: nothing is filtered, the original
    /// catalog image is mirrored as it is.
    pub unfiltered: bool,
    /// Things worth telling the user that do not stop the run.
    pub warnings: Vec<String>,
    /// Kept deprecations: the catalog's index and the entries kept.
    pub(crate) deprecations: Vec<(usize, Vec<usize>)>,
    /// Kept objects of other schemas (catalog indexes).
    pub(crate) others: Vec<usize>,
}

#[derive(Clone, Debug, PartialEq, Eq)]
pub struct KeptPackage {
    pub name: String,
    /// The default channel of the filtered catalog.
    pub default_channel: Option<String>,
    /// Kept channels, by name.
    pub channels: Vec<KeptChannel>,
    pub(crate) index: Option<usize>,
}

#[derive(Clone, Debug, PartialEq, Eq)]
pub struct KeptChannel {
    pub name: String,
    /// The names of the kept entries, in the catalog's order.
    pub entries: Vec<String>,
    pub(crate) index: usize,
}

#[derive(Clone, Debug, PartialEq, Eq)]
pub struct KeptBundle {
    pub package: String,
    pub name: String,
    /// The `olm.package` version, as written.
    pub version: Option<String>,
    /// The kept channels whose kept entries hold this bundle, by name.
    pub channels: Vec<String>,
    pub(crate) index: usize,
}

/// Filters `catalog` by one `mirror.operators` entry with oc-mirror's rules.
pub fn filter(catalog: &Catalog, operator: &config::Operator) -> Result<Filtered, FilterError> {
    check_configuration(operator)?;
    if operator.full && operator.packages.is_empty() {
        return Ok(everything(catalog));
    }
    let mut warnings = Vec::new();
    let configured: HashMap<&str, &config::Package> = operator
        .packages
        .iter()
        .map(|package| (package.name.as_str(), package))
        .collect();
    let package_kept = |name: &str| configured.is_empty() || configured.contains_key(name);
    for package in &operator.packages {
        let present = catalog.packages.iter().any(|p| p.name == package.name)
            || catalog.channels.iter().any(|c| c.package == package.name);
        if !present {
            warnings.push(format!(
                "package {:?} is not in the catalog: nothing is mirrored for it",
                package.name
            ));
            continue;
        }
        for channel in &package.channels {
            if !catalog
                .channels
                .iter()
                .any(|c| c.package == package.name && c.name == channel.name)
            {
                warnings.push(format!(
                    "package {:?}: channel {:?} is not in the catalog",
                    package.name, channel.name
                ));
            }
        }
    }

    // The channels of the kept packages that the configuration keeps.
    let channel_indexes: Vec<usize> = catalog
        .channels
        .iter()
        .enumerate()
        .filter(|(_, channel)| {
            package_kept(&channel.package)
                && configured
                    .get(channel.package.as_str())
                    .is_none_or(|package| {
                        package.channels.is_empty()
                            || package.channels.iter().any(|c| c.name == channel.name)
                    })
        })
        .map(|(index, _)| index)
        .collect();

    // Bundle versions of the kept packages.
    let mut versions: HashMap<&str, HashMap<&str, BundleVersion>> = HashMap::new();
    let mut bundle_index: HashMap<(&str, &str), usize> = HashMap::new();
    for (index, bundle) in catalog.bundles.iter().enumerate() {
        if !package_kept(&bundle.package) {
            continue;
        }
        bundle_index.insert((bundle.package.as_str(), bundle.name.as_str()), index);
        let Some(text) = &bundle.version else {
            return Err(FilterError::BundleWithoutVersion {
                package: bundle.package.clone(),
                bundle: bundle.name.clone(),
            });
        };
        let version =
            BundleVersion::parse(text).map_err(|error| FilterError::InvalidBundleVersion {
                package: bundle.package.clone(),
                bundle: bundle.name.clone(),
                version: text.clone(),
                reason: error.to_string(),
            })?;
        versions
            .entry(bundle.package.as_str())
            .or_default()
            .insert(bundle.name.as_str(), version);
    }
    for package in &operator.packages {
        for selected in &package.bundles {
            if !bundle_index.contains_key(&(package.name.as_str(), selected.name.as_str())) {
                return Err(FilterError::BundleNotFound {
                    package: package.name.clone(),
                    bundle: selected.name.clone(),
                });
            }
        }
    }

    // Default channels.
    let mut default_channels: BTreeMap<&str, Option<String>> = BTreeMap::new();
    for package in &catalog.packages {
        if !package_kept(&package.name) {
            continue;
        }
        let mut default = package.default_channel.clone();
        if let Some(config) = configured.get(package.name.as_str()) {
            let kept = |name: &str| {
                channel_indexes.iter().any(|&index| {
                    catalog.channels[index].package == package.name
                        && catalog.channels[index].name == name
                })
            };
            if let Some(wanted) = &config.default_channel {
                if !kept(wanted) {
                    return Err(FilterError::DefaultChannelOverrideMissing {
                        package: package.name.clone(),
                        channel: wanted.clone(),
                    });
                }
                default = Some(wanted.clone());
            } else if let Some(original) = &default
                && !kept(original)
            {
                return Err(FilterError::DefaultChannelFilteredOut {
                    package: package.name.clone(),
                    channel: original.clone(),
                });
            }
        }
        default_channels.insert(package.name.as_str(), default);
    }

    // Per channel.
    let no_versions = HashMap::new();
    let mut kept_channels: BTreeMap<&str, Vec<KeptChannel>> = BTreeMap::new();
    let mut kept_bundles: BTreeMap<&str, BTreeSet<String>> = BTreeMap::new();
    for &index in &channel_indexes {
        let channel = &catalog.channels[index];
        let package_config = configured.get(channel.package.as_str()).copied();
        let channel_config = package_config
            .and_then(|package| package.channels.iter().find(|c| c.name == channel.name));
        let range = channel_config
            .and_then(|c| FilterRange::new(c.min_version.as_ref(), c.max_version.as_ref()))
            .or_else(|| {
                package_config
                    .and_then(|p| FilterRange::new(p.min_version.as_ref(), p.max_version.as_ref()))
            });
        let package_versions = versions
            .get(channel.package.as_str())
            .unwrap_or(&no_versions);
        let selected: Vec<&str> = package_config
            .map(|p| p.bundles.iter().map(|b| b.name.as_str()).collect())
            .unwrap_or_default();
        let keep: BTreeSet<String> = if !selected.is_empty() {
            let entries: Vec<_> = channel
                .entries
                .iter()
                .filter(|entry| selected.contains(&entry.name.as_str()))
                .collect();
            if !entries.is_empty() {
                ChannelGraph::from_entries(entries.iter().map(|entry| {
                    (
                        entry.name.as_str(),
                        entry.replaces.as_deref(),
                        entry.skips.as_slice(),
                    )
                }))
                .map_err(|reason| FilterError::SelectedBundlesBreakChannel {
                    package: channel.package.clone(),
                    channel: channel.name.clone(),
                    bundles: entries.iter().map(|entry| entry.name.clone()).collect(),
                    reason,
                })?;
            }
            // Exactly the named bundles are kept, whether this channel holds
            // them or not.
            kept_bundles
                .entry(channel.package.as_str())
                .or_default()
                .extend(selected.iter().map(|name| (*name).to_owned()));
            entries.iter().map(|entry| entry.name.clone()).collect()
        } else if operator.full {
            channel
                .entries
                .iter()
                .map(|entry| entry.name.clone())
                .collect()
        } else if let Some(range) = &range {
            if let Some(pinned) = range.pinned() {
                let name = pinned_bundle(channel, pinned, package_versions).ok_or_else(|| {
                    FilterError::VersionNotFound {
                        package: channel.package.clone(),
                        channel: channel.name.clone(),
                        version: pinned.to_string(),
                    }
                })?;
                BTreeSet::from([name.to_owned()])
            } else {
                let graph = channel_graph(channel, catalog, &versions, package_config)?;
                let selection = graph.select_range(range, package_versions);
                for outside in &selection.outside_range {
                    warnings.push(format!(
                        "package {:?} channel {:?}: including bundle {outside:?}: it falls outside the range {range} but is required to ensure inclusion of all bundles in the range",
                        channel.package, channel.name
                    ));
                }
                selection.kept
            }
        } else {
            let graph = channel_graph(channel, catalog, &versions, package_config)?;
            BTreeSet::from([graph.head().to_owned()])
        };
        if selected.is_empty() {
            kept_bundles
                .entry(channel.package.as_str())
                .or_default()
                .extend(keep.iter().cloned());
        }
        let entries: Vec<String> = channel
            .entries
            .iter()
            .filter(|entry| keep.contains(&entry.name))
            .map(|entry| entry.name.clone())
            .collect();
        if entries.is_empty() {
            let is_default = default_channels
                .get(channel.package.as_str())
                .is_some_and(|default| default.as_deref() == Some(channel.name.as_str()));
            if is_default {
                return Err(FilterError::EmptyChannel {
                    package: channel.package.clone(),
                    channel: channel.name.clone(),
                    selection: match &range {
                        _ if !selected.is_empty() => format!("bundles [{}]", selected.join(" ")),
                        Some(range) => format!("version range {:?}", range.to_string()),
                        None => "no selected bundle".to_owned(),
                    },
                });
            }
            warnings.push(format!(
                "package {:?} channel {:?}: no bundle is selected, the channel is left out",
                channel.package, channel.name
            ));
            continue;
        }
        kept_channels
            .entry(channel.package.as_str())
            .or_default()
            .push(KeptChannel {
                name: channel.name.clone(),
                entries,
                index,
            });
    }

    let mut filtered = Filtered {
        warnings,
        ..Filtered::default()
    };
    let package_names: BTreeSet<&str> = default_channels
        .keys()
        .copied()
        .chain(kept_channels.keys().copied())
        .collect();
    for name in package_names {
        let mut channels = kept_channels.remove(name).unwrap_or_default();
        channels.sort_by(|left, right| left.name.cmp(&right.name));
        filtered.packages.push(KeptPackage {
            name: name.to_owned(),
            default_channel: default_channels.get(name).cloned().flatten(),
            channels,
            index: catalog.packages.iter().position(|p| p.name == name),
        });
    }
    for (package, names) in &kept_bundles {
        for name in names {
            let Some(&index) = bundle_index.get(&(*package, name.as_str())) else {
                filtered.warnings.push(format!(
                    "package {package:?}: channel entry {name:?} has no olm.bundle object, it is left out"
                ));
                continue;
            };
            filtered
                .bundles
                .push(kept_bundle(&filtered.packages, catalog, index));
        }
    }
    // Deprecations of kept packages, without entries for dropped bundles or
    // channels.
    for (index, deprecation) in catalog.deprecations.iter().enumerate() {
        let Some(package) = filtered
            .packages
            .iter()
            .find(|p| p.name == deprecation.package)
        else {
            continue;
        };
        let entries = deprecation
            .entries
            .iter()
            .enumerate()
            .filter(|(_, (schema, name))| match schema.as_str() {
                "olm.bundle" => kept_bundles
                    .get(package.name.as_str())
                    .is_some_and(|bundles| bundles.contains(name)),
                "olm.channel" => package.channels.iter().any(|channel| &channel.name == name),
                _ => true,
            })
            .map(|(entry, _)| entry)
            .collect();
        filtered.deprecations.push((index, entries));
    }
    filtered.others = catalog
        .others
        .iter()
        .enumerate()
        .filter(|(_, other)| other.package.as_deref().is_none_or(package_kept))
        .map(|(index, _)| index)
        .collect();
    Ok(filtered)
}

/// Configuration combinations oc-mirror rejects before filtering.
fn check_configuration(operator: &config::Operator) -> Result<(), FilterError> {
    for package in &operator.packages {
        let package_range = package.min_version.is_some() || package.max_version.is_some();
        let channel_range = package
            .channels
            .iter()
            .find(|channel| channel.min_version.is_some() || channel.max_version.is_some());
        if package_range && let Some(channel) = channel_range {
            return Err(FilterError::RangesOnBothLevels {
                package: package.name.clone(),
                channel: channel.name.clone(),
            });
        }
        let any_range = package_range || channel_range.is_some();
        let name = || package.name.clone();
        if operator.full && any_range {
            return Err(FilterError::FullWithRange { package: name() });
        }
        if !package.bundles.is_empty() {
            if operator.full {
                return Err(FilterError::FullWithBundles { package: name() });
            }
            if any_range {
                return Err(FilterError::BundlesWithRange { package: name() });
            }
        }
    }
    Ok(())
}

/// `full: true` with no packages: the whole catalog, unfiltered.
fn everything(catalog: &Catalog) -> Filtered {
    let mut filtered = Filtered {
        unfiltered: true,
        ..Filtered::default()
    };
    let mut names: BTreeSet<&str> = catalog.packages.iter().map(|p| p.name.as_str()).collect();
    names.extend(catalog.channels.iter().map(|c| c.package.as_str()));
    for name in names {
        let mut channels: Vec<KeptChannel> = catalog
            .channels
            .iter()
            .enumerate()
            .filter(|(_, channel)| channel.package == name)
            .map(|(index, channel)| KeptChannel {
                name: channel.name.clone(),
                entries: channel
                    .entries
                    .iter()
                    .map(|entry| entry.name.clone())
                    .collect(),
                index,
            })
            .collect();
        channels.sort_by(|left, right| left.name.cmp(&right.name));
        let index = catalog.packages.iter().position(|p| p.name == name);
        filtered.packages.push(KeptPackage {
            name: name.to_owned(),
            default_channel: index
                .and_then(|index| catalog.packages[index].default_channel.clone()),
            channels,
            index,
        });
    }
    let mut bundles: Vec<usize> = (0..catalog.bundles.len()).collect();
    bundles.sort_by(|&left, &right| {
        let (left, right) = (&catalog.bundles[left], &catalog.bundles[right]);
        (&left.package, &left.name).cmp(&(&right.package, &right.name))
    });
    for index in bundles {
        filtered
            .bundles
            .push(kept_bundle(&filtered.packages, catalog, index));
    }
    filtered.deprecations = catalog
        .deprecations
        .iter()
        .enumerate()
        .map(|(index, deprecation)| (index, (0..deprecation.entries.len()).collect()))
        .collect();
    filtered.others = (0..catalog.others.len()).collect();
    filtered
}

fn kept_bundle(packages: &[KeptPackage], catalog: &Catalog, index: usize) -> KeptBundle {
    let bundle = &catalog.bundles[index];
    let channels = packages
        .iter()
        .filter(|package| package.name == bundle.package)
        .flat_map(|package| &package.channels)
        .filter(|channel| channel.entries.contains(&bundle.name))
        .map(|channel| channel.name.clone())
        .collect();
    KeptBundle {
        package: bundle.package.clone(),
        name: bundle.name.clone(),
        version: bundle.version.clone(),
        channels,
        index,
    }
}

/// The channel's graph, or the error naming package, channel and bundles
/// (with the fix for multiple heads).
fn channel_graph<'c>(
    channel: &'c crate::catalog::model::Channel,
    catalog: &'c Catalog,
    versions: &HashMap<&str, HashMap<&str, BundleVersion>>,
    package_config: Option<&config::Package>,
) -> Result<ChannelGraph<'c>, FilterError> {
    ChannelGraph::new(channel).map_err(|reason| match reason {
        GraphError::MultipleHeads(heads) => FilterError::MultipleHeads {
            fix: fix::heads_fix(
                catalog,
                channel,
                &heads,
                versions.get(channel.package.as_str()),
                package_config,
            )
            .map(Box::new),
            package: channel.package.clone(),
            channel: channel.name.clone(),
            heads,
        },
        reason => FilterError::InvalidChannel {
            package: channel.package.clone(),
            channel: channel.name.clone(),
            reason,
        },
    })
}

/// The bundle of the package whose version equals `pinned` (build metadata
/// ignored): one in this channel first, then one whose version text is
/// exactly the pinned one, then the first by name.
fn pinned_bundle<'v>(
    channel: &crate::catalog::model::Channel,
    pinned: &semver::Version,
    versions: &'v HashMap<&str, BundleVersion>,
) -> Option<&'v str> {
    let in_channel: HashSet<&str> = channel.entries.iter().map(|e| e.name.as_str()).collect();
    let wanted = BundleVersion::parse(&pinned.to_string()).ok()?;
    versions
        .iter()
        .filter(|(_, version)| version.precedence(&wanted).is_eq())
        .min_by_key(|(name, version)| {
            (
                !in_channel.contains(**name),
                version.semver() != pinned,
                **name,
            )
        })
        .map(|(name, _)| *name)
}
