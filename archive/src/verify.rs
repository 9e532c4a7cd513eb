//! Re-hashing every byte of a folder's segments, and importing deliveries
//! into the blob store on the same pass (or, for a preview, keeping their
//! manifests in memory and storing nothing).
//!
//! All start with the structural pass of [`crate::read`] over every
//! segment of every delivery, so nothing is imported from a folder whose
//! structure is broken. The content pass then streams each entry once:
//! hashed against the digest its table lists, padding checked to be zero,
//! and (when importing) fed to a [`ferry_store::BlobWriter`], which checks
//! digest and size again before anything becomes visible in the store, or
//! (when previewing) collected in memory and handed back only once its
//! digest matched.

use std::collections::{BTreeMap, BTreeSet};
use std::fs::File;
use std::io::{BufReader, Read};
use std::path::Path;

use ferry_schemas::Digest;
use ferry_store::{BlobStore, BlobWriter};

use crate::error::{ArchiveError, Result, io, segment_error};
use crate::metadata::{ContentHasher, EntryKind, TableEntry};
use crate::model::{ImportReport, VerifyReport};
use crate::read::{ScannedDelivery, ScannedSegment, check_chain, scan_folder};
use crate::tar_format::{RawEntry, padded};

const READ_BUFFER: usize = 256 * 1024;

/// Re-hashes every byte of every delivery in the folder. `applied`:
/// deliveries the destination already has (their absence from the folder
/// is then not an error).
pub fn verify_folder(folder: &Path, applied: &BTreeSet<u32>) -> Result<VerifyReport> {
    let deliveries = scan_folder(folder)?;
    check_chain(folder, &deliveries, applied)?;
    let mut totals = Totals::default();
    for delivery in &deliveries {
        for segment in &delivery.segments {
            stream_segment(segment, &mut totals, |_| Ok(None))?;
        }
    }
    Ok(VerifyReport {
        deliveries: deliveries.iter().map(ScannedDelivery::summary).collect(),
        bytes_checked: totals.bytes_checked,
        entries_checked: totals.entries_checked,
    })
}

/// Verifies, then imports the deliveries not in `applied` into `blobs`
/// (manifests too, by digest), in order.
pub fn import_folder(
    folder: &Path,
    applied: &BTreeSet<u32>,
    blobs: &BlobStore,
) -> Result<ImportReport> {
    pending_pass(folder, applied, |segment, row| {
        if !matches!(row.kind, EntryKind::Blob | EntryKind::Manifest) {
            return Ok(None);
        }
        blobs
            .begin(&row.digest, Some(row.size))
            .map(|writer| writer.map(|writer| Keep::Store(Box::new(writer))))
            .map_err(|source| ArchiveError::Store {
                context: format!("{}: entry {}", segment.file_name, row.path),
                source,
            })
    })
}

/// Checks the deliveries not in `applied` exactly as [`import_folder`]
/// does (structure, chain, every byte re-hashed) but stores nothing: the
/// report's `manifests` holds the bytes of their manifests (small; blobs
/// are only hashed), and nothing is counted as imported.
pub fn preview_import(folder: &Path, applied: &BTreeSet<u32>) -> Result<ImportReport> {
    pending_pass(folder, applied, |_, row| {
        Ok((row.kind == EntryKind::Manifest).then(|| Keep::Memory(Vec::new())))
    })
}

/// The pass [`import_folder`] and [`preview_import`] share: the structural
/// pass and chain check over the whole folder, then the content pass over
/// each delivery not in `applied`, in order, where `keep` says what
/// becomes of each entry.
fn pending_pass(
    folder: &Path,
    applied: &BTreeSet<u32>,
    mut keep: impl FnMut(&ScannedSegment, &TableEntry) -> Result<Option<Keep>>,
) -> Result<ImportReport> {
    let deliveries = scan_folder(folder)?;
    check_chain(folder, &deliveries, applied)?;
    let mut totals = Totals::default();
    let mut imported = Vec::new();
    let mut manifest_media_types = BTreeMap::new();
    let mut manifests = BTreeMap::new();
    for delivery in deliveries
        .iter()
        .filter(|delivery| !applied.contains(&delivery.delivery))
    {
        for segment in &delivery.segments {
            let kept = stream_segment(segment, &mut totals, |row| keep(segment, row))?;
            manifests.extend(kept);
            for row in &segment.table.entries {
                if let (EntryKind::Manifest, Some(media_type)) = (row.kind, &row.media_type) {
                    manifest_media_types.insert(row.digest.clone(), media_type.clone());
                }
            }
        }
        imported.push(delivery.summary());
    }
    // The image set as of the newest delivery, plus images only older
    // deliveries in the folder name (each name as its newest delivery
    // recorded it): what a delivery carried stays addressable.
    let mut by_name = BTreeMap::new();
    for delivery in &deliveries {
        for image in &delivery.images.images {
            by_name.insert(image.name.clone(), image.record());
        }
    }
    let images = by_name.into_values().collect();
    Ok(ImportReport {
        deliveries: imported,
        images,
        manifest_media_types,
        manifests,
        blobs_imported: totals.stored,
        bytes_imported: totals.bytes_stored,
    })
}

/// Where the content pass puts an entry it re-hashes.
enum Keep {
    /// Into the blob store, which checks digest and size again.
    Store(Box<BlobWriter>),
    /// Into memory, handed back once its digest matched.
    Memory(Vec<u8>),
}

#[derive(Debug, Default)]
struct Totals {
    bytes_checked: u64,
    entries_checked: usize,
    stored: usize,
    bytes_stored: u64,
}

/// Streams every entry of one segment, in file order, hashing each and
/// checking the padding; `sink` says where an entry goes besides the
/// hash. Returns the entries kept in memory, by digest.
fn stream_segment(
    segment: &ScannedSegment,
    totals: &mut Totals,
    mut sink: impl FnMut(&TableEntry) -> Result<Option<Keep>>,
) -> Result<Vec<(Digest, Vec<u8>)>> {
    let file = File::open(&segment.path).map_err(io("opening", &segment.path))?;
    let mut reader = Positioned {
        inner: BufReader::with_capacity(READ_BUFFER, file),
        position: 0,
    };
    let mut buffer = vec![0u8; READ_BUFFER];
    // The table itself was read in the structural pass; hashing it again
    // catches a change between the two passes.
    let table_row = TableEntry {
        path: segment.table_entry.path.clone(),
        kind: EntryKind::Config,
        digest: segment.table_digest.clone(),
        size: segment.table_entry.size,
        media_type: None,
    };
    check_entry(
        segment,
        &mut reader,
        &mut buffer,
        &table_row,
        &segment.table_entry,
        None,
    )?;
    totals.entries_checked += 1;
    let mut kept = Vec::new();
    for (row, entry) in segment.table.entries.iter().zip(&segment.entries) {
        let keep = sink(row)?;
        let storing = matches!(keep, Some(Keep::Store(_)));
        if let Some(bytes) = check_entry(segment, &mut reader, &mut buffer, row, entry, keep)? {
            kept.push((row.digest.clone(), bytes));
        }
        totals.entries_checked += 1;
        totals.bytes_checked += row.size;
        if storing {
            totals.stored += 1;
            totals.bytes_stored += row.size;
        }
    }
    Ok(kept)
}

/// A buffered reader that knows its offset, so moving forward within the
/// buffer does not drop it.
struct Positioned {
    inner: BufReader<File>,
    position: u64,
}

impl Positioned {
    fn move_to(&mut self, offset: u64, segment: &ScannedSegment) -> Result<()> {
        let delta = offset as i64 - self.position as i64;
        self.inner
            .seek_relative(delta)
            .map_err(io("reading", &segment.path))?;
        self.position = offset;
        Ok(())
    }

    fn read(&mut self, buffer: &mut [u8], segment: &ScannedSegment) -> Result<usize> {
        let count = self
            .inner
            .read(buffer)
            .map_err(io("reading", &segment.path))?;
        self.position += count as u64;
        Ok(count)
    }
}

fn check_entry(
    segment: &ScannedSegment,
    reader: &mut Positioned,
    buffer: &mut [u8],
    row: &TableEntry,
    entry: &RawEntry,
    mut keep: Option<Keep>,
) -> Result<Option<Vec<u8>>> {
    let refused = |problem: String| segment_error(&segment.file_name, Some(&entry.path), problem);
    reader.move_to(entry.data_offset, segment)?;
    let mut hasher = ContentHasher::new(row.digest.algorithm());
    let mut remaining = entry.size;
    while remaining > 0 {
        let want = remaining.min(buffer.len() as u64) as usize;
        let count = reader.read(&mut buffer[..want], segment)?;
        if count == 0 {
            return Err(refused(format!(
                "the segment ends {remaining} bytes into this entry (truncated); copy it again from the source"
            )));
        }
        hasher.update(&buffer[..count]);
        match keep.as_mut() {
            Some(Keep::Store(writer)) => {
                writer
                    .write_chunk(&buffer[..count])
                    .map_err(|source| ArchiveError::Store {
                        context: format!("{}: entry {}", segment.file_name, entry.path),
                        source,
                    })?;
            }
            Some(Keep::Memory(bytes)) => bytes.extend_from_slice(&buffer[..count]),
            None => {}
        }
        remaining -= count as u64;
    }
    let actual = hasher.finish();
    if actual != row.digest {
        // Dropping the writer removes its temporary file: nothing stored
        // (and bytes kept in memory are dropped).
        return Err(refused(format!(
            "content does not match its name: expected {}, got {actual}; the segment is damaged or altered (nothing of this entry was stored): copy it again from the source",
            row.digest
        )));
    }
    let padding = (padded(entry.size) - entry.size) as usize;
    let mut zeros = [0u8; 512];
    let mut read = 0;
    while read < padding {
        let count = reader.read(&mut zeros[read..padding], segment)?;
        if count == 0 {
            return Err(refused(
                "the segment ends inside this entry's padding (truncated); copy it again from the source"
                    .to_owned(),
            ));
        }
        read += count;
    }
    if zeros[..padding].iter().any(|byte| *byte != 0) {
        return Err(refused(
            "the padding after this entry is not zero; the segment is damaged or altered: copy it again from the source"
                .to_owned(),
        ));
    }
    match keep {
        Some(Keep::Store(writer)) => {
            writer.commit().map_err(|source| ArchiveError::Store {
                context: format!("{}: entry {}", segment.file_name, entry.path),
                source,
            })?;
            Ok(None)
        }
        Some(Keep::Memory(bytes)) => Ok(Some(bytes)),
        None => Ok(None),
    }
}
