//! The action cache at the image level: an image's fingerprint, and what
//! the state records of an image completed at a destination.
//!
//! An image's fingerprint is blake3 over everything that determines its
//! actions: the fingerprint and key versions, the destination registry and
//! prefix, where its manifests and blobs are read, its destination
//! repository and tag, and its whole manifest tree (digests, media types,
//! sizes, children, blobs with sizes). Not hashed: the image's name (records
//! are kept by name) and its category (it shapes no action).
//!
//! When a run completes an image, the state records its fingerprint and the
//! keys of every action of it ([`ImageRecord`]). A later plan whose image
//! has the same fingerprint, every recorded key still done, its top manifest
//! not found missing and no `--verify` does not compile that image again
//! (see [`crate::graph::compile_against`]); any changed input, a key
//! version bump or a forgotten action compiles it as before.

use ferry_schemas::Digest;

use crate::action::{ActionKey, KEY_VERSION};
use crate::graph::{Destination, ResolvedImage};
use crate::source::Source;

/// Bumped when what a fingerprint hashes changes; old records then miss.
pub const FINGERPRINT_VERSION: u32 = 1;

/// blake3 over everything that determines an image's actions.
#[derive(Clone, Copy, Debug, PartialEq, Eq, PartialOrd, Ord, Hash)]
pub struct ImageFingerprint([u8; 32]);

impl ImageFingerprint {
    /// The fingerprint of `image` compiled for `destination`.
    pub fn of(image: &ResolvedImage, destination: &Destination) -> Self {
        // The fields are written out first and hashed in one call: blake3
        // costs far more per call than per byte at these sizes.
        let mut hasher = Fields(Vec::with_capacity(1024));
        hasher.number(u64::from(FINGERPRINT_VERSION));
        hasher.number(u64::from(KEY_VERSION));
        hasher.text(&destination.registry);
        hasher.text(&destination.prefix);
        hasher.source(&image.source);
        hasher.number(image.blob_sources.len() as u64);
        for (digest, source) in &image.blob_sources {
            hasher.digest(digest);
            hasher.source(source);
        }
        hasher.text(&image.destination_repository);
        match &image.destination_tag {
            Some(tag) => {
                hasher.number(1);
                hasher.text(tag);
            }
            None => hasher.number(0),
        }
        hasher.digest(&image.top);
        hasher.number(image.manifests.len() as u64);
        for manifest in &image.manifests {
            hasher.digest(&manifest.digest);
            hasher.text(&manifest.media_type);
            hasher.number(manifest.size);
            hasher.number(manifest.children.len() as u64);
            for child in &manifest.children {
                hasher.digest(child);
            }
            hasher.number(manifest.blobs.len() as u64);
            for (digest, size) in &manifest.blobs {
                hasher.digest(digest);
                hasher.number(*size);
            }
        }
        ImageFingerprint(*blake3::hash(&hasher.0).as_bytes())
    }

    /// The fingerprint's bytes, as the state stores them.
    pub fn to_bytes(self) -> [u8; 32] {
        self.0
    }

    /// A fingerprint read back from the state.
    pub fn from_bytes(bytes: [u8; 32]) -> Self {
        ImageFingerprint(bytes)
    }
}

/// Length-prefixed fields, so no two inputs hash alike: the bytes hashed.
struct Fields(Vec<u8>);

impl Fields {
    fn number(&mut self, value: u64) {
        self.0.extend_from_slice(&value.to_le_bytes());
    }

    fn text(&mut self, text: &str) {
        self.number(text.len() as u64);
        self.0.extend_from_slice(text.as_bytes());
    }

    fn digest(&mut self, digest: &Digest) {
        self.text(digest.algorithm().name());
        self.text(digest.hex());
    }

    fn source(&mut self, source: &Source) {
        match source {
            Source::Registry(name) => {
                self.number(1);
                self.text(name);
            }
            Source::Cache => self.number(2),
        }
    }
}

/// What the state records of an image completed at a destination: its
/// fingerprint then, and the keys of every action of it.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct ImageRecord {
    pub fingerprint: ImageFingerprint,
    pub keys: Vec<ActionKey>,
}
