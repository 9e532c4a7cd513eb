//! Release signatures of the test world: a signing key made per run, and
//! signature files in the shape Red Hat publishes (a compressed, one-pass
//! signed OpenPGP message over the "atomic container signature" JSON
//! claims), so that verification is tested against signatures nobody had to
//! ship. The claims are built here as JSON; the signing is rPGP's.

use pgp::composed::{
    ArmorOptions, KeyType, MessageBuilder, SecretKeyParamsBuilder, SignedPublicKey, SignedSecretKey,
};
use pgp::crypto::hash::HashAlgorithm;
use pgp::types::{CompressionAlgorithm, Password};

/// A key that signs release payloads.
pub struct ReleaseSigner {
    secret: SignedSecretKey,
}

impl ReleaseSigner {
    /// Makes a new Ed25519 key that can sign (fast to make, unlike RSA).
    pub fn generate() -> ReleaseSigner {
        let mut parameters = SecretKeyParamsBuilder::default();
        parameters
            .key_type(KeyType::Ed25519Legacy)
            .can_certify(true)
            .can_sign(true)
            .primary_user_id("ferry test world release signer <releases@test.invalid>".into());
        let secret = parameters
            .build()
            .expect("the key parameters are complete")
            .generate(rand::thread_rng())
            .expect("generating an Ed25519 key");
        ReleaseSigner { secret }
    }

    /// The public key, armored: what `OCP_SIGNATURE_VERIFICATION_PK` points to.
    pub fn public_keyring_armored(&self) -> String {
        SignedPublicKey::from(self.secret.clone())
            .to_armored_string(ArmorOptions::default())
            .expect("armoring a public key")
    }

    /// A signature file for the payload `digest` (`sha256:<hex>`) whose
    /// identity is `docker_reference` (e.g. `<reg>/ocp-release:4.18.1-x86_64`).
    pub fn sign_payload(&self, digest: &str, docker_reference: &str) -> Vec<u8> {
        self.sign_claims(&claims(digest, docker_reference))
    }

    /// A signature file over any content (to test refusals of bad claims).
    pub fn sign_claims(&self, claims: &[u8]) -> Vec<u8> {
        let mut builder = MessageBuilder::from_bytes("", claims.to_vec());
        builder.compression(CompressionAlgorithm::ZIP).sign(
            &self.secret.primary_key,
            Password::empty(),
            HashAlgorithm::Sha256,
        );
        builder
            .to_vec(rand::thread_rng())
            .expect("signing the claims")
    }
}

/// The JSON claims of a release signature.
pub fn claims(digest: &str, docker_reference: &str) -> Vec<u8> {
    serde_json::to_vec(&serde_json::json!({
        "critical": {
            "image": { "docker-manifest-digest": digest },
            "type": "atomic container signature",
            "identity": { "docker-reference": docker_reference },
        },
        "optional": { "creator": "ferry test world" },
    }))
    .expect("serializing JSON claims")
}

/// A message that is not signed (only compressed literal data).
pub fn unsigned_message(content: &[u8]) -> Vec<u8> {
    let mut builder = MessageBuilder::from_bytes("", content.to_vec());
    builder.compression(CompressionAlgorithm::ZIP);
    builder
        .to_vec(rand::thread_rng())
        .expect("writing a literal message")
}
