//! What a workspace state forgets after a delete, and what it tells other
//! runs about the registries it mirrored to: the destinations it recorded
//! tags at ([`WorkspaceState::destinations`]) and forgetting what was
//! deleted there ([`WorkspaceState::forget_deleted`]): the actions whose
//! result is gone (pushed manifests, tags, uploads and links of blobs the
//! registry's garbage collector frees) and the tag rows, in one
//! transaction, so the next mirror plans the deleted images again.

use rusqlite::params;

use crate::error::Result;
use crate::state::{WorkspaceState, database_error};

impl WorkspaceState {
    /// Every destination (`registry[/prefix]`) this state records a tag at.
    pub fn destinations(&self) -> Result<Vec<String>> {
        let mut statement = self
            .connection
            .prepare("SELECT DISTINCT destination FROM tags ORDER BY destination")
            .map_err(self.database())?;
        let rows = statement
            .query_map([], |row| row.get::<_, String>(0))
            .map_err(self.database())?;
        rows.collect::<rusqlite::Result<Vec<String>>>()
            .map_err(self.database())
    }

    /// Forgets, for `destination`, the actions with `keys` and the tags
    /// `(repository, tag)` in one transaction: what a delete removed.
    pub fn forget_deleted(
        &mut self,
        destination: &str,
        keys: &[String],
        tags: &[(String, String)],
    ) -> Result<()> {
        let database = database_error(self.path.clone());
        let transaction = self.connection.transaction().map_err(&database)?;
        {
            let mut forget_action = transaction
                .prepare("DELETE FROM actions WHERE destination = ?1 AND key = ?2")
                .map_err(&database)?;
            for key in keys {
                forget_action
                    .execute(params![destination, key])
                    .map_err(&database)?;
            }
            let mut forget_tag = transaction
                .prepare("DELETE FROM tags WHERE destination = ?1 AND repository = ?2 AND tag = ?3")
                .map_err(&database)?;
            for (repository, tag) in tags {
                forget_tag
                    .execute(params![destination, repository, tag])
                    .map_err(&database)?;
            }
        }
        transaction.commit().map_err(&database)
    }
}

#[cfg(test)]
mod tests {
    use ferry_planner::ActionKey;
    use ferry_schemas::Digest;

    use crate::state::{FinishedAction, WorkspaceState};

    fn key(n: u8) -> ActionKey {
        ActionKey::from_bytes([n; 32])
    }

    #[test]
    fn deleted_actions_and_tags_are_forgotten_for_one_destination_only() {
        let folder = tempfile::tempdir().unwrap();
        let mut state = WorkspaceState::open(folder.path().join("state.db")).unwrap();
        let digest: Digest = format!("sha256:{}", "cd".repeat(32)).parse().unwrap();
        let tag = |n: u8, tag: &str| FinishedAction::Tag {
            key: key(n),
            repository: "ns/app".to_owned(),
            tag: tag.to_owned(),
            digest: digest.clone(),
        };
        let push = FinishedAction::Action {
            key: key(9),
            kind: "push-manifest",
        };
        for destination in ["reg/ns", "other/ns"] {
            state
                .record_finished(
                    destination,
                    &[push.clone(), tag(1, "1.0"), tag(2, "2.0")],
                    1,
                )
                .unwrap();
        }
        assert_eq!(state.destinations().unwrap(), ["other/ns", "reg/ns"]);
        state
            .forget_deleted(
                "reg/ns",
                &[key(9).to_hex(), key(1).to_hex()],
                &[("ns/app".to_owned(), "1.0".to_owned())],
            )
            .unwrap();
        let history = state.history("reg/ns").unwrap();
        assert_eq!(history.done.into_iter().collect::<Vec<_>>(), [key(2)]);
        assert_eq!(
            history.tags.keys().cloned().collect::<Vec<_>>(),
            [("ns/app".to_owned(), "2.0".to_owned())]
        );
        assert_eq!(state.history("other/ns").unwrap().done.len(), 3);
    }
}
