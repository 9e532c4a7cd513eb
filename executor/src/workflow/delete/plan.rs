//! Delete as a plan (`ferry plan --delete`, applied by `ferry apply
//! PLANFILE`): what a delete list removes at the destination, made exact.
//!
//! For every listed item, the manifest its tag points to (asked at the
//! destination, or with `--trust-state` as the workspace recorded it);
//! items another image set still needs are kept ([`super::shared`]) unless
//! forced. Deleting a manifest by digest removes every tag of it in its
//! repository, so those tags are listed; the child manifests of a deleted
//! index are deleted too when nothing that remains needs them, so the
//! registry's plain garbage collection (no `--delete-untagged`) frees
//! them. The blobs it then frees are those the deleted manifests reach
//! and nothing remaining reaches: the workspace's other tags and every
//! other image set's, walked through the manifests the states recorded.
//! Manifests are blobs in the registry's storage too, so they count.
//!
//! [`plan_delete`] is pure; [`live_digests`] and [`fetch_unknown`] ask the
//! destination first; [`apply_plan`] deletes exactly the planned
//! manifests; [`forgotten`] is what the workspace state forgets after.

use std::collections::{BTreeMap, BTreeSet};

use ferry_planner::{Action, Destination, ResolvedManifest, Source};
use ferry_registry::client::ErrorKind as RegistryErrorKind;
use ferry_registry::{DeleteOutcome, RegistryClient};
use ferry_schemas::{Digest, ImageReference};
use serde::{Deserialize, Serialize};

use super::shared::{SharedContent, describe_needing, manifest_tree};
use super::within::{describe_staying, staying_tags};
use super::{DeleteItem, digest_at_destination};
use crate::workflow::error::{Result, WorkflowError};

/// A manifest the plan deletes by digest.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize, schemars::JsonSchema)]
pub struct ManifestToDelete {
    pub repository: String,
    pub digest: Digest,
    /// Empty when the state never recorded it (its content is unknown).
    pub media_type: String,
    pub size: u64,
    /// The listed references that lead to it (`repository:tag`).
    pub listed: Vec<String>,
    /// For a child of a deleted index: that index.
    #[serde(skip_serializing_if = "Option::is_none", default)]
    pub child_of: Option<Digest>,
}

/// A tag the deletion removes (with its manifest).
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize, schemars::JsonSchema)]
pub struct TagToDelete {
    pub repository: String,
    pub tag: String,
    pub digest: Digest,
    /// Named by the delete list (otherwise it goes because its manifest does).
    pub listed: bool,
}

/// A blob the registry's garbage collector frees after the deletion.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize, schemars::JsonSchema)]
pub struct FreedBlob {
    pub digest: Digest,
    pub size: u64,
}

/// A listed item left alone: another image set needs it.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize, schemars::JsonSchema)]
pub struct KeptItem {
    /// `docker://registry/repository:tag`.
    pub reference: String,
    /// Which image sets need it, and their tags.
    pub needed_by: String,
}

/// The delete plan.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize, schemars::JsonSchema)]
pub struct DeletePlan {
    /// `registry[/prefix]`.
    pub destination: String,
    /// Top manifests first, then children of deleted indexes.
    pub manifests: Vec<ManifestToDelete>,
    pub tags: Vec<TagToDelete>,
    pub freed_blobs: Vec<FreedBlob>,
    pub freed_bytes: u64,
    pub kept: Vec<KeptItem>,
    /// Listed references the destination does not have (nothing to do).
    pub already_gone: Vec<String>,
    /// Deleted manifests whose content the state did not know, so their
    /// blobs are not in the freed figure.
    pub unknown_content: Vec<String>,
}

impl DeletePlan {
    pub fn is_empty(&self) -> bool {
        self.manifests.is_empty()
    }
}

/// What [`plan_delete`] plans from.
#[derive(Clone, Copy)]
pub struct DeleteInputs<'a> {
    pub destination: &'a Destination,
    pub items: &'a [DeleteItem],
    /// Where each item's `imageReference` points at the destination now
    /// (`None`: not there). Items not in the map use `recorded_tags`.
    pub live: &'a BTreeMap<String, Option<Digest>>,
    /// (repository, tag) → digest the workspace recorded at the destination.
    pub recorded_tags: &'a BTreeMap<(String, String), Digest>,
    /// The manifests known (recorded by a state, or read at the destination).
    pub manifests: &'a dyn Fn(&Digest) -> Option<ResolvedManifest>,
    pub shared: &'a SharedContent,
    pub force: bool,
}

/// `(repository, tag)` of an item at `destination`, if it is there.
fn repository_and_tag(item: &DeleteItem) -> Option<(String, String, ImageReference)> {
    let reference = item.destination().ok()?;
    let tag = reference.tag()?.to_owned();
    Some((reference.repository().to_owned(), tag, reference))
}

/// The plan (pure).
pub fn plan_delete(inputs: &DeleteInputs<'_>) -> DeletePlan {
    let mut plan = DeletePlan {
        destination: inputs.destination.display(),
        manifests: Vec::new(),
        tags: Vec::new(),
        freed_blobs: Vec::new(),
        freed_bytes: 0,
        kept: Vec::new(),
        already_gone: Vec::new(),
        unknown_content: Vec::new(),
    };
    // Top manifests to delete: (repository, digest) → listed references.
    let mut tops: BTreeMap<(String, Digest), Vec<String>> = BTreeMap::new();
    let mut listed_tags: BTreeSet<(String, String)> = BTreeSet::new();
    for item in inputs.items {
        let Some((repository, tag, _)) = repository_and_tag(item) else {
            plan.already_gone.push(item.image_reference.clone());
            continue;
        };
        let digest = match inputs.live.get(&item.image_reference) {
            Some(live) => live.clone(),
            None => inputs
                .recorded_tags
                .get(&(repository.clone(), tag.clone()))
                .cloned(),
        };
        let Some(digest) = digest else {
            plan.already_gone.push(item.image_reference.clone());
            continue;
        };
        let needing = inputs.shared.needing(&repository, &tag, Some(&digest));
        if !needing.is_empty() && !inputs.force {
            plan.kept.push(KeptItem {
                reference: item.image_reference.clone(),
                needed_by: describe_needing(&needing),
            });
            continue;
        }
        listed_tags.insert((repository.clone(), tag.clone()));
        tops.entry((repository.clone(), digest))
            .or_default()
            .push(format!("{repository}:{tag}"));
    }
    // A manifest an unlisted tag of this image set names stays with it
    // (unless forced): deleting it by digest would take that tag too.
    if !inputs.force {
        let needed: Vec<((String, Digest), Vec<String>)> = tops
            .iter()
            .filter_map(|((repository, digest), _)| {
                let staying = staying_tags(repository, digest, &listed_tags, inputs.recorded_tags);
                (!staying.is_empty()).then(|| ((repository.clone(), digest.clone()), staying))
            })
            .collect();
        for (top, staying) in needed {
            let Some(listed) = tops.remove(&top) else {
                continue;
            };
            let base = format!("docker://{}/", inputs.destination.registry);
            let (repository, digest) = &top;
            // Its signature tag stays with it.
            let signature = (repository.clone(), crate::resolve::signature_tag(digest));
            let signature_top = tops
                .iter()
                .find(|((their_repository, _), references)| {
                    their_repository == repository
                        && references
                            .iter()
                            .any(|reference| reference.ends_with(&format!(":{}", signature.1)))
                })
                .map(|(top, _)| top.clone());
            let signature_listed = signature_top
                .and_then(|signature_top| tops.remove(&signature_top))
                .unwrap_or_default();
            for reference in listed.into_iter().chain(signature_listed) {
                if let Some((repository, tag)) = reference.rsplit_once(':') {
                    listed_tags.remove(&(repository.to_owned(), tag.to_owned()));
                }
                plan.kept.push(KeptItem {
                    reference: format!("{base}{reference}"),
                    needed_by: describe_staying(&staying),
                });
            }
        }
    }
    // Tags that go with their manifests: every recorded one (the
    // workspace's, and with --force other image sets') on a deleted top.
    let mut tags: BTreeMap<(String, String), TagToDelete> = BTreeMap::new();
    let every_tag = inputs.recorded_tags.iter().chain(
        inputs
            .shared
            .image_sets
            .iter()
            .flat_map(|image_set| image_set.tags.iter()),
    );
    for ((repository, tag), digest) in every_tag {
        if tops.contains_key(&(repository.clone(), digest.clone())) {
            tags.insert(
                (repository.clone(), tag.clone()),
                TagToDelete {
                    repository: repository.clone(),
                    tag: tag.clone(),
                    digest: digest.clone(),
                    listed: listed_tags.contains(&(repository.clone(), tag.clone())),
                },
            );
        }
    }
    for ((repository, digest), listed) in &tops {
        for reference in listed {
            let (_, tag) = reference.rsplit_once(':').unwrap_or_default();
            tags.entry((repository.clone(), tag.to_owned()))
                .or_insert_with(|| TagToDelete {
                    repository: repository.clone(),
                    tag: tag.to_owned(),
                    digest: digest.clone(),
                    listed: true,
                });
        }
    }
    // What remains: the workspace's tags not deleted, and (unless forced
    // away) every other image set's.
    let mut remaining_manifests: BTreeSet<(String, Digest)> = BTreeSet::new();
    let mut remaining_digests: BTreeSet<Digest> = BTreeSet::new();
    for ((repository, tag), digest) in inputs.recorded_tags {
        if tags.contains_key(&(repository.clone(), tag.clone())) {
            continue;
        }
        let (tree, _) = manifest_tree(digest, inputs.manifests);
        remaining_digests.insert(digest.clone());
        remaining_manifests.insert((repository.clone(), digest.clone()));
        for manifest in tree {
            remaining_manifests.insert((repository.clone(), manifest.digest.clone()));
            remaining_digests.insert(manifest.digest.clone());
            remaining_digests.extend(manifest.blobs.iter().map(|(digest, _)| digest.clone()));
        }
    }
    for image_set in &inputs.shared.image_sets {
        let forced_away = |repository: &String, digest: &Digest| {
            tops.contains_key(&(repository.clone(), digest.clone()))
        };
        if image_set
            .manifests
            .iter()
            .all(|(repository, digest)| !forced_away(repository, digest))
        {
            remaining_digests.extend(image_set.digests.iter().cloned());
            remaining_manifests.extend(image_set.manifests.iter().cloned());
        } else {
            // Forced: what its deleted tags reach is not kept for it.
            for ((repository, tag), digest) in &image_set.tags {
                if tags.contains_key(&(repository.clone(), tag.clone())) {
                    continue;
                }
                let (tree, _) = manifest_tree(digest, inputs.manifests);
                remaining_digests.insert(digest.clone());
                remaining_manifests.insert((repository.clone(), digest.clone()));
                for manifest in tree {
                    remaining_manifests.insert((repository.clone(), manifest.digest.clone()));
                    remaining_digests.insert(manifest.digest.clone());
                    remaining_digests
                        .extend(manifest.blobs.iter().map(|(digest, _)| digest.clone()));
                }
            }
        }
    }
    // The manifests deleted: the tops, then their children nothing
    // remaining needs in that repository.
    let mut children = Vec::new();
    let mut freed: BTreeMap<Digest, u64> = BTreeMap::new();
    for ((repository, digest), listed) in &tops {
        let (tree, complete) = manifest_tree(digest, inputs.manifests);
        let top = tree.iter().find(|manifest| &manifest.digest == digest);
        plan.manifests.push(ManifestToDelete {
            repository: repository.clone(),
            digest: digest.clone(),
            media_type: top
                .map(|manifest| manifest.media_type.clone())
                .unwrap_or_default(),
            size: top.map(|manifest| manifest.size).unwrap_or_default(),
            listed: listed.clone(),
            child_of: None,
        });
        if !complete {
            plan.unknown_content.push(format!("{repository}@{digest}"));
        }
        for manifest in &tree {
            let pair = (repository.clone(), manifest.digest.clone());
            if &manifest.digest != digest
                && !remaining_manifests.contains(&pair)
                && !tops.contains_key(&pair)
            {
                children.push(ManifestToDelete {
                    repository: repository.clone(),
                    digest: manifest.digest.clone(),
                    media_type: manifest.media_type.clone(),
                    size: manifest.size,
                    listed: Vec::new(),
                    child_of: Some(digest.clone()),
                });
            }
            if !remaining_digests.contains(&manifest.digest) {
                freed.insert(manifest.digest.clone(), manifest.size);
            }
            for (blob, size) in &manifest.blobs {
                if !remaining_digests.contains(blob) {
                    freed.insert(blob.clone(), *size);
                }
            }
        }
    }
    children.sort_by(|left, right| {
        (&left.repository, &left.digest).cmp(&(&right.repository, &right.digest))
    });
    children.dedup_by(|later, earlier| {
        later.repository == earlier.repository && later.digest == earlier.digest
    });
    plan.manifests.extend(children);
    plan.tags = tags.into_values().collect();
    plan.freed_bytes = freed.values().sum();
    plan.freed_blobs = freed
        .into_iter()
        .map(|(digest, size)| FreedBlob { digest, size })
        .collect();
    plan.already_gone.sort();
    plan.already_gone.dedup();
    plan
}

/// Items checked at once.
const CHECKS_AT_ONCE: usize = 16;

/// Where each item's tag points at the destination now (`None`: not there).
pub async fn live_digests(
    items: &[DeleteItem],
    client: &RegistryClient,
) -> Result<BTreeMap<String, Option<Digest>>> {
    use futures_util::StreamExt as _;
    let answers: Vec<(String, std::result::Result<Option<Digest>, String>)> =
        futures_util::stream::iter(items.iter().filter_map(|item| {
            let reference = item.destination().ok()?;
            Some((item.image_reference.clone(), reference))
        }))
        .map(|(name, reference)| async move {
            (name, digest_at_destination(&reference, client).await)
        })
        .buffer_unordered(CHECKS_AT_ONCE)
        .collect()
        .await;
    let mut live = BTreeMap::new();
    for (name, answer) in answers {
        let digest = answer.map_err(|problem| {
            WorkflowError::environment(format!(
                "cannot ask the destination about {name}: {problem}"
            ))
        })?;
        live.insert(name, digest);
    }
    Ok(live)
}

/// Manifests a plan deletes that `known` lacks, read from the destination
/// (their trees too), so the freed figure covers them.
pub async fn fetch_unknown(
    destination: &Destination,
    live: &BTreeMap<String, Option<Digest>>,
    items: &[DeleteItem],
    known: &dyn Fn(&Digest) -> Option<ResolvedManifest>,
    client: &RegistryClient,
) -> BTreeMap<Digest, ResolvedManifest> {
    let mut fetched: BTreeMap<Digest, ResolvedManifest> = BTreeMap::new();
    for item in items {
        let Some((repository, _, _)) = repository_and_tag(item) else {
            continue;
        };
        let Some(Some(top)) = live.get(&item.image_reference) else {
            continue;
        };
        let mut pending = vec![top.clone()];
        while let Some(digest) = pending.pop() {
            if fetched.contains_key(&digest) {
                continue;
            }
            if let Some(manifest) = known(&digest) {
                pending.extend(manifest.children.iter().cloned());
                continue;
            }
            let Ok(reference) =
                format!("{}/{repository}@{digest}", destination.registry).parse::<ImageReference>()
            else {
                continue;
            };
            let Ok(manifest) = client.get_manifest(&reference).await else {
                continue;
            };
            if let Ok(described) = crate::resolve::describe(&manifest) {
                pending.extend(described.children.iter().cloned());
                fetched.insert(digest, described);
            }
        }
    }
    fetched
}

/// What applying a plan did to one manifest.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum ManifestOutcome {
    Deleted,
    AlreadyGone,
    Failed(String),
}

/// Deletes the plan's manifests by digest, in its order (tops, then
/// children); the first refusal to delete at all ends it.
pub async fn apply_plan(
    plan: &DeletePlan,
    destination: &Destination,
    client: &RegistryClient,
) -> Result<Vec<(ManifestToDelete, ManifestOutcome)>> {
    let mut outcomes = Vec::new();
    for manifest in &plan.manifests {
        let outcome = match client
            .delete_manifest(
                &destination.registry,
                &manifest.repository,
                &manifest.digest,
            )
            .await
        {
            Ok(DeleteOutcome::Deleted) => ManifestOutcome::Deleted,
            Ok(DeleteOutcome::Absent) => ManifestOutcome::AlreadyGone,
            Err(error) if matches!(error.kind, RegistryErrorKind::DeletionDisabled) => {
                return Err(WorkflowError::environment(format!(
                    "{}: {}; {} of {} manifests were deleted",
                    destination.registry,
                    error.kind,
                    outcomes.len(),
                    plan.manifests.len()
                )));
            }
            Err(error) => ManifestOutcome::Failed(error.to_string()),
        };
        outcomes.push((manifest.clone(), outcome));
    }
    Ok(outcomes)
}

/// What the workspace state forgets once `plan` was applied (action keys
/// and tags), so the next mirror plans the deleted images again: the
/// pushes of the deleted manifests, the removed tags, the uploads of the
/// freed blobs and their links into every repository the state knows
/// there, and the links of the deleted manifests' blobs into their
/// repositories. Manifests that failed to delete are left out.
pub fn forgotten(
    plan: &DeletePlan,
    deleted: &BTreeSet<(String, Digest)>,
    recorded_tags: &BTreeMap<(String, String), Digest>,
    manifests: &dyn Fn(&Digest) -> Option<ResolvedManifest>,
) -> (Vec<String>, Vec<(String, String)>) {
    let mut keys = BTreeSet::new();
    let none = || Source::Registry(String::new());
    let mut repositories: BTreeSet<String> = recorded_tags
        .keys()
        .map(|(repository, _)| repository.clone())
        .collect();
    for manifest in &plan.manifests {
        if !deleted.contains(&(manifest.repository.clone(), manifest.digest.clone())) {
            continue;
        }
        repositories.insert(manifest.repository.clone());
        keys.insert(
            Action::PushManifest {
                repository: manifest.repository.clone(),
                digest: manifest.digest.clone(),
                media_type: manifest.media_type.clone(),
                size: manifest.size,
                source: none(),
            }
            .key(),
        );
        if let Some(known) = manifests(&manifest.digest) {
            for (blob, size) in &known.blobs {
                keys.insert(link_key(&manifest.repository, blob, *size));
            }
        }
    }
    let tags: Vec<(String, String)> = plan
        .tags
        .iter()
        .filter(|tag| deleted.contains(&(tag.repository.clone(), tag.digest.clone())))
        .map(|tag| {
            keys.insert(
                Action::Tag {
                    repository: tag.repository.clone(),
                    tag: tag.tag.clone(),
                    digest: tag.digest.clone(),
                }
                .key(),
            );
            (tag.repository.clone(), tag.tag.clone())
        })
        .collect();
    for blob in &plan.freed_blobs {
        keys.insert(
            Action::UploadBlob {
                destination: plan.destination.clone(),
                repository: String::new(),
                digest: blob.digest.clone(),
                size: blob.size,
                source: none(),
            }
            .key(),
        );
        for repository in &repositories {
            keys.insert(link_key(repository, &blob.digest, blob.size));
        }
    }
    (keys.into_iter().map(|key| key.to_hex()).collect(), tags)
}

fn link_key(repository: &str, digest: &Digest, size: u64) -> ferry_planner::ActionKey {
    Action::LinkBlob {
        repository: repository.to_owned(),
        digest: digest.clone(),
        size,
        from_repository: String::new(),
        source: Source::Registry(String::new()),
    }
    .key()
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::workflow::delete::ItemType;
    use crate::workflow::delete::shared::OtherImageSet;

    fn digest(character: char) -> Digest {
        format!("sha256:{}", character.to_string().repeat(64))
            .parse()
            .unwrap()
    }

    fn manifest(name: char, children: &[char], blobs: &[(char, u64)]) -> ResolvedManifest {
        ResolvedManifest {
            digest: digest(name),
            media_type: "application/vnd.oci.image.index.v1+json".to_owned(),
            size: 100,
            children: children.iter().map(|child| digest(*child)).collect(),
            blobs: blobs
                .iter()
                .map(|(blob, size)| (digest(*blob), *size))
                .collect(),
        }
    }

    #[test]
    fn an_index_its_images_and_only_their_own_blobs_are_freed_and_shared_tags_are_kept() {
        let destination = Destination {
            registry: "mirror.local:5000".to_owned(),
            prefix: "team".to_owned(),
        };
        // app:1.0 is an index over two images; keep:1.0 shares layer `e`.
        let known: BTreeMap<Digest, ResolvedManifest> = [
            manifest('a', &['b', 'c'], &[]),
            manifest('b', &[], &[('e', 1000), ('f', 2000)]),
            manifest('c', &[], &[('e', 1000), ('0', 3000)]),
            manifest('d', &[], &[('e', 1000), ('1', 10)]),
        ]
        .into_iter()
        .map(|manifest| (manifest.digest.clone(), manifest))
        .collect();
        let recorded: BTreeMap<(String, String), Digest> = [
            (("team/app".to_owned(), "1.0".to_owned()), digest('a')),
            (("team/app".to_owned(), "stable".to_owned()), digest('a')),
            (("team/keep".to_owned(), "1.0".to_owned()), digest('d')),
        ]
        .into_iter()
        .collect();
        let item = |tag: &str| DeleteItem {
            image_name: format!("quay.io/x/app:{tag}"),
            image_reference: format!("docker://mirror.local:5000/team/app:{tag}"),
            image_type: ItemType::Generic,
        };
        let items = [item("1.0"), item("2.0"), item("stable")];
        let live: BTreeMap<String, Option<Digest>> = [
            (items[0].image_reference.clone(), Some(digest('a'))),
            (items[1].image_reference.clone(), None),
            (items[2].image_reference.clone(), Some(digest('a'))),
        ]
        .into_iter()
        .collect();
        let lookup = |digest: &Digest| known.get(digest).cloned();
        let unshared = SharedContent::default();
        let inputs = DeleteInputs {
            destination: &destination,
            items: &items,
            live: &live,
            recorded_tags: &recorded,
            manifests: &lookup,
            shared: &unshared,
            force: false,
        };
        let plan = plan_delete(&inputs);
        let deleted: Vec<(char, bool)> = plan
            .manifests
            .iter()
            .map(|manifest| {
                let first = manifest.digest.hex().chars().next().unwrap();
                (first, manifest.child_of.is_some())
            })
            .collect();
        assert_eq!(deleted, [('a', false), ('b', true), ('c', true)]);
        let tags: Vec<(&str, bool)> = plan
            .tags
            .iter()
            .map(|tag| (tag.tag.as_str(), tag.listed))
            .collect();
        assert_eq!(tags, [("1.0", true), ("stable", true)]);
        assert_eq!(
            plan.already_gone,
            ["docker://mirror.local:5000/team/app:2.0"]
        );
        // Three manifests (100 bytes each) and the layers `f` and `0`;
        // `e` stays for keep:1.0.
        assert_eq!(plan.freed_bytes, 300 + 2000 + 3000);
        assert!(
            plan.freed_blobs
                .iter()
                .all(|blob| blob.digest != digest('e'))
        );

        // An unlisted tag of this image set names the manifest: kept
        // unless forced, which deletes that tag too.
        let within = plan_delete(&DeleteInputs {
            items: &items[..2],
            ..inputs
        });
        assert!(within.manifests.is_empty());
        assert_eq!(within.kept.len(), 1);
        assert_eq!(
            within.kept[0].needed_by,
            "this image set's team/app:stable (the same manifest)"
        );
        let within_forced = plan_delete(&DeleteInputs {
            items: &items[..2],
            force: true,
            ..inputs
        });
        assert_eq!(within_forced.manifests.len(), 3);
        assert!(
            within_forced
                .tags
                .iter()
                .any(|tag| tag.tag == "stable" && !tag.listed)
        );

        // Another image set names the same manifest: kept unless forced.
        let other = SharedContent {
            image_sets: vec![OtherImageSet {
                name: "/srv/other (docker://mirror.local:5000/team)".to_owned(),
                tags: [(("team/app".to_owned(), "latest".to_owned()), digest('a'))]
                    .into_iter()
                    .collect(),
                manifests: [("team/app".to_owned(), digest('a'))].into_iter().collect(),
                digests: [
                    digest('a'),
                    digest('b'),
                    digest('c'),
                    digest('e'),
                    digest('f'),
                    digest('0'),
                ]
                .into_iter()
                .collect(),
                known: BTreeMap::new(),
            }],
        };
        let protected = plan_delete(&DeleteInputs {
            shared: &other,
            ..inputs
        });
        assert!(protected.manifests.is_empty());
        assert_eq!(protected.kept.len(), 2, "app:1.0 and app:stable");
        assert!(
            protected
                .kept
                .iter()
                .all(|kept| kept.needed_by.contains("/srv/other"))
        );
        let forced = plan_delete(&DeleteInputs {
            shared: &other,
            force: true,
            ..inputs
        });
        assert_eq!(forced.manifests.len(), 3);
        assert!(forced.tags.iter().any(|tag| tag.tag == "latest"));
        assert_eq!(forced.freed_bytes, plan.freed_bytes);

        // What the state forgets: pushes, tags, uploads and links.
        let everything: BTreeSet<(String, Digest)> = plan
            .manifests
            .iter()
            .map(|manifest| (manifest.repository.clone(), manifest.digest.clone()))
            .collect();
        let (keys, forgotten_tags) = forgotten(&plan, &everything, &recorded, &lookup);
        assert_eq!(forgotten_tags.len(), 2);
        let upload_f = Action::UploadBlob {
            destination: "mirror.local:5000/team".to_owned(),
            repository: "team/app".to_owned(),
            digest: digest('f'),
            size: 2000,
            source: Source::Cache,
        }
        .key()
        .to_hex();
        assert!(keys.contains(&upload_f));
        let upload_e = Action::UploadBlob {
            destination: "mirror.local:5000/team".to_owned(),
            repository: "team/keep".to_owned(),
            digest: digest('e'),
            size: 1000,
            source: Source::Cache,
        }
        .key()
        .to_hex();
        assert!(
            !keys.contains(&upload_e),
            "a blob that stays stays uploaded"
        );
    }
}
