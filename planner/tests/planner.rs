//! The planner's promises, on small hand-built image sets.

use ferry_planner::{
    Action, Destination, ImageChange, Plan, Reason, ResolvedImage, ResolvedManifest, StateSnapshot,
    compile, plan,
};
use ferry_schemas::Digest;

fn digest(name: &str) -> Digest {
    // A stable fake digest per name.
    let hex: String = blake3::hash(name.as_bytes()).to_hex().to_string();
    format!("sha256:{hex}").parse().unwrap()
}

/// An image with one manifest over `layers` (names), plus a config.
fn image(name: &str, repository: &str, tag: &str, layers: &[&str]) -> ResolvedImage {
    let manifest = digest(&format!("manifest:{name}:{}", layers.join(",")));
    let mut blobs = vec![(digest(&format!("config:{name}")), 100)];
    blobs.extend(layers.iter().map(|layer| (digest(layer), 1000)));
    ResolvedImage {
        name: name.to_owned(),
        source: format!("quay.io/{repository}"),
        destination_repository: format!("mirror/{repository}"),
        destination_tag: Some(tag.to_owned()),
        top: manifest.clone(),
        manifests: vec![ResolvedManifest {
            digest: manifest,
            media_type: "application/vnd.oci.image.manifest.v1+json".to_owned(),
            size: 500,
            children: Vec::new(),
            blobs,
        }],
    }
}

fn destination() -> Destination {
    Destination {
        registry: "mirror.local:5000".to_owned(),
        prefix: "mirror".to_owned(),
    }
}

/// Records every planned action as done, as the executor will.
fn apply(plan: &Plan, state: &mut StateSnapshot) {
    for planned in &plan.actions {
        state.done.insert(planned.key);
        state
            .done
            .extend(planned.action.implied_link().map(|link| link.key()));
        if let Action::Tag {
            repository,
            tag,
            digest,
        } = &planned.action
        {
            state
                .tags
                .insert((repository.clone(), tag.clone()), digest.clone());
        }
    }
}

#[test]
fn first_plan_does_everything_in_dependency_order() {
    let images = [image("quay.io/app/a:1", "app/a", "1", &["base", "a-own"])];
    let graph = compile(&images, &destination());
    let plan = plan(&graph, &StateSnapshot::default());
    let kinds: Vec<&str> = plan
        .actions
        .iter()
        .map(|planned| match planned.action {
            Action::UploadBlob { .. } => "upload",
            Action::LinkBlob { .. } => "link",
            Action::PushManifest { .. } => "manifest",
            Action::Tag { .. } => "tag",
        })
        .collect();
    assert_eq!(kinds, ["upload", "upload", "upload", "manifest", "tag"]);
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
fn identical_work_is_one_node() {
    // Two tags of one image in one repository: the manifest and blobs once.
    let one = image("quay.io/app/a:1", "app/a", "1", &["base"]);
    let mut latest = one.clone();
    latest.name = "quay.io/app/a:latest".to_owned();
    latest.destination_tag = Some("latest".to_owned());
    let graph = compile(&[one, latest], &destination());
    assert_eq!(
        graph.graph.node_count(),
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
        source: "quay.io/app/m".to_owned(),
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
