//! What the kept bundles require and the image set lacks. oc-mirror ignores
//! `olm.package.required` and `olm.gvk.required`; ferry reads them and says,
//! per bundle, which package (and version range) or API is missing, with the
//! configuration lines that add a bundle providing it. The filter's result
//! is not changed.

use std::collections::{BTreeSet, HashMap};
use std::fmt::Write as _;

use crate::catalog::filter::Filtered;
use crate::catalog::model::{Api, Catalog};
use crate::catalog::version::{BundleVersion, DependencyRange};

/// A requirement of a kept bundle that no kept bundle meets.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct MissingDependency {
    /// The package and bundle that require it.
    pub package: String,
    pub bundle: String,
    pub requirement: Requirement,
    /// The entry to add under `packages:` (two spaces per level, starting
    /// `- name:`) that keeps one catalog bundle meeting it: the newest such
    /// bundle, pinned in a channel that holds it. `None` when the catalog
    /// has no such bundle (or the range cannot be read).
    pub suggestion: Option<String>,
}

#[derive(Clone, Debug, PartialEq, Eq, PartialOrd, Ord)]
pub enum Requirement {
    /// `olm.package.required`.
    Package {
        package: String,
        version_range: String,
    },
    /// `olm.gvk.required`.
    Api(Api),
}

impl std::fmt::Display for MissingDependency {
    fn fmt(&self, formatter: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(
            formatter,
            "package {:?} bundle {:?} requires ",
            self.package, self.bundle
        )?;
        match &self.requirement {
            Requirement::Package {
                package,
                version_range,
            } => write!(formatter, "package {package:?} {version_range}")?,
            Requirement::Api(api) => {
                write!(formatter, "API {}/{} {}", api.group, api.version, api.kind)?
            }
        }
        write!(formatter, ", which the image set lacks")
    }
}

/// The requirements of kept bundles that no kept bundle meets, in bundle
/// order.
pub fn missing_dependencies(catalog: &Catalog, filtered: &Filtered) -> Vec<MissingDependency> {
    let kept: Vec<&crate::catalog::model::Bundle> = filtered
        .bundles
        .iter()
        .map(|bundle| &catalog.bundles[bundle.index])
        .collect();
    let provided: BTreeSet<&Api> = kept
        .iter()
        .flat_map(|bundle| &bundle.provided_apis)
        .collect();
    let mut missing = Vec::new();
    for bundle in &kept {
        for required in &bundle.required_packages {
            let range = DependencyRange::parse(&required.version_range).ok();
            let met = range.as_ref().is_some_and(|range| {
                kept.iter().any(|candidate| {
                    candidate.package == required.package
                        && version_of(candidate).is_some_and(|v| range.contains(&v))
                })
            });
            if met {
                continue;
            }
            let suggestion = range.and_then(|range| {
                let candidates = catalog.bundles.iter().filter(|candidate| {
                    candidate.package == required.package
                        && version_of(candidate).is_some_and(|v| range.contains(&v))
                });
                suggest(catalog, candidates)
            });
            missing.push(MissingDependency {
                package: bundle.package.clone(),
                bundle: bundle.name.clone(),
                requirement: Requirement::Package {
                    package: required.package.clone(),
                    version_range: required.version_range.clone(),
                },
                suggestion,
            });
        }
        for api in &bundle.required_apis {
            if provided.contains(api) {
                continue;
            }
            // The providers of the package first by name, so one package is
            // suggested.
            let mut providers: Vec<&crate::catalog::model::Bundle> = catalog
                .bundles
                .iter()
                .filter(|candidate| candidate.provided_apis.contains(api))
                .collect();
            providers.sort_by(|a, b| a.package.cmp(&b.package));
            let first_package = providers.first().map(|p| p.package.clone());
            let suggestion = suggest(
                catalog,
                providers
                    .into_iter()
                    .filter(|candidate| Some(&candidate.package) == first_package.as_ref()),
            );
            missing.push(MissingDependency {
                package: bundle.package.clone(),
                bundle: bundle.name.clone(),
                requirement: Requirement::Api(api.clone()),
                suggestion,
            });
        }
    }
    missing
}

fn version_of(bundle: &crate::catalog::model::Bundle) -> Option<BundleVersion> {
    bundle
        .version
        .as_deref()
        .and_then(|text| BundleVersion::parse(text).ok())
}

/// The entry that pins the newest of `candidates` (all of one package) in a
/// channel holding it: the package's default channel when it does, else the
/// first by name, which then becomes the default.
fn suggest<'c>(
    catalog: &'c Catalog,
    candidates: impl Iterator<Item = &'c crate::catalog::model::Bundle>,
) -> Option<String> {
    let mut channels_of: HashMap<&str, Vec<&str>> = HashMap::new();
    for channel in &catalog.channels {
        for entry in &channel.entries {
            channels_of
                .entry(entry.name.as_str())
                .or_default()
                .push(channel.name.as_str());
        }
    }
    let (bundle, _) = candidates
        .filter(|bundle| channels_of.contains_key(bundle.name.as_str()))
        .filter_map(|bundle| version_of(bundle).map(|version| (bundle, version)))
        .max_by(|left, right| {
            left.1
                .precedence(&right.1)
                .then_with(|| right.0.name.cmp(&left.0.name))
        })?;
    let default = catalog
        .package(&bundle.package)
        .and_then(|package| package.default_channel.as_deref());
    let mut channels: Vec<&str> = channels_of
        .get(bundle.name.as_str())
        .into_iter()
        .flatten()
        .copied()
        .filter(|name| {
            catalog
                .channels
                .iter()
                .any(|c| c.package == bundle.package && c.name == *name)
        })
        .collect();
    channels.sort_unstable();
    let channel = if default.is_some_and(|default| channels.contains(&default)) {
        default?
    } else {
        channels.first().copied()?
    };
    let version = bundle.version.as_deref()?;
    let mut yaml = String::new();
    let _ = writeln!(yaml, "- name: {}", bundle.package);
    if default != Some(channel) {
        let _ = writeln!(yaml, "  defaultChannel: {channel}");
    }
    let _ = writeln!(yaml, "  channels:");
    let _ = writeln!(yaml, "  - name: {channel}");
    let _ = writeln!(yaml, "    minVersion: {version}");
    let _ = writeln!(yaml, "    maxVersion: {version}");
    Some(yaml)
}
