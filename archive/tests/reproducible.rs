//! The same delivery gives byte-identical segments whatever the blob store
//! path, the order blobs entered the store or the input lists, the
//! permissions of the blob files, TMPDIR, umask or clock.
//!
//! The second build runs in a child process (this test binary, re-run on
//! the helper below) started through `sh -c 'umask 077; exec ...'` with
//! another TMPDIR, so neither needs unsafe code in the test.

mod common;

use std::os::unix::fs::PermissionsExt;
use std::path::Path;
use std::process::Command;

use ferry_archive::{DeliveryInput, write_delivery};
use ferry_store::BlobStore;

use common::{add_blobs, blobs, file_sha256, manifest, segment_files};

const OUTPUT_VARIABLE: &str = "FERRY_ARCHIVE_TEST_OUTPUT";
const CACHE_VARIABLE: &str = "FERRY_ARCHIVE_TEST_CACHE";

/// The delivery both builds write; `reversed` lists everything backwards.
fn input(store: &BlobStore, reversed: bool) -> DeliveryInput {
    let mut contents = blobs("reproducible", 24, &[70_000, 3_000, 250_000, 1]);
    if reversed {
        contents.reverse();
    }
    let mut blob_entries = add_blobs(store, &contents);
    let mut manifests = vec![
        manifest(
            "application/vnd.oci.image.manifest.v1+json",
            b"{\"a\":1}".to_vec(),
        ),
        manifest(
            "application/vnd.oci.image.index.v1+json",
            b"{\"b\":2}".to_vec(),
        ),
    ];
    let mut images = vec![
        common::image("quay.io/ferry-demo/app:1.0", &manifests[0]),
        common::image("quay.io/ferry-demo/multi:2", &manifests[1]),
    ];
    if reversed {
        blob_entries.reverse();
        manifests.reverse();
        images.reverse();
    }
    DeliveryInput {
        inputs: None,
        delivery: 3,
        previous: Some(2),
        first_segment: 5,
        max_segment_bytes: 600_000,
        strict: false,
        config_text: "kind: ImageSetConfiguration\n".to_owned(),
        plan_json: "{\"actions\":[]}".to_owned(),
        images,
        manifests,
        blobs: blob_entries,
    }
}

/// Not a test of its own: the second build, run in a child process when
/// the variables are set (a plain run returns at once).
#[test]
fn helper_build_in_child_process() {
    let (Some(output), Some(cache)) = (
        std::env::var_os(OUTPUT_VARIABLE),
        std::env::var_os(CACHE_VARIABLE),
    ) else {
        return;
    };
    let store = BlobStore::open(Path::new(&cache)).unwrap();
    let input = input(&store, true);
    // Blob files readable by their owner only: permissions of the source
    // must not leak into the archive.
    for blob in &input.blobs {
        std::fs::set_permissions(
            store.path(&blob.digest),
            std::fs::Permissions::from_mode(0o600),
        )
        .unwrap();
    }
    write_delivery(&input, &store, Path::new(&output)).unwrap();
}

#[test]
fn two_builds_under_different_conditions_are_byte_identical() {
    let first = tempfile::tempdir().unwrap();
    let store = BlobStore::open(first.path().join("cache")).unwrap();
    let layout = write_delivery(&input(&store, false), &store, &first.path().join("out")).unwrap();
    assert!(layout.segments.len() >= 3, "{layout:?}");

    // A different second of the clock for the second build.
    std::thread::sleep(std::time::Duration::from_millis(1100));
    let second = tempfile::tempdir().unwrap();
    let cache = second.path().join("a/much/deeper/cache/folder");
    let output = second.path().join("elsewhere/out");
    let temporary = second.path().join("tmp");
    std::fs::create_dir_all(&temporary).unwrap();
    let status = Command::new("sh")
        .arg("-c")
        .arg("umask 077 && exec \"$0\" \"$@\"")
        .arg(std::env::current_exe().unwrap())
        .args(["--exact", "helper_build_in_child_process", "--nocapture"])
        .env(OUTPUT_VARIABLE, &output)
        .env(CACHE_VARIABLE, &cache)
        .env("TMPDIR", &temporary)
        .status()
        .unwrap();
    assert!(status.success());

    let first_files = segment_files(&first.path().join("out"));
    let second_files = segment_files(&output);
    assert_eq!(first_files, second_files);
    assert_eq!(
        first_files,
        layout
            .segments
            .iter()
            .map(|segment| segment.file_name.clone())
            .collect::<Vec<_>>()
    );
    for name in &first_files {
        assert_eq!(
            file_sha256(&first.path().join("out").join(name)),
            file_sha256(&output.join(name)),
            "{name}"
        );
    }
    // The umask did reach the child: its files are private, the bytes same.
    let mode = |path: &Path| std::fs::metadata(path).unwrap().permissions().mode() & 0o777;
    assert_eq!(mode(&output.join(&first_files[0])), 0o600);
    assert_ne!(mode(&first.path().join("out").join(&first_files[0])), 0o600);
}

#[test]
fn entries_carry_no_owner_time_or_host_and_fixed_modes() {
    let folder = tempfile::tempdir().unwrap();
    let store = BlobStore::open(folder.path().join("cache")).unwrap();
    write_delivery(&input(&store, false), &store, &folder.path().join("out")).unwrap();
    let host = std::fs::read_to_string("/etc/hostname").unwrap_or_default();
    let cache_path = folder.path().display().to_string();
    for name in segment_files(&folder.path().join("out")) {
        let path = folder.path().join("out").join(&name);
        let mut archive = tar::Archive::new(std::fs::File::open(&path).unwrap());
        for entry in archive.entries().unwrap() {
            let mut entry = entry.unwrap();
            let header = entry.header().clone();
            assert_eq!(header.entry_type(), tar::EntryType::Regular);
            assert_eq!(header.mode().unwrap(), 0o644);
            assert_eq!((header.uid().unwrap(), header.gid().unwrap()), (0, 0));
            assert_eq!(header.mtime().unwrap(), 0);
            assert_eq!(header.username().unwrap(), Some(""));
            assert_eq!(header.groupname().unwrap(), Some(""));
            let entry_path = entry.path().unwrap().to_string_lossy().into_owned();
            if entry_path.starts_with("blobs/") {
                continue;
            }
            // Metadata (compressed or not): no local path, no host name.
            let mut bytes = Vec::new();
            std::io::Read::read_to_end(&mut entry, &mut bytes).unwrap();
            if entry_path.ends_with(".gz") {
                let mut plain = Vec::new();
                std::io::Read::read_to_end(
                    &mut flate2::read::GzDecoder::new(bytes.as_slice()),
                    &mut plain,
                )
                .unwrap();
                bytes = plain;
            }
            let text = String::from_utf8(bytes).unwrap();
            assert!(
                !text.contains(&cache_path),
                "{name}: {entry_path} names the cache folder"
            );
            assert!(
                !text.contains("/tmp"),
                "{name}: {entry_path} names a local path"
            );
            if !host.trim().is_empty() {
                assert!(
                    !text.contains(host.trim()),
                    "{name}: {entry_path} names the host"
                );
            }
        }
    }
}
