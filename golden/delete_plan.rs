//! Delete as a plan against a real registry (`ferry plan --delete`, then
//! `ferry apply PLANFILE`): the plan's freed-bytes figure checked against
//! what `docker-registry garbage-collect` really frees on disk, the deleted
//! manifests answering 404, the remaining images pulling byte for byte as
//! before; the workspace state forgetting what was deleted (the next
//! mirror plans it again); and two image sets sharing a cache, where the
//! one deleting leaves what the other still needs.

use std::collections::BTreeMap;
use std::path::Path;
use std::process::Command;

use ferry_testworld::registry::{Flavour, Registry, Storage};

use crate::support::{Scenario, text};

const IMAGES: &str = "  - name: registry.redhat.io/ubi9/ubi:latest\n  - name: quay.io/ferry-demo/hello:1.0\n  - name: quay.io/ferry-demo/signed:1.0\n";

fn delete_configuration(images: &[&str]) -> String {
    let mut text = "kind: DeleteImageSetConfiguration\napiVersion: mirror.openshift.io/v2alpha1\ndelete:\n  additionalImages:\n".to_owned();
    for image in images {
        text.push_str(&format!("  - name: {image}\n"));
    }
    text
}

/// Bytes of every blob file the registry stores (its data files).
fn blob_bytes(storage: &Path) -> u64 {
    let mut total = 0;
    let mut pending = vec![storage.join("docker/registry/v2/blobs")];
    while let Some(folder) = pending.pop() {
        let Ok(entries) = std::fs::read_dir(&folder) else {
            continue;
        };
        for entry in entries {
            let entry = entry.unwrap();
            let kind = entry.file_type().unwrap();
            if kind.is_dir() {
                pending.push(entry.path());
            } else if kind.is_file() {
                total += entry.metadata().unwrap().len();
            }
        }
    }
    total
}

/// `docker-registry garbage-collect` over the registry's storage (the
/// registry is quiet: nothing writes while it runs).
fn garbage_collect(scenario: &Scenario) {
    let config = scenario.write(
        "gc.yml",
        &format!(
            "version: 0.1\nstorage:\n  filesystem:\n    rootdirectory: {}\n  delete:\n    enabled: true\n",
            scenario.destination.storage_root().display()
        ),
    );
    let output = Command::new(ferry_testworld::registry::registry_program())
        .args(["garbage-collect", &config])
        .output()
        .unwrap();
    assert!(output.status.success(), "{}", text(&output.stderr));
}

/// Every file skopeo copies of `reference` (`--all`), by name.
fn pulled(reference: &str) -> BTreeMap<String, Vec<u8>> {
    let folder = tempfile::tempdir().unwrap();
    let output = Command::new("skopeo")
        .args(["copy", "--all", "--src-tls-verify=false", reference])
        .arg(format!("dir:{}", folder.path().display()))
        .output()
        .unwrap();
    assert!(
        output.status.success(),
        "{reference}: {}",
        text(&output.stderr)
    );
    std::fs::read_dir(folder.path())
        .unwrap()
        .map(|entry| {
            let entry = entry.unwrap();
            (
                entry.file_name().to_string_lossy().into_owned(),
                std::fs::read(entry.path()).unwrap(),
            )
        })
        .collect()
}

#[test]
fn a_delete_plan_frees_what_garbage_collection_frees_and_the_next_mirror_copies_it_again() {
    let scenario = Scenario::start(Registry::start(Flavour::PlainHttp, Storage::Empty).unwrap());
    scenario.mirror(IMAGES);
    let ubi = format!(
        "docker://{}/mirror/ubi9/ubi:latest",
        scenario.destination.host()
    );
    let before = pulled(&ubi);

    let disc = scenario.write(
        "delete-isc.yaml",
        &delete_configuration(&[
            "quay.io/ferry-demo/hello:1.0",
            "quay.io/ferry-demo/signed:1.0",
        ]),
    );
    let plan_file = scenario.folder.path().join("delete-plan.json");
    let plan_argument = plan_file.display().to_string();
    let planned = scenario.plan_delete(
        "workspace",
        &disc,
        &[
            "--delete-signatures",
            "--detailed-exitcode",
            "--out",
            &plan_argument,
        ],
    );
    let stdout = text(&planned.stdout);
    assert_eq!(
        planned.status.code(),
        Some(2),
        "{stdout}{}",
        text(&planned.stderr)
    );
    // The saved plan is valid against the committed schema.
    crate::plan_schema::assert_valid_delete_plan(
        &serde_json::from_str(&std::fs::read_to_string(&plan_file).unwrap()).unwrap(),
    );
    assert!(
        stdout.contains("Plan: 3 manifests and 3 tags to delete"),
        "{stdout}"
    );
    let markdown = scenario.plan_delete(
        "workspace",
        &disc,
        &["--delete-signatures", "--format", "markdown"],
    );
    assert!(text(&markdown.stdout).contains("| Manifest | Bytes | Why |"));
    let document: serde_json::Value =
        serde_json::from_str(&std::fs::read_to_string(&plan_file).unwrap()).unwrap();
    let freed = document["delete"]["freed_bytes"].as_u64().unwrap();
    assert!(freed > 0, "{document}");
    let deleted: Vec<(String, String)> = document["delete"]["manifests"]
        .as_array()
        .unwrap()
        .iter()
        .map(|manifest| {
            (
                manifest["repository"].as_str().unwrap().to_owned(),
                manifest["digest"].as_str().unwrap().to_owned(),
            )
        })
        .collect();
    assert_eq!(deleted.len(), 3, "{document}");

    let storage = scenario.destination.storage_root().to_path_buf();
    let bytes_before = blob_bytes(&storage);
    let applied = scenario.ferry(&["apply", &plan_argument]);
    let applied_out = text(&applied.stdout);
    assert!(
        applied.status.success(),
        "{applied_out}{}",
        text(&applied.stderr)
    );
    assert!(
        applied_out.contains("done: 3 manifests deleted, 0 failed"),
        "{applied_out}"
    );
    for (repository, digest) in &deleted {
        let answer = scenario
            .destination
            .get(&format!("/v2/{repository}/manifests/{digest}"))
            .unwrap();
        assert_eq!(answer.status, 404, "{repository}@{digest} is still served");
    }
    garbage_collect(&scenario);
    let bytes_after = blob_bytes(&storage);
    let really_freed = bytes_before - bytes_after;
    eprintln!("plan: {freed} bytes freed; garbage-collect freed {really_freed} bytes");
    assert!(
        really_freed.abs_diff(freed) <= 4096,
        "the plan said {freed} bytes, garbage collection freed {really_freed}"
    );
    assert_eq!(pulled(&ubi), before, "ubi pulls byte for byte as before");

    // Applying the same plan again: it is stale (the images are gone).
    let again = scenario.ferry(&["apply", &plan_argument]);
    assert_eq!(again.status.code(), Some(1));
    assert!(
        text(&again.stderr).contains("the plan is stale"),
        "{}",
        text(&again.stderr)
    );

    // The workspace forgot them: even a plan trusting the state copies
    // hello and signed again, and the mirror brings them back.
    let config = scenario
        .folder
        .path()
        .join("workspace.yaml")
        .display()
        .to_string();
    let workspace = scenario.workspace();
    let destination = scenario.destination();
    let replanned = scenario.ferry(&[
        "plan",
        "-c",
        &config,
        "--workspace",
        &workspace,
        "--trust-state",
        "--dest-tls-verify=false",
        &destination,
    ]);
    let replanned_out = text(&replanned.stdout);
    assert!(replanned.status.success(), "{}", text(&replanned.stderr));
    assert!(
        replanned_out.contains("quay.io/ferry-demo/hello:1.0"),
        "{replanned_out}"
    );
    assert!(
        !replanned_out.contains("nothing to do") && !replanned_out.contains("Nothing to do"),
        "{replanned_out}"
    );
    scenario.mirror(IMAGES);
    assert!(scenario.holds("ferry-demo/hello:1.0"));
    assert!(scenario.holds("ferry-demo/signed:1.0"));
    pulled(&format!(
        "docker://{}/mirror/ferry-demo/hello:1.0",
        scenario.destination.host()
    ));
}

#[test]
fn what_another_image_set_needs_is_kept_unless_forced() {
    let scenario = Scenario::start(Registry::start(Flavour::PlainHttp, Storage::Empty).unwrap());
    // Two image sets, two workspaces, one cache, sharing hello.
    scenario.mirror_from(
        "first",
        "  - name: quay.io/ferry-demo/hello:1.0\n  - name: registry.redhat.io/ubi9/ubi:latest\n",
    );
    scenario.mirror_from(
        "second",
        "  - name: quay.io/ferry-demo/hello:1.0\n  - name: quay.io/ferry-demo/signed:1.0\n",
    );
    let hello = format!(
        "docker://{}/mirror/ferry-demo/hello:1.0",
        scenario.destination.host()
    );
    let before = pulled(&hello);
    let disc = scenario.write(
        "delete-first.yaml",
        &delete_configuration(&[
            "quay.io/ferry-demo/hello:1.0",
            "registry.redhat.io/ubi9/ubi:latest",
        ]),
    );
    let second = scenario.folder.path().join("second").display().to_string();

    // --generate leaves hello out, naming the other image set.
    let workspace = scenario.workspace_named("first");
    let generated = scenario.generate_delete_list(&disc, &workspace, &[]);
    let stderr = text(&generated.stderr);
    assert!(generated.status.success(), "{stderr}");
    assert!(
        stderr.contains("/mirror/ferry-demo/hello:1.0: left out, the image set")
            && stderr.contains(&second)
            && stderr.contains("mirror/ferry-demo/hello:1.0"),
        "{stderr}"
    );
    let list = std::fs::read_to_string(scenario.delete_list("first")).unwrap();
    assert!(!list.contains("hello"), "{list}");
    assert!(list.contains("ubi9/ubi:latest"), "{list}");
    let forced = scenario.generate_delete_list(&disc, &workspace, &["--force", "--dry-run"]);
    assert!(
        text(&forced.stdout).contains("hello"),
        "{}",
        text(&forced.stdout)
    );

    // The plan keeps hello too (ubi is an index and its two images), and
    // --force would delete it.
    let planned = scenario.plan_delete("first", &disc, &[]);
    let stdout = text(&planned.stdout);
    assert!(planned.status.success(), "{}", text(&planned.stderr));
    assert!(
        stdout.contains("keep docker://") && stdout.contains(&second),
        "{stdout}"
    );
    assert!(
        stdout.contains("Plan: 3 manifests and 1 tags to delete, 1 kept"),
        "{stdout}"
    );
    let plan_forced = scenario.plan_delete("first", &disc, &["--force"]);
    assert!(
        text(&plan_forced.stdout).contains("Plan: 4 manifests"),
        "{}",
        text(&plan_forced.stdout)
    );

    let plan_file = scenario
        .folder
        .path()
        .join("first-plan.json")
        .display()
        .to_string();
    let saved = scenario.plan_delete("first", &disc, &["--out", &plan_file]);
    assert!(saved.status.success());
    let document: serde_json::Value =
        serde_json::from_str(&std::fs::read_to_string(&plan_file).unwrap()).unwrap();
    let freed = document["delete"]["freed_bytes"].as_u64().unwrap();
    let storage = scenario.destination.storage_root().to_path_buf();
    let bytes_before = blob_bytes(&storage);
    let applied = scenario.ferry(&["apply", &plan_file]);
    assert!(
        applied.status.success(),
        "{}{}",
        text(&applied.stdout),
        text(&applied.stderr)
    );
    garbage_collect(&scenario);
    let really_freed = bytes_before - blob_bytes(&storage);
    eprintln!("plan: {freed} bytes freed; garbage-collect freed {really_freed} bytes");
    assert!(
        freed > 0 && really_freed.abs_diff(freed) <= 4096,
        "the plan said {freed} bytes, garbage collection freed {really_freed}"
    );
    assert!(!scenario.holds("ubi9/ubi:latest"), "ubi was deleted");
    assert_eq!(
        pulled(&hello),
        before,
        "the shared image stays and pulls byte for byte"
    );
    assert!(scenario.holds("ferry-demo/signed:1.0"));
}
