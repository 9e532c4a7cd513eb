//! `graph: true` end to end on the test world: the graph-data image built
//! from the world's graph-data tarball (`FERRY_GRAPH_DATA_URL`) over the
//! world's `registry.access.redhat.com/ubi9/ubi:latest`, checked with skopeo
//! (its last layer lists the graph data under
//! `/var/lib/cincinnati-graph-data`, its other layers are the base's), the
//! same digest on every build, reused with `UPDATE_URL_OVERRIDE` alone,
//! `updateService.yaml` (golden, and valid against the strict CRD schema)
//! written while the image is in the set and removed after, the dry run's
//! mapping, and mirror-to-disk then disk-to-mirror with every source and
//! the update service stopped.

use std::collections::BTreeSet;
use std::path::Path;
use std::process::Command;

use ferry_testworld::registry::{Flavour, Registry, Storage};
use ferry_testworld::world::World;
use serde_json::Value;

use crate::releases::{Signing, sign_world};
use crate::support::{
    assert_valid_against_crd, compare_or_bless, exited, golden_path, sha256, skopeo_raw_bytes,
    text, world_ferry, write_image_set,
};

const GRAPH_IMAGE: &str = "openshift/graph-image:latest";
const GRAPH_DATA: &str = "var/lib/cincinnati-graph-data/";

fn configuration(folder: &Path, name: &str, graph: bool) -> String {
    write_image_set(
        folder,
        name,
        &format!(
            "  platform:\n    graph: {graph}\n    architectures: [amd64, multi]\n    channels:\n    - name: stable-4.16\n      minVersion: 4.16.2\n      maxVersion: 4.16.2\n"
        ),
    )
}

/// `ferry SUBCOMMAND` with the world's registries, signatures and update
/// service; `graph_data`: whether `FERRY_GRAPH_DATA_URL` names the world's
/// tarball.
fn ferry(
    world: &World,
    signing: &Signing,
    folder: &Path,
    graph_data: bool,
    subcommand: &str,
) -> Command {
    let mut command = world_ferry(world, folder, subcommand);
    signing.environment(&mut command);
    if graph_data {
        command.env("FERRY_GRAPH_DATA_URL", world.graph_data_url());
    }
    command
}

fn skopeo_raw(reference: &str) -> Value {
    let bytes = skopeo_raw_bytes(reference).unwrap_or_else(|| panic!("{reference} is not there"));
    serde_json::from_slice(&bytes).unwrap()
}

/// Checks the graph image at `reference` with skopeo: its last layer holds
/// the world's graph data under the graph-data folder, its other layers are
/// those of the world's ubi (linux/amd64), its command is oc-mirror's.
/// Returns its digest.
fn check_graph_image(reference: &str, base: &Value, folder: &Path) -> String {
    let manifest = skopeo_raw(reference);
    let layers: Vec<&str> = manifest["layers"]
        .as_array()
        .unwrap()
        .iter()
        .map(|layer| layer["digest"].as_str().unwrap())
        .collect();
    let base_layers: Vec<&str> = base["layers"]
        .as_array()
        .unwrap()
        .iter()
        .map(|layer| layer["digest"].as_str().unwrap())
        .collect();
    assert_eq!(
        layers[..layers.len() - 1],
        base_layers[..],
        "the base's layers first"
    );
    let copy = tempfile::tempdir_in(folder).unwrap().keep();
    let copied = Command::new("skopeo")
        .args(["copy", "--src-tls-verify=false"])
        .arg(format!("docker://{reference}"))
        .arg(format!("dir:{}", copy.display()))
        .output()
        .unwrap();
    assert!(copied.status.success(), "{}", text(&copied.stderr));
    let last = layers.last().unwrap().trim_start_matches("sha256:");
    let layer = std::fs::read(copy.join(last)).unwrap();
    let names: BTreeSet<String> = tar::Archive::new(layer.as_slice())
        .entries()
        .unwrap()
        .map(|entry| entry.unwrap().path().unwrap().display().to_string())
        .collect();
    for expected in [
        GRAPH_DATA.to_owned(),
        format!("{GRAPH_DATA}version"),
        format!("{GRAPH_DATA}channels/stable-4.16.yaml"),
        format!("{GRAPH_DATA}blocked-edges/4.16.0-known-risk.yaml"),
    ] {
        assert!(names.contains(&expected), "{expected} in {names:?}");
    }
    let config_digest = manifest["config"]["digest"].as_str().unwrap();
    let config: Value = serde_json::from_slice(
        &std::fs::read(copy.join(config_digest.trim_start_matches("sha256:"))).unwrap(),
    )
    .unwrap();
    assert_eq!(
        config["config"]["Cmd"],
        serde_json::json!([
            "/bin/bash",
            "-c",
            "exec cp -rp /var/lib/cincinnati-graph-data/* /var/lib/cincinnati/graph-data"
        ])
    );
    assert_eq!(config["architecture"], "amd64");
    let bytes = std::fs::read(copy.join("manifest.json")).unwrap();
    sha256(&bytes)
}

/// The world's ubi (linux/amd64 image of the list), as skopeo reads it.
fn base_image(world: &World) -> Value {
    let list = skopeo_raw(&format!(
        "{}/registry.access.redhat.com/ubi9/ubi:latest",
        world.registry().host()
    ));
    let amd64 = list["manifests"]
        .as_array()
        .unwrap()
        .iter()
        .find(|manifest| manifest["platform"]["architecture"] == "amd64")
        .unwrap();
    skopeo_raw(&format!(
        "{}/registry.access.redhat.com/ubi9/ubi@{}",
        world.registry().host(),
        amd64["digest"].as_str().unwrap()
    ))
}

/// The UpdateService is valid against the strict CRD schema, which refuses
/// an unknown field.
fn assert_valid_update_service(text: &str) {
    assert_valid_against_crd(
        text,
        "updateservice.operator.openshift.io_v1_UpdateService.strict.schema.json",
        ("  replicas", "  replica"),
    );
}

#[test]
fn the_graph_image_is_built_mirrored_and_named_by_the_update_service() {
    let world = World::start().unwrap();
    let destination = Registry::start(Flavour::PlainHttp, Storage::Empty).unwrap();
    let folder = tempfile::tempdir().unwrap();
    let folder = folder.path();
    let signing = sign_world(&world, folder, |_, _| {});
    let config = configuration(folder, "graph.yaml", true);
    let workspace = format!("file://{}", folder.join("workspace").display());
    let host = destination.host();
    let target = format!("docker://{host}/mirror");
    let run = |command: &str, config: &str, graph_data: bool, extra: &[&str]| {
        ferry(&world, &signing, folder, graph_data, command)
            .args(["-c", config, "--workspace", &workspace])
            .args(extra)
            .arg(&target)
            .output()
            .unwrap()
    };

    // The plan and the dry run name it.
    let planned = exited(&run("plan", &config, true, &[]), 0);
    assert!(planned.contains("graph-image"), "{planned}");
    let dry = exited(&run("mirror", &config, true, &["--dry-run"]), 0);
    assert!(dry.contains("dry run"), "{dry}");
    let mapping =
        std::fs::read_to_string(folder.join("workspace/working-dir/dry-run/mapping.txt")).unwrap();
    assert!(
        mapping.contains(&format!("=docker://{host}/mirror/{GRAPH_IMAGE}\n")),
        "{mapping}"
    );

    exited(&run("mirror", &config, true, &[]), 0);
    let base = base_image(&world);
    let digest = check_graph_image(&format!("{host}/mirror/{GRAPH_IMAGE}"), &base, folder);

    // updateService.yaml, golden (the destination's port replaced) and
    // valid; the graph image is in neither mirror set.
    let resources = folder.join("workspace/working-dir/cluster-resources");
    let update_service = std::fs::read_to_string(resources.join("updateService.yaml")).unwrap();
    assert_valid_update_service(&update_service);
    let shown = update_service
        .replace(&host, "MIRROR")
        .replace(env!("CARGO_PKG_VERSION"), "VERSION");
    if let Some(mismatch) = compare_or_bless(&golden_path("graph_image/updateService.yaml"), &shown)
    {
        panic!("{mismatch}");
    }
    let mirror_sets = format!(
        "{}{}",
        std::fs::read_to_string(resources.join("idms-oc-mirror.yaml")).unwrap_or_default(),
        std::fs::read_to_string(resources.join("itms-oc-mirror.yaml")).unwrap_or_default()
    );
    assert!(!mirror_sets.contains("graph-image"), "{mirror_sets}");

    // Built again from the same tarball: the same digest, nothing to do.
    let again = run("plan", &config, true, &["--detailed-exitcode"]);
    assert_eq!(again.status.code(), Some(0), "{}", text(&again.stdout));
    // UPDATE_URL_OVERRIDE alone: nothing downloaded, the image built last
    // reused from the cache, nothing to do either.
    let reused = run("plan", &config, false, &["--detailed-exitcode"]);
    exited(&reused, 0);
    // A workspace that never built it reuses the one the cache holds (the
    // enclave flow): the same image, nothing to do.
    let fresh = |cache: &str| {
        ferry(&world, &signing, folder, false, "plan")
            .args(["-c", &config, "--detailed-exitcode", "--workspace"])
            .arg(format!("file://{}", folder.join("fresh").display()))
            .arg(&target)
            .env("FERRY_CACHE_DIR", folder.join(cache))
            .output()
            .unwrap()
    };
    let from_cache = fresh("cache");
    exited(&from_cache, 0);
    // ... and with a cache that has none either, it is a release error.
    let none = fresh("empty-cache");
    let stderr = text(&none.stderr);
    assert_eq!(none.status.code(), Some(2), "{stderr}");
    assert!(stderr.contains("FERRY_GRAPH_DATA_URL"), "{stderr}");
    assert!(stderr.contains("empty-cache/graph-image.json"), "{stderr}");

    // A plan saved with --ignore-release-signature applies without
    // verifying: here no signature can be had, none is kept in this
    // workspace, and apply still runs (it verified before the flag was
    // recorded in plans).
    let ignoring = folder.join("ignoring");
    let plan_file = folder.join("ignoring.json");
    let unsigned = |command: &mut Command| {
        command
            .env("OCP_SIGNATURE_URL", "http://127.0.0.1:9/signatures/")
            .env("UPDATE_URL_OVERRIDE", world.graph_url())
            .env("FERRY_GRAPH_DATA_URL", world.graph_data_url())
            .env("REGISTRY_AUTH_FILE", folder.join("no-auth.json"))
            .env("FERRY_CACHE_DIR", folder.join("cache"));
    };
    let mut planning = ferry(&world, &signing, folder, true, "plan");
    unsigned(&mut planning);
    exited(
        &planning
            .args(["-c", &config, "--ignore-release-signature", "--workspace"])
            .arg(format!("file://{}", ignoring.display()))
            .arg("--out")
            .arg(&plan_file)
            .arg(&target)
            .output()
            .unwrap(),
        0,
    );
    let mut applying = Command::new(env!("CARGO_BIN_EXE_ferry"));
    unsigned(&mut applying);
    exited(&applying.arg("apply").arg(&plan_file).output().unwrap(), 0);

    // `graph` leaves the configuration: the UpdateService goes.
    let without = configuration(folder, "no-graph.yaml", false);
    let output = exited(&run("mirror", &without, true, &[]), 0);
    assert!(!resources.join("updateService.yaml").exists(), "{output}");
    assert!(output.contains("updateService.yaml"), "{output}");
    assert_eq!(
        check_graph_image(&format!("{host}/mirror/{GRAPH_IMAGE}"), &base, folder),
        digest,
        "what was pushed stays"
    );
}

#[test]
fn mirror_to_disk_delivers_the_graph_image_and_disk_to_mirror_pushes_it_offline() {
    let world = World::start().unwrap();
    let folder = tempfile::tempdir().unwrap();
    let folder = folder.path();
    let signing = sign_world(&world, folder, |_, _| {});
    let config = configuration(folder, "graph.yaml", true);
    let out = folder.join("out");
    let to_disk = exited(
        &ferry(&world, &signing, folder, true, "mirror")
            .args(["-c", &config])
            .arg(format!("file://{}", out.display()))
            .output()
            .unwrap(),
        0,
    );
    assert!(to_disk.contains("graph-image"), "{to_disk}");
    let verified = Command::new(env!("CARGO_BIN_EXE_ferry"))
        .args(["verify", &format!("file://{}", out.display())])
        .output()
        .unwrap();
    assert_eq!(
        verified.status.code(),
        Some(0),
        "{}",
        text(&verified.stderr)
    );
    let record: Value = serde_json::from_slice(
        &std::fs::read(out.join("working-dir/hold-release/graph-image.json")).unwrap(),
    )
    .unwrap();
    let built = sha256(record["manifest"].as_str().unwrap().as_bytes());
    let base = base_image(&world);

    // The disconnected side: the segments alone, every source, the update
    // service and the signature server gone.
    drop(world);
    drop(signing.server);
    let enclave = folder.join("enclave");
    std::fs::create_dir(&enclave).unwrap();
    for entry in std::fs::read_dir(&out).unwrap() {
        let entry = entry.unwrap();
        if entry.file_name().to_string_lossy().starts_with("mirror_") {
            std::fs::copy(entry.path(), enclave.join(entry.file_name())).unwrap();
        }
    }
    let destination = Registry::start(Flavour::PlainHttp, Storage::Empty).unwrap();
    let host = destination.host();
    let from_disk = Command::new(env!("CARGO_BIN_EXE_ferry"))
        .args(["mirror", "-c", &config, "--from"])
        .arg(format!("file://{}", enclave.display()))
        .arg("--dest-tls-verify=false")
        .arg(format!("docker://{host}/mirror"))
        .env("UPDATE_URL_OVERRIDE", "http://127.0.0.1:9/graph")
        .env("FERRY_GRAPH_DATA_URL", "http://127.0.0.1:9/graph-data")
        .env("OCP_SIGNATURE_URL", "http://127.0.0.1:9/signatures/")
        .env("OCP_SIGNATURE_VERIFICATION_PK", &signing.key_file)
        .env("REGISTRY_AUTH_FILE", folder.join("no-auth.json"))
        .env("FERRY_CACHE_DIR", folder.join("enclave-cache"))
        .env("SOURCE_DATE_EPOCH", "1764028800")
        .output()
        .unwrap();
    exited(&from_disk, 0);
    let pushed = skopeo_raw(&format!("{host}/mirror/{GRAPH_IMAGE}"));
    let layers = pushed["layers"].as_array().unwrap();
    assert_eq!(layers.len(), base["layers"].as_array().unwrap().len() + 1);
    // The pushed manifest is the one built at the connected side, byte for
    // byte.
    let output = Command::new("skopeo")
        .args(["inspect", "--tls-verify=false", "--format", "{{.Digest}}"])
        .arg(format!("docker://{host}/mirror/{GRAPH_IMAGE}"))
        .output()
        .unwrap();
    assert_eq!(text(&output.stdout).trim(), built);
    let update_service =
        std::fs::read_to_string(enclave.join("working-dir/cluster-resources/updateService.yaml"))
            .unwrap();
    assert_valid_update_service(&update_service);
    assert!(
        update_service.contains(&format!("graphDataImage: {host}/mirror/{GRAPH_IMAGE}\n")),
        "{update_service}"
    );
}
