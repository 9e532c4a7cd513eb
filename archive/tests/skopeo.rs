//! Segments are OCI image layouts that skopeo 1.9 reads:
//! `skopeo inspect --raw oci-archive:SEGMENT:REF` returns the packed
//! manifest bytes, and `skopeo copy --all oci-archive:SEGMENT:REF
//! docker://127.0.0.1:PORT/...` into a real registry delivers the same
//! digests, for a single image and for a multi-architecture index, named
//! by tag, by digest, and through the ref-name mapping. Several segments
//! (and several deliveries) unpacked into one folder form one layout.

mod common;

use std::collections::BTreeMap;
use std::path::Path;
use std::process::{Command, Output};

use ferry_archive::{
    DeliveryInput, ImageRecord, ManifestEntry, is_valid_ref_name, oci_ref_name, write_delivery,
};
use ferry_store::BlobStore;
use ferry_testworld::content::Content;
use ferry_testworld::image_builder::{Format, LayerFiles, add_image, add_index, add_layer};
use ferry_testworld::registry::{Flavour, Registry, Storage};

use common::{add_blobs, image};

fn skopeo(args: &[&str]) -> Output {
    Command::new("skopeo")
        .args(args)
        .output()
        .expect("skopeo runs (is the skopeo package installed?)")
}

fn skopeo_ok(args: &[&str]) -> Vec<u8> {
    let output = skopeo(args);
    assert!(
        output.status.success(),
        "skopeo {args:?} failed: {}",
        String::from_utf8_lossy(&output.stderr)
    );
    output.stdout
}

/// Images of both formats: (configured name, top manifest digest).
struct World {
    content: Content,
    images: Vec<(String, String)>,
}

const OCI_SINGLE: &str = "quay.io/ferry-demo/oci-app:1.0";
/// Image names the grammar refuses: `__` and `---`.
const OCI_ODD: &str = "quay.io/ferry__demo/oci---multi:v1";

fn world() -> World {
    let mut content = Content::default();
    let mut images = Vec::new();
    for (format, kind) in [(Format::Oci, "oci"), (Format::Docker, "docker")] {
        let files = LayerFiles::new().random_file("data/file", 300_000, &format!("{kind}-single"));
        let layer = add_layer(&mut content, &files, format, true);
        let single = add_image(&mut content, format, "amd64", &[("kind", kind)], &[layer]);
        images.push((
            format!("quay.io/ferry-demo/{kind}-app:1.0"),
            single.manifest.digest.clone(),
        ));
        let children: Vec<_> = ["amd64", "arm64"]
            .iter()
            .map(|architecture| {
                let files = LayerFiles::new().random_file(
                    "data/file",
                    200_000,
                    &format!("{kind}-{architecture}"),
                );
                let layer = add_layer(&mut content, &files, format, true);
                add_image(&mut content, format, architecture, &[], &[layer])
            })
            .collect();
        let index = add_index(&mut content, format, &children);
        images.push((
            format!("quay.io/ferry-demo/{kind}-multi@{}", index.digest),
            index.digest.clone(),
        ));
        images.push((
            format!("quay.io/ferry__demo/{kind}---multi:v1"),
            index.digest.clone(),
        ));
    }
    World { content, images }
}

struct Packed {
    _folder: tempfile::TempDir,
    output: std::path::PathBuf,
    manifests: BTreeMap<String, ManifestEntry>,
    records: Vec<ImageRecord>,
}

fn pack(world: &World, max_segment_bytes: u64) -> (Packed, DeliveryInput) {
    let folder = tempfile::tempdir().unwrap();
    let store = BlobStore::open(folder.path().join("cache")).unwrap();
    let blobs = add_blobs(
        &store,
        &world.content.blobs.values().cloned().collect::<Vec<_>>(),
    );
    let manifests: BTreeMap<String, ManifestEntry> = world
        .content
        .manifests
        .iter()
        .map(|(digest, manifest)| {
            (
                digest.clone(),
                common::manifest(&manifest.media_type, manifest.bytes.clone()),
            )
        })
        .collect();
    let records: Vec<ImageRecord> = world
        .images
        .iter()
        .map(|(name, digest)| image(name, &manifests[digest]))
        .collect();
    let input = DeliveryInput {
        inputs: None,
        delivery: 1,
        previous: None,
        first_segment: 1,
        max_segment_bytes,
        strict: false,
        config_text: "kind: ImageSetConfiguration\n".to_owned(),
        plan_json: "{}".to_owned(),
        images: records.clone(),
        manifests: manifests.values().cloned().collect(),
        blobs,
    };
    let output = folder.path().join("out");
    write_delivery(&input, &store, &output).unwrap();
    (
        Packed {
            _folder: folder,
            output,
            manifests,
            records,
        },
        input,
    )
}

fn reference_in(archive: &Path, name: &str) -> String {
    format!("oci-archive:{}:{}", archive.display(), oci_ref_name(name))
}

#[test]
fn skopeo_reads_every_oci_image_of_a_segment_by_its_ref_name() {
    let world = world();
    let (packed, _) = pack(&world, 1 << 30);
    let segment = packed.output.join("mirror_000001.tar");
    assert_eq!(common::segment_files(&packed.output), ["mirror_000001.tar"]);
    for record in &packed.records {
        let ref_name = oci_ref_name(&record.name);
        assert!(is_valid_ref_name(&ref_name), "{ref_name}");
        if !record.media_type.starts_with("application/vnd.oci.") {
            continue;
        }
        let raw = skopeo_ok(&["inspect", "--raw", &reference_in(&segment, &record.name)]);
        assert_eq!(
            raw,
            packed.manifests[&record.digest.to_string()].bytes,
            "{}",
            record.name
        );
    }
    // Names by digest pass unchanged; names with `__` or `---` do not, and
    // skopeo refuses them as they are, which is why they are mapped.
    let by_digest = &packed.records[1].name;
    assert!(by_digest.contains("@sha256:"));
    assert_eq!(&oci_ref_name(by_digest), by_digest);
    assert_eq!(oci_ref_name(OCI_ODD), "quay.io/ferry_demo/oci-multi:v1");
    let refused = skopeo(&[
        "inspect",
        "--raw",
        &format!("oci-archive:{}:{OCI_ODD}", segment.display()),
    ]);
    assert!(!refused.status.success());
    let stderr = String::from_utf8_lossy(&refused.stderr);
    assert!(stderr.contains("Invalid image"), "{stderr}");
}

#[test]
fn index_json_lists_every_image_with_its_full_name_and_true_media_type() {
    let world = world();
    let (packed, _) = pack(&world, 1 << 30);
    let unpacked = tempfile::tempdir().unwrap();
    tar::Archive::new(std::fs::File::open(packed.output.join("mirror_000001.tar")).unwrap())
        .unpack(unpacked.path())
        .unwrap();
    assert_eq!(
        std::fs::read_to_string(unpacked.path().join("oci-layout")).unwrap(),
        r#"{"imageLayoutVersion":"1.0.0"}"#
    );
    let index: serde_json::Value =
        serde_json::from_slice(&std::fs::read(unpacked.path().join("index.json")).unwrap())
            .unwrap();
    let listed = index["manifests"].as_array().unwrap();
    assert_eq!(listed.len(), packed.records.len());
    for record in &packed.records {
        let entry = listed
            .iter()
            .find(|entry| entry["annotations"]["io.ferry.image.name"] == record.name.as_str())
            .unwrap_or_else(|| panic!("{} listed", record.name));
        assert_eq!(entry["digest"], record.digest.to_string());
        assert_eq!(entry["mediaType"], record.media_type.as_str());
        assert_eq!(entry["size"], record.size);
        assert_eq!(
            entry["annotations"]["org.opencontainers.image.ref.name"],
            oci_ref_name(&record.name).as_str()
        );
    }
    // Every blob and manifest is in blobs/sha256.
    for digest in world
        .content
        .blobs
        .keys()
        .chain(world.content.manifests.keys())
    {
        let hex = digest.strip_prefix("sha256:").unwrap();
        assert!(
            unpacked.path().join("blobs/sha256").join(hex).is_file(),
            "{digest}"
        );
    }
}

#[test]
fn skopeo_copies_a_single_image_and_an_index_into_a_registry_with_their_digests() {
    let world = world();
    let (packed, _) = pack(&world, 1 << 30);
    let segment = packed.output.join("mirror_000001.tar");
    let registry = Registry::start(Flavour::PlainHttp, Storage::Empty).unwrap();
    let index_name = packed
        .records
        .iter()
        .find(|record| record.name.starts_with("quay.io/ferry-demo/oci-multi@"))
        .unwrap()
        .name
        .clone();
    for (name, target) in [
        (OCI_SINGLE, "ferry-demo/oci-app:copied"),
        (index_name.as_str(), "ferry-demo/oci-multi:copied"),
        (OCI_ODD, "ferry-demo/odd:copied"),
    ] {
        let destination = format!("docker://{}/{target}", registry.host());
        skopeo_ok(&[
            "copy",
            "--all",
            "--dest-tls-verify=false",
            &reference_in(&segment, name),
            &destination,
        ]);
        let record = packed
            .records
            .iter()
            .find(|record| record.name == name)
            .unwrap();
        let raw = skopeo_ok(&["inspect", "--raw", "--tls-verify=false", &destination]);
        assert_eq!(
            raw,
            packed.manifests[&record.digest.to_string()].bytes,
            "{name}"
        );
    }
    // The index's children arrived too, byte for byte, by digest.
    let index: serde_json::Value = serde_json::from_slice(
        &packed.manifests[&packed
            .records
            .iter()
            .find(|record| record.name == index_name)
            .unwrap()
            .digest
            .to_string()]
            .bytes,
    )
    .unwrap();
    for child in index["manifests"].as_array().unwrap() {
        let digest = child["digest"].as_str().unwrap();
        let raw = skopeo_ok(&[
            "inspect",
            "--raw",
            "--tls-verify=false",
            &format!("docker://{}/ferry-demo/oci-multi@{digest}", registry.host()),
        ]);
        assert_eq!(raw, packed.manifests[digest].bytes);
    }
}

#[test]
fn segments_unpacked_into_one_folder_form_one_layout() {
    let world = world();
    // Small segments: the 300 kB and 200 kB layers land in different files.
    let (packed, _) = pack(&world, 400_000);
    let files = common::segment_files(&packed.output);
    assert!(files.len() >= 3, "{files:?}");
    let unpacked = tempfile::tempdir().unwrap();
    let mut seen: BTreeMap<String, Vec<u8>> = BTreeMap::new();
    for file in &files {
        let mut archive = tar::Archive::new(std::fs::File::open(packed.output.join(file)).unwrap());
        for entry in archive.entries().unwrap() {
            let mut entry = entry.unwrap();
            let path = entry.path().unwrap().to_string_lossy().into_owned();
            let mut bytes = Vec::new();
            std::io::Read::read_to_end(&mut entry, &mut bytes).unwrap();
            if let Some(previous) = seen.insert(path.clone(), bytes.clone()) {
                assert_eq!(previous, bytes, "{path} differs between segments");
            }
        }
        tar::Archive::new(std::fs::File::open(packed.output.join(file)).unwrap())
            .unpack(unpacked.path())
            .unwrap();
    }
    let layout = unpacked.path().display().to_string();
    for record in packed
        .records
        .iter()
        .filter(|record| record.media_type.starts_with("application/vnd.oci."))
    {
        let reference = format!("oci:{layout}:{}", oci_ref_name(&record.name));
        let raw = skopeo_ok(&["inspect", "--raw", &reference]);
        assert_eq!(raw, packed.manifests[&record.digest.to_string()].bytes);
        // Copying reads every blob: all are present and match.
        let copy = tempfile::tempdir().unwrap();
        skopeo_ok(&[
            "copy",
            "--all",
            &reference,
            &format!("dir:{}", copy.path().display()),
        ]);
    }
}
