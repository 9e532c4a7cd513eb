//! A release payload's signature fetched over HTTP from the test world's
//! signature server (the `OCP_SIGNATURE_URL` layout) and verified with the
//! test world's key; a missing one and one signed by another key are refused.

use std::collections::BTreeMap;

use ferry_content::release::signature::Keyring;
use ferry_executor::release_signature::{ReleaseSignatureError, SignatureSource};
use ferry_testworld::release_signatures::{ReleaseSigner, SignatureServer};

const SIGNED: &str = "sha256:2222222222222222222222222222222222222222222222222222222222222222";
const UNSIGNED: &str = "sha256:3333333333333333333333333333333333333333333333333333333333333333";

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_served_signature_is_fetched_verified_and_kept_byte_for_byte() {
    let signer = ReleaseSigner::generate();
    let file = signer.sign_payload(SIGNED, "127.0.0.1:5000/ocp/release:4.18.1-x86_64");
    let server = SignatureServer::start(BTreeMap::from([(SIGNED.to_owned(), file.clone())]))
        .expect("starting the signature server");
    let source = SignatureSource::new(Some(server.base_url())).expect("a client");
    let keyring = Keyring::from_armored(&signer.public_keyring_armored()).expect("a keyring");

    let fetched = source
        .fetch_verified(&SIGNED.parse().unwrap(), &keyring)
        .await
        .expect("fetched and verified");
    assert_eq!(fetched.bytes, file);
    assert_eq!(fetched.verified.release_tag(), Some("4.18.1-x86_64"));
    assert_eq!(
        fetched.url,
        format!("{}sha256={}/signature-1", server.base_url(), &SIGNED[7..])
    );

    let error = source
        .fetch_verified(&UNSIGNED.parse().unwrap(), &keyring)
        .await
        .expect_err("nothing is served for this digest");
    assert!(
        matches!(error, ReleaseSignatureError::NotFound { status: 404, .. }),
        "{error}"
    );

    let error = source
        .fetch_verified(&SIGNED.parse().unwrap(), &Keyring::red_hat_release())
        .await
        .expect_err("the test world's key is not Red Hat's");
    assert!(
        matches!(error, ReleaseSignatureError::Invalid { .. }),
        "{error}"
    );
}
