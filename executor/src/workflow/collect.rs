//! The collect stage: the configuration turned into a typed image set.
//!
//! One [`Collector`] per content kind reads its part of the configuration
//! and adds images to the [`ImageSet`], each with where it comes from,
//! where it goes and its [`Category`]. Additional images need nothing but
//! the configuration; the release collector (`releases.rs`) reads update
//! graphs and payloads first (operators, issue 10, will read catalogs), so
//! the trait hands every collector the same [`CollectContext`].

use std::collections::{BTreeMap, BTreeSet};

use regex::Regex;

use ferry_schemas::config::Mirror;
use ferry_schemas::{Digest, ImageReference, ImageSetConfiguration, ImageSource};

use ferry_store::BlobStore;

use crate::catalog_image::RegistryAccessOptions;
use crate::naming::additional_image_destination;
use crate::source_image::CachedReads;
use crate::workflow::built::BuiltImage;
use crate::workflow::error::Result;
use crate::workflow::operators::{CatalogImage, OperatorImageUse, Operators};
use ferry_planner::Category;

/// An image the configuration asks for, before resolving: its origin, its
/// place at the destination, and its category.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct CollectedImage {
    /// The name as the configuration wrote it (for additional images) or
    /// as the collector names it (a bundle's image, a release component).
    pub name: String,
    pub origin: ImageReference,
    /// Repository path at the destination (below the destination prefix,
    /// which is already applied).
    pub destination_repository: String,
    pub destination_tag: String,
    pub category: Category,
}

/// What the collect stage produced.
#[derive(Clone, Debug, Default)]
pub struct ImageSet {
    pub images: Vec<CollectedImage>,
    /// Images `blockedImages` left out, by name.
    pub blocked: Vec<String>,
    /// Images a collector built (their new blobs are in `cache`).
    pub built: Vec<BuiltImage>,
    /// The cache the built images' blobs were stored in, and the blobs
    /// collectors read are held in.
    pub cache: Option<BlobStore>,
    /// The blobs collectors read out of images (catalog and payload layers
    /// and configs, the graph image's base) that `cache` holds, verified:
    /// mirror-to-mirror uploads them from there (`to_registry.rs`), so no
    /// blob is read from its source twice.
    pub cached_reads: BTreeSet<Digest>,
    /// Mirrored operator catalogs (built or copied as they are), for
    /// their CatalogSource and ClusterCatalog.
    pub catalogs: Vec<CatalogImage>,
    /// Operator images by name: the bundles and packages that need them.
    pub operator_images: BTreeMap<String, OperatorImageUse>,
    /// Images that need others at the destination first, by name: a bundle
    /// image its related images, a mirrored catalog its bundle images. At
    /// a registry an image whose need failed is not pushed
    /// (`crate::workflow::needs`).
    pub needs: BTreeMap<String, BTreeSet<String>>,
    /// The bundles each operator catalog's filter selects (what a plan
    /// compares with the last run's, `operators::selection`).
    pub selected_bundles: Vec<crate::workflow::operators::selection::SelectedBundle>,
    /// What collectors want the user to know (filter warnings, missing
    /// dependencies); nothing stops for them.
    pub warnings: Vec<String>,
    /// Files the collectors read (update graph answers, payload files), by
    /// path under `working-dir/`: what a delivery carries so that
    /// disk-to-mirror collects the same images offline.
    pub inputs: BTreeMap<String, Vec<u8>>,
    /// The release payloads' verified signatures, by the payload image's
    /// name (empty with `--ignore-release-signature`): what the signature
    /// ConfigMap lists.
    pub release_signatures: BTreeMap<String, crate::release_signature::ReleaseSignature>,
    /// What the UpdateService names when the graph image is in the set
    /// (`graph: true`).
    pub update_service: Option<crate::workflow::graph_image::UpdateServiceTarget>,
}

impl ImageSet {
    /// The category of the image named `name` (images a collector added;
    /// signatures belong to their image's category).
    pub fn category_of(&self, name: &str) -> Option<Category> {
        self.images
            .iter()
            .find(|image| image.name == name)
            .map(|image| image.category)
    }

    /// How many images of `category` the set holds.
    pub fn count(&self, category: Category) -> usize {
        self.images
            .iter()
            .filter(|image| image.category == category)
            .count()
    }
}

/// What every collector is told about the run.
#[derive(Clone, Debug, Default)]
pub struct CollectContext {
    /// Repository prefix at the destination (empty for mirror-to-disk).
    pub prefix: String,
    /// `--max-nested-paths` (0: keep destination paths as they are).
    pub max_nested_paths: usize,
    /// Where release content comes from (update service, registries, the
    /// workspace's saved answers); `None`: the workflow cannot collect
    /// releases, and a configuration with `platform` is refused.
    pub releases: Option<crate::workflow::releases::ReleaseSources>,
    /// How registries are reached by collectors that read content first
    /// (operator catalogs); `None` where the sources are not reachable.
    pub registry: Option<RegistryAccessOptions>,
    /// The cache built images' new blobs are stored in.
    pub cache: Option<BlobStore>,
    /// Disk-to-mirror: operator catalogs are collected again from the
    /// deliveries once they are verified (`operators::collect_delivered`),
    /// not at the collect stage.
    pub operators_from_deliveries: bool,
    /// Mirror-to-disk: operator catalogs are delivered as they are (the
    /// original image), for disk-to-mirror filters them again.
    pub deliver_original_catalogs: bool,
    /// A plan: built images' new blobs are described, not stored in
    /// `cache` (a plan leaves the cache as it is).
    pub plan_only: bool,
    /// The blobs collectors read out of images (catalog and payload
    /// layers, configs) are put into `cache`, so that the copy stage reads
    /// none of them from the source again (mirror-to-disk fetches none,
    /// mirror-to-mirror uploads them from the cache). Every run reads them
    /// from `cache` when it holds them; a plan never adds to it.
    pub cache_read_blobs: bool,
    /// Where the blobs collectors read that `cache` holds are noted (they
    /// end in [`ImageSet::cached_reads`]).
    pub cached_reads: CachedReads,
}

impl CollectContext {
    /// A registry access for collectors that read files out of images,
    /// its blobs read from the cache first (and kept there by
    /// mirror-to-disk).
    pub(crate) fn registry_access(
        &self,
        options: &RegistryAccessOptions,
    ) -> std::result::Result<crate::catalog_image::RegistryAccess, String> {
        Ok(
            crate::catalog_image::RegistryAccess::new(options)?.with_cache(
                self.cache.clone(),
                self.cache_read_blobs && !self.plan_only,
                self.cached_reads.clone(),
            ),
        )
    }
}

/// One content kind's part of the collect stage.
pub trait Collector {
    /// The category of the images this collector adds.
    fn category(&self) -> Category;

    /// Adds the images `configuration` asks for to `into`.
    fn collect(
        &self,
        configuration: &ImageSetConfiguration,
        context: &CollectContext,
        into: &mut ImageSet,
    ) -> Result<()>;
}

/// `mirror.additionalImages`, less what `mirror.blockedImages` matches.
pub struct AdditionalImages;

impl Collector for AdditionalImages {
    fn category(&self) -> Category {
        Category::Additional
    }

    fn collect(
        &self,
        configuration: &ImageSetConfiguration,
        context: &CollectContext,
        into: &mut ImageSet,
    ) -> Result<()> {
        AdditionalImages::collect_from(&configuration.mirror, context, into);
        Ok(())
    }
}

impl AdditionalImages {
    /// The additional images of `mirror` (the part of a configuration this
    /// collector reads).
    pub fn collect_from(mirror: &Mirror, context: &CollectContext, into: &mut ImageSet) {
        let blocked = blocked_patterns(mirror);
        for image in &mirror.additional_images {
            // `oci://` sources are refused when the configuration is
            // loaded (`Loaded::refusals`), so none reaches this point.
            let ImageSource::Registry(origin) = &image.name else {
                continue;
            };
            let name = origin.to_string();
            let destination = additional_image_destination(
                origin,
                &context.prefix,
                image.target_repo.as_deref(),
                image.target_tag.as_deref(),
                context.max_nested_paths,
            );
            let destination_text = format!("{}:{}", destination.repository, destination.tag);
            if blocked
                .iter()
                .any(|pattern| pattern.is_match(&name) || pattern.is_match(&destination_text))
            {
                into.blocked.push(name);
                continue;
            }
            into.images.push(CollectedImage {
                name,
                origin: origin.clone(),
                destination_repository: destination.repository,
                destination_tag: destination.tag,
                category: Category::Additional,
            });
        }
    }
}

/// The patterns of `mirror.blockedImages` (checked when the
/// configuration was loaded).
pub(crate) fn blocked_patterns(mirror: &Mirror) -> Vec<Regex> {
    mirror
        .blocked_images
        .iter()
        .filter_map(|blocked| Regex::new(&blocked.name).ok())
        .collect()
}

/// Every collector ferry has, in the order their images are listed.
pub fn collectors() -> Vec<Box<dyn Collector>> {
    vec![
        Box::new(crate::workflow::releases::Releases),
        Box::new(AdditionalImages),
        Box::new(Operators),
    ]
}

/// The collect stage: every collector over `configuration`.
pub fn collect(
    configuration: &ImageSetConfiguration,
    context: &CollectContext,
) -> Result<ImageSet> {
    let mut set = ImageSet::default();
    for collector in collectors() {
        collector.collect(configuration, context, &mut set)?;
    }
    set.cached_reads = context.cached_reads.digests();
    if !set.cached_reads.is_empty() && set.cache.is_none() {
        set.cache = context.cache.clone();
    }
    Ok(set)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn configuration(text: &str) -> ImageSetConfiguration {
        ferry_schemas::load_image_set_configuration(text)
            .map(|loaded| loaded.config)
            .unwrap_or_else(|problems| panic!("{problems:?}"))
    }

    #[test]
    fn additional_images_are_collected_with_their_category_and_destination() {
        let configuration = configuration(
            "kind: ImageSetConfiguration\napiVersion: mirror.openshift.io/v2alpha1\nmirror:\n  additionalImages:\n  - name: registry.example.com/team/app:1.0\n  - name: quay.io/other/tool:2\n    targetRepo: tools/tool\n  blockedImages:\n  - name: quay.io/other/.*\n",
        );
        let context = CollectContext {
            prefix: "mirror".to_owned(),
            ..CollectContext::default()
        };
        let set = collect(&configuration, &context).unwrap();
        assert_eq!(set.images.len(), 1);
        let image = &set.images[0];
        assert_eq!(image.name, "registry.example.com/team/app:1.0");
        assert_eq!(image.destination_repository, "mirror/team/app");
        assert_eq!(image.destination_tag, "1.0");
        assert_eq!(image.category, Category::Additional);
        assert_eq!(set.blocked, ["quay.io/other/tool:2"]);
        assert_eq!(
            set.category_of("registry.example.com/team/app:1.0"),
            Some(Category::Additional)
        );
        assert_eq!(set.count(Category::Additional), 1);
        assert_eq!(set.count(Category::Release), 0);
    }
}
