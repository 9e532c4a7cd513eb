//! The README's first command: `ferry demo` runs ferry's main job on the
//! built-in world (mirror to mirror, a release with its signature verified,
//! mirror to disk, verify, disk to mirror with the sources stopped) and
//! checks the enclave with skopeo.

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
    // One release mirrored with its signature verified: the IDMS and the
    // signature ConfigMap written for it are shown, and the payload at the
    // mirror is the signed one.
    assert!(
        stdout.contains("OCP_SIGNATURE_VERIFICATION_PK=$DEMO/release-signing-key.asc"),
        "{stdout}"
    );
    assert!(
        stdout.contains("$DEMO/release-workspace/working-dir/cluster-resources/idms-oc-mirror.yaml:")
            && stdout.contains("kind: ImageDigestMirrorSet")
            && stdout.contains("/demo/openshift/release-images\n    source: quay.io/openshift-release-dev/ocp-release"),
        "{stdout}"
    );
    assert!(
        stdout.contains(
            "$DEMO/release-workspace/working-dir/cluster-resources/signature-configmap.yaml:"
        ) && stdout.contains("kind: ConfigMap"),
        "{stdout}"
    );
    assert!(
        stdout.contains("/demo/openshift/release-images:4.16.2-x86_64: the signed payload sha256:"),
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
