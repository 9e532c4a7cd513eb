//! `ferry list releases` end to end against the test world's update-graph
//! server and registry (`UPDATE_URL_OVERRIDE` pointing at the loopback
//! graph server): ferry's `-c` rows in JSON and text, oc-mirror's listings,
//! and the errors that exit 1.

use std::collections::BTreeMap;
use std::path::Path;
use std::process::{Command, Output};

use ferry_testworld::world::World;

fn ferry(world: &World, arguments: &[&str]) -> Output {
    Command::new(env!("CARGO_BIN_EXE_ferry"))
        .args(["list", "releases"])
        .args(arguments)
        .env("UPDATE_URL_OVERRIDE", world.graph_url())
        .env("REGISTRY_AUTH_FILE", "/nonexistent/ferry-no-auth.json")
        .output()
        .unwrap()
}

fn text(bytes: &[u8]) -> String {
    String::from_utf8_lossy(bytes).into_owned()
}

fn write(folder: &Path, name: &str, body: &str) -> String {
    let path = folder.join(name);
    std::fs::write(
        &path,
        format!(
            "kind: ImageSetConfiguration\napiVersion: mirror.openshift.io/v2alpha1\nmirror:\n{body}"
        ),
    )
    .unwrap();
    path.display().to_string()
}

/// Payload digests of the world's releases by (architecture, version).
fn payloads() -> BTreeMap<(String, String), String> {
    let mut content = ferry_testworld::content::Content::default();
    ferry_testworld::releases::add_releases(&mut content)
}

#[test]
fn list_releases_against_the_test_world() {
    let world = World::start().unwrap();
    let folder = tempfile::tempdir().unwrap();

    // Two channels, amd64 and multi: stable-4.15's head 4.15.12 and
    // stable-4.16 pinned to 4.16.0; the cross-channel path adds nothing new,
    // and the only update between them is conditional, which is warned about.
    let config = write(
        folder.path(),
        "two-channels.yaml",
        "  platform:\n    architectures: [amd64, multi]\n    channels:\n    - name: stable-4.15\n    - name: stable-4.16\n      minVersion: 4.16.0\n      maxVersion: 4.16.0\n  additionalImages:\n  - name: quay.io/ferry-demo/hello:1.0\n",
    );
    let listed = ferry(&world, &["-c", &config, "--format", "json"]);
    let stderr = text(&listed.stderr);
    assert_eq!(listed.status.code(), Some(0), "{stderr}");
    let rows: serde_json::Value = serde_json::from_slice(&listed.stdout).unwrap();
    let payloads = payloads();
    let expected: Vec<serde_json::Value> = [
        ("stable-4.15", "amd64", "4.15.12"),
        ("stable-4.16", "amd64", "4.16.0"),
        ("stable-4.15", "multi", "4.15.12"),
        ("stable-4.16", "multi", "4.16.0"),
    ]
    .into_iter()
    .map(|(channel, architecture, version)| {
        let digest = &payloads[&(architecture.to_owned(), version.to_owned())];
        serde_json::json!({
            "channel": channel,
            "architecture": architecture,
            "version": version,
            "payload": format!("quay.io/openshift-release-dev/ocp-release@{digest}"),
        })
    })
    .collect();
    assert_eq!(rows, serde_json::Value::Array(expected));
    assert_eq!(stderr.matches("warning: ").count(), 2, "{stderr}");
    assert!(
        stderr.contains("no upgrade path from 4.15.12 to 4.16.0 (multi)")
            && stderr.contains("(conditional: FerryTestWorldRisk)"),
        "{stderr}"
    );

    // The same as a table.
    let table = ferry(&world, &["-c", &config]);
    assert_eq!(table.status.code(), Some(0));
    let stdout = text(&table.stdout);
    assert_eq!(stdout.lines().count(), 5, "{stdout}");
    assert!(stdout.starts_with("CHANNEL      ARCHITECTURE  VERSION  PAYLOAD\nstable-4.15  amd64         4.15.12  quay.io/"), "{stdout}");

    // No platform: an empty array, exit 0.
    let none = write(
        folder.path(),
        "none.yaml",
        "  additionalImages:\n  - name: quay.io/ferry-demo/hello:1.0\n",
    );
    let listed = ferry(&world, &["-c", &none, "--format", "json"]);
    assert_eq!(
        (listed.status.code(), text(&listed.stdout).as_str()),
        (Some(0), "[]\n")
    );

    // shortestPath to a version the graph lacks: exit 1, naming channel and versions.
    let missing = write(
        folder.path(),
        "missing.yaml",
        "  platform:\n    channels:\n    - name: stable-4.16\n      minVersion: 4.16.0\n      maxVersion: 4.16.5\n      shortestPath: true\n",
    );
    let failed = ferry(&world, &["-c", &missing, "--format", "json"]);
    assert_eq!(failed.status.code(), Some(1));
    assert!(failed.stdout.is_empty());
    assert_eq!(
        text(&failed.stderr),
        "error: release channel \"stable-4.16\" (amd64): maxVersion 4.16.5 is not in the update graph, and \
         shortestPath needs both ends in it (the nearest version is 4.16.2 (the highest))\n"
    );

    // An invalid configuration: the diagnostics with file and line, exit 1.
    let invalid = write(
        folder.path(),
        "invalid.yaml",
        "  platform:\n    channels:\n    - name: stable-4.16\n      minVersoin: 4.16.0\n",
    );
    let failed = ferry(&world, &["-c", &invalid]);
    assert_eq!(failed.status.code(), Some(1));
    let stderr = text(&failed.stderr);
    assert!(
        stderr.contains("unknown field `minVersoin`") && stderr.contains("invalid.yaml:7:7"),
        "{stderr}"
    );

    // oc-mirror's listings.
    let versions = ferry(&world, &["--version", "4.16", "--filter-by-archs", "arm64"]);
    assert_eq!(
        versions.status.code(),
        Some(0),
        "{}",
        text(&versions.stderr)
    );
    assert_eq!(
        text(&versions.stdout),
        "Listing stable channels. Use --channel=<name> to filter.\n\
         Use oc-mirror --v2 list releases --channels --version=4.16 to discover other channels.\n\n\
         Channel: stable-4.16\nArchitecture: arm64\n4.15.12\n4.16.0\n4.16.1\n4.16.2\n"
    );
    let channels = ferry(&world, &["--channels", "--version", "4.15"]);
    assert_eq!(
        text(&channels.stdout),
        "Listing channels for version 4.15:\n\ncandidate-4.15\ncandidate-4.16\nfast-4.15\nfast-4.16\nstable-4.15\nstable-4.16\n"
    );
    let registries_conf = world.registries_conf().display().to_string();
    let majors = ferry(&world, &["--registries-conf", &registries_conf]);
    assert_eq!(majors.status.code(), Some(0), "{}", text(&majors.stderr));
    assert_eq!(
        text(&majors.stdout),
        "Available OpenShift Container Platform release versions:\n  4.15\n  4.16\n"
    );
    let unknown = ferry(&world, &["--channel", "fast-9.9"]);
    assert_eq!(unknown.status.code(), Some(1));
    assert!(
        text(&unknown.stderr).contains("answered 404"),
        "{}",
        text(&unknown.stderr)
    );
    let bad_flags = ferry(&world, &["--channels", "--filter-by-archs", "x86_64"]);
    assert_eq!(bad_flags.status.code(), Some(1));
    assert_eq!(
        text(&bad_flags.stderr),
        "error: must specify --version with --channels\n"
    );

    // An update service that does not answer: exit 1, naming it.
    let closed = Command::new(env!("CARGO_BIN_EXE_ferry"))
        .args(["list", "releases", "-c", &config])
        .env("UPDATE_URL_OVERRIDE", "http://127.0.0.1:9/graph")
        .output()
        .unwrap();
    assert_eq!(closed.status.code(), Some(1));
    assert!(
        text(&closed.stderr).starts_with("error: update service http://127.0.0.1:9/graph?arch=amd64&channel=stable-4.15: cannot connect"),
        "{}",
        text(&closed.stderr)
    );
}
