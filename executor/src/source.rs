//! Where the resolver reads image content: one [`ContentSource`] trait and
//! its three implementations.
//!
//! - [`Registries`]: the source registries through registries.conf
//!   (mirrors in order, then the primary location), reusing the trees the
//!   workspace state recorded for a digest that did not move.
//! - [`RecordedState`]: what earlier runs recorded, with no network at all
//!   (`--trust-state`); an image the record does not hold in full is not
//!   answered, and the resolver asks the registries instead.
//! - [`Deliveries`]: the deliveries a disk folder holds and the cache they
//!   were imported into (disk-to-mirror), offline, images found by the name
//!   the delivery recorded them under.
//!
//! A source pins a request to a top digest, reads manifests of the tree
//! below it, finds its cosign signature, and puts a blob of the tree (a
//! config, a layer) into a blob store, verified, for the collectors that
//! read files out of layers (`crate::layer_files::SourceImage`). [`crate::resolve::resolve_from`]
//! walks the trees, builds the resolved images and the records, the same
//! way for every source.

use std::collections::{BTreeMap, BTreeSet, HashMap};
use std::sync::{Arc, Mutex};

use ferry_archive::ImageRecord;
use ferry_planner::{ResolvedManifest, Source};
use ferry_registry::{Manifest, RegistriesConf, RegistryClient};
use ferry_schemas::{Digest, ImageReference};
use ferry_store::{BlobStore, RecordedResolution};

use crate::disk::DeliveredManifests;
use crate::resolve::{Recorded, Request, signature_tag};

/// A request pinned to its top digest by a source.
#[derive(Clone, Debug)]
pub struct Pinned {
    /// Where the image's content is read (a registry repository, or the
    /// cache).
    pub source: Source,
    /// The top manifest's digest.
    pub top: Digest,
    /// The reference the source read it through (registries).
    pub reference: Option<ImageReference>,
    /// The top manifest, when pinning read it (a GET by tag).
    pub top_manifest: Option<Manifest>,
    /// The top manifest's media type, when known before reading it.
    pub media_type: String,
}

/// Where image content comes from while resolving.
#[allow(async_fn_in_trait)] // Used with concrete sources only (no `dyn`).
pub trait ContentSource {
    /// Pins `request` to its current top digest, or says why it cannot.
    async fn pin(&self, request: &Request) -> Result<Pinned, String>;

    /// Reads manifest `digest` of the tree below `pinned`; `media_type` is
    /// what the parent's descriptor says, when it says.
    async fn manifest(
        &self,
        pinned: &Pinned,
        digest: &Digest,
        media_type: &str,
    ) -> Result<Manifest, String>;

    /// The cosign signature (`sha256-<hex>.sig`) of a pinned image, when the
    /// source holds one.
    async fn signature(&self, request: &Request, pinned: &Pinned) -> Option<Pinned>;

    /// Puts blob `digest` of the tree below `pinned` (a config or a layer)
    /// into `into`, verified against its digest, unless `into` holds it
    /// already (then nothing is read).
    async fn blob(&self, pinned: &Pinned, digest: &Digest, into: &BlobStore) -> Result<(), String>;

    /// The whole tree below `top` when the source already knows it without
    /// reading anything (recorded earlier), its manifests added to
    /// `manifests`.
    fn known_tree(
        &self,
        _top: &Digest,
        _manifests: &mut BTreeMap<Digest, Manifest>,
    ) -> Option<Vec<ResolvedManifest>> {
        None
    }

    /// A manifest known without reading (recorded earlier).
    fn known_manifest(&self, _digest: &Digest) -> Option<Manifest> {
        None
    }

    /// What to record in the workspace state for a resolved request, when
    /// this source's answers are worth recording.
    fn record(
        &self,
        _request: &Request,
        _pinned: &Pinned,
        _signature: Option<Digest>,
    ) -> Option<RecordedResolution> {
        None
    }
}

/// The source registries, through registries.conf, with the record of
/// earlier runs reused where the digest did not move.
pub struct Registries<'a> {
    pub client: &'a RegistryClient,
    pub registries: &'a RegistriesConf,
    pub recorded: &'a Recorded,
    /// Whether signatures are looked for (recorded as checked).
    pub signatures: bool,
    tag_lists: TagLists,
}

impl<'a> Registries<'a> {
    pub fn new(
        client: &'a RegistryClient,
        registries: &'a RegistriesConf,
        recorded: &'a Recorded,
        signatures: bool,
        requests: &[Request],
    ) -> Self {
        Registries {
            client,
            registries,
            recorded,
            signatures,
            tag_lists: TagLists::new(requests),
        }
    }

    /// Finds where `origin` is read from and its current top digest: a HEAD
    /// per source in order, the first that answers wins. `None` digest
    /// when the registry sent none (the caller then reads the manifest).
    async fn head_top(
        &self,
        origin: &ImageReference,
    ) -> Result<(ImageReference, Option<Digest>), String> {
        let sources = self
            .registries
            .pull_sources(origin)
            .map_err(|error| error.to_string())?;
        let mut errors = Vec::new();
        for source in sources {
            match self.client.head_manifest(&source.reference).await {
                Ok(Some(head)) => return Ok((source.reference, head.digest)),
                Ok(None) => errors.push(format!("{}: manifest unknown", source.reference)),
                Err(error) => errors.push(error.to_string()),
            }
        }
        Err(errors.join("; "))
    }

    /// Reads `origin`'s top manifest from the first source that has it.
    async fn read_top(
        &self,
        origin: &ImageReference,
    ) -> Result<(ImageReference, Manifest), String> {
        let sources = self
            .registries
            .pull_sources(origin)
            .map_err(|error| error.to_string())?;
        let mut errors = Vec::new();
        for source in sources {
            match self.client.get_manifest(&source.reference).await {
                Ok(manifest) => return Ok((source.reference, manifest)),
                Err(error) => errors.push(error.to_string()),
            }
        }
        Err(errors.join("; "))
    }
}

/// A pinned image read from registry reference `reference`.
pub(crate) fn registry_pinned(
    reference: ImageReference,
    top: Digest,
    top_manifest: Option<Manifest>,
) -> Pinned {
    Pinned {
        source: Source::Registry(repository_of(&reference)),
        top,
        reference: Some(reference),
        top_manifest,
        media_type: String::new(),
    }
}

impl ContentSource for Registries<'_> {
    async fn pin(&self, request: &Request) -> Result<Pinned, String> {
        let record = self.recorded.images.get(&request.name);
        match (request.origin.digest(), record) {
            // Pinned and recorded: the digest cannot have moved.
            (Some(digest), Some(record)) if self.recorded.tree(digest).is_some() => {
                let reference = format!("{}@{digest}", record.source)
                    .parse::<ImageReference>()
                    .map_err(|_| {
                        format!("the recorded source {} is not a reference", record.source)
                    })?;
                Ok(registry_pinned(reference, digest.clone(), None))
            }
            // A tag never resolved before: its manifest is needed anyway,
            // so one GET by tag gives the digest and the top manifest
            // together (a HEAD first would only add a request).
            (None, None) => {
                let (reference, top) = self.read_top(&request.origin).await?;
                Ok(registry_pinned(reference, top.digest.clone(), Some(top)))
            }
            // One HEAD finds the digest; its tree comes from the record when
            // recorded, else is read by digest.
            _ => match self.head_top(&request.origin).await {
                Ok((reference, Some(digest))) => Ok(registry_pinned(reference, digest, None)),
                Ok((_, None)) | Err(_) => {
                    let (reference, top) = self.read_top(&request.origin).await?;
                    Ok(registry_pinned(reference, top.digest.clone(), Some(top)))
                }
            },
        }
    }

    async fn manifest(
        &self,
        pinned: &Pinned,
        digest: &Digest,
        _media_type: &str,
    ) -> Result<Manifest, String> {
        let Some(reference) = &pinned.reference else {
            return Err(format!(
                "manifest {digest}: no registry reference to read it from"
            ));
        };
        self.client
            .get_manifest(&reference.with_digest(digest.clone()))
            .await
            .map_err(|error| error.to_string())
    }

    async fn signature(&self, request: &Request, pinned: &Pinned) -> Option<Pinned> {
        let source = pinned.reference.as_ref()?;
        let tag = signature_tag(&pinned.top);
        let reference = format!("{}:{tag}", repository_of(source))
            .parse::<ImageReference>()
            .ok()?;
        if !self
            .tag_lists
            .may_have(self.client, &request.origin, source, &tag)
            .await
        {
            return None;
        }
        let head = self.client.head_manifest(&reference).await.ok()??;
        match head.digest {
            Some(digest) => Some(registry_pinned(reference, digest, None)),
            None => {
                let top = self.client.get_manifest(&reference).await.ok()?;
                Some(registry_pinned(reference, top.digest.clone(), Some(top)))
            }
        }
    }

    async fn blob(&self, pinned: &Pinned, digest: &Digest, into: &BlobStore) -> Result<(), String> {
        if into.contains(digest) {
            return Ok(());
        }
        let Some(reference) = &pinned.reference else {
            return Err(format!(
                "blob {digest}: no registry reference to read it from"
            ));
        };
        self.client
            .fetch_blob(
                reference.registry(),
                reference.repository(),
                digest,
                None,
                into,
            )
            .await
            .map(drop)
            .map_err(|error| error.to_string())
    }

    fn known_tree(
        &self,
        top: &Digest,
        manifests: &mut BTreeMap<Digest, Manifest>,
    ) -> Option<Vec<ResolvedManifest>> {
        self.recorded.known_tree(top, manifests)
    }

    fn known_manifest(&self, digest: &Digest) -> Option<Manifest> {
        self.recorded.manifests.get(digest).cloned()
    }

    fn record(
        &self,
        request: &Request,
        pinned: &Pinned,
        signature: Option<Digest>,
    ) -> Option<RecordedResolution> {
        let Source::Registry(source) = &pinned.source else {
            return None;
        };
        let record = RecordedResolution {
            name: request.name.clone(),
            source: source.clone(),
            top: pinned.top.clone(),
            signature,
            signature_checked: self.signatures,
        };
        (self.recorded.images.get(&request.name) != Some(&record)).then_some(record)
    }
}

/// What earlier runs recorded, answered with no network. A request is
/// answered only when the record holds all of it: its tree, and (when
/// signatures are wanted) whether it has a signature and that tree too.
pub struct RecordedState<'a> {
    pub recorded: &'a Recorded,
    /// Whether signatures are wanted.
    pub signatures: bool,
}

impl ContentSource for RecordedState<'_> {
    async fn pin(&self, request: &Request) -> Result<Pinned, String> {
        let record = self
            .recorded
            .images
            .get(&request.name)
            .ok_or_else(|| format!("{} was never resolved", request.name))?;
        if self.signatures && !record.signature_checked {
            return Err(format!(
                "{}: its signature was never looked for",
                request.name
            ));
        }
        // All of it or nothing: a tree missing from the record sends the
        // request to the registries rather than losing its signature.
        let signature_recorded = !self.signatures
            || record
                .signature
                .as_ref()
                .is_none_or(|signature| self.recorded.has_tree(signature));
        if !self.recorded.has_tree(&record.top) || !signature_recorded {
            return Err(format!(
                "{}: the record lacks part of its tree",
                request.name
            ));
        }
        Ok(Pinned {
            source: Source::Registry(record.source.clone()),
            top: record.top.clone(),
            reference: None,
            top_manifest: None,
            media_type: String::new(),
        })
    }

    async fn manifest(
        &self,
        _pinned: &Pinned,
        digest: &Digest,
        _media_type: &str,
    ) -> Result<Manifest, String> {
        self.recorded
            .manifests
            .get(digest)
            .cloned()
            .ok_or_else(|| format!("manifest {digest} was not recorded"))
    }

    async fn signature(&self, request: &Request, pinned: &Pinned) -> Option<Pinned> {
        let record = self.recorded.images.get(&request.name)?;
        Some(Pinned {
            top: record.signature.clone()?,
            ..pinned.clone()
        })
    }

    /// The record holds manifests, not blobs: only a blob `into` already
    /// holds is answered.
    async fn blob(
        &self,
        _pinned: &Pinned,
        digest: &Digest,
        into: &BlobStore,
    ) -> Result<(), String> {
        if into.contains(digest) {
            Ok(())
        } else {
            Err(format!(
                "blob {digest} is not in {} and the recorded state reads no registry",
                into.root().display()
            ))
        }
    }

    fn known_tree(
        &self,
        top: &Digest,
        manifests: &mut BTreeMap<Digest, Manifest>,
    ) -> Option<Vec<ResolvedManifest>> {
        self.recorded.known_tree(top, manifests)
    }
}

/// The deliveries of a disk folder and the cache they were imported into:
/// images by the name the deliveries recorded, every manifest read from
/// there, nothing asked over the network.
pub struct Deliveries<'a> {
    by_name: BTreeMap<&'a str, &'a ImageRecord>,
    /// Media types of the manifests the deliveries carried.
    media_types: &'a BTreeMap<Digest, String>,
    delivered: &'a DeliveredManifests,
    /// What to say of a request no delivery carries.
    missing: &'static str,
}

impl<'a> Deliveries<'a> {
    /// `missing`: what to tell the user when no delivery carries an image.
    pub fn new(
        records: &'a [ImageRecord],
        media_types: &'a BTreeMap<Digest, String>,
        delivered: &'a DeliveredManifests,
        missing: &'static str,
    ) -> Self {
        Deliveries {
            by_name: records
                .iter()
                .map(|record| (record.name.as_str(), record))
                .collect(),
            media_types,
            delivered,
            missing,
        }
    }

    /// Pins the image the deliveries recorded under `name`.
    pub fn pin_name(&self, name: &str) -> Result<Pinned, String> {
        self.by_name
            .get(name)
            .map(|record| Deliveries::pinned(record))
            .ok_or_else(|| self.missing.to_owned())
    }

    fn pinned(record: &ImageRecord) -> Pinned {
        Pinned {
            source: Source::Cache,
            top: record.digest.clone(),
            reference: None,
            top_manifest: None,
            media_type: record.media_type.clone(),
        }
    }
}

impl ContentSource for Deliveries<'_> {
    async fn pin(&self, request: &Request) -> Result<Pinned, String> {
        self.pin_name(&request.name)
    }

    async fn manifest(
        &self,
        _pinned: &Pinned,
        digest: &Digest,
        media_type: &str,
    ) -> Result<Manifest, String> {
        let media_type = if media_type.is_empty() {
            self.media_types.get(digest).map_or("", String::as_str)
        } else {
            media_type
        };
        self.delivered.read(digest, media_type)
    }

    async fn signature(&self, request: &Request, pinned: &Pinned) -> Option<Pinned> {
        let name = format!("{}:{}", request.origin.name(), signature_tag(&pinned.top));
        self.by_name
            .get(name.as_str())
            .map(|record| Deliveries::pinned(record))
    }

    /// From the cache the deliveries were imported into (copied, verified,
    /// when `into` is another store).
    async fn blob(
        &self,
        _pinned: &Pinned,
        digest: &Digest,
        into: &BlobStore,
    ) -> Result<(), String> {
        if into.contains(digest) {
            return Ok(());
        }
        let cache = self.delivered.blobs();
        let file = cache.open_blob(digest).map_err(|_| {
            format!(
                "blob {digest} is not in the cache {} the deliveries were imported into",
                cache.root().display()
            )
        })?;
        into.write(digest, cache.size(digest), file)
            .map(drop)
            .map_err(|error| error.to_string())
    }
}

/// `registry/repository` of a reference.
pub(crate) fn repository_of(reference: &ImageReference) -> String {
    format!("{}/{}", reference.registry(), reference.repository())
}

/// A repository's tags once listed (`None`: not listable), shared by
/// whoever waits for the listing.
type TagListing = Arc<tokio::sync::OnceCell<Option<BTreeSet<String>>>>;

/// Tag lists of source repositories, each listed at most once per run and
/// shared by the images resolving concurrently from it: signature tags are
/// looked up through the list when several requested images share a
/// repository (one listing instead of one HEAD per image, most of which
/// find nothing); a repository whose tags cannot be listed falls back to
/// one HEAD per image.
#[derive(Default)]
struct TagLists {
    /// `registry/repository` (as the configuration names it) → requests.
    requested: HashMap<String, usize>,
    /// `registry/repository` read from → its tags (`None`: not listable).
    listed: Mutex<HashMap<String, TagListing>>,
}

/// Fewer requested images per repository than this: one HEAD each for the
/// signature tag (a list can be long, and costs as much as a HEAD).
const LIST_TAGS_FROM: usize = 2;

impl TagLists {
    fn new(requests: &[Request]) -> Self {
        let mut requested: HashMap<String, usize> = HashMap::new();
        for request in requests {
            *requested.entry(repository_of(&request.origin)).or_default() += 1;
        }
        TagLists {
            requested,
            listed: Mutex::default(),
        }
    }

    /// Whether `tag` may exist in `source` (read from for `origin`):
    /// false only when the repository's tag list was read and lacks it.
    async fn may_have(
        &self,
        client: &RegistryClient,
        origin: &ImageReference,
        source: &ImageReference,
        tag: &str,
    ) -> bool {
        let wanted = self
            .requested
            .get(&repository_of(origin))
            .copied()
            .unwrap_or(0);
        if wanted < LIST_TAGS_FROM {
            return true;
        }
        let cell = self
            .listed
            .lock()
            .unwrap_or_else(std::sync::PoisonError::into_inner)
            .entry(repository_of(source))
            .or_default()
            .clone();
        let tags = cell
            .get_or_init(|| async {
                match client
                    .list_tags(source.registry(), source.repository())
                    .await
                {
                    Ok(Some(tags)) => Some(tags.into_iter().collect()),
                    Ok(None) | Err(_) => None,
                }
            })
            .await;
        tags.as_ref().is_none_or(|tags| tags.contains(tag))
    }
}
