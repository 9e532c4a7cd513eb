//! Images that need others at the destination first (`ImageSet::needs`:
//! a bundle image its related images, a mirrored operator catalog its
//! bundle images). Applied where images go to a registry:
//!
//! - before planning, an image whose need could not be resolved is not
//!   mirrored ([`drop_unmet`]): it joins the resolution's failures, saying
//!   which image it needed, and so do the images that need it;
//! - in the plan, an image's top manifest waits for each image it needs
//!   ([`order`]), so a need that fails while the plan runs skips it.
//!
//! A need that is not in the image set (blocked, or mirrored by an earlier
//! run and so planned for nothing) does not hold anything back.

use std::collections::{BTreeMap, BTreeSet};

use ferry_planner::ActionGraph;

use crate::resolve::{Failure, Resolution};

/// Moves every resolved image whose need failed to resolve (or was itself
/// dropped) to `resolution.failures`, until none is left.
pub fn drop_unmet(resolution: &mut Resolution, needs: &BTreeMap<String, BTreeSet<String>>) {
    if needs.is_empty() {
        return;
    }
    let mut failed: BTreeSet<String> = resolution
        .failures
        .iter()
        .map(|failure| failure.name.clone())
        .collect();
    loop {
        let mut dropped = Vec::new();
        for (position, image) in resolution.images.iter().enumerate() {
            let unmet = needs
                .get(&image.name)
                .into_iter()
                .flatten()
                .find(|need| failed.contains(*need));
            if let Some(need) = unmet {
                dropped.push((position, need.clone()));
            }
        }
        if dropped.is_empty() {
            return;
        }
        for (position, need) in dropped.into_iter().rev() {
            let image = resolution.images.remove(position);
            failed.insert(image.name.clone());
            resolution.failures.push(Failure {
                name: image.name,
                message: format!("not mirrored: it needs {need}, which failed"),
                category: image.category,
                held_back: true,
            });
        }
    }
}

/// Makes each image of `graph` wait for the images it needs.
pub fn order(graph: &mut ActionGraph, needs: &BTreeMap<String, BTreeSet<String>>) {
    if needs.is_empty() {
        return;
    }
    let positions: BTreeMap<&str, usize> = graph
        .images()
        .iter()
        .enumerate()
        .map(|(position, image)| (image.name(), position))
        .collect();
    let mut pairs = Vec::new();
    for (name, needed) in needs {
        let Some(&after) = positions.get(name.as_str()) else {
            continue;
        };
        for need in needed {
            if let Some(&before) = positions.get(need.as_str()) {
                pairs.push((before, after));
            }
        }
    }
    ferry_planner::graph::order_images(graph, &pairs);
}

#[cfg(test)]
mod tests {
    use super::*;
    use ferry_planner::{Category, Destination, ResolvedImage, ResolvedManifest, Source};
    use ferry_schemas::{Digest, DigestAlgorithm};
    use ferry_store::digest_of;

    fn image(name: &str, repository: &str) -> ResolvedImage {
        let manifest: Digest = digest_of(DigestAlgorithm::Sha256, name.as_bytes());
        let blob = digest_of(DigestAlgorithm::Sha256, format!("{name} layer").as_bytes());
        ResolvedImage {
            name: name.to_owned(),
            source: Source::Registry(format!("quay.io/{repository}")),
            blob_sources: Default::default(),
            destination_repository: repository.to_owned(),
            destination_tag: Some("1".to_owned()),
            top: manifest.clone(),
            manifests: vec![ResolvedManifest {
                digest: manifest,
                media_type: "application/vnd.oci.image.manifest.v1+json".to_owned(),
                size: 10,
                children: Vec::new(),
                blobs: vec![(blob, 5)],
            }],
            category: Category::Operator,
            signature_of: None,
        }
    }

    fn needs() -> BTreeMap<String, BTreeSet<String>> {
        BTreeMap::from([
            ("bundle".to_owned(), BTreeSet::from(["operand".to_owned()])),
            ("catalog".to_owned(), BTreeSet::from(["bundle".to_owned()])),
        ])
    }

    #[test]
    fn an_unresolved_need_drops_its_image_and_what_needs_that() {
        let mut resolution = Resolution {
            images: vec![
                image("bundle", "b"),
                image("catalog", "c"),
                image("other", "o"),
            ],
            failures: vec![Failure {
                name: "operand".to_owned(),
                message: "manifest unknown".to_owned(),
                category: Category::Operator,
                held_back: false,
            }],
            ..Resolution::default()
        };
        drop_unmet(&mut resolution, &needs());
        let names: Vec<&str> = resolution.images.iter().map(|i| i.name.as_str()).collect();
        assert_eq!(names, ["other"]);
        let failures: Vec<(&str, &str)> = resolution
            .failures
            .iter()
            .map(|failure| (failure.name.as_str(), failure.message.as_str()))
            .collect();
        assert_eq!(
            failures,
            [
                ("operand", "manifest unknown"),
                ("bundle", "not mirrored: it needs operand, which failed"),
                ("catalog", "not mirrored: it needs bundle, which failed"),
            ]
        );
    }

    #[test]
    fn a_needed_image_completes_before_the_top_manifest_of_the_image_needing_it() {
        let images = [
            image("operand", "o"),
            image("bundle", "b"),
            image("catalog", "c"),
        ];
        let destination = Destination {
            registry: "localhost:5000".to_owned(),
            prefix: String::new(),
        };
        let mut graph = ferry_planner::compile(&images, &destination);
        let edges = graph.edge_count();
        order(&mut graph, &needs());
        assert_eq!(graph.edge_count(), edges + 2);
        let operand_tag = graph.images()[0].tag_node().unwrap();
        let bundle_top = graph.images()[1].top_manifest().unwrap();
        assert!(graph.has_edge(operand_tag, bundle_top));
        let bundle_tag = graph.images()[1].tag_node().unwrap();
        let catalog_top = graph.images()[2].top_manifest().unwrap();
        assert!(graph.has_edge(bundle_tag, catalog_top));
        // Applying it again adds nothing; an image needing itself adds
        // nothing (no cycle).
        let mut itself = needs();
        itself.insert("operand".to_owned(), BTreeSet::from(["operand".to_owned()]));
        order(&mut graph, &itself);
        assert_eq!(graph.edge_count(), edges + 2);
        assert!(graph.is_acyclic());
    }
}
