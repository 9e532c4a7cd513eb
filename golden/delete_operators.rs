//! `ferry delete` of operator catalogs against the test world: a catalog
//! mirrored (mirror-to-mirror) with two packages; one package deleted
//! (its bundle and related images answer 404 with skopeo, the other
//! package's images and the catalog still pull); then the whole catalog
//! (the catalog image goes too); the delete plan of each listing the same
//! manifests; the same from a disk folder after mirror-to-disk and
//! disk-to-mirror; and a workspace that never mirrored the catalog,
//! refused with what to run first.

use std::collections::BTreeSet;
use std::process::Command;

use ferry_testworld::registry::{Flavour, Registry, Storage};
use serde_yaml::Value;

use crate::support::{Scenario, compare_or_bless, golden_path, text};

const TEST_CATALOG: &str = "quay.io/ferry-demo/test-catalog:latest";

/// foo's two newest beta bundles and bar's default channel head.
const MIRRORED: &str = "    packages:\n    - name: foo\n      channels:\n      - name: beta\n        minVersion: 0.3.0\n        maxVersion: 0.3.1\n    - name: bar\n";

fn mirror_operators(scenario: &Scenario, operators: &str) {
    let config = scenario.write(
        "operators.yaml",
        &format!(
            "kind: ImageSetConfiguration\napiVersion: mirror.openshift.io/v2alpha1\nmirror:\n  operators:\n{operators}"
        ),
    );
    let registries_conf = scenario.world.registries_conf().display().to_string();
    let output = scenario.ferry(&[
        "mirror",
        "-c",
        &config,
        "--workspace",
        &scenario.workspace(),
        "--registries-conf",
        &registries_conf,
        "--dest-tls-verify=false",
        &scenario.destination(),
    ]);
    assert!(output.status.success(), "{}", text(&output.stderr));
}

fn delete_configuration(scenario: &Scenario, name: &str, operators: &str) -> String {
    scenario.write(
        name,
        &format!(
            "kind: DeleteImageSetConfiguration\napiVersion: mirror.openshift.io/v2alpha1\ndelete:\n  operators:\n{operators}"
        ),
    )
}

/// `ferry delete --generate` of `disc`: the listed (type, reference below
/// the destination's `mirror/`) pairs.
fn generate(scenario: &Scenario, disc: &str) -> BTreeSet<(String, String)> {
    generate_in(scenario, "workspace", disc)
}

/// [`generate`] with the workspace (or disk folder) `folder`.
fn generate_in(scenario: &Scenario, folder: &str, disc: &str) -> BTreeSet<(String, String)> {
    let output = scenario.generate_delete_list(disc, &scenario.workspace_named(folder), &[]);
    let stderr = text(&output.stderr);
    assert!(output.status.success(), "{stderr}");
    assert!(
        !stderr.contains("no record"),
        "every listed image was mirrored there: {stderr}"
    );
    let list = scenario.delete_list(folder);
    let list: Value = serde_yaml::from_str(&std::fs::read_to_string(list).unwrap()).unwrap();
    let base = format!("docker://{}/mirror/", scenario.destination.host());
    list["items"]
        .as_sequence()
        .unwrap()
        .iter()
        .map(|item| {
            (
                item["type"].as_str().unwrap().to_owned(),
                item["imageReference"]
                    .as_str()
                    .unwrap()
                    .strip_prefix(&base)
                    .unwrap()
                    .to_owned(),
            )
        })
        .collect()
}

/// `ferry delete --delete-yaml-file` of what [`generate`] wrote.
fn delete_listed(scenario: &Scenario) -> String {
    delete_listed_in(scenario, "workspace")
}

/// [`delete_listed`] of the list in the workspace (or disk folder) `folder`.
fn delete_listed_in(scenario: &Scenario, folder: &str) -> String {
    let output = scenario.delete_listed(&scenario.delete_list(folder), &[]);
    assert!(output.status.success(), "{}", text(&output.stderr));
    text(&output.stdout)
}

/// The manifests `ferry plan --delete --format json` of `disc` deletes, as
/// `repository:tag` references below `mirror/` (the listed ones).
fn planned(scenario: &Scenario, disc: &str) -> BTreeSet<String> {
    let output = scenario.plan_delete("workspace", disc, &["--format", "json"]);
    assert!(output.status.success(), "{}", text(&output.stderr));
    let plan: serde_json::Value = serde_json::from_slice(&output.stdout).unwrap();
    let manifests = plan["delete"]["manifests"]
        .as_array()
        .unwrap_or_else(|| panic!("no manifests in {plan}"));
    manifests
        .iter()
        .flat_map(|manifest| manifest["listed"].as_array().unwrap().iter())
        .map(|listed| {
            listed
                .as_str()
                .unwrap()
                .strip_prefix("mirror/")
                .unwrap()
                .to_owned()
        })
        .collect()
}

/// Whether skopeo copies `reference` (below `mirror/`) from the destination.
fn pulls(scenario: &Scenario, reference: &str) -> bool {
    let folder = tempfile::tempdir().unwrap();
    Command::new("skopeo")
        .args(["copy", "--all", "--src-tls-verify=false"])
        .arg(format!(
            "docker://{}/mirror/{reference}",
            scenario.destination.host()
        ))
        .arg(format!("dir:{}", folder.path().display()))
        .output()
        .unwrap()
        .status
        .success()
}

fn of_type<'a>(listed: &'a BTreeSet<(String, String)>, wanted: &str) -> BTreeSet<&'a str> {
    listed
        .iter()
        .filter(|(image_type, _)| image_type == wanted)
        .map(|(_, reference)| reference.as_str())
        .collect()
}

#[test]
fn deleting_a_package_keeps_the_catalog_and_the_other_package_and_the_whole_catalog_goes_after() {
    let scenario = Scenario::start(Registry::start(Flavour::PlainHttp, Storage::Empty).unwrap());
    mirror_operators(
        &scenario,
        &format!("  - catalog: {TEST_CATALOG}\n{MIRRORED}"),
    );
    let catalog = "ferry-demo/test-catalog:latest";
    assert!(pulls(&scenario, catalog));

    // One package: its two bundles and their related images, nothing else.
    let foo_only = delete_configuration(
        &scenario,
        "delete-foo.yaml",
        &format!("  - catalog: {TEST_CATALOG}\n    packages:\n    - name: foo\n"),
    );
    let listed = generate(&scenario, &foo_only);
    let bundles = of_type(&listed, "operatorBundle");
    let related = of_type(&listed, "operatorRelatedImage");
    assert_eq!(bundles.len(), 2, "{listed:?}");
    assert_eq!(related.len(), 2, "{listed:?}");
    assert_eq!(listed.len(), 4, "no catalog, nothing of bar: {listed:?}");
    assert!(
        listed
            .iter()
            .all(|(_, reference)| reference.contains("foo") && reference.contains("v0.3.")),
        "{listed:?}"
    );
    // The list and the plan's text, as people read them.
    let list_text = std::fs::read_to_string(scenario.delete_list("workspace")).unwrap();
    let plan_text = scenario.plan_delete("workspace", &foo_only, &[]);
    assert!(plan_text.status.success(), "{}", text(&plan_text.stderr));
    let mut failures = Vec::new();
    for (name, actual) in [
        ("operators-package-delete-images.yaml", list_text),
        ("operators-package-plan.txt", text(&plan_text.stdout)),
    ] {
        let path = golden_path(&format!("delete/{name}"));
        if let Some(mismatch) = compare_or_bless(&path, &scenario.redact(&actual)) {
            failures.push(mismatch);
        }
    }
    assert!(failures.is_empty(), "{}", failures.join("\n"));
    // The plan deletes exactly the listed manifests.
    let listed_references: BTreeSet<String> = listed
        .iter()
        .map(|(_, reference)| reference.clone())
        .collect();
    assert_eq!(planned(&scenario, &foo_only), listed_references);
    for (_, reference) in &listed {
        assert!(pulls(&scenario, reference), "{reference} before the delete");
    }
    let done = delete_listed(&scenario);
    assert!(
        done.contains("done: 4 deleted, 0 already gone, 0 failed"),
        "{done}"
    );
    for (_, reference) in &listed {
        assert!(!scenario.holds(reference), "{reference} is deleted");
    }
    assert!(pulls(&scenario, catalog), "the catalog stays");

    // The whole catalog: the catalog image and bar's images go too.
    let whole = delete_configuration(
        &scenario,
        "delete-catalog.yaml",
        &format!("  - catalog: {TEST_CATALOG}\n"),
    );
    let everything = generate(&scenario, &whole);
    assert_eq!(
        of_type(&everything, "operatorCatalog"),
        BTreeSet::from([catalog])
    );
    let bar: Vec<&str> = everything
        .iter()
        .map(|(_, reference)| reference.as_str())
        .filter(|reference| reference.contains("bar"))
        .collect();
    assert_eq!(
        bar.len(),
        2,
        "bar's bundle and related image: {everything:?}"
    );
    for reference in &bar {
        assert!(
            pulls(&scenario, reference),
            "{reference} stayed with foo's delete"
        );
    }
    assert!(
        everything.is_superset(&listed),
        "foo's bundles are still recorded (already gone at the registry)"
    );
    let done = delete_listed(&scenario);
    assert!(
        done.contains("done: 3 deleted, 4 already gone, 0 failed"),
        "{done}"
    );
    assert!(!scenario.holds(catalog), "the catalog is deleted");
    for reference in &bar {
        assert!(!scenario.holds(reference), "{reference} is deleted");
    }
}

#[test]
fn a_disk_folder_that_disk_to_mirror_used_lists_its_catalog_offline() {
    let scenario = Scenario::start(Registry::start(Flavour::PlainHttp, Storage::Empty).unwrap());
    let config = scenario.write(
        "disk.yaml",
        &format!(
            "kind: ImageSetConfiguration\napiVersion: mirror.openshift.io/v2alpha1\nmirror:\n  operators:\n  - catalog: {TEST_CATALOG}\n{MIRRORED}"
        ),
    );
    let disk = scenario.workspace_named("disk");
    scenario.mirror_through_disk(&config, &disk);
    let catalog = "ferry-demo/test-catalog:latest";
    assert!(pulls(&scenario, catalog));

    let bar_only = delete_configuration(
        &scenario,
        "delete-bar.yaml",
        &format!("  - catalog: {TEST_CATALOG}\n    packages:\n    - name: bar\n"),
    );
    let listed = generate_in(&scenario, "disk", &bar_only);
    assert_eq!(
        listed.len(),
        2,
        "bar's bundle and related image: {listed:?}"
    );
    assert!(
        listed
            .iter()
            .all(|(_, reference)| reference.contains("bar")),
        "{listed:?}"
    );
    let done = delete_listed_in(&scenario, "disk");
    assert!(
        done.contains("done: 2 deleted, 0 already gone, 0 failed"),
        "{done}"
    );
    for (_, reference) in &listed {
        assert!(!scenario.holds(reference), "{reference} is deleted");
    }
    assert!(pulls(&scenario, catalog), "the catalog stays");
    let foo = generate_in(
        &scenario,
        "disk",
        &delete_configuration(
            &scenario,
            "delete-foo.yaml",
            &format!("  - catalog: {TEST_CATALOG}\n    packages:\n    - name: foo\n"),
        ),
    );
    assert_eq!(foo.len(), 4, "{foo:?}");
    for (_, reference) in &foo {
        assert!(pulls(&scenario, reference), "{reference} stays");
    }
}

#[test]
fn an_applied_delete_plan_of_a_package_makes_the_workspace_forget_its_bundles() {
    let scenario = Scenario::start(Registry::start(Flavour::PlainHttp, Storage::Empty).unwrap());
    mirror_operators(
        &scenario,
        &format!("  - catalog: {TEST_CATALOG}\n{MIRRORED}"),
    );
    let foo_only = delete_configuration(
        &scenario,
        "delete-foo.yaml",
        &format!("  - catalog: {TEST_CATALOG}\n    packages:\n    - name: foo\n"),
    );
    let plan_file = scenario.folder.path().join("delete-plan.json");
    let planned = scenario.plan_delete(
        "workspace",
        &foo_only,
        &[
            "--format",
            "markdown",
            "--out",
            &plan_file.display().to_string(),
        ],
    );
    let markdown = text(&planned.stdout);
    assert!(planned.status.success(), "{}", text(&planned.stderr));
    assert!(
        markdown.contains("4 manifests and 4 tags to delete, 0 kept, 0 already gone; garbage collection then frees"),
        "{markdown}"
    );
    let applied = scenario.ferry(&["apply", &plan_file.display().to_string()]);
    assert!(applied.status.success(), "{}", text(&applied.stderr));
    let bundles = std::fs::read_to_string(
        scenario
            .folder
            .path()
            .join("workspace/working-dir/operators/bundles.json"),
    )
    .unwrap();
    assert!(!bundles.contains("foo."), "{bundles}");
    assert!(bundles.contains("bar.v1.0.0"), "{bundles}");
    // The whole catalog now lists the catalog and bar's images only.
    let whole = delete_configuration(
        &scenario,
        "delete-catalog.yaml",
        &format!("  - catalog: {TEST_CATALOG}\n"),
    );
    let listed = generate(&scenario, &whole);
    assert_eq!(listed.len(), 3, "{listed:?}");
    assert!(
        listed
            .iter()
            .all(|(_, reference)| !reference.contains("foo")),
        "{listed:?}"
    );
}

#[test]
fn a_workspace_that_never_mirrored_the_catalog_names_what_to_run_first() {
    let scenario = Scenario::start(Registry::start(Flavour::PlainHttp, Storage::Empty).unwrap());
    scenario.mirror("  - name: quay.io/ferry-demo/hello:1.0\n");
    let disc = delete_configuration(
        &scenario,
        "delete-catalog.yaml",
        &format!("  - catalog: {TEST_CATALOG}\n    packages:\n    - name: foo\n"),
    );
    let output = scenario.generate_delete_list(&disc, &scenario.workspace(), &[]);
    let stderr = text(&output.stderr);
    assert_eq!(output.status.code(), Some(1), "{stderr}");
    assert!(
        stderr.contains(&format!(
            "catalog {TEST_CATALOG}: this workspace has no record of mirroring it to docker://{}/mirror: run `ferry mirror` with this catalog to that registry first",
            scenario.destination.host()
        )),
        "{stderr}"
    );
    assert!(
        !scenario
            .folder
            .path()
            .join("workspace/working-dir/delete/delete-images.yaml")
            .exists(),
        "nothing is written"
    );
}
