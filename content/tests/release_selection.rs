//! Release selection (notes §5.2) against the real stable-4.13 amd64 graph,
//! hand-made graphs, and the test world's graphs. Every expectation below
//! was worked out by hand from the JSON (versions listed, edges followed
//! breadth-first with the highest version first) and is explained next to
//! its case.

use std::collections::BTreeMap;
use std::path::PathBuf;

use ferry_content::release::graph::UpdateGraph;
use ferry_content::release::selection::{
    Graphs, RangeEnd, Selection, SelectionError, SelectionWarning, configured_graphs, select,
};
use ferry_schemas::config::{Architecture, Platform};

const STABLE_4_13: &str = "openshift+oc-mirror/tests/unit/testdata/working-dir-fake/hold-release/cincinnati-graph-data/amd64-stable-4.13.json";

fn fixture(relative: &str) -> Vec<u8> {
    let path = PathBuf::from(env!("CARGO_MANIFEST_DIR"))
        .join("../../shared/fixtures")
        .join(relative);
    std::fs::read(&path).unwrap_or_else(|error| panic!("reading {}: {error}", path.display()))
}

fn version(text: &str) -> semver::Version {
    semver::Version::parse(text).unwrap()
}

fn versions(list: &[&str]) -> Vec<semver::Version> {
    list.iter().map(|text| version(text)).collect()
}

/// The `platform:` of a configuration whose `platform:` body is `body`
/// (indented by four spaces, as under `mirror:`).
fn platform(body: &str) -> Platform {
    let text = format!(
        "kind: ImageSetConfiguration\napiVersion: mirror.openshift.io/v2alpha1\nmirror:\n  platform:\n{body}"
    );
    let loaded = ferry_schemas::load_image_set_configuration(&text)
        .unwrap_or_else(|problems| panic!("{text}\n{problems:?}"));
    loaded.config.mirror.platform.expect("a platform")
}

/// The real stable-4.13 graph.
fn stable_4_13() -> UpdateGraph {
    UpdateGraph::parse(&fixture(STABLE_4_13)).unwrap()
}

/// A channel's graph cut out of the real stable-4.13 response: the nodes
/// whose metadata lists `channel`, and the edges between them. (The real
/// service answers each channel separately; the fixture holds one answer,
/// and every 4.12 release it lists also names stable-4.12.)
fn derived(channel: &str) -> UpdateGraph {
    let mut document: serde_json::Value = serde_json::from_slice(&fixture(STABLE_4_13)).unwrap();
    let nodes = document["nodes"].as_array().unwrap().clone();
    let keep: Vec<usize> = (0..nodes.len())
        .filter(|&index| {
            nodes[index]["metadata"]["io.openshift.upgrades.graph.release.channels"]
                .as_str()
                .unwrap()
                .split(',')
                .any(|name| name == channel)
        })
        .collect();
    let new_index: BTreeMap<usize, usize> = keep
        .iter()
        .enumerate()
        .map(|(new, old)| (*old, new))
        .collect();
    let kept_versions: Vec<serde_json::Value> = keep
        .iter()
        .map(|index| nodes[*index]["version"].clone())
        .collect();
    document["nodes"] = keep.iter().map(|index| nodes[*index].clone()).collect();
    document["edges"] = document["edges"]
        .as_array()
        .unwrap()
        .iter()
        .filter_map(|edge| {
            let from = new_index.get(&(edge[0].as_u64().unwrap() as usize))?;
            let to = new_index.get(&(edge[1].as_u64().unwrap() as usize))?;
            Some(serde_json::json!([from, to]))
        })
        .collect();
    for group in document["conditionalEdges"].as_array_mut().unwrap() {
        let pairs: Vec<serde_json::Value> = group["edges"]
            .as_array()
            .unwrap()
            .iter()
            .filter(|pair| {
                kept_versions.contains(&pair["from"]) && kept_versions.contains(&pair["to"])
            })
            .cloned()
            .collect();
        group["edges"] = pairs.into();
    }
    UpdateGraph::parse(&serde_json::to_vec(&document).unwrap()).unwrap()
}

fn real_graphs() -> Graphs {
    let mut graphs = Graphs::new();
    graphs.insert(
        ("stable-4.13".to_owned(), Architecture::Amd64),
        stable_4_13(),
    );
    graphs
}

/// The selected versions of the only architecture.
fn selected(selection: &Selection) -> Vec<semver::Version> {
    assert_eq!(selection.architectures.len(), 1);
    selection.architectures[0]
        .releases()
        .into_iter()
        .map(|release| release.version.clone())
        .collect()
}

fn errors(platform: &Platform, graphs: &Graphs) -> Vec<SelectionError> {
    select(platform, graphs).unwrap_err().errors
}

/// All 4.13 versions of the channel (4.13.7 and 4.13.16 never shipped in it).
const ALL_4_13: [&str; 41] = [
    "4.13.0", "4.13.1", "4.13.2", "4.13.3", "4.13.4", "4.13.5", "4.13.6", "4.13.8", "4.13.9",
    "4.13.10", "4.13.11", "4.13.12", "4.13.13", "4.13.14", "4.13.15", "4.13.17", "4.13.18",
    "4.13.19", "4.13.21", "4.13.22", "4.13.23", "4.13.24", "4.13.25", "4.13.26", "4.13.27",
    "4.13.28", "4.13.29", "4.13.30", "4.13.31", "4.13.32", "4.13.33", "4.13.34", "4.13.35",
    "4.13.36", "4.13.37", "4.13.38", "4.13.39", "4.13.40", "4.13.41", "4.13.42", "4.13.43",
];

#[test]
fn head_only_takes_the_highest_version() {
    // No min, no max, no full: max = the channel's highest (4.13.43), min = max.
    let platform = platform("    channels:\n    - name: stable-4.13\n");
    let selection = select(&platform, &real_graphs()).unwrap();
    assert_eq!(selected(&selection), versions(&["4.13.43"]));
    let release = &selection.architectures[0].releases()[0];
    // The payload of the 4.13.43 node in the JSON.
    assert_eq!(
        release.payload.to_string(),
        "quay.io/openshift-release-dev/ocp-release@sha256:d0da3d9b016e6d693a61c9425598921b6d0da99c52cb0f3404f6dbc126149e5d"
    );
    assert_eq!(release.channel, "stable-4.13");
    assert!(selection.warnings.is_empty(), "{:?}", selection.warnings);
}

#[test]
fn min_only_runs_to_the_channel_head() {
    // min 4.13.40, max unset = 4.13.43: 40, 41, 42, 43.
    let platform = platform("    channels:\n    - name: stable-4.13\n      minVersion: 4.13.40\n");
    let selection = select(&platform, &real_graphs()).unwrap();
    assert_eq!(
        selected(&selection),
        versions(&["4.13.40", "4.13.41", "4.13.42", "4.13.43"])
    );
    assert!(selection.warnings.is_empty(), "{:?}", selection.warnings);
}

#[test]
fn max_only_starts_at_the_channel_minimum() {
    // max 4.12.3, min unset = the lowest version of the channel, 4.12.0.
    let platform = platform("    channels:\n    - name: stable-4.13\n      maxVersion: 4.12.3\n");
    let selection = select(&platform, &real_graphs()).unwrap();
    assert_eq!(
        selected(&selection),
        versions(&["4.12.0", "4.12.1", "4.12.2", "4.12.3"])
    );
    assert_eq!(
        selection.architectures[0].channels[0].min,
        version("4.12.0")
    );
}

#[test]
fn min_and_max_take_every_version_between() {
    // 4.13.5 to 4.13.10: 4.13.7 is not in the channel, so five releases.
    let platform = platform(
        "    channels:\n    - name: stable-4.13\n      minVersion: 4.13.5\n      maxVersion: 4.13.10\n",
    );
    let selection = select(&platform, &real_graphs()).unwrap();
    assert_eq!(
        selected(&selection),
        versions(&["4.13.5", "4.13.6", "4.13.8", "4.13.9", "4.13.10"])
    );
    // 4.13.5 -> 4.13.10 is a plain edge of the graph: no upgrade-path warning.
    assert!(selection.warnings.is_empty(), "{:?}", selection.warnings);
}

#[test]
fn full_takes_the_whole_channel() {
    let platform = platform("    channels:\n    - name: stable-4.13\n      full: true\n");
    let selection = select(&platform, &real_graphs()).unwrap();
    let all = selected(&selection);
    assert_eq!(all.len(), 98);
    assert_eq!(all.first(), Some(&version("4.12.0")));
    assert_eq!(all[57..], versions(&ALL_4_13)[..]);
}

#[test]
fn range_ends_missing_from_the_graph_select_between_and_warn() {
    // 4.13.7 and 4.13.16 are not in the graph: oc-mirror's range still takes
    // 4.13.8 .. 4.13.15 (4.13.8, 9, 10, 11, 12, 13, 14, 15); ferry warns,
    // naming the neighbours (4.13.6/4.13.8 and 4.13.15/4.13.17).
    let platform = platform(
        "    channels:\n    - name: stable-4.13\n      minVersion: 4.13.7\n      maxVersion: 4.13.16\n",
    );
    let selection = select(&platform, &real_graphs()).unwrap();
    assert_eq!(
        selected(&selection),
        versions(&[
            "4.13.8", "4.13.9", "4.13.10", "4.13.11", "4.13.12", "4.13.13", "4.13.14", "4.13.15"
        ])
    );
    let messages: Vec<String> = selection.warnings.iter().map(ToString::to_string).collect();
    assert_eq!(messages.len(), 2, "{messages:?}");
    assert!(matches!(
        &selection.warnings[0],
        SelectionWarning::RangeEndNotInGraph { end: RangeEnd::Min, version: missing, .. } if *missing == version("4.13.7")
    ));
    assert_eq!(
        messages[0],
        "release channel \"stable-4.13\" (amd64): minVersion 4.13.7 is not in the update graph; the releases \
         between the range ends are selected (the nearest versions are 4.13.6 and 4.13.8)"
    );
    assert!(
        messages[1].contains("maxVersion 4.13.16"),
        "{}",
        messages[1]
    );
    assert!(
        messages[1].contains("4.13.15 and 4.13.17"),
        "{}",
        messages[1]
    );
}

#[test]
fn shortest_path_is_breadth_first_highest_first() {
    // From 4.12.0 the successors, highest first, start with 4.12.58, and
    // 4.12.58 -> 4.13.43 is an edge: 4.12.0 -> 4.12.58 -> 4.13.43.
    let platform = platform(
        "    channels:\n    - name: stable-4.13\n      minVersion: 4.12.0\n      maxVersion: 4.13.43\n      shortestPath: true\n",
    );
    let selection = select(&platform, &real_graphs()).unwrap();
    assert_eq!(
        selected(&selection),
        versions(&["4.12.0", "4.12.58", "4.13.43"])
    );
    assert!(selection.warnings.is_empty(), "{:?}", selection.warnings);
    // The same answer every time.
    assert_eq!(select(&platform, &real_graphs()).unwrap(), selection);
}

#[test]
fn shortest_path_without_a_plain_path_keeps_both_ends_and_the_check_names_the_conditional_step() {
    // No plain path leads from 4.12.10 to 4.13.10 (every update into 4.13.10
    // from 4.12 is conditional on AcceleratedNetworkingRace). oc-mirror keeps
    // both ends. ferry's check finds 4.12.10 -> 4.12.31 (plain; 4.12.31 is the
    // highest successor of 4.12.10 with an update into 4.13.10) -> 4.13.10
    // (conditional), so 4.12.31 is to add. The channel uses shortestPath, so
    // widening it would not add 4.12.31: the suggestion is a channel its
    // metadata lists that the configuration lacks, same prefix first.
    let platform = platform(
        "    channels:\n    - name: stable-4.13\n      minVersion: 4.12.10\n      maxVersion: 4.13.10\n      shortestPath: true\n",
    );
    let selection = select(&platform, &real_graphs()).unwrap();
    assert_eq!(selected(&selection), versions(&["4.12.10", "4.13.10"]));
    let [SelectionWarning::NoUpgradePath(warning)] = &selection.warnings[..] else {
        panic!("{:?}", selection.warnings);
    };
    assert_eq!(warning.path, versions(&["4.12.10", "4.12.31", "4.13.10"]));
    assert_eq!(warning.versions_to_add, versions(&["4.12.31"]));
    assert_eq!(warning.conditional_steps.len(), 1);
    assert_eq!(warning.conditional_steps[0].from, version("4.12.31"));
    assert_eq!(
        warning.conditional_steps[0].risks,
        ["AcceleratedNetworkingRace"]
    );
    assert_eq!(
        warning.configuration,
        "- name: stable-4.12\n  minVersion: 4.12.31\n  maxVersion: 4.12.31\n"
    );
    let message = warning.to_string();
    assert!(
        message.contains("4.12.31 -> 4.13.10 (conditional: AcceleratedNetworkingRace)"),
        "{message}"
    );
}

#[test]
fn shortest_path_ends_missing_from_the_graph_are_errors() {
    let platform = platform(
        "    channels:\n    - name: stable-4.13\n      minVersion: 4.13.7\n      maxVersion: 4.13.10\n      shortestPath: true\n",
    );
    let errors = errors(&platform, &real_graphs());
    assert_eq!(errors.len(), 1);
    assert_eq!(
        errors[0].to_string(),
        "release channel \"stable-4.13\" (amd64): minVersion 4.13.7 is not in the update graph, and \
         shortestPath needs both ends in it (the nearest versions are 4.13.6 and 4.13.8)"
    );
}

#[test]
fn min_above_the_channel_head_is_an_error() {
    // max unset = 4.13.43, below min 4.13.50.
    let platform = platform("    channels:\n    - name: stable-4.13\n      minVersion: 4.13.50\n");
    let errors = errors(&platform, &real_graphs());
    assert_eq!(
        errors,
        [SelectionError::MinAboveMax {
            channel: "stable-4.13".to_owned(),
            architecture: Architecture::Amd64,
            min: version("4.13.50"),
            max: version("4.13.43"),
        }]
    );
    assert!(
        errors[0]
            .to_string()
            .contains("minVersion 4.13.50 is greater than maxVersion 4.13.43")
    );
}

#[test]
fn a_missing_graph_is_named_so_the_caller_can_fetch_it() {
    let platform =
        platform("    architectures: [amd64, arm64]\n    channels:\n    - name: stable-4.13\n");
    assert_eq!(
        configured_graphs(&platform),
        [
            ("stable-4.13".to_owned(), Architecture::Amd64),
            ("stable-4.13".to_owned(), Architecture::Arm64)
        ]
    );
    let failed = select(&platform, &real_graphs()).unwrap_err();
    assert_eq!(
        failed.missing_graph(),
        Some(("stable-4.13".to_owned(), Architecture::Arm64))
    );
    assert_eq!(
        failed.to_string(),
        "no update graph for channel \"stable-4.13\" (arm64)"
    );
}

#[test]
fn cross_channel_path_joins_the_lowest_minimum_to_the_highest_maximum() {
    // stable-4.12 (cut from the fixture: the 57 releases 4.12.0..4.12.58)
    // pinned to 4.12.10, stable-4.13 pinned to 4.13.43. Cross-channel: in
    // stable-4.12 from 4.12.10 to its latest, 4.12.58 (a direct edge), then
    // in stable-4.13 from 4.12.58 to 4.13.43 (a direct edge).
    let platform = platform(
        "    channels:\n    - name: stable-4.12\n      minVersion: 4.12.10\n      maxVersion: 4.12.10\n    - name: stable-4.13\n      minVersion: 4.13.43\n      maxVersion: 4.13.43\n",
    );
    let mut graphs = real_graphs();
    let failed = select(&platform, &graphs).unwrap_err();
    assert_eq!(
        failed.missing_graph(),
        Some(("stable-4.12".to_owned(), Architecture::Amd64))
    );
    graphs.insert(
        ("stable-4.12".to_owned(), Architecture::Amd64),
        derived("stable-4.12"),
    );
    let selection = select(&platform, &graphs).unwrap();
    let architecture = &selection.architectures[0];
    let cross: Vec<_> = architecture
        .cross_channel
        .iter()
        .map(|release| release.version.clone())
        .collect();
    assert_eq!(cross, versions(&["4.12.10", "4.12.58", "4.13.43"]));
    assert_eq!(architecture.cross_channel[1].channel, "stable-4.12");
    assert_eq!(
        selected(&selection),
        versions(&["4.12.10", "4.12.58", "4.13.43"])
    );
    assert!(selection.warnings.is_empty(), "{:?}", selection.warnings);
}

#[test]
fn cross_channel_gap_is_warned_with_the_lines_that_close_it() {
    // As above but stable-4.13 pinned to 4.13.10: no plain path from 4.12.58
    // to 4.13.10, so oc-mirror adds 4.12.10, 4.12.58 and 4.13.10 only. The
    // check finds 4.12.10 -> 4.12.31 -> 4.13.10 (the last step conditional)
    // and widens the configured stable-4.12 to reach 4.12.31.
    let platform_text = |stable_4_12_max: &str| {
        format!(
            "    channels:\n    - name: stable-4.12\n      minVersion: 4.12.10\n      maxVersion: {stable_4_12_max}\n    - name: stable-4.13\n      minVersion: 4.13.10\n      maxVersion: 4.13.10\n"
        )
    };
    let mut graphs = real_graphs();
    graphs.insert(
        ("stable-4.12".to_owned(), Architecture::Amd64),
        derived("stable-4.12"),
    );
    let selection = select(&platform(&platform_text("4.12.10")), &graphs).unwrap();
    assert_eq!(
        selected(&selection),
        versions(&["4.12.10", "4.12.58", "4.13.10"])
    );
    let [SelectionWarning::NoUpgradePath(warning)] = &selection.warnings[..] else {
        panic!("{:?}", selection.warnings);
    };
    assert_eq!(warning.versions_to_add, versions(&["4.12.31"]));
    assert_eq!(
        warning.configuration,
        "- name: stable-4.12\n  minVersion: 4.12.10\n  maxVersion: 4.12.31\n"
    );
    // With the suggested lines 4.12.31 is selected; only the conditional step remains.
    let selection = select(&platform(&platform_text("4.12.31")), &graphs).unwrap();
    assert!(selected(&selection).contains(&version("4.12.31")));
    let [SelectionWarning::NoUpgradePath(warning)] = &selection.warnings[..] else {
        panic!("{:?}", selection.warnings);
    };
    assert!(warning.versions_to_add.is_empty());
    assert_eq!(warning.conditional_steps.len(), 1);
}

/// Hand-made graphs: stable-4.1 = 4.1.0, 4.1.1, 4.1.2 (0->1, 1->2, 0->2);
/// stable-4.2 = 4.1.1, 4.2.0, 4.2.1 (4.1.1->4.2.0, 4.2.0->4.2.1): the
/// latest 4.1 release, 4.1.2, is not in stable-4.2 (a blocked edge).
fn hand_made() -> Graphs {
    let node = |version: &str| serde_json::json!({"version": version, "payload": format!("quay.io/example/release:{version}"), "metadata": {}});
    let stable_4_1 = serde_json::json!({
        "nodes": [node("4.1.0"), node("4.1.1"), node("4.1.2")],
        "edges": [[0, 1], [1, 2], [0, 2]],
    });
    let stable_4_2 = serde_json::json!({
        "nodes": [node("4.1.1"), node("4.2.0"), node("4.2.1")],
        "edges": [[0, 1], [1, 2]],
    });
    let mut graphs = Graphs::new();
    for (channel, document) in [("stable-4.1", stable_4_1), ("stable-4.2", stable_4_2)] {
        graphs.insert(
            (channel.to_owned(), Architecture::Amd64),
            UpdateGraph::parse(document.to_string().as_bytes()).unwrap(),
        );
    }
    graphs
}

#[test]
fn a_blocked_cross_channel_path_is_warned_and_the_missing_releases_named() {
    // stable-4.1 pinned to 4.1.0, stable-4.2 head (4.2.1). Cross-channel: in
    // stable-4.1 4.1.0 -> 4.1.2 (direct edge, highest first); 4.1.2 is not in
    // stable-4.2, so the path stops and only 4.2.1 is added. Selected: 4.1.0,
    // 4.1.2, 4.2.1. A real path is 4.1.0 -> 4.1.1 -> 4.2.0 -> 4.2.1: add 4.1.1
    // (widen stable-4.1) and 4.2.0 (widen stable-4.2).
    let text = |stable_4_1_max: &str, stable_4_2_min: &str| {
        format!(
            "    channels:\n    - name: stable-4.1\n      minVersion: 4.1.0\n      maxVersion: {stable_4_1_max}\n    - name: stable-4.2\n      minVersion: {stable_4_2_min}\n"
        )
    };
    let selection = select(&platform(&text("4.1.0", "4.2.1")), &hand_made()).unwrap();
    assert_eq!(selected(&selection), versions(&["4.1.0", "4.1.2", "4.2.1"]));
    assert!(matches!(
        &selection.warnings[0],
        SelectionWarning::CrossChannelBlocked { version: blocked, channel, .. }
            if *blocked == version("4.1.2") && channel == "stable-4.2"
    ));
    let SelectionWarning::NoUpgradePath(warning) = &selection.warnings[1] else {
        panic!("{:?}", selection.warnings);
    };
    assert_eq!(
        warning.path,
        versions(&["4.1.0", "4.1.1", "4.2.0", "4.2.1"])
    );
    assert_eq!(warning.versions_to_add, versions(&["4.1.1", "4.2.0"]));
    assert!(warning.conditional_steps.is_empty());
    assert_eq!(
        warning.configuration,
        "- name: stable-4.1\n  minVersion: 4.1.0\n  maxVersion: 4.1.1\n- name: stable-4.2\n  minVersion: 4.2.0\n  maxVersion: 4.2.1\n"
    );
    // Applying the lines: 4.1.0, 4.1.1 | 4.2.0, 4.2.1 | cross 4.1.2: a path exists.
    let selection = select(&platform(&text("4.1.1", "4.2.0")), &hand_made()).unwrap();
    assert_eq!(
        selected(&selection),
        versions(&["4.1.0", "4.1.1", "4.1.2", "4.2.0", "4.2.1"])
    );
    assert_eq!(
        selection.warnings.len(),
        1,
        "only the blocked edge: {:?}",
        selection.warnings
    );
}

#[test]
fn a_payload_that_is_no_reference_fails_only_when_selected() {
    // oc-mirror's v1 test graph names payloads "if selected will fail".
    let graph = UpdateGraph::parse(
        br#"{"nodes":[{"version":"0.1.0","payload":"if selected will fail"},
                      {"version":"0.2.0","payload":"quay.io/example/release@sha256:45bd855587ffd7777810ef126e7b46fc164bcd90cf1b989bbeb6c266a7949079"}],
             "edges":[[0,1]]}"#,
    )
    .unwrap();
    let mut graphs = Graphs::new();
    graphs.insert(("stable-0.1".to_owned(), Architecture::Amd64), graph);
    let head = select(
        &platform("    channels:\n    - name: stable-0.1\n"),
        &graphs,
    )
    .unwrap();
    assert_eq!(selected(&head), versions(&["0.2.0"]));
    let errors = errors(
        &platform("    channels:\n    - name: stable-0.1\n      full: true\n"),
        &graphs,
    );
    assert!(
        matches!(&errors[..], [SelectionError::InvalidPayload { version: bad, .. }] if *bad == version("0.1.0"))
    );
    assert!(
        errors[0]
            .to_string()
            .contains("payload `if selected will fail` is not an image reference")
    );
}

#[test]
fn an_explicit_release_asks_no_graph_and_an_empty_channel_selects_nothing() {
    let explicit =
        platform("    release: quay.io/openshift-release-dev/ocp-release:4.16.2-x86_64\n");
    assert!(configured_graphs(&explicit).is_empty());
    let selection = select(&explicit, &Graphs::new()).unwrap();
    assert_eq!(
        selection.explicit_release.unwrap().to_string(),
        "quay.io/openshift-release-dev/ocp-release:4.16.2-x86_64"
    );
    let mut graphs = Graphs::new();
    graphs.insert(
        ("stable-9.9".to_owned(), Architecture::Amd64),
        UpdateGraph::parse(br#"{"nodes":[],"edges":[]}"#).unwrap(),
    );
    let errors = errors(
        &platform("    channels:\n    - name: stable-9.9\n"),
        &graphs,
    );
    assert_eq!(
        errors[0].to_string(),
        "release channel \"stable-9.9\" (amd64): the update graph has no releases"
    );
}

#[test]
fn a_wide_eus_range_is_warned_once() {
    let mut graphs = Graphs::new();
    graphs.insert(
        ("eus-4.14".to_owned(), Architecture::Amd64),
        derived("eus-4.14"),
    );
    // eus-4.14 in the fixture lists every 4.12 and 4.13 release it holds: 4.12.0 .. 4.13.43.
    let platform = platform(
        "    channels:\n    - name: eus-4.14\n      minVersion: 4.12.0\n      maxVersion: 4.14.0\n",
    );
    let selection = select(&platform, &graphs).unwrap();
    assert_eq!(selected(&selection).len(), 98);
    assert!(
        matches!(&selection.warnings[0], SelectionWarning::EusRange { channel } if channel == "eus-4.14")
    );
    assert!(matches!(
        &selection.warnings[1],
        SelectionWarning::RangeEndNotInGraph {
            end: RangeEnd::Max,
            ..
        }
    ));
}

/// The test world's graphs (stable-4.15: 4.15.10-12; stable-4.16: 4.15.12,
/// 4.16.0-2; every later version reachable by a plain edge except 4.15.12 ->
/// 4.16.0, which is conditional), parsed, with its payload digests.
fn world() -> (Graphs, ferry_testworld::releases::PayloadDigests) {
    let mut content = ferry_testworld::content::Content::default();
    let payloads = ferry_testworld::releases::add_releases(&mut content);
    let mut graphs = Graphs::new();
    for ((channel, architecture), body) in ferry_testworld::releases::graphs(&payloads) {
        let architecture = Architecture::ALL
            .into_iter()
            .find(|candidate| candidate.name() == architecture)
            .unwrap();
        graphs.insert(
            (channel, architecture),
            UpdateGraph::parse(body.as_bytes()).unwrap(),
        );
    }
    (graphs, payloads)
}

#[test]
fn the_test_worlds_two_channels_and_three_architectures() {
    // Heads of both channels: 4.15.12 and 4.16.2; the cross-channel path is
    // 4.15.12 (stable-4.15's latest) -> 4.16.2 (a direct plain edge in
    // stable-4.16). Same for amd64, arm64 and multi, with each one's payload.
    let (graphs, payloads) = world();
    let platform = platform(
        "    architectures: [amd64, arm64, multi]\n    channels:\n    - name: stable-4.15\n    - name: stable-4.16\n",
    );
    let selection = select(&platform, &graphs).unwrap();
    assert!(selection.warnings.is_empty(), "{:?}", selection.warnings);
    assert_eq!(selection.architectures.len(), 3);
    for architecture in &selection.architectures {
        let releases = architecture.releases();
        let found: Vec<String> = releases
            .iter()
            .map(|release| release.version.to_string())
            .collect();
        assert_eq!(found, ["4.15.12", "4.16.2"]);
        for release in releases {
            let digest = &payloads[&(
                architecture.architecture.name().to_owned(),
                release.version.to_string(),
            )];
            assert_eq!(
                release.payload.to_string(),
                format!("quay.io/openshift-release-dev/ocp-release@{digest}")
            );
        }
    }
}

#[test]
fn the_test_worlds_conditional_update_is_named() {
    // stable-4.15 head 4.15.12 and stable-4.16 pinned to 4.16.0: the only
    // update from 4.15.12 to 4.16.0 is conditional (FerryTestWorldRisk), and
    // no plain path leads there (updates only go up, and nothing below 4.16.0
    // but 4.15.12 is in stable-4.16): nothing to add, the risk is named.
    let (graphs, _) = world();
    let platform = platform(
        "    channels:\n    - name: stable-4.15\n    - name: stable-4.16\n      minVersion: 4.16.0\n      maxVersion: 4.16.0\n",
    );
    let selection = select(&platform, &graphs).unwrap();
    assert_eq!(selected(&selection), versions(&["4.15.12", "4.16.0"]));
    let [SelectionWarning::NoUpgradePath(warning)] = &selection.warnings[..] else {
        panic!("{:?}", selection.warnings);
    };
    assert_eq!(warning.path, versions(&["4.15.12", "4.16.0"]));
    assert!(warning.versions_to_add.is_empty() && warning.configuration.is_empty());
    assert_eq!(warning.conditional_steps[0].risks, ["FerryTestWorldRisk"]);
    assert_eq!(
        warning.to_string(),
        "the selected releases leave no upgrade path from 4.15.12 to 4.16.0 (amd64); the shortest path is \
         4.15.12 -> 4.16.0; it needs conditional updates: 4.15.12 -> 4.16.0 (conditional: FerryTestWorldRisk)"
    );
}

#[test]
fn platforms_ask_for_multi_and_architectures_are_deduplicated() {
    use ferry_content::release::selection::architectures;
    let filtered = platform(
        "    platforms:\n    - os: linux\n      architecture: arm64\n    channels:\n    - name: stable-4.16\n",
    );
    assert_eq!(architectures(&filtered), [Architecture::Multi]);
    assert_eq!(
        configured_graphs(&filtered),
        [("stable-4.16".to_owned(), Architecture::Multi)]
    );
    let default = platform("    channels:\n    - name: stable-4.16\n");
    assert_eq!(architectures(&default), [Architecture::Amd64]);
}

#[test]
fn a_cross_channel_path_needs_channel_names_ending_in_a_version() {
    // Two channels: the cross-channel path parses MAJOR.MINOR from the
    // names; "custom" has none, so selection fails naming it.
    let mut graphs = hand_made();
    let custom = graphs[&("stable-4.2".to_owned(), Architecture::Amd64)].clone();
    graphs.insert(("custom".to_owned(), Architecture::Amd64), custom);
    let platform = platform(
        "    channels:\n    - name: stable-4.1\n      minVersion: 4.1.0\n    - name: custom\n",
    );
    let errors = errors(&platform, &graphs);
    assert_eq!(
        errors,
        [SelectionError::InvalidChannelName {
            channel: "custom".to_owned()
        }]
    );
}
