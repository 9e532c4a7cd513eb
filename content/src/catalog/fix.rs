//! The fix for "multiple channel heads". oc-mirror's product documentation
//! says to adjust `minVersion`/`maxVersion` "until the error resolves"; but
//! its filter validates the whole channel before any range walk, so no range
//! resolves it except one that pins a single version (`minVersion ==
//! maxVersion`, which keeps that bundle without walking the graph). The
//! nearest such range is the newest head's version; the fix is the package
//! entry that pins it in the broken channel and keeps every other channel as
//! it was.

use std::collections::HashMap;
use std::fmt::Write as _;

use ferry_schemas::config;

use crate::catalog::model::{Catalog, Channel};
use crate::catalog::version::BundleVersion;

/// The configuration that gives a channel with several heads exactly one.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct HeadsFix {
    pub package: String,
    pub channel: String,
    /// The head kept: the newest by version.
    pub bundle: String,
    pub version: String,
    /// The package's entry to write under `mirror.operators[].packages`
    /// (replacing the current one), two spaces per level, starting `- name:`.
    pub yaml: String,
}

pub(crate) fn heads_fix(
    catalog: &Catalog,
    channel: &Channel,
    heads: &[String],
    versions: Option<&HashMap<&str, BundleVersion>>,
    package_config: Option<&config::Package>,
) -> Option<HeadsFix> {
    let versions = versions?;
    let (bundle, version) = heads
        .iter()
        .filter_map(|head| versions.get(head.as_str()).map(|version| (head, version)))
        .max_by(|left, right| left.1.precedence(right.1).then_with(|| right.0.cmp(left.0)))?;
    let version_text = catalog
        .bundle(&channel.package, bundle)
        .and_then(|bundle| bundle.version.clone())
        .unwrap_or_else(|| version.to_string());

    // The channels the entry keeps today, with the ranges they have today.
    let mut channels: Vec<(String, Option<String>, Option<String>)> = match package_config {
        Some(package) if !package.channels.is_empty() => package
            .channels
            .iter()
            .map(|c| {
                (
                    c.name.clone(),
                    c.min_version.as_ref().map(ToString::to_string),
                    c.max_version.as_ref().map(ToString::to_string),
                )
            })
            .collect(),
        _ => {
            let mut names: Vec<&str> = catalog
                .channels
                .iter()
                .filter(|c| c.package == channel.package)
                .map(|c| c.name.as_str())
                .collect();
            names.sort_unstable();
            names.dedup();
            let package_min = package_config
                .and_then(|p| p.min_version.as_ref())
                .map(ToString::to_string);
            let package_max = package_config
                .and_then(|p| p.max_version.as_ref())
                .map(ToString::to_string);
            names
                .into_iter()
                .map(|name| (name.to_owned(), package_min.clone(), package_max.clone()))
                .collect()
        }
    };
    for entry in &mut channels {
        if entry.0 == channel.name {
            entry.1 = Some(version_text.clone());
            entry.2 = Some(version_text.clone());
        }
    }

    let mut yaml = String::new();
    let _ = writeln!(yaml, "- name: {}", channel.package);
    if let Some(default) = package_config.and_then(|p| p.default_channel.as_ref()) {
        let _ = writeln!(yaml, "  defaultChannel: {default}");
    }
    let _ = writeln!(yaml, "  channels:");
    for (name, min, max) in &channels {
        let _ = writeln!(yaml, "  - name: {name}");
        if let Some(min) = min {
            let _ = writeln!(yaml, "    minVersion: {min}");
        }
        if let Some(max) = max {
            let _ = writeln!(yaml, "    maxVersion: {max}");
        }
    }
    Some(HeadsFix {
        package: channel.package.clone(),
        channel: channel.name.clone(),
        bundle: bundle.clone(),
        version: version_text,
        yaml,
    })
}
