//! What a release payload's `release-manifests/` names (notes §5.4): the
//! component images of `image-references` (an ImageStream: JSON in real
//! payloads, YAML in the cluster-version-operator's test data, so it is read
//! as YAML, which accepts both), the `release-metadata` document
//! (`cincinnati-metadata-v0`), and the KubeVirt container disk named by the
//! `coreos-bootimages` ConfigMap. Callers hand in the files' bytes.

use std::collections::BTreeMap;

use ferry_schemas::ImageReference;
use ferry_schemas::config::Architecture;
use serde::Deserialize;

/// The payload file that lists the components.
pub const IMAGE_REFERENCES: &str = "release-manifests/image-references";
/// The payload file with the release's own version and predecessors.
pub const RELEASE_METADATA: &str = "release-manifests/release-metadata";
/// The payload file with the boot images (KubeVirt container disk).
pub const BOOT_IMAGES: &str = "release-manifests/0000_50_installer_coreos-bootimages.yaml";
/// The component name oc-mirror gives the KubeVirt container disk.
pub const KUBE_VIRT_CONTAINER: &str = "kube-virt-container";

/// One component image of a release.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Component {
    /// The ImageStream tag's name, e.g. `cluster-version-operator`.
    pub name: String,
    pub image: ImageReference,
}

/// The parsed `image-references`.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct ImageReferences {
    /// `metadata.name`: the release version as the payload names it.
    pub name: String,
    /// In the file's order.
    pub components: Vec<Component>,
}

/// The parsed `release-metadata`.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct ReleaseMetadata {
    pub version: semver::Version,
    /// Versions that update to this one.
    pub previous: Vec<semver::Version>,
    /// Free-form metadata (`url`, `description`, ...), as strings.
    pub metadata: BTreeMap<String, String>,
}

/// Why a payload file cannot be used.
#[derive(Clone, Debug, PartialEq, Eq, thiserror::Error)]
pub enum PayloadError {
    #[error("{file}: not valid YAML or JSON of the expected shape: {reason}")]
    Syntax { file: &'static str, reason: String },
    #[error("{file}: kind is `{found}`, expected `{expected}`")]
    WrongKind {
        file: &'static str,
        found: String,
        expected: &'static str,
    },
    #[error("{file}: tag {index} (`{name}`) has no `from.name`")]
    MissingImage {
        file: &'static str,
        index: usize,
        name: String,
    },
    #[error("{file}: tag `{name}` names `{image}`, which is not an image reference: {reason}")]
    InvalidImage {
        file: &'static str,
        name: String,
        image: String,
        reason: String,
    },
    #[error("{file}: `{field}` value `{value}` is not a semantic version: {reason}")]
    InvalidVersion {
        file: &'static str,
        field: &'static str,
        value: String,
        reason: String,
    },
    #[error("{BOOT_IMAGES}: could not find the kubevirt image for {architecture} in this release")]
    NoKubeVirtImage { architecture: String },
}

#[derive(Deserialize)]
struct ImageStreamDocument {
    kind: String,
    #[serde(default)]
    metadata: MetadataDocument,
    #[serde(default)]
    spec: Option<ImageStreamSpec>,
}

#[derive(Default, Deserialize)]
struct MetadataDocument {
    #[serde(default)]
    name: String,
}

#[derive(Deserialize)]
struct ImageStreamSpec {
    #[serde(default)]
    tags: Vec<TagDocument>,
}

#[derive(Deserialize)]
struct TagDocument {
    name: String,
    #[serde(default)]
    from: Option<FromDocument>,
}

#[derive(Deserialize)]
struct FromDocument {
    #[serde(default)]
    name: Option<String>,
}

fn syntax(file: &'static str) -> impl Fn(serde_yaml::Error) -> PayloadError {
    move |error| PayloadError::Syntax {
        file,
        reason: error.to_string(),
    }
}

/// Parses `release-manifests/image-references`. A stream without `spec`
/// (the cluster-version-operator's minimal test file) has no components.
pub fn parse_image_references(bytes: &[u8]) -> Result<ImageReferences, PayloadError> {
    let document: ImageStreamDocument =
        serde_yaml::from_slice(bytes).map_err(syntax(IMAGE_REFERENCES))?;
    if document.kind != "ImageStream" {
        return Err(PayloadError::WrongKind {
            file: IMAGE_REFERENCES,
            found: document.kind,
            expected: "ImageStream",
        });
    }
    let tags = document.spec.map(|spec| spec.tags).unwrap_or_default();
    let mut components = Vec::with_capacity(tags.len());
    for (index, tag) in tags.into_iter().enumerate() {
        let Some(image) = tag.from.and_then(|from| from.name) else {
            return Err(PayloadError::MissingImage {
                file: IMAGE_REFERENCES,
                index,
                name: tag.name,
            });
        };
        let reference =
            image
                .parse::<ImageReference>()
                .map_err(|error| PayloadError::InvalidImage {
                    file: IMAGE_REFERENCES,
                    name: tag.name.clone(),
                    image: image.clone(),
                    reason: error.to_string(),
                })?;
        components.push(Component {
            name: tag.name,
            image: reference,
        });
    }
    Ok(ImageReferences {
        name: document.metadata.name,
        components,
    })
}

#[derive(Deserialize)]
struct ReleaseMetadataDocument {
    kind: String,
    version: String,
    #[serde(default)]
    previous: Vec<String>,
    #[serde(default)]
    metadata: BTreeMap<String, serde_yaml::Value>,
}

/// Parses `release-manifests/release-metadata` (`cincinnati-metadata-v0`).
pub fn parse_release_metadata(bytes: &[u8]) -> Result<ReleaseMetadata, PayloadError> {
    const KIND: &str = "cincinnati-metadata-v0";
    let document: ReleaseMetadataDocument =
        serde_yaml::from_slice(bytes).map_err(syntax(RELEASE_METADATA))?;
    if document.kind != KIND {
        return Err(PayloadError::WrongKind {
            file: RELEASE_METADATA,
            found: document.kind,
            expected: KIND,
        });
    }
    let parse = |field: &'static str, value: &str| {
        semver::Version::parse(value).map_err(|error| PayloadError::InvalidVersion {
            file: RELEASE_METADATA,
            field,
            value: value.to_owned(),
            reason: error.to_string(),
        })
    };
    let version = parse("version", &document.version)?;
    let previous = document
        .previous
        .iter()
        .map(|value| parse("previous", value))
        .collect::<Result<Vec<_>, _>>()?;
    let metadata = document
        .metadata
        .into_iter()
        .map(|(key, value)| {
            let text = match value {
                serde_yaml::Value::String(text) => text,
                other => serde_yaml::to_string(&other)
                    .unwrap_or_default()
                    .trim_end()
                    .to_owned(),
            };
            (key, text)
        })
        .collect();
    Ok(ReleaseMetadata {
        version,
        previous,
        metadata,
    })
}

#[derive(Deserialize)]
struct BootImagesConfigMap {
    kind: String,
    data: BootImagesData,
}

#[derive(Deserialize)]
struct BootImagesData {
    stream: String,
}

/// The architecture name the boot-image stream uses.
pub fn stream_architecture(architecture: Architecture) -> Option<&'static str> {
    match architecture {
        Architecture::Amd64 => Some("x86_64"),
        Architecture::Arm64 => Some("aarch64"),
        Architecture::Ppc64le => Some("ppc64le"),
        Architecture::S390x => Some("s390x"),
        Architecture::Multi => None,
    }
}

/// The KubeVirt container disk of `architecture` named by the
/// `coreos-bootimages` ConfigMap (`data.stream` is JSON:
/// `architectures.<arch>.images.kubevirt.digest-ref`). Real payloads ship
/// one for x86_64 and s390x only; any other is an error, as in oc-mirror.
pub fn kube_virt_container(
    bytes: &[u8],
    architecture: Architecture,
) -> Result<Component, PayloadError> {
    let config_map: BootImagesConfigMap =
        serde_yaml::from_slice(bytes).map_err(syntax(BOOT_IMAGES))?;
    if config_map.kind != "ConfigMap" {
        return Err(PayloadError::WrongKind {
            file: BOOT_IMAGES,
            found: config_map.kind,
            expected: "ConfigMap",
        });
    }
    let stream: serde_json::Value =
        serde_json::from_str(&config_map.data.stream).map_err(|error| PayloadError::Syntax {
            file: BOOT_IMAGES,
            reason: format!("data.stream: {error}"),
        })?;
    let missing = || PayloadError::NoKubeVirtImage {
        architecture: architecture.name().to_owned(),
    };
    let name = stream_architecture(architecture).ok_or_else(missing)?;
    let image = stream["architectures"][name]["images"]["kubevirt"]["digest-ref"]
        .as_str()
        .filter(|text| !text.is_empty())
        .ok_or_else(missing)?;
    let reference =
        image
            .parse::<ImageReference>()
            .map_err(|error| PayloadError::InvalidImage {
                file: BOOT_IMAGES,
                name: format!("architectures.{name}.images.kubevirt.digest-ref"),
                image: image.to_owned(),
                reason: error.to_string(),
            })?;
    Ok(Component {
        name: KUBE_VIRT_CONTAINER.to_owned(),
        image: reference,
    })
}
