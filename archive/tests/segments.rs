//! Splitting deliveries into segments, on real files: limits, order,
//! oversize blobs, exact sizes, overhead, numbering, and writing that
//! never overwrites and survives interruptions.

mod common;

use std::fs;

use ferry_archive::{ArchiveError, layout, read_folder, segment_file_name, write_delivery};

use common::{blobs, delivery, segment_files, store_with};

/// Tar entry paths of a segment file, in order, with their sizes.
fn entries(path: &std::path::Path) -> Vec<(String, u64)> {
    let mut archive = tar::Archive::new(fs::File::open(path).unwrap());
    archive
        .entries()
        .unwrap()
        .map(|entry| {
            let entry = entry.unwrap();
            (
                entry.path().unwrap().to_string_lossy().into_owned(),
                entry.header().size().unwrap(),
            )
        })
        .collect()
}

/// Where an entry's content starts in a segment file, and its size.
fn entry_position(segment: &std::path::Path, wanted: &str) -> (u64, u64) {
    let mut archive = tar::Archive::new(fs::File::open(segment).unwrap());
    archive
        .entries()
        .unwrap()
        .map(|entry| entry.unwrap())
        .find(|entry| entry.path().unwrap().to_string_lossy() == wanted)
        .map(|entry| (entry.raw_file_position(), entry.header().size().unwrap()))
        .unwrap()
}

fn padded(size: u64) -> u64 {
    size.div_ceil(512) * 512
}

#[test]
fn segments_respect_the_limit_fill_in_order_and_match_the_layout() {
    let contents = blobs("limits", 40, &[10_000, 200_000, 65_536, 130_001]);
    let (folder, store, entries_in) = store_with(&contents);
    let max = 1_000_000;
    let mut input = delivery(2, 7, max, entries_in.clone());
    input.previous = Some(1);
    let planned = layout(&input).unwrap();
    let output = folder.path().join("out");
    let written = write_delivery(&input, &store, &output).unwrap();
    assert_eq!(planned, written, "layout is what write_delivery does");
    assert!(planned.warnings.is_empty());
    assert!(planned.segments.len() >= 4, "{planned:?}");

    let files = segment_files(&output);
    let expected: Vec<String> = (0..planned.segments.len() as u32)
        .map(|index| segment_file_name(7 + index))
        .collect();
    assert_eq!(files, expected, "numbering continues from first_segment");

    let mut blob_order = Vec::new();
    let mut sizes_of_segments = Vec::new();
    for (position, segment) in planned.segments.iter().enumerate() {
        let path = output.join(&segment.file_name);
        let size = fs::metadata(&path).unwrap().len();
        assert_eq!(size, segment.bytes, "{}", segment.file_name);
        assert!(size <= max, "{} has {size} bytes", segment.file_name);
        let found = entries(&path);
        assert_eq!(found.len(), segment.entries);
        // Metadata first: table, configuration, plan; the OCI files (the
        // index is the image list) last in the first segment.
        assert_eq!(
            found[0].0,
            format!("ferry/deliveries/000002/segment-{:06}.json", 7 + position)
        );
        assert_eq!(found[1].0, "ferry/deliveries/000002/config.yaml");
        assert_eq!(found[2].0, "ferry/deliveries/000002/plan.json.gz");
        assert!(found[3].0.starts_with("blobs/"), "{}", found[3].0);
        if position == 0 {
            let tail: Vec<&str> = found[found.len() - 2..]
                .iter()
                .map(|(p, _)| p.as_str())
                .collect();
            assert_eq!(tail, ["oci-layout", "index.json"]);
        } else {
            assert!(
                found
                    .iter()
                    .all(|(path, _)| path != "index.json" && path != "oci-layout")
            );
        }
        let blobs_here: Vec<(String, u64)> = found
            .into_iter()
            .filter(|(path, _)| path.starts_with("blobs/"))
            .collect();
        sizes_of_segments.push((size, blobs_here.clone()));
        blob_order.extend(blobs_here);
    }
    // Each blob once, all of them, in digest order across segments.
    let mut sorted = blob_order.clone();
    sorted.sort();
    assert_eq!(blob_order, sorted);
    assert_eq!(
        blob_order.len(),
        entries_in.len() + 1,
        "blobs plus one manifest"
    );
    // An entry starts a new segment only when it would not fit.
    for window in sizes_of_segments.windows(2) {
        let (size, _) = &window[0];
        let (_, next_blobs) = &window[1];
        let (_, next_size) = &next_blobs[0];
        assert!(
            size + 512 + padded(*next_size) + 512 > max,
            "a segment of {size} bytes had room for {next_size} more"
        );
    }
}

#[test]
fn an_oversize_blob_gets_its_own_segment_and_a_warning() {
    let mut contents = blobs("oversize", 6, &[50_000]);
    contents.push(common::random_bytes("the big one", 600_000));
    let (folder, store, entries_in) = store_with(&contents);
    let big = entries_in.last().unwrap().clone();
    let input = delivery(1, 1, 200_000, entries_in);
    let written = write_delivery(&input, &store, &folder.path().join("out")).unwrap();
    assert_eq!(written.warnings.len(), 1, "{:?}", written.warnings);
    let own = written
        .segments
        .iter()
        .find(|segment| {
            entries(&folder.path().join("out").join(&segment.file_name))
                .iter()
                .any(|(path, _)| path.ends_with(big.digest.hex()))
        })
        .unwrap();
    let own_entries = entries(&folder.path().join("out").join(&own.file_name));
    assert_eq!(
        own_entries
            .iter()
            .filter(|(path, _)| path.starts_with("blobs/"))
            .count(),
        1,
        "alone in its segment: {own_entries:?}"
    );
    let warning = &written.warnings[0];
    assert!(warning.contains(&big.digest.to_string()), "{warning}");
    assert!(warning.contains("600000 bytes"), "{warning}");
    assert!(warning.contains(&own.file_name), "{warning}");
    assert!(
        warning.contains(&format!("at least {} bytes", own.bytes)),
        "{warning}"
    );
    for segment in &written.segments {
        if segment.file_name != own.file_name {
            assert!(segment.bytes <= 200_000);
        }
    }

    let mut strict = input.clone();
    strict.strict = true;
    let error = layout(&strict).unwrap_err();
    assert!(matches!(error, ArchiveError::Oversize { .. }), "{error}");
    let message = error.to_string();
    assert!(message.contains(&big.digest.to_string()), "{message}");
    assert!(
        message.contains(&format!("needs a segment of {} bytes", own.bytes)),
        "{message}"
    );
    let elsewhere = folder.path().join("strict");
    assert!(write_delivery(&strict, &store, &elsewhere).is_err());
    assert!(!elsewhere.exists() || segment_files(&elsewhere).is_empty());
}

#[test]
fn archive_bytes_stay_within_one_percent_and_64_kib_of_the_content() {
    let sizes: Vec<usize> = (0..20)
        .map(|index| (1 << 20) + index * 157_000 + 13)
        .collect();
    let contents = blobs("overhead", 20, &sizes);
    let unique: u64 = contents.iter().map(|blob| blob.len() as u64).sum();
    let (folder, store, entries_in) = store_with(&contents);
    for (max, name) in [(u64::MAX, "one segment"), (16 << 20, "16 MiB segments")] {
        let input = delivery(1, 1, max, entries_in.clone());
        let output = folder.path().join(name);
        let written = write_delivery(&input, &store, &output).unwrap();
        let on_disk: u64 = segment_files(&output)
            .iter()
            .map(|file| fs::metadata(output.join(file)).unwrap().len())
            .sum();
        assert_eq!(on_disk, written.total_bytes);
        let limit = unique + unique / 100 + 64 * 1024;
        eprintln!(
            "{name}: {} segments, {on_disk} bytes for {unique} unique bytes: overhead {} bytes ({:.4}%)",
            written.segments.len(),
            on_disk - unique,
            (on_disk - unique) as f64 * 100.0 / unique as f64
        );
        assert!(on_disk <= limit, "{name}: {on_disk} > {limit}");
    }
}

#[test]
fn an_existing_segment_is_never_overwritten() {
    let (folder, store, entries_in) = store_with(&blobs("exists", 4, &[1000]));
    let output = folder.path().join("out");
    fs::create_dir_all(&output).unwrap();
    fs::write(output.join("mirror_000003.tar"), b"someone else's").unwrap();
    let input = delivery(1, 3, 1 << 20, entries_in);
    let error = write_delivery(&input, &store, &output).unwrap_err();
    assert!(
        matches!(error, ArchiveError::SegmentExists { .. }),
        "{error}"
    );
    assert!(error.to_string().contains("mirror_000003.tar"), "{error}");
    assert_eq!(
        fs::read(output.join("mirror_000003.tar")).unwrap(),
        b"someone else's"
    );
    let names: Vec<String> = fs::read_dir(&output)
        .unwrap()
        .map(|entry| entry.unwrap().file_name().to_string_lossy().into_owned())
        .collect();
    assert_eq!(names, ["mirror_000003.tar"], "nothing else written");
}

#[test]
fn stale_partial_files_are_removed_and_nothing_partial_remains() {
    let (folder, store, entries_in) = store_with(&blobs("partial", 8, &[40_000]));
    let output = folder.path().join("out");
    fs::create_dir_all(&output).unwrap();
    fs::write(output.join(".mirror_000001.tar.partial"), b"interrupted").unwrap();
    fs::write(output.join(".mirror_000042.tar.partial"), b"older").unwrap();
    fs::write(output.join("notes.txt"), b"kept").unwrap();
    let written = write_delivery(&delivery(1, 1, 100_000, entries_in), &store, &output).unwrap();
    let mut names: Vec<String> = fs::read_dir(&output)
        .unwrap()
        .map(|entry| entry.unwrap().file_name().to_string_lossy().into_owned())
        .collect();
    names.sort();
    let mut expected: Vec<String> = written
        .segments
        .iter()
        .map(|segment| segment.file_name.clone())
        .collect();
    expected.push("notes.txt".to_owned());
    expected.sort();
    assert_eq!(names, expected);
    assert_eq!(read_folder(&output).unwrap().len(), 1);
}

#[test]
fn a_missing_or_corrupt_cache_blob_fails_before_anything_is_published() {
    let (folder, store, entries_in) = store_with(&blobs("cache", 6, &[30_000]));
    // Missing: refused before writing.
    let mut missing = delivery(1, 1, 1 << 20, entries_in.clone());
    missing.blobs.push(ferry_archive::BlobEntry {
        digest: common::sha256(b"not in the store"),
        size: 16,
    });
    let output = folder.path().join("missing");
    let error = write_delivery(&missing, &store, &output).unwrap_err();
    assert!(
        error.to_string().contains("not in the blob store"),
        "{error}"
    );
    assert!(fs::read_dir(&output).unwrap().next().is_none());

    // Corrupt (same size, other bytes): found while streaming, nothing left.
    let victim = entries_in[3].clone();
    let path = store.path(&victim.digest);
    let mut bytes = fs::read(&path).unwrap();
    bytes[100] ^= 0x01;
    fs::write(&path, &bytes).unwrap();
    let output = folder.path().join("corrupt");
    let error = write_delivery(&delivery(1, 1, 70_000, entries_in), &store, &output).unwrap_err();
    let message = error.to_string();
    assert!(message.contains(&victim.digest.to_string()), "{message}");
    assert!(message.contains("corrupt"), "{message}");
    assert!(
        fs::read_dir(&output).unwrap().next().is_none(),
        "no segment and no partial file left"
    );
}

#[test]
fn read_folder_summarises_each_delivery() {
    let (folder, store, entries_in) = store_with(&blobs("summary", 10, &[50_000, 20_000]));
    let output = folder.path().join("out");
    let first = delivery(1, 1, 150_000, entries_in[..6].to_vec());
    let second = delivery(2, 100, 150_000, entries_in[6..].to_vec());
    let first_layout = write_delivery(&first, &store, &output).unwrap();
    let second_layout = write_delivery(&second, &store, &output).unwrap();
    let summaries = read_folder(&output).unwrap();
    assert_eq!(summaries.len(), 2);
    for (summary, (input, written)) in summaries
        .iter()
        .zip([(&first, &first_layout), (&second, &second_layout)])
    {
        assert_eq!(summary.delivery, input.delivery);
        assert_eq!(summary.previous, input.previous);
        assert_eq!(summary.config_text, input.config_text);
        assert_eq!(summary.images, input.images);
        assert_eq!(summary.blob_count, input.blobs.len());
        assert_eq!(summary.manifest_count, input.manifests.len());
        assert_eq!(summary.bytes, written.total_bytes);
        assert_eq!(
            summary.segments,
            written
                .segments
                .iter()
                .map(|segment| segment.file_name.clone())
                .collect::<Vec<_>>()
        );
    }
    assert_eq!(summaries[1].segments[0], "mirror_000100.tar");
}

#[test]
fn a_delivery_carries_its_inputs_in_the_first_segment_and_an_altered_copy_is_refused() {
    let (folder, store, entries_in) = store_with(&blobs("inputs", 6, &[40_000]));
    let output = folder.path().join("out");
    let mut first = delivery(1, 1, 120_000, entries_in.clone());
    let inputs = br#"{"format_version":1,"files":{"hold-release/a.json":"{}"}}"#.to_vec();
    first.inputs = Some(inputs.clone());
    let written = write_delivery(&first, &store, &output).unwrap();
    assert!(written.segments.len() > 1, "several segments");
    let summaries = read_folder(&output).unwrap();
    assert_eq!(summaries[0].inputs.as_deref(), Some(inputs.as_slice()));
    // Only the first segment holds it, compressed, right after the plan.
    let paths: Vec<String> = entries(&output.join("mirror_000001.tar"))
        .into_iter()
        .map(|(path, _)| path)
        .collect();
    assert_eq!(paths[2], "ferry/deliveries/000001/plan.json.gz");
    assert_eq!(paths[3], "ferry/deliveries/000001/inputs.json.gz");
    for later in &written.segments[1..] {
        assert!(
            entries(&output.join(&later.file_name))
                .iter()
                .all(|(path, _)| !path.contains("inputs.json"))
        );
    }
    // The same size, other bytes: the digest in the table catches it.
    let segment = output.join("mirror_000001.tar");
    let (offset, size) = entry_position(&segment, "ferry/deliveries/000001/inputs.json.gz");
    let mut bytes = fs::read(&segment).unwrap();
    bytes[(offset + size / 2) as usize] ^= 0x55;
    fs::write(&segment, bytes).unwrap();
    let error = read_folder(&output).unwrap_err().to_string();
    assert!(error.contains("inputs.json.gz"), "{error}");
    // A delivery without inputs has no such entry.
    let plain = folder.path().join("plain");
    write_delivery(&delivery(1, 1, 120_000, entries_in), &store, &plain).unwrap();
    assert_eq!(read_folder(&plain).unwrap()[0].inputs, None);
    assert!(
        entries(&plain.join("mirror_000001.tar"))
            .iter()
            .all(|(path, _)| !path.contains("inputs.json"))
    );
}

#[test]
fn deliveries_unpacked_into_one_folder_collide_only_on_index_json() {
    let (folder, store, entries_in) = store_with(&blobs("collide", 10, &[50_000]));
    let output = folder.path().join("out");
    write_delivery(
        &delivery(1, 1, 150_000, entries_in[..5].to_vec()),
        &store,
        &output,
    )
    .unwrap();
    write_delivery(
        &delivery(2, 4, 150_000, entries_in[5..].to_vec()),
        &store,
        &output,
    )
    .unwrap();
    let mut seen: std::collections::BTreeMap<String, Vec<Vec<u8>>> = Default::default();
    for file in segment_files(&output) {
        let mut archive = tar::Archive::new(fs::File::open(output.join(&file)).unwrap());
        for entry in archive.entries().unwrap() {
            let mut entry = entry.unwrap();
            let path = entry.path().unwrap().to_string_lossy().into_owned();
            let mut bytes = Vec::new();
            std::io::Read::read_to_end(&mut entry, &mut bytes).unwrap();
            let versions = seen.entry(path).or_default();
            if !versions.contains(&bytes) {
                versions.push(bytes);
            }
        }
    }
    let differing: Vec<&String> = seen
        .iter()
        .filter(|(_, versions)| versions.len() > 1)
        .map(|(path, _)| path)
        .collect();
    assert_eq!(differing, ["index.json"]);
    assert!(seen.contains_key("ferry/deliveries/000001/config.yaml"));
    assert!(seen.contains_key("ferry/deliveries/000002/config.yaml"));
}

#[test]
fn sha512_blobs_use_long_names_and_round_trip() {
    use sha2::Digest as _;
    let (folder, store, mut entries_in) = store_with(&blobs("sha512", 3, &[5_000]));
    let bytes = common::random_bytes("a sha512 blob", 70_000);
    let digest: ferry_schemas::Digest =
        format!("sha512:{}", hex::encode(sha2::Sha512::digest(&bytes)))
            .parse()
            .unwrap();
    store.write(&digest, None, bytes.as_slice()).unwrap();
    entries_in.push(ferry_archive::BlobEntry {
        digest: digest.clone(),
        size: bytes.len() as u64,
    });
    let input = delivery(1, 1, 1 << 20, entries_in);
    let output = folder.path().join("out");
    let written = write_delivery(&input, &store, &output).unwrap();
    assert_eq!(written, layout(&input).unwrap());
    let file = output.join("mirror_000001.tar");
    assert_eq!(
        fs::metadata(&file).unwrap().len(),
        written.segments[0].bytes
    );
    let path = format!("blobs/sha512/{}", digest.hex());
    assert!(path.len() > 100);
    assert!(
        entries(&file)
            .iter()
            .any(|(found, size)| *found == path && *size == 70_000)
    );
    ferry_archive::verify_folder(&output, &Default::default()).unwrap();
    let destination = tempfile::tempdir().unwrap();
    let imported = ferry_store::BlobStore::open(destination.path()).unwrap();
    ferry_archive::import_folder(&output, &Default::default(), &imported).unwrap();
    assert_eq!(fs::read(imported.path(&digest)).unwrap(), bytes);
}
