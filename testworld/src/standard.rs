//! The standard world and the large set, assembled from the generators.
//! Pure: no I/O.

use std::collections::BTreeMap;

use crate::content::Content;
use crate::image_builder::{Format, LayerFiles, add_image, add_layer};

/// Everything the standard world serves.
#[derive(Clone, Debug, Default)]
pub struct StandardWorld {
    /// Images, published under public-looking names.
    pub content: Content,
    /// Update-graph responses, keyed by (channel, architecture), e.g.
    /// `("stable-4.15", "amd64")`: the JSON body `/graph?channel=&arch=` returns.
    pub graphs: BTreeMap<(String, String), String>,
}

/// Builds the standard world (deterministic: same bytes every call).
pub fn standard_world() -> StandardWorld {
    let mut content = Content::default();
    crate::additional_images::add_additional_images(&mut content);
    let payloads = crate::releases::add_releases(&mut content);
    crate::catalogs::add_catalogs(&mut content);
    content.placements.sort();
    StandardWorld {
        graphs: crate::releases::graphs(&payloads),
        content,
    }
}

/// Builds the large set used by benchmarks: one image with a 256 MiB layer
/// and 60 images sharing two base layers, with 4 MiB of their own each
/// (about 500 MiB of unique blobs in all). Not part of the standard world.
pub fn large_set() -> Content {
    let mut content = Content::default();
    let big = add_layer(
        &mut content,
        &LayerFiles::new().random_file("data/big.bin", 256 * 1024 * 1024, "large-layer"),
        Format::Oci,
        false,
    );
    let image = add_image(
        &mut content,
        Format::Oci,
        "amd64",
        &[("app", "big")],
        &[big],
    );
    content.place(
        "quay.io",
        "ferry-bench/big",
        &image.manifest.digest,
        &["1.0"],
    );
    let base = add_layer(
        &mut content,
        &LayerFiles::new().random_file("usr/lib/base.bin", 8 * 1024 * 1024, "bench-base"),
        Format::Oci,
        false,
    );
    let runtime = add_layer(
        &mut content,
        &LayerFiles::new().random_file("usr/lib/runtime.bin", 4 * 1024 * 1024, "bench-runtime"),
        Format::Oci,
        false,
    );
    for number in 0..60 {
        let own = add_layer(
            &mut content,
            &LayerFiles::new().random_file(
                "app.bin",
                4 * 1024 * 1024,
                &format!("bench-app-{number}"),
            ),
            Format::Oci,
            false,
        );
        let image = add_image(
            &mut content,
            Format::Oci,
            "amd64",
            &[("app", &format!("app-{number:02}"))],
            &[base.clone(), runtime.clone(), own],
        );
        content.place(
            "quay.io",
            &format!("ferry-bench/app-{number:02}"),
            &image.manifest.digest,
            &["1.0"],
        );
    }
    content.placements.sort();
    content
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_standard_world_is_deterministic_and_consistent() {
        let started = std::time::Instant::now();
        let first = standard_world();
        let elapsed = started.elapsed();
        let second = standard_world();
        assert_eq!(first.content.placements, second.content.placements);
        assert_eq!(
            first.content.blobs.keys().collect::<Vec<_>>(),
            second.content.blobs.keys().collect::<Vec<_>>()
        );
        assert_eq!(first.graphs, second.graphs);
        first.content.check_consistency().unwrap();
        let bytes: usize = first.content.blobs.values().map(Vec::len).sum();
        eprintln!(
            "standard world: {} placements, {} manifests, {} blobs, {bytes} blob bytes, built in {elapsed:?}",
            first.content.placements.len(),
            first.content.manifests.len(),
            first.content.blobs.len()
        );
        assert!(bytes < 30 * 1024 * 1024);
    }

    #[test]
    fn payload_image_references_name_placed_components() {
        let world = standard_world();
        let placed: std::collections::BTreeSet<String> = world
            .content
            .placements
            .iter()
            .map(|p| format!("{}/{}@{}", p.host, p.repository, p.digest))
            .collect();
        let mut checked = 0;
        for blob in world.content.blobs.values() {
            let Ok(tar_bytes) = crate::content::gunzip(blob) else {
                continue;
            };
            let mut archive = tar::Archive::new(tar_bytes.as_slice());
            let Ok(entries) = archive.entries() else {
                continue;
            };
            for entry in entries.flatten() {
                let mut entry = entry;
                if entry.path().is_ok_and(|p| p.ends_with("image-references")) {
                    let mut text = String::new();
                    std::io::Read::read_to_string(&mut entry, &mut text).unwrap();
                    let stream: serde_json::Value = serde_json::from_str(&text).unwrap();
                    for tag in stream["spec"]["tags"].as_array().unwrap() {
                        let name = tag["from"]["name"].as_str().unwrap();
                        assert!(placed.contains(name), "{name} is not placed");
                        checked += 1;
                    }
                }
            }
        }
        assert_eq!(checked, 6 * 2 * crate::releases::COMPONENTS.len());
    }

    #[test]
    fn graphs_are_consistent_with_payloads() {
        let world = standard_world();
        assert_eq!(world.graphs.len(), 6);
        let placed: std::collections::BTreeSet<&str> = world
            .content
            .placements
            .iter()
            .map(|p| p.digest.as_str())
            .collect();
        for ((channel, architecture), body) in &world.graphs {
            let graph: serde_json::Value = serde_json::from_str(body).unwrap();
            let nodes = graph["nodes"].as_array().unwrap();
            assert!(nodes.len() >= 3, "{channel}/{architecture}");
            for node in nodes {
                let digest = node["metadata"]["io.openshift.upgrades.graph.release.manifestref"]
                    .as_str()
                    .unwrap();
                assert!(placed.contains(digest));
                assert!(node["payload"].as_str().unwrap().ends_with(digest));
            }
            for edge in graph["edges"].as_array().unwrap() {
                let from = edge[0].as_u64().unwrap() as usize;
                let to = edge[1].as_u64().unwrap() as usize;
                assert!(from < nodes.len() && to < nodes.len());
                let version = |i: usize| semver_tuple(nodes[i]["version"].as_str().unwrap());
                assert!(version(from) < version(to));
            }
        }
    }

    fn semver_tuple(text: &str) -> Vec<u64> {
        text.split('.').map(|part| part.parse().unwrap()).collect()
    }

    #[test]
    #[ignore = "builds about 500 MiB; run by hand or from bench/"]
    fn large_set_has_a_256_mib_layer() {
        let content = large_set();
        content.check_consistency().unwrap();
        assert!(
            content
                .blobs
                .values()
                .any(|blob| blob.len() >= 256 * 1024 * 1024)
        );
        let unique: usize = content.blobs.values().map(Vec::len).sum();
        assert!(unique >= 250 * 1024 * 1024);
    }
}
