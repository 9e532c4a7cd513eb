//! Actions and their keys.
//!
//! An action is one unit of work at the destination. Its key is blake3 over
//! a canonical encoding of everything that determines the work, so two
//! images that need the same work share one action, and a run skips every
//! action whose key the state records as done.
//!
//! What is hashed into each key (and what is not):
//!
//! | action | hashed | not hashed |
//! |---|---|---|
//! | upload blob | key version, kind, destination registry and prefix, digest, size | source, image names, tags |
//! | link blob (mount) | key version, kind, destination repository, digest | source, which repository holds it |
//!
//! A link key means "this repository has the blob". The executor records
//! the link key of an upload's own repository together with the upload, so
//! when a later image set makes another repository the upload's target, a
//! blob uploaded before is linked (mounted) there, not uploaded again.
//! | push manifest | key version, kind, destination repository, digest, media type | tags, source |
//! | tag | key version, kind, destination repository, tag, digest | source |
//! | fetch blob (into the cache) | key version, kind, digest, size | source, image names |
//! | pack blob (into a delivery) | key version, kind, digest, size | source, image names, archive folder |
//! | pack manifest | key version, kind, digest, media type | source, tags, archive folder |
//! | record image (a delivery's index entry) | key version, kind, image name, digest | archive folder |
//!
//! So a retag changes only a tag key, an added image that shares layers
//! with mirrored ones uploads only its own blobs (the shared ones are linked,
//! which moves no bytes), and a new destination prefix changes every key.
//! Disk deliveries are the workspace's own history, so their keys name no
//! folder: a blob shipped in any earlier delivery is never packed again,
//! and retagging an image already shipped plans only a new index entry.

use std::fmt;

use ferry_schemas::Digest;
use serde::Serialize;

use crate::source::Source;

/// Bumped when the meaning of a key changes; old state then plans again.
pub const KEY_VERSION: u32 = 1;

/// A content-addressed action key: blake3 of the action's canonical encoding.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
pub struct ActionKey([u8; 32]);

/// Byte order (as the derived order of the bytes would be), compared as
/// two 128-bit numbers: a state holds tens of thousands of keys in ordered
/// sets, and a call to `memcmp` per comparison was a noticeable share of a
/// no-op plan.
impl Ord for ActionKey {
    fn cmp(&self, other: &Self) -> std::cmp::Ordering {
        let halves = |key: &ActionKey| {
            let (high, low) = key.0.split_at(16);
            let number = |half: &[u8]| {
                let mut bytes = [0u8; 16];
                bytes.copy_from_slice(half);
                u128::from_be_bytes(bytes)
            };
            (number(high), number(low))
        };
        halves(self).cmp(&halves(other))
    }
}

impl PartialOrd for ActionKey {
    fn partial_cmp(&self, other: &Self) -> Option<std::cmp::Ordering> {
        Some(self.cmp(other))
    }
}

impl ActionKey {
    /// A key from its bytes (as the state stores it).
    pub fn from_bytes(bytes: [u8; 32]) -> Self {
        ActionKey(bytes)
    }

    /// The key's bytes.
    pub fn to_bytes(self) -> [u8; 32] {
        self.0
    }

    /// The key as lower-case hex.
    pub fn to_hex(self) -> String {
        self.hex_digits().iter().copied().map(char::from).collect()
    }

    /// The key as lower-case hex digits, without allocating (for hashing
    /// many keys).
    pub fn hex_digits(self) -> [u8; 64] {
        let mut digits = [0u8; 64];
        for (pair, byte) in digits.chunks_exact_mut(2).zip(self.0) {
            pair[0] = HEX_DIGITS[usize::from(byte >> 4)];
            pair[1] = HEX_DIGITS[usize::from(byte & 0x0f)];
        }
        digits
    }

    /// Parses the hex form (lower or upper case).
    pub fn from_hex(text: &str) -> Option<Self> {
        let text = text.as_bytes();
        if text.len() != 64 {
            return None;
        }
        // A table lookup per digit, one check for the whole key: a plan
        // reads tens of thousands of keys from the state.
        let mut bytes = [0u8; 32];
        let mut invalid = 0u8;
        for (byte, pair) in bytes.iter_mut().zip(text.chunks_exact(2)) {
            let (high, low) = (
                HEX_VALUES[usize::from(pair[0])],
                HEX_VALUES[usize::from(pair[1])],
            );
            invalid |= (high | low) & NOT_HEX;
            *byte = (high << 4) | (low & 0x0f);
        }
        (invalid == 0).then_some(ActionKey(bytes))
    }
}

const HEX_DIGITS: &[u8; 16] = b"0123456789abcdef";

/// Marks a byte of [`HEX_VALUES`] that is not a hex digit.
const NOT_HEX: u8 = 0x80;

/// Each byte's value as a hex digit (lower or upper case), else [`NOT_HEX`].
const HEX_VALUES: [u8; 256] = {
    let mut values = [NOT_HEX; 256];
    let mut digit = 0;
    while digit < 10 {
        values[b'0' as usize + digit] = digit as u8;
        digit += 1;
    }
    let mut letter = 0;
    while letter < 6 {
        values[b'a' as usize + letter] = 10 + letter as u8;
        values[b'A' as usize + letter] = 10 + letter as u8;
        letter += 1;
    }
    values
};

impl fmt::Display for ActionKey {
    fn fmt(&self, formatter: &mut fmt::Formatter<'_>) -> fmt::Result {
        formatter.write_str(&self.to_hex())
    }
}

impl schemars::JsonSchema for ActionKey {
    fn schema_name() -> String {
        "ActionKey".to_owned()
    }

    fn json_schema(_: &mut schemars::r#gen::SchemaGenerator) -> schemars::schema::Schema {
        schemars::schema::SchemaObject {
            instance_type: Some(schemars::schema::InstanceType::String.into()),
            metadata: Some(Box::new(schemars::schema::Metadata {
                description: Some(
                    "blake3 of the action's canonical encoding, lower-case hex".to_owned(),
                ),
                ..Default::default()
            })),
            string: Some(Box::new(schemars::schema::StringValidation {
                pattern: Some("^[0-9a-f]{64}$".to_owned()),
                ..Default::default()
            })),
            ..Default::default()
        }
        .into()
    }
}

impl Serialize for ActionKey {
    fn serialize<S: serde::Serializer>(&self, serializer: S) -> Result<S::Ok, S::Error> {
        serializer.serialize_str(&self.to_hex())
    }
}

impl<'de> serde::Deserialize<'de> for ActionKey {
    fn deserialize<D: serde::Deserializer<'de>>(deserializer: D) -> Result<Self, D::Error> {
        let text = <std::borrow::Cow<'de, str>>::deserialize(deserializer)?;
        ActionKey::from_hex(&text).ok_or_else(|| {
            serde::de::Error::custom(format!("{text:?} is not an action key (64 hex digits)"))
        })
    }
}

/// One unit of work at the destination.
#[derive(Clone, Debug, PartialEq, Eq, PartialOrd, Ord, Serialize, schemars::JsonSchema)]
#[serde(tag = "kind", rename_all = "kebab-case")]
pub enum Action {
    /// Upload a blob's bytes to the destination registry, into `repository`
    /// (the first repository, in name order, that needs it).
    UploadBlob {
        /// `registry[/prefix]` of the destination.
        destination: String,
        repository: String,
        digest: Digest,
        size: u64,
        /// Where to read it.
        source: Source,
    },
    /// Make a blob already at the destination part of a repository (a
    /// cross-repository mount from `from_repository`: no bytes move; when
    /// the registry refuses the mount, the bytes come from `source`).
    LinkBlob {
        repository: String,
        digest: Digest,
        size: u64,
        from_repository: String,
        /// Where to read it if the mount is refused.
        source: Source,
    },
    /// Put a manifest into a repository by digest.
    PushManifest {
        repository: String,
        digest: Digest,
        media_type: String,
        size: u64,
        source: Source,
    },
    /// Point a tag at a manifest.
    Tag {
        repository: String,
        tag: String,
        digest: Digest,
    },
    /// Fetch a blob into the content cache (mirror-to-disk), verified.
    FetchBlob {
        digest: Digest,
        size: u64,
        /// Where to read it.
        source: Source,
    },
    /// Put a cached blob into the next delivery.
    PackBlob { digest: Digest, size: u64 },
    /// Put a manifest into the next delivery.
    PackManifest {
        digest: Digest,
        media_type: String,
        size: u64,
        source: Source,
    },
    /// Name an image in the next delivery's index (`name` resolved to `digest`).
    RecordImage { name: String, digest: Digest },
}

impl Action {
    /// The canonical encoding: one field per line, `name=value`, in a fixed
    /// order, starting with the key version and the kind.
    fn canonical(&self) -> String {
        use std::fmt::Write as _;
        let mut text = String::with_capacity(192);
        let _ = writeln!(text, "key-version={KEY_VERSION}");
        let _ = match self {
            Action::UploadBlob {
                destination,
                digest,
                size,
                ..
            } => writeln!(
                text,
                "kind=upload-blob\ndestination={destination}\ndigest={digest}\nsize={size}"
            ),
            Action::LinkBlob {
                repository, digest, ..
            } => writeln!(
                text,
                "kind=link-blob\nrepository={repository}\ndigest={digest}"
            ),
            Action::PushManifest {
                repository,
                digest,
                media_type,
                ..
            } => writeln!(
                text,
                "kind=push-manifest\nrepository={repository}\ndigest={digest}\nmedia-type={media_type}"
            ),
            Action::Tag {
                repository,
                tag,
                digest,
            } => writeln!(
                text,
                "kind=tag\nrepository={repository}\ntag={tag}\ndigest={digest}"
            ),
            Action::FetchBlob { digest, size, .. } => {
                writeln!(text, "kind=fetch-blob\ndigest={digest}\nsize={size}")
            }
            Action::PackBlob { digest, size } => {
                writeln!(text, "kind=pack-blob\ndigest={digest}\nsize={size}")
            }
            Action::PackManifest {
                digest, media_type, ..
            } => writeln!(
                text,
                "kind=pack-manifest\ndigest={digest}\nmedia-type={media_type}"
            ),
            Action::RecordImage { name, digest } => {
                writeln!(text, "kind=record-image\nname={name}\ndigest={digest}")
            }
        };
        text
    }

    /// The action's key.
    pub fn key(&self) -> ActionKey {
        ActionKey(*blake3::hash(self.canonical().as_bytes()).as_bytes())
    }

    /// The link an upload makes true as it runs: the blob is then in the
    /// upload's own repository. The executor records its key with the
    /// upload's, so later plans know which repository holds the blob.
    pub fn implied_link(&self) -> Option<Action> {
        match self {
            Action::UploadBlob {
                repository,
                digest,
                size,
                source,
                ..
            } => Some(Action::LinkBlob {
                repository: repository.clone(),
                digest: digest.clone(),
                size: *size,
                from_repository: repository.clone(),
                source: source.clone(),
            }),
            _ => None,
        }
    }

    /// Bytes this action moves (over the network, or into a delivery).
    pub fn bytes(&self) -> u64 {
        match self {
            Action::UploadBlob { size, .. }
            | Action::PushManifest { size, .. }
            | Action::FetchBlob { size, .. }
            | Action::PackBlob { size, .. }
            | Action::PackManifest { size, .. } => *size,
            Action::LinkBlob { .. } | Action::Tag { .. } | Action::RecordImage { .. } => 0,
        }
    }

    /// The kind's name, as plans and the state write it.
    pub fn kind_name(&self) -> &'static str {
        match self {
            Action::UploadBlob { .. } => "upload-blob",
            Action::LinkBlob { .. } => "link-blob",
            Action::PushManifest { .. } => "push-manifest",
            Action::Tag { .. } => "tag",
            Action::FetchBlob { .. } => "fetch-blob",
            Action::PackBlob { .. } => "pack-blob",
            Action::PackManifest { .. } => "pack-manifest",
            Action::RecordImage { .. } => "record-image",
        }
    }

    /// A short description for people.
    pub fn describe(&self) -> String {
        match self {
            Action::UploadBlob {
                repository,
                digest,
                size,
                ..
            } => format!("upload blob {digest} ({size} bytes) to {repository}"),
            Action::LinkBlob {
                repository,
                digest,
                from_repository,
                ..
            } => format!("link blob {digest} into {repository} (from {from_repository})"),
            Action::PushManifest {
                repository, digest, ..
            } => format!("push manifest {digest} to {repository}"),
            Action::Tag {
                repository,
                tag,
                digest,
            } => format!("tag {repository}:{tag} -> {digest}"),
            Action::FetchBlob {
                digest,
                size,
                source,
            } => format!("fetch blob {digest} ({size} bytes) from {source}"),
            Action::PackBlob { digest, size } => format!("pack blob {digest} ({size} bytes)"),
            Action::PackManifest { digest, .. } => format!("pack manifest {digest}"),
            Action::RecordImage { name, digest } => format!("record {name} -> {digest}"),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn digest(n: u8) -> Digest {
        format!("sha256:{}", format!("{n:02x}").repeat(32))
            .parse()
            .unwrap()
    }

    #[test]
    fn keys_follow_content_not_names() {
        let upload = |destination: &str, repository: &str, source: &str| Action::UploadBlob {
            destination: destination.to_owned(),
            repository: repository.to_owned(),
            digest: digest(1),
            size: 10,
            source: Source::Registry(source.to_owned()),
        };
        let base = upload("mirror.local/ns", "ns/a", "quay.io/a");
        assert_eq!(
            base.key(),
            upload("mirror.local/ns", "ns/b", "quay.io/b").key()
        );
        assert_ne!(
            base.key(),
            upload("mirror.local/other", "other/a", "quay.io/a").key()
        );
        let tag = |tag: &str, n: u8| Action::Tag {
            repository: "ns/a".to_owned(),
            tag: tag.to_owned(),
            digest: digest(n),
        };
        assert_ne!(
            tag("1.0", 1).key(),
            tag("1.0", 2).key(),
            "a moved tag is new work"
        );
        assert_ne!(tag("1.0", 1).key(), tag("1.1", 1).key());
    }

    #[test]
    fn the_canonical_encoding_is_one_field_per_line() {
        let tag = Action::Tag {
            repository: "ns/a".to_owned(),
            tag: "1.0".to_owned(),
            digest: digest(1),
        };
        assert_eq!(
            tag.canonical(),
            format!(
                "key-version=1\nkind=tag\nrepository=ns/a\ntag=1.0\ndigest={}\n",
                digest(1)
            )
        );
        let upload = Action::UploadBlob {
            destination: "mirror.local/ns".to_owned(),
            repository: "ns/a".to_owned(),
            digest: digest(2),
            size: 7,
            source: Source::Cache,
        };
        assert_eq!(
            upload.canonical(),
            format!(
                "key-version=1\nkind=upload-blob\ndestination=mirror.local/ns\ndigest={}\nsize=7\n",
                digest(2)
            )
        );
    }

    #[test]
    fn keys_order_as_their_bytes() {
        let mut keys: Vec<ActionKey> = [
            [0u8; 32],
            [255u8; 32],
            {
                let mut bytes = [0u8; 32];
                bytes[31] = 1;
                bytes
            },
            {
                let mut bytes = [0u8; 32];
                bytes[15] = 1;
                bytes
            },
            {
                let mut bytes = [0u8; 32];
                bytes[16] = 200;
                bytes
            },
            {
                let mut bytes = [7u8; 32];
                bytes[0] = 1;
                bytes
            },
        ]
        .into_iter()
        .map(ActionKey::from_bytes)
        .collect();
        let mut by_bytes = keys.clone();
        by_bytes.sort_by_key(|key| key.to_bytes());
        keys.sort();
        assert_eq!(keys, by_bytes);
        assert_eq!(
            ActionKey::from_bytes([3; 32]).cmp(&ActionKey::from_bytes([3; 32])),
            std::cmp::Ordering::Equal
        );
    }

    #[test]
    fn keys_round_trip_through_hex() {
        let key = Action::Tag {
            repository: "r".to_owned(),
            tag: "t".to_owned(),
            digest: digest(3),
        }
        .key();
        assert_eq!(ActionKey::from_hex(&key.to_hex()), Some(key));
        assert_eq!(ActionKey::from_bytes(key.to_bytes()), key);
        assert_eq!(ActionKey::from_hex("zz"), None);
        assert_eq!(ActionKey::from_hex(&"g".repeat(64)), None);
        let ones = ActionKey::from_bytes([0x1f; 32]);
        assert_eq!(ones.to_hex(), "1f".repeat(32));
        assert_eq!(ones.hex_digits().as_slice(), "1f".repeat(32).as_bytes());
        assert_eq!(
            ActionKey::from_hex(&"AbC9".repeat(16)),
            Some(ActionKey::from_bytes(
                [0xab, 0xc9].repeat(16).try_into().unwrap()
            ))
        );
    }

    #[test]
    fn every_byte_that_is_not_a_hex_digit_is_refused_anywhere_in_a_key() {
        for byte in 0..=u8::MAX {
            let value = char::from(byte).to_digit(16);
            for position in [0, 1, 31, 62, 63] {
                let mut text = b"0".repeat(64);
                text[position] = byte;
                let Ok(text) = std::str::from_utf8(&text) else {
                    continue;
                };
                let mut expected = [0u8; 32];
                let parsed = value.map(|value| {
                    let shift = if position % 2 == 0 { 4 } else { 0 };
                    expected[position / 2] = (value as u8) << shift;
                    ActionKey::from_bytes(expected)
                });
                assert_eq!(
                    ActionKey::from_hex(text),
                    parsed,
                    "byte {byte} at {position}"
                );
            }
        }
    }
}
