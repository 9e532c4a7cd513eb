//! The graph-data image of `platform.graph: true` (notes §5.5), a built
//! image, and what the UpdateService points at.
//!
//! The image is the linux/amd64 image of the base
//! `registry.access.redhat.com/ubi9/ubi:latest` (its layers mirrored with
//! it, read from the base's registry repository) plus one layer ferry
//! makes: the graph-data tarball's files under
//! `/var/lib/cincinnati-graph-data`, as a plain tar with fixed headers
//! (owner root, time 0, mode 0644 for files and 0755 for folders, sorted
//! by path), so the same tarball and base give the same digest. Its config
//! keeps the base's environment and history, and its `Cmd` is oc-mirror's,
//! copying the data where the update service reads it. It goes to
//! `<prefix>/openshift/graph-image:latest` with the release category.
//!
//! The tarball comes from `https://api.openshift.com/api/upgrades_info/graph-data`,
//! or from the URL in `FERRY_GRAPH_DATA_URL` (ferry's own variable). As in
//! oc-mirror, with `UPDATE_URL_OVERRIDE` set (an enclave's own update
//! service) and no `FERRY_GRAPH_DATA_URL`, nothing is downloaded: the graph
//! image ferry built last in this workspace is reused, its new blobs read
//! from the cache; with none, the run stops with a release error.
//!
//! What was built is recorded in `working-dir/hold-release/graph-image.json`
//! (the manifest, and where each blob is read). The record travels in
//! deliveries with the other collection inputs, so disk-to-mirror names
//! the same image offline and takes it from the delivery.
//!
//! A copy of the record goes to the cache (`graph-image.json` beside its
//! blobs) whenever an image is built or a delivered one pushed: the cache
//! then holds the graph image as oc-mirror's cache registry does. A
//! workspace that built none reuses the cache's with `UPDATE_URL_OVERRIDE`
//! (the enclave flow: the enterprise side's disk-to-mirror fills the cache,
//! the enclave's mirror-to-disk takes the graph image from it, never from
//! the internet).

use std::collections::BTreeMap;
use std::io::Read;

use ferry_planner::{Category, Source};
use ferry_schemas::{Digest, ImageReference};
use ferry_store::{BlobStore, digest_of};
use oci_spec::image::Descriptor;
use serde_json::{Value, json};

use crate::catalog_image::RegistryAccess;
use crate::layer_files::{ImageBlobs, image_manifest};
use crate::naming::flatten;
use crate::oci_manifest::{ImageConfig, ManifestContent, descriptor_digest};
use crate::workflow::built::{BuiltBlob, BuiltImage, store_blob};
use crate::workflow::collect::CollectContext;
use crate::workflow::error::{Result, WorkflowError};
use crate::workflow::releases::ReleaseSources;
use crate::workflow::workspace::Workspace;

/// Where oc-mirror downloads the graph data.
pub const GRAPH_DATA_URL: &str = "https://api.openshift.com/api/upgrades_info/graph-data";
/// ferry's own variable naming another URL for the graph data.
pub const GRAPH_DATA_URL_VARIABLE: &str = "FERRY_GRAPH_DATA_URL";
/// The base image, as oc-mirror's.
pub const BASE_IMAGE: &str = "registry.access.redhat.com/ubi9/ubi:latest";
/// The repository and tag at the destination (below the prefix).
pub const GRAPH_IMAGE_REPOSITORY: &str = "openshift/graph-image";
pub const GRAPH_IMAGE_TAG: &str = "latest";
/// The name the image goes by in plans, deliveries and errors (oc-mirror's
/// source for it is its local cache, `localhost:55000/openshift/graph-image`).
pub const GRAPH_IMAGE_NAME: &str = "localhost/openshift/graph-image:latest";
/// Where the graph data is in the image.
pub const GRAPH_DATA_FOLDER: &str = "var/lib/cincinnati-graph-data";
/// The image's command, oc-mirror's.
const COMMAND: [&str; 3] = [
    "/bin/bash",
    "-c",
    "exec cp -rp /var/lib/cincinnati-graph-data/* /var/lib/cincinnati/graph-data",
];
/// The record of the last graph image built, under `working-dir/`.
pub const RECORD: &str = "hold-release/graph-image.json";
/// The record shared through the cache, under the cache folder.
pub const SHARED_RECORD: &str = "graph-image.json";
const RECORD_FORMAT_VERSION: u64 = 1;

const LAYER_MEDIA_TYPE: &str = "application/vnd.oci.image.layer.v1.tar";
const CONFIG_MEDIA_TYPE: &str = "application/vnd.oci.image.config.v1+json";
/// How long the download may take (the real tarball is a few MiB).
const DOWNLOAD_TIMEOUT: std::time::Duration = std::time::Duration::from_secs(600);
/// The largest tarball accepted, compressed and unpacked.
const MAXIMUM_BYTES: u64 = 1 << 30;

/// What the UpdateService names, below the destination registry.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct UpdateServiceTarget {
    /// The graph image's name in the image set.
    pub graph_image_name: String,
    /// `<prefix>/openshift/release-images`.
    pub releases_repository: String,
    /// `<prefix>/openshift/graph-image`, and its tag.
    pub graph_image_repository: String,
    pub graph_image_tag: String,
}

fn graph_error(message: impl std::fmt::Display) -> WorkflowError {
    WorkflowError::environment(format!("the graph image: {message}")).in_category(Category::Release)
}

/// `prefix/repository`, flattened by `--max-nested-paths`.
fn below_prefix(context: &CollectContext, repository: &str) -> String {
    let path = if context.prefix.is_empty() {
        repository.to_owned()
    } else {
        format!("{}/{repository}", context.prefix)
    };
    flatten(&path, context.max_nested_paths)
}

/// What the UpdateService of this run names.
pub fn update_service_target(context: &CollectContext) -> UpdateServiceTarget {
    UpdateServiceTarget {
        graph_image_name: GRAPH_IMAGE_NAME.to_owned(),
        releases_repository: below_prefix(
            context,
            ferry_content::release::naming::RELEASE_IMAGES_REPOSITORY,
        ),
        graph_image_repository: below_prefix(context, GRAPH_IMAGE_REPOSITORY),
        graph_image_tag: GRAPH_IMAGE_TAG.to_owned(),
    }
}

/// The graph image of a run, and the record to carry in deliveries
/// (path under `working-dir/`, bytes): built from the tarball, reused
/// (`UPDATE_URL_OVERRIDE` without `FERRY_GRAPH_DATA_URL`), or named from
/// the delivered record (disk-to-mirror).
pub fn graph_image(
    access: &RegistryAccess,
    context: &CollectContext,
    sources: &ReleaseSources,
) -> Result<(BuiltImage, (String, Vec<u8>))> {
    let workspace = &sources.workspace;
    let target = update_service_target(context);
    if sources.offline {
        let bytes = read_record(workspace).ok_or_else(|| {
            graph_error(
                "the deliveries carry no graph image: mirror to disk again with `graph: true`",
            )
        })?;
        let image = image_from_record(&bytes, &target)?;
        // Pushed from the delivery: the cache holds it now.
        if !context.plan_only {
            share_record(sources, &bytes);
        }
        return Ok((image, (RECORD.to_owned(), bytes)));
    }
    let cache = context.cache.as_ref().ok_or_else(|| {
        WorkflowError::internal("the graph image is built into the cache, and none was given")
    })?;
    let url = match (&sources.graph_data_url, &sources.update_url_override) {
        (Some(url), _) => url.clone(),
        (None, Some(_)) => {
            let (bytes, shared) = match read_record(workspace) {
                Some(bytes) => (bytes, false),
                None => (
                    read_shared_record(sources).ok_or_else(|| {
                        graph_error(format!(
                            "UPDATE_URL_OVERRIDE is set, so the graph data is not downloaded (as \
                         oc-mirror does) and the graph image built last is reused, but neither \
                         this workspace ({}) nor the cache ({}) has one: set \
                         {GRAPH_DATA_URL_VARIABLE} to a URL of the graph-data tarball",
                            workspace.root().join(RECORD).display(),
                            cache.root().join(SHARED_RECORD).display()
                        ))
                    })?,
                    true,
                ),
            };
            let image = image_from_record(&bytes, &target)?;
            for blob in image.config.iter().chain(&image.layers) {
                if blob.source == Source::Cache && !cache.contains(&blob.digest) {
                    return Err(graph_error(format!(
                        "UPDATE_URL_OVERRIDE is set, so the graph image built last is reused, but \
                         its blob {} is not in the cache {}: set {GRAPH_DATA_URL_VARIABLE} to \
                         build it again",
                        blob.digest,
                        cache.root().display()
                    )));
                }
            }
            // Kept in this workspace too, as if built here.
            if shared && !context.plan_only {
                save_record(workspace, &bytes)?;
            }
            return Ok((image, (RECORD.to_owned(), bytes)));
        }
        (None, None) => GRAPH_DATA_URL.to_owned(),
    };
    let tarball = access
        .block_on(download(&url))
        .map_err(|message| graph_error(format!("the graph data {url}: {message}")))?;
    let base: ImageReference = BASE_IMAGE
        .parse()
        .map_err(|cause| WorkflowError::internal(format!("{BASE_IMAGE}: {cause}")))?;
    let image = access
        .with_image(&base, |image, pinned| {
            let source = Source::Registry(format!("{}/{}", pinned.registry(), pinned.repository()));
            build(image, source, &tarball, cache, !context.plan_only, &target)
                .map_err(|error| error.to_string())
        })
        .map_err(|message| graph_error(format!("the base image {BASE_IMAGE}: {message}")))?;
    let bytes = record(&image)?;
    // A plan leaves the cache as it is: its blobs were not stored, so no
    // later run may reuse it.
    if !context.plan_only {
        save_record(workspace, &bytes)?;
        share_record(sources, &bytes);
    }
    Ok((image, (RECORD.to_owned(), bytes)))
}

/// GET `url`, the whole body (status 2xx only).
async fn download(url: &str) -> std::result::Result<Vec<u8>, String> {
    let client = reqwest::Client::builder()
        .user_agent(concat!("ferry/", env!("CARGO_PKG_VERSION")))
        .connect_timeout(std::time::Duration::from_secs(30))
        .timeout(DOWNLOAD_TIMEOUT)
        .build()
        .map_err(|error| error.to_string())?;
    let response = client
        .get(url)
        .send()
        .await
        .map_err(|error| describe(&error))?;
    let status = response.status();
    if !status.is_success() {
        return Err(format!("answered {status}"));
    }
    let body = response.bytes().await.map_err(|error| describe(&error))?;
    if body.len() as u64 > MAXIMUM_BYTES {
        return Err(format!("{} bytes is more than ferry accepts", body.len()));
    }
    Ok(body.to_vec())
}

/// A reqwest error with its causes.
fn describe(error: &reqwest::Error) -> String {
    let mut text = error.to_string();
    let mut source = std::error::Error::source(error);
    while let Some(cause) = source {
        text.push_str(&format!(": {cause}"));
        source = cause.source();
    }
    text
}

/// The graph-data layer: every folder, file and symbolic link of the
/// tarball (gzip or plain tar) under [`GRAPH_DATA_FOLDER`], with fixed
/// headers, sorted by path. An entry that would leave the folder is refused.
pub fn graph_data_layer(tarball: &[u8]) -> std::result::Result<Vec<u8>, String> {
    let plain;
    let tar_bytes: &[u8] = if tarball.starts_with(&[0x1f, 0x8b]) {
        let mut output = Vec::new();
        flate2::read::GzDecoder::new(tarball)
            .take(MAXIMUM_BYTES)
            .read_to_end(&mut output)
            .map_err(|cause| format!("not a gzip stream: {cause}"))?;
        plain = output;
        &plain
    } else {
        tarball
    };
    enum Entry {
        Folder,
        File(Vec<u8>),
        Link(String),
    }
    let mut entries: BTreeMap<String, Entry> = BTreeMap::new();
    let mut archive = tar::Archive::new(tar_bytes);
    let listed = archive
        .entries()
        .map_err(|cause| format!("not a tar archive: {cause}"))?;
    for entry in listed {
        let mut entry = entry.map_err(|cause| format!("not a tar archive: {cause}"))?;
        let path = entry
            .path()
            .map_err(|cause| format!("an entry's path: {cause}"))?
            .into_owned();
        let mut parts = Vec::new();
        for component in path.components() {
            match component {
                std::path::Component::Normal(part) => {
                    parts.push(part.to_string_lossy().into_owned());
                }
                std::path::Component::CurDir => {}
                _ => return Err(format!("the entry {} leaves its folder", path.display())),
            }
        }
        if parts.is_empty() {
            continue;
        }
        let name = parts.join("/");
        let kind = entry.header().entry_type();
        let made = if kind.is_dir() {
            Entry::Folder
        } else if kind.is_file() {
            let mut bytes = Vec::new();
            entry
                .read_to_end(&mut bytes)
                .map_err(|cause| format!("{name}: {cause}"))?;
            Entry::File(bytes)
        } else if kind.is_symlink() {
            let target = entry
                .link_name()
                .map_err(|cause| format!("{name}: {cause}"))?
                .ok_or_else(|| format!("{name}: a link without a target"))?;
            Entry::Link(target.to_string_lossy().into_owned())
        } else {
            // Devices, FIFOs and the like carry no graph data.
            continue;
        };
        // Every parent folder is listed, whether the tarball lists it or not.
        for end in 1..parts.len() {
            entries
                .entry(parts[..end].join("/"))
                .or_insert(Entry::Folder);
        }
        entries.insert(name, made);
    }
    let mut builder = tar::Builder::new(Vec::new());
    let mut append =
        |path: &str, kind: tar::EntryType, mode: u32, data: &[u8], link: Option<&str>| {
            let mut header = tar::Header::new_gnu();
            header.set_entry_type(kind);
            header.set_uid(0);
            header.set_gid(0);
            header.set_mtime(0);
            header.set_mode(mode);
            header.set_size(data.len() as u64);
            match link {
                Some(target) => builder.append_link(&mut header, path, target),
                None => builder.append_data(&mut header, path, data),
            }
            .map_err(|cause| format!("{path}: {cause}"))
        };
    let mut folder = String::new();
    for part in GRAPH_DATA_FOLDER.split('/') {
        folder.push_str(part);
        folder.push('/');
        append(&folder, tar::EntryType::Directory, 0o755, &[], None)?;
    }
    for (name, entry) in &entries {
        let path = format!("{GRAPH_DATA_FOLDER}/{name}");
        match entry {
            Entry::Folder => append(
                &format!("{path}/"),
                tar::EntryType::Directory,
                0o755,
                &[],
                None,
            )?,
            Entry::File(bytes) => append(&path, tar::EntryType::Regular, 0o644, bytes, None)?,
            Entry::Link(target) => {
                append(&path, tar::EntryType::Symlink, 0o777, &[], Some(target))?;
            }
        }
    }
    builder
        .into_inner()
        .map_err(|cause| format!("the layer: {cause}"))
}

/// The OCI media type of a base layer (the same bytes under the OCI name
/// of a Docker layer type).
fn oci_layer_media_type(media_type: &str) -> String {
    match media_type {
        "application/vnd.docker.image.rootfs.diff.tar.gzip" => {
            "application/vnd.oci.image.layer.v1.tar+gzip".to_owned()
        }
        "application/vnd.docker.image.rootfs.foreign.diff.tar.gzip" => {
            "application/vnd.oci.image.layer.nondistributable.v1.tar+gzip".to_owned()
        }
        other => other.to_owned(),
    }
}

fn checked(digest: &Digest, bytes: Vec<u8>) -> std::result::Result<Vec<u8>, String> {
    if digest_of(digest.algorithm(), &bytes) != *digest {
        return Err(format!("the content of {digest} does not match its digest"));
    }
    Ok(bytes)
}

/// Builds the graph image over the linux/amd64 image of `base` (its layers
/// read from `base_source`), with the graph data of `tarball`; the new
/// layer and the config are stored in `cache` (with `store`; a plan only
/// describes them).
pub fn build(
    base: &dyn ImageBlobs,
    base_source: Source,
    tarball: &[u8],
    cache: &BlobStore,
    store: bool,
    target: &UpdateServiceTarget,
) -> std::result::Result<BuiltImage, String> {
    let keep = |bytes: &[u8], media_type: &str| {
        if store {
            store_blob(cache, bytes, media_type).map_err(|error| error.to_string())
        } else {
            Ok(BuiltBlob {
                digest: digest_of(ferry_schemas::DigestAlgorithm::Sha256, bytes),
                size: bytes.len() as u64,
                media_type: media_type.to_owned(),
                source: Source::Cache,
            })
        }
    };
    let layer = graph_data_layer(tarball)?;
    let manifest = image_manifest(base).map_err(|error| format!("the base image: {error}"))?;
    let config_digest = descriptor_digest(manifest.config())
        .map_err(|error| format!("the base image's config: {error}"))?;
    let mut config_bytes = Vec::new();
    base.blob(&config_digest)
        .map_err(|e| e.to_string())?
        .read_to_end(&mut config_bytes)
        .map_err(|cause| format!("the base config: {cause}"))?;
    let base_config = ImageConfig::parse(&checked(&config_digest, config_bytes)?)
        .map_err(|why| format!("the base config {config_digest} {why}"))?;
    let layer_blob = keep(&layer, LAYER_MEDIA_TYPE)?;
    let config = graph_image_config(&base_config, &layer_blob.digest);
    let config_bytes = serde_json::to_vec(&config).map_err(|cause| cause.to_string())?;
    let config_blob = keep(&config_bytes, CONFIG_MEDIA_TYPE)?;
    let mut layers = Vec::new();
    for descriptor in manifest.layers() {
        let digest = descriptor_digest(descriptor)
            .map_err(|error| format!("a layer of the base image: {error}"))?;
        layers.push(BuiltBlob {
            digest,
            size: descriptor.size(),
            media_type: oci_layer_media_type(descriptor.media_type().as_ref()),
            source: base_source.clone(),
        });
    }
    layers.push(layer_blob);
    BuiltImage::new(
        &target.graph_image_name,
        &target.graph_image_repository,
        &target.graph_image_tag,
        Category::Release,
        config_blob,
        layers,
    )
    .map_err(|error| error.to_string())
}

/// The graph image's config: the base's platform, environment, working
/// folder and history, its diff IDs and the new layer's, oc-mirror's
/// command, no creation time (so the bytes depend on the inputs alone).
/// The fields are read through oci-spec's type except the history, taken
/// as the base wrote it: its entries written back through oci-spec's type
/// would lose fields it does not know and change order, and with them the
/// graph image's digest, which must stay what the same base and graph data
/// always gave.
fn graph_image_config(base: &ImageConfig, layer: &Digest) -> Value {
    let mut diff_ids = base.typed.rootfs().diff_ids().clone();
    // The layer is a plain tar: its diff ID is its digest.
    diff_ids.push(layer.to_string());
    let mut settings = serde_json::Map::new();
    if let Some(base_settings) = base.typed.config() {
        if let Some(env) = base_settings.env() {
            settings.insert("Env".to_owned(), json!(env));
        }
        if let Some(working_dir) = base_settings.working_dir() {
            settings.insert("WorkingDir".to_owned(), json!(working_dir));
        }
        if let Some(user) = base_settings.user() {
            settings.insert("User".to_owned(), json!(user));
        }
    }
    settings.insert("Cmd".to_owned(), json!(COMMAND));
    let mut history: Vec<Value> = base
        .document
        .get("history")
        .and_then(Value::as_array)
        .cloned()
        .unwrap_or_default();
    history.push(json!({
        "created_by": format!("ferry: graph data under /{GRAPH_DATA_FOLDER}"),
        "comment": "ferry",
    }));
    json!({
        "architecture": base.typed.architecture().to_string(),
        "os": base.typed.os().to_string(),
        "config": settings,
        "rootfs": {"type": "layers", "diff_ids": diff_ids},
        "history": history,
    })
}

/// The record of a built graph image: its manifest (exact text) and where
/// each blob is read (`null`: the cache).
fn record(image: &BuiltImage) -> Result<Vec<u8>> {
    let manifest = std::str::from_utf8(&image.manifest.bytes)
        .map_err(|_| WorkflowError::internal("the graph image's manifest is not UTF-8"))?;
    let sources: BTreeMap<String, Option<String>> = image
        .config
        .iter()
        .chain(&image.layers)
        .map(|blob| {
            let source = match &blob.source {
                Source::Cache => None,
                Source::Registry(repository) => Some(repository.clone()),
            };
            (blob.digest.to_string(), source)
        })
        .collect();
    serde_json::to_vec_pretty(&json!({
        "format_version": RECORD_FORMAT_VERSION,
        "manifest": manifest,
        "sources": sources,
    }))
    .map_err(WorkflowError::internal)
}

/// The graph image a record describes, named by `target`.
pub fn image_from_record(bytes: &[u8], target: &UpdateServiceTarget) -> Result<BuiltImage> {
    let refused = |why: String| graph_error(format!("the record {RECORD} cannot be used: {why}"));
    let record: Value = serde_json::from_slice(bytes).map_err(|e| refused(e.to_string()))?;
    if record["format_version"].as_u64() != Some(RECORD_FORMAT_VERSION) {
        return Err(refused(format!(
            "format_version is {}, this ferry reads {RECORD_FORMAT_VERSION}",
            record["format_version"]
        )));
    }
    let manifest_text = record["manifest"]
        .as_str()
        .ok_or_else(|| refused("no manifest".to_owned()))?;
    let manifest = match ManifestContent::parse(manifest_text.as_bytes(), "") {
        Ok(ManifestContent::Image(manifest)) => manifest,
        Ok(ManifestContent::Index(_)) => {
            return Err(refused("its manifest is an index".to_owned()));
        }
        Err(why) => return Err(refused(format!("its manifest {why}"))),
    };
    let blob = |descriptor: &Descriptor| -> Result<BuiltBlob> {
        let digest = descriptor_digest(descriptor).map_err(refused)?;
        let source = match &record["sources"][digest.to_string()] {
            Value::Null => Source::Cache,
            Value::String(repository) => Source::Registry(repository.clone()),
            other => return Err(refused(format!("the source of {digest} is {other}"))),
        };
        Ok(BuiltBlob {
            size: descriptor.size(),
            media_type: descriptor.media_type().to_string(),
            digest,
            source,
        })
    };
    let config = blob(manifest.config())?;
    let layers = manifest
        .layers()
        .iter()
        .map(blob)
        .collect::<Result<Vec<_>>>()?;
    let image = BuiltImage::new(
        &target.graph_image_name,
        &target.graph_image_repository,
        &target.graph_image_tag,
        Category::Release,
        config,
        layers,
    )?;
    // The manifest is written again from its parts: the same bytes, or the
    // record was not ferry's.
    if image.manifest.bytes != manifest_text.as_bytes() {
        return Err(refused(
            "its manifest is not the one ferry writes for its blobs".to_owned(),
        ));
    }
    Ok(image)
}

fn read_record(workspace: &Workspace) -> Option<Vec<u8>> {
    std::fs::read(workspace.root().join(RECORD)).ok()
}

/// The cache's record, when there is one.
fn read_shared_record(sources: &ReleaseSources) -> Option<Vec<u8>> {
    std::fs::read(sources.shared_graph_image.as_ref()?).ok()
}

/// A copy of the record in the cache. One that cannot be written costs
/// only a later build: logged, not an error.
fn share_record(sources: &ReleaseSources, bytes: &[u8]) {
    let Some(path) = &sources.shared_graph_image else {
        return;
    };
    if let Err(error) = write_atomically(path, bytes) {
        tracing::warn!("the graph image's record was not shared through the cache: {error}");
    }
}

fn save_record(workspace: &Workspace, bytes: &[u8]) -> Result<()> {
    write_atomically(&workspace.root().join(RECORD), bytes)
}

/// Writes `bytes` to `path` whole ([`crate::atomic_file`]).
fn write_atomically(path: &std::path::Path, bytes: &[u8]) -> Result<()> {
    crate::atomic_file::write(path, bytes)
        .map_err(|cause| graph_error(format!("cannot save {}: {cause}", path.display())))
}

#[cfg(test)]
mod tests;
