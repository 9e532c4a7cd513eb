//! Transfer benchmark (issue 3): one image with a 256 MiB layer copied from
//! a loopback `docker-registry` to fresh ones, in the same run, by
//!
//! - ferry's registry client (`RegistryClient::copy_blob`, streaming and
//!   verifying, in a child process: this binary re-run as `client-copy`),
//! - `ferry mirror` (the release binary, fresh workspace), and
//! - `skopeo copy`.
//!
//! Prints seconds, MiB/s and peak resident memory of each (GNU time's
//! `ru_maxrss`; the client child also reports its own `VmHWM` from /proc
//! as a cross-check), the ratios, and the goals: ferry's peak memory below
//! skopeo's and never above 100 MiB. Every copy is checked byte for byte
//! (manifest bytes; the registry refuses a manifest whose blobs are missing).

use std::path::Path;
use std::process::{Command, ExitCode};
use std::time::Instant;

use ferry_bench::image_sets::{self, ImageSet, SetImage};
use ferry_bench::measure::{Logs, Run};
use ferry_bench::report::{self, Goal};
use ferry_bench::tools::{self, FerryJob};
use ferry_registry::{ClientOptions, CredentialStore, RegistryClient};
use ferry_schemas::ImageReference;
use ferry_testworld::error::{Context, Error, Result};

const LAYER_MEBIBYTES: usize = 256;
const MEMORY_CAP_MEBIBYTES: f64 = 100.0;
const CHILD_MODE: &str = "client-copy";
/// Each copy runs this many times (fresh destination each time); the
/// table shows the median time and the highest peak.
const ROUNDS: usize = 3;

fn main() -> ExitCode {
    let arguments: Vec<String> = std::env::args().skip(1).collect();
    match arguments.as_slice() {
        [mode, source, destination, repository, tag] if mode == CHILD_MODE => {
            ferry_bench::finish(client_copy(source, destination, repository, tag))
        }
        [] => ferry_bench::finish(run()),
        _ => {
            eprintln!("usage: transfer (no arguments)");
            ExitCode::from(2)
        }
    }
}

/// Peak resident memory of this process, in KiB, from /proc.
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

/// The child: copies `repository:tag` from `source` to `destination` with
/// ferry's client (config and layers streamed, then the manifest), and
/// prints its own peak memory in KiB before the first request (runtime and
/// client built) and at the end.
fn client_copy(source: &str, destination: &str, repository: &str, tag: &str) -> Result<()> {
    let runtime = tokio::runtime::Builder::new_multi_thread()
        .worker_threads(2)
        .enable_all()
        .build()
        .context(|| "starting the async runtime".to_owned())?;
    let client = RegistryClient::new(ClientOptions {
        credentials: CredentialStore::from_files(Vec::new()),
        certificate_folders: Vec::new(),
        insecure_hosts: vec![source.to_owned(), destination.to_owned()],
        ..ClientOptions::default()
    });
    let before_copy = own_peak_kib().unwrap_or(0);
    let reference = |host: &str| -> Result<ImageReference> {
        format!("{host}/{repository}:{tag}")
            .parse()
            .context(|| format!("{host}/{repository}:{tag} is not a reference"))
    };
    runtime.block_on(async {
        let manifest = client
            .get_manifest(&reference(source)?)
            .await
            .context(|| "reading the source manifest".to_owned())?;
        for (digest, size) in ferry_bench::floor::manifest_blobs(&manifest.bytes)? {
            client
                .copy_blob(
                    source,
                    repository,
                    destination,
                    repository,
                    &digest,
                    size,
                    None,
                )
                .await
                .context(|| format!("copying {digest}"))?;
        }
        client
            .put_manifest(&reference(destination)?, &manifest)
            .await
            .context(|| "pushing the manifest".to_owned())
    })?;
    println!("{before_copy} {}", own_peak_kib().unwrap_or(0));
    Ok(())
}

fn verify(tool: &str, set: &ImageSet, host: &str, image: &SetImage) -> Result<()> {
    tools::verify_destination(tool, set, host, &[image]).map(|_| ())
}

fn run() -> Result<()> {
    ferry_bench::preflight()?;
    let folder = ferry_bench::scratch_folder("transfer")?;
    let result = measure_copies(folder.path());
    ferry_bench::keep_on_failure(folder, result)
}

fn measure_copies(folder: &Path) -> Result<()> {
    let started = Instant::now();
    let mut set = image_sets::single_large_layer(LAYER_MEBIBYTES);
    eprintln!(
        "generated one image with a {LAYER_MEBIBYTES} MiB layer in {:.1} s",
        started.elapsed().as_secs_f64()
    );
    let image = set.images[0].clone();
    let source = ferry_bench::serve(&mut set)?;
    let logs = Logs::new(&folder.join("logs"))?;
    let layer_bytes = (LAYER_MEBIBYTES * 1024 * 1024) as f64;

    let source_reference = |image: &SetImage| {
        format!(
            "{}/{}:{}",
            source.host(),
            image.source_repository(),
            image.tag
        )
    };
    let mut client_runs = Vec::new();
    let mut mirror_runs = Vec::new();
    let mut skopeo_runs = Vec::new();
    for round in 1..=ROUNDS {
        // ferry's client, in a child process.
        let client_destination = ferry_bench::destination()?;
        let mut child = Command::new(
            std::env::current_exe().context(|| "finding this benchmark's binary".to_owned())?,
        );
        child.args([
            CHILD_MODE,
            &source.host(),
            &client_destination.host(),
            &image.source_repository(),
            &image.tag,
        ]);
        let client = logs.run_with_peak(&format!("ferry-client-{round}"), &child)?;
        verify(
            "ferry's client",
            &set,
            &format!("{}/{}", client_destination.host(), image_sets::HOST),
            &image,
        )?;
        client_runs.push(client);
        drop(client_destination);

        // ferry mirror, the release binary with a fresh workspace.
        let mirror_destination = ferry_bench::destination()?;
        let job = FerryJob::new(
            tools::ferry_binary()?,
            &folder.join(format!("mirror-{round}")),
            &set,
            &source.host(),
            &mirror_destination.host(),
        )?;
        let mirror = logs.run_with_peak(
            &format!("ferry-mirror-{round}"),
            &job.command("mirror", "workspace", &[]),
        )?;
        verify("ferry mirror", &set, &mirror_destination.host(), &image)?;
        mirror_runs.push(mirror);
        drop(mirror_destination);

        // skopeo copy.
        let skopeo_destination = ferry_bench::destination()?;
        let skopeo = logs.run_with_peak(
            &format!("skopeo-copy-{round}"),
            &tools::skopeo_copy(
                &source_reference(&image),
                &format!(
                    "{}/{}:{}",
                    skopeo_destination.host(),
                    image.repository,
                    image.tag
                ),
            ),
        )?;
        verify("skopeo copy", &set, &skopeo_destination.host(), &image)?;
        skopeo_runs.push(skopeo);
        drop(skopeo_destination);
    }
    // (peak before the copy, peak at the end) of each client run, in KiB.
    let client_vmhwm = client_runs
        .iter()
        .map(|run| {
            let numbers: Vec<u64> = run
                .stdout
                .split_whitespace()
                .filter_map(|number| number.parse().ok())
                .collect();
            match numbers.as_slice() {
                [before, after] => Ok((*before, *after)),
                _ => Err(Error::new(format!(
                    "the client child printed {:?}",
                    run.stdout
                ))),
            }
        })
        .collect::<Result<Vec<(u64, u64)>>>()?
        .into_iter()
        .max_by_key(|(_, after)| *after)
        .unwrap_or_default();
    let summary = |runs| Run::summarise(runs).ok_or_else(|| Error::new("no runs"));
    let (client, mirror, skopeo) = (
        summary(client_runs)?,
        summary(mirror_runs)?,
        summary(skopeo_runs)?,
    );

    print_report(&client, client_vmhwm, &mirror, &skopeo, layer_bytes);
    Ok(())
}

fn print_report(
    client: &Run,
    client_vmhwm: (u64, u64),
    mirror: &Run,
    skopeo: &Run,
    layer_bytes: f64,
) {
    let row = |tool: &str, run: &Run| {
        vec![
            tool.to_owned(),
            report::seconds(run.seconds),
            format!("{:.1}", layer_bytes / run.seconds / 1048576.0),
            format!("{:.1}", run.peak_mebibytes()),
        ]
    };
    println!(
        "transfer: one image with a {LAYER_MEBIBYTES} MiB layer, registry to registry on 127.0.0.1 (each tool {ROUNDS} times, each copy to a fresh registry and checked byte for byte; median seconds, highest peak)"
    );
    print!(
        "{}",
        report::table(
            &["tool", "seconds", "MiB/s", "peak RSS MiB"],
            &[
                row("ferry client (RegistryClient)", client),
                row("ferry mirror (release binary)", mirror),
                row("skopeo copy", skopeo),
            ],
        )
    );
    println!(
        "cross-check: the client child's own VmHWM from /proc (highest of {ROUNDS}): {:.1} MiB at the end, {:.1} MiB before its first request",
        client_vmhwm.1 as f64 / 1024.0,
        client_vmhwm.0 as f64 / 1024.0
    );
    println!(
        "ratios: time ferry client/skopeo {}, ferry mirror/skopeo {}; peak memory ferry client/skopeo {}, ferry mirror/skopeo {}",
        report::times(client.seconds, skopeo.seconds),
        report::times(mirror.seconds, skopeo.seconds),
        report::times(client.peak_mebibytes(), skopeo.peak_mebibytes()),
        report::times(mirror.peak_mebibytes(), skopeo.peak_mebibytes()),
    );
    let skopeo_peak = skopeo.peak_mebibytes();
    for (tool, run) in [("ferry client", client), ("ferry mirror", mirror)] {
        let peak = run.peak_mebibytes();
        let measured = format!("{peak:.1} MiB vs skopeo {skopeo_peak:.1} MiB");
        println!(
            "{}",
            Goal::new(
                format!("{tool} peak memory below skopeo copy's"),
                measured,
                peak < skopeo_peak
            )
            .line()
        );
        println!(
            "{}",
            Goal::new(
                format!("{tool} peak memory at most {MEMORY_CAP_MEBIBYTES:.0} MiB"),
                format!("{peak:.1} MiB"),
                peak <= MEMORY_CAP_MEBIBYTES
            )
            .line()
        );
    }
}
