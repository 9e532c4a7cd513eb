//! Small hand-built image sets and the executor's bookkeeping, shared by
//! the planner's test files.

#![allow(dead_code)]

use ferry_planner::{
    Action, Category, Destination, Plan, ResolvedImage, ResolvedManifest, Source, StateSnapshot,
};
use ferry_schemas::Digest;

pub fn digest(name: &str) -> Digest {
    // A stable fake digest per name.
    let hex: String = blake3::hash(name.as_bytes()).to_hex().to_string();
    format!("sha256:{hex}").parse().unwrap()
}

/// An image with one manifest over `layers` (names), plus a config.
pub fn image(name: &str, repository: &str, tag: &str, layers: &[&str]) -> ResolvedImage {
    let manifest = digest(&format!("manifest:{name}:{}", layers.join(",")));
    let mut blobs = vec![(digest(&format!("config:{name}")), 100)];
    blobs.extend(layers.iter().map(|layer| (digest(layer), 1000)));
    ResolvedImage {
        name: name.to_owned(),
        source: Source::Registry(format!("quay.io/{repository}")),
        blob_sources: Default::default(),
        destination_repository: format!("mirror/{repository}"),
        destination_tag: Some(tag.to_owned()),
        top: manifest.clone(),
        manifests: vec![ResolvedManifest {
            digest: manifest,
            media_type: "application/vnd.oci.image.manifest.v1+json".to_owned(),
            size: 500,
            children: Vec::new(),
            blobs,
        }],
        category: Category::Additional,
        signature_of: None,
    }
}

pub fn destination() -> Destination {
    Destination {
        registry: "mirror.local:5000".to_owned(),
        prefix: "mirror".to_owned(),
    }
}

/// Records every planned action as done, as the executor does (an
/// image recorded in a delivery is kept as a tag without a name).
pub fn apply(plan: &Plan, state: &mut StateSnapshot) {
    for planned in &plan.actions {
        state.done.insert(planned.key);
        state
            .done
            .extend(planned.action.implied_link().map(|link| link.key()));
        match &planned.action {
            Action::Tag {
                repository,
                tag,
                digest,
            } => {
                state
                    .tags
                    .insert((repository.clone(), tag.clone()), digest.clone());
            }
            Action::RecordImage { name, digest } => {
                state
                    .tags
                    .insert((name.clone(), String::new()), digest.clone());
            }
            _ => {}
        }
    }
}
