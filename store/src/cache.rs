//! The cache as one thing: the blob files and the index beside them.
//!
//! `ferry cache verify` and `ferry cache prune` work through this module.
//! Pruning keeps every blob reachable from a recorded resolution (a
//! reference the cache once resolved to a manifest) and removes the rest.

use std::collections::BTreeSet;
use std::path::{Path, PathBuf};

use ferry_schemas::Digest;

use crate::blobs::{BlobStore, VerifyReport};
use crate::error::Result;
use crate::index::Index;

/// The cache folder: `blobs/`, `tmp/` and `index.db`.
pub struct Cache {
    blobs: BlobStore,
    index: Index,
}

/// What pruning removed (or would remove).
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct PruneReport {
    pub kept: usize,
    pub removed: Vec<Digest>,
    pub freed_bytes: u64,
    pub temporary_files: usize,
}

impl Cache {
    /// Removes the temporary files that killed writers left (see
    /// [`BlobStore::clean_temporary`]); runs call it as they start.
    pub fn clean_temporary(&self) -> Result<usize> {
        self.blobs.clean_temporary()
    }

    /// Opens (creating) the cache at `root`.
    pub fn open(root: impl Into<PathBuf>) -> Result<Self> {
        let root = root.into();
        let blobs = BlobStore::open(&root)?;
        let index = Index::open(root.join("index.db"))?;
        Ok(Cache { blobs, index })
    }

    pub fn root(&self) -> &Path {
        self.blobs.root()
    }

    pub fn blobs(&self) -> &BlobStore {
        &self.blobs
    }

    pub fn index(&self) -> &Index {
        &self.index
    }

    pub fn index_mut(&mut self) -> &mut Index {
        &mut self.index
    }

    /// Re-hashes every blob; with `remove`, deletes corrupt ones (and
    /// forgets them in the index) so the next run fetches them again.
    pub fn verify(&self, remove: bool) -> Result<VerifyReport> {
        let report = self.blobs.verify(remove)?;
        if remove {
            for digest in &report.corrupt {
                self.index.forget_blob(digest)?;
            }
        }
        Ok(report)
    }

    /// Removes every blob no recorded image needs, and temporary files
    /// killed writers left (never those of a running writer). With
    /// `dry_run`, only reports (both). Run it when no other ferry process
    /// uses the cache: a run may need a blob it has not recorded yet.
    pub fn prune(&self, dry_run: bool) -> Result<PruneReport> {
        let roots = self.index.resolved_digests()?;
        self.prune_keeping(&roots, dry_run)
    }

    /// [`Cache::prune`] keeping only what the manifests `roots` need (for a
    /// preview of forgetting some resolutions before they are forgotten).
    pub fn prune_keeping(&self, roots: &[Digest], dry_run: bool) -> Result<PruneReport> {
        let keep: BTreeSet<Digest> = self.index.reachable(roots)?.into_iter().collect();
        let mut report = PruneReport::default();
        for digest in self.blobs.list()? {
            if keep.contains(&digest) {
                report.kept += 1;
                continue;
            }
            report.freed_bytes += self.blobs.size(&digest).unwrap_or(0);
            if !dry_run {
                self.blobs.remove(&digest)?;
                self.index.forget_blob(&digest)?;
            }
            report.removed.push(digest);
        }
        report.temporary_files = if dry_run {
            self.blobs.count_abandoned_temporary()?
        } else {
            self.blobs.clean_temporary()?
        };
        Ok(report)
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::blobs::digest_of;
    use ferry_schemas::DigestAlgorithm;

    #[test]
    fn prune_keeps_what_recorded_images_need() {
        let folder = tempfile::tempdir().unwrap();
        let mut cache = Cache::open(folder.path()).unwrap();
        let put = |cache: &Cache, bytes: &[u8]| {
            let digest = digest_of(DigestAlgorithm::Sha256, bytes);
            cache.blobs().write(&digest, None, bytes).unwrap();
            digest
        };
        let layer = put(&cache, b"layer");
        let config = put(&cache, b"config");
        let manifest = put(&cache, b"manifest");
        let orphan = put(&cache, b"orphan");
        cache
            .index_mut()
            .record_manifest(
                &manifest,
                "application/vnd.oci.image.manifest.v1+json",
                8,
                &[config.clone(), layer.clone()],
            )
            .unwrap();
        cache
            .index()
            .record_resolution("quay.io/a/b:1", &manifest, 1)
            .unwrap();
        std::fs::write(folder.path().join("tmp/leftover"), b"x").unwrap();

        let preview = cache.prune(true).unwrap();
        assert_eq!(preview.removed, vec![orphan.clone()]);
        assert_eq!(preview.temporary_files, 1, "a dry run counts leftovers");
        assert!(cache.blobs().contains(&orphan), "a dry run removes nothing");
        assert!(folder.path().join("tmp/leftover").is_file());

        let report = cache.prune(false).unwrap();
        assert_eq!(report.removed, vec![orphan.clone()]);
        assert_eq!(report.kept, 3);
        assert_eq!(report.freed_bytes, 6);
        assert_eq!(report.temporary_files, 1);
        assert!(!cache.blobs().contains(&orphan));
        for digest in [layer, config, manifest] {
            assert!(cache.blobs().contains(&digest));
        }
    }
}
