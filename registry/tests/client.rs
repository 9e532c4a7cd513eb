//! The registry client against real `docker-registry` processes from the
//! test world, cross-checked with skopeo.

use std::collections::BTreeSet;
use std::process::Command;

use ferry_registry::client::ErrorKind;
use ferry_registry::{ClientOptions, CredentialStore, PushOutcome, RegistriesConf, RegistryClient};
use ferry_schemas::{Digest, ImageReference};
use ferry_store::BlobStore;
use ferry_testworld::registry::{Flavour, Registry, Storage};
use ferry_testworld::world::World;

fn options() -> ClientOptions {
    ClientOptions {
        credentials: CredentialStore::from_files(Vec::new()),
        certificate_folders: Vec::new(),
        retry_times: 2,
        ..ClientOptions::default()
    }
}

fn skopeo(arguments: &[&str]) -> std::process::Output {
    Command::new("skopeo")
        .args(arguments)
        .output()
        .expect("skopeo runs")
}

/// Every digest a manifest names: (children manifests, blobs with sizes).
fn children(bytes: &[u8]) -> (Vec<Digest>, Vec<(Digest, u64)>) {
    let value: serde_json::Value = serde_json::from_slice(bytes).unwrap();
    let digest =
        |item: &serde_json::Value| item["digest"].as_str().unwrap().parse::<Digest>().unwrap();
    if let Some(manifests) = value["manifests"].as_array() {
        return (manifests.iter().map(digest).collect(), Vec::new());
    }
    let mut blobs = vec![(
        digest(&value["config"]),
        value["config"]["size"].as_u64().unwrap(),
    )];
    for layer in value["layers"].as_array().into_iter().flatten() {
        blobs.push((digest(layer), layer["size"].as_u64().unwrap()));
    }
    (Vec::new(), blobs)
}

/// The additional images of the world (the demo configuration's names).
const IMAGES: [&str; 5] = [
    "registry.redhat.io/ubi9/ubi:latest",
    "registry.redhat.io/ubi9/ubi-minimal:9.4",
    "quay.io/ferry-demo/hello:1.0",
    "quay.io/ferry-demo/hello-oci:1.0",
    "quay.io/ferry-demo/signed:1.0",
];

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn copies_every_additional_image_to_the_store_and_to_another_registry() {
    let world = World::start().unwrap();
    let registries = RegistriesConf::load(Some(world.registries_conf()), &[]).unwrap();
    let destination = Registry::start(Flavour::PlainHttp, Storage::Empty).unwrap();
    let mut client_options = options();
    client_options.insecure_hosts = vec![world.registry().host(), destination.host()];
    let client = RegistryClient::new(client_options);
    let cache = tempfile::tempdir().unwrap();
    let store = BlobStore::open(cache.path()).unwrap();

    for image in IMAGES {
        let logical: ImageReference = image.parse().unwrap();
        // The world's public names reach the loopback registry through its
        // registries.conf, as an enclave's names do.
        let sources = registries.pull_sources(&logical).unwrap();
        let source = sources.last().unwrap().reference.clone();
        assert!(source.registry().starts_with("127.0.0.1:"), "{source}");
        let top = client.get_manifest(&source).await.unwrap();
        let head = client.head_manifest(&source).await.unwrap().unwrap();
        assert_eq!(head.digest.as_ref(), Some(&top.digest));

        let mirror_repository = format!("mirror/{}", logical.repository());
        let mut queue = vec![top.clone()];
        let mut pushed = Vec::new();
        while let Some(manifest) = queue.pop() {
            let (child_manifests, blobs) = children(&manifest.bytes);
            for (digest, size) in blobs {
                client
                    .fetch_blob(
                        source.registry(),
                        source.repository(),
                        &digest,
                        Some(size),
                        &store,
                    )
                    .await
                    .unwrap();
                assert!(store.contains(&digest));
                let outcome = client
                    .push_blob(
                        &destination.host(),
                        &mirror_repository,
                        &digest,
                        size,
                        &store.path(&digest),
                        None,
                    )
                    .await
                    .unwrap();
                assert!(
                    matches!(outcome, PushOutcome::Uploaded | PushOutcome::Present),
                    "{outcome:?}"
                );
            }
            for child in child_manifests {
                let child_reference = source.with_digest(child);
                queue.push(client.get_manifest(&child_reference).await.unwrap());
            }
            pushed.push(manifest);
        }
        // Children before parents: push in reverse discovery order.
        for manifest in pushed.iter().rev() {
            let target: ImageReference = format!(
                "{}/{mirror_repository}@{}",
                destination.host(),
                manifest.digest
            )
            .parse()
            .unwrap();
            client.put_manifest(&target, manifest).await.unwrap();
        }
        let tagged: ImageReference = format!(
            "{}/{mirror_repository}:{}",
            destination.host(),
            logical.tag().unwrap()
        )
        .parse()
        .unwrap();
        client.put_manifest(&tagged, &top).await.unwrap();

        // skopeo sees byte-identical manifests and can copy the mirror.
        let raw = skopeo(&[
            "inspect",
            "--raw",
            "--tls-verify=false",
            &format!("docker://{tagged}"),
        ]);
        assert!(
            raw.status.success(),
            "{}",
            String::from_utf8_lossy(&raw.stderr)
        );
        assert_eq!(raw.stdout, top.bytes.as_ref(), "{image}");
        let copy_folder = tempfile::tempdir().unwrap();
        let copied = skopeo(&[
            "copy",
            "--all",
            "--src-tls-verify=false",
            &format!("docker://{tagged}"),
            &format!("oci:{}", copy_folder.path().display()),
        ]);
        assert!(
            copied.status.success(),
            "{image}: {}",
            String::from_utf8_lossy(&copied.stderr)
        );
    }
    // Every blob in the store hashes to its name.
    let report = store.verify(false).unwrap();
    assert!(
        report.checked > 10 && report.corrupt.is_empty(),
        "{report:?}"
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_second_repository_gets_a_mount() {
    let world = World::start().unwrap();
    let destination = Registry::start(Flavour::PlainHttp, Storage::Empty).unwrap();
    let mut client_options = options();
    client_options.insecure_hosts = vec![world.registry().host(), destination.host()];
    let client = RegistryClient::new(client_options);
    let cache = tempfile::tempdir().unwrap();
    let store = BlobStore::open(cache.path()).unwrap();
    let source: ImageReference =
        format!("{}/quay.io/ferry-demo/hello:1.0", world.registry().host())
            .parse()
            .unwrap();
    let manifest = client.get_manifest(&source).await.unwrap();
    let (_, blobs) = children(&manifest.bytes);
    let (digest, size) = blobs.last().unwrap().clone();
    client
        .fetch_blob(
            source.registry(),
            source.repository(),
            &digest,
            Some(size),
            &store,
        )
        .await
        .unwrap();
    let path = store.path(&digest);
    let first = client
        .push_blob(&destination.host(), "team/one", &digest, size, &path, None)
        .await
        .unwrap();
    assert_eq!(first, PushOutcome::Uploaded);
    // A small blob is sent again without asking first (the registry
    // checks it and keeps one copy); a client that asks finds it there.
    assert!(size < ferry_registry::client::ASK_BEFORE_UPLOAD_FROM);
    let again = client
        .push_blob(&destination.host(), "team/one", &digest, size, &path, None)
        .await
        .unwrap();
    assert_eq!(again, PushOutcome::Uploaded);
    let mut asking_options = options();
    asking_options.insecure_hosts = vec![world.registry().host(), destination.host()];
    asking_options.ask_before_upload_from = 0;
    let asking = RegistryClient::new(asking_options);
    let again = asking
        .push_blob(&destination.host(), "team/one", &digest, size, &path, None)
        .await
        .unwrap();
    assert_eq!(again, PushOutcome::Present);
    let mounted = client
        .push_blob(
            &destination.host(),
            "team/two",
            &digest,
            size,
            &path,
            Some("team/one"),
        )
        .await
        .unwrap();
    assert_eq!(mounted, PushOutcome::Mounted);
    assert_eq!(
        client
            .blob_size(&destination.host(), "team/two", &digest)
            .await
            .unwrap(),
        Some(size)
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn tls_needs_the_authority_from_certs_d() {
    let world = World::start().unwrap();
    let tls = world.start_registry(Flavour::Tls).unwrap();
    let reference: ImageReference = format!("{}/quay.io/ferry-demo/hello:1.0", tls.host())
        .parse()
        .unwrap();

    // Without the CA: a TLS error that names the folders searched.
    let empty = tempfile::tempdir().unwrap();
    let mut without = options();
    without.certificate_folders = vec![empty.path().to_owned()];
    let error = RegistryClient::new(without)
        .get_manifest(&reference)
        .await
        .unwrap_err();
    assert!(matches!(error.kind, ErrorKind::Tls { .. }), "{error}");
    assert!(
        error
            .to_string()
            .contains(&empty.path().join(tls.host()).display().to_string()),
        "{error}"
    );

    // With certs.d/<host:port>/ca.crt: verified TLS works.
    let certs = tempfile::tempdir().unwrap();
    std::fs::create_dir_all(certs.path().join(tls.host())).unwrap();
    std::fs::copy(
        tls.ca_certificate().unwrap(),
        certs.path().join(tls.host()).join("ca.crt"),
    )
    .unwrap();
    let mut with = options();
    with.certificate_folders = vec![certs.path().to_owned()];
    let manifest = RegistryClient::new(with)
        .get_manifest(&reference)
        .await
        .unwrap();
    let plain: ImageReference = format!("{}/quay.io/ferry-demo/hello:1.0", world.registry().host())
        .parse()
        .unwrap();
    let mut insecure = options();
    insecure.tls_verify = false;
    let expected = RegistryClient::new(insecure)
        .get_manifest(&plain)
        .await
        .unwrap();
    assert_eq!(manifest.bytes, expected.bytes);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn basic_auth_uses_the_auth_file_and_a_wrong_password_fails() {
    use base64::Engine as _;
    let world = World::start().unwrap();
    let auth = world.start_registry(Flavour::BasicAuthTls).unwrap();
    let reference: ImageReference = format!("{}/quay.io/ferry-demo/hello:1.0", auth.host())
        .parse()
        .unwrap();
    let credentials = auth.credentials().unwrap().clone();
    let folder = tempfile::tempdir().unwrap();
    let certs = folder.path().join("certs.d");
    std::fs::create_dir_all(certs.join(auth.host())).unwrap();
    std::fs::copy(
        auth.ca_certificate().unwrap(),
        certs.join(auth.host()).join("ca.crt"),
    )
    .unwrap();
    let write_auth = |name: &str, password: &str| {
        let encoded = base64::engine::general_purpose::STANDARD
            .encode(format!("{}:{password}", credentials.user));
        let path = folder.path().join(name);
        std::fs::write(
            &path,
            format!(
                r#"{{"auths": {{"{}": {{"auth": "{encoded}"}}}}}}"#,
                auth.host()
            ),
        )
        .unwrap();
        path
    };
    let good = write_auth("good.json", &credentials.password);
    let bad = write_auth("bad.json", "not-the-password");
    let client_for = |file| {
        let mut client_options = options();
        client_options.credentials = CredentialStore::from_files(vec![file]);
        client_options.certificate_folders = vec![certs.clone()];
        RegistryClient::new(client_options)
    };
    let manifest = client_for(good).get_manifest(&reference).await.unwrap();
    assert!(!manifest.bytes.is_empty());
    let error = client_for(bad).get_manifest(&reference).await.unwrap_err();
    assert!(
        matches!(error.kind, ErrorKind::CredentialsRejected { .. }),
        "{error}"
    );
    assert!(error.to_string().contains("rejected"), "{error}");
    assert!(error.to_string().contains("bad.json"), "{error}");
    assert!(!error.to_string().contains("not-the-password"));
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn unknown_manifests_and_tampered_digests_are_named() {
    let world = World::start().unwrap();
    let mut client_options = options();
    client_options.tls_verify = false;
    let client = RegistryClient::new(client_options);
    let missing: ImageReference =
        format!("{}/quay.io/ferry-demo/hello:9.9", world.registry().host())
            .parse()
            .unwrap();
    let error = client.get_manifest(&missing).await.unwrap_err();
    assert!(matches!(error.kind, ErrorKind::NotFound), "{error}");
    assert!(
        error.to_string().contains("quay.io/ferry-demo/hello:9.9"),
        "{error}"
    );
    assert!(client.head_manifest(&missing).await.unwrap().is_none());

    // Every blob digest the store accepts is verified: a wrong claimed
    // digest is refused and nothing is stored.
    let cache = tempfile::tempdir().unwrap();
    let store = BlobStore::open(cache.path()).unwrap();
    let hello: ImageReference = format!("{}/quay.io/ferry-demo/hello:1.0", world.registry().host())
        .parse()
        .unwrap();
    let manifest = client.get_manifest(&hello).await.unwrap();
    let (_, blobs) = children(&manifest.bytes);
    let (digest, size) = blobs[0].clone();
    let error = client
        .fetch_blob(
            hello.registry(),
            hello.repository(),
            &digest,
            Some(size + 1),
            &store,
        )
        .await
        .unwrap_err();
    assert!(error.to_string().contains("wrong size"), "{error}");
    assert!(!store.contains(&digest));
    let digests: BTreeSet<_> = store.list().unwrap().into_iter().collect();
    assert!(digests.is_empty());
}

/// Captures everything the client logs at trace level.
#[derive(Clone, Default)]
struct Capture(std::sync::Arc<std::sync::Mutex<Vec<u8>>>);

impl std::io::Write for Capture {
    fn write(&mut self, bytes: &[u8]) -> std::io::Result<usize> {
        self.0.lock().unwrap().extend_from_slice(bytes);
        Ok(bytes.len())
    }
    fn flush(&mut self) -> std::io::Result<()> {
        Ok(())
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn passwords_appear_in_no_log_error_or_cache_file() {
    use base64::Engine as _;
    // A global subscriber: scoped ones miss events logged on the
    // runtime's worker threads.
    static CAPTURE: std::sync::OnceLock<Capture> = std::sync::OnceLock::new();
    let capture = CAPTURE
        .get_or_init(|| {
            let capture = Capture::default();
            let writer = capture.clone();
            let subscriber = tracing_subscriber::fmt()
                .with_max_level(tracing::Level::TRACE)
                .with_writer(move || writer.clone())
                .with_ansi(false)
                .finish();
            tracing::subscriber::set_global_default(subscriber).expect("the only subscriber");
            capture
        })
        .clone();

    let world = World::start().unwrap();
    let auth = world.start_registry(Flavour::BasicAuthTls).unwrap();
    let credentials = auth.credentials().unwrap().clone();
    let folder = tempfile::tempdir().unwrap();
    let certs = folder.path().join("certs.d");
    std::fs::create_dir_all(certs.join(auth.host())).unwrap();
    std::fs::copy(
        auth.ca_certificate().unwrap(),
        certs.join(auth.host()).join("ca.crt"),
    )
    .unwrap();
    let encoded = base64::engine::general_purpose::STANDARD.encode(credentials.joined());
    let auth_file = folder.path().join("auth.json");
    std::fs::write(
        &auth_file,
        format!(
            r#"{{"auths": {{"{}": {{"auth": "{encoded}"}}}}}}"#,
            auth.host()
        ),
    )
    .unwrap();
    let mut client_options = options();
    client_options.credentials = CredentialStore::from_files(vec![auth_file]);
    client_options.certificate_folders = vec![certs];
    let client = RegistryClient::new(client_options);
    let cache_folder = folder.path().join("cache");
    let store = BlobStore::open(&cache_folder).unwrap();
    let reference: ImageReference = format!("{}/quay.io/ferry-demo/hello:1.0", auth.host())
        .parse()
        .unwrap();
    let manifest = client.get_manifest(&reference).await.unwrap();
    let (_, blobs) = children(&manifest.bytes);
    for (digest, size) in &blobs {
        client
            .fetch_blob(
                reference.registry(),
                reference.repository(),
                digest,
                Some(*size),
                &store,
            )
            .await
            .unwrap();
    }
    let missing: ImageReference = format!("{}/quay.io/ferry-demo/absent:1", auth.host())
        .parse()
        .unwrap();
    let error = client.get_manifest(&missing).await.unwrap_err().to_string();

    let logged = String::from_utf8(capture.0.lock().unwrap().clone()).unwrap();
    assert!(
        logged.contains("registry request"),
        "trace logging is on: {logged}"
    );
    for secret in [credentials.password.as_str(), encoded.as_str()] {
        assert!(!logged.contains(secret), "the log holds a secret");
        assert!(!error.contains(secret), "an error holds a secret");
        for entry in walk(&cache_folder) {
            let bytes = std::fs::read(&entry).unwrap();
            assert!(
                !bytes
                    .windows(secret.len())
                    .any(|window| window == secret.as_bytes()),
                "{} holds a secret",
                entry.display()
            );
        }
    }
}

fn walk(folder: &std::path::Path) -> Vec<std::path::PathBuf> {
    let mut files = Vec::new();
    for entry in std::fs::read_dir(folder).unwrap().flatten() {
        let path = entry.path();
        if path.is_dir() {
            files.extend(walk(&path));
        } else {
            files.push(path);
        }
    }
    files
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn blobs_stream_from_registry_to_registry_without_a_cache() {
    let world = World::start().unwrap();
    let destination = Registry::start(Flavour::PlainHttp, Storage::Empty).unwrap();
    let mut client_options = options();
    client_options.insecure_hosts = vec![world.registry().host(), destination.host()];
    let client = RegistryClient::new(client_options);
    let source: ImageReference = format!(
        "{}/registry.redhat.io/ubi9/ubi-minimal:9.4",
        world.registry().host()
    )
    .parse()
    .unwrap();
    let index = client.get_manifest(&source).await.unwrap();
    let (children_digests, _) = children(&index.bytes);
    let child = client
        .get_manifest(&source.with_digest(children_digests[0].clone()))
        .await
        .unwrap();
    let (_, blobs) = children(&child.bytes);
    for (digest, size) in &blobs {
        let outcome = client
            .copy_blob(
                source.registry(),
                source.repository(),
                &destination.host(),
                "copy/one",
                digest,
                *size,
                None,
            )
            .await
            .unwrap();
        assert_eq!(outcome, PushOutcome::Uploaded);
        assert_eq!(
            client
                .blob_size(&destination.host(), "copy/one", digest)
                .await
                .unwrap(),
            Some(*size)
        );
    }
    let (digest, size) = &blobs[0];
    let mut asking_options = options();
    asking_options.insecure_hosts = vec![world.registry().host(), destination.host()];
    asking_options.ask_before_upload_from = 0;
    let asking = RegistryClient::new(asking_options);
    let again = asking
        .copy_blob(
            source.registry(),
            source.repository(),
            &destination.host(),
            "copy/one",
            digest,
            *size,
            None,
        )
        .await
        .unwrap();
    assert_eq!(again, PushOutcome::Present);
    let mounted = client
        .copy_blob(
            source.registry(),
            source.repository(),
            &destination.host(),
            "copy/two",
            digest,
            *size,
            Some("copy/one"),
        )
        .await
        .unwrap();
    assert_eq!(mounted, PushOutcome::Mounted);
    // A wrong size is caught and nothing lands.
    let (digest, size) = &blobs[1];
    let error = client
        .copy_blob(
            source.registry(),
            source.repository(),
            &destination.host(),
            "copy/three",
            digest,
            size - 1,
            None,
        )
        .await
        .unwrap_err();
    assert!(error.to_string().contains("does not match"), "{error}");
    assert_eq!(
        client
            .blob_size(&destination.host(), "copy/three", digest)
            .await
            .unwrap(),
        None
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn tags_are_listed_as_skopeo_lists_them() {
    let world = World::start().unwrap();
    let mut client_options = options();
    client_options.insecure_hosts = vec![world.registry().host()];
    let client = RegistryClient::new(client_options);
    let host = world.registry().host();
    let repository = "quay.io/ferry-demo/hello";
    let listed = skopeo(&[
        "list-tags",
        "--tls-verify=false",
        &format!("docker://{host}/{repository}"),
    ]);
    assert!(listed.status.success(), "{listed:?}");
    let listed: serde_json::Value = serde_json::from_slice(&listed.stdout).unwrap();
    let expected: BTreeSet<String> = listed["Tags"]
        .as_array()
        .unwrap()
        .iter()
        .map(|tag| tag.as_str().unwrap().to_owned())
        .collect();
    assert!(expected.contains("1.0"), "{expected:?}");
    let tags: BTreeSet<String> = client
        .list_tags(&host, repository)
        .await
        .unwrap()
        .unwrap()
        .into_iter()
        .collect();
    assert_eq!(tags, expected);
    assert_eq!(
        client
            .list_tags(&host, "quay.io/ferry-demo/no-such-repository")
            .await
            .unwrap(),
        None
    );
}

/// A blob named by a sha512 digest is hashed with sha512 wherever the
/// client checks content: uploaded from a file, streamed from registry to
/// registry, and refused (naming both digests) when a file does not hash
/// to its name. distribution accepts sha512 blob digests.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn sha512_blobs_are_checked_with_sha512() {
    use ferry_schemas::digest::DigestAlgorithm;
    let source = Registry::start(Flavour::PlainHttp, Storage::Empty).unwrap();
    let destination = Registry::start(Flavour::PlainHttp, Storage::Empty).unwrap();
    let mut client_options = options();
    client_options.insecure_hosts = vec![source.host(), destination.host()];
    let client = RegistryClient::new(client_options);
    let folder = tempfile::tempdir().unwrap();
    let file = folder.path().join("blob");
    let bytes = b"content named by its sha512 digest".repeat(1000);
    std::fs::write(&file, &bytes).unwrap();
    let digest = Digest::of(DigestAlgorithm::Sha512, &bytes);
    let size = bytes.len() as u64;

    let pushed = client
        .push_blob(&source.host(), "sha512/one", &digest, size, &file, None)
        .await
        .unwrap();
    assert_eq!(pushed, PushOutcome::Uploaded);
    let copied = client
        .copy_blob(
            &source.host(),
            "sha512/one",
            &destination.host(),
            "sha512/two",
            &digest,
            size,
            None,
        )
        .await
        .unwrap();
    assert_eq!(copied, PushOutcome::Uploaded);
    assert_eq!(
        client
            .blob_size(&destination.host(), "sha512/two", &digest)
            .await
            .unwrap(),
        Some(size)
    );
    let cache = tempfile::tempdir().unwrap();
    let store = BlobStore::open(cache.path()).unwrap();
    client
        .fetch_blob(&source.host(), "sha512/one", &digest, Some(size), &store)
        .await
        .unwrap();
    assert!(store.contains(&digest));

    // The same length of other bytes under that name: refused before the
    // upload completes, and nothing lands.
    let mut other = bytes.clone();
    other[0] ^= 1;
    std::fs::write(&file, &other).unwrap();
    let error = client
        .push_blob(
            &destination.host(),
            "sha512/three",
            &digest,
            size,
            &file,
            None,
        )
        .await
        .unwrap_err();
    let actual = Digest::of(DigestAlgorithm::Sha512, &other);
    assert!(
        error
            .to_string()
            .contains(&format!("hashes to {actual}, not {digest}")),
        "{error}"
    );
    assert_eq!(
        client
            .blob_size(&destination.host(), "sha512/three", &digest)
            .await
            .unwrap(),
        None
    );
}
