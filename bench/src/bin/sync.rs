//! Sync benchmark (issue 4): two generated image sets mirrored between two
//! loopback `docker-registry` instances by `ferry mirror` (the release
//! binary, a fresh workspace) and by `skopeo sync --src yaml` (a fresh
//! destination), in the same run, then the no-op rerun of each tool on the
//! same data.
//!
//! - `large`: 60 images in 20 repositories sharing three 40 MiB base layers,
//!   each with its own 3 MiB layer (300 MiB of distinct blobs); goal: ferry
//!   at least 3x faster than skopeo sync.
//! - `small`: 1,000 images of a few KiB sharing a base layer; goal: 10x.
//! - Both: ferry's default no-op rerun (it checks the destination) at most
//!   a tenth of skopeo sync's no-op rerun.
//!
//! ferry reaches the source through a generated `registries.conf`
//! (`quay.io` → the loopback registry); skopeo sync cannot remap source
//! names, so its YAML names the loopback registry directly. The content is
//! the same. After ferry's first run every image of the large set and a
//! sample of the small one are checked at the destination with
//! `skopeo inspect --raw` against the source's manifest bytes (a sample of
//! skopeo's copies too); the no-op reruns must say there was nothing to do.
//!
//! Each set is also copied a third time by the floor (`ferry_bench::floor`):
//! the least work the registries must do for the same set (every distinct
//! blob read once and written once, a mount for each other repository,
//! one manifest PUT per image, 16 requests at a time, nothing asked), into
//! a third fresh destination. ferry's first run is reported as a multiple
//! of it; the goal is at most 1.15x.
//!
//! `sync` runs both sets; `sync large` or `sync small` runs one.

use std::path::Path;
use std::process::ExitCode;
use std::time::Duration;

use ferry_bench::floor::{self, Floor};
use ferry_bench::image_sets::{self, ImageSet, SetImage};
use ferry_bench::measure::{Logs, Run, repeat_while_quick};
use ferry_bench::report::{self, Goal};
use ferry_bench::tools::{self, FerryJob};
use ferry_testworld::error::{Context, Result};

const SETS: [&str; 2] = ["large", "small"];
const SMALL_IMAGES: usize = 1000;
/// Images of the small set checked at ferry's destination.
const SMALL_SAMPLE: usize = 50;
/// Images checked at skopeo's destination (it is the reference, not under test).
const SKOPEO_SAMPLE: usize = 10;
/// No-op reruns are timed up to this many times each (median shown),
/// fewer when a run is slower than [`QUICK`].
const NOOP_ROUNDS: usize = 3;
const QUICK: Duration = Duration::from_secs(5);
/// ferry's default no-op rerun must take at most this share of skopeo's.
const NOOP_SHARE: f64 = 0.1;
/// ferry's first run must take at most this multiple of the floor's.
const FLOOR_MULTIPLE: f64 = 1.15;

fn main() -> ExitCode {
    let arguments: Vec<String> = std::env::args().skip(1).collect();
    if let Some(unknown) = arguments
        .iter()
        .find(|argument| !SETS.contains(&argument.as_str()))
    {
        eprintln!("unknown image set '{unknown}'; usage: sync [large] [small]");
        return ExitCode::from(2);
    }
    let chosen: Vec<&str> = if arguments.is_empty() {
        SETS.to_vec()
    } else {
        SETS.iter()
            .copied()
            .filter(|set| arguments.iter().any(|argument| argument == set))
            .collect()
    };
    ferry_bench::finish(run(&chosen))
}

/// What one set measured.
struct Measured {
    name: String,
    images: usize,
    repositories: usize,
    unique_blob_bytes: u64,
    ferry_first: Run,
    ferry_noop: Run,
    skopeo_first: Run,
    skopeo_noop: Run,
    /// How many no-op rounds ran (ferry, skopeo).
    noop_rounds: (usize, usize),
    /// `ferry plan` on another fresh workspace: the resolve and plan share
    /// of a first run.
    ferry_plan_only: Run,
    floor: Floor,
    verified: usize,
    speedup_goal: f64,
}

fn run(chosen: &[&str]) -> Result<()> {
    ferry_bench::preflight()?;
    let folder = ferry_bench::scratch_folder("sync")?;
    let result = run_sets(chosen, folder.path());
    ferry_bench::keep_on_failure(folder, result)
}

fn run_sets(chosen: &[&str], folder: &Path) -> Result<()> {
    let logs = Logs::new(&folder.join("logs"))?;
    for name in chosen {
        let machine = ferry_bench::machine_note();
        let (set, speedup_goal, sample) = match *name {
            "large" => (image_sets::large(), 3.0, None),
            _ => (
                image_sets::small("small", "ferry-bench-small", SMALL_IMAGES, 20),
                10.0,
                Some(SMALL_SAMPLE),
            ),
        };
        let measured = bench_set(set, speedup_goal, sample, &logs, folder)?;
        print_report(&measured, &machine);
    }
    Ok(())
}

fn bench_set(
    mut set: ImageSet,
    speedup_goal: f64,
    ferry_sample: Option<usize>,
    logs: &Logs,
    folder: &Path,
) -> Result<Measured> {
    let name = set.name.clone();
    let images = set.images.len();
    let repositories = set.tags_by_repository().len();
    let unique_blob_bytes = set.unique_blob_bytes;
    let source = ferry_bench::serve(&mut set)?;
    let ferry_destination = ferry_bench::destination()?;
    let skopeo_destination = ferry_bench::destination()?;
    let set_folder = folder.join(&name);
    let job = FerryJob::new(
        tools::ferry_binary()?,
        &set_folder,
        &set,
        &source.host(),
        &ferry_destination.host(),
    )?;
    let yaml = set_folder.join("skopeo-sync.yaml");
    std::fs::write(&yaml, tools::skopeo_sync_yaml(&set, &source.host()))
        .context(|| format!("writing {}", yaml.display()))?;
    // skopeo sync puts each repository at DESTINATION/<last component>:
    // with the namespace as destination, names match ferry's.
    let skopeo_target = format!("{}/{}", skopeo_destination.host(), set.namespace);

    eprintln!("{name}: ferry mirror ({images} images)...");
    let ferry_first = logs.run(
        &format!("{name}-ferry-mirror"),
        &mut job.command("mirror", "workspace", &[]),
    )?;
    let checked: Vec<&SetImage> = match ferry_sample {
        None => set.images.iter().collect(),
        Some(count) => set.sample(count),
    };
    let verified =
        tools::verify_destination("ferry mirror", &set, &ferry_destination.host(), &checked)?;
    eprintln!("{name}: ferry mirror no-op rerun (up to {NOOP_ROUNDS} times)...");
    let (ferry_noop, ferry_noop_rounds) = repeat_while_quick(NOOP_ROUNDS, QUICK, |round| {
        let noop = logs.run(
            &format!("{name}-ferry-mirror-noop-{round}"),
            &mut job.command("mirror", "workspace", &[]),
        )?;
        tools::require_nothing_to_do(
            "ferry's no-op rerun",
            &format!("{}{}", noop.stdout, noop.stderr),
        )?;
        Ok(noop)
    })?;

    eprintln!("{name}: skopeo sync ({images} images)...");
    let skopeo_first = logs.run(
        &format!("{name}-skopeo-sync"),
        &mut tools::skopeo_sync(&yaml, &skopeo_target),
    )?;
    tools::verify_destination(
        "skopeo sync",
        &set,
        &skopeo_destination.host(),
        &set.sample(SKOPEO_SAMPLE),
    )?;
    eprintln!("{name}: skopeo sync no-op rerun (up to {NOOP_ROUNDS} times)...");
    let (skopeo_noop, skopeo_noop_rounds) = repeat_while_quick(NOOP_ROUNDS, QUICK, |round| {
        logs.run(
            &format!("{name}-skopeo-sync-noop-{round}"),
            &mut tools::skopeo_sync(&yaml, &skopeo_target),
        )
    })?;
    eprintln!("{name}: ferry plan on a fresh workspace (how long resolving and planning take)...");
    let plan_only = FerryJob::new(
        tools::ferry_binary()?,
        &set_folder.join("plan-only"),
        &set,
        &source.host(),
        &skopeo_destination.host(),
    )?;
    let ferry_plan_only = logs.run(
        &format!("{name}-ferry-plan-only"),
        &mut plan_only.command("plan", "workspace", &[]),
    )?;
    eprintln!("{name}: the floor (every blob once, mounts, manifest PUTs, nothing asked)...");
    let floor_destination = ferry_bench::destination()?;
    let floor = floor::measure(&set, &source.host(), &floor_destination.host())?;
    tools::verify_destination(
        "the floor",
        &set,
        &floor_destination.host(),
        &set.sample(SKOPEO_SAMPLE),
    )?;
    Ok(Measured {
        name,
        images,
        repositories,
        unique_blob_bytes,
        ferry_first,
        ferry_noop,
        skopeo_first,
        skopeo_noop,
        noop_rounds: (ferry_noop_rounds, skopeo_noop_rounds),
        ferry_plan_only,
        floor,
        verified,
        speedup_goal,
    })
}

fn print_report(measured: &Measured, machine: &str) {
    let Measured {
        name,
        images,
        repositories,
        unique_blob_bytes,
        ferry_first,
        ferry_noop,
        skopeo_first,
        skopeo_noop,
        noop_rounds,
        ferry_plan_only,
        floor,
        verified,
        speedup_goal,
    } = measured;
    println!(
        "sync {name}: {images} images in {repositories} repositories, {:.1} MiB of distinct blobs, registry to registry on 127.0.0.1 (ferry: {verified} images checked byte for byte at the destination)",
        *unique_blob_bytes as f64 / 1048576.0
    );
    println!("{machine}");
    let row = |what: &str, ferry: &Run, skopeo: &Run| {
        vec![
            what.to_owned(),
            report::seconds(ferry.seconds),
            report::seconds(skopeo.seconds),
            report::times(skopeo.seconds, ferry.seconds),
            format!("{:.3}", ferry.seconds / skopeo.seconds),
        ]
    };
    print!(
        "{}",
        report::table(
            &[
                "run",
                "ferry mirror s",
                "skopeo sync s",
                "skopeo/ferry",
                "ferry/skopeo",
            ],
            &[
                row("first run (fresh destination)", ferry_first, skopeo_first),
                row(
                    &if noop_rounds.0 == noop_rounds.1 {
                        format!("no-op rerun (median of {})", noop_rounds.0)
                    } else {
                        format!(
                            "no-op rerun (medians of {} and {} runs)",
                            noop_rounds.0, noop_rounds.1
                        )
                    },
                    ferry_noop,
                    skopeo_noop
                ),
            ],
        )
    );
    println!(
        "of ferry's first run, resolving and planning alone take {:.2} s (`ferry plan` on another fresh workspace; the rest is copying and recording)",
        ferry_plan_only.seconds
    );
    let floor_seconds = floor.elapsed.as_secs_f64();
    println!(
        "the floor: {} blob uploads, {} mounts, {} manifest PUTs, {} at a time, nothing asked: {:.2} s (skopeo sync {:.2}x the floor)",
        floor.uploads,
        floor.mounts,
        floor.manifests,
        floor::IN_FLIGHT,
        floor_seconds,
        skopeo_first.seconds / floor_seconds
    );
    let multiple = ferry_first.seconds / floor_seconds;
    println!(
        "{}",
        Goal::new(
            format!("{name}: ferry mirror's first run at most {FLOOR_MULTIPLE}x the floor"),
            format!(
                "{multiple:.2}x: {:.2} s vs {floor_seconds:.2} s",
                ferry_first.seconds
            ),
            multiple <= FLOOR_MULTIPLE
        )
        .line()
    );
    let speedup = skopeo_first.seconds / ferry_first.seconds;
    println!(
        "{}",
        Goal::new(
            format!("{name}: ferry mirror at least {speedup_goal:.0}x faster than skopeo sync"),
            format!("{speedup:.2}x"),
            speedup >= *speedup_goal
        )
        .line()
    );
    let share = ferry_noop.seconds / skopeo_noop.seconds;
    println!(
        "{}",
        Goal::new(
            format!(
                "{name}: ferry's default no-op rerun at most {NOOP_SHARE} of skopeo sync's no-op"
            ),
            format!(
                "{share:.3}: {:.2} s vs {:.2} s",
                ferry_noop.seconds, skopeo_noop.seconds
            ),
            share <= NOOP_SHARE
        )
        .line()
    );
}
