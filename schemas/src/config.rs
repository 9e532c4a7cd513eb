//! The configuration kinds of `mirror.openshift.io/v2alpha1`, as typed data.
//!
//! Field names and meanings follow oc-mirror v2 (notes §2.2, §2.3). Values
//! that have a grammar (image references, digests, versions) are types, not
//! strings. These types are built by `decode` from a YAML tree, which is
//! where every loading and validation rule lives; serde is used here only to
//! write them out (JSON Schema, plans) and is not how files are read.

use std::fmt;
use std::str::FromStr;

use schemars::JsonSchema;
use serde::Serialize;

use crate::reference::{ImageReference, ImageSource};

/// The `apiVersion` ferry writes; any value is accepted on read, as oc-mirror does.
pub const API_VERSION: &str = "mirror.openshift.io/v2alpha1";

/// `kind: ImageSetConfiguration`: what to mirror.
#[derive(Clone, Debug, Default, PartialEq, Serialize, JsonSchema)]
#[serde(rename_all = "camelCase")]
#[schemars(title = "ImageSetConfiguration", deny_unknown_fields)]
pub struct ImageSetConfiguration {
    /// Always `ImageSetConfiguration`.
    #[schemars(regex(pattern = "^ImageSetConfiguration$"))]
    pub kind: String,
    /// Accepted as written and not checked, as oc-mirror does; `mirror.openshift.io/v2alpha1`.
    pub api_version: String,
    /// Largest archive segment in GiB for mirror-to-disk (0 or absent: 500).
    #[serde(skip_serializing_if = "Option::is_none")]
    pub archive_size: Option<u64>,
    /// What to mirror.
    pub mirror: Mirror,
}

/// `kind: DeleteImageSetConfiguration`: what to delete from a mirror.
#[derive(Clone, Debug, Default, PartialEq, Serialize, JsonSchema)]
#[serde(rename_all = "camelCase")]
#[schemars(title = "DeleteImageSetConfiguration", deny_unknown_fields)]
pub struct DeleteImageSetConfiguration {
    /// Always `DeleteImageSetConfiguration`.
    #[schemars(regex(pattern = "^DeleteImageSetConfiguration$"))]
    pub kind: String,
    pub api_version: String,
    /// What to delete.
    pub delete: Delete,
}

/// The `mirror:` stanza.
#[derive(Clone, Debug, Default, PartialEq, Serialize, JsonSchema)]
#[serde(rename_all = "camelCase")]
#[schemars(deny_unknown_fields)]
pub struct Mirror {
    #[serde(skip_serializing_if = "Option::is_none")]
    pub platform: Option<Platform>,
    #[serde(skip_serializing_if = "Vec::is_empty")]
    pub operators: Vec<Operator>,
    #[serde(skip_serializing_if = "Vec::is_empty")]
    pub additional_images: Vec<AdditionalImage>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub helm: Option<Helm>,
    /// Images never to mirror: Go regular expressions matched against the
    /// source and the destination reference.
    #[serde(skip_serializing_if = "Vec::is_empty")]
    pub blocked_images: Vec<BlockedImage>,
    /// Accepted by oc-mirror, not implemented by it.
    #[serde(skip_serializing_if = "Vec::is_empty")]
    pub samples: Vec<Sample>,
}

/// The `delete:` stanza: like `mirror:` without `blockedImages`.
#[derive(Clone, Debug, Default, PartialEq, Serialize, JsonSchema)]
#[serde(rename_all = "camelCase")]
#[schemars(deny_unknown_fields)]
pub struct Delete {
    #[serde(skip_serializing_if = "Option::is_none")]
    pub platform: Option<Platform>,
    #[serde(skip_serializing_if = "Vec::is_empty")]
    pub operators: Vec<Operator>,
    #[serde(skip_serializing_if = "Vec::is_empty")]
    pub additional_images: Vec<AdditionalImage>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub helm: Option<Helm>,
    #[serde(skip_serializing_if = "Vec::is_empty")]
    pub samples: Vec<Sample>,
}

/// OpenShift release payloads.
#[derive(Clone, Debug, Default, PartialEq, Serialize, JsonSchema)]
#[serde(rename_all = "camelCase")]
#[schemars(deny_unknown_fields)]
pub struct Platform {
    /// Also build the update-graph data image and an UpdateService resource.
    #[serde(skip_serializing_if = "std::ops::Not::not")]
    pub graph: bool,
    #[serde(skip_serializing_if = "Vec::is_empty")]
    pub channels: Vec<ReleaseChannel>,
    /// Deprecated: release architectures (default amd64). Use `platforms`.
    #[serde(skip_serializing_if = "Vec::is_empty")]
    pub architectures: Vec<Architecture>,
    /// Platforms to keep; not together with `architectures`.
    #[serde(skip_serializing_if = "Vec::is_empty")]
    pub platforms: Vec<PlatformSelector>,
    /// One explicit release image instead of channels.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub release: Option<ImageReference>,
    /// Also mirror the KubeVirt container disk named by the payload.
    #[serde(skip_serializing_if = "std::ops::Not::not")]
    pub kube_virt_container: bool,
}

/// A release channel and the versions to take from it.
#[derive(Clone, Debug, Default, PartialEq, Serialize, JsonSchema)]
#[serde(rename_all = "camelCase")]
#[schemars(deny_unknown_fields)]
pub struct ReleaseChannel {
    /// e.g. `stable-4.16`.
    pub name: String,
    #[serde(rename = "type")]
    pub channel_type: ChannelType,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub min_version: Option<Version>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub max_version: Option<Version>,
    /// Only the versions on a shortest upgrade path from min to max.
    #[serde(skip_serializing_if = "std::ops::Not::not")]
    pub shortest_path: bool,
    /// The whole channel; not together with a version range.
    #[serde(skip_serializing_if = "std::ops::Not::not")]
    pub full: bool,
}

/// Which distribution a release channel belongs to.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq, Serialize, JsonSchema)]
#[serde(rename_all = "lowercase")]
pub enum ChannelType {
    #[default]
    Ocp,
    Okd,
}

/// A release architecture, as oc-mirror's `architectures` names them.
#[derive(Clone, Copy, Debug, PartialEq, Eq, PartialOrd, Ord, Serialize, JsonSchema)]
#[serde(rename_all = "lowercase")]
pub enum Architecture {
    Amd64,
    Arm64,
    Ppc64le,
    S390x,
    Multi,
}

impl Architecture {
    pub const ALL: [Architecture; 5] = [
        Architecture::Amd64,
        Architecture::Arm64,
        Architecture::Ppc64le,
        Architecture::S390x,
        Architecture::Multi,
    ];

    pub fn name(self) -> &'static str {
        match self {
            Architecture::Amd64 => "amd64",
            Architecture::Arm64 => "arm64",
            Architecture::Ppc64le => "ppc64le",
            Architecture::S390x => "s390x",
            Architecture::Multi => "multi",
        }
    }
}

/// An `{os, architecture}` pair for sparse manifest filtering.
#[derive(Clone, Debug, Default, PartialEq, Eq, Serialize, JsonSchema)]
#[serde(rename_all = "camelCase")]
#[schemars(deny_unknown_fields)]
pub struct PlatformSelector {
    pub os: String,
    pub architecture: String,
}

/// An operator catalog and what to take from it.
#[derive(Clone, Debug, PartialEq, Serialize, JsonSchema)]
#[serde(rename_all = "camelCase")]
#[schemars(deny_unknown_fields)]
pub struct Operator {
    /// The catalog image (`docker://` optional) or an `oci://` layout.
    pub catalog: ImageSource,
    /// Repository path that replaces the catalog's at the destination.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub target_catalog: Option<String>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub target_tag: Option<String>,
    /// Every bundle of the selected packages (or of the whole catalog).
    #[serde(skip_serializing_if = "std::ops::Not::not")]
    pub full: bool,
    /// Kept for compatibility; oc-mirror v2 never resolves dependencies.
    #[serde(skip_serializing_if = "std::ops::Not::not")]
    pub skip_dependencies: bool,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub target_catalog_source_template: Option<String>,
    #[serde(skip_serializing_if = "Vec::is_empty")]
    pub platforms: Vec<PlatformSelector>,
    #[serde(skip_serializing_if = "Vec::is_empty")]
    pub packages: Vec<Package>,
}

impl Operator {
    /// oc-mirror's `GetUniqueName`: the catalog with `targetCatalog` and
    /// `targetTag` applied, used to find duplicate catalogs.
    pub fn unique_name(&self) -> String {
        match &self.catalog {
            ImageSource::OciLayout { path } => {
                let mut name = format!("oci://{path}");
                if let Some(target) = &self.target_catalog {
                    name = format!("oci://{target}");
                }
                if let Some(tag) = &self.target_tag {
                    name.push(':');
                    name.push_str(tag);
                }
                name
            }
            ImageSource::Registry(reference) => {
                let repository = self
                    .target_catalog
                    .as_deref()
                    .unwrap_or(reference.repository());
                let mut name = format!("{}/{}", reference.registry(), repository);
                match (&self.target_tag, reference.tag(), reference.digest()) {
                    (Some(tag), _, _) => name.push_str(&format!(":{tag}")),
                    (None, Some(tag), _) => name.push_str(&format!(":{tag}")),
                    (None, None, Some(digest)) => name.push_str(&format!("@{digest}")),
                    (None, None, None) => {}
                }
                name
            }
        }
    }
}

/// A package of a catalog.
#[derive(Clone, Debug, Default, PartialEq, Serialize, JsonSchema)]
#[serde(rename_all = "camelCase")]
#[schemars(deny_unknown_fields)]
pub struct Package {
    pub name: String,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub default_channel: Option<String>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub min_version: Option<Version>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub max_version: Option<Version>,
    #[serde(skip_serializing_if = "Vec::is_empty")]
    pub channels: Vec<PackageChannel>,
    /// Bundles to mirror exactly, by name (the product documentation's
    /// "filter Operator versions by bundle name").
    #[serde(skip_serializing_if = "Vec::is_empty")]
    pub bundles: Vec<BundleSelector>,
}

/// A channel of a package.
#[derive(Clone, Debug, Default, PartialEq, Serialize, JsonSchema)]
#[serde(rename_all = "camelCase")]
#[schemars(deny_unknown_fields)]
pub struct PackageChannel {
    pub name: String,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub min_version: Option<Version>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub max_version: Option<Version>,
}

/// A bundle picked by name.
#[derive(Clone, Debug, Default, PartialEq, Eq, Serialize, JsonSchema)]
#[serde(rename_all = "camelCase")]
#[schemars(deny_unknown_fields)]
pub struct BundleSelector {
    pub name: String,
}

/// An image mirrored as it is.
#[derive(Clone, Debug, PartialEq, Serialize, JsonSchema)]
#[serde(rename_all = "camelCase")]
#[schemars(deny_unknown_fields)]
pub struct AdditionalImage {
    pub name: ImageSource,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub target_repo: Option<String>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub target_tag: Option<String>,
    #[serde(skip_serializing_if = "Vec::is_empty")]
    pub platforms: Vec<PlatformSelector>,
}

/// A pattern of images never to mirror.
#[derive(Clone, Debug, Default, PartialEq, Eq, Serialize, JsonSchema)]
#[serde(rename_all = "camelCase")]
#[schemars(deny_unknown_fields)]
pub struct BlockedImage {
    /// A regular expression (checked at load time).
    pub name: String,
}

/// `samples:` entries (accepted, not implemented by oc-mirror either).
#[derive(Clone, Debug, Default, PartialEq, Eq, Serialize, JsonSchema)]
#[serde(rename_all = "camelCase")]
#[schemars(deny_unknown_fields)]
pub struct Sample {
    pub name: String,
}

/// Helm charts whose images are mirrored.
#[derive(Clone, Debug, Default, PartialEq, Eq, Serialize, JsonSchema)]
#[serde(rename_all = "camelCase")]
#[schemars(deny_unknown_fields)]
pub struct Helm {
    #[serde(skip_serializing_if = "Vec::is_empty")]
    pub repositories: Vec<HelmRepository>,
    #[serde(skip_serializing_if = "Vec::is_empty")]
    pub local: Vec<HelmLocalChart>,
}

#[derive(Clone, Debug, Default, PartialEq, Eq, Serialize, JsonSchema)]
#[serde(rename_all = "camelCase")]
#[schemars(deny_unknown_fields)]
pub struct HelmRepository {
    pub name: String,
    pub url: String,
    /// Empty: every chart in the repository index.
    #[serde(skip_serializing_if = "Vec::is_empty")]
    pub charts: Vec<HelmChart>,
}

#[derive(Clone, Debug, Default, PartialEq, Eq, Serialize, JsonSchema)]
#[serde(rename_all = "camelCase")]
#[schemars(deny_unknown_fields)]
pub struct HelmChart {
    pub name: String,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub version: Option<String>,
    #[serde(skip_serializing_if = "Vec::is_empty")]
    pub image_paths: Vec<String>,
    #[serde(skip_serializing_if = "Vec::is_empty")]
    pub platforms: Vec<PlatformSelector>,
}

#[derive(Clone, Debug, Default, PartialEq, Eq, Serialize, JsonSchema)]
#[serde(rename_all = "camelCase")]
#[schemars(deny_unknown_fields)]
pub struct HelmLocalChart {
    pub name: String,
    pub path: String,
    #[serde(skip_serializing_if = "Vec::is_empty")]
    pub image_paths: Vec<String>,
    #[serde(skip_serializing_if = "Vec::is_empty")]
    pub platforms: Vec<PlatformSelector>,
}

/// A semantic version as oc-mirror reads it (Masterminds semver): a leading
/// `v` and missing minor or patch numbers are accepted (`4.16` = `4.16.0`).
#[derive(Clone, Debug, PartialEq, Eq, PartialOrd, Ord, Hash)]
pub struct Version {
    version: semver::Version,
}

impl Version {
    pub fn semver(&self) -> &semver::Version {
        &self.version
    }
}

impl FromStr for Version {
    type Err = semver::Error;

    fn from_str(text: &str) -> Result<Self, Self::Err> {
        let trimmed = text.strip_prefix('v').unwrap_or(text);
        // Split off pre-release and build metadata, pad the numeric core.
        let core_end = trimmed.find(['-', '+']).unwrap_or(trimmed.len());
        let (core, suffix) = trimmed.split_at(core_end);
        let numbers = core.split('.').count();
        let padded = match numbers {
            1 if !core.is_empty() => format!("{core}.0.0{suffix}"),
            2 => format!("{core}.0{suffix}"),
            _ => trimmed.to_owned(),
        };
        semver::Version::parse(&padded).map(|version| Version { version })
    }
}

impl fmt::Display for Version {
    fn fmt(&self, formatter: &mut fmt::Formatter<'_>) -> fmt::Result {
        self.version.fmt(formatter)
    }
}

impl Serialize for Version {
    fn serialize<S: serde::Serializer>(&self, serializer: S) -> Result<S::Ok, S::Error> {
        serializer.collect_str(self)
    }
}

impl JsonSchema for Version {
    fn schema_name() -> String {
        "Version".to_owned()
    }

    fn json_schema(_: &mut schemars::r#gen::SchemaGenerator) -> schemars::schema::Schema {
        schemars::schema::SchemaObject {
            instance_type: Some(schemars::schema::InstanceType::String.into()),
            metadata: Some(Box::new(schemars::schema::Metadata {
                description: Some(
                    "A semantic version; a leading v and a missing minor or patch number are accepted (4.16 = 4.16.0)"
                        .to_owned(),
                ),
                ..Default::default()
            })),
            string: Some(Box::new(schemars::schema::StringValidation {
                pattern: Some(r"^v?[0-9]+(\.[0-9]+){0,2}([-+].*)?$".to_owned()),
                ..Default::default()
            })),
            ..Default::default()
        }
        .into()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn versions_are_coerced_like_masterminds_semver() {
        assert_eq!("4.16".parse::<Version>().unwrap().to_string(), "4.16.0");
        assert_eq!("v4.16.1".parse::<Version>().unwrap().to_string(), "4.16.1");
        assert_eq!("4".parse::<Version>().unwrap().to_string(), "4.0.0");
        assert_eq!(
            "4.16-rc.1".parse::<Version>().unwrap().to_string(),
            "4.16.0-rc.1"
        );
        assert!("abc".parse::<Version>().is_err());
        assert!("4.16.1.2".parse::<Version>().is_err());
        assert!("".parse::<Version>().is_err());
        assert!("4.15.0".parse::<Version>().unwrap() < "4.16".parse::<Version>().unwrap());
    }

    #[test]
    fn unique_name_applies_target_catalog_and_tag() {
        let operator = Operator {
            catalog: "registry.com/ns/foo:v1.2".parse().unwrap(),
            target_catalog: Some("ns/bar".to_owned()),
            target_tag: None,
            full: false,
            skip_dependencies: false,
            target_catalog_source_template: None,
            platforms: Vec::new(),
            packages: Vec::new(),
        };
        assert_eq!(operator.unique_name(), "registry.com/ns/bar:v1.2");
        let retagged = Operator {
            target_tag: Some("v9".to_owned()),
            ..operator
        };
        assert_eq!(retagged.unique_name(), "registry.com/ns/bar:v9");
    }
}
