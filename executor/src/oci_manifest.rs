//! Manifests read through oci-spec's types, in one place: an index (an OCI
//! image index or a Docker manifest list) or an image manifest (OCI, or
//! Docker schema 2), told apart by whether the document lists `manifests`
//! (a media type is not always known when a manifest is read). Built
//! images are written through the same types (`workflow/built.rs`).
//! oci-spec requires what the OCI specification requires (a `mediaType`
//! in every descriptor): a document without one is refused here.

use ferry_schemas::Digest;
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

/// A descriptor's digest as ferry's type.
pub fn descriptor_digest(descriptor: &Descriptor) -> Result<Digest, String> {
    let text = descriptor.digest().to_string();
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
