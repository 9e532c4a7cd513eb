//! `ferry registries-conf` against golden files in `golden/enclave/`: the
//! registries.conf written from fixed mirror sets (read back by ferry's
//! parser, each public name sent where disk-to-mirror put it), `-o FILE`,
//! and the rendered errors for bad mirror sets. The command in the whole
//! enclave flow is `enclave.rs`.

use std::path::Path;
use std::process::Command;

use ferry_registry::RegistriesConf;

use crate::support::{compare_or_bless, golden_path, text};

#[test]
fn registries_conf_from_mirror_sets_matches_its_golden_file() {
    let folder = golden_path("enclave");
    let run = Command::new(env!("CARGO_BIN_EXE_ferry"))
        .current_dir(&folder)
        .args(["registries-conf", "--from", "cluster-resources"])
        .output()
        .unwrap();
    assert_eq!(run.status.code(), Some(0), "{}", text(&run.stderr));
    let written = text(&run.stdout);
    if let Some(difference) = compare_or_bless(&folder.join("registries.conf"), &written) {
        panic!("{difference}");
    }
    // ferry's parser reads it, and sends each public name where
    // disk-to-mirror put it.
    let conf = RegistriesConf::parse(Path::new("registries.conf"), &written).unwrap();
    let digest = format!("sha256:{}", "1".repeat(64));
    let first_source = |name: &str| {
        conf.pull_sources(&name.parse().unwrap()).unwrap()[0]
            .reference
            .to_string()
    };
    assert_eq!(
        first_source(&format!(
            "quay.io/openshift-release-dev/ocp-release@{digest}"
        )),
        format!("enterprise.example:5000/central/openshift/release-images@{digest}")
    );
    assert_eq!(
        first_source(&format!(
            "quay.io/openshift-release-dev/ocp-v4.0-art-dev@{digest}"
        )),
        format!("enterprise.example:5000/central/openshift/release@{digest}")
    );
    assert_eq!(
        first_source("registry.redhat.io/redhat/redhat-operator-index:v4.16"),
        "enterprise.example:5000/central/redhat/redhat-operator-index:v4.16"
    );
    // `-o FILE` writes the same text and says so on stdout.
    let out = tempfile::tempdir().unwrap();
    let file = out.path().join("conf/registries.conf");
    let run = Command::new(env!("CARGO_BIN_EXE_ferry"))
        .current_dir(&folder)
        .args([
            "registries-conf",
            "--from",
            "file://cluster-resources",
            "-o",
        ])
        .arg(&file)
        .output()
        .unwrap();
    assert_eq!(run.status.code(), Some(0), "{}", text(&run.stderr));
    assert_eq!(std::fs::read_to_string(&file).unwrap(), written);
    assert!(
        text(&run.stdout).contains("registries.conf written from cluster-resources"),
        "{}",
        text(&run.stdout)
    );
}

#[test]
fn registries_conf_refuses_bad_mirror_sets_with_the_place_named() {
    let folder = golden_path("enclave");
    let run = Command::new(env!("CARGO_BIN_EXE_ferry"))
        .current_dir(&folder)
        .args(["registries-conf", "--from", "bad-cluster-resources"])
        .output()
        .unwrap();
    assert_eq!(run.status.code(), Some(1));
    assert!(run.stdout.is_empty());
    if let Some(difference) = compare_or_bless(&folder.join("bad.stderr"), &text(&run.stderr)) {
        panic!("{difference}");
    }
    // A folder without mirror sets, and one that does not exist.
    for (from, expected) in [
        (
            ".",
            "holds neither idms-oc-mirror.yaml nor itms-oc-mirror.yaml",
        ),
        ("missing-folder", "missing-folder is not a folder"),
    ] {
        let run = Command::new(env!("CARGO_BIN_EXE_ferry"))
            .current_dir(&folder)
            .args(["registries-conf", "--from", from])
            .output()
            .unwrap();
        assert_eq!(run.status.code(), Some(1));
        assert!(
            text(&run.stderr).contains(expected),
            "{}",
            text(&run.stderr)
        );
    }
}
