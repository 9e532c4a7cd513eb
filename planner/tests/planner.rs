//! The planner's promises, on small hand-built image sets.

mod support;

use ferry_planner::{
    Action, Category, Destination, ImageChange, Plan, Reason, ResolvedImage, ResolvedManifest,
    Source, StateSnapshot, compile, compile_archive, plan,
};
use ferry_schemas::Digest;
use support::{apply, destination, digest, image};

#[test]
fn first_plan_does_everything_in_dependency_order() {
    let images = [image("quay.io/app/a:1", "app/a", "1", &["base", "a-own"])];
    let graph = compile(&images, &destination());
    let plan = plan(&graph, &StateSnapshot::default());
    let kinds: Vec<&str> = plan
        .actions
        .iter()
        .map(|planned| planned.action.kind_name())
        .collect();
    assert_eq!(
        kinds,
        [
            "upload-blob",
            "upload-blob",
            "upload-blob",
            "push-manifest",
            "tag"
        ]
    );
    assert_eq!(plan.totals.blobs_to_upload, 3);
    assert_eq!(plan.totals.bytes_to_push, 100 + 2000 + 500);
    assert_eq!(plan.images[0].change, ImageChange::New);
}

#[test]
fn a_second_run_plans_nothing() {
    let images = [
        image("quay.io/app/a:1", "app/a", "1", &["base", "a-own"]),
        image("quay.io/app/b:1", "app/b", "1", &["base", "b-own"]),
    ];
    let graph = compile(&images, &destination());
    let mut state = StateSnapshot::default();
    let first = plan(&graph, &state);
    apply(&first, &mut state);
    let second = plan(&graph, &state);
    assert!(second.is_empty(), "{:#?}", second.actions);
    assert!(
        second
            .images
            .iter()
            .all(|image| image.change == ImageChange::Unchanged)
    );
    assert_eq!(second.totals.bytes_to_push, 0);
    assert_eq!(second.totals.bytes_to_skip, first.totals.bytes_to_push);
}

#[test]
fn shared_layers_are_uploaded_once_and_linked_elsewhere() {
    let a = image("quay.io/app/a:1", "app/a", "1", &["base", "a-own"]);
    let mut state = StateSnapshot::default();
    apply(
        &plan(&compile(std::slice::from_ref(&a), &destination()), &state),
        &mut state,
    );

    let b = image("quay.io/app/b:1", "app/b", "1", &["base", "b-own"]);
    let graph = compile(&[a, b], &destination());
    let plan = plan(&graph, &state);
    let uploads: Vec<_> = plan
        .actions
        .iter()
        .filter_map(|planned| match &planned.action {
            Action::UploadBlob { digest, .. } => Some(digest.clone()),
            _ => None,
        })
        .collect();
    // Only b's own layer and config move bytes; the shared base is linked.
    assert_eq!(uploads.len(), 2);
    assert!(!uploads.contains(&digest("base")));
    assert!(plan.actions.iter().any(|planned| matches!(
        &planned.action,
        Action::LinkBlob { digest: linked, .. } if *linked == digest("base")
    )));
    let b_plan = plan
        .images
        .iter()
        .find(|image| image.name == "quay.io/app/b:1")
        .unwrap();
    assert_eq!(b_plan.change, ImageChange::New);
    let a_plan = plan
        .images
        .iter()
        .find(|image| image.name == "quay.io/app/a:1")
        .unwrap();
    assert_eq!(a_plan.change, ImageChange::Unchanged);
}

#[test]
fn a_moved_tag_plans_only_the_tag_and_the_new_content() {
    let old = image("quay.io/app/a:1", "app/a", "1", &["base", "v1"]);
    let mut state = StateSnapshot::default();
    apply(
        &plan(&compile(std::slice::from_ref(&old), &destination()), &state),
        &mut state,
    );

    // Same tag, same layers, new manifest: only the manifest and the tag move.
    let mut retagged = old.clone();
    let new_manifest = digest("manifest:rebuilt");
    retagged.top = new_manifest.clone();
    retagged.manifests[0].digest = new_manifest.clone();
    let plan = plan(&compile(&[retagged], &destination()), &state);
    assert!(
        plan.actions.iter().all(|planned| matches!(
            planned.action,
            Action::PushManifest { .. } | Action::Tag { .. }
        )),
        "{:#?}",
        plan.actions
    );
    let tag = plan
        .actions
        .iter()
        .find(|planned| matches!(planned.action, Action::Tag { .. }))
        .unwrap();
    assert_eq!(
        tag.reason,
        Reason::TagMoved {
            from: old.top.clone(),
            to: new_manifest
        }
    );
    assert_eq!(plan.images[0].change, ImageChange::Changed);
    assert!(
        plan.images[0]
            .reason
            .as_deref()
            .unwrap()
            .starts_with("tag moved")
    );
}

#[test]
fn a_new_destination_prefix_changes_every_key() {
    let images = [image("quay.io/app/a:1", "app/a", "1", &["base"])];
    let mut state = StateSnapshot::default();
    apply(&plan(&compile(&images, &destination()), &state), &mut state);
    let elsewhere = Destination {
        registry: "mirror.local:5000".to_owned(),
        prefix: "other".to_owned(),
    };
    let mut moved = images[0].clone();
    moved.destination_repository = "other/app/a".to_owned();
    let plan = plan(&compile(&[moved], &elsewhere), &state);
    assert_eq!(plan.actions.len(), 4, "every action is new work");
}

#[test]
fn an_image_missing_at_the_destination_plans_again() {
    let images = [image("quay.io/app/a:1", "app/a", "1", &["base"])];
    let graph = compile(&images, &destination());
    let mut state = StateSnapshot::default();
    apply(&plan(&graph, &state), &mut state);
    state
        .missing
        .insert(("mirror/app/a".to_owned(), images[0].top.clone()));
    let plan = plan(&graph, &state);
    assert_eq!(plan.actions.len(), 4);
    assert!(
        plan.actions
            .iter()
            .all(|planned| planned.reason == Reason::MissingAtDestination)
    );
    assert_eq!(
        plan.images[0].reason.as_deref(),
        Some("missing at destination")
    );
}

#[test]
fn an_intact_image_sharing_a_layer_with_a_missing_one_stays_unchanged() {
    // app/a comes first in name order: the shared layer's upload targets it.
    let images = [
        image("quay.io/app/a:1", "app/a", "1", &["base", "a-own"]),
        image("quay.io/app/b:1", "app/b", "1", &["base", "b-own"]),
    ];
    let graph = compile(&images, &destination());
    let mut state = StateSnapshot::default();
    apply(&plan(&graph, &state), &mut state);
    state
        .missing
        .insert(("mirror/app/a".to_owned(), images[0].top.clone()));
    let plan = plan(&graph, &state);
    let change = |name: &str| {
        plan.images
            .iter()
            .find(|image| image.name == name)
            .map(|image| (image.change, image.reason.clone()))
            .unwrap()
    };
    assert_eq!(
        change("quay.io/app/a:1"),
        (
            ImageChange::Changed,
            Some("missing at destination".to_owned())
        )
    );
    assert_eq!(change("quay.io/app/b:1"), (ImageChange::Unchanged, None));
    // The shared layer is uploaded again all the same (for app/a).
    assert!(plan.actions.iter().any(|planned| matches!(
        &planned.action,
        Action::UploadBlob { digest: uploaded, .. } if *uploaded == digest("base")
    )));
}

#[test]
fn identical_work_is_one_node() {
    // Two tags of one image in one repository: the manifest and blobs once.
    let one = image("quay.io/app/a:1", "app/a", "1", &["base"]);
    let mut latest = one.clone();
    latest.name = "quay.io/app/a:latest".to_owned();
    latest.destination_tag = Some("latest".to_owned());
    let graph = compile(&[one, latest], &destination());
    assert_eq!(
        graph.node_count(),
        2 * 2 + 1 + 2,
        "2 blobs (an upload and the link into their repository each), 1 manifest, 2 tags"
    );
}

#[test]
fn index_children_come_before_the_index() {
    let child_a = image("quay.io/app/m:1", "app/m", "1", &["amd64-layer"])
        .manifests
        .remove(0);
    let child_b = image("quay.io/app/m:1 arm", "app/m", "1", &["arm64-layer"])
        .manifests
        .remove(0);
    let index_digest = digest("index");
    let multi = ResolvedImage {
        name: "quay.io/app/m:1".to_owned(),
        source: Source::Registry("quay.io/app/m".to_owned()),
        blob_sources: Default::default(),
        destination_repository: "mirror/app/m".to_owned(),
        destination_tag: Some("1".to_owned()),
        top: index_digest.clone(),
        manifests: vec![
            ResolvedManifest {
                digest: index_digest.clone(),
                media_type: "application/vnd.oci.image.index.v1+json".to_owned(),
                size: 300,
                children: vec![child_a.digest.clone(), child_b.digest.clone()],
                blobs: Vec::new(),
            },
            child_a,
            child_b,
        ],
        category: Category::Additional,
        signature_of: None,
    };
    let plan = plan(
        &compile(&[multi], &destination()),
        &StateSnapshot::default(),
    );
    let position = |wanted: &Digest| {
        plan.actions
            .iter()
            .position(|planned| matches!(&planned.action, Action::PushManifest { digest, .. } if digest == wanted))
            .unwrap()
    };
    let index_position = position(&index_digest);
    for planned in &plan.actions[index_position..] {
        assert!(
            !matches!(planned.action, Action::UploadBlob { .. }),
            "blobs come first"
        );
    }
    assert_eq!(
        plan.actions
            .last()
            .map(|p| matches!(p.action, Action::Tag { .. })),
        Some(true)
    );
    assert!(
        plan.actions
            .iter()
            .take(index_position)
            .filter(|p| matches!(p.action, Action::PushManifest { .. }))
            .count()
            == 2
    );
}

#[test]
fn plans_are_deterministic() {
    let images = [
        image("quay.io/app/a:1", "app/a", "1", &["base", "a-own"]),
        image("quay.io/app/b:1", "app/b", "1", &["base", "b-own"]),
    ];
    let first = plan(&compile(&images, &destination()), &StateSnapshot::default());
    let second = plan(&compile(&images, &destination()), &StateSnapshot::default());
    assert_eq!(
        serde_json::to_string(&first).unwrap(),
        serde_json::to_string(&second).unwrap()
    );
}

#[test]
fn a_blob_uploaded_before_is_linked_into_a_repository_that_now_comes_first() {
    // b's repository gets the upload of the shared base; later an image in
    // a repository that sorts first needs it too: the upload is done, so
    // the base is linked (mounted) there from b's repository, not uploaded,
    // and its manifest waits for that link.
    let b = image("quay.io/app/b:1", "app/b", "1", &["base", "b-own"]);
    let mut state = StateSnapshot::default();
    apply(
        &plan(&compile(std::slice::from_ref(&b), &destination()), &state),
        &mut state,
    );
    let a = image("quay.io/app/a:1", "app/a", "1", &["base", "a-own"]);
    let graph = compile(&[a, b], &destination());
    let plan = plan(&graph, &state);
    let base_actions: Vec<&Action> = plan
        .actions
        .iter()
        .map(|planned| &planned.action)
        .filter(|action| match action {
            Action::UploadBlob { digest, .. } | Action::LinkBlob { digest, .. } => {
                *digest == digest_of("base")
            }
            _ => false,
        })
        .collect();
    assert_eq!(base_actions.len(), 1, "{base_actions:#?}");
    assert!(
        matches!(base_actions[0], Action::LinkBlob { repository, from_repository, .. }
            if repository == "mirror/app/a" && from_repository == "mirror/app/b"),
        "{base_actions:#?}"
    );
    let link_position = plan
        .actions
        .iter()
        .position(|planned| std::ptr::eq(&planned.action, base_actions[0]))
        .unwrap();
    let manifest_position = plan
        .actions
        .iter()
        .position(|planned| {
            matches!(&planned.action, Action::PushManifest { repository, .. } if repository == "mirror/app/a")
        })
        .unwrap();
    assert!(link_position < manifest_position);
    assert_eq!(plan.totals.blobs_to_upload, 2, "a's own layer and config");
    apply(&plan, &mut state);
    assert!(
        super_plan_is_empty(&graph, &state),
        "after it ran, nothing is left"
    );
}

fn digest_of(name: &str) -> Digest {
    digest(name)
}

fn super_plan_is_empty(graph: &ferry_planner::ActionGraph, state: &StateSnapshot) -> bool {
    ferry_planner::plan(graph, state).is_empty()
}

/// Records a delivery as the executor does: pack keys as done, each image
/// recorded under (name, "").
fn ship(plan: &Plan, state: &mut StateSnapshot) {
    for planned in &plan.actions {
        match &planned.action {
            Action::FetchBlob { .. } => {}
            Action::RecordImage { name, digest } => {
                state.done.insert(planned.key);
                state
                    .tags
                    .insert((name.clone(), String::new()), digest.clone());
            }
            _ => {
                state.done.insert(planned.key);
            }
        }
    }
}

fn kinds(plan: &Plan) -> Vec<&'static str> {
    plan.actions
        .iter()
        .map(|planned| planned.action.kind_name())
        .collect()
}

#[test]
fn a_delivery_fetches_then_packs_each_blob_once() {
    let images = [
        image("quay.io/app/a:1", "app/a", "1", &["base", "a-own"]),
        image("quay.io/app/b:1", "app/b", "1", &["base", "b-own"]),
    ];
    let graph = compile_archive(&images);
    let first = plan(&graph, &StateSnapshot::default());
    // 5 distinct blobs (2 configs, base, 2 own layers): fetched and packed once each.
    assert_eq!(first.totals.blobs_to_fetch, 5);
    assert_eq!(first.totals.blobs_to_pack, 5);
    assert_eq!(first.totals.bytes_to_pack, 2 * 100 + 3 * 1000 + 2 * 500);
    assert_eq!(first.totals.manifests_to_pack, 2);
    assert_eq!(first.totals.images_to_record, 2);
    // Every pack comes after its fetch; every manifest after its blobs.
    let position = |wanted: &dyn Fn(&Action) -> bool| {
        first
            .actions
            .iter()
            .position(|planned| wanted(&planned.action))
            .unwrap()
    };
    let base = digest("base");
    let fetch_base =
        position(&|action| matches!(action, Action::FetchBlob { digest, .. } if *digest == base));
    let pack_base =
        position(&|action| matches!(action, Action::PackBlob { digest, .. } if *digest == base));
    let first_manifest = position(&|action| matches!(action, Action::PackManifest { .. }));
    assert!(fetch_base < pack_base && pack_base < first_manifest);
    assert_eq!(kinds(&first).last(), Some(&"record-image"));
}

#[test]
fn the_next_delivery_holds_only_what_is_new() {
    let first_images = [image("quay.io/app/a:1", "app/a", "1", &["base", "a-own"])];
    let mut state = StateSnapshot::default();
    let first = plan(&compile_archive(&first_images), &state);
    ship(&first, &mut state);
    assert!(plan(&compile_archive(&first_images), &state).is_empty());

    // An image sharing the base layer: only its own blobs and manifest.
    let more = [
        first_images[0].clone(),
        image("quay.io/app/b:1", "app/b", "1", &["base", "b-own"]),
    ];
    let second = plan(&compile_archive(&more), &state);
    assert_eq!(second.totals.blobs_to_pack, 2, "config and own layer");
    assert_eq!(second.totals.bytes_to_pack, 100 + 1000 + 500);
    assert_eq!(second.totals.blobs_to_skip, 3, "a's config and both layers");
    let unchanged = &second.images[0];
    assert_eq!(unchanged.change, ImageChange::Unchanged);
    assert_eq!(second.images[1].change, ImageChange::New);
}

#[test]
fn shipped_blobs_are_not_fetched_again_even_when_the_cache_lost_them() {
    let images = [image("quay.io/app/a:1", "app/a", "1", &["base"])];
    let mut state = StateSnapshot::default();
    let first = plan(&compile_archive(&images), &state);
    ship(&first, &mut state);
    // The fetch keys are not in `done` (the cache is empty now): still nothing to do.
    let again = plan(&compile_archive(&images), &state);
    assert!(again.is_empty(), "{:?}", kinds(&again));
    assert_eq!(again.totals.blobs_to_fetch, 0);
}

#[test]
fn cached_blobs_are_packed_without_a_fetch() {
    let images = [image("quay.io/app/a:1", "app/a", "1", &["base"])];
    let graph = compile_archive(&images);
    let mut state = StateSnapshot::default();
    for node in graph.nodes() {
        if matches!(graph.action(node), Action::FetchBlob { .. }) {
            state.done.insert(graph.key(node));
        }
    }
    let planned = plan(&graph, &state);
    assert_eq!(planned.totals.blobs_to_fetch, 0);
    assert_eq!(planned.totals.blobs_to_pack, 2);
}

#[test]
fn retagging_a_shipped_image_packs_no_blob() {
    let images = [image("quay.io/app/a:1", "app/a", "1", &["base"])];
    let mut state = StateSnapshot::default();
    ship(&plan(&compile_archive(&images), &state), &mut state);
    let mut retagged = images[0].clone();
    retagged.name = "quay.io/app/a:stable".to_owned();
    retagged.destination_tag = Some("stable".to_owned());
    let next = plan(&compile_archive(&[images[0].clone(), retagged]), &state);
    assert_eq!(kinds(&next), ["record-image"]);
    assert_eq!(next.totals.bytes_to_pack, 0);
}

#[test]
fn a_moved_tag_in_a_delivery_says_from_and_to() {
    let old = image("quay.io/app/a:1", "app/a", "1", &["base"]);
    let mut state = StateSnapshot::default();
    ship(
        &plan(&compile_archive(std::slice::from_ref(&old)), &state),
        &mut state,
    );
    let moved = image("quay.io/app/a:1", "app/a", "1", &["base", "patch"]);
    let next = plan(&compile_archive(std::slice::from_ref(&moved)), &state);
    let record = next
        .actions
        .iter()
        .find(|planned| matches!(planned.action, Action::RecordImage { .. }))
        .unwrap();
    assert_eq!(
        record.reason,
        Reason::TagMoved {
            from: old.top.clone(),
            to: moved.top.clone()
        }
    );
    assert_eq!(next.images[0].change, ImageChange::Changed);
    assert_eq!(next.totals.blobs_to_pack, 1, "only the new layer");
}

#[test]
fn delivery_keys_name_no_folder_or_source() {
    let a = Action::PackBlob {
        digest: digest("x"),
        size: 1,
    };
    let fetch = |source: &str| Action::FetchBlob {
        digest: digest("x"),
        size: 1,
        source: Source::Registry(source.to_owned()),
    };
    assert_eq!(fetch("quay.io/a").key(), fetch("mirror.local/b").key());
    assert_ne!(a.key(), fetch("quay.io/a").key());
}
