//! Logging of a run: warnings and errors on stderr (everything at `debug`
//! and `trace`), and for `mirror` and `apply` the whole log at the chosen
//! `--log-level` in `working-dir/logs/ferry-<YYYYMMDD_HHMMSS>.log` (UTC).
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
    let stderr_layer = tracing_subscriber::fmt::layer()
        .with_writer(std::io::stderr)
        .with_filter(filter(stderr_level));
    let Some(folder) = logs_folder else {
        let _ = tracing_subscriber::registry().with(stderr_layer).try_init();
        return Ok(None);
    };
    std::fs::create_dir_all(folder)
        .map_err(|cause| format!("cannot create {}: {cause}", folder.display()))?;
    let path = folder.join(format!("ferry-{}.log", timestamp()));
    let file = std::fs::OpenOptions::new()
        .create(true)
        .append(true)
        .open(&path)
        .map_err(|cause| format!("cannot write {}: {cause}", path.display()))?;
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
