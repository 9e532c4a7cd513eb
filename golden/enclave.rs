//! Enclaves end to end (issue 12; the product documentation's "Enclave
//! support"): three registries of the test world and four stages.
//!
//! 1. Internet side: mirror-to-disk of the full image set (a release
//!    channel from the world's update graph, an operator catalog with two
//!    packages, additional images).
//! 2. Enterprise side: disk-to-mirror into the enterprise registry; `ferry
//!    registries-conf` turns its IDMS/ITMS into a registries.conf.
//! 3. Enterprise side, for the enclave: mirror-to-disk of a smaller image set
//!    by the public names, found at the enterprise registry through that
//!    file, the update graph from `UPDATE_URL_OVERRIDE` (the world's graph
//!    server, standing for an update service inside), the release
//!    signatures the first delivery carried (shared through the cache
//!    disk-to-mirror filled, which the enclave's run uses too);
//!    a second enclave's delivery from the same cache fetches nothing
//!    either.
//! 4. Enclave side: disk-to-mirror into the enclave registry; a "node" pulls
//!    every original reference by digest with `skopeo --registries-conf`
//!    (the file written from the enclave's IDMS/ITMS) and gets it from the
//!    enclave registry.
//!
//! Every internet-side registry is stopped from stage 2 on, the enterprise
//! registry from stage 4 on; every command runs with `HTTP(S)_PROXY` at a
//! loopback listener that counts connections, so a request for any address
//! but loopback is caught (none may arrive). Bytes are counted per stage.
//!
//! `graph: true` in both image sets: stage 1 builds the graph-data image
//! from the world's graph-data URL (`FERRY_GRAPH_DATA_URL`), which stops
//! with the world and is never named again; stage 2 pushes the delivered
//! image and keeps its record in the cache; stage 3 (`UPDATE_URL_OVERRIDE`
//! alone, as the product documentation says) takes it from there, and the
//! update service inside serves no graph data; stage 4 pushes it into the
//! enclave registry, the same digest as built in stage 1.
//!
//! The command itself is checked against golden files in
//! `registries_conf.rs`.

use std::collections::{BTreeMap, BTreeSet};
use std::net::{SocketAddr, TcpListener};
use std::path::{Path, PathBuf};
use std::process::{Command, Output};
use std::sync::Arc;
use std::sync::atomic::{AtomicBool, AtomicUsize, Ordering};
use std::time::Duration;

use ferry_testworld::graph_server::GraphServer;
use ferry_testworld::proxy::FaultProxy;
use ferry_testworld::registries_conf;
use ferry_testworld::registry::{Flavour, Registry, Storage};
use ferry_testworld::releases::{
    COMPONENT_REPOSITORY, COMPONENTS, RELEASE_HOST, RELEASE_REPOSITORY,
};
use ferry_testworld::world::World;

use crate::releases::sign_world;
use crate::support::{pulled_digest, sha256, text, through_proxy};

/// A loopback listener standing for every address but loopback: each
/// command runs with `HTTP_PROXY`/`HTTPS_PROXY`/`ALL_PROXY` pointing here
/// (loopback itself is never proxied), so anything that would reach out is
/// counted and refused at once.
struct InternetTrap {
    address: SocketAddr,
    connections: Arc<AtomicUsize>,
    stopping: Arc<AtomicBool>,
}

impl InternetTrap {
    fn start() -> InternetTrap {
        let listener = TcpListener::bind("127.0.0.1:0").unwrap();
        listener.set_nonblocking(true).unwrap();
        let address = listener.local_addr().unwrap();
        let connections = Arc::new(AtomicUsize::new(0));
        let stopping = Arc::new(AtomicBool::new(false));
        let (counted, stop) = (connections.clone(), stopping.clone());
        std::thread::spawn(move || {
            while !stop.load(Ordering::Relaxed) {
                match listener.accept() {
                    Ok((stream, _)) => {
                        counted.fetch_add(1, Ordering::Relaxed);
                        drop(stream);
                    }
                    Err(_) => std::thread::sleep(Duration::from_millis(10)),
                }
            }
        });
        InternetTrap {
            address,
            connections,
            stopping,
        }
    }

    fn url(&self) -> String {
        format!("http://{}", self.address)
    }

    fn environment(&self, command: &mut Command) {
        through_proxy(command, &self.url());
    }
}

impl Drop for InternetTrap {
    fn drop(&mut self) {
        self.stopping.store(true, Ordering::Relaxed);
    }
}

/// The folders, the trap and the signing key every stage shares.
struct Flow {
    folder: tempfile::TempDir,
    trap: InternetTrap,
    key_file: PathBuf,
}

impl Flow {
    fn path(&self, name: &str) -> PathBuf {
        self.folder.path().join(name)
    }

    /// `ferry ARGUMENTS` with `cache` as its cache and `environment` set;
    /// printed first as a user types it, then its output.
    fn ferry(&self, arguments: &[&str], cache: &str, environment: &[(&str, &str)]) -> Output {
        let mut command = Command::new(env!("CARGO_BIN_EXE_ferry"));
        self.trap.environment(&mut command);
        command
            .args(arguments)
            .env("FERRY_CACHE_DIR", self.path(cache))
            .env("OCP_SIGNATURE_VERIFICATION_PK", &self.key_file)
            .env(
                "OCP_SIGNATURE_URL",
                format!("{}/signatures/", self.trap.url()),
            )
            .env("UPDATE_URL_OVERRIDE", format!("{}/graph", self.trap.url()))
            .env("REGISTRY_AUTH_FILE", self.path("no-auth.json"))
            .env("SOURCE_DATE_EPOCH", "1764028800")
            .env_remove("FERRY_GRAPH_DATA_URL");
        let mut shown = String::new();
        for (name, value) in environment {
            command.env(name, value);
            shown.push_str(&format!("{name}={value} "));
        }
        let root = self.folder.path().display().to_string();
        eprintln!(
            "\n$ {shown}ferry {}",
            arguments.join(" ").replace(&root, "$FLOW")
        );
        let output = command.output().unwrap();
        eprint!("{}", text(&output.stdout).replace(&root, "$FLOW"));
        eprint!("{}", text(&output.stderr).replace(&root, "$FLOW"));
        assert_eq!(
            output.status.code(),
            Some(0),
            "ferry {}",
            arguments.join(" ")
        );
        output
    }

    fn write(&self, name: &str, contents: &str) -> String {
        let path = self.path(name);
        std::fs::write(&path, contents).unwrap();
        path.display().to_string()
    }

    /// `skopeo --registries-conf CONF inspect --raw` of `reference`: the
    /// manifest's digest, checked against `digest` when the reference
    /// names one.
    fn pulled_digest(&self, conf: &Path, reference: &str) -> String {
        pulled_digest(conf, reference, &self.trap.url())
    }
}

/// Copies the delivery segments of `from` into a fresh folder `to`: what
/// crosses the air gap (no working-dir).
fn carry_segments(from: &Path, to: &Path) -> u64 {
    std::fs::create_dir_all(to).unwrap();
    let mut bytes = 0;
    for entry in std::fs::read_dir(from).unwrap() {
        let entry = entry.unwrap();
        let name = entry.file_name().to_string_lossy().into_owned();
        if name.starts_with("mirror_") && name.ends_with(".tar") {
            bytes += std::fs::copy(entry.path(), to.join(&name)).unwrap();
        }
    }
    bytes
}

/// The bytes of every blob (and manifest) a registry stores: the unique
/// content pushed into it.
fn stored_bytes(registry: &Registry) -> u64 {
    fn walk(path: &Path) -> u64 {
        let Ok(entries) = std::fs::read_dir(path) else {
            return 0;
        };
        entries
            .map(|entry| entry.unwrap())
            .map(|entry| {
                let kind = entry.file_type().unwrap();
                if kind.is_dir() {
                    walk(&entry.path())
                } else if entry.file_name() == "data" {
                    entry.metadata().unwrap().len()
                } else {
                    0
                }
            })
            .sum()
    }
    walk(&registry.storage_root().join("docker/registry/v2/blobs"))
}

/// The digests (hex) of the blobs `registry` stores.
fn stored_blob_digests(registry: &Registry) -> std::collections::BTreeSet<String> {
    let mut digests = std::collections::BTreeSet::new();
    let root = registry
        .storage_root()
        .join("docker/registry/v2/blobs/sha256");
    for prefix in std::fs::read_dir(&root).into_iter().flatten() {
        for blob in std::fs::read_dir(prefix.unwrap().path()).unwrap() {
            digests.insert(blob.unwrap().file_name().to_string_lossy().into_owned());
        }
    }
    digests
}

/// The digests (hex) of the blobs the delivery segments in `folder` carry.
fn delivered_blob_digests(folder: &Path) -> std::collections::BTreeSet<String> {
    let mut digests = std::collections::BTreeSet::new();
    for entry in std::fs::read_dir(folder).unwrap() {
        let path = entry.unwrap().path();
        let name = path.file_name().unwrap().to_string_lossy().into_owned();
        if !(name.starts_with("mirror_") && name.ends_with(".tar")) {
            continue;
        }
        let mut archive = tar::Archive::new(std::fs::File::open(&path).unwrap());
        for entry in archive.entries().unwrap() {
            let entry_path = entry.unwrap().path().unwrap().display().to_string();
            if let Some(rest) = entry_path.strip_prefix("blobs/") {
                digests.insert(rest.rsplit('/').next().unwrap().to_owned());
            }
        }
    }
    digests
}

/// The entries of the delivery segments in `folder`: (blob bytes, blob
/// count, every other entry with its size, tar bytes of headers and padding).
fn delivery_entries(folder: &Path) -> (u64, usize, Vec<(String, u64)>, u64) {
    let (mut blob_bytes, mut blobs, mut others, mut segments) = (0, 0, Vec::new(), 0);
    for entry in std::fs::read_dir(folder).unwrap() {
        let path = entry.unwrap().path();
        let name = path.file_name().unwrap().to_string_lossy().into_owned();
        if !(name.starts_with("mirror_") && name.ends_with(".tar")) {
            continue;
        }
        segments += std::fs::metadata(&path).unwrap().len();
        let mut archive = tar::Archive::new(std::fs::File::open(&path).unwrap());
        for entry in archive.entries().unwrap() {
            let entry = entry.unwrap();
            let entry_path = entry.path().unwrap().display().to_string();
            let size = entry.header().size().unwrap();
            if entry_path.starts_with("blobs/") {
                blob_bytes += size;
                blobs += 1;
            } else {
                others.push((entry_path, size));
            }
        }
    }
    let other_bytes: u64 = others.iter().map(|(_, size)| size).sum();
    (
        blob_bytes,
        blobs,
        others,
        segments - blob_bytes - other_bytes,
    )
}

/// Blob bytes a proxy served: (requests, distinct blobs, bytes).
fn blob_traffic(proxy: &FaultProxy) -> (usize, usize, u64) {
    let records = proxy.records();
    let blobs: Vec<_> = records
        .iter()
        .filter(|record| record.is_blob_get())
        .collect();
    let distinct: BTreeSet<&str> = blobs.iter().map(|record| record.path.as_str()).collect();
    (
        blobs.len(),
        distinct.len(),
        blobs.iter().map(|record| record.bytes_sent).sum(),
    )
}

/// Every repository of `registry` under `prefix/`, with its tags.
fn repositories(registry: &Registry, prefix: &str) -> BTreeMap<String, Vec<String>> {
    let catalog = registry.get("/v2/_catalog?n=1000").unwrap();
    assert_eq!(catalog.status, 200);
    let catalog: serde_json::Value = serde_json::from_slice(&catalog.body).unwrap();
    let mut found = BTreeMap::new();
    for repository in catalog["repositories"].as_array().unwrap() {
        let repository = repository.as_str().unwrap();
        if !repository.starts_with(&format!("{prefix}/")) {
            continue;
        }
        let tags = registry
            .get(&format!("/v2/{repository}/tags/list"))
            .unwrap();
        let tags: serde_json::Value = serde_json::from_slice(&tags.body).unwrap();
        found.insert(
            repository.to_owned(),
            tags["tags"]
                .as_array()
                .unwrap()
                .iter()
                .map(|tag| tag.as_str().unwrap().to_owned())
                .collect(),
        );
    }
    found
}

/// (source, mirror) pairs of the IDMS and ITMS in `folder`.
fn mirror_pairs(folder: &Path) -> Vec<(String, String)> {
    let mut pairs = Vec::new();
    for name in ["idms-oc-mirror.yaml", "itms-oc-mirror.yaml"] {
        let Ok(text) = std::fs::read_to_string(folder.join(name)) else {
            continue;
        };
        for document in serde_yaml::Deserializer::from_str(&text) {
            let value = <serde_yaml::Value as serde::Deserialize>::deserialize(document).unwrap();
            let field = match value["kind"].as_str() {
                Some("ImageDigestMirrorSet") => "imageDigestMirrors",
                _ => "imageTagMirrors",
            };
            for entry in value["spec"][field].as_sequence().unwrap() {
                for mirror in entry["mirrors"].as_sequence().unwrap() {
                    pairs.push((
                        entry["source"].as_str().unwrap().to_owned(),
                        mirror.as_str().unwrap().to_owned(),
                    ));
                }
            }
        }
    }
    pairs
}

const FULL_IMAGE_SET: &str = "kind: ImageSetConfiguration
apiVersion: mirror.openshift.io/v2alpha1
mirror:
  platform:
    graph: true
    channels:
    - name: stable-4.16
      minVersion: 4.16.1
      maxVersion: 4.16.2
  operators:
  - catalog: quay.io/ferry-demo/test-catalog:latest
    packages:
    - name: baz
    - name: foo
  additionalImages:
  - name: quay.io/ferry-demo/hello:1.0
  - name: registry.redhat.io/ubi9/ubi-minimal:9.4
";

const ENCLAVE_IMAGE_SET: &str = "kind: ImageSetConfiguration
apiVersion: mirror.openshift.io/v2alpha1
mirror:
  platform:
    graph: true
    channels:
    - name: stable-4.16
      minVersion: 4.16.2
      maxVersion: 4.16.2
  operators:
  - catalog: quay.io/ferry-demo/test-catalog:latest
    packages:
    - name: baz
  additionalImages:
  - name: quay.io/ferry-demo/hello:1.0
";

/// Another enclave's smaller set, from the same enterprise cache.
const SECOND_ENCLAVE_IMAGE_SET: &str = "kind: ImageSetConfiguration
apiVersion: mirror.openshift.io/v2alpha1
mirror:
  operators:
  - catalog: quay.io/ferry-demo/test-catalog:latest
    packages:
    - name: foo
  additionalImages:
  - name: registry.redhat.io/ubi9/ubi-minimal:9.4
";

#[test]
fn an_enclave_is_mirrored_from_the_enterprise_registry_with_the_internet_stopped() {
    let world = World::start().unwrap();
    let folder = tempfile::tempdir().unwrap();
    let signing = sign_world(&world, folder.path(), |_, _| {});
    let flow = Flow {
        trap: InternetTrap::start(),
        key_file: signing.key_file.clone(),
        folder,
    };
    let full = flow.write("isc.yaml", FULL_IMAGE_SET);
    let enclave_set = flow.write("isc-enclave.yaml", ENCLAVE_IMAGE_SET);
    let payload_4_16_2 = {
        let graph: serde_json::Value =
            serde_json::from_str(&world.graphs()[&("stable-4.16".to_owned(), "amd64".to_owned())])
                .unwrap();
        let node = graph["nodes"]
            .as_array()
            .unwrap()
            .iter()
            .find(|node| node["version"] == "4.16.2")
            .unwrap()
            .clone();
        node["payload"]
            .as_str()
            .unwrap()
            .rsplit_once('@')
            .unwrap()
            .1
            .to_owned()
    };

    // 1. Internet side: the sources behind a counting proxy.
    let internet = FaultProxy::start(world.registry().address()).unwrap();
    let internet_conf = flow.write(
        "internet-registries.conf",
        &registries_conf::render(
            &registries_conf::hosts(world.content()),
            &internet.host(),
            true,
        ),
    );
    let internet_disk = flow.path("internet-disk");
    flow.ferry(
        &[
            "mirror",
            "-c",
            &full,
            "--registries-conf",
            &internet_conf,
            "--src-tls-verify=false",
            &format!("file://{}", internet_disk.display()),
        ],
        "internet-cache",
        &[
            ("UPDATE_URL_OVERRIDE", &world.graph_url()),
            ("OCP_SIGNATURE_URL", &signing.server.base_url()),
            ("FERRY_GRAPH_DATA_URL", &world.graph_data_url()),
        ],
    );
    assert_eq!(world.graph_server().graph_data_requests(), 1);
    let built_graph_image = graph_image_digest(&internet_disk);
    let (internet_requests, internet_blobs, internet_bytes) = blob_traffic(&internet);
    // Known limit: the collectors read the payloads' and the catalog's
    // layers (to find release-manifests/ and configs/) outside the cache,
    // so those few blobs are read again when the delivery fetches them.
    // Every other blob crosses once.
    let read_again: BTreeSet<String> = {
        let mut seen = BTreeMap::<String, usize>::new();
        for record in internet
            .records()
            .iter()
            .filter(|record| record.is_blob_get())
        {
            *seen.entry(record.path.clone()).or_default() += 1;
        }
        seen.into_iter()
            .filter(|(_, reads)| *reads > 1)
            .map(|(path, _)| path)
            .collect()
    };
    assert!(
        read_again.iter().all(|path| {
            path.starts_with("/v2/quay.io/openshift-release-dev/ocp-release/blobs/")
                || path.starts_with("/v2/quay.io/ferry-demo/test-catalog/blobs/")
        }),
        "blobs read twice from the internet besides the collectors' layers: {read_again:?}"
    );

    // The update service "inside" the enterprise network answers from here
    // on; every internet-side registry and the signature store stop.
    let graph_server = GraphServer::start(world.graphs().clone()).unwrap();
    drop(internet);
    drop(world);
    drop(signing.server);

    // 2. Enterprise side: disk-to-mirror into the enterprise registry.
    let enterprise_registry = Registry::start(Flavour::PlainHttp, Storage::Empty).unwrap();
    let enterprise = FaultProxy::start(enterprise_registry.address()).unwrap();
    let enterprise_disk = flow.path("enterprise-disk");
    let first_delivery = carry_segments(&internet_disk, &enterprise_disk);
    let enterprise_from = format!("file://{}", enterprise_disk.display());
    flow.ferry(
        &[
            "mirror",
            "-c",
            &full,
            "--from",
            &enterprise_from,
            "--dest-tls-verify=false",
            &format!("docker://{}/central", enterprise.host()),
        ],
        "enterprise-cache",
        &[],
    );
    let enterprise_stored = stored_bytes(&enterprise_registry);
    // The enterprise registry stores the first delivery's content, but for
    // the operator catalog: the delivery carries the original, which
    // disk-to-mirror filters again and rebuilds there, so some of the
    // original's blobs (manifest, config, configs layer) stay in the
    // delivery, and the rebuilt catalog's manifest, config and two new
    // layers are stored instead.
    let delivered = delivered_blob_digests(&enterprise_disk);
    let stored = stored_blob_digests(&enterprise_registry);
    let unused: Vec<&String> = delivered.difference(&stored).collect();
    let rebuilt: Vec<&String> = stored.difference(&delivered).collect();
    assert!(
        (1..=3).contains(&unused.len()),
        "delivered, not stored: {unused:?}"
    );
    assert_eq!(rebuilt.len(), 4, "stored, not delivered: {rebuilt:?}");
    // The delivered graph image is at the enterprise registry, and its
    // record in the cache stage 3 uses.
    let plain_conf = flow.write(
        "plain-registries.conf",
        "unqualified-search-registries = []\n",
    );
    assert_eq!(
        flow.pulled_digest(
            Path::new(&plain_conf),
            &format!("{}/central/openshift/graph-image:latest", enterprise.host())
        ),
        built_graph_image
    );
    assert!(flow.path("enterprise-cache/graph-image.json").is_file());
    let enterprise_conf = flow.path("enterprise-registries.conf");
    flow.ferry(
        &[
            "registries-conf",
            "--from",
            &enterprise_from,
            "--insecure",
            "-o",
            &enterprise_conf.display().to_string(),
        ],
        "enterprise-cache",
        &[],
    );
    let written = std::fs::read_to_string(&enterprise_conf).unwrap();
    eprintln!("{written}");
    assert!(
        written.contains(&format!(
            "prefix = \"{RELEASE_HOST}/{RELEASE_REPOSITORY}\"\nlocation = \"{RELEASE_HOST}/{RELEASE_REPOSITORY}\"\nmirror-by-digest-only = true\n\n[[registry.mirror]]\nlocation = \"{}/central/openshift/release-images\"\ninsecure = true\n",
            enterprise.host()
        )),
        "{written}"
    );
    // skopeo reads it too: the public payload name, from the enterprise.
    assert_eq!(
        flow.pulled_digest(
            &enterprise_conf,
            &format!("{RELEASE_HOST}/{RELEASE_REPOSITORY}@{payload_4_16_2}")
        ),
        payload_4_16_2
    );

    // 3. The enclave's delivery, by the public names, from the enterprise
    // registry: the graph from the update service inside, the signatures
    // the first delivery carried, the cache disk-to-mirror filled.
    let enclave_disk = flow.path("enclave-disk");
    // Disk-to-mirror shared the delivered signatures through its cache;
    // the enclave's run finds them there (the store is a trap).
    let shared = signature_files(&flow.path("enterprise-cache").join("signatures"));
    assert!(!shared.is_empty(), "no signature shared through the cache");
    enterprise.clear();
    let enclave_run = flow.ferry(
        &[
            "mirror",
            "-c",
            &enclave_set,
            "--registries-conf",
            &enterprise_conf.display().to_string(),
            "--src-tls-verify=false",
            &format!("file://{}", enclave_disk.display()),
        ],
        "enterprise-cache",
        &[("UPDATE_URL_OVERRIDE", &graph_server.url())],
    );
    let (enclave_requests, enclave_blobs, enclave_fetched) = blob_traffic(&enterprise);
    // The graph image came from the cache: the same image, no graph data
    // asked of the update service inside (the internet's URL is gone).
    assert_eq!(graph_image_digest(&enclave_disk), built_graph_image);
    assert_eq!(graph_server.graph_data_requests(), 0);
    assert!(
        signature_files(&enclave_disk.join("working-dir/signatures"))
            .iter()
            .all(|name| shared.contains(name)),
        "the enclave kept a signature the cache did not share"
    );
    assert!(
        !signature_files(&enclave_disk.join("working-dir/signatures")).is_empty(),
        "the enclave kept no signature"
    );
    // Every blob it packs came from the cache disk-to-mirror filled.
    assert!(
        text(&enclave_run.stdout).contains("Cache: 0 blobs to fetch"),
        "{}",
        text(&enclave_run.stdout)
    );
    // A second enclave, from the same cache: nothing fetched either.
    enterprise.clear();
    let second_set = flow.write("isc-enclave2.yaml", SECOND_ENCLAVE_IMAGE_SET);
    let second_run = flow.ferry(
        &[
            "mirror",
            "-c",
            &second_set,
            "--registries-conf",
            &enterprise_conf.display().to_string(),
            "--src-tls-verify=false",
            &format!("file://{}", flow.path("enclave2-disk").display()),
        ],
        "enterprise-cache",
        &[],
    );
    assert!(
        text(&second_run.stdout).contains("Cache: 0 blobs to fetch"),
        "{}",
        text(&second_run.stdout)
    );
    let (second_requests, second_blobs, second_fetched) = blob_traffic(&enterprise);
    assert_eq!(second_requests, second_blobs, "a blob read twice");
    eprintln!(
        "second enclave: {second_fetched} bytes in {second_requests} blob requests to the enterprise registry (the catalog's layers, for its configs)"
    );
    drop(graph_server);
    drop(enterprise);
    drop(enterprise_registry);

    // 4. Enclave side: only the segments cross; a cache of its own.
    let enclave_registry = Registry::start(Flavour::PlainHttp, Storage::Empty).unwrap();
    let enclave_side = flow.path("enclave-side");
    let enclave_delivery = carry_segments(&enclave_disk, &enclave_side);
    let (delivered_blob_bytes, delivered_blobs, metadata, framing) =
        delivery_entries(&enclave_side);
    let enclave_from = format!("file://{}", enclave_side.display());
    flow.ferry(
        &[
            "mirror",
            "-c",
            &enclave_set,
            "--from",
            &enclave_from,
            "--dest-tls-verify=false",
            &format!("docker://{}/enclave1", enclave_registry.host()),
        ],
        "enclave-cache",
        &[],
    );
    let enclave_stored = stored_bytes(&enclave_registry);
    let node_conf = flow.path("node-registries.conf");
    flow.ferry(
        &[
            "registries-conf",
            "--from",
            &enclave_from,
            "--insecure",
            "-o",
            &node_conf.display().to_string(),
        ],
        "enclave-cache",
        &[],
    );

    // The node: every image of the enclave registry that the mirror sets
    // name, pulled by its original name and digest.
    let resources = enclave_side.join("working-dir/cluster-resources");
    let pairs = mirror_pairs(&resources);
    let host = enclave_registry.host();
    let mut pulled = BTreeSet::new();
    let mut pulled_graph_image = false;
    for (repository, tags) in repositories(&enclave_registry, "enclave1") {
        let at = format!("{host}/{repository}");
        if repository.ends_with("/openshift/graph-image") {
            // A built image, no original: the UpdateService names it.
            assert_eq!(tags, ["latest"]);
            assert_eq!(
                flow.pulled_digest(&node_conf, &format!("{at}:latest")),
                built_graph_image
            );
            let update_service =
                std::fs::read_to_string(resources.join("updateService.yaml")).unwrap();
            assert!(
                update_service.contains(&format!("graphDataImage: {at}:latest\n")),
                "{update_service}"
            );
            pulled_graph_image = true;
            continue;
        }
        if repository.ends_with("/test-catalog") {
            // The rebuilt catalog has no original digest: the CatalogSource
            // names it at the enclave.
            let catalog_source =
                std::fs::read_to_string(resources.join("cs-test-catalog-latest.yaml")).unwrap();
            assert!(
                catalog_source.contains(&format!("image: {at}:latest")),
                "{catalog_source}"
            );
            continue;
        }
        let (source, mirror) = pairs
            .iter()
            .find(|(_, mirror)| at == *mirror || at.starts_with(&format!("{mirror}/")))
            .unwrap_or_else(|| panic!("{repository} in no mirror set: {pairs:?}"));
        let original = format!("{source}{}", &at[mirror.len()..]);
        for tag in tags {
            let digest = flow.pulled_digest(&node_conf, &format!("{at}:{tag}"));
            let by_original = format!("{original}@{digest}");
            assert_eq!(flow.pulled_digest(&node_conf, &by_original), digest);
            pulled.insert(by_original);
        }
    }
    eprintln!(
        "\nthe node pulled {} original references by digest from the enclave registry:",
        pulled.len()
    );
    for reference in &pulled {
        eprintln!("  {reference}");
    }
    let expected_originals = [
        format!("{RELEASE_HOST}/{RELEASE_REPOSITORY}@{payload_4_16_2}"),
        "quay.io/ferry-demo/hello@sha256:d1d54e7e5c2c1bc2dbec97d103d9c86efe5a84a2a6ba607bd0a3b11793bebb5c".to_owned(),
    ];
    assert!(pulled_graph_image, "no graph image in the enclave registry");
    for original in &expected_originals {
        assert!(
            pulled.contains(original),
            "{original} not pulled: {pulled:?}"
        );
    }
    assert_eq!(pulled.len(), COMPONENTS.len() + 4, "{pulled:?}");
    let components = pulled
        .iter()
        .filter(|name| name.starts_with(&format!("{RELEASE_HOST}/{COMPONENT_REPOSITORY}@")))
        .count();
    assert!(
        components == COMPONENTS.len(),
        "{components} components: {pulled:?}"
    );
    assert!(
        pulled
            .iter()
            .any(|name| name.starts_with("test.registry/baz-operator/")),
        "{pulled:?}"
    );
    assert!(
        !pulled
            .iter()
            .any(|name| name.contains("foo-operator") || name.contains("ubi-minimal")),
        "the enclave holds only its image set: {pulled:?}"
    );

    // Bytes per stage. Each blob crosses each stage once: the enclave's
    // delivery is the unique content of its image set plus small metadata,
    // and the enterprise registry is read for no more than that.
    let metadata_bytes: u64 = metadata.iter().map(|(_, size)| size).sum();
    eprintln!("\nbytes per stage:");
    eprintln!(
        "  1. internet sources → delivery 1: {internet_bytes} bytes in {internet_requests} blob requests ({internet_blobs} distinct blobs; read again by the collectors: {}); delivery {first_delivery} bytes",
        read_again.len()
    );
    eprintln!("  2. delivery 1 → enterprise registry: {enterprise_stored} bytes stored");
    eprintln!(
        "  3. enterprise registry → enclave delivery: {enclave_fetched} bytes in {enclave_requests} blob requests ({enclave_blobs} distinct blobs: the collectors' layers; the rest came from the cache disk-to-mirror filled); delivery {enclave_delivery} bytes: {delivered_blob_bytes} of content in {delivered_blobs} blobs and manifests, {metadata_bytes} of metadata, {framing} of tar framing"
    );
    eprintln!("  4. enclave delivery → enclave registry: {enclave_stored} bytes stored");
    // The delivery's blobs and manifests are the unique content the
    // enclave registry stores, but for the operator catalog (delivered as
    // the original, rebuilt in the enclave: see the enterprise side); the
    // rest is tar framing (under 1 KiB per entry) and ferry's metadata
    // (plan, image list, index).
    let delivered = delivered_blob_digests(&enclave_side);
    let stored = stored_blob_digests(&enclave_registry);
    let unused: Vec<&String> = delivered.difference(&stored).collect();
    let rebuilt: Vec<&String> = stored.difference(&delivered).collect();
    assert!(
        (1..=3).contains(&unused.len()),
        "the enclave delivery's content differs from its image set's unique content: delivered, not stored: {unused:?}"
    );
    // (The catalog delivered here is the one rebuilt at the enterprise
    // registry: its whiteout layer, the same in every rebuild, travelled.)
    assert_eq!(rebuilt.len(), 3, "stored, not delivered: {rebuilt:?}");
    let entries = (delivered_blobs + metadata.len()) as u64;
    assert!(
        framing < 1024 * entries + 2048,
        "{framing} bytes of tar framing"
    );
    assert!(
        metadata_bytes < 192 * 1024,
        "{metadata_bytes} bytes of metadata"
    );
    assert_eq!(
        enclave_delivery,
        delivered_blob_bytes + metadata_bytes + framing
    );
    assert!(
        enclave_stored < enterprise_stored,
        "the enclave's set is smaller"
    );
    assert_eq!(
        enclave_requests, enclave_blobs,
        "a blob read twice from the enterprise registry"
    );
    assert!(
        enclave_fetched <= enclave_stored,
        "the enclave's delivery read {enclave_fetched} bytes of blobs from the enterprise registry, more than its {enclave_stored} unique bytes"
    );
    assert_eq!(
        flow.trap.connections.load(Ordering::Relaxed),
        0,
        "a command tried to reach an address outside loopback"
    );
}

/// The digest of the graph image a disk folder's delivery names (its
/// record in `working-dir/hold-release/graph-image.json`).
fn graph_image_digest(folder: &Path) -> String {
    let record: serde_json::Value = serde_json::from_slice(
        &std::fs::read(folder.join("working-dir/hold-release/graph-image.json")).unwrap(),
    )
    .unwrap();
    sha256(record["manifest"].as_str().unwrap().as_bytes())
}

/// The file names in a signatures folder (empty when there is none).
fn signature_files(folder: &Path) -> Vec<String> {
    let mut names: Vec<String> = std::fs::read_dir(folder)
        .into_iter()
        .flatten()
        .flatten()
        .map(|entry| entry.file_name().to_string_lossy().into_owned())
        .collect();
    names.sort();
    names
}
