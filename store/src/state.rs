//! A workspace's own history (`working-dir/state.db`): which actions
//! completed for which destination, which tags were set, each run, and
//! what each image resolved to (its top digest, its cosign signature, and
//! every manifest of their trees with exact bytes, stored once per digest)
//! so a rerun re-reads only trees that changed and `--trust-state` plans
//! with no network at all.
//!
//! **Consistency.** An action is recorded only after it succeeded, so a
//! crash or kill at any moment leaves the state naming only work that is
//! really done; a rerun plans the rest. Finished actions may be recorded
//! in small batches ([`WorkspaceState::record_finished`], one transaction
//! and one sync per batch): a kill then loses at most the batch not yet
//! written, whose actions the rerun finds done at the destination.
//! **Locking.** SQLite WAL; one ferry run per workspace at a time, taken
//! with [`crate::RunLock`] before the state is opened (a second writer
//! would otherwise wait up to 30 seconds). **Compatibility.** Forward-only
//! migrations, separate from the cache index's.

use std::collections::{BTreeMap, BTreeSet, HashMap};
use std::path::{Path, PathBuf};
use std::time::Duration;

use ferry_planner::{ActionKey, ImageFingerprint, ImageRecord, StateSnapshot};
use ferry_schemas::Digest;
use rusqlite::{Connection, params};

use crate::error::{Error, Result};

const MIGRATIONS: &[&str] = &[
    // 1: completed actions, tags at destinations, runs.
    "CREATE TABLE actions (
        destination TEXT NOT NULL,
        key TEXT NOT NULL,
        kind TEXT NOT NULL,
        done_at INTEGER NOT NULL,
        PRIMARY KEY (destination, key)
    );
    CREATE TABLE tags (
        destination TEXT NOT NULL,
        repository TEXT NOT NULL,
        tag TEXT NOT NULL,
        digest TEXT NOT NULL,
        PRIMARY KEY (destination, repository, tag)
    );
    CREATE TABLE runs (
        id INTEGER PRIMARY KEY AUTOINCREMENT,
        destination TEXT NOT NULL,
        started_at INTEGER NOT NULL,
        finished_at INTEGER,
        outcome TEXT
    );",
    // 2: resolutions: image → source and top digest (and its signature's),
    // manifests by digest with their exact bytes.
    "CREATE TABLE resolved_images (
        name TEXT PRIMARY KEY NOT NULL,
        source TEXT NOT NULL,
        top TEXT NOT NULL,
        signature TEXT,
        signature_checked INTEGER NOT NULL,
        resolved_at INTEGER NOT NULL
    );
    CREATE TABLE resolved_manifests (
        digest TEXT PRIMARY KEY NOT NULL,
        media_type TEXT NOT NULL,
        content BLOB NOT NULL
    );",
    // 3: disk deliveries written by this workspace (mirror-to-disk), what
    // each shipped, and deliveries applied to destinations (disk-to-mirror).
    "CREATE TABLE deliveries (
        number INTEGER PRIMARY KEY,
        previous INTEGER,
        first_segment INTEGER NOT NULL,
        last_segment INTEGER NOT NULL,
        bytes INTEGER NOT NULL,
        created_at INTEGER NOT NULL
    );
    CREATE TABLE delivery_keys (
        delivery INTEGER NOT NULL REFERENCES deliveries (number),
        key TEXT NOT NULL,
        PRIMARY KEY (delivery, key)
    );
    CREATE TABLE delivery_images (
        delivery INTEGER NOT NULL REFERENCES deliveries (number),
        name TEXT NOT NULL,
        digest TEXT NOT NULL,
        PRIMARY KEY (delivery, name)
    );
    CREATE TABLE applied_deliveries (
        destination TEXT NOT NULL,
        delivery INTEGER NOT NULL,
        applied_at INTEGER NOT NULL,
        PRIMARY KEY (destination, delivery)
    );",
    // 4: the delivery being written (mirror-to-disk), so that segments a
    // killed run published without recording them can be told from
    // segments of deliveries this workspace lost the record of.
    "CREATE TABLE pending_delivery (
        number INTEGER PRIMARY KEY,
        first_segment INTEGER NOT NULL,
        last_segment INTEGER NOT NULL
    );",
    // 5: images completed at a destination (the action cache at the image
    // level): the image's fingerprint then and the keys of its actions,
    // 32 bytes each, one after another.
    "CREATE TABLE image_records (
        destination TEXT NOT NULL,
        name TEXT NOT NULL,
        fingerprint BLOB NOT NULL,
        keys BLOB NOT NULL,
        recorded_at INTEGER NOT NULL,
        PRIMARY KEY (destination, name)
    );",
];

/// What an image (as the configuration names it) resolved to last.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct RecordedResolution {
    pub name: String,
    /// `registry/repository` it was read from.
    pub source: String,
    pub top: Digest,
    /// Top digest of its cosign signature tag, when it had one.
    pub signature: Option<Digest>,
    /// Whether the signature tag was looked up (not with `--remove-signatures`).
    pub signature_checked: bool,
}

/// A manifest as recorded: digest, media type, exact bytes.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct RecordedManifest {
    pub digest: Digest,
    pub media_type: String,
    pub content: Vec<u8>,
}

/// What the state records for one destination.
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct DestinationHistory {
    /// Keys of completed actions.
    pub done: BTreeSet<ActionKey>,
    /// (repository, tag) → digest.
    pub tags: BTreeMap<(String, String), Digest>,
}

/// An action that finished, as the state records it.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum FinishedAction {
    /// Any action but a tag: its key and kind.
    Action { key: ActionKey, kind: &'static str },
    /// A tag set at the destination: recorded with its action.
    Tag {
        key: ActionKey,
        repository: String,
        tag: String,
        digest: Digest,
    },
}

/// Maps SQLite errors to [`Error::State`] naming `path`; for code that
/// holds a transaction, and so cannot borrow `self` for [`WorkspaceState::database`].
pub(crate) fn database_error(path: PathBuf) -> impl Fn(rusqlite::Error) -> Error {
    move |source| Error::State {
        path: path.clone(),
        source,
    }
}

/// An open workspace state.
pub struct WorkspaceState {
    pub(crate) connection: Connection,
    pub(crate) path: PathBuf,
}

impl WorkspaceState {
    /// Opens (creating and migrating) the state at `path`.
    pub fn open(path: impl Into<PathBuf>) -> Result<Self> {
        let path = path.into();
        let database = |source| Error::State {
            path: path.clone(),
            source,
        };
        let mut connection = Connection::open(&path).map_err(&database)?;
        connection
            .busy_timeout(Duration::from_secs(30))
            .map_err(&database)?;
        connection
            .pragma_update(None, "journal_mode", "WAL")
            .map_err(&database)?;
        connection
            .pragma_update(None, "synchronous", "FULL")
            .map_err(&database)?;
        crate::migrations::migrate_with(&mut connection, &path, MIGRATIONS)
            .map_err(Error::of_workspace_state)?;
        Ok(WorkspaceState { connection, path })
    }

    pub fn path(&self) -> &Path {
        &self.path
    }

    pub(crate) fn database(&self) -> impl Fn(rusqlite::Error) -> Error + '_ {
        move |source| Error::State {
            path: self.path.clone(),
            source,
        }
    }

    /// Everything recorded for `destination`.
    pub fn history(&self, destination: &str) -> Result<DestinationHistory> {
        // Rows are gathered first and the sets built in bulk (a sort, then
        // the tree built at once) rather than one insert at a time: 60,000
        // keys for a 10,000-image workspace.
        let mut done = Vec::new();
        let mut statement = self
            .connection
            .prepare("SELECT key FROM actions WHERE destination = ?1")
            .map_err(self.database())?;
        let mut rows = statement
            .query(params![destination])
            .map_err(self.database())?;
        while let Some(row) = rows.next().map_err(self.database())? {
            // Keys are stored as hex text; a row that does not parse is as
            // good as absent (the action plans again).
            let text = row.get_ref(0).map_err(self.database())?;
            if let Some(key) = text.as_str().ok().and_then(ActionKey::from_hex) {
                done.push(key);
            }
        }
        let mut statement = self
            .connection
            .prepare("SELECT repository, tag, digest FROM tags WHERE destination = ?1")
            .map_err(self.database())?;
        let rows = statement
            .query_map(params![destination], |row| {
                Ok((
                    row.get::<_, String>(0)?,
                    row.get::<_, String>(1)?,
                    row.get::<_, String>(2)?,
                ))
            })
            .map_err(self.database())?;
        let mut tags = Vec::new();
        for row in rows {
            let (repository, tag, digest) = row.map_err(self.database())?;
            if let Ok(digest) = digest.parse() {
                tags.push(((repository, tag), digest));
            }
        }
        Ok(DestinationHistory {
            done: done.into_iter().collect(),
            tags: tags.into_iter().collect(),
        })
    }

    /// Records finished actions for `destination` in one transaction (one
    /// sync for the whole batch instead of one per action); all of them or,
    /// after a crash, none.
    pub fn record_finished(
        &mut self,
        destination: &str,
        finished: &[FinishedAction],
        now: i64,
    ) -> Result<()> {
        if finished.is_empty() {
            return Ok(());
        }
        let database = database_error(self.path.clone());
        let transaction = self.connection.transaction().map_err(&database)?;
        {
            let mut insert_action = transaction
                .prepare(
                    "INSERT INTO actions (destination, key, kind, done_at) VALUES (?1, ?2, ?3, ?4)
                     ON CONFLICT DO NOTHING",
                )
                .map_err(&database)?;
            let mut insert_tag = transaction
                .prepare(
                    "INSERT INTO tags (destination, repository, tag, digest) VALUES (?1, ?2, ?3, ?4)
                     ON CONFLICT (destination, repository, tag) DO UPDATE SET digest = excluded.digest",
                )
                .map_err(&database)?;
            for action in finished {
                match action {
                    FinishedAction::Action { key, kind } => {
                        insert_action
                            .execute(params![destination, key.to_hex(), kind, now])
                            .map_err(&database)?;
                    }
                    FinishedAction::Tag {
                        key,
                        repository,
                        tag,
                        digest,
                    } => {
                        insert_action
                            .execute(params![destination, key.to_hex(), "tag", now])
                            .map_err(&database)?;
                        insert_tag
                            .execute(params![destination, repository, tag, digest.to_string()])
                            .map_err(&database)?;
                    }
                }
            }
        }
        transaction.commit().map_err(&database)
    }

    /// Forgets completed actions (used when the destination lost content).
    /// An image record naming a forgotten key no longer lets its image go
    /// uncompiled (see [`WorkspaceState::snapshot`]).
    pub fn forget_actions(&self, destination: &str, keys: &[ActionKey]) -> Result<()> {
        for key in keys {
            self.connection
                .execute(
                    "DELETE FROM actions WHERE destination = ?1 AND key = ?2",
                    params![destination, key.to_hex()],
                )
                .map_err(self.database())?;
        }
        Ok(())
    }

    /// What the planner diffs against for `destination`: the completed
    /// actions, the tags, and the images completed there
    /// ([`ImageRecord`]s). What the check before planning finds missing is
    /// the caller's to add.
    pub fn snapshot(&self, destination: &str) -> Result<StateSnapshot> {
        let DestinationHistory { done, tags } = self.history(destination)?;
        Ok(StateSnapshot {
            done,
            tags,
            images: self.image_records(destination)?,
            ..StateSnapshot::default()
        })
    }

    /// The images completed at `destination`, by name.
    pub fn image_records(&self, destination: &str) -> Result<HashMap<String, ImageRecord>> {
        let mut statement = self
            .connection
            .prepare("SELECT name, fingerprint, keys FROM image_records WHERE destination = ?1")
            .map_err(self.database())?;
        let mut rows = statement
            .query(params![destination])
            .map_err(self.database())?;
        let mut records = HashMap::new();
        while let Some(row) = rows.next().map_err(self.database())? {
            let name: String = row.get(0).map_err(self.database())?;
            let fingerprint = row.get_ref(1).map_err(self.database())?;
            let keys = row.get_ref(2).map_err(self.database())?;
            // A record that does not read back is as good as absent: the
            // image is compiled.
            let (Ok(fingerprint), Ok(keys)) = (fingerprint.as_blob(), keys.as_blob()) else {
                continue;
            };
            let Ok(fingerprint) = <[u8; 32]>::try_from(fingerprint) else {
                continue;
            };
            if keys.len() % 32 != 0 {
                continue;
            }
            let keys = keys
                .chunks_exact(32)
                .map(|chunk| {
                    let mut bytes = [0u8; 32];
                    bytes.copy_from_slice(chunk);
                    ActionKey::from_bytes(bytes)
                })
                .collect();
            records.insert(
                name,
                ImageRecord {
                    fingerprint: ImageFingerprint::from_bytes(fingerprint),
                    keys,
                },
            );
        }
        Ok(records)
    }

    /// Records images completed at `destination` (name and record), in one
    /// transaction; a newer record of a name replaces the older.
    pub fn record_images(
        &mut self,
        destination: &str,
        images: &[(String, ImageRecord)],
        now: i64,
    ) -> Result<()> {
        if images.is_empty() {
            return Ok(());
        }
        let database = database_error(self.path.clone());
        let transaction = self.connection.transaction().map_err(&database)?;
        {
            let mut insert = transaction
                .prepare(
                    "INSERT INTO image_records (destination, name, fingerprint, keys, recorded_at)
                     VALUES (?1, ?2, ?3, ?4, ?5)
                     ON CONFLICT (destination, name) DO UPDATE SET fingerprint = excluded.fingerprint,
                       keys = excluded.keys, recorded_at = excluded.recorded_at",
                )
                .map_err(&database)?;
            for (name, record) in images {
                let keys: Vec<u8> = record.keys.iter().flat_map(|key| key.to_bytes()).collect();
                insert
                    .execute(params![
                        destination,
                        name,
                        &record.fingerprint.to_bytes()[..],
                        keys,
                        now
                    ])
                    .map_err(&database)?;
            }
        }
        transaction.commit().map_err(&database)
    }

    /// Every recorded resolution, by image name.
    pub fn resolutions(&self) -> Result<BTreeMap<String, RecordedResolution>> {
        let mut statement = self
            .connection
            .prepare("SELECT name, source, top, signature, signature_checked FROM resolved_images")
            .map_err(self.database())?;
        let rows = statement
            .query_map([], |row| {
                Ok((
                    row.get::<_, String>(0)?,
                    row.get::<_, String>(1)?,
                    row.get::<_, String>(2)?,
                    row.get::<_, Option<String>>(3)?,
                    row.get::<_, bool>(4)?,
                ))
            })
            .map_err(self.database())?;
        let mut resolutions = BTreeMap::new();
        for row in rows {
            let (name, source, top, signature, signature_checked) = row.map_err(self.database())?;
            // A row that does not parse is as good as absent: resolve again.
            let Ok(top) = top.parse() else { continue };
            let signature = match signature.map(|text| text.parse::<Digest>()) {
                Some(Ok(digest)) => Some(digest),
                Some(Err(_)) => continue,
                None => None,
            };
            resolutions.insert(
                name.clone(),
                RecordedResolution {
                    name,
                    source,
                    top,
                    signature,
                    signature_checked,
                },
            );
        }
        Ok(resolutions)
    }

    /// The recorded manifest with `digest`, if any.
    pub fn manifest(&self, digest: &Digest) -> Result<Option<RecordedManifest>> {
        let mut statement = self
            .connection
            .prepare_cached("SELECT media_type, content FROM resolved_manifests WHERE digest = ?1")
            .map_err(self.database())?;
        let mut rows = statement
            .query(params![digest.to_string()])
            .map_err(self.database())?;
        let Some(row) = rows.next().map_err(self.database())? else {
            return Ok(None);
        };
        Ok(Some(RecordedManifest {
            digest: digest.clone(),
            media_type: row.get(0).map_err(self.database())?,
            content: row.get(1).map_err(self.database())?,
        }))
    }

    /// Every recorded manifest, in one pass over the table: far cheaper
    /// than a lookup per digest ([`WorkspaceState::manifest`]) when most of
    /// them are wanted. A row whose digest does not parse is left out.
    pub fn all_manifests(&self) -> Result<Vec<RecordedManifest>> {
        let mut statement = self
            .connection
            .prepare("SELECT digest, media_type, content FROM resolved_manifests")
            .map_err(self.database())?;
        let mut rows = statement.query([]).map_err(self.database())?;
        let mut manifests = Vec::new();
        while let Some(row) = rows.next().map_err(self.database())? {
            let digest = row.get_ref(0).map_err(self.database())?;
            let Some(digest) = digest
                .as_str()
                .ok()
                .and_then(|text| text.parse::<Digest>().ok())
            else {
                continue;
            };
            manifests.push(RecordedManifest {
                digest,
                media_type: row.get(1).map_err(self.database())?,
                content: row.get(2).map_err(self.database())?,
            });
        }
        Ok(manifests)
    }

    /// Records resolutions and the manifests of their trees, in one
    /// transaction (a manifest already recorded is kept: same digest, same
    /// bytes).
    pub fn record_resolutions(
        &mut self,
        resolutions: &[RecordedResolution],
        manifests: &[RecordedManifest],
        now: i64,
    ) -> Result<()> {
        let database = database_error(self.path.clone());
        let transaction = self.connection.transaction().map_err(&database)?;
        {
            let mut insert_manifest = transaction
                .prepare(
                    "INSERT INTO resolved_manifests (digest, media_type, content) VALUES (?1, ?2, ?3)
                     ON CONFLICT DO NOTHING",
                )
                .map_err(&database)?;
            for manifest in manifests {
                insert_manifest
                    .execute(params![
                        manifest.digest.to_string(),
                        manifest.media_type,
                        manifest.content
                    ])
                    .map_err(&database)?;
            }
            let mut insert_image = transaction
                .prepare(
                    "INSERT INTO resolved_images (name, source, top, signature, signature_checked, resolved_at)
                     VALUES (?1, ?2, ?3, ?4, ?5, ?6)
                     ON CONFLICT (name) DO UPDATE SET source = excluded.source, top = excluded.top,
                       signature = excluded.signature, signature_checked = excluded.signature_checked,
                       resolved_at = excluded.resolved_at",
                )
                .map_err(&database)?;
            for resolution in resolutions {
                insert_image
                    .execute(params![
                        resolution.name,
                        resolution.source,
                        resolution.top.to_string(),
                        resolution.signature.as_ref().map(Digest::to_string),
                        resolution.signature_checked,
                        now
                    ])
                    .map_err(&database)?;
            }
        }
        transaction.commit().map_err(&database)
    }

    /// Starts a run; returns its id.
    pub fn begin_run(&self, destination: &str, now: i64) -> Result<i64> {
        self.connection
            .execute(
                "INSERT INTO runs (destination, started_at) VALUES (?1, ?2)",
                params![destination, now],
            )
            .map_err(self.database())?;
        Ok(self.connection.last_insert_rowid())
    }

    /// Ends a run with its outcome.
    pub fn finish_run(&self, run: i64, outcome: &str, now: i64) -> Result<()> {
        self.connection
            .execute(
                "UPDATE runs SET finished_at = ?2, outcome = ?3 WHERE id = ?1",
                params![run, now, outcome],
            )
            .map(drop)
            .map_err(self.database())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn key(n: u8) -> ActionKey {
        ActionKey::from_bytes([n; 32])
    }

    fn keys(numbers: &[u8]) -> BTreeSet<ActionKey> {
        numbers.iter().map(|n| key(*n)).collect()
    }

    #[test]
    fn records_survive_reopening_and_are_per_destination() {
        let folder = tempfile::tempdir().unwrap();
        let path = folder.path().join("state.db");
        let digest: Digest = format!("sha256:{}", "ab".repeat(32)).parse().unwrap();
        {
            let mut state = WorkspaceState::open(&path).unwrap();
            let upload = |n: u8| FinishedAction::Action {
                key: key(n),
                kind: "upload-blob",
            };
            let tag = FinishedAction::Tag {
                key: key(2),
                repository: "a/app".to_owned(),
                tag: "1.0".to_owned(),
                digest: digest.clone(),
            };
            state
                .record_finished("reg/a", &[upload(1), tag], 1)
                .unwrap();
            state.record_finished("reg/b", &[upload(3)], 3).unwrap();
        }
        let state = WorkspaceState::open(&path).unwrap();
        let history = state.history("reg/a").unwrap();
        assert_eq!(history.done, keys(&[1, 2]));
        assert_eq!(
            history.tags[&("a/app".to_owned(), "1.0".to_owned())],
            digest
        );
        assert_eq!(state.history("reg/b").unwrap().done.len(), 1);
        state.forget_actions("reg/a", &[key(1)]).unwrap();
        assert_eq!(state.history("reg/a").unwrap().done.len(), 1);
    }

    #[test]
    fn finished_actions_are_recorded_in_one_batch() {
        let folder = tempfile::tempdir().unwrap();
        let path = folder.path().join("state.db");
        let first: Digest = format!("sha256:{}", "ab".repeat(32)).parse().unwrap();
        let second: Digest = format!("sha256:{}", "cd".repeat(32)).parse().unwrap();
        let tag = |n: u8, digest: &Digest| FinishedAction::Tag {
            key: key(n),
            repository: "a/app".to_owned(),
            tag: "1.0".to_owned(),
            digest: digest.clone(),
        };
        {
            let mut state = WorkspaceState::open(&path).unwrap();
            state.record_finished("reg/a", &[], 1).unwrap();
            state
                .record_finished(
                    "reg/a",
                    &[
                        FinishedAction::Action {
                            key: key(1),
                            kind: "upload-blob",
                        },
                        tag(2, &first),
                    ],
                    2,
                )
                .unwrap();
            // Recording again is harmless; a moved tag keeps its new digest.
            state
                .record_finished("reg/a", &[tag(2, &first), tag(3, &second)], 3)
                .unwrap();
        }
        let state = WorkspaceState::open(&path).unwrap();
        let history = state.history("reg/a").unwrap();
        assert_eq!(history.done, keys(&[1, 2, 3]));
        assert_eq!(
            history.tags[&("a/app".to_owned(), "1.0".to_owned())],
            second
        );
        let kind: String = state
            .connection
            .query_row(
                "SELECT kind FROM actions WHERE key = ?1",
                [key(3).to_hex()],
                |row| row.get(0),
            )
            .unwrap();
        assert_eq!(kind, "tag");
        assert!(state.history("reg/b").unwrap().done.is_empty());
    }

    #[test]
    fn a_version_one_state_migrates_and_keeps_its_history() {
        let folder = tempfile::tempdir().unwrap();
        let path = folder.path().join("state.db");
        // A state written by a ferry that knew only the first migration.
        {
            let mut connection = Connection::open(&path).unwrap();
            crate::migrations::migrate_with(&mut connection, &path, &MIGRATIONS[..1]).unwrap();
            connection
                .execute(
                    "INSERT INTO actions (destination, key, kind, done_at) VALUES ('reg/a', ?1, 'tag', 1)",
                    [key(1).to_hex()],
                )
                .unwrap();
        }
        let mut state = WorkspaceState::open(&path).unwrap();
        let version: u32 = state
            .connection
            .query_row("PRAGMA user_version", [], |row| row.get(0))
            .unwrap();
        assert_eq!(version as usize, MIGRATIONS.len());
        assert!(state.history("reg/a").unwrap().done.contains(&key(1)));
        assert!(state.resolutions().unwrap().is_empty());

        let digest = |n: u8| -> Digest {
            format!("sha256:{}", format!("{n:02x}").repeat(32))
                .parse()
                .unwrap()
        };
        let manifest = RecordedManifest {
            digest: digest(1),
            media_type: "application/vnd.oci.image.manifest.v1+json".to_owned(),
            content: b"{\"schemaVersion\":2}".to_vec(),
        };
        let resolution = RecordedResolution {
            name: "quay.io/a/b:1".to_owned(),
            source: "mirror.local/a/b".to_owned(),
            top: digest(1),
            signature: None,
            signature_checked: true,
        };
        state
            .record_resolutions(
                std::slice::from_ref(&resolution),
                &[manifest.clone(), manifest.clone()],
                5,
            )
            .unwrap();
        let moved = RecordedResolution {
            top: digest(2),
            signature: Some(digest(3)),
            ..resolution.clone()
        };
        state
            .record_resolutions(std::slice::from_ref(&moved), &[], 6)
            .unwrap();
        drop(state);
        let state = WorkspaceState::open(&path).unwrap();
        assert_eq!(state.resolutions().unwrap()["quay.io/a/b:1"], moved);
        assert_eq!(state.manifest(&digest(1)).unwrap(), Some(manifest));
        assert_eq!(state.manifest(&digest(2)).unwrap(), None);
    }

    #[test]
    fn image_records_come_back_in_the_snapshot_per_destination() {
        let folder = tempfile::tempdir().unwrap();
        let path = folder.path().join("state.db");
        let record = |n: u8, keys: &[u8]| ImageRecord {
            fingerprint: ImageFingerprint::from_bytes([n; 32]),
            keys: keys.iter().map(|k| key(*k)).collect(),
        };
        {
            let mut state = WorkspaceState::open(&path).unwrap();
            state
                .record_finished(
                    "reg/a",
                    &[FinishedAction::Action {
                        key: key(1),
                        kind: "upload-blob",
                    }],
                    1,
                )
                .unwrap();
            state.record_images("reg/a", &[], 1).unwrap();
            state
                .record_images(
                    "reg/a",
                    &[
                        ("quay.io/a:1".to_owned(), record(7, &[1, 2])),
                        ("quay.io/b:1".to_owned(), record(8, &[])),
                    ],
                    2,
                )
                .unwrap();
            // A newer record of a name replaces the older.
            state
                .record_images("reg/a", &[("quay.io/b:1".to_owned(), record(9, &[3]))], 3)
                .unwrap();
            state
                .record_images("reg/b", &[("quay.io/a:1".to_owned(), record(5, &[4]))], 3)
                .unwrap();
        }
        let state = WorkspaceState::open(&path).unwrap();
        let snapshot = state.snapshot("reg/a").unwrap();
        assert_eq!(snapshot.done, keys(&[1]));
        assert_eq!(snapshot.images.len(), 2);
        assert_eq!(snapshot.images["quay.io/a:1"], record(7, &[1, 2]));
        assert_eq!(snapshot.images["quay.io/b:1"], record(9, &[3]));
        assert!(snapshot.missing.is_empty() && snapshot.missing_blobs.is_empty());
        assert_eq!(
            state.snapshot("reg/b").unwrap().images["quay.io/a:1"],
            record(5, &[4])
        );
        assert!(state.snapshot("reg/c").unwrap().images.is_empty());
        // A record that does not read back is left out, not an error.
        state
            .connection
            .execute(
                "UPDATE image_records SET keys = x'0102' WHERE name = 'quay.io/b:1' AND destination = 'reg/a'",
                [],
            )
            .unwrap();
        let images = state.image_records("reg/a").unwrap();
        assert_eq!(images.keys().collect::<Vec<_>>(), ["quay.io/a:1"]);
    }

    #[test]
    fn a_version_four_state_migrates_to_image_records() {
        let folder = tempfile::tempdir().unwrap();
        let path = folder.path().join("state.db");
        {
            let mut connection = Connection::open(&path).unwrap();
            crate::migrations::migrate_with(&mut connection, &path, &MIGRATIONS[..4]).unwrap();
            connection
                .execute(
                    "INSERT INTO actions (destination, key, kind, done_at) VALUES ('reg/a', ?1, 'tag', 1)",
                    [key(6).to_hex()],
                )
                .unwrap();
        }
        let state = WorkspaceState::open(&path).unwrap();
        let snapshot = state.snapshot("reg/a").unwrap();
        assert_eq!(snapshot.done, keys(&[6]));
        assert!(snapshot.images.is_empty());
    }
}
