//! The release listings: `list releases` flags and texts, and the rows of
//! `ferry list releases -c ISC.yaml --format json`.

use std::path::PathBuf;

use ferry_content::release::graph::UpdateGraph;
use ferry_content::release::listing::{
    ListError, ListReleases, list_releases, release_rows, render_channels, render_major_versions,
    render_versions, rows_json, rows_text, stable_channel_hint,
};
use ferry_content::release::selection::{Graphs, select};
use ferry_schemas::config::Architecture;

fn stable_4_13() -> UpdateGraph {
    let path = PathBuf::from(env!("CARGO_MANIFEST_DIR")).join(
        "../../shared/fixtures/openshift+oc-mirror/tests/unit/testdata/working-dir-fake/hold-release/cincinnati-graph-data/amd64-stable-4.13.json",
    );
    UpdateGraph::parse(&std::fs::read(path).unwrap()).unwrap()
}

fn strings(list: &[&str]) -> Vec<String> {
    list.iter().map(|text| (*text).to_owned()).collect()
}

#[test]
fn flags_are_read_as_oc_mirror_reads_them() {
    assert_eq!(
        list_releases(Some("4.13"), None, false, &[]),
        Ok(ListReleases::Versions {
            version: "4.13".to_owned(),
            channel: "stable-4.13".to_owned(),
            architectures: vec![Architecture::Amd64],
        })
    );
    assert_eq!(
        list_releases(
            Some("4.13"),
            Some("fast-4.13"),
            false,
            &strings(&["amd64,arm64", "multi"])
        ),
        Ok(ListReleases::Versions {
            version: "4.13".to_owned(),
            channel: "fast-4.13".to_owned(),
            architectures: vec![
                Architecture::Amd64,
                Architecture::Arm64,
                Architecture::Multi
            ],
        })
    );
    assert_eq!(
        list_releases(Some("4.13"), None, true, &[]),
        Ok(ListReleases::Channels {
            version: "4.13".to_owned(),
            channel: "stable-4.13".to_owned()
        })
    );
    assert_eq!(
        list_releases(None, None, false, &[]),
        Ok(ListReleases::MajorVersions)
    );
    assert_eq!(
        list_releases(None, Some("fast-4.13"), true, &[]),
        Err(ListError::ChannelsWithoutVersion)
    );
    let error = list_releases(
        None,
        Some("stable-4.13"),
        false,
        &strings(&["x86_64,arm64,i386"]),
    )
    .unwrap_err();
    assert_eq!(
        error.to_string(),
        "invalid architecture(s) [i386 x86_64]. Known architectures: [amd64 arm64 multi ppc64le s390x]"
    );
}

#[test]
fn channels_are_the_union_over_the_nodes() {
    // The real stable-4.13 response names eleven channels in its nodes'
    // metadata: candidate/fast/stable for 4.12, 4.13 and 4.14, eus-4.12, eus-4.14.
    let text = render_channels("4.13", &stable_4_13());
    assert_eq!(
        text,
        "Listing channels for version 4.13:\n\ncandidate-4.12\ncandidate-4.13\ncandidate-4.14\neus-4.12\neus-4.14\n\
         fast-4.12\nfast-4.13\nfast-4.14\nstable-4.12\nstable-4.13\nstable-4.14\n"
    );
}

#[test]
fn versions_of_a_channel_per_architecture() {
    let graph = stable_4_13();
    let text = render_versions("stable-4.13", Architecture::Amd64, &graph).unwrap();
    let lines: Vec<&str> = text.lines().collect();
    assert_eq!(
        lines[..3],
        ["Channel: stable-4.13", "Architecture: amd64", "4.12.0"]
    );
    assert_eq!(lines.len(), 2 + 98);
    assert_eq!(lines.last(), Some(&"4.13.43"));
    // Sorted by semver, not as text: 4.12.2 comes before 4.12.10.
    let two = lines.iter().position(|line| *line == "4.12.2").unwrap();
    let ten = lines.iter().position(|line| *line == "4.12.10").unwrap();
    assert!(two < ten);
    let empty = UpdateGraph::parse(br#"{"nodes":[],"edges":[]}"#).unwrap();
    assert_eq!(
        render_versions("stable-9.9", Architecture::Arm64, &empty),
        None
    );
    assert_eq!(
        stable_channel_hint("stable-4.13", "4.13").unwrap(),
        "Listing stable channels. Use --channel=<name> to filter.\nUse oc-mirror --v2 list releases --channels --version=4.13 to discover other channels.\n\n"
    );
    assert_eq!(stable_channel_hint("fast-4.13", "4.13"), None);
}

#[test]
fn major_versions_come_from_the_tags() {
    let tags = strings(&[
        "4.9.0-x86_64",
        "4.16.2-aarch64",
        "4.16.2-multi",
        "sha256-abc.sig",
        "4.10.3",
        "latest",
        "4.1.0-rc.3-s390x",
    ]);
    assert_eq!(
        render_major_versions(&tags),
        "Available OpenShift Container Platform release versions:\n  4.1\n  4.9\n  4.10\n  4.16\n"
    );
}

#[test]
fn rows_are_one_per_release_and_architecture() {
    // The test world: stable-4.16 with full, amd64 and arm64: 4.15.12,
    // 4.16.0, 4.16.1, 4.16.2 for each, 8 rows, architectures in the
    // configuration's order.
    let mut content = ferry_testworld::content::Content::default();
    let payloads = ferry_testworld::releases::add_releases(&mut content);
    let mut graphs = Graphs::new();
    for ((channel, architecture), body) in ferry_testworld::releases::graphs(&payloads) {
        let Some(architecture) = Architecture::ALL
            .into_iter()
            .find(|a| a.name() == architecture)
        else {
            continue;
        };
        graphs.insert(
            (channel, architecture),
            UpdateGraph::parse(body.as_bytes()).unwrap(),
        );
    }
    let text = "kind: ImageSetConfiguration\napiVersion: mirror.openshift.io/v2alpha1\nmirror:\n  platform:\n    architectures: [arm64, amd64]\n    channels:\n    - name: stable-4.16\n      full: true\n";
    let platform = ferry_schemas::load_image_set_configuration(text)
        .unwrap()
        .config
        .mirror
        .platform
        .unwrap();
    let rows = release_rows(&select(&platform, &graphs).unwrap());
    assert_eq!(rows.len(), 8);
    assert_eq!(rows[0].architecture.as_deref(), Some("arm64"));
    assert_eq!(rows[0].version.as_deref(), Some("4.15.12"));
    assert_eq!(rows[4].architecture.as_deref(), Some("amd64"));
    assert_eq!(rows[7].version.as_deref(), Some("4.16.2"));
    let digest = &payloads[&("amd64".to_owned(), "4.16.2".to_owned())];
    assert_eq!(
        rows[7].payload,
        format!("quay.io/openshift-release-dev/ocp-release@{digest}")
    );
    let json: serde_json::Value = serde_json::from_str(&rows_json(&rows)).unwrap();
    let array = json.as_array().unwrap();
    assert_eq!(array.len(), 8);
    let keys: Vec<&String> = array[0].as_object().unwrap().keys().collect();
    assert_eq!(keys, ["channel", "architecture", "version", "payload"]);
    assert_eq!(array[0]["channel"], "stable-4.16");
    assert_eq!(rows_json(&[]), "[]");
    let table = rows_text(&rows);
    assert!(
        table.starts_with("CHANNEL      ARCHITECTURE  VERSION  PAYLOAD\n"),
        "{table}"
    );
    assert_eq!(table.lines().count(), 9);
    // An explicit release: one row, channel, architecture and version unknown.
    let explicit = "kind: ImageSetConfiguration\napiVersion: mirror.openshift.io/v2alpha1\nmirror:\n  platform:\n    release: quay.io/openshift-release-dev/ocp-release:4.16.2-x86_64\n";
    let platform = ferry_schemas::load_image_set_configuration(explicit)
        .unwrap()
        .config
        .mirror
        .platform
        .unwrap();
    let rows = release_rows(&select(&platform, &Graphs::new()).unwrap());
    assert_eq!(
        rows_json(&rows),
        "[\n  {\n    \"channel\": null,\n    \"architecture\": null,\n    \"version\": null,\n    \"payload\": \"quay.io/openshift-release-dev/ocp-release:4.16.2-x86_64\"\n  }\n]"
    );
}
