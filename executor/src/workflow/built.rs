//! Built images: images ferry makes itself (a rebuilt operator catalog,
//! the update-graph image) rather than copies. Their new blobs are stored in
//! the content cache as they are made; the image then travels the pipeline
//! like a copied one, with typed sources: the new blobs are read from the
//! cache, base layers from the registry repository they came from.
//!
//! Manifests are written through oci-spec's types, so the bytes are an OCI
//! image manifest as the specification defines it, and the same inputs give
//! the same bytes (the same digest).

use std::collections::BTreeMap;

use bytes::Bytes;
use ferry_planner::{Category, ResolvedImage, ResolvedManifest, Source};
use ferry_registry::Manifest;
use ferry_schemas::Digest;
use ferry_schemas::DigestAlgorithm;
use ferry_store::{BlobStore, digest_of};
use oci_spec::image::{
    DescriptorBuilder, ImageIndexBuilder, ImageManifestBuilder, MediaType, Platform,
};

use crate::resolve::Resolution;
use crate::workflow::error::{Result, WorkflowError};

/// A blob of a built image: where it is read, and its descriptor.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct BuiltBlob {
    pub digest: Digest,
    pub size: u64,
    pub media_type: String,
    /// The cache for a blob ferry made; a registry repository for a base
    /// layer taken from the image it rebuilds.
    pub source: Source,
}

/// An image ferry built: one image manifest, or an index over one built
/// image per platform (a rebuilt multi-architecture catalog).
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct BuiltImage {
    /// The name it is listed under (plans, errors, cluster resources).
    pub name: String,
    pub destination_repository: String,
    pub destination_tag: String,
    pub category: Category,
    /// Its manifest (an image manifest or an index), exact bytes.
    pub manifest: Manifest,
    /// The config of an image manifest; `None` for an index.
    pub config: Option<BuiltBlob>,
    /// The layers of an image manifest; empty for an index.
    pub layers: Vec<BuiltBlob>,
    /// The images an index lists, in its order; empty for an image.
    pub platforms: Vec<BuiltImage>,
}

/// Stores `bytes` in the cache (verified, as every cache write is) and
/// describes them as a blob read from the cache.
pub fn store_blob(cache: &BlobStore, bytes: &[u8], media_type: &str) -> Result<BuiltBlob> {
    let digest = digest_of(DigestAlgorithm::Sha256, bytes);
    cache
        .write(&digest, Some(bytes.len() as u64), bytes)
        .map_err(|cause| {
            WorkflowError::environment(format!(
                "cannot store built blob {digest} in the cache {}: {cause}",
                cache.root().display()
            ))
        })?;
    Ok(BuiltBlob {
        digest,
        size: bytes.len() as u64,
        media_type: media_type.to_owned(),
        source: Source::Cache,
    })
}

fn descriptor(blob: &BuiltBlob) -> Result<oci_spec::image::Descriptor> {
    let digest: oci_spec::image::Digest = blob
        .digest
        .to_string()
        .parse()
        .map_err(|cause| WorkflowError::internal(format!("digest {}: {cause}", blob.digest)))?;
    DescriptorBuilder::default()
        .media_type(MediaType::from(blob.media_type.as_str()))
        .digest(digest)
        .size(blob.size)
        .build()
        .map_err(|cause| WorkflowError::internal(format!("descriptor of {}: {cause}", blob.digest)))
}

impl BuiltImage {
    /// An OCI image over `config` and `layers`, with its manifest written.
    pub fn new(
        name: &str,
        destination_repository: &str,
        destination_tag: &str,
        category: Category,
        config: BuiltBlob,
        layers: Vec<BuiltBlob>,
    ) -> Result<BuiltImage> {
        let manifest = ImageManifestBuilder::default()
            .schema_version(2u32)
            .media_type(MediaType::ImageManifest)
            .config(descriptor(&config)?)
            .layers(layers.iter().map(descriptor).collect::<Result<Vec<_>>>()?)
            .build()
            .map_err(|cause| WorkflowError::internal(format!("manifest of {name}: {cause}")))?;
        let bytes = serde_json::to_vec(&manifest)
            .map_err(|cause| WorkflowError::internal(format!("manifest of {name}: {cause}")))?;
        Ok(BuiltImage {
            name: name.to_owned(),
            destination_repository: destination_repository.to_owned(),
            destination_tag: destination_tag.to_owned(),
            category,
            manifest: Manifest {
                media_type: MediaType::ImageManifest.to_string(),
                digest: digest_of(DigestAlgorithm::Sha256, &bytes),
                bytes: Bytes::from(bytes),
            },
            config: Some(config),
            layers,
            platforms: Vec::new(),
        })
    }

    /// An OCI index over `platforms` (each built image with the platform
    /// its descriptor names), with its manifest written.
    pub fn index(
        name: &str,
        destination_repository: &str,
        destination_tag: &str,
        category: Category,
        platforms: Vec<(BuiltImage, Option<Platform>)>,
    ) -> Result<BuiltImage> {
        let descriptors = platforms
            .iter()
            .map(|(image, platform)| {
                let digest: oci_spec::image::Digest =
                    image.manifest.digest.to_string().parse().map_err(|cause| {
                        WorkflowError::internal(format!(
                            "digest {}: {cause}",
                            image.manifest.digest
                        ))
                    })?;
                let mut builder = DescriptorBuilder::default()
                    .media_type(MediaType::from(image.manifest.media_type.as_str()))
                    .digest(digest)
                    .size(image.manifest.bytes.len() as u64);
                if let Some(platform) = platform {
                    builder = builder.platform(platform.clone());
                }
                builder.build().map_err(|cause| {
                    WorkflowError::internal(format!("descriptor of {}: {cause}", image.name))
                })
            })
            .collect::<Result<Vec<_>>>()?;
        let index = ImageIndexBuilder::default()
            .schema_version(2u32)
            .media_type(MediaType::ImageIndex)
            .manifests(descriptors)
            .build()
            .map_err(|cause| WorkflowError::internal(format!("index of {name}: {cause}")))?;
        let bytes = serde_json::to_vec(&index)
            .map_err(|cause| WorkflowError::internal(format!("index of {name}: {cause}")))?;
        Ok(BuiltImage {
            name: name.to_owned(),
            destination_repository: destination_repository.to_owned(),
            destination_tag: destination_tag.to_owned(),
            category,
            manifest: Manifest {
                media_type: MediaType::ImageIndex.to_string(),
                digest: digest_of(DigestAlgorithm::Sha256, &bytes),
                bytes: Bytes::from(bytes),
            },
            config: None,
            layers: Vec::new(),
            platforms: platforms.into_iter().map(|(image, _)| image).collect(),
        })
    }

    /// This manifest's blobs (config first); none for an index.
    fn own_blobs(&self) -> Vec<&BuiltBlob> {
        self.config.iter().chain(&self.layers).collect()
    }

    /// Every manifest of the tree, top first, with its exact bytes.
    pub fn manifests(&self) -> Vec<&Manifest> {
        std::iter::once(&self.manifest)
            .chain(self.platforms.iter().flat_map(BuiltImage::manifests))
            .collect()
    }

    fn resolved_manifests(&self, into: &mut Vec<ResolvedManifest>) {
        into.push(ResolvedManifest {
            digest: self.manifest.digest.clone(),
            media_type: self.manifest.media_type.clone(),
            size: self.manifest.bytes.len() as u64,
            children: self
                .platforms
                .iter()
                .map(|platform| platform.manifest.digest.clone())
                .collect(),
            blobs: self
                .own_blobs()
                .iter()
                .map(|blob| (blob.digest.clone(), blob.size))
                .collect(),
        });
        for platform in &self.platforms {
            platform.resolved_manifests(into);
        }
    }

    fn blob_sources(&self, into: &mut BTreeMap<Digest, Source>) {
        for blob in self.own_blobs() {
            if blob.source != Source::Cache {
                into.insert(blob.digest.clone(), blob.source.clone());
            }
        }
        for platform in &self.platforms {
            platform.blob_sources(into);
        }
    }

    /// The image as the planner takes it: its manifests from the cache,
    /// each blob from its own source.
    pub fn resolved(&self) -> ResolvedImage {
        let mut blob_sources = BTreeMap::new();
        self.blob_sources(&mut blob_sources);
        let mut manifests = Vec::new();
        self.resolved_manifests(&mut manifests);
        ResolvedImage {
            name: self.name.clone(),
            source: Source::Cache,
            blob_sources,
            destination_repository: self.destination_repository.clone(),
            destination_tag: Some(self.destination_tag.clone()),
            top: self.manifest.digest.clone(),
            manifests,
            category: self.category,
            signature_of: None,
        }
    }
}

/// Adds `built` images to a resolution, after the copied ones.
pub fn add_to_resolution(resolution: &mut Resolution, built: &[BuiltImage]) {
    for image in built {
        resolution.images.push(image.resolved());
        for manifest in image.manifests() {
            resolution
                .manifests
                .insert(manifest.digest.clone(), manifest.clone());
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_same_inputs_build_the_same_manifest_and_base_layers_keep_their_source() {
        let folder = tempfile::tempdir().unwrap();
        let cache = BlobStore::open(folder.path()).unwrap();
        let build = || {
            let config = store_blob(
                &cache,
                br#"{"architecture":"amd64","os":"linux","rootfs":{"type":"layers","diff_ids":[]}}"#,
                "application/vnd.oci.image.config.v1+json",
            )
            .unwrap();
            let new_layer = store_blob(
                &cache,
                b"a layer ferry made",
                "application/vnd.oci.image.layer.v1.tar",
            )
            .unwrap();
            let base = BuiltBlob {
                digest: digest_of(DigestAlgorithm::Sha256, b"base"),
                size: 4,
                media_type: "application/vnd.oci.image.layer.v1.tar+gzip".to_owned(),
                source: Source::Registry("quay.io/team/catalog".to_owned()),
            };
            BuiltImage::new(
                "quay.io/team/catalog:v1",
                "mirror/team/catalog",
                "v1",
                Category::Operator,
                config,
                vec![base, new_layer],
            )
            .unwrap()
        };
        let first = build();
        let second = build();
        assert_eq!(first.manifest, second.manifest, "same inputs, same bytes");
        assert!(cache.contains(&first.layers[1].digest));
        let crate::oci_manifest::ManifestContent::Image(manifest) =
            crate::oci_manifest::ManifestContent::parse(
                &first.manifest.bytes,
                &first.manifest.media_type,
            )
            .unwrap()
        else {
            panic!("a built image's manifest read as an index");
        };
        assert_eq!(manifest.schema_version(), 2);
        assert_eq!(manifest.layers().len(), 2);
        let resolved = first.resolved();
        assert_eq!(resolved.source, Source::Cache);
        assert_eq!(
            resolved.blob_source(&first.layers[0].digest),
            &Source::Registry("quay.io/team/catalog".to_owned())
        );
        assert_eq!(
            resolved.blob_source(&first.layers[1].digest),
            &Source::Cache
        );
        assert_eq!(resolved.top, first.manifest.digest);
    }
}
