//! The operator collector (`mirror.operators`): for each catalog, the
//! catalog pinned to a digest, its file-based catalog read out of the
//! image's labelled configs folder, oc-mirror's bundle filter applied
//! (`ferry_content::catalog`), the kept bundles' images and related images
//! collected (category operator, destinations as additional images', with
//! `blockedImages` honoured), and the catalog rebuilt as a built image
//! (`rebuild.rs`: so opm builds its cache from the filtered catalog when it
//! starts instead of serving, or crash-looping on, a stale one).
//!
//! Each bundle image needs its related images, and a mirrored catalog its
//! bundle images (`ImageSet::needs`): at a registry, an image whose need
//! failed is not pushed, so a bundle is never half-mirrored and a catalog
//! never names a bundle the destination lacks.
//!
//! Mirror-to-disk delivers the original catalog image instead of the
//! rebuilt one, so that disk-to-mirror filters it again offline by its own
//! configuration (`delivered.rs`). A catalog with `full: true` and no
//! packages is mirrored as it is.

mod delivered;
mod rebuild;
pub mod selection;

use std::collections::{BTreeMap, BTreeSet};

use ferry_content::catalog::{self, Catalog, CatalogFile, Filtered};
use ferry_planner::{Category, Source};
use ferry_schemas::config::{Mirror, Operator};
use ferry_schemas::{Digest, DigestAlgorithm, ImageSetConfiguration, ImageSource};
use ferry_store::{BlobStore, digest_of};
use regex::Regex;

use crate::catalog_image::{RegistryAccess, RegistryAccessOptions};
use crate::layer_files::{self, CATALOG_CONFIGS_LABEL, ImageBlobs, OciLayout};
use crate::naming::{DestinationName, additional_image_destination, flatten};
use crate::workflow::built::BuiltImage;
use crate::workflow::collect::{
    CollectContext, CollectedImage, Collector, ImageSet, blocked_patterns,
};
use crate::workflow::error::{Result, WorkflowError};

pub use delivered::collect_delivered;
use rebuild::{Base, Rebuild};

/// Which bundles and packages need an operator image (for the errors
/// file's `(Operator bundles: [...] - Operators: [...])`, notes §7).
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct OperatorImageUse {
    pub bundles: BTreeSet<String>,
    pub packages: BTreeSet<String>,
}

/// A mirrored catalog: what its CatalogSource and ClusterCatalog point at.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct CatalogImage {
    /// The image's name in the image set (the catalog as configured).
    pub name: String,
    pub destination_repository: String,
    pub destination_tag: String,
    /// The `targetCatalogSourceTemplate` text (checked), if any.
    pub source_template: Option<String>,
}

/// `mirror.operators`.
pub struct Operators;

impl Collector for Operators {
    fn category(&self) -> Category {
        Category::Operator
    }

    fn collect(
        &self,
        configuration: &ImageSetConfiguration,
        context: &CollectContext,
        into: &mut ImageSet,
    ) -> Result<()> {
        let mirror = &configuration.mirror;
        if mirror.operators.is_empty() || context.operators_from_deliveries {
            return Ok(());
        }
        let Some(access) = &context.registry else {
            return Err(WorkflowError::internal(
                "operator catalogs are read from their registry or OCI layout, and no registry \
                 access was given",
            ));
        };
        let Some(cache) = &context.cache else {
            return Err(WorkflowError::internal(
                "operator catalogs are rebuilt into the cache, and none was given",
            ));
        };
        // Registry access runs its own runtime: it gets a thread of its
        // own, so the collect stage may be called from async code.
        std::thread::scope(|scope| {
            scope
                .spawn(|| collect_catalogs(mirror, access, cache, context, into))
                .join()
                .unwrap_or_else(|_| {
                    Err(WorkflowError::internal(
                        "the operator collector's thread panicked",
                    ))
                })
        })?;
        if into.cache.is_none() && !into.built.is_empty() {
            into.cache = Some(cache.clone());
        }
        Ok(())
    }
}

fn collect_catalogs(
    mirror: &Mirror,
    access_options: &RegistryAccessOptions,
    cache: &BlobStore,
    context: &CollectContext,
    into: &mut ImageSet,
) -> Result<()> {
    let blocked = blocked_patterns(mirror);
    let mut access: Option<RegistryAccess> = None;
    for operator in &mirror.operators {
        let catalog = CatalogCollection {
            operator,
            context,
            cache,
            store: !context.plan_only,
            blocked: &blocked,
        };
        match &operator.catalog {
            ImageSource::Registry(reference) => {
                let access = match &mut access {
                    Some(access) => access,
                    None => access.insert(
                        context
                            .registry_access(access_options)
                            .map_err(WorkflowError::input)?,
                    ),
                };
                access
                    .with_image(reference, |image, pinned| {
                        let base = Base::Registry(Source::Registry(format!(
                            "{}/{}",
                            pinned.registry(),
                            pinned.repository()
                        )));
                        Ok(catalog.collect(image, &base, false, into))
                    })
                    .map_err(|message| {
                        WorkflowError::environment(format!("catalog {reference}: {message}"))
                    })??;
            }
            ImageSource::OciLayout { path } => {
                let layout = OciLayout { path: path.into() };
                catalog.collect(&layout, &Base::Copied, true, into)?;
            }
        }
    }
    Ok(())
}

/// One `mirror.operators` entry being collected.
struct CatalogCollection<'a> {
    operator: &'a Operator,
    context: &'a CollectContext,
    cache: &'a BlobStore,
    /// Whether built blobs are stored in `cache` (not by a plan).
    store: bool,
    blocked: &'a [Regex],
}

impl CatalogCollection<'_> {
    /// The catalog as the configuration names it.
    fn name(&self) -> String {
        match &self.operator.catalog {
            ImageSource::Registry(reference) => reference.to_string(),
            ImageSource::OciLayout { path } => format!("oci://{path}"),
        }
    }

    /// The `targetCatalogSourceTemplate` file's text, checked, so a bad
    /// template stops the run before anything is mirrored.
    fn source_template(&self) -> Result<Option<String>> {
        let Some(path) = &self.operator.target_catalog_source_template else {
            return Ok(None);
        };
        let failed = |message: String| {
            WorkflowError::input(format!(
                "catalog {}: targetCatalogSourceTemplate {path}: {message}",
                self.name()
            ))
        };
        let text = std::fs::read_to_string(path).map_err(|cause| failed(cause.to_string()))?;
        crate::cluster_resources::check_catalog_source_template(&text).map_err(failed)?;
        Ok(Some(text))
    }

    fn is_blocked(&self, name: &str, destination: &str) -> bool {
        self.blocked
            .iter()
            .any(|pattern| pattern.is_match(name) || pattern.is_match(destination))
    }

    fn collect(
        &self,
        image: &dyn ImageBlobs,
        base: &Base,
        layout: bool,
        into: &mut ImageSet,
    ) -> Result<()> {
        let name = self.name();
        let (loaded, filtered) = self.load(image)?;
        self.note(&name, &loaded, &filtered, into);
        let bundle_images = self.bundle_images(&name, &loaded, &filtered, into)?;
        self.catalog_image(
            &name,
            image,
            base,
            layout,
            &loaded,
            &filtered,
            bundle_images,
            into,
        )
    }

    /// The filter's warnings and the kept bundles' missing dependencies;
    /// the selected bundles noted.
    fn note(&self, name: &str, loaded: &Catalog, filtered: &Filtered, into: &mut ImageSet) {
        let by_name: BTreeMap<(&str, &str), &catalog::Bundle> = loaded
            .bundles
            .iter()
            .map(|bundle| ((bundle.package.as_str(), bundle.name.as_str()), bundle))
            .collect();
        into.selected_bundles
            .extend(filtered.bundles.iter().map(|kept| {
                let bundle = by_name.get(&(kept.package.as_str(), kept.name.as_str()));
                selection::SelectedBundle {
                    catalog: name.to_owned(),
                    package: kept.package.clone(),
                    bundle: kept.name.clone(),
                    channels: kept.channels.clone(),
                    version: kept.version.clone().unwrap_or_default(),
                    image: bundle
                        .map(|bundle| bundle.image.clone())
                        .unwrap_or_default(),
                    related_images: bundle
                        .map(|bundle| bundle.related_images.clone())
                        .unwrap_or_default(),
                }
            }));
        for warning in &filtered.warnings {
            into.warnings.push(format!("catalog {name}: {warning}"));
        }
        for missing in catalog::missing_dependencies(loaded, filtered) {
            into.warnings.push(format!("catalog {name}: {missing}"));
        }
    }

    /// The catalog's configs folder read out of `image`, loaded and
    /// filtered by this entry.
    fn load(&self, image: &dyn ImageBlobs) -> Result<(Catalog, Filtered)> {
        let name = self.name();
        let folder = layer_files::read_labelled_folder_from(image, CATALOG_CONFIGS_LABEL)
            .map_err(|cause| WorkflowError::input(format!("catalog {name}: {cause}")))?;
        let files = folder
            .files
            .into_iter()
            .map(|(path, bytes)| CatalogFile::new(path, bytes))
            .collect();
        let loaded = Catalog::load(files)
            .map_err(|cause| WorkflowError::input(format!("catalog {name}: {cause}")))?;
        let filtered = catalog::filter(&loaded, self.operator)
            .map_err(|cause| WorkflowError::input(format!("catalog {name}: {cause}")))?;
        Ok((loaded, filtered))
    }

    /// The kept bundles' images and related images; each bundle image
    /// needs its related images (`ImageSet::needs`). Returns the bundle
    /// images' names.
    fn bundle_images(
        &self,
        name: &str,
        loaded: &Catalog,
        filtered: &Filtered,
        into: &mut ImageSet,
    ) -> Result<Vec<String>> {
        let images = catalog::bundle_images(loaded, filtered)
            .map_err(|cause| WorkflowError::input(format!("catalog {name}: {cause}")))?;
        let mut present: BTreeSet<String> =
            into.images.iter().map(|image| image.name.clone()).collect();
        // The bundle image of the bundle whose rows are being read (its
        // row comes first).
        let mut bundle_image: Option<(String, String)> = None;
        let mut bundle_images = Vec::new();
        for image in images {
            let image_name = image.reference.to_string();
            if image.is_bundle_image {
                bundle_image = Some((image.bundle.clone(), image_name.clone()));
                bundle_images.push(image_name.clone());
            } else if let Some((bundle, needing)) = &bundle_image
                && *bundle == image.bundle
                && *needing != image_name
            {
                into.needs
                    .entry(needing.clone())
                    .or_default()
                    .insert(image_name.clone());
            }
            let used = into.operator_images.entry(image_name.clone()).or_default();
            used.bundles.insert(image.bundle.clone());
            used.packages.insert(image.package.clone());
            if present.contains(&image_name) || into.blocked.contains(&image_name) {
                continue;
            }
            let destination = additional_image_destination(
                &image.reference,
                &self.context.prefix,
                None,
                None,
                self.context.max_nested_paths,
            );
            let destination_text = format!("{}:{}", destination.repository, destination.tag);
            if self.is_blocked(&image_name, &destination_text) {
                into.blocked.push(image_name);
                continue;
            }
            present.insert(image_name.clone());
            into.images.push(CollectedImage {
                name: image_name,
                origin: image.reference,
                destination_repository: destination.repository,
                destination_tag: destination.tag,
                category: Category::Operator,
            });
        }
        Ok(bundle_images)
    }

    /// The catalog itself: rebuilt around the filtered catalog, or as it
    /// is (`full: true` with no packages; and for a delivery, so that
    /// disk-to-mirror filters the original again by its own configuration).
    /// A mirrored catalog needs the images of its kept bundles.
    #[allow(clippy::too_many_arguments)]
    fn catalog_image(
        &self,
        name: &str,
        image: &dyn ImageBlobs,
        base: &Base,
        layout: bool,
        loaded: &Catalog,
        filtered: &Filtered,
        bundle_images: Vec<String>,
        into: &mut ImageSet,
    ) -> Result<()> {
        let failed = |message: String| WorkflowError::input(format!("catalog {name}: {message}"));
        let rebuild = Rebuild {
            image,
            base,
            cache: self.cache,
            store: self.store,
            catalog_json: Vec::new(),
            name,
        };
        let delivery = self.context.deliver_original_catalogs;
        let built = if filtered.unfiltered || delivery {
            match &self.operator.catalog {
                ImageSource::Registry(origin) => {
                    // Pinned to the digest whose catalog was filtered.
                    let top = image.top().map_err(|cause| failed(cause.to_string()))?;
                    let digest = digest_of(DigestAlgorithm::Sha256, &top);
                    let destination = self.destination(None);
                    into.images.push(CollectedImage {
                        name: name.to_owned(),
                        origin: origin.with_digest(digest),
                        destination_repository: destination.repository,
                        destination_tag: destination.tag,
                        category: Category::Operator,
                    });
                    None
                }
                // An OCI layout is copied into the cache as it is.
                ImageSource::OciLayout { .. } => Some(rebuild.as_it_is(layout).map_err(failed)?),
            }
        } else {
            let rebuild = Rebuild {
                catalog_json: filtered.to_json(loaded),
                ..rebuild
            };
            Some(rebuild.top(layout).map_err(failed)?)
        };
        // The destination tag is not part of any manifest, so the image is
        // built first and named after (a digest-only catalog is tagged
        // with the rebuilt digest).
        let destination = match &built {
            Some(built) if !filtered.unfiltered && !delivery => {
                self.destination(Some(&built.manifest.digest))
            }
            _ => self.destination(None),
        };
        if let Some(built) = built {
            into.built.push(with_destination(built, &destination));
        }
        if delivery {
            return Ok(());
        }
        into.needs
            .entry(name.to_owned())
            .or_default()
            .extend(bundle_images);
        into.catalogs.push(CatalogImage {
            name: name.to_owned(),
            destination_repository: destination.repository,
            destination_tag: destination.tag,
            source_template: self.source_template()?,
        });
        Ok(())
    }

    /// The catalog's destination ([`catalog_destination`]).
    fn destination(&self, rebuilt: Option<&Digest>) -> DestinationName {
        catalog_destination(
            self.operator,
            &self.context.prefix,
            self.context.max_nested_paths,
            rebuilt,
        )
    }
}

/// A catalog's destination (notes §4.5): `targetCatalog` or the origin's
/// path (an OCI layout's last path element) below `prefix`, `targetTag` or
/// the origin's tag; a digest-only catalog is tagged `sha256-<rebuilt
/// hex>` when rebuilt, an OCI layout `latest`.
pub(crate) fn catalog_destination(
    operator: &Operator,
    prefix: &str,
    max_nested_paths: usize,
    rebuilt: Option<&Digest>,
) -> DestinationName {
    match &operator.catalog {
        ImageSource::Registry(origin) => {
            let mut name = additional_image_destination(
                origin,
                prefix,
                operator.target_catalog.as_deref(),
                operator.target_tag.as_deref(),
                max_nested_paths,
            );
            if let (None, None, Some(digest)) = (&operator.target_tag, origin.tag(), rebuilt) {
                name.tag = format!("{}-{}", digest.algorithm().name(), digest.hex());
            }
            name
        }
        ImageSource::OciLayout { path } => {
            let last = path
                .trim_end_matches('/')
                .rsplit('/')
                .next()
                .unwrap_or_default()
                .to_owned();
            let path = operator.target_catalog.clone().unwrap_or(last);
            let repository = if prefix.is_empty() {
                path
            } else {
                format!("{prefix}/{path}")
            };
            DestinationName {
                repository: flatten(&repository, max_nested_paths),
                tag: operator
                    .target_tag
                    .clone()
                    .unwrap_or_else(|| "latest".to_owned()),
            }
        }
    }
}

fn with_destination(mut image: BuiltImage, destination: &DestinationName) -> BuiltImage {
    image.destination_repository = destination.repository.clone();
    image.destination_tag = destination.tag.clone();
    image
}

/// The errors-file line of an image that failed (notes §7): operator
/// images name the bundles and packages that need them.
pub fn error_line(uses: &BTreeMap<String, OperatorImageUse>, name: &str, reason: &str) -> String {
    match uses.get(name) {
        Some(used) => format!(
            "error mirroring image {name} (Operator bundles: [{}] - Operators: [{}]) error: {reason}",
            used.bundles.iter().cloned().collect::<Vec<_>>().join(" "),
            used.packages.iter().cloned().collect::<Vec<_>>().join(" "),
        ),
        None => format!("error mirroring image {name} error: {reason}"),
    }
}

/// The errors file of a run whose `failed` images did not reach their
/// destination: one [`error_line`] per image, each ending with a newline
/// (empty when nothing failed).
pub fn errors_text(
    uses: &BTreeMap<String, OperatorImageUse>,
    failed: &[crate::workflow::to_registry::FailedImage],
) -> String {
    let mut errors = String::new();
    for image in failed {
        errors.push_str(&error_line(uses, &image.name, &image.reason));
        errors.push('\n');
    }
    errors
}

/// The summary line naming the bundles and packages `failed` images left
/// incomplete, if any.
pub fn incomplete_line<'a>(
    uses: &BTreeMap<String, OperatorImageUse>,
    failed: impl IntoIterator<Item = &'a str>,
) -> Option<String> {
    let incomplete = incomplete(uses, failed);
    let list = |names: &BTreeSet<String>| names.iter().cloned().collect::<Vec<_>>().join(" ");
    (!incomplete.bundles.is_empty()).then(|| {
        format!(
            "✗ incomplete operator bundles: [{}] - operators: [{}] (an image they need failed to mirror)",
            list(&incomplete.bundles),
            list(&incomplete.packages)
        )
    })
}

/// The bundles and packages left incomplete by `failed` images.
pub fn incomplete<'a>(
    uses: &BTreeMap<String, OperatorImageUse>,
    failed: impl IntoIterator<Item = &'a str>,
) -> OperatorImageUse {
    let mut incomplete = OperatorImageUse::default();
    for name in failed {
        if let Some(used) = uses.get(name) {
            incomplete.bundles.extend(used.bundles.iter().cloned());
            incomplete.packages.extend(used.packages.iter().cloned());
        }
    }
    incomplete
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn operator_error_lines_name_bundles_and_packages() {
        let mut uses = BTreeMap::new();
        uses.insert(
            "quay.io/a/b:1".to_owned(),
            OperatorImageUse {
                bundles: ["b1".to_owned(), "b2".to_owned()].into(),
                packages: ["p1".to_owned()].into(),
            },
        );
        assert_eq!(
            error_line(&uses, "quay.io/a/b:1", "manifest unknown"),
            "error mirroring image quay.io/a/b:1 (Operator bundles: [b1 b2] - Operators: [p1]) error: manifest unknown"
        );
        assert_eq!(
            error_line(&uses, "quay.io/c:1", "gone"),
            "error mirroring image quay.io/c:1 error: gone"
        );
        let incomplete = incomplete(&uses, ["quay.io/a/b:1", "quay.io/c:1"]);
        assert_eq!(incomplete.packages, ["p1".to_owned()].into());
    }

    #[test]
    fn the_errors_file_has_one_line_per_failed_image_in_order() {
        use crate::workflow::to_registry::FailedImage;
        let mut uses = BTreeMap::new();
        uses.insert(
            "quay.io/a/b:1".to_owned(),
            OperatorImageUse {
                bundles: ["b1".to_owned()].into(),
                packages: ["p1".to_owned()].into(),
            },
        );
        let failed = |name: &str, category, reason: &str| FailedImage {
            name: name.to_owned(),
            category,
            reason: reason.to_owned(),
        };
        assert_eq!(errors_text(&uses, &[]), "");
        assert_eq!(
            errors_text(
                &uses,
                &[
                    failed("quay.io/c:1", Category::Additional, "gone"),
                    failed("quay.io/a/b:1", Category::Operator, "manifest unknown"),
                ]
            ),
            "error mirroring image quay.io/c:1 error: gone\n\
             error mirroring image quay.io/a/b:1 (Operator bundles: [b1] - Operators: [p1]) error: manifest unknown\n"
        );
    }
}
