//! Reading one folder's files out of an image in an OCI image layout on
//! disk, without unpacking anything else: `index.json` (through a nested
//! index to one image), the manifest, the config, then the layers in order,
//! each streamed through gzip (when compressed) and tar, keeping only the
//! regular files under the folder. Later layers win; whiteouts (`.wh.NAME`
//! and the opaque `.wh..wh..opq`) remove what earlier layers put there.
//! Every blob read is checked against its digest.
//!
//! Used for operator catalogs: the folder is the one the config label
//! `operators.operatorframework.io.index.configs.v1` names.

use std::collections::BTreeMap;
use std::fs::File;
use std::io::{BufReader, Read};
use std::path::{Path, PathBuf};

use ferry_schemas::{Digest, DigestAlgorithm};
use serde_json::Value;
use sha2::Digest as _;

/// The config label naming an operator catalog's configs folder.
pub const CATALOG_CONFIGS_LABEL: &str = "operators.operatorframework.io.index.configs.v1";

/// Why the folder's files could not be read.
#[derive(Debug, thiserror::Error)]
pub enum LayerFilesError {
    #[error("{path}: {source}")]
    Io {
        path: PathBuf,
        #[source]
        source: std::io::Error,
    },
    #[error("{path}: {message}")]
    Layout { path: PathBuf, message: String },
    #[error("{path}: blob {digest} has digest {actual} (the layout is corrupted)")]
    DigestMismatch {
        path: PathBuf,
        digest: String,
        actual: String,
    },
}

/// The files of the image's configs folder, by path relative to it.
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct FolderFiles {
    /// The folder as the label names it (`/configs`).
    pub folder: String,
    pub files: BTreeMap<String, Vec<u8>>,
}

/// The files of the folder an image's config label `label` names, from the
/// OCI layout at `layout`. For an index, the `linux/amd64` image is read
/// (else the first): a multi-architecture catalog holds the same content
/// for each.
pub fn read_labelled_folder(layout: &Path, label: &str) -> Result<FolderFiles, LayerFilesError> {
    let layout_error = |message: String| LayerFilesError::Layout {
        path: layout.to_path_buf(),
        message,
    };
    let index_path = layout.join("index.json");
    let index = read_json(
        &index_path,
        &std::fs::read(&index_path).map_err(|source| LayerFilesError::Io {
            path: index_path.clone(),
            source,
        })?,
    )?;
    let mut descriptor = amd64_or_first(&index)
        .ok_or_else(|| layout_error("index.json lists no manifest".to_owned()))?;
    // Follow nested indexes down to one image manifest.
    let manifest = loop {
        let digest = descriptor_digest(layout, &descriptor)?;
        let document = read_json(&blob_path(layout, &digest), &read_blob(layout, &digest)?)?;
        if document.get("manifests").is_some() {
            descriptor = amd64_or_first(&document)
                .ok_or_else(|| layout_error(format!("index {digest} lists no manifest")))?;
            continue;
        }
        break document;
    };
    let config_descriptor = manifest
        .get("config")
        .cloned()
        .ok_or_else(|| layout_error("the image manifest has no config".to_owned()))?;
    let config_digest = descriptor_digest(layout, &config_descriptor)?;
    let config = read_json(
        &blob_path(layout, &config_digest),
        &read_blob(layout, &config_digest)?,
    )?;
    let folder = config
        .pointer("/config/Labels")
        .and_then(|labels| labels.get(label))
        .and_then(Value::as_str)
        .ok_or_else(|| layout_error(format!("the image config has no label {label}")))?
        .to_owned();
    let prefix = format!("{}/", normalize(&folder));
    let mut files: BTreeMap<String, Vec<u8>> = BTreeMap::new();
    let layers = manifest
        .get("layers")
        .and_then(Value::as_array)
        .cloned()
        .unwrap_or_default();
    for layer in &layers {
        let digest = descriptor_digest(layout, layer)?;
        read_layer(layout, &digest, &prefix, &mut files)?;
    }
    let files = files
        .into_iter()
        .map(|(name, bytes)| (name[prefix.len()..].to_owned(), bytes))
        .collect();
    Ok(FolderFiles { folder, files })
}

fn amd64_or_first(index: &Value) -> Option<Value> {
    let manifests = index.get("manifests")?.as_array()?;
    manifests
        .iter()
        .find(|manifest| {
            manifest.pointer("/platform/os").and_then(Value::as_str) == Some("linux")
                && manifest
                    .pointer("/platform/architecture")
                    .and_then(Value::as_str)
                    == Some("amd64")
        })
        .or_else(|| manifests.first())
        .cloned()
}

fn descriptor_digest(layout: &Path, descriptor: &Value) -> Result<Digest, LayerFilesError> {
    let text = descriptor
        .get("digest")
        .and_then(Value::as_str)
        .unwrap_or_default();
    text.parse().map_err(|error| LayerFilesError::Layout {
        path: layout.to_path_buf(),
        message: format!("descriptor digest {text:?}: {error}"),
    })
}

fn blob_path(layout: &Path, digest: &Digest) -> PathBuf {
    layout
        .join("blobs")
        .join(digest.algorithm().name())
        .join(digest.hex())
}

fn read_json(path: &Path, bytes: &[u8]) -> Result<Value, LayerFilesError> {
    serde_json::from_slice(bytes).map_err(|error| LayerFilesError::Layout {
        path: path.to_path_buf(),
        message: format!("invalid JSON: {error}"),
    })
}

/// A small blob (index, manifest, config), read whole and checked.
fn read_blob(layout: &Path, digest: &Digest) -> Result<Vec<u8>, LayerFilesError> {
    let path = blob_path(layout, digest);
    let mut reader = HashingReader::new(open(&path)?, digest.algorithm());
    let mut bytes = Vec::new();
    reader
        .read_to_end(&mut bytes)
        .map_err(|source| LayerFilesError::Io {
            path: path.clone(),
            source,
        })?;
    reader.check(&path, digest)?;
    Ok(bytes)
}

fn open(path: &Path) -> Result<File, LayerFilesError> {
    File::open(path).map_err(|source| LayerFilesError::Io {
        path: path.to_path_buf(),
        source,
    })
}

/// Streams one layer, applying its whiteouts and keeping its files under
/// `prefix`, then checks the layer's digest (the whole blob is read).
fn read_layer(
    layout: &Path,
    digest: &Digest,
    prefix: &str,
    files: &mut BTreeMap<String, Vec<u8>>,
) -> Result<(), LayerFilesError> {
    let path = blob_path(layout, digest);
    let io_error = |source: std::io::Error| LayerFilesError::Io {
        path: path.clone(),
        source,
    };
    let mut hashing = HashingReader::new(open(&path)?, digest.algorithm());
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
    hashing.check(&path, digest)
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
    hasher: Hasher,
}

enum Hasher {
    Sha256(sha2::Sha256),
    Sha512(sha2::Sha512),
}

impl<R: Read> HashingReader<R> {
    fn new(inner: R, algorithm: DigestAlgorithm) -> Self {
        let hasher = match algorithm {
            DigestAlgorithm::Sha256 => Hasher::Sha256(sha2::Sha256::new()),
            DigestAlgorithm::Sha512 => Hasher::Sha512(sha2::Sha512::new()),
        };
        HashingReader { inner, hasher }
    }

    fn check(self, path: &Path, digest: &Digest) -> Result<(), LayerFilesError> {
        let actual = match self.hasher {
            Hasher::Sha256(hasher) => hex::encode(hasher.finalize()),
            Hasher::Sha512(hasher) => hex::encode(hasher.finalize()),
        };
        if actual == digest.hex() {
            Ok(())
        } else {
            Err(LayerFilesError::DigestMismatch {
                path: path.to_path_buf(),
                digest: digest.to_string(),
                actual: format!("{}:{actual}", digest.algorithm().name()),
            })
        }
    }
}

impl<R: Read> Read for HashingReader<R> {
    fn read(&mut self, buffer: &mut [u8]) -> std::io::Result<usize> {
        let count = self.inner.read(buffer)?;
        match &mut self.hasher {
            Hasher::Sha256(hasher) => hasher.update(&buffer[..count]),
            Hasher::Sha512(hasher) => hasher.update(&buffer[..count]),
        }
        Ok(count)
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::io::Write as _;

    /// Writes `bytes` as a blob of the layout; returns its descriptor.
    fn blob(layout: &Path, media_type: &str, bytes: &[u8]) -> Value {
        let hex = hex::encode(sha2::Sha256::digest(bytes));
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
            serde_json::json!({"config": {"Labels": {CATALOG_CONFIGS_LABEL: "/configs"}}})
                .to_string()
                .as_bytes(),
        );
        let manifest = blob(
            dir,
            "application/vnd.oci.image.manifest.v1+json",
            serde_json::json!({"schemaVersion": 2, "config": config, "layers": [base, configs, update]}).to_string().as_bytes(),
        );
        let other_config = blob(
            dir,
            "application/vnd.oci.image.config.v1+json",
            b"{\"config\":{}}",
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
}
