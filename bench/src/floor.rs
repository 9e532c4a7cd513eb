//! The floor of a registry-to-registry copy: the least work the two
//! registries must do to hold the same image set, measured on the same
//! data in the same run as the tools it bounds.
//!
//! The floor knows the whole set in advance (the generator's manifests), so
//! it asks nothing: every distinct blob is read once from the source and
//! written once into the first destination repository that needs it, every
//! other repository gets a cross-repository mount, and every manifest is
//! PUT by its tag: no HEAD, no tag list, no manifest GET, no state. Blobs
//! go largest first, 16 at a time, each upload followed by its mounts;
//! manifests follow once every blob is there (a registry refuses a
//! manifest whose blobs it lacks), 16 at a time.
//!
//! It copies with ferry's registry client (streaming, digest-checked) told
//! never to ask before an upload, so the floor is the registries' work plus
//! the thinnest client ferry has, not a different HTTP stack's speed.
//!
//! [`noop`] is the floor of a no-op that checks both registries (what a
//! default `ferry plan` must ask): one HEAD per tag at the source (has the
//! tag moved?) and one HEAD per top manifest at the destination (is it
//! still there?), 16 at a time, with the same client, nothing else.

use std::collections::{BTreeMap, BTreeSet};
use std::sync::Arc;
use std::time::{Duration, Instant};

use ferry_registry::{ClientOptions, CredentialStore, Manifest, RegistryClient};
use ferry_schemas::{Digest, ImageReference};
use ferry_testworld::error::{Context, Error, Result};
use tokio::sync::Semaphore;
use tokio::task::JoinSet;

use crate::image_sets::ImageSet;

/// Requests in flight at once.
pub const IN_FLIGHT: usize = 16;

/// What the floor did and how long it took.
#[derive(Clone, Debug)]
pub struct Floor {
    pub elapsed: Duration,
    pub uploads: usize,
    pub mounts: usize,
    pub manifests: usize,
}

/// One blob to upload: read from `source_repository`, written into
/// `first` (the first destination repository, in name order, that needs
/// it); mounted from there into `others`.
struct BlobWork {
    digest: Digest,
    size: u64,
    source_repository: String,
    first: String,
    others: Vec<String>,
}

/// The blobs of an image manifest (config and layers), from its JSON.
pub fn manifest_blobs(bytes: &[u8]) -> Result<Vec<(Digest, u64)>> {
    let value: serde_json::Value =
        serde_json::from_slice(bytes).context(|| "a set manifest is not JSON".to_owned())?;
    if value.get("manifests").is_some() {
        return Err(Error::new(
            "the floor copies image manifests only; this set holds an index",
        ));
    }
    let mut descriptors = vec![value["config"].clone()];
    descriptors.extend(value["layers"].as_array().cloned().unwrap_or_default());
    descriptors
        .iter()
        .map(|descriptor| {
            let digest = descriptor["digest"]
                .as_str()
                .ok_or_else(|| Error::new("a descriptor without a digest"))?
                .parse()
                .context(|| "a descriptor with a bad digest".to_owned())?;
            let size = descriptor["size"]
                .as_u64()
                .ok_or_else(|| Error::new("a descriptor without a size"))?;
            Ok((digest, size))
        })
        .collect()
}

/// Copies `set` from the plain-HTTP registry at `source` (repositories as
/// published: `quay.io/<repository>`) to the empty plain-HTTP registry at
/// `destination` (repositories `<repository>`), and times it.
pub fn measure(set: &ImageSet, source: &str, destination: &str) -> Result<Floor> {
    // Which destination repositories need each blob, and a source
    // repository that holds it.
    let mut needs: BTreeMap<Digest, (u64, String, BTreeSet<String>)> = BTreeMap::new();
    let mut manifests = Vec::new();
    for image in &set.images {
        let manifest = set
            .content
            .manifests
            .get(&image.digest)
            .ok_or_else(|| Error::new(format!("the set lacks manifest {}", image.digest)))?;
        for (digest, size) in manifest_blobs(&manifest.bytes)? {
            needs
                .entry(digest)
                .or_insert_with(|| (size, image.source_repository(), BTreeSet::new()))
                .2
                .insert(image.repository.clone());
        }
        let reference: ImageReference = format!("{destination}/{}:{}", image.repository, image.tag)
            .parse()
            .context(|| format!("{destination}/{}:{}", image.repository, image.tag))?;
        manifests.push((
            reference,
            Manifest {
                media_type: manifest.media_type.clone(),
                digest: image
                    .digest
                    .parse()
                    .context(|| format!("digest {}", image.digest))?,
                bytes: manifest.bytes.clone().into(),
            },
        ));
    }
    let mut blobs: Vec<BlobWork> = needs
        .into_iter()
        .filter_map(|(digest, (size, source_repository, repositories))| {
            let mut repositories = repositories.into_iter();
            let first = repositories.next()?;
            Some(BlobWork {
                digest,
                size,
                source_repository,
                first,
                others: repositories.collect(),
            })
        })
        .collect();
    blobs.sort_by(|one, other| {
        other
            .size
            .cmp(&one.size)
            .then(one.digest.cmp(&other.digest))
    });
    let client = plain_client(source, destination);
    let runtime = runtime()?;
    let uploads = blobs.len();
    let mounts = blobs.iter().map(|blob| blob.others.len()).sum();
    let manifest_count = manifests.len();
    let started = Instant::now();
    runtime.block_on(async {
        let blobs: Vec<Arc<BlobWork>> = blobs.into_iter().map(Arc::new).collect();
        // Every distinct blob read once and written once, largest first
        // (the order that ends soonest when a few large blobs dominate),
        // each followed by its mounts into the other repositories that
        // need it.
        bounded(blobs.iter().map(|blob| {
            let (client, blob) = (client.clone(), Arc::clone(blob));
            let (source, destination) = (source.to_owned(), destination.to_owned());
            async move {
                client
                    .copy_blob(
                        &source,
                        &blob.source_repository,
                        &destination,
                        &blob.first,
                        &blob.digest,
                        blob.size,
                        None,
                    )
                    .await
                    .map_err(|error| Error::new(format!("floor upload: {error}")))?;
                for repository in &blob.others {
                    client
                        .copy_blob(
                            &source,
                            &blob.source_repository,
                            &destination,
                            repository,
                            &blob.digest,
                            blob.size,
                            Some(&blob.first),
                        )
                        .await
                        .map_err(|error| Error::new(format!("floor mount: {error}")))?;
                }
                Ok(())
            }
        }))
        .await?;
        // Then every manifest PUT by its tag.
        bounded(manifests.into_iter().map(|(reference, manifest)| {
            let client = client.clone();
            async move {
                client
                    .put_manifest(&reference, &manifest)
                    .await
                    .map_err(|error| Error::new(format!("floor manifest: {error}")))
            }
        }))
        .await
    })?;
    Ok(Floor {
        elapsed: started.elapsed(),
        uploads,
        mounts,
        manifests: manifest_count,
    })
}

/// What the no-op floor asked and how long it took.
#[derive(Clone, Debug)]
pub struct NoopFloor {
    pub elapsed: Duration,
    /// HEADs of tags at the source.
    pub source_heads: usize,
    /// HEADs of top manifests at the destination.
    pub destination_heads: usize,
}

/// The floor of a no-op over `set` already copied from `source`
/// (repositories `quay.io/<repository>`) to `destination` (repositories
/// `<repository>`): each tag HEAD at the source and each manifest HEAD by
/// digest at the destination, interleaved, [`IN_FLIGHT`] at a time. Fails
/// when a tag does not name its image's digest or a manifest is missing:
/// then the set was not a no-op.
pub fn noop(set: &ImageSet, source: &str, destination: &str) -> Result<NoopFloor> {
    let mut heads: Vec<(ImageReference, Digest)> = Vec::with_capacity(set.images.len() * 2);
    for image in &set.images {
        let digest: Digest = image
            .digest
            .parse()
            .context(|| format!("digest {}", image.digest))?;
        for text in [
            format!("{source}/{}:{}", image.source_repository(), image.tag),
            format!("{destination}/{}@{}", image.repository, image.digest),
        ] {
            let reference = text.parse().context(|| text.clone())?;
            heads.push((reference, digest.clone()));
        }
    }
    let client = plain_client(source, destination);
    let runtime = runtime()?;
    let count = set.images.len();
    let started = Instant::now();
    runtime.block_on(bounded(heads.into_iter().map(|(reference, digest)| {
        let client = client.clone();
        async move {
            let head = client
                .head_manifest(&reference)
                .await
                .map_err(|error| Error::new(format!("floor HEAD {reference}: {error}")))?;
            match head {
                Some(head) if head.digest.as_ref().is_none_or(|found| *found == digest) => Ok(()),
                Some(_) => Err(Error::new(format!(
                    "floor HEAD {reference}: the registry names another digest than {digest}"
                ))),
                None => Err(Error::new(format!("floor HEAD {reference}: not found"))),
            }
        }
    })))?;
    Ok(NoopFloor {
        elapsed: started.elapsed(),
        source_heads: count,
        destination_heads: count,
    })
}

/// ferry's registry client over plain HTTP to both registries, never
/// asking before an upload, [`IN_FLIGHT`] transfers per registry.
fn plain_client(source: &str, destination: &str) -> RegistryClient {
    RegistryClient::new(ClientOptions {
        credentials: CredentialStore::from_files(Vec::new()),
        certificate_folders: Vec::new(),
        insecure_hosts: vec![source.to_owned(), destination.to_owned()],
        ask_before_upload_from: u64::MAX,
        transfers_per_registry: IN_FLIGHT,
        ..ClientOptions::default()
    })
}

/// The runtime the floors run on: 2 workers, as ferry's.
fn runtime() -> Result<tokio::runtime::Runtime> {
    tokio::runtime::Builder::new_multi_thread()
        .worker_threads(2)
        .enable_all()
        .build()
        .context(|| "starting the async runtime".to_owned())
}

/// Runs `tasks` at most [`IN_FLIGHT`] at a time; the first error wins.
async fn bounded<F>(tasks: impl Iterator<Item = F>) -> Result<()>
where
    F: std::future::Future<Output = Result<()>> + Send + 'static,
{
    let permits = Arc::new(Semaphore::new(IN_FLIGHT));
    let mut running = JoinSet::new();
    for task in tasks {
        let permit = Arc::clone(&permits)
            .acquire_owned()
            .await
            .map_err(|_| Error::new("the floor's semaphore closed"))?;
        running.spawn(async move {
            let result = task.await;
            drop(permit);
            result
        });
    }
    while let Some(joined) = running.join_next().await {
        joined.map_err(|error| Error::new(format!("a floor task failed: {error}")))??;
    }
    Ok(())
}
