//! Operator catalogs mirrored end to end (mirror-to-mirror) against the
//! test world: a filtered single-architecture catalog and a filtered
//! multi-architecture one (retargeted), the bundle images checked with
//! skopeo at the destination, the rebuilt catalogs read back with `ferry
//! list bundles` (through `catalog_image` and `layer_files`) and compared
//! with what the filter selects from the originals, the CatalogSource and
//! ClusterCatalog checked against the strict CRD schemas, a rerun that
//! plans nothing and the plan's bundle lines; a related image that fails
//! (before or while the plan runs) keeping its bundle image and catalog
//! away; mirror-to-disk's error lines; and mirror-to-disk then
//! disk-to-mirror (sources stopped) filtering the delivered original
//! catalog again by a narrower configuration; one more bundle selected
//! ships only its new blobs in the next delivery.

use std::collections::BTreeSet;
use std::process::{Command, Output};

use ferry_testworld::registry::{Flavour, Registry, Storage};
use ferry_testworld::world::World;
use serde_json::Value;

use crate::support::{
    all_output, assert_valid_against_crd, exited, ferry, mirroring_errors, skopeo_raw_bytes, text,
    write_image_set,
};

const TEST_CATALOG: &str = "quay.io/ferry-demo/test-catalog:latest";
const V416: &str = "registry.redhat.io/redhat/redhat-operator-index:v4.16";

struct Scenario {
    world: World,
    destination: Registry,
    folder: tempfile::TempDir,
}

impl Scenario {
    fn start() -> Scenario {
        Scenario {
            world: World::start().unwrap(),
            destination: Registry::start(Flavour::PlainHttp, Storage::Empty).unwrap(),
            folder: tempfile::tempdir().unwrap(),
        }
    }

    fn config(&self, name: &str, operators: &str) -> String {
        write_image_set(
            self.folder.path(),
            name,
            &format!("  operators:\n{operators}"),
        )
    }

    fn command(&self, subcommand: &str) -> Command {
        ferry(self.folder.path(), subcommand)
    }

    fn ferry(&self, command: &str, config: &str, extra: &[&str]) -> Output {
        let workspace = format!("file://{}", self.folder.path().join("workspace").display());
        let destination = format!("docker://{}/mirror", self.destination.host());
        self.command(command)
            .args(["-c", config, "--workspace", &workspace])
            .arg("--registries-conf")
            .arg(self.world.registries_conf())
            .arg("--dest-tls-verify=false")
            .args(extra)
            .arg(&destination)
            .output()
            .unwrap()
    }

    /// `ferry list bundles --format json` of `config`: (package, bundle).
    fn selected(&self, config: &str, extra: &[&str]) -> BTreeSet<(String, String)> {
        let output = self
            .command("list")
            .args(["bundles", "-c", config, "--format", "json"])
            .arg("--registries-conf")
            .arg(self.world.registries_conf())
            .args(extra)
            .output()
            .unwrap();
        assert!(output.status.success(), "{}", text(&output.stderr));
        let rows: Vec<Value> = serde_json::from_slice(&output.stdout).unwrap();
        rows.iter()
            .map(|row| {
                (
                    row["package"].as_str().unwrap().to_owned(),
                    row["bundle"].as_str().unwrap().to_owned(),
                )
            })
            .collect()
    }

    fn bundle_images(&self, config: &str) -> BTreeSet<String> {
        let output = self
            .command("list")
            .args(["bundles", "-c", config, "--format", "json"])
            .arg("--registries-conf")
            .arg(self.world.registries_conf())
            .output()
            .unwrap();
        let rows: Vec<Value> = serde_json::from_slice(&output.stdout).unwrap();
        rows.iter()
            .map(|row| row["image"].as_str().unwrap().to_owned())
            .collect()
    }

    fn skopeo_raw(&self, reference: &str) -> Option<Value> {
        skopeo_raw_bytes(reference).map(|bytes| serde_json::from_slice(&bytes).unwrap())
    }
}

#[test]
fn filtered_catalogs_mirror_with_their_bundles_and_cluster_resources() {
    let scenario = Scenario::start();
    let template = scenario.folder.path().join("catalog-source-template.yaml");
    std::fs::write(
        &template,
        "apiVersion: operators.coreos.com/v1alpha1\nkind: CatalogSource\nmetadata:\n  name: replaced\nspec:\n  displayName: Mirrored test operators\n  publisher: ferry tests\n",
    )
    .unwrap();
    let operators = format!(
        "  - catalog: {TEST_CATALOG}\n    targetCatalogSourceTemplate: {}\n    packages:\n    - name: foo\n      channels:\n      - name: beta\n        minVersion: 0.2.0\n        maxVersion: 0.3.1\n  - catalog: {V416}\n    targetCatalog: mirrored/operator-index\n    packages:\n    - name: jaeger-product\n",
        template.display()
    );
    let config = scenario.config("operators.yaml", &operators);

    // A plan rebuilds the catalogs in memory: the cache is left as it is.
    let plan = scenario.ferry("plan", &config, &[]);
    assert!(plan.status.success(), "{}", text(&plan.stderr));
    assert!(
        !scenario.folder.path().join("cache").exists(),
        "ferry plan wrote the cache"
    );

    let mirror = scenario.ferry("mirror", &config, &[]);
    // The summary is on stdout, logs on stderr.
    let output = all_output(&mirror);
    assert!(mirror.status.success(), "{output}");
    assert!(output.contains("operator images mirrored"), "{output}");

    // Every selected bundle's image is at the destination.
    let host = scenario.destination.host();
    let expected = scenario.selected(&config, &[]);
    assert!(
        expected.contains(&("foo".to_owned(), "foo.v0.3.1".to_owned())),
        "{expected:?}"
    );
    assert_eq!(
        expected
            .iter()
            .filter(|(package, _)| package == "foo")
            .count(),
        3,
        "foo.v0.2.0, foo.v0.3.0, foo.v0.3.1: {expected:?}"
    );
    for image in scenario.bundle_images(&config) {
        let at = destination_of(&host, &image);
        assert!(scenario.skopeo_raw(&at).is_some(), "{at} is mirrored");
    }

    // The rebuilt catalogs hold exactly the selected bundles.
    let mirrored = scenario.config(
        "mirrored.yaml",
        &format!(
            "  - catalog: {host}/mirror/ferry-demo/test-catalog:latest\n    full: true\n  - catalog: {host}/mirror/mirrored/operator-index:v4.16\n    full: true\n"
        ),
    );
    let rebuilt = scenario.selected(&mirrored, &["--src-tls-verify=false"]);
    assert_eq!(rebuilt, expected, "the rebuilt catalogs' bundles");

    // Both platforms of the multi-architecture catalog were rebuilt.
    let index = scenario
        .skopeo_raw(&format!("{host}/mirror/mirrored/operator-index:v4.16"))
        .unwrap();
    let architectures: BTreeSet<&str> = index["manifests"]
        .as_array()
        .unwrap()
        .iter()
        .map(|manifest| manifest["platform"]["architecture"].as_str().unwrap())
        .collect();
    assert_eq!(architectures, BTreeSet::from(["amd64", "arm64"]));

    // CatalogSource and ClusterCatalog, valid against the strict schemas.
    let resources = scenario
        .folder
        .path()
        .join("workspace/working-dir/cluster-resources");
    let read = |name: &str| {
        std::fs::read_to_string(resources.join(name))
            .unwrap_or_else(|_| panic!("{name} is written"))
    };
    let catalog_source = read("cs-test-catalog-latest.yaml");
    assert!(
        catalog_source.contains(&format!(
            "image: {host}/mirror/ferry-demo/test-catalog:latest"
        )),
        "{catalog_source}"
    );
    assert_valid_against_crd(
        &catalog_source,
        "operators.coreos.com_v1alpha1_CatalogSource.strict.schema.json",
        ("  image", "  imagen"),
    );
    assert!(
        catalog_source.contains("displayName: Mirrored test operators")
            && catalog_source.contains("name: cs-test-catalog-latest"),
        "the template's fields are kept, its name replaced: {catalog_source}"
    );
    let cluster_catalog = read("cc-operator-index-v4-16.yaml");
    assert_valid_against_crd(
        &cluster_catalog,
        "olm.operatorframework.io_v1_ClusterCatalog.strict.schema.json",
        ("  image", "  imagen"),
    );
    read("cs-operator-index-v4-16.yaml");
    read("cc-test-catalog-latest.yaml");
    let mirror_sets = format!(
        "{}{}",
        std::fs::read_to_string(resources.join("idms-oc-mirror.yaml")).unwrap_or_default(),
        std::fs::read_to_string(resources.join("itms-oc-mirror.yaml")).unwrap_or_default()
    );
    assert!(mirror_sets.contains("-operator-0"), "{mirror_sets}");
    assert!(
        !mirror_sets.contains("test-catalog") && !mirror_sets.contains("operator-index"),
        "catalogs are not in the mirror sets: {mirror_sets}"
    );

    // A rerun plans nothing: the rebuilt catalogs are the same bytes.
    let again = scenario.ferry("plan", &config, &["--detailed-exitcode"]);
    exited(&again, 0);

    // One more bundle selected: its images are new, the test catalog is
    // rebuilt (changed), and nothing else moves.
    let widened = scenario.config(
        "widened.yaml",
        &operators.replace("minVersion: 0.2.0", "minVersion: 0.1.0"),
    );
    let plan = scenario.ferry("plan", &widened, &["--detailed-exitcode"]);
    let shown = text(&plan.stdout);
    assert_eq!(plan.status.code(), Some(2), "{shown}");
    let new_lines: Vec<&str> = shown
        .lines()
        .filter(|line| line.starts_with("  + "))
        .collect();
    assert!(
        new_lines
            .iter()
            .any(|line| line.contains("foo-bundle:v0.1.0 ")),
        "{shown}"
    );
    assert!(
        new_lines.iter().all(|line| line.contains("v0.1.0")),
        "only foo.v0.1.0's images are new: {shown}"
    );
    assert!(
        shown.contains(" 1 changed,"),
        "the test catalog is rebuilt: {shown}"
    );
    // The plan speaks of bundles too, per catalog and package.
    assert!(
        shown.contains(&format!(
            "Operator bundles:\n  catalog {TEST_CATALOG}, package foo:\n    + foo.v0.1.0 (new bundle in channel beta)\n"
        )),
        "{shown}"
    );
    let json = scenario.ferry("plan", &widened, &["--format", "json"]);
    let document: Value = serde_json::from_slice(&json.stdout).unwrap();
    assert_eq!(
        document["bundles"],
        serde_json::json!([{
            "catalog": TEST_CATALOG,
            "package": "foo",
            "bundle": "foo.v0.1.0",
            "change": "new",
            "channels": ["beta"]
        }])
    );
    let narrowed = scenario.config(
        "narrowed.yaml",
        &operators.replace("minVersion: 0.2.0", "minVersion: 0.3.0"),
    );
    let plan = scenario.ferry("plan", &narrowed, &[]);
    let shown = text(&plan.stdout);
    assert!(
        shown.contains("    - foo.v0.2.0 (no longer selected)\n"),
        "{shown}"
    );
    let markdown = scenario.ferry("plan", &narrowed, &["--format", "markdown"]);
    let markdown = text(&markdown.stdout);
    assert!(
        markdown.contains(&format!(
            "| - | `{TEST_CATALOG}` | foo | `foo.v0.2.0` | no longer selected |"
        )),
        "{markdown}"
    );
}

/// Writes an OCI layout holding a one-image catalog whose only bundle
/// needs `quay.io/ferry-demo/hello:1.0` and a related image no registry
/// has; returns the layout's path.
fn layout_with_a_missing_related_image(folder: &std::path::Path) -> std::path::PathBuf {
    layout_with_one_bundle(
        folder,
        "quay.io/ferry-demo/hello:1.0",
        "quay.io/ferry-demo/missing-operand:1.0",
    )
}

/// Writes an OCI layout `broken-catalog` holding a one-image catalog whose
/// only bundle, demo.v1.0.0, has the image `bundle` and the related image
/// `related`; returns the layout's path.
fn layout_with_one_bundle(
    folder: &std::path::Path,
    bundle: &str,
    related: &str,
) -> std::path::PathBuf {
    use sha2::Digest as _;
    let layout = folder.join("broken-catalog");
    let blobs = layout.join("blobs/sha256");
    std::fs::create_dir_all(&blobs).unwrap();
    let store = |bytes: &[u8]| {
        let hex = hex::encode(sha2::Sha256::digest(bytes));
        std::fs::write(blobs.join(&hex), bytes).unwrap();
        (format!("sha256:{hex}"), bytes.len())
    };
    let catalog = format!(
        "{}\n{}\n{}\n",
        r#"{"schema":"olm.package","name":"demo","defaultChannel":"stable"}"#,
        r#"{"schema":"olm.channel","package":"demo","name":"stable","entries":[{"name":"demo.v1.0.0"}]}"#,
        r#"{"schema":"olm.bundle","package":"demo","name":"demo.v1.0.0","image":"BUNDLE","properties":[{"type":"olm.package","value":{"packageName":"demo","version":"1.0.0"}}],"relatedImages":[{"name":"bundle","image":"BUNDLE"},{"name":"operand","image":"RELATED"}]}"#
    )
    .replace("BUNDLE", bundle)
    .replace("RELATED", related);
    let mut builder = tar::Builder::new(Vec::new());
    let mut header = tar::Header::new_gnu();
    header.set_size(catalog.len() as u64);
    header.set_mode(0o644);
    builder
        .append_data(&mut header, "configs/demo/catalog.json", catalog.as_bytes())
        .unwrap();
    let layer = builder.into_inner().unwrap();
    let (layer_digest, layer_size) = store(&layer);
    let config = serde_json::json!({
        "architecture": "amd64",
        "os": "linux",
        "config": {"Labels": {"operators.operatorframework.io.index.configs.v1": "/configs"}},
        "rootfs": {"type": "layers", "diff_ids": [layer_digest]}
    });
    let (config_digest, config_size) = store(&serde_json::to_vec(&config).unwrap());
    let manifest = serde_json::json!({
        "schemaVersion": 2,
        "mediaType": "application/vnd.oci.image.manifest.v1+json",
        "config": {"mediaType": "application/vnd.oci.image.config.v1+json", "digest": config_digest, "size": config_size},
        "layers": [{"mediaType": "application/vnd.oci.image.layer.v1.tar", "digest": layer_digest, "size": layer_size}]
    });
    let (manifest_digest, manifest_size) = store(&serde_json::to_vec(&manifest).unwrap());
    std::fs::write(
        layout.join("oci-layout"),
        r#"{"imageLayoutVersion":"1.0.0"}"#,
    )
    .unwrap();
    let index = serde_json::json!({
        "schemaVersion": 2,
        "manifests": [{"mediaType": "application/vnd.oci.image.manifest.v1+json", "digest": manifest_digest, "size": manifest_size}]
    });
    std::fs::write(
        layout.join("index.json"),
        serde_json::to_vec(&index).unwrap(),
    )
    .unwrap();
    layout
}

#[test]
fn a_related_image_that_fails_marks_its_bundle_incomplete_and_the_rest_goes_on() {
    let scenario = Scenario::start();
    let layout = layout_with_a_missing_related_image(scenario.folder.path());
    let config = scenario.config(
        "broken.yaml",
        &format!(
            "  - catalog: oci://{}\n  - catalog: {TEST_CATALOG}\n    packages:\n    - name: baz\n",
            layout.display()
        ),
    );
    let mirror = scenario.ferry("mirror", &config, &[]);
    let output = all_output(&mirror);
    assert_eq!(mirror.status.code(), Some(4), "operator bit only: {output}");
    assert!(
        output.contains("incomplete operator bundles: [demo.v1.0.0] - operators: [demo]"),
        "{output}"
    );
    let logs = scenario.folder.path().join("workspace/working-dir/logs");
    let errors: String = mirroring_errors(&logs);
    let lines: Vec<&str> = errors.lines().collect();
    assert!(
        lines[0].starts_with(
            "error mirroring image quay.io/ferry-demo/missing-operand:1.0 (Operator bundles: [demo.v1.0.0] - Operators: [demo]) error: "
        ),
        "{errors}"
    );
    // The bundle image needs its related images, the catalog its bundle:
    // neither is mirrored, each says why.
    assert!(
        lines.contains(
            &"error mirroring image quay.io/ferry-demo/hello:1.0 (Operator bundles: [demo.v1.0.0] - Operators: [demo]) error: not mirrored: it needs quay.io/ferry-demo/missing-operand:1.0, which failed"
        ),
        "{errors}"
    );
    assert!(
        lines.contains(&format!(
            "error mirroring image oci://{} error: not mirrored: it needs quay.io/ferry-demo/hello:1.0, which failed",
            layout.display()
        ).as_str()),
        "{errors}"
    );
    assert_eq!(lines.len(), 3, "{errors}");
    let host = scenario.destination.host();
    for reference in [
        format!("{host}/mirror/ferry-demo/hello:1.0"),
        format!("{host}/mirror/broken-catalog:latest"),
    ] {
        assert!(
            scenario.skopeo_raw(&reference).is_none(),
            "{reference} is not mirrored"
        );
    }
    // The other catalog and its operator arrived.
    let baz = scenario.bundle_images(&scenario.config(
        "baz.yaml",
        &format!("  - catalog: {TEST_CATALOG}\n    packages:\n    - name: baz\n"),
    ));
    assert!(!baz.is_empty());
    for reference in baz
        .iter()
        .map(|image| destination_of(&host, image))
        .chain([format!("{host}/mirror/ferry-demo/test-catalog:latest")])
    {
        assert!(scenario.skopeo_raw(&reference).is_some(), "{reference}");
    }
    let resources = scenario
        .folder
        .path()
        .join("workspace/working-dir/cluster-resources");
    assert!(resources.join("cs-test-catalog-latest.yaml").is_file());
    assert!(
        !resources.join("cs-broken-catalog-latest.yaml").exists(),
        "no CatalogSource for a catalog that is not mirrored"
    );
}

/// Where an operator image goes under `<host>/mirror`.
fn destination_of(host: &str, image: &str) -> String {
    let reference: ferry_schemas::ImageReference = image.parse().unwrap();
    let tag = match (reference.tag(), reference.digest()) {
        (Some(tag), _) => tag.to_owned(),
        (None, Some(digest)) => format!("sha256-{}", digest.hex()),
        (None, None) => "latest".to_owned(),
    };
    format!("{host}/mirror/{}:{tag}", reference.repository())
}

#[test]
fn mirror_to_disk_then_disk_to_mirror_with_the_sources_stopped_filters_the_catalog_again() {
    let scenario = Scenario::start();
    let foo = "    - name: foo\n      channels:\n      - name: beta\n        minVersion: 0.2.0\n        maxVersion: 0.3.1\n";
    let config = scenario.config(
        "disk.yaml",
        &format!("  - catalog: {TEST_CATALOG}\n    packages:\n    - name: baz\n{foo}"),
    );
    // The disconnected side selects one of the two delivered packages.
    let enclave_config = scenario.config(
        "enclave-disk.yaml",
        &format!("  - catalog: {TEST_CATALOG}\n    packages:\n{foo}"),
    );
    let disk = format!("file://{}", scenario.folder.path().join("disk").display());
    let to_disk = scenario
        .command("mirror")
        .args(["-c", &config, "--registries-conf"])
        .arg(scenario.world.registries_conf())
        .arg(&disk)
        .output()
        .unwrap();
    let output = all_output(&to_disk);
    assert!(to_disk.status.success(), "{output}");
    assert!(
        output.contains("quay.io/ferry-demo/test-catalog:latest"),
        "the delivery plan names the catalog: {output}"
    );
    let verify = scenario.command("verify").arg(&disk).output().unwrap();
    assert!(verify.status.success());
    let expected = scenario.selected(&enclave_config, &[]);
    let foo_images = scenario.bundle_images(&enclave_config);
    let all_images = scenario.bundle_images(&config);
    let baz_only: BTreeSet<&String> = all_images.difference(&foo_images).collect();
    assert!(!foo_images.is_empty() && !baz_only.is_empty());

    // The disconnected side: no source registry, a cache of its own.
    let Scenario {
        world,
        destination,
        folder,
    } = scenario;
    drop(world);
    let disconnected = |subcommand: &str| {
        let mut command = ferry(folder.path(), subcommand);
        command.env("FERRY_CACHE_DIR", folder.path().join("disconnected-cache"));
        command
    };
    let host = destination.host();
    let from_disk = |config: &str| {
        disconnected("mirror")
            .args(["-c", config, "--from", &disk, "--dest-tls-verify=false"])
            .arg(format!("docker://{host}/mirror"))
            .output()
            .unwrap()
    };
    // A package the delivery does not carry is a clear error.
    let wider = write_image_set(
        folder.path(),
        "wider.yaml",
        &format!(
            "  operators:\n  - catalog: {TEST_CATALOG}\n    packages:\n    - name: bar\n{foo}"
        ),
    );
    let refused = from_disk(&wider);
    let stderr = text(&refused.stderr);
    assert_eq!(refused.status.code(), Some(1), "{stderr}");
    assert!(
        stderr.contains("selects more than the deliveries carry")
            && stderr.contains("package bar: not delivered")
            && !stderr.contains("package foo"),
        "{stderr}"
    );

    let mirrored = from_disk(&enclave_config);
    let stderr = text(&mirrored.stderr);
    assert!(mirrored.status.success(), "{stderr}");
    // The filter's warnings are shown on this side too.
    assert!(
        stderr.contains(&format!(
            "warning: catalog {TEST_CATALOG}: package \"foo\" bundle \"foo.v0.3.1\" requires"
        )),
        "{stderr}"
    );
    let skopeo = |reference: &str| skopeo_raw_bytes(reference).is_some();
    for image in &foo_images {
        let at = destination_of(&host, image);
        assert!(skopeo(&at), "{at} is mirrored");
    }
    for image in baz_only {
        let at = destination_of(&host, image);
        assert!(!skopeo(&at), "{at} was delivered but not selected here");
    }
    // The catalog at the enclave holds exactly this side's selection.
    let mirrored = write_image_set(
        folder.path(),
        "enclave.yaml",
        &format!(
            "  operators:\n  - catalog: {host}/mirror/ferry-demo/test-catalog:latest\n    full: true\n"
        ),
    );
    let listed = disconnected("list")
        .args(["bundles", "-c"])
        .arg(&mirrored)
        .args(["--format", "json", "--src-tls-verify=false"])
        .output()
        .unwrap();
    assert!(listed.status.success(), "{}", text(&listed.stderr));
    let rows: Vec<Value> = serde_json::from_slice(&listed.stdout).unwrap();
    let rebuilt: BTreeSet<(String, String)> = rows
        .iter()
        .map(|row| {
            (
                row["package"].as_str().unwrap().to_owned(),
                row["bundle"].as_str().unwrap().to_owned(),
            )
        })
        .collect();
    assert_eq!(rebuilt, expected);
    assert!(rebuilt.iter().all(|(package, _)| package == "foo"));
    assert!(
        folder
            .path()
            .join("disk/working-dir/cluster-resources/cs-test-catalog-latest.yaml")
            .is_file(),
        "{stderr}"
    );
}

#[test]
fn a_related_image_that_fails_while_copying_keeps_its_bundle_and_catalog_away() {
    use ferry_testworld::proxy::{ErrorAnswer, FaultProxy, Faults};
    let scenario = Scenario::start();
    // The related image resolves, then every blob of its repository is
    // refused: it fails while the plan runs, not before.
    let proxy = FaultProxy::start(scenario.world.registry().address()).unwrap();
    let source = proxy.host();
    let bundle = format!("{source}/quay.io/ferry-demo/hello:1.0");
    let related = format!("{source}/registry.redhat.io/ubi9/ubi-minimal:9.4");
    let layout = layout_with_one_bundle(scenario.folder.path(), &bundle, &related);
    proxy.arm(Faults {
        errors: vec![ErrorAnswer {
            method: "GET".to_owned(),
            path_contains: "/ubi9/ubi-minimal/blobs/".to_owned(),
            status: 404,
            retry_after: None,
            times: 1000,
        }],
        ..Faults::default()
    });
    let config = scenario.config(
        "copy-fails.yaml",
        &format!(
            "  - catalog: oci://{}\n  - catalog: {TEST_CATALOG}\n    packages:\n    - name: baz\n",
            layout.display()
        ),
    );
    let mirror = scenario.ferry("mirror", &config, &["--src-tls-verify=false"]);
    let output = all_output(&mirror);
    assert_eq!(mirror.status.code(), Some(4), "operator bit only: {output}");
    let logs = scenario.folder.path().join("workspace/working-dir/logs");
    let errors: String = mirroring_errors(&logs);
    assert!(
        errors.contains(&format!(
            "error mirroring image {related} (Operator bundles: [demo.v1.0.0] - Operators: [demo]) error: "
        )),
        "{errors}"
    );
    assert!(
        errors.contains(&format!(
            "error mirroring image {bundle} (Operator bundles: [demo.v1.0.0] - Operators: [demo]) error: skipped: a step it needs failed"
        )),
        "the bundle image waits for its related image: {errors}"
    );
    let host = scenario.destination.host();
    for reference in [
        format!("{host}/mirror/quay.io/ferry-demo/hello:1.0"),
        format!("{host}/mirror/broken-catalog:latest"),
    ] {
        assert!(
            scenario.skopeo_raw(&reference).is_none(),
            "{reference} is not mirrored"
        );
    }
    assert!(
        scenario
            .skopeo_raw(&format!("{host}/mirror/ferry-demo/test-catalog:latest"))
            .is_some(),
        "the other catalog is mirrored"
    );
}

#[test]
fn mirror_to_disk_error_lines_name_the_bundles_and_operators_of_a_failed_image() {
    let scenario = Scenario::start();
    let layout = layout_with_a_missing_related_image(scenario.folder.path());
    let config = scenario.config(
        "broken-disk.yaml",
        &format!("  - catalog: oci://{}\n", layout.display()),
    );
    let folder = scenario.folder.path().join("disk");
    let to_disk = scenario
        .command("mirror")
        .args(["-c", &config, "--registries-conf"])
        .arg(scenario.world.registries_conf())
        .arg(format!("file://{}", folder.display()))
        .output()
        .unwrap();
    let output = all_output(&to_disk);
    assert_eq!(to_disk.status.code(), Some(4), "{output}");
    assert!(
        output.contains("incomplete operator bundles: [demo.v1.0.0] - operators: [demo]"),
        "{output}"
    );
    let errors: String = mirroring_errors(&folder.join("working-dir/logs"));
    assert!(
        errors.starts_with(
            "error mirroring image quay.io/ferry-demo/missing-operand:1.0 (Operator bundles: [demo.v1.0.0] - Operators: [demo]) error: "
        ),
        "{errors}"
    );
}

#[test]
fn adding_a_bundle_to_the_selection_ships_only_its_new_blobs() {
    let scenario = Scenario::start();
    let package = |min: &str| {
        format!(
            "  - catalog: {TEST_CATALOG}\n    packages:\n    - name: foo\n      channels:\n      - name: beta\n        minVersion: {min}\n        maxVersion: 0.3.1\n"
        )
    };
    let narrow = scenario.config("narrow.yaml", &package("0.3.1"));
    let wider = scenario.config("wider.yaml", &package("0.2.0"));
    let before = scenario.bundle_images(&narrow);
    let after = scenario.bundle_images(&wider);
    let added: BTreeSet<&String> = after.difference(&before).collect();
    assert!(
        !before.is_empty() && !added.is_empty() && before.is_subset(&after),
        "{before:?} then {after:?}"
    );
    let folder = scenario.folder.path().join("disk");
    let disk = format!("file://{}", folder.display());
    for config in [&narrow, &wider] {
        let run = scenario
            .command("mirror")
            .args(["-c", config, "--registries-conf"])
            .arg(scenario.world.registries_conf())
            .arg(&disk)
            .output()
            .unwrap();
        assert!(run.status.success(), "{}", text(&run.stderr));
    }
    let first = crate::releases::blob_entries(&folder.join("mirror_000001.tar"));
    let second = crate::releases::blob_entries(&folder.join("mirror_000002.tar"));
    // Nothing shipped twice: the unchanged catalog and the bundle already
    // delivered stay out of the second delivery.
    let twice: Vec<&String> = second
        .keys()
        .filter(|path| first.contains_key(*path))
        .collect();
    assert!(twice.is_empty(), "shipped twice: {twice:?}");
    // Each bundle image's manifest, by its digest at the source.
    let conf = scenario.world.registries_conf();
    let entry = |image: &str| {
        let raw = Command::new("skopeo")
            .arg("--registries-conf")
            .arg(conf)
            .args(["inspect", "--raw", "--tls-verify=false"])
            .arg(format!("docker://{image}"))
            .output()
            .unwrap();
        assert!(raw.status.success(), "{image}: {}", text(&raw.stderr));
        format!(
            "blobs/sha256/{}",
            ferry_schemas::Digest::sha256_of(&raw.stdout).hex()
        )
    };
    for image in &added {
        assert!(
            second.contains_key(&entry(image)),
            "{image} not in the second delivery"
        );
    }
    for image in &before {
        assert!(
            first.contains_key(&entry(image)),
            "{image} not in the first delivery"
        );
        assert!(!second.contains_key(&entry(image)), "{image} shipped again");
    }
    let new_bytes: u64 = second.values().sum();
    let delivery_bytes = std::fs::metadata(folder.join("mirror_000002.tar"))
        .unwrap()
        .len();
    eprintln!(
        "one more bundle: delivery {delivery_bytes} bytes, new content {new_bytes} bytes in {} entries",
        second.len()
    );
    let verify = scenario.command("verify").arg(&disk).output().unwrap();
    assert!(verify.status.success());
}
