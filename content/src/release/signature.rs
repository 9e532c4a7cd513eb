//! Release signatures (notes §5.3), the pure half: reading an armored OpenPGP
//! keyring, verifying a release signature file (an OpenPGP signed message,
//! as served at `<base>sha256=<hex>/signature-1`) against it, and reading the
//! signed JSON claims. The claims must name the payload's digest; their
//! identity (`critical.identity.docker-reference`) gives the payload's tag,
//! which names the release at the destination (notes §4.5). Fetching the
//! files and caching them belong to the executor.
//!
//! OpenPGP is done by the `pgp` crate (rPGP), chosen because it is pure Rust
//! (no system library, so CI needs no new package), kept up to date, and,
//! unlike most OpenPGP implementations today, still verifies **version 3**
//! signature packets: Red Hat signed OpenShift 4.1 to 4.13.10 with V3
//! packets (oc-mirror pins an old Go OpenPGP library for that reason), and
//! later releases with V4 packets. Both are tested below.

use std::io::Read;

use ferry_schemas::{Digest, ImageReference};
use pgp::composed::{Deserializable, Message, SignedPublicKey};
use pgp::packet::SignatureVersion;
use pgp::types::KeyDetails;
use serde::Deserialize;

/// The Red Hat release keys oc-mirror embeds (release key 2, `199E2F91FD431D51`,
/// and beta key 2, `938A80CAF21541EB`): public data, taken from the `defaultPK`
/// constant of openshift/oc-mirror's `v2/internal/pkg/release/cincinnati.go`.
/// `OCP_SIGNATURE_VERIFICATION_PK` (a path to an armored keyring) replaces them.
pub const RED_HAT_RELEASE_KEYS: &str = include_str!("keys/redhat-release-keys.asc");

/// The environment variable naming an armored keyring that replaces
/// [`RED_HAT_RELEASE_KEYS`].
pub const VERIFICATION_KEY_VARIABLE: &str = "OCP_SIGNATURE_VERIFICATION_PK";

/// The `critical.type` every release signature claims.
pub const SIGNATURE_TYPE: &str = "atomic container signature";

/// A signature file's signed content is a small JSON document; anything
/// larger than this (after decompression) is refused rather than read.
const CLAIMS_MAXIMUM_BYTES: u64 = 64 * 1024;

/// The public keys a signature may come from.
#[derive(Clone, Debug)]
pub struct Keyring {
    keys: Vec<SignedPublicKey>,
}

/// Why an armored keyring cannot be used.
#[derive(Clone, Debug, PartialEq, Eq, thiserror::Error)]
pub enum KeyringError {
    #[error("not an armored OpenPGP public key block: {reason}")]
    Syntax { reason: String },
    #[error("public key {key_id}: its self-signatures do not verify: {reason}")]
    InvalidKey { key_id: String, reason: String },
    #[error("the keyring holds no public key")]
    Empty,
}

impl Keyring {
    /// Reads every public key of an armored keyring (one or more keys in one
    /// block), checking each key's self-signatures.
    pub fn from_armored(text: &str) -> Result<Self, KeyringError> {
        let syntax = |error: pgp::errors::Error| KeyringError::Syntax {
            reason: error.to_string(),
        };
        let (parsed, _headers) =
            SignedPublicKey::from_armor_many(text.as_bytes()).map_err(syntax)?;
        let mut keys = Vec::new();
        for item in parsed {
            let key = item.map_err(syntax)?;
            key.verify_bindings()
                .map_err(|error| KeyringError::InvalidKey {
                    key_id: key_id_text(&key),
                    reason: error.to_string(),
                })?;
            keys.push(key);
        }
        if keys.is_empty() {
            return Err(KeyringError::Empty);
        }
        Ok(Keyring { keys })
    }

    /// The embedded Red Hat release keys ([`RED_HAT_RELEASE_KEYS`]).
    pub fn red_hat_release() -> Self {
        Self::from_armored(RED_HAT_RELEASE_KEYS)
            .unwrap_or_else(|error| unreachable!("the embedded Red Hat keyring is valid: {error}"))
    }

    /// The primary keys' IDs (16 upper-case hex digits), in the keyring's order.
    pub fn key_ids(&self) -> Vec<String> {
        self.keys.iter().map(key_id_text).collect()
    }
}

/// The signed claims of a release signature.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct SignatureClaims {
    /// `critical.image.docker-manifest-digest`: the payload the signature is for.
    pub digest: Digest,
    /// `critical.identity.docker-reference`, e.g.
    /// `quay.io/openshift-release-dev/ocp-release:4.18.1-x86_64`.
    pub identity: ImageReference,
    /// `optional.creator`, when present.
    pub creator: Option<String>,
}

/// A signature that verified against the keyring and names the expected payload.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct VerifiedSignature {
    pub claims: SignatureClaims,
    /// The ID of the primary key whose key (or subkey) made the signature.
    pub signer_key_id: String,
    /// The signature packet's version (3 or 4 in practice).
    pub packet_version: u8,
}

impl VerifiedSignature {
    /// The payload's tag, from the identity (`4.18.1-x86_64`); `None` when the
    /// identity has no tag, in which case the payload is named by its digest.
    pub fn release_tag(&self) -> Option<&str> {
        self.claims.identity.tag()
    }
}

/// Why a signature file is not accepted for a payload.
#[derive(Clone, Debug, PartialEq, Eq, thiserror::Error)]
pub enum SignatureError {
    #[error("not an OpenPGP message: {reason}")]
    NotAMessage { reason: String },
    #[error("the OpenPGP message is not signed")]
    NotSigned,
    #[error("the signed content is larger than {CLAIMS_MAXIMUM_BYTES} bytes")]
    TooLarge,
    #[error(
        "no valid signature from the keyring (keys {}); the message is signed by {}",
        keyring.join(", "),
        if signers.is_empty() { "an unnamed key".to_owned() } else { signers.join(", ") }
    )]
    NoValidSignature {
        /// The keyring's key IDs.
        keyring: Vec<String>,
        /// The issuer key IDs the signature names.
        signers: Vec<String>,
    },
    #[error("the signed claims are not JSON of the expected shape: {reason}")]
    Claims { reason: String },
    #[error("the signed claims have type `{found}`, expected `{SIGNATURE_TYPE}`")]
    WrongType { found: String },
    #[error("the signed digest `{text}` is not a digest: {reason}")]
    InvalidDigest { text: String, reason: String },
    #[error("the signature is for {claimed}, not for the payload {expected}")]
    OtherDigest { claimed: Digest, expected: Digest },
    #[error("the signed identity `{text}` is not an image reference: {reason}")]
    InvalidIdentity { text: String, reason: String },
}

/// The JSON body, as signed (containers' "simple signing" format).
#[derive(Deserialize)]
struct ClaimsDocument {
    critical: CriticalSection,
    #[serde(default)]
    optional: Option<OptionalSection>,
}

#[derive(Deserialize)]
struct CriticalSection {
    #[serde(rename = "type")]
    signature_type: String,
    image: ImageSection,
    identity: IdentitySection,
}

#[derive(Deserialize)]
struct ImageSection {
    #[serde(rename = "docker-manifest-digest")]
    docker_manifest_digest: String,
}

#[derive(Deserialize)]
struct IdentitySection {
    #[serde(rename = "docker-reference")]
    docker_reference: String,
}

#[derive(Deserialize)]
struct OptionalSection {
    #[serde(default)]
    creator: Option<String>,
}

/// Verifies `signature_file` (binary or armored) against `keyring`, reads its
/// claims and checks that they are for `payload_digest`.
pub fn verify(
    keyring: &Keyring,
    signature_file: &[u8],
    payload_digest: &Digest,
) -> Result<VerifiedSignature, SignatureError> {
    let not_a_message = |error: pgp::errors::Error| SignatureError::NotAMessage {
        reason: error.to_string(),
    };
    let mut message = if signature_file.starts_with(b"-----BEGIN PGP") {
        Message::from_armor(signature_file)
            .map_err(not_a_message)?
            .0
    } else {
        Message::from_bytes(signature_file).map_err(not_a_message)?
    };
    while message.is_compressed() {
        message = message.decompress().map_err(not_a_message)?;
    }
    if !message.is_signed() {
        return Err(SignatureError::NotSigned);
    }
    let mut content = Vec::new();
    (&mut message)
        .take(CLAIMS_MAXIMUM_BYTES + 1)
        .read_to_end(&mut content)
        .map_err(|error| SignatureError::NotAMessage {
            reason: error.to_string(),
        })?;
    if content.len() as u64 > CLAIMS_MAXIMUM_BYTES {
        return Err(SignatureError::TooLarge);
    }

    let (signer_key_id, packet_version) =
        verified_signer(keyring, &message, &content).ok_or_else(|| {
            SignatureError::NoValidSignature {
                keyring: keyring.key_ids(),
                signers: issuer_key_ids(&message),
            }
        })?;
    let claims = parse_claims(&content)?;
    if &claims.digest != payload_digest {
        return Err(SignatureError::OtherDigest {
            claimed: claims.digest,
            expected: payload_digest.clone(),
        });
    }
    Ok(VerifiedSignature {
        claims,
        signer_key_id,
        packet_version,
    })
}

/// Reads the claims of a signature's signed content, without any check of
/// who signed it: callers use [`verify`].
fn parse_claims(content: &[u8]) -> Result<SignatureClaims, SignatureError> {
    let document: ClaimsDocument =
        serde_json::from_slice(content).map_err(|error| SignatureError::Claims {
            reason: error.to_string(),
        })?;
    let critical = document.critical;
    if critical.signature_type != SIGNATURE_TYPE {
        return Err(SignatureError::WrongType {
            found: critical.signature_type,
        });
    }
    let digest_text = critical.image.docker_manifest_digest;
    let digest: Digest =
        digest_text
            .parse()
            .map_err(
                |error: ferry_schemas::digest::DigestError| SignatureError::InvalidDigest {
                    reason: error.to_string(),
                    text: digest_text.clone(),
                },
            )?;
    let identity_text = critical.identity.docker_reference;
    let identity: ImageReference =
        identity_text
            .parse()
            .map_err(|error: ferry_schemas::reference::ReferenceError| {
                SignatureError::InvalidIdentity {
                    reason: error.to_string(),
                    text: identity_text.clone(),
                }
            })?;
    Ok(SignatureClaims {
        digest,
        identity,
        creator: document.optional.and_then(|optional| optional.creator),
    })
}

/// The first (primary key ID, packet version) of a signature in `message`
/// that verifies `content` with a key of the keyring, its primary key or a
/// subkey.
///
/// Each signature packet is checked as a signature over the literal data
/// (which is what a one-pass signed message signs), not through rPGP's
/// one-pass verification: that refuses a version 3 signature after a
/// version 3 one-pass packet, the very shape of Red Hat's V3 signatures.
fn verified_signer(
    keyring: &Keyring,
    message: &Message<'_>,
    content: &[u8],
) -> Option<(String, u8)> {
    let Message::Signed { reader, .. } = message else {
        return None;
    };
    for index in 0..reader.num_signatures() {
        let Some(signature) = reader.signature(index) else {
            continue;
        };
        for key in &keyring.keys {
            let by_primary = signature.verify(key, content).is_ok();
            let by_subkey = || {
                key.public_subkeys
                    .iter()
                    .any(|subkey| signature.verify(subkey, content).is_ok())
            };
            if by_primary || by_subkey() {
                return Some((key_id_text(key), version_number(signature.version())));
            }
        }
    }
    None
}

/// The issuer key IDs the message's signatures name, for error messages.
fn issuer_key_ids(message: &Message<'_>) -> Vec<String> {
    let Message::Signed { reader, .. } = message else {
        return Vec::new();
    };
    let mut ids: Vec<String> = (0..reader.num_signatures())
        .filter_map(|index| reader.signature(index))
        .flat_map(|signature| {
            signature
                .issuer_key_id()
                .into_iter()
                .map(|id| hex::encode_upper(id.as_ref()))
                .collect::<Vec<_>>()
        })
        .collect();
    ids.dedup();
    ids
}

fn version_number(version: SignatureVersion) -> u8 {
    match version {
        SignatureVersion::V2 => 2,
        SignatureVersion::V3 => 3,
        SignatureVersion::V4 => 4,
        SignatureVersion::V5 => 5,
        SignatureVersion::V6 => 6,
        SignatureVersion::Other(other) => other,
    }
}

fn key_id_text(key: &SignedPublicKey) -> String {
    hex::encode_upper(key.legacy_key_id().as_ref())
}
