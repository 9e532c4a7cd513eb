//! Releases on the test world, around the proof (`release_proof.rs`: what
//! is mirrored, checked digest by digest): a rerun that plans nothing,
//! `--trust-state` with the update service gone; a release error, a
//! tampered, mislabelled or missing signature and a copy or fetch failure
//! each stopping the run with exit 2 before anything is pushed (no delivery
//! written); a second z-stream shipping only its new blobs, then
//! disk-to-mirror with nothing of the world running; an explicit payload
//! named by its signature's identity; a release deleted from what the
//! workspace saved.
//!
//! Every payload of the world is signed with a key made for the run, the
//! signatures served on loopback (`OCP_SIGNATURE_URL`) and the key exported
//! (`OCP_SIGNATURE_VERIFICATION_PK`): the runs verify them, write the
//! signature ConfigMap, and stop with exit 2 on a bad or missing one.

use std::collections::{BTreeMap, BTreeSet};
use std::path::{Path, PathBuf};
use std::process::{Command, Output};

use ferry_testworld::registry::{Flavour, Registry, Storage};
use ferry_testworld::release_signatures::{ReleaseSigner, SignatureServer};
use ferry_testworld::releases::{
    COMPONENT_REPOSITORY, COMPONENTS, RELEASE_HOST, RELEASE_REPOSITORY,
};
use ferry_testworld::world::World;

use crate::support::{
    exited, registries_conf_through, skopeo_tags, text, world_ferry, write_image_set,
};

/// The world's release signatures: served on loopback, checked with an
/// exported key.
pub(crate) struct Signing {
    pub(crate) server: SignatureServer,
    pub(crate) key_file: PathBuf,
}

impl Signing {
    /// The two variables that point ferry at the served signatures and key.
    pub(crate) fn environment(&self, command: &mut Command) {
        command
            .env("OCP_SIGNATURE_URL", self.server.base_url())
            .env("OCP_SIGNATURE_VERIFICATION_PK", &self.key_file);
    }
}

/// The tag suffix of an architecture in the world's release identities.
fn identity_suffix(architecture: &str) -> &str {
    match architecture {
        "amd64" => "x86_64",
        "arm64" => "aarch64",
        other => other,
    }
}

/// Signs every payload of every graph of the world, as Red Hat would
/// (identity `quay.io/openshift-release-dev/ocp-release:<version>-<arch>`);
/// `change` may then alter what is served (digest `sha256:<hex>` → file).
pub(crate) fn sign_world(
    world: &World,
    folder: &Path,
    change: impl FnOnce(&ReleaseSigner, &mut BTreeMap<String, Vec<u8>>),
) -> Signing {
    let signer = ReleaseSigner::generate();
    let mut served = BTreeMap::new();
    for ((_, architecture), graph) in world.graphs() {
        let graph: serde_json::Value = serde_json::from_str(graph).unwrap();
        for node in graph["nodes"].as_array().unwrap() {
            let payload = node["payload"].as_str().unwrap();
            let digest = payload.rsplit_once('@').unwrap().1;
            let identity = format!(
                "quay.io/openshift-release-dev/ocp-release:{}-{}",
                node["version"].as_str().unwrap(),
                identity_suffix(architecture)
            );
            served.insert(digest.to_owned(), signer.sign_payload(digest, &identity));
        }
    }
    change(&signer, &mut served);
    let key_file = folder.join("release-key.asc");
    std::fs::write(&key_file, signer.public_keyring_armored()).unwrap();
    Signing {
        server: SignatureServer::start(served).unwrap(),
        key_file,
    }
}

struct Setup<'a> {
    world: &'a World,
    folder: &'a Path,
    destination: String,
    signing: Signing,
}

impl<'a> Setup<'a> {
    /// The world's payloads signed (`change` as in [`sign_world`]), for
    /// runs into `destination` with the workspace `folder/workspace`.
    fn signed(
        world: &'a World,
        folder: &'a Path,
        destination: String,
        change: impl FnOnce(&ReleaseSigner, &mut BTreeMap<String, Vec<u8>>),
    ) -> Setup<'a> {
        Setup {
            world,
            folder,
            destination,
            signing: sign_world(world, folder, change),
        }
    }

    fn ferry(&self, command: &str, config: &str, graph_url: &str, extra: &[&str]) -> Output {
        let mut ferry = world_ferry(self.world, self.folder, command);
        self.signing.environment(&mut ferry);
        ferry
            .arg("-c")
            .arg(self.folder.join(config))
            .arg("--workspace")
            .arg(format!(
                "file://{}",
                self.folder.join("workspace").display()
            ))
            .args(extra)
            .arg(format!("docker://{}/mirror", self.destination))
            .env("UPDATE_URL_OVERRIDE", graph_url)
            .output()
            .unwrap()
    }
}

fn skopeo(arguments: &[&str]) -> Output {
    Command::new("skopeo").args(arguments).output().unwrap()
}

/// The digest of the manifest skopeo reads at `reference` (unverified text).
fn digest_at(reference: &str) -> String {
    let output = skopeo(&[
        "inspect",
        "--tls-verify=false",
        "--format",
        "{{.Digest}}",
        reference,
    ]);
    assert!(
        output.status.success(),
        "{reference}: {}",
        text(&output.stderr)
    );
    text(&output.stdout).trim().to_owned()
}

/// The payload digest the world's graph gives `version` for `architecture`.
/// The test world, an empty plain-HTTP destination registry, a folder.
fn started() -> (World, Registry, tempfile::TempDir) {
    (
        World::start().unwrap(),
        Registry::start(Flavour::PlainHttp, Storage::Empty).unwrap(),
        tempfile::tempdir().unwrap(),
    )
}

pub(crate) fn payload_digest(
    world: &World,
    channel: &str,
    architecture: &str,
    version: &str,
) -> String {
    let graph: serde_json::Value =
        serde_json::from_str(&world.graphs()[&(channel.to_owned(), architecture.to_owned())])
            .unwrap();
    let node = graph["nodes"]
        .as_array()
        .unwrap()
        .iter()
        .find(|node| node["version"] == version)
        .unwrap_or_else(|| panic!("{version} in {channel} ({architecture})"));
    let payload = node["payload"].as_str().unwrap();
    payload.rsplit_once('@').unwrap().1.to_owned()
}

#[test]
fn a_rerun_plans_nothing_and_trust_state_plans_without_the_update_service() {
    let (world, destination, folder) = started();
    let setup = Setup::signed(&world, folder.path(), destination.host(), |_, _| {});
    // stable-4.15's head (4.15.12) and stable-4.16 from 4.16.1 up, amd64
    // and multi (what is mirrored, checked digest by digest, is the proof's
    // business: `release_proof.rs`).
    write_image_set(
        folder.path(),
        "isc.yaml",
        "  platform:\n    architectures: [amd64, multi]\n    channels:\n    - name: stable-4.15\n    - name: stable-4.16\n      minVersion: 4.16.1\n      maxVersion: 4.16.2\n",
    );
    let mirrored = setup.ferry("mirror", "isc.yaml", &world.graph_url(), &[]);
    let stderr = text(&mirrored.stderr);
    assert_eq!(mirrored.status.code(), Some(0), "{stderr}");
    assert!(!stderr.contains("not verified"), "{stderr}");
    let mirror = format!("{}/mirror", setup.destination);
    assert_eq!(
        skopeo_tags(&format!("docker://{mirror}/openshift/release-images")).len(),
        6
    );

    // A rerun plans nothing; so does --trust-state with the update service
    // gone (the saved graph answers are used).
    let rerun = setup.ferry(
        "plan",
        "isc.yaml",
        &world.graph_url(),
        &["--detailed-exitcode"],
    );
    exited(&rerun, 0);
    let offline = setup.ferry(
        "plan",
        "isc.yaml",
        "http://127.0.0.1:9/graph",
        &["--detailed-exitcode", "--trust-state"],
    );
    exited(&offline, 0);
    let saved = folder
        .path()
        .join("workspace/working-dir/hold-release/cincinnati-graph-data");
    assert!(saved.join("amd64-stable-4.15.json").is_file());
    assert!(saved.join("multi-stable-4.16.json").is_file());
    // Without --trust-state the update service is asked: gone, it is a
    // release error (exit 2).
    let unreachable = setup.ferry("plan", "isc.yaml", "http://127.0.0.1:9/graph", &[]);
    assert_eq!(
        unreachable.status.code(),
        Some(2),
        "{}",
        text(&unreachable.stderr)
    );
}

#[test]
fn a_release_error_stops_the_run_before_anything_is_pushed() {
    let (world, destination, folder) = started();
    let setup = Setup::signed(&world, folder.path(), destination.host(), |_, _| {});
    // A payload that does not exist, next to an additional image that does.
    write_image_set(
        folder.path(),
        "missing.yaml",
        &format!(
            "  platform:\n    release: {RELEASE_HOST}/{RELEASE_REPOSITORY}:9.9.9-x86_64\n  additionalImages:\n  - name: quay.io/ferry-demo/hello:1.0\n"
        ),
    );
    let run = setup.ferry("mirror", "missing.yaml", &world.graph_url(), &[]);
    let stderr = text(&run.stderr);
    assert_eq!(run.status.code(), Some(2), "{stderr}");
    assert!(stderr.contains("9.9.9-x86_64"), "{stderr}");
    assert!(stderr.contains("nothing was pushed"), "{stderr}");
    let catalog = skopeo(&[
        "list-tags",
        "--tls-verify=false",
        &format!("docker://{}/mirror/ferry-demo/hello", setup.destination),
    ]);
    assert!(
        !catalog.status.success(),
        "the additional image was not pushed either"
    );

    // `type: okd` is refused, not ignored.
    write_image_set(
        folder.path(),
        "okd.yaml",
        "  platform:\n    channels:\n    - name: stable-4\n      type: okd\n",
    );
    let okd = setup.ferry("plan", "okd.yaml", &world.graph_url(), &[]);
    let stderr = text(&okd.stderr);
    assert_eq!(okd.status.code(), Some(1), "{stderr}");
    assert!(
        stderr.contains("OKD release channels (`type: okd`) is not supported yet"),
        "{stderr}"
    );
}

#[test]
fn a_tampered_mislabelled_or_missing_signature_stops_the_run_before_anything_is_pushed() {
    let world = World::start().unwrap();
    let destination = Registry::start(Flavour::PlainHttp, Storage::Empty).unwrap();
    let digest = payload_digest(&world, "stable-4.16", "amd64", "4.16.2");
    let identity = "quay.io/openshift-release-dev/ocp-release:4.16.2-x86_64";
    type Change = Box<dyn FnOnce(&ReleaseSigner, &mut BTreeMap<String, Vec<u8>>)>;
    let tampered: Change = {
        let digest = digest.clone();
        Box::new(
            move |signer: &ReleaseSigner, served: &mut BTreeMap<String, Vec<u8>>| {
                served.insert(
                    digest.clone(),
                    signer.tampered_payload_signature(&digest, identity),
                );
            },
        )
    };
    let missing: Change = {
        let digest = digest.clone();
        Box::new(
            move |_: &ReleaseSigner, served: &mut BTreeMap<String, Vec<u8>>| {
                served.remove(&digest);
            },
        )
    };
    // 4.16.1's signature, good in itself, served for 4.16.2.
    let other = payload_digest(&world, "stable-4.16", "amd64", "4.16.1");
    let other_digest = format!("the signature is for {other}, not for the payload {digest}");
    let mislabelled: Change = {
        let digest = digest.clone();
        Box::new(
            move |signer: &ReleaseSigner, served: &mut BTreeMap<String, Vec<u8>>| {
                let identity = "quay.io/openshift-release-dev/ocp-release:4.16.1-x86_64";
                served.insert(digest.clone(), signer.sign_payload(&other, identity));
            },
        )
    };
    for (case, change, why) in [
        ("tampered", tampered, "no valid signature from the keyring"),
        ("mislabelled", mislabelled, other_digest.as_str()),
        ("missing", missing, "no signature found for"),
    ] {
        let folder = tempfile::tempdir().unwrap();
        let setup = Setup::signed(&world, folder.path(), destination.host(), change);
        write_image_set(
            folder.path(),
            "one.yaml",
            "  platform:\n    channels:\n    - name: stable-4.16\n      minVersion: 4.16.1\n      maxVersion: 4.16.2\n  additionalImages:\n  - name: quay.io/ferry-demo/hello:1.0\n",
        );
        let run = setup.ferry("mirror", "one.yaml", &world.graph_url(), &[]);
        let stderr = text(&run.stderr);
        assert_eq!(run.status.code(), Some(2), "{case}: {stderr}");
        assert!(
            stderr.contains(&format!(
                "the release payload {RELEASE_HOST}/{RELEASE_REPOSITORY}@{digest} is not verified"
            )),
            "{case}: {stderr}"
        );
        assert!(stderr.contains(why), "{case}: {stderr}");
        assert!(stderr.contains("nothing was pushed"), "{case}: {stderr}");
        for repository in [
            "ferry-demo/hello",
            "openshift/release-images",
            "openshift/release",
        ] {
            let listed = skopeo(&[
                "list-tags",
                "--tls-verify=false",
                &format!("docker://{}/mirror/{repository}", setup.destination),
            ]);
            assert!(!listed.status.success(), "{case}: {repository} was pushed");
        }
        assert!(
            !folder
                .path()
                .join("workspace/working-dir/cluster-resources/signature-configmap.json")
                .exists(),
            "{case}"
        );
    }
}

#[test]
fn a_release_copy_failure_stops_the_run_with_exit_2() {
    use ferry_testworld::proxy::{ErrorAnswer, FaultProxy, Faults};
    let world = World::start().unwrap();
    let registry = Registry::start(Flavour::PlainHttp, Storage::Empty).unwrap();
    let destination = FaultProxy::start(registry.address()).unwrap();
    let folder = tempfile::tempdir().unwrap();
    let setup = Setup::signed(&world, folder.path(), destination.host(), |_, _| {});
    // One payload (16 components), one image at a time: every manifest
    // push of a component is refused, so the first failure stops the run
    // while most components have not started.
    write_image_set(
        folder.path(),
        "one.yaml",
        &format!("  platform:\n    release: {RELEASE_HOST}/{RELEASE_REPOSITORY}:4.16.2-x86_64\n"),
    );
    destination.arm(Faults {
        errors: vec![ErrorAnswer {
            method: "PUT".to_owned(),
            path_contains: "/openshift/release/manifests/".to_owned(),
            status: 400,
            retry_after: None,
            times: 1000,
        }],
        ..Faults::default()
    });
    let run = setup.ferry(
        "mirror",
        "one.yaml",
        &world.graph_url(),
        &["--parallel-images", "1", "--retry-delay=10ms"],
    );
    // The summary and failures are on stdout, logs on stderr.
    let output = format!("{}{}", text(&run.stdout), text(&run.stderr));
    assert_eq!(run.status.code(), Some(2), "{output}");
    assert!(
        output.contains("not started: a release image failed, the run stopped"),
        "{output}"
    );
    let pushes = destination
        .records()
        .iter()
        .filter(|record| {
            record.method == "PUT" && record.path.contains("/openshift/release/manifests/")
        })
        .count();
    assert!(
        pushes < COMPONENTS.len(),
        "{pushes} component pushes tried: the run went on after the first failure"
    );
}

/// The `blobs/` entries of a segment file: digest path → size.
pub(crate) fn blob_entries(segment: &Path) -> std::collections::BTreeMap<String, u64> {
    let mut archive = tar::Archive::new(std::fs::File::open(segment).unwrap());
    archive
        .entries()
        .unwrap()
        .map(|entry| entry.unwrap())
        .filter_map(|entry| {
            let path = entry.path().unwrap().display().to_string();
            path.starts_with("blobs/")
                .then(|| (path, entry.header().size().unwrap()))
        })
        .collect()
}

#[test]
fn a_second_z_stream_to_disk_ships_only_new_blobs_and_disk_to_mirror_needs_no_network() {
    let world = World::start().unwrap();
    let folder = tempfile::tempdir().unwrap();
    let out = folder.path().join("out");
    let signing = sign_world(&world, folder.path(), |_, _| {});
    let ferry = |arguments: &[&str]| {
        let mut ferry = Command::new(env!("CARGO_BIN_EXE_ferry"));
        signing.environment(&mut ferry);
        ferry
            .args(arguments)
            .args([
                "--registries-conf",
                &world.registries_conf().display().to_string(),
            ])
            .arg("--src-tls-verify=false")
            .arg("--dest-tls-verify=false")
            .env("UPDATE_URL_OVERRIDE", world.graph_url())
            .env("REGISTRY_AUTH_FILE", folder.path().join("no-auth.json"))
            .env("FERRY_CACHE_DIR", folder.path().join("cache"))
            .output()
            .unwrap()
    };
    let config = |name: &str, max: &str| {
        let path = folder.path().join(name);
        std::fs::write(
            &path,
            format!(
                "kind: ImageSetConfiguration\napiVersion: mirror.openshift.io/v2alpha1\nmirror:\n  platform:\n    channels:\n    - name: stable-4.16\n      minVersion: 4.16.1\n      maxVersion: {max}\n"
            ),
        )
        .unwrap();
        path.display().to_string()
    };
    let first = config("z1.yaml", "4.16.1");
    let second = config("z2.yaml", "4.16.2");
    let destination = format!("file://{}", out.display());
    for config in [&first, &second] {
        let run = ferry(&["mirror", "-c", config, &destination]);
        assert_eq!(run.status.code(), Some(0), "{}", text(&run.stderr));
    }
    let one = blob_entries(&out.join("mirror_000001.tar"));
    let two = blob_entries(&out.join("mirror_000002.tar"));
    // Nothing shipped twice; the new payload is in the second delivery.
    assert!(
        two.keys().all(|path| !one.contains_key(path)),
        "a blob shipped twice"
    );
    let payload = payload_digest(&world, "stable-4.16", "amd64", "4.16.2");
    assert!(
        two.contains_key(&format!("blobs/{}", payload.replace(':', "/"))),
        "{payload} in the second delivery"
    );
    let new_bytes: u64 = two.values().sum();
    let delivery_bytes = std::fs::metadata(out.join("mirror_000002.tar"))
        .unwrap()
        .len();
    eprintln!(
        "second z-stream: delivery {delivery_bytes} bytes, new unique content {new_bytes} bytes in {} entries",
        two.len()
    );
    // The bar (issue 11): what a delivery adds to its new content (its
    // metadata, tar headers and padding) stays within 1% plus 64 KiB.
    assert!(
        delivery_bytes * 100 <= new_bytes * 101 + 65_536 * 100,
        "the second z-stream's delivery is {delivery_bytes} bytes for {new_bytes} bytes of new content: more than 1.01 x {new_bytes} + 65,536"
    );
    // Every image of both releases is whole across the two deliveries.
    let verified = Command::new(env!("CARGO_BIN_EXE_ferry"))
        .args(["verify", &destination])
        .output()
        .unwrap();
    assert_eq!(
        verified.status.code(),
        Some(0),
        "{}",
        text(&verified.stderr)
    );

    // Disk-to-mirror with the world gone (update service and every
    // source): the releases are collected from what the deliveries carry.
    let payload_one = payload_digest(&world, "stable-4.16", "amd64", "4.16.1");
    drop(world);
    // The disconnected side has the segments alone (no working-dir): the
    // signatures the deliveries carry are verified again, offline.
    drop(signing.server);
    let enclave_folder = folder.path().join("enclave");
    std::fs::create_dir(&enclave_folder).unwrap();
    for segment in ["mirror_000001.tar", "mirror_000002.tar"] {
        std::fs::copy(out.join(segment), enclave_folder.join(segment)).unwrap();
    }
    let delivered = format!("file://{}", enclave_folder.display());
    let destination_registry = Registry::start(Flavour::PlainHttp, Storage::Empty).unwrap();
    let enclave = Command::new(env!("CARGO_BIN_EXE_ferry"))
        .args(["mirror", "-c", &second, "--from", &delivered])
        .arg("--dest-tls-verify=false")
        .arg(format!("docker://{}/mirror", destination_registry.host()))
        .env("UPDATE_URL_OVERRIDE", "http://127.0.0.1:9/graph")
        .env("OCP_SIGNATURE_URL", "http://127.0.0.1:9/signatures/")
        .env("OCP_SIGNATURE_VERIFICATION_PK", &signing.key_file)
        .env("REGISTRY_AUTH_FILE", folder.path().join("no-auth.json"))
        .env("FERRY_CACHE_DIR", folder.path().join("enclave-cache"))
        .output()
        .unwrap();
    let stderr = text(&enclave.stderr);
    assert_eq!(enclave.status.code(), Some(0), "{stderr}");
    let mirror = format!("{}/mirror", destination_registry.host());
    assert_eq!(
        skopeo_tags(&format!("docker://{mirror}/openshift/release-images")),
        BTreeSet::from(["4.16.1-x86_64".to_owned(), "4.16.2-x86_64".to_owned()])
    );
    assert_eq!(
        skopeo_tags(&format!("docker://{mirror}/openshift/release")).len(),
        2 * COMPONENTS.len()
    );
    assert_eq!(
        digest_at(&format!(
            "docker://{mirror}/openshift/release-images:4.16.1-x86_64"
        )),
        payload_one
    );
    assert_eq!(
        digest_at(&format!(
            "docker://{mirror}/openshift/release-images:4.16.2-x86_64"
        )),
        payload
    );
    let copied = skopeo(&[
        "copy",
        "--src-tls-verify=false",
        &format!("docker://{mirror}/openshift/release:4.16.2-x86_64-etcd"),
        &format!("dir:{}", folder.path().join("etcd").display()),
    ]);
    assert!(copied.status.success(), "{}", text(&copied.stderr));
    let idms = std::fs::read_to_string(
        enclave_folder.join("working-dir/cluster-resources/idms-oc-mirror.yaml"),
    )
    .unwrap();
    assert!(
        idms.contains(&format!("    - {mirror}/openshift/release-images\n    source: {RELEASE_HOST}/{RELEASE_REPOSITORY}\n")),
        "{idms}"
    );
    let kept = |folder: &Path| {
        std::fs::read(folder.join(format!(
            "working-dir/signatures/4.16.2-x86_64-{}",
            payload.replace(':', "-")
        )))
        .unwrap()
    };
    assert_eq!(kept(&enclave_folder), kept(&out));
    assert!(
        enclave_folder
            .join("working-dir/cluster-resources/signature-configmap.json")
            .is_file()
    );
}

#[test]
fn a_release_fetch_failure_writes_no_delivery_and_exits_2() {
    use ferry_testworld::proxy::{ErrorAnswer, FaultProxy, Faults};
    let world = World::start().unwrap();
    let source = FaultProxy::start(world.registry().address()).unwrap();
    let folder = tempfile::tempdir().unwrap();
    let conf = folder.path().join("registries.conf");
    registries_conf_through(&world, &source.host(), &conf);
    let config = folder.path().join("one.yaml");
    std::fs::write(
        &config,
        format!(
            "kind: ImageSetConfiguration\napiVersion: mirror.openshift.io/v2alpha1\nmirror:\n  platform:\n    release: {RELEASE_HOST}/{RELEASE_REPOSITORY}:4.16.2-x86_64\n  additionalImages:\n  - name: quay.io/ferry-demo/hello:1.0\n"
        ),
    )
    .unwrap();
    // Every blob of the components' repository is refused.
    source.arm(Faults {
        errors: vec![ErrorAnswer {
            method: "GET".to_owned(),
            path_contains: format!("{COMPONENT_REPOSITORY}/blobs/"),
            status: 404,
            retry_after: None,
            times: 10_000,
        }],
        ..Faults::default()
    });
    let out = folder.path().join("out");
    let signing = sign_world(&world, folder.path(), |_, _| {});
    let mut run = Command::new(env!("CARGO_BIN_EXE_ferry"));
    signing.environment(&mut run);
    let run = run
        .args(["mirror", "-c", &config.display().to_string()])
        .args(["--registries-conf", &conf.display().to_string()])
        .args(["--src-tls-verify=false", "--retry-delay=10ms"])
        .arg(format!("file://{}", out.display()))
        .env("REGISTRY_AUTH_FILE", folder.path().join("no-auth.json"))
        .env("FERRY_CACHE_DIR", folder.path().join("cache"))
        .output()
        .unwrap();
    let stderr = text(&run.stderr);
    assert_eq!(run.status.code(), Some(2), "{stderr}");
    assert!(
        stderr.contains("release images could not be fetched, so no delivery was written"),
        "{stderr}"
    );
    let segments: Vec<_> = std::fs::read_dir(&out)
        .unwrap()
        .map(|entry| entry.unwrap().file_name().to_string_lossy().into_owned())
        .filter(|name| name.starts_with("mirror_"))
        .collect();
    assert!(segments.is_empty(), "{segments:?}");
}

#[test]
fn an_explicit_payload_by_digest_is_named_by_its_signature_identity() {
    let (world, destination, folder) = started();
    let setup = Setup::signed(&world, folder.path(), destination.host(), |_, _| {});
    let digest = payload_digest(&world, "stable-4.16", "amd64", "4.16.2");
    write_image_set(
        folder.path(),
        "explicit.yaml",
        &format!("  platform:\n    release: {RELEASE_HOST}/{RELEASE_REPOSITORY}@{digest}\n"),
    );
    let mirrored = setup.ferry("mirror", "explicit.yaml", &world.graph_url(), &[]);
    assert_eq!(
        mirrored.status.code(),
        Some(0),
        "{}",
        text(&mirrored.stderr)
    );
    // The signature says 4.16.2-x86_64: the payload and its components
    // are named by it, as oc-mirror names them, not by the digest.
    let mirror = format!("{}/mirror", setup.destination);
    assert_eq!(
        digest_at(&format!(
            "docker://{mirror}/openshift/release-images:4.16.2-x86_64"
        )),
        digest
    );
    let components = skopeo_tags(&format!("docker://{mirror}/openshift/release"));
    assert!(
        !components.is_empty()
            && components
                .iter()
                .all(|tag| tag.starts_with("4.16.2-x86_64-")),
        "{components:?}"
    );
}

#[test]
fn a_release_is_deleted_from_what_the_workspace_saved_and_the_other_stays() {
    let (world, destination, folder) = started();
    let setup = Setup::signed(&world, folder.path(), destination.host(), |_, _| {});
    write_image_set(
        folder.path(),
        "two.yaml",
        "  platform:\n    channels:\n    - name: stable-4.16\n      minVersion: 4.16.1\n      maxVersion: 4.16.2\n",
    );
    let mirrored = setup.ferry("mirror", "two.yaml", &world.graph_url(), &[]);
    assert_eq!(
        mirrored.status.code(),
        Some(0),
        "{}",
        text(&mirrored.stderr)
    );
    let mirror = format!("{}/mirror", setup.destination);
    let kept = digest_at(&format!(
        "docker://{mirror}/openshift/release-images:4.16.2-x86_64"
    ));
    let deleted = payload_digest(&world, "stable-4.16", "amd64", "4.16.1");
    assert_eq!(
        digest_at(&format!(
            "docker://{mirror}/openshift/release-images:4.16.1-x86_64"
        )),
        deleted
    );

    // Step 1 with the update service and every source stopped: the graph
    // and payload files the mirror saved in the workspace are enough.
    drop(world);
    std::fs::write(
        folder.path().join("delete.yaml"),
        "kind: DeleteImageSetConfiguration\napiVersion: mirror.openshift.io/v2alpha1\ndelete:\n  platform:\n    channels:\n    - name: stable-4.16\n      minVersion: 4.16.1\n      maxVersion: 4.16.1\n",
    )
    .unwrap();
    let ferry = |arguments: &[&str]| {
        Command::new(env!("CARGO_BIN_EXE_ferry"))
            .args(arguments)
            .env("REGISTRY_AUTH_FILE", folder.path().join("no-auth.json"))
            .env("FERRY_CACHE_DIR", folder.path().join("cache"))
            .env("UPDATE_URL_OVERRIDE", "http://127.0.0.1:9/graph")
            .output()
            .unwrap()
    };
    let workspace = format!("file://{}", folder.path().join("workspace").display());
    let generated = ferry(&[
        "delete",
        "--generate",
        "-c",
        &folder.path().join("delete.yaml").display().to_string(),
        "--workspace",
        &workspace,
        &format!("docker://{mirror}"),
    ]);
    assert!(generated.status.success(), "{}", text(&generated.stderr));
    let list_path = folder
        .path()
        .join("workspace/working-dir/delete/delete-images.yaml");
    let list = std::fs::read_to_string(&list_path).unwrap();
    assert!(
        list.contains(&format!(
            "imageReference: docker://{mirror}/openshift/release-images:4.16.1-x86_64\n  type: ocpRelease"
        )),
        "{list}"
    );
    assert!(list.contains("type: ocpReleaseContent"), "{list}");
    assert!(!list.contains("4.16.2"), "{list}");

    let removed = ferry(&[
        "delete",
        "--delete-yaml-file",
        &list_path.display().to_string(),
        "--dest-tls-verify=false",
        &format!("docker://{mirror}"),
    ]);
    assert!(removed.status.success(), "{}", text(&removed.stderr));
    let gone = skopeo(&[
        "inspect",
        "--raw",
        "--tls-verify=false",
        &format!("docker://{mirror}/openshift/release-images@{deleted}"),
    ]);
    assert!(!gone.status.success(), "4.16.1's payload is still there");
    assert_eq!(
        digest_at(&format!(
            "docker://{mirror}/openshift/release-images:4.16.2-x86_64"
        )),
        kept,
        "4.16.2 stays"
    );
}

/// Blob GETs `proxy` served: how many times each blob path was read.
fn blob_reads(proxy: &ferry_testworld::proxy::FaultProxy) -> BTreeMap<String, usize> {
    let mut reads = BTreeMap::new();
    for record in proxy.records().iter().filter(|record| record.is_blob_get()) {
        *reads.entry(record.path.clone()).or_default() += 1;
    }
    reads
}

/// The cache's blob files under `cache` (the `FERRY_CACHE_DIR` of the runs).
fn cached_blob_files(cache: &Path) -> BTreeSet<String> {
    let mut found = BTreeSet::new();
    let mut folders = vec![cache.to_path_buf()];
    while let Some(folder) = folders.pop() {
        let Ok(entries) = std::fs::read_dir(&folder) else {
            continue;
        };
        for entry in entries.flatten() {
            let path = entry.path();
            if path.is_dir() {
                folders.push(path);
            } else if path
                .parent()
                .is_some_and(|parent| parent.ends_with("sha256"))
            {
                found.insert(path.display().to_string());
            }
        }
    }
    found
}

#[test]
fn mirror_to_mirror_reads_each_blob_of_a_release_and_an_operators_catalog_once() {
    use ferry_testworld::proxy::FaultProxy;
    let (world, destination, folder) = started();
    let source = FaultProxy::start(world.registry().address()).unwrap();
    let conf = folder.path().join("registries.conf");
    registries_conf_through(&world, &source.host(), &conf);
    let config = write_image_set(
        folder.path(),
        "isc.yaml",
        &format!(
            "  platform:\n    release: {RELEASE_HOST}/{RELEASE_REPOSITORY}:4.16.2-x86_64\n  operators:\n  - catalog: quay.io/ferry-demo/test-catalog:latest\n    packages:\n    - name: foo\n"
        ),
    );
    let signing = sign_world(&world, folder.path(), |_, _| {});
    let cache = folder.path().join("cache");
    let run = |command: &str, destination: &Registry, workspace: &str| {
        let mut ferry = crate::support::ferry(folder.path(), command);
        signing.environment(&mut ferry);
        ferry
            .args(["-c", &config, "--registries-conf"])
            .arg(&conf)
            .args(["--src-tls-verify=false", "--dest-tls-verify=false"])
            .arg("--workspace")
            .arg(format!(
                "file://{}",
                folder.path().join(workspace).display()
            ))
            .arg(format!("docker://{}/mirror", destination.host()))
            .env("UPDATE_URL_OVERRIDE", world.graph_url())
            .output()
            .unwrap()
    };

    // A plan reads the payload's and the catalog's layers, and leaves the
    // cache as it is.
    let plan = run("plan", &destination, "workspace");
    assert_eq!(plan.status.code(), Some(0), "{}", text(&plan.stderr));
    assert!(
        cached_blob_files(&cache).is_empty(),
        "a plan put blobs into the cache: {:?}",
        cached_blob_files(&cache)
    );

    // The run: the collectors' reads are kept in the cache, and the copy
    // uploads them from there; no blob is read from the source twice.
    source.clear();
    let mirrored = run("mirror", &destination, "workspace");
    assert_eq!(
        mirrored.status.code(),
        Some(0),
        "{}",
        text(&mirrored.stderr)
    );
    let reads = blob_reads(&source);
    let twice: Vec<_> = reads.iter().filter(|(_, count)| **count > 1).collect();
    assert!(
        twice.is_empty(),
        "blobs read twice from the source: {twice:?}"
    );
    let payload_reads = reads
        .keys()
        .filter(|path| path.contains(RELEASE_REPOSITORY))
        .count();
    let catalog_reads = reads
        .keys()
        .filter(|path| path.contains("ferry-demo/test-catalog"))
        .count();
    assert!(
        payload_reads > 0 && catalog_reads > 0,
        "the payload's and the catalog's blobs were read: {reads:?}"
    );
    assert!(!cached_blob_files(&cache).is_empty());
    let payload = format!(
        "docker://{}/mirror/openshift/release-images:4.16.2-x86_64",
        destination.host()
    );
    let inspected = skopeo(&["inspect", "--tls-verify=false", "--raw", &payload]);
    assert!(inspected.status.success(), "{}", text(&inspected.stderr));

    // The cache gone, a run to another destination reads everything from
    // the sources again, each blob once.
    std::fs::remove_dir_all(&cache).unwrap();
    source.clear();
    let other = Registry::start(Flavour::PlainHttp, Storage::Empty).unwrap();
    let again = run("mirror", &other, "other-workspace");
    assert_eq!(again.status.code(), Some(0), "{}", text(&again.stderr));
    let reads = blob_reads(&source);
    let twice: Vec<_> = reads.iter().filter(|(_, count)| **count > 1).collect();
    assert!(
        twice.is_empty(),
        "blobs read twice from the source: {twice:?}"
    );
}
