//! The images to collect for the kept bundles: each bundle's image and its
//! `relatedImages`, as (bundle, package, reference) rows.

use std::collections::BTreeSet;

use ferry_schemas::ImageReference;

use crate::catalog::filter::Filtered;
use crate::catalog::model::Catalog;

/// One image a kept bundle needs.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct BundleImage {
    pub package: String,
    pub bundle: String,
    pub reference: ImageReference,
    /// The bundle's own image (`image`), not one of its related images.
    pub is_bundle_image: bool,
}

/// A reference that cannot be mirrored.
#[derive(Clone, Debug, PartialEq, Eq, thiserror::Error)]
#[error(
    "package {package:?} bundle {bundle:?}: related image {image:?} cannot be mirrored: {reason}"
)]
pub struct ImageError {
    pub package: String,
    pub bundle: String,
    pub image: String,
    pub reason: String,
}

/// The images of the kept bundles, in bundle order (package, then name):
/// the bundle image first, then its related images in the catalog's order.
/// A reference a bundle names twice appears once for it; empty references
/// are skipped. A reference that does not parse, or names neither tag nor
/// digest, or is an `oci://` path, is an error naming bundle and package.
pub fn bundle_images(
    catalog: &Catalog,
    filtered: &Filtered,
) -> Result<Vec<BundleImage>, ImageError> {
    let mut images = Vec::new();
    for kept in &filtered.bundles {
        let bundle = &catalog.bundles[kept.index];
        let mut seen = BTreeSet::new();
        let candidates = std::iter::once((bundle.image.as_str(), true)).chain(
            bundle
                .related_images
                .iter()
                .map(|image| (image.as_str(), false)),
        );
        for (text, is_bundle_image) in candidates {
            if text.is_empty() || !seen.insert(text) {
                continue;
            }
            let error = |reason: String| ImageError {
                package: bundle.package.clone(),
                bundle: bundle.name.clone(),
                image: text.to_owned(),
                reason,
            };
            if text.starts_with("oci://") {
                return Err(error(
                    "an oci:// path is not an image in a registry".to_owned(),
                ));
            }
            let reference: ImageReference = text
                .parse()
                .map_err(|e: ferry_schemas::reference::ReferenceError| error(e.to_string()))?;
            if reference.tag().is_none() && reference.digest().is_none() {
                return Err(error("it names neither a tag nor a digest".to_owned()));
            }
            images.push(BundleImage {
                package: bundle.package.clone(),
                bundle: bundle.name.clone(),
                reference,
                is_bundle_image,
            });
        }
    }
    Ok(images)
}

/// The distinct references of `images`, sorted.
pub fn distinct_references(images: &[BundleImage]) -> Vec<ImageReference> {
    images
        .iter()
        .map(|image| image.reference.clone())
        .collect::<BTreeSet<_>>()
        .into_iter()
        .collect()
}
