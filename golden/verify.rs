//! `--verify` checks every blob at the destination: a blob whose data was
//! deleted from the destination registry's storage is planned again (and
//! put back by `mirror --verify`), while the default plan, which checks
//! only top manifests, sees nothing to do.

use std::process::{Command, Output};

use ferry_testworld::registry::{Flavour, Registry, Storage};
use ferry_testworld::world::World;

fn text(bytes: &[u8]) -> String {
    String::from_utf8_lossy(bytes).into_owned()
}

#[test]
fn verify_finds_and_puts_back_a_blob_deleted_at_the_destination() {
    let world = World::start().unwrap();
    let destination = Registry::start(Flavour::PlainHttp, Storage::Empty).unwrap();
    let folder = tempfile::tempdir().unwrap();
    let config = folder.path().join("isc.yaml");
    std::fs::write(
        &config,
        "kind: ImageSetConfiguration\napiVersion: mirror.openshift.io/v2alpha1\nmirror:\n  additionalImages:\n  - name: quay.io/ferry-demo/hello:1.0\n  - name: registry.redhat.io/ubi9/ubi-minimal:9.4\n",
    )
    .unwrap();
    let ferry = |command: &str, extra: &[&str]| -> Output {
        Command::new(env!("CARGO_BIN_EXE_ferry"))
            .arg(command)
            .arg("-c")
            .arg(&config)
            .arg("--workspace")
            .arg(format!("file://{}", folder.path().join("ws").display()))
            .arg("--registries-conf")
            .arg(world.registries_conf())
            .args(["--dest-tls-verify=false", "--remove-signatures"])
            .args(extra)
            .arg(format!("docker://{}/mirror", destination.host()))
            .env("REGISTRY_AUTH_FILE", folder.path().join("no-auth.json"))
            .output()
            .unwrap()
    };
    let mirrored = ferry("mirror", &[]);
    assert!(mirrored.status.success(), "{}", text(&mirrored.stderr));

    // hello's image config: a blob no other image has.
    let raw = Command::new("skopeo")
        .args(["inspect", "--raw", "--tls-verify=false"])
        .arg(format!(
            "docker://{}/mirror/ferry-demo/hello:1.0",
            destination.host()
        ))
        .output()
        .unwrap();
    assert!(raw.status.success());
    let manifest: serde_json::Value = serde_json::from_slice(&raw.stdout).unwrap();
    let config_digest = manifest["config"]["digest"].as_str().unwrap().to_owned();
    let blob_path = format!("/v2/mirror/ferry-demo/hello/blobs/{config_digest}");
    assert_eq!(destination.get(&blob_path).unwrap().status, 200);
    let hex = config_digest.strip_prefix("sha256:").unwrap();
    let data = destination
        .storage_root()
        .join("docker/registry/v2/blobs/sha256")
        .join(&hex[..2])
        .join(hex)
        .join("data");
    std::fs::remove_file(&data).unwrap();
    assert_eq!(destination.get(&blob_path).unwrap().status, 404);

    // The default plan checks top manifests only: nothing to do.
    let default = ferry("plan", &["--detailed-exitcode"]);
    assert_eq!(default.status.code(), Some(0), "{}", text(&default.stdout));

    // --verify finds the blob and plans its upload, and only that.
    let verified = ferry("plan", &["--verify", "--format", "json"]);
    assert!(verified.status.success(), "{}", text(&verified.stderr));
    let plan: serde_json::Value = serde_json::from_slice(&verified.stdout).unwrap();
    let actions = plan["plan"]["actions"].as_array().unwrap();
    assert_eq!(actions.len(), 1, "{actions:#?}");
    assert_eq!(actions[0]["action"]["kind"], "upload-blob");
    assert_eq!(actions[0]["action"]["digest"], config_digest.as_str());
    assert_eq!(actions[0]["reason"], "missing-blob-at-destination");
    let summary = ferry("plan", &["--verify", "--detailed-exitcode"]);
    assert_eq!(summary.status.code(), Some(2));
    assert!(
        text(&summary.stdout).contains("~ quay.io/ferry-demo/hello:1.0 -> ")
            && text(&summary.stdout).contains("(blob missing at destination; 1 actions"),
        "{}",
        text(&summary.stdout)
    );

    // mirror --verify puts it back; then even --verify has nothing to do.
    let repaired = ferry("mirror", &["--verify"]);
    assert!(repaired.status.success(), "{}", text(&repaired.stderr));
    assert_eq!(destination.get(&blob_path).unwrap().status, 200);
    let after = ferry("plan", &["--verify", "--detailed-exitcode"]);
    assert_eq!(after.status.code(), Some(0), "{}", text(&after.stdout));

    // --verify and --trust-state contradict each other.
    let both = ferry("plan", &["--verify", "--trust-state"]);
    assert_eq!(both.status.code(), Some(1));
}
