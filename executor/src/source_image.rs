//! An image of a [`ContentSource`] read as [`ImageBlobs`]: how collectors
//! read files out of layers (an operator catalog's configs, a release
//! payload's `release-manifests/`, the graph image's base) through the
//! same sources the resolver reads, never beside them.
//!
//! Where the blobs read are kept is [`LayerBlobs`]'s choice: the cache is
//! read first when there is one; mirror-to-disk and mirror-to-mirror runs
//! fill it (so their copy stage finds those blobs there and reads none
//! from the source again); a plan keeps what the cache lacks in a
//! temporary store removed afterwards. Every blob read and left in the
//! cache, verified, is noted in [`CachedReads`]: mirror-to-mirror's plan
//! reads those from the cache.

use std::collections::BTreeSet;
use std::io::Read;
use std::sync::{Arc, Mutex, OnceLock};

use ferry_schemas::Digest;
use ferry_store::BlobStore;
use futures_util::FutureExt as _;

use crate::layer_files::{ImageBlobs, LayerFilesError};
use crate::source::{ContentSource, Pinned};

/// The blobs collectors read out of images that the cache holds, each
/// checked against its digest as it was read: the copy stage reads them
/// from the cache instead of from their source again. Shared by every
/// image a collect stage reads (clones see the same set).
#[derive(Clone, Debug, Default)]
pub struct CachedReads(Arc<Mutex<BTreeSet<Digest>>>);

impl CachedReads {
    fn insert(&self, digest: &Digest) {
        // A poisoned set (a reader panicked) still holds true digests.
        let mut digests = self
            .0
            .lock()
            .unwrap_or_else(|poisoned| poisoned.into_inner());
        digests.insert(digest.clone());
    }

    /// The digests noted so far.
    pub fn digests(&self) -> BTreeSet<Digest> {
        self.0
            .lock()
            .unwrap_or_else(|poisoned| poisoned.into_inner())
            .clone()
    }
}

/// Where the blobs collectors read out of images are kept.
pub struct LayerBlobs {
    /// Read first, when given.
    cache: Option<BlobStore>,
    /// Whether blobs the cache lacks are put into it.
    fill: bool,
    /// Where they go otherwise (made on first use).
    temporary: OnceLock<Result<(tempfile::TempDir, BlobStore), String>>,
    /// Where blobs read and left in the cache are noted.
    noted: CachedReads,
}

impl LayerBlobs {
    /// Blobs read from `cache` when it holds them; the others put into it
    /// when `fill`, else into a temporary store.
    pub fn new(cache: Option<BlobStore>, fill: bool) -> Self {
        LayerBlobs {
            fill: fill && cache.is_some(),
            cache,
            temporary: OnceLock::new(),
            noted: CachedReads::default(),
        }
    }

    /// Notes in `reads` every blob read that the cache holds.
    pub fn noting_in(mut self, reads: CachedReads) -> Self {
        self.noted = reads;
        self
    }

    /// The store blob `digest` is read from, or put into first, and
    /// whether it is the cache. A cached copy is re-hashed first: a corrupt
    /// one is removed and fetched again when filling, else passed over (so
    /// `--verify`, which runs after collection, still gets to replace it).
    fn store_for(&self, digest: &Digest) -> Result<(&BlobStore, bool), String> {
        if let Some(cache) = &self.cache {
            let intact = cache.contains(digest) && cache.is_intact(digest).unwrap_or(false);
            if intact {
                return Ok((cache, true));
            }
            if self.fill {
                if cache.contains(digest) {
                    cache.remove(digest).map_err(|error| error.to_string())?;
                }
                return Ok((cache, true));
            }
        }
        self.temporary
            .get_or_init(|| {
                let folder = tempfile::tempdir()
                    .map_err(|error| format!("cannot make a temporary folder: {error}"))?;
                let store = BlobStore::open(folder.path().join("blobs"))
                    .map_err(|error| error.to_string())?;
                Ok((folder, store))
            })
            .as_ref()
            .map(|(_, store)| (store, false))
            .map_err(Clone::clone)
    }
}

/// How a source's answers are waited for from synchronous code.
#[derive(Clone, Copy)]
pub enum Waiting<'a> {
    /// On this runtime (a source that does network I/O).
    Runtime(&'a tokio::runtime::Runtime),
    /// Not at all: the source answers from local files (the deliveries,
    /// the recorded state), so its answers are ready when first asked.
    Ready,
}

/// Image `pinned` of `source`, its manifests and blobs read through the
/// source (each checked against its digest by `layer_files`).
pub struct SourceImage<'a, S> {
    pub source: &'a S,
    pub pinned: Pinned,
    /// What errors name (the reference read, or the image's name).
    pub place: String,
    pub blobs: &'a LayerBlobs,
    pub waiting: Waiting<'a>,
}

impl<S: ContentSource> SourceImage<'_, S> {
    fn error(&self, message: impl std::fmt::Display) -> LayerFilesError {
        LayerFilesError::Layout {
            place: self.place.clone(),
            message: message.to_string(),
        }
    }

    fn wait<T>(
        &self,
        future: impl std::future::Future<Output = Result<T, String>>,
    ) -> Result<T, LayerFilesError> {
        match self.waiting {
            Waiting::Runtime(runtime) => runtime.block_on(future),
            Waiting::Ready => future
                .now_or_never()
                .unwrap_or_else(|| Err("the source was not ready to answer".to_owned())),
        }
        .map_err(|message| self.error(message))
    }
}

impl<S: ContentSource> ImageBlobs for SourceImage<'_, S> {
    fn place(&self) -> String {
        self.place.clone()
    }

    fn top(&self) -> Result<Vec<u8>, LayerFilesError> {
        match &self.pinned.top_manifest {
            Some(manifest) => Ok(manifest.bytes.to_vec()),
            None => self
                .wait(
                    self.source
                        .manifest(&self.pinned, &self.pinned.top, &self.pinned.media_type),
                )
                .map(|manifest| manifest.bytes.to_vec()),
        }
    }

    fn manifest(&self, digest: &Digest) -> Result<Vec<u8>, LayerFilesError> {
        if let Some(manifest) = self.source.known_manifest(digest) {
            return Ok(manifest.bytes.to_vec());
        }
        self.wait(self.source.manifest(&self.pinned, digest, ""))
            .map(|manifest| manifest.bytes.to_vec())
    }

    fn blob(&self, digest: &Digest) -> Result<Box<dyn Read + '_>, LayerFilesError> {
        let (store, in_cache) = self
            .blobs
            .store_for(digest)
            .map_err(|message| self.error(message))?;
        self.wait(self.source.blob(&self.pinned, digest, store))?;
        let file = store
            .open_blob(digest)
            .map_err(|error| self.error(format!("blob {digest}: {error}")))?;
        if in_cache {
            // The source put it there verified, or it was found intact.
            self.blobs.noted.insert(digest);
        }
        Ok(Box::new(file))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn intact_cached_blobs_are_read_from_the_cache_and_corrupt_ones_passed_over_or_replaced() {
        let folder = tempfile::tempdir().unwrap();
        let cache = BlobStore::open(folder.path()).unwrap();
        let intact = Digest::sha256_of(b"intact");
        cache.write(&intact, None, &b"intact"[..]).unwrap();
        let corrupt = Digest::sha256_of(b"corrupt");
        cache.write(&corrupt, None, &b"corrupt"[..]).unwrap();
        std::fs::write(cache.path(&corrupt), b"changed").unwrap();
        let missing = Digest::sha256_of(b"missing");

        let reading = LayerBlobs::new(Some(cache.clone()), false);
        assert_eq!(reading.store_for(&intact).unwrap().0.root(), cache.root());
        assert!(reading.store_for(&intact).unwrap().1);
        assert_ne!(reading.store_for(&corrupt).unwrap().0.root(), cache.root());
        assert!(!reading.store_for(&corrupt).unwrap().1);
        assert_ne!(reading.store_for(&missing).unwrap().0.root(), cache.root());
        assert!(cache.contains(&corrupt), "a plan leaves the cache as it is");

        let filling = LayerBlobs::new(Some(cache.clone()), true);
        assert_eq!(filling.store_for(&missing).unwrap().0.root(), cache.root());
        assert!(filling.store_for(&missing).unwrap().1);
        assert_eq!(filling.store_for(&corrupt).unwrap().0.root(), cache.root());
        assert!(!cache.contains(&corrupt), "removed, to be fetched again");
    }
}
