//! Cluster resources: the ImageDigestMirrorSet and ImageTagMirrorSet that
//! point a cluster at the mirror, for the whole image set present at the
//! destination (not only what one run pushed).
//!
//! Rules from oc-mirror (notes §4.1): one object per category (`release`,
//! `operator`, `generic`; additional images are `generic`) named
//! `idms-<category>-0` / `itms-<category>-0`, in `idms-oc-mirror.yaml` and
//! `itms-oc-mirror.yaml`. The IDMS lists origins pinned by digest (alone or
//! with a tag); the ITMS lists origins with a tag. When the destination
//! path ends with the origin's path, the entry is namespace-scoped (the last
//! path component dropped on both sides); otherwise it is repository-scoped;
//! `--max-nested-paths` forces repository scope. Mirrors of one source are
//! listed once. Unlike oc-mirror, the order is sorted, so the files are the
//! same for the same image set; `createdAt` comes from `SOURCE_DATE_EPOCH`
//! when it is set.

use std::collections::{BTreeMap, BTreeSet};
use std::fmt::Write as _;

use ferry_schemas::ImageReference;

/// An image present at the destination.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct MirroredImage {
    /// The origin as the configuration named it.
    pub origin: ImageReference,
    /// `registry/repository` at the destination.
    pub destination: String,
    pub category: Category,
}

pub use crate::workflow::Category;

/// The origin of the image named `name` in a run. Release images are
/// named `<origin repository>:<destination tag>@<digest>` (unique per
/// release and component) and come from their digest alone: the tag is
/// dropped, so they go in the IDMS only. The graph image has none: ferry
/// built it, and oc-mirror leaves it out of both files (notes §4.1).
pub fn origin_of(name: &str, category: Category) -> Option<ImageReference> {
    if name == crate::workflow::graph_image::GRAPH_IMAGE_NAME {
        return None;
    }
    let reference: ImageReference = name.parse().ok()?;
    match (category, reference.digest()) {
        (Category::Release, Some(digest)) => format!("{}@{digest}", reference.name()).parse().ok(),
        _ => Some(reference),
    }
}

/// The two files' contents; `None` when a file would list nothing.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct ClusterResources {
    pub image_digest_mirror_sets: Option<String>,
    pub image_tag_mirror_sets: Option<String>,
}

/// `source` → mirrors.
type Mirrors = BTreeMap<String, BTreeSet<String>>;

/// The (source, mirror) pair of an image, namespace- or repository-scoped.
fn scope(image: &MirroredImage, repository_scope: bool) -> (String, String) {
    let origin_path = image.origin.repository();
    let (destination_registry, destination_path) = image
        .destination
        .split_once('/')
        .unwrap_or((&image.destination, ""));
    let namespace_scope = !repository_scope
        && (destination_path == origin_path
            || destination_path.ends_with(&format!("/{origin_path}")));
    if !namespace_scope {
        return (image.origin.name(), image.destination.clone());
    }
    let parent = |path: &str| path.rsplit_once('/').map(|(parent, _)| parent.to_owned());
    let source = match parent(origin_path) {
        Some(namespace) => format!("{}/{namespace}", image.origin.registry()),
        None => image.origin.registry().to_owned(),
    };
    let mirror = match parent(destination_path) {
        Some(namespace) => format!("{destination_registry}/{namespace}"),
        None => destination_registry.to_owned(),
    };
    (source, mirror)
}

/// RFC 3339 (UTC, seconds) of a Unix time.
pub fn rfc3339(seconds: i64) -> String {
    let time = time::OffsetDateTime::from_unix_timestamp(seconds)
        .unwrap_or(time::OffsetDateTime::UNIX_EPOCH);
    format!(
        "{:04}-{:02}-{:02}T{:02}:{:02}:{:02}Z",
        time.year(),
        u8::from(time.month()),
        time.day(),
        time.hour(),
        time.minute(),
        time.second()
    )
}

fn document(
    kind: &str,
    list_field: &str,
    prefix: &str,
    group: &str,
    mirrors: &Mirrors,
    created_at: &str,
) -> String {
    let mut text = String::new();
    let _ = writeln!(text, "---");
    let _ = writeln!(text, "apiVersion: config.openshift.io/v1");
    let _ = writeln!(text, "kind: {kind}");
    let _ = writeln!(text, "metadata:");
    let _ = writeln!(text, "  annotations:");
    let _ = writeln!(text, "    createdAt: \"{created_at}\"");
    let _ = writeln!(text, "    createdBy: ferry");
    let _ = writeln!(text, "    ferry_version: \"{}\"", env!("CARGO_PKG_VERSION"));
    let _ = writeln!(text, "  name: {prefix}-{group}-0");
    let _ = writeln!(text, "spec:");
    let _ = writeln!(text, "  {list_field}:");
    for (source, targets) in mirrors {
        let _ = writeln!(text, "  - mirrors:");
        for target in targets {
            let _ = writeln!(text, "    - {target}");
        }
        let _ = writeln!(text, "    source: {source}");
    }
    text
}

/// Builds both files for `images`.
pub fn generate(
    images: &[MirroredImage],
    repository_scope: bool,
    created_at_seconds: i64,
) -> ClusterResources {
    // Keyed by the object's group (additional and helm images share one),
    // listed release, operator, generic.
    let group = |category: Category| {
        let name = category.mirror_set_group();
        let rank = match name {
            "release" => 0,
            "operator" => 1,
            _ => 2,
        };
        (rank, name)
    };
    let mut digest_sets: BTreeMap<(u8, &str), Mirrors> = BTreeMap::new();
    let mut tag_sets: BTreeMap<(u8, &str), Mirrors> = BTreeMap::new();
    for image in images {
        let (source, mirror) = scope(image, repository_scope);
        let by_digest = image.origin.digest().is_some();
        let by_tag = image.origin.tag().is_some() || !by_digest;
        // Release payloads always go in the IDMS, even by tag (CLID-205).
        if by_digest || image.category == Category::Release {
            digest_sets
                .entry(group(image.category))
                .or_default()
                .entry(source.clone())
                .or_default()
                .insert(mirror.clone());
        }
        if by_tag {
            tag_sets
                .entry(group(image.category))
                .or_default()
                .entry(source)
                .or_default()
                .insert(mirror);
        }
    }
    let created_at = rfc3339(created_at_seconds);
    let render = |sets: &BTreeMap<(u8, &str), Mirrors>, kind: &str, field: &str, prefix: &str| {
        (!sets.is_empty()).then(|| {
            sets.iter()
                .map(|((_, group), mirrors)| {
                    document(kind, field, prefix, group, mirrors, &created_at)
                })
                .collect::<String>()
        })
    };
    ClusterResources {
        image_digest_mirror_sets: render(
            &digest_sets,
            "ImageDigestMirrorSet",
            "imageDigestMirrors",
            "idms",
        ),
        image_tag_mirror_sets: render(&tag_sets, "ImageTagMirrorSet", "imageTagMirrors", "itms"),
    }
}

/// The name of a catalog's CatalogSource (`cs-`) or ClusterCatalog
/// (`cc-`), as oc-mirror names them (notes §4.2): the last path component
/// of the destination repository, then the first 12 characters of the tag
/// in RFC 1035 form (lower case, anything but `[a-z0-9-]` as `-`), or the
/// first 12 hex digits of a digest, or `0`.
pub fn catalog_object_name(
    kind_prefix: &str,
    repository: &str,
    tag: Option<&str>,
    digest_hex: Option<&str>,
) -> String {
    let last = repository.rsplit('/').next().unwrap_or(repository);
    let suffix: String = match (tag, digest_hex) {
        (Some(tag), _) => tag
            .chars()
            .take(12)
            .map(|character| {
                let character = character.to_ascii_lowercase();
                if character.is_ascii_lowercase() || character.is_ascii_digit() || character == '-'
                {
                    character
                } else {
                    '-'
                }
            })
            .collect(),
        (None, Some(hex)) => hex.chars().take(12).collect(),
        (None, None) => "0".to_owned(),
    };
    let name = format!("{kind_prefix}-{last}-{suffix}")
        .replace('.', "-")
        .to_ascii_lowercase();
    // A DNS-1035 label: at most 63 characters, ending alphanumeric.
    let name: String = name.chars().take(63).collect();
    name.trim_end_matches('-').to_owned()
}

/// Parses a `targetCatalogSourceTemplate` and checks what oc-mirror checks
/// (notes §4.2): a `CatalogSource` of `operators.coreos.com/v1alpha1`,
/// `sourceType` empty or `grpc`, no `configMap`. Unlike oc-mirror, which
/// logs the problem and writes its default object instead, a bad template
/// is an error before anything is mirrored.
pub fn check_catalog_source_template(text: &str) -> Result<serde_json::Value, String> {
    let value: serde_json::Value =
        serde_yaml::from_str(text).map_err(|cause| format!("not a YAML object: {cause}"))?;
    if !value.is_object() {
        return Err("not a YAML object".to_owned());
    }
    let field = |pointer: &str| value.pointer(pointer).and_then(serde_json::Value::as_str);
    if field("/apiVersion") != Some("operators.coreos.com/v1alpha1") {
        return Err("apiVersion must be operators.coreos.com/v1alpha1".to_owned());
    }
    if field("/kind") != Some("CatalogSource") {
        return Err("kind must be CatalogSource".to_owned());
    }
    if !matches!(field("/spec/sourceType"), None | Some("") | Some("grpc")) {
        return Err("spec.sourceType must be grpc (or left out)".to_owned());
    }
    if value.pointer("/spec/configMap").is_some() {
        return Err("spec.configMap cannot be used with a catalog image".to_owned());
    }
    Ok(value)
}

/// The CatalogSource of `template` (checked by
/// [`check_catalog_source_template`]) with name, namespace, source type,
/// image and ferry's annotations set.
fn catalog_source_from_template(
    template: &str,
    name: &str,
    image: &str,
    created_at: &str,
) -> Option<String> {
    let mut value = check_catalog_source_template(template).ok()?;
    let object = value.as_object_mut()?;
    let metadata = object
        .entry("metadata")
        .or_insert_with(|| serde_json::json!({}))
        .as_object_mut()?;
    metadata.insert("name".to_owned(), name.into());
    metadata.insert("namespace".to_owned(), "openshift-marketplace".into());
    let annotations = metadata
        .entry("annotations")
        .or_insert_with(|| serde_json::json!({}))
        .as_object_mut()?;
    annotations.insert("createdAt".to_owned(), created_at.into());
    annotations.insert("createdBy".to_owned(), "ferry".into());
    annotations.insert("ferry_version".to_owned(), env!("CARGO_PKG_VERSION").into());
    let spec = object
        .entry("spec")
        .or_insert_with(|| serde_json::json!({}))
        .as_object_mut()?;
    spec.insert("image".to_owned(), image.into());
    spec.insert("sourceType".to_owned(), "grpc".into());
    serde_yaml::to_string(&value).ok()
}

/// The CatalogSource (from `template` when given) and ClusterCatalog of a
/// catalog mirrored to `registry/repository:tag`: (file name, text) each.
pub fn catalog_resources(
    registry: &str,
    repository: &str,
    tag: &str,
    template: Option<&str>,
    created_at_seconds: i64,
) -> Vec<(String, String)> {
    let created_at = rfc3339(created_at_seconds);
    let image = format!("{registry}/{repository}:{tag}");
    let annotations = format!(
        "  annotations:\n    createdAt: \"{created_at}\"\n    createdBy: ferry\n    ferry_version: \"{}\"\n",
        env!("CARGO_PKG_VERSION")
    );
    let source_name = catalog_object_name("cs", repository, Some(tag), None);
    let catalog_name = catalog_object_name("cc", repository, Some(tag), None);
    let templated = template.and_then(|template| {
        catalog_source_from_template(template, &source_name, &image, &created_at)
    });
    let catalog_source = templated.unwrap_or_else(|| format!(
        "apiVersion: operators.coreos.com/v1alpha1\nkind: CatalogSource\nmetadata:\n{annotations}  name: {source_name}\n  namespace: openshift-marketplace\nspec:\n  image: {image}\n  sourceType: grpc\n"
    ));
    let cluster_catalog = format!(
        "apiVersion: olm.operatorframework.io/v1\nkind: ClusterCatalog\nmetadata:\n{annotations}  name: {catalog_name}\nspec:\n  source:\n    image:\n      ref: {image}\n    type: Image\n"
    );
    vec![
        (format!("{source_name}.yaml"), catalog_source),
        (format!("{catalog_name}.yaml"), cluster_catalog),
    ]
}

/// The file the UpdateService is written to.
pub const UPDATE_SERVICE_FILE: &str = "updateService.yaml";

/// The UpdateService of `graph: true` (notes §4.3): oc-mirror's name,
/// namespace and two replicas, the release images' repository and the
/// graph image at the destination (`registry/repository`, and
/// `registry/repository:tag`).
pub fn update_service(releases: &str, graph_data_image: &str, created_at_seconds: i64) -> String {
    format!(
        "apiVersion: updateservice.operator.openshift.io/v1\nkind: UpdateService\nmetadata:\n  annotations:\n    createdAt: \"{}\"\n    createdBy: ferry\n    ferry_version: \"{}\"\n  name: update-service-oc-mirror\n  namespace: openshift-update-service\nspec:\n  graphDataImage: {graph_data_image}\n  releases: {releases}\n  replicas: 2\n",
        rfc3339(created_at_seconds),
        env!("CARGO_PKG_VERSION")
    )
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_update_service_names_the_release_images_and_the_graph_image() {
        let text = update_service(
            "mirror.example.com/ns/openshift/release-images",
            "mirror.example.com/ns/openshift/graph-image:latest",
            0,
        );
        let value: serde_yaml::Value = serde_yaml::from_str(&text).unwrap();
        assert_eq!(value["kind"].as_str(), Some("UpdateService"));
        assert_eq!(
            value["metadata"]["name"].as_str(),
            Some("update-service-oc-mirror")
        );
        assert_eq!(
            value["metadata"]["namespace"].as_str(),
            Some("openshift-update-service")
        );
        assert_eq!(value["spec"]["replicas"].as_u64(), Some(2));
        assert_eq!(
            value["spec"]["releases"].as_str(),
            Some("mirror.example.com/ns/openshift/release-images")
        );
        assert_eq!(
            value["spec"]["graphDataImage"].as_str(),
            Some("mirror.example.com/ns/openshift/graph-image:latest")
        );
        assert_eq!(
            value["metadata"]["annotations"]["createdAt"].as_str(),
            Some("1970-01-01T00:00:00Z")
        );
        // The graph image is in neither mirror set.
        assert_eq!(
            origin_of(
                crate::workflow::graph_image::GRAPH_IMAGE_NAME,
                Category::Release
            ),
            None
        );
    }

    #[test]
    fn catalog_objects_are_named_as_oc_mirror_names_them() {
        assert_eq!(
            catalog_object_name(
                "cs",
                "mynamespace/redhat/redhat-operator-index",
                Some("v4.15"),
                None
            ),
            "cs-redhat-operator-index-v4-15"
        );
        assert_eq!(
            catalog_object_name("cc", "ns/catalog", None, Some(&"ab".repeat(32))),
            "cc-catalog-abababababab"
        );
        assert_eq!(
            catalog_object_name("cs", "catalog", None, None),
            "cs-catalog-0"
        );
        assert_eq!(
            catalog_object_name("cs", "c", Some("Sha256_ABCDEFGHIJK"), None),
            "cs-c-sha256-abcde"
        );
        let files = catalog_resources(
            "mirror.local:5000",
            "ns/redhat-operator-index",
            "v4.16",
            None,
            0,
        );
        assert_eq!(files[0].0, "cs-redhat-operator-index-v4-16.yaml");
        assert!(
            files[0]
                .1
                .contains("  image: mirror.local:5000/ns/redhat-operator-index:v4.16\n")
        );
        assert_eq!(files[1].0, "cc-redhat-operator-index-v4-16.yaml");
        assert!(
            files[1]
                .1
                .contains("      ref: mirror.local:5000/ns/redhat-operator-index:v4.16\n")
        );
    }

    fn image(origin: &str, destination: &str) -> MirroredImage {
        MirroredImage {
            origin: origin.parse().unwrap(),
            destination: destination.to_owned(),
            category: Category::Additional,
        }
    }

    #[test]
    fn catalog_source_templates_are_checked_and_their_fields_kept() {
        let template = "apiVersion: operators.coreos.com/v1alpha1\nkind: CatalogSource\nmetadata:\n  name: mine\n  namespace: elsewhere\nspec:\n  displayName: Mirrored operators\n  updateStrategy:\n    registryPoll:\n      interval: 30m\n";
        let files = catalog_resources("m:5000", "ns/index", "v1", Some(template), 0);
        let source: serde_json::Value = serde_yaml::from_str(&files[0].1).unwrap();
        assert_eq!(source["metadata"]["name"], "cs-index-v1");
        assert_eq!(source["metadata"]["namespace"], "openshift-marketplace");
        assert_eq!(source["metadata"]["annotations"]["createdBy"], "ferry");
        assert_eq!(source["spec"]["image"], "m:5000/ns/index:v1");
        assert_eq!(source["spec"]["sourceType"], "grpc");
        assert_eq!(source["spec"]["displayName"], "Mirrored operators");
        assert_eq!(
            source["spec"]["updateStrategy"]["registryPoll"]["interval"],
            "30m"
        );
        for (bad, why) in [
            ("kind: CatalogSource\n", "apiVersion"),
            (
                "apiVersion: operators.coreos.com/v1alpha1\nkind: Subscription\n",
                "kind",
            ),
            (
                "apiVersion: operators.coreos.com/v1alpha1\nkind: CatalogSource\nspec:\n  sourceType: configmap\n",
                "sourceType",
            ),
            (
                "apiVersion: operators.coreos.com/v1alpha1\nkind: CatalogSource\nspec:\n  configMap: x\n",
                "configMap",
            ),
            ("- a list\n", "object"),
        ] {
            let message = check_catalog_source_template(bad).unwrap_err();
            assert!(message.contains(why), "{bad}: {message}");
        }
    }

    #[test]
    fn dates_are_rfc3339() {
        assert_eq!(rfc3339(0), "1970-01-01T00:00:00Z");
        assert_eq!(rfc3339(1_700_000_000), "2023-11-14T22:13:20Z");
        assert_eq!(rfc3339(951_782_400), "2000-02-29T00:00:00Z");
    }

    #[test]
    fn namespace_and_repository_scopes_follow_oc_mirror() {
        let hex = "ab".repeat(32);
        let images = [
            image(
                "registry.redhat.io/ubi9/ubi:latest",
                "mirror.local/ns/ubi9/ubi",
            ),
            image(
                "registry.redhat.io/ubi9/ubi-minimal:9.4",
                "mirror.local/ns/ubi9/ubi-minimal",
            ),
            image(
                &format!("registry.redhat.io/ubi8-minimal@sha256:{hex}"),
                "mirror.local/ns/ubi8-minimal",
            ),
            image("quay.io/a/b:1", "mirror.local/ns/team/app"),
        ];
        let resources = generate(&images, false, 0);
        let tags = resources.image_tag_mirror_sets.unwrap();
        assert!(
            tags.contains(
                "  - mirrors:\n    - mirror.local/ns/ubi9\n    source: registry.redhat.io/ubi9\n"
            ),
            "{tags}"
        );
        assert_eq!(
            tags.matches("source: registry.redhat.io/ubi9\n").count(),
            1,
            "one entry per source"
        );
        assert!(
            tags.contains("    - mirror.local/ns/team/app\n    source: quay.io/a/b\n"),
            "repository scope: {tags}"
        );
        assert!(tags.contains("name: itms-generic-0"));
        let digests = resources.image_digest_mirror_sets.unwrap();
        assert!(
            digests.contains("    - mirror.local/ns\n    source: registry.redhat.io\n"),
            "{digests}"
        );
        assert!(
            !digests.contains("ubi9"),
            "tag-only origins are not in the IDMS"
        );
        let repository_scoped = generate(&images, true, 0).image_tag_mirror_sets.unwrap();
        assert!(repository_scoped.contains("source: registry.redhat.io/ubi9/ubi\n"));
    }

    #[test]
    fn empty_sets_write_nothing() {
        let resources = generate(&[], false, 0);
        assert_eq!(resources.image_digest_mirror_sets, None);
        assert_eq!(resources.image_tag_mirror_sets, None);
    }

    #[test]
    fn release_images_are_digest_mirrors_in_repository_scope() {
        let hex = "cd".repeat(32);
        let names = [
            format!("quay.io/openshift-release-dev/ocp-release:4.16.1-x86_64@sha256:{hex}"),
            format!(
                "quay.io/openshift-release-dev/ocp-v4.0-art-dev:4.16.1-x86_64-etcd@sha256:{hex}"
            ),
        ];
        let images: Vec<MirroredImage> = names
            .iter()
            .zip([
                "mirror.example/ns/openshift/release-images",
                "mirror.example/ns/openshift/release",
            ])
            .map(|(name, destination)| MirroredImage {
                origin: origin_of(name, Category::Release).unwrap(),
                destination: destination.to_owned(),
                category: Category::Release,
            })
            .collect();
        assert_eq!(images[0].origin.tag(), None);
        let resources = generate(&images, false, 0);
        assert_eq!(resources.image_tag_mirror_sets, None);
        let idms = resources.image_digest_mirror_sets.unwrap();
        assert!(idms.contains("name: idms-release-0"), "{idms}");
        assert!(
            idms.contains("  - mirrors:\n    - mirror.example/ns/openshift/release\n    source: quay.io/openshift-release-dev/ocp-v4.0-art-dev\n"),
            "{idms}"
        );
        assert!(
            idms.contains("  - mirrors:\n    - mirror.example/ns/openshift/release-images\n    source: quay.io/openshift-release-dev/ocp-release\n"),
            "{idms}"
        );
        // Other categories keep their tags.
        let additional = origin_of(
            "quay.io/a/b:1@sha256:".to_owned().as_str(),
            Category::Additional,
        );
        assert!(additional.is_none(), "not a reference");
        let additional =
            origin_of(&format!("quay.io/a/b:1@sha256:{hex}"), Category::Additional).unwrap();
        assert_eq!(additional.tag(), Some("1"));
    }
}
