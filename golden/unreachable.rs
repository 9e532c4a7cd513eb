//! A destination that cannot be reached fails a run at once, before any
//! action starts, naming the destination; nothing is recorded, so the
//! next run against a reachable destination plans everything. A default
//! plan that cannot reach the destination to check the image set fails
//! too, instead of planning nothing to do.

use std::process::{Command, Output};

use ferry_testworld::registry::{Flavour, Registry, Storage, free_port};
use ferry_testworld::world::World;

#[test]
fn an_unreachable_destination_fails_the_run_before_any_action() {
    let world = World::start().unwrap();
    let folder = tempfile::tempdir().unwrap();
    let config = folder.path().join("isc.yaml");
    std::fs::write(
        &config,
        "kind: ImageSetConfiguration\napiVersion: mirror.openshift.io/v2alpha1\nmirror:\n  additionalImages:\n  - name: quay.io/ferry-demo/hello:1.0\n",
    )
    .unwrap();
    let ferry = |command: &str, destination: &str, extra: &[&str]| -> Output {
        Command::new(env!("CARGO_BIN_EXE_ferry"))
            .arg(command)
            .args(["-c", &config.display().to_string()])
            .args([
                "--workspace",
                &format!("file://{}", folder.path().join("workspace").display()),
            ])
            .args([
                "--registries-conf",
                &world.registries_conf().display().to_string(),
            ])
            .args(["--dest-tls-verify=false", "--src-tls-verify=false"])
            .args(extra)
            .arg(destination)
            .env("REGISTRY_AUTH_FILE", folder.path().join("no-auth.json"))
            .output()
            .unwrap()
    };

    // Nothing listens on this port.
    let closed = format!("127.0.0.1:{}", free_port().unwrap());
    let failed = ferry(
        "mirror",
        &format!("docker://{closed}/mirror"),
        &["--retry-times", "1"],
    );
    let stderr = String::from_utf8_lossy(&failed.stderr).into_owned();
    assert_eq!(failed.status.code(), Some(1), "{stderr}");
    assert!(
        stderr.contains(&format!("cannot reach the destination {closed}"))
            && stderr.contains("nothing was pushed"),
        "{stderr}"
    );
    // The summary is on stdout: there is none.
    let stdout = String::from_utf8_lossy(&failed.stdout).into_owned();
    assert!(
        !stdout.contains("Done:") && !stderr.contains("Done:"),
        "no action ran against the unreachable destination:\n{stdout}{stderr}"
    );

    // Nothing was recorded: a reachable destination gets the whole image.
    let destination = Registry::start(Flavour::PlainHttp, Storage::Empty).unwrap();
    let mirrored = ferry(
        "mirror",
        &format!("docker://{}/mirror", destination.host()),
        &[],
    );
    let stderr = String::from_utf8_lossy(&mirrored.stderr).into_owned();
    let stdout = String::from_utf8_lossy(&mirrored.stdout).into_owned();
    assert!(mirrored.status.success(), "{stderr}");
    assert!(stdout.contains("1 new"), "the plan is on stdout: {stdout}");

    // Once the destination is gone, a default plan cannot confirm that the
    // image set is still there: it says so instead of planning nothing to
    // do; `--trust-state` plans from the state alone.
    let gone = format!("docker://{}/mirror", destination.host());
    drop(destination);
    let planned = ferry(
        "plan",
        &gone,
        &["--retry-times", "1", "--detailed-exitcode"],
    );
    let stderr = String::from_utf8_lossy(&planned.stderr).into_owned();
    assert_eq!(planned.status.code(), Some(1), "{stderr}");
    assert!(
        stderr.contains("cannot reach the destination") && stderr.contains("--trust-state"),
        "{stderr}"
    );
    let trusted = ferry("plan", &gone, &["--trust-state", "--detailed-exitcode"]);
    assert_eq!(
        trusted.status.code(),
        Some(0),
        "{}",
        String::from_utf8_lossy(&trusted.stderr)
    );
}
