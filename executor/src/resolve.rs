//! Resolving (the refresh step): the image set's images pinned to digests,
//! their whole manifest trees read, cosign signature tags added unless
//! `--remove-signatures`; blocked images were left out when collecting.
//!
//! One resolver ([`resolve_from`]) reads through any [`ContentSource`]
//! (`crate::source`): the registries through registries.conf, the
//! deliveries of a disk folder, or the workspace state's record.
//! Manifests are kept with their exact bytes, so the executor pushes what
//! was read.
//!
//! From registries ([`resolve_with`]): an image never resolved before is
//! read with one GET by tag (digest and top manifest at once). What was
//! resolved before ([`Recorded`], from the workspace state) makes a rerun
//! cheap: by default one HEAD per tag (the image's and its signature's)
//! finds the current digest, and a tree already recorded for that digest
//! is reused instead of read again (manifests are content addressed); a
//! digest-pinned image needs no request at all. With `trust_state`, an
//! image the record holds in full is taken from it with no network at
//! all. Images run concurrently (bounded by
//! [`ResolveOptions::concurrency`]), results in request order.

use std::collections::BTreeMap;

use ferry_planner::{FastMap, ResolvedImage, ResolvedManifest};
use ferry_registry::{Manifest, RegistriesConf, RegistryClient};
use ferry_schemas::Digest;
use ferry_schemas::config::Mirror;
use ferry_store::{RecordedManifest, RecordedResolution, WorkspaceState};
use futures_util::StreamExt as _;

use crate::oci_manifest::{ManifestContent, descriptor_digest, plain_image_blobs};
use crate::source::{ContentSource, Pinned, RecordedState, Registries};

/// From this many requests on, [`Recorded::load`] reads every recorded
/// manifest in one pass instead of one lookup per manifest.
const READ_EVERY_MANIFEST_FROM: usize = 64;

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
    /// Resolved, but left out because an image it needs failed.
    pub held_back: bool,
}

impl Failure {
    /// What went wrong, as plans and the errors file say it.
    pub fn reason(&self) -> String {
        if self.held_back {
            self.message.clone()
        } else {
            format!("not resolved: {}", self.message)
        }
    }
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
    pub needs: BTreeMap<String, std::collections::BTreeSet<String>>,
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
    /// manifests of their trees: for many requests, every recorded manifest
    /// in one pass over the state (a lookup per digest costs more), else a
    /// lookup per manifest.
    pub fn load(state: &WorkspaceState, requests: &[Request]) -> ferry_store::Result<Recorded> {
        let mut all = state.resolutions()?;
        let mut stored: Option<FastMap<Digest, RecordedManifest>> =
            if requests.len() >= READ_EVERY_MANIFEST_FROM {
                Some(
                    state
                        .all_manifests()?
                        .into_iter()
                        .map(|manifest| (manifest.digest.clone(), manifest))
                        .collect(),
                )
            } else {
                None
            };
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
                let found = match &mut stored {
                    Some(stored) => stored.remove(&digest),
                    None => state.manifest(&digest)?,
                };
                let Some(manifest) = found else {
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

    /// Whether every manifest of the tree below `top` is recorded (what
    /// [`Recorded::tree`] would return, without building it).
    pub(crate) fn has_tree(&self, top: &Digest) -> bool {
        let mut queue = vec![top];
        while let Some(digest) = queue.pop() {
            let Some(described) = self.described.get(digest) else {
                return false;
            };
            queue.extend(&described.children);
        }
        true
    }

    /// The tree below `top`, when every manifest of it is recorded.
    pub(crate) fn tree(&self, top: &Digest) -> Option<Vec<ResolvedManifest>> {
        let mut tree = Vec::new();
        let mut queue = vec![top];
        while let Some(digest) = queue.pop() {
            let described = self.described.get(digest)?;
            queue.extend(&described.children);
            tree.push(described.clone());
        }
        Some(tree)
    }

    /// The tree below `top` when all of it is recorded, its manifests
    /// added to `manifests`.
    pub(crate) fn known_tree(
        &self,
        top: &Digest,
        manifests: &mut BTreeMap<Digest, Manifest>,
    ) -> Option<Vec<ResolvedManifest>> {
        let tree = self.tree(top)?;
        self.tree_manifests(top, manifests);
        Some(tree)
    }

    /// The manifests of the tree below `top` (all recorded).
    fn tree_manifests(&self, top: &Digest, into: &mut BTreeMap<Digest, Manifest>) {
        let mut queue = vec![top];
        while let Some(digest) = queue.pop() {
            let Some(manifest) = self.manifests.get(digest) else {
                continue;
            };
            if let Some(described) = self.described.get(digest) {
                queue.extend(&described.children);
            }
            into.insert(digest.clone(), manifest.clone());
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

/// What a manifest names: child manifests, or config and layers (read
/// through oci-spec's types, `crate::oci_manifest`).
pub fn describe(manifest: &Manifest) -> Result<ResolvedManifest, String> {
    describe_with_media_types(manifest).map(|(described, _)| described)
}

/// [`describe`], with the media type each child's descriptor gives (in the
/// order of `children`; empty where it gives none).
pub(crate) fn describe_with_media_types(
    manifest: &Manifest,
) -> Result<(ResolvedManifest, Vec<String>), String> {
    // A plain image manifest (the usual kind) is read without oci-spec's
    // types, to the same result (`oci_manifest::plain_image_blobs`).
    if let Some(blobs) = plain_image_blobs(&manifest.bytes, &manifest.media_type) {
        let described = ResolvedManifest {
            digest: manifest.digest.clone(),
            media_type: manifest.media_type.clone(),
            size: manifest.bytes.len() as u64,
            children: Vec::new(),
            blobs,
        };
        return Ok((described, Vec::new()));
    }
    let failed = |message: String| format!("manifest {} {message}", manifest.digest);
    let descriptor = |item: &oci_spec::image::Descriptor| -> Result<(Digest, u64), String> {
        let digest = descriptor_digest(item).map_err(|error| failed(format!("has a {error}")))?;
        Ok((digest, item.size()))
    };
    let mut children = Vec::new();
    let mut child_media_types = Vec::new();
    let mut blobs = Vec::new();
    match ManifestContent::parse(&manifest.bytes, &manifest.media_type).map_err(failed)? {
        ManifestContent::Index(index) => {
            for entry in index.manifests() {
                children.push(descriptor(entry)?.0);
                child_media_types.push(entry.media_type().to_string());
            }
        }
        ManifestContent::Image(image) => {
            blobs.push(descriptor(image.config())?);
            for layer in image.layers() {
                blobs.push(descriptor(layer)?);
            }
        }
    }
    let described = ResolvedManifest {
        digest: manifest.digest.clone(),
        media_type: manifest.media_type.clone(),
        size: manifest.bytes.len() as u64,
        children,
        blobs,
    };
    Ok((described, child_media_types))
}

/// The tree below `pinned`: what the source knows of it without reading
/// when it knows all of it (then `true`: reused), else read through the
/// source, children already in `manifests` or known to the source not
/// read again. Every manifest of the tree is added to `manifests`.
pub(crate) async fn tree_of<S: ContentSource>(
    source: &S,
    pinned: &Pinned,
    manifests: &mut BTreeMap<Digest, Manifest>,
) -> Result<(Vec<ResolvedManifest>, bool), String> {
    let top = match &pinned.top_manifest {
        Some(top) => top.clone(),
        None => {
            if let Some(tree) = source.known_tree(&pinned.top, manifests) {
                return Ok((tree, true));
            }
            source
                .manifest(pinned, &pinned.top, &pinned.media_type)
                .await?
        }
    };
    let mut tree = Vec::new();
    let mut queue = vec![top];
    while let Some(manifest) = queue.pop() {
        let (described, media_types) = describe_with_media_types(&manifest)?;
        for (child, media_type) in described.children.iter().zip(&media_types) {
            let known = manifests
                .get(child)
                .cloned()
                .or_else(|| source.known_manifest(child));
            let child_manifest = match known {
                Some(found) => found,
                None => source.manifest(pinned, child, media_type).await?,
            };
            queue.push(child_manifest);
        }
        manifests.insert(manifest.digest.clone(), manifest);
        tree.push(described);
    }
    Ok((tree, false))
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

/// Resolves one request through `source`: pins it, reads (or reuses) its
/// tree, adds its cosign signature when `signatures` and the source has
/// one, and says what to record.
async fn resolve_one<S: ContentSource>(
    source: &S,
    request: &Request,
    signatures: bool,
) -> Resolved {
    let failed = |message: String| Resolved {
        failure: Some(Failure {
            name: request.name.clone(),
            message,
            category: request.category,
            held_back: false,
        }),
        ..Resolved::default()
    };
    let pinned = match source.pin(request).await {
        Ok(pinned) => pinned,
        Err(message) => return failed(message),
    };
    let mut resolved = Resolved::default();
    let (tree, reused) = match tree_of(source, &pinned, &mut resolved.manifests).await {
        Ok(found) => found,
        Err(message) => return failed(message),
    };
    resolved.reused = reused;
    resolved.images.push(ResolvedImage {
        name: request.name.clone(),
        source: pinned.source.clone(),
        blob_sources: Default::default(),
        destination_repository: request.destination_repository.clone(),
        destination_tag: Some(request.destination_tag.clone()),
        top: pinned.top.clone(),
        manifests: tree,
        category: request.category,
        signature_of: None,
    });
    let mut signature = None;
    if signatures
        && let Some(signed) = source.signature(request, &pinned).await
        && let Ok((tree, _)) = tree_of(source, &signed, &mut resolved.manifests).await
    {
        let tag = signature_tag(&pinned.top);
        resolved.images.push(ResolvedImage {
            name: format!("{}:{tag}", request.origin.name()),
            source: signed.source.clone(),
            blob_sources: Default::default(),
            destination_repository: request.destination_repository.clone(),
            destination_tag: Some(tag),
            top: signed.top.clone(),
            manifests: tree,
            category: request.category,
            signature_of: Some(pinned.top.clone()),
        });
        signature = Some(signed.top);
    }
    resolved.record = source.record(request, &pinned, signature);
    resolved
}

/// Resolves `requests` through `source`, `concurrency` at a time (0: 32),
/// results in request order.
pub async fn resolve_from<S: ContentSource>(
    source: &S,
    requests: &[Request],
    signatures: bool,
    concurrency: usize,
) -> Resolution {
    gather(
        futures_util::stream::iter(requests)
            .map(|request| resolve_one(source, request, signatures))
            .buffered(at_once(concurrency))
            .collect()
            .await,
    )
}

/// Images resolved at once for a `concurrency` setting (0: 32).
fn at_once(concurrency: usize) -> usize {
    if concurrency == 0 { 32 } else { concurrency }
}

/// One resolution from the results of its requests.
fn gather(results: Vec<Resolved>) -> Resolution {
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

/// cosign's signature tag of an image: `sha256-<hex>.sig`.
pub fn signature_tag(top: &Digest) -> String {
    format!("{}-{}.sig", top.algorithm().name(), top.hex())
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

/// Resolves requests from the source registries, using what `recorded`
/// says was resolved before (with `trust_state`, answered from the record
/// alone wherever it holds all of an image): pins each to a digest, reads
/// (or reuses) its tree, adds its cosign signature (`sha256-<hex>.sig`)
/// when the source has one.
pub async fn resolve_with(
    client: &RegistryClient,
    registries: &RegistriesConf,
    requests: &[Request],
    options: &ResolveOptions,
    recorded: &Recorded,
) -> Resolution {
    let signatures = !options.remove_signatures;
    let registry = Registries::new(client, registries, recorded, signatures, requests);
    let state = RecordedState {
        recorded,
        signatures,
    };
    let (registry, state) = (&registry, &state);
    gather(
        futures_util::stream::iter(requests)
            .map(|request| async move {
                if options.trust_state {
                    let answered = resolve_one(state, request, signatures).await;
                    if answered.failure.is_none() {
                        return answered;
                    }
                }
                resolve_one(registry, request, signatures).await
            })
            .buffered(at_once(options.concurrency))
            .collect()
            .await,
    )
}

#[cfg(test)]
mod tests {
    //! The resolver against a recording fake source: no registry, every
    //! read the resolver asks for is seen.
    use std::sync::Mutex;

    use ferry_planner::{Category, Source};
    use ferry_schemas::ImageReference;

    use super::*;

    /// Manifests by digest, tops by image name, signatures by top; records
    /// every manifest read.
    #[derive(Default)]
    struct FakeSource {
        manifests: BTreeMap<Digest, Manifest>,
        tops: BTreeMap<String, Digest>,
        signatures: BTreeMap<Digest, Digest>,
        known: BTreeMap<Digest, Manifest>,
        reads: Mutex<Vec<Digest>>,
    }

    impl FakeSource {
        fn add(&mut self, json: serde_json::Value) -> Digest {
            let bytes = serde_json::to_vec(&json).unwrap();
            let digest = Digest::sha256_of(&bytes);
            self.manifests.insert(
                digest.clone(),
                Manifest {
                    media_type: json["mediaType"].as_str().unwrap_or_default().to_owned(),
                    digest: digest.clone(),
                    bytes: bytes.into(),
                },
            );
            digest
        }

        fn image(&mut self, seed: &str) -> Digest {
            let blob = Digest::sha256_of(seed.as_bytes());
            self.add(serde_json::json!({
                "schemaVersion": 2,
                "mediaType": "application/vnd.oci.image.manifest.v1+json",
                "config": {"mediaType": "application/vnd.oci.image.config.v1+json", "digest": blob.to_string(), "size": 10},
                "layers": [{"mediaType": "application/vnd.oci.image.layer.v1.tar+gzip", "digest": blob.to_string(), "size": 10}],
            }))
        }

        fn reads(&self) -> Vec<Digest> {
            self.reads.lock().unwrap().clone()
        }
    }

    impl ContentSource for FakeSource {
        async fn pin(&self, request: &Request) -> Result<Pinned, String> {
            let top = self
                .tops
                .get(&request.name)
                .ok_or_else(|| format!("{} is not here", request.name))?;
            Ok(Pinned {
                source: Source::Registry("fake.example/repository".to_owned()),
                top: top.clone(),
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
            self.reads.lock().unwrap().push(digest.clone());
            self.manifests
                .get(digest)
                .cloned()
                .ok_or_else(|| format!("manifest {digest} unknown"))
        }

        async fn signature(&self, _request: &Request, pinned: &Pinned) -> Option<Pinned> {
            Some(Pinned {
                top: self.signatures.get(&pinned.top)?.clone(),
                ..pinned.clone()
            })
        }

        async fn blob(
            &self,
            _pinned: &Pinned,
            digest: &Digest,
            _into: &ferry_store::BlobStore,
        ) -> Result<(), String> {
            Err(format!("blob {digest}: the resolver reads no blob"))
        }

        fn known_manifest(&self, digest: &Digest) -> Option<Manifest> {
            self.known.get(digest).cloned()
        }
    }

    fn request(name: &str) -> Request {
        Request {
            name: name.to_owned(),
            origin: format!("fake.example/repository:{name}")
                .parse::<ImageReference>()
                .unwrap(),
            destination_repository: "mirror/repository".to_owned(),
            destination_tag: name.to_owned(),
            category: Category::Additional,
        }
    }

    fn run<F: std::future::Future>(future: F) -> F::Output {
        tokio::runtime::Builder::new_current_thread()
            .build()
            .unwrap()
            .block_on(future)
    }

    #[test]
    fn an_index_tree_is_read_once_with_its_signature() {
        let mut source = FakeSource::default();
        let amd64 = source.image("amd64");
        let arm64 = source.image("arm64");
        let index = source.add(serde_json::json!({
            "schemaVersion": 2,
            "mediaType": "application/vnd.oci.image.index.v1+json",
            "manifests": [
                {"mediaType": "application/vnd.oci.image.manifest.v1+json", "digest": amd64.to_string(), "size": 1},
                {"mediaType": "application/vnd.oci.image.manifest.v1+json", "digest": arm64.to_string(), "size": 1},
            ],
        }));
        let signature = source.image("signature");
        source.tops.insert("v1".to_owned(), index.clone());
        source.signatures.insert(index.clone(), signature.clone());

        let resolution = run(resolve_from(&source, &[request("v1")], true, 4));

        assert!(resolution.failures.is_empty(), "{:?}", resolution.failures);
        assert_eq!(resolution.images.len(), 2, "the image and its signature");
        let image = &resolution.images[0];
        assert_eq!(image.top, index);
        assert_eq!(image.destination_tag.as_deref(), Some("v1"));
        assert_eq!(image.manifests.len(), 3, "index and two platforms");
        assert_eq!(image.signature_of, None);
        let signed = &resolution.images[1];
        assert_eq!(signed.top, signature);
        assert_eq!(signed.signature_of.as_ref(), Some(&index), "what it signs");
        assert_eq!(
            signed.destination_tag.as_deref(),
            Some(signature_tag(&index).as_str())
        );
        assert_eq!(
            signed.name,
            format!("fake.example/repository:{}", signature_tag(&index))
        );
        let mut reads = source.reads();
        reads.sort();
        let mut expected = vec![index, amd64, arm64, signature];
        expected.sort();
        assert_eq!(reads, expected, "every manifest read exactly once");
        assert_eq!(resolution.manifests.len(), 4);
    }

    #[test]
    fn known_manifests_are_not_read_and_without_signatures_none_is_asked() {
        let mut source = FakeSource::default();
        let platform = source.image("platform");
        let index = source.add(serde_json::json!({
            "schemaVersion": 2,
            "mediaType": "application/vnd.oci.image.index.v1+json",
            "manifests": [{"mediaType": "application/vnd.oci.image.manifest.v1+json", "digest": platform.to_string(), "size": 1}],
        }));
        let known = source.manifests[&platform].clone();
        source.known.insert(platform.clone(), known);
        source.tops.insert("v1".to_owned(), index.clone());
        source.signatures.insert(index.clone(), platform.clone());

        let resolution = run(resolve_from(&source, &[request("v1")], false, 1));

        assert_eq!(resolution.images.len(), 1, "no signature when not wanted");
        assert_eq!(source.reads(), vec![index], "the known child is not read");
        assert!(resolution.manifests.contains_key(&platform));
    }

    #[test]
    fn a_request_the_source_cannot_pin_or_read_fails_alone() {
        let mut source = FakeSource::default();
        let good = source.image("good");
        let missing_child = Digest::sha256_of(b"not stored");
        let broken = source.add(serde_json::json!({
            "schemaVersion": 2,
            "mediaType": "application/vnd.oci.image.index.v1+json",
            "manifests": [{"mediaType": "application/vnd.oci.image.manifest.v1+json", "digest": missing_child.to_string(), "size": 1}],
        }));
        source.tops.insert("good".to_owned(), good.clone());
        source.tops.insert("broken".to_owned(), broken);

        let requests = [request("good"), request("absent"), request("broken")];
        let resolution = run(resolve_from(&source, &requests, true, 2));

        assert_eq!(resolution.images.len(), 1);
        assert_eq!(resolution.images[0].top, good);
        let failed: Vec<(&str, &str)> = resolution
            .failures
            .iter()
            .map(|failure| (failure.name.as_str(), failure.message.as_str()))
            .collect();
        assert_eq!(failed[0], ("absent", "absent is not here"));
        assert_eq!(failed[1].0, "broken");
        assert!(
            failed[1].1.contains(&missing_child.to_string()),
            "{}",
            failed[1].1
        );
        assert!(
            resolution.records.is_empty(),
            "a fake source records nothing"
        );
    }
}
