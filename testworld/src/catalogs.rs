//! Operator catalog images holding real file-based catalogs.
//!
//! The catalogs in `testworld/data/catalogs/` name bundle and related images
//! by digests nobody can reproduce. The world builds one small image for
//! each distinct reference and rewrites the catalog to name it: the same
//! host and repository, the same tag where the original used a tag, the new
//! digest where it used a digest. Packages, channels, versions and upgrade
//! edges stay as they are. [`reference_mapping`] lists every rewrite; it is
//! committed as `testworld/data/catalogs/reference-mapping.txt`.

use std::collections::{BTreeMap, BTreeSet};

use serde_json::Value;

use crate::content::Content;
use crate::image_builder::{Format, LayerFiles, add_image, add_index, add_layer};

const TEST_CATALOG: &str = include_str!("../data/catalogs/test-catalog-latest.index.yaml");
const JAEGER: &str = include_str!("../data/catalogs/jaeger-product.catalog.json");
const NODE_OBSERVABILITY: &str =
    include_str!("../data/catalogs/node-observability-operator.catalog.json");

/// The label that tells OLM where the catalog lives in the image.
pub const CONFIGS_LABEL: &str = "operators.operatorframework.io.index.configs.v1";

/// One catalog file as shipped: package folder, file name, text.
struct CatalogFile {
    package: &'static str,
    file_name: &'static str,
    text: &'static str,
}

fn catalog_files() -> [CatalogFile; 3] {
    [
        CatalogFile {
            package: "bar-and-friends",
            file_name: "index.yaml",
            text: TEST_CATALOG,
        },
        CatalogFile {
            package: "jaeger-product",
            file_name: "catalog.json",
            text: JAEGER,
        },
        CatalogFile {
            package: "node-observability-operator",
            file_name: "catalog.json",
            text: NODE_OBSERVABILITY,
        },
    ]
}

/// Every bundle `image` and `relatedImages[].image` of a catalog's text.
fn image_references(file: &CatalogFile) -> BTreeSet<String> {
    let documents: Vec<Value> = if file.file_name.ends_with(".yaml") {
        serde_yaml::Deserializer::from_str(file.text)
            .filter_map(|document| serde::Deserialize::deserialize(document).ok())
            .collect()
    } else {
        serde_json::Deserializer::from_str(file.text)
            .into_iter::<Value>()
            .filter_map(Result::ok)
            .collect()
    };
    let mut references = BTreeSet::new();
    for document in documents {
        if document["schema"] != "olm.bundle" {
            continue;
        }
        if let Some(image) = document["image"].as_str() {
            references.insert(image.to_owned());
        }
        for related in document["relatedImages"].as_array().into_iter().flatten() {
            if let Some(image) = related["image"].as_str()
                && !image.is_empty()
            {
                references.insert(image.to_owned());
            }
        }
    }
    references
}

/// Splits `host/repository[:tag][@digest]` into name, tag, has-digest.
fn split_reference(reference: &str) -> (String, Option<String>, bool) {
    let (name_and_tag, has_digest) = match reference.split_once('@') {
        Some((name, _)) => (name, true),
        None => (reference, false),
    };
    let slash = name_and_tag.rfind('/').unwrap_or(0);
    match name_and_tag.rfind(':') {
        Some(colon) if colon > slash => (
            name_and_tag[..colon].to_owned(),
            Some(name_and_tag[colon + 1..].to_owned()),
            has_digest,
        ),
        _ => (name_and_tag.to_owned(), None, has_digest),
    }
}

/// Builds the image standing in for `original` and returns the rewritten reference.
fn build_stand_in(content: &mut Content, original: &str) -> String {
    let (name, tag, has_digest) = split_reference(original);
    let (host, repository) = name
        .split_once('/')
        .expect("catalog references name a host");
    let layer = add_layer(
        content,
        &LayerFiles::new()
            .file("stand-in.txt", format!("stands in for {original}\n"))
            .random_file("usr/bin/operator", 2 * 1024, original),
        Format::Oci,
        true,
    );
    let image = add_image(
        content,
        Format::Oci,
        "amd64",
        &[("io.ferry.stands-in-for", original)],
        &[layer],
    );
    let digest = image.manifest.digest;
    match (&tag, has_digest) {
        (_, true) => {
            content.place(host, repository, &digest, &[]);
            format!("{name}@{digest}")
        }
        (Some(tag), false) => {
            content.place(host, repository, &digest, &[tag]);
            format!("{name}:{tag}")
        }
        (None, false) => {
            content.place(host, repository, &digest, &["latest"]);
            name.clone()
        }
    }
}

/// Rewritten catalogs and the original → rewritten mapping.
struct Rewritten {
    files: Vec<(String, String, String)>,
    mapping: BTreeMap<String, String>,
}

fn rewrite_all(content: &mut Content) -> Rewritten {
    let mut mapping = BTreeMap::new();
    let mut files = Vec::new();
    for file in catalog_files() {
        let mut text = file.text.to_owned();
        for original in image_references(&file) {
            let rewritten = mapping
                .entry(original.clone())
                .or_insert_with(|| build_stand_in(content, &original))
                .clone();
            if rewritten != original {
                text = text.replace(&original, &rewritten);
            }
        }
        files.push((file.package.to_owned(), file.file_name.to_owned(), text));
    }
    Rewritten { files, mapping }
}

/// `original=rewritten` lines, sorted: the committed mapping file's text.
pub fn reference_mapping() -> String {
    let mut scratch = Content::default();
    let rewritten = rewrite_all(&mut scratch);
    rewritten
        .mapping
        .iter()
        .map(|(original, new)| format!("{original}={new}\n"))
        .collect()
}

fn catalog_image(
    content: &mut Content,
    files: &[&(String, String, String)],
    architecture: &str,
) -> crate::image_builder::Image {
    let mut layer_files = LayerFiles::new();
    for (package, file_name, text) in files {
        layer_files = layer_files.file(
            &format!("configs/{package}/{file_name}"),
            text.as_bytes().to_vec(),
        );
    }
    let base = add_layer(
        content,
        &LayerFiles::new().random_file("bin/opm", 16 * 1024, &format!("opm-{architecture}")),
        Format::Oci,
        true,
    );
    let configs = add_layer(content, &layer_files, Format::Oci, true);
    add_image(
        content,
        Format::Oci,
        architecture,
        &[(CONFIGS_LABEL, "/configs")],
        &[base, configs],
    )
}

/// Adds the catalog images and every image they name.
pub fn add_catalogs(content: &mut Content) {
    let rewritten = rewrite_all(content);
    let by_package = |name: &str| {
        rewritten
            .files
            .iter()
            .find(|(package, _, _)| package == name)
            .expect("known package")
    };
    let jaeger = by_package("jaeger-product");
    let node_observability = by_package("node-observability-operator");
    let test_catalog = by_package("bar-and-friends");

    // redhat-operator-index:v4.16: both packages, multi-architecture.
    let images: Vec<_> = ["amd64", "arm64"]
        .iter()
        .map(|architecture| catalog_image(content, &[jaeger, node_observability], architecture))
        .collect();
    let index = add_index(content, Format::Oci, &images);
    content.place(
        "registry.redhat.io",
        "redhat/redhat-operator-index",
        &index.digest,
        &["v4.16"],
    );

    // redhat-operator-index:v4.15: one package, one architecture.
    let v415 = catalog_image(content, &[node_observability], "amd64");
    content.place(
        "registry.redhat.io",
        "redhat/redhat-operator-index",
        &v415.manifest.digest,
        &["v4.15"],
    );

    // The small test catalog.
    let test = catalog_image(content, &[test_catalog], "amd64");
    content.place(
        "quay.io",
        "ferry-demo/test-catalog",
        &test.manifest.digest,
        &["latest"],
    );
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn committed_mapping_is_current() {
        let path = std::path::Path::new(env!("CARGO_MANIFEST_DIR"))
            .join("data/catalogs/reference-mapping.txt");
        let mapping = reference_mapping();
        if std::env::var_os("FERRY_BLESS").is_some() {
            std::fs::write(&path, &mapping).unwrap();
        }
        let committed = std::fs::read_to_string(&path).unwrap_or_default();
        assert!(
            committed == mapping,
            "reference-mapping.txt is stale: rerun with FERRY_BLESS=1"
        );
    }

    #[test]
    fn rewrite_leaves_no_original_digest_behind() {
        let mut content = Content::default();
        let rewritten = rewrite_all(&mut content);
        assert!(
            rewritten.mapping.len() > 50,
            "{} references",
            rewritten.mapping.len()
        );
        for (original, new) in &rewritten.mapping {
            if original.contains('@') {
                assert_ne!(original, new);
                for (_, _, text) in &rewritten.files {
                    assert!(!text.contains(original.as_str()), "{original} survived");
                }
            } else {
                assert_eq!(original, new, "tag references keep their text");
            }
        }
    }

    #[test]
    fn packages_channels_and_bundles_survive() {
        let mut content = Content::default();
        let rewritten = rewrite_all(&mut content);
        let (_, _, jaeger) = &rewritten.files[1];
        let count = |text: &str, needle: &str| text.matches(needle).count();
        assert_eq!(
            count(jaeger, "\"olm.bundle\""),
            count(JAEGER, "\"olm.bundle\"")
        );
        assert_eq!(count(jaeger, "\"replaces\""), count(JAEGER, "\"replaces\""));
        assert_eq!(count(jaeger, "skipRange"), count(JAEGER, "skipRange"));
    }
}
