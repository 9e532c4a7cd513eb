//! The workspace's delivery history (disk workflows), kept in `state.db`
//! beside the mirror-to-mirror history.
//!
//! - Mirror-to-disk: each delivery written (its number, the delivery it
//!   builds on, its segment files) with the keys of everything it shipped
//!   and the images its index names. A delivery is recorded in one
//!   transaction after all its segments are in place, so a kill while
//!   packing leaves no record and the rerun writes the delivery again.
//! - Disk-to-mirror: which deliveries were applied to which destination,
//!   recorded after every image of the run reached the destination.

use std::collections::{BTreeMap, BTreeSet};

use ferry_planner::ActionKey;
use ferry_schemas::Digest;
use rusqlite::{OptionalExtension, params};

use crate::error::Result;
use crate::state::{WorkspaceState, database_error};

/// One delivery written by this workspace.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct DeliveryRecord {
    pub number: u32,
    /// The delivery whose content this one assumes at the destination.
    pub previous: Option<u32>,
    pub first_segment: u32,
    pub last_segment: u32,
    pub bytes: u64,
    /// Seconds since the epoch (kept here only, never in the archive).
    pub created_at: i64,
}

impl WorkspaceState {
    /// Every delivery written, oldest first.
    pub fn deliveries(&self) -> Result<Vec<DeliveryRecord>> {
        let mut statement = self
            .connection
            .prepare(
                "SELECT number, previous, first_segment, last_segment, bytes, created_at
                 FROM deliveries ORDER BY number",
            )
            .map_err(self.database())?;
        let rows = statement
            .query_map([], |row| {
                Ok(DeliveryRecord {
                    number: row.get(0)?,
                    previous: row.get(1)?,
                    first_segment: row.get(2)?,
                    last_segment: row.get(3)?,
                    bytes: row.get::<_, i64>(4)? as u64,
                    created_at: row.get(5)?,
                })
            })
            .map_err(self.database())?;
        rows.collect::<std::result::Result<_, _>>()
            .map_err(self.database())
    }

    /// Keys shipped by the deliveries made before `before` (all when
    /// `None`): oc-mirror's `--since` baseline. The table keeps them as
    /// hex; one that does not read as a key is left out (it matches no
    /// planned action).
    pub fn shipped_keys(&self, before: Option<i64>) -> Result<BTreeSet<ActionKey>> {
        let mut statement = self
            .connection
            .prepare(
                "SELECT key FROM delivery_keys JOIN deliveries ON delivery = number
                 WHERE ?1 IS NULL OR created_at < ?1",
            )
            .map_err(self.database())?;
        let rows = statement
            .query_map(params![before], |row| row.get::<_, String>(0))
            .map_err(self.database())?;
        let mut keys = BTreeSet::new();
        for row in rows {
            if let Some(key) = ActionKey::from_hex(&row.map_err(self.database())?) {
                keys.insert(key);
            }
        }
        Ok(keys)
    }

    /// The newest delivery made before `before` (all when `None`): the one
    /// a new delivery builds on.
    pub fn baseline_delivery(&self, before: Option<i64>) -> Result<Option<u32>> {
        self.connection
            .query_row(
                "SELECT max(number) FROM deliveries WHERE ?1 IS NULL OR created_at < ?1",
                params![before],
                |row| row.get::<_, Option<u32>>(0),
            )
            .optional()
            .map(Option::flatten)
            .map_err(self.database())
    }

    /// Each image name with the digest the newest delivery naming it gave.
    pub fn delivered_images(&self) -> Result<BTreeMap<String, Digest>> {
        let mut statement = self
            .connection
            .prepare("SELECT name, digest FROM delivery_images ORDER BY delivery")
            .map_err(self.database())?;
        let rows = statement
            .query_map([], |row| {
                Ok((row.get::<_, String>(0)?, row.get::<_, String>(1)?))
            })
            .map_err(self.database())?;
        let mut images = BTreeMap::new();
        for row in rows {
            let (name, digest) = row.map_err(self.database())?;
            if let Ok(digest) = digest.parse() {
                images.insert(name, digest);
            }
        }
        Ok(images)
    }

    /// Records a delivery with what it shipped, in one transaction.
    pub fn record_delivery(
        &mut self,
        record: &DeliveryRecord,
        keys: &[ActionKey],
        images: &[(String, Digest)],
    ) -> Result<()> {
        let database = database_error(self.path.clone());
        let transaction = self.connection.transaction().map_err(&database)?;
        transaction
            .execute(
                "INSERT INTO deliveries (number, previous, first_segment, last_segment, bytes, created_at)
                 VALUES (?1, ?2, ?3, ?4, ?5, ?6)",
                params![
                    record.number,
                    record.previous,
                    record.first_segment,
                    record.last_segment,
                    record.bytes as i64,
                    record.created_at
                ],
            )
            .map_err(&database)?;
        for key in keys {
            transaction
                .execute(
                    "INSERT INTO delivery_keys (delivery, key) VALUES (?1, ?2) ON CONFLICT DO NOTHING",
                    params![record.number, key.to_hex()],
                )
                .map_err(&database)?;
        }
        for (name, digest) in images {
            transaction
                .execute(
                    "INSERT INTO delivery_images (delivery, name, digest) VALUES (?1, ?2, ?3)
                     ON CONFLICT DO NOTHING",
                    params![record.number, name, digest.to_string()],
                )
                .map_err(&database)?;
        }
        transaction
            .execute("DELETE FROM pending_delivery", [])
            .map_err(&database)?;
        transaction.commit().map_err(&database)
    }

    /// Notes, before its segments are written, the delivery a run is about
    /// to write and the segment numbers it will use; [`Self::record_delivery`]
    /// clears the note. A note found later means that run was interrupted:
    /// segments in that range that do not form a whole delivery are its own
    /// unfinished work.
    pub fn begin_delivery(&self, number: u32, first_segment: u32, last_segment: u32) -> Result<()> {
        let database = self.database();
        self.connection
            .execute("DELETE FROM pending_delivery", [])
            .map_err(&database)?;
        self.connection
            .execute(
                "INSERT INTO pending_delivery (number, first_segment, last_segment) VALUES (?1, ?2, ?3)",
                params![number, first_segment, last_segment],
            )
            .map(drop)
            .map_err(database)
    }

    /// The delivery an interrupted run was writing: its number and the
    /// first and last segment numbers it was to use.
    pub fn pending_delivery(&self) -> Result<Option<(u32, u32, u32)>> {
        self.connection
            .query_row(
                "SELECT number, first_segment, last_segment FROM pending_delivery",
                [],
                |row| Ok((row.get(0)?, row.get(1)?, row.get(2)?)),
            )
            .optional()
            .map_err(self.database())
    }

    /// Forgets the note of [`Self::begin_delivery`] (the write failed and
    /// took back its segments, or they were removed).
    pub fn clear_pending_delivery(&self) -> Result<()> {
        self.connection
            .execute("DELETE FROM pending_delivery", [])
            .map(drop)
            .map_err(self.database())
    }

    /// Deliveries applied to `destination` (disk-to-mirror).
    pub fn applied_deliveries(&self, destination: &str) -> Result<BTreeSet<u32>> {
        let mut statement = self
            .connection
            .prepare("SELECT delivery FROM applied_deliveries WHERE destination = ?1")
            .map_err(self.database())?;
        let rows = statement
            .query_map(params![destination], |row| row.get::<_, u32>(0))
            .map_err(self.database())?;
        rows.collect::<std::result::Result<_, _>>()
            .map_err(self.database())
    }

    /// Records that `destination` now has every image of `delivery`.
    pub fn record_applied_delivery(
        &self,
        destination: &str,
        delivery: u32,
        now: i64,
    ) -> Result<()> {
        self.connection
            .execute(
                "INSERT INTO applied_deliveries (destination, delivery, applied_at) VALUES (?1, ?2, ?3)
                 ON CONFLICT DO NOTHING",
                params![destination, delivery, now],
            )
            .map(drop)
            .map_err(self.database())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn digest(byte: &str) -> Digest {
        format!("sha256:{}", byte.repeat(32)).parse().unwrap()
    }

    fn record(number: u32, previous: Option<u32>, created_at: i64) -> DeliveryRecord {
        DeliveryRecord {
            number,
            previous,
            first_segment: number * 10,
            last_segment: number * 10 + 1,
            bytes: 1000 * u64::from(number),
            created_at,
        }
    }

    fn key(seed: u8) -> ActionKey {
        ActionKey::from_bytes([seed; 32])
    }

    #[test]
    fn deliveries_chain_and_since_baselines() {
        let folder = tempfile::tempdir().unwrap();
        let path = folder.path().join("state.db");
        {
            let mut state = WorkspaceState::open(&path).unwrap();
            assert_eq!(state.baseline_delivery(None).unwrap(), None);
            state
                .record_delivery(
                    &record(1, None, 100),
                    &[key(1), key(2)],
                    &[("quay.io/a:1".to_owned(), digest("aa"))],
                )
                .unwrap();
            state
                .record_delivery(
                    &record(2, Some(1), 200),
                    &[key(3)],
                    &[("quay.io/a:1".to_owned(), digest("bb"))],
                )
                .unwrap();
        }
        let state = WorkspaceState::open(&path).unwrap();
        assert_eq!(
            state.deliveries().unwrap(),
            vec![record(1, None, 100), record(2, Some(1), 200)]
        );
        assert_eq!(state.shipped_keys(None).unwrap().len(), 3);
        let before_second: Vec<ActionKey> =
            state.shipped_keys(Some(200)).unwrap().into_iter().collect();
        assert_eq!(before_second, vec![key(1), key(2)]);
        assert_eq!(state.baseline_delivery(Some(200)).unwrap(), Some(1));
        assert_eq!(state.baseline_delivery(Some(50)).unwrap(), None);
        assert_eq!(state.baseline_delivery(None).unwrap(), Some(2));
        // The newest delivery's digest wins.
        assert_eq!(
            state.delivered_images().unwrap()["quay.io/a:1"],
            digest("bb")
        );
    }

    #[test]
    fn a_delivery_number_is_recorded_once() {
        let folder = tempfile::tempdir().unwrap();
        let mut state = WorkspaceState::open(folder.path().join("state.db")).unwrap();
        state
            .record_delivery(&record(1, None, 1), &[], &[])
            .unwrap();
        assert!(
            state
                .record_delivery(&record(1, None, 2), &[], &[])
                .is_err()
        );
        assert_eq!(state.deliveries().unwrap().len(), 1);
    }

    #[test]
    fn a_damaged_state_is_named_as_the_workspace_state_with_what_to_do() {
        let folder = tempfile::tempdir().unwrap();
        let path = folder.path().join("state.db");
        std::fs::write(&path, vec![0x5a; 8192]).unwrap();
        let message = WorkspaceState::open(&path).err().unwrap().to_string();
        assert!(message.contains("the workspace state"), "{message}");
        assert!(message.contains("move it away"), "{message}");
        assert!(!message.contains("cache index"), "{message}");
    }

    #[test]
    fn a_pending_delivery_is_noted_until_it_is_recorded() {
        let folder = tempfile::tempdir().unwrap();
        let mut state = WorkspaceState::open(folder.path().join("state.db")).unwrap();
        assert_eq!(state.pending_delivery().unwrap(), None);
        state.begin_delivery(1, 1, 3).unwrap();
        state.begin_delivery(1, 1, 4).unwrap();
        assert_eq!(state.pending_delivery().unwrap(), Some((1, 1, 4)));
        state
            .record_delivery(&record(1, None, 1), &[], &[])
            .unwrap();
        assert_eq!(state.pending_delivery().unwrap(), None);
        state.begin_delivery(2, 5, 5).unwrap();
        state.clear_pending_delivery().unwrap();
        assert_eq!(state.pending_delivery().unwrap(), None);
    }

    #[test]
    fn applied_deliveries_are_per_destination() {
        let folder = tempfile::tempdir().unwrap();
        let state = WorkspaceState::open(folder.path().join("state.db")).unwrap();
        state.record_applied_delivery("reg/a", 1, 5).unwrap();
        state.record_applied_delivery("reg/a", 1, 6).unwrap();
        state.record_applied_delivery("reg/b", 2, 7).unwrap();
        assert_eq!(
            state.applied_deliveries("reg/a").unwrap(),
            BTreeSet::from([1])
        );
        assert_eq!(
            state.applied_deliveries("reg/b").unwrap(),
            BTreeSet::from([2])
        );
    }
}
