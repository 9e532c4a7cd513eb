//! Disk-to-mirror's operator collection: the catalogs the deliveries
//! brought (each the original catalog image, found by the name the
//! configuration gives it) read out of the cache, filtered again by this
//! side's configuration, checked against what was delivered, and rebuilt
//! here, offline, as mirror-to-mirror rebuilds them.

use std::collections::{BTreeMap, BTreeSet};

use ferry_content::catalog::{self, Catalog, Filtered};
use ferry_schemas::config::Mirror;

use super::CatalogCollection;
use super::rebuild::Base;
use crate::disk::DeliveredManifests;
use crate::source::Deliveries;
use crate::source_image::{LayerBlobs, SourceImage, Waiting};
use crate::workflow::collect::{CollectContext, ImageSet, blocked_patterns};
use crate::workflow::error::{Result, WorkflowError};

/// Disk-to-mirror: the operator part of the image set collected again,
/// offline, from the catalogs the deliveries brought (each found by the
/// name the configuration gives it): their configs folder read out of the
/// delivered image (manifests from the deliveries, blobs from the cache),
/// filtered by this side's configuration, the bundles' images collected as
/// at the connected side, and the catalog rebuilt from the delivered one.
/// A selected bundle whose image no delivery carries is an error naming
/// its package (this side asks for more than was delivered). `store`:
/// the rebuilt catalog's new blobs are stored in the cache (a plan only
/// describes them).
pub fn collect_delivered(
    mirror: &Mirror,
    context: &CollectContext,
    records: &[ferry_archive::ImageRecord],
    delivered: &DeliveredManifests,
    store: bool,
    into: &mut ImageSet,
) -> Result<()> {
    let blocked = blocked_patterns(mirror);
    let media_types = BTreeMap::new();
    let deliveries = Deliveries::new(records, &media_types, delivered, "no delivery carries it");
    // Every blob is read from the cache the deliveries were imported into.
    let blobs = LayerBlobs::new(Some(delivered.blobs().clone()), false);
    for operator in &mirror.operators {
        let collection = CatalogCollection {
            operator,
            context,
            cache: delivered.blobs(),
            store,
            blocked: &blocked,
        };
        let name = collection.name();
        let Some(record) = records.iter().rev().find(|record| record.name == name) else {
            return Err(WorkflowError::input(format!(
                "catalog {name}: no delivery carries it: run mirror-to-disk with this catalog \
                 in the configuration and bring the new delivery"
            )));
        };
        let image = SourceImage {
            source: &deliveries,
            pinned: deliveries
                .pin_name(&record.name)
                .map_err(WorkflowError::input)?,
            place: format!("{name} (delivered)"),
            blobs: &blobs,
            waiting: Waiting::Ready,
        };
        let (loaded, filtered) = collection.load(&image).map_err(|error| {
            WorkflowError::input(format!(
                "{error} (a delivered catalog is read from the cache: `ferry plan` reads only \
                 deliveries an earlier run imported)"
            ))
        })?;
        collection.note(&name, &loaded, &filtered, into);
        refuse_undelivered(&collection, &name, &loaded, &filtered, records)?;
        let bundle_images = collection.bundle_images(&name, &loaded, &filtered, into)?;
        collection.catalog_image(
            &name,
            &image,
            &Base::Cache,
            false,
            &loaded,
            &filtered,
            bundle_images,
            into,
        )?;
    }
    Ok(())
}

/// Refuses a selection holding bundles whose bundle image no delivery
/// carries: the connected side's configuration did not select them. The
/// message names each such package and its bundles.
fn refuse_undelivered(
    collection: &CatalogCollection,
    name: &str,
    loaded: &Catalog,
    filtered: &Filtered,
    records: &[ferry_archive::ImageRecord],
) -> Result<()> {
    let delivered: BTreeSet<&str> = records.iter().map(|record| record.name.as_str()).collect();
    let images = catalog::bundle_images(loaded, filtered)
        .map_err(|cause| WorkflowError::input(format!("catalog {name}: {cause}")))?;
    let mut missing: BTreeMap<&str, Vec<&str>> = BTreeMap::new();
    for image in images.iter().filter(|image| image.is_bundle_image) {
        let image_name = image.reference.to_string();
        // A blocked bundle image is left out on both sides.
        let blocked = collection
            .blocked
            .iter()
            .any(|pattern| pattern.is_match(&image_name));
        if !blocked && !delivered.contains(image_name.as_str()) {
            missing
                .entry(image.package.as_str())
                .or_default()
                .push(image.bundle.as_str());
        }
    }
    if missing.is_empty() {
        return Ok(());
    }
    let lines: Vec<String> = missing
        .iter()
        .map(|(package, bundles)| {
            let whole = filtered
                .bundles
                .iter()
                .filter(|kept| kept.package == *package)
                .count()
                == bundles.len();
            if whole {
                format!("  package {package}: not delivered")
            } else {
                format!(
                    "  package {package}: bundles {} not delivered",
                    bundles.join(", ")
                )
            }
        })
        .collect();
    Err(WorkflowError::input(format!(
        "catalog {name}: this configuration selects more than the deliveries carry:\n{}\n\
         select only what mirror-to-disk delivered, or run mirror-to-disk with these in its \
         configuration and bring the new delivery",
        lines.join("\n")
    )))
}
