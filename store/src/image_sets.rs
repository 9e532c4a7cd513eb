//! The image sets that share a cache: every workspace (or disk folder)
//! whose run mirrored to a registry with this cache records itself in
//! `<cache>/workspaces/`, one small file per workspace (named by the
//! sha256 of its absolute path, holding that path), so that no two runs
//! ever write the same file. A delete reads them to find the content
//! other image sets still need at the same registry.
//!
//! A record whose workspace is gone is skipped by readers and removed by
//! [`forget_missing`]; nothing else ever deletes one.

use std::path::{Path, PathBuf};

use crate::error::{Error, Result, io};

/// The folder of the records in a cache.
pub fn records_folder(cache_root: &Path) -> PathBuf {
    cache_root.join("workspaces")
}

/// Records that `workspace` (its root folder, made absolute) uses the
/// cache at `cache_root`. Writing the same record again changes nothing.
pub fn record_workspace(cache_root: &Path, workspace: &Path) -> Result<()> {
    let workspace = std::path::absolute(workspace).map_err(io("resolving", workspace))?;
    let text = workspace.display().to_string();
    let folder = records_folder(cache_root);
    std::fs::create_dir_all(&folder).map_err(io("creating", &folder))?;
    let file = folder.join(ferry_schemas::Digest::sha256_of(text.as_bytes()).hex());
    if std::fs::read_to_string(&file).is_ok_and(|recorded| recorded.trim_end() == text) {
        return Ok(());
    }
    let temporary = tempfile::NamedTempFile::new_in(&folder).map_err(io("writing in", &folder))?;
    std::fs::write(temporary.path(), format!("{text}\n"))
        .map_err(io("writing", temporary.path()))?;
    temporary
        .persist(&file)
        .map_err(|error| Error::Io {
            action: "writing",
            path: file.clone(),
            source: error.error,
        })
        .map(drop)
}

/// Every workspace recorded in the cache at `cache_root` whose folder
/// still exists, sorted (an absent records folder: none).
pub fn recorded_workspaces(cache_root: &Path) -> Result<Vec<PathBuf>> {
    let folder = records_folder(cache_root);
    let entries = match std::fs::read_dir(&folder) {
        Ok(entries) => entries,
        Err(error) if error.kind() == std::io::ErrorKind::NotFound => return Ok(Vec::new()),
        Err(error) => return Err(io("reading", &folder)(error)),
    };
    let mut workspaces = Vec::new();
    for entry in entries {
        let path = entry.map_err(io("reading", &folder))?.path();
        let is_record = path
            .file_name()
            .and_then(|name| name.to_str())
            .is_some_and(|name| name.len() == 64 && name.chars().all(|c| c.is_ascii_hexdigit()));
        if !is_record {
            continue;
        }
        let Ok(text) = std::fs::read_to_string(&path) else {
            continue;
        };
        let workspace = PathBuf::from(text.trim_end());
        if workspace.is_dir() {
            workspaces.push(workspace);
        }
    }
    workspaces.sort();
    workspaces.dedup();
    Ok(workspaces)
}

/// Removes the records of workspaces whose folder is gone; returns them.
pub fn forget_missing(cache_root: &Path) -> Result<Vec<PathBuf>> {
    let folder = records_folder(cache_root);
    let Ok(entries) = std::fs::read_dir(&folder) else {
        return Ok(Vec::new());
    };
    let mut removed = Vec::new();
    for entry in entries {
        let path = entry.map_err(io("reading", &folder))?.path();
        let Ok(text) = std::fs::read_to_string(&path) else {
            continue;
        };
        let workspace = PathBuf::from(text.trim_end());
        if !workspace.exists() {
            std::fs::remove_file(&path).map_err(io("removing", &path))?;
            removed.push(workspace);
        }
    }
    Ok(removed)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn workspaces_are_recorded_once_and_gone_ones_are_skipped() {
        let cache = tempfile::tempdir().unwrap();
        let first = tempfile::tempdir().unwrap();
        let second = tempfile::tempdir().unwrap();
        assert!(recorded_workspaces(cache.path()).unwrap().is_empty());
        record_workspace(cache.path(), first.path()).unwrap();
        record_workspace(cache.path(), first.path()).unwrap();
        record_workspace(cache.path(), second.path()).unwrap();
        let mut expected = vec![first.path().to_path_buf(), second.path().to_path_buf()];
        expected.sort();
        assert_eq!(recorded_workspaces(cache.path()).unwrap(), expected);
        assert_eq!(
            std::fs::read_dir(records_folder(cache.path()))
                .unwrap()
                .count(),
            2
        );
        let gone = second.path().to_path_buf();
        drop(second);
        assert_eq!(
            recorded_workspaces(cache.path()).unwrap(),
            [first.path().to_path_buf()]
        );
        assert_eq!(forget_missing(cache.path()).unwrap(), [gone]);
        assert_eq!(
            std::fs::read_dir(records_folder(cache.path()))
                .unwrap()
                .count(),
            1
        );
    }
}
