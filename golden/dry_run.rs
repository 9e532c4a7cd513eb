//! Dry runs write oc-mirror's files (issue 13, item 12; notes §3.7):
//! `working-dir/dry-run/` emptied first; `mapping.txt` with both sides'
//! transports, an image in a delivery named `file://DIR:REF` (its name in
//! the delivery's index); with `--dry-run-manifest-lists` the images of each
//! manifest list too; mirror-to-mirror and disk-to-mirror dry runs also write
//! the IDMS/ITMS the run would produce. The mappings are compared with
//! `golden/dry-run/*.txt` (folders and ports redacted).

use std::path::Path;
use std::process::{Command, Output};

use ferry_testworld::registry::{Flavour, Registry, Storage};
use ferry_testworld::world::World;

use crate::support::{compare_or_bless, golden_path};

fn ferry(folder: &Path, arguments: &[&str]) -> Output {
    Command::new(env!("CARGO_BIN_EXE_ferry"))
        .args(arguments)
        .env("REGISTRY_AUTH_FILE", folder.join("no-auth.json"))
        .env("FERRY_CACHE_DIR", folder.join("cache"))
        .env_remove("OC_MIRROR_CACHE")
        .env("SOURCE_DATE_EPOCH", "1764028800")
        .output()
        .unwrap()
}

fn text(output: &Output) -> String {
    format!(
        "{}{}",
        String::from_utf8_lossy(&output.stdout),
        String::from_utf8_lossy(&output.stderr)
    )
}

#[test]
fn dry_runs_write_oc_mirrors_mapping_and_cluster_resources() {
    let site = tempfile::tempdir().unwrap();
    let folder = site.path();
    let world = World::start().unwrap();
    let destination = Registry::start(Flavour::PlainHttp, Storage::Empty).unwrap();
    let config = folder.join("isc.yaml");
    std::fs::write(
        &config,
        "kind: ImageSetConfiguration\napiVersion: mirror.openshift.io/v2alpha1\nmirror:\n  additionalImages:\n  - name: registry.redhat.io/ubi9/ubi:latest\n  - name: quay.io/ferry-demo/hello:1.0\n",
    )
    .unwrap();
    let config = config.display().to_string();
    let registries = world.registries_conf().display().to_string();
    let disk = format!("file://{}", folder.join("disk").display());
    let workspace = format!("file://{}", folder.join("ws").display());
    let target = format!("docker://{}/mirror", destination.host());
    let redact = |text: &str| {
        text.replace(&folder.display().to_string(), "$DIR")
            .replace(&destination.host(), "$DESTINATION")
    };
    let mut failures = Vec::new();
    let mut check = |name: &str, actual: &str| {
        if let Some(failure) = compare_or_bless(&golden_path(&format!("dry-run/{name}")), actual) {
            failures.push(failure);
        }
    };

    // Mirror to disk, with a file an earlier dry run left.
    let stale = folder.join("disk/working-dir/dry-run/missing-from-before.txt");
    std::fs::create_dir_all(stale.parent().unwrap()).unwrap();
    std::fs::write(&stale, "left by an earlier dry run\n").unwrap();
    let output = ferry(
        folder,
        &[
            "mirror",
            "-c",
            &config,
            "--registries-conf",
            &registries,
            "--dry-run-manifest-lists",
            &disk,
        ],
    );
    assert!(output.status.success(), "{}", text(&output));
    assert!(!stale.exists(), "dry-run/ is emptied at each dry run");
    let dry_run = folder.join("disk/working-dir/dry-run");
    let mapping = std::fs::read_to_string(dry_run.join("mapping.txt")).unwrap();
    assert!(
        mapping.lines().count() > 2,
        "the manifest list's images are listed: {mapping}"
    );
    check("mirror-to-disk-mapping.txt", &redact(&mapping));
    assert_eq!(
        std::fs::read_to_string(dry_run.join("missing.txt")).unwrap(),
        mapping,
        "an empty cache lacks every image"
    );

    // Mirror to mirror.
    let output = ferry(
        folder,
        &[
            "mirror",
            "-c",
            &config,
            "--registries-conf",
            &registries,
            "--workspace",
            &workspace,
            "--dest-tls-verify=false",
            "--dry-run",
            &target,
        ],
    );
    assert!(output.status.success(), "{}", text(&output));
    let mapping =
        std::fs::read_to_string(folder.join("ws/working-dir/dry-run/mapping.txt")).unwrap();
    check("mirror-to-mirror-mapping.txt", &redact(&mapping));
    let resources = folder.join("ws/working-dir/cluster-resources");
    let itms = std::fs::read_to_string(resources.join("itms-oc-mirror.yaml")).unwrap();
    assert!(
        itms.contains(&format!("{}/mirror/ubi9", destination.host())),
        "{itms}"
    );

    // Disk to mirror, from a real delivery.
    let output = ferry(
        folder,
        &[
            "mirror",
            "-c",
            &config,
            "--registries-conf",
            &registries,
            &disk,
        ],
    );
    assert!(output.status.success(), "{}", text(&output));
    let output = ferry(
        folder,
        &[
            "mirror",
            "-c",
            &config,
            "--from",
            &disk,
            "--dest-tls-verify=false",
            "--dry-run",
            &target,
        ],
    );
    assert!(output.status.success(), "{}", text(&output));
    let mapping =
        std::fs::read_to_string(folder.join("disk/working-dir/dry-run/mapping.txt")).unwrap();
    check("disk-to-mirror-mapping.txt", &redact(&mapping));
    assert!(
        folder
            .join("disk/working-dir/cluster-resources/itms-oc-mirror.yaml")
            .is_file()
    );
    let catalog = ferry_testworld::http::get(
        destination.host().parse().unwrap(),
        "/v2/_catalog",
        ferry_testworld::http::Transport::Plain,
        None,
    )
    .unwrap();
    assert!(
        !catalog.text().contains("mirror/"),
        "a dry run pushed nothing: {}",
        catalog.text()
    );

    assert!(failures.is_empty(), "{}", failures.join("\n\n"));
}
