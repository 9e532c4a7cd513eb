//! Reading a folder of segments from their metadata, with every
//! structural check that needs no re-hashing of content: each tar header
//! in canonical form and listed in its segment's table, each segment where
//! its name says, each delivery complete and consistent, the chain of
//! deliveries unbroken.

use std::collections::{BTreeMap, BTreeSet};
use std::fs::{self, File};
use std::io::{Read, Seek, SeekFrom};
use std::path::{Path, PathBuf};

use ferry_schemas::{Digest, DigestAlgorithm};

use crate::compression::decompress;
use crate::error::{ArchiveError, Result, io, segment_error};
use crate::metadata::{
    EntryKind, FORMAT_NAME, FORMAT_VERSION_1, ImagesFile, MAX_METADATA_BYTES, OCI_INDEX_PATH,
    OCI_LAYOUT_BYTES, OCI_LAYOUT_PATH, SegmentTable, TableEntry, blob_path, compressed_metadata,
    config_path, images_path, inputs_path, plan_path, sha256_of, table_path, writer_name,
};
use crate::model::{ContentEntry, DeliveryContents, DeliverySummary, SurveyedDelivery};
use crate::tar_format::{NextHeader, RawEntry, ReadProblem, padded, read_header};
use crate::{FORMAT_VERSION, segment_file_name, segment_number};

/// One segment file whose structure has been checked.
#[derive(Clone, Debug)]
pub struct ScannedSegment {
    pub file_name: String,
    pub path: PathBuf,
    pub length: u64,
    pub table: SegmentTable,
    /// The table's own entry (always first).
    pub table_entry: RawEntry,
    /// sha256 of the table's bytes as read.
    pub table_digest: Digest,
    /// The entries after the table, parallel to `table.entries`.
    pub entries: Vec<RawEntry>,
}

/// One delivery whose segments are all present and agree.
#[derive(Clone, Debug)]
pub struct ScannedDelivery {
    pub delivery: u32,
    pub previous: Option<u32>,
    /// In position order.
    pub segments: Vec<ScannedSegment>,
    pub config_text: String,
    pub images: ImagesFile,
    /// `inputs.json`, when the delivery carries one.
    pub inputs: Option<Vec<u8>>,
}

impl ScannedDelivery {
    pub fn summary(&self) -> DeliverySummary {
        let rows = || {
            self.segments
                .iter()
                .flat_map(|segment| &segment.table.entries)
        };
        DeliverySummary {
            delivery: self.delivery,
            previous: self.previous,
            segments: self
                .segments
                .iter()
                .map(|segment| segment.file_name.clone())
                .collect(),
            config_text: self.config_text.clone(),
            images: self
                .images
                .images
                .iter()
                .map(|image| image.record())
                .collect(),
            blob_count: rows().filter(|row| row.kind == EntryKind::Blob).count(),
            manifest_count: rows().filter(|row| row.kind == EntryKind::Manifest).count(),
            bytes: self.segments.iter().map(|segment| segment.length).sum(),
            inputs: self.inputs.clone(),
        }
    }
}

/// The segment files of a folder (`mirror_NNNNNN.tar`), by number.
pub fn list_segment_files(folder: &Path) -> Result<Vec<(u32, String, PathBuf)>> {
    let mut found = Vec::new();
    for entry in fs::read_dir(folder).map_err(io("listing", folder))? {
        let entry = entry.map_err(io("listing", folder))?;
        let name = entry.file_name();
        let Some(name) = name.to_str() else { continue };
        if let Some(number) = segment_number(name) {
            found.push((number, name.to_owned(), entry.path()));
        }
    }
    found.sort();
    if found.is_empty() {
        return Err(ArchiveError::NoSegments {
            folder: folder.to_owned(),
        });
    }
    Ok(found)
}

/// Checks the structure of every segment in `folder` and groups them into
/// deliveries, in order.
pub fn scan_folder(folder: &Path) -> Result<Vec<ScannedDelivery>> {
    let mut by_delivery: BTreeMap<u32, Vec<ScannedSegment>> = BTreeMap::new();
    for (number, file_name, path) in list_segment_files(folder)? {
        let segment = scan_segment(&path, &file_name, number)?;
        by_delivery
            .entry(segment.table.delivery)
            .or_default()
            .push(segment);
    }
    by_delivery
        .into_iter()
        .map(|(delivery, segments)| assemble_delivery(folder, delivery, segments))
        .collect()
}

/// Refuses a delivery whose predecessor is neither in the folder nor
/// applied at the destination.
pub fn check_chain(
    folder: &Path,
    deliveries: &[ScannedDelivery],
    applied: &BTreeSet<u32>,
) -> Result<()> {
    let present: BTreeSet<u32> = deliveries
        .iter()
        .map(|delivery| delivery.delivery)
        .collect();
    for delivery in deliveries {
        let Some(previous) = delivery.previous else {
            continue;
        };
        if !present.contains(&previous) && !applied.contains(&previous) {
            return Err(ArchiveError::Delivery {
                delivery: delivery.delivery,
                problem: format!(
                    "it follows delivery {previous}, which is neither in {} nor applied at the destination; bring the segments of delivery {previous} (or apply it first)",
                    folder.display()
                ),
            });
        }
    }
    Ok(())
}

fn scan_segment(path: &Path, file_name: &str, number: u32) -> Result<ScannedSegment> {
    let mut file = File::open(path).map_err(io("opening", path))?;
    let length = file
        .metadata()
        .map_err(io("reading the size of", path))?
        .len();
    let refused = |entry: Option<&str>, problem: String| segment_error(file_name, entry, problem);
    let read = |file: &mut File, offset: u64| match read_header(file, offset, length) {
        Ok(next) => Ok(next),
        Err(ReadProblem::Io(source)) => Err(io("reading", path)(source)),
        Err(ReadProblem::Refused(problem)) => Err(segment_error(
            file_name,
            problem.entry.as_deref(),
            problem.problem,
        )),
    };

    let NextHeader::Entry(table_entry) = read(&mut file, 0)? else {
        return Err(refused(
            None,
            "the segment is empty (an end-of-archive marker only); copy it again from the source"
                .to_owned(),
        ));
    };
    let Some((delivery, table_number)) = parse_table_path(&table_entry.path) else {
        return Err(refused(
            Some(&table_entry.path),
            "the first entry is not a segment table (ferry/deliveries/NNNNNN/segment-NNNNNN.json): this file is not a ferry segment".to_owned(),
        ));
    };
    if table_number != number {
        return Err(refused(
            Some(&table_entry.path),
            format!(
                "this segment was written as {} but is named {file_name}: segments were renamed; give it its name back",
                segment_file_name(table_number)
            ),
        ));
    }
    let table_bytes = read_metadata(&mut file, &table_entry, path, file_name)?;
    let table =
        parse_table(&table_bytes).map_err(|problem| refused(Some(&table_entry.path), problem))?;
    check_table(&table, delivery, number, file_name, &table_entry.path)?;

    let mut entries = Vec::with_capacity(table.entries.len());
    let mut offset = table_entry.data_offset + padded(table_entry.size);
    loop {
        match read(&mut file, offset)? {
            NextHeader::End => break,
            NextHeader::Entry(entry) => {
                let Some(row) = table.entries.get(entries.len()) else {
                    return Err(refused(
                        Some(&entry.path),
                        "unknown entry: the segment table does not list it; this segment was altered: copy it again from the source".to_owned(),
                    ));
                };
                if row.path != entry.path || row.size != entry.size {
                    return Err(refused(
                        Some(&entry.path),
                        format!(
                            "unknown entry ({} bytes) where the segment table lists {} ({} bytes); this segment was altered: copy it again from the source",
                            entry.size, row.path, row.size
                        ),
                    ));
                }
                offset = entry.data_offset + padded(entry.size);
                entries.push(entry);
            }
        }
    }
    if entries.len() < table.entries.len() {
        let missing = &table.entries[entries.len()];
        return Err(refused(
            Some(&missing.path),
            format!(
                "missing: the segment table lists {} entries, the segment holds {}; the segment is truncated or altered: copy it again from the source",
                table.entries.len(),
                entries.len()
            ),
        ));
    }
    Ok(ScannedSegment {
        file_name: file_name.to_owned(),
        path: path.to_owned(),
        length,
        table,
        table_digest: sha256_of(&table_bytes),
        table_entry,
        entries,
    })
}

/// The segment table, once its format and version are known to be ones
/// this crate reads (checked before the strict parse, so that a newer
/// format's table is refused by its version, naming the ferry that wrote
/// it, rather than by a field this crate does not know).
fn parse_table(bytes: &[u8]) -> std::result::Result<SegmentTable, String> {
    let unreadable = |error: serde_json::Error| {
        format!("the segment table is unreadable ({error}); copy the segment again from the source")
    };
    let loose: serde_json::Value = serde_json::from_slice(bytes).map_err(unreadable)?;
    if loose["format"] != FORMAT_NAME {
        return Err(format!(
            "format {} is not {FORMAT_NAME}: this file is not a ferry segment",
            loose["format"]
        ));
    }
    let readable = FORMAT_VERSION_1..=FORMAT_VERSION;
    match loose["format_version"].as_u64() {
        Some(version)
            if u32::try_from(version).is_ok_and(|version| readable.contains(&version)) =>
        {
            serde_json::from_slice(bytes).map_err(unreadable)
        }
        Some(version) if version > u64::from(FORMAT_VERSION) => Err(format!(
            "format version {version}, written by {}, is newer than this ferry reads ({}: format versions {FORMAT_VERSION_1} to {FORMAT_VERSION}); read it with the ferry that wrote it, or a later one",
            loose["writer"].as_str().unwrap_or("a newer ferry"),
            writer_name()
        )),
        _ => Err(format!(
            "format version {} is not one this ferry reads (format versions {FORMAT_VERSION_1} to {FORMAT_VERSION}); copy the segment again from the source",
            loose["format_version"]
        )),
    }
}

/// `ferry/deliveries/DDDDDD/segment-NNNNNN.json` → (D, N).
fn parse_table_path(path: &str) -> Option<(u32, u32)> {
    let rest = path.strip_prefix("ferry/deliveries/")?;
    let (delivery, rest) = rest.split_once('/')?;
    let number = rest.strip_prefix("segment-")?.strip_suffix(".json")?;
    Some((parse_six_digits(delivery)?, parse_six_digits(number)?))
}

fn parse_six_digits(text: &str) -> Option<u32> {
    if text.len() == 6 && text.bytes().all(|byte| byte.is_ascii_digit()) {
        text.parse().ok()
    } else {
        None
    }
}

/// Reads a metadata entry into memory (bounded).
fn read_metadata(
    file: &mut File,
    entry: &RawEntry,
    path: &Path,
    file_name: &str,
) -> Result<Vec<u8>> {
    if entry.size > MAX_METADATA_BYTES {
        return Err(segment_error(
            file_name,
            Some(&entry.path),
            format!(
                "{} bytes is larger than any metadata file ferry writes; this segment was altered",
                entry.size
            ),
        ));
    }
    file.seek(SeekFrom::Start(entry.data_offset))
        .map_err(io("reading", path))?;
    let mut bytes = vec![0; entry.size as usize];
    file.read_exact(&mut bytes).map_err(io("reading", path))?;
    Ok(bytes)
}

/// The table agrees with itself and with the file's name and position.
fn check_table(
    table: &SegmentTable,
    delivery: u32,
    number: u32,
    file_name: &str,
    table_path_found: &str,
) -> Result<()> {
    let refused = |problem: String| segment_error(file_name, Some(table_path_found), problem);
    let version = table.format_version;
    if (version == FORMAT_VERSION_1) != table.writer.is_none() {
        return Err(refused(format!(
            "a table of format version {version} {} a writer; this segment was altered",
            if table.writer.is_none() {
                "must name"
            } else {
                "names no"
            }
        )));
    }
    if table.delivery != delivery || table.number != number || table.file_name != file_name {
        return Err(refused(format!(
            "the table says delivery {}, segment {} ({}), the file is {file_name} in delivery {delivery}: segments were renamed or altered; give each its name back",
            table.delivery, table.number, table.file_name
        )));
    }
    if table.count == 0
        || table.position == 0
        || table.position > table.count
        || table.segments.len() != table.count as usize
        || table.segments[table.position as usize - 1] != file_name
    {
        return Err(refused(format!(
            "the table places this file at position {} of {} among {:?}; segments were renamed or altered",
            table.position, table.count, table.segments
        )));
    }
    if table
        .previous
        .is_some_and(|previous| previous == 0 || previous >= delivery)
    {
        return Err(refused(format!(
            "delivery {delivery} cannot follow delivery {:?}",
            table.previous
        )));
    }
    let names: BTreeSet<&String> = table.segments.iter().collect();
    if names.len() != table.segments.len()
        || table
            .segments
            .iter()
            .any(|name| segment_number(name).is_none())
    {
        return Err(refused(format!(
            "the delivery's segment list {:?} is malformed",
            table.segments
        )));
    }
    let first = table.position == 1;
    let mut seen_kinds: BTreeMap<EntryKind, usize> = BTreeMap::new();
    let mut seen_digests: BTreeSet<&Digest> = BTreeSet::new();
    for row in &table.entries {
        *seen_kinds.entry(row.kind).or_default() += 1;
        let row_refused = |problem: String| segment_error(file_name, Some(&row.path), problem);
        let expected_path = expected_path(row, delivery, version);
        if row.path != expected_path {
            return Err(row_refused(format!(
                "listed as {:?} with digest {}, so it belongs at {expected_path}",
                row.kind, row.digest
            )));
        }
        let metadata = !matches!(row.kind, EntryKind::Blob | EntryKind::Manifest);
        if metadata && row.digest.algorithm() != DigestAlgorithm::Sha256 {
            return Err(row_refused("metadata is named by sha256".to_owned()));
        }
        if row.kind == EntryKind::Manifest && row.media_type.is_none() {
            return Err(row_refused("a manifest without a media type".to_owned()));
        }
        if row.kind != EntryKind::Manifest && row.media_type.is_some() {
            return Err(row_refused("only manifests carry a media type".to_owned()));
        }
        if !metadata && !seen_digests.insert(&row.digest) {
            return Err(row_refused(
                "listed twice; each blob appears once in a delivery".to_owned(),
            ));
        }
    }
    for (kind, wanted) in [
        (EntryKind::Config, 1),
        (EntryKind::Plan, 1),
        // The image list: `images.json` in format 1, `index.json` after.
        (
            EntryKind::Images,
            usize::from(first && version == FORMAT_VERSION_1),
        ),
        (EntryKind::OciLayout, usize::from(first)),
        (EntryKind::OciIndex, usize::from(first)),
        // Optional: at most one, in the first segment.
        (EntryKind::Inputs, usize::from(first)),
    ] {
        let found = seen_kinds.get(&kind).copied().unwrap_or(0);
        if kind == EntryKind::Inputs && found == 0 {
            continue;
        }
        if found != wanted {
            return Err(refused(format!(
                "the table lists {found} entries of kind {kind:?}, segment {} of {} has {wanted}",
                table.position, table.count
            )));
        }
    }
    Ok(())
}

fn expected_path(row: &TableEntry, delivery: u32, format_version: u32) -> String {
    match row.kind {
        EntryKind::Config => config_path(delivery),
        EntryKind::Plan => plan_path(delivery, format_version),
        EntryKind::Images => images_path(delivery),
        EntryKind::Inputs => inputs_path(delivery, format_version),
        EntryKind::OciLayout => OCI_LAYOUT_PATH.to_owned(),
        EntryKind::OciIndex => OCI_INDEX_PATH.to_owned(),
        EntryKind::Blob | EntryKind::Manifest => blob_path(&row.digest),
    }
}

/// Groups the segments of one delivery, checks they are all present and
/// agree, and reads its configuration and image list.
fn assemble_delivery(
    folder: &Path,
    delivery: u32,
    mut segments: Vec<ScannedSegment>,
) -> Result<ScannedDelivery> {
    segments.sort_by_key(|segment| segment.table.position);
    let reference = segments[0].table.clone();
    let metadata_digest = |table: &SegmentTable, kind: EntryKind| {
        table
            .entries
            .iter()
            .find(|row| row.kind == kind)
            .map(|row| row.digest.clone())
    };
    for segment in &segments[1..] {
        let table = &segment.table;
        let disagreement = if table.format_version != reference.format_version {
            Some("format version")
        } else if table.previous != reference.previous {
            Some("previous delivery")
        } else if table.segments != reference.segments {
            Some("list of segments")
        } else if metadata_digest(table, EntryKind::Config)
            != metadata_digest(&reference, EntryKind::Config)
        {
            Some("configuration")
        } else if metadata_digest(table, EntryKind::Plan)
            != metadata_digest(&reference, EntryKind::Plan)
        {
            Some("plan")
        } else {
            None
        };
        if let Some(what) = disagreement {
            return Err(segment_error(
                &segment.file_name,
                Some(&table_path(delivery, segment.table.number)),
                format!(
                    "its {what} differs from that of {} although both say delivery {delivery}; one of them was altered or comes from another ferry workspace",
                    segments[0].file_name
                ),
            ));
        }
    }
    for (index, name) in reference.segments.iter().enumerate() {
        let present = segments
            .iter()
            .filter(|segment| &segment.file_name == name)
            .count();
        if present == 0 {
            return Err(ArchiveError::Delivery {
                delivery,
                problem: format!(
                    "segment {name} ({} of {}) is missing from {}; copy it from the source",
                    index + 1,
                    reference.count,
                    folder.display()
                ),
            });
        }
    }
    let mut digests = BTreeSet::new();
    for segment in &segments {
        for row in &segment.table.entries {
            if matches!(row.kind, EntryKind::Blob | EntryKind::Manifest)
                && !digests.insert(&row.digest)
            {
                return Err(segment_error(
                    &segment.file_name,
                    Some(&row.path),
                    format!(
                        "also in another segment of delivery {delivery}; each blob appears once in a delivery"
                    ),
                ));
            }
        }
    }

    let first = &segments[0];
    let config_bytes = read_listed(first, EntryKind::Config)?;
    let config_text = String::from_utf8(config_bytes).map_err(|_| {
        segment_error(
            &first.file_name,
            Some(&config_path(delivery)),
            "the configuration is not UTF-8",
        )
    })?;
    let version = reference.format_version;
    let images = read_images(first, delivery, version)?;
    let layout_row = first
        .table
        .entries
        .iter()
        .find(|row| row.kind == EntryKind::OciLayout)
        .map(|row| row.digest.clone());
    if layout_row != Some(sha256_of(OCI_LAYOUT_BYTES)) {
        return Err(segment_error(
            &first.file_name,
            Some(OCI_LAYOUT_PATH),
            "oci-layout is not {\"imageLayoutVersion\":\"1.0.0\"}",
        ));
    }
    let inputs = first
        .table
        .entries
        .iter()
        .any(|row| row.kind == EntryKind::Inputs)
        .then(|| read_listed(first, EntryKind::Inputs))
        .transpose()?
        .map(|bytes| {
            if !compressed_metadata(version) {
                return Ok(bytes);
            }
            decompress(&bytes, MAX_METADATA_BYTES).map_err(|problem| {
                segment_error(
                    &first.file_name,
                    Some(&inputs_path(delivery, version)),
                    format!("{problem}; copy the segment again from the source"),
                )
            })
        })
        .transpose()?;
    Ok(ScannedDelivery {
        delivery,
        previous: reference.previous,
        segments,
        config_text,
        images,
        inputs,
    })
}

/// The delivery's image list, from the first segment: `images.json`
/// (format 1), which `index.json` must match, or `index.json` itself,
/// which must be exactly what ferry writes for the images it lists.
fn read_images(first: &ScannedSegment, delivery: u32, version: u32) -> Result<ImagesFile> {
    let altered = "index.json does not match the image list; this segment was altered: copy it again from the source";
    if version == FORMAT_VERSION_1 {
        let images_bytes = read_listed(first, EntryKind::Images)?;
        let images: ImagesFile = serde_json::from_slice(&images_bytes).map_err(|error| {
            segment_error(
                &first.file_name,
                Some(&images_path(delivery)),
                format!("the image list is unreadable ({error})"),
            )
        })?;
        if images.delivery != delivery {
            return Err(segment_error(
                &first.file_name,
                Some(&images_path(delivery)),
                format!("the image list says delivery {}", images.delivery),
            ));
        }
        let index_row = first
            .table
            .entries
            .iter()
            .find(|row| row.kind == EntryKind::OciIndex)
            .map(|row| row.digest.clone());
        if index_row != Some(sha256_of(&images.oci_index())) {
            return Err(segment_error(
                &first.file_name,
                Some(OCI_INDEX_PATH),
                altered,
            ));
        }
        return Ok(images);
    }
    let index = read_listed(first, EntryKind::OciIndex)?;
    let listed = ImagesFile::from_oci_index(version, delivery, &index).map_err(|problem| {
        segment_error(
            &first.file_name,
            Some(OCI_INDEX_PATH),
            format!(
                "the image index is unreadable ({problem}); copy the segment again from the source"
            ),
        )
    })?;
    let records: Vec<_> = listed.images.iter().map(|image| image.record()).collect();
    let images = ImagesFile::new(delivery, &records);
    if images.oci_index() != index {
        return Err(segment_error(
            &first.file_name,
            Some(OCI_INDEX_PATH),
            "index.json is not what ferry writes for the images it lists (order, ref names or fields differ); this segment was altered: copy it again from the source",
        ));
    }
    Ok(images)
}

/// Reads the metadata entry of `kind` from a segment and checks its digest.
fn read_listed(segment: &ScannedSegment, kind: EntryKind) -> Result<Vec<u8>> {
    let (row, entry) = segment
        .table
        .entries
        .iter()
        .zip(&segment.entries)
        .find(|(row, _)| row.kind == kind)
        .ok_or_else(|| segment_error(&segment.file_name, None, format!("no {kind:?} entry")))?;
    let mut file = File::open(&segment.path).map_err(io("opening", &segment.path))?;
    let bytes = read_metadata(&mut file, entry, &segment.path, &segment.file_name)?;
    let actual = sha256_of(&bytes);
    if actual != row.digest {
        return Err(segment_error(
            &segment.file_name,
            Some(&row.path),
            format!(
                "content does not match the segment table (expected {}, got {actual}); copy the segment again from the source",
                row.digest
            ),
        ));
    }
    Ok(bytes)
}

/// What the segment files chosen by `wanted` (by file number) say about
/// themselves, delivery by delivery, without failing on the first problem:
/// the caller decides what to do with a delivery that is not whole.
/// Structural checks only, as [`scan_folder`]; nothing is re-hashed.
pub fn survey(folder: &Path, wanted: &dyn Fn(u32) -> bool) -> Result<Vec<SurveyedDelivery>> {
    let files = match list_segment_files(folder) {
        Ok(files) => files,
        Err(ArchiveError::NoSegments { .. }) => return Ok(Vec::new()),
        Err(error) => return Err(error),
    };
    let mut surveyed = Vec::new();
    let mut by_delivery: BTreeMap<u32, Vec<ScannedSegment>> = BTreeMap::new();
    for (number, file_name, path) in files {
        if !wanted(number) {
            continue;
        }
        match scan_segment(&path, &file_name, number) {
            Ok(segment) => by_delivery
                .entry(segment.table.delivery)
                .or_default()
                .push(segment),
            Err(error) => surveyed.push(SurveyedDelivery::Unreadable {
                file_name,
                problem: error.to_string(),
            }),
        }
    }
    for (delivery, segments) in by_delivery {
        let present: Vec<String> = segments
            .iter()
            .map(|segment| segment.file_name.clone())
            .collect();
        match assemble_delivery(folder, delivery, segments) {
            Ok(scanned) => surveyed.push(SurveyedDelivery::Whole(scanned.contents())),
            Err(error) => surveyed.push(SurveyedDelivery::NotWhole {
                delivery,
                present,
                problem: error.to_string(),
            }),
        }
    }
    Ok(surveyed)
}

impl ScannedDelivery {
    /// The summary with every blob and manifest the delivery carries.
    pub fn contents(&self) -> DeliveryContents {
        let mut content = Vec::new();
        for row in self
            .segments
            .iter()
            .flat_map(|segment| &segment.table.entries)
        {
            if matches!(row.kind, EntryKind::Blob | EntryKind::Manifest) {
                content.push(ContentEntry {
                    digest: row.digest.clone(),
                    size: row.size,
                    media_type: row.media_type.clone(),
                });
            }
        }
        DeliveryContents {
            summary: self.summary(),
            segment_numbers: self
                .segments
                .iter()
                .map(|segment| segment.table.number)
                .collect(),
            content,
        }
    }
}
