//! Soak (issue 14): a set of small images mirrored registry to registry by
//! `ferry mirror` (the release binary) through the test world's fault
//! proxy, which at once drops connections (bodies cut half-way), answers
//! 500, throttles (429 with `Retry-After: 1`) and stalls answers for
//! longer than ferry's header timeout, at random from a fixed seed.
//!
//! The same set is first mirrored without faults (through the same proxy,
//! to another destination) to count the requests a clean run makes. Goals:
//! the faulty run finishes in one go (exit 0) before its deadline; every
//! image at its destination has the source's exact manifest bytes (its
//! digest; `skopeo inspect --raw` of each image) and `ferry plan --verify`
//! finds every blob there; it makes at most
//! [`REQUEST_FACTOR`] times the clean run's requests. Everything runs on
//! 127.0.0.1.
//!
//! `soak` runs [`IMAGES`] images; `soak N` runs N (at least 200 for the
//! goal of issue 14).

use std::path::Path;
use std::process::ExitCode;
use std::time::Duration;

use ferry_bench::image_sets::{self, SetImage};
use ferry_bench::measure::Logs;
use ferry_bench::report::{self, Goal};
use ferry_bench::tools::{self, FerryJob};
use ferry_testworld::error::{Context, Error, Result};
use ferry_testworld::proxy::{FaultProxy, Faults, Injected, RandomFaults};

/// Images mirrored by default.
const IMAGES: usize = 240;
/// Tags per repository.
const TAGS_PER_REPOSITORY: usize = 8;
/// The faulty run is stopped (and the soak fails) after this long.
const DEADLINE: Duration = Duration::from_secs(15 * 60);
/// The faulty run may make at most this many times the clean run's requests.
const REQUEST_FACTOR: f64 = 2.0;
/// ferry's timeouts in the faulty run: a stall lasts [`STALL`], longer.
const TIMEOUT: &str = "1s";
const STALL: Duration = Duration::from_secs(3);

fn faults() -> RandomFaults {
    RandomFaults {
        seed: 14,
        cut_per_mille: 30,
        error_per_mille: 30,
        throttle_per_mille: 20,
        stall_per_mille: 10,
        stall: STALL,
    }
}

fn main() -> ExitCode {
    let images = match std::env::args().nth(1).map(|text| text.parse::<usize>()) {
        None => IMAGES,
        Some(Ok(count)) if count > 0 => count,
        Some(_) => {
            eprintln!("usage: soak [IMAGES]");
            return ExitCode::from(2);
        }
    };
    ferry_bench::finish(run(images))
}

fn run(images: usize) -> Result<()> {
    ferry_bench::preflight()?;
    let folder = ferry_bench::scratch_folder("soak")?;
    let result = soak(images, folder.path());
    ferry_bench::keep_on_failure(folder, result)
}

/// What the two runs measured.
struct Measured {
    images: usize,
    clean_seconds: f64,
    clean_requests: usize,
    faulty_seconds: f64,
    faulty_requests: usize,
    injected: Injected,
    /// Retries ferry logged in the faulty run.
    retries_logged: usize,
    verified: usize,
}

fn soak(images: usize, folder: &Path) -> Result<()> {
    let machine = ferry_bench::machine_note();
    let logs = Logs::new(&folder.join("logs"))?;
    let mut set = image_sets::small("soak", "ferry-bench-soak", images, TAGS_PER_REPOSITORY);
    let source = ferry_bench::serve(&mut set)?;
    let proxy =
        FaultProxy::start(source.address()).context(|| "starting the fault proxy".to_owned())?;
    let clean_destination = ferry_bench::destination()?;
    let faulty_destination = ferry_bench::destination()?;
    let clean = FerryJob::new(
        tools::ferry_binary()?,
        &folder.join("clean"),
        &set,
        &proxy.host(),
        &clean_destination.host(),
    )?;
    let faulty = FerryJob::new(
        tools::ferry_binary()?,
        &folder.join("faulty"),
        &set,
        &proxy.host(),
        &faulty_destination.host(),
    )?;

    eprintln!("soak: clean run ({images} images, no faults)...");
    proxy.arm(Faults::default());
    proxy.clear();
    let clean_run = logs.run("soak-clean", &mut clean.command("mirror", "workspace", &[]))?;
    let clean_requests = proxy.records().len();

    eprintln!(
        "soak: faulty run (drops, 500s, 429s and {} s stalls at once; --header-timeout {TIMEOUT} --stall-timeout {TIMEOUT})...",
        STALL.as_secs()
    );
    proxy.clear();
    proxy.arm(Faults {
        random: Some(faults()),
        ..Faults::default()
    });
    let faulty_run = logs
        .run_with_deadline(
            "soak-faulty",
            &mut faulty.command(
                "mirror",
                "workspace",
                &["--header-timeout", TIMEOUT, "--stall-timeout", TIMEOUT],
            ),
            Some(DEADLINE),
        )?
        .ok_or_else(|| {
            Error::new(format!(
                "the faulty run was still going after {} s",
                DEADLINE.as_secs()
            ))
        })?;
    let faulty_requests = proxy.records().len();
    let injected = proxy.injected();
    proxy.arm(Faults::default());

    eprintln!("soak: checking every image at the destination...");
    let every: Vec<&SetImage> = set.images.iter().collect();
    let verified =
        tools::verify_destination("ferry mirror", &set, &faulty_destination.host(), &every)?;
    let check = logs.run(
        "soak-verify",
        &mut faulty.command("plan", "workspace", &["--verify"]),
    )?;
    tools::require_nothing_to_do(
        "`ferry plan --verify` after the faulty run",
        &format!("{}{}", check.stdout, check.stderr),
    )?;
    let retries_logged = faulty_run
        .stderr
        .lines()
        .filter(|line| line.contains("WARN") && line.contains("; retry "))
        .count();
    print_report(
        &Measured {
            images,
            clean_seconds: clean_run.seconds,
            clean_requests,
            faulty_seconds: faulty_run.seconds,
            faulty_requests,
            injected,
            retries_logged,
            verified,
        },
        &machine,
    );
    Ok(())
}

fn print_report(measured: &Measured, machine: &str) {
    let Measured {
        images,
        clean_seconds,
        clean_requests,
        faulty_seconds,
        faulty_requests,
        injected,
        retries_logged,
        verified,
    } = measured;
    let random = faults();
    println!(
        "soak: {images} images mirrored registry to registry on 127.0.0.1 through the fault proxy (per thousand requests: {} cut, {} 500, {} 429, {} stalled {} s; seed {})",
        random.cut_per_mille,
        random.error_per_mille,
        random.throttle_per_mille,
        random.stall_per_mille,
        random.stall.as_secs(),
        random.seed
    );
    println!("{machine}");
    print!(
        "{}",
        report::table(
            &[
                "run",
                "seconds",
                "requests",
                "faults injected",
                "retries logged"
            ],
            &[
                vec![
                    "clean".to_owned(),
                    report::seconds(*clean_seconds),
                    clean_requests.to_string(),
                    "0".to_owned(),
                    "-".to_owned(),
                ],
                vec![
                    "faulty".to_owned(),
                    report::seconds(*faulty_seconds),
                    faulty_requests.to_string(),
                    format!(
                        "{} ({} cut, {} 500, {} 429, {} stalls)",
                        injected.cuts + injected.errors + injected.throttles + injected.stalls,
                        injected.cuts,
                        injected.errors,
                        injected.throttles,
                        injected.stalls
                    ),
                    retries_logged.to_string(),
                ],
            ],
        )
    );
    let faults = injected.cuts + injected.errors + injected.throttles + injected.stalls;
    println!(
        "{}",
        Goal::new(
            format!(
                "soak: at least 200 images, every one right at the destination, in one run under {} s, with faults of every kind",
                DEADLINE.as_secs()
            ),
            format!(
                "{verified} of {images} checked; {faults} faults; {:.1} s",
                faulty_seconds
            ),
            *images >= 200
                && verified == images
                && injected.cuts > 0
                && injected.errors > 0
                && injected.throttles > 0
                && injected.stalls > 0
        )
        .line()
    );
    let ratio = *faulty_requests as f64 / (*clean_requests).max(1) as f64;
    println!(
        "{}",
        Goal::new(
            format!("soak: at most {REQUEST_FACTOR}x the clean run's requests"),
            format!("{ratio:.2}x ({faulty_requests} vs {clean_requests})"),
            ratio <= REQUEST_FACTOR
        )
        .line()
    );
}
