//! Transfers under faults, through the test world's fault proxy: resumes
//! send `Range` and refetch little, errors are retried, a refused
//! monolithic upload falls back to chunks, a second repository gets a
//! mount, concurrent fetches of one digest fetch once, a flipped byte
//! never reaches the store, and a copy asks the destination only what it
//! needs (no HEAD before a mount or a small upload).

use std::time::Duration;

use ferry_registry::client::ErrorKind;
use ferry_registry::{ClientOptions, CredentialStore, PushOutcome, RegistryClient};
use ferry_schemas::{Digest, ImageReference};
use ferry_store::BlobStore;
use ferry_testworld::proxy::{ErrorAnswer, FaultProxy, Faults};
use ferry_testworld::registry::{Flavour, Registry, Storage};
use ferry_testworld::world::World;

fn client_for(hosts: &[String]) -> RegistryClient {
    RegistryClient::new(ClientOptions {
        credentials: CredentialStore::from_files(Vec::new()),
        certificate_folders: Vec::new(),
        insecure_hosts: hosts.to_vec(),
        retry_times: 3,
        retry_delay: Some(Duration::from_millis(10)),
        ..ClientOptions::default()
    })
}

/// The largest blob of the world's ubi image (a layer of some KiB).
async fn largest_blob(client: &RegistryClient, host: &str) -> (ImageReference, Digest, u64) {
    let reference: ImageReference = format!("{host}/quay.io/ferry-demo/hello:1.0")
        .parse()
        .unwrap();
    let manifest = client.get_manifest(&reference).await.unwrap();
    let value: serde_json::Value = serde_json::from_slice(&manifest.bytes).unwrap();
    let layer = value["layers"]
        .as_array()
        .unwrap()
        .iter()
        .max_by_key(|layer| layer["size"].as_u64().unwrap())
        .unwrap()
        .clone();
    (
        reference,
        layer["digest"].as_str().unwrap().parse().unwrap(),
        layer["size"].as_u64().unwrap(),
    )
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_dropped_download_resumes_with_range() {
    let world = World::start().unwrap();
    let proxy = FaultProxy::start(world.registry().address()).unwrap();
    let client = client_for(&[proxy.host()]);
    let (reference, digest, size) = largest_blob(&client, &proxy.host()).await;
    assert!(size > 10_000, "the blob is big enough to cut: {size}");
    proxy.clear();
    proxy.arm(Faults {
        drop_blob_gets_after: vec![10_000],
        ..Faults::default()
    });
    let cache = tempfile::tempdir().unwrap();
    let store = BlobStore::open(cache.path()).unwrap();
    let received = client
        .fetch_blob(
            reference.registry(),
            reference.repository(),
            &digest,
            Some(size),
            &store,
        )
        .await
        .unwrap();
    assert_eq!(received, size);
    let gets: Vec<_> = proxy
        .records()
        .into_iter()
        .filter(|record| record.is_blob_get())
        .collect();
    assert_eq!(gets.len(), 2, "{gets:#?}");
    assert_eq!(gets[0].range, None);
    assert_eq!(gets[1].range.as_deref(), Some("bytes=10000-"));
    let served: u64 = gets.iter().map(|get| get.bytes_sent).sum();
    assert!(
        served <= size + 256 * 1024,
        "refetched at most one chunk: {served} for {size}"
    );
    assert!(store.verify(false).unwrap().corrupt.is_empty());
    assert!(store.contains(&digest));
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn server_errors_and_throttling_are_retried_then_reported() {
    let world = World::start().unwrap();
    let proxy = FaultProxy::start(world.registry().address()).unwrap();
    let client = client_for(&[proxy.host()]);
    let (reference, digest, size) = largest_blob(&client, &proxy.host()).await;
    proxy.arm(Faults {
        errors: vec![
            ErrorAnswer {
                method: "GET".to_owned(),
                path_contains: "/blobs/".to_owned(),
                status: 500,
                retry_after: None,
                times: 1,
            },
            ErrorAnswer {
                method: "GET".to_owned(),
                path_contains: "/blobs/".to_owned(),
                status: 429,
                retry_after: Some(1),
                times: 1,
            },
        ],
        ..Faults::default()
    });
    let cache = tempfile::tempdir().unwrap();
    let store = BlobStore::open(cache.path()).unwrap();
    let started = std::time::Instant::now();
    client
        .fetch_blob(
            reference.registry(),
            reference.repository(),
            &digest,
            Some(size),
            &store,
        )
        .await
        .unwrap();
    assert!(
        started.elapsed() >= Duration::from_secs(1),
        "Retry-After: 1 was honoured"
    );
    assert!(store.contains(&digest));

    // More failures than retries: a clear error.
    proxy.arm(Faults {
        errors: vec![ErrorAnswer {
            method: "GET".to_owned(),
            path_contains: "/manifests/".to_owned(),
            status: 503,
            retry_after: None,
            times: 10,
        }],
        ..Faults::default()
    });
    let error = client.get_manifest(&reference).await.unwrap_err();
    let message = error.to_string();
    assert!(
        matches!(error.kind, ErrorKind::Status { status: 503, .. }),
        "{message}"
    );
    assert!(
        message.contains("quay.io/ferry-demo/hello:1.0"),
        "{message}"
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn refused_monolithic_uploads_fall_back_to_chunks_and_mounts_move_no_bytes() {
    let world = World::start().unwrap();
    let destination = Registry::start(Flavour::PlainHttp, Storage::Empty).unwrap();
    let proxy = FaultProxy::start(destination.address()).unwrap();
    let client = client_for(&[world.registry().host(), proxy.host()]);
    let (reference, digest, size) = largest_blob(&client, &world.registry().host()).await;
    let cache = tempfile::tempdir().unwrap();
    let store = BlobStore::open(cache.path()).unwrap();
    client
        .fetch_blob(
            reference.registry(),
            reference.repository(),
            &digest,
            Some(size),
            &store,
        )
        .await
        .unwrap();
    proxy.arm(Faults {
        refuse_monolithic_put: true,
        ..Faults::default()
    });
    let outcome = client
        .push_blob(
            &proxy.host(),
            "team/one",
            &digest,
            size,
            &store.path(&digest),
            None,
        )
        .await
        .unwrap();
    assert_eq!(outcome, PushOutcome::UploadedInChunks);
    let records = proxy.records();
    assert!(records.iter().any(|r| r.method == "PUT" && r.status == 413));
    assert!(
        records
            .iter()
            .any(|r| r.method == "PATCH" && r.status == 202)
    );
    assert_eq!(
        client
            .blob_size(&proxy.host(), "team/one", &digest)
            .await
            .unwrap(),
        Some(size)
    );

    proxy.clear();
    let mounted = client
        .push_blob(
            &proxy.host(),
            "team/two",
            &digest,
            size,
            &store.path(&digest),
            Some("team/one"),
        )
        .await
        .unwrap();
    assert_eq!(mounted, PushOutcome::Mounted);
    let records = proxy.records();
    assert!(
        records
            .iter()
            .any(|r| r.method == "POST" && r.path.contains("mount=") && r.status == 201),
        "{records:#?}"
    );
    assert!(
        !records
            .iter()
            .any(|r| r.method == "PATCH" || r.method == "PUT"),
        "a mount uploads nothing"
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn eight_concurrent_fetches_of_one_digest_fetch_it_once() {
    let world = World::start().unwrap();
    let proxy = FaultProxy::start(world.registry().address()).unwrap();
    let client = client_for(&[proxy.host()]);
    let (reference, digest, size) = largest_blob(&client, &proxy.host()).await;
    proxy.clear();
    let cache = tempfile::tempdir().unwrap();
    let store = BlobStore::open(cache.path()).unwrap();
    let mut tasks = tokio::task::JoinSet::new();
    for _ in 0..8 {
        let (client, store, reference, digest) = (
            client.clone(),
            store.clone(),
            reference.clone(),
            digest.clone(),
        );
        tasks.spawn(async move {
            client
                .fetch_blob(
                    reference.registry(),
                    reference.repository(),
                    &digest,
                    Some(size),
                    &store,
                )
                .await
                .unwrap()
        });
    }
    let mut received = 0;
    while let Some(result) = tasks.join_next().await {
        received += result.unwrap();
    }
    assert_eq!(
        received, size,
        "one task received the bytes, seven found them stored"
    );
    let gets = proxy
        .records()
        .into_iter()
        .filter(|record| record.is_blob_get())
        .count();
    assert_eq!(gets, 1);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_flipped_byte_is_caught_and_never_stored() {
    let world = World::start().unwrap();
    let proxy = FaultProxy::start(world.registry().address()).unwrap();
    let client = client_for(&[proxy.host()]);
    let (reference, digest, size) = largest_blob(&client, &proxy.host()).await;
    proxy.arm(Faults {
        flip_byte_in_next_blob_get: true,
        ..Faults::default()
    });
    let cache = tempfile::tempdir().unwrap();
    let store = BlobStore::open(cache.path()).unwrap();
    let error = client
        .fetch_blob(
            reference.registry(),
            reference.repository(),
            &digest,
            Some(size),
            &store,
        )
        .await
        .unwrap_err();
    assert!(
        error.to_string().contains("does not match its digest"),
        "{error}"
    );
    assert!(!store.contains(&digest));
    assert!(store.list().unwrap().is_empty());
    assert_eq!(
        std::fs::read_dir(cache.path().join("tmp")).unwrap().count(),
        0
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn copies_ask_the_destination_only_what_they_need() {
    let world = World::start().unwrap();
    let destination = Registry::start(Flavour::PlainHttp, Storage::Empty).unwrap();
    let proxy = FaultProxy::start(destination.address()).unwrap();
    let client = client_for(&[world.registry().host(), proxy.host()]);
    let (reference, digest, size) = largest_blob(&client, &world.registry().host()).await;
    assert!(size < ferry_registry::client::ASK_BEFORE_UPLOAD_FROM);
    let copy = |client: &RegistryClient, repository: &'static str, from: Option<&'static str>| {
        let (client, reference, digest, destination) = (
            client.clone(),
            reference.clone(),
            digest.clone(),
            proxy.host(),
        );
        async move {
            client
                .copy_blob(
                    reference.registry(),
                    reference.repository(),
                    &destination,
                    repository,
                    &digest,
                    size,
                    from,
                )
                .await
                .unwrap()
        }
    };
    // The requests the proxy saw, but the client's first `/v2/` ping; the
    // proxy records a request after answering it, so wait until `count`
    // are in (or a second has passed).
    let requests = |proxy: &FaultProxy, count: usize| -> Vec<String> {
        let seen = || -> Vec<_> {
            proxy
                .records()
                .into_iter()
                .filter(|record| record.path != "/v2/")
                .collect()
        };
        let deadline = std::time::Instant::now() + Duration::from_secs(1);
        while seen().len() < count && std::time::Instant::now() < deadline {
            std::thread::sleep(Duration::from_millis(10));
        }
        seen()
            .iter()
            .map(|record| {
                let path = record.path.split('?').next().unwrap_or_default();
                let kind = if record.path.contains("mount=") {
                    " (mount)"
                } else if path.ends_with("/blobs/uploads/") {
                    " (start)"
                } else {
                    ""
                };
                format!("{} {}{kind}", record.method, record.status)
            })
            .collect()
    };

    // A small blob is uploaded without a HEAD first: one POST, one PUT.
    proxy.clear();
    assert_eq!(copy(&client, "team/one", None).await, PushOutcome::Uploaded);
    assert_eq!(requests(&proxy, 2), ["POST 202 (start)", "PUT 201"]);

    // A mount is asked directly (201 also when the blob is there).
    proxy.clear();
    let mounted = copy(&client, "team/two", Some("team/one")).await;
    assert_eq!(mounted, PushOutcome::Mounted);
    assert_eq!(requests(&proxy, 1), ["POST 201 (mount)"]);

    // A refused mount (the other repository lacks the blob): the session
    // the registry opened instead takes the upload.
    proxy.clear();
    let copied = copy(&client, "team/three", Some("team/none")).await;
    assert_eq!(copied, PushOutcome::Uploaded);
    assert_eq!(requests(&proxy, 2), ["POST 202 (mount)", "PUT 201"]);

    // A client that asks before uploads of this size finds it present.
    let asking = RegistryClient::new(ClientOptions {
        credentials: CredentialStore::from_files(Vec::new()),
        certificate_folders: Vec::new(),
        insecure_hosts: vec![world.registry().host(), proxy.host()],
        ask_before_upload_from: 1,
        ..ClientOptions::default()
    });
    proxy.clear();
    assert_eq!(copy(&asking, "team/one", None).await, PushOutcome::Present);
    assert_eq!(requests(&proxy, 1), ["HEAD 200"]);
    for repository in ["team/one", "team/two", "team/three"] {
        assert_eq!(
            client
                .blob_size(&proxy.host(), repository, &digest)
                .await
                .unwrap(),
            Some(size),
            "{repository}"
        );
    }
}
