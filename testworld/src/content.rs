//! What the world holds, as pure data: blobs, manifests and where they are
//! published. Generators (releases, catalogs, additional images) return a
//! [`Content`]; the storage writer publishes it. Nothing here does I/O.

use std::collections::BTreeMap;

use sha2::{Digest as _, Sha256};

/// `sha256:<hex>` of some bytes.
pub fn sha256_digest(bytes: &[u8]) -> String {
    format!("sha256:{}", hex::encode(Sha256::digest(bytes)))
}

/// Decompresses gzip bytes (for tests and readers of layers).
pub fn gunzip(bytes: &[u8]) -> std::io::Result<Vec<u8>> {
    let mut output = Vec::new();
    std::io::Read::read_to_end(&mut flate2::read::GzDecoder::new(bytes), &mut output)?;
    Ok(output)
}

/// What a manifest names: a blob (config, layer) or a child manifest.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum ChildKind {
    Blob,
    Manifest,
}

/// One thing a manifest names, with the size it claims.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Child {
    pub kind: ChildKind,
    pub digest: String,
    pub size: u64,
}

/// A manifest (image manifest, index or list) with its exact bytes.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Manifest {
    pub media_type: String,
    pub bytes: Vec<u8>,
}

/// One repository's view of a manifest: `host/repository` holds `digest`,
/// under each of `tags` (possibly none: reachable by digest only).
#[derive(Clone, Debug, PartialEq, Eq, PartialOrd, Ord)]
pub struct Placement {
    /// The public-looking host, e.g. `quay.io` or `registry.redhat.io`.
    pub host: String,
    /// Repository path below the host, e.g. `openshift-release-dev/ocp-release`.
    pub repository: String,
    /// Digest of the top manifest placed here.
    pub digest: String,
    pub tags: Vec<String>,
}

/// Everything a generator produced. Blobs and manifests are keyed by digest,
/// so content shared between images is stored once.
#[derive(Clone, Debug, Default)]
pub struct Content {
    pub blobs: BTreeMap<String, Vec<u8>>,
    pub manifests: BTreeMap<String, Manifest>,
    pub placements: Vec<Placement>,
}

impl Content {
    /// Adds a blob and returns its digest.
    pub fn add_blob(&mut self, bytes: Vec<u8>) -> String {
        let digest = sha256_digest(&bytes);
        self.blobs.entry(digest.clone()).or_insert(bytes);
        digest
    }

    /// Adds a manifest and returns its digest.
    pub fn add_manifest(&mut self, media_type: &str, bytes: Vec<u8>) -> String {
        let digest = sha256_digest(&bytes);
        self.manifests.entry(digest.clone()).or_insert(Manifest {
            media_type: media_type.to_owned(),
            bytes,
        });
        digest
    }

    /// Publishes `digest` at `host/repository` under `tags`.
    pub fn place(&mut self, host: &str, repository: &str, digest: &str, tags: &[&str]) {
        self.placements.push(Placement {
            host: host.to_owned(),
            repository: repository.to_owned(),
            digest: digest.to_owned(),
            tags: tags.iter().map(|t| (*t).to_owned()).collect(),
        });
    }

    /// Checks that everything the placements reach is present with the
    /// sizes and digests its parents claim.
    pub fn check_consistency(&self) -> Result<(), String> {
        for placement in &self.placements {
            if !self.manifests.contains_key(&placement.digest) {
                return Err(format!(
                    "{}/{} places {}, which is not a manifest",
                    placement.host, placement.repository, placement.digest
                ));
            }
        }
        for (digest, manifest) in &self.manifests {
            if sha256_digest(&manifest.bytes) != *digest {
                return Err(format!("manifest {digest} does not hash to its digest"));
            }
            for child in self.references_of(manifest)? {
                let size = match child.kind {
                    ChildKind::Manifest => self.manifests.get(&child.digest).map(|m| m.bytes.len()),
                    ChildKind::Blob => self.blobs.get(&child.digest).map(Vec::len),
                };
                match size {
                    None => {
                        return Err(format!("{digest} names {}, which is missing", child.digest));
                    }
                    Some(size) if size as u64 != child.size => {
                        return Err(format!(
                            "{digest} says {} has {} bytes, it has {size}",
                            child.digest, child.size
                        ));
                    }
                    Some(_) => {}
                }
            }
        }
        for (digest, blob) in &self.blobs {
            if sha256_digest(blob) != *digest {
                return Err(format!("blob {digest} does not hash to its digest"));
            }
        }
        Ok(())
    }

    /// The blobs and child manifests a manifest names.
    pub fn references_of(&self, manifest: &Manifest) -> Result<Vec<Child>, String> {
        let value: serde_json::Value = serde_json::from_slice(&manifest.bytes)
            .map_err(|error| format!("a manifest is not JSON: {error}"))?;
        let mut children = Vec::new();
        let descriptor = |item: &serde_json::Value, kind: ChildKind| -> Result<Child, String> {
            Ok(Child {
                kind,
                digest: item["digest"]
                    .as_str()
                    .ok_or("a descriptor without digest")?
                    .to_owned(),
                size: item["size"].as_u64().ok_or("a descriptor without size")?,
            })
        };
        if let Some(entries) = value["manifests"].as_array() {
            for entry in entries {
                children.push(descriptor(entry, ChildKind::Manifest)?);
            }
        } else {
            children.push(descriptor(&value["config"], ChildKind::Blob)?);
            for layer in value["layers"].as_array().into_iter().flatten() {
                children.push(descriptor(layer, ChildKind::Blob)?);
            }
        }
        Ok(children)
    }

    /// Merges another generator's output into this one.
    pub fn merge(&mut self, other: Content) {
        self.blobs.extend(other.blobs);
        self.manifests.extend(other.manifests);
        self.placements.extend(other.placements);
    }
}
