//! The release collector: `mirror.platform` turned into release images.
//!
//! For each configured channel and architecture the update service is
//! asked for its graph (`crate::update_graph`; each answer saved in the
//! workspace, and read back instead with `--trust-state`), the pure
//! selection of `ferry-content` picks the releases (its warnings go to the
//! user), then each payload is read: only `release-manifests/` out of its
//! layers (`crate::catalog_image`, the linux/amd64 image of a
//! multi-architecture index), kept in the workspace by payload digest so a
//! payload is read over the network once. Every component of
//! `image-references` becomes a release image, named as oc-mirror names
//! them (notes §4.5): the payload at `openshift/release-images:<tag>`,
//! components at `openshift/release:<tag>-<component>`, the KubeVirt disk
//! with `kubeVirtContainer`. A multi-architecture payload is an index and
//! is mirrored whole, like any index.
//!
//! Unless `--ignore-release-signature`, every payload's signature is
//! fetched and verified (`crate::release_signature`; offline, in
//! disk-to-mirror, only the ones kept in `working-dir/signatures/`) before
//! any of its images is collected; the verified signatures go into the
//! image set for the signature ConfigMap.
//!
//! The release tag is the one the payload's signature identity gives in
//! oc-mirror (`<version>-<architecture>`, e.g. `4.16.1-x86_64`,
//! `4.16.1-multi`); it is built from the selected version and
//! architecture, which is what the identity says for OpenShift's payloads.
//! An explicit `platform.release` takes the tag its signature's identity
//! gives; unverified (`--ignore-release-signature`), its own tag, or its
//! digest's hex when it has none.
//!
//! Any error here is a release error: it ends the run before anything is
//! pushed, with the release exit bit (notes §7).

use std::collections::{BTreeMap, BTreeSet};
use std::path::{Path, PathBuf};

use ferry_content::release::graph::UpdateGraph;
use ferry_content::release::naming::{RELEASE_IMAGES_REPOSITORY, RELEASE_REPOSITORY};
use ferry_content::release::payload::{
    BOOT_IMAGES, IMAGE_REFERENCES, KUBE_VIRT_CONTAINER, RELEASE_METADATA, kube_virt_container,
    parse_image_references, stream_architecture,
};
use ferry_content::release::selection::{Graphs, Selection, configured_graphs, select};
use ferry_planner::Category;
use ferry_schemas::config::{Architecture, ChannelType, Platform};
use ferry_schemas::{Digest, ImageReference, ImageSetConfiguration};

use crate::catalog_image::{RegistryAccess, RegistryAccessOptions};
use crate::naming::flatten;
use crate::release_signature::{ReleaseSignature, ReleaseSignatures, SignatureSettings};
use crate::update_graph::{FetchedGraph, UpdateService};
use crate::workflow::collect::{CollectContext, CollectedImage, Collector, ImageSet};
use crate::workflow::error::{Result, WorkflowError};
use crate::workflow::workspace::Workspace;

/// The folder of a payload that holds the files ferry reads.
const RELEASE_MANIFESTS: &str = "release-manifests";

/// Where release content comes from in a run.
#[derive(Clone, Debug)]
pub struct ReleaseSources {
    /// How payloads are reached (registries.conf, credentials, TLS).
    pub registries: RegistryAccessOptions,
    /// `UPDATE_URL_OVERRIDE` as the caller read it.
    pub update_url_override: Option<String>,
    /// `FERRY_GRAPH_DATA_URL` as the caller read it: where the graph data
    /// of `graph: true` is downloaded (even with `UPDATE_URL_OVERRIDE`).
    pub graph_data_url: Option<String>,
    /// Where graph answers and payload files are saved.
    pub workspace: Workspace,
    /// `--trust-state`: graphs saved in the workspace are used instead of
    /// asking the update service again.
    pub reuse_saved_graphs: bool,
    /// Disk-to-mirror: graphs and payload files come from the workspace
    /// alone (restored from the deliveries by [`restore_inputs`]); neither
    /// the update service nor a registry is asked.
    pub offline: bool,
    /// How payload signatures are found and verified (`OCP_SIGNATURE_URL`,
    /// `OCP_SIGNATURE_VERIFICATION_PK`); `None`: `--ignore-release-signature`,
    /// nothing is verified.
    pub signatures: Option<SignatureSettings>,
    /// The cache's `signatures/` folder: verified signatures shared by the
    /// workspaces that use the cache (the enclave flow).
    pub shared_signatures: Option<PathBuf>,
    /// The cache's record of the graph image built or delivered last
    /// (`graph-image.json`): shared by the workspaces that use the cache, so
    /// an enclave's mirror-to-disk reuses what disk-to-mirror delivered.
    pub shared_graph_image: Option<PathBuf>,
}

impl ReleaseSources {
    /// `working-dir/hold-release/cincinnati-graph-data/`: one file per
    /// channel and architecture, `<arch>-<channel>.json` (oc-mirror's
    /// place and names).
    pub fn graphs_folder(&self) -> PathBuf {
        graphs_folder(&self.workspace)
    }
}

/// Saved graph answers, under `working-dir/`.
const GRAPHS: &str = "hold-release/cincinnati-graph-data";
/// Saved payload files, under `working-dir/`.
const PAYLOADS: &str = "hold-release/payloads";

/// The folder of saved graph answers in `workspace`.
pub fn graphs_folder(workspace: &Workspace) -> PathBuf {
    workspace.root().join(GRAPHS)
}

/// The folder of saved payload files in `workspace`: one folder per
/// payload digest (`sha256-<hex>`), holding the files of
/// `release-manifests/` ferry reads.
pub fn payloads_folder(workspace: &Workspace) -> PathBuf {
    workspace.root().join(PAYLOADS)
}

/// Verified release signatures, under `working-dir/` (as
/// `Workspace::signatures` names the folder).
const SIGNATURES: &str = "signatures";

/// Version of the `inputs.json` document deliveries carry.
const INPUTS_FORMAT_VERSION: u32 = 1;

/// `inputs.json` as a delivery carries it: compact JSON
/// `{"format_version":1,"files":{"<path under working-dir/>":"<text>"},
/// "signatures":{"signatures/<name>":"<base64>"}}`, paths sorted (so
/// deliveries stay reproducible). Every file the collectors read is text
/// (graph answers, ImageStreams, YAML) but the payloads' signatures
/// (OpenPGP messages), kept apart in base64 (an older ferry ignores them).
/// `None` when nothing was read.
pub fn inputs_document(inputs: &BTreeMap<String, Vec<u8>>) -> Result<Option<Vec<u8>>> {
    use base64::Engine as _;
    if inputs.is_empty() {
        return Ok(None);
    }
    let mut files = serde_json::Map::new();
    let mut signatures = serde_json::Map::new();
    for (path, bytes) in inputs {
        if path.starts_with(&format!("{SIGNATURES}/")) {
            let encoded = base64::engine::general_purpose::STANDARD.encode(bytes);
            signatures.insert(path.clone(), serde_json::Value::String(encoded));
            continue;
        }
        let text = std::str::from_utf8(bytes).map_err(|_| {
            WorkflowError::internal(format!("the collection input {path} is not UTF-8 text"))
        })?;
        files.insert(path.clone(), serde_json::Value::String(text.to_owned()));
    }
    let mut document = serde_json::json!({
        "format_version": INPUTS_FORMAT_VERSION,
        "files": files,
    });
    if !signatures.is_empty() {
        document["signatures"] = serde_json::Value::Object(signatures);
    }
    serde_json::to_vec(&document)
        .map(Some)
        .map_err(WorkflowError::internal)
}

/// Whether `path` (from a delivery) is a plain relative path below
/// `prefix` (`hold-release/`, `signatures/`): nothing that could leave it.
fn below(path: &str, prefix: &str) -> bool {
    path.starts_with(prefix)
        && Path::new(path)
            .components()
            .all(|part| matches!(part, std::path::Component::Normal(_)))
}

/// Writes `bytes` at `path` under `workspace`, whole, creating its folder.
fn restore_file(workspace: &Workspace, path: &str, bytes: &[u8]) -> Result<()> {
    let target = workspace.root().join(path);
    crate::atomic_file::write(&target, bytes).map_err(|cause| {
        WorkflowError::environment(format!("cannot write {}: {cause}", target.display()))
    })
}

/// Writes the files of a delivery's `inputs.json` into `workspace` (the
/// disconnected side's), refusing any path that would leave
/// `working-dir/hold-release/` (and, for signatures,
/// `working-dir/signatures/`). Returns how many files were written.
pub fn restore_inputs(workspace: &Workspace, document: &[u8]) -> Result<usize> {
    use base64::Engine as _;
    let refused = |why: String| {
        WorkflowError::input(format!("the delivery's inputs.json cannot be used: {why}"))
    };
    let value: serde_json::Value =
        serde_json::from_slice(document).map_err(|error| refused(error.to_string()))?;
    if value["format_version"].as_u64() != Some(u64::from(INPUTS_FORMAT_VERSION)) {
        return Err(refused(format!(
            "format_version is {}, this ferry reads {INPUTS_FORMAT_VERSION}",
            value["format_version"]
        )));
    }
    let files = value["files"]
        .as_object()
        .ok_or_else(|| refused("no `files` object".to_owned()))?;
    let empty = serde_json::Map::new();
    let signatures = match &value["signatures"] {
        serde_json::Value::Null => &empty,
        serde_json::Value::Object(signatures) => signatures,
        _ => return Err(refused("`signatures` is not an object".to_owned())),
    };
    // Every path is checked before anything is written.
    let mut restored: Vec<(&String, Vec<u8>)> = Vec::new();
    for (path, text) in files {
        let text = text
            .as_str()
            .ok_or_else(|| refused(format!("{path} is not text")))?;
        if !below(path, "hold-release/") {
            return Err(refused(format!("{path} is not a path under hold-release/")));
        }
        restored.push((path, text.as_bytes().to_vec()));
    }
    for (path, encoded) in signatures {
        if !below(path, &format!("{SIGNATURES}/")) {
            return Err(refused(format!("{path} is not a path under {SIGNATURES}/")));
        }
        let bytes = encoded
            .as_str()
            .and_then(|text| base64::engine::general_purpose::STANDARD.decode(text).ok())
            .ok_or_else(|| refused(format!("{path} is not base64 text")))?;
        restored.push((path, bytes));
    }
    for (path, bytes) in &restored {
        restore_file(workspace, path, bytes)?;
    }
    Ok(restored.len())
}

/// `mirror.platform`.
pub struct Releases;

impl Collector for Releases {
    fn category(&self) -> Category {
        Category::Release
    }

    fn collect(
        &self,
        configuration: &ImageSetConfiguration,
        context: &CollectContext,
        into: &mut ImageSet,
    ) -> Result<()> {
        let Some(platform) = &configuration.mirror.platform else {
            return Ok(());
        };
        if platform.channels.is_empty() && platform.release.is_none() && !platform.graph {
            return Ok(());
        }
        let Some(sources) = &context.releases else {
            return Err(WorkflowError::input(
                "release mirroring (`platform`) in disk-to-mirror needs the update graphs and payload files a delivery carries, and no delivery in the folder carries them: mirror to disk again with this configuration; nothing was done",
            ));
        };
        // The registry access and the update service run on runtimes of
        // their own: a thread keeps them away from any runtime the caller
        // is on.
        let collected = std::thread::scope(|scope| {
            scope
                .spawn(|| collect_releases(platform, context, sources))
                .join()
        })
        .map_err(|_| WorkflowError::internal("the release collector panicked"))?
        .map_err(|error| error.in_category(Category::Release))?;
        into.warnings.extend(collected.warnings);
        into.release_signatures.extend(collected.signatures);
        into.inputs.extend(collected.inputs);
        if let Some(graph_image) = collected.graph_image {
            into.update_service =
                Some(crate::workflow::graph_image::update_service_target(context));
            into.built.push(graph_image);
            if into.cache.is_none() {
                into.cache = context.cache.clone();
            }
        }
        let mut names: BTreeSet<String> =
            into.images.iter().map(|image| image.name.clone()).collect();
        for image in collected.images {
            if names.insert(image.name.clone()) {
                into.images.push(image);
            }
        }
        Ok(())
    }
}

/// What the collector found.
#[derive(Debug, Default)]
struct Collected {
    images: Vec<CollectedImage>,
    warnings: Vec<String>,
    /// What was read, by path under `working-dir/`.
    inputs: BTreeMap<String, Vec<u8>>,
    /// Each payload's verified signature, by the payload image's name.
    signatures: BTreeMap<String, ReleaseSignature>,
    /// The graph-data image (`graph: true`).
    graph_image: Option<crate::workflow::built::BuiltImage>,
}

fn release_error(message: impl std::fmt::Display) -> WorkflowError {
    WorkflowError::environment(message).in_category(Category::Release)
}

fn collect_releases(
    platform: &Platform,
    context: &CollectContext,
    sources: &ReleaseSources,
) -> Result<Collected> {
    let access = context
        .registry_access(&sources.registries)
        .map_err(|error| release_error(format!("release payloads: {error}")))?;
    // A key file that cannot be read is an error before any payload.
    let signatures = sources
        .signatures
        .as_ref()
        .map(|settings| {
            ReleaseSignatures::new(settings, sources.workspace.signatures(), sources.offline)
                .map(|signatures| signatures.sharing(sources.shared_signatures.clone()))
        })
        .transpose()
        .map_err(|error| release_error(format!("release signatures: {error}")))?;
    let mut collected = Collected::default();
    let selection = if platform.channels.is_empty() {
        None
    } else {
        let selection = select_releases(platform, sources, &access, &mut collected.inputs)?;
        collected
            .warnings
            .extend(selection.warnings.iter().map(ToString::to_string));
        Some(selection)
    };
    let several_architectures = selection
        .as_ref()
        .is_some_and(|selection| selection.architectures.len() > 1);
    let mut payloads: Vec<(ImageReference, String, Architecture)> = Vec::new();
    for architecture_selection in selection.iter().flat_map(|s| &s.architectures) {
        let architecture = architecture_selection.architecture;
        for release in architecture_selection.releases() {
            let tag = format!("{}-{}", release.version, tag_suffix(architecture));
            payloads.push((release.payload.clone(), tag, architecture));
        }
    }
    if let Some(explicit) = &platform.release {
        payloads.push((explicit.clone(), String::new(), Architecture::Amd64));
    }
    if payloads.is_empty() && (selection.is_some() || platform.release.is_some()) {
        return Err(release_error(
            "no release images found: the channels select no release",
        ));
    }
    if platform.graph {
        let (image, (path, record)) =
            crate::workflow::graph_image::graph_image(&access, context, sources)?;
        collected.inputs.insert(path, record);
        collected.graph_image = Some(image);
    }
    for (payload, tag, architecture) in payloads {
        let (digest, files) = payload_files(&access, sources, &payload)?;
        for (name, bytes) in &files {
            collected.inputs.insert(
                format!(
                    "{PAYLOADS}/{}-{}/{name}",
                    digest.algorithm().name(),
                    digest.hex()
                ),
                bytes.clone(),
            );
        }
        let pinned = payload.with_digest(digest.clone());
        let signature = match &signatures {
            Some(signatures) => Some(
                access
                    .block_on(signatures.verified(&digest, &pinned))
                    .map_err(|error| {
                        release_error(format!(
                            "the release payload {pinned} is not verified: {error}"
                        ))
                    })?,
            ),
            None => None,
        };
        // An explicit payload takes the tag its signature's identity gives
        // (notes §4.5), else its own tag, else its digest's hex.
        let tag = if tag.is_empty() {
            signature
                .as_ref()
                .and_then(|signature| signature.release_tag.clone())
                .or_else(|| payload.tag().map(str::to_owned))
                .unwrap_or_else(|| digest.hex().to_owned())
        } else {
            tag
        };
        let kube_virt = platform
            .kube_virt_container
            .then_some((architecture, several_architectures));
        let images =
            release_images(&pinned, &tag, &files, kube_virt, context).map_err(release_error)?;
        if let (Some(signature), Some(payload_image)) = (signature, images.first()) {
            // Carried in deliveries, so disk-to-mirror verifies it offline.
            if let Some(name) = signature.kept_at.file_name() {
                collected.inputs.insert(
                    format!("{SIGNATURES}/{}", name.to_string_lossy()),
                    signature.bytes.clone(),
                );
            }
            collected
                .signatures
                .insert(payload_image.name.clone(), signature);
        }
        collected.images.extend(images);
    }
    Ok(collected)
}

/// The tag suffix oc-mirror's release tags carry for `architecture`.
pub fn tag_suffix(architecture: Architecture) -> &'static str {
    stream_architecture(architecture).unwrap_or("multi")
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

/// The name a release image goes by: its origin with the destination tag
/// added (unique per release and component, and a reference skopeo and
/// the archive accept).
fn image_name(origin: &ImageReference, tag: &str) -> std::result::Result<String, String> {
    let digest = origin
        .digest()
        .ok_or_else(|| format!("{origin} is not pinned to a digest"))?;
    Ok(format!("{}:{tag}@{digest}", origin.name()))
}

/// The images one payload brings: itself, every component of its
/// `image-references`, and (with `kube_virt`: the architecture, and
/// whether several are mirrored) its KubeVirt container disk. `payload`
/// is pinned; `files` are its `release-manifests/` files by name.
pub fn release_images(
    payload: &ImageReference,
    tag: &str,
    files: &BTreeMap<String, Vec<u8>>,
    kube_virt: Option<(Architecture, bool)>,
    context: &CollectContext,
) -> std::result::Result<Vec<CollectedImage>, String> {
    let file = |path: &str| {
        let name = path.strip_prefix("release-manifests/").unwrap_or(path);
        files
            .get(name)
            .ok_or_else(|| format!("{payload}: the payload has no {path}"))
    };
    let references = parse_image_references(file(IMAGE_REFERENCES)?)
        .map_err(|error| format!("{payload}: {error}"))?;
    let mut images = vec![CollectedImage {
        name: image_name(payload, tag)?,
        origin: payload.clone(),
        destination_repository: below_prefix(context, RELEASE_IMAGES_REPOSITORY),
        destination_tag: tag.to_owned(),
        category: Category::Release,
    }];
    let components = below_prefix(context, RELEASE_REPOSITORY);
    let mut add = |name: &str, image: &ImageReference| -> std::result::Result<(), String> {
        if image.digest().is_none() {
            return Err(format!(
                "{payload}: component `{name}` names {image}, which is not pinned to a digest"
            ));
        }
        let destination_tag = format!("{tag}-{name}");
        images.push(CollectedImage {
            name: image_name(image, &destination_tag)?,
            origin: image.clone(),
            destination_repository: components.clone(),
            destination_tag,
            category: Category::Release,
        });
        Ok(())
    };
    for component in &references.components {
        add(&component.name, &component.image)?;
    }
    if let Some((architecture, several)) = kube_virt {
        let disk = kube_virt_container(file(BOOT_IMAGES)?, architecture)
            .map_err(|error| format!("{payload}: {error}"))?;
        let name = match (several, stream_architecture(architecture)) {
            (true, Some(suffix)) => format!("{KUBE_VIRT_CONTAINER}-{suffix}"),
            _ => KUBE_VIRT_CONTAINER.to_owned(),
        };
        add(&name, &disk.image)?;
    }
    Ok(images)
}

/// The files ferry reads from a payload's `release-manifests/`, from the
/// workspace when this digest was read before, else from the registry
/// (then saved). Returns the payload's digest.
fn payload_files(
    access: &RegistryAccess,
    sources: &ReleaseSources,
    payload: &ImageReference,
) -> Result<(Digest, BTreeMap<String, Vec<u8>>)> {
    let workspace = &sources.workspace;
    if let Some(digest) = payload.digest()
        && let Some(files) = saved_payload_files(workspace, digest)
    {
        return Ok((digest.clone(), files));
    }
    if sources.offline {
        return Err(release_error(format!(
            "the deliveries carry no files of the release payload {payload}: mirror it to disk again with this configuration"
        )));
    }
    let (digest, folder) = access
        .read_image_folder(payload, RELEASE_MANIFESTS)
        .map_err(|error| {
            release_error(format!(
                "cannot read the release payload {payload}: {error}"
            ))
        })?;
    let wanted = [IMAGE_REFERENCES, RELEASE_METADATA, BOOT_IMAGES];
    let files: BTreeMap<String, Vec<u8>> = folder
        .files
        .into_iter()
        .filter(|(name, _)| {
            wanted
                .iter()
                .any(|path| path.ends_with(&format!("/{name}")))
        })
        .collect();
    if !files.contains_key("image-references") {
        return Err(release_error(format!(
            "the release payload {payload} has no {IMAGE_REFERENCES}"
        )));
    }
    save_payload_files(workspace, &digest, &files)?;
    Ok((digest, files))
}

fn payload_folder(workspace: &Workspace, digest: &Digest) -> PathBuf {
    payloads_folder(workspace).join(format!("{}-{}", digest.algorithm().name(), digest.hex()))
}

fn saved_payload_files(
    workspace: &Workspace,
    digest: &Digest,
) -> Option<BTreeMap<String, Vec<u8>>> {
    let folder = payload_folder(workspace, digest);
    let entries = std::fs::read_dir(&folder).ok()?;
    let mut files = BTreeMap::new();
    for entry in entries {
        let entry = entry.ok()?;
        let name = entry.file_name().to_string_lossy().into_owned();
        files.insert(name, std::fs::read(entry.path()).ok()?);
    }
    files.contains_key("image-references").then_some(files)
}

/// Writes the files into a temporary folder, then renames it into place:
/// a folder that exists is whole.
fn save_payload_files(
    workspace: &Workspace,
    digest: &Digest,
    files: &BTreeMap<String, Vec<u8>>,
) -> Result<()> {
    let folder = payload_folder(workspace, digest);
    let parent = payloads_folder(workspace);
    let failed = |cause: std::io::Error| {
        release_error(format!(
            "cannot save the payload files in {}: {cause}",
            parent.display()
        ))
    };
    std::fs::create_dir_all(&parent).map_err(failed)?;
    let temporary = tempfile::tempdir_in(&parent).map_err(failed)?;
    for (name, bytes) in files {
        std::fs::write(temporary.path().join(name), bytes).map_err(failed)?;
    }
    let temporary = temporary.keep();
    if let Err(cause) = std::fs::rename(&temporary, &folder) {
        let _ = std::fs::remove_dir_all(&temporary);
        if !folder.exists() {
            return Err(failed(cause));
        }
    }
    Ok(())
}

/// The file a graph answer is saved in.
fn graph_file(folder: &Path, channel: &str, architecture: Architecture) -> PathBuf {
    folder.join(format!("{}-{channel}.json", architecture.name()))
}

/// Asks for (or, with `reuse_saved_graphs`, reads back) every graph the
/// platform needs, as `UpdateService::select` does, then selects.
fn select_releases(
    platform: &Platform,
    sources: &ReleaseSources,
    access: &RegistryAccess,
    inputs: &mut BTreeMap<String, Vec<u8>>,
) -> Result<Selection> {
    let service = UpdateService::new(sources.update_url_override.clone()).map_err(release_error)?;
    let folder = sources.graphs_folder();
    let type_of = |channel: &str| {
        platform
            .channels
            .iter()
            .find(|configured| configured.name == channel)
            .map_or(ChannelType::Ocp, |configured| configured.channel_type)
    };
    let mut graph = |channel: &str, architecture: Architecture| -> Result<UpdateGraph> {
        let file = graph_file(&folder, channel, architecture);
        let input = format!("{GRAPHS}/{}-{channel}.json", architecture.name());
        if sources.reuse_saved_graphs || sources.offline {
            match std::fs::read(&file) {
                Ok(bytes) => {
                    let graph = UpdateGraph::parse(&bytes).map_err(|error| {
                        release_error(format!(
                            "the saved update graph {}: {error}",
                            file.display()
                        ))
                    })?;
                    inputs.insert(input, bytes);
                    return Ok(graph);
                }
                Err(_) if sources.offline => {
                    return Err(release_error(format!(
                        "the deliveries carry no update graph for channel \"{channel}\" ({}): mirror to disk again with this configuration",
                        architecture.name()
                    )));
                }
                Err(_) => {}
            }
        }
        let fetched: FetchedGraph = access
            .block_on(service.graph(type_of(channel), channel, architecture))
            .map_err(release_error)?;
        save_graph(&file, &fetched.body)?;
        inputs.insert(input, fetched.body);
        Ok(fetched.graph)
    };
    let mut graphs = Graphs::new();
    for (channel, architecture) in configured_graphs(platform) {
        let answer = graph(&channel, architecture)?;
        graphs.insert((channel, architecture), answer);
    }
    loop {
        match select(platform, &graphs) {
            Ok(selection) => return Ok(selection),
            Err(errors) => match errors.missing_graph() {
                Some(key) if !graphs.contains_key(&key) => {
                    let answer = graph(&key.0, key.1)?;
                    graphs.insert(key, answer);
                }
                _ => return Err(release_error(errors)),
            },
        }
    }
}

fn save_graph(file: &Path, body: &[u8]) -> Result<()> {
    let failed = |cause: std::io::Error| {
        release_error(format!(
            "cannot save the update graph {}: {cause}",
            file.display()
        ))
    };
    crate::atomic_file::write(file, body).map_err(failed)
}

#[cfg(test)]
mod tests {
    use super::*;

    const FIXTURE: &str = "../../shared/fixtures/openshift+oc-mirror/tests/unit/testdata/working-dir-fake/hold-release/ocp-release/4.14.1-x86_64/release-manifests";

    fn fixture_files() -> BTreeMap<String, Vec<u8>> {
        let folder = Path::new(env!("CARGO_MANIFEST_DIR")).join(FIXTURE);
        [
            "image-references",
            "0000_50_installer_coreos-bootimages.yaml",
        ]
        .into_iter()
        .map(|name| (name.to_owned(), std::fs::read(folder.join(name)).unwrap()))
        .collect()
    }

    fn payload() -> ImageReference {
        format!(
            "quay.io/openshift-release-dev/ocp-release@sha256:{}",
            "ab".repeat(32)
        )
        .parse()
        .unwrap()
    }

    #[test]
    fn a_real_payload_gives_its_components_under_oc_mirror_names() {
        let files = fixture_files();
        let context = CollectContext {
            prefix: "mirror".to_owned(),
            ..CollectContext::default()
        };
        let images = release_images(&payload(), "4.12.0-x86_64", &files, None, &context).unwrap();
        let references = parse_image_references(&files["image-references"]).unwrap();
        // The payload, then one image per ImageStream tag.
        assert_eq!(images.len(), references.components.len() + 1);
        assert!(references.components.len() > 100, "the real 4.12.0 list");
        let first = &images[0];
        assert_eq!(
            first.destination_repository,
            "mirror/openshift/release-images"
        );
        assert_eq!(first.destination_tag, "4.12.0-x86_64");
        assert_eq!(
            first.name,
            format!(
                "quay.io/openshift-release-dev/ocp-release:4.12.0-x86_64@sha256:{}",
                "ab".repeat(32)
            )
        );
        let component = &references.components[0];
        let image = &images[1];
        assert_eq!(image.origin, component.image);
        assert_eq!(image.destination_repository, "mirror/openshift/release");
        assert_eq!(
            image.destination_tag,
            format!("4.12.0-x86_64-{}", component.name)
        );
        assert!(
            images
                .iter()
                .all(|image| image.category == Category::Release)
        );
        let names: BTreeSet<&String> = images.iter().map(|image| &image.name).collect();
        assert_eq!(names.len(), images.len(), "every name is unique");
    }

    #[test]
    fn the_kube_virt_disk_is_added_with_an_architecture_suffix_when_several_are_mirrored() {
        let files = fixture_files();
        let context = CollectContext::default();
        let one = release_images(
            &payload(),
            "4.12.0-x86_64",
            &files,
            Some((Architecture::Amd64, false)),
            &context,
        )
        .unwrap();
        let disk = one.last().unwrap();
        assert_eq!(disk.destination_tag, "4.12.0-x86_64-kube-virt-container");
        assert_eq!(disk.destination_repository, "openshift/release");
        assert!(disk.origin.digest().is_some());
        let several = release_images(
            &payload(),
            "4.12.0-x86_64",
            &files,
            Some((Architecture::Amd64, true)),
            &context,
        )
        .unwrap();
        assert_eq!(
            several.last().unwrap().destination_tag,
            "4.12.0-x86_64-kube-virt-container-x86_64"
        );
        // arm64 ships no KubeVirt disk: an error, as in oc-mirror.
        let error = release_images(
            &payload(),
            "4.12.0-aarch64",
            &files,
            Some((Architecture::Arm64, false)),
            &context,
        )
        .unwrap_err();
        assert!(
            error.contains("could not find the kubevirt image"),
            "{error}"
        );
    }

    #[test]
    fn a_payload_without_image_references_is_an_error_and_max_nested_paths_apply() {
        let context = CollectContext {
            prefix: "a/b".to_owned(),
            max_nested_paths: 2,
            ..CollectContext::default()
        };
        let error = release_images(&payload(), "x", &BTreeMap::new(), None, &context).unwrap_err();
        assert!(
            error.contains("has no release-manifests/image-references"),
            "{error}"
        );
        let images = release_images(
            &payload(),
            "4.12.0-x86_64",
            &fixture_files(),
            None,
            &context,
        )
        .unwrap();
        assert_eq!(
            images[0].destination_repository,
            "a/b-openshift-release-images"
        );
    }

    #[test]
    fn inputs_round_trip_and_paths_outside_hold_release_are_refused() {
        let folder = tempfile::tempdir().unwrap();
        let workspace = Workspace::in_folder(folder.path());
        let inputs = BTreeMap::from([
            (
                "hold-release/cincinnati-graph-data/amd64-stable-4.16.json".to_owned(),
                b"{\"nodes\":[]}".to_vec(),
            ),
            (
                "hold-release/payloads/sha256-ab/image-references".to_owned(),
                b"kind: ImageStream\n".to_vec(),
            ),
        ]);
        let document = inputs_document(&inputs).unwrap().unwrap();
        assert_eq!(inputs_document(&BTreeMap::new()).unwrap(), None);
        assert_eq!(restore_inputs(&workspace, &document).unwrap(), 2);
        for (path, bytes) in &inputs {
            assert_eq!(&std::fs::read(workspace.root().join(path)).unwrap(), bytes);
        }
        for bad in [
            "../escape",
            "hold-release/../../escape",
            "/etc/passwd",
            "state.db",
        ] {
            let document = serde_json::json!({"format_version": 1, "files": {bad: "x"}});
            let error = restore_inputs(&workspace, document.to_string().as_bytes()).unwrap_err();
            assert!(
                error.message.contains("not a path under hold-release/"),
                "{bad}: {error}"
            );
        }
        assert!(!folder.path().join("escape").exists());
        // Signatures (binary) travel in base64 and are restored only under
        // signatures/.
        let signature = vec![0xa3, 0x01, 0xff, 0x00, 0x80];
        let with_signature = BTreeMap::from([(
            "signatures/4.16.1-x86_64-sha256-ab".to_owned(),
            signature.clone(),
        )]);
        let document = inputs_document(&with_signature).unwrap().unwrap();
        assert_eq!(restore_inputs(&workspace, &document).unwrap(), 1);
        assert_eq!(
            std::fs::read(workspace.signatures().join("4.16.1-x86_64-sha256-ab")).unwrap(),
            signature
        );
        for bad in [
            "signatures/../state.db",
            "hold-release/x",
            "../signatures/x",
        ] {
            let document =
                serde_json::json!({"format_version": 1, "files": {}, "signatures": {bad: "AA=="}});
            let error = restore_inputs(&workspace, document.to_string().as_bytes()).unwrap_err();
            assert!(
                error.message.contains("not a path under signatures/"),
                "{bad}: {error}"
            );
        }
        let newer = serde_json::json!({"format_version": 2, "files": {}});
        assert!(restore_inputs(&workspace, newer.to_string().as_bytes()).is_err());
    }
}
