//! Logging of a run: warnings and errors on stderr (everything at `debug`
//! and `trace`; colour codes only when stderr is a terminal), and for `mirror` and `apply` the whole log at the chosen
//! `--log-level` in `working-dir/logs/ferry-<YYYYMMDD_HHMMSS>.log` (UTC;
//! `ferry-<YYYYMMDD_HHMMSS>-2.log` and so on for runs that start in the
//! same second, so each run has a log of its own).
//! Nothing logged carries a secret: the registry client never logs
//! headers or credentials.

use std::path::{Path, PathBuf};

use tracing_subscriber::EnvFilter;
use tracing_subscriber::Layer as _;
use tracing_subscriber::layer::SubscriberExt as _;
use tracing_subscriber::util::SubscriberInitExt as _;

/// The crates whose logs ferry shows.
fn filter(level: &str) -> EnvFilter {
    EnvFilter::new(format!(
        "ferry={level},ferry_registry={level},ferry_executor={level},ferry_store={level}"
    ))
}

/// `YYYYMMDD_HHMMSS` in UTC, for file names.
pub fn timestamp() -> String {
    let now = time::OffsetDateTime::now_utc();
    format!(
        "{:04}{:02}{:02}_{:02}{:02}{:02}",
        now.year(),
        u8::from(now.month()),
        now.day(),
        now.hour(),
        now.minute(),
        now.second()
    )
}

/// Creates this run's log file, `ferry-<stamp>.log`, or, when a run that
/// started in the same second has that name, `ferry-<stamp>-2.log`, `-3`
/// and so on: created only if absent, so no two runs share a log.
fn new_log_file(folder: &Path, stamp: &str) -> Result<(PathBuf, std::fs::File), String> {
    for attempt in 1u32.. {
        let name = match attempt {
            1 => format!("ferry-{stamp}.log"),
            _ => format!("ferry-{stamp}-{attempt}.log"),
        };
        let path = folder.join(name);
        match std::fs::OpenOptions::new()
            .write(true)
            .create_new(true)
            .open(&path)
        {
            Ok(file) => return Ok((path, file)),
            Err(cause) if cause.kind() == std::io::ErrorKind::AlreadyExists => continue,
            Err(cause) => return Err(format!("cannot write {}: {cause}", path.display())),
        }
    }
    Err(format!("cannot name a log file in {}", folder.display()))
}

/// Installs the global subscriber. With `logs_folder`, also writes the log
/// file there and returns its path (or why it could not be written).
pub fn init(level: &str, logs_folder: Option<&Path>) -> Result<Option<PathBuf>, String> {
    let stderr_level = match level {
        "trace" | "debug" | "error" => level,
        _ => "warn",
    };
    let file_level = match level {
        "trace" | "debug" | "error" => level,
        _ => "info",
    };
    use std::io::IsTerminal as _;
    let stderr_layer = tracing_subscriber::fmt::layer()
        .with_ansi(std::io::stderr().is_terminal())
        .with_writer(std::io::stderr)
        .with_filter(filter(stderr_level));
    let Some(folder) = logs_folder else {
        let _ = tracing_subscriber::registry().with(stderr_layer).try_init();
        return Ok(None);
    };
    std::fs::create_dir_all(folder)
        .map_err(|cause| format!("cannot create {}: {cause}", folder.display()))?;
    let (path, file) = new_log_file(folder, &timestamp())?;
    let file_layer = tracing_subscriber::fmt::layer()
        .with_ansi(false)
        .with_writer(std::sync::Mutex::new(file))
        .with_filter(filter(file_level));
    let _ = tracing_subscriber::registry()
        .with(stderr_layer)
        .with(file_layer)
        .try_init();
    Ok(Some(path))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn runs_in_the_same_second_get_logs_of_their_own() {
        let folder = tempfile::tempdir().unwrap();
        let (first, _) = new_log_file(folder.path(), "20261202_040000").unwrap();
        let (second, _) = new_log_file(folder.path(), "20261202_040000").unwrap();
        let (third, _) = new_log_file(folder.path(), "20261202_040000").unwrap();
        assert_eq!(first.file_name().unwrap(), "ferry-20261202_040000.log");
        assert_eq!(second.file_name().unwrap(), "ferry-20261202_040000-2.log");
        assert_eq!(third.file_name().unwrap(), "ferry-20261202_040000-3.log");
    }
}
