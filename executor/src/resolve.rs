//! Resolving (the refresh step): the configuration's additional images
//! pinned to digests, their whole manifest trees read, blocked images
//! dropped, cosign signature tags added unless `--remove-signatures`.
//!
//! Sources go through `registries.conf` (mirrors in order, then the primary
//! location), as containers/image does. Manifests are kept with their exact
//! bytes, so the executor pushes what was read.
//!
//! An image never resolved before is read with one GET by tag (digest and
//! top manifest at once). What was resolved before ([`Recorded`], from the
//! workspace state) makes a rerun cheap: by default one HEAD per tag (the image's and its
//! signature's) finds the current digest, and a tree already recorded for
//! that digest is reused instead of read again (manifests are content
//! addressed); a digest-pinned image needs no request at all. With
//! `trust_state`, an image resolved before is taken from the record with
//! no network at all. Images run concurrently (bounded by
//! [`ResolveOptions::concurrency`]), results in request order.
//!
//! Signature tags are looked up through the source repository's tag list
//! when several requested images share that repository ([`TagLists`]: one
//! listing instead of one HEAD per image, most of which find nothing); a
//! signature tag the list names is then read as before, and a repository
//! whose tags cannot be listed falls back to one HEAD per image.

use std::collections::{BTreeMap, BTreeSet, HashMap};
use std::sync::{Arc, Mutex};

use ferry_planner::{ResolvedImage, ResolvedManifest, Source};
use ferry_registry::{Manifest, RegistriesConf, RegistryClient};
use ferry_schemas::config::Mirror;
use ferry_schemas::{Digest, ImageReference};
use ferry_store::{RecordedManifest, RecordedResolution, WorkspaceState};
use futures_util::StreamExt as _;

/// What the configuration asks for, before resolving: an image of the
/// collect stage's image set.
pub use crate::workflow::CollectedImage as Request;

/// An image that could not be resolved.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Failure {
    pub name: String,
    pub message: String,
    /// The category of the image that failed.
    pub category: ferry_planner::Category,
}

/// Everything resolving produced.
#[derive(Clone, Debug, Default)]
pub struct Resolution {
    pub images: Vec<ResolvedImage>,
    /// Every manifest read, by digest, with its exact bytes.
    pub manifests: BTreeMap<Digest, Manifest>,
    pub failures: Vec<Failure>,
    /// Images left out by `blockedImages`.
    pub blocked: Vec<String>,
    /// `registry/repository:tag` the workspace state records at the
    /// destination that the image set no longer holds (filled when a plan
    /// to a registry is made; ferry leaves them there: see delete).
    pub removed: Vec<String>,
    /// What to record in the state: each resolved request (new or changed
    /// only).
    pub records: Vec<RecordedResolution>,
    /// Requests answered from the record without reading a tree again.
    pub reused: usize,
    /// Images that need others at the destination first, by name
    /// (`crate::workflow::needs`; set by the workflows from the image set).
    pub needs: BTreeMap<String, BTreeSet<String>>,
}

/// Options of resolving.
#[derive(Clone, Debug, Default)]
pub struct ResolveOptions {
    /// Repository prefix at the destination.
    pub prefix: String,
    pub max_nested_paths: usize,
    pub remove_signatures: bool,
    /// Use recorded resolutions without asking the sources.
    pub trust_state: bool,
    /// Images resolved at once (0: 32).
    pub concurrency: usize,
}

/// What the workspace state recorded of earlier resolutions, for the
/// requests at hand.
#[derive(Clone, Debug, Default)]
pub struct Recorded {
    pub images: BTreeMap<String, RecordedResolution>,
    /// Recorded manifests of the recorded trees, by digest.
    pub manifests: BTreeMap<Digest, Manifest>,
    /// What each manifest of `manifests` names (those that parse), read
    /// once at load rather than parsed again for every tree walk.
    described: BTreeMap<Digest, ResolvedManifest>,
}

impl Recorded {
    /// Loads the records of `requests` (and their signatures) with the
    /// manifests of their trees.
    pub fn load(state: &WorkspaceState, requests: &[Request]) -> ferry_store::Result<Recorded> {
        let mut all = state.resolutions()?;
        let mut recorded = Recorded::default();
        for request in requests {
            let Some(image) = all.remove(&request.name) else {
                continue;
            };
            let mut queue: Vec<Digest> = vec![image.top.clone()];
            queue.extend(image.signature.iter().cloned());
            while let Some(digest) = queue.pop() {
                if recorded.manifests.contains_key(&digest) {
                    continue;
                }
                let Some(manifest) = state.manifest(&digest)? else {
                    continue;
                };
                let manifest = Manifest {
                    digest: manifest.digest,
                    media_type: manifest.media_type,
                    bytes: manifest.content.into(),
                };
                if let Ok(described) = describe(&manifest) {
                    queue.extend(described.children.iter().cloned());
                    recorded.described.insert(digest.clone(), described);
                }
                recorded.manifests.insert(digest, manifest);
            }
            recorded.images.insert(request.name.clone(), image);
        }
        Ok(recorded)
    }

    /// The tree below `top`, when every manifest of it is recorded.
    fn tree(&self, top: &Digest) -> Option<Vec<ResolvedManifest>> {
        let mut tree = Vec::new();
        let mut queue = vec![top.clone()];
        while let Some(digest) = queue.pop() {
            let described = self.described.get(&digest)?;
            queue.extend(described.children.iter().cloned());
            tree.push(described.clone());
        }
        Some(tree)
    }

    /// The manifests of the tree below `top` (all recorded).
    fn tree_manifests(&self, top: &Digest, into: &mut BTreeMap<Digest, Manifest>) {
        let mut queue = vec![top.clone()];
        while let Some(digest) = queue.pop() {
            let Some(manifest) = self.manifests.get(&digest) else {
                continue;
            };
            if let Some(described) = self.described.get(&digest) {
                queue.extend(described.children.iter().cloned());
            }
            into.insert(digest, manifest.clone());
        }
    }
}

/// Manifests to record: those read over the network this time.
pub fn manifests_to_record(resolution: &Resolution, recorded: &Recorded) -> Vec<RecordedManifest> {
    resolution
        .manifests
        .values()
        .filter(|manifest| !recorded.manifests.contains_key(&manifest.digest))
        .map(|manifest| RecordedManifest {
            digest: manifest.digest.clone(),
            media_type: manifest.media_type.clone(),
            content: manifest.bytes.to_vec(),
        })
        .collect()
}

/// The additional images of `mirror`, as requests with their destinations,
/// and the names `blockedImages` left out (the additional-images collector).
pub fn additional_image_requests(
    mirror: &Mirror,
    options: &ResolveOptions,
) -> (Vec<Request>, Vec<String>) {
    let context = crate::workflow::CollectContext {
        prefix: options.prefix.clone(),
        max_nested_paths: options.max_nested_paths,
        ..Default::default()
    };
    let mut set = crate::workflow::ImageSet::default();
    crate::workflow::collect::AdditionalImages::collect_from(mirror, &context, &mut set);
    (set.images, set.blocked)
}

/// What a manifest names: child manifests, or config and layers.
pub fn describe(manifest: &Manifest) -> Result<ResolvedManifest, String> {
    let value: serde_json::Value = serde_json::from_slice(&manifest.bytes)
        .map_err(|error| format!("manifest {} is not JSON: {error}", manifest.digest))?;
    let descriptor = |item: &serde_json::Value| -> Result<(Digest, u64), String> {
        let digest = item["digest"]
            .as_str()
            .and_then(|text| text.parse().ok())
            .ok_or_else(|| {
                format!(
                    "manifest {} has a descriptor without a valid digest",
                    manifest.digest
                )
            })?;
        let size = item["size"].as_u64().ok_or_else(|| {
            format!(
                "manifest {} has a descriptor without a size",
                manifest.digest
            )
        })?;
        Ok((digest, size))
    };
    let mut children = Vec::new();
    let mut blobs = Vec::new();
    if let Some(entries) = value["manifests"].as_array() {
        for entry in entries {
            children.push(descriptor(entry)?.0);
        }
    } else {
        if !value["config"].is_null() {
            blobs.push(descriptor(&value["config"])?);
        }
        for layer in value["layers"].as_array().into_iter().flatten() {
            blobs.push(descriptor(layer)?);
        }
    }
    Ok(ResolvedManifest {
        digest: manifest.digest.clone(),
        media_type: manifest.media_type.clone(),
        size: manifest.bytes.len() as u64,
        children,
        blobs,
    })
}

/// Finds where `origin` is read from and its current top digest: a HEAD
/// per source in order, the first that answers wins. `None` digest when
/// the registry sent none (the caller then reads the manifest).
async fn head_top(
    client: &RegistryClient,
    registries: &RegistriesConf,
    origin: &ImageReference,
) -> Result<(ImageReference, Option<Digest>), String> {
    let sources = registries
        .pull_sources(origin)
        .map_err(|error| error.to_string())?;
    let mut errors = Vec::new();
    for source in sources {
        match client.head_manifest(&source.reference).await {
            Ok(Some(head)) => return Ok((source.reference, head.digest)),
            Ok(None) => errors.push(format!("{}: manifest unknown", source.reference)),
            Err(error) => errors.push(error.to_string()),
        }
    }
    Err(errors.join("; "))
}

/// Reads `reference`'s top manifest from the first source that has it.
async fn read_top(
    client: &RegistryClient,
    registries: &RegistriesConf,
    origin: &ImageReference,
) -> Result<(ImageReference, Manifest), String> {
    let sources = registries
        .pull_sources(origin)
        .map_err(|error| error.to_string())?;
    let mut errors = Vec::new();
    for source in sources {
        match client.get_manifest(&source.reference).await {
            Ok(manifest) => return Ok((source.reference, manifest)),
            Err(error) => errors.push(error.to_string()),
        }
    }
    Err(errors.join("; "))
}

/// Reads a whole tree below a top manifest; children already known
/// (recorded, or read earlier) are not read again.
async fn read_tree(
    client: &RegistryClient,
    source: &ImageReference,
    top: Manifest,
    known: &BTreeMap<Digest, Manifest>,
    manifests: &mut BTreeMap<Digest, Manifest>,
) -> Result<Vec<ResolvedManifest>, String> {
    let mut tree = Vec::new();
    let mut queue = vec![top];
    while let Some(manifest) = queue.pop() {
        let resolved = describe(&manifest)?;
        for child in &resolved.children {
            let child_manifest = match manifests.get(child).or_else(|| known.get(child)) {
                Some(found) => found.clone(),
                None => client
                    .get_manifest(&source.with_digest(child.clone()))
                    .await
                    .map_err(|error| error.to_string())?,
            };
            queue.push(child_manifest);
        }
        manifests.insert(manifest.digest.clone(), manifest);
        tree.push(resolved);
    }
    Ok(tree)
}

/// The tree below `top`: from the record when every manifest of it is
/// recorded, else read from `source`.
async fn tree_of(
    client: &RegistryClient,
    source: &ImageReference,
    top: &Digest,
    recorded: &Recorded,
    manifests: &mut BTreeMap<Digest, Manifest>,
) -> Result<(Vec<ResolvedManifest>, bool), String> {
    if let Some(tree) = recorded.tree(top) {
        recorded.tree_manifests(top, manifests);
        return Ok((tree, true));
    }
    let manifest = client
        .get_manifest(&source.with_digest(top.clone()))
        .await
        .map_err(|error| error.to_string())?;
    let tree = read_tree(client, source, manifest, &recorded.manifests, manifests).await?;
    Ok((tree, false))
}

/// A repository's tags once listed (`None`: not listable), shared by
/// whoever waits for the listing.
type TagListing = Arc<tokio::sync::OnceCell<Option<BTreeSet<String>>>>;

/// Tag lists of source repositories, each listed at most once per run and
/// shared by the images resolving concurrently from it.
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
            *requested
                .entry(origin_repository(&request.origin))
                .or_default() += 1;
        }
        TagLists {
            requested,
            listed: Mutex::default(),
        }
    }

    /// Whether `tag` may exist in `source_name` (read from for `origin`):
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
            .get(&origin_repository(origin))
            .copied()
            .unwrap_or(0);
        if wanted < LIST_TAGS_FROM {
            return true;
        }
        let source_name = origin_repository(source);
        let cell = self
            .listed
            .lock()
            .unwrap_or_else(std::sync::PoisonError::into_inner)
            .entry(source_name)
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

/// `registry/repository` of a reference.
fn origin_repository(reference: &ImageReference) -> String {
    format!("{}/{}", reference.registry(), reference.repository())
}

/// What resolving one request produced.
#[derive(Default)]
struct Resolved {
    images: Vec<ResolvedImage>,
    manifests: BTreeMap<Digest, Manifest>,
    failure: Option<Failure>,
    record: Option<RecordedResolution>,
    reused: bool,
}

fn source_reference(source: &str, digest: &Digest) -> Option<ImageReference> {
    format!("{source}@{digest}").parse().ok()
}

/// The image (and its signature) from the record alone, when the record
/// has everything `options` asks for.
fn from_record(
    request: &Request,
    recorded: &Recorded,
    options: &ResolveOptions,
) -> Option<Resolved> {
    let record = recorded.images.get(&request.name)?;
    if !options.remove_signatures && !record.signature_checked {
        return None;
    }
    let mut resolved = Resolved {
        reused: true,
        ..Resolved::default()
    };
    resolved.images.push(ResolvedImage {
        name: request.name.clone(),
        source: Source::Registry(record.source.clone()),
        blob_sources: Default::default(),
        destination_repository: request.destination_repository.clone(),
        destination_tag: Some(request.destination_tag.clone()),
        top: record.top.clone(),
        manifests: recorded.tree(&record.top)?,
        category: request.category,
    });
    recorded.tree_manifests(&record.top, &mut resolved.manifests);
    if !options.remove_signatures
        && let Some(signature) = &record.signature
    {
        let tag = signature_tag(&record.top);
        resolved.images.push(ResolvedImage {
            name: format!("{}:{tag}", request.origin.name()),
            source: Source::Registry(record.source.clone()),
            blob_sources: Default::default(),
            destination_repository: request.destination_repository.clone(),
            destination_tag: Some(tag),
            top: signature.clone(),
            manifests: recorded.tree(signature)?,
            category: request.category,
        });
        recorded.tree_manifests(signature, &mut resolved.manifests);
    }
    Some(resolved)
}

/// cosign's signature tag of an image: `sha256-<hex>.sig`.
fn signature_tag(top: &Digest) -> String {
    format!("{}-{}.sig", top.algorithm().name(), top.hex())
}

/// Resolves one request (see the module comment for what it asks whom).
async fn resolve_one(
    client: &RegistryClient,
    registries: &RegistriesConf,
    request: &Request,
    options: &ResolveOptions,
    recorded: &Recorded,
    tag_lists: &TagLists,
) -> Resolved {
    let record = recorded.images.get(&request.name);
    if options.trust_state
        && let Some(resolved) = from_record(request, recorded, options)
    {
        return resolved;
    }
    let failed = |message: String| Resolved {
        failure: Some(Failure {
            name: request.name.clone(),
            message,
            category: request.category,
        }),
        ..Resolved::default()
    };
    let mut resolved = Resolved::default();
    // Where to read, and the top digest.
    let (source, top_digest, top_tree) = match (request.origin.digest(), record) {
        // Pinned and recorded: the digest cannot have moved.
        (Some(digest), Some(record)) if recorded.tree(digest).is_some() => {
            let Some(source) = source_reference(&record.source, digest) else {
                return failed(format!(
                    "the recorded source {} is not a reference",
                    record.source
                ));
            };
            (source, digest.clone(), None)
        }
        // A tag never resolved before: its manifest is needed anyway, so
        // one GET by tag gives the digest and the top manifest together
        // (a HEAD first would only add a request).
        (None, None) => match read_top(client, registries, &request.origin).await {
            Ok((source, top)) => (source, top.digest.clone(), Some(top)),
            Err(message) => return failed(message),
        },
        // One HEAD finds the digest; its tree comes from the record when
        // recorded, else is read by digest.
        _ => match head_top(client, registries, &request.origin).await {
            Ok((source, Some(digest))) => (source, digest, None),
            Ok((_, None)) | Err(_) => match read_top(client, registries, &request.origin).await {
                Ok((source, top)) => (source, top.digest.clone(), Some(top)),
                Err(message) => return failed(message),
            },
        },
    };
    let (tree, reused) = match top_tree {
        Some(top) => match read_tree(
            client,
            &source,
            top,
            &recorded.manifests,
            &mut resolved.manifests,
        )
        .await
        {
            Ok(tree) => (tree, false),
            Err(message) => return failed(message),
        },
        None => match tree_of(
            client,
            &source,
            &top_digest,
            recorded,
            &mut resolved.manifests,
        )
        .await
        {
            Ok(found) => found,
            Err(message) => return failed(message),
        },
    };
    resolved.reused = reused;
    let source_name = format!("{}/{}", source.registry(), source.repository());
    resolved.images.push(ResolvedImage {
        name: request.name.clone(),
        source: Source::Registry(source_name.clone()),
        blob_sources: Default::default(),
        destination_repository: request.destination_repository.clone(),
        destination_tag: Some(request.destination_tag.clone()),
        top: top_digest.clone(),
        manifests: tree,
        category: request.category,
    });
    let mut signature = None;
    if !options.remove_signatures {
        let tag = signature_tag(&top_digest);
        if let Ok(signature_reference) = format!("{source_name}:{tag}").parse::<ImageReference>()
            && tag_lists
                .may_have(client, &request.origin, &source, &tag)
                .await
            && let Ok(Some(head)) = client.head_manifest(&signature_reference).await
        {
            let found = match head.digest {
                Some(digest) => tree_of(
                    client,
                    &signature_reference,
                    &digest,
                    recorded,
                    &mut resolved.manifests,
                )
                .await
                .map(|(tree, _)| (digest, tree)),
                None => match client.get_manifest(&signature_reference).await {
                    Ok(top) => {
                        let digest = top.digest.clone();
                        read_tree(
                            client,
                            &signature_reference,
                            top,
                            &recorded.manifests,
                            &mut resolved.manifests,
                        )
                        .await
                        .map(|tree| (digest, tree))
                    }
                    Err(error) => Err(error.to_string()),
                },
            };
            if let Ok((digest, tree)) = found {
                resolved.images.push(ResolvedImage {
                    name: format!("{}:{tag}", request.origin.name()),
                    source: Source::Registry(source_name.clone()),
                    blob_sources: Default::default(),
                    destination_repository: request.destination_repository.clone(),
                    destination_tag: Some(tag),
                    top: digest.clone(),
                    manifests: tree,
                    category: request.category,
                });
                signature = Some(digest);
            }
        }
    }
    let new_record = RecordedResolution {
        name: request.name.clone(),
        source: source_name,
        top: top_digest,
        signature,
        signature_checked: !options.remove_signatures,
    };
    if record != Some(&new_record) {
        resolved.record = Some(new_record);
    }
    resolved
}

/// Resolves requests without any record: every tree read from its source.
pub async fn resolve(
    client: &RegistryClient,
    registries: &RegistriesConf,
    requests: &[Request],
    options: &ResolveOptions,
) -> Resolution {
    resolve_with(client, registries, requests, options, &Recorded::default()).await
}

/// Resolves requests, using what `recorded` says was resolved before: pins
/// each to a digest, reads (or reuses) its tree, adds its cosign signature
/// (`sha256-<hex>.sig`) when the source has one.
pub async fn resolve_with(
    client: &RegistryClient,
    registries: &RegistriesConf,
    requests: &[Request],
    options: &ResolveOptions,
    recorded: &Recorded,
) -> Resolution {
    let concurrency = if options.concurrency == 0 {
        32
    } else {
        options.concurrency
    };
    let tag_lists = TagLists::new(requests);
    let tag_lists = &tag_lists;
    let results: Vec<Resolved> = futures_util::stream::iter(requests)
        .map(|request| resolve_one(client, registries, request, options, recorded, tag_lists))
        .buffered(concurrency)
        .collect()
        .await;
    let mut resolution = Resolution::default();
    for result in results {
        resolution.images.extend(result.images);
        resolution.manifests.extend(result.manifests);
        resolution.failures.extend(result.failure);
        resolution.records.extend(result.record);
        resolution.reused += usize::from(result.reused);
    }
    resolution
}
