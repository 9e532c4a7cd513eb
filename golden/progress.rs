//! What a run shows and keeps: without a terminal, a plain progress line
//! every interval (shortened here with `FERRY_PROGRESS_INTERVAL_MS`);
//! nothing extra with `--log-level error`; a log file per run in
//! `working-dir/logs/` that names the run.

use std::path::Path;
use std::process::{Command, Output};

use ferry_testworld::registry::{Flavour, Registry, Storage};
use ferry_testworld::world::World;

fn mirror(
    world: &World,
    destination: &Registry,
    folder: &Path,
    workspace: &str,
    extra: &[&str],
) -> Output {
    Command::new(env!("CARGO_BIN_EXE_ferry"))
        .arg("mirror")
        .args(["-c", &folder.join("isc.yaml").display().to_string()])
        .args([
            "--workspace",
            &format!("file://{}", folder.join(workspace).display()),
        ])
        .args([
            "--registries-conf",
            &world.registries_conf().display().to_string(),
        ])
        .arg("--dest-tls-verify=false")
        .args(extra)
        .arg(format!("docker://{}/{workspace}", destination.host()))
        .env("REGISTRY_AUTH_FILE", folder.join("no-auth.json"))
        .env("FERRY_PROGRESS_INTERVAL_MS", "20")
        .output()
        .unwrap()
}

/// The run logs in `working-dir/logs/` (not the error lists).
fn run_logs(folder: &Path, workspace: &str) -> Vec<(String, String)> {
    let logs = folder.join(workspace).join("working-dir/logs");
    let mut found = Vec::new();
    for entry in std::fs::read_dir(&logs).unwrap() {
        let path = entry.unwrap().path();
        let name = path.file_name().unwrap().to_string_lossy().into_owned();
        if name.starts_with("ferry-") {
            found.push((name, std::fs::read_to_string(&path).unwrap()));
        }
    }
    found
}

#[test]
fn plain_progress_lines_and_a_run_log() {
    let world = World::start().unwrap();
    let destination = Registry::start(Flavour::PlainHttp, Storage::Empty).unwrap();
    let folder = tempfile::tempdir().unwrap();
    std::fs::write(folder.path().join("isc.yaml"), crate::kill::configuration()).unwrap();

    let run = mirror(&world, &destination, folder.path(), "lines", &[]);
    let stderr = String::from_utf8_lossy(&run.stderr);
    assert!(run.status.success(), "{stderr}");
    let lines: Vec<&str> = stderr
        .lines()
        .filter(|line| line.starts_with("progress: blobs "))
        .collect();
    assert!(!lines.is_empty(), "no progress line in:\n{stderr}");
    let pattern = regex::Regex::new(
        r"^progress: blobs [0-9.]+ [KMG]?i?B of [0-9.]+ [KMG]?i?B \([0-9.]+ [KMG]?i?B/s(, ETA [0-9]+s)?\), [0-9]+/[0-9]+ blob actions; manifests [0-9]+/[0-9]+; tags [0-9]+/[0-9]+; [0-9]+s elapsed$",
    )
    .unwrap();
    for line in &lines {
        assert!(pattern.is_match(line), "{line}");
    }
    // No terminal: no bar drawing codes.
    assert!(!stderr.contains('\u{1b}'), "{stderr}");

    let logs = run_logs(folder.path(), "lines");
    assert_eq!(logs.len(), 1, "{logs:?}");
    let (name, text) = &logs[0];
    assert!(
        regex::Regex::new(r"^ferry-[0-9]{8}_[0-9]{6}\.log$")
            .unwrap()
            .is_match(name),
        "{name}"
    );
    assert!(
        text.contains(&format!(
            "mirror: configuration {}",
            folder.path().join("isc.yaml").display()
        )) && text.contains(&format!(
            "destination docker://{}/lines",
            destination.host()
        )),
        "{text}"
    );
    assert!(text.contains("run finished"), "{text}");
    assert!(stderr.contains(&format!(
            "log written to {}",
            folder
                .path()
                .join("lines/working-dir/logs")
                .join(name)
                .display()
        )));

    // --log-level error: no progress lines, no chatter, and the run log
    // holds errors only (none here).
    let quiet = mirror(
        &world,
        &destination,
        folder.path(),
        "quiet",
        &["--log-level", "error"],
    );
    let stderr = String::from_utf8_lossy(&quiet.stderr);
    assert!(quiet.status.success(), "{stderr}");
    assert!(!stderr.contains("progress:"), "{stderr}");
    assert!(!stderr.contains("log written to"), "{stderr}");
    let logs = run_logs(folder.path(), "quiet");
    assert_eq!(logs.len(), 1);
    assert_eq!(logs[0].1, "", "nothing at error level in a clean run");
}
