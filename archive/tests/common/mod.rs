//! Shared test helpers: blob stores filled with pseudo-random blobs,
//! delivery inputs, file hashes.

#![allow(dead_code)]

use std::path::Path;

use ferry_archive::{BlobEntry, DeliveryInput, ImageRecord, ManifestEntry};
use ferry_schemas::Digest;
use ferry_store::BlobStore;
use ferry_testworld::image_builder::{Random, seed_of};
use sha2::{Digest as _, Sha256};

/// `size` pseudo-random bytes, the same for the same seed name.
pub fn random_bytes(seed: &str, size: usize) -> Vec<u8> {
    let mut bytes = vec![0; size];
    Random::new(seed_of(seed)).fill(&mut bytes);
    bytes
}

pub fn sha256(bytes: &[u8]) -> Digest {
    format!("sha256:{}", hex::encode(Sha256::digest(bytes)))
        .parse()
        .unwrap()
}

/// sha256 hex of a file's bytes.
pub fn file_sha256(path: &Path) -> String {
    hex::encode(Sha256::digest(std::fs::read(path).unwrap()))
}

/// A blob store in a fresh folder holding `blobs`; returns their entries.
pub fn store_with(blobs: &[Vec<u8>]) -> (tempfile::TempDir, BlobStore, Vec<BlobEntry>) {
    let folder = tempfile::tempdir().unwrap();
    let store = BlobStore::open(folder.path().join("cache")).unwrap();
    let entries = add_blobs(&store, blobs);
    (folder, store, entries)
}

pub fn add_blobs(store: &BlobStore, blobs: &[Vec<u8>]) -> Vec<BlobEntry> {
    blobs
        .iter()
        .map(|bytes| {
            let digest = sha256(bytes);
            store.write(&digest, None, bytes.as_slice()).unwrap();
            BlobEntry {
                digest,
                size: bytes.len() as u64,
            }
        })
        .collect()
}

/// `count` blobs of sizes cycling through `sizes`, seeded by `seed`.
pub fn blobs(seed: &str, count: usize, sizes: &[usize]) -> Vec<Vec<u8>> {
    (0..count)
        .map(|index| random_bytes(&format!("{seed}-{index}"), sizes[index % sizes.len()]))
        .collect()
}

/// A manifest entry for `bytes`.
pub fn manifest(media_type: &str, bytes: Vec<u8>) -> ManifestEntry {
    ManifestEntry {
        digest: sha256(&bytes),
        media_type: media_type.to_owned(),
        bytes,
    }
}

/// An image record naming `manifest`.
pub fn image(name: &str, manifest: &ManifestEntry) -> ImageRecord {
    ImageRecord {
        name: name.to_owned(),
        digest: manifest.digest.clone(),
        media_type: manifest.media_type.clone(),
        size: manifest.bytes.len() as u64,
    }
}

/// A delivery of `blobs` with one small image, no limit to speak of.
pub fn delivery(
    delivery: u32,
    first_segment: u32,
    max_segment_bytes: u64,
    blobs: Vec<BlobEntry>,
) -> DeliveryInput {
    let top = manifest(
        "application/vnd.oci.image.manifest.v1+json",
        format!("{{\"schemaVersion\":2,\"delivery\":{delivery}}}").into_bytes(),
    );
    DeliveryInput {
        inputs: None,
        delivery,
        previous: delivery.checked_sub(1).filter(|previous| *previous > 0),
        first_segment,
        max_segment_bytes,
        strict: false,
        config_text: format!(
            "kind: ImageSetConfiguration\napiVersion: mirror.openshift.io/v2alpha1\n# delivery {delivery}\nmirror:\n  additionalImages:\n  - name: quay.io/ferry-demo/app:1.0\n"
        ),
        plan_json: format!("{{\"delivery\":{delivery},\"actions\":[]}}"),
        images: vec![image("quay.io/ferry-demo/app:1.0", &top)],
        manifests: vec![top],
        blobs,
    }
}

/// The segment files of a folder, sorted.
pub fn segment_files(folder: &Path) -> Vec<String> {
    let mut names: Vec<String> = std::fs::read_dir(folder)
        .unwrap()
        .map(|entry| entry.unwrap().file_name().to_string_lossy().into_owned())
        .filter(|name| name.starts_with("mirror_"))
        .collect();
    names.sort();
    names
}
