//! Manifests read through oci-spec's types, in one place: an index (an OCI
//! image index or a Docker manifest list) or an image manifest (OCI, or
//! Docker schema 2), told apart by whether the document lists `manifests`
//! (a media type is not always known when a manifest is read). Built
//! images are written through the same types (`workflow/built.rs`).
//! oci-spec requires what the OCI specification requires (a `mediaType`
//! in every descriptor): a document without one is refused here.

use ferry_schemas::Digest;
use ferry_schemas::digest::DigestAlgorithm;
use oci_spec::image::{Descriptor, ImageIndex, ImageManifest};
use serde::Deserialize;

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
}
