//! Image references as types: `host[:port]/path[:tag][@digest]` following the
//! docker reference grammar (the one containers/image and distribution use),
//! plus the transports a configuration may name (`docker://`, `oci:`).
//!
//! ferry is stricter than the docker CLI on one point: a reference must name
//! its registry host. `ubi8/ubi` means `docker.io/library/...` to docker and
//! something else to podman's search list; a mirroring tool must not guess.

use std::fmt;
use std::str::FromStr;

use crate::digest::{Digest, DigestError};

// The three grammars below (path component, host, tag) are checked by hand
// rather than with regular expressions: compiling the tag's regex
// (`[\w][\w.-]{0,127}`, a Unicode class repeated 127 times) peaked at about
// 17 MiB of heap, more than everything else a registry-to-registry copy of a
// 256 MiB layer allocates. A test checks them against the regexes.

/// The longest tag the docker grammar allows.
const TAG_MAXIMUM_LENGTH: usize = 128;

/// The longest repository name (`host[:port]/path`) the docker grammar
/// allows (distribution's `NameTotalLengthMax`).
pub const NAME_MAXIMUM_LENGTH: usize = 255;

/// Why a string is not an image reference.
#[derive(Clone, Debug, PartialEq, Eq, thiserror::Error)]
pub enum ReferenceError {
    #[error("the reference is empty")]
    Empty,
    #[error("`{0}` names no registry host")]
    MissingRegistry(String),
    #[error("`{0}` is not a valid registry host")]
    InvalidHost(String),
    #[error("`{host}:{port}`: the port must be a number from 1 to 65535")]
    InvalidPort { host: String, port: String },
    #[error("the repository name is {length} characters long, more than {NAME_MAXIMUM_LENGTH}")]
    NameTooLong { length: usize },
    #[error(
        "`{0}` is not a valid repository path component (lower-case letters, digits, and `.`, `_`, `__` or `-` between them)"
    )]
    InvalidPathComponent(String),
    #[error(
        "`{0}` is not a valid tag (letters, digits, `_`, `.` and `-`, at most 128, not starting with `.` or `-`)"
    )]
    InvalidTag(String),
    #[error("invalid digest `{text}`: {source}")]
    InvalidDigest { text: String, source: DigestError },
    #[error("unsupported transport `{0}` (ferry reads `docker://` references and `oci:` layouts)")]
    UnsupportedTransport(String),
    #[error("the repository path is missing after the host")]
    MissingRepository,
}

impl ReferenceError {
    /// A hint for the person who wrote the reference.
    pub fn help(&self) -> &'static str {
        match self {
            ReferenceError::MissingRegistry(_) => {
                "write the registry host explicitly, e.g. `registry.redhat.io/ubi9/ubi:latest` or `docker.io/library/busybox:latest`"
            }
            ReferenceError::InvalidTag(_) => "a tag looks like `v4.16` or `latest`",
            ReferenceError::InvalidDigest { .. } => {
                "a digest looks like `sha256:` followed by 64 lower-case hex digits"
            }
            ReferenceError::UnsupportedTransport(_) => {
                "use `docker://host/repository:tag` or `oci:///absolute/path`"
            }
            ReferenceError::InvalidPort { .. } => "a port is a number from 1 to 65535",
            ReferenceError::NameTooLong { .. } => {
                "registries refuse a repository name (host and path) longer than 255 characters"
            }
            _ => {
                "a reference looks like `registry.example.com:5000/team/image:tag` or `...@sha256:<hex>`"
            }
        }
    }
}

/// Checks one repository path component: lower-case alphanumerics joined by
/// `.`, `_`, `__` or runs of `-` (`[a-z0-9]+(?:(?:[._]|__|-+)[a-z0-9]+)*`).
pub fn is_valid_path_component(text: &str) -> bool {
    let alphanumeric = |byte: u8| byte.is_ascii_lowercase() || byte.is_ascii_digit();
    let bytes = text.as_bytes();
    let (Some(&first), Some(&last)) = (bytes.first(), bytes.last()) else {
        return false;
    };
    if !alphanumeric(first) || !alphanumeric(last) {
        return false;
    }
    // Every run of separators between two alphanumeric runs must be one of
    // `.`, `_`, `__` or dashes only.
    bytes
        .split(|&byte| alphanumeric(byte))
        .filter(|separator| !separator.is_empty())
        .all(|separator| {
            matches!(separator, b"." | b"_" | b"__") || separator.iter().all(|&byte| byte == b'-')
        })
}

/// Checks a registry host: DNS labels of ASCII letters, digits and inner
/// `-`, joined by `.`, with an optional `:port`.
fn is_valid_host(text: &str) -> bool {
    let (name, port) = match text.split_once(':') {
        Some((name, port)) => (name, Some(port)),
        None => (text, None),
    };
    let valid_label = |label: &str| {
        let bytes = label.as_bytes();
        match (bytes.first(), bytes.last()) {
            (Some(&first), Some(&last)) => {
                first.is_ascii_alphanumeric()
                    && last.is_ascii_alphanumeric()
                    && bytes
                        .iter()
                        .all(|&byte| byte.is_ascii_alphanumeric() || byte == b'-')
            }
            _ => false,
        }
    };
    let valid_port =
        |port: &str| !port.is_empty() && port.bytes().all(|byte| byte.is_ascii_digit());
    name.split('.').all(valid_label) && port.is_none_or(valid_port)
}

/// Checks a repository path: one or more components separated by `/`
/// (oc-mirror's `IsValidPathComponent`, used for `targetCatalog` and
/// `targetRepo`).
pub fn is_valid_repository_path(text: &str) -> bool {
    !text.is_empty() && text.split('/').all(is_valid_path_component)
}

/// Checks a tag: ASCII letters, digits, `_`, `.` and `-`, at most 128, not
/// starting with `.` or `-` (the docker grammar's `[\w][\w.-]{0,127}`, where
/// `\w` is ASCII).
pub fn is_valid_tag(text: &str) -> bool {
    let word = |byte: u8| byte.is_ascii_alphanumeric() || byte == b'_';
    let bytes = text.as_bytes();
    match bytes.first() {
        Some(&first) => {
            word(first)
                && bytes.len() <= TAG_MAXIMUM_LENGTH
                && bytes
                    .iter()
                    .all(|&byte| word(byte) || byte == b'.' || byte == b'-')
        }
        None => false,
    }
}

/// A reference to an image in a registry: host, repository, and a tag, a
/// digest, or both.
#[derive(Clone, Debug, PartialEq, Eq, PartialOrd, Ord, Hash)]
pub struct ImageReference {
    registry: String,
    repository: String,
    tag: Option<String>,
    digest: Option<Digest>,
}

impl ImageReference {
    /// The registry host, with its port if any (`registry.example.com:5000`).
    pub fn registry(&self) -> &str {
        &self.registry
    }

    /// The repository path below the host (`openshift-release-dev/ocp-release`).
    pub fn repository(&self) -> &str {
        &self.repository
    }

    pub fn tag(&self) -> Option<&str> {
        self.tag.as_deref()
    }

    pub fn digest(&self) -> Option<&Digest> {
        self.digest.as_ref()
    }

    /// `host/repository`, without tag or digest.
    pub fn name(&self) -> String {
        format!("{}/{}", self.registry, self.repository)
    }

    /// The same image with `tag` instead of its tag.
    pub fn with_tag(&self, tag: &str) -> Result<Self, ReferenceError> {
        if !is_valid_tag(tag) {
            return Err(ReferenceError::InvalidTag(tag.to_owned()));
        }
        Ok(ImageReference {
            tag: Some(tag.to_owned()),
            ..self.clone()
        })
    }

    /// The same image pinned to `digest`.
    pub fn with_digest(&self, digest: Digest) -> Self {
        ImageReference {
            digest: Some(digest),
            ..self.clone()
        }
    }

    /// The same image in another repository of the same registry.
    pub fn with_repository(&self, repository: &str) -> Result<Self, ReferenceError> {
        if let Some(bad) = repository.split('/').find(|c| !is_valid_path_component(c)) {
            return Err(ReferenceError::InvalidPathComponent(bad.to_owned()));
        }
        let length = self.registry.len() + 1 + repository.len();
        if length > NAME_MAXIMUM_LENGTH {
            return Err(ReferenceError::NameTooLong { length });
        }
        Ok(ImageReference {
            repository: repository.to_owned(),
            ..self.clone()
        })
    }
}

impl FromStr for ImageReference {
    type Err = ReferenceError;

    fn from_str(text: &str) -> Result<Self, Self::Err> {
        let text = text.strip_prefix("docker://").unwrap_or(text);
        if text.is_empty() {
            return Err(ReferenceError::Empty);
        }
        let (name_and_tag, digest) = match text.split_once('@') {
            Some((name, digest_text)) => {
                let digest =
                    digest_text
                        .parse()
                        .map_err(|source| ReferenceError::InvalidDigest {
                            text: digest_text.to_owned(),
                            source,
                        })?;
                (name, Some(digest))
            }
            None => (text, None),
        };
        // A tag follows the last `:` that comes after the last `/`.
        let last_slash = name_and_tag.rfind('/');
        let (name, tag) = match name_and_tag.rfind(':') {
            Some(colon) if last_slash.is_none_or(|slash| colon > slash) => (
                &name_and_tag[..colon],
                Some(name_and_tag[colon + 1..].to_owned()),
            ),
            _ => (name_and_tag, None),
        };
        if let Some(tag) = &tag
            && !is_valid_tag(tag)
        {
            return Err(ReferenceError::InvalidTag(tag.clone()));
        }
        let Some((first, rest)) = name.split_once('/') else {
            return Err(ReferenceError::MissingRegistry(text.to_owned()));
        };
        let looks_like_host = first.contains('.') || first.contains(':') || first == "localhost";
        if !looks_like_host {
            return Err(ReferenceError::MissingRegistry(text.to_owned()));
        }
        if !is_valid_host(first) {
            return Err(ReferenceError::InvalidHost(first.to_owned()));
        }
        if let Some((host, port)) = first.split_once(':')
            && !port.parse::<u16>().is_ok_and(|port| port > 0)
        {
            return Err(ReferenceError::InvalidPort {
                host: host.to_owned(),
                port: port.to_owned(),
            });
        }
        if rest.is_empty() {
            return Err(ReferenceError::MissingRepository);
        }
        if let Some(bad) = rest.split('/').find(|c| !is_valid_path_component(c)) {
            return Err(ReferenceError::InvalidPathComponent(bad.to_owned()));
        }
        if name.len() > NAME_MAXIMUM_LENGTH {
            return Err(ReferenceError::NameTooLong { length: name.len() });
        }
        Ok(ImageReference {
            registry: first.to_owned(),
            repository: rest.to_owned(),
            tag,
            digest,
        })
    }
}

impl fmt::Display for ImageReference {
    fn fmt(&self, formatter: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(formatter, "{}/{}", self.registry, self.repository)?;
        if let Some(tag) = &self.tag {
            write!(formatter, ":{tag}")?;
        }
        if let Some(digest) = &self.digest {
            write!(formatter, "@{digest}")?;
        }
        Ok(())
    }
}

/// Where an image comes from: a registry, or an OCI image layout on disk.
#[derive(Clone, Debug, PartialEq, Eq, PartialOrd, Ord, Hash)]
pub enum ImageSource {
    /// `docker://host/repository[:tag][@digest]` (the prefix is optional).
    Registry(ImageReference),
    /// `oci:///absolute/path` or `oci:path`: an OCI image layout.
    OciLayout { path: String },
}

impl FromStr for ImageSource {
    type Err = ReferenceError;

    fn from_str(text: &str) -> Result<Self, Self::Err> {
        if let Some(path) = text
            .strip_prefix("oci://")
            .or_else(|| text.strip_prefix("oci:"))
        {
            if path.is_empty() {
                return Err(ReferenceError::Empty);
            }
            return Ok(ImageSource::OciLayout {
                path: path.to_owned(),
            });
        }
        if let Some((transport, _)) = text.split_once("://")
            && transport != "docker"
        {
            return Err(ReferenceError::UnsupportedTransport(transport.to_owned()));
        }
        for transport in [
            "dir:",
            "docker-archive:",
            "oci-archive:",
            "containers-storage:",
        ] {
            if text.starts_with(transport) {
                return Err(ReferenceError::UnsupportedTransport(
                    transport.trim_end_matches(':').to_owned(),
                ));
            }
        }
        text.parse().map(ImageSource::Registry)
    }
}

impl fmt::Display for ImageSource {
    fn fmt(&self, formatter: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            ImageSource::Registry(reference) => write!(formatter, "docker://{reference}"),
            ImageSource::OciLayout { path } => write!(formatter, "oci://{path}"),
        }
    }
}

macro_rules! string_serde {
    ($type:ty, $name:literal, $description:literal) => {
        impl serde::Serialize for $type {
            fn serialize<S: serde::Serializer>(&self, serializer: S) -> Result<S::Ok, S::Error> {
                serializer.collect_str(self)
            }
        }

        impl<'de> serde::Deserialize<'de> for $type {
            fn deserialize<D: serde::Deserializer<'de>>(deserializer: D) -> Result<Self, D::Error> {
                let text = String::deserialize(deserializer)?;
                text.parse().map_err(serde::de::Error::custom)
            }
        }

        impl schemars::JsonSchema for $type {
            fn schema_name() -> String {
                $name.to_owned()
            }

            fn json_schema(_: &mut schemars::r#gen::SchemaGenerator) -> schemars::schema::Schema {
                schemars::schema::SchemaObject {
                    instance_type: Some(schemars::schema::InstanceType::String.into()),
                    metadata: Some(Box::new(schemars::schema::Metadata {
                        description: Some($description.to_owned()),
                        ..Default::default()
                    })),
                    ..Default::default()
                }
                .into()
            }
        }
    };
}

string_serde!(
    ImageReference,
    "ImageReference",
    "An image reference with an explicit registry host: host[:port]/path[:tag][@digest], optionally prefixed with docker://"
);
string_serde!(
    ImageSource,
    "ImageSource",
    "An image reference (docker://host/path[:tag][@digest], prefix optional) or an OCI layout (oci:///absolute/path)"
);

#[cfg(test)]
mod tests {
    use super::*;

    const HEX: &str = "6c3c624b58dbbcd3c0dd82b4c53f04194d1247c6eebdaab7c610cf7d66709b3b";

    #[test]
    fn parses_host_port_path_tag_digest() {
        let text = format!("registry.example.com:5000/team/app:v1.2@sha256:{HEX}");
        let reference: ImageReference = text.parse().unwrap();
        assert_eq!(reference.registry(), "registry.example.com:5000");
        assert_eq!(reference.repository(), "team/app");
        assert_eq!(reference.tag(), Some("v1.2"));
        assert_eq!(reference.digest().unwrap().hex(), HEX);
        assert_eq!(reference.to_string(), text);
    }

    #[test]
    fn strips_docker_transport() {
        let reference: ImageReference =
            "docker://quay.io/openshift-release-dev/ocp-release:4.16.1-x86_64"
                .parse()
                .unwrap();
        assert_eq!(reference.registry(), "quay.io");
        assert_eq!(reference.tag(), Some("4.16.1-x86_64"));
    }

    #[test]
    fn localhost_and_ports_are_hosts() {
        assert!("localhost/app".parse::<ImageReference>().is_ok());
        assert!("127.0.0.1:5000/app:1".parse::<ImageReference>().is_ok());
        let no_tag: ImageReference = "localhost:5000/app".parse().unwrap();
        assert_eq!(no_tag.tag(), None);
        assert_eq!(no_tag.registry(), "localhost:5000");
    }

    #[test]
    fn rejects_references_without_host() {
        assert!(matches!(
            "ubi8/ubi:latest".parse::<ImageReference>(),
            Err(ReferenceError::MissingRegistry(_))
        ));
        assert!(matches!(
            "busybox".parse::<ImageReference>(),
            Err(ReferenceError::MissingRegistry(_))
        ));
    }

    #[test]
    fn rejects_bad_components_tags_and_digests() {
        assert!(matches!(
            "quay.io/Team/app".parse::<ImageReference>(),
            Err(ReferenceError::InvalidPathComponent(_))
        ));
        assert!(matches!(
            "quay.io/team/app:-bad".parse::<ImageReference>(),
            Err(ReferenceError::InvalidTag(_))
        ));
        assert!(matches!(
            "quay.io/team/app@sha256:abc".parse::<ImageReference>(),
            Err(ReferenceError::InvalidDigest { .. })
        ));
        assert!(matches!(
            "quay.io/".parse::<ImageReference>(),
            Err(ReferenceError::MissingRepository)
        ));
    }

    #[test]
    fn ports_above_65535_are_refused() {
        assert!(
            "registry.example.com:65535/app"
                .parse::<ImageReference>()
                .is_ok()
        );
        assert_eq!(
            "registry.example.com:65536/app:1".parse::<ImageReference>(),
            Err(ReferenceError::InvalidPort {
                host: "registry.example.com".to_owned(),
                port: "65536".to_owned()
            })
        );
        assert!(matches!(
            "127.0.0.1:99999999999999999999/app".parse::<ImageReference>(),
            Err(ReferenceError::InvalidPort { .. })
        ));
        assert!(matches!(
            "localhost:0/app".parse::<ImageReference>(),
            Err(ReferenceError::InvalidPort { .. })
        ));
    }

    #[test]
    fn names_over_255_characters_are_refused() {
        // `quay.io/` is 8 characters: a path of 247 makes 255.
        let fits = format!("quay.io/{}", "a".repeat(247));
        assert!(fits.parse::<ImageReference>().is_ok());
        let long = format!("quay.io/{}:v1", "a".repeat(248));
        assert_eq!(
            long.parse::<ImageReference>(),
            Err(ReferenceError::NameTooLong { length: 256 })
        );
    }

    #[test]
    fn sources_know_their_transport() {
        assert_eq!(
            "oci:///tmp/catalog".parse::<ImageSource>().unwrap(),
            ImageSource::OciLayout {
                path: "/tmp/catalog".to_owned()
            }
        );
        assert!(matches!(
            "docker://quay.io/a/b:1".parse::<ImageSource>().unwrap(),
            ImageSource::Registry(_)
        ));
        assert!(matches!(
            "dir:/tmp/x".parse::<ImageSource>(),
            Err(ReferenceError::UnsupportedTransport(_))
        ));
    }

    /// Every string up to `length` characters over `alphabet`.
    fn every_string(alphabet: &[char], length: usize) -> Vec<String> {
        let mut all = vec![String::new()];
        let mut previous = vec![String::new()];
        for _ in 0..length {
            let next: Vec<String> = previous
                .iter()
                .flat_map(|prefix| alphabet.iter().map(move |c| format!("{prefix}{c}")))
                .collect();
            all.extend(next.iter().cloned());
            previous = next;
        }
        all
    }

    #[test]
    fn hand_written_grammars_match_the_docker_regexes() {
        let component = regex::Regex::new(r"^[a-z0-9]+(?:(?:[._]|__|-+)[a-z0-9]+)*$").unwrap();
        let host = regex::Regex::new(r"^(?:[a-zA-Z0-9]|[a-zA-Z0-9][a-zA-Z0-9-]*[a-zA-Z0-9])(?:\.(?:[a-zA-Z0-9]|[a-zA-Z0-9][a-zA-Z0-9-]*[a-zA-Z0-9]))*(?::[0-9]+)?$").unwrap();
        let tag = regex::Regex::new(r"^[A-Za-z0-9_][A-Za-z0-9_.-]{0,127}$").unwrap();
        for text in every_string(&['a', 'Z', '0', '.', '_', '-', ':', 'é', '/'], 5) {
            assert_eq!(
                is_valid_path_component(&text),
                component.is_match(&text),
                "{text:?}"
            );
            assert_eq!(is_valid_host(&text), host.is_match(&text), "{text:?}");
            assert_eq!(is_valid_tag(&text), tag.is_match(&text), "{text:?}");
        }
        for length in [127, 128, 129] {
            let text = "v".repeat(length);
            assert_eq!(is_valid_tag(&text), tag.is_match(&text), "{length}");
        }
        assert!(!is_valid_tag("väter"));
        assert!(is_valid_host("registry.example.com:5000"));
        assert!(!is_valid_host("registry.example.com:"));
        assert!(!is_valid_host("-registry.example.com"));
    }

    #[test]
    fn repository_paths_follow_oc_mirror() {
        assert!(is_valid_repository_path("ns/bar"));
        assert!(is_valid_repository_path("a__b/c-d.e"));
        assert!(!is_valid_repository_path("test:v1.3"));
        assert!(!is_valid_repository_path("Upper/case"));
        assert!(!is_valid_repository_path(""));
    }
}
