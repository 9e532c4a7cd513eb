//! OpenShift release payloads and their update graphs.
//!
//! Six versions over two channels (stable-4.15, stable-4.16), each for amd64
//! and arm64 plus a multi-architecture manifest list. Each payload carries
//! `release-manifests/image-references` (an ImageStream naming its
//! components by digest) and `release-manifests/release-metadata`, shaped
//! like the real 4.12.0 files in the fixtures. Components live in
//! `quay.io/openshift-release-dev/ocp-v4.0-art-dev`, by digest only; most of
//! them stay the same from one version to the next, as in real releases.

use std::collections::BTreeMap;

use serde_json::{Value, json};

use crate::content::Content;
use crate::image_builder::{Format, Image, LayerFiles, add_image, add_index, add_layer, seed_of};

pub const RELEASE_HOST: &str = "quay.io";
pub const RELEASE_REPOSITORY: &str = "openshift-release-dev/ocp-release";
pub const COMPONENT_REPOSITORY: &str = "openshift-release-dev/ocp-v4.0-art-dev";

/// The versions, oldest first.
pub const VERSIONS: [&str; 6] = [
    "4.15.10", "4.15.11", "4.15.12", "4.16.0", "4.16.1", "4.16.2",
];

/// The components of every payload.
pub const COMPONENTS: [&str; 16] = [
    "cluster-version-operator",
    "etcd",
    "hyperkube",
    "machine-config-operator",
    "cluster-network-operator",
    "ovn-kubernetes",
    "coredns",
    "haproxy-router",
    "oauth-server",
    "console",
    "cli",
    "installer",
    "rhel-coreos",
    "must-gather",
    "prometheus",
    "cluster-kube-apiserver-operator",
];

/// Release architectures: (name in the graph API, tag suffix, image architecture).
pub const ARCHITECTURES: [(&str, &str, &str); 2] =
    [("amd64", "x86_64", "amd64"), ("arm64", "aarch64", "arm64")];

/// The release channels and the versions each lists.
pub fn channels() -> Vec<(&'static str, Vec<&'static str>)> {
    vec![
        ("stable-4.15", vec!["4.15.10", "4.15.11", "4.15.12"]),
        ("stable-4.16", vec!["4.15.12", "4.16.0", "4.16.1", "4.16.2"]),
    ]
}

/// Payload digests by (graph architecture name, version).
pub type PayloadDigests = BTreeMap<(String, String), String>;

/// True when `component` gets a new build in version number `index`.
fn changes_in(component: &str, index: usize) -> bool {
    index == 0 || seed_of(&format!("{component}@{index}")).is_multiple_of(4)
}

fn previous_versions(version: &str) -> Vec<&'static str> {
    let position = VERSIONS.iter().position(|v| *v == version).unwrap_or(0);
    let minor = &version[..4];
    VERSIONS[..position]
        .iter()
        .filter(|v| v.starts_with(minor) || **v == "4.15.12")
        .copied()
        .collect()
}

fn channel_names(version: &str) -> String {
    let mut names: Vec<String> = Vec::new();
    for (channel, versions) in channels() {
        if versions.contains(&version) {
            let minor = &channel["stable-".len()..];
            names.extend(["candidate", "fast", "stable"].map(|kind| format!("{kind}-{minor}")));
        }
    }
    names.join(",")
}

/// Adds every payload and component; returns the payload digests.
pub fn add_releases(content: &mut Content) -> PayloadDigests {
    let mut digests = PayloadDigests::new();
    for (graph_architecture, suffix, architecture) in ARCHITECTURES {
        let base = add_layer(
            content,
            &LayerFiles::new()
                .file(
                    "etc/redhat-release",
                    "Red Hat Enterprise Linux CoreOS (ferry test world)\n",
                )
                .random_file(
                    "usr/lib/rhel-base.bin",
                    32 * 1024,
                    &format!("rhel-base-{architecture}"),
                ),
            Format::Docker,
            true,
        );
        let runtime = add_layer(
            content,
            &LayerFiles::new().random_file(
                "usr/lib/openshift-runtime.bin",
                16 * 1024,
                &format!("runtime-{architecture}"),
            ),
            Format::Docker,
            true,
        );
        let mut revisions: BTreeMap<&str, usize> = BTreeMap::new();
        for (index, version) in VERSIONS.iter().enumerate() {
            let mut tags = Vec::new();
            for component in COMPONENTS {
                if changes_in(component, index) {
                    revisions.insert(component, index);
                }
                let revision = revisions[component];
                let own = LayerFiles::new().random_file(
                    &format!("usr/bin/{component}"),
                    4 * 1024,
                    &format!("{component}-{architecture}-{revision}"),
                );
                let own_layer = add_layer(content, &own, Format::Docker, true);
                let commit = format!(
                    "{:016x}{:016x}",
                    seed_of(&format!("{component}{revision}")),
                    seed_of(component)
                );
                let image = add_image(
                    content,
                    Format::Docker,
                    architecture,
                    &[
                        ("io.openshift.build.commit.id", &commit),
                        (
                            "io.openshift.build.source-location",
                            &format!("https://github.com/openshift/{component}"),
                        ),
                    ],
                    &[base.clone(), runtime.clone(), own_layer],
                );
                content.place(
                    RELEASE_HOST,
                    COMPONENT_REPOSITORY,
                    &image.manifest.digest,
                    &[],
                );
                tags.push(json!({
                    "name": component,
                    "annotations": {
                        "io.openshift.build.commit.id": commit,
                        "io.openshift.build.commit.ref": "",
                        "io.openshift.build.source-location": format!("https://github.com/openshift/{component}"),
                    },
                    "from": {
                        "kind": "DockerImage",
                        "name": format!("{RELEASE_HOST}/{COMPONENT_REPOSITORY}@{}", image.manifest.digest),
                    },
                    "generation": null,
                    "importPolicy": {},
                    "referencePolicy": {"type": ""},
                }));
            }
            let image_references = json!({
                "kind": "ImageStream",
                "apiVersion": "image.openshift.io/v1",
                "metadata": {
                    "name": version,
                    "creationTimestamp": null,
                    "annotations": {"release.openshift.io/from-image-stream": format!("ocp/{}-art-latest", &version[..4])},
                },
                "spec": {"lookupPolicy": {"local": false}, "tags": tags},
                "status": {"dockerImageRepository": ""},
            });
            let metadata = json!({
                "kind": "cincinnati-metadata-v0",
                "version": version,
                "previous": previous_versions(version),
                "metadata": {"url": format!("https://access.redhat.com/errata/RHSA-2024:{:04}", 1000 + index)},
            });
            let release_layer = add_layer(
                content,
                &LayerFiles::new()
                    .file(
                        "release-manifests/image-references",
                        serde_json::to_vec_pretty(&image_references).expect("JSON into memory"),
                    )
                    .file(
                        "release-manifests/release-metadata",
                        serde_json::to_vec_pretty(&metadata).expect("JSON into memory"),
                    ),
                Format::Docker,
                true,
            );
            let payload = add_image(
                content,
                Format::Docker,
                architecture,
                &[
                    ("io.openshift.release", version),
                    ("io.openshift.release.base-image-digest", ""),
                ],
                &[base.clone(), release_layer],
            );
            content.place(
                RELEASE_HOST,
                RELEASE_REPOSITORY,
                &payload.manifest.digest,
                &[&format!("{version}-{suffix}")],
            );
            digests.insert(
                (graph_architecture.to_owned(), (*version).to_owned()),
                payload.manifest.digest.clone(),
            );
        }
    }
    // Multi-architecture payloads: manifest lists over both architectures.
    for version in VERSIONS {
        let images: Vec<Image> = ARCHITECTURES
            .iter()
            .map(|(graph_architecture, _, architecture)| {
                let digest = &digests[&((*graph_architecture).to_owned(), version.to_owned())];
                let manifest = &content.manifests[digest];
                Image {
                    manifest: crate::image_builder::Descriptor {
                        media_type: manifest.media_type.clone(),
                        digest: digest.clone(),
                        size: manifest.bytes.len() as u64,
                    },
                    architecture: (*architecture).to_owned(),
                    os: "linux".to_owned(),
                }
            })
            .collect();
        let list = add_index(content, Format::Docker, &images);
        content.place(
            RELEASE_HOST,
            RELEASE_REPOSITORY,
            &list.digest,
            &[&format!("{version}-multi")],
        );
        digests.insert(("multi".to_owned(), version.to_owned()), list.digest);
    }
    digests
}

/// The update graph of every (channel, architecture) as the JSON body
/// `/graph?channel=&arch=` returns: nodes, 0-based edges, conditional edges.
pub fn graphs(payloads: &PayloadDigests) -> BTreeMap<(String, String), String> {
    let mut graphs = BTreeMap::new();
    for (channel, versions) in channels() {
        for architecture in ["amd64", "arm64", "multi"] {
            let nodes: Vec<Value> = versions
                .iter()
                .map(|version| {
                    let digest = &payloads[&(architecture.to_owned(), (*version).to_owned())];
                    json!({
                        "version": version,
                        "payload": format!("{RELEASE_HOST}/{RELEASE_REPOSITORY}@{digest}"),
                        "metadata": {
                            "io.openshift.upgrades.graph.release.channels": channel_names(version),
                            "io.openshift.upgrades.graph.release.manifestref": digest,
                            "url": format!("https://access.redhat.com/errata/RHSA-2024:{:04}", 1000 + VERSIONS.iter().position(|v| v == version).unwrap_or(0)),
                        },
                    })
                })
                .collect();
            let mut edges = Vec::new();
            let mut conditional = Vec::new();
            for (from, from_version) in versions.iter().enumerate() {
                for (to, to_version) in versions.iter().enumerate().skip(from + 1) {
                    // 4.15.12 -> 4.16.0 carries a known risk.
                    if *from_version == "4.15.12" && *to_version == "4.16.0" {
                        conditional.push(json!({"from": from_version, "to": to_version}));
                    } else {
                        edges.push(json!([from, to]));
                    }
                }
            }
            let conditional_edges = if conditional.is_empty() {
                Vec::new()
            } else {
                vec![json!({
                    "edges": conditional,
                    "risks": [{
                        "url": "https://issues.redhat.com/browse/OCPBUGS-00000",
                        "name": "FerryTestWorldRisk",
                        "message": "Clusters with the test world's example workload may see slow rollouts during this update.",
                        "matchingRules": [{"type": "PromQL", "promql": {"promql": "group(cluster_version{_id=\"\"})"}}],
                    }],
                })]
            };
            let graph =
                json!({"nodes": nodes, "edges": edges, "conditionalEdges": conditional_edges});
            graphs.insert(
                (channel.to_owned(), architecture.to_owned()),
                serde_json::to_string_pretty(&graph).expect("JSON into memory"),
            );
        }
    }
    graphs
}

/// The components a payload names, read back from its release layer's
/// `release-manifests/image-references` as a cluster would: component name
/// → `sha256:<hex>`. A multi-architecture payload's are those of its amd64
/// image. `None` when `payload` is not a payload of `content`.
pub fn component_digests(content: &Content, payload: &str) -> Option<BTreeMap<String, String>> {
    let mut manifest: Value =
        serde_json::from_slice(&content.manifests.get(payload)?.bytes).ok()?;
    if let Some(children) = manifest["manifests"].as_array() {
        let amd64 = children
            .iter()
            .find(|child| child["platform"]["architecture"] == "amd64")?;
        let digest = amd64["digest"].as_str()?;
        manifest = serde_json::from_slice(&content.manifests.get(digest)?.bytes).ok()?;
    }
    let layer = manifest["layers"].as_array()?.last()?["digest"].as_str()?;
    let bytes = content.blobs.get(layer)?;
    let plain = if bytes.starts_with(&[0x1f, 0x8b]) {
        crate::content::gunzip(bytes).ok()?
    } else {
        bytes.clone()
    };
    let mut archive = tar::Archive::new(plain.as_slice());
    let mut references = None;
    for entry in archive.entries().ok()? {
        let mut entry = entry.ok()?;
        if entry.path().ok()?.to_str() == Some("release-manifests/image-references") {
            let mut text = Vec::new();
            std::io::Read::read_to_end(&mut entry, &mut text).ok()?;
            references = Some(serde_json::from_slice::<Value>(&text).ok()?);
        }
    }
    references?["spec"]["tags"]
        .as_array()?
        .iter()
        .map(|tag| {
            let name = tag["name"].as_str()?;
            let (_, digest) = tag["from"]["name"].as_str()?.rsplit_once('@')?;
            Some((name.to_owned(), digest.to_owned()))
        })
        .collect()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_payload_names_every_component_and_multi_names_its_amd64_image_s() {
        let mut content = Content::default();
        let payloads = add_releases(&mut content);
        let amd64 = &payloads[&("amd64".to_owned(), "4.16.2".to_owned())];
        let arm64 = &payloads[&("arm64".to_owned(), "4.16.2".to_owned())];
        let multi = &payloads[&("multi".to_owned(), "4.16.2".to_owned())];
        let components = component_digests(&content, amd64).unwrap();
        assert_eq!(components.len(), COMPONENTS.len());
        assert!(components.values().all(|digest| {
            content.placements.iter().any(|placement| {
                placement.repository == COMPONENT_REPOSITORY && placement.digest == *digest
            })
        }));
        assert_eq!(component_digests(&content, multi).unwrap(), components);
        assert_ne!(component_digests(&content, arm64).unwrap(), components);
        assert_eq!(component_digests(&content, "sha256:00"), None);
    }
}
