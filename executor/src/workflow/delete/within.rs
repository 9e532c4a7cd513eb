//! What stays in the deleting image set itself needs. A manifest is
//! deleted by digest, which removes every tag of it in its repository: two
//! z-streams share most release components by digest
//! (`openshift/release:4.16.1-x86_64-etcd` and `...:4.16.2-x86_64-etcd`
//! name one manifest), two tags of an additional image may name one
//! manifest. A listed tag whose manifest an unlisted tag the workspace
//! recorded at the destination also names is left out (with its cosign
//! signature tag), each named in a warning, unless forced; the delete
//! plan keeps it the same way with the digest it finds at the registry.

use std::collections::{BTreeMap, BTreeSet};

use ferry_schemas::Digest;

use super::DeleteItem;
use super::plan::KeptItem;
use crate::workflow::to_disk::Notice;

/// The tags (`repository:tag`) recorded at the destination that name
/// `digest` in `repository` and are not `listed`: what deleting the
/// manifest would take from this image set.
pub fn staying_tags(
    repository: &str,
    digest: &Digest,
    listed: &BTreeSet<(String, String)>,
    recorded_tags: &BTreeMap<(String, String), Digest>,
) -> Vec<String> {
    recorded_tags
        .iter()
        .filter(|((their_repository, their_tag), their_digest)| {
            their_repository == repository
                && *their_digest == digest
                && !listed.contains(&(their_repository.clone(), their_tag.clone()))
        })
        .map(|((their_repository, their_tag), _)| format!("{their_repository}:{their_tag}"))
        .collect()
}

/// How the staying tags needing a manifest are named (the first three,
/// then how many more).
pub fn describe_staying(tags: &[String]) -> String {
    const SHOWN: usize = 3;
    let mut named = tags
        .iter()
        .take(SHOWN)
        .cloned()
        .collect::<Vec<_>>()
        .join(", ");
    if tags.len() > SHOWN {
        named.push_str(&format!(" and {} more", tags.len() - SHOWN));
    }
    format!("this image set's {named} (the same manifest)")
}

/// `(repository, tag)` of an item at the destination.
pub fn repository_and_tag(item: &DeleteItem) -> Option<(String, String)> {
    let reference = item.destination().ok()?;
    Some((
        reference.repository().to_owned(),
        reference.tag()?.to_owned(),
    ))
}

/// `items` without those whose manifest (as the workspace recorded it) an
/// unlisted recorded tag names, nor their signature tags; each in `kept`
/// and a warning. With `force`, all of them, with a warning each.
pub fn leave_out_needed(
    items: Vec<DeleteItem>,
    recorded_tags: &BTreeMap<(String, String), Digest>,
    force: bool,
    notices: &mut Vec<Notice>,
    kept: &mut Vec<KeptItem>,
) -> Vec<DeleteItem> {
    let listed: BTreeSet<(String, String)> = items.iter().filter_map(repository_and_tag).collect();
    // The manifests left out, by repository and digest: their signature
    // tags stay with them.
    let mut left_out: BTreeSet<(String, String)> = BTreeSet::new();
    let mut remaining = Vec::new();
    for item in items {
        let Some((repository, tag)) = repository_and_tag(&item) else {
            remaining.push(item);
            continue;
        };
        let Some(digest) = recorded_tags.get(&(repository.clone(), tag.clone())) else {
            remaining.push(item);
            continue;
        };
        let staying = staying_tags(&repository, digest, &listed, recorded_tags);
        if staying.is_empty() {
            remaining.push(item);
            continue;
        }
        let needed_by = describe_staying(&staying);
        if force {
            notices.push(Notice::Warning(format!(
                "{}: listed with --force although {needed_by} stays: deleting the manifest by digest removes it too",
                item.image_reference
            )));
            remaining.push(item);
        } else {
            notices.push(Notice::Warning(format!(
                "{}: left out, {needed_by} needs it (--force lists it anyway)",
                item.image_reference
            )));
            left_out.insert((repository, crate::resolve::signature_tag(digest)));
            kept.push(KeptItem {
                reference: item.image_reference,
                needed_by,
            });
        }
    }
    remaining
        .into_iter()
        .filter(|item| {
            let signature_of_kept =
                repository_and_tag(item).is_some_and(|pair| left_out.contains(&pair));
            if signature_of_kept {
                notices.push(Notice::Warning(format!(
                    "{}: left out with the manifest it signs",
                    item.image_reference
                )));
            }
            !signature_of_kept
        })
        .collect()
}
