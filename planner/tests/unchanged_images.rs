//! The action cache at the image level: an image the state records as
//! complete with the same fingerprint is not compiled again, and the plan
//! is exactly the plan over every image; any changed input compiles it.

mod support;

use ferry_planner::{
    Action, ActionGraph, Destination, ImageFingerprint, ImageRecord, Plan, ResolvedImage,
    StateSnapshot, compile, compile_against, plan,
};
use support::{apply, destination, digest, image};

/// Records every compiled image whose actions are all done, as the
/// executor does after a run.
fn record_images(graph: &ActionGraph, state: &mut StateSnapshot) {
    for image in graph.images() {
        if let Some(record) = graph.record_of(image)
            && record.keys.iter().all(|key| state.done.contains(key))
        {
            state.images.insert(image.name().to_owned(), record);
        }
    }
}

/// Plans `images` once over every image and once with the unchanged ones
/// left out; both plans must be the same. Returns the graph that left
/// images out, and the plan.
fn plan_both_ways(
    images: &[ResolvedImage],
    destination: &Destination,
    state: &StateSnapshot,
) -> (ActionGraph, Plan) {
    let full = plan(&compile(images, destination), state);
    let graph = compile_against(images, destination, state);
    let fast = plan(&graph, state);
    assert_eq!(fast, full, "leaving unchanged images out changed the plan");
    (graph, fast)
}

/// Three repositories sharing a base layer, two tags in one of them.
fn image_set() -> Vec<ResolvedImage> {
    vec![
        image("quay.io/app/b:1", "app/b", "1", &["base", "b-own"]),
        image("quay.io/app/b:2", "app/b", "2", &["base", "b2-own"]),
        image("quay.io/app/c:1", "app/c", "1", &["base", "c-own"]),
    ]
}

/// The state after a first run of `images`, with their records.
fn mirrored(images: &[ResolvedImage]) -> StateSnapshot {
    let mut state = StateSnapshot::default();
    let graph = compile(images, &destination());
    apply(&plan(&graph, &state), &mut state);
    record_images(&graph, &mut state);
    state
}

fn unchanged_names(graph: &ActionGraph) -> Vec<&str> {
    graph
        .images()
        .iter()
        .filter(|image| image.is_unchanged())
        .map(|image| image.name())
        .collect()
}

#[test]
fn a_recorded_image_set_is_not_compiled_and_plans_the_same() {
    let images = image_set();
    let state = mirrored(&images);
    assert_eq!(state.images.len(), 3, "every image recorded");
    let (graph, plan) = plan_both_ways(&images, &destination(), &state);
    assert_eq!(graph.node_count(), 0, "nothing compiled");
    assert_eq!(unchanged_names(&graph).len(), 3);
    assert!(plan.is_empty());
    assert_eq!(plan.totals.images, 3);
    // Everything counted as skipped, as over the whole graph: 3 manifests,
    // 4 uploads (base and each own layer... and 3 configs) and the links
    // into repositories other than the upload's.
    assert_eq!(plan.totals.manifests_to_skip, 3);
    assert!(plan.totals.blobs_to_skip > 0 && plan.totals.bytes_to_skip > 0);
}

#[test]
fn a_new_image_beside_unchanged_ones_plans_only_its_own_work() {
    let mut images = image_set();
    let state = mirrored(&images);
    // A repository that sorts first now needs the shared base: the upload
    // was done, so it is linked from a repository that holds it (known from
    // an image left out of the graph).
    images.push(image("quay.io/app/a:1", "app/a", "1", &["base", "a-own"]));
    let (graph, plan) = plan_both_ways(&images, &destination(), &state);
    assert_eq!(unchanged_names(&graph).len(), 3);
    let base_link = plan
        .actions
        .iter()
        .find(|planned| {
            matches!(&planned.action, Action::LinkBlob { digest: linked, .. } if *linked == digest("base"))
        })
        .expect("the base is linked into the new repository");
    assert!(matches!(
        &base_link.action,
        Action::LinkBlob { repository, from_repository, .. }
            if repository == "mirror/app/a" && from_repository != "mirror/app/a"
    ));
    // A new tag in a repository with an unchanged image: its shared link is
    // done, so it is not planned twice.
    images.push(image("quay.io/app/b:3", "app/b", "3", &["base", "b3-own"]));
    plan_both_ways(&images, &destination(), &state);
}

#[test]
fn a_changed_input_compiles_the_image_again() {
    let images = image_set();
    let state = mirrored(&images);

    // A moved tag: new content for b:2.
    let mut moved = images.clone();
    moved[1] = image("quay.io/app/b:2", "app/b", "2", &["base", "b2-rebuilt"]);
    let (graph, plan) = plan_both_ways(&moved, &destination(), &state);
    assert_eq!(
        unchanged_names(&graph),
        ["quay.io/app/b:1", "quay.io/app/c:1"]
    );
    assert!(!plan.is_empty());

    // Another destination (registry or prefix): every image compiled.
    for elsewhere in [
        Destination {
            registry: "other.local:5000".to_owned(),
            prefix: "mirror".to_owned(),
        },
        Destination {
            registry: "mirror.local:5000".to_owned(),
            prefix: "elsewhere".to_owned(),
        },
    ] {
        let (graph, _) = plan_both_ways(&images, &elsewhere, &state);
        assert!(unchanged_names(&graph).is_empty());
        assert_ne!(
            ImageFingerprint::of(&images[0], &elsewhere),
            ImageFingerprint::of(&images[0], &destination())
        );
    }

    // Another source for the same content: the actions read elsewhere.
    let mut resourced = images.clone();
    resourced[2].source = ferry_planner::Source::Cache;
    let (graph, _) = plan_both_ways(&resourced, &destination(), &state);
    assert_eq!(
        unchanged_names(&graph),
        ["quay.io/app/b:1", "quay.io/app/b:2"]
    );

    // A record made under another key version (or fingerprint version)
    // does not match: its image is compiled.
    let mut older = state.clone();
    let record = older.images.get_mut("quay.io/app/c:1").unwrap();
    *record = ImageRecord {
        fingerprint: ImageFingerprint::from_bytes([0; 32]),
        keys: record.keys.clone(),
    };
    let (graph, _) = plan_both_ways(&images, &destination(), &older);
    assert_eq!(
        unchanged_names(&graph),
        ["quay.io/app/b:1", "quay.io/app/b:2"]
    );
}

#[test]
fn a_forgotten_action_compiles_its_image_again() {
    let images = image_set();
    let mut state = mirrored(&images);
    let record = state.images["quay.io/app/c:1"].clone();
    state.done.remove(&record.keys[0]);
    let (graph, plan) = plan_both_ways(&images, &destination(), &state);
    assert!(!unchanged_names(&graph).contains(&"quay.io/app/c:1"));
    assert_eq!(plan.actions.len(), 1, "{:#?}", plan.actions);
}

#[test]
fn an_image_missing_at_the_destination_and_its_neighbours_are_compiled() {
    let images = image_set();
    let mut state = mirrored(&images);
    state
        .missing
        .insert(("mirror/app/b".to_owned(), images[0].top.clone()));
    let (graph, plan) = plan_both_ways(&images, &destination(), &state);
    // b:1 is missing; b:2 shares its repository (and the base's link):
    // both compiled. c:1 shares only the base's upload into b's repository,
    // which is b's work, not c's: left out.
    assert_eq!(unchanged_names(&graph), ["quay.io/app/c:1"]);
    assert!(!plan.is_empty());

    // --verify: every image compiled, every blob checked.
    let mut verifying = mirrored(&images);
    verifying
        .missing_blobs
        .insert(("mirror/app/c".to_owned(), digest("c-own")));
    let (graph, plan) = plan_both_ways(&images, &destination(), &verifying);
    assert!(unchanged_names(&graph).is_empty());
    assert_eq!(plan.actions.len(), 1);
}

#[test]
fn fingerprints_follow_every_input_that_shapes_actions() {
    let base = image("quay.io/app/b:1", "app/b", "1", &["base", "b-own"]);
    let fingerprint = |image: &ResolvedImage| ImageFingerprint::of(image, &destination());
    assert_eq!(fingerprint(&base), fingerprint(&base.clone()));
    let mut renamed = base.clone();
    renamed.name = "quay.io/app/b:one".to_owned();
    assert_eq!(
        fingerprint(&renamed),
        fingerprint(&base),
        "names are not hashed"
    );
    let mut category = base.clone();
    category.category = ferry_planner::Category::Operator;
    assert_eq!(
        fingerprint(&category),
        fingerprint(&base),
        "categories are not hashed"
    );
    let changes: [fn(&mut ResolvedImage); 8] = [
        |image| image.destination_repository = "mirror/app/other".to_owned(),
        |image| image.destination_tag = Some("2".to_owned()),
        |image| image.destination_tag = None,
        |image| image.manifests[0].size += 1,
        |image| image.manifests[0].media_type.push('x'),
        |image| image.manifests[0].blobs[1].1 += 1,
        |image| drop(image.manifests[0].blobs.pop()),
        |image| {
            image
                .blob_sources
                .insert(digest("b-own"), ferry_planner::Source::Cache);
        },
    ];
    for change in changes {
        let mut changed = base.clone();
        change(&mut changed);
        assert_ne!(fingerprint(&changed), fingerprint(&base), "{changed:#?}");
    }
}

/// The fingerprint's bytes are what the state records: a change to what is
/// hashed, or how, must bump `FINGERPRINT_VERSION` rather than slip in
/// (records would silently stop matching). Pinned when the fields went
/// from one blake3 update each to one buffer hashed at once, after a
/// 10,000-image workspace recorded by the earlier code planned with no
/// image compiled again.
#[test]
fn an_image_fingerprint_is_pinned() {
    let fingerprint = ImageFingerprint::of(&image_set()[0], &destination());
    let hex: String = fingerprint
        .to_bytes()
        .iter()
        .map(|byte| format!("{byte:02x}"))
        .collect();
    assert_eq!(
        hex,
        "7618740d81ecc6166f3fc6a60b4db2ab212062eb6fdc7fd1422e14ea5eecc1a4"
    );
}
