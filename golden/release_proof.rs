//! Issue 11's proof as one test on the test world: an image set with two
//! channels, two architectures and `multi`, and `graph: true`,
//!
//! (a) mirror-to-mirror into one registry;
//! (b) mirror-to-disk, then disk-to-mirror into another registry with the
//!     update service, the graph-data URL, the signature store and every
//!     source registry stopped (only the delivery segments cross);
//!
//! both registries checked with skopeo: every payload and every component
//! by the digest the world gives it (payloads from the update graph,
//! components from each payload's own `image-references`), all copied by
//! `skopeo sync` (which checks every blob's digest), the multi payloads
//! whole, the graph image the same digest in both;
//! (c) a cluster played through the IDMS of (b): `ferry registries-conf`
//!     writes the registries.conf, and skopeo pulls every payload and
//!     component by its original name and digest from the mirror, with
//!     every address but loopback behind a proxy that does not answer;
//! (d) the UpdateService and the IDMS valid against the strict CRD schemas
//!     of the fixtures, the signature ConfigMap (json and yaml: the
//!     fixtures hold no ConfigMap schema) checked field by field, each
//!     entry the signature kept for its payload.
//!
//! A tampered, mislabelled (another payload's) or missing signature
//! stopping the run with exit 2 and nothing pushed is
//! `releases::a_tampered_mislabelled_or_missing_signature_stops_the_run_before_anything_is_pushed`.

use std::collections::{BTreeMap, BTreeSet};
use std::path::Path;
use std::process::Command;

use ferry_testworld::registry::{Flavour, Registry, Storage};
use ferry_testworld::releases::{
    COMPONENT_REPOSITORY, COMPONENTS, RELEASE_HOST, RELEASE_REPOSITORY, component_digests,
};
use ferry_testworld::world::World;
use serde_json::Value;

use crate::releases::{payload_digest, sign_world};
use crate::support::{
    assert_valid_against_crd, ferry, pulled_digest, sha256, succeeded, text, world_ferry,
    write_image_set,
};

/// stable-4.15's head (4.15.12) and stable-4.16's 4.16.2 (the graph has the
/// edge 4.15.12 -> 4.16.2, so the upgrade path adds nothing), for amd64,
/// arm64 and multi.
const PLATFORM: &str = "  platform:
    graph: true
    architectures: [amd64, arm64, multi]
    channels:
    - name: stable-4.15
    - name: stable-4.16
      minVersion: 4.16.2
      maxVersion: 4.16.2
";

const VERSIONS: [(&str, &str); 2] = [("stable-4.15", "4.15.12"), ("stable-4.16", "4.16.2")];
const ARCHITECTURES: [(&str, &str); 3] = [
    ("amd64", "x86_64"),
    ("arm64", "aarch64"),
    ("multi", "multi"),
];

/// What the world says the mirror must hold.
struct Expected {
    /// Release tag (`4.16.2-aarch64`) → payload digest.
    payloads: BTreeMap<String, String>,
    /// `<release tag>-<component>` → component digest.
    components: BTreeMap<String, String>,
}

fn expected(world: &World) -> Expected {
    let mut payloads = BTreeMap::new();
    let mut components = BTreeMap::new();
    for (channel, version) in VERSIONS {
        for (architecture, suffix) in ARCHITECTURES {
            let tag = format!("{version}-{suffix}");
            let payload = payload_digest(world, channel, architecture, version);
            let named = component_digests(world.content(), &payload).unwrap();
            assert_eq!(named.len(), COMPONENTS.len(), "{tag}");
            for (component, digest) in named {
                components.insert(format!("{tag}-{component}"), digest);
            }
            payloads.insert(tag, payload);
        }
    }
    Expected {
        payloads,
        components,
    }
}

/// `skopeo sync` of `repository` at `mirror` into `folder` (every tag, lists
/// whole, every blob's digest checked by skopeo): tag → the digest of the
/// manifest it copied.
fn synced(mirror: &str, repository: &str, folder: &Path) -> BTreeMap<String, String> {
    let target = folder.join(repository.replace('/', "-"));
    std::fs::create_dir_all(&target).unwrap();
    let output = Command::new("skopeo")
        .args(["sync", "--all", "--src", "docker", "--dest", "dir"])
        .args(["--src-tls-verify=false"])
        .arg(format!("{mirror}/{repository}"))
        .arg(&target)
        .output()
        .unwrap();
    assert!(
        output.status.success(),
        "skopeo sync {mirror}/{repository}: {}",
        text(&output.stderr)
    );
    let name = repository.rsplit('/').next().unwrap();
    let mut digests = BTreeMap::new();
    for entry in walk(&target) {
        if entry
            .file_name()
            .is_some_and(|file| file == "manifest.json")
        {
            let folder_name = entry.parent().unwrap().file_name().unwrap();
            let folder_name = folder_name.to_string_lossy();
            let tag = folder_name
                .strip_prefix(&format!("{name}:"))
                .unwrap_or_else(|| panic!("{} is not {name}:TAG", entry.display()));
            digests.insert(tag.to_owned(), sha256(&std::fs::read(&entry).unwrap()));
        }
    }
    digests
}

/// Every file below `folder`.
fn walk(folder: &Path) -> Vec<std::path::PathBuf> {
    let mut files = Vec::new();
    for entry in std::fs::read_dir(folder).unwrap().flatten() {
        if entry.file_type().unwrap().is_dir() {
            files.extend(walk(&entry.path()));
        } else {
            files.push(entry.path());
        }
    }
    files
}

/// Checks the releases at `mirror` (`host/prefix`) against the world's, and
/// the multi payloads' children copied whole; returns the graph image's
/// digest.
fn check_mirror(mirror: &str, expected: &Expected, folder: &Path) -> String {
    let copies = tempfile::tempdir_in(folder).unwrap();
    let payloads = synced(mirror, "openshift/release-images", copies.path());
    assert_eq!(payloads, expected.payloads, "payloads at {mirror}");
    let components = synced(mirror, "openshift/release", copies.path());
    assert_eq!(components, expected.components, "components at {mirror}");
    // `--all` copied each multi payload's two images too.
    for (tag, digest) in &expected.payloads {
        if tag.ends_with("-multi") {
            let list: Value = serde_json::from_slice(
                &std::fs::read(
                    copies
                        .path()
                        .join("openshift-release-images")
                        .join(format!("release-images:{tag}/manifest.json")),
                )
                .unwrap(),
            )
            .unwrap();
            let children = list["manifests"].as_array().unwrap();
            assert_eq!(children.len(), 2, "{tag} {digest}");
            for child in children {
                let child_digest = child["digest"].as_str().unwrap();
                assert!(
                    expected
                        .payloads
                        .values()
                        .any(|payload| payload == child_digest),
                    "{tag}: child {child_digest} is a payload of the world"
                );
            }
        }
    }
    let graph = synced(mirror, "openshift/graph-image", copies.path());
    assert_eq!(graph.keys().collect::<Vec<_>>(), ["latest"], "{graph:?}");
    graph["latest"].clone()
}

/// The UpdateService, the IDMS and the signature ConfigMap of a
/// `cluster-resources` folder for `mirror`; `kept`: the folder of the kept
/// signatures.
fn check_cluster_resources(resources: &Path, kept: &Path, mirror: &str, expected: &Expected) {
    let read = |name: &str| {
        std::fs::read_to_string(resources.join(name))
            .unwrap_or_else(|_| panic!("{name} in {}", resources.display()))
    };
    let update_service = read("updateService.yaml");
    assert_valid_against_crd(
        &update_service,
        "updateservice.operator.openshift.io_v1_UpdateService.strict.schema.json",
        ("  replicas", "  replica"),
    );
    assert!(
        update_service.contains(&format!(
            "  graphDataImage: {mirror}/openshift/graph-image:latest\n  releases: {mirror}/openshift/release-images\n"
        )),
        "{update_service}"
    );
    let idms = read("idms-oc-mirror.yaml");
    assert_valid_against_crd(
        &idms,
        "config.openshift.io_v1_ImageDigestMirrorSet.strict.schema.json",
        ("imageDigestMirrors", "imageDigestMirror"),
    );
    for (mirrored, source) in [
        ("openshift/release", COMPONENT_REPOSITORY),
        ("openshift/release-images", RELEASE_REPOSITORY),
    ] {
        assert!(
            idms.contains(&format!(
                "  - mirrors:\n    - {mirror}/{mirrored}\n    source: {RELEASE_HOST}/{source}\n"
            )),
            "{idms}"
        );
    }

    // The signature ConfigMap, in both forms: the same object, the fields
    // the cluster-version-operator reads and no other, one entry per
    // payload holding the signature kept for it.
    let json: Value = serde_json::from_str(&read("signature-configmap.json")).unwrap();
    let yaml: Value = serde_yaml::from_str(&read("signature-configmap.yaml")).unwrap();
    assert_eq!(json, yaml);
    let keys: BTreeSet<&str> = json
        .as_object()
        .unwrap()
        .keys()
        .map(String::as_str)
        .collect();
    assert_eq!(
        keys,
        BTreeSet::from(["apiVersion", "kind", "metadata", "binaryData"])
    );
    assert_eq!(json["apiVersion"], "v1");
    assert_eq!(json["kind"], "ConfigMap");
    assert_eq!(json["metadata"]["name"], "mirrored-release-signatures");
    assert_eq!(json["metadata"]["namespace"], "openshift-config-managed");
    assert_eq!(
        json["metadata"]["labels"]["release.openshift.io/verification-signatures"],
        ""
    );
    let binary_data = json["binaryData"].as_object().unwrap();
    assert_eq!(binary_data.len(), expected.payloads.len(), "{json}");
    let mut counters = BTreeSet::new();
    for (tag, digest) in &expected.payloads {
        let prefix = format!("sha256-{}-", digest.trim_start_matches("sha256:"));
        let (key, value) = binary_data
            .iter()
            .find(|(key, _)| key.starts_with(&prefix))
            .unwrap_or_else(|| panic!("{tag}: {prefix} in {json}"));
        counters.insert(key[prefix.len()..].parse::<usize>().unwrap());
        use base64::Engine as _;
        let bytes = base64::engine::general_purpose::STANDARD
            .decode(value.as_str().unwrap())
            .unwrap();
        let file = kept.join(format!("{tag}-{}", digest.replace(':', "-")));
        assert_eq!(bytes, std::fs::read(&file).unwrap(), "{}", file.display());
    }
    assert_eq!(counters, (1..=expected.payloads.len()).collect());
}

#[test]
fn two_channels_two_architectures_and_multi_with_the_graph_image_mirror_and_pull_through_the_idms()
{
    let started = std::time::Instant::now();
    let world = World::start().unwrap();
    let folder = tempfile::tempdir().unwrap();
    let folder = folder.path();
    let signing = sign_world(&world, folder, |_, _| {});
    let config = write_image_set(folder, "isc.yaml", PLATFORM);
    let expected = expected(&world);
    assert_eq!(expected.payloads.len(), 6);
    assert_eq!(expected.components.len(), 6 * COMPONENTS.len());

    // What the configuration selects, from the update graph alone.
    let listed = succeeded(
        ferry(folder, "list")
            .args(["releases", "-c", &config, "--format", "json"])
            .env("UPDATE_URL_OVERRIDE", world.graph_url()),
    );
    let listed: Vec<Value> = serde_json::from_slice(&listed.stdout).unwrap();
    let selected: BTreeSet<String> = listed
        .iter()
        .map(|row| {
            let suffix = ARCHITECTURES
                .iter()
                .find(|(architecture, _)| row["architecture"] == *architecture)
                .unwrap()
                .1;
            format!("{}-{suffix}", row["version"].as_str().unwrap())
        })
        .collect();
    assert_eq!(
        selected,
        expected.payloads.keys().cloned().collect::<BTreeSet<_>>()
    );
    let run = |subcommand: &str| {
        let mut command = world_ferry(&world, folder, subcommand);
        signing.environment(&mut command);
        command
            .env("FERRY_GRAPH_DATA_URL", world.graph_data_url())
            .args(["-c", &config]);
        command
    };

    // (a) Mirror-to-mirror.
    let first = Registry::start(Flavour::PlainHttp, Storage::Empty).unwrap();
    let first_mirror = format!("{}/mirror", first.host());
    let workspace = folder.join("workspace");
    succeeded(
        run("mirror")
            .arg("--workspace")
            .arg(format!("file://{}", workspace.display()))
            .arg(format!("docker://{first_mirror}")),
    );
    let first_graph_image = check_mirror(&first_mirror, &expected, folder);
    check_cluster_resources(
        &workspace.join("working-dir/cluster-resources"),
        &workspace.join("working-dir/signatures"),
        &first_mirror,
        &expected,
    );
    eprintln!("(a) mirror-to-mirror checked at {:?}", started.elapsed());

    // (b) Mirror-to-disk; then the disconnected side has the segments
    // alone, and nothing of the world answers.
    let out = folder.join("out");
    succeeded(run("mirror").arg(format!("file://{}", out.display())));
    succeeded(ferry(folder, "verify").arg(format!("file://{}", out.display())));
    // The graph data was read for the mirror-to-mirror run and again for
    // mirror-to-disk (another workspace); from here on its server is gone.
    assert_eq!(world.graph_server().graph_data_requests(), 2);
    let key_file = signing.key_file.clone();
    drop(signing.server);
    drop(world);
    let disconnected = folder.join("disconnected");
    std::fs::create_dir(&disconnected).unwrap();
    for entry in std::fs::read_dir(&out).unwrap().flatten() {
        if entry.file_name().to_string_lossy().starts_with("mirror_") {
            std::fs::copy(entry.path(), disconnected.join(entry.file_name())).unwrap();
        }
    }
    let second = Registry::start(Flavour::PlainHttp, Storage::Empty).unwrap();
    let second_mirror = format!("{}/mirror", second.host());
    succeeded(
        ferry(folder, "mirror")
            .args(["-c", &config, "--from"])
            .arg(format!("file://{}", disconnected.display()))
            .arg("--dest-tls-verify=false")
            .arg(format!("docker://{second_mirror}"))
            .env("FERRY_CACHE_DIR", folder.join("disconnected-cache"))
            .env("UPDATE_URL_OVERRIDE", "http://127.0.0.1:9/graph")
            .env("FERRY_GRAPH_DATA_URL", "http://127.0.0.1:9/graph-data")
            .env("OCP_SIGNATURE_URL", "http://127.0.0.1:9/signatures/")
            .env("OCP_SIGNATURE_VERIFICATION_PK", &key_file),
    );
    let second_graph_image = check_mirror(&second_mirror, &expected, folder);
    assert_eq!(
        second_graph_image, first_graph_image,
        "the same graph data and base build the same image"
    );
    let resources = disconnected.join("working-dir/cluster-resources");
    check_cluster_resources(
        &resources,
        &disconnected.join("working-dir/signatures"),
        &second_mirror,
        &expected,
    );
    eprintln!("(b) disk-to-mirror checked at {:?}", started.elapsed());

    // (c) A cluster through the IDMS: every payload and component by its
    // original name and digest, found at the mirror; any other address
    // goes to a proxy that does not answer.
    let cluster_conf = folder.join("cluster-registries.conf");
    succeeded(
        ferry(folder, "registries-conf")
            .arg("--from")
            .arg(format!("file://{}", disconnected.display()))
            .arg("--insecure")
            .arg("-o")
            .arg(&cluster_conf),
    );
    let originals: BTreeSet<String> = expected
        .payloads
        .values()
        .map(|digest| format!("{RELEASE_HOST}/{RELEASE_REPOSITORY}@{digest}"))
        .chain(
            expected
                .components
                .values()
                .map(|digest| format!("{RELEASE_HOST}/{COMPONENT_REPOSITORY}@{digest}")),
        )
        .collect();
    for original in &originals {
        pulled_digest(&cluster_conf, original, "http://127.0.0.1:9");
    }
    eprintln!(
        "(c) {} original references pulled through the IDMS; the whole proof took {:?}",
        originals.len(),
        started.elapsed()
    );
}
