//! `ferry cache verify|prune`: look after the content cache.
//!
//! Where the cache is, for every command ([`chosen_cache_folder`]): as
//! oc-mirror does, `--cache-dir DIR` and `$OC_MIRROR_CACHE` name a base
//! folder and the cache is a subfolder of it (`DIR/.ferry/cache`; oc-mirror's
//! own is `DIR/.oc-mirror/.cache`), so a home folder is never filled
//! directly; giving both is an error, as in oc-mirror. `$FERRY_CACHE_DIR`
//! names the cache folder itself. Without any of them:
//! `$XDG_CACHE_HOME/ferry`, else `~/.cache/ferry`.

use std::ffi::OsString;
use std::path::{Path, PathBuf};
use std::process::ExitCode;

use ferry_store::Cache;

use crate::exit_status;

/// Arguments of `ferry cache`.
#[derive(Debug, clap::Args)]
pub struct Args {
    #[command(subcommand)]
    command: CacheCommand,
}

#[derive(Debug, clap::Subcommand)]
enum CacheCommand {
    /// Re-hash every blob in the cache and report corrupt ones (and count
    /// temporary files interrupted runs left).
    Verify {
        /// Base folder of the cache (the cache is DIR/.ferry/cache, as
        /// oc-mirror keeps its own in DIR/.oc-mirror/.cache) [default:
        /// $OC_MIRROR_CACHE as a base folder, else $FERRY_CACHE_DIR as the
        /// cache itself, else ~/.cache/ferry]
        #[arg(long = "cache-dir", value_name = "DIR")]
        cache_dir: Option<PathBuf>,
        /// Remove corrupt blobs, so the next run fetches them again, and
        /// temporary files interrupted runs left.
        #[arg(long)]
        remove: bool,
    },
    /// Remove blobs that no recorded image needs.
    Prune {
        /// Base folder of the cache (the cache is DIR/.ferry/cache)
        /// [default: as for `cache verify`]
        #[arg(long = "cache-dir", value_name = "DIR")]
        cache_dir: Option<PathBuf>,
        /// Only say what would be removed.
        #[arg(long)]
        dry_run: bool,
    },
}

/// The default cache folder.
pub fn default_cache_dir() -> PathBuf {
    let environment = |name: &str| {
        std::env::var_os(name)
            .filter(|v| !v.is_empty())
            .map(PathBuf::from)
    };
    environment("XDG_CACHE_HOME")
        .map(|folder| folder.join("ferry"))
        .or_else(|| environment("HOME").map(|home| home.join(".cache/ferry")))
        .unwrap_or_else(|| PathBuf::from(".ferry-cache"))
}

/// The subfolder of a `--cache-dir` or `$OC_MIRROR_CACHE` base folder
/// that holds ferry's cache.
pub const CACHE_SUBFOLDER: &str = ".ferry/cache";

/// The cache folder the user chose, or `None` for the default: the
/// subfolder of `--cache-dir` (`flag`) or `$OC_MIRROR_CACHE`, else
/// `$FERRY_CACHE_DIR` itself. `variable` reads the environment (a
/// parameter so tests need not change the process's own).
pub fn chosen_cache_folder(
    flag: Option<&Path>,
    variable: impl Fn(&str) -> Option<OsString>,
) -> Result<Option<PathBuf>, String> {
    let variable = |name: &str| variable(name).filter(|value| !value.is_empty());
    let oc_mirror = variable("OC_MIRROR_CACHE");
    if flag.is_some() && oc_mirror.is_some() {
        return Err("either OC_MIRROR_CACHE or --cache-dir can be used but not both".to_owned());
    }
    if let Some(base) = flag.map(Path::to_path_buf).or(oc_mirror.map(PathBuf::from)) {
        return Ok(Some(base.join(CACHE_SUBFOLDER)));
    }
    Ok(variable("FERRY_CACHE_DIR").map(PathBuf::from))
}

/// [`chosen_cache_folder`] from the process's environment.
pub fn chosen_cache_folder_here(flag: Option<&Path>) -> Result<Option<PathBuf>, String> {
    chosen_cache_folder(flag, |name| std::env::var_os(name))
}

fn open(cache_dir: Option<PathBuf>) -> Result<Cache, ExitCode> {
    let folder = match chosen_cache_folder_here(cache_dir.as_deref()) {
        Ok(chosen) => chosen.unwrap_or_else(default_cache_dir),
        Err(message) => {
            eprintln!("error: {message}");
            return Err(ExitCode::from(exit_status::ERROR));
        }
    };
    Cache::open(&folder).map_err(|error| {
        eprintln!("error: cannot open the cache {}: {error}", folder.display());
        ExitCode::from(exit_status::ERROR)
    })
}

fn mebibytes(bytes: u64) -> String {
    format!("{:.1} MiB", bytes as f64 / (1024.0 * 1024.0))
}

pub fn run(args: Args) -> ExitCode {
    match args.command {
        CacheCommand::Verify { cache_dir, remove } => {
            let cache = match open(cache_dir) {
                Ok(cache) => cache,
                Err(code) => return code,
            };
            let report = match cache.verify(remove) {
                Ok(report) => report,
                Err(error) => {
                    eprintln!("error: {error}");
                    return exit_status::ERROR.into();
                }
            };
            let temporary = match (report.temporary_files, remove) {
                (0, _) => String::new(),
                (count, true) => format!(", {count} temporary files of interrupted runs removed"),
                (count, false) => format!(", {count} temporary files left by interrupted runs"),
            };
            println!(
                "{}: {} re-hashed ({}), {} corrupt, {} stray files{temporary}",
                cache.root().display(),
                crate::common::counted(report.checked as u64, "blob", "blobs"),
                mebibytes(report.bytes),
                report.corrupt.len(),
                report.strays.len()
            );
            for digest in &report.corrupt {
                let action = if remove { "removed" } else { "corrupt" };
                println!("  {action}: {digest}");
            }
            for path in &report.strays {
                let action = if remove { "removed" } else { "stray" };
                println!("  {action}: {}", path.display());
            }
            if (report.corrupt.is_empty() && report.strays.is_empty()) || remove {
                if report.temporary_files > 0 && !remove {
                    eprintln!(
                        "hint: the next run (or `ferry cache verify --remove`) removes the temporary files"
                    );
                }
                ExitCode::SUCCESS
            } else {
                eprintln!(
                    "hint: `ferry cache verify --remove` deletes them; the next run fetches them again"
                );
                exit_status::ERROR.into()
            }
        }
        CacheCommand::Prune { cache_dir, dry_run } => {
            let cache = match open(cache_dir) {
                Ok(cache) => cache,
                Err(code) => return code,
            };
            match cache.prune(dry_run) {
                Ok(report) => {
                    let (verb, cleaned) = if dry_run {
                        ("would remove", "would be cleaned")
                    } else {
                        ("removed", "cleaned")
                    };
                    println!(
                        "{}: kept {} blobs, {verb} {} ({}), {} temporary files of interrupted runs {cleaned}",
                        cache.root().display(),
                        report.kept,
                        report.removed.len(),
                        mebibytes(report.freed_bytes),
                        report.temporary_files
                    );
                    ExitCode::SUCCESS
                }
                Err(error) => {
                    eprintln!("error: {error}");
                    exit_status::ERROR.into()
                }
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn environment(pairs: &[(&str, &str)]) -> impl Fn(&str) -> Option<OsString> {
        let pairs: Vec<(String, String)> = pairs
            .iter()
            .map(|(name, value)| ((*name).to_owned(), (*value).to_owned()))
            .collect();
        move |name| {
            pairs
                .iter()
                .find(|(key, _)| key == name)
                .map(|(_, value)| OsString::from(value))
        }
    }

    #[test]
    fn cache_dir_and_oc_mirror_cache_name_a_base_folder_as_in_oc_mirror() {
        let flag = chosen_cache_folder(Some(Path::new("/home/me")), environment(&[])).unwrap();
        assert_eq!(flag, Some(PathBuf::from("/home/me/.ferry/cache")));
        let variable =
            chosen_cache_folder(None, environment(&[("OC_MIRROR_CACHE", "/data")])).unwrap();
        assert_eq!(variable, Some(PathBuf::from("/data/.ferry/cache")));
        let both = chosen_cache_folder(
            Some(Path::new("/home/me")),
            environment(&[("OC_MIRROR_CACHE", "/data")]),
        );
        assert_eq!(
            both.unwrap_err(),
            "either OC_MIRROR_CACHE or --cache-dir can be used but not both"
        );
    }

    #[test]
    fn ferry_cache_dir_names_the_cache_itself_and_comes_after_oc_mirror_cache() {
        let own = chosen_cache_folder(None, environment(&[("FERRY_CACHE_DIR", "/c")])).unwrap();
        assert_eq!(own, Some(PathBuf::from("/c")));
        let flag_first = chosen_cache_folder(
            Some(Path::new("/base")),
            environment(&[("FERRY_CACHE_DIR", "/c")]),
        )
        .unwrap();
        assert_eq!(flag_first, Some(PathBuf::from("/base/.ferry/cache")));
        let oc_mirror_first = chosen_cache_folder(
            None,
            environment(&[("FERRY_CACHE_DIR", "/c"), ("OC_MIRROR_CACHE", "/o")]),
        )
        .unwrap();
        assert_eq!(oc_mirror_first, Some(PathBuf::from("/o/.ferry/cache")));
        assert_eq!(
            chosen_cache_folder(None, environment(&[("OC_MIRROR_CACHE", "")])).unwrap(),
            None
        );
    }
}
