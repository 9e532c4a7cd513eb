//! One ferry run per workspace (and so per delivery folder) at a time.
//!
//! A run takes [`RunLock::acquire`] on `<working-dir>/run.lock` before it
//! reads anything: an exclusive advisory lock (`flock` through fs4) that the
//! kernel releases when the process ends, however it ends, so a killed run
//! never leaves a workspace locked. The holder writes its process id, start
//! time and command into the file, so a second run is refused at once with
//! `workspace DIR in use by pid N since <time>` instead of failing late
//! (`database is locked`, a registry error, a segment that already exists).
//! `ferry plan` only reads: [`RunLock::holder`] tells it whether a run holds
//! the workspace, so it can say that what it reads may be changing.

use std::fs::{File, OpenOptions};
use std::io::{Read, Seek, SeekFrom, Write};
use std::path::{Path, PathBuf};

use fs4::fs_std::FileExt;

use crate::error::{Result, io};

/// The lock file inside a workspace's `working-dir`.
pub const LOCK_FILE: &str = "run.lock";

/// The run holding a workspace, as it described itself.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Holder {
    pub pid: u32,
    /// When it started, as written by it (UTC, `YYYY-MM-DD HH:MM:SS`).
    pub since: String,
    /// Its command line, as written by it.
    pub command: String,
}

/// Why a workspace could not be locked.
#[derive(Debug, thiserror::Error)]
pub enum LockError {
    #[error(
        "workspace {workspace} in use by pid {} since {} ({}); wait for that run to finish, or stop it, and run again",
        holder.pid,
        holder.since,
        holder.command
    )]
    Busy { workspace: PathBuf, holder: Holder },
    #[error(
        "workspace {workspace} in use by another ferry run (it has not said which yet); wait for it to finish and run again"
    )]
    BusyUnknown { workspace: PathBuf },
    #[error(transparent)]
    Store(#[from] crate::Error),
}

/// An exclusive hold on a workspace for the life of a run; released when
/// dropped or when the process ends.
#[derive(Debug)]
pub struct RunLock {
    _file: File,
    path: PathBuf,
}

fn open(path: &Path) -> Result<File> {
    OpenOptions::new()
        .read(true)
        .write(true)
        .create(true)
        .truncate(false)
        .open(path)
        .map_err(io("opening the lock", path))
}

fn read_holder(file: &mut File) -> Option<Holder> {
    let mut text = String::new();
    file.seek(SeekFrom::Start(0)).ok()?;
    file.read_to_string(&mut text).ok()?;
    let mut pid = None;
    let mut since = None;
    let mut command = String::new();
    for line in text.lines() {
        match line.split_once('=') {
            Some(("pid", value)) => pid = value.parse().ok(),
            Some(("since", value)) => since = Some(value.to_owned()),
            Some(("command", value)) => command = value.to_owned(),
            _ => {}
        }
    }
    Some(Holder {
        pid: pid?,
        since: since?,
        command,
    })
}

impl RunLock {
    /// Takes `workspace` (a `working-dir` folder, created if absent) for
    /// this run, or says which run holds it. `since` is the run's start
    /// time as it should be shown, `command` its command line.
    pub fn acquire(
        workspace: &Path,
        since: &str,
        command: &str,
    ) -> std::result::Result<RunLock, LockError> {
        std::fs::create_dir_all(workspace).map_err(io("creating", workspace))?;
        let path = workspace.join(LOCK_FILE);
        let mut file = open(&path)?;
        let taken = FileExt::try_lock_exclusive(&file).map_err(io("locking", &path))?;
        if !taken {
            return Err(match read_holder(&mut file) {
                Some(holder) => LockError::Busy {
                    workspace: workspace.to_owned(),
                    holder,
                },
                None => LockError::BusyUnknown {
                    workspace: workspace.to_owned(),
                },
            });
        }
        let description = format!(
            "pid={}\nsince={since}\ncommand={}\n",
            std::process::id(),
            command.replace('\n', " ")
        );
        file.set_len(0).map_err(io("writing the lock", &path))?;
        file.seek(SeekFrom::Start(0))
            .and_then(|_| file.write_all(description.as_bytes()))
            .and_then(|()| file.flush())
            .map_err(io("writing the lock", &path))?;
        Ok(RunLock { _file: file, path })
    }

    /// The run holding `workspace`, if one does (nothing is locked or
    /// created: a plan reads a busy workspace, and says so).
    pub fn holder(workspace: &Path) -> Option<Holder> {
        let path = workspace.join(LOCK_FILE);
        let mut file = File::open(&path).ok()?;
        match FileExt::try_lock_shared(&file) {
            Ok(true) => {
                let _ = FileExt::unlock(&file);
                None
            }
            Ok(false) => Some(read_holder(&mut file).unwrap_or(Holder {
                pid: 0,
                since: "a moment ago".to_owned(),
                command: String::new(),
            })),
            Err(_) => None,
        }
    }

    /// The lock file.
    pub fn path(&self) -> &Path {
        &self.path
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_second_run_is_refused_naming_the_first_until_it_ends() {
        let folder = tempfile::tempdir().unwrap();
        let workspace = folder.path().join("working-dir");
        assert_eq!(RunLock::holder(&workspace), None);
        let first = RunLock::acquire(&workspace, "2026-12-02 04:00:00", "ferry mirror").unwrap();
        assert!(first.path().ends_with(LOCK_FILE));
        // flock locks belong to the open file description: a second open
        // in this process conflicts as another process would.
        let refused = RunLock::acquire(&workspace, "2026-12-02 04:00:01", "ferry mirror")
            .unwrap_err()
            .to_string();
        assert!(
            refused.contains(&format!(
                "in use by pid {} since 2026-12-02 04:00:00 (ferry mirror)",
                std::process::id()
            )),
            "{refused}"
        );
        assert_eq!(
            RunLock::holder(&workspace).map(|holder| holder.pid),
            Some(std::process::id())
        );
        drop(first);
        assert_eq!(RunLock::holder(&workspace), None);
        let again = RunLock::acquire(&workspace, "2026-12-02 04:00:02", "ferry plan");
        assert!(again.is_ok());
    }
}
