//! Splitting a delivery into segments (pure: no I/O).
//!
//! Content entries (manifests and blobs, one per digest) are sorted by
//! digest and filled into segments in that order: an entry that would push
//! the current segment past `max_segment_bytes` starts the next one. An
//! entry that does not fit even in an empty segment gets a segment of its
//! own and a warning (strict mode: an error).
//!
//! Each segment's size is computed exactly: tar headers and padding, the
//! metadata entries, and the segment table, whose length grows by one row
//! and one comma per entry. The table also lists every segment file of the
//! delivery, so its length depends on how many segments there are; the
//! packing starts by assuming one segment and repeats with the count it
//! found until the count no longer grows. Tables are then rendered with the
//! final count, which can only make them shorter, so every segment still
//! fits.

use std::collections::{BTreeMap, BTreeSet};
use std::sync::Arc;

use ferry_schemas::Digest;

use crate::compression::compress;
use crate::error::{ArchiveError, Result};
use crate::metadata::{
    EntryKind, FORMAT_NAME, ImagesFile, OCI_INDEX_PATH, OCI_LAYOUT_BYTES, OCI_LAYOUT_PATH,
    SegmentTable, TableEntry, blob_path, config_path, digest_of, inputs_path, plan_path, sha256_of,
    table_path, writer_name,
};
use crate::model::{DeliveryInput, DeliveryLayout, SegmentLayout};
use crate::tar_format::{END_OF_ARCHIVE, entry_len, header_len, padded};
use crate::{FORMAT_VERSION, segment_file_name};

/// The largest segment number the file name pattern (6 digits) allows.
pub const MAX_SEGMENT_NUMBER: u32 = 999_999;

/// Where an entry's bytes come from when the segment is written.
#[derive(Clone, Debug)]
pub enum Source {
    /// Bytes held in memory (metadata, manifests).
    Inline(Arc<[u8]>),
    /// A blob read from the blob store.
    Store,
}

/// One entry to write after the table.
#[derive(Clone, Debug)]
pub struct Item {
    pub row: TableEntry,
    /// Length of the row in the table's JSON.
    row_len: u64,
    /// Bytes the entry takes in the tar.
    tar_len: u64,
    pub source: Source,
}

impl Item {
    fn new(row: TableEntry, source: Source) -> Self {
        let row_len = serde_json::to_vec(&row).expect("a row serializes").len() as u64;
        let tar_len = entry_len(&row.path, row.size);
        Item {
            row,
            row_len,
            tar_len,
            source,
        }
    }

    fn inline(path: String, kind: EntryKind, bytes: Vec<u8>) -> Self {
        let row = TableEntry {
            path,
            kind,
            digest: sha256_of(&bytes),
            size: bytes.len() as u64,
            media_type: None,
        };
        Item::new(row, Source::Inline(bytes.into()))
    }
}

/// A segment ready to be written.
#[derive(Clone, Debug)]
pub struct PlannedSegment {
    pub file_name: String,
    pub table: SegmentTable,
    pub table_bytes: Vec<u8>,
    /// The entries after the table, parallel to `table.entries`.
    pub items: Vec<Item>,
    pub bytes: u64,
}

/// A whole delivery, split.
#[derive(Clone, Debug)]
pub struct Packing {
    pub segments: Vec<PlannedSegment>,
    pub warnings: Vec<String>,
}

impl Packing {
    pub fn layout(&self) -> DeliveryLayout {
        let segments: Vec<SegmentLayout> = self
            .segments
            .iter()
            .map(|segment| SegmentLayout {
                number: segment.table.number,
                file_name: segment.file_name.clone(),
                bytes: segment.bytes,
                entries: segment.items.len() + 1,
            })
            .collect();
        DeliveryLayout {
            total_bytes: segments.iter().map(|segment| segment.bytes).sum(),
            segments,
            warnings: self.warnings.clone(),
        }
    }
}

/// The entries a delivery is made of, before splitting.
struct Parts {
    /// In every segment, right after the table: config and plan.
    common: Vec<Item>,
    /// In the first segment only, after the common ones: the inputs, if any.
    first_head: Vec<Item>,
    /// Manifests and blobs, sorted by digest.
    content: Vec<Item>,
    /// In the first segment only, last: `oci-layout`, `index.json`.
    first_tail: Vec<Item>,
}

/// A segment being filled.
#[derive(Clone, Debug, Default)]
struct Open {
    first: bool,
    rows_json: u64,
    rows: u64,
    tar: u64,
    content: Vec<usize>,
}

impl Open {
    fn fresh(parts: &Parts, first: bool) -> Self {
        let mut open = Open {
            first,
            ..Open::default()
        };
        let fixed = parts.common.iter().chain(if first {
            parts
                .first_head
                .iter()
                .chain(parts.first_tail.iter())
                .collect::<Vec<_>>()
        } else {
            Vec::new()
        });
        for item in fixed {
            open.account(item);
        }
        open
    }

    fn account(&mut self, item: &Item) {
        self.rows_json += item.row_len;
        self.rows += 1;
        self.tar += item.tar_len;
    }

    /// Size of the segment with `extra` added, given the table's fixed part.
    fn size_with(&self, extra: Option<&Item>, table_path_len: u64, table_base: u64) -> u64 {
        let (rows_json, rows, tar) = match extra {
            Some(item) => (
                self.rows_json + item.row_len,
                self.rows + 1,
                self.tar + item.tar_len,
            ),
            None => (self.rows_json, self.rows, self.tar),
        };
        let table_len = table_base + rows_json + rows.saturating_sub(1);
        table_path_len + padded(table_len) + tar + END_OF_ARCHIVE
    }
}

/// How a delivery splits into segments: the exact byte size of each file.
/// Errors in strict mode (a blob too large for any segment) and when the
/// input contradicts itself.
pub fn layout(input: &DeliveryInput) -> Result<DeliveryLayout> {
    Ok(pack(input)?.layout())
}

/// Splits a delivery and renders every segment's table.
pub fn pack(input: &DeliveryInput) -> Result<Packing> {
    let parts = parts(input)?;
    let table_header = header_len(&table_path(input.delivery, input.first_segment));
    let mut guess = 1u32;
    let assignment = loop {
        let base = table_base_len(input, guess);
        let assignment = assign(&parts, input.max_segment_bytes, table_header, base);
        let found = u32::try_from(assignment.len()).unwrap_or(u32::MAX);
        if found <= guess {
            break assignment;
        }
        guess = found;
    };
    let count = u32::try_from(assignment.len()).unwrap_or(u32::MAX);
    let last = input
        .first_segment
        .checked_add(count - 1)
        .filter(|last| *last <= MAX_SEGMENT_NUMBER);
    if last.is_none() {
        return Err(invalid(
            input,
            format!(
                "its {count} segments starting at number {} would pass mirror_{MAX_SEGMENT_NUMBER}.tar",
                input.first_segment
            ),
        ));
    }
    let names: Vec<String> = (0..count)
        .map(|index| segment_file_name(input.first_segment + index))
        .collect();
    let mut segments = Vec::with_capacity(assignment.len());
    for (index, content) in assignment.iter().enumerate() {
        let first = index == 0;
        let mut items: Vec<Item> = parts.common.clone();
        if first {
            items.extend(parts.first_head.iter().cloned());
        }
        items.extend(
            content
                .iter()
                .map(|position| parts.content[*position].clone()),
        );
        if first {
            items.extend(parts.first_tail.iter().cloned());
        }
        let number = input.first_segment + index as u32;
        let table = SegmentTable {
            format: FORMAT_NAME.to_owned(),
            format_version: FORMAT_VERSION,
            writer: Some(writer_name()),
            delivery: input.delivery,
            previous: input.previous,
            file_name: names[index].clone(),
            number,
            position: index as u32 + 1,
            count,
            segments: names.clone(),
            entries: items.iter().map(|item| item.row.clone()).collect(),
        };
        let table_bytes = table.to_bytes();
        let bytes = entry_len(
            &table_path(input.delivery, number),
            table_bytes.len() as u64,
        ) + items.iter().map(|item| item.tar_len).sum::<u64>()
            + END_OF_ARCHIVE;
        segments.push(PlannedSegment {
            file_name: names[index].clone(),
            table,
            table_bytes,
            items,
            bytes,
        });
    }
    let warnings = oversize_warnings(input, &segments, &assignment)?;
    Ok(Packing { segments, warnings })
}

/// Warnings for segments larger than allowed (each holds one entry that
/// does not fit anywhere, or only metadata); strict mode turns the first
/// into an error.
fn oversize_warnings(
    input: &DeliveryInput,
    segments: &[PlannedSegment],
    assignment: &[Vec<usize>],
) -> Result<Vec<String>> {
    let mut warnings = Vec::new();
    for (segment, content) in segments.iter().zip(assignment) {
        if segment.bytes <= input.max_segment_bytes {
            continue;
        }
        let content_items: Vec<&Item> = segment
            .items
            .iter()
            .filter(|item| matches!(item.row.kind, EntryKind::Blob | EntryKind::Manifest))
            .collect();
        let (what, size) = match content_items.as_slice() {
            [item] => (
                format!(
                    "{} {}",
                    if item.row.kind == EntryKind::Manifest {
                        "manifest"
                    } else {
                        "blob"
                    },
                    item.row.digest
                ),
                item.row.size,
            ),
            _ => (
                format!(
                    "the metadata of delivery {} (configuration, plan, inputs, index.json)",
                    input.delivery
                ),
                segment
                    .items
                    .iter()
                    .filter(|item| !matches!(item.row.kind, EntryKind::Blob | EntryKind::Manifest))
                    .map(|item| item.row.size)
                    .sum::<u64>()
                    + segment.table_bytes.len() as u64,
            ),
        };
        debug_assert!(content.len() <= 1, "only single entries overflow");
        if input.strict {
            return Err(ArchiveError::Oversize {
                what,
                size,
                needed: segment.bytes,
                max_segment_bytes: input.max_segment_bytes,
            });
        }
        warnings.push(format!(
            "{what} ({size} bytes) does not fit in a segment of {} bytes: it gets a segment of its own, {} ({} bytes); an archiveSize of at least {} bytes avoids this",
            input.max_segment_bytes, segment.file_name, segment.bytes, segment.bytes
        ));
    }
    Ok(warnings)
}

/// Fills segments in order; returns the content items of each segment.
fn assign(parts: &Parts, max: u64, table_header: u64, table_base: u64) -> Vec<Vec<usize>> {
    let fits =
        |open: &Open, item: &Item| open.size_with(Some(item), table_header, table_base) <= max;
    let mut segments = Vec::new();
    let mut open = Open::fresh(parts, true);
    for (index, item) in parts.content.iter().enumerate() {
        if fits(&open, item) {
            open.account(item);
            open.content.push(index);
            continue;
        }
        if !open.content.is_empty() || open.first {
            segments.push(std::mem::take(&mut open.content));
            open = Open::fresh(parts, false);
            if fits(&open, item) {
                open.account(item);
                open.content.push(index);
                continue;
            }
        }
        // Too large even for an empty segment: a segment of its own.
        segments.push(vec![index]);
        open = Open::fresh(parts, false);
    }
    if open.first || !open.content.is_empty() {
        segments.push(open.content);
    }
    segments
}

/// Length of a table with no entries, at its longest for `count` segments
/// (position and number at their largest).
fn table_base_len(input: &DeliveryInput, count: u32) -> u64 {
    let last = input.first_segment.saturating_add(count - 1);
    let table = SegmentTable {
        format: FORMAT_NAME.to_owned(),
        format_version: FORMAT_VERSION,
        writer: Some(writer_name()),
        delivery: input.delivery,
        previous: input.previous,
        file_name: segment_file_name(last),
        number: last,
        position: count,
        count,
        segments: (0..count)
            .map(|index| segment_file_name(input.first_segment.saturating_add(index)))
            .collect(),
        entries: Vec::new(),
    };
    table.to_bytes().len() as u64
}

fn invalid(input: &DeliveryInput, problem: impl Into<String>) -> ArchiveError {
    ArchiveError::InvalidInput {
        delivery: input.delivery,
        problem: problem.into(),
    }
}

/// Checks the input and builds its entries.
fn parts(input: &DeliveryInput) -> Result<Parts> {
    if input.delivery == 0 {
        return Err(invalid(input, "deliveries are numbered from 1"));
    }
    if let Some(previous) = input.previous
        && (previous == 0 || previous >= input.delivery)
    {
        return Err(invalid(
            input,
            format!(
                "the previous delivery must be between 1 and {}, not {previous}",
                input.delivery - 1
            ),
        ));
    }
    if input.first_segment == 0 || input.first_segment > MAX_SEGMENT_NUMBER {
        return Err(invalid(
            input,
            format!(
                "segment numbers run from 1 to {MAX_SEGMENT_NUMBER}, not {}",
                input.first_segment
            ),
        ));
    }
    if input.max_segment_bytes == 0 {
        return Err(invalid(input, "max_segment_bytes is 0"));
    }
    let mut names = BTreeSet::new();
    for image in &input.images {
        if image.name.is_empty() {
            return Err(invalid(input, "an image has an empty name"));
        }
        if !names.insert(image.name.as_str()) {
            return Err(invalid(
                input,
                format!("the image {} is listed twice", image.name),
            ));
        }
    }

    let mut content: BTreeMap<Digest, Item> = BTreeMap::new();
    for manifest in &input.manifests {
        let actual = digest_of(manifest.digest.algorithm(), &manifest.bytes);
        if actual != manifest.digest {
            return Err(invalid(
                input,
                format!("the bytes of manifest {} hash to {actual}", manifest.digest),
            ));
        }
        let row = TableEntry {
            path: blob_path(&manifest.digest),
            kind: EntryKind::Manifest,
            digest: manifest.digest.clone(),
            size: manifest.bytes.len() as u64,
            media_type: Some(manifest.media_type.clone()),
        };
        if let Some(existing) = content.get(&manifest.digest)
            && existing.row.media_type != row.media_type
        {
            return Err(invalid(
                input,
                format!(
                    "manifest {} is listed twice with different media types",
                    manifest.digest
                ),
            ));
        }
        content.insert(
            manifest.digest.clone(),
            Item::new(row, Source::Inline(manifest.bytes.clone().into())),
        );
    }
    for blob in &input.blobs {
        if let Some(existing) = content.get(&blob.digest) {
            if existing.row.size != blob.size {
                return Err(invalid(
                    input,
                    format!(
                        "{} is listed with {} bytes and with {} bytes",
                        blob.digest, existing.row.size, blob.size
                    ),
                ));
            }
            // Listed twice, or both as a manifest and a blob: shipped once.
            continue;
        }
        let row = TableEntry {
            path: blob_path(&blob.digest),
            kind: EntryKind::Blob,
            digest: blob.digest.clone(),
            size: blob.size,
            media_type: None,
        };
        content.insert(blob.digest.clone(), Item::new(row, Source::Store));
    }

    let images = ImagesFile::new(input.delivery, &input.images);
    Ok(Parts {
        common: vec![
            Item::inline(
                config_path(input.delivery),
                EntryKind::Config,
                input.config_text.as_bytes().to_vec(),
            ),
            Item::inline(
                plan_path(input.delivery, FORMAT_VERSION),
                EntryKind::Plan,
                compress(input.plan_json.as_bytes()),
            ),
        ],
        first_head: input
            .inputs
            .iter()
            .map(|bytes| {
                Item::inline(
                    inputs_path(input.delivery, FORMAT_VERSION),
                    EntryKind::Inputs,
                    compress(bytes),
                )
            })
            .collect(),
        content: content.into_values().collect(),
        first_tail: vec![
            Item::inline(
                OCI_LAYOUT_PATH.to_owned(),
                EntryKind::OciLayout,
                OCI_LAYOUT_BYTES.to_vec(),
            ),
            Item::inline(
                OCI_INDEX_PATH.to_owned(),
                EntryKind::OciIndex,
                images.oci_index(),
            ),
        ],
    })
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::model::{BlobEntry, ImageRecord};
    use ferry_schemas::DigestAlgorithm;

    fn digest(seed: u32) -> Digest {
        sha256_of(&seed.to_le_bytes())
    }

    fn input(blobs: &[u64], max: u64) -> DeliveryInput {
        DeliveryInput {
            inputs: None,
            delivery: 1,
            previous: None,
            first_segment: 1,
            max_segment_bytes: max,
            strict: false,
            config_text: "kind: ImageSetConfiguration\n".to_owned(),
            plan_json: "{}".to_owned(),
            images: vec![ImageRecord {
                name: "quay.io/a/b:1".to_owned(),
                digest: digest(999),
                media_type: "application/vnd.oci.image.manifest.v1+json".to_owned(),
                size: 10,
            }],
            manifests: Vec::new(),
            blobs: blobs
                .iter()
                .enumerate()
                .map(|(index, size)| BlobEntry {
                    digest: digest(index as u32),
                    size: *size,
                })
                .collect(),
        }
    }

    /// The incremental size the packing uses equals the rendered size.
    #[test]
    fn estimated_sizes_equal_rendered_sizes() {
        for count in [0usize, 1, 5, 40] {
            let input = input(&vec![1000; count], u64::MAX);
            let parts = parts(&input).unwrap();
            let mut open = Open::fresh(&parts, true);
            for item in &parts.content {
                open.account(item);
            }
            let table_header = header_len(&table_path(1, 1));
            let estimate = open.size_with(None, table_header, table_base_len(&input, 1));
            let packing = pack(&input).unwrap();
            assert_eq!(packing.segments.len(), 1);
            assert_eq!(packing.segments[0].bytes, estimate, "{count} blobs");
        }
    }

    #[test]
    fn segments_fill_in_digest_order_within_the_limit() {
        let input = input(&[100_000; 30], 400_000);
        let packing = pack(&input).unwrap();
        assert!(packing.segments.len() > 1);
        assert!(packing.warnings.is_empty());
        let mut previous: Option<Digest> = None;
        for segment in &packing.segments {
            assert!(segment.bytes <= 400_000, "{}", segment.bytes);
            assert_eq!(segment.table.count as usize, packing.segments.len());
            for item in &segment.items {
                if item.row.kind == EntryKind::Blob {
                    assert!(previous.as_ref() < Some(&item.row.digest));
                    previous = Some(item.row.digest.clone());
                }
            }
        }
        // Every segment but the last is full: the next blob would not fit.
        for segment in &packing.segments[..packing.segments.len() - 1] {
            assert!(segment.bytes + 100_000 + 512 > 400_000 - 1024);
        }
    }

    #[test]
    fn a_blob_too_large_gets_its_own_segment_or_fails_strictly() {
        let mut input = input(&[1000, 50_000, 1000], 20_000);
        let packing = pack(&input).unwrap();
        let large = digest(1);
        let own: Vec<&PlannedSegment> = packing
            .segments
            .iter()
            .filter(|segment| segment.items.iter().any(|item| item.row.digest == large))
            .collect();
        assert_eq!(own.len(), 1);
        assert_eq!(
            own[0]
                .items
                .iter()
                .filter(|item| item.row.kind == EntryKind::Blob)
                .count(),
            1
        );
        assert_eq!(packing.warnings.len(), 1);
        let warning = &packing.warnings[0];
        assert!(warning.contains(&large.to_string()), "{warning}");
        assert!(warning.contains("50000 bytes"), "{warning}");
        assert!(warning.contains(&own[0].bytes.to_string()), "{warning}");
        input.strict = true;
        let error = pack(&input).unwrap_err().to_string();
        assert!(error.contains(&large.to_string()), "{error}");
        assert!(
            error.contains(&format!("needs a segment of {} bytes", own[0].bytes)),
            "{error}"
        );
    }

    #[test]
    fn contradictory_input_is_refused() {
        let mut twice = input(&[10], 1 << 20);
        twice.blobs.push(BlobEntry {
            digest: digest(0),
            size: 11,
        });
        assert!(pack(&twice).is_err());
        let mut wrong = input(&[], 1 << 20);
        wrong.manifests.push(crate::model::ManifestEntry {
            digest: digest(5),
            media_type: "x".to_owned(),
            bytes: b"not it".to_vec(),
        });
        let error = pack(&wrong).unwrap_err().to_string();
        assert!(error.contains("hash to"), "{error}");
        let long = input(&[10], 1 << 20);
        let sha512 = Digest::new(DigestAlgorithm::Sha512, &"c".repeat(128)).unwrap();
        let mut with_sha512 = long.clone();
        with_sha512.blobs.push(BlobEntry {
            digest: sha512,
            size: 3,
        });
        assert_eq!(pack(&with_sha512).unwrap().segments.len(), 1);
    }
}
