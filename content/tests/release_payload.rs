//! Payload metadata (image-references, release-metadata, the boot-images
//! ConfigMap) from the real files in the fixtures, and destination naming.

use std::path::PathBuf;

use ferry_content::release::naming::{
    component_destination, graph_image_destination, kube_virt_destination, payload_destination,
    release_tag,
};
use ferry_content::release::payload::{
    PayloadError, kube_virt_container, parse_image_references, parse_release_metadata,
};
use ferry_schemas::ImageReference;
use ferry_schemas::config::Architecture;

const REAL: &str = "openshift+oc-mirror/tests/unit/testdata/working-dir-fake/hold-release/ocp-release/4.14.1-x86_64/release-manifests";
const CVO: &str =
    "openshift+cluster-version-operator/pkg/cvo/testdata/featuregatetest/release-manifests";
const BUILDER: &str =
    "openshift+oc-mirror/tests/integration/image-builders/release/artifacts/release-manifests";

fn fixture(relative: &str) -> Vec<u8> {
    let path = PathBuf::from(env!("CARGO_MANIFEST_DIR"))
        .join("../../shared/fixtures")
        .join(relative);
    std::fs::read(&path).unwrap_or_else(|error| panic!("reading {}: {error}", path.display()))
}

#[test]
fn the_real_image_references_list_every_component() {
    // The real 4.12.0 ImageStream (JSON): 183 tags, first
    // agent-installer-api-server, last vsphere-problem-detector, all by digest
    // in ocp-v4.0-art-dev (counted with a one-off script over spec.tags).
    let references = parse_image_references(&fixture(&format!("{REAL}/image-references"))).unwrap();
    assert_eq!(references.name, "4.12.0");
    assert_eq!(references.components.len(), 183);
    let first = &references.components[0];
    assert_eq!(first.name, "agent-installer-api-server");
    assert_eq!(
        first.image.to_string(),
        "quay.io/openshift-release-dev/ocp-v4.0-art-dev@sha256:f30638f60452062aba36a26ee6c036feead2f03b28f2c47f2b0a991e4182331e"
    );
    let last = references.components.last().unwrap();
    assert_eq!(last.name, "vsphere-problem-detector");
    assert_eq!(
        last.image.digest().unwrap().hex(),
        "80a6200b0c18486bad5abe5804a62bed7436daa56f0296e7b19c18f84b3b8b1b"
    );
    let cvo = references
        .components
        .iter()
        .find(|component| component.name == "cluster-version-operator")
        .unwrap();
    assert_eq!(
        cvo.image.digest().unwrap().hex(),
        "a4b00a7810910ea260de0d658c0d3d1a0b9ac8867e92c34573503f11de59017a"
    );
    assert!(
        references
            .components
            .iter()
            .all(|component| component.image.repository()
                == "openshift-release-dev/ocp-v4.0-art-dev")
    );
}

#[test]
fn yaml_image_references_without_spec_and_tagged_components_parse() {
    // The cluster-version-operator's minimal file is YAML and has no spec.
    let minimal = parse_image_references(&fixture(&format!("{CVO}/image-references"))).unwrap();
    assert_eq!(minimal.name, "1.0.0-abc");
    assert!(minimal.components.is_empty());
    // oc-mirror's test payload names one component by tag.
    let builder = parse_image_references(&fixture(&format!("{BUILDER}/image-references"))).unwrap();
    assert_eq!(builder.components.len(), 1);
    assert_eq!(builder.components[0].name, "alpine");
    assert_eq!(builder.components[0].image.tag(), Some("v0.0.1"));
}

#[test]
fn bad_image_references_name_the_problem() {
    let error = parse_image_references(b"kind: ConfigMap\n").unwrap_err();
    assert_eq!(
        error.to_string(),
        "release-manifests/image-references: kind is `ConfigMap`, expected `ImageStream`"
    );
    let error =
        parse_image_references(b"kind: ImageStream\nspec:\n  tags:\n  - name: etcd\n").unwrap_err();
    assert!(
        matches!(error, PayloadError::MissingImage { index: 0, .. }),
        "{error}"
    );
    let error = parse_image_references(
        b"kind: ImageStream\nspec:\n  tags:\n  - name: etcd\n    from: {name: 'etcd:latest'}\n",
    )
    .unwrap_err();
    assert!(
        error
            .to_string()
            .contains("tag `etcd` names `etcd:latest`, which is not an image reference"),
        "{error}"
    );
    let error = parse_image_references(b"{\"kind\": ").unwrap_err();
    assert!(matches!(error, PayloadError::Syntax { .. }), "{error}");
}

#[test]
fn release_metadata_parses_version_previous_and_url() {
    // Real 4.12.0: 21 predecessors from 4.11.11 to 4.12.0-rc.8.
    let metadata = parse_release_metadata(&fixture(&format!("{REAL}/release-metadata"))).unwrap();
    assert_eq!(metadata.version.to_string(), "4.12.0");
    assert_eq!(metadata.previous.len(), 21);
    assert_eq!(metadata.previous[0].to_string(), "4.11.11");
    assert_eq!(metadata.previous[20].to_string(), "4.12.0-rc.8");
    assert_eq!(
        metadata.metadata["url"],
        "https://access.redhat.com/errata/RHSA-2022:7399"
    );
    // CVO's edge case: no predecessors, an empty description.
    let minimal = parse_release_metadata(&fixture(&format!("{CVO}/release-metadata"))).unwrap();
    assert_eq!(minimal.version.to_string(), "1.0.0-abc");
    assert!(minimal.previous.is_empty());
    assert_eq!(minimal.metadata["description"], "");
    // oc-mirror's builder payload names a version that is not semver.
    let error =
        parse_release_metadata(&fixture(&format!("{BUILDER}/release-metadata"))).unwrap_err();
    assert!(
        error
            .to_string()
            .contains("`version` value `integration-test-release` is not a semantic version"),
        "{error}"
    );
    let error =
        parse_release_metadata(b"{\"kind\": \"other\", \"version\": \"1.0.0\"}").unwrap_err();
    assert!(matches!(error, PayloadError::WrongKind { .. }));
}

#[test]
fn the_kubevirt_container_comes_from_the_boot_images_stream() {
    let bytes = fixture(&format!("{REAL}/0000_50_installer_coreos-bootimages.yaml"));
    let amd64 = kube_virt_container(&bytes, Architecture::Amd64).unwrap();
    assert_eq!(amd64.name, "kube-virt-container");
    assert_eq!(
        amd64.image.to_string(),
        "quay.io/openshift-release-dev/ocp-v4.0-art-dev@sha256:729265d5ef6ed6a45bcd55c46877e3acb9eae3f49c78cd795d5b53aa85e3775b"
    );
    // The fixture's s390x entry is fake ("sha256:s390xs390x..."): a clear error.
    let error = kube_virt_container(&bytes, Architecture::S390x).unwrap_err();
    assert!(
        error
            .to_string()
            .contains("architectures.s390x.images.kubevirt.digest-ref"),
        "{error}"
    );
    assert!(matches!(error, PayloadError::InvalidImage { .. }));
    // aarch64 ships none; multi has no stream architecture.
    for architecture in [Architecture::Arm64, Architecture::Multi] {
        let error = kube_virt_container(&bytes, architecture).unwrap_err();
        assert_eq!(
            error,
            PayloadError::NoKubeVirtImage {
                architecture: architecture.name().to_owned()
            }
        );
    }
    // The 4.13.9 ConfigMap names the same x86_64 disk.
    let older = fixture(
        "openshift+oc-mirror/tests/unit/testdata/working-dir-fake/hold-release/ocp-release/v4.13.9/release-manifests/0000_50_installer_coreos-bootimages.yaml",
    );
    assert_eq!(
        kube_virt_container(&older, Architecture::Amd64).unwrap(),
        amd64
    );
}

#[test]
fn releases_are_named_as_oc_mirror_names_them() {
    let identity: ImageReference = "quay.io/openshift-release-dev/ocp-release:4.18.1-x86_64"
        .parse()
        .unwrap();
    let tag = release_tag(&identity).unwrap();
    assert_eq!(tag, "4.18.1-x86_64");
    let destination = "docker://mirror.example.com:5000/prefix/";
    assert_eq!(
        payload_destination(destination, &tag).unwrap().to_string(),
        "mirror.example.com:5000/prefix/openshift/release-images:4.18.1-x86_64"
    );
    assert_eq!(
        component_destination(destination, &tag, "cluster-version-operator")
            .unwrap()
            .to_string(),
        "mirror.example.com:5000/prefix/openshift/release:4.18.1-x86_64-cluster-version-operator"
    );
    assert_eq!(
        kube_virt_destination("mirror.example.com:5000", &tag, None)
            .unwrap()
            .to_string(),
        "mirror.example.com:5000/openshift/release:4.18.1-x86_64-kube-virt-container"
    );
    assert_eq!(
        kube_virt_destination("mirror.example.com:5000", &tag, Some("s390x"))
            .unwrap()
            .to_string(),
        "mirror.example.com:5000/openshift/release:4.18.1-x86_64-kube-virt-container-s390x"
    );
    assert_eq!(
        graph_image_destination("mirror.example.com:5000")
            .unwrap()
            .to_string(),
        "mirror.example.com:5000/openshift/graph-image:latest"
    );
    // A payload with no tag: the digest's hex.
    let pinned: ImageReference = "quay.io/openshift-release-dev/ocp-release@sha256:d0da3d9b016e6d693a61c9425598921b6d0da99c52cb0f3404f6dbc126149e5d"
        .parse()
        .unwrap();
    assert_eq!(
        release_tag(&pinned).unwrap(),
        "d0da3d9b016e6d693a61c9425598921b6d0da99c52cb0f3404f6dbc126149e5d"
    );
    // A component name that makes the tag too long is an error, not a bad reference.
    let long = "x".repeat(130);
    assert!(component_destination("mirror.example.com", &tag, &long).is_err());
}
