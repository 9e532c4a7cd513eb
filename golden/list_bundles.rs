//! `ferry list bundles` and `ferry list operators` end to end against the
//! test world's registry: registry catalogs pinned and read through
//! registries.conf. The expected rows come from the same file-based
//! catalogs read straight out of the world's content (no registry, no
//! ferry layer reading) and run through the same filter.

use std::path::Path;
use std::process::{Command, Output};

use ferry_content::catalog::{self, Catalog, CatalogFile, listing::bundle_rows};
use ferry_schemas::load_image_set_configuration;
use ferry_testworld::content::{Content, gunzip};
use ferry_testworld::world::World;
use serde_json::Value;

const V416: &str = "registry.redhat.io/redhat/redhat-operator-index:v4.16";
const CONFIGS_LABEL: &str = "operators.operatorframework.io.index.configs.v1";

fn ferry(world: &World, arguments: &[&str]) -> Output {
    let registries_conf = world.registries_conf().display().to_string();
    Command::new(env!("CARGO_BIN_EXE_ferry"))
        .arg("list")
        .args(arguments)
        .args(["--registries-conf", &registries_conf])
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

fn json(content: &Content, digest: &str) -> Value {
    let bytes = content
        .manifests
        .get(digest)
        .map(|manifest| &manifest.bytes)
        .or_else(|| content.blobs.get(digest))
        .unwrap_or_else(|| panic!("{digest} is in the world's content"));
    serde_json::from_slice(bytes).unwrap()
}

/// The catalog files of the amd64 image placed at `host/repository:tag`,
/// read from the world's content.
fn world_catalog(content: &Content, host: &str, repository: &str, tag: &str) -> Catalog {
    let placement = content
        .placements
        .iter()
        .find(|placement| {
            placement.host == host
                && placement.repository == repository
                && placement.tags.iter().any(|placed| placed == tag)
        })
        .expect("the catalog is placed");
    let mut document = json(content, &placement.digest);
    while let Some(manifests) = document["manifests"].as_array() {
        let amd64 = manifests
            .iter()
            .find(|manifest| manifest["platform"]["architecture"] == "amd64")
            .expect("an amd64 image")
            .clone();
        document = json(content, amd64["digest"].as_str().unwrap());
    }
    let config = json(content, document["config"]["digest"].as_str().unwrap());
    let folder = config["config"]["Labels"][CONFIGS_LABEL]
        .as_str()
        .unwrap()
        .trim_start_matches('/')
        .to_owned();
    let mut files = Vec::new();
    for layer in document["layers"].as_array().unwrap() {
        let blob = &content.blobs[layer["digest"].as_str().unwrap()];
        let tar = gunzip(blob).unwrap();
        let mut archive = tar::Archive::new(tar.as_slice());
        for entry in archive.entries().unwrap() {
            let mut entry = entry.unwrap();
            let path = entry.path().unwrap().to_string_lossy().into_owned();
            if let Some(inside) = path.strip_prefix(&format!("{folder}/")) {
                let mut bytes = Vec::new();
                std::io::Read::read_to_end(&mut entry, &mut bytes).unwrap();
                files.push(CatalogFile::new(inside, bytes));
            }
        }
    }
    assert!(!files.is_empty(), "the catalog image holds {folder}/");
    Catalog::load(files).unwrap()
}

/// The rows the filter gives for the configuration's operators, computed
/// from the world's content.
fn expected_rows(content: &Content, configuration: &str) -> Value {
    let text = std::fs::read_to_string(configuration).unwrap();
    let loaded = load_image_set_configuration(&text).unwrap();
    let mut rows = Vec::new();
    for operator in &loaded.config.mirror.operators {
        let ferry_schemas::ImageSource::Registry(reference) = &operator.catalog else {
            panic!("a registry catalog");
        };
        let written = reference.to_string();
        let (name, tag) = written.rsplit_once(':').unwrap();
        let (host, repository) = name.split_once('/').unwrap();
        let catalog = world_catalog(content, host, repository, tag);
        let filtered = catalog::filter(&catalog, operator).unwrap();
        rows.extend(bundle_rows(&written, &catalog, &filtered));
    }
    serde_json::to_value(rows).unwrap()
}

#[test]
fn list_bundles_of_registry_catalogs() {
    let world = World::start().unwrap();
    let folder = tempfile::tempdir().unwrap();
    // The demo's catalog (multi-architecture index) whole, and one channel
    // range of the single-architecture v4.15 image.
    let config = write(
        folder.path(),
        "catalogs.yaml",
        &format!(
            "  operators:\n  - catalog: {V416}\n    packages:\n    - name: jaeger-product\n    - name: node-observability-operator\n  - catalog: registry.redhat.io/redhat/redhat-operator-index:v4.15\n    packages:\n    - name: node-observability-operator\n      channels:\n      - name: alpha\n"
        ),
    );
    let listed = ferry(&world, &["bundles", "-c", &config, "--format", "json"]);
    let stderr = text(&listed.stderr);
    assert_eq!(listed.status.code(), Some(0), "{stderr}");
    let rows: Value = serde_json::from_slice(&listed.stdout).unwrap();
    let expected = expected_rows(world.content(), &config);
    assert_eq!(rows, expected);
    let catalogs: std::collections::BTreeSet<&str> = rows
        .as_array()
        .unwrap()
        .iter()
        .map(|row| row["catalog"].as_str().unwrap())
        .collect();
    assert_eq!(catalogs.len(), 2, "{rows}");
    let packages: std::collections::BTreeSet<&str> = rows
        .as_array()
        .unwrap()
        .iter()
        .map(|row| row["package"].as_str().unwrap())
        .collect();
    assert_eq!(
        packages,
        ["jaeger-product", "node-observability-operator"].into()
    );

    // The text table has the same rows.
    let table = ferry(&world, &["bundles", "-c", &config]);
    assert_eq!(table.status.code(), Some(0), "{}", text(&table.stderr));
    let table = text(&table.stdout);
    assert!(table.starts_with("CATALOG"), "{table}");
    assert_eq!(
        table.lines().count(),
        expected.as_array().unwrap().len() + 1,
        "{table}"
    );

    // A tag the registry does not have: exit 1, naming the catalog.
    let missing = write(
        folder.path(),
        "missing.yaml",
        "  operators:\n  - catalog: registry.redhat.io/redhat/redhat-operator-index:v9.99\n",
    );
    let failed = ferry(&world, &["bundles", "-c", &missing]);
    let stderr = text(&failed.stderr);
    assert_eq!(failed.status.code(), Some(1), "{stderr}");
    assert!(
        stderr.contains("catalog registry.redhat.io/redhat/redhat-operator-index:v9.99: ")
            && stderr.contains("not found"),
        "{stderr}"
    );
}

/// The lines of a listing, each split on runs of two or more spaces.
fn cells(listing: &str) -> Vec<Vec<String>> {
    let separator = regex::Regex::new(" {2,}").unwrap();
    listing
        .lines()
        .map(|line| separator.split(line).map(str::to_owned).collect())
        .collect()
}

#[test]
fn list_operators_of_a_registry_catalog() {
    let world = World::start().unwrap();
    let catalog = world_catalog(
        world.content(),
        "registry.redhat.io",
        "redhat/redhat-operator-index",
        "v4.16",
    );

    let packages = ferry(&world, &["operators", "--catalog", V416]);
    assert_eq!(
        packages.status.code(),
        Some(0),
        "{}",
        text(&packages.stderr)
    );
    // Neither catalog has olm.csv.metadata: the display names are empty.
    assert_eq!(
        cells(&text(&packages.stdout)),
        [
            vec!["NAME", "DISPLAY NAME", "DEFAULT CHANNEL"],
            vec!["jaeger-product", "stable"],
            vec!["node-observability-operator", "alpha"],
        ]
    );

    let channels = ferry(
        &world,
        &[
            "operators",
            "--catalog",
            V416,
            "--package",
            "jaeger-product",
        ],
    );
    assert_eq!(
        channels.status.code(),
        Some(0),
        "{}",
        text(&channels.stderr)
    );
    let mut expected = vec![vec![
        "PACKAGE".to_owned(),
        "CHANNEL".to_owned(),
        "HEAD".to_owned(),
    ]];
    for row in catalog::listing::channels(&catalog, "jaeger-product") {
        expected.push(vec![row.package, row.channel, row.head.unwrap()]);
    }
    assert!(expected.len() > 1);
    assert_eq!(cells(&text(&channels.stdout)), expected);

    let versions = ferry(
        &world,
        &[
            "operators",
            "--catalog",
            V416,
            "--package",
            "jaeger-product",
            "--channel",
            "stable",
        ],
    );
    assert_eq!(
        versions.status.code(),
        Some(0),
        "{}",
        text(&versions.stderr)
    );
    let listed: Vec<String> = text(&versions.stdout).lines().map(str::to_owned).collect();
    assert_eq!(listed[0], "VERSIONS");
    assert_eq!(
        listed[1..],
        catalog::listing::versions(&catalog, "jaeger-product", "stable")
    );
    assert!(listed.len() > 2, "{listed:?}");

    let unknown = ferry(
        &world,
        &["operators", "--catalog", V416, "--package", "not-there"],
    );
    assert_eq!(unknown.status.code(), Some(1));
    assert!(
        text(&unknown.stderr).contains("operator \"not-there\" not found in catalog"),
        "{}",
        text(&unknown.stderr)
    );
    // --package without --catalog is a usage error.
    let usage = ferry(&world, &["operators", "--package", "jaeger-product"]);
    assert_eq!(usage.status.code(), Some(1), "{}", text(&usage.stderr));
    assert!(
        text(&usage.stderr).contains("--catalog <CATALOG>"),
        "{}",
        text(&usage.stderr)
    );
}

#[test]
fn list_operators_catalogs_of_a_version() {
    let world = World::start().unwrap();
    let listed = ferry(&world, &["operators", "--catalogs", "--version", "4.16"]);
    assert_eq!(listed.status.code(), Some(0), "{}", text(&listed.stderr));
    assert_eq!(
        text(&listed.stdout),
        "Available OpenShift OperatorHub catalogs:\n\
         OpenShift 4.16:\n\
         registry.redhat.io/redhat/redhat-operator-index:v4.16\n\
         Invalid catalog reference \"registry.redhat.io/redhat/certified-operator-index:v4.16\", please check version\n\
         Invalid catalog reference \"registry.redhat.io/redhat/community-operator-index:v4.16\", please check version\n\
         Invalid catalog reference \"registry.redhat.io/redhat/redhat-marketplace-index:v4.16\", please check version\n"
    );
    // From 4.22 the marketplace is not asked; --version alone means --catalogs.
    let listed = ferry(&world, &["operators", "--version", "4.22"]);
    assert_eq!(listed.status.code(), Some(0), "{}", text(&listed.stderr));
    let stdout = text(&listed.stdout);
    assert_eq!(stdout.lines().count(), 5, "{stdout}");
    assert!(!stdout.contains("marketplace"), "{stdout}");
    assert!(
        stdout.contains(
            "Invalid catalog reference \"registry.redhat.io/redhat/redhat-operator-index:v4.22\""
        ),
        "{stdout}"
    );
    let bad = ferry(&world, &["operators", "--version", "four"]);
    assert_eq!(bad.status.code(), Some(1), "{}", text(&bad.stderr));
}

/// Only the amd64 image's manifest, config and layers are asked for, each
/// once: the arm64 image of the index is never fetched.
#[test]
fn list_bundles_fetches_only_the_amd64_image() {
    let world = World::start().unwrap();
    let proxy = ferry_testworld::proxy::FaultProxy::start(world.registry().address()).unwrap();
    let folder = tempfile::tempdir().unwrap();
    let registries_conf = folder.path().join("registries.conf");
    std::fs::write(
        &registries_conf,
        ferry_testworld::registries_conf::render(
            &["registry.redhat.io".to_owned()].into(),
            &proxy.host(),
            true,
        ),
    )
    .unwrap();
    let config = write(
        folder.path(),
        "isc.yaml",
        &format!("  operators:\n  - catalog: {V416}\n    packages:\n    - name: jaeger-product\n"),
    );
    let listed = Command::new(env!("CARGO_BIN_EXE_ferry"))
        .args(["list", "bundles", "-c", &config, "--format", "json"])
        .args(["--registries-conf", &registries_conf.display().to_string()])
        .args(["--src-tls-verify=false"])
        .env("REGISTRY_AUTH_FILE", folder.path().join("no-auth.json"))
        .output()
        .unwrap();
    assert_eq!(listed.status.code(), Some(0), "{}", text(&listed.stderr));
    let rows: Value = serde_json::from_slice(&listed.stdout).unwrap();
    assert!(!rows.as_array().unwrap().is_empty());

    let content = world.content();
    let placement = content
        .placements
        .iter()
        .find(|placement| {
            placement.repository == "redhat/redhat-operator-index"
                && placement.tags.contains(&"v4.16".to_owned())
        })
        .unwrap();
    let index = json(content, &placement.digest);
    let manifests = index["manifests"].as_array().unwrap();
    let digest_of = |architecture: &str| {
        manifests
            .iter()
            .find(|manifest| manifest["platform"]["architecture"] == architecture)
            .unwrap()["digest"]
            .as_str()
            .unwrap()
            .to_owned()
    };
    let (amd64, arm64) = (digest_of("amd64"), digest_of("arm64"));
    let image = json(content, &amd64);
    let mut expected_blobs: Vec<String> = std::iter::once(&image["config"])
        .chain(image["layers"].as_array().unwrap())
        .map(|descriptor| descriptor["digest"].as_str().unwrap().to_owned())
        .collect();
    expected_blobs.sort();

    let records = proxy.records();
    let gets = |kind: &str| -> Vec<String> {
        let mut found: Vec<String> = records
            .iter()
            .filter(|record| record.method == "GET" && record.status == 200)
            .filter_map(|record| {
                record
                    .path
                    .split_once(kind)
                    .map(|(_, target)| target.to_owned())
            })
            .collect();
        found.sort();
        found
    };
    let mut expected_manifests = vec!["v4.16".to_owned(), amd64];
    expected_manifests.sort();
    assert_eq!(gets("/manifests/"), expected_manifests, "{records:?}");
    assert_eq!(gets("/blobs/"), expected_blobs, "{records:?}");
    assert!(
        !records.iter().any(|record| record.path.contains(&arm64)),
        "{records:?}"
    );
}
