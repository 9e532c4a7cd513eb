//! Resolving (the refresh step): the configuration's additional images
//! pinned to digests, their whole manifest trees read, blocked images
//! dropped, cosign signature tags added unless `--remove-signatures`.
//!
//! Sources go through `registries.conf` (mirrors in order, then the primary
//! location), as containers/image does. Manifests are kept with their exact
//! bytes, so the executor pushes what was read.

use std::collections::BTreeMap;

use ferry_planner::{ResolvedImage, ResolvedManifest};
use ferry_registry::{Manifest, RegistriesConf, RegistryClient};
use ferry_schemas::config::Mirror;
use ferry_schemas::{Digest, ImageReference, ImageSource};
use regex::Regex;

use crate::naming::additional_image_destination;

/// What the configuration asks for, before resolving.
#[derive(Clone, Debug)]
pub struct Request {
    pub name: String,
    pub origin: ImageReference,
    pub destination_repository: String,
    pub destination_tag: String,
}

/// An image that could not be resolved.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Failure {
    pub name: String,
    pub message: String,
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
}

/// Options of resolving.
#[derive(Clone, Debug, Default)]
pub struct ResolveOptions {
    /// Repository prefix at the destination.
    pub prefix: String,
    pub max_nested_paths: usize,
    pub remove_signatures: bool,
}

/// The additional images of `mirror`, as requests with their destinations.
pub fn additional_image_requests(
    mirror: &Mirror,
    options: &ResolveOptions,
) -> (Vec<Request>, Vec<String>) {
    let blocked: Vec<Regex> = mirror
        .blocked_images
        .iter()
        .filter_map(|blocked| Regex::new(&blocked.name).ok())
        .collect();
    let mut requests = Vec::new();
    let mut left_out = Vec::new();
    for image in &mirror.additional_images {
        let ImageSource::Registry(origin) = &image.name else {
            continue;
        };
        let name = origin.to_string();
        let destination = additional_image_destination(
            origin,
            &options.prefix,
            image.target_repo.as_deref(),
            image.target_tag.as_deref(),
            options.max_nested_paths,
        );
        let destination_text = format!("{}:{}", destination.repository, destination.tag);
        if blocked
            .iter()
            .any(|pattern| pattern.is_match(&name) || pattern.is_match(&destination_text))
        {
            left_out.push(name);
            continue;
        }
        requests.push(Request {
            name,
            origin: origin.clone(),
            destination_repository: destination.repository,
            destination_tag: destination.tag,
        });
    }
    (requests, left_out)
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

/// Reads a whole tree below a top manifest.
async fn read_tree(
    client: &RegistryClient,
    source: &ImageReference,
    top: Manifest,
    manifests: &mut BTreeMap<Digest, Manifest>,
) -> Result<Vec<ResolvedManifest>, String> {
    let mut tree = Vec::new();
    let mut queue = vec![top];
    while let Some(manifest) = queue.pop() {
        let resolved = describe(&manifest)?;
        for child in &resolved.children {
            let child_manifest = match manifests.get(child) {
                Some(known) => known.clone(),
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

/// Resolves requests: pins each to a digest and reads its tree; adds each
/// image's cosign signature (`sha256-<hex>.sig`) when the source has one.
pub async fn resolve(
    client: &RegistryClient,
    registries: &RegistriesConf,
    requests: &[Request],
    options: &ResolveOptions,
) -> Resolution {
    let mut resolution = Resolution::default();
    for request in requests {
        let (source, top) = match read_top(client, registries, &request.origin).await {
            Ok(found) => found,
            Err(message) => {
                resolution.failures.push(Failure {
                    name: request.name.clone(),
                    message,
                });
                continue;
            }
        };
        let top_digest = top.digest.clone();
        let tree = match read_tree(client, &source, top, &mut resolution.manifests).await {
            Ok(tree) => tree,
            Err(message) => {
                resolution.failures.push(Failure {
                    name: request.name.clone(),
                    message,
                });
                continue;
            }
        };
        let source_name = format!("{}/{}", source.registry(), source.repository());
        resolution.images.push(ResolvedImage {
            name: request.name.clone(),
            source: source_name.clone(),
            destination_repository: request.destination_repository.clone(),
            destination_tag: Some(request.destination_tag.clone()),
            top: top_digest.clone(),
            manifests: tree,
        });
        if options.remove_signatures {
            continue;
        }
        let signature_tag = format!("{}-{}.sig", top_digest.algorithm().name(), top_digest.hex());
        let Ok(signature_reference) = format!(
            "{}/{}:{signature_tag}",
            source.registry(),
            source.repository()
        )
        .parse::<ImageReference>() else {
            continue;
        };
        if let Ok(Some(_)) = client.head_manifest(&signature_reference).await
            && let Ok(signature) = client.get_manifest(&signature_reference).await
        {
            let signature_digest = signature.digest.clone();
            if let Ok(tree) = read_tree(
                client,
                &signature_reference,
                signature,
                &mut resolution.manifests,
            )
            .await
            {
                resolution.images.push(ResolvedImage {
                    name: format!("{}:{signature_tag}", request.origin.name()),
                    source: source_name,
                    destination_repository: request.destination_repository.clone(),
                    destination_tag: Some(signature_tag),
                    top: signature_digest,
                    manifests: tree,
                });
            }
        }
    }
    resolution
}
