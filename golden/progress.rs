//! What a run shows and keeps: without a terminal, a plain progress line
//! every interval (shortened here with `FERRY_PROGRESS_INTERVAL_MS`);
//! nothing extra with `--log-level error`; a log file per run in
//! `working-dir/logs/` that names the run and every image with its
//! outcome; the plan and the summary on stdout (so `| tee` keeps them),
//! progress and logs on stderr, with no colour codes off a terminal.

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
    let stdout = String::from_utf8_lossy(&run.stdout);
    assert!(run.status.success(), "{stderr}");
    // The plan and the summary on stdout, nothing of them on stderr.
    assert!(stdout.starts_with("Plan: "), "{stdout}");
    assert!(
        stdout.contains("additional images mirrored") && stdout.contains("Done: "),
        "{stdout}"
    );
    assert!(
        !stderr.contains("Plan: ") && !stderr.contains("mirrored") && !stderr.contains("Done: "),
        "{stderr}"
    );
    assert!(!stdout.contains("progress: "), "{stdout}");
    let lines: Vec<&str> = stderr
        .lines()
        .filter(|line| line.starts_with("progress: blobs "))
        .collect();
    assert!(!lines.is_empty(), "no progress line in:\n{stderr}");
    let pattern = regex::Regex::new(
        r"^progress: blobs [0-9.]+ [KMG]?i?B of [0-9.]+ [KMG]?i?B \([0-9.]+ [KMG]?i?B/s(, ETA [0-9]+s)?\), [0-9]+/[0-9]+ blob actions; manifests [0-9]+/[0-9]+; tags [0-9]+/[0-9]+; images [0-9]+/[0-9]+; [0-9]+s elapsed$",
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
    // Every image of the image set, with its outcome.
    for line in crate::kill::configuration().lines() {
        let Some(name) = line.trim().strip_prefix("- name: ") else {
            continue;
        };
        assert!(
            text.lines().any(|log| log
                .contains(&format!("image mirrored to {}/lines/", destination.host()))
                && log.contains(&format!("image={name} "))),
            "{name} is not in the run log:\n{text}"
        );
    }
    assert!(stdout.contains(&format!(
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
    assert!(
        !String::from_utf8_lossy(&quiet.stdout).contains("log written to"),
        "nothing names an empty log"
    );
    let logs = run_logs(folder.path(), "quiet");
    assert_eq!(logs.len(), 1);
    assert_eq!(logs[0].1, "", "nothing at error level in a clean run");
}

/// Logs on stderr (`--log-level debug` shows them all) carry no colour
/// codes when stderr is not a terminal.
#[test]
fn logs_off_a_terminal_carry_no_colour_codes() {
    let world = World::start().unwrap();
    let destination = Registry::start(Flavour::PlainHttp, Storage::Empty).unwrap();
    let folder = tempfile::tempdir().unwrap();
    std::fs::write(
        folder.path().join("isc.yaml"),
        "kind: ImageSetConfiguration\napiVersion: mirror.openshift.io/v2alpha1\nmirror:\n  additionalImages:\n  - name: quay.io/ferry-demo/hello:1.0\n",
    )
    .unwrap();
    let run = mirror(
        &world,
        &destination,
        folder.path(),
        "debug",
        &["--log-level", "debug"],
    );
    let stderr = String::from_utf8_lossy(&run.stderr);
    assert!(run.status.success(), "{stderr}");
    assert!(
        stderr.contains("DEBUG"),
        "debug logs go to stderr: {stderr}"
    );
    assert!(!stderr.contains('\u{1b}'), "{stderr}");
}
