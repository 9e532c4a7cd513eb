//! A catalog image rebuilt around a filtered catalog, or copied as it is
//! from a place the planner cannot read (an OCI layout).
//!
//! The rebuilt image keeps every original layer and adds two: one with
//! whiteouts for the old configs folder and for the base image's opm cache
//! (`/tmp/cache`), and one with the filtered catalog as
//! `<configs folder>/catalog.json`. Its config keeps the labels and the
//! entrypoint, gets the two new layers' diff IDs, and its `Cmd` becomes
//! `serve <configs folder>` without a cache folder (notes §6.4). Every
//! platform of an index is rebuilt. The new layers are plain tar with
//! fixed headers, so the same catalog and filter give the same digest.

use std::io::Read;

use ferry_planner::{Category, Source};
use ferry_registry::Manifest;
use ferry_schemas::{Digest, DigestAlgorithm};
use ferry_store::{BlobStore, digest_of};
use oci_spec::image::{Descriptor, ImageManifest};
use serde_json::{Map, Value};

use crate::layer_files::{CATALOG_CONFIGS_LABEL, ImageBlobs};
use crate::oci_manifest::{ImageConfig, ManifestContent, descriptor_digest};
use crate::workflow::built::{BuiltBlob, BuiltImage, store_blob};

/// The media type of the layers ferry adds (uncompressed, so their bytes
/// do not depend on a compressor).
const LAYER_MEDIA_TYPE: &str = "application/vnd.oci.image.layer.v1.tar";
const CONFIG_MEDIA_TYPE: &str = "application/vnd.oci.image.config.v1+json";

/// Where a catalog image's original layers are read.
pub(super) enum Base {
    /// The registry repository the catalog was pinned in.
    Registry(Source),
    /// Copied into the cache (from an OCI layout on disk).
    Copied,
    /// In the cache already (a delivered catalog, imported).
    Cache,
}

/// A catalog image rebuilt around a filtered catalog.
pub(super) struct Rebuild<'a> {
    pub image: &'a dyn ImageBlobs,
    pub base: &'a Base,
    pub cache: &'a BlobStore,
    /// Whether new blobs are stored in `cache` (a plan only describes
    /// them, and leaves the cache as it is).
    pub store: bool,
    pub catalog_json: Vec<u8>,
    pub name: &'a str,
}

impl Rebuild<'_> {
    /// Rebuilds the image the top document names. An OCI layout's
    /// `index.json` naming one manifest stands for that manifest.
    pub fn top(&self, layout: bool) -> std::result::Result<BuiltImage, String> {
        let (_, document) = self.top_document(layout)?;
        self.rebuild(&document)
    }

    /// The image the top document names, as it is: its manifests' exact
    /// bytes, its blobs where `base` says (copied into the cache from an
    /// OCI layout).
    pub fn as_it_is(&self, layout: bool) -> std::result::Result<BuiltImage, String> {
        let (bytes, document) = self.top_document(layout)?;
        self.copy(bytes, &document, None)
    }

    /// The top document's bytes and content. An OCI layout's `index.json`
    /// naming one manifest stands for that manifest.
    fn top_document(
        &self,
        layout: bool,
    ) -> std::result::Result<(Vec<u8>, ManifestContent), String> {
        let mut bytes = self.image.top().map_err(|cause| cause.to_string())?;
        let mut document =
            ManifestContent::parse(&bytes, "").map_err(|why| format!("the top document {why}"))?;
        if layout
            && let ManifestContent::Index(index) = &document
            && let [only] = index.manifests().as_slice()
        {
            let digest = descriptor_digest(only)?;
            bytes = self.manifest(&digest)?;
            document = parse_manifest(&bytes, &digest, only)?;
        }
        Ok((bytes, document))
    }

    fn copy(
        &self,
        bytes: Vec<u8>,
        document: &ManifestContent,
        media_type: Option<String>,
    ) -> std::result::Result<BuiltImage, String> {
        let (own_media_type, by_kind) = match document {
            ManifestContent::Index(index) => (
                index.media_type().as_ref(),
                "application/vnd.oci.image.index.v1+json",
            ),
            ManifestContent::Image(manifest) => (
                manifest.media_type().as_ref(),
                "application/vnd.oci.image.manifest.v1+json",
            ),
        };
        let media_type = own_media_type
            .map(ToString::to_string)
            .or(media_type)
            .unwrap_or_else(|| by_kind.to_owned());
        let mut image = BuiltImage {
            name: self.name.to_owned(),
            destination_repository: String::new(),
            destination_tag: String::new(),
            category: Category::Operator,
            manifest: Manifest {
                media_type,
                digest: digest_of(DigestAlgorithm::Sha256, &bytes),
                bytes: bytes.into(),
            },
            config: None,
            layers: Vec::new(),
            platforms: Vec::new(),
        };
        let manifest = match document {
            ManifestContent::Index(index) => {
                for descriptor in index.manifests() {
                    let digest = descriptor_digest(descriptor)?;
                    let child = self.manifest(&digest)?;
                    let document = parse_manifest(&child, &digest, descriptor)?;
                    image.platforms.push(self.copy(
                        child,
                        &document,
                        Some(descriptor.media_type().to_string()),
                    )?);
                }
                return Ok(image);
            }
            ManifestContent::Image(manifest) => manifest,
        };
        image.config = Some(self.original_blob(manifest.config())?);
        for layer in manifest.layers() {
            image.layers.push(self.original_blob(layer)?);
        }
        Ok(image)
    }

    /// A blob of the original image, read where `base` says.
    fn original_blob(&self, descriptor: &Descriptor) -> std::result::Result<BuiltBlob, String> {
        let digest = descriptor_digest(descriptor)?;
        let size = descriptor.size();
        let media_type = descriptor.media_type().to_string();
        let source = match self.base {
            Base::Registry(source) => source.clone(),
            Base::Cache => Source::Cache,
            Base::Copied => {
                if self.store {
                    let reader = self
                        .image
                        .blob(&digest)
                        .map_err(|cause| cause.to_string())?;
                    self.cache
                        .write(&digest, Some(size), reader)
                        .map_err(|cause| format!("blob {digest}: {cause}"))?;
                }
                Source::Cache
            }
        };
        Ok(BuiltBlob {
            digest,
            size,
            media_type,
            source,
        })
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

    fn rebuild(&self, document: &ManifestContent) -> std::result::Result<BuiltImage, String> {
        let index = match document {
            ManifestContent::Image(manifest) => return self.rebuild_image(manifest),
            ManifestContent::Index(index) => index,
        };
        let mut platforms = Vec::new();
        for descriptor in index.manifests() {
            // Attestations and other non-images of an index are left out.
            let platform = descriptor.platform().clone();
            if platform
                .as_ref()
                .is_some_and(|platform| platform.os().to_string() == "unknown")
            {
                continue;
            }
            let digest = descriptor_digest(descriptor)?;
            let child = parse_manifest(&self.manifest(&digest)?, &digest, descriptor)?;
            platforms.push((self.rebuild(&child)?, platform));
        }
        if platforms.is_empty() {
            return Err("its index lists no image".to_owned());
        }
        BuiltImage::index(self.name, "", "", Category::Operator, platforms)
            .map_err(|cause| cause.to_string())
    }

    fn rebuild_image(&self, manifest: &ImageManifest) -> std::result::Result<BuiltImage, String> {
        let config_digest = descriptor_digest(manifest.config())?;
        let config = ImageConfig::parse(&self.blob(&config_digest)?)
            .map_err(|why| format!("its config {config_digest} {why}"))?;
        let folder = config
            .label(CATALOG_CONFIGS_LABEL)
            .ok_or_else(|| format!("its image config has no label {CATALOG_CONFIGS_LABEL}"))?
            .trim_matches('/')
            .to_owned();
        if folder.is_empty() {
            return Err(format!(
                "the label {CATALOG_CONFIGS_LABEL} names the root folder"
            ));
        }
        // The new config is the original's fields as written, edited
        // (`ImageConfig::document`): the same catalog and filter give the
        // same digest, and nothing of a Docker config is dropped.
        let mut config = config.document;
        let whiteouts = whiteout_layer(&folder);
        let configs = configs_layer(&folder, &self.catalog_json);
        let store = |bytes: &[u8], media_type: &str| {
            if self.store {
                store_blob(self.cache, bytes, media_type).map_err(|cause| cause.to_string())
            } else {
                Ok(BuiltBlob {
                    digest: digest_of(DigestAlgorithm::Sha256, bytes),
                    size: bytes.len() as u64,
                    media_type: media_type.to_owned(),
                    source: Source::Cache,
                })
            }
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
        for layer in manifest.layers() {
            layers.push(self.original_blob(layer)?);
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
    config: &mut Map<String, Value>,
    folder: &str,
    whiteouts: &Digest,
    configs: &Digest,
) -> std::result::Result<(), String> {
    let diff_ids = config
        .get_mut("rootfs")
        .and_then(|rootfs| rootfs.get_mut("diff_ids"))
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

/// A manifest or index `descriptor` names, read as the kind its media type
/// says; the error names the document.
fn parse_manifest(
    bytes: &[u8],
    digest: &Digest,
    descriptor: &Descriptor,
) -> std::result::Result<ManifestContent, String> {
    ManifestContent::parse(bytes, descriptor.media_type().as_ref())
        .map_err(|why| format!("the manifest {digest} {why}"))
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
        adjust_config(config.as_object_mut().unwrap(), "configs", &first, &second).unwrap();
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
}
