//! Writing a delivery's segments into a folder: crash-safe and
//! reproducible.
//!
//! Each segment is written to `.mirror_NNNNNN.tar.partial` in the target
//! folder, blobs streamed from the blob store and re-hashed on the way
//! (a corrupt cache blob fails the write instead of shipping), synced, and
//! checked against its planned size. Only when every segment is complete
//! are they given their final names, each without overwriting anything
//! (a hard link where the file system has them, else a rename after a
//! check), and the folder is synced. Partial files of an earlier,
//! interrupted write are removed first.

use std::fs::{self, File, OpenOptions};
use std::io::{BufWriter, Read, Write};
use std::path::{Path, PathBuf};

use ferry_store::BlobStore;

use crate::error::{ArchiveError, Result, io};
use crate::layout::{Item, PlannedSegment, Source, pack};
use crate::metadata::{ContentHasher, table_path};
use crate::model::{DeliveryInput, DeliveryLayout};
use crate::tar_format::{END_OF_ARCHIVE, canonical_header, padded};

const PARTIAL_PREFIX: &str = ".";
const PARTIAL_SUFFIX: &str = ".partial";
const COPY_BUFFER: usize = 256 * 1024;

/// The temporary name a segment is written under.
pub fn partial_file_name(file_name: &str) -> String {
    format!("{PARTIAL_PREFIX}{file_name}{PARTIAL_SUFFIX}")
}

/// Writes the delivery's segments into `folder` (crash-safe,
/// reproducible). Blobs are read from `blobs`.
pub fn write_delivery(
    input: &DeliveryInput,
    blobs: &BlobStore,
    folder: &Path,
) -> Result<DeliveryLayout> {
    let packing = pack(input)?;
    fs::create_dir_all(folder).map_err(io("creating", folder))?;
    remove_stale_partials(folder)?;
    for segment in &packing.segments {
        let target = folder.join(&segment.file_name);
        if target.exists() {
            return Err(ArchiveError::SegmentExists { path: target });
        }
    }
    check_blobs_present(&packing.segments, blobs)?;

    let mut written: Vec<(PathBuf, PathBuf)> = Vec::new();
    for segment in &packing.segments {
        let partial = folder.join(partial_file_name(&segment.file_name));
        let result = write_segment(segment, input.delivery, blobs, &partial);
        written.push((partial, folder.join(&segment.file_name)));
        if let Err(error) = result {
            remove_all(&written);
            return Err(error);
        }
    }
    for (index, (partial, target)) in written.iter().enumerate() {
        if let Err(error) = publish(partial, target) {
            // Leave no half delivery behind: take back what was published.
            for (_, published) in &written[..index] {
                let _ = fs::remove_file(published);
            }
            remove_all(&written[index..]);
            return Err(error);
        }
    }
    sync_folder(folder)?;
    Ok(packing.layout())
}

/// Removes `.mirror_NNNNNN.tar.partial` files left by an interrupted write.
fn remove_stale_partials(folder: &Path) -> Result<()> {
    for entry in fs::read_dir(folder).map_err(io("listing", folder))? {
        let entry = entry.map_err(io("listing", folder))?;
        let name = entry.file_name();
        let Some(name) = name.to_str() else { continue };
        let stale = name
            .strip_prefix(PARTIAL_PREFIX)
            .and_then(|rest| rest.strip_suffix(PARTIAL_SUFFIX))
            .and_then(crate::segment_number)
            .is_some();
        if stale {
            let path = entry.path();
            fs::remove_file(&path).map_err(io("removing the stale partial segment", &path))?;
        }
    }
    Ok(())
}

/// Every blob is in the store with the size the delivery claims, before
/// anything is written.
fn check_blobs_present(segments: &[PlannedSegment], blobs: &BlobStore) -> Result<()> {
    for item in segments.iter().flat_map(|segment| &segment.items) {
        if !matches!(item.source, Source::Store) {
            continue;
        }
        match blobs.size(&item.row.digest) {
            None => {
                return Err(ArchiveError::Blob {
                    digest: item.row.digest.clone(),
                    problem: format!(
                        "not in the blob store at {}; fetch it first (ferry mirror fills the cache)",
                        blobs.root().display()
                    ),
                });
            }
            Some(size) if size != item.row.size => {
                return Err(ArchiveError::Blob {
                    digest: item.row.digest.clone(),
                    problem: format!(
                        "the blob store holds {size} bytes, the delivery says {}; run `ferry cache verify`",
                        item.row.size
                    ),
                });
            }
            Some(_) => {}
        }
    }
    Ok(())
}

fn write_segment(
    segment: &PlannedSegment,
    delivery: u32,
    blobs: &BlobStore,
    path: &Path,
) -> Result<()> {
    let file = OpenOptions::new()
        .write(true)
        .create(true)
        .truncate(true)
        .open(path)
        .map_err(io("creating", path))?;
    let mut writer = BufWriter::with_capacity(COPY_BUFFER, file);
    let table_entry_path = table_path(delivery, segment.table.number);
    write_inline(&mut writer, &table_entry_path, &segment.table_bytes, path)?;
    for item in &segment.items {
        match &item.source {
            Source::Inline(bytes) => write_inline(&mut writer, &item.row.path, bytes, path)?,
            Source::Store => write_blob(&mut writer, item, blobs, path)?,
        }
    }
    writer
        .write_all(&[0; END_OF_ARCHIVE as usize])
        .map_err(io("writing", path))?;
    let file = writer
        .into_inner()
        .map_err(|error| io("writing", path)(error.into_error()))?;
    file.sync_all().map_err(io("syncing", path))?;
    let length = file
        .metadata()
        .map_err(io("reading the size of", path))?
        .len();
    if length != segment.bytes {
        return Err(ArchiveError::Io {
            action: "checking the size of",
            path: path.to_owned(),
            source: std::io::Error::other(format!(
                "wrote {length} bytes, planned {}",
                segment.bytes
            )),
        });
    }
    Ok(())
}

fn write_inline(writer: &mut impl Write, entry: &str, bytes: &[u8], path: &Path) -> Result<()> {
    writer
        .write_all(&canonical_header(entry, bytes.len() as u64))
        .map_err(io("writing", path))?;
    writer.write_all(bytes).map_err(io("writing", path))?;
    write_padding(writer, bytes.len() as u64, path)
}

fn write_padding(writer: &mut impl Write, size: u64, path: &Path) -> Result<()> {
    let padding = (padded(size) - size) as usize;
    writer
        .write_all(&[0u8; 512][..padding])
        .map_err(io("writing", path))
}

/// Streams one blob from the store into the segment, hashing it on the way.
fn write_blob(writer: &mut impl Write, item: &Item, blobs: &BlobStore, path: &Path) -> Result<()> {
    let digest = &item.row.digest;
    let mut source = blobs
        .open_blob(digest)
        .map_err(|source| ArchiveError::Store {
            context: format!("reading {digest} for {}", path.display()),
            source,
        })?;
    writer
        .write_all(&canonical_header(&item.row.path, item.row.size))
        .map_err(io("writing", path))?;
    let mut hasher = ContentHasher::new(digest.algorithm());
    let mut buffer = vec![0u8; COPY_BUFFER];
    let mut remaining = item.row.size;
    let blob_path = blobs.path(digest);
    while remaining > 0 {
        let want = remaining.min(buffer.len() as u64) as usize;
        let count = source
            .read(&mut buffer[..want])
            .map_err(io("reading", &blob_path))?;
        if count == 0 {
            return Err(ArchiveError::Blob {
                digest: digest.clone(),
                problem: format!(
                    "the blob store's copy ended {remaining} bytes early; run `ferry cache verify`"
                ),
            });
        }
        hasher.update(&buffer[..count]);
        writer
            .write_all(&buffer[..count])
            .map_err(io("writing", path))?;
        remaining -= count as u64;
    }
    let mut probe = [0u8; 1];
    let extra = source.read(&mut probe).map_err(io("reading", &blob_path))?;
    let actual = hasher.finish();
    if extra != 0 || actual != *digest {
        return Err(ArchiveError::Blob {
            digest: digest.clone(),
            problem: format!(
                "the blob store's copy is corrupt (it hashes to {actual}{}); run `ferry cache verify --remove` and fetch it again",
                if extra != 0 { " and is too long" } else { "" }
            ),
        });
    }
    write_padding(writer, item.row.size, path)
}

/// Gives a finished segment its final name without overwriting anything.
fn publish(partial: &Path, target: &Path) -> Result<()> {
    match fs::hard_link(partial, target) {
        Ok(()) => {
            fs::remove_file(partial).map_err(io("removing", partial))?;
            Ok(())
        }
        Err(error) if error.kind() == std::io::ErrorKind::AlreadyExists => {
            Err(ArchiveError::SegmentExists {
                path: target.to_owned(),
            })
        }
        // File systems without hard links (FAT, some network mounts).
        Err(_) => {
            if target.exists() {
                return Err(ArchiveError::SegmentExists {
                    path: target.to_owned(),
                });
            }
            fs::rename(partial, target).map_err(io("renaming into place", target))
        }
    }
}

fn remove_all(files: &[(PathBuf, PathBuf)]) {
    for (partial, _) in files {
        // Best effort: a leftover partial file is removed by the next write.
        let _ = fs::remove_file(partial);
    }
}

fn sync_folder(folder: &Path) -> Result<()> {
    let handle = File::open(folder).map_err(io("opening", folder))?;
    handle.sync_all().map_err(io("syncing", folder))
}
