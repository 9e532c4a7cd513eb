//! Bearer-token authentication for real: a `docker-registry` with
//! `auth: token:` trusting the test world's token service.

use std::process::Command;

use base64::Engine as _;
use ferry_registry::client::ErrorKind;
use ferry_registry::{ClientOptions, CredentialStore, PushOutcome, RegistryClient};
use ferry_schemas::ImageReference;
use ferry_store::BlobStore;
use ferry_testworld::registry::{Registry, Storage};
use ferry_testworld::tokens::TokenService;
use ferry_testworld::world::World;

const USER: &str = "token-user";
const PASSWORD: &str = "token-password-never-logged";

fn client(host: &str, folder: &std::path::Path, password: &str) -> RegistryClient {
    let auth = folder.join(format!("auth-{}.json", password.len()));
    let encoded = base64::engine::general_purpose::STANDARD.encode(format!("{USER}:{password}"));
    std::fs::write(
        &auth,
        format!(r#"{{"auths": {{"{host}": {{"auth": "{encoded}"}}}}}}"#),
    )
    .unwrap();
    RegistryClient::new(ClientOptions {
        credentials: CredentialStore::from_files(vec![auth]),
        certificate_folders: Vec::new(),
        insecure_hosts: vec![host.to_owned()],
        retry_times: 1,
        ..ClientOptions::default()
    })
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn bearer_tokens_are_fetched_cached_and_refused_on_bad_credentials() {
    let world = World::start().unwrap();
    let tokens = TokenService::start(Some((USER, PASSWORD))).unwrap();
    let source = Registry::start_with_token_auth(
        Storage::Shared(world.storage().root.clone()),
        tokens.registry_settings(),
    )
    .unwrap();
    let destination =
        Registry::start_with_token_auth(Storage::Empty, tokens.registry_settings()).unwrap();
    let folder = tempfile::tempdir().unwrap();

    // Pull a manifest and a blob through tokens.
    let reader = client(&source.host(), folder.path(), PASSWORD);
    let reference: ImageReference = format!("{}/quay.io/ferry-demo/hello:1.0", source.host())
        .parse()
        .unwrap();
    let manifest = reader.get_manifest(&reference).await.unwrap();
    let value: serde_json::Value = serde_json::from_slice(&manifest.bytes).unwrap();
    let layer = &value["layers"][0];
    let digest = layer["digest"].as_str().unwrap().parse().unwrap();
    let size = layer["size"].as_u64().unwrap();
    let store = BlobStore::open(folder.path().join("cache")).unwrap();
    reader
        .fetch_blob(
            reference.registry(),
            reference.repository(),
            &digest,
            Some(size),
            &store,
        )
        .await
        .unwrap();
    reader.get_manifest(&reference).await.unwrap();
    let pull_scope = "repository:quay.io/ferry-demo/hello:pull";
    assert_eq!(
        tokens.issued().get(pull_scope),
        Some(&1),
        "one token per scope: {:?}",
        tokens.issued()
    );

    // Push, then mount into a second repository (a token with two scopes).
    let writer = client(&destination.host(), folder.path(), PASSWORD);
    let pushed = writer
        .push_blob(
            &destination.host(),
            "team/one",
            &digest,
            size,
            &store.path(&digest),
            None,
        )
        .await
        .unwrap();
    assert_eq!(pushed, PushOutcome::Uploaded);
    let mounted = writer
        .push_blob(
            &destination.host(),
            "team/two",
            &digest,
            size,
            &store.path(&digest),
            Some("team/one"),
        )
        .await
        .unwrap();
    assert_eq!(mounted, PushOutcome::Mounted);
    assert!(
        tokens
            .issued()
            .keys()
            .any(|scope| scope.contains("team/two:pull,push") && scope.contains("team/one:pull")),
        "{:?}",
        tokens.issued()
    );

    // Wrong credentials: the token service refuses, the error says so and
    // does not carry the password.
    let wrong = client(&source.host(), folder.path(), "not-the-password");
    let error = wrong.get_manifest(&reference).await.unwrap_err();
    assert!(
        matches!(error.kind, ErrorKind::CredentialsRejected { .. }),
        "{error}"
    );
    assert!(
        error
            .to_string()
            .contains(&format!("credentials for {} rejected", source.host())),
        "{error}"
    );
    assert!(!error.to_string().contains("not-the-password"));

    // A standard client works with the same registry.
    let skopeo = Command::new("skopeo")
        .args([
            "inspect",
            "--raw",
            "--tls-verify=false",
            "--creds",
            &format!("{USER}:{PASSWORD}"),
        ])
        .arg(format!("docker://{reference}"))
        .output()
        .unwrap();
    assert!(
        skopeo.status.success(),
        "{}",
        String::from_utf8_lossy(&skopeo.stderr)
    );
    assert_eq!(skopeo.stdout, manifest.bytes.as_ref());
}
