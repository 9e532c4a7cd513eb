//! The graph image built from the real graph-data tarball of the fixtures
//! over an in-memory base image.

use std::collections::BTreeMap;
use std::io::Read;

use super::*;
use crate::layer_files::LayerFilesError;

const FIXTURE: &str =
    "../../shared/fixtures/openshift+oc-mirror/tests/unit/testdata/graph-assets/graph-data.tar.gz";

fn tarball() -> Vec<u8> {
    std::fs::read(std::path::Path::new(env!("CARGO_MANIFEST_DIR")).join(FIXTURE)).unwrap()
}

fn sha(bytes: &[u8]) -> Digest {
    digest_of(ferry_schemas::DigestAlgorithm::Sha256, bytes)
}

/// A base image in memory: a Docker manifest list over arm64 (first) and
/// amd64 images.
struct Base {
    top: Vec<u8>,
    documents: BTreeMap<Digest, Vec<u8>>,
}

impl Base {
    fn new() -> Base {
        let mut documents = BTreeMap::new();
        let mut descriptors = Vec::new();
        for architecture in ["arm64", "amd64"] {
            let layer = format!("a {architecture} layer").into_bytes();
            let config = serde_json::to_vec(&json!({
                "architecture": architecture,
                "os": "linux",
                "created": "2024-01-01T00:00:00Z",
                "config": {"Env": ["PATH=/usr/bin"], "Cmd": ["/bin/bash"], "Labels": {"name": "ubi9"}},
                "rootfs": {"type": "layers", "diff_ids": [sha(b"diff").to_string()]},
                "history": [{"created_by": "base"}],
            }))
            .unwrap();
            let manifest = serde_json::to_vec(&json!({
                "schemaVersion": 2,
                "mediaType": "application/vnd.docker.distribution.manifest.v2+json",
                "config": {"mediaType": "application/vnd.docker.container.image.v1+json", "size": config.len(), "digest": sha(&config).to_string()},
                "layers": [{"mediaType": "application/vnd.docker.image.rootfs.diff.tar.gzip", "size": layer.len(), "digest": sha(&layer).to_string()}],
            }))
            .unwrap();
            descriptors.push(json!({
                "mediaType": "application/vnd.docker.distribution.manifest.v2+json",
                "size": manifest.len(),
                "digest": sha(&manifest).to_string(),
                "platform": {"architecture": architecture, "os": "linux"},
            }));
            documents.insert(sha(&config), config);
            documents.insert(sha(&layer), layer);
            documents.insert(sha(&manifest), manifest);
        }
        let top = serde_json::to_vec(&json!({
            "schemaVersion": 2,
            "mediaType": "application/vnd.docker.distribution.manifest.list.v2+json",
            "manifests": descriptors,
        }))
        .unwrap();
        Base { top, documents }
    }
}

impl ImageBlobs for Base {
    fn place(&self) -> String {
        "base".to_owned()
    }
    fn top(&self) -> std::result::Result<Vec<u8>, LayerFilesError> {
        Ok(self.top.clone())
    }
    fn manifest(&self, digest: &Digest) -> std::result::Result<Vec<u8>, LayerFilesError> {
        self.documents
            .get(digest)
            .cloned()
            .ok_or_else(|| LayerFilesError::Layout {
                place: self.place(),
                message: format!("no {digest}"),
            })
    }
    fn blob(&self, digest: &Digest) -> std::result::Result<Box<dyn Read + '_>, LayerFilesError> {
        Ok(Box::new(std::io::Cursor::new(self.manifest(digest)?)))
    }
}

fn target() -> UpdateServiceTarget {
    update_service_target(&CollectContext {
        prefix: "mirror".to_owned(),
        ..CollectContext::default()
    })
}

fn built(cache: &BlobStore) -> BuiltImage {
    let source = Source::Registry("registry.access.redhat.com/ubi9/ubi".to_owned());
    build(&Base::new(), source, &tarball(), cache, true, &target()).unwrap()
}

#[test]
fn the_same_tarball_and_base_build_the_same_image() {
    let first_cache = tempfile::tempdir().unwrap();
    let second_cache = tempfile::tempdir().unwrap();
    let first = built(&BlobStore::open(first_cache.path()).unwrap());
    let second = built(&BlobStore::open(second_cache.path()).unwrap());
    assert_eq!(first.manifest, second.manifest, "same inputs, same digest");
    assert_eq!(first.name, GRAPH_IMAGE_NAME);
    assert_eq!(first.destination_repository, "mirror/openshift/graph-image");
    assert_eq!(first.destination_tag, "latest");
    assert_eq!(first.category, Category::Release);
    // Another tarball, another image.
    let cache = tempfile::tempdir().unwrap();
    let mut builder = tar::Builder::new(Vec::new());
    let mut header = tar::Header::new_gnu();
    header.set_size(1);
    header.set_entry_type(tar::EntryType::Regular);
    builder
        .append_data(&mut header, "version", &b"2"[..])
        .unwrap();
    let other = build(
        &Base::new(),
        Source::Cache,
        &builder.into_inner().unwrap(),
        &BlobStore::open(cache.path()).unwrap(),
        true,
        &target(),
    )
    .unwrap();
    assert_ne!(other.manifest.digest, first.manifest.digest);
}

#[test]
fn the_image_is_the_amd64_base_plus_the_graph_data_layer_with_oc_mirrors_command() {
    let folder = tempfile::tempdir().unwrap();
    let cache = BlobStore::open(folder.path()).unwrap();
    let image = built(&cache);
    let manifest: Value = serde_json::from_slice(&image.manifest.bytes).unwrap();
    assert_eq!(
        manifest["mediaType"],
        "application/vnd.oci.image.manifest.v1+json"
    );
    let layers = manifest["layers"].as_array().unwrap();
    assert_eq!(layers.len(), 2, "the base's one layer, then the graph data");
    assert_eq!(
        layers[0]["digest"],
        sha(b"a amd64 layer").to_string(),
        "the amd64 image of the list"
    );
    assert_eq!(
        layers[0]["mediaType"],
        "application/vnd.oci.image.layer.v1.tar+gzip"
    );
    assert_eq!(
        image.layers[0].source,
        Source::Registry("registry.access.redhat.com/ubi9/ubi".to_owned())
    );
    assert_eq!(image.layers[1].source, Source::Cache);
    assert!(cache.contains(&image.layers[1].digest));
    let config_digest = &image.config.as_ref().unwrap().digest;
    let mut config = Vec::new();
    cache
        .open_blob(config_digest)
        .unwrap()
        .read_to_end(&mut config)
        .unwrap();
    let config: Value = serde_json::from_slice(&config).unwrap();
    assert_eq!(config["architecture"], "amd64");
    assert_eq!(config["config"]["Cmd"], json!(COMMAND));
    assert_eq!(config["config"]["Env"], json!(["PATH=/usr/bin"]));
    assert!(config.get("created").is_none());
    assert_eq!(
        config["rootfs"]["diff_ids"][1],
        image.layers[1].digest.to_string()
    );

    // The layer: the tarball's entries under the graph data folder, fixed
    // headers, parents first.
    let mut layer = Vec::new();
    cache
        .open_blob(&image.layers[1].digest)
        .unwrap()
        .read_to_end(&mut layer)
        .unwrap();
    let mut archive = tar::Archive::new(layer.as_slice());
    let mut names = Vec::new();
    for entry in archive.entries().unwrap() {
        let entry = entry.unwrap();
        let header = entry.header();
        assert_eq!(header.mtime().unwrap(), 0);
        assert_eq!(header.uid().unwrap(), 0);
        assert_eq!(header.gid().unwrap(), 0);
        let name = entry.path().unwrap().display().to_string();
        if header.entry_type().is_file() {
            assert_eq!(header.mode().unwrap(), 0o644, "{name}");
        }
        names.push(name);
    }
    assert_eq!(
        names[..3],
        ["var/", "var/lib/", "var/lib/cincinnati-graph-data/"]
    );
    for expected in [
        "var/lib/cincinnati-graph-data/version",
        "var/lib/cincinnati-graph-data/raw/metadata.json",
        "var/lib/cincinnati-graph-data/channels/stable-4.13.yaml",
    ] {
        assert!(names.iter().any(|name| name == expected), "{expected}");
    }
    let fixture_entries = {
        let mut plain = Vec::new();
        flate2::read::GzDecoder::new(tarball().as_slice())
            .read_to_end(&mut plain)
            .unwrap();
        tar::Archive::new(plain.as_slice())
            .entries()
            .unwrap()
            .filter(|entry| entry.as_ref().unwrap().header().entry_type().is_file())
            .count()
    };
    let files = names.iter().filter(|name| !name.ends_with('/')).count();
    assert_eq!(files, fixture_entries, "every file of the tarball");
}

#[test]
fn entries_that_leave_the_folder_are_refused_and_plain_tar_is_accepted() {
    let mut builder = tar::Builder::new(Vec::new());
    let mut header = tar::Header::new_gnu();
    header.set_size(1);
    header.set_entry_type(tar::EntryType::Regular);
    // `append_data` refuses `..`; the name is written into the header.
    header.as_gnu_mut().unwrap().name[..9].copy_from_slice(b"../escape");
    header.set_cksum();
    builder.append(&header, &b"x"[..]).unwrap();
    let escaping = builder.into_inner().unwrap();
    let error = graph_data_layer(&escaping).unwrap_err();
    assert!(error.contains("leaves its folder"), "{error}");

    let plain = {
        let mut builder = tar::Builder::new(Vec::new());
        let mut header = tar::Header::new_gnu();
        header.set_size(2);
        header.set_entry_type(tar::EntryType::Regular);
        builder
            .append_data(&mut header, "./channels/a.yaml", &b"a\n"[..])
            .unwrap();
        builder.into_inner().unwrap()
    };
    let layer = graph_data_layer(&plain).unwrap();
    let names: Vec<String> = tar::Archive::new(layer.as_slice())
        .entries()
        .unwrap()
        .map(|entry| entry.unwrap().path().unwrap().display().to_string())
        .collect();
    assert_eq!(
        names,
        [
            "var/",
            "var/lib/",
            "var/lib/cincinnati-graph-data/",
            "var/lib/cincinnati-graph-data/channels/",
            "var/lib/cincinnati-graph-data/channels/a.yaml",
        ]
    );
    assert!(graph_data_layer(b"\x1f\x8bnot gzip").is_err());
}

#[test]
fn a_record_names_the_same_image_and_a_tampered_one_is_refused() {
    let folder = tempfile::tempdir().unwrap();
    let cache = BlobStore::open(folder.path().join("cache")).unwrap();
    let image = built(&cache);
    let bytes = record(&image).unwrap();
    let again = image_from_record(&bytes, &target()).unwrap();
    assert_eq!(again, image);
    // Another prefix names it elsewhere; the digest stays.
    let elsewhere =
        image_from_record(&bytes, &update_service_target(&CollectContext::default())).unwrap();
    assert_eq!(elsewhere.manifest.digest, image.manifest.digest);
    assert_eq!(elsewhere.destination_repository, "openshift/graph-image");
    let mut tampered: Value = serde_json::from_slice(&bytes).unwrap();
    tampered["manifest"] = Value::String(
        tampered["manifest"]
            .as_str()
            .unwrap()
            .replace("\"schemaVersion\":2", "\"schemaVersion\":2 "),
    );
    let error = image_from_record(&serde_json::to_vec(&tampered).unwrap(), &target()).unwrap_err();
    assert!(
        error.message.contains("not the one ferry writes"),
        "{error}"
    );
    assert_eq!(error.category, Some(Category::Release));
    let newer = json!({"format_version": 2});
    assert!(image_from_record(newer.to_string().as_bytes(), &target()).is_err());
    let workspace = Workspace::in_folder(folder.path());
    save_record(&workspace, &bytes).unwrap();
    assert_eq!(read_record(&workspace).unwrap(), bytes);
}
