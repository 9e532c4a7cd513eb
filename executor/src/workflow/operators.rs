//! The operator collector (`mirror.operators`): for each catalog, the
//! catalog pinned to a digest, its file-based catalog read out of the
//! image's labelled configs folder, oc-mirror's bundle filter applied
//! (`ferry_content::catalog`), the kept bundles' images and related images
//! collected (category operator, destinations as additional images', with
//! `blockedImages` honoured), and the catalog rebuilt as a built image.
//!
//! The rebuilt catalog keeps every original layer and adds two: one with
//! whiteouts for the old configs folder and for the base image's opm cache
//! (`/tmp/cache`), and one with the filtered catalog as
//! `<configs folder>/catalog.json`. Its config keeps the labels and the
//! entrypoint, gets the two new layers' diff IDs, and its `Cmd` becomes
//! `serve <configs folder>` without a cache folder, so opm builds its
//! cache from the filtered catalog when it starts instead of serving (or
//! crash-looping on) a cache that disagrees with it (notes §6.4). Every
//! platform of an index is rebuilt. The new layers are plain tar with
//! fixed headers, so the same catalog and filter give the same digest.
//!
//! A catalog with `full: true` and no packages is mirrored as it is.

use std::collections::{BTreeMap, BTreeSet};
use std::io::Read;

use ferry_content::catalog::{self, Catalog, CatalogFile, Filtered};
use ferry_planner::{Category, Source};
use ferry_schemas::config::{Mirror, Operator};
use ferry_schemas::{Digest, DigestAlgorithm, ImageSetConfiguration, ImageSource};
use ferry_store::{BlobStore, digest_of};
use regex::Regex;
use serde_json::Value;

use crate::catalog_image::{RegistryAccess, RegistryAccessOptions};
use crate::layer_files::{self, CATALOG_CONFIGS_LABEL, ImageBlobs, OciLayout};
use crate::naming::{DestinationName, additional_image_destination, flatten};
use crate::workflow::built::{BuiltBlob, BuiltImage, store_blob};
use crate::workflow::collect::{
    CollectContext, CollectedImage, Collector, ImageSet, blocked_patterns,
};
use crate::workflow::error::{Result, WorkflowError};

/// The media type of the layers ferry adds (uncompressed, so their bytes
/// do not depend on a compressor).
const LAYER_MEDIA_TYPE: &str = "application/vnd.oci.image.layer.v1.tar";
const CONFIG_MEDIA_TYPE: &str = "application/vnd.oci.image.config.v1+json";

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
            blocked: &blocked,
        };
        match &operator.catalog {
            ImageSource::Registry(reference) => {
                let access = match &mut access {
                    Some(access) => access,
                    None => access
                        .insert(RegistryAccess::new(access_options).map_err(WorkflowError::input)?),
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

/// Disk-to-mirror: the operator part of the image set collected again,
/// offline, from the catalogs the deliveries brought (each found by the
/// name the configuration gives it): their configs folder read out of the
/// delivered image (manifests from the deliveries, blobs from the cache),
/// filtered by this side's configuration, the bundles' images collected as
/// at the connected side. A rebuilt catalog is the delivered image as it
/// is (its manifests and blobs came with the delivery).
pub fn collect_delivered(
    mirror: &Mirror,
    context: &CollectContext,
    records: &[ferry_archive::ImageRecord],
    delivered: &crate::disk::DeliveredManifests,
    into: &mut ImageSet,
) -> Result<()> {
    let blocked = blocked_patterns(mirror);
    for operator in &mirror.operators {
        let collection = CatalogCollection {
            operator,
            context,
            cache: delivered.blobs(),
            blocked: &blocked,
        };
        let name = collection.name();
        let Some(record) = records.iter().rev().find(|record| record.name == name) else {
            return Err(WorkflowError::input(format!(
                "catalog {name}: no delivery carries it: run mirror-to-disk with this catalog \
                 in the configuration and bring the new delivery"
            )));
        };
        let image = DeliveredImage {
            name: &name,
            top: &record.digest,
            delivered,
        };
        let loaded = collection.load(&image).map_err(|error| {
            WorkflowError::input(format!(
                "{error} (a delivered catalog is read from the cache: `ferry plan` reads only \
                 deliveries an earlier run imported)"
            ))
        })?;
        let (loaded, filtered) = loaded;
        collection.bundle_images(&name, &loaded, &filtered, into)?;
        if filtered.unfiltered {
            collection.catalog_image(
                &name,
                &image,
                &Base::Copied,
                false,
                &loaded,
                &filtered,
                into,
            )?;
            continue;
        }
        let destination = collection.destination(Some(&record.digest));
        into.catalogs.push(CatalogImage {
            name: name.clone(),
            destination_repository: destination.repository.clone(),
            destination_tag: destination.tag.clone(),
            source_template: collection.source_template()?,
        });
        let bytes = delivered
            .bytes(&record.digest)
            .map_err(|message| WorkflowError::input(format!("catalog {name}: {message}")))?;
        into.built.push(BuiltImage {
            name: name.clone(),
            destination_repository: destination.repository,
            destination_tag: destination.tag,
            category: Category::Operator,
            manifest: ferry_registry::Manifest {
                media_type: record.media_type.clone(),
                digest: record.digest.clone(),
                bytes: bytes.into(),
            },
            config: None,
            layers: Vec::new(),
            platforms: Vec::new(),
        });
    }
    Ok(())
}

/// A catalog image a delivery brought: manifests from the deliveries,
/// blobs from the cache they were imported into.
struct DeliveredImage<'a> {
    name: &'a str,
    top: &'a Digest,
    delivered: &'a crate::disk::DeliveredManifests,
}

impl ImageBlobs for DeliveredImage<'_> {
    fn place(&self) -> String {
        format!("{} (delivered)", self.name)
    }

    fn top(&self) -> std::result::Result<Vec<u8>, layer_files::LayerFilesError> {
        self.manifest(self.top)
    }

    fn manifest(
        &self,
        digest: &Digest,
    ) -> std::result::Result<Vec<u8>, layer_files::LayerFilesError> {
        self.delivered
            .bytes(digest)
            .map_err(|message| layer_files::LayerFilesError::Layout {
                place: self.place(),
                message,
            })
    }

    fn blob(
        &self,
        digest: &Digest,
    ) -> std::result::Result<Box<dyn Read + '_>, layer_files::LayerFilesError> {
        let file = self.delivered.blobs().open_blob(digest).map_err(|cause| {
            layer_files::LayerFilesError::Layout {
                place: self.place(),
                message: format!("blob {digest}: {cause}"),
            }
        })?;
        Ok(Box::new(file))
    }
}

/// Where a rebuilt catalog's original layers are read.
enum Base {
    /// The registry repository the catalog was pinned in.
    Registry(Source),
    /// Copied into the cache (an OCI layout on disk).
    Copied,
}

/// One `mirror.operators` entry being collected.
struct CatalogCollection<'a> {
    operator: &'a Operator,
    context: &'a CollectContext,
    cache: &'a BlobStore,
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
        for warning in &filtered.warnings {
            into.warnings.push(format!("catalog {name}: {warning}"));
        }
        for missing in catalog::missing_dependencies(&loaded, &filtered) {
            into.warnings.push(format!("catalog {name}: {missing}"));
        }
        self.bundle_images(&name, &loaded, &filtered, into)?;
        self.catalog_image(&name, image, base, layout, &loaded, &filtered, into)
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

    /// The kept bundles' images and related images.
    fn bundle_images(
        &self,
        name: &str,
        loaded: &Catalog,
        filtered: &Filtered,
        into: &mut ImageSet,
    ) -> Result<()> {
        let images = catalog::bundle_images(loaded, filtered)
            .map_err(|cause| WorkflowError::input(format!("catalog {name}: {cause}")))?;
        let mut present: BTreeSet<String> =
            into.images.iter().map(|image| image.name.clone()).collect();
        for image in images {
            let image_name = image.reference.to_string();
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
        Ok(())
    }

    /// The catalog itself: as it is (`full: true`, no packages) or rebuilt.
    #[allow(clippy::too_many_arguments)]
    fn catalog_image(
        &self,
        name: &str,
        image: &dyn ImageBlobs,
        base: &Base,
        layout: bool,
        loaded: &Catalog,
        filtered: &Filtered,
        into: &mut ImageSet,
    ) -> Result<()> {
        if filtered.unfiltered {
            let ImageSource::Registry(origin) = &self.operator.catalog else {
                return Err(WorkflowError::input(format!(
                    "catalog {name}: an OCI layout catalog with `full: true` and no packages \
                     is not mirrored as it is yet; name its packages"
                )));
            };
            let destination = self.destination(None);
            into.catalogs.push(CatalogImage {
                name: name.to_owned(),
                destination_repository: destination.repository.clone(),
                destination_tag: destination.tag.clone(),
                source_template: self.source_template()?,
            });
            into.images.push(CollectedImage {
                name: name.to_owned(),
                origin: origin.clone(),
                destination_repository: destination.repository,
                destination_tag: destination.tag,
                category: Category::Operator,
            });
            return Ok(());
        }
        let rebuild = Rebuild {
            image,
            base,
            cache: self.cache,
            catalog_json: filtered.to_json(loaded),
            name,
        };
        // The destination tag is not part of any manifest, so the image is
        // built first and named after (a digest-only catalog is tagged
        // with the rebuilt digest).
        let built = rebuild
            .top(layout)
            .map_err(|message| WorkflowError::input(format!("catalog {name}: {message}")))?;
        let destination = self.destination(Some(&built.manifest.digest));
        let built = with_destination(built, &destination);
        into.catalogs.push(CatalogImage {
            name: name.to_owned(),
            destination_repository: destination.repository,
            destination_tag: destination.tag,
            source_template: self.source_template()?,
        });
        into.built.push(built);
        Ok(())
    }

    /// The catalog's destination (notes §4.5): `targetCatalog` or the
    /// origin's path (an OCI layout's last path element), `targetTag` or
    /// the origin's tag; a digest-only catalog is tagged
    /// `sha256-<rebuilt hex>` when rebuilt, an OCI layout `latest`.
    fn destination(&self, rebuilt: Option<&Digest>) -> DestinationName {
        let operator = self.operator;
        match &operator.catalog {
            ImageSource::Registry(origin) => {
                let mut name = additional_image_destination(
                    origin,
                    &self.context.prefix,
                    operator.target_catalog.as_deref(),
                    operator.target_tag.as_deref(),
                    self.context.max_nested_paths,
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
                let repository = if self.context.prefix.is_empty() {
                    path
                } else {
                    format!("{}/{path}", self.context.prefix)
                };
                DestinationName {
                    repository: flatten(&repository, self.context.max_nested_paths),
                    tag: operator
                        .target_tag
                        .clone()
                        .unwrap_or_else(|| "latest".to_owned()),
                }
            }
        }
    }
}

fn with_destination(mut image: BuiltImage, destination: &DestinationName) -> BuiltImage {
    image.destination_repository = destination.repository.clone();
    image.destination_tag = destination.tag.clone();
    image
}

/// A catalog image rebuilt around a filtered catalog.
struct Rebuild<'a> {
    image: &'a dyn ImageBlobs,
    base: &'a Base,
    cache: &'a BlobStore,
    catalog_json: Vec<u8>,
    name: &'a str,
}

impl Rebuild<'_> {
    /// Rebuilds the image the top document names. An OCI layout's
    /// `index.json` naming one manifest stands for that manifest.
    fn top(&self, layout: bool) -> std::result::Result<BuiltImage, String> {
        let mut bytes = self.image.top().map_err(|cause| cause.to_string())?;
        let mut document = json(&bytes)?;
        if layout {
            let manifests = document["manifests"]
                .as_array()
                .cloned()
                .unwrap_or_default();
            if let [only] = manifests.as_slice() {
                let digest = descriptor_digest(only)?;
                bytes = self.manifest(&digest)?;
                document = json(&bytes)?;
            }
        }
        self.rebuild(&document)
    }

    fn manifest(&self, digest: &Digest) -> std::result::Result<Vec<u8>, String> {
        let bytes = self
            .image
            .manifest(digest)
            .map_err(|cause| cause.to_string())?;
        check_digest(digest, &bytes)?;
        Ok(bytes)
    }

    fn blob(&self, digest: &Digest) -> std::result::Result<Vec<u8>, String> {
        let mut bytes = Vec::new();
        self.image
            .blob(digest)
            .map_err(|cause| cause.to_string())?
            .read_to_end(&mut bytes)
            .map_err(|cause| format!("blob {digest}: {cause}"))?;
        check_digest(digest, &bytes)?;
        Ok(bytes)
    }

    fn rebuild(&self, document: &Value) -> std::result::Result<BuiltImage, String> {
        let Some(manifests) = document.get("manifests").and_then(Value::as_array) else {
            return self.rebuild_image(document);
        };
        let mut platforms = Vec::new();
        for descriptor in manifests {
            // Attestations and other non-images of an index are left out.
            if descriptor.pointer("/platform/os").and_then(Value::as_str) == Some("unknown") {
                continue;
            }
            let digest = descriptor_digest(descriptor)?;
            let child = json(&self.manifest(&digest)?)?;
            let platform = descriptor
                .get("platform")
                .map(|platform| serde_json::from_value(platform.clone()))
                .transpose()
                .map_err(|cause| format!("platform of {digest}: {cause}"))?;
            platforms.push((self.rebuild(&child)?, platform));
        }
        if platforms.is_empty() {
            return Err("its index lists no image".to_owned());
        }
        BuiltImage::index(self.name, "", "", Category::Operator, platforms)
            .map_err(|cause| cause.to_string())
    }

    fn rebuild_image(&self, manifest: &Value) -> std::result::Result<BuiltImage, String> {
        let config_digest = descriptor_digest(&manifest["config"])?;
        let mut config = json(&self.blob(&config_digest)?)?;
        let folder = config
            .pointer(&format!(
                "/config/Labels/{}",
                CATALOG_CONFIGS_LABEL.replace('~', "~0").replace('/', "~1")
            ))
            .and_then(Value::as_str)
            .ok_or_else(|| format!("its image config has no label {CATALOG_CONFIGS_LABEL}"))?
            .trim_matches('/')
            .to_owned();
        if folder.is_empty() {
            return Err(format!(
                "the label {CATALOG_CONFIGS_LABEL} names the root folder"
            ));
        }
        let whiteouts = whiteout_layer(&folder);
        let configs = configs_layer(&folder, &self.catalog_json);
        let store = |bytes: &[u8], media_type: &str| {
            store_blob(self.cache, bytes, media_type).map_err(|cause| cause.to_string())
        };
        let whiteout_blob = store(&whiteouts, LAYER_MEDIA_TYPE)?;
        let configs_blob = store(&configs, LAYER_MEDIA_TYPE)?;
        adjust_config(
            &mut config,
            &folder,
            &whiteout_blob.digest,
            &configs_blob.digest,
        )?;
        let config_bytes = serde_json::to_vec(&config).map_err(|cause| cause.to_string())?;
        let config_blob = store(&config_bytes, CONFIG_MEDIA_TYPE)?;
        let mut layers = Vec::new();
        for layer in manifest["layers"].as_array().into_iter().flatten() {
            let digest = descriptor_digest(layer)?;
            let size = layer["size"]
                .as_u64()
                .ok_or_else(|| format!("layer {digest} has no size"))?;
            let media_type = layer["mediaType"]
                .as_str()
                .unwrap_or(LAYER_MEDIA_TYPE)
                .to_owned();
            let source = match self.base {
                Base::Registry(source) => source.clone(),
                Base::Copied => {
                    let reader = self
                        .image
                        .blob(&digest)
                        .map_err(|cause| cause.to_string())?;
                    self.cache
                        .write(&digest, Some(size), reader)
                        .map_err(|cause| format!("layer {digest}: {cause}"))?;
                    Source::Cache
                }
            };
            layers.push(BuiltBlob {
                digest,
                size,
                media_type,
                source,
            });
        }
        layers.push(whiteout_blob);
        layers.push(configs_blob);
        BuiltImage::new(self.name, "", "", Category::Operator, config_blob, layers)
            .map_err(|cause| cause.to_string())
    }
}

/// The config of a rebuilt catalog image: the new layers' diff IDs (and
/// history entries when the original keeps a history), and `Cmd` serving
/// the configs folder with no cache folder.
fn adjust_config(
    config: &mut Value,
    folder: &str,
    whiteouts: &Digest,
    configs: &Digest,
) -> std::result::Result<(), String> {
    let diff_ids = config
        .pointer_mut("/rootfs/diff_ids")
        .and_then(Value::as_array_mut)
        .ok_or("its image config has no rootfs.diff_ids")?;
    diff_ids.push(Value::String(whiteouts.to_string()));
    diff_ids.push(Value::String(configs.to_string()));
    if let Some(history) = config.get_mut("history").and_then(Value::as_array_mut) {
        for what in [
            "removed the original catalog and opm cache",
            "added the filtered catalog",
        ] {
            history.push(serde_json::json!({
                "created_by": format!("ferry: {what}"),
                "comment": "ferry",
            }));
        }
    }
    let settings = config
        .as_object_mut()
        .ok_or("its image config is not an object")?
        .entry("config")
        .or_insert_with(|| Value::Object(Default::default()));
    let settings = settings
        .as_object_mut()
        .ok_or("its image config's `config` is not an object")?;
    settings.insert(
        "Cmd".to_owned(),
        serde_json::json!(["serve", format!("/{folder}")]),
    );
    Ok(())
}

/// A tar stream with fixed headers (owner root, time 0), so the same
/// entries give the same bytes.
fn tar_of(entries: &[(String, Option<&[u8]>)]) -> Vec<u8> {
    let mut builder = tar::Builder::new(Vec::new());
    for (path, content) in entries {
        let mut header = tar::Header::new_gnu();
        header.set_uid(0);
        header.set_gid(0);
        header.set_mtime(0);
        match content {
            Some(bytes) => {
                header.set_entry_type(tar::EntryType::Regular);
                header.set_mode(0o644);
                header.set_size(bytes.len() as u64);
                // Writing into a Vec fails only on an invalid path, which
                // the paths built here never are.
                let _ = builder.append_data(&mut header, path, *bytes);
            }
            None => {
                header.set_entry_type(tar::EntryType::Directory);
                header.set_mode(0o755);
                header.set_size(0);
                let _ = builder.append_data(&mut header, path, std::io::empty());
            }
        }
    }
    builder.into_inner().unwrap_or_default()
}

/// Whiteouts for the configs folder and for opm's cache in `/tmp/cache`.
fn whiteout_layer(folder: &str) -> Vec<u8> {
    let whiteout = |path: &str| match path.rsplit_once('/') {
        Some((parent, name)) => format!("{parent}/.wh.{name}"),
        None => format!(".wh.{path}"),
    };
    tar_of(&[
        (whiteout(folder), Some(&[][..])),
        (whiteout("tmp/cache"), Some(&[][..])),
    ])
}

/// The configs folder holding the filtered catalog.
fn configs_layer(folder: &str, catalog_json: &[u8]) -> Vec<u8> {
    tar_of(&[
        (format!("{folder}/"), None),
        (format!("{folder}/catalog.json"), Some(catalog_json)),
    ])
}

fn json(bytes: &[u8]) -> std::result::Result<Value, String> {
    serde_json::from_slice(bytes).map_err(|cause| format!("invalid JSON: {cause}"))
}

fn descriptor_digest(descriptor: &Value) -> std::result::Result<Digest, String> {
    let text = descriptor["digest"].as_str().unwrap_or_default();
    text.parse()
        .map_err(|cause| format!("descriptor digest {text:?}: {cause}"))
}

fn check_digest(digest: &Digest, bytes: &[u8]) -> std::result::Result<(), String> {
    let actual = digest_of(DigestAlgorithm::Sha256, bytes);
    if &actual == digest {
        Ok(())
    } else {
        Err(format!(
            "{digest} has digest {actual} (the content is corrupted)"
        ))
    }
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
    fn new_layers_are_the_same_bytes_every_time_and_hold_the_whiteouts() {
        assert_eq!(whiteout_layer("configs"), whiteout_layer("configs"));
        let mut archive = tar::Archive::new(std::io::Cursor::new(whiteout_layer("configs")));
        let paths: Vec<String> = archive
            .entries()
            .unwrap()
            .map(|entry| entry.unwrap().path().unwrap().display().to_string())
            .collect();
        assert_eq!(paths, [".wh.configs", "tmp/.wh.cache"]);
        let layer = configs_layer("a/configs", b"{}\n");
        let mut archive = tar::Archive::new(std::io::Cursor::new(layer));
        let mut found = Vec::new();
        for entry in archive.entries().unwrap() {
            let mut entry = entry.unwrap();
            let mut text = String::new();
            entry.read_to_string(&mut text).unwrap();
            assert_eq!(entry.header().mtime().unwrap(), 0);
            found.push((entry.path().unwrap().display().to_string(), text));
        }
        assert_eq!(
            found,
            [
                ("a/configs/".to_owned(), String::new()),
                ("a/configs/catalog.json".to_owned(), "{}\n".to_owned())
            ]
        );
    }

    #[test]
    fn the_config_serves_the_folder_without_a_cache_and_lists_the_new_layers() {
        let mut config = serde_json::json!({
            "architecture": "amd64",
            "config": {
                "Entrypoint": ["/bin/opm"],
                "Cmd": ["serve", "/configs", "--cache-dir=/tmp/cache"],
                "Labels": {CATALOG_CONFIGS_LABEL: "/configs"}
            },
            "rootfs": {"type": "layers", "diff_ids": ["sha256:aa"]},
            "history": [{"created_by": "base"}]
        });
        let first = digest_of(DigestAlgorithm::Sha256, b"1");
        let second = digest_of(DigestAlgorithm::Sha256, b"2");
        adjust_config(&mut config, "configs", &first, &second).unwrap();
        assert_eq!(
            config["config"]["Cmd"],
            serde_json::json!(["serve", "/configs"])
        );
        assert_eq!(
            config["config"]["Entrypoint"],
            serde_json::json!(["/bin/opm"])
        );
        assert_eq!(
            config["config"]["Labels"][CATALOG_CONFIGS_LABEL],
            "/configs"
        );
        assert_eq!(
            config["rootfs"]["diff_ids"],
            serde_json::json!(["sha256:aa", first.to_string(), second.to_string()])
        );
        assert_eq!(config["history"].as_array().unwrap().len(), 3);
    }

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
}
