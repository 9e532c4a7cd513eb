//! Manifests, indexes and image configs read through oci-spec's types, in
//! one place: an index (an OCI image index or a Docker manifest list) or
//! an image manifest (OCI, or Docker schema 2), told apart by whether the
//! document lists `manifests` (a media type is not always known when a
//! manifest is read), the `linux/amd64` image of an index, and an image
//! config (OCI, or Docker's, which is a superset). Built images are
//! written through the same types (`workflow/built.rs`). Every reader of
//! these documents comes here: the resolver's `describe`, `layer_files.rs`,
//! the graph image's base and the catalog rebuild.
//!
//! oci-spec requires what the OCI specification requires, a `mediaType` in
//! every descriptor, and a document without one is refused here on
//! purpose: an OCI layout's descriptors always carry one, and so do Docker
//! schema 2 manifests and manifest lists from registries (schema 1, which
//! has none, ferry does not read). The one leniency is an image config's
//! `history`: the OCI specification makes it optional, oci-spec 0.7
//! requires it, so a config without one is read as having none.
//!
//! One narrower reader sits beside them for speed: `plain_image_blobs`
//! reads an image manifest that holds nothing but its config and layers
//! (as a resolver or a `--trust-state` plan describes 10,000 of them) to
//! the same result oci-spec gives (a test compares the two), and leaves
//! every other document to oci-spec.

use ferry_schemas::Digest;
use ferry_schemas::digest::DigestAlgorithm;
use oci_spec::image::{Descriptor, ImageConfiguration, ImageIndex, ImageManifest};
use serde::Deserialize;
use serde_json::{Map, Value};

const INDEX: &str = "application/vnd.oci.image.index.v1+json";
const MANIFEST_LIST: &str = "application/vnd.docker.distribution.manifest.list.v2+json";
const IMAGE_MANIFEST: &str = "application/vnd.oci.image.manifest.v1+json";
const DOCKER_MANIFEST: &str = "application/vnd.docker.distribution.manifest.v2+json";

/// What a manifest document holds.
#[derive(Clone, Debug)]
pub enum ManifestContent {
    Index(Box<ImageIndex>),
    Image(Box<ImageManifest>),
}

impl ManifestContent {
    /// Reads `bytes` as an index or an image manifest; the error says which
    /// it was read as and why it is not one. `media_type` (empty when not
    /// known) spares a first pass that looks for `manifests`.
    pub fn parse(bytes: &[u8], media_type: &str) -> Result<Self, String> {
        /// Only whether the document lists manifests.
        #[derive(Deserialize)]
        struct Shape {
            manifests: Option<serde::de::IgnoredAny>,
        }
        // A document its media type names is read as that first; one that
        // does not read so (a media type that lies) is told by its shape.
        let named = match media_type {
            INDEX | MANIFEST_LIST => Some(true),
            IMAGE_MANIFEST | DOCKER_MANIFEST => Some(false),
            _ => None,
        };
        if let Some(index) = named
            && let Ok(content) = ManifestContent::read(bytes, index)
        {
            return Ok(content);
        }
        let shape: Shape =
            serde_json::from_slice(bytes).map_err(|error| format!("is not JSON: {error}"))?;
        ManifestContent::read(bytes, shape.manifests.is_some())
    }

    fn read(bytes: &[u8], index: bool) -> Result<Self, String> {
        if index {
            serde_json::from_slice(bytes)
                .map(|index| ManifestContent::Index(Box::new(index)))
                .map_err(|error| format!("is not an image index: {error}"))
        } else {
            serde_json::from_slice(bytes)
                .map(|image| ManifestContent::Image(Box::new(image)))
                .map_err(|error| format!("is not an image manifest: {error}"))
        }
    }
}

/// The `linux/amd64` descriptor of an index, else its first: a
/// multi-architecture catalog or payload holds the same content for each.
pub fn amd64_or_first(index: &ImageIndex) -> Option<&Descriptor> {
    let manifests = index.manifests();
    manifests
        .iter()
        .find(|descriptor| {
            descriptor.platform().as_ref().is_some_and(|platform| {
                platform.os().to_string() == "linux"
                    && platform.architecture().to_string() == "amd64"
            })
        })
        .or_else(|| manifests.first())
}

/// An image config: what ferry reads from it, through oci-spec's type, and
/// the document as written.
#[derive(Clone, Debug)]
pub struct ImageConfig {
    pub typed: ImageConfiguration,
    /// The config's fields in their order, for a config rebuilt from this
    /// one (a catalog's, the graph image's). oci-spec's type keeps only
    /// the fields the OCI specification names (a Docker config's
    /// `container_config` or `docker_version` would be lost) and writes
    /// them in its own order, so a config written from it would have
    /// another digest than the one written from the original's fields,
    /// and the built image's digest would change with it.
    pub document: Map<String, Value>,
}

impl ImageConfig {
    /// Reads `bytes` as an image config; the error says why it is not one.
    pub fn parse(bytes: &[u8]) -> Result<Self, String> {
        let document: Map<String, Value> = serde_json::from_slice(bytes)
            .map_err(|error| format!("is not a JSON object: {error}"))?;
        let mut for_typed = document.clone();
        // The OCI specification makes `history` optional; oci-spec 0.7
        // requires it.
        for_typed
            .entry("history")
            .or_insert_with(|| Value::Array(Vec::new()));
        let typed = serde_json::from_value(Value::Object(for_typed))
            .map_err(|error| format!("is not an image config: {error}"))?;
        Ok(ImageConfig { typed, document })
    }

    /// The value of the config label `name`.
    pub fn label(&self, name: &str) -> Option<&str> {
        self.typed
            .config()
            .as_ref()?
            .labels()
            .as_ref()?
            .get(name)
            .map(String::as_str)
    }
}

/// The config and layers (digest and size) of a plain image manifest,
/// read without oci-spec's types; `None` for anything else, which is then
/// read through them ([`ManifestContent::parse`]).
///
/// Plain means: only `schemaVersion`, `mediaType`, `config` and `layers`,
/// each descriptor only `mediaType`, `digest` (a digest ferry reads, so
/// one oci-spec reads too) and `size`, no string with an escape. Every
/// such document reads through oci-spec as an image manifest with the
/// same descriptors, whatever its media type names (it has no `manifests`,
/// so it is not an index), so the result is the same; the point is the
/// cost: a resolver or a `--trust-state` plan describes 10,000 manifests,
/// and oci-spec's descriptors cost several times more to read.
pub fn plain_image_blobs(bytes: &[u8], media_type: &str) -> Option<Vec<(Digest, u64)>> {
    #[derive(Deserialize)]
    #[serde(deny_unknown_fields, rename_all = "camelCase")]
    struct PlainImage<'a> {
        #[serde(rename = "schemaVersion")]
        _schema_version: u32,
        #[serde(borrow, default, rename = "mediaType")]
        _media_type: Option<&'a str>,
        #[serde(borrow)]
        config: PlainDescriptor<'a>,
        #[serde(borrow)]
        layers: Vec<PlainDescriptor<'a>>,
    }
    #[derive(Deserialize)]
    #[serde(deny_unknown_fields, rename_all = "camelCase")]
    struct PlainDescriptor<'a> {
        #[serde(borrow, rename = "mediaType")]
        _media_type: &'a str,
        #[serde(borrow)]
        digest: &'a str,
        size: u64,
    }
    if matches!(media_type, INDEX | MANIFEST_LIST) {
        return None;
    }
    let image: PlainImage<'_> = serde_json::from_slice(bytes).ok()?;
    std::iter::once(&image.config)
        .chain(&image.layers)
        .map(|descriptor| Some((descriptor.digest.parse().ok()?, descriptor.size)))
        .collect()
}

/// A descriptor's digest as ferry's type.
pub fn descriptor_digest(descriptor: &Descriptor) -> Result<Digest, String> {
    let digest = descriptor.digest();
    // The usual algorithms are taken from their parts (no text formatted
    // and split again: 20,000 descriptors in a 10,000-image plan); anything
    // else, or a hash ferry refuses, goes through the text to say why.
    let algorithm = match digest.algorithm() {
        oci_spec::image::DigestAlgorithm::Sha256 => Some(DigestAlgorithm::Sha256),
        oci_spec::image::DigestAlgorithm::Sha512 => Some(DigestAlgorithm::Sha512),
        _ => None,
    };
    if let Some(algorithm) = algorithm
        && let Ok(digest) = Digest::new(algorithm, digest.digest())
    {
        return Ok(digest);
    }
    let text = digest.to_string();
    text.parse()
        .map_err(|error| format!("descriptor digest {text:?}: {error}"))
}

#[cfg(test)]
mod tests {
    use super::*;

    const LAYER: &str = "sha256:1111111111111111111111111111111111111111111111111111111111111111";
    const CONFIG: &str = "sha256:2222222222222222222222222222222222222222222222222222222222222222";

    fn index_bytes() -> String {
        format!(
            r#"{{"schemaVersion":2,"mediaType":"application/vnd.docker.distribution.manifest.list.v2+json",
            "manifests":[{{"mediaType":"application/vnd.docker.distribution.manifest.v2+json","digest":"{LAYER}","size":3,
            "platform":{{"os":"linux","architecture":"amd64"}}}}]}}"#
        )
    }

    #[test]
    fn docker_and_oci_documents_are_read_and_told_apart() {
        let image = format!(
            r#"{{"schemaVersion":2,"mediaType":"application/vnd.docker.distribution.manifest.v2+json",
            "config":{{"mediaType":"application/vnd.docker.container.image.v1+json","digest":"{CONFIG}","size":7}},
            "layers":[{{"mediaType":"application/vnd.docker.image.rootfs.diff.tar.gzip","digest":"{LAYER}","size":9}}]}}"#
        );
        let ManifestContent::Image(read) = ManifestContent::parse(image.as_bytes(), "").unwrap()
        else {
            panic!("an image manifest read as an index");
        };
        assert_eq!(
            descriptor_digest(read.config()).unwrap().to_string(),
            CONFIG
        );
        assert_eq!(read.layers()[0].size(), 9);

        let ManifestContent::Index(read) =
            ManifestContent::parse(index_bytes().as_bytes(), MANIFEST_LIST).unwrap()
        else {
            panic!("an index read as an image manifest");
        };
        assert_eq!(read.manifests().len(), 1);
    }

    /// The blobs as oci-spec reads them.
    fn blobs_through_oci_spec(bytes: &[u8], media_type: &str) -> Vec<(Digest, u64)> {
        let ManifestContent::Image(image) = ManifestContent::parse(bytes, media_type).unwrap()
        else {
            panic!("not an image manifest");
        };
        std::iter::once(image.config())
            .chain(image.layers())
            .map(|descriptor| (descriptor_digest(descriptor).unwrap(), descriptor.size()))
            .collect()
    }

    #[test]
    fn a_plain_image_manifest_reads_as_oci_spec_reads_it_and_anything_else_is_left_to_it() {
        let plain = format!(
            r#"{{"schemaVersion":2,"mediaType":"application/vnd.oci.image.manifest.v1+json",
            "config":{{"mediaType":"application/vnd.oci.image.config.v1+json","digest":"{CONFIG}","size":7}},
            "layers":[{{"mediaType":"application/vnd.oci.image.layer.v1.tar+gzip","digest":"{LAYER}","size":9}},
            {{"mediaType":"application/vnd.oci.image.layer.v1.tar+gzip","digest":"{CONFIG}","size":11}}]}}"#
        );
        for media_type in [IMAGE_MANIFEST, DOCKER_MANIFEST, "", "text/plain"] {
            let fast = plain_image_blobs(plain.as_bytes(), media_type).unwrap();
            assert_eq!(fast, blobs_through_oci_spec(plain.as_bytes(), media_type));
            assert_eq!(fast.len(), 3);
            assert_eq!(fast[2].1, 11);
        }
        let no_media_type = plain.replacen(
            r#""mediaType":"application/vnd.oci.image.manifest.v1+json","#,
            "",
            1,
        );
        assert_eq!(
            plain_image_blobs(no_media_type.as_bytes(), "").unwrap(),
            blobs_through_oci_spec(no_media_type.as_bytes(), "")
        );
        // Left to oci-spec: a media type naming an index, another field,
        // an escaped string, a digest ferry does not read, not JSON, an
        // index.
        let annotated = plain.replacen(
            r#""schemaVersion":2,"#,
            r#""schemaVersion":2,"annotations":{"a":"b"},"#,
            1,
        );
        let escaped = plain.replacen("tar+gzip", r"tar\u002bgzip", 1);
        let sha384 = plain.replacen(CONFIG, &format!("sha384:{}", "3".repeat(96)), 1);
        for (bytes, media_type) in [
            (plain.as_str(), INDEX),
            (plain.as_str(), MANIFEST_LIST),
            (annotated.as_str(), IMAGE_MANIFEST),
            (escaped.as_str(), IMAGE_MANIFEST),
            (sha384.as_str(), IMAGE_MANIFEST),
            ("{", IMAGE_MANIFEST),
            (index_bytes().as_str(), ""),
        ] {
            assert_eq!(
                plain_image_blobs(bytes.as_bytes(), media_type),
                None,
                "{bytes}"
            );
        }
        // oci-spec reads the annotated one (the caller falls back to it).
        assert_eq!(
            blobs_through_oci_spec(annotated.as_bytes(), IMAGE_MANIFEST),
            blobs_through_oci_spec(plain.as_bytes(), IMAGE_MANIFEST)
        );
    }

    #[test]
    fn a_lying_media_type_and_what_is_neither_are_told() {
        // A media type that lies: the document's shape decides.
        let lied = ManifestContent::parse(index_bytes().as_bytes(), IMAGE_MANIFEST).unwrap();
        assert!(matches!(lied, ManifestContent::Index(_)));
        let error = ManifestContent::parse(b"{", "").unwrap_err();
        assert!(error.starts_with("is not JSON"), "{error}");
        let error = ManifestContent::parse(br#"{"schemaVersion":2,"layers":[]}"#, "").unwrap_err();
        assert!(error.starts_with("is not an image manifest"), "{error}");
        let error =
            ManifestContent::parse(br#"{"schemaVersion":2,"manifests":[{"digest":"x"}]}"#, "")
                .unwrap_err();
        assert!(error.starts_with("is not an image index"), "{error}");
    }

    #[test]
    fn a_docker_config_is_read_whole_without_history_and_with_nulls() {
        // As Docker writes them: null settings, fields the OCI spec does
        // not name, and (from some builders) no history.
        let bytes = br#"{"architecture":"amd64","os":"linux","docker_version":"20.10",
            "config":{"Env":null,"Cmd":["serve"],"Labels":{"a.label":"/configs"},"ExposedPorts":{"50051/tcp":{}},"Volumes":null},
            "container_config":{"Cmd":["/bin/sh"]},
            "rootfs":{"type":"layers","diff_ids":["sha256:aa"]}}"#;
        let config = ImageConfig::parse(bytes).unwrap();
        assert_eq!(config.label("a.label"), Some("/configs"));
        assert_eq!(config.label("other"), None);
        assert_eq!(config.typed.rootfs().diff_ids(), &["sha256:aa".to_owned()]);
        assert!(config.typed.history().is_empty());
        // The document keeps every field in its order, and no history is
        // added to it.
        let fields: Vec<&str> = config.document.keys().map(String::as_str).collect();
        assert_eq!(
            fields,
            [
                "architecture",
                "os",
                "docker_version",
                "config",
                "container_config",
                "rootfs"
            ]
        );

        let error = ImageConfig::parse(br#"{"architecture":"amd64"}"#).unwrap_err();
        assert!(error.starts_with("is not an image config"), "{error}");
        let error = ImageConfig::parse(b"[]").unwrap_err();
        assert!(error.starts_with("is not a JSON object"), "{error}");
    }
}
