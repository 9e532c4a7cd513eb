//! `delete.operators`: the operator images a delete configuration lists,
//! offline, from the bundles earlier runs recorded mirroring to the
//! destination (`working-dir/operators/bundles.json`, written by
//! `workflow::operators::selection` after each run to a registry, with
//! every bundle's image and related images).
//!
//! The documented rule (the product documentation's "Deletion of images"):
//! an entry with `packages` lists those packages' bundles and their images
//! and leaves the catalog image alone; an entry without `packages` lists
//! the catalog image and every bundle recorded for it. oc-mirror skips
//! catalog images in delete mode; ferry deletes them (README, delete).
//!
//! A package entry narrows what was mirrored, not the source catalog: no
//! `channels`, versions or `bundles` means every recorded bundle of the
//! package; `bundles` names bundles; `channels` keeps the bundles recorded
//! in those channels (each channel's range applied); `minVersion` and
//! `maxVersion` bound the version (oc-mirror's range rules).
//!
//! An image that a bundle staying at the destination still needs (a
//! related image two bundles share) is left out unless forced.

use std::collections::{BTreeMap, BTreeSet};

use ferry_content::catalog::{BundleVersion, FilterRange};
use ferry_planner::{Category, Destination};
use ferry_schemas::config::{Operator, Package};
use ferry_schemas::{Digest, ImageReference, ImageSource};

use super::ItemType;
use crate::naming::additional_image_destination;
use crate::workflow::collect::CollectedImage;
use crate::workflow::error::{Result, WorkflowError};
use crate::workflow::operators::catalog_destination;
use crate::workflow::operators::selection::SelectedBundle;
use crate::workflow::to_disk::Notice;

/// An operator image to list, with its type in the delete list.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct OperatorImage {
    pub image: CollectedImage,
    pub image_type: ItemType,
}

/// A listed image left out: a bundle that stays needs it.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct KeptOperatorImage {
    /// `docker://registry/repository:tag`.
    pub reference: String,
    /// The bundles that stay and need it, described.
    pub needed_by: String,
}

/// What the operator part of a delete lists.
#[derive(Clone, Debug, Default)]
pub struct OperatorDeletion {
    pub images: Vec<OperatorImage>,
    pub kept: Vec<KeptOperatorImage>,
    pub notices: Vec<Notice>,
}

/// What [`operator_images`] reads.
pub struct OperatorSources<'a> {
    pub destination: &'a Destination,
    /// The bundles the workspace recorded at the destination.
    pub recorded: &'a [SelectedBundle],
    /// (repository, tag) → digest the workspace recorded at the destination.
    pub tags_at_destination: &'a BTreeMap<(String, String), Digest>,
    /// `--force`: list images staying bundles need too (with a warning).
    pub force: bool,
}

/// The images `operators` (a delete configuration's) list at the
/// destination: catalogs, bundle images and related images, each once.
pub fn operator_images(
    operators: &[Operator],
    sources: &OperatorSources<'_>,
) -> Result<OperatorDeletion> {
    let mut deletion = OperatorDeletion::default();
    let mut deleted: BTreeSet<(String, String, String)> = BTreeSet::new();
    let mut catalogs = Vec::new();
    for operator in operators {
        let name = catalog_name(operator);
        let recorded: Vec<&SelectedBundle> = sources
            .recorded
            .iter()
            .filter(|bundle| bundle.catalog == name)
            .collect();
        check_recorded(&name, &recorded, sources.destination)?;
        if operator.packages.is_empty() {
            catalogs.push(operator);
            deleted.extend(recorded.iter().map(|bundle| key(bundle)));
            continue;
        }
        for package in &operator.packages {
            let chosen: Vec<&&SelectedBundle> = recorded
                .iter()
                .filter(|bundle| bundle.package == package.name && chosen_by(package, bundle))
                .collect();
            if chosen.is_empty() {
                deletion.notices.push(Notice::Warning(format!(
                    "catalog {name}: package {}: no bundle this workspace mirrored to docker://{} matches; nothing listed for it",
                    package.name,
                    sources.destination.display()
                )));
            }
            deleted.extend(chosen.iter().map(|bundle| key(bundle)));
        }
    }
    // What the bundles that stay need, by image name.
    let mut needed: BTreeMap<String, BTreeSet<String>> = BTreeMap::new();
    for bundle in sources.recorded {
        if deleted.contains(&key(bundle)) {
            continue;
        }
        for image in images_of(bundle) {
            needed
                .entry(normalized(image))
                .or_default()
                .insert(bundle.bundle.clone());
        }
    }
    let mut listed: BTreeSet<String> = BTreeSet::new();
    for bundle in sources.recorded {
        if !deleted.contains(&key(bundle)) {
            continue;
        }
        for (index, image) in images_of(bundle).enumerate() {
            let reference: ImageReference = image.parse().map_err(|problem| {
                WorkflowError::input(format!(
                    "catalog {}: bundle {}: image {image}: {problem}",
                    bundle.catalog, bundle.bundle
                ))
            })?;
            let name = reference.to_string();
            if !listed.insert(name.clone()) {
                continue;
            }
            let destination = additional_image_destination(
                &reference,
                &sources.destination.prefix,
                None,
                None,
                0,
            );
            let at_destination = format!(
                "docker://{}/{}:{}",
                sources.destination.registry, destination.repository, destination.tag
            );
            if let Some(staying) = needed.get(&name) {
                let staying = staying.iter().cloned().collect::<Vec<_>>().join(", ");
                if sources.force {
                    deletion.notices.push(Notice::Warning(format!(
                        "{at_destination}: listed with --force although the bundles {staying}, which stay, need it"
                    )));
                } else {
                    deletion.kept.push(KeptOperatorImage {
                        reference: at_destination,
                        needed_by: format!("the bundles {staying} (staying)"),
                    });
                    continue;
                }
            }
            deletion.images.push(OperatorImage {
                image: CollectedImage {
                    name,
                    origin: reference,
                    destination_repository: destination.repository,
                    destination_tag: destination.tag,
                    category: Category::Operator,
                },
                image_type: if index == 0 {
                    ItemType::OperatorBundle
                } else {
                    ItemType::OperatorRelatedImage
                },
            });
        }
    }
    for operator in catalogs {
        deletion.images.extend(catalog_images(operator, sources)?);
    }
    Ok(deletion)
}

/// The catalog as the configuration (and the recorded bundles) name it.
fn catalog_name(operator: &Operator) -> String {
    match &operator.catalog {
        ImageSource::Registry(reference) => reference.to_string(),
        ImageSource::OciLayout { path } => format!("oci://{path}"),
    }
}

fn key(bundle: &SelectedBundle) -> (String, String, String) {
    (
        bundle.catalog.clone(),
        bundle.package.clone(),
        bundle.bundle.clone(),
    )
}

/// The bundle image first, then its related images.
fn images_of(bundle: &SelectedBundle) -> impl Iterator<Item = &str> {
    std::iter::once(bundle.image.as_str())
        .chain(bundle.related_images.iter().map(String::as_str))
        .filter(|image| !image.is_empty())
}

/// An image name as the collector names it (parsed and written back).
fn normalized(image: &str) -> String {
    image
        .parse::<ImageReference>()
        .map(|reference| reference.to_string())
        .unwrap_or_else(|_| image.to_owned())
}

/// Refuses a catalog the workspace has no usable record of.
fn check_recorded(
    name: &str,
    recorded: &[&SelectedBundle],
    destination: &Destination,
) -> Result<()> {
    if recorded.is_empty() {
        return Err(WorkflowError::input(format!(
            "catalog {name}: this workspace has no record of mirroring it to docker://{}: run `ferry mirror` with this catalog to that registry first (mirror-to-mirror with this --workspace, or disk-to-mirror with --from this folder); the delete lists a catalog's bundles from what that run saved in working-dir/operators/bundles.json",
            destination.display()
        )));
    }
    if recorded.iter().all(|bundle| bundle.image.is_empty()) {
        return Err(WorkflowError::input(format!(
            "catalog {name}: the workspace recorded its bundles at docker://{} without their images (an earlier ferry): run `ferry mirror` with this catalog to that registry again, then generate the delete list",
            destination.display()
        )));
    }
    Ok(())
}

/// Whether a package entry of a delete configuration chooses `bundle`.
fn chosen_by(package: &Package, bundle: &SelectedBundle) -> bool {
    if !package.bundles.is_empty()
        && !package
            .bundles
            .iter()
            .any(|selector| selector.name == bundle.bundle)
    {
        return false;
    }
    let version = BundleVersion::parse(&bundle.version).ok();
    let in_range = |range: Option<FilterRange>| match (range, &version) {
        (None, _) => true,
        (Some(range), Some(version)) => range.contains(version),
        (Some(_), None) => false,
    };
    if !package.channels.is_empty() {
        let in_channel = package.channels.iter().any(|channel| {
            bundle.channels.contains(&channel.name)
                && in_range(FilterRange::new(
                    channel.min_version.as_ref(),
                    channel.max_version.as_ref(),
                ))
        });
        if !in_channel {
            return false;
        }
    }
    in_range(FilterRange::new(
        package.min_version.as_ref(),
        package.max_version.as_ref(),
    ))
}

/// The catalog image of an entry without packages: its destination as the
/// mirror named it; a digest-only catalog (tagged with the rebuilt
/// catalog's digest) by every `sha256-` tag the workspace recorded in its
/// repository.
fn catalog_images(
    operator: &Operator,
    sources: &OperatorSources<'_>,
) -> Result<Vec<OperatorImage>> {
    let name = catalog_name(operator);
    let destination = catalog_destination(operator, &sources.destination.prefix, 0, None);
    let registry = &sources.destination.registry;
    let digest_only = match &operator.catalog {
        ImageSource::Registry(origin) => origin.tag().is_none() && operator.target_tag.is_none(),
        ImageSource::OciLayout { .. } => false,
    };
    let tags: Vec<String> = if digest_only {
        sources
            .tags_at_destination
            .keys()
            .filter(|(repository, tag)| {
                *repository == destination.repository && tag.starts_with("sha256-")
            })
            .map(|(_, tag)| tag.clone())
            .collect()
    } else {
        vec![destination.tag.clone()]
    };
    let mut images = Vec::new();
    for tag in tags {
        let origin = match &operator.catalog {
            ImageSource::Registry(origin) => origin.clone(),
            ImageSource::OciLayout { .. } => format!("{registry}/{}:{tag}", destination.repository)
                .parse()
                .map_err(|problem| WorkflowError::internal(format!("catalog {name}: {problem}")))?,
        };
        images.push(OperatorImage {
            image: CollectedImage {
                name: name.clone(),
                origin,
                destination_repository: destination.repository.clone(),
                destination_tag: tag,
                category: Category::Operator,
            },
            image_type: ItemType::OperatorCatalog,
        });
    }
    Ok(images)
}

/// The recorded bundles whose bundle image's tag at the destination is in
/// `forgotten` (`(repository, tag)` a delete removed): what the workspace
/// forgets of them after the delete ([`selection::forget`]).
///
/// [`selection::forget`]: crate::workflow::operators::selection::forget
pub fn deleted_bundles(
    recorded: &[SelectedBundle],
    destination: &Destination,
    forgotten: &BTreeSet<(String, String)>,
) -> Vec<SelectedBundle> {
    recorded
        .iter()
        .filter(|bundle| {
            bundle
                .image
                .parse::<ImageReference>()
                .is_ok_and(|reference| {
                    let at = additional_image_destination(
                        &reference,
                        &destination.prefix,
                        None,
                        None,
                        0,
                    );
                    forgotten.contains(&(at.repository, at.tag))
                })
        })
        .cloned()
        .collect()
}
