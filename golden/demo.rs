//! The README's first command: `ferry demo` runs ferry's main job on the
//! built-in world (mirror to mirror, mirror to disk, verify, disk to mirror
//! with the sources stopped) and checks the enclave with skopeo.

use std::process::Command;

#[test]
fn the_demo_runs_every_workflow_and_checks_the_enclave() {
    let folder = tempfile::tempdir().unwrap();
    let output = Command::new(env!("CARGO_BIN_EXE_ferry"))
        .args(["demo", "--dir"])
        .arg(folder.path())
        .output()
        .unwrap();
    let stdout = String::from_utf8_lossy(&output.stdout);
    let stderr = String::from_utf8_lossy(&output.stderr);
    assert!(output.status.success(), "{stdout}\n{stderr}");
    assert!(
        stdout.contains(
            "stable-4.16  amd64         4.16.2   quay.io/openshift-release-dev/ocp-release@sha256:"
        ),
        "the demo lists the releases the fuller image set selects: {stdout}"
    );
    assert!(
        stdout.contains("5 of 5 images checked in the enclave"),
        "{stdout}"
    );
    assert!(
        stdout.contains("Nothing to do: the destination's top manifests are present (use --verify to check every blob)."),
        "the rerun plans nothing: {stdout}"
    );
    // The operator catalog, filtered to one package, reached the enclave
    // with its CatalogSource.
    assert!(
        stdout.contains("kind: CatalogSource")
            && stdout.contains("/demo/ferry-demo/test-catalog:latest"),
        "{stdout}"
    );
    assert!(folder.path().join("disk/mirror_000001.tar").is_file());
    assert!(
        folder
            .path()
            .join("disk/working-dir/cluster-resources/itms-oc-mirror.yaml")
            .is_file()
    );
}
