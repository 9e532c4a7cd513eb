//! Format versions: what version 2 writes (compressed plan and inputs, no
//! `images.json`, a compact `index.json` that is the image list), reading
//! deliveries of version 1 (alone and followed by version 2 in one folder),
//! and the refusal of a newer version naming the ferry that wrote it.
//!
//! `fixtures/format-1/` holds two deliveries written by the format-1
//! writer (ferry at commit 7c6fe68): delivery 1 (`mirror_000001.tar`, two
//! blobs, one image, an `inputs.json`) and delivery 2 (`mirror_000002.tar`,
//! one blob, two images), made from `common::delivery` with the blobs
//! `ferry format 1 fixture: blob one\n`, `... two\n` and `... three\n`.

mod common;

use std::collections::BTreeSet;
use std::fs;
use std::io::Read;
use std::path::{Path, PathBuf};

use ferry_archive::{FORMAT_VERSION, import_folder, read_folder, verify_folder, write_delivery};

use common::{add_blobs, delivery, store_with};

const FIXTURE_INPUTS: &[u8] = br#"{"format_version":1,"files":{"hold-release/a.json":"{}"}}"#;

fn fixture_blobs() -> Vec<Vec<u8>> {
    ["one", "two", "three"]
        .iter()
        .map(|word| format!("ferry format 1 fixture: blob {word}\n").into_bytes())
        .collect()
}

/// A copy of the format-1 fixture deliveries in a fresh folder.
fn format_1_folder() -> (tempfile::TempDir, PathBuf) {
    let folder = tempfile::tempdir().unwrap();
    let output = folder.path().join("out");
    fs::create_dir(&output).unwrap();
    let fixtures = Path::new(env!("CARGO_MANIFEST_DIR")).join("tests/fixtures/format-1");
    for name in ["mirror_000001.tar", "mirror_000002.tar"] {
        fs::copy(fixtures.join(name), output.join(name)).unwrap();
    }
    (folder, output)
}

/// Every entry of a segment file: path → content.
fn contents(segment: &Path) -> Vec<(String, Vec<u8>)> {
    let mut archive = tar::Archive::new(fs::File::open(segment).unwrap());
    archive
        .entries()
        .unwrap()
        .map(|entry| {
            let mut entry = entry.unwrap();
            let path = entry.path().unwrap().to_string_lossy().into_owned();
            let mut bytes = Vec::new();
            entry.read_to_end(&mut bytes).unwrap();
            (path, bytes)
        })
        .collect()
}

/// Where `needle` first occurs in `bytes`.
fn find_bytes(bytes: &[u8], needle: &[u8]) -> Option<usize> {
    bytes
        .windows(needle.len())
        .position(|window| window == needle)
}

fn gunzip(bytes: &[u8]) -> Vec<u8> {
    let mut text = Vec::new();
    flate2::read::GzDecoder::new(bytes)
        .read_to_end(&mut text)
        .unwrap();
    text
}

#[test]
fn version_2_compresses_the_plan_and_inputs_and_lists_images_in_index_json_alone() {
    assert_eq!(FORMAT_VERSION, 2);
    let (folder, store, entries_in) = store_with(&common::blobs("version-2", 3, &[2_000]));
    let mut input = delivery(1, 1, 1 << 20, entries_in);
    let plan = format!("{{\"actions\":[{}]}}", "{\"verb\":\"pack\"},".repeat(200));
    input.plan_json = plan.clone();
    input.inputs = Some(br#"{"format_version":1,"files":{"hold-release/b.json":"[]"}}"#.to_vec());
    let output = folder.path().join("out");
    write_delivery(&input, &store, &output).unwrap();
    let entries = contents(&output.join("mirror_000001.tar"));
    let paths: Vec<&str> = entries.iter().map(|(path, _)| path.as_str()).collect();
    assert!(
        !paths.iter().any(|path| path.ends_with("images.json")),
        "{paths:?}"
    );
    let find = |wanted: &str| {
        &entries
            .iter()
            .find(|(path, _)| path == wanted)
            .unwrap_or_else(|| panic!("{wanted} in {paths:?}"))
            .1
    };
    let stored_plan = find("ferry/deliveries/000001/plan.json.gz");
    assert_eq!(&stored_plan[..2], &[0x1f, 0x8b], "gzip");
    assert!(
        stored_plan.len() < plan.len() / 5,
        "{} bytes",
        stored_plan.len()
    );
    assert_eq!(gunzip(stored_plan), plan.as_bytes());
    assert_eq!(
        gunzip(find("ferry/deliveries/000001/inputs.json.gz")),
        input.inputs.clone().unwrap()
    );
    let table: serde_json::Value =
        serde_json::from_slice(find("ferry/deliveries/000001/segment-000001.json")).unwrap();
    assert_eq!(table["format_version"], 2);
    assert_eq!(
        table["writer"],
        format!("ferry {}", env!("CARGO_PKG_VERSION")).as_str()
    );
    // index.json: compact, and the image list read back from it.
    let index = find("index.json");
    assert!(!index.contains(&b'\n'), "compact JSON");
    let summary = &read_folder(&output).unwrap()[0];
    assert_eq!(summary.images, input.images);
    assert_eq!(summary.inputs, input.inputs);
    verify_folder(&output, &BTreeSet::new()).unwrap();
}

#[test]
fn an_index_json_ferry_would_not_write_is_refused_even_with_a_matching_table() {
    let (folder, store, entries_in) = store_with(&common::blobs("index", 2, &[1_000]));
    let mut input = delivery(1, 1, 1 << 20, entries_in);
    let second = input.images[0].clone();
    input.images.push(ferry_archive::ImageRecord {
        name: "quay.io/ferry-demo/app:0.9".to_owned(),
        ..second
    });
    let output = folder.path().join("out");
    write_delivery(&input, &store, &output).unwrap();
    let segment = output.join("mirror_000001.tar");
    let mut bytes = fs::read(&segment).unwrap();
    // Swap the two descriptors' names (same lengths): the index and the
    // table row still agree once the row's digest is changed too, but the
    // list is no longer sorted by name as ferry writes it.
    let (index_at, index_size) = {
        let mut archive = tar::Archive::new(fs::File::open(&segment).unwrap());
        let entry = archive
            .entries()
            .unwrap()
            .map(|entry| entry.unwrap())
            .find(|entry| entry.path().unwrap().to_string_lossy() == "index.json")
            .unwrap();
        (
            entry.raw_file_position() as usize,
            entry.header().size().unwrap() as usize,
        )
    };
    let index_end = index_at + index_size;
    let index = String::from_utf8(bytes[index_at..index_end].to_vec()).unwrap();
    let swapped = index
        .replace("app:0.9", "app:X.X")
        .replace("app:1.0", "app:0.9")
        .replace("app:X.X", "app:1.0")
        .replace("app_0.9", "app_X.X")
        .replace("app_1.0", "app_0.9")
        .replace("app_X.X", "app_1.0");
    assert_ne!(swapped, index);
    let old_digest = common::sha256(index.as_bytes()).to_string();
    let new_digest = common::sha256(swapped.as_bytes()).to_string();
    bytes[index_at..index_end].copy_from_slice(swapped.as_bytes());
    let table_at = find_bytes(&bytes, old_digest.as_bytes()).unwrap();
    bytes[table_at..table_at + new_digest.len()].copy_from_slice(new_digest.as_bytes());
    fs::write(&segment, bytes).unwrap();
    let error = read_folder(&output).unwrap_err().to_string();
    assert!(error.contains("index.json"), "{error}");
    assert!(error.contains("not what ferry writes"), "{error}");
}

#[test]
fn format_1_deliveries_are_read_verified_and_imported() {
    let (_folder, output) = format_1_folder();
    let summaries = read_folder(&output).unwrap();
    assert_eq!(summaries.len(), 2);
    assert_eq!(summaries[0].inputs.as_deref(), Some(FIXTURE_INPUTS));
    assert_eq!(summaries[1].inputs, None);
    assert_eq!(summaries[1].previous, Some(1));
    let names: Vec<&str> = summaries[1]
        .images
        .iter()
        .map(|image| image.name.as_str())
        .collect();
    assert_eq!(
        names,
        ["quay.io/ferry-demo/app:1.0", "quay.io/ferry-demo/app:2.0"]
    );
    assert_eq!((summaries[0].blob_count, summaries[1].blob_count), (2, 1));
    verify_folder(&output, &BTreeSet::new()).unwrap();
    let store = ferry_store::BlobStore::open(output.parent().unwrap().join("store")).unwrap();
    let report = import_folder(&output, &BTreeSet::new(), &store).unwrap();
    for blob in fixture_blobs() {
        let digest = common::sha256(&blob);
        assert_eq!(fs::read(store.path(&digest)).unwrap(), blob, "{digest}");
    }
    assert_eq!(
        report.blobs_imported,
        3 + 2,
        "three blobs and two manifests"
    );
}

#[test]
fn a_format_2_delivery_follows_format_1_deliveries_in_one_folder() {
    let (folder, output) = format_1_folder();
    let store = ferry_store::BlobStore::open(folder.path().join("cache")).unwrap();
    let entries_in = add_blobs(&store, &[b"a blob of delivery 3\n".to_vec()]);
    let mut third = delivery(3, 3, 1 << 20, entries_in);
    third.previous = Some(2);
    write_delivery(&third, &store, &output).unwrap();
    let report = verify_folder(&output, &BTreeSet::new()).unwrap();
    let numbers: Vec<u32> = report
        .deliveries
        .iter()
        .map(|delivery| delivery.delivery)
        .collect();
    assert_eq!(numbers, [1, 2, 3]);
    // Delivery 3 alone, the first two applied: the chain holds.
    let alone = folder.path().join("alone");
    fs::create_dir(&alone).unwrap();
    fs::copy(
        output.join("mirror_000003.tar"),
        alone.join("mirror_000003.tar"),
    )
    .unwrap();
    let imported = ferry_store::BlobStore::open(folder.path().join("enclave")).unwrap();
    import_folder(&alone, &BTreeSet::from([1, 2]), &imported).unwrap();
    // ... and without them, it says what it needs.
    let error = verify_folder(&alone, &BTreeSet::new())
        .unwrap_err()
        .to_string();
    assert!(error.contains("follows delivery 2"), "{error}");
}

#[test]
fn a_newer_format_version_is_refused_naming_the_ferry_that_wrote_it() {
    let (folder, store, entries_in) = store_with(&common::blobs("newer", 1, &[100]));
    let output = folder.path().join("out");
    write_delivery(&delivery(1, 1, 1 << 20, entries_in), &store, &output).unwrap();
    let segment = output.join("mirror_000001.tar");
    let bytes = fs::read(&segment).unwrap();
    let writer = format!("ferry {}", env!("CARGO_PKG_VERSION"));
    let future = format!("ferry {}", "9".repeat(env!("CARGO_PKG_VERSION").len()));
    // Same lengths: the tar headers stay as they are.
    let from = format!("\"format_version\":2,\"writer\":\"{writer}\"");
    let to = format!("\"format_version\":3,\"writer\":\"{future}\"");
    let at = find_bytes(&bytes, from.as_bytes()).expect("the table names its version and writer");
    let mut changed = bytes.clone();
    changed[at..at + to.len()].copy_from_slice(to.as_bytes());
    fs::write(&segment, changed).unwrap();
    let error = read_folder(&output).unwrap_err().to_string();
    assert!(error.contains("mirror_000001.tar"), "{error}");
    assert!(error.contains("format version 3"), "{error}");
    assert!(error.contains(&format!("written by {future}")), "{error}");
    assert!(error.contains("newer than this ferry reads"), "{error}");
    assert!(error.contains(&writer), "{error}");
}
