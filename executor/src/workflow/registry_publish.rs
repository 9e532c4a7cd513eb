//! What a run to a registry leaves behind, built from the planned run, the
//! collected image set and the images that failed (the command line only
//! says what was written):
//!
//! - the cluster resources of what reached the destination: IDMS/ITMS of
//!   the images, the CatalogSource and ClusterCatalog of each catalog, the
//!   signature ConfigMap of each payload and the UpdateService, each left
//!   out when its image failed to resolve or to mirror ([`publish_run`]);
//! - a dry run's `mapping.txt` and the cluster resources the run would
//!   produce ([`dry_run`]);
//! - the records after a run: the image sets sharing the cache and what
//!   each has at the registry (what a delete by another must not take,
//!   [`record_shared`]), and the operator bundles whose catalogs reached
//!   the destination (what the next plan compares with, [`record_bundles`]).
//!
//! The files themselves are written by [`publish`](crate::workflow::publish).

use std::collections::{BTreeMap, BTreeSet};
use std::path::{Path, PathBuf};

use ferry_planner::BundleChange;

use crate::cluster_resources::{MirroredImage, origin_of};
use crate::release_signature::ReleaseSignature;
use crate::workflow::collect::ImageSet;
use crate::workflow::error::{Result, WorkflowError};
use crate::workflow::graph_image::UpdateServiceTarget;
use crate::workflow::operators::{CatalogImage, OperatorImageUse, selection};
use crate::workflow::publish::{self, MappedImage, Published};
use crate::workflow::registry_source::RegistryOrigin;
use crate::workflow::to_registry::{Executed, Planned};
use crate::workflow::workspace::Workspace;

/// What of the collected image set publishing and the records after a run
/// need (the images themselves are in the planned run's resolution).
#[derive(Debug, Default)]
pub struct PublishedContent {
    /// Mirrored operator catalogs (their CatalogSource and ClusterCatalog).
    pub catalogs: Vec<CatalogImage>,
    /// Operator images by name: the bundles and packages needing them.
    pub operator_images: BTreeMap<String, OperatorImageUse>,
    /// The release payloads' verified signatures, by payload image name
    /// (the signature ConfigMap).
    pub release_signatures: BTreeMap<String, ReleaseSignature>,
    /// What the UpdateService names (`graph: true`).
    pub update_service: Option<UpdateServiceTarget>,
    /// The bundles the operator catalogs' filters select.
    pub selected_bundles: Vec<selection::SelectedBundle>,
}

impl PublishedContent {
    /// The parts of `image_set` publishing needs, taken once the image
    /// set is resolved (disk-to-mirror collects its catalogs while
    /// resolving).
    pub fn of(image_set: ImageSet) -> PublishedContent {
        PublishedContent {
            catalogs: image_set.catalogs,
            operator_images: image_set.operator_images,
            release_signatures: image_set.release_signatures,
            update_service: image_set.update_service,
            selected_bundles: image_set.selected_bundles,
        }
    }

    /// How the selected bundles differ from what the last run to the
    /// planned destination recorded (nothing without operator catalogs).
    pub fn bundle_changes(&self, planned: &Planned) -> Result<Vec<BundleChange>> {
        if self.selected_bundles.is_empty() {
            return Ok(Vec::new());
        }
        let recorded = selection::recorded(
            &Workspace::in_folder(&planned.workspace),
            &planned.destination.display(),
        )?;
        Ok(selection::changes(&recorded, &self.selected_bundles))
    }
}

/// Publishes the cluster resources for every image of `planned` now at the
/// destination and the signature ConfigMap of every payload now there,
/// removing ferry's files that no longer apply. Left out: the images in
/// `failed` and those that failed to resolve. `repository_scope`: mirror
/// sets name repositories, not namespaces (`--max-nested-paths`).
pub fn publish_run(
    planned: &Planned,
    content: &PublishedContent,
    failed: &BTreeSet<&str>,
    repository_scope: bool,
) -> Result<Published> {
    // Images that failed to resolve are not at the destination either.
    let failed: BTreeSet<&str> = failed
        .iter()
        .copied()
        .chain(
            planned
                .resolution
                .failures
                .iter()
                .map(|failure| failure.name.as_str()),
        )
        .collect();
    let registry = &planned.destination.registry;
    let catalog_names: BTreeSet<&str> = content
        .catalogs
        .iter()
        .map(|catalog| catalog.name.as_str())
        .collect();
    // Catalogs get a CatalogSource and a ClusterCatalog, not mirror sets.
    let catalogs: Vec<publish::MirroredCatalog> = content
        .catalogs
        .iter()
        .filter(|catalog| !failed.contains(catalog.name.as_str()))
        .map(|catalog| publish::MirroredCatalog {
            registry: registry.clone(),
            repository: catalog.destination_repository.clone(),
            tag: catalog.destination_tag.clone(),
            template: catalog.source_template.clone(),
        })
        .collect();
    let images: Vec<MirroredImage> = planned
        .resolution
        .images
        .iter()
        .filter(|image| !failed.contains(image.name.as_str()))
        .filter(|image| !catalog_names.contains(image.name.as_str()))
        .filter_map(|image| {
            Some(MirroredImage {
                origin: origin_of(&image.name, image.category)?,
                destination: format!("{registry}/{}", image.destination_repository),
                category: image.category,
            })
        })
        .collect();
    let workspace = Workspace::in_folder(&planned.workspace);
    let created_at = publish::creation_time();
    let mut published =
        publish::cluster_resources(&workspace, &images, &catalogs, repository_scope, created_at)?;
    let signatures: Vec<ReleaseSignature> = content
        .release_signatures
        .iter()
        .filter(|(payload, _)| !failed.contains(payload.as_str()))
        .map(|(_, signature)| signature.clone())
        .collect();
    let signature_files = publish::signature_config_map_files(&workspace, &signatures, created_at)?;
    published.written.extend(signature_files.written);
    published.removed.extend(signature_files.removed);
    let update_service = content
        .update_service
        .as_ref()
        .filter(|target| !failed.contains(target.graph_image_name.as_str()))
        .map(|target| publish::MirroredUpdateService {
            releases: format!("{registry}/{}", target.releases_repository),
            graph_data_image: format!(
                "{registry}/{}:{}",
                target.graph_image_repository, target.graph_image_tag
            ),
        });
    let update_service_files =
        publish::update_service_file(&workspace, update_service.as_ref(), created_at)?;
    published.written.extend(update_service_files.written);
    published.removed.extend(update_service_files.removed);
    Ok(published)
}

/// What a dry run to a registry wrote.
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct DryRun {
    /// The dry-run files (`mapping.txt`).
    pub files: Vec<PathBuf>,
    /// The cluster resources the run would produce.
    pub published: Published,
}

/// A dry run to a registry, as oc-mirror's: `mapping.txt` (each image's
/// source, `file://DIR:REF` when `origin` is the deliveries, and its
/// destination; with `manifest_lists`, the images of manifest lists too)
/// and the cluster resources the run would produce; nothing is copied.
pub fn dry_run(
    planned: &Planned,
    content: &PublishedContent,
    origin: &RegistryOrigin,
    manifest_lists: bool,
    repository_scope: bool,
) -> Result<DryRun> {
    let registry = &planned.destination.registry;
    let from_folder = match origin {
        RegistryOrigin::Deliveries(folder) => {
            Some(std::path::absolute(folder).unwrap_or_else(|_| folder.clone()))
        }
        RegistryOrigin::Registries(_) => None,
    };
    let images: Vec<MappedImage> = planned
        .resolution
        .images
        .iter()
        .map(|image| {
            let destination = planned
                .graph
                .images()
                .iter()
                .find(|nodes| nodes.name() == image.name)
                .map(|nodes| nodes.destination().to_owned())
                .unwrap_or_default();
            let (source, source_repository) = match &from_folder {
                Some(folder) => (publish::delivery_name(folder, &image.name), None),
                None => {
                    let origin = publish::origin_repository(image);
                    (format!("{origin}@{}", image.top), Some(origin))
                }
            };
            MappedImage {
                source,
                source_repository,
                destination: format!("docker://{destination}"),
                destination_repository: Some(format!(
                    "docker://{registry}/{}",
                    image.destination_repository
                )),
                children: publish::top_children(image),
            }
        })
        .collect();
    let mapping = publish::mapping(&images, manifest_lists);
    let workspace = Workspace::in_folder(&planned.workspace);
    let files = publish::dry_run_files(&workspace, &[("mapping.txt", &mapping)])?;
    let published = publish_run(planned, content, &BTreeSet::new(), repository_scope)?;
    Ok(DryRun { files, published })
}

/// After a run: records this workspace among the image sets sharing the
/// cache `cache`, and the tags it now has at the registry (the images
/// that failed left out): what a delete by another image set must not
/// take from it.
pub fn record_shared(planned: &mut Planned, executed: &Executed, cache: &Path) -> Result<()> {
    ferry_store::image_sets::record_workspace(cache, Path::new(&planned.workspace))
        .map_err(WorkflowError::environment)?;
    let failed_images: BTreeSet<&str> = executed
        .report
        .failed_images()
        .map(|image| image.name.as_str())
        .collect();
    crate::workflow::delete::shared::record_present_tags(
        &mut planned.state,
        &planned.destination,
        &planned.graph,
        &failed_images,
        crate::workflow::to_registry::unix_now(),
    )
}

/// After a run: [`publish_run`] for what reached the destination.
pub fn publish_after_run(
    planned: &Planned,
    content: &PublishedContent,
    executed: &Executed,
    repository_scope: bool,
) -> Result<Published> {
    let failed: BTreeSet<&str> = executed
        .report
        .failed_images()
        .map(|image| image.name.as_str())
        .collect();
    publish_run(planned, content, &failed, repository_scope)
}

/// After a run with operator catalogs: records the selected bundles whose
/// catalog reached the destination, what the next plan compares its
/// bundles with (a catalog that failed keeps what was recorded before).
pub fn record_bundles(
    planned: &Planned,
    content: &PublishedContent,
    executed: &Executed,
) -> Result<()> {
    if content.selected_bundles.is_empty() {
        return Ok(());
    }
    let failed_catalogs: BTreeSet<&str> = executed
        .failed
        .iter()
        .map(|image| image.name.as_str())
        .collect();
    selection::record(
        &Workspace::in_folder(&planned.workspace),
        &planned.destination.display(),
        &content.selected_bundles,
        &failed_catalogs,
    )
}
