//! A release payload's signature as the release collector gets it
//! (`ReleaseSignatures::verified`): fetched over HTTP from the test world's
//! signature server (the `OCP_SIGNATURE_URL` layout), verified with the key
//! `OCP_SIGNATURE_VERIFICATION_PK` names, kept in `working-dir/signatures/`
//! and found there offline; a tampered one, one for another payload, a
//! missing one, a changed kept file and a bad key file each refused with
//! their typed error; and the signature ConfigMap written and removed.

use std::collections::BTreeMap;
use std::path::PathBuf;

use ferry_content::release::signature::SignatureError;
use ferry_executor::release_signature::{
    ReleaseSignatureError, ReleaseSignatures, SignatureOrigin, SignatureSettings,
};
use ferry_executor::workflow::publish::signature_config_map_files;
use ferry_executor::workflow::workspace::Workspace;
use ferry_schemas::ImageReference;
use ferry_testworld::release_signatures::{ReleaseSigner, SignatureServer};

const SIGNED: &str = "sha256:2222222222222222222222222222222222222222222222222222222222222222";
const UNSIGNED: &str = "sha256:3333333333333333333333333333333333333333333333333333333333333333";
const TAMPERED: &str = "sha256:4444444444444444444444444444444444444444444444444444444444444444";
const MISLABELLED: &str = "sha256:5555555555555555555555555555555555555555555555555555555555555555";
const IDENTITY: &str = "127.0.0.1:5000/ocp/release:4.18.1-x86_64";

struct Setup {
    _server: SignatureServer,
    settings: SignatureSettings,
    workspace: Workspace,
    _folder: tempfile::TempDir,
}

fn setup() -> Setup {
    let signer = ReleaseSigner::generate();
    let served = BTreeMap::from([
        (SIGNED.to_owned(), signer.sign_payload(SIGNED, IDENTITY)),
        (
            TAMPERED.to_owned(),
            signer.tampered_payload_signature(TAMPERED, IDENTITY),
        ),
        // A valid signature, but of the payload SIGNED, served for MISLABELLED.
        (
            MISLABELLED.to_owned(),
            signer.sign_payload(SIGNED, IDENTITY),
        ),
    ]);
    let server = SignatureServer::start(served).expect("starting the signature server");
    let folder = tempfile::tempdir().unwrap();
    let key_file = folder.path().join("release-key.asc");
    std::fs::write(&key_file, signer.public_keyring_armored()).unwrap();
    Setup {
        settings: SignatureSettings {
            url_override: Some(server.base_url()),
            key_file: Some(key_file),
        },
        workspace: Workspace::in_folder(folder.path()),
        _server: server,
        _folder: folder,
    }
}

fn source(digest: &str) -> ImageReference {
    format!("127.0.0.1:5000/ocp/release@{digest}")
        .parse()
        .unwrap()
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_served_signature_is_verified_kept_and_found_again_offline() {
    let setup = setup();
    let signatures =
        ReleaseSignatures::new(&setup.settings, setup.workspace.signatures(), false).unwrap();
    let signature = signatures
        .verified(&SIGNED.parse().unwrap(), &source(SIGNED))
        .await
        .expect("fetched and verified");
    assert_eq!(signature.release_tag.as_deref(), Some("4.18.1-x86_64"));
    assert_eq!(signature.identity.to_string(), IDENTITY);
    assert_eq!(signature.digest.to_string(), SIGNED);
    assert_eq!(
        signature.origin,
        SignatureOrigin::Fetched {
            url: format!(
                "{}sha256={}/signature-1",
                setup.settings.url_override.as_deref().unwrap(),
                &SIGNED[7..]
            )
        }
    );
    let kept = setup
        .workspace
        .signatures()
        .join(format!("4.18.1-x86_64-sha256-{}", &SIGNED[7..]));
    assert_eq!(signature.kept_at, kept);
    assert_eq!(std::fs::read(&kept).unwrap(), signature.bytes);

    // Offline, with the store stopped: the kept file is used, verified again.
    drop(setup._server);
    let offline =
        ReleaseSignatures::new(&setup.settings, setup.workspace.signatures(), true).unwrap();
    let again = offline
        .verified(&SIGNED.parse().unwrap(), &source(SIGNED))
        .await
        .expect("found in the workspace");
    assert_eq!(again.origin, SignatureOrigin::Kept);
    assert_eq!(again.bytes, signature.bytes);
    let error = offline
        .verified(&UNSIGNED.parse().unwrap(), &source(UNSIGNED))
        .await
        .expect_err("nothing kept for this payload, and offline");
    assert!(
        matches!(error, ReleaseSignatureError::NotKept { .. }),
        "{error}"
    );

    // A kept file changed since is refused, not replaced.
    let mut changed = signature.bytes.clone();
    let last = changed.len() - 1;
    changed[last] ^= 0x01;
    std::fs::write(&kept, &changed).unwrap();
    let error = offline
        .verified(&SIGNED.parse().unwrap(), &source(SIGNED))
        .await
        .expect_err("the kept file was changed");
    assert!(
        matches!(&error, ReleaseSignatureError::InvalidKept { path, .. } if *path == kept),
        "{error}"
    );
    assert!(error.to_string().contains("remove the file"), "{error}");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn tampered_mislabelled_and_missing_signatures_are_refused_and_nothing_is_kept() {
    let setup = setup();
    let signatures =
        ReleaseSignatures::new(&setup.settings, setup.workspace.signatures(), false).unwrap();

    let error = signatures
        .verified(&TAMPERED.parse().unwrap(), &source(TAMPERED))
        .await
        .expect_err("the signed content was changed");
    assert!(
        matches!(&error, ReleaseSignatureError::Invalid { .. })
            && matches!(
                error.signature_error(),
                Some(SignatureError::NoValidSignature { .. })
            ),
        "{error}"
    );

    let error = signatures
        .verified(&MISLABELLED.parse().unwrap(), &source(MISLABELLED))
        .await
        .expect_err("the signature is for another payload");
    assert!(
        matches!(&error, ReleaseSignatureError::Invalid { .. }),
        "{error}"
    );
    match error.signature_error() {
        Some(SignatureError::OtherDigest { claimed, expected }) => {
            assert_eq!(claimed.to_string(), SIGNED);
            assert_eq!(expected.to_string(), MISLABELLED);
        }
        _ => panic!("expected OtherDigest, got {error}"),
    }

    let error = signatures
        .verified(&UNSIGNED.parse().unwrap(), &source(UNSIGNED))
        .await
        .expect_err("nothing is served for this payload");
    assert!(
        matches!(error, ReleaseSignatureError::NotFound { status: 404, .. }),
        "{error}"
    );
    let message = error.to_string();
    assert!(
        message.contains(UNSIGNED) && message.contains(&source(UNSIGNED).to_string()),
        "{message}"
    );

    assert!(
        !setup.workspace.signatures().exists()
            || std::fs::read_dir(setup.workspace.signatures())
                .unwrap()
                .next()
                .is_none(),
        "a refused signature is not kept"
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn red_hat_s_keys_refuse_the_test_world_s_signature() {
    let setup = setup();
    let settings = SignatureSettings {
        key_file: None,
        ..setup.settings.clone()
    };
    let signatures =
        ReleaseSignatures::new(&settings, setup.workspace.signatures(), false).unwrap();
    assert_eq!(
        signatures.keyring().key_ids(),
        ["199E2F91FD431D51", "938A80CAF21541EB"]
    );
    let error = signatures
        .verified(&SIGNED.parse().unwrap(), &source(SIGNED))
        .await
        .expect_err("the test world's key is not Red Hat's");
    assert!(
        matches!(&error, ReleaseSignatureError::Invalid { .. })
            && matches!(
                error.signature_error(),
                Some(SignatureError::NoValidSignature { .. })
            ),
        "{error}"
    );
}

#[test]
fn a_missing_or_invalid_key_file_is_an_error_naming_the_variable() {
    let folder = tempfile::tempdir().unwrap();
    let missing = folder.path().join("no-such-key.asc");
    let settings = SignatureSettings {
        url_override: None,
        key_file: Some(missing.clone()),
    };
    let error =
        ReleaseSignatures::new(&settings, PathBuf::from("unused"), false).expect_err("no key file");
    assert!(
        matches!(&error, ReleaseSignatureError::KeyFile { path, .. } if *path == missing),
        "{error}"
    );
    assert!(
        error
            .to_string()
            .starts_with("OCP_SIGNATURE_VERIFICATION_PK="),
        "{error}"
    );

    let invalid = folder.path().join("not-a-key.asc");
    std::fs::write(&invalid, "not a key").unwrap();
    let settings = SignatureSettings {
        url_override: None,
        key_file: Some(invalid),
    };
    let error = ReleaseSignatures::new(&settings, PathBuf::from("unused"), false)
        .expect_err("not a keyring");
    assert!(
        matches!(error, ReleaseSignatureError::Keyring { .. }),
        "{error}"
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_signature_config_map_is_written_in_both_forms_and_removed_with_the_releases() {
    let setup = setup();
    let signatures =
        ReleaseSignatures::new(&setup.settings, setup.workspace.signatures(), false).unwrap();
    let signature = signatures
        .verified(&SIGNED.parse().unwrap(), &source(SIGNED))
        .await
        .unwrap();
    // The same payload twice is one entry.
    let published =
        signature_config_map_files(&setup.workspace, &[signature.clone(), signature.clone()], 0)
            .unwrap();
    let folder = setup.workspace.cluster_resources();
    let json_path = folder.join("signature-configmap.json");
    let yaml_path = folder.join("signature-configmap.yaml");
    assert_eq!(published.written, [json_path.clone(), yaml_path.clone()]);
    let json: serde_json::Value =
        serde_json::from_str(&std::fs::read_to_string(&json_path).unwrap()).unwrap();
    let yaml: serde_json::Value =
        serde_yaml::from_str(&std::fs::read_to_string(&yaml_path).unwrap()).unwrap();
    assert_eq!(json, yaml);
    assert_eq!(json["metadata"]["name"], "mirrored-release-signatures");
    assert_eq!(
        json["metadata"]["annotations"]["createdAt"],
        "1970-01-01T00:00:00Z"
    );
    let binary_data = json["binaryData"].as_object().unwrap();
    assert_eq!(binary_data.len(), 1);
    use base64::Engine as _;
    let bytes = base64::engine::general_purpose::STANDARD
        .decode(
            binary_data[&format!("sha256-{}-1", &SIGNED[7..])]
                .as_str()
                .unwrap(),
        )
        .unwrap();
    assert_eq!(bytes, std::fs::read(&signature.kept_at).unwrap());

    // A user's file beside them is never touched; ours go when no release is left.
    std::fs::write(folder.join("my-notes.yaml"), "kind: ConfigMap\n").unwrap();
    let published = signature_config_map_files(&setup.workspace, &[], 0).unwrap();
    assert_eq!(published.removed, [json_path.clone(), yaml_path.clone()]);
    assert!(!json_path.exists() && !yaml_path.exists());
    assert!(folder.join("my-notes.yaml").exists());
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_signature_shared_through_the_cache_serves_another_workspace_offline() {
    let setup = setup();
    let shared = setup._folder.path().join("cache/signatures");
    let first = ReleaseSignatures::new(&setup.settings, setup.workspace.signatures(), false)
        .unwrap()
        .sharing(Some(shared.clone()));
    let fetched = first
        .verified(&SIGNED.parse().unwrap(), &source(SIGNED))
        .await
        .expect("fetched and verified");
    let name = format!("4.18.1-x86_64-sha256-{}", &SIGNED[7..]);
    assert_eq!(std::fs::read(shared.join(&name)).unwrap(), fetched.bytes);

    // Another workspace, offline, with the store stopped: found in the
    // shared folder, verified, and kept in its own folder too.
    drop(setup._server);
    let other = Workspace::in_folder(setup._folder.path().join("enclave"));
    let second = ReleaseSignatures::new(&setup.settings, other.signatures(), true)
        .unwrap()
        .sharing(Some(shared.clone()));
    let found = second
        .verified(&SIGNED.parse().unwrap(), &source(SIGNED))
        .await
        .expect("found through the cache");
    assert_eq!(found.origin, SignatureOrigin::Kept);
    assert_eq!(found.kept_at, other.signatures().join(&name));
    assert_eq!(std::fs::read(&found.kept_at).unwrap(), fetched.bytes);

    // A shared file that does not verify is passed over, not trusted: the
    // offline workspace then has nothing kept.
    let third_workspace = Workspace::in_folder(setup._folder.path().join("third"));
    let mut changed = fetched.bytes.clone();
    let last = changed.len() - 1;
    changed[last] ^= 0x01;
    std::fs::write(shared.join(&name), &changed).unwrap();
    let third = ReleaseSignatures::new(&setup.settings, third_workspace.signatures(), true)
        .unwrap()
        .sharing(Some(shared));
    let error = third
        .verified(&SIGNED.parse().unwrap(), &source(SIGNED))
        .await
        .expect_err("the shared file was changed");
    assert!(
        matches!(error, ReleaseSignatureError::NotKept { .. }),
        "{error}"
    );
}
