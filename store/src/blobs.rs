//! The blob cache: `blobs/<algorithm>/<hex>` files that are always complete
//! and always match their digest.
//!
//! Writing goes through a [`BlobWriter`]: bytes are hashed as they arrive
//! into a temporary file under `tmp/`; [`BlobWriter::commit`] compares digest
//! and size, syncs the file, renames it into place and syncs the folder. A
//! writer dropped or killed before `commit` leaves nothing under `blobs/`
//! (its temporary file is removed on drop, or by [`BlobStore::clean_temporary`]
//! after a kill: each writer holds a lock on its temporary file, so a
//! cleaner, in any process sharing the cache, removes only files whose
//! writer is gone). Writers of the same digest in one process take turns
//! through a per-digest lock, so the second finds the blob present and does
//! no work; across processes the rename is atomic and both renames carry
//! identical bytes.

use std::collections::HashSet;
use std::fs::{self, File};
use std::io::{Read, Write};
use std::path::{Path, PathBuf};
use std::sync::{Arc, Condvar, Mutex, PoisonError};

use ferry_schemas::{Digest, DigestAlgorithm, DigestHasher as Hasher};
use fs4::fs_std::FileExt;

use crate::error::{Error, Result, io};

/// Whether a temporary file's path still leads to the open file (a
/// cleaner may have removed it before the writer locked it).
#[cfg(unix)]
fn still_named(temporary: &tempfile::NamedTempFile) -> bool {
    use std::os::unix::fs::MetadataExt as _;
    match (
        fs::metadata(temporary.path()),
        temporary.as_file().metadata(),
    ) {
        (Ok(named), Ok(open)) => named.dev() == open.dev() && named.ino() == open.ino(),
        _ => false,
    }
}

#[cfg(not(unix))]
fn still_named(temporary: &tempfile::NamedTempFile) -> bool {
    temporary.path().is_file()
}

/// The digest of `bytes` with `algorithm`.
pub fn digest_of(algorithm: DigestAlgorithm, bytes: &[u8]) -> Digest {
    Digest::of(algorithm, bytes)
}

/// The blob cache rooted at one folder.
#[derive(Clone, Debug)]
pub struct BlobStore {
    root: PathBuf,
    in_flight: Arc<InFlight>,
}

/// What [`BlobStore::verify`] found.
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct VerifyReport {
    /// Blobs re-hashed.
    pub checked: usize,
    /// Bytes re-hashed.
    pub bytes: u64,
    /// Blobs whose content no longer matches their name.
    pub corrupt: Vec<Digest>,
    /// Files under `blobs/` that are not named like a digest.
    pub strays: Vec<PathBuf>,
    /// Temporary files under `tmp/` that killed writers left (removed too
    /// with `remove`).
    pub temporary_files: usize,
    /// Whether corrupt blobs and strays were removed.
    pub removed: bool,
}

impl BlobStore {
    /// Opens (creating if needed) the cache at `root`.
    pub fn open(root: impl Into<PathBuf>) -> Result<Self> {
        let root = root.into();
        for folder in [
            root.join("blobs/sha256"),
            root.join("blobs/sha512"),
            root.join("tmp"),
        ] {
            fs::create_dir_all(&folder).map_err(io("creating", &folder))?;
        }
        Ok(BlobStore {
            root,
            in_flight: Arc::default(),
        })
    }

    /// The cache at `root`, for reading only (`ferry plan`): creates
    /// nothing, and a missing folder reads as an empty cache.
    pub fn read_only(root: impl Into<PathBuf>) -> Self {
        BlobStore {
            root: root.into(),
            in_flight: Arc::default(),
        }
    }

    pub fn root(&self) -> &Path {
        &self.root
    }

    /// Where a blob lives (whether or not it is present).
    pub fn path(&self, digest: &Digest) -> PathBuf {
        self.root
            .join("blobs")
            .join(digest.algorithm().name())
            .join(digest.hex())
    }

    /// The size of a present blob.
    pub fn size(&self, digest: &Digest) -> Option<u64> {
        fs::metadata(self.path(digest))
            .ok()
            .map(|metadata| metadata.len())
    }

    pub fn contains(&self, digest: &Digest) -> bool {
        self.path(digest).is_file()
    }

    /// Opens a present blob for reading.
    pub fn open_blob(&self, digest: &Digest) -> Result<File> {
        let path = self.path(digest);
        File::open(&path).map_err(io("opening", path))
    }

    /// Starts writing `digest`. Returns `None` when the blob is already
    /// present. Holds this process's lock for the digest until the writer is
    /// committed or dropped.
    pub fn begin(&self, digest: &Digest, size: Option<u64>) -> Result<Option<BlobWriter>> {
        let guard = InFlightGuard::acquire(&self.in_flight, digest);
        if self.contains(digest) {
            return Ok(None);
        }
        let temporary = self.locked_temporary(digest)?;
        Ok(Some(BlobWriter {
            expected: digest.clone(),
            expected_size: size,
            hasher: Hasher::new(digest.algorithm()),
            written: 0,
            file: temporary,
            destination: self.path(digest),
            _guard: guard,
        }))
    }

    /// A new temporary file under `tmp/`, locked for as long as it is open
    /// (the kernel drops the lock when the process ends, however it ends),
    /// so that [`Self::clean_temporary`] in another process never takes a
    /// live writer's file. A cleaner may remove the file between its
    /// creation and the lock: the file's name then no longer leads to it,
    /// and another is made.
    fn locked_temporary(&self, digest: &Digest) -> Result<tempfile::NamedTempFile> {
        let folder = self.root.join("tmp");
        loop {
            let temporary = tempfile::Builder::new()
                .prefix(&format!("{}-", digest.hex()))
                .tempfile_in(&folder)
                .map_err(io("creating a temporary file in", &folder))?;
            if FileExt::lock_exclusive(temporary.as_file()).is_err() {
                // A file system without locks: nothing to coordinate with.
                return Ok(temporary);
            }
            if still_named(&temporary) {
                return Ok(temporary);
            }
        }
    }

    /// Writes a whole blob from `reader`, verified. Returns the bytes
    /// written (0 when the blob was already present).
    pub fn write(&self, digest: &Digest, size: Option<u64>, mut reader: impl Read) -> Result<u64> {
        let Some(mut writer) = self.begin(digest, size)? else {
            return Ok(0);
        };
        let mut buffer = vec![0; 256 * 1024];
        loop {
            let count = reader.read(&mut buffer).map_err(io(
                "reading the content of",
                PathBuf::from(digest.to_string()),
            ))?;
            if count == 0 {
                break;
            }
            writer.write_chunk(&buffer[..count])?;
        }
        writer.commit()
    }

    /// Every digest present, sorted.
    pub fn list(&self) -> Result<Vec<Digest>> {
        let mut digests = Vec::new();
        for algorithm in [DigestAlgorithm::Sha256, DigestAlgorithm::Sha512] {
            let folder = self.root.join("blobs").join(algorithm.name());
            let entries = fs::read_dir(&folder).map_err(io("listing", &folder))?;
            for entry in entries {
                let entry = entry.map_err(io("listing", &folder))?;
                if let Some(name) = entry.file_name().to_str()
                    && let Ok(digest) = Digest::new(algorithm, name)
                {
                    digests.push(digest);
                }
            }
        }
        digests.sort();
        Ok(digests)
    }

    /// Removes a blob (no error when absent).
    pub fn remove(&self, digest: &Digest) -> Result<()> {
        let path = self.path(digest);
        match fs::remove_file(&path) {
            Err(error) if error.kind() != std::io::ErrorKind::NotFound => {
                Err(io("removing", path)(error))
            }
            _ => Ok(()),
        }
    }

    /// Temporary files under `tmp/` that no live writer holds: what writers
    /// that were killed left. Each is returned locked, so no writer can
    /// take it meanwhile.
    fn abandoned_temporary(&self) -> Result<Vec<(PathBuf, File)>> {
        let folder = self.root.join("tmp");
        let entries = match fs::read_dir(&folder) {
            Ok(entries) => entries,
            Err(error) if error.kind() == std::io::ErrorKind::NotFound => return Ok(Vec::new()),
            Err(error) => return Err(io("listing", &folder)(error)),
        };
        let mut abandoned = Vec::new();
        for entry in entries {
            let path = entry.map_err(io("listing", &folder))?.path();
            // Gone meanwhile (its writer committed or dropped it): not ours.
            let Ok(file) = File::open(&path) else {
                continue;
            };
            if FileExt::try_lock_exclusive(&file).unwrap_or(false) {
                abandoned.push((path, file));
            }
        }
        abandoned.sort_by(|a, b| a.0.cmp(&b.0));
        Ok(abandoned)
    }

    /// How many temporary files killed writers left under `tmp/` (files a
    /// running writer holds, in this process or another, are not counted).
    pub fn count_abandoned_temporary(&self) -> Result<usize> {
        Ok(self.abandoned_temporary()?.len())
    }

    /// Removes the temporary files killed writers left under `tmp/`, and
    /// only those: a running writer (in any process sharing the cache)
    /// holds a lock on its file, and such files are left alone. Returns how
    /// many were removed.
    pub fn clean_temporary(&self) -> Result<usize> {
        let mut removed = 0;
        for (path, _locked) in self.abandoned_temporary()? {
            match fs::remove_file(&path) {
                Ok(()) => removed += 1,
                Err(error) if error.kind() == std::io::ErrorKind::NotFound => {}
                Err(error) => return Err(io("removing", &path)(error)),
            }
        }
        Ok(removed)
    }

    /// Re-hashes one present blob: whether its bytes still match its
    /// digest.
    pub fn is_intact(&self, digest: &Digest) -> Result<bool> {
        let path = self.path(digest);
        let mut file = File::open(&path).map_err(io("opening", &path))?;
        let mut hasher = Hasher::new(digest.algorithm());
        let mut buffer = vec![0; 256 * 1024];
        loop {
            let count = file.read(&mut buffer).map_err(io("reading", &path))?;
            if count == 0 {
                break;
            }
            hasher.update(&buffer[..count]);
        }
        Ok(hasher.finish() == *digest)
    }

    /// Re-hashes every blob. With `remove`, deletes corrupt blobs and stray
    /// files so a later run fetches them again.
    pub fn verify(&self, remove: bool) -> Result<VerifyReport> {
        let mut report = VerifyReport {
            removed: remove,
            temporary_files: if remove {
                self.clean_temporary()?
            } else {
                self.count_abandoned_temporary()?
            },
            ..VerifyReport::default()
        };
        for algorithm in [DigestAlgorithm::Sha256, DigestAlgorithm::Sha512] {
            let folder = self.root.join("blobs").join(algorithm.name());
            let mut entries: Vec<PathBuf> = fs::read_dir(&folder)
                .map_err(io("listing", &folder))?
                .filter_map(|entry| entry.ok().map(|entry| entry.path()))
                .collect();
            entries.sort();
            for path in entries {
                let name = path
                    .file_name()
                    .and_then(|n| n.to_str())
                    .unwrap_or_default();
                let Ok(expected) = Digest::new(algorithm, name) else {
                    if remove {
                        fs::remove_file(&path).map_err(io("removing", &path))?;
                    }
                    report.strays.push(path);
                    continue;
                };
                let mut file = File::open(&path).map_err(io("opening", &path))?;
                let mut hasher = Hasher::new(algorithm);
                let mut buffer = vec![0; 256 * 1024];
                loop {
                    let count = file.read(&mut buffer).map_err(io("reading", &path))?;
                    if count == 0 {
                        break;
                    }
                    hasher.update(&buffer[..count]);
                    report.bytes += count as u64;
                }
                report.checked += 1;
                if hasher.finish() != expected {
                    if remove {
                        fs::remove_file(&path).map_err(io("removing", &path))?;
                    }
                    report.corrupt.push(expected);
                }
            }
        }
        Ok(report)
    }
}

/// Digests being written by this process, so writers of one digest take
/// turns instead of doing the same work twice.
#[derive(Debug, Default)]
struct InFlight {
    digests: Mutex<HashSet<Digest>>,
    finished: Condvar,
}

/// Marks a digest as being written until dropped.
struct InFlightGuard {
    in_flight: Arc<InFlight>,
    digest: Digest,
}

impl InFlightGuard {
    fn acquire(in_flight: &Arc<InFlight>, digest: &Digest) -> Self {
        let mut digests = in_flight
            .digests
            .lock()
            .unwrap_or_else(PoisonError::into_inner);
        while digests.contains(digest) {
            digests = in_flight
                .finished
                .wait(digests)
                .unwrap_or_else(PoisonError::into_inner);
        }
        digests.insert(digest.clone());
        InFlightGuard {
            in_flight: in_flight.clone(),
            digest: digest.clone(),
        }
    }
}

impl Drop for InFlightGuard {
    fn drop(&mut self) {
        let mut digests = self
            .in_flight
            .digests
            .lock()
            .unwrap_or_else(PoisonError::into_inner);
        digests.remove(&self.digest);
        self.in_flight.finished.notify_all();
    }
}

/// A blob being written: hashed as it streams, invisible until committed.
pub struct BlobWriter {
    expected: Digest,
    expected_size: Option<u64>,
    hasher: Hasher,
    written: u64,
    file: tempfile::NamedTempFile,
    destination: PathBuf,
    _guard: InFlightGuard,
}

impl BlobWriter {
    /// Appends bytes. Fails early when more bytes arrive than the expected size.
    pub fn write_chunk(&mut self, bytes: &[u8]) -> Result<()> {
        self.written += bytes.len() as u64;
        if let Some(expected) = self.expected_size
            && self.written > expected
        {
            return Err(Error::SizeMismatch {
                digest: self.expected.clone(),
                expected,
                actual: self.written,
            });
        }
        self.hasher.update(bytes);
        let path = self.file.path().to_owned();
        self.file.write_all(bytes).map_err(io("writing", path))
    }

    /// Bytes written so far.
    pub fn written(&self) -> u64 {
        self.written
    }

    /// Verifies digest and size, syncs, and moves the blob into place.
    /// Returns the number of bytes written.
    pub fn commit(self) -> Result<u64> {
        if let Some(expected) = self.expected_size
            && self.written != expected
        {
            return Err(Error::SizeMismatch {
                digest: self.expected,
                expected,
                actual: self.written,
            });
        }
        let actual = self.hasher.finish();
        if actual != self.expected {
            return Err(Error::DigestMismatch {
                expected: self.expected,
                actual,
            });
        }
        let temporary_path = self.file.path().to_owned();
        self.file
            .as_file()
            .sync_all()
            .map_err(io("syncing", &temporary_path))?;
        self.file
            .persist(&self.destination)
            .map_err(|error| io("moving a verified blob to", &self.destination)(error.error))?;
        if let Some(folder) = self.destination.parent()
            && let Ok(handle) = File::open(folder)
        {
            // Makes the rename durable; a failure here loses nothing that a
            // rerun cannot redo, so it is not an error.
            let _ = handle.sync_all();
        }
        Ok(self.written)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn digest(bytes: &[u8]) -> Digest {
        digest_of(DigestAlgorithm::Sha256, bytes)
    }

    #[test]
    fn writes_verified_blobs_and_skips_present_ones() {
        let folder = tempfile::tempdir().unwrap();
        let store = BlobStore::open(folder.path()).unwrap();
        let bytes = b"hello blob".to_vec();
        let id = digest(&bytes);
        assert_eq!(
            store
                .write(&id, Some(bytes.len() as u64), bytes.as_slice())
                .unwrap(),
            10
        );
        assert_eq!(fs::read(store.path(&id)).unwrap(), bytes);
        assert_eq!(
            store.write(&id, None, bytes.as_slice()).unwrap(),
            0,
            "present: no work"
        );
        assert_eq!(store.list().unwrap(), vec![id]);
    }

    #[test]
    fn a_read_only_store_reads_and_creates_nothing() {
        let folder = tempfile::tempdir().unwrap();
        let missing = BlobStore::read_only(folder.path().join("no-cache"));
        let id = digest(b"present");
        assert!(!missing.contains(&id));
        assert!(!folder.path().join("no-cache").exists(), "nothing created");
        let store = BlobStore::open(folder.path().join("cache")).unwrap();
        store.write(&id, None, &b"present"[..]).unwrap();
        let reader = BlobStore::read_only(folder.path().join("cache"));
        assert_eq!(reader.size(&id), Some(7));
        assert_eq!(fs::read(reader.path(&id)).unwrap(), b"present");
    }

    #[test]
    fn a_wrong_digest_or_size_stores_nothing() {
        let folder = tempfile::tempdir().unwrap();
        let store = BlobStore::open(folder.path()).unwrap();
        let claimed = digest(b"the real content");
        let error = store
            .write(&claimed, None, &b"tampered content"[..])
            .unwrap_err();
        assert!(matches!(error, Error::DigestMismatch { .. }), "{error}");
        let error = store
            .write(&claimed, Some(3), &b"the real content"[..])
            .unwrap_err();
        assert!(matches!(error, Error::SizeMismatch { .. }), "{error}");
        assert!(!store.contains(&claimed));
        assert_eq!(fs::read_dir(folder.path().join("tmp")).unwrap().count(), 0);
    }

    #[test]
    fn an_abandoned_writer_leaves_nothing_behind() {
        let folder = tempfile::tempdir().unwrap();
        let store = BlobStore::open(folder.path()).unwrap();
        let id = digest(b"0123456789");
        let mut writer = store.begin(&id, Some(10)).unwrap().unwrap();
        writer.write_chunk(b"01234").unwrap();
        drop(writer);
        assert!(!store.contains(&id));
        assert_eq!(fs::read_dir(folder.path().join("tmp")).unwrap().count(), 0);
    }

    #[test]
    fn concurrent_writers_of_one_digest_write_once() {
        let folder = tempfile::tempdir().unwrap();
        let store = BlobStore::open(folder.path()).unwrap();
        let bytes = vec![7u8; 1 << 20];
        let id = digest(&bytes);
        let written: u64 = std::thread::scope(|scope| {
            let handles: Vec<_> = (0..8)
                .map(|_| scope.spawn(|| store.write(&id, None, bytes.as_slice()).unwrap()))
                .collect();
            handles
                .into_iter()
                .map(|handle| handle.join().unwrap())
                .sum()
        });
        assert_eq!(written, 1 << 20, "exactly one writer did the work");
    }

    #[test]
    fn only_temporary_files_no_live_writer_holds_are_cleaned() {
        let folder = tempfile::tempdir().unwrap();
        let store = BlobStore::open(folder.path()).unwrap();
        // Another cache user (here: another handle, as another process
        // would be) is writing a blob; a killed writer left a file.
        let other = BlobStore::open(folder.path()).unwrap();
        let bytes = b"being written";
        let digest = digest_of(DigestAlgorithm::Sha256, bytes);
        let mut live = other.begin(&digest, None).unwrap().unwrap();
        live.write_chunk(&bytes[..5]).unwrap();
        std::fs::write(folder.path().join("tmp/killed-writer"), b"half").unwrap();

        assert_eq!(store.count_abandoned_temporary().unwrap(), 1);
        let report = store.verify(false).unwrap();
        assert_eq!(report.temporary_files, 1);
        assert!(report.corrupt.is_empty());
        assert!(folder.path().join("tmp/killed-writer").is_file());
        assert_eq!(store.clean_temporary().unwrap(), 1);
        assert!(!folder.path().join("tmp/killed-writer").exists());
        assert_eq!(
            std::fs::read_dir(folder.path().join("tmp"))
                .unwrap()
                .count(),
            1
        );

        // The live writer finishes undisturbed.
        live.write_chunk(&bytes[5..]).unwrap();
        live.commit().unwrap();
        assert!(store.contains(&digest));
        assert_eq!(store.clean_temporary().unwrap(), 0);
    }

    #[test]
    fn verify_finds_and_removes_corruption() {
        let folder = tempfile::tempdir().unwrap();
        let store = BlobStore::open(folder.path()).unwrap();
        let good = b"good".to_vec();
        let bad = b"bad!".to_vec();
        store.write(&digest(&good), None, good.as_slice()).unwrap();
        store.write(&digest(&bad), None, bad.as_slice()).unwrap();
        fs::write(store.path(&digest(&bad)), b"bad?").unwrap();
        fs::write(folder.path().join("blobs/sha256/not-a-digest"), b"x").unwrap();
        assert!(store.is_intact(&digest(&good)).unwrap());
        assert!(!store.is_intact(&digest(&bad)).unwrap());
        let report = store.verify(false).unwrap();
        assert_eq!(report.checked, 2);
        assert_eq!(report.corrupt, vec![digest(&bad)]);
        assert_eq!(report.strays.len(), 1);
        assert!(store.contains(&digest(&bad)), "report only");
        let report = store.verify(true).unwrap();
        assert!(report.removed);
        assert!(!store.contains(&digest(&bad)));
        assert!(store.contains(&digest(&good)));
        assert!(store.verify(false).unwrap().corrupt.is_empty());
    }
}
