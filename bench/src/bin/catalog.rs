//! Catalog load-and-filter benchmark (issue 10).
//!
//! Setup: a generated file-based catalog of at least 100 MB (400 packages,
//! one `catalog.json` JSON stream each, like `opm render` writes: indented
//! objects, bundles carrying large `olm.bundle.object` values), written
//! deterministically to a temporary folder.
//!
//! Measured, in a child process limited to 2 threads (3 rounds; median time,
//! highest peak): reading the files, loading the catalog, filtering it with
//! oc-mirror's default (every channel head), writing the filtered catalog as
//! JSON and listing the kept bundles' images. The child reports its own peak
//! resident memory (`VmHWM`).
//!
//! Goals: at least 200 MB/s end to end; peak memory at most 1.5x the
//! catalog's size + 50 MiB.

use std::io::Write as _;
use std::path::Path;
use std::process::{Command, ExitCode};
use std::time::Instant;

use ferry_bench::report::{self, Goal};
use ferry_content::catalog::{self, Catalog, CatalogFile};
use ferry_testworld::error::{Context, Error, Result};

const PACKAGES: usize = 400;
const CHANNELS: usize = 3;
const BUNDLES_PER_PACKAGE: usize = 12;
/// Bytes of generated `olm.bundle.object` data per bundle (base64 text).
const OBJECT_BYTES: usize = 22_000;
const ROUNDS: usize = 3;
const THREADS: usize = 2;
const SPEED_GOAL_MB_PER_SECOND: f64 = 200.0;
const MEMORY_GOAL_FACTOR: f64 = 1.5;
const MEMORY_GOAL_EXTRA_MIB: f64 = 50.0;

fn main() -> ExitCode {
    let arguments: Vec<String> = std::env::args().skip(1).collect();
    match arguments.as_slice() {
        [] => ferry_bench::finish(run()),
        [mode, folder] if mode == "--measure" => ferry_bench::finish(measure(Path::new(folder))),
        _ => {
            eprintln!("usage: catalog (no arguments)");
            ExitCode::from(2)
        }
    }
}

fn run() -> Result<()> {
    let folder = tempfile::tempdir().context(|| "creating a temporary folder".to_owned())?;
    let started = Instant::now();
    let size = generate(folder.path())?;
    println!(
        "generated catalog: {PACKAGES} packages, {} bundles, {:.1} MB in {:.1} s",
        PACKAGES * BUNDLES_PER_PACKAGE,
        size as f64 / 1e6,
        started.elapsed().as_secs_f64()
    );
    let program = std::env::current_exe().context(|| "finding this program".to_owned())?;
    let mut times = Vec::new();
    let mut peaks = Vec::new();
    let mut rows = Vec::new();
    for round in 1..=ROUNDS {
        let output = Command::new(&program)
            .arg("--measure")
            .arg(folder.path())
            .output()
            .context(|| format!("running {}", program.display()))?;
        if !output.status.success() {
            return Err(Error::new(format!(
                "the measuring child failed: {}",
                String::from_utf8_lossy(&output.stderr)
            )));
        }
        let text = String::from_utf8_lossy(&output.stdout);
        let mut fields = text.split_whitespace();
        let (Some(seconds), Some(peak_kib), Some(kept)) =
            (fields.next(), fields.next(), fields.next())
        else {
            return Err(Error::new(format!("unexpected child output {text:?}")));
        };
        let seconds: f64 = seconds
            .parse()
            .map_err(|_| Error::new(format!("bad time {seconds}")))?;
        let peak_kib: f64 = peak_kib
            .parse()
            .map_err(|_| Error::new(format!("bad peak {peak_kib}")))?;
        rows.push(vec![
            format!("round {round}"),
            report::seconds(seconds),
            format!("{:.0}", size as f64 / 1e6 / seconds),
            format!("{:.1}", peak_kib / 1024.0),
            kept.to_owned(),
        ]);
        times.push(seconds);
        peaks.push(peak_kib);
    }
    print!(
        "{}",
        report::table(
            &["run", "seconds", "MB/s", "peak MiB", "kept bundles"],
            &rows
        )
    );
    times.sort_by(f64::total_cmp);
    let median = times[times.len() / 2];
    let speed = size as f64 / 1e6 / median;
    let peak_mib = peaks.iter().copied().fold(0.0, f64::max) / 1024.0;
    let size_mib = size as f64 / 1048576.0;
    let allowed_mib = MEMORY_GOAL_FACTOR * size_mib + MEMORY_GOAL_EXTRA_MIB;
    println!(
        "median {:.2} s = {speed:.0} MB/s ({:.2}x the goal); peak {peak_mib:.1} MiB = {:.2}x the catalog's {size_mib:.1} MiB (allowed {allowed_mib:.1} MiB, {:.2}x of it)",
        median,
        speed / SPEED_GOAL_MB_PER_SECOND,
        peak_mib / size_mib,
        peak_mib / allowed_mib,
    );
    for goal in [
        Goal::new(
            format!(
                "catalog load and filter at >= {SPEED_GOAL_MB_PER_SECOND:.0} MB/s on {THREADS} threads"
            ),
            format!("{speed:.0} MB/s"),
            speed >= SPEED_GOAL_MB_PER_SECOND,
        ),
        Goal::new(
            format!(
                "peak memory <= {MEMORY_GOAL_FACTOR}x catalog + {MEMORY_GOAL_EXTRA_MIB:.0} MiB"
            ),
            format!("{peak_mib:.1} MiB of {allowed_mib:.1} MiB allowed"),
            peak_mib <= allowed_mib,
        ),
    ] {
        println!("{}", goal.line());
    }
    Ok(())
}

/// The child: reads, loads, filters, writes and lists images, then prints
/// `seconds peak_kib kept_bundles`.
fn measure(folder: &Path) -> Result<()> {
    rayon::ThreadPoolBuilder::new()
        .num_threads(THREADS)
        .build_global()
        .map_err(|error| Error::new(format!("starting the thread pool: {error}")))?;
    let started = Instant::now();
    let mut paths = Vec::new();
    for entry in std::fs::read_dir(folder).context(|| format!("listing {}", folder.display()))? {
        let package = entry.context(|| "listing the catalog".to_owned())?.path();
        paths.push(package.join("catalog.json"));
    }
    let files: Vec<CatalogFile> = {
        use rayon::prelude::*;
        paths
            .par_iter()
            .map(|path| {
                let bytes =
                    std::fs::read(path).context(|| format!("reading {}", path.display()))?;
                let relative = path
                    .strip_prefix(folder)
                    .unwrap_or(path)
                    .to_string_lossy()
                    .into_owned();
                Ok(CatalogFile::new(relative, bytes))
            })
            .collect::<Result<Vec<_>>>()?
    };
    let loaded = Catalog::load(files).map_err(|error| Error::new(error.to_string()))?;
    let operator = ferry_schemas::load_image_set_configuration(
        "kind: ImageSetConfiguration\napiVersion: mirror.openshift.io/v2alpha1\nmirror:\n  operators:\n  - catalog: registry.example.com/bench/catalog:latest\n",
    )
    .map_err(|problems| Error::new(format!("{problems:?}")))?
    .config
    .mirror
    .operators
    .remove(0);
    let filtered =
        catalog::filter(&loaded, &operator).map_err(|error| Error::new(error.to_string()))?;
    let written = filtered.to_json(&loaded);
    let images = catalog::bundle_images(&loaded, &filtered)
        .map_err(|error| Error::new(error.to_string()))?;
    let seconds = started.elapsed().as_secs_f64();
    if written.is_empty() || images.is_empty() {
        return Err(Error::new("the filter kept nothing".to_owned()));
    }
    let peak =
        own_peak_kib().ok_or_else(|| Error::new("no VmHWM in /proc/self/status".to_owned()))?;
    println!("{seconds:.4} {peak} {}", filtered.bundles.len());
    Ok(())
}

fn own_peak_kib() -> Option<u64> {
    let status = std::fs::read_to_string("/proc/self/status").ok()?;
    status
        .lines()
        .find(|line| line.starts_with("VmHWM:"))?
        .split_whitespace()
        .nth(1)?
        .parse()
        .ok()
}

/// Writes the catalog; returns its size in bytes.
fn generate(folder: &Path) -> Result<u64> {
    let mut random = 0x9e37_79b9_7f4a_7c15_u64;
    let mut size = 0;
    for package in 0..PACKAGES {
        let name = format!("operator-{package:03}");
        let dir = folder.join(&name);
        std::fs::create_dir_all(&dir).context(|| format!("creating {}", dir.display()))?;
        let mut text = Vec::new();
        write_package(&mut text, &name, &mut random);
        std::fs::File::create(dir.join("catalog.json"))
            .and_then(|mut file| file.write_all(&text))
            .context(|| format!("writing {}", dir.display()))?;
        size += text.len() as u64;
    }
    Ok(size)
}

fn write_package(out: &mut Vec<u8>, name: &str, random: &mut u64) {
    let pretty = |value: serde_json::Value| serde_json::to_vec_pretty(&value).unwrap_or_default();
    out.extend(pretty(serde_json::json!({
        "schema": "olm.package",
        "name": name,
        "defaultChannel": "stable",
        "description": format!("{name} is a generated operator"),
    })));
    out.push(b'\n');
    let version = |bundle: usize| format!("1.{}.{}", bundle / 4, bundle % 4);
    let bundle_name = |bundle: usize| format!("{name}.v{}", version(bundle));
    for channel in 0..CHANNELS {
        let channel_name = ["stable", "fast", "candidate"][channel % 3];
        // Each channel holds the bundles from `channel` on, a replaces chain
        // with a skip every fourth bundle.
        let entries: Vec<serde_json::Value> = (channel..BUNDLES_PER_PACKAGE)
            .map(|bundle| {
                let mut entry = serde_json::json!({
                    "name": bundle_name(bundle),
                    "skipRange": format!(">=1.0.0 <{}", version(bundle)),
                });
                if bundle > channel {
                    entry["replaces"] = bundle_name(bundle - 1).into();
                }
                if bundle % 4 == 3 && bundle >= channel + 2 {
                    entry["skips"] = serde_json::json!([bundle_name(bundle - 2)]);
                }
                entry
            })
            .collect();
        out.extend(pretty(serde_json::json!({
            "schema": "olm.channel",
            "package": name,
            "name": channel_name,
            "entries": entries,
        })));
        out.push(b'\n');
    }
    for bundle in 0..BUNDLES_PER_PACKAGE {
        let data: String = (0..OBJECT_BYTES)
            .map(|_| {
                *random ^= *random << 13;
                *random ^= *random >> 7;
                *random ^= *random << 17;
                const ALPHABET: &[u8] =
                    b"ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789+/";
                ALPHABET[(*random % 64) as usize] as char
            })
            .collect();
        let version = version(bundle);
        out.extend(pretty(serde_json::json!({
            "schema": "olm.bundle",
            "name": bundle_name(bundle),
            "package": name,
            "image": format!("registry.example.com/{name}/bundle@sha256:{:064x}", bundle + 1),
            "properties": [
                {"type": "olm.gvk", "value": {"group": format!("{name}.example.com"), "kind": "Thing", "version": "v1"}},
                {"type": "olm.package", "value": {"packageName": name, "version": version}},
                {"type": "olm.bundle.object", "value": {"data": data}},
            ],
            "relatedImages": [
                {"name": "operator", "image": format!("registry.example.com/{name}/operator:v{version}")},
                {"name": "operand", "image": format!("registry.example.com/{name}/operand:v{version}")},
            ],
        })));
        out.push(b'\n');
    }
}
