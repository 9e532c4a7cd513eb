//! The pipeline's promises that show on the command line: a configuration
//! part ferry cannot act on yet is refused with its place in the file,
//! never dropped.

use std::process::Command;

#[test]
fn an_oci_layout_additional_image_is_refused_with_its_place_not_dropped() {
    let folder = tempfile::tempdir().unwrap();
    let config = folder.path().join("isc.yaml");
    std::fs::write(
        &config,
        "kind: ImageSetConfiguration\napiVersion: mirror.openshift.io/v2alpha1\nmirror:\n  additionalImages:\n  - name: quay.io/ferry-demo/hello:1.0\n  - name: oci:///srv/layouts/tool\n",
    )
    .unwrap();
    let workspace = folder.path().join("workspace");
    let output = Command::new(env!("CARGO_BIN_EXE_ferry"))
        .args(["plan", "-c", &config.display().to_string()])
        .args(["--workspace", &format!("file://{}", workspace.display())])
        .arg("docker://127.0.0.1:9/mirror")
        .output()
        .unwrap();
    let stderr = String::from_utf8_lossy(&output.stderr);
    assert_eq!(output.status.code(), Some(1), "{stderr}");
    assert!(
        stderr.contains(
            "additional images from an OCI layout on disk (`oci://`) is not supported yet"
        ),
        "{stderr}"
    );
    assert!(
        stderr.contains("isc.yaml:6:11"),
        "the refusal points at the entry: {stderr}"
    );
    assert!(stderr.contains("nothing was done"), "{stderr}");
    assert!(
        !workspace.exists(),
        "a refused configuration creates no workspace"
    );

    // `validate` accepts the file and warns about the same place.
    let validated = Command::new(env!("CARGO_BIN_EXE_ferry"))
        .args(["validate", "-c", &config.display().to_string()])
        .output()
        .unwrap();
    let stderr = String::from_utf8_lossy(&validated.stderr);
    let stdout = String::from_utf8_lossy(&validated.stdout);
    assert_eq!(validated.status.code(), Some(0), "{stdout}{stderr}");
    assert!(
        format!("{stdout}{stderr}").contains("is not supported by ferry yet"),
        "{stdout}{stderr}"
    );
}

#[test]
fn a_flag_the_mode_does_not_act_on_is_refused_not_ignored() {
    let folder = tempfile::tempdir().unwrap();
    let config = folder.path().join("isc.yaml");
    std::fs::write(
        &config,
        "kind: ImageSetConfiguration\napiVersion: mirror.openshift.io/v2alpha1\nmirror:\n  additionalImages:\n  - name: quay.io/ferry-demo/hello:1.0\n",
    )
    .unwrap();
    let ferry = |arguments: &[&str]| {
        let output = Command::new(env!("CARGO_BIN_EXE_ferry"))
            .args(["plan", "-c", &config.display().to_string()])
            .args(arguments)
            .output()
            .unwrap();
        (
            output.status.code(),
            String::from_utf8_lossy(&output.stderr).into_owned(),
        )
    };
    let workspace = format!("file://{}", folder.path().join("workspace").display());
    let (code, stderr) = ferry(&[
        "--since",
        "2025-01-01",
        "--strict-archive",
        "--workspace",
        &workspace,
        "docker://127.0.0.1:9/mirror",
    ]);
    assert_eq!(code, Some(1), "{stderr}");
    assert!(
        stderr.contains("--since and --strict-archive do not apply to a docker:// destination"),
        "{stderr}"
    );
    assert!(
        !folder.path().join("workspace").exists(),
        "a refused command writes nothing"
    );
}

/// A first plan asks the destination what it holds: against a destination
/// another workspace filled (a lost workspace, another tool), nothing is
/// left to push; against a host that does not answer, the plan fails.
#[test]
fn a_first_plan_finds_what_the_destination_already_holds() {
    use ferry_testworld::registry::{Flavour, Registry, Storage, free_port};
    use ferry_testworld::world::World;

    let world = World::start().unwrap();
    let destination = Registry::start(Flavour::PlainHttp, Storage::Empty).unwrap();
    let folder = tempfile::tempdir().unwrap();
    let config = folder.path().join("isc.yaml");
    std::fs::write(
        &config,
        "kind: ImageSetConfiguration\napiVersion: mirror.openshift.io/v2alpha1\nmirror:\n  additionalImages:\n  - name: quay.io/ferry-demo/hello:1.0\n  - name: registry.redhat.io/ubi9/ubi-minimal:9.4\n",
    )
    .unwrap();
    let ferry = |command: &str, workspace: &str, target: &str, extra: &[&str]| {
        let output = Command::new(env!("CARGO_BIN_EXE_ferry"))
            .arg(command)
            .args(["-c", &config.display().to_string()])
            .args([
                "--workspace",
                &format!("file://{}", folder.path().join(workspace).display()),
            ])
            .arg("--registries-conf")
            .arg(world.registries_conf())
            .args(["--dest-tls-verify=false", "--retry-times", "1"])
            .args(extra)
            .arg(target)
            .env("REGISTRY_AUTH_FILE", folder.path().join("no-auth.json"))
            .output()
            .unwrap();
        (
            output.status.code(),
            String::from_utf8_lossy(&output.stdout).into_owned(),
            String::from_utf8_lossy(&output.stderr).into_owned(),
        )
    };
    let target = format!("docker://{}/mirror", destination.host());
    let (code, _, stderr) = ferry("mirror", "first", &target, &[]);
    assert_eq!(code, Some(0), "{stderr}");

    // A new workspace knows nothing; the destination has everything.
    let (code, stdout, stderr) = ferry("plan", "second", &target, &["--detailed-exitcode"]);
    assert_eq!(code, Some(0), "nothing to do:\n{stdout}{stderr}");
    assert!(stdout.contains("0 new, 0 changed"), "{stdout}");
    assert!(stdout.contains("0.0 KiB to push"), "{stdout}");

    // An image that left the configuration is shown, not silently kept.
    std::fs::write(
        &config,
        "kind: ImageSetConfiguration\napiVersion: mirror.openshift.io/v2alpha1\nmirror:\n  additionalImages:\n  - name: quay.io/ferry-demo/hello:1.0\n",
    )
    .unwrap();
    let (code, stdout, stderr) = ferry("plan", "first", &target, &["--detailed-exitcode"]);
    assert_eq!(code, Some(0), "{stdout}{stderr}");
    assert!(
        stdout.contains(&format!(
            "  - {}/mirror/ubi9/ubi-minimal:9.4 (no longer in the image set; left at the destination, see delete)",
            destination.host()
        )),
        "{stdout}"
    );
    assert!(!stdout.contains("hello:1.0 (no longer"), "{stdout}");

    // A host nobody answers on fails the plan instead of planning it all.
    let closed = format!("docker://127.0.0.1:{}/mirror", free_port().unwrap());
    let (code, stdout, stderr) = ferry("plan", "third", &closed, &["--detailed-exitcode"]);
    assert_eq!(code, Some(1), "{stdout}{stderr}");
    assert!(stderr.contains("cannot reach the destination"), "{stderr}");
}

/// `--help` says what is built: the workflows every mode has are not
/// called "not built yet" (the disk flags were, long after they worked).
#[test]
fn help_of_the_mirroring_commands_claims_nothing_unbuilt() {
    for command in ["mirror", "plan", "apply"] {
        let output = Command::new(env!("CARGO_BIN_EXE_ferry"))
            .args([command, "--help"])
            .output()
            .unwrap();
        let help = String::from_utf8_lossy(&output.stdout);
        assert!(output.status.success(), "{help}");
        assert!(help.contains("file://DIR"), "{command}: {help}");
        assert!(
            !help.to_lowercase().contains("not built"),
            "{command} --help: {help}"
        );
    }
}
