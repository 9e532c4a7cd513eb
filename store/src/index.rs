//! The cache index: which blobs and manifests the cache holds and which
//! reference resolved to which digest.
//!
//! **Locking.** SQLite in WAL mode: readers never block, one writer at a
//! time; ferry processes sharing a cache wait up to 30 seconds for the
//! write lock. **Compatibility.** Forward-only migrations (`migrations.rs`);
//! a newer schema is refused. **Consistency.** A row is written only after
//! the file it describes is complete (the blob store's rename comes first),
//! so the index never names a blob that is not there; a blob present but not
//! indexed (a crash between the two) is found again by `ferry cache verify`.

use std::path::{Path, PathBuf};
use std::time::Duration;

use ferry_schemas::Digest;
use rusqlite::{Connection, OptionalExtension, params};

use crate::error::{Error, Result};
use crate::migrations::migrate;

/// An open cache index.
pub struct Index {
    connection: Connection,
    path: PathBuf,
}

impl Index {
    /// Opens (creating and migrating) the index at `path`.
    pub fn open(path: impl Into<PathBuf>) -> Result<Self> {
        let path = path.into();
        let database = |source| Error::Database {
            path: path.clone(),
            source,
        };
        let mut connection = Connection::open(&path).map_err(database)?;
        connection
            .busy_timeout(Duration::from_secs(30))
            .map_err(database)?;
        connection
            .pragma_update(None, "journal_mode", "WAL")
            .map_err(database)?;
        connection
            .pragma_update(None, "synchronous", "NORMAL")
            .map_err(database)?;
        migrate(&mut connection, &path)?;
        Ok(Index { connection, path })
    }

    /// An index in memory (tests).
    pub fn in_memory() -> Result<Self> {
        let path = PathBuf::from(":memory:");
        let mut connection = Connection::open_in_memory().map_err(|source| Error::Database {
            path: path.clone(),
            source,
        })?;
        migrate(&mut connection, &path)?;
        Ok(Index { connection, path })
    }

    pub fn path(&self) -> &Path {
        &self.path
    }

    fn database(&self) -> impl Fn(rusqlite::Error) -> Error + '_ {
        move |source| Error::Database {
            path: self.path.clone(),
            source,
        }
    }

    /// The schema version (for tests and `ferry cache` output).
    pub fn schema_version(&self) -> Result<u32> {
        self.connection
            .query_row("PRAGMA user_version", [], |row| row.get(0))
            .map_err(self.database())
    }

    /// Records a blob present in the cache.
    pub fn record_blob(&self, digest: &Digest, size: u64, now: i64) -> Result<()> {
        self.connection
            .execute(
                "INSERT INTO blobs (digest, size, added_at) VALUES (?1, ?2, ?3)
                 ON CONFLICT (digest) DO NOTHING",
                params![digest.to_string(), size as i64, now],
            )
            .map(drop)
            .map_err(self.database())
    }

    /// Forgets a blob (after it was removed from the cache).
    pub fn forget_blob(&self, digest: &Digest) -> Result<()> {
        self.connection
            .execute(
                "DELETE FROM blobs WHERE digest = ?1",
                params![digest.to_string()],
            )
            .map(drop)
            .map_err(self.database())
    }

    /// Whether the index records a blob.
    pub fn has_blob(&self, digest: &Digest) -> Result<bool> {
        self.connection
            .query_row(
                "SELECT 1 FROM blobs WHERE digest = ?1",
                params![digest.to_string()],
                |_| Ok(()),
            )
            .optional()
            .map(|found| found.is_some())
            .map_err(self.database())
    }

    /// Records a manifest and the digests it names (config, layers, or child
    /// manifests), in one transaction.
    pub fn record_manifest(
        &mut self,
        digest: &Digest,
        media_type: &str,
        size: u64,
        children: &[Digest],
    ) -> Result<()> {
        let path = self.path.clone();
        let database = |source| Error::Database {
            path: path.clone(),
            source,
        };
        let transaction = self.connection.transaction().map_err(database)?;
        transaction
            .execute(
                "INSERT INTO manifests (digest, media_type, size) VALUES (?1, ?2, ?3)
                 ON CONFLICT (digest) DO NOTHING",
                params![digest.to_string(), media_type, size as i64],
            )
            .map_err(database)?;
        for child in children {
            transaction
                .execute(
                    "INSERT INTO manifest_children (manifest, child) VALUES (?1, ?2)
                     ON CONFLICT DO NOTHING",
                    params![digest.to_string(), child.to_string()],
                )
                .map_err(database)?;
        }
        transaction.commit().map_err(database)
    }

    /// Records that `reference` resolved to `digest` at `now` (seconds).
    pub fn record_resolution(&self, reference: &str, digest: &Digest, now: i64) -> Result<()> {
        self.connection
            .execute(
                "INSERT INTO resolved_references (reference, digest, resolved_at) VALUES (?1, ?2, ?3)
                 ON CONFLICT (reference) DO UPDATE SET digest = excluded.digest, resolved_at = excluded.resolved_at",
                params![reference, digest.to_string(), now],
            )
            .map(drop)
            .map_err(self.database())
    }

    /// Forgets what `reference` resolved to (its manifests and blobs stay
    /// until a prune finds nothing else needs them).
    pub fn forget_resolution(&self, reference: &str) -> Result<()> {
        self.connection
            .execute(
                "DELETE FROM resolved_references WHERE reference = ?1",
                params![reference],
            )
            .map(drop)
            .map_err(self.database())
    }

    /// The digest `reference` last resolved to.
    pub fn resolution(&self, reference: &str) -> Result<Option<Digest>> {
        let text: Option<String> = self
            .connection
            .query_row(
                "SELECT digest FROM resolved_references WHERE reference = ?1",
                params![reference],
                |row| row.get(0),
            )
            .optional()
            .map_err(self.database())?;
        Ok(text.and_then(|text| text.parse().ok()))
    }

    /// Every digest reachable from the manifests of `roots` (the roots
    /// included): what pruning must keep.
    pub fn reachable(&self, roots: &[Digest]) -> Result<Vec<Digest>> {
        let mut seen: std::collections::BTreeSet<String> = std::collections::BTreeSet::new();
        let mut queue: Vec<String> = roots.iter().map(ToString::to_string).collect();
        let mut statement = self
            .connection
            .prepare("SELECT child FROM manifest_children WHERE manifest = ?1")
            .map_err(self.database())?;
        while let Some(digest) = queue.pop() {
            if !seen.insert(digest.clone()) {
                continue;
            }
            let children = statement
                .query_map(params![digest], |row| row.get::<_, String>(0))
                .map_err(self.database())?;
            for child in children {
                queue.push(child.map_err(self.database())?);
            }
        }
        Ok(seen
            .into_iter()
            .filter_map(|text| text.parse().ok())
            .collect())
    }

    /// Every manifest digest named by a recorded resolution of a reference
    /// other than `references`.
    pub fn resolved_digests_except(&self, references: &[&str]) -> Result<Vec<Digest>> {
        let mut statement = self
            .connection
            .prepare("SELECT reference, digest FROM resolved_references ORDER BY digest")
            .map_err(self.database())?;
        let rows = statement
            .query_map([], |row| {
                Ok((row.get::<_, String>(0)?, row.get::<_, String>(1)?))
            })
            .map_err(self.database())?;
        let mut digests = std::collections::BTreeSet::new();
        for row in rows {
            let (reference, digest) = row.map_err(self.database())?;
            if references.contains(&reference.as_str()) {
                continue;
            }
            if let Ok(digest) = digest.parse::<Digest>() {
                digests.insert(digest);
            }
        }
        Ok(digests.into_iter().collect())
    }

    /// Every manifest digest named by a recorded resolution.
    pub fn resolved_digests(&self) -> Result<Vec<Digest>> {
        let mut statement = self
            .connection
            .prepare("SELECT DISTINCT digest FROM resolved_references ORDER BY digest")
            .map_err(self.database())?;
        let rows = statement
            .query_map([], |row| row.get::<_, String>(0))
            .map_err(self.database())?;
        let mut digests = Vec::new();
        for row in rows {
            if let Ok(digest) = row.map_err(self.database())?.parse() {
                digests.push(digest);
            }
        }
        Ok(digests)
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::blobs::digest_of;
    use ferry_schemas::DigestAlgorithm;

    fn digest(text: &str) -> Digest {
        digest_of(DigestAlgorithm::Sha256, text.as_bytes())
    }

    #[test]
    fn migrates_once_and_twice() {
        let folder = tempfile::tempdir().unwrap();
        let path = folder.path().join("index.db");
        let index = Index::open(&path).unwrap();
        assert_eq!(
            index.schema_version().unwrap(),
            crate::migrations::MIGRATIONS.len() as u32
        );
        index.record_blob(&digest("a"), 1, 0).unwrap();
        drop(index);
        let index = Index::open(&path).unwrap();
        assert!(
            index.has_blob(&digest("a")).unwrap(),
            "data survives reopening"
        );
    }

    #[test]
    fn refuses_a_newer_schema() {
        let folder = tempfile::tempdir().unwrap();
        let path = folder.path().join("index.db");
        drop(Index::open(&path).unwrap());
        let connection = Connection::open(&path).unwrap();
        connection.pragma_update(None, "user_version", 99).unwrap();
        drop(connection);
        let error = Index::open(&path).err().unwrap();
        assert!(
            matches!(error, Error::NewerSchema { found: 99, .. }),
            "{error}"
        );
    }

    #[test]
    fn resolutions_and_reachability() {
        let mut index = Index::in_memory().unwrap();
        let (list, image, config, layer) = (
            digest("list"),
            digest("image"),
            digest("config"),
            digest("layer"),
        );
        index
            .record_manifest(
                &list,
                "application/vnd.oci.image.index.v1+json",
                10,
                std::slice::from_ref(&image),
            )
            .unwrap();
        index
            .record_manifest(
                &image,
                "application/vnd.oci.image.manifest.v1+json",
                10,
                &[config.clone(), layer.clone()],
            )
            .unwrap();
        index.record_resolution("quay.io/a/b:1", &list, 5).unwrap();
        assert_eq!(
            index.resolution("quay.io/a/b:1").unwrap(),
            Some(list.clone())
        );
        index.record_resolution("quay.io/a/b:1", &image, 6).unwrap();
        assert_eq!(
            index.resolution("quay.io/a/b:1").unwrap(),
            Some(image.clone()),
            "a moved tag updates"
        );
        let mut reachable = index.reachable(std::slice::from_ref(&list)).unwrap();
        reachable.sort();
        let mut expected = vec![list, image, config, layer];
        expected.sort();
        assert_eq!(reachable, expected);
    }
}
