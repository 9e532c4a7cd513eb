//! Release signature verification against oc-mirror's real signature files:
//! Red Hat's V3 packets (the noo-bundle test data), a Red Hat V4 packet (the
//! 4.15.0 release) and V4 packets made with oc-mirror's test key.

use std::path::PathBuf;

use ferry_content::release::signature::{Keyring, SignatureError, verify};
use ferry_schemas::Digest;

fn fixture(path: &str) -> Vec<u8> {
    let full = PathBuf::from(env!("CARGO_MANIFEST_DIR"))
        .join("../../shared/fixtures/openshift+oc-mirror")
        .join(path);
    std::fs::read(&full).unwrap_or_else(|error| panic!("reading {}: {error}", full.display()))
}

fn digest(text: &str) -> Digest {
    text.parse().expect("a valid digest")
}

fn test_keyring() -> Keyring {
    let text = String::from_utf8(fixture("tests/integration/keys/release-pk.asc")).expect("UTF-8");
    Keyring::from_armored(&text).expect("oc-mirror's test key is a valid keyring")
}

const BUNDLE_DIGEST: &str =
    "sha256:50b9402635dd4b312a86bed05dcdbda8c00120d3789ec2e9b527045100b3bdb4";
const RELEASE_4_15_DIGEST: &str =
    "sha256:0da6316466d60a3a4535d5fed3589feb0391989982fba59d47d4c729912d6363";
const TEST_RELEASE_DIGEST: &str =
    "sha256:f81792339c8b5934191d18a53b18bc1d584e01a9f37d59c0aa6905b00200aa1b";

#[test]
fn the_embedded_keyring_holds_red_hat_release_and_beta_key_2() {
    assert_eq!(
        Keyring::red_hat_release().key_ids(),
        ["199E2F91FD431D51", "938A80CAF21541EB"]
    );
}

#[test]
fn a_version_3_signature_from_red_hat_verifies() {
    for (file, tag) in [
        ("tests/unit/testdata/noo-bundle-image/signature-1", "0.0.1"),
        (
            "tests/unit/testdata/noo-bundle-image/signature-2",
            "0.0.1-20",
        ),
    ] {
        let verified = verify(
            &Keyring::red_hat_release(),
            &fixture(file),
            &digest(BUNDLE_DIGEST),
        )
        .unwrap_or_else(|error| panic!("{file}: {error}"));
        assert_eq!(verified.packet_version, 3, "{file}");
        assert_eq!(verified.signer_key_id, "199E2F91FD431D51");
        assert_eq!(verified.release_tag(), Some(tag));
        assert_eq!(
            verified.claims.identity.name(),
            "registry.access.redhat.com/albo/aws-load-balancer-operator-bundle"
        );
        assert_eq!(
            verified.claims.creator.as_deref(),
            Some("Red Hat RCM Pub 0.79.0-final ")
        );
    }
}

#[test]
fn a_version_4_signature_from_red_hat_verifies_and_names_the_release_tag() {
    let verified = verify(
        &Keyring::red_hat_release(),
        &fixture("internal/e2e/signatures/signature-1"),
        &digest(RELEASE_4_15_DIGEST),
    )
    .expect("the 4.15.0 signature verifies");
    assert_eq!(verified.packet_version, 4);
    assert_eq!(verified.signer_key_id, "199E2F91FD431D51");
    assert_eq!(
        verified.claims.identity.to_string(),
        "quay.io/openshift-release-dev/ocp-release:4.15.0-x86_64"
    );
    assert_eq!(verified.release_tag(), Some("4.15.0-x86_64"));
    assert_eq!(verified.claims.digest, digest(RELEASE_4_15_DIGEST));
}

#[test]
fn a_signature_from_a_key_given_in_place_of_red_hat_s_verifies() {
    let verified = verify(
        &test_keyring(),
        &fixture(&format!(
            "tests/integration/keys/v0.0.1-{}",
            TEST_RELEASE_DIGEST.replace(':', "-")
        )),
        &digest(TEST_RELEASE_DIGEST),
    )
    .expect("the test release's signature verifies with the test key");
    assert_eq!(verified.packet_version, 4);
    assert_eq!(verified.signer_key_id, "F53FAEFBECBD6FD9");
    assert_eq!(verified.release_tag(), Some("v0.0.1"));
    assert_eq!(verified.claims.creator, None);
}

#[test]
fn a_signature_from_a_key_outside_the_keyring_is_refused() {
    let error = verify(
        &Keyring::red_hat_release(),
        &fixture(&format!(
            "tests/integration/keys/v0.0.1-{}",
            TEST_RELEASE_DIGEST.replace(':', "-")
        )),
        &digest(TEST_RELEASE_DIGEST),
    )
    .expect_err("the test key is not Red Hat's");
    assert_eq!(
        error,
        SignatureError::NoValidSignature {
            keyring: vec!["199E2F91FD431D51".into(), "938A80CAF21541EB".into()],
            signers: vec!["F53FAEFBECBD6FD9".into()],
        }
    );
    // And the other way round: Red Hat's signature with only the test key.
    let error = verify(
        &test_keyring(),
        &fixture("internal/e2e/signatures/signature-1"),
        &digest(RELEASE_4_15_DIGEST),
    )
    .expect_err("Red Hat's signature does not verify with the test key");
    assert!(
        matches!(error, SignatureError::NoValidSignature { .. }),
        "{error}"
    );
}

#[test]
fn a_valid_signature_for_another_payload_is_refused() {
    let other = digest(TEST_RELEASE_DIGEST);
    let error = verify(
        &Keyring::red_hat_release(),
        &fixture("internal/e2e/signatures/signature-1"),
        &other,
    )
    .expect_err("the signature is for 4.15.0, not for the test release");
    assert_eq!(
        error,
        SignatureError::OtherDigest {
            claimed: digest(RELEASE_4_15_DIGEST),
            expected: other,
        }
    );
}

#[test]
fn a_damaged_signature_file_is_refused() {
    let mut damaged = fixture("internal/e2e/signatures/signature-1");
    // The last bytes are the RSA signature value.
    let last = damaged.len() - 3;
    damaged[last] ^= 0x55;
    let error = verify(
        &Keyring::red_hat_release(),
        &damaged,
        &digest(RELEASE_4_15_DIGEST),
    )
    .expect_err("a changed signature value does not verify");
    assert!(
        matches!(
            error,
            SignatureError::NoValidSignature { .. } | SignatureError::NotAMessage { .. }
        ),
        "{error}"
    );
}

#[test]
fn a_file_that_is_not_a_signed_message_is_refused() {
    for bytes in [
        b"{\"critical\": {}}".to_vec(),
        fixture("tests/integration/keys/release-pk.asc"),
        Vec::new(),
    ] {
        let error = verify(&Keyring::red_hat_release(), &bytes, &digest(BUNDLE_DIGEST))
            .expect_err("not a signature");
        assert!(
            matches!(
                error,
                SignatureError::NotAMessage { .. } | SignatureError::NotSigned
            ),
            "{error}"
        );
    }
}

#[test]
fn a_keyring_that_is_not_armored_keys_is_refused() {
    assert!(Keyring::from_armored("not a key").is_err());
    let signature = fixture("internal/e2e/signatures/signature-1");
    assert!(Keyring::from_armored(&String::from_utf8_lossy(&signature)).is_err());
}

// Signatures made by the test world's own key.

use ferry_testworld::release_signatures::{ReleaseSigner, claims, unsigned_message};

const WORLD_DIGEST: &str =
    "sha256:1111111111111111111111111111111111111111111111111111111111111111";

fn signer_and_keyring() -> (ReleaseSigner, Keyring) {
    let signer = ReleaseSigner::generate();
    let keyring = Keyring::from_armored(&signer.public_keyring_armored()).expect("valid key");
    (signer, keyring)
}

#[test]
fn a_signature_made_by_the_test_world_verifies_with_its_key_only() {
    let (signer, keyring) = signer_and_keyring();
    let file = signer.sign_payload(WORLD_DIGEST, "127.0.0.1:5000/ocp/release:4.18.1-x86_64");
    let verified = verify(&keyring, &file, &digest(WORLD_DIGEST)).expect("verifies");
    assert_eq!(verified.packet_version, 4);
    assert_eq!(verified.signer_key_id, keyring.key_ids()[0]);
    assert_eq!(verified.release_tag(), Some("4.18.1-x86_64"));
    assert_eq!(verified.claims.creator.as_deref(), Some("ferry test world"));

    let error = verify(&Keyring::red_hat_release(), &file, &digest(WORLD_DIGEST))
        .expect_err("not signed by Red Hat");
    assert!(
        matches!(error, SignatureError::NoValidSignature { .. }),
        "{error}"
    );
}

#[test]
fn signed_claims_of_the_wrong_type_or_shape_are_refused() {
    let (signer, keyring) = signer_and_keyring();
    let wrong_type = String::from_utf8(claims(WORLD_DIGEST, "127.0.0.1:5000/ocp/release:4.18.1"))
        .unwrap()
        .replace(
            "atomic container signature",
            "cosign container image signature",
        );
    let error = verify(
        &keyring,
        &signer.sign_claims(wrong_type.as_bytes()),
        &digest(WORLD_DIGEST),
    )
    .expect_err("wrong type");
    assert_eq!(
        error,
        SignatureError::WrongType {
            found: "cosign container image signature".into()
        }
    );

    let error = verify(
        &keyring,
        &signer.sign_claims(b"[1, 2, 3]"),
        &digest(WORLD_DIGEST),
    )
    .expect_err("not the claims' shape");
    assert!(matches!(error, SignatureError::Claims { .. }), "{error}");

    let bad_identity = claims(WORLD_DIGEST, "Not A Reference");
    let error = verify(
        &keyring,
        &signer.sign_claims(&bad_identity),
        &digest(WORLD_DIGEST),
    )
    .expect_err("bad identity");
    assert!(
        matches!(error, SignatureError::InvalidIdentity { .. }),
        "{error}"
    );

    let bad_digest = claims("sha256:nothex", "127.0.0.1:5000/ocp/release:4.18.1");
    let error = verify(
        &keyring,
        &signer.sign_claims(&bad_digest),
        &digest(WORLD_DIGEST),
    )
    .expect_err("bad digest");
    assert!(
        matches!(error, SignatureError::InvalidDigest { .. }),
        "{error}"
    );
}

#[test]
fn an_unsigned_message_is_refused() {
    let (_, keyring) = signer_and_keyring();
    let file = unsigned_message(&claims(WORLD_DIGEST, "127.0.0.1:5000/ocp/release:4.18.1"));
    assert_eq!(
        verify(&keyring, &file, &digest(WORLD_DIGEST)),
        Err(SignatureError::NotSigned)
    );
}

#[test]
fn signed_content_too_large_to_be_claims_is_refused() {
    let (signer, keyring) = signer_and_keyring();
    let file = signer.sign_claims(&vec![b' '; 200 * 1024]);
    assert_eq!(
        verify(&keyring, &file, &digest(WORLD_DIGEST)),
        Err(SignatureError::TooLarge)
    );
}
