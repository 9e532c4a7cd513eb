//! Faulty sources at the command line (issue 14): a manifest whose body is
//! cut is retried in `plan`, mirror-to-mirror and mirror-to-disk, and a
//! stalled answer is retried after `--header-timeout`; each retry is said
//! on screen (stderr) and in the run log.

use std::path::Path;
use std::process::{Command, Output};
use std::time::{Duration, Instant};

use ferry_testworld::proxy::{CutAnswer, FaultProxy, Faults, StallAnswer};
use ferry_testworld::registry::{Flavour, Registry, Storage};
use ferry_testworld::world::World;

fn text(bytes: &[u8]) -> String {
    String::from_utf8_lossy(bytes).into_owned()
}

/// Writes a configuration naming two images of the world through `host`,
/// and an empty registries.conf; returns the configuration's path.
fn setup(folder: &Path, host: &str) -> String {
    let config = folder.join("isc.yaml");
    std::fs::write(
        &config,
        format!(
            "kind: ImageSetConfiguration\napiVersion: mirror.openshift.io/v2alpha1\nmirror:\n  additionalImages:\n  - name: {host}/quay.io/ferry-demo/hello:1.0\n  - name: {host}/quay.io/ferry-demo/signed:1.0\n"
        ),
    )
    .unwrap();
    std::fs::write(folder.join("registries.conf"), "").unwrap();
    config.display().to_string()
}

fn ferry(folder: &Path, arguments: &[&str]) -> Output {
    Command::new(env!("CARGO_BIN_EXE_ferry"))
        .args(arguments)
        .args([
            "--registries-conf",
            &folder.join("registries.conf").display().to_string(),
            "--src-tls-verify=false",
            "--retry-delay",
            "10ms",
        ])
        .env("FERRY_CACHE_DIR", folder.join("cache"))
        .env("REGISTRY_AUTH_FILE", folder.join("no-auth.json"))
        .output()
        .unwrap()
}

fn cut_manifests(times: usize) -> Faults {
    Faults {
        cut_gets: vec![CutAnswer {
            path_contains: "/manifests/".to_owned(),
            after: 50,
            times,
        }],
        ..Faults::default()
    }
}

/// The text of every run log under `folder` (`working-dir/logs/*.log`).
fn run_logs(folder: &Path) -> String {
    let logs = folder.join("working-dir/logs");
    let mut text = String::new();
    for entry in std::fs::read_dir(&logs).unwrap_or_else(|e| panic!("{}: {e}", logs.display())) {
        text.push_str(&std::fs::read_to_string(entry.unwrap().path()).unwrap());
    }
    text
}

#[test]
fn a_cut_manifest_is_retried_in_plan_mirror_to_mirror_and_mirror_to_disk() {
    let world = World::start().unwrap();
    let proxy = FaultProxy::start(world.registry().address()).unwrap();
    let destination = Registry::start(Flavour::PlainHttp, Storage::Empty).unwrap();
    let folder = tempfile::tempdir().unwrap();
    let config = setup(folder.path(), &proxy.host());
    // plan records what it resolved: mirror gets a workspace of its own
    // so that it reads the manifests again.
    let plan_workspace = format!("file://{}", folder.path().join("ws-plan").display());
    let workspace = format!("file://{}", folder.path().join("ws").display());
    let mirror = format!("docker://{}/mirror", destination.host());
    let disk = format!("file://{}", folder.path().join("disk").display());

    let runs: [(&str, Vec<&str>); 3] = [
        (
            "plan",
            vec![
                "plan",
                "-c",
                &config,
                "--workspace",
                &plan_workspace,
                "--dest-tls-verify=false",
                &mirror,
            ],
        ),
        (
            "mirror to mirror",
            vec![
                "mirror",
                "-c",
                &config,
                "--workspace",
                &workspace,
                "--dest-tls-verify=false",
                &mirror,
            ],
        ),
        ("mirror to disk", vec!["mirror", "-c", &config, &disk]),
    ];
    for (name, arguments) in runs {
        proxy.arm(cut_manifests(2));
        let output = ferry(folder.path(), &arguments);
        let stderr = text(&output.stderr);
        assert!(output.status.success(), "{name}: {stderr}");
        assert!(
            stderr.contains("the registry closed the connection after 50 of")
                && stderr.contains("bytes of the manifest")
                && stderr.contains("retry 1/5"),
            "{name}: {stderr}"
        );
        assert!(stderr.contains(&proxy.host()), "{name}: {stderr}");
    }
    let logged = run_logs(&folder.path().join("ws"));
    assert!(
        logged.contains("bytes of the manifest") && logged.contains("retry 1/5"),
        "{logged}"
    );
}

#[test]
fn a_stalled_answer_is_retried_after_the_header_timeout_and_said_on_screen() {
    let world = World::start().unwrap();
    let proxy = FaultProxy::start(world.registry().address()).unwrap();
    let destination = Registry::start(Flavour::PlainHttp, Storage::Empty).unwrap();
    let folder = tempfile::tempdir().unwrap();
    let config = setup(folder.path(), &proxy.host());
    let workspace = format!("file://{}", folder.path().join("ws").display());
    let mirror = format!("docker://{}/mirror", destination.host());
    proxy.arm(Faults {
        stalls: vec![StallAnswer {
            method: "GET".to_owned(),
            path_contains: "/manifests/".to_owned(),
            before_headers: true,
            stall: Duration::from_secs(30),
            times: 1,
        }],
        ..Faults::default()
    });
    let started = Instant::now();
    let output = ferry(
        folder.path(),
        &[
            "mirror",
            "-c",
            &config,
            "--workspace",
            &workspace,
            "--dest-tls-verify=false",
            "--header-timeout",
            "1s",
            &mirror,
        ],
    );
    let elapsed = started.elapsed();
    let stderr = text(&output.stderr);
    assert!(output.status.success(), "{stderr}");
    assert!(
        elapsed < Duration::from_secs(20),
        "took {elapsed:?}: {stderr}"
    );
    assert!(
        stderr.contains("the registry sent no answer within 1 s") && stderr.contains("retry 1/5"),
        "{stderr}"
    );
    let logged = run_logs(&folder.path().join("ws"));
    assert!(logged.contains("sent no answer within 1 s"), "{logged}");
}
