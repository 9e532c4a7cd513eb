//! Parsing update-service responses and building graph queries, against the
//! real stable-4.13 response, oc-mirror's small test graph, its invalid v1
//! graph, and the corrected Cincinnati JSON Schema.

use std::path::PathBuf;

use ferry_content::release::graph::{GraphError, OCP_UPDATE_URL, UpdateGraph, graph_query_url};
use ferry_schemas::config::Architecture;

fn fixtures() -> PathBuf {
    PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("../../shared/fixtures")
}

fn read(relative: &str) -> Vec<u8> {
    let path = fixtures().join(relative);
    std::fs::read(&path).unwrap_or_else(|error| panic!("reading {}: {error}", path.display()))
}

const STABLE_4_13: &str = "openshift+oc-mirror/tests/unit/testdata/working-dir-fake/hold-release/cincinnati-graph-data/amd64-stable-4.13.json";
const SMALL: &str = "openshift+oc-mirror/tests/integration/testdata/graphdatas/graph_data.json";
const INVALID_V1: &str = "openshift+oc-mirror/v1/test/e2e/graph/cincinnatti.json";
const SCHEMA: &str = "derived/jsonschema/cincinnati/cincinnati-graph.schema.json";

fn version(text: &str) -> semver::Version {
    semver::Version::parse(text).unwrap()
}

fn schema_accepts(bytes: &[u8]) -> bool {
    let schema: serde_json::Value = serde_json::from_slice(&read(SCHEMA)).unwrap();
    let instance: serde_json::Value = serde_json::from_slice(bytes).unwrap();
    jsonschema::validator_for(&schema)
        .expect("the schema compiles")
        .is_valid(&instance)
}

#[test]
fn the_real_stable_4_13_response_parses_whole() {
    let bytes = read(STABLE_4_13);
    assert!(
        schema_accepts(&bytes),
        "the corrected schema accepts the real response"
    );
    let graph = UpdateGraph::parse(&bytes).unwrap();
    // Counts from the file itself (INDEX.md §4: 98 nodes, 1171 edges, 37 groups
    // of conditional edges; the groups hold 2,394 version pairs in all, counted
    // with a one-off script over `conditionalEdges[].edges`).
    assert_eq!(graph.nodes.len(), 98);
    assert_eq!(graph.edges.len(), 1171);
    assert_eq!(graph.conditional_edges.len(), 2394);
    assert_eq!(graph.lowest(), Some(&version("4.12.0")));
    assert_eq!(graph.highest(), Some(&version("4.13.43")));
    // The first node of the file is 4.12.20 with its payload and channels.
    let first = &graph.nodes[0];
    assert_eq!(first.version, version("4.12.20"));
    assert_eq!(
        first.payload,
        "quay.io/openshift-release-dev/ocp-release@sha256:5c504578e34e8cf6eb70fad7a9bee92896b6d38d09b6d81891f730ee4f9d268b"
    );
    assert!(first.channels().contains(&"eus-4.14"));
    assert!(graph.channel_names().contains("stable-4.12"));
    // 4.13.7 and 4.13.16 are missing from the channel: neighbours around them.
    let (below, above) = graph.neighbours_of(&version("4.13.7"));
    assert_eq!(
        (below, above),
        (Some(&version("4.13.6")), Some(&version("4.13.8")))
    );
    // Every conditional edge of the 4.13.36 group carries its risks.
    let to_36 = graph
        .conditional_edges
        .iter()
        .find(|edge| graph.nodes[edge.to].version == version("4.13.36"))
        .unwrap();
    assert!(!to_36.risks.is_empty() && !to_36.risks[0].name.is_empty());
}

#[test]
fn the_small_oc_mirror_graph_parses_with_its_channels() {
    let bytes = read(SMALL);
    assert!(schema_accepts(&bytes));
    let graph = UpdateGraph::parse(&bytes).unwrap();
    let versions: Vec<String> = graph.versions().iter().map(ToString::to_string).collect();
    assert_eq!(versions, ["4.20.0", "4.20.1", "4.20.2"]);
    assert_eq!(graph.edges, [(0, 1), (1, 2)]);
    assert!(graph.conditional_edges.is_empty());
    assert_eq!(graph.nodes[0].channels(), ["stable-4.20", "eus-4.20"]);
    assert_eq!(graph.shortest_path(0, 2), Some(vec![0, 1, 2]));
    assert_eq!(graph.shortest_path(2, 0), None);
}

#[test]
fn the_invalid_v1_graph_is_refused_with_the_edge_that_breaks_it() {
    let bytes = read(INVALID_V1);
    assert!(!schema_accepts(&bytes), "the schema refuses it too");
    // Four nodes; the first edge [8, 41] names nodes that do not exist.
    assert_eq!(
        UpdateGraph::parse(&bytes),
        Err(GraphError::EdgeOutOfRange {
            index: 0,
            from: 8,
            to: 41,
            nodes: 4
        })
    );
    // With the edges repaired, its conditional group without risks is next.
    let mut document: serde_json::Value = serde_json::from_slice(&bytes).unwrap();
    document["edges"] = serde_json::json!([[0, 1]]);
    let repaired = serde_json::to_vec(&document).unwrap();
    assert_eq!(
        UpdateGraph::parse(&repaired),
        Err(GraphError::ConditionalEdgeWithoutRisks { group: 0 })
    );
    // With risks, the pair 0.1.1 -> 0.1.2 names a version the graph lacks.
    document["conditionalEdges"][0]["risks"] =
        serde_json::json!([{"name": "R", "url": "u", "message": "m", "matchingRules": []}]);
    let with_risks = serde_json::to_vec(&document).unwrap();
    let error = UpdateGraph::parse(&with_risks).unwrap_err();
    assert_eq!(
        error,
        GraphError::ConditionalEdgeUnknownVersion {
            group: 0,
            from: "0.1.1".to_owned(),
            to: "0.1.2".to_owned()
        }
    );
    assert!(error.to_string().contains("`0.1.1` -> `0.1.2`"), "{error}");
}

#[test]
fn bad_responses_give_clear_errors() {
    let cases: [(&str, &str); 5] = [
        ("not json", "not valid JSON"),
        (r#"{"nodes": []}"#, "missing field `edges`"),
        (
            r#"{"nodes":[{"version":"4.1","payload":"p","metadata":{}}],"edges":[]}"#,
            "node 0: version `4.1` is not a semantic version",
        ),
        (
            r#"{"nodes":[{"version":"4.1.0","payload":"a"},{"version":"4.1.0","payload":"b"}],"edges":[]}"#,
            "nodes 0 and 1 both have version 4.1.0",
        ),
        (
            r#"{"nodes":[{"version":"4.1.0","payload":"a"}],"edges":[[0, -1]]}"#,
            "not valid JSON",
        ),
    ];
    for (body, expected) in cases {
        let error = UpdateGraph::parse(body.as_bytes()).unwrap_err();
        assert!(error.to_string().contains(expected), "{body}: {error}");
    }
    // Without `version` and `conditionalEdges` (the test world's shape) it parses.
    let graph = UpdateGraph::parse(
        br#"{"nodes":[{"version":"4.1.0","payload":"a","metadata":{}}],"edges":[[0,0]]}"#,
    )
    .unwrap();
    assert_eq!(graph.edges, [(0, 0)]);
}

#[test]
fn query_urls_add_only_the_query_string() {
    let url = graph_query_url(OCP_UPDATE_URL, "stable-4.13", Architecture::Amd64).unwrap();
    assert_eq!(
        url.as_str(),
        "https://api.openshift.com/api/upgrades_info/v1/graph?arch=amd64&channel=stable-4.13"
    );
    // An override is the full endpoint, plain HTTP included; its own query is kept.
    let url = graph_query_url(
        "http://127.0.0.1:33771/graph",
        "eus-4.14",
        Architecture::S390x,
    )
    .unwrap();
    assert_eq!(
        url.as_str(),
        "http://127.0.0.1:33771/graph?arch=s390x&channel=eus-4.14"
    );
    let url = graph_query_url(
        "http://osus.example/api/graph?x=1",
        "fast-4.16",
        Architecture::Multi,
    )
    .unwrap();
    assert_eq!(
        url.as_str(),
        "http://osus.example/api/graph?x=1&arch=multi&channel=fast-4.16"
    );
    for architecture in Architecture::ALL {
        let url = graph_query_url(OCP_UPDATE_URL, "a b", architecture).unwrap();
        assert!(
            url.as_str()
                .ends_with(&format!("arch={}&channel=a+b", architecture.name())),
            "{url}"
        );
    }
    let error = graph_query_url(
        "api.openshift.com/graph",
        "stable-4.13",
        Architecture::Amd64,
    )
    .unwrap_err();
    assert!(
        error
            .to_string()
            .contains("`api.openshift.com/graph` is not a valid URL"),
        "{error}"
    );
    assert!(graph_query_url("file:///etc/passwd", "c", Architecture::Amd64).is_err());
}
