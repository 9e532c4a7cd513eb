//! No-op benchmark over 10,000 recorded images (issue 4).
//!
//! Setup: 10,000 small generated images (500 repositories of 20 tags,
//! sharing a base layer) listed as `additionalImages`, mirrored once by
//! `ferry mirror` into a fresh registry and workspace (timed and printed,
//! not a goal; a sample checked byte for byte with `skopeo inspect --raw`).
//!
//! Then, on that workspace:
//! - `ferry plan --trust-state` (median of 3, or of fewer when a run takes
//!   over 5 s; goal: at most 0.25 s, issue 9: an image the workspace
//!   records complete with the same fingerprint is not compiled again),
//! - the floor of a default no-op (`ferry_bench::floor::noop`): the least
//!   the registries must answer, one HEAD per tag at the source and one
//!   per top manifest at the destination, 16 at a time, with ferry's
//!   registry client in this process (no state, no plan),
//! - the default `ferry plan` (it asks the source for every tag and the
//!   destination for every top manifest),
//! - the default `ferry mirror` no-op rerun,
//! - `skopeo sync` no-op over the same 10,000 images and the same
//!   destination (skopeo sync names each repository
//!   `DESTINATION/<last component>`, so with the namespace as destination
//!   its names are exactly ferry's; the run must add no repository).
//!   Stopped after `FERRY_BENCH_SKOPEO_DEADLINE` seconds (default 300),
//!   and then reported as skipped.
//!
//! Goal: ferry's default no-op at most a tenth of skopeo sync's no-op;
//! printed too: each run as a multiple of the floor (where 0.1x of skopeo
//! is out of reach because the registries' work is the limit, the floor
//! ratio is the figure that says how much ferry adds to it).
//! Every ferry run must say there was nothing to do.
//!
//! `FERRY_BENCH_HOLD=1` keeps the world for profiling: after the setup it
//! writes `FOLDER/rerun` (`rerun plan --trust-state` runs ferry on the
//! kept workspace and registries; `FERRY_BIN` picks another binary) and
//! waits until `FOLDER/stop` exists, measuring nothing.

use std::path::Path;
use std::process::ExitCode;
use std::time::Duration;

use ferry_bench::floor;
use ferry_bench::image_sets;
use ferry_bench::measure::{Logs, Run, repeat_while_quick};
use ferry_bench::report::{self, Goal};
use ferry_bench::tools::{self, FerryJob};
use ferry_testworld::error::{Context, Error, Result};

const IMAGES: usize = 10_000;
const TAGS_PER_REPOSITORY: usize = 20;
const SAMPLE: usize = 50;
/// `--trust-state` plans are timed up to this many times (median shown),
/// fewer when a run is slower than [`QUICK`].
const TRUST_STATE_ROUNDS: usize = 3;
const QUICK: Duration = Duration::from_secs(5);
const TRUST_STATE_GOAL_SECONDS: f64 = 0.25;
const NOOP_SHARE: f64 = 0.1;
const DEFAULT_SKOPEO_DEADLINE_SECONDS: u64 = 300;

fn main() -> ExitCode {
    if std::env::args().len() > 1 {
        eprintln!(
            "usage: noop10k (no arguments; FERRY_BENCH_SKOPEO_DEADLINE=SECONDS bounds skopeo sync)"
        );
        return ExitCode::from(2);
    }
    ferry_bench::finish(run())
}

fn skopeo_deadline() -> Result<Duration> {
    match std::env::var("FERRY_BENCH_SKOPEO_DEADLINE") {
        Ok(text) => text
            .trim()
            .parse::<u64>()
            .map(Duration::from_secs)
            .context(|| format!("FERRY_BENCH_SKOPEO_DEADLINE={text:?} is not a number of seconds")),
        Err(_) => Ok(Duration::from_secs(DEFAULT_SKOPEO_DEADLINE_SECONDS)),
    }
}

fn run() -> Result<()> {
    ferry_bench::preflight()?;
    let deadline = skopeo_deadline()?;
    let folder = ferry_bench::scratch_folder("noop10k")?;
    let result = measure_noops(folder.path(), deadline);
    ferry_bench::keep_on_failure(folder, result)
}

fn measure_noops(folder: &Path, deadline: Duration) -> Result<()> {
    let machine = ferry_bench::machine_note();
    let logs = Logs::new(&folder.join("logs"))?;
    let mut set = image_sets::small("10k", "ferry-bench-10k", IMAGES, TAGS_PER_REPOSITORY);
    let repositories = set.tags_by_repository().len();
    let source = ferry_bench::serve(&mut set)?;
    let destination = ferry_bench::destination()?;
    let job = FerryJob::new(
        tools::ferry_binary()?,
        &folder.join("ferry"),
        &set,
        &source.host(),
        &destination.host(),
    )?;
    let nothing_to_do = |label: &str, run: &Run| {
        tools::require_nothing_to_do(label, &format!("{}{}", run.stdout, run.stderr))
    };

    eprintln!("setup: ferry mirror of {IMAGES} images into a fresh workspace...");
    let setup = logs.run(
        "setup-ferry-mirror",
        &mut job.command("mirror", "workspace", &[]),
    )?;
    let checked = tools::verify_destination(
        "ferry mirror",
        &set,
        &destination.host(),
        &set.sample(SAMPLE),
    )?;
    eprintln!(
        "setup took {:.1} s; {checked} images checked",
        setup.seconds
    );

    if std::env::var_os("FERRY_BENCH_HOLD").is_some() {
        return hold(folder, &job, || {
            floor::noop(&set, &source.host(), &destination.host())
        });
    }

    eprintln!("ferry plan --trust-state (up to {TRUST_STATE_ROUNDS} times)...");
    let (trust_state, trust_state_rounds) =
        repeat_while_quick(TRUST_STATE_ROUNDS, QUICK, |round| {
            let run = logs.run(
                &format!("ferry-plan-trust-state-{round}"),
                &mut job.command("plan", "workspace", &["--trust-state"]),
            )?;
            nothing_to_do("ferry plan --trust-state", &run)?;
            Ok(run)
        })?;

    eprintln!(
        "the no-op floor (one HEAD per tag at the source, one per manifest at the destination)..."
    );
    let noop_floor = floor::noop(&set, &source.host(), &destination.host())?;
    let floor_seconds = noop_floor.elapsed.as_secs_f64();

    eprintln!("ferry plan (default: checks the destination)...");
    let default_plan = logs.run(
        "ferry-plan-default",
        &mut job.command("plan", "workspace", &[]),
    )?;
    nothing_to_do("ferry plan", &default_plan)?;

    eprintln!("ferry mirror no-op rerun...");
    let mirror_noop = logs.run(
        "ferry-mirror-noop",
        &mut job.command("mirror", "workspace", &[]),
    )?;
    nothing_to_do("ferry mirror (rerun)", &mirror_noop)?;

    eprintln!(
        "skopeo sync no-op over the same {IMAGES} images (stopped after {} s)...",
        deadline.as_secs()
    );
    let yaml = folder.join("skopeo-sync.yaml");
    std::fs::write(&yaml, tools::skopeo_sync_yaml(&set, &source.host()))
        .context(|| format!("writing {}", yaml.display()))?;
    let repositories_before = tools::repository_count(destination.storage_root())?;
    let skopeo = logs.run_with_deadline(
        "skopeo-sync-noop",
        &mut tools::skopeo_sync(&yaml, &format!("{}/{}", destination.host(), set.namespace)),
        Some(deadline),
    )?;
    let repositories_after = tools::repository_count(destination.storage_root())?;
    if repositories_after != repositories_before {
        return Err(Error::new(format!(
            "skopeo sync was meant to find ferry's repositories but created others ({repositories_before} before, {repositories_after} after): its no-op time would not be a no-op"
        )));
    }

    println!(
        "noop10k: {IMAGES} images in {repositories} repositories recorded in a workspace; setup (ferry mirror into a fresh registry) took {:.1} s, {checked} images checked byte for byte",
        setup.seconds
    );
    println!("{machine}");
    let skopeo_cell = match &skopeo {
        Some(run) => report::seconds(run.seconds),
        None => format!("skipped (over {} s)", deadline.as_secs()),
    };
    let ratio = |run: &Run| match &skopeo {
        Some(skopeo) => format!("{:.3}", run.seconds / skopeo.seconds),
        None => "n/a".to_owned(),
    };
    let over_floor = |seconds: f64| format!("{:.2}x", seconds / floor_seconds);
    print!(
        "{}",
        report::table(
            &["no-op run", "seconds", "ferry/skopeo", "x the floor"],
            &[
                vec![
                    format!("ferry plan --trust-state (median of {trust_state_rounds})"),
                    report::seconds(trust_state.seconds),
                    ratio(&trust_state),
                    String::new(),
                ],
                vec![
                    "ferry plan (default, checks the destination)".to_owned(),
                    report::seconds(default_plan.seconds),
                    ratio(&default_plan),
                    over_floor(default_plan.seconds),
                ],
                vec![
                    "ferry mirror (default rerun)".to_owned(),
                    report::seconds(mirror_noop.seconds),
                    ratio(&mirror_noop),
                    over_floor(mirror_noop.seconds),
                ],
                vec![
                    "skopeo sync".to_owned(),
                    skopeo_cell,
                    String::new(),
                    skopeo
                        .as_ref()
                        .map_or_else(String::new, |run| over_floor(run.seconds)),
                ],
                vec![
                    format!(
                        "the floor: {} HEADs at the source, {} at the destination, {} at a time",
                        noop_floor.source_heads,
                        noop_floor.destination_heads,
                        floor::IN_FLIGHT
                    ),
                    report::seconds(floor_seconds),
                    String::new(),
                    "1.00x".to_owned(),
                ],
            ],
        )
    );
    if skopeo.is_none() {
        println!(
            "skopeo sync no-op skipped: it did not finish within {} s and was stopped (FERRY_BENCH_SKOPEO_DEADLINE raises the limit)",
            deadline.as_secs()
        );
    }
    println!(
        "{}",
        Goal::new(
            format!("ferry plan --trust-state over {IMAGES} images at most {TRUST_STATE_GOAL_SECONDS:.2} s"),
            format!("{:.2} s", trust_state.seconds),
            trust_state.seconds <= TRUST_STATE_GOAL_SECONDS
        )
        .line()
    );
    for (what, run) in [
        ("ferry plan (default)", &default_plan),
        ("ferry mirror no-op rerun", &mirror_noop),
    ] {
        let goal = format!("{what} at most {NOOP_SHARE} of skopeo sync's no-op");
        let line = match &skopeo {
            Some(skopeo) => {
                let share = run.seconds / skopeo.seconds;
                Goal::new(
                    goal,
                    format!(
                        "{share:.3}: {:.2} s vs {:.2} s",
                        run.seconds, skopeo.seconds
                    ),
                    share <= NOOP_SHARE,
                )
            }
            None => {
                // skopeo took longer than the deadline: the share is below
                // this bound, which settles the goal only when it is low enough.
                let bound = run.seconds / deadline.as_secs_f64();
                Goal::new(
                    goal,
                    format!(
                        "below {bound:.3}: {:.2} s vs skopeo sync over {} s",
                        run.seconds,
                        deadline.as_secs()
                    ),
                    bound <= NOOP_SHARE,
                )
            }
        };
        println!("{}", line.line());
    }
    Ok(())
}

/// Keeps the world (registries and workspace) for reruns by hand: writes
/// `FOLDER/rerun SUBCOMMAND [FLAGS...]` and waits for `FOLDER/stop`;
/// measures the no-op floor (stderr) each time `FOLDER/floor` appears.
fn hold(
    folder: &Path,
    job: &FerryJob,
    measure_floor: impl Fn() -> Result<floor::NoopFloor>,
) -> Result<()> {
    let script = folder.join("rerun");
    std::fs::write(&script, tools::rerun_script(job))
        .context(|| format!("writing {}", script.display()))?;
    let (stop, floor_request) = (folder.join("stop"), folder.join("floor"));
    eprintln!(
        "holding the world: run `sh {}` SUBCOMMAND [FLAGS...]; `touch {}` measures the no-op floor, `touch {}` ends the benchmark",
        script.display(),
        floor_request.display(),
        stop.display()
    );
    while !stop.exists() {
        if std::fs::remove_file(&floor_request).is_ok() {
            let measured = measure_floor()?;
            eprintln!(
                "the no-op floor: {:.2} s ({} + {} HEADs)",
                measured.elapsed.as_secs_f64(),
                measured.source_heads,
                measured.destination_heads
            );
        }
        std::thread::sleep(Duration::from_millis(500));
    }
    Ok(())
}
