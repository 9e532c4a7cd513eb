//! Reading one folder's files out of an image without unpacking anything
//! else: the top document (an OCI layout's `index.json`, or a registry
//! image's pinned manifest), through nested indexes to one image, the
//! manifest, the config, then the layers in order, each streamed through
//! gzip (when compressed) and tar, keeping only the regular files under the
//! folder. Later layers win; whiteouts (`.wh.NAME` and the opaque
//! `.wh..wh..opq`) remove what earlier layers put there. Every manifest and
//! blob read is checked against its digest.
//!
//! Where the bytes come from is behind [`ImageBlobs`]: [`OciLayout`] here,
//! a registry in the `list` command.
//!
//! Used for operator catalogs (the folder is the one the config label
//! `operators.operatorframework.io.index.configs.v1` names) and release
//! payloads (the folder `release-manifests`).

use std::collections::BTreeMap;
use std::fs::File;
use std::io::{BufReader, Read};
use std::path::{Path, PathBuf};

use ferry_schemas::{Digest, DigestAlgorithm};
use oci_spec::image::{Descriptor, ImageManifest};

use crate::oci_manifest::{ImageConfig, ManifestContent, amd64_or_first, descriptor_digest};

/// The config label naming an operator catalog's configs folder.
pub const CATALOG_CONFIGS_LABEL: &str = "operators.operatorframework.io.index.configs.v1";

/// Why the folder's files could not be read. `place` is the layout's path,
/// a blob's path, or an image reference.
#[derive(Debug, thiserror::Error)]
pub enum LayerFilesError {
    #[error("{place}: {source}")]
    Io {
        place: String,
        #[source]
        source: std::io::Error,
    },
    #[error("{place}: {message}")]
    Layout { place: String, message: String },
    #[error("{place}: blob {digest} has digest {actual} (the content is corrupted)")]
    DigestMismatch {
        place: String,
        digest: String,
        actual: String,
    },
}

/// Where an image's documents and blobs come from.
pub trait ImageBlobs {
    /// What errors name: the layout's path or the image reference.
    fn place(&self) -> String;
    /// The first document: an index, or an image manifest.
    fn top(&self) -> Result<Vec<u8>, LayerFilesError>;
    /// The bytes of the index or manifest `digest`; checked by the caller.
    fn manifest(&self, digest: &Digest) -> Result<Vec<u8>, LayerFilesError>;
    /// A reader over the blob `digest`; checked by the caller.
    fn blob(&self, digest: &Digest) -> Result<Box<dyn Read + '_>, LayerFilesError>;
}

/// An OCI image layout on disk.
#[derive(Clone, Debug)]
pub struct OciLayout {
    pub path: PathBuf,
}

impl OciLayout {
    fn blob_path(&self, digest: &Digest) -> PathBuf {
        self.path
            .join("blobs")
            .join(digest.algorithm().name())
            .join(digest.hex())
    }
}

impl ImageBlobs for OciLayout {
    fn place(&self) -> String {
        self.path.display().to_string()
    }

    fn top(&self) -> Result<Vec<u8>, LayerFilesError> {
        let path = self.path.join("index.json");
        std::fs::read(&path).map_err(|source| LayerFilesError::Io {
            place: path.display().to_string(),
            source,
        })
    }

    fn manifest(&self, digest: &Digest) -> Result<Vec<u8>, LayerFilesError> {
        let path = self.blob_path(digest);
        std::fs::read(&path).map_err(|source| LayerFilesError::Io {
            place: path.display().to_string(),
            source,
        })
    }

    fn blob(&self, digest: &Digest) -> Result<Box<dyn Read + '_>, LayerFilesError> {
        let path = self.blob_path(digest);
        let file = File::open(&path).map_err(|source| LayerFilesError::Io {
            place: path.display().to_string(),
            source,
        })?;
        Ok(Box::new(file))
    }
}

/// The files of the image's configs folder, by path relative to it.
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct FolderFiles {
    /// The folder as the label names it (`/configs`).
    pub folder: String,
    pub files: BTreeMap<String, Vec<u8>>,
}

/// The files of the folder an image's config label `label` names, from the
/// OCI layout at `layout`.
pub fn read_labelled_folder(layout: &Path, label: &str) -> Result<FolderFiles, LayerFilesError> {
    read_labelled_folder_from(
        &OciLayout {
            path: layout.to_path_buf(),
        },
        label,
    )
}

/// The files of the folder an image's config label `label` names. For an
/// index, the `linux/amd64` image is read (else the first): a
/// multi-architecture catalog holds the same content for each.
pub fn read_labelled_folder_from(
    source: &dyn ImageBlobs,
    label: &str,
) -> Result<FolderFiles, LayerFilesError> {
    read_folder_of(source, FolderName::Label(label))
}

/// The files under `folder` (e.g. `release-manifests`) in an image's
/// layers, found as [`read_labelled_folder_from`] finds the image.
pub fn read_folder_from(
    source: &dyn ImageBlobs,
    folder: &str,
) -> Result<FolderFiles, LayerFilesError> {
    read_folder_of(source, FolderName::Path(folder))
}

/// How the folder to read is named.
enum FolderName<'a> {
    /// By a label of the image config.
    Label(&'a str),
    /// By its path.
    Path(&'a str),
}

fn read_folder_of(
    source: &dyn ImageBlobs,
    name: FolderName<'_>,
) -> Result<FolderFiles, LayerFilesError> {
    let place = source.place();
    let manifest = image_manifest(source)?;
    let folder = match name {
        FolderName::Path(path) => path.to_owned(),
        FolderName::Label(label) => {
            let config_digest = digest_of_descriptor(&place, manifest.config())?;
            let config_place = format!("{place} (config {config_digest})");
            let config = ImageConfig::parse(&read_blob(source, &config_digest)?)
                .map_err(|why| layout_error(&config_place, why))?;
            config
                .label(label)
                .ok_or_else(|| {
                    layout_error(
                        &config_place,
                        format!("the image config has no label {label}"),
                    )
                })?
                .to_owned()
        }
    };
    let prefix = format!("{}/", normalize(&folder));
    let mut files: BTreeMap<String, Vec<u8>> = BTreeMap::new();
    for layer in manifest.layers() {
        let digest = digest_of_descriptor(&place, layer)?;
        read_layer(source, &digest, &prefix, &mut files)?;
    }
    let files = files
        .into_iter()
        .map(|(name, bytes)| (name[prefix.len()..].to_owned(), bytes))
        .collect();
    Ok(FolderFiles { folder, files })
}

/// How deep indexes may nest before the image is refused (an index of
/// indexes is one level; real images use at most two).
const MAX_INDEX_DEPTH: usize = 5;

/// The image manifest of `source`'s top document: indexes followed down,
/// at each the `linux/amd64` image (else the first), every manifest
/// checked against its digest. Errors name the document that failed.
pub fn image_manifest(source: &dyn ImageBlobs) -> Result<ImageManifest, LayerFilesError> {
    let place = source.place();
    let mut content = ManifestContent::parse(&source.top()?, "")
        .map_err(|why| layout_error(&place, format!("the top document {why}")))?;
    let mut depth = 0;
    loop {
        let index = match content {
            ManifestContent::Image(manifest) => return Ok(*manifest),
            ManifestContent::Index(index) => index,
        };
        depth += 1;
        if depth > MAX_INDEX_DEPTH {
            return Err(layout_error(
                &place,
                format!("indexes nested more than {MAX_INDEX_DEPTH} deep"),
            ));
        }
        let descriptor = amd64_or_first(&index)
            .ok_or_else(|| layout_error(&place, "an index lists no manifest".to_owned()))?;
        let digest = digest_of_descriptor(&place, descriptor)?;
        let bytes = source.manifest(&digest)?;
        check_bytes(&place, &digest, &bytes)?;
        content = ManifestContent::parse(&bytes, descriptor.media_type().as_ref())
            .map_err(|why| layout_error(&place, format!("the manifest {digest} {why}")))?;
    }
}

fn layout_error(place: &str, message: String) -> LayerFilesError {
    LayerFilesError::Layout {
        place: place.to_owned(),
        message,
    }
}

fn digest_of_descriptor(place: &str, descriptor: &Descriptor) -> Result<Digest, LayerFilesError> {
    descriptor_digest(descriptor).map_err(|message| layout_error(place, message))
}

fn check_bytes(place: &str, digest: &Digest, bytes: &[u8]) -> Result<(), LayerFilesError> {
    let mut hashing = HashingReader::new(bytes, digest.algorithm());
    std::io::copy(&mut hashing, &mut std::io::sink()).map_err(|source| LayerFilesError::Io {
        place: place.to_owned(),
        source,
    })?;
    hashing.check(place, digest)
}

/// A small blob (a config), read whole and checked.
fn read_blob(source: &dyn ImageBlobs, digest: &Digest) -> Result<Vec<u8>, LayerFilesError> {
    let place = format!("{} ({digest})", source.place());
    let mut reader = HashingReader::new(source.blob(digest)?, digest.algorithm());
    let mut bytes = Vec::new();
    reader
        .read_to_end(&mut bytes)
        .map_err(|error| LayerFilesError::Io {
            place: place.clone(),
            source: error,
        })?;
    reader.check(&place, digest)?;
    Ok(bytes)
}

/// Streams one layer, applying its whiteouts and keeping its files under
/// `prefix`, then checks the layer's digest (the whole blob is read).
fn read_layer(
    source: &dyn ImageBlobs,
    digest: &Digest,
    prefix: &str,
    files: &mut BTreeMap<String, Vec<u8>>,
) -> Result<(), LayerFilesError> {
    let place = format!("{} ({digest})", source.place());
    let io_error = |error: std::io::Error| LayerFilesError::Io {
        place: place.clone(),
        source: error,
    };
    let mut hashing = HashingReader::new(source.blob(digest)?, digest.algorithm());
    {
        let mut buffered = BufReader::new(&mut hashing);
        let gzip = {
            use std::io::BufRead as _;
            buffered
                .fill_buf()
                .map_err(io_error)?
                .starts_with(&[0x1f, 0x8b])
        };
        let stream: Box<dyn Read + '_> = if gzip {
            Box::new(flate2::read::GzDecoder::new(buffered))
        } else {
            Box::new(buffered)
        };
        let mut archive = tar::Archive::new(stream);
        for entry in archive.entries().map_err(io_error)? {
            let mut entry = entry.map_err(io_error)?;
            let entry_path = entry.path().map_err(io_error)?;
            let name = normalize(&entry_path.to_string_lossy());
            let (parent, base) = match name.rsplit_once('/') {
                Some((parent, base)) => (format!("{parent}/"), base.to_owned()),
                None => (String::new(), name.clone()),
            };
            if base == ".wh..wh..opq" {
                files.retain(|existing, _| !existing.starts_with(&parent));
                continue;
            }
            if let Some(removed) = base.strip_prefix(".wh.") {
                let removed = format!("{parent}{removed}");
                let under = format!("{removed}/");
                files.retain(|existing, _| existing != &removed && !existing.starts_with(&under));
                continue;
            }
            if !name.starts_with(prefix) {
                continue;
            }
            match entry.header().entry_type() {
                tar::EntryType::Regular | tar::EntryType::Continuous => {
                    let mut bytes = Vec::with_capacity(entry.size() as usize);
                    entry.read_to_end(&mut bytes).map_err(io_error)?;
                    files.insert(name, bytes);
                }
                // A directory or link replaces what was at its path.
                _ => {
                    files.remove(&name);
                }
            }
        }
    }
    // Read what the tar reader left (padding, the gzip trailer) so the
    // digest covers the whole blob.
    std::io::copy(&mut hashing, &mut std::io::sink()).map_err(io_error)?;
    hashing.check(&place, digest)
}

/// A path without `./` or `/` in front and without a trailing `/`.
fn normalize(path: &str) -> String {
    let mut text = path.trim_start_matches("./").trim_start_matches('/');
    text = text.trim_end_matches('/');
    text.to_owned()
}

/// Hashes what passes through it.
struct HashingReader<R> {
    inner: R,
    hasher: ferry_schemas::DigestHasher,
}

impl<R: Read> HashingReader<R> {
    fn new(inner: R, algorithm: DigestAlgorithm) -> Self {
        let hasher = ferry_schemas::DigestHasher::new(algorithm);
        HashingReader { inner, hasher }
    }

    fn check(self, place: &str, digest: &Digest) -> Result<(), LayerFilesError> {
        let actual = self.hasher.finish();
        if actual == *digest {
            Ok(())
        } else {
            Err(LayerFilesError::DigestMismatch {
                place: place.to_owned(),
                digest: digest.to_string(),
                actual: actual.to_string(),
            })
        }
    }
}

impl<R: Read> Read for HashingReader<R> {
    fn read(&mut self, buffer: &mut [u8]) -> std::io::Result<usize> {
        let count = self.inner.read(buffer)?;
        self.hasher.update(&buffer[..count]);
        Ok(count)
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::Value;
    use std::io::Write as _;

    /// A valid image config with `settings` as its `config`.
    fn config_of(settings: Value) -> Vec<u8> {
        serde_json::json!({
            "architecture": "amd64",
            "os": "linux",
            "config": settings,
            "rootfs": {"type": "layers", "diff_ids": []},
        })
        .to_string()
        .into_bytes()
    }

    /// Writes `bytes` as a blob of the layout; returns its descriptor.
    fn blob(layout: &Path, media_type: &str, bytes: &[u8]) -> Value {
        let hex = Digest::sha256_of(bytes).hex().to_owned();
        std::fs::create_dir_all(layout.join("blobs/sha256")).unwrap();
        std::fs::write(layout.join("blobs/sha256").join(&hex), bytes).unwrap();
        serde_json::json!({"mediaType": media_type, "digest": format!("sha256:{hex}"), "size": bytes.len()})
    }

    fn tar_of(entries: &[(&str, &[u8])]) -> Vec<u8> {
        let mut builder = tar::Builder::new(Vec::new());
        for (path, bytes) in entries {
            let mut header = tar::Header::new_gnu();
            header.set_size(bytes.len() as u64);
            header.set_mode(0o644);
            header.set_cksum();
            builder.append_data(&mut header, path, *bytes).unwrap();
        }
        builder.into_inner().unwrap()
    }

    fn gzip(bytes: &[u8]) -> Vec<u8> {
        let mut encoder = flate2::write::GzEncoder::new(Vec::new(), flate2::Compression::fast());
        encoder.write_all(bytes).unwrap();
        encoder.finish().unwrap()
    }

    /// A layout holding an index of two platforms (arm64 first) whose amd64
    /// image has three layers: base files, the configs, and a later layer
    /// that replaces one file and whites out a package.
    fn layout(dir: &Path) -> Value {
        let base = blob(
            dir,
            "application/vnd.oci.image.layer.v1.tar+gzip",
            &gzip(&tar_of(&[("bin/opm", b"binary")])),
        );
        let configs = blob(
            dir,
            "application/vnd.oci.image.layer.v1.tar+gzip",
            &gzip(&tar_of(&[
                ("./configs/foo/catalog.json", b"old foo"),
                ("configs/gone/catalog.json", b"gone"),
                ("configs/kept/catalog.json", b"kept"),
                ("tmp/cache/x", b"cache"),
            ])),
        );
        let update = blob(
            dir,
            "application/vnd.oci.image.layer.v1.tar",
            &tar_of(&[
                ("configs/.wh.gone", b""),
                ("configs/foo/catalog.json", b"new foo"),
            ]),
        );
        let config = blob(
            dir,
            "application/vnd.oci.image.config.v1+json",
            &config_of(serde_json::json!({"Labels": {CATALOG_CONFIGS_LABEL: "/configs"}})),
        );
        let manifest = blob(
            dir,
            "application/vnd.oci.image.manifest.v1+json",
            serde_json::json!({"schemaVersion": 2, "config": config, "layers": [base, configs, update]}).to_string().as_bytes(),
        );
        let other_config = blob(
            dir,
            "application/vnd.oci.image.config.v1+json",
            &config_of(serde_json::json!({})),
        );
        let other = blob(
            dir,
            "application/vnd.oci.image.manifest.v1+json",
            serde_json::json!({"schemaVersion": 2, "config": other_config, "layers": []})
                .to_string()
                .as_bytes(),
        );
        let mut amd64 = manifest;
        amd64["platform"] = serde_json::json!({"os": "linux", "architecture": "amd64"});
        let mut arm64 = other;
        arm64["platform"] = serde_json::json!({"os": "linux", "architecture": "arm64"});
        let index = blob(
            dir,
            "application/vnd.oci.image.index.v1+json",
            serde_json::json!({"schemaVersion": 2, "manifests": [arm64, amd64]})
                .to_string()
                .as_bytes(),
        );
        std::fs::write(
            dir.join("index.json"),
            serde_json::json!({"schemaVersion": 2, "manifests": [index]}).to_string(),
        )
        .unwrap();
        std::fs::write(dir.join("oci-layout"), "{\"imageLayoutVersion\":\"1.0.0\"}").unwrap();
        config
    }

    #[test]
    fn later_layers_win_and_whiteouts_remove() {
        let dir = tempfile::tempdir().unwrap();
        layout(dir.path());
        let read = read_labelled_folder(dir.path(), CATALOG_CONFIGS_LABEL).unwrap();
        assert_eq!(read.folder, "/configs");
        let files: Vec<(&str, &[u8])> = read
            .files
            .iter()
            .map(|(path, bytes)| (path.as_str(), bytes.as_slice()))
            .collect();
        assert_eq!(
            files,
            [
                ("foo/catalog.json", &b"new foo"[..]),
                ("kept/catalog.json", &b"kept"[..])
            ]
        );
    }

    #[test]
    fn a_folder_named_by_its_path_is_read_without_the_label() {
        let dir = tempfile::tempdir().unwrap();
        layout(dir.path());
        let source = OciLayout {
            path: dir.path().to_path_buf(),
        };
        let read = read_folder_from(&source, "configs/foo").unwrap();
        assert_eq!(read.folder, "configs/foo");
        let names: Vec<&String> = read.files.keys().collect();
        assert_eq!(names, ["catalog.json"]);
        assert_eq!(read.files["catalog.json"], b"new foo");
        let empty = read_folder_from(&source, "release-manifests").unwrap();
        assert!(empty.files.is_empty());
    }

    #[test]
    fn platforms_listed_in_index_json_itself_pick_amd64() {
        let dir = tempfile::tempdir().unwrap();
        layout(dir.path());
        // Replace index.json by the nested index (arm64 listed first).
        let top: Value =
            serde_json::from_slice(&std::fs::read(dir.path().join("index.json")).unwrap()).unwrap();
        let nested = top["manifests"][0]["digest"]
            .as_str()
            .unwrap()
            .trim_start_matches("sha256:");
        let nested = std::fs::read(dir.path().join("blobs/sha256").join(nested)).unwrap();
        std::fs::write(dir.path().join("index.json"), nested).unwrap();
        let read = read_labelled_folder(dir.path(), CATALOG_CONFIGS_LABEL).unwrap();
        assert_eq!(read.files.len(), 2);
    }

    #[test]
    fn corrupted_blobs_and_missing_labels_are_errors() {
        let dir = tempfile::tempdir().unwrap();
        let config = layout(dir.path());
        let error = read_labelled_folder(dir.path(), "no.such.label").unwrap_err();
        assert!(
            error.to_string().contains("no label no.such.label"),
            "{error}"
        );

        let hex = config["digest"]
            .as_str()
            .unwrap()
            .trim_start_matches("sha256:")
            .to_owned();
        std::fs::write(dir.path().join("blobs/sha256").join(&hex), b"{}").unwrap();
        let error = read_labelled_folder(dir.path(), CATALOG_CONFIGS_LABEL).unwrap_err();
        assert!(
            matches!(error, LayerFilesError::DigestMismatch { .. }),
            "{error}"
        );
    }

    #[test]
    fn a_descriptor_without_a_media_type_is_refused_naming_the_document() {
        let dir = tempfile::tempdir().unwrap();
        layout(dir.path());
        let top: Value =
            serde_json::from_slice(&std::fs::read(dir.path().join("index.json")).unwrap()).unwrap();
        let mut descriptor = top["manifests"][0].clone();
        descriptor.as_object_mut().unwrap().remove("mediaType");
        std::fs::write(
            dir.path().join("index.json"),
            serde_json::json!({"schemaVersion": 2, "manifests": [descriptor]}).to_string(),
        )
        .unwrap();
        let error = read_labelled_folder(dir.path(), CATALOG_CONFIGS_LABEL)
            .unwrap_err()
            .to_string();
        assert!(
            error.contains("the top document is not an image index") && error.contains("mediaType"),
            "{error}"
        );
    }

    /// A source whose manifests arrive altered (as a registry or a proxy
    /// could send them): the digest check refuses them.
    struct AlteredManifests(OciLayout);

    impl ImageBlobs for AlteredManifests {
        fn place(&self) -> String {
            "registry.example.com/catalog@sha256:test".to_owned()
        }
        fn top(&self) -> Result<Vec<u8>, LayerFilesError> {
            self.0.top()
        }
        fn manifest(&self, digest: &Digest) -> Result<Vec<u8>, LayerFilesError> {
            let mut bytes = self.0.manifest(digest)?;
            bytes.push(b' ');
            Ok(bytes)
        }
        fn blob(&self, digest: &Digest) -> Result<Box<dyn Read + '_>, LayerFilesError> {
            self.0.blob(digest)
        }
    }

    #[test]
    fn altered_manifests_from_any_source_are_refused() {
        let dir = tempfile::tempdir().unwrap();
        layout(dir.path());
        let layout = OciLayout {
            path: dir.path().to_path_buf(),
        };
        assert_eq!(
            read_labelled_folder_from(&layout, CATALOG_CONFIGS_LABEL)
                .unwrap()
                .files
                .len(),
            2
        );
        let error = read_labelled_folder_from(&AlteredManifests(layout), CATALOG_CONFIGS_LABEL)
            .unwrap_err();
        assert!(
            matches!(&error, LayerFilesError::DigestMismatch { place, .. } if place.starts_with("registry.example.com/catalog")),
            "{error}"
        );
    }
}
