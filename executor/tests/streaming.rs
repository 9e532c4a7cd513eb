//! The executor streams: with one image's blob held half-way by the fault
//! proxy, another image's blobs, manifest and tag are pushed and recorded
//! in the state while the held blob is still moving; once released, the
//! held image completes too. Images complete in the image set's order
//! (a priority among ready actions, not a barrier).

use std::collections::BTreeMap;
use std::sync::Mutex;
use std::time::{Duration, Instant};

use ferry_executor::resolve::{Request, ResolveOptions, resolve};
use ferry_executor::run::{self, Limits, Outcome, Progress, Target};
use ferry_planner::{Action, Destination, PlannedAction, StateSnapshot, compile, plan};
use ferry_registry::{ClientOptions, CredentialStore, RegistriesConf, RegistryClient};
use ferry_store::WorkspaceState;
use ferry_testworld::proxy::{FaultProxy, Faults};
use ferry_testworld::registry::{Flavour, Registry, Storage};
use ferry_testworld::world::World;

/// Records what the executor reported, in order.
#[derive(Default)]
struct Recorder {
    events: Mutex<Vec<String>>,
    bytes: Mutex<BTreeMap<String, u64>>,
}

impl Progress for Recorder {
    fn bytes_moved(&self, action: &Action, bytes: u64) {
        *self
            .bytes
            .lock()
            .unwrap()
            .entry(action.describe())
            .or_default() += bytes;
    }

    fn action_finished(&self, planned: &PlannedAction, outcome: Outcome) {
        self.events
            .lock()
            .unwrap()
            .push(format!("{outcome:?} {}", planned.action.describe()));
    }
}

fn request(proxy: &str, name: &str, repository: &str, tag: &str) -> Request {
    Request {
        name: name.to_owned(),
        origin: format!("{proxy}/{name}").parse().unwrap(),
        destination_repository: repository.to_owned(),
        destination_tag: tag.to_owned(),
        category: ferry_executor::workflow::Category::Additional,
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_held_blob_does_not_hold_back_another_image() {
    let world = World::start().unwrap();
    let proxy = FaultProxy::start(world.registry().address()).unwrap();
    let destination = Registry::start(Flavour::PlainHttp, Storage::Empty).unwrap();
    let client = RegistryClient::new(ClientOptions {
        credentials: CredentialStore::from_files(Vec::new()),
        certificate_folders: Vec::new(),
        insecure_hosts: vec![proxy.host(), destination.host()],
        retry_times: 1,
        retry_delay: Some(Duration::from_millis(10)),
        ..ClientOptions::default()
    });
    let requests = [
        request(
            &proxy.host(),
            "quay.io/ferry-demo/hello:1.0",
            "mirror/ferry-demo/hello",
            "1.0",
        ),
        request(
            &proxy.host(),
            "registry.redhat.io/ubi9/ubi-minimal:9.4",
            "mirror/ubi9/ubi-minimal",
            "9.4",
        ),
    ];
    let options = ResolveOptions {
        remove_signatures: true,
        ..ResolveOptions::default()
    };
    let resolution = resolve(&client, &RegistriesConf::default(), &requests, &options).await;
    assert!(resolution.failures.is_empty(), "{:?}", resolution.failures);
    let (hello, minimal) = (&resolution.images[0], &resolution.images[1]);
    // Hold hello's largest blob that minimal does not share.
    let minimal_blobs: Vec<_> = minimal
        .manifests
        .iter()
        .flat_map(|manifest| manifest.blobs.iter().map(|(digest, _)| digest.clone()))
        .collect();
    let (held, held_size) = hello
        .manifests
        .iter()
        .flat_map(|manifest| manifest.blobs.iter().cloned())
        .filter(|(digest, _)| !minimal_blobs.contains(digest))
        .max_by_key(|(_, size)| *size)
        .unwrap();
    assert!(held_size > 100, "{held_size} bytes: enough to cut in half");

    let target_destination = Destination {
        registry: destination.host(),
        prefix: "mirror".to_owned(),
    };
    let graph = compile(&resolution.images, &target_destination);
    let plan = plan(&graph, &StateSnapshot::default());
    let key_of = |wanted: &dyn Fn(&Action) -> bool| {
        plan.actions
            .iter()
            .find(|planned| wanted(&planned.action))
            .unwrap()
            .key
    };
    let minimal_tag = key_of(
        &|action| matches!(action, Action::Tag { repository, .. } if repository == "mirror/ubi9/ubi-minimal"),
    );
    let hello_tag = key_of(
        &|action| matches!(action, Action::Tag { repository, .. } if repository == "mirror/ferry-demo/hello"),
    );
    let held_upload =
        key_of(&|action| matches!(action, Action::UploadBlob { digest, .. } if *digest == held));

    let folder = tempfile::tempdir().unwrap();
    let state_path = folder.path().join("state.db");
    let mut state = WorkspaceState::open(&state_path).unwrap();
    let observer_state = WorkspaceState::open(&state_path).unwrap();
    proxy.arm(Faults {
        hold_blob_get_containing: Some(held.to_string()),
        ..Faults::default()
    });
    let destination_text = target_destination.display();
    let target = Target {
        destination: &destination_text,
        registry: &target_destination.registry,
        local_blobs: None,
        stop_on_failure_of: Default::default(),
    };
    let recorder = Recorder::default();
    let limits = Limits {
        blobs: 4,
        manifests: 2,
    };

    let running = run::execute(
        &plan,
        &graph,
        &resolution.manifests,
        &client,
        &mut state,
        &target,
        limits,
        &recorder,
    );
    let observing = async {
        // While the held blob waits half-way, the other image is finished
        // and recorded: its tag is in the state, the held upload is not.
        let deadline = Instant::now() + Duration::from_secs(60);
        let mut seen_while_held = false;
        while Instant::now() < deadline {
            let done = observer_state.history(&destination_text).unwrap().done;
            if done.contains(&minimal_tag) {
                seen_while_held = proxy.holding();
                assert!(
                    !done.contains(&held_upload),
                    "the held upload is not recorded yet"
                );
                assert!(
                    !done.contains(&hello_tag),
                    "the held image is not tagged yet"
                );
                break;
            }
            tokio::time::sleep(Duration::from_millis(20)).await;
        }
        // The bytes that did move are reported while the blob is held.
        let held_bytes = || {
            recorder
                .bytes
                .lock()
                .unwrap()
                .iter()
                .find(|(description, _)| description.contains(&held.to_string()))
                .map(|(_, bytes)| *bytes)
        };
        let deadline = Instant::now() + Duration::from_secs(10);
        while held_bytes().is_none() && Instant::now() < deadline {
            tokio::time::sleep(Duration::from_millis(20)).await;
        }
        let moved_while_held = held_bytes();
        seen_while_held &= proxy.holding();
        proxy.release();
        (seen_while_held, moved_while_held)
    };
    let (report, (seen_while_held, moved_while_held)) = tokio::join!(running, observing);
    let report = report.unwrap();
    assert!(
        seen_while_held,
        "the other image was tagged and recorded while the blob was held; events: {:#?}",
        recorder.events.lock().unwrap()
    );
    // Bytes of the held blob were reported while it moved, before the end.
    let moved_while_held = moved_while_held.unwrap_or(0);
    assert!(
        moved_while_held > 0 && moved_while_held < held_size,
        "{moved_while_held} of {held_size} bytes reported while held"
    );
    assert_eq!(report.failed, 0, "{report:?}");
    assert_eq!(report.completed, plan.actions.len());
    assert!(report.failed_images().next().is_none());
    let done = observer_state.history(&destination_text).unwrap().done;
    assert!(done.contains(&hello_tag) && done.contains(&held_upload));
    // Every byte of the held blob was reported once.
    let reported = recorder.bytes.lock().unwrap().clone();
    let held_reported = reported
        .iter()
        .find(|(description, _)| description.contains(&held.to_string()))
        .map(|(_, bytes)| *bytes);
    assert_eq!(held_reported, Some(held_size));
    let total: u64 = reported.values().sum();
    assert_eq!(total, plan.totals.bytes_to_push - manifest_bytes(&plan));
}

/// Images complete one after another: with one blob transfer at a time,
/// every upload of the image set's first image finishes before any upload
/// of the second, and the first image is tagged first, although the plan
/// lists the second image's repository (`mirror/aa/...`) first. The
/// executor prefers the actions of earlier images (a priority, not a
/// barrier), so an interrupted run leaves whole images.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn images_complete_in_the_image_sets_order() {
    let world = World::start().unwrap();
    let destination = Registry::start(Flavour::PlainHttp, Storage::Empty).unwrap();
    let source = world.registry().host();
    let client = RegistryClient::new(ClientOptions {
        credentials: CredentialStore::from_files(Vec::new()),
        certificate_folders: Vec::new(),
        insecure_hosts: vec![source.clone(), destination.host()],
        retry_times: 1,
        retry_delay: Some(Duration::from_millis(10)),
        ..ClientOptions::default()
    });
    let requests = [
        request(
            &source,
            "registry.redhat.io/ubi9/ubi-minimal:9.4",
            "mirror/zz/ubi-minimal",
            "9.4",
        ),
        request(
            &source,
            "quay.io/ferry-demo/hello:1.0",
            "mirror/aa/hello",
            "1.0",
        ),
    ];
    let options = ResolveOptions {
        remove_signatures: true,
        ..ResolveOptions::default()
    };
    let resolution = resolve(&client, &RegistriesConf::default(), &requests, &options).await;
    assert!(resolution.failures.is_empty(), "{:?}", resolution.failures);
    let target_destination = Destination {
        registry: destination.host(),
        prefix: "mirror".to_owned(),
    };
    let graph = compile(&resolution.images, &target_destination);
    let plan = plan(&graph, &StateSnapshot::default());
    let first_upload = plan
        .actions
        .iter()
        .find(|planned| matches!(planned.action, Action::UploadBlob { .. }))
        .unwrap();
    assert!(
        first_upload
            .action
            .describe()
            .ends_with("to mirror/aa/hello"),
        "the plan lists the second image's uploads first: {}",
        first_upload.action.describe()
    );
    let folder = tempfile::tempdir().unwrap();
    let mut state = WorkspaceState::open(folder.path().join("state.db")).unwrap();
    let destination_text = target_destination.display();
    let target = Target {
        destination: &destination_text,
        registry: &target_destination.registry,
        local_blobs: None,
        stop_on_failure_of: Default::default(),
    };
    let recorder = Recorder::default();
    let limits = Limits {
        blobs: 1,
        manifests: 1,
    };
    let report = run::execute(
        &plan,
        &graph,
        &resolution.manifests,
        &client,
        &mut state,
        &target,
        limits,
        &recorder,
    )
    .await
    .unwrap();
    assert_eq!(report.failed, 0, "{report:?}");
    let events = recorder.events.lock().unwrap().clone();
    let position = |wanted: &dyn Fn(&str) -> bool| events.iter().position(|event| wanted(event));
    // A blob both images hold serves the first (it may be uploaded into
    // the second's repository and linked into the first's).
    let first_image_blobs: Vec<String> = resolution.images[0]
        .manifests
        .iter()
        .flat_map(|manifest| manifest.blobs.iter().map(|(digest, _)| digest.to_string()))
        .collect();
    let serves_first = |event: &str| {
        first_image_blobs
            .iter()
            .any(|digest| event.contains(digest.as_str()))
    };
    let uploads: Vec<&String> = events
        .iter()
        .filter(|event| event.starts_with("Succeeded upload"))
        .collect();
    let last_first_image_upload = uploads
        .iter()
        .rposition(|event| serves_first(event))
        .unwrap();
    let first_second_image_upload = uploads
        .iter()
        .position(|event| !serves_first(event))
        .unwrap();
    assert!(
        last_first_image_upload < first_second_image_upload,
        "the first image's uploads go first: {events:#?}"
    );
    let first_tagged = position(&|event| event.starts_with("Succeeded tag mirror/zz/")).unwrap();
    let second_tagged = position(&|event| event.starts_with("Succeeded tag mirror/aa/")).unwrap();
    assert!(
        first_tagged < second_tagged,
        "the first image is complete first: {events:#?}"
    );
}

/// Bytes of the plan's manifests (reported per action, not per byte).
fn manifest_bytes(plan: &ferry_planner::Plan) -> u64 {
    plan.actions
        .iter()
        .filter(|planned| matches!(planned.action, Action::PushManifest { .. }))
        .map(|planned| planned.action.bytes())
        .sum()
}
