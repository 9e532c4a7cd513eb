//! `verify_folder` re-hashes every byte and refuses every kind of damage
//! with a message naming the segment file, the entry and what is wrong;
//! deliveries must form a chain.

mod common;

use std::collections::BTreeSet;
use std::fs::{self, OpenOptions};
use std::io::{Seek, SeekFrom, Write};
use std::path::{Path, PathBuf};

use ferry_archive::{ArchiveError, verify_folder, write_delivery};

use common::{blobs, delivery, segment_files, store_with};

/// A folder with one delivery of three or more segments; some blobs share
/// a size so they can be swapped.
struct Fixture {
    _folder: tempfile::TempDir,
    output: PathBuf,
    content_bytes: u64,
}

fn fixture() -> Fixture {
    let (folder, store, entries) = store_with(&blobs("verify", 12, &[40_000, 40_000, 7_777]));
    let output = folder.path().join("out");
    let input = delivery(1, 1, 150_000, entries);
    let written = write_delivery(&input, &store, &output).unwrap();
    assert!(written.segments.len() >= 3, "{written:?}");
    let content_bytes = input.blobs.iter().map(|blob| blob.size).sum::<u64>()
        + input
            .manifests
            .iter()
            .map(|m| m.bytes.len() as u64)
            .sum::<u64>();
    Fixture {
        _folder: folder,
        output,
        content_bytes,
    }
}

/// (path, data offset, size) of every entry of a segment.
fn entries(path: &Path) -> Vec<(String, u64, u64)> {
    let mut archive = tar::Archive::new(fs::File::open(path).unwrap());
    archive
        .entries()
        .unwrap()
        .map(|entry| {
            let entry = entry.unwrap();
            (
                entry.path().unwrap().to_string_lossy().into_owned(),
                entry.raw_file_position(),
                entry.header().size().unwrap(),
            )
        })
        .collect()
}

fn refused(folder: &Path) -> String {
    let error = verify_folder(folder, &BTreeSet::new()).unwrap_err();
    error.to_string()
}

fn assert_names(message: &str, parts: &[&str]) {
    for part in parts {
        assert!(message.contains(part), "`{part}` missing from: {message}");
    }
}

fn write_at(path: &Path, offset: u64, bytes: &[u8]) {
    let mut file = OpenOptions::new().write(true).open(path).unwrap();
    file.seek(SeekFrom::Start(offset)).unwrap();
    file.write_all(bytes).unwrap();
}

#[test]
fn an_intact_folder_verifies_every_byte() {
    let fixture = fixture();
    let report = verify_folder(&fixture.output, &BTreeSet::new()).unwrap();
    assert_eq!(report.deliveries.len(), 1);
    assert!(
        report.bytes_checked > fixture.content_bytes,
        "metadata counted too"
    );
    let files = segment_files(&fixture.output);
    let entry_count: usize = files
        .iter()
        .map(|file| entries(&fixture.output.join(file)).len())
        .sum();
    assert_eq!(report.entries_checked, entry_count);
}

#[test]
fn a_flipped_byte_in_a_blob_is_refused() {
    let fixture = fixture();
    let segment = fixture.output.join("mirror_000002.tar");
    let (path, offset, _) = entries(&segment)
        .into_iter()
        .find(|(path, _, _)| path.starts_with("blobs/"))
        .unwrap();
    let mut byte = [0u8; 1];
    std::io::Read::read_exact(
        &mut {
            let mut file = fs::File::open(&segment).unwrap();
            file.seek(SeekFrom::Start(offset + 1234)).unwrap();
            file
        },
        &mut byte,
    )
    .unwrap();
    write_at(&segment, offset + 1234, &[byte[0] ^ 0x20]);
    let message = refused(&fixture.output);
    assert_names(&message, &["mirror_000002.tar", &path, "does not match"]);
}

#[test]
fn two_blobs_of_equal_size_swapped_are_refused() {
    let fixture = fixture();
    let (segment, first, second) = segment_files(&fixture.output)
        .into_iter()
        .find_map(|file| {
            let found = entries(&fixture.output.join(&file));
            let blobs: Vec<_> = found
                .into_iter()
                .filter(|(path, _, size)| path.starts_with("blobs/") && *size == 40_000)
                .collect();
            (blobs.len() >= 2).then(|| {
                (
                    fixture.output.join(&file),
                    blobs[0].clone(),
                    blobs[1].clone(),
                )
            })
        })
        .expect("a segment with two 40000-byte blobs");
    let bytes = fs::read(&segment).unwrap();
    let take = |offset: u64| bytes[offset as usize..offset as usize + 40_000].to_vec();
    let (a, b) = (take(first.1), take(second.1));
    write_at(&segment, first.1, &b);
    write_at(&segment, second.1, &a);
    let message = refused(&fixture.output);
    let name = segment.file_name().unwrap().to_string_lossy().into_owned();
    assert_names(
        &message,
        &[&name, &first.0, "content does not match its name"],
    );
}

#[test]
fn a_truncated_segment_is_refused() {
    for cut in [3000u64, 512, 1] {
        let fixture = fixture();
        let segment = fixture.output.join("mirror_000001.tar");
        let length = fs::metadata(&segment).unwrap().len();
        OpenOptions::new()
            .write(true)
            .open(&segment)
            .unwrap()
            .set_len(length - cut)
            .unwrap();
        let message = refused(&fixture.output);
        assert_names(&message, &["mirror_000001.tar", "truncated"]);
    }
}

#[test]
fn bytes_appended_after_the_end_are_refused() {
    let fixture = fixture();
    let segment = fixture.output.join("mirror_000001.tar");
    let mut file = OpenOptions::new().append(true).open(&segment).unwrap();
    file.write_all(&[0u8; 512]).unwrap();
    let message = refused(&fixture.output);
    assert_names(
        &message,
        &["mirror_000001.tar", "after the end of the archive"],
    );
}

#[test]
fn renamed_and_reordered_segments_are_refused() {
    let fixture = fixture();
    fs::rename(
        fixture.output.join("mirror_000002.tar"),
        fixture.output.join("mirror_000009.tar"),
    )
    .unwrap();
    let message = refused(&fixture.output);
    assert_names(
        &message,
        &[
            "mirror_000009.tar",
            "written as mirror_000002.tar",
            "renamed",
        ],
    );

    let fixture = self::fixture();
    let folder = &fixture.output;
    fs::rename(folder.join("mirror_000002.tar"), folder.join("swap")).unwrap();
    fs::rename(
        folder.join("mirror_000003.tar"),
        folder.join("mirror_000002.tar"),
    )
    .unwrap();
    fs::rename(folder.join("swap"), folder.join("mirror_000003.tar")).unwrap();
    let message = refused(folder);
    assert_names(
        &message,
        &["mirror_000002.tar", "written as mirror_000003.tar"],
    );
}

#[test]
fn a_missing_segment_is_refused() {
    let fixture = fixture();
    let count = segment_files(&fixture.output).len();
    fs::remove_file(fixture.output.join("mirror_000002.tar")).unwrap();
    let error = verify_folder(&fixture.output, &BTreeSet::new()).unwrap_err();
    assert!(
        matches!(error, ArchiveError::Delivery { delivery: 1, .. }),
        "{error}"
    );
    assert_names(
        &error.to_string(),
        &["mirror_000002.tar", &format!("2 of {count}"), "missing"],
    );
}

/// The canonical header ferry writes, for crafting entries.
fn header(path: &str, size: u64, entry_type: tar::EntryType) -> tar::Header {
    let mut header = tar::Header::new_gnu();
    header.set_mode(0o644);
    header.set_uid(0);
    header.set_gid(0);
    header.set_mtime(0);
    header.set_size(size);
    header.set_entry_type(entry_type);
    // Raw name bytes: `set_path` itself refuses `..`.
    header.as_old_mut().name[..path.len()].copy_from_slice(path.as_bytes());
    header
}

/// Replaces the end marker of `segment` with an entry, then ends it again.
fn append_entry(segment: &Path, mut header: tar::Header, content: &[u8]) {
    let length = fs::metadata(segment).unwrap().len();
    let mut file = OpenOptions::new().write(true).open(segment).unwrap();
    file.set_len(length - 1024).unwrap();
    file.seek(SeekFrom::End(0)).unwrap();
    header.set_cksum();
    file.write_all(header.as_bytes()).unwrap();
    file.write_all(content).unwrap();
    let padding = (content.len() as u64).div_ceil(512) * 512 - content.len() as u64;
    file.write_all(&vec![0; padding as usize + 1024]).unwrap();
}

#[test]
fn an_unknown_entry_is_refused() {
    let fixture = fixture();
    let segment = fixture.output.join("mirror_000003.tar");
    let content = b"extra";
    let digest = common::sha256(content);
    let path = format!("blobs/sha256/{}", digest.hex());
    append_entry(&segment, header(&path, 5, tar::EntryType::Regular), content);
    let message = refused(&fixture.output);
    assert_names(&message, &["mirror_000003.tar", &path, "unknown entry"]);
}

#[test]
fn escaping_paths_and_links_are_refused_in_crafted_and_altered_segments() {
    let cases: [(&str, tar::EntryType, &str); 6] = [
        ("../evil", tar::EntryType::Regular, "`..`"),
        ("blobs/../../evil", tar::EntryType::Regular, "`..`"),
        ("/etc/evil", tar::EntryType::Regular, "absolute path"),
        (
            "blobs/link",
            tar::EntryType::Symlink,
            "a symbolic link to `/etc/passwd`",
        ),
        (
            "blobs/hard",
            tar::EntryType::Link,
            "hard link to `/etc/passwd`",
        ),
        ("blobs/device", tar::EntryType::Char, "character device"),
    ];
    for (path, entry_type, problem) in cases {
        let mut crafted = header(path, 0, entry_type);
        if matches!(entry_type, tar::EntryType::Symlink | tar::EntryType::Link) {
            crafted.set_link_name("/etc/passwd").unwrap();
        }
        // A segment made by hand, holding only that entry.
        let alone = tempfile::tempdir().unwrap();
        let file = alone.path().join("mirror_000001.tar");
        let mut bytes = crafted.clone();
        bytes.set_cksum();
        let mut archive = bytes.as_bytes().to_vec();
        archive.extend_from_slice(&[0; 1024]);
        fs::write(&file, archive).unwrap();
        let message = refused(alone.path());
        assert_names(&message, &["mirror_000001.tar", path, problem, "refused"]);

        // The same entry slipped into a real segment.
        let fixture = fixture();
        append_entry(&fixture.output.join("mirror_000002.tar"), crafted, b"");
        let message = refused(&fixture.output);
        assert_names(&message, &["mirror_000002.tar", path, problem, "refused"]);
    }
}

#[test]
fn a_damaged_header_or_table_is_refused() {
    let fixture = fixture();
    let segment = fixture.output.join("mirror_000002.tar");
    let (_, offset, _) = entries(&segment)
        .into_iter()
        .find(|(path, _, _)| path.starts_with("blobs/"))
        .unwrap();
    // The mode field of the blob's header (offset 100 in the header block).
    write_at(&segment, offset - 512 + 100, b"0000755");
    let message = refused(&fixture.output);
    assert_names(&message, &["mirror_000002.tar", "checksum"]);

    // The same change with a correct checksum: not ferry's canonical form.
    let fixture = self::fixture();
    let segment = fixture.output.join("mirror_000002.tar");
    let (path, offset, _) = entries(&segment)
        .into_iter()
        .find(|(path, _, _)| path.starts_with("blobs/"))
        .unwrap();
    let bytes = fs::read(&segment).unwrap();
    let mut changed = tar::Header::new_gnu();
    changed
        .as_mut_bytes()
        .copy_from_slice(&bytes[offset as usize - 512..offset as usize]);
    changed.set_mode(0o755);
    changed.set_cksum();
    write_at(&segment, offset - 512, changed.as_bytes());
    let message = refused(&fixture.output);
    assert_names(&message, &["mirror_000002.tar", &path, "canonical form"]);

    let fixture = self::fixture();
    let segment = fixture.output.join("mirror_000002.tar");
    let (table, offset, size) = entries(&segment).remove(0);
    let text = String::from_utf8(
        fs::read(&segment).unwrap()[offset as usize..(offset + size) as usize].to_vec(),
    )
    .unwrap();
    // Claim a different size for the first blob: the row no longer matches.
    let position = text.find("\"size\":40000").expect("a 40000-byte row");
    write_at(&segment, offset + position as u64 + 8, b"5");
    let message = refused(&fixture.output);
    assert_names(
        &message,
        &["mirror_000002.tar", "where the segment table lists"],
    );
    assert!(table.starts_with("ferry/deliveries/000001/segment-"));
}

#[test]
fn deliveries_form_a_chain() {
    let (folder, store, entries) = store_with(&blobs("chain", 8, &[30_000]));
    let output = folder.path().join("out");
    let first = write_delivery(
        &delivery(1, 1, 80_000, entries[..4].to_vec()),
        &store,
        &output,
    )
    .unwrap();
    let next_number = first.segments.last().unwrap().number + 1;
    write_delivery(
        &delivery(2, next_number, 80_000, entries[4..].to_vec()),
        &store,
        &output,
    )
    .unwrap();
    let report = verify_folder(&output, &BTreeSet::new()).unwrap();
    assert_eq!(
        report
            .deliveries
            .iter()
            .map(|d| (d.delivery, d.previous))
            .collect::<Vec<_>>(),
        [(1, None), (2, Some(1))]
    );

    for segment in &first.segments {
        fs::remove_file(output.join(&segment.file_name)).unwrap();
    }
    let error = verify_folder(&output, &BTreeSet::new()).unwrap_err();
    assert!(
        matches!(error, ArchiveError::Delivery { delivery: 2, .. }),
        "{error}"
    );
    assert_names(
        &error.to_string(),
        &["delivery 2", "follows delivery 1", "neither"],
    );
    let report = verify_folder(&output, &BTreeSet::from([1])).unwrap();
    assert_eq!(report.deliveries.len(), 1);
    assert_eq!(report.deliveries[0].delivery, 2);
}

#[test]
fn a_folder_without_segments_is_refused() {
    let empty = tempfile::tempdir().unwrap();
    fs::write(empty.path().join("mirror_1.tar"), b"not six digits").unwrap();
    let error = verify_folder(empty.path(), &BTreeSet::new()).unwrap_err();
    assert!(matches!(error, ArchiveError::NoSegments { .. }), "{error}");
}

#[test]
fn a_survey_reports_whole_deliveries_with_their_content_and_the_rest_by_name() {
    let fixture = fixture();
    let files = segment_files(&fixture.output);
    let surveyed = ferry_archive::survey_folder(&fixture.output, &|_| true).unwrap();
    let [ferry_archive::SurveyedDelivery::Whole(whole)] = surveyed.as_slice() else {
        panic!("one whole delivery: {surveyed:?}");
    };
    assert_eq!(whole.summary.delivery, 1);
    assert_eq!(whole.segment_numbers.len(), files.len());
    let carried: u64 = whole.content.iter().map(|entry| entry.size).sum();
    assert_eq!(carried, fixture.content_bytes);
    assert!(whole.content.iter().any(|entry| entry.media_type.is_some()));

    // Only the first segment asked for: the delivery is not whole.
    let first = whole.segment_numbers[0];
    let surveyed =
        ferry_archive::survey_folder(&fixture.output, &|number| number == first).unwrap();
    let [
        ferry_archive::SurveyedDelivery::NotWhole {
            delivery,
            present,
            problem,
        },
    ] = surveyed.as_slice()
    else {
        panic!("a partial delivery: {surveyed:?}");
    };
    assert_eq!(*delivery, 1);
    assert_eq!(present.len(), 1);
    assert!(problem.contains("missing"), "{problem}");

    // A cut segment is named as unreadable; nothing at all is an empty list.
    let last = files.last().unwrap();
    let last_path = fixture.output.join(last);
    let length = fs::metadata(&last_path).unwrap().len();
    OpenOptions::new()
        .write(true)
        .open(&last_path)
        .unwrap()
        .set_len(length / 2)
        .unwrap();
    let surveyed = ferry_archive::survey_folder(&fixture.output, &|_| true).unwrap();
    assert!(
        surveyed.iter().any(|found| matches!(
            found,
            ferry_archive::SurveyedDelivery::Unreadable { file_name, .. }
                if file_name == last
        )),
        "{surveyed:?}"
    );
    let empty = tempfile::tempdir().unwrap();
    assert!(
        ferry_archive::survey_folder(empty.path(), &|_| true)
            .unwrap()
            .is_empty()
    );
}
