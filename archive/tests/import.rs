//! `import_folder` stores every blob and manifest of the deliveries not yet
//! applied, verified; stores nothing from a delivery whose structure is
//! broken, and never a tampered entry. `preview_import` makes the same
//! checks, stores nothing and hands back the manifests.

mod common;

use std::collections::BTreeSet;
use std::fs::{self, OpenOptions};
use std::io::{Seek, SeekFrom, Write};

use ferry_archive::{ArchiveError, import_folder, preview_import, write_delivery};
use ferry_store::BlobStore;

use common::{blobs, delivery, segment_files, store_with};

struct TwoDeliveries {
    _folder: tempfile::TempDir,
    output: std::path::PathBuf,
    inputs: [ferry_archive::DeliveryInput; 2],
    first_segments: Vec<String>,
}

fn two_deliveries() -> TwoDeliveries {
    let (folder, store, entries) = store_with(&blobs("import", 10, &[60_000, 9_000]));
    let output = folder.path().join("out");
    let first = delivery(1, 1, 150_000, entries[..6].to_vec());
    let written = write_delivery(&first, &store, &output).unwrap();
    let next = written.segments.last().unwrap().number + 1;
    let mut second = delivery(2, next, 150_000, entries[6..].to_vec());
    // The image set grows: the first delivery's image stays, renamed.
    let mut kept = first.images[0].clone();
    kept.name = "quay.io/ferry-demo/kept:0.9".to_owned();
    second.images.push(kept);
    write_delivery(&second, &store, &output).unwrap();
    TwoDeliveries {
        _folder: folder,
        output,
        inputs: [first, second],
        first_segments: written
            .segments
            .iter()
            .map(|s| s.file_name.clone())
            .collect(),
    }
}

fn fresh_store() -> (tempfile::TempDir, BlobStore) {
    let folder = tempfile::tempdir().unwrap();
    let store = BlobStore::open(folder.path()).unwrap();
    (folder, store)
}

#[test]
fn import_stores_every_blob_and_manifest_in_order() {
    let setup = two_deliveries();
    let (_destination, store) = fresh_store();
    let report = import_folder(&setup.output, &BTreeSet::new(), &store).unwrap();
    assert_eq!(
        report
            .deliveries
            .iter()
            .map(|d| d.delivery)
            .collect::<Vec<_>>(),
        [1, 2]
    );
    let mut expected_bytes = 0;
    let mut count = 0;
    for input in &setup.inputs {
        for blob in &input.blobs {
            assert!(store.contains(&blob.digest), "{}", blob.digest);
            assert_eq!(store.size(&blob.digest), Some(blob.size));
            expected_bytes += blob.size;
            count += 1;
        }
        for manifest in &input.manifests {
            assert_eq!(
                fs::read(store.path(&manifest.digest)).unwrap(),
                manifest.bytes
            );
            assert_eq!(
                report.manifest_media_types[&manifest.digest],
                manifest.media_type
            );
            expected_bytes += manifest.bytes.len() as u64;
            count += 1;
        }
    }
    assert_eq!(report.blobs_imported, count);
    assert_eq!(report.bytes_imported, expected_bytes);
    let mut newest = setup.inputs[1].images.clone();
    newest.sort_by(|a, b| a.name.cmp(&b.name));
    assert_eq!(
        report.images, newest,
        "the image set of the newest delivery"
    );

    // Again: everything is present, nothing new is written.
    let again = import_folder(&setup.output, &BTreeSet::new(), &store).unwrap();
    assert_eq!((again.blobs_imported, again.bytes_imported), (0, 0));
}

#[test]
fn applied_deliveries_are_skipped_even_when_absent() {
    let setup = two_deliveries();
    for name in &setup.first_segments {
        fs::remove_file(setup.output.join(name)).unwrap();
    }
    let (_destination, store) = fresh_store();
    let error = import_folder(&setup.output, &BTreeSet::new(), &store).unwrap_err();
    assert!(
        matches!(error, ArchiveError::Delivery { delivery: 2, .. }),
        "{error}"
    );
    assert!(store.list().unwrap().is_empty(), "nothing stored");

    let report = import_folder(&setup.output, &BTreeSet::from([1]), &store).unwrap();
    assert_eq!(report.deliveries.len(), 1);
    for blob in &setup.inputs[1].blobs {
        assert!(store.contains(&blob.digest));
    }
    for blob in &setup.inputs[0].blobs {
        assert!(!store.contains(&blob.digest));
    }
}

#[test]
fn a_structurally_broken_folder_stores_nothing() {
    let setup = two_deliveries();
    // The last segment of delivery 2 goes missing: delivery 1 is intact,
    // but nothing is imported before every structure was checked.
    let files = segment_files(&setup.output);
    fs::remove_file(setup.output.join(files.last().unwrap())).unwrap();
    let (_destination, store) = fresh_store();
    let error = import_folder(&setup.output, &BTreeSet::new(), &store).unwrap_err();
    assert!(error.to_string().contains("missing"), "{error}");
    assert!(store.list().unwrap().is_empty());
}

#[test]
fn a_tampered_entry_is_never_stored() {
    let setup = two_deliveries();
    let segment = setup.output.join(&setup.first_segments[0]);
    let mut archive = tar::Archive::new(fs::File::open(&segment).unwrap());
    let (path, offset) = archive
        .entries()
        .unwrap()
        .map(|entry| entry.unwrap())
        .filter(|entry| entry.path().unwrap().starts_with("blobs/"))
        .map(|entry| {
            (
                entry.path().unwrap().to_string_lossy().into_owned(),
                entry.raw_file_position(),
            )
        })
        .last()
        .unwrap();
    let digest: ferry_schemas::Digest = format!("sha256:{}", path.rsplit('/').next().unwrap())
        .parse()
        .unwrap();
    let mut file = OpenOptions::new().write(true).open(&segment).unwrap();
    file.seek(SeekFrom::Start(offset + 7)).unwrap();
    file.write_all(b"tampered").unwrap();
    drop(file);

    let (destination, store) = fresh_store();
    let error = import_folder(&setup.output, &BTreeSet::new(), &store).unwrap_err();
    let message = error.to_string();
    assert!(message.contains(&setup.first_segments[0]), "{message}");
    assert!(message.contains(&path), "{message}");
    assert!(message.contains("does not match"), "{message}");
    assert!(!store.contains(&digest), "the tampered blob is not stored");
    assert_eq!(
        fs::read_dir(destination.path().join("tmp"))
            .unwrap()
            .count(),
        0,
        "no temporary file left"
    );
    // Nothing of delivery 2 either: it comes after the failure.
    for blob in &setup.inputs[1].blobs {
        assert!(!store.contains(&blob.digest));
    }
}

#[test]
fn a_preview_checks_the_same_and_hands_back_manifests_only() {
    let setup = two_deliveries();
    let preview = preview_import(&setup.output, &BTreeSet::from([1])).unwrap();
    assert_eq!(
        preview
            .deliveries
            .iter()
            .map(|d| d.delivery)
            .collect::<Vec<_>>(),
        [2]
    );
    let expected: std::collections::BTreeMap<_, _> = setup.inputs[1]
        .manifests
        .iter()
        .map(|manifest| (manifest.digest.clone(), manifest.bytes.clone()))
        .collect();
    assert_eq!(preview.manifests, expected);
    assert_eq!((preview.blobs_imported, preview.bytes_imported), (0, 0));

    // Apart from the manifests' bytes and what was stored, the report is
    // the import's.
    let (_destination, store) = fresh_store();
    let mut imported = import_folder(&setup.output, &BTreeSet::from([1]), &store).unwrap();
    assert!(imported.manifests.is_empty());
    imported.manifests = preview.manifests.clone();
    imported.blobs_imported = 0;
    imported.bytes_imported = 0;
    assert_eq!(imported, preview);

    // A tampered entry is refused as by the import.
    let segment = setup.output.join(&setup.first_segments[0]);
    let mut archive = tar::Archive::new(fs::File::open(&segment).unwrap());
    let offset = archive
        .entries()
        .unwrap()
        .map(|entry| entry.unwrap())
        .filter(|entry| entry.path().unwrap().starts_with("blobs/"))
        .map(|entry| entry.raw_file_position())
        .last()
        .unwrap();
    let mut file = OpenOptions::new().write(true).open(&segment).unwrap();
    file.seek(SeekFrom::Start(offset + 7)).unwrap();
    file.write_all(b"tampered").unwrap();
    drop(file);
    let error = preview_import(&setup.output, &BTreeSet::new()).unwrap_err();
    assert!(error.to_string().contains("does not match"), "{error}");

    // So is a delivery whose predecessor is neither there nor applied.
    for name in &setup.first_segments {
        fs::remove_file(setup.output.join(name)).unwrap();
    }
    let error = preview_import(&setup.output, &BTreeSet::new()).unwrap_err();
    assert!(
        matches!(error, ArchiveError::Delivery { delivery: 2, .. }),
        "{error}"
    );
}
