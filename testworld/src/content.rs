//! What the world holds, as pure data: blobs, manifests and where they are
//! published. Generators (releases, catalogs, additional images) return a
//! [`Content`]; the storage writer publishes it. Nothing here does I/O.

use std::collections::BTreeMap;

use sha2::{Digest as _, Sha256};

/// `sha256:<hex>` of some bytes.
pub fn sha256_digest(bytes: &[u8]) -> String {
    format!("sha256:{}", hex::encode(Sha256::digest(bytes)))
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

    /// Merges another generator's output into this one.
    pub fn merge(&mut self, other: Content) {
        self.blobs.extend(other.blobs);
        self.manifests.extend(other.manifests);
        self.placements.extend(other.placements);
    }
}
