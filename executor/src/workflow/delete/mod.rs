//! The delete workflow (oc-mirror's `delete`, notes §1.5 and §3.8), in two
//! steps that share one file format, the `DeleteImageList`:
//!
//! 1. [`generate`]: a `DeleteImageSetConfiguration` becomes the list of
//!    images to delete at a destination, offline, from the configuration
//!    and what earlier runs recorded in the workspace (top digests, for the
//!    cosign signature tags). The configuration goes through the same
//!    collect stage as a mirror run ([`crate::workflow::collect`]); one
//!    function, [`delete_items`], turns collected images into the list's
//!    items, so each category's images join the list as its collector
//!    lands. [`write_generated`] writes `delete-images[-ID].yaml` and
//!    `delete-imageset-config[-ID].yaml` to `working-dir/delete/`.
//! 2. [`delete_listed`]: every item checked against the destination, its
//!    tag resolved to a digest there, and its manifest deleted by digest.
//!    Blobs stay until the registry's garbage collector runs. An item
//!    already gone is done; a registry that does not allow deleting ends
//!    the run with the setting to change.
//!
//! This module owns the file format (reading and writing it), the two
//! steps, and forgetting deleted images in a disk workflow's cache
//! ([`forget_in_cache`]).

use std::collections::{BTreeMap, BTreeSet};
use std::path::{Path, PathBuf};

use ferry_planner::{Category, Destination};
use ferry_registry::client::ErrorKind as RegistryErrorKind;
use ferry_registry::{DeleteOutcome, RegistryClient};
use ferry_schemas::config::{API_VERSION, Delete, Mirror};
use ferry_schemas::{DeleteImageSetConfiguration, Digest, ImageReference, ImageSetConfiguration};
use ferry_store::{Cache, RecordedResolution};
use serde::{Deserialize, Serialize};

use crate::workflow::collect::{CollectContext, CollectedImage, ImageSet, collect};
use crate::workflow::error::{Result, WorkflowError};
use crate::workflow::operators::selection::{self, SelectedBundle};
use crate::workflow::releases::ReleaseSources;
use crate::workflow::to_disk::Notice;
use crate::workflow::workspace::Workspace;

pub mod document;
pub mod operators;
pub mod plan;
pub mod shared;
pub mod within;

pub use shared::SharedContent;

/// The `kind` of a delete list.
pub const DELETE_LIST_KIND: &str = "DeleteImageList";

/// oc-mirror's image types, as a delete list names them.
#[derive(Clone, Copy, Debug, PartialEq, Eq, PartialOrd, Ord, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub enum ItemType {
    OcpRelease,
    OcpReleaseContent,
    CincinnatiGraph,
    OperatorCatalog,
    OperatorBundle,
    OperatorRelatedImage,
    Generic,
    HelmImage,
}

/// One image to delete.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase", deny_unknown_fields)]
pub struct DeleteItem {
    /// Where the image came from (the configuration's name).
    pub image_name: String,
    /// `docker://<registry>/<repository>:<tag>` at the destination.
    pub image_reference: String,
    #[serde(rename = "type")]
    pub image_type: ItemType,
}

/// The `DeleteImageList` file: what the second step deletes.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase", deny_unknown_fields)]
pub struct DeleteImageList {
    pub api_version: String,
    pub kind: String,
    #[serde(default)]
    pub items: Vec<DeleteItem>,
}

impl DeleteImageList {
    /// A list of `items`, with oc-mirror's `apiVersion` and `kind`.
    pub fn new(items: Vec<DeleteItem>) -> Self {
        DeleteImageList {
            api_version: API_VERSION.to_owned(),
            kind: DELETE_LIST_KIND.to_owned(),
            items,
        }
    }

    /// The file's text.
    pub fn to_yaml(&self) -> Result<String> {
        serde_yaml::to_string(self).map_err(WorkflowError::internal)
    }

    /// Reads a delete list's `text` (from the file `file`, for messages):
    /// its shape, its `kind`, and every item's two references.
    pub fn parse(file: &str, text: &str) -> Result<Self> {
        let list: DeleteImageList = serde_yaml::from_str(text).map_err(|error| {
            let place = error
                .location()
                .map(|at| format!("{file}:{}:{}", at.line(), at.column()))
                .unwrap_or_else(|| file.to_owned());
            WorkflowError::input(format!("{place}: not a DeleteImageList: {error}"))
        })?;
        if list.kind != DELETE_LIST_KIND {
            return Err(WorkflowError::input(format!(
                "{file}: kind is `{}`, not `{DELETE_LIST_KIND}` (the file `ferry delete --generate` writes to working-dir/delete/)",
                list.kind
            )));
        }
        let mut problems = Vec::new();
        for (index, item) in list.items.iter().enumerate() {
            // An operator catalog copied from an OCI layout is named by
            // its layout (`oci:///path`), as the configuration names it.
            let layout = item
                .image_name
                .strip_prefix("oci://")
                .is_some_and(|path| !path.is_empty());
            if !layout && let Err(problem) = item.image_name.parse::<ImageReference>() {
                problems.push(format!(
                    "item {}: imageName `{}`: {problem}",
                    index + 1,
                    item.image_name
                ));
            }
            if let Err(problem) = item.destination() {
                problems.push(format!("item {}: {problem}", index + 1));
            }
        }
        if !problems.is_empty() {
            return Err(WorkflowError::input(format!(
                "{file}: {}",
                problems.join("; ")
            )));
        }
        Ok(list)
    }
}

impl DeleteItem {
    /// The item's `imageReference` without `docker://`, as a reference.
    pub fn destination(&self) -> std::result::Result<ImageReference, String> {
        let Some(text) = self.image_reference.strip_prefix("docker://") else {
            return Err(format!(
                "imageReference `{}` does not start with docker://",
                self.image_reference
            ));
        };
        text.parse::<ImageReference>()
            .map_err(|problem| format!("imageReference `{}`: {problem}", self.image_reference))
    }
}

/// The list's type for a collected image, oc-mirror's names: a release
/// payload (`openshift/release-images`) or one of its components; an
/// operator image's type as [`operators::operator_images`] told it
/// (`operator_types`, by image name).
fn item_type(
    image: &CollectedImage,
    operator_types: &BTreeMap<String, ItemType>,
) -> Result<ItemType> {
    match image.category {
        Category::Additional => Ok(ItemType::Generic),
        Category::Helm => Ok(ItemType::HelmImage),
        Category::Release
            if image
                .destination_repository
                .ends_with(ferry_content::release::naming::RELEASE_IMAGES_REPOSITORY) =>
        {
            Ok(ItemType::OcpRelease)
        }
        Category::Release => Ok(ItemType::OcpReleaseContent),
        Category::Operator => operator_types.get(&image.name).copied().ok_or_else(|| {
            WorkflowError::internal(format!(
                "{}: an operator image the delete's operator part did not list",
                image.name
            ))
        }),
    }
}

/// What `--generate` made: the list and the configuration as applied.
#[derive(Clone, Debug)]
pub struct Generated {
    pub list: DeleteImageList,
    pub configuration: DeleteImageSetConfiguration,
    /// What the user should know (images this workspace never recorded,
    /// signatures it cannot know).
    pub notices: Vec<Notice>,
    /// Listed images left out because what stays in this image set needs
    /// them (operator images of bundles that stay, manifests an unlisted
    /// tag names: [`within`]); also in `notices`.
    pub kept: Vec<plan::KeptItem>,
}

/// The delete configuration as the image set configuration the collect
/// stage reads (oc-mirror converts it the same way; a delete has no
/// `blockedImages`).
pub fn as_image_set(configuration: &DeleteImageSetConfiguration) -> ImageSetConfiguration {
    let Delete {
        platform,
        operators,
        additional_images,
        helm,
        samples,
    } = configuration.delete.clone();
    ImageSetConfiguration {
        kind: "ImageSetConfiguration".to_owned(),
        api_version: API_VERSION.to_owned(),
        archive_size: None,
        mirror: Mirror {
            platform,
            operators,
            additional_images,
            helm,
            blocked_images: Vec::new(),
            samples,
        },
    }
}

/// What the workspace recorded that the delete list is made from.
#[derive(Clone, Debug, Default)]
pub struct WorkspaceRecord {
    /// The state's resolutions, by image name: top digests, signatures.
    pub resolutions: BTreeMap<String, RecordedResolution>,
    /// (repository, tag) → digest the state records as set at the destination.
    pub tags_at_destination: BTreeMap<(String, String), Digest>,
    /// Where the releases of a `delete.platform` are collected from: the
    /// update-graph answers and payload files earlier runs saved in the
    /// workspace, read offline (`None`: no release can be listed).
    pub releases: Option<ReleaseSources>,
    /// The operator bundles (with their images) runs recorded mirroring to
    /// the destination: what `delete.operators` lists from.
    pub bundles: Vec<SelectedBundle>,
}

impl WorkspaceRecord {
    /// What `state` recorded, for `destination`.
    pub fn load(state: &ferry_store::WorkspaceState, destination: &Destination) -> Result<Self> {
        let resolutions = state.resolutions().map_err(WorkflowError::environment)?;
        let history = state
            .history(&destination.display())
            .map_err(WorkflowError::environment)?;
        Ok(WorkspaceRecord {
            resolutions,
            tags_at_destination: history.tags,
            releases: None,
            bundles: Vec::new(),
        })
    }

    /// [`WorkspaceRecord::load`], with the releases `workspace` saved.
    pub fn load_in(
        workspace: &Workspace,
        state: &ferry_store::WorkspaceState,
        destination: &Destination,
    ) -> Result<Self> {
        let mut record = WorkspaceRecord::load(state, destination)?;
        record.bundles = selection::recorded(workspace, &destination.display())?;
        record.releases = Some(ReleaseSources {
            registries: Default::default(),
            update_url_override: None,
            graph_data_url: None,
            workspace: workspace.clone(),
            reuse_saved_graphs: true,
            offline: true,
            signatures: None,
            shared_signatures: None,
            shared_graph_image: None,
        });
        Ok(record)
    }
}

/// Step 1: the delete list of `configuration` at `destination`, offline:
/// destinations from oc-mirror's naming, signature tags from the top
/// digests the workspace `recorded`.
pub fn generate(
    configuration: &DeleteImageSetConfiguration,
    destination: &Destination,
    recorded: &WorkspaceRecord,
    delete_signatures: bool,
    protection: &Protection<'_>,
) -> Result<Generated> {
    let context = CollectContext {
        prefix: destination.prefix.clone(),
        // Releases from what the workspace saved, offline; operators from
        // the bundles it recorded (below), so no collector here reaches a
        // registry.
        releases: recorded.releases.clone(),
        ..CollectContext::default()
    };
    let mut image_set_configuration = as_image_set(configuration);
    let operators = std::mem::take(&mut image_set_configuration.mirror.operators);
    let mut image_set = collect(&image_set_configuration, &context)?;
    let mut operator_types = BTreeMap::new();
    let mut notices = Vec::new();
    let mut kept = Vec::new();
    if !operators.is_empty() {
        let deletion = operators::operator_images(
            &operators,
            &operators::OperatorSources {
                destination,
                recorded: &recorded.bundles,
                tags_at_destination: &recorded.tags_at_destination,
                force: protection.force,
            },
        )?;
        notices.extend(deletion.notices);
        for left_out in deletion.kept {
            notices.push(Notice::Warning(format!(
                "{}: left out, {} needs it (--force lists it anyway)",
                left_out.reference, left_out.needed_by
            )));
            kept.push(plan::KeptItem {
                reference: left_out.reference,
                needed_by: left_out.needed_by,
            });
        }
        for operator_image in deletion.images {
            operator_types.insert(operator_image.image.name.clone(), operator_image.image_type);
            image_set.images.push(operator_image.image);
        }
    }
    let (items, item_notices) = delete_items(
        &image_set,
        destination,
        recorded,
        delete_signatures,
        &operator_types,
    )?;
    notices.extend(item_notices);
    let items = within::leave_out_needed(
        items,
        &recorded.tags_at_destination,
        protection.force,
        &mut notices,
        &mut kept,
    );
    let items = protect(items, recorded, protection, &mut notices);
    Ok(Generated {
        list: DeleteImageList::new(items),
        configuration: configuration.clone(),
        notices,
        kept,
    })
}

/// Content other image sets need, and whether to delete it anyway.
#[derive(Clone, Copy, Debug)]
pub struct Protection<'a> {
    pub shared: &'a SharedContent,
    /// `--force`: list what other image sets need too (with a warning).
    pub force: bool,
}

/// `items` without those another image set still needs (the tag, or the
/// manifest the workspace recorded for it), each named in a warning;
/// with `force`, all of them, with a warning for each such item.
fn protect(
    items: Vec<DeleteItem>,
    recorded: &WorkspaceRecord,
    protection: &Protection<'_>,
    notices: &mut Vec<Notice>,
) -> Vec<DeleteItem> {
    let mut kept = Vec::new();
    for item in items {
        let Some((repository, tag)) = item.destination().ok().and_then(|reference| {
            Some((
                reference.repository().to_owned(),
                reference.tag()?.to_owned(),
            ))
        }) else {
            kept.push(item);
            continue;
        };
        let digest = recorded
            .tags_at_destination
            .get(&(repository.clone(), tag.clone()));
        let needing = protection.shared.needing(&repository, &tag, digest);
        if needing.is_empty() {
            kept.push(item);
        } else if protection.force {
            notices.push(Notice::Warning(format!(
                "{}: listed with --force although {} needs it",
                item.image_reference,
                shared::describe_needing(&needing)
            )));
            kept.push(item);
        } else {
            notices.push(Notice::Warning(format!(
                "{}: left out, {} needs it (--force lists it anyway)",
                item.image_reference,
                shared::describe_needing(&needing)
            )));
        }
    }
    kept
}

/// The delete list's items for collected images: one per image at the
/// destination and, with `delete_signatures`, one per cosign signature
/// tag; sorted by `imageReference` and de-duplicated by it (notes §3.8).
pub fn delete_items(
    image_set: &ImageSet,
    destination: &Destination,
    recorded: &WorkspaceRecord,
    delete_signatures: bool,
    operator_types: &BTreeMap<String, ItemType>,
) -> Result<(Vec<DeleteItem>, Vec<Notice>)> {
    let mut items = Vec::new();
    let mut notices = Vec::new();
    for image in &image_set.images {
        let image_type = item_type(image, operator_types)?;
        let at_destination = format!(
            "docker://{}/{}",
            destination.registry, image.destination_repository
        );
        items.push(DeleteItem {
            image_name: image.name.clone(),
            image_reference: format!("{at_destination}:{}", image.destination_tag),
            image_type,
        });
        let record = recorded.resolutions.get(&image.name);
        let mirrored_here = recorded.tags_at_destination.contains_key(&(
            image.destination_repository.clone(),
            image.destination_tag.clone(),
        ));
        if !mirrored_here {
            notices.push(Notice::Warning(format!(
                "{}: this workspace has no record of mirroring it to docker://{}; listed from the configuration alone",
                image.name,
                destination.display()
            )));
        }
        if !delete_signatures {
            continue;
        }
        let signed: Option<Digest> = match record {
            Some(record) if record.signature.is_some() => Some(record.top.clone()),
            Some(record) if record.signature_checked => None,
            Some(_) => {
                notices.push(Notice::Warning(format!(
                    "{}: mirrored with --remove-signatures, so no signature tag is listed for it",
                    image.name
                )));
                None
            }
            // Never recorded: as oc-mirror does without a cache, the tag
            // of a digest reference (a second step finds it gone if the
            // image had no signature).
            None => image.origin.digest().cloned(),
        };
        let Some(top) = signed else { continue };
        let tag = crate::resolve::signature_tag(&top);
        items.push(DeleteItem {
            image_name: format!(
                "{}/{}:{tag}",
                image.origin.registry(),
                image.origin.repository()
            ),
            image_reference: format!("{at_destination}:{tag}"),
            image_type,
        });
    }
    items.sort_by(|left, right| left.image_reference.cmp(&right.image_reference));
    items.dedup_by(|later, earlier| later.image_reference == earlier.image_reference);
    Ok((items, notices))
}

/// The two files `--generate` writes (`delete-images[-ID].yaml`,
/// `delete-imageset-config[-ID].yaml`), in `workspace`'s `delete/` folder.
pub fn generated_files(workspace: &Workspace, delete_id: Option<&str>) -> (PathBuf, PathBuf) {
    let suffix = delete_id.map(|id| format!("-{id}")).unwrap_or_default();
    let folder = workspace.delete_folder();
    (
        folder.join(format!("delete-images{suffix}.yaml")),
        folder.join(format!("delete-imageset-config{suffix}.yaml")),
    )
}

/// Refuses a `--delete-id` that is not a plain file name part.
pub fn check_delete_id(delete_id: &str) -> Result<()> {
    let plain = !delete_id.is_empty()
        && delete_id
            .chars()
            .all(|c| c.is_ascii_alphanumeric() || matches!(c, '-' | '_' | '.'))
        && !delete_id.starts_with('.');
    if plain {
        Ok(())
    } else {
        Err(WorkflowError::input(format!(
            "--delete-id `{delete_id}`: use letters, digits, `-`, `_` and `.` only (it becomes part of a file name)"
        )))
    }
}

/// The configuration as applied, as `delete-imageset-config.yaml` holds it.
#[derive(Serialize)]
#[serde(rename_all = "camelCase")]
struct AppliedConfiguration<'a> {
    api_version: &'a str,
    kind: &'a str,
    delete: &'a Delete,
}

/// The configuration as applied, with image names as `typed` (the
/// configuration's text) wrote them: oc-mirror writes its configuration
/// back without adding `docker://` to a name typed without it (notes §3.8).
pub fn applied_configuration(
    configuration: &DeleteImageSetConfiguration,
    typed: &str,
) -> Result<String> {
    let mut applied = serde_yaml::to_value(AppliedConfiguration {
        api_version: API_VERSION,
        kind: "DeleteImageSetConfiguration",
        delete: &configuration.delete,
    })
    .map_err(WorkflowError::internal)?;
    if let Ok(original) = serde_yaml::from_str::<serde_yaml::Value>(typed) {
        for (list, field) in [("additionalImages", "name"), ("operators", "catalog")] {
            let typed_items = original
                .get("delete")
                .and_then(|delete| delete.get(list))
                .and_then(serde_yaml::Value::as_sequence);
            let Some(items) = applied
                .get_mut("delete")
                .and_then(|delete| delete.get_mut(list))
                .and_then(serde_yaml::Value::as_sequence_mut)
            else {
                continue;
            };
            for (index, item) in items.iter_mut().enumerate() {
                let typed_name = typed_items
                    .and_then(|typed| typed.get(index))
                    .and_then(|typed| typed[field].as_str());
                if let (Some(typed_name), Some(mapping)) = (typed_name, item.as_mapping_mut()) {
                    mapping.insert(field.into(), typed_name.into());
                }
            }
        }
    }
    serde_yaml::to_string(&applied).map_err(WorkflowError::internal)
}

/// Writes what [`generate`] made to [`generated_files`] (the configuration
/// with its names as `typed` wrote them); returns their paths.
pub fn write_generated(
    workspace: &Workspace,
    delete_id: Option<&str>,
    generated: &Generated,
    typed: &str,
) -> Result<(PathBuf, PathBuf)> {
    let (list_path, configuration_path) = generated_files(workspace, delete_id);
    let configuration = applied_configuration(&generated.configuration, typed)?;
    write_file(&list_path, &generated.list.to_yaml()?)?;
    write_file(&configuration_path, &configuration)?;
    Ok((list_path, configuration_path))
}

/// Writes `text` to `path` whole ([`crate::atomic_file`]), so a reader
/// never sees half a file.
fn write_file(path: &Path, text: &str) -> Result<()> {
    crate::atomic_file::write(path, text.as_bytes()).map_err(|cause| {
        WorkflowError::environment(format!("cannot write {}: {cause}", path.display()))
    })
}

/// Items whose `imageReference` is not where `destination` keeps them
/// (notes §3.8): release payloads exactly at `<destination>/openshift/release-images`,
/// release components at `<destination>/openshift/release`, everything
/// else below `<destination>/`. Each with why.
pub fn misplaced_items(list: &DeleteImageList, destination: &Destination) -> Vec<String> {
    let base = destination.display();
    let mut problems = Vec::new();
    for item in &list.items {
        let Ok(reference) = item.destination() else {
            problems.push(format!(
                "{}: not a docker:// reference",
                item.image_reference
            ));
            continue;
        };
        let name = reference.name();
        let expected = match item.image_type {
            ItemType::OcpRelease => Some(format!("{base}/openshift/release-images")),
            ItemType::OcpReleaseContent => Some(format!("{base}/openshift/release")),
            _ => None,
        };
        let fits = match &expected {
            Some(expected) => name == *expected,
            None => name.starts_with(&format!("{base}/")),
        };
        if !fits {
            problems.push(match expected {
                Some(expected) => format!(
                    "{}: expected at {expected} for type {:?}",
                    item.image_reference, item.image_type
                ),
                None => format!("{}: not below docker://{base}/", item.image_reference),
            });
        }
    }
    problems
}

/// What became of one item.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum ItemOutcome {
    /// Its manifest was deleted.
    Deleted(Digest),
    /// `--dry-run`: its manifest would be deleted.
    WouldDelete(Digest),
    /// The destination did not have it (any more): nothing to do.
    AlreadyGone,
    /// Deleting failed, with why.
    Failed(String),
}

/// What the second step did, item by item in the list's order.
#[derive(Clone, Debug, Default)]
pub struct DeleteReport {
    pub outcomes: Vec<(DeleteItem, ItemOutcome)>,
}

impl DeleteReport {
    pub fn count(&self, matches: impl Fn(&ItemOutcome) -> bool) -> usize {
        self.outcomes
            .iter()
            .filter(|(_, outcome)| matches(outcome))
            .count()
    }

    pub fn failed(&self) -> usize {
        self.count(|outcome| matches!(outcome, ItemOutcome::Failed(_)))
    }
}

/// Items deleted at once.
const DELETES_AT_ONCE: usize = 8;

/// Step 2: deletes every item of `list` at `destination` by digest (with
/// `dry_run`, only finds each digest). Refuses a list with items outside
/// `destination` before touching anything; a registry that does not allow
/// deleting ends the run with the setting to change.
pub async fn delete_listed(
    list: &DeleteImageList,
    destination: &Destination,
    client: &RegistryClient,
    dry_run: bool,
) -> Result<DeleteReport> {
    let misplaced = misplaced_items(list, destination);
    if !misplaced.is_empty() {
        return Err(WorkflowError::input(format!(
            "the delete list does not match the destination docker://{}; nothing was deleted:\n  {}",
            destination.display(),
            misplaced.join("\n  ")
        )));
    }
    client
        .check_reachable(&destination.registry)
        .await
        .map_err(|cause| {
            WorkflowError::environment(format!(
                "cannot reach {}: {}; nothing was deleted",
                destination.registry, cause.kind
            ))
        })?;
    use futures_util::StreamExt as _;
    let outcomes: Vec<(usize, std::result::Result<ItemOutcome, String>)> =
        futures_util::stream::iter(list.items.iter().enumerate())
            .map(|(index, item)| async move { (index, delete_one(item, client, dry_run).await) })
            .buffer_unordered(DELETES_AT_ONCE)
            .collect()
            .await;
    let mut outcomes: Vec<(usize, ItemOutcome)> = outcomes
        .into_iter()
        .map(|(index, outcome)| outcome.map(|outcome| (index, outcome)))
        .collect::<std::result::Result<_, _>>()
        .map_err(WorkflowError::environment)?;
    outcomes.sort_by_key(|(index, _)| *index);
    Ok(DeleteReport {
        outcomes: outcomes
            .into_iter()
            .map(|(index, outcome)| (list.items[index].clone(), outcome))
            .collect(),
    })
}

/// The digest `reference` points to at its registry: a HEAD accepting the
/// four manifest media types, a GET when the registry sends no digest.
/// `Ok(None)`: the registry does not have it (any more).
pub async fn digest_at_destination(
    reference: &ImageReference,
    client: &RegistryClient,
) -> std::result::Result<Option<Digest>, String> {
    let head = match client.head_manifest(reference).await {
        Ok(None) => return Ok(None),
        Ok(Some(head)) => head,
        Err(error) => return Err(error.to_string()),
    };
    match (reference.digest(), head.digest) {
        (Some(digest), _) => Ok(Some(digest.clone())),
        (None, Some(digest)) => Ok(Some(digest)),
        (None, None) => match client.get_manifest(reference).await {
            Ok(manifest) => Ok(Some(manifest.digest)),
            Err(error) if matches!(error.kind, RegistryErrorKind::NotFound) => Ok(None),
            Err(error) => Err(error.to_string()),
        },
    }
}

/// One item: its digest at the destination ([`digest_at_destination`]),
/// then a DELETE by digest. `Err` only when the registry does not allow
/// deleting.
async fn delete_one(
    item: &DeleteItem,
    client: &RegistryClient,
    dry_run: bool,
) -> std::result::Result<ItemOutcome, String> {
    let reference = match item.destination() {
        Ok(reference) => reference,
        Err(problem) => return Ok(ItemOutcome::Failed(problem)),
    };
    let digest = match digest_at_destination(&reference, client).await {
        Ok(Some(digest)) => digest,
        Ok(None) => return Ok(ItemOutcome::AlreadyGone),
        Err(problem) => return Ok(ItemOutcome::Failed(problem)),
    };
    if dry_run {
        return Ok(ItemOutcome::WouldDelete(digest));
    }
    match client
        .delete_manifest(reference.registry(), reference.repository(), &digest)
        .await
    {
        Ok(DeleteOutcome::Deleted) => Ok(ItemOutcome::Deleted(digest)),
        Ok(DeleteOutcome::Absent) => Ok(ItemOutcome::AlreadyGone),
        Err(error) if matches!(error.kind, RegistryErrorKind::DeletionDisabled) => Err(format!(
            "{}: {}; nothing was deleted",
            reference.registry(),
            error.kind
        )),
        Err(error) => Ok(ItemOutcome::Failed(error.to_string())),
    }
}

/// What `--force-cache-delete` did to a cache.
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct CacheForgetReport {
    /// Listed images the cache had recorded (and now forgot).
    pub forgotten: Vec<String>,
    /// Blobs removed because no image still recorded needs them.
    pub removed_blobs: usize,
    pub freed_bytes: u64,
}

/// `--force-cache-delete`: the cache at `cache_root` forgets every listed
/// image (by its `imageName`, as the disk workflows record it) and removes
/// the blobs no other recorded image needs. A cache that recorded none of
/// them is left untouched (mirror-to-mirror records no image there).
pub fn forget_in_cache(
    list: &DeleteImageList,
    cache_root: &Path,
    dry_run: bool,
) -> Result<CacheForgetReport> {
    let mut report = CacheForgetReport::default();
    if !cache_root.join("index.db").is_file() {
        return Ok(report);
    }
    let cache = Cache::open(cache_root).map_err(WorkflowError::environment)?;
    let names: BTreeSet<&str> = list
        .items
        .iter()
        .map(|item| item.image_name.as_str())
        .collect();
    for name in names {
        let known = cache
            .index()
            .resolution(name)
            .map_err(WorkflowError::environment)?
            .is_some();
        if known {
            report.forgotten.push(name.to_owned());
        }
    }
    if report.forgotten.is_empty() {
        return Ok(report);
    }
    let forgotten: Vec<&str> = report.forgotten.iter().map(String::as_str).collect();
    let roots = cache
        .index()
        .resolved_digests_except(&forgotten)
        .map_err(WorkflowError::environment)?;
    if !dry_run {
        for name in &forgotten {
            cache
                .index()
                .forget_resolution(name)
                .map_err(WorkflowError::environment)?;
        }
    }
    let pruned = cache
        .prune_keeping(&roots, dry_run)
        .map_err(WorkflowError::environment)?;
    report.removed_blobs = pruned.removed.len();
    report.freed_bytes = pruned.freed_bytes;
    Ok(report)
}

#[cfg(test)]
mod tests;
