//! `ferry cache verify|prune`: look after the content cache (where it is:
//! `cache_location.rs`).

use std::path::PathBuf;
use std::process::ExitCode;

use ferry_store::Cache;

use crate::cache_location::{chosen_cache_folder_here, default_cache_dir};
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
