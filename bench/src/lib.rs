//! ferry's benchmarks against skopeo (issues 3, 4 and 5), run by `bench/run`
//! and never by CI. Each benchmark is a binary (`transfer`, `sync`,
//! `noop10k`, `disk`) that generates its images deterministically, serves them
//! from a loopback `docker-registry`, runs ferry's release binary and
//! skopeo on the same content in the same run, checks the copies, and
//! prints a table and one `goals:` line per goal. `catalog` (issue 10)
//! needs no registry: it loads and filters a generated operator catalog.
//!
//! This library holds what they share: the generated image sets
//! (`image_sets`), timed child processes (`measure`), the two tools'
//! command lines and the destination check (`tools`), and the output
//! (`report`).

use std::process::ExitCode;
use std::time::Instant;

use ferry_testworld::error::{Context, Error, Result};
use ferry_testworld::registry::{Flavour, Registry, Storage, registry_program_check};
use ferry_testworld::world::require_program;

pub mod floor;
pub mod image_sets;
pub mod measure;
pub mod report;
pub mod tools;

/// Fails clearly when a program the benchmarks run is missing.
pub fn preflight() -> Result<()> {
    registry_program_check()?;
    require_program("skopeo", "skopeo")?;
    let ferry = tools::ferry_binary()?;
    measure::gnu_time()?;
    eprintln!("ferry binary: {}", ferry.display());
    Ok(())
}

/// Publishes `set` (or finds it in the world cache), warms the page cache
/// over it and starts a read-only plain-HTTP registry serving it.
pub fn serve(set: &mut image_sets::ImageSet) -> Result<Registry> {
    let started = Instant::now();
    let images = set.images.len();
    let bytes = set.unique_blob_bytes;
    let storage = set.publish()?;
    let warmed = measure::warm_page_cache(&storage.root)?;
    eprintln!(
        "{}: {images} images, {:.1} MiB of distinct blobs, storage {} ({}, {:.1} MiB read to warm the page cache, {:.1} s)",
        set.name,
        bytes as f64 / 1048576.0,
        storage.root.display(),
        if storage.built_now {
            "published now"
        } else {
            "found in the world cache"
        },
        warmed as f64 / 1048576.0,
        started.elapsed().as_secs_f64()
    );
    Registry::start(Flavour::PlainHttp, Storage::Shared(storage.root))
}

/// A temporary folder for one benchmark's configurations, workspaces and
/// logs.
pub fn scratch_folder(benchmark: &str) -> Result<tempfile::TempDir> {
    tempfile::Builder::new()
        .prefix(&format!("ferry-bench-{benchmark}-"))
        .tempdir()
        .context(|| "creating a temporary folder".to_owned())
}

/// Removes the folder when the benchmark succeeded; keeps it (and says
/// where) when it failed, so the logs of the failed run can be read.
pub fn keep_on_failure<T>(folder: tempfile::TempDir, result: Result<T>) -> Result<T> {
    match result {
        Ok(value) => Ok(value),
        Err(error) => {
            let path = folder.keep();
            Err(Error::new(format!(
                "{error}\n(logs, configurations and workspaces of this run are kept in {})",
                path.display()
            )))
        }
    }
}

/// A fresh, empty, writable destination registry.
pub fn destination() -> Result<Registry> {
    Registry::start(Flavour::PlainHttp, Storage::Empty)
}

/// A line saying how busy the machine was when a benchmark started (the
/// timings are wall-clock; other work on the machine slows both tools).
pub fn machine_note() -> String {
    let cores = std::thread::available_parallelism().map_or(0, usize::from);
    let load = std::fs::read_to_string("/proc/loadavg")
        .ok()
        .and_then(|text| text.split_whitespace().next().map(str::to_owned))
        .unwrap_or_else(|| "unknown".to_owned());
    format!("machine: {cores} cores, load average {load} when the benchmark started")
}

/// Exit status of a benchmark: 0 when it ran to the end (goals missed or
/// not: the `goals:` lines say which), 1 with the error otherwise.
pub fn finish(result: Result<()>) -> ExitCode {
    match result {
        Ok(()) => ExitCode::SUCCESS,
        Err(error) => {
            eprintln!("error: {error}");
            ExitCode::FAILURE
        }
    }
}
