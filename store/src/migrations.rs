//! Forward-only schema migrations, tracked by SQLite's `PRAGMA user_version`.
//!
//! Never edit or reorder a migration once released: add a new one. A
//! database whose version is above what this ferry knows is refused, so an
//! older ferry never writes a schema it does not understand.

use std::path::Path;

use rusqlite::Connection;

use crate::error::{Error, Result};

/// The migrations, in order; migration `n` takes the schema from version
/// `n` to `n + 1`.
pub(crate) const MIGRATIONS: &[&str] = &[
    // 1: blobs, manifests and resolved references.
    "CREATE TABLE blobs (
        digest TEXT PRIMARY KEY NOT NULL,
        size INTEGER NOT NULL,
        added_at INTEGER NOT NULL
    );
    CREATE TABLE manifests (
        digest TEXT PRIMARY KEY NOT NULL,
        media_type TEXT NOT NULL,
        size INTEGER NOT NULL
    );
    CREATE TABLE manifest_children (
        manifest TEXT NOT NULL REFERENCES manifests(digest),
        child TEXT NOT NULL,
        PRIMARY KEY (manifest, child)
    );
    CREATE TABLE resolved_references (
        reference TEXT PRIMARY KEY NOT NULL,
        digest TEXT NOT NULL,
        resolved_at INTEGER NOT NULL
    );",
];

/// Brings the cache index to the newest schema.
pub(crate) fn migrate(connection: &mut Connection, path: &Path) -> Result<()> {
    migrate_with(connection, path, MIGRATIONS)
}

/// Brings a database to the newest of `migrations`, in one exclusive
/// transaction.
pub(crate) fn migrate_with(
    connection: &mut Connection,
    path: &Path,
    migrations: &[&str],
) -> Result<()> {
    let database = |source| Error::Database {
        path: path.to_owned(),
        source,
    };
    let transaction = connection
        .transaction_with_behavior(rusqlite::TransactionBehavior::Exclusive)
        .map_err(database)?;
    let version: u32 = transaction
        .query_row("PRAGMA user_version", [], |row| row.get(0))
        .map_err(database)?;
    let known = migrations.len() as u32;
    if version > known {
        return Err(Error::NewerSchema {
            path: path.to_owned(),
            found: version,
            known,
        });
    }
    for migration in &migrations[version as usize..] {
        transaction.execute_batch(migration).map_err(database)?;
    }
    transaction
        .pragma_update(None, "user_version", known)
        .map_err(database)?;
    transaction.commit().map_err(database)
}
