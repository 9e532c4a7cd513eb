//! Responses cut short or stalled, through the test world's fault proxy
//! (issue 14): a manifest or tag list whose body is cut is asked for again
//! like a failed connection, and the error says how far it got; a response
//! whose headers or body stall is retried after the header or stall
//! timeout, not after minutes; every retry is logged at warn level with the
//! registry, what failed and the attempt number.

use std::io::Write;
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use ferry_registry::client::ErrorKind;
use ferry_registry::{ClientOptions, CredentialStore, RegistryClient};
use ferry_schemas::ImageReference;
use ferry_store::BlobStore;
use ferry_testworld::proxy::{CutAnswer, FaultProxy, Faults, StallAnswer};
use ferry_testworld::world::World;

fn client_with(hosts: &[String], retry_times: u32, timeouts: Duration) -> RegistryClient {
    RegistryClient::new(ClientOptions {
        credentials: CredentialStore::from_files(Vec::new()),
        certificate_folders: Vec::new(),
        insecure_hosts: hosts.to_vec(),
        retry_times,
        retry_delay: Some(Duration::from_millis(10)),
        header_timeout: timeouts,
        stall_timeout: timeouts,
        ..ClientOptions::default()
    })
}

fn hello(host: &str) -> ImageReference {
    format!("{host}/quay.io/ferry-demo/hello:1.0")
        .parse()
        .unwrap()
}

fn cut_manifests(after: u64, times: usize) -> Faults {
    Faults {
        cut_gets: vec![CutAnswer {
            path_contains: "/manifests/".to_owned(),
            after,
            times,
        }],
        ..Faults::default()
    }
}

fn manifest_gets(proxy: &FaultProxy) -> Vec<ferry_testworld::proxy::Record> {
    proxy
        .records()
        .into_iter()
        .filter(|record| record.method == "GET" && record.path.contains("/manifests/"))
        .collect()
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_manifest_cut_mid_body_is_asked_for_again() {
    let world = World::start().unwrap();
    let proxy = FaultProxy::start(world.registry().address()).unwrap();
    let client = client_with(&[proxy.host()], 3, Duration::from_secs(30));
    let reference = hello(&proxy.host());
    let whole = client.get_manifest(&reference).await.unwrap();
    assert!(whole.bytes.len() > 100, "{}", whole.bytes.len());
    proxy.clear();
    proxy.arm(cut_manifests(100, 1));
    let manifest = client.get_manifest(&reference).await.unwrap();
    assert_eq!(manifest, whole);
    let gets = manifest_gets(&proxy);
    assert_eq!(gets.len(), 2, "{gets:#?}");
    assert_eq!(gets[0].bytes_sent, 100);
    assert_eq!(gets[1].bytes_sent, whole.bytes.len() as u64);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_manifest_cut_on_every_attempt_says_how_far_it_got() {
    let world = World::start().unwrap();
    let proxy = FaultProxy::start(world.registry().address()).unwrap();
    let client = client_with(&[proxy.host()], 2, Duration::from_secs(30));
    let reference = hello(&proxy.host());
    let size = client.get_manifest(&reference).await.unwrap().bytes.len();
    proxy.clear();
    proxy.arm(cut_manifests(100, 10));
    let error = client.get_manifest(&reference).await.unwrap_err();
    let message = error.to_string();
    assert!(
        matches!(
            error.kind,
            ErrorKind::BodyCut { received: 100, expected: Some(expected), .. } if expected == size as u64
        ),
        "{message}"
    );
    assert!(
        message.contains(&format!(
            "the registry closed the connection after 100 of {size} bytes of the manifest"
        )),
        "{message}"
    );
    assert!(
        message.contains("quay.io/ferry-demo/hello:1.0"),
        "{message}"
    );
    assert!(!message.contains("cannot connect"), "{message}");
    assert_eq!(manifest_gets(&proxy).len(), 3, "one try and two retries");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_tag_list_cut_mid_body_is_asked_for_again() {
    let world = World::start().unwrap();
    let proxy = FaultProxy::start(world.registry().address()).unwrap();
    let client = client_with(&[proxy.host()], 3, Duration::from_secs(30));
    let repository = "quay.io/ferry-demo/hello";
    let tags = client
        .list_tags(&proxy.host(), repository)
        .await
        .unwrap()
        .unwrap();
    assert!(tags.contains(&"1.0".to_owned()), "{tags:?}");
    proxy.arm(Faults {
        cut_gets: vec![CutAnswer {
            path_contains: "/tags/list".to_owned(),
            after: 5,
            times: 1,
        }],
        ..Faults::default()
    });
    let again = client
        .list_tags(&proxy.host(), repository)
        .await
        .unwrap()
        .unwrap();
    assert_eq!(again, tags);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn stalled_headers_are_retried_after_the_header_timeout() {
    let world = World::start().unwrap();
    let proxy = FaultProxy::start(world.registry().address()).unwrap();
    let client = client_with(&[proxy.host()], 3, Duration::from_millis(500));
    let reference = hello(&proxy.host());
    let whole = client.get_manifest(&reference).await.unwrap();
    proxy.arm(Faults {
        stalls: vec![StallAnswer {
            method: "GET".to_owned(),
            path_contains: "/manifests/".to_owned(),
            before_headers: true,
            stall: Duration::from_secs(5),
            times: 1,
        }],
        ..Faults::default()
    });
    let started = Instant::now();
    let manifest = client.get_manifest(&reference).await.unwrap();
    let elapsed = started.elapsed();
    assert_eq!(manifest, whole);
    assert!(elapsed < Duration::from_secs(4), "took {elapsed:?}");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_stalled_blob_body_resumes_after_the_stall_timeout() {
    let world = World::start().unwrap();
    let proxy = FaultProxy::start(world.registry().address()).unwrap();
    let client = client_with(&[proxy.host()], 3, Duration::from_millis(500));
    let reference = hello(&proxy.host());
    let manifest = client.get_manifest(&reference).await.unwrap();
    let value: serde_json::Value = serde_json::from_slice(&manifest.bytes).unwrap();
    let layer = value["layers"]
        .as_array()
        .unwrap()
        .iter()
        .max_by_key(|layer| layer["size"].as_u64().unwrap())
        .unwrap()
        .clone();
    let digest = layer["digest"].as_str().unwrap().parse().unwrap();
    let size = layer["size"].as_u64().unwrap();
    proxy.clear();
    proxy.arm(Faults {
        stalls: vec![StallAnswer {
            method: "GET".to_owned(),
            path_contains: "/blobs/".to_owned(),
            before_headers: false,
            stall: Duration::from_secs(5),
            times: 1,
        }],
        ..Faults::default()
    });
    let cache = tempfile::tempdir().unwrap();
    let store = BlobStore::open(cache.path()).unwrap();
    let started = Instant::now();
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
    let elapsed = started.elapsed();
    assert!(elapsed < Duration::from_secs(4), "took {elapsed:?}");
    assert!(store.contains(&digest));
    let ranges: Vec<_> = proxy
        .records()
        .into_iter()
        .filter(|record| record.is_blob_get())
        .filter_map(|record| record.range)
        .collect();
    assert_eq!(ranges, [format!("bytes={}-", size / 2)], "resumed");
}

/// Collects what a tracing subscriber writes.
#[derive(Clone, Default)]
struct Captured(Arc<Mutex<Vec<u8>>>);

impl Write for Captured {
    fn write(&mut self, bytes: &[u8]) -> std::io::Result<usize> {
        self.0.lock().unwrap().extend_from_slice(bytes);
        Ok(bytes.len())
    }

    fn flush(&mut self) -> std::io::Result<()> {
        Ok(())
    }
}

#[tokio::test(flavor = "current_thread")]
async fn retries_are_logged_with_registry_failure_and_attempt() {
    let captured = Captured::default();
    let writer = captured.clone();
    let subscriber = tracing_subscriber::fmt()
        .with_max_level(tracing::Level::WARN)
        .with_ansi(false)
        .with_writer(move || writer.clone())
        .finish();
    let _guard = tracing::subscriber::set_default(subscriber);

    let world = World::start().unwrap();
    let proxy = FaultProxy::start(world.registry().address()).unwrap();
    let client = client_with(&[proxy.host()], 5, Duration::from_secs(30));
    let reference = hello(&proxy.host());
    client.get_manifest(&reference).await.unwrap();
    proxy.arm(cut_manifests(100, 2));
    client.get_manifest(&reference).await.unwrap();

    let log = String::from_utf8(captured.0.lock().unwrap().clone()).unwrap();
    let lines: Vec<&str> = log.lines().filter(|line| line.contains("WARN")).collect();
    assert_eq!(lines.len(), 2, "{log}");
    for (index, line) in lines.iter().enumerate() {
        assert!(line.contains(&proxy.host()), "{line}");
        assert!(
            line.contains("GET /v2/quay.io/ferry-demo/hello/manifests/1.0"),
            "{line}"
        );
        assert!(
            line.contains("the registry closed the connection after 100 of"),
            "{line}"
        );
        assert!(line.contains(&format!("retry {}/5", index + 1)), "{line}");
        assert!(
            !line.contains("Authorization") && !line.contains("Basic "),
            "{line}"
        );
    }
}
