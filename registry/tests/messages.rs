//! What the client's errors say: which registry failed, plain HTTP met
//! with HTTPS, missing or rejected credentials, an unreachable proxy, and a
//! corrupt file to upload. Against real `docker-registry` processes.

use base64::Engine as _;
use ferry_registry::client::ErrorKind;
use ferry_registry::{ClientOptions, CredentialStore, RegistryClient};
use ferry_schemas::{Digest, ImageReference};
use ferry_testworld::registry::{Flavour, Registry, Storage};
use ferry_testworld::world::World;

fn options() -> ClientOptions {
    ClientOptions {
        credentials: CredentialStore::from_files(Vec::new()),
        certificate_folders: Vec::new(),
        retry_times: 1,
        retry_delay: Some(std::time::Duration::from_millis(10)),
        ..ClientOptions::default()
    }
}

/// The first layer of the world's hello image: (digest, size).
async fn hello_layer(client: &RegistryClient, host: &str) -> (ImageReference, Digest, u64) {
    let reference: ImageReference = format!("{host}/quay.io/ferry-demo/hello:1.0")
        .parse()
        .unwrap();
    let manifest = client.get_manifest(&reference).await.unwrap();
    let value: serde_json::Value = serde_json::from_slice(&manifest.bytes).unwrap();
    let layer = &value["layers"][0];
    (
        reference,
        layer["digest"].as_str().unwrap().parse().unwrap(),
        layer["size"].as_u64().unwrap(),
    )
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_blob_missing_at_the_source_is_reported_against_the_source() {
    let world = World::start().unwrap();
    let destination = Registry::start(Flavour::PlainHttp, Storage::Empty).unwrap();
    let mut client_options = options();
    client_options.insecure_hosts = vec![world.registry().host(), destination.host()];
    let client = RegistryClient::new(client_options);
    let missing = Digest::new(ferry_schemas::DigestAlgorithm::Sha256, &"ab".repeat(32)).unwrap();
    let error = client
        .copy_blob(
            &world.registry().host(),
            "quay.io/ferry-demo/hello",
            &destination.host(),
            "mirror/hello",
            &missing,
            2,
            None,
        )
        .await
        .unwrap_err();
    assert!(matches!(error.kind, ErrorKind::NotFound), "{error}");
    assert_eq!(error.registry, world.registry().host(), "{error}");
    assert_eq!(error.repository, "quay.io/ferry-demo/hello", "{error}");
    assert!(
        error.to_string().starts_with(&format!(
            "{}/quay.io/ferry-demo/hello@{missing}",
            world.registry().host()
        )),
        "{error}"
    );

    // A destination that refuses is still named as the destination.
    let (_, digest, size) = hello_layer(&client, &world.registry().host()).await;
    let unreachable = "127.0.0.1:9";
    let error = client
        .copy_blob(
            &world.registry().host(),
            "quay.io/ferry-demo/hello",
            unreachable,
            "mirror/hello",
            &digest,
            size,
            None,
        )
        .await
        .unwrap_err();
    assert_eq!(error.registry, unreachable, "{error}");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn plain_http_met_with_https_says_so_and_names_the_flags() {
    let plain = Registry::start(Flavour::PlainHttp, Storage::Empty).unwrap();
    let client = RegistryClient::new(options());
    let reference: ImageReference = format!("{}/some/image:1", plain.host()).parse().unwrap();
    let error = client.get_manifest(&reference).await.unwrap_err();
    assert!(matches!(error.kind, ErrorKind::PlainHttp { .. }), "{error}");
    let message = error.to_string();
    assert!(
        message.contains("the registry answered plain HTTP to an HTTPS request"),
        "{message}"
    );
    assert!(message.contains("--src-tls-verify=false"), "{message}");
    assert!(message.contains("--dest-tls-verify=false"), "{message}");
    assert!(message.contains(&plain.host()), "{message}");

    // Where the client knows the side, it names that side's flag only:
    // a source of a copy, the destination of a push or a reachability
    // check.
    let digest = Digest::new(ferry_schemas::DigestAlgorithm::Sha256, &"cd".repeat(32)).unwrap();
    let error = client
        .copy_blob(
            &plain.host(),
            "some/image",
            "127.0.0.1:9",
            "mirror/image",
            &digest,
            2,
            None,
        )
        .await
        .unwrap_err();
    let message = error.to_string();
    assert_eq!(error.registry, plain.host(), "{message}");
    assert!(message.contains("use --src-tls-verify=false,"), "{message}");
    assert!(!message.contains("--dest-tls-verify"), "{message}");
    let file = tempfile::NamedTempFile::new().unwrap();
    std::fs::write(file.path(), b"{}").unwrap();
    let error = client
        .push_blob(&plain.host(), "mirror/image", &digest, 2, file.path(), None)
        .await
        .unwrap_err();
    let message = error.to_string();
    assert!(
        message.contains("use --dest-tls-verify=false,"),
        "{message}"
    );
    assert!(!message.contains("--src-tls-verify"), "{message}");
    let error = client.check_reachable(&plain.host()).await.unwrap_err();
    let message = error.to_string();
    assert!(
        message.contains("use --dest-tls-verify=false,"),
        "{message}"
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn missing_and_rejected_credentials_are_different_messages_naming_the_file() {
    let world = World::start().unwrap();
    let auth = world.start_registry(Flavour::BasicAuthTls).unwrap();
    let reference: ImageReference = format!("{}/quay.io/ferry-demo/hello:1.0", auth.host())
        .parse()
        .unwrap();
    let user = auth.credentials().unwrap().user.clone();
    let folder = tempfile::tempdir().unwrap();
    let client_for = |files: Vec<std::path::PathBuf>| {
        let mut client_options = options();
        client_options.credentials = CredentialStore::from_files(files);
        client_options.insecure_hosts = vec![auth.host()];
        RegistryClient::new(client_options)
    };

    // No credentials for the host: the files read are named.
    let absent = folder.path().join("absent.json");
    let other_host = folder.path().join("other-host.json");
    std::fs::write(
        &other_host,
        r#"{"auths": {"elsewhere.example": {"auth": "dTpw"}}}"#,
    )
    .unwrap();
    let error = client_for(vec![absent.clone(), other_host.clone()])
        .get_manifest(&reference)
        .await
        .unwrap_err();
    assert!(
        matches!(error.kind, ErrorKind::NoCredentials { .. }),
        "{error}"
    );
    let message = error.to_string();
    assert!(
        message.contains(&format!(
            "no credentials for {} in {} (missing), {}",
            auth.host(),
            absent.display(),
            other_host.display()
        )),
        "{message}"
    );

    // Credentials that the registry refuses: the file they came from.
    let secret = "not-the-password-7731";
    let wrong = folder.path().join("wrong.json");
    let encoded = base64::engine::general_purpose::STANDARD.encode(format!("{user}:{secret}"));
    std::fs::write(
        &wrong,
        format!(
            r#"{{"auths": {{"{}": {{"auth": "{encoded}"}}}}}}"#,
            auth.host()
        ),
    )
    .unwrap();
    let error = client_for(vec![absent, wrong.clone()])
        .get_manifest(&reference)
        .await
        .unwrap_err();
    assert!(
        matches!(error.kind, ErrorKind::CredentialsRejected { .. }),
        "{error}"
    );
    let message = error.to_string();
    assert!(
        message.contains(&format!("credentials for {} rejected", auth.host())),
        "{message}"
    );
    assert!(message.contains(&wrong.display().to_string()), "{message}");
    assert!(!message.contains(secret), "{message}");
    assert!(!message.contains(&encoded), "{message}");
}

#[test]
fn an_authfile_that_does_not_exist_is_refused_by_name() {
    let folder = tempfile::tempdir().unwrap();
    let missing = folder.path().join("typo.json");
    let error = CredentialStore::discover_checked(Some(&missing)).unwrap_err();
    assert!(
        error.to_string().contains(&format!(
            "{} named by --authfile does not exist",
            missing.display()
        )),
        "{error}"
    );
    std::fs::write(&missing, "{}").unwrap();
    let store = CredentialStore::discover_checked(Some(&missing)).unwrap();
    assert_eq!(store.files()[0], missing);
}

/// Set in the environment of the child process the proxy test starts.
const PROXY_CHILD: &str = "FERRY_PROXY_MESSAGE_CHILD";

/// Runs [`proxy_child`] with `HTTPS_PROXY` (and, with `plain_too`,
/// `HTTP_PROXY`) naming a closed port behind credentials: the error the
/// child printed, and the proxy's address.
fn proxy_child_error(mode: &str, plain_too: bool) -> (String, String) {
    let closed = std::net::TcpListener::bind("127.0.0.1:0").unwrap();
    let port = closed.local_addr().unwrap().port();
    drop(closed);
    let proxy = format!("http://proxyuser:proxy-secret-5521@127.0.0.1:{port}");
    let mut command = std::process::Command::new(std::env::current_exe().unwrap());
    command
        .args(["--exact", "proxy_child", "--nocapture", "--include-ignored"])
        .env(PROXY_CHILD, mode)
        .env("HTTPS_PROXY", &proxy)
        .env_remove("HTTP_PROXY")
        .env_remove("http_proxy")
        .env_remove("ALL_PROXY")
        .env_remove("all_proxy")
        .env_remove("NO_PROXY")
        .env_remove("no_proxy");
    if plain_too {
        command.env("HTTP_PROXY", &proxy);
    }
    let output = command.output().unwrap();
    let stdout = String::from_utf8_lossy(&output.stdout);
    assert!(
        output.status.success(),
        "{stdout}\n{}",
        String::from_utf8_lossy(&output.stderr)
    );
    let line = stdout
        .lines()
        .find_map(|line| line.strip_prefix("proxy error: "))
        .unwrap_or_else(|| panic!("no error printed: {stdout}"))
        .to_owned();
    assert!(!line.contains("proxy-secret-5521"), "{line}");
    (line, format!("http://127.0.0.1:{port}/"))
}

/// The proxy comes from the environment, which a test cannot change in its
/// own process: it runs itself again with the proxy variables set.
#[test]
fn an_unreachable_proxy_is_named_without_its_password() {
    if std::env::var_os(PROXY_CHILD).is_some() {
        return;
    }
    let (line, proxy) = proxy_child_error("remote", true);
    assert!(
        line.contains(&format!("through the proxy {proxy}")),
        "{line}"
    );
    assert!(line.contains("$HTTP"), "{line}");

    // HTTPS through a dead proxy to a registry that also answers plain
    // HTTP directly: the proxy is the failure, not plain HTTP.
    let (line, proxy) = proxy_child_error("plain", false);
    assert!(
        line.contains(&format!("through the proxy {proxy} (from $HTTPS_PROXY")),
        "{line}"
    );
    assert!(!line.contains("plain HTTP"), "{line}");
}

/// The child of [`an_unreachable_proxy_is_named_without_its_password`].
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
#[ignore = "run by an_unreachable_proxy_is_named_without_its_password"]
async fn proxy_child() {
    let mode = std::env::var(PROXY_CHILD).expect("run by the proxy test");
    let mut client_options = options();
    client_options.retry_times = 0;
    let client = RegistryClient::new(client_options);
    let plain =
        (mode == "plain").then(|| Registry::start(Flavour::PlainHttp, Storage::Empty).unwrap());
    let host = match &plain {
        Some(registry) => registry.host(),
        None => "registry.example.com:5000".to_owned(),
    };
    let reference: ImageReference = format!("{host}/some/image:1").parse().unwrap();
    let error = client.get_manifest(&reference).await.unwrap_err();
    assert!(matches!(error.kind, ErrorKind::Connection(_)), "{error}");
    println!("proxy error: {error}");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_corrupt_file_is_caught_while_it_streams_and_named() {
    let world = World::start().unwrap();
    let destination = Registry::start(Flavour::PlainHttp, Storage::Empty).unwrap();
    let mut client_options = options();
    client_options.insecure_hosts = vec![world.registry().host(), destination.host()];
    let client = RegistryClient::new(client_options);
    let (reference, digest, size) = hello_layer(&client, &world.registry().host()).await;
    let cache = tempfile::tempdir().unwrap();
    let store = ferry_store::BlobStore::open(cache.path()).unwrap();
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
    let corrupt = cache.path().join("corrupt-copy");
    let mut bytes = std::fs::read(store.path(&digest)).unwrap();
    let middle = bytes.len() / 2;
    bytes[middle] ^= 0x40;
    std::fs::write(&corrupt, &bytes).unwrap();

    let error = client
        .push_blob(
            &destination.host(),
            "mirror/hello",
            &digest,
            size,
            &corrupt,
            None,
        )
        .await
        .unwrap_err();
    assert!(matches!(error.kind, ErrorKind::Source(_)), "{error}");
    let message = error.to_string();
    assert!(
        message.contains(&format!(
            "the cached blob {} hashes to sha256:",
            corrupt.display()
        )),
        "{message}"
    );
    assert!(message.contains("the cached copy is corrupt"), "{message}");
    assert!(!message.contains("DIGEST_INVALID"), "{message}");
    assert_eq!(
        client
            .blob_size(&destination.host(), "mirror/hello", &digest)
            .await
            .unwrap(),
        None
    );

    // A short file too; the good copy goes through.
    std::fs::write(&corrupt, &bytes[..middle]).unwrap();
    let error = client
        .push_blob(
            &destination.host(),
            "mirror/hello",
            &digest,
            size,
            &corrupt,
            None,
        )
        .await
        .unwrap_err();
    assert!(error.to_string().contains("holds"), "{error}");
    client
        .push_blob(
            &destination.host(),
            "mirror/hello",
            &digest,
            size,
            &store.path(&digest),
            None,
        )
        .await
        .unwrap();
}
