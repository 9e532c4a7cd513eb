//! A workspace's own history (`working-dir/state.db`): which actions
//! completed for which destination, which tags were set, and each run.
//!
//! **Consistency.** An action is recorded only after it succeeded, one small
//! transaction each, so a crash or kill at any moment leaves the state
//! naming only work that is really done; a rerun plans the rest.
//! **Locking.** SQLite WAL; one ferry run per workspace at a time (a second
//! writer waits up to 30 seconds). **Compatibility.** Forward-only
//! migrations, separate from the cache index's.

use std::collections::{BTreeMap, BTreeSet};
use std::path::{Path, PathBuf};
use std::time::Duration;

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
    // 2: disk deliveries written by this workspace (mirror-to-disk), what
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
];

/// What the state records for one destination.
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct DestinationHistory {
    /// Hex keys of completed actions.
    pub done: BTreeSet<String>,
    /// (repository, tag) → digest.
    pub tags: BTreeMap<(String, String), Digest>,
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
            .pragma_update(None, "synchronous", "FULL")
            .map_err(database)?;
        crate::migrations::migrate_with(&mut connection, &path, MIGRATIONS)?;
        Ok(WorkspaceState { connection, path })
    }

    pub fn path(&self) -> &Path {
        &self.path
    }

    pub(crate) fn database(&self) -> impl Fn(rusqlite::Error) -> Error + '_ {
        move |source| Error::Database {
            path: self.path.clone(),
            source,
        }
    }

    /// Everything recorded for `destination`.
    pub fn history(&self, destination: &str) -> Result<DestinationHistory> {
        let mut history = DestinationHistory::default();
        let mut statement = self
            .connection
            .prepare("SELECT key FROM actions WHERE destination = ?1")
            .map_err(self.database())?;
        let keys = statement
            .query_map(params![destination], |row| row.get::<_, String>(0))
            .map_err(self.database())?;
        for key in keys {
            history.done.insert(key.map_err(self.database())?);
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
        for row in rows {
            let (repository, tag, digest) = row.map_err(self.database())?;
            if let Ok(digest) = digest.parse() {
                history.tags.insert((repository, tag), digest);
            }
        }
        Ok(history)
    }

    /// Records that an action completed.
    pub fn record_action(&self, destination: &str, key: &str, kind: &str, now: i64) -> Result<()> {
        self.connection
            .execute(
                "INSERT INTO actions (destination, key, kind, done_at) VALUES (?1, ?2, ?3, ?4)
                 ON CONFLICT DO NOTHING",
                params![destination, key, kind, now],
            )
            .map(drop)
            .map_err(self.database())
    }

    /// Records a tag set at the destination (with its action, atomically).
    pub fn record_tag(
        &mut self,
        destination: &str,
        key: &str,
        repository: &str,
        tag: &str,
        digest: &Digest,
        now: i64,
    ) -> Result<()> {
        let path = self.path.clone();
        let database = |source| Error::Database {
            path: path.clone(),
            source,
        };
        let transaction = self.connection.transaction().map_err(database)?;
        transaction
            .execute(
                "INSERT INTO actions (destination, key, kind, done_at) VALUES (?1, ?2, 'tag', ?3)
                 ON CONFLICT DO NOTHING",
                params![destination, key, now],
            )
            .map_err(database)?;
        transaction
            .execute(
                "INSERT INTO tags (destination, repository, tag, digest) VALUES (?1, ?2, ?3, ?4)
                 ON CONFLICT (destination, repository, tag) DO UPDATE SET digest = excluded.digest",
                params![destination, repository, tag, digest.to_string()],
            )
            .map_err(database)?;
        transaction.commit().map_err(database)
    }

    /// Forgets completed actions (used when the destination lost content).
    pub fn forget_actions(&self, destination: &str, keys: &[String]) -> Result<()> {
        for key in keys {
            self.connection
                .execute(
                    "DELETE FROM actions WHERE destination = ?1 AND key = ?2",
                    params![destination, key],
                )
                .map_err(self.database())?;
        }
        Ok(())
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

    #[test]
    fn records_survive_reopening_and_are_per_destination() {
        let folder = tempfile::tempdir().unwrap();
        let path = folder.path().join("state.db");
        let digest: Digest = format!("sha256:{}", "ab".repeat(32)).parse().unwrap();
        {
            let mut state = WorkspaceState::open(&path).unwrap();
            state
                .record_action("reg/a", "k1", "upload-blob", 1)
                .unwrap();
            state
                .record_tag("reg/a", "k2", "a/app", "1.0", &digest, 2)
                .unwrap();
            state
                .record_action("reg/b", "k3", "upload-blob", 3)
                .unwrap();
        }
        let state = WorkspaceState::open(&path).unwrap();
        let history = state.history("reg/a").unwrap();
        assert_eq!(
            history.done,
            ["k1", "k2"].iter().map(|k| (*k).to_owned()).collect()
        );
        assert_eq!(
            history.tags[&("a/app".to_owned(), "1.0".to_owned())],
            digest
        );
        assert_eq!(state.history("reg/b").unwrap().done.len(), 1);
        state.forget_actions("reg/a", &["k1".to_owned()]).unwrap();
        assert_eq!(state.history("reg/a").unwrap().done.len(), 1);
    }
}
