//! The side effects of the disk workflows, around the delivery format of
//! `ferry-archive`.
//!
//! - Mirror-to-disk: [`fetch_blobs`] brings the planned blobs into the
//!   content cache (verified, atomic, concurrent); [`cache_manifests`]
//!   stores the resolved manifests there and indexes the image set so
//!   `ferry cache prune` keeps it; [`delivery_contents`] turns the plan into
//!   what the next delivery holds, leaving out whole every image that
//!   failed.
//! - Disk-to-mirror: [`resolve_from_deliveries`] pins the configuration's
//!   images to what the deliveries recorded, reading every manifest
//!   through [`DeliveredManifests`] (the cache the deliveries were
//!   imported into; for a plan, which writes nothing, the verified
//!   deliveries' manifests held in memory, then the cache read-only), with
//!   no network (built images too, by name, through
//!   [`resolve_built_from_deliveries`]); [`recover_from_destination`] first reads back from the
//!   destination the manifests an earlier delivery brought there that
//!   neither holds.

use std::collections::{BTreeMap, BTreeSet};

use bytes::Bytes;
use ferry_archive::{BlobEntry, DeliveryInput, ImageRecord, ManifestEntry};
use ferry_planner::{Action, ActionGraph, Plan, ResolvedImage, Source};
use ferry_registry::{Manifest, RegistryClient};
use ferry_schemas::Digest;
use ferry_store::{BlobStore, Cache, digest_of};
use futures_util::StreamExt;

use crate::resolve::{
    Failure, Request, Resolution, describe_with_media_types, signature_tag, tree_of,
};
use crate::source::Deliveries;
use crate::workflow::built::BuiltImage;

/// What fetching into the cache did.
#[derive(Clone, Debug, Default)]
pub struct FetchOutcome {
    pub fetched: usize,
    pub bytes: u64,
    /// Blobs that could not be fetched, with the reason.
    pub failed: BTreeMap<Digest, String>,
}

/// Fetches every planned blob into the cache, `parallelism` at a time;
/// each is verified against its digest and size while it streams in.
pub async fn fetch_blobs(
    plan: &Plan,
    client: &RegistryClient,
    blobs: &BlobStore,
    parallelism: usize,
) -> FetchOutcome {
    let fetches: Vec<(&Digest, u64, &Source)> = plan
        .actions
        .iter()
        .filter_map(|planned| match &planned.action {
            Action::FetchBlob {
                digest,
                size,
                source,
            } => Some((digest, *size, source)),
            _ => None,
        })
        .collect();
    let results: Vec<(Digest, u64, Result<u64, String>)> = futures_util::stream::iter(fetches)
        .map(|(digest, size, source)| async move {
            let outcome = match source.registry_repository() {
                Some((registry, repository)) => client
                    .fetch_blob(registry, repository, digest, Some(size), blobs)
                    .await
                    .map_err(|error| error.to_string()),
                None => Err(format!("{source} names no repository")),
            };
            (digest.clone(), size, outcome)
        })
        .buffer_unordered(parallelism.max(1))
        .collect()
        .await;
    let mut outcome = FetchOutcome::default();
    for (digest, size, result) in results {
        match result {
            Ok(_) => {
                outcome.fetched += 1;
                outcome.bytes += size;
            }
            Err(message) => {
                outcome.failed.insert(digest, message);
            }
        }
    }
    outcome
}

/// Images (by name) that need a blob in `failed`, with the first reason.
pub fn failed_images(
    graph: &ActionGraph,
    failed: &BTreeMap<Digest, String>,
) -> BTreeMap<String, String> {
    let mut images = BTreeMap::new();
    for image in graph.images() {
        let reason = image.nodes().find_map(|node| match graph.action(node) {
            Action::FetchBlob { digest, .. } => failed
                .get(digest)
                .map(|message| format!("blob {digest}: {message}")),
            _ => None,
        });
        if let Some(reason) = reason {
            images.insert(image.name().to_owned(), reason);
        }
    }
    images
}

/// Stores every resolved manifest in the cache (content-addressed, like
/// blobs) and indexes the image set, so that pruning keeps what the
/// workspace's images need. Returns the first problem, if any.
pub fn cache_manifests(cache: &mut Cache, resolution: &Resolution, now: i64) -> Result<(), String> {
    for manifest in resolution.manifests.values() {
        cache
            .blobs()
            .write(
                &manifest.digest,
                Some(manifest.bytes.len() as u64),
                manifest.bytes.as_ref(),
            )
            .map_err(|error| error.to_string())?;
    }
    for image in &resolution.images {
        for manifest in &image.manifests {
            let mut named: Vec<Digest> = manifest.children.clone();
            named.extend(manifest.blobs.iter().map(|(digest, _)| digest.clone()));
            cache
                .index_mut()
                .record_manifest(
                    &manifest.digest,
                    &manifest.media_type,
                    manifest.size,
                    &named,
                )
                .map_err(|error| error.to_string())?;
        }
        cache
            .index()
            .record_resolution(&image.name, &image.top, now)
            .map_err(|error| error.to_string())?;
    }
    Ok(())
}

/// Disk-to-mirror, after an upload from the cache failed: whether the
/// cached copy was to blame. The upload hashes the file as it streams and
/// stops before its last bytes when they are wrong; the blob is re-hashed
/// here only after a failure, and a corrupt copy is removed, so that the
/// next run imports the delivery's good copy again, and the message names
/// the cache.
pub fn corrupt_cached_blob(blobs: &BlobStore, digest: &Digest) -> Option<String> {
    if !blobs.contains(digest) || blobs.is_intact(digest).unwrap_or(true) {
        return None;
    }
    let removed = match blobs.remove(digest) {
        Ok(()) => "ferry removed it: run again with the delivery that carries it in the folder, and its good copy is imported again (`ferry cache verify` checks the rest of the cache)"
            .to_owned(),
        Err(error) => {
            format!("and it could not be removed ({error}): run `ferry cache verify --remove`")
        }
    };
    Some(format!(
        "the copy of blob {digest} in the cache {} is corrupt (its bytes no longer match its digest); {removed}",
        blobs.root().display()
    ))
}

/// Where a delivery goes and how it is cut.
#[derive(Clone, Debug)]
pub struct DeliverySettings {
    pub delivery: u32,
    pub previous: Option<u32>,
    pub first_segment: u32,
    pub max_segment_bytes: u64,
    pub strict: bool,
}

/// What the next delivery holds, and what to record once it is written.
#[derive(Clone, Debug)]
pub struct DeliveryContents {
    pub input: DeliveryInput,
    /// Keys of the planned pack and record actions it carries out.
    pub keys: Vec<ferry_planner::ActionKey>,
    /// Every image its index names, with its digest.
    pub images: Vec<(String, Digest)>,
}

/// The delivery a plan makes, leaving out whole every image in `left_out`
/// (a blob or manifest it shares with an image that is in stays in).
pub fn delivery_contents(
    plan: &Plan,
    graph: &ActionGraph,
    resolution: &Resolution,
    left_out: &BTreeSet<String>,
    settings: &DeliverySettings,
    config_text: &str,
    plan_json: &str,
) -> DeliveryContents {
    let included_nodes: BTreeSet<_> = graph
        .images()
        .iter()
        .filter(|image| !left_out.contains(image.name()))
        .flat_map(|image| image.nodes())
        .collect();
    let mut blobs = Vec::new();
    let mut manifests = Vec::new();
    let mut keys = Vec::new();
    for planned in &plan.actions {
        let Some(node) = graph.node(&planned.key) else {
            continue;
        };
        if !included_nodes.contains(&node) {
            continue;
        }
        match &planned.action {
            Action::PackBlob { digest, size } => {
                blobs.push(BlobEntry {
                    digest: digest.clone(),
                    size: *size,
                });
            }
            Action::PackManifest {
                digest, media_type, ..
            } => {
                let Some(manifest) = resolution.manifests.get(digest) else {
                    continue;
                };
                manifests.push(ManifestEntry {
                    digest: digest.clone(),
                    media_type: media_type.clone(),
                    bytes: manifest.bytes.to_vec(),
                });
            }
            Action::RecordImage { .. } => {}
            _ => continue,
        }
        keys.push(planned.key);
    }
    let mut records = Vec::new();
    let mut images = Vec::new();
    for image in &resolution.images {
        if left_out.contains(&image.name) {
            continue;
        }
        let Some(top) = resolution.manifests.get(&image.top) else {
            continue;
        };
        records.push(ImageRecord {
            name: image.name.clone(),
            digest: image.top.clone(),
            media_type: top.media_type.clone(),
            size: top.bytes.len() as u64,
        });
        images.push((image.name.clone(), image.top.clone()));
    }
    DeliveryContents {
        input: DeliveryInput {
            inputs: None,
            delivery: settings.delivery,
            previous: settings.previous,
            first_segment: settings.first_segment,
            max_segment_bytes: settings.max_segment_bytes,
            strict: settings.strict,
            config_text: config_text.to_owned(),
            plan_json: plan_json.to_owned(),
            images: records,
            manifests,
            blobs,
        },
        keys,
        images,
    }
}

/// Where disk-to-mirror reads manifests from: bytes held in memory first,
/// then the cache.
pub struct DeliveredManifests {
    held: BTreeMap<Digest, Bytes>,
    cache: BlobStore,
    /// Whether manifests read back from the destination are stored in the
    /// cache (`mirror`, `apply`) or only held (`plan`).
    store_recovered: bool,
}

impl DeliveredManifests {
    /// The deliveries were imported into `cache`: manifests are read from
    /// there, and those read back from the destination are stored there.
    pub fn imported(cache: BlobStore) -> Self {
        DeliveredManifests {
            held: BTreeMap::new(),
            cache,
            store_recovered: true,
        }
    }

    /// Nothing may be written: `held` are the manifests of the deliveries
    /// that were verified without being imported, `cache` is only read, and
    /// what is read back from the destination is held too.
    pub fn held(held: BTreeMap<Digest, Vec<u8>>, cache: BlobStore) -> Self {
        DeliveredManifests {
            held: held
                .into_iter()
                .map(|(digest, bytes)| (digest, Bytes::from(bytes)))
                .collect(),
            cache,
            store_recovered: false,
        }
    }

    /// The bytes of a manifest the deliveries brought.
    pub fn bytes(&self, digest: &Digest) -> Result<Vec<u8>, String> {
        self.read(digest, "")
            .map(|manifest| manifest.bytes.to_vec())
    }

    /// The cache the deliveries' blobs were imported into.
    pub fn blobs(&self) -> &BlobStore {
        &self.cache
    }

    /// A manifest the deliveries brought (or the destination gave back).
    pub(crate) fn read(&self, digest: &Digest, media_type: &str) -> Result<Manifest, String> {
        let bytes = match self.held.get(digest) {
            Some(bytes) => bytes.clone(),
            None => Bytes::from(std::fs::read(self.cache.path(digest)).map_err(|_| {
                format!("manifest {digest} is neither in the deliveries nor in the cache")
            })?),
        };
        Ok(Manifest {
            media_type: media_type.to_owned(),
            digest: digest.clone(),
            bytes,
        })
    }

    /// Keeps a manifest read back from the destination once its bytes match
    /// its digest: in the cache, or in memory. Returns whether it was kept.
    fn keep(&mut self, manifest: &Manifest) -> bool {
        if self.store_recovered {
            let size = manifest.bytes.len() as u64;
            return self
                .cache
                .write(&manifest.digest, Some(size), manifest.bytes.as_ref())
                .is_ok();
        }
        if digest_of(manifest.digest.algorithm(), &manifest.bytes) != manifest.digest {
            return false;
        }
        self.held
            .insert(manifest.digest.clone(), manifest.bytes.clone());
        true
    }
}

/// The deliveries' image records by the name the configuration gives.
fn records_by_name(records: &[ImageRecord]) -> BTreeMap<&str, &ImageRecord> {
    records
        .iter()
        .map(|record| (record.name.as_str(), record))
        .collect()
}

/// Reads back from the destination the manifests that an earlier delivery
/// brought there but that `delivered` does not hold (the disconnected
/// side's cache is new or was wiped, and the old segments are gone), each
/// checked against its digest and kept (in the cache, or in memory for a
/// plan), so that [`resolve_from_deliveries`] finds every tree. Only
/// manifests: a blob is never needed again for content the destination
/// already has.
/// Returns how many were read; what the destination cannot give is left
/// for [`resolve_from_deliveries`] to report, image by image.
pub async fn recover_from_destination(
    client: &RegistryClient,
    registry: &str,
    requests: &[Request],
    records: &[ImageRecord],
    delivered: &mut DeliveredManifests,
    remove_signatures: bool,
) -> usize {
    let by_name = records_by_name(records);
    let mut recovered = 0;
    for request in requests {
        let Some(record) = by_name.get(request.name.as_str()) else {
            continue;
        };
        let mut queue = vec![(record.digest.clone(), record.media_type.clone())];
        if !remove_signatures
            && let Some(signature) = by_name.get(
                format!(
                    "{}:{}",
                    request.origin.name(),
                    signature_tag(&record.digest)
                )
                .as_str(),
            )
        {
            queue.push((signature.digest.clone(), signature.media_type.clone()));
        }
        while let Some((digest, media_type)) = queue.pop() {
            let manifest = match delivered.read(&digest, &media_type) {
                Ok(manifest) => manifest,
                Err(_) => {
                    let reference =
                        format!("{registry}/{}@{digest}", request.destination_repository);
                    let Ok(reference) = reference.parse::<ferry_schemas::ImageReference>() else {
                        continue;
                    };
                    // The client checks the bytes against the digest, and
                    // keeping them checks again.
                    let Ok(fetched) = client.get_manifest(&reference).await else {
                        continue;
                    };
                    let manifest = Manifest {
                        digest: digest.clone(),
                        ..fetched
                    };
                    if !delivered.keep(&manifest) {
                        continue;
                    }
                    recovered += 1;
                    manifest
                }
            };
            if let Ok((described, media_types)) = describe_with_media_types(&manifest) {
                queue.extend(described.children.into_iter().zip(media_types));
            }
        }
    }
    recovered
}

/// What to tell the user of an image no delivery carries.
const NOT_DELIVERED: &str = "no delivery carries this image: add it to the configuration of the \
                             mirror-to-disk side, run it, and bring the new delivery";

/// Pins the configuration's images to what the deliveries recorded under
/// their names and reads their trees from `delivered` (and their
/// signatures', unless `remove_signatures`), with no network.
pub async fn resolve_from_deliveries(
    requests: &[Request],
    records: &[ImageRecord],
    media_types: &BTreeMap<Digest, String>,
    delivered: &DeliveredManifests,
    remove_signatures: bool,
) -> Resolution {
    let source = Deliveries::new(records, media_types, delivered, NOT_DELIVERED);
    crate::resolve::resolve_from(&source, requests, !remove_signatures, 1).await
}

/// Pins each built image to the digest the newest delivery recorded under
/// its name and reads its tree from `delivered`, like a copied image: on
/// this side every blob of it comes from the cache (the delivery brought
/// them), whatever its source was where it was built. Appends to
/// `resolution`; a built image no delivery carries is a failure.
pub async fn resolve_built_from_deliveries(
    built: &[BuiltImage],
    records: &[ImageRecord],
    media_types: &BTreeMap<Digest, String>,
    delivered: &DeliveredManifests,
    resolution: &mut Resolution,
) {
    let source = Deliveries::new(
        records,
        media_types,
        delivered,
        "no delivery carries this built image: run mirror-to-disk with the \
         configuration that builds it, and bring the new delivery",
    );
    for image in built {
        let found = match source.pin_name(&image.name) {
            Ok(pinned) => tree_of(&source, &pinned, &mut resolution.manifests)
                .await
                .map(|(tree, _)| (pinned, tree)),
            Err(message) => Err(message),
        };
        match found {
            Ok((pinned, tree)) => resolution.images.push(ResolvedImage {
                name: image.name.clone(),
                source: Source::Cache,
                blob_sources: Default::default(),
                destination_repository: image.destination_repository.clone(),
                destination_tag: Some(image.destination_tag.clone()),
                top: pinned.top,
                manifests: tree,
                category: image.category,
                signature_of: None,
            }),
            Err(message) => resolution.failures.push(Failure {
                name: image.name.clone(),
                message,
                category: image.category,
                held_back: false,
            }),
        }
    }
}
