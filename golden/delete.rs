//! `ferry delete` end to end against real registries: additional images
//! mirrored (mirror-to-mirror), the delete list generated offline from the
//! workspace (both files compared with golden files), the list applied,
//! skopeo checking that the listed images and their signature tags are gone
//! and the others remain, a rerun with nothing to do; and a registry that
//! does not allow deleting.

use std::path::Path;
use std::process::Command;

use ferry_testworld::registry::{Flavour, Registry, Storage};

use crate::support::{Scenario, compare_or_bless, golden_path, text};

const SIGNED_DIGEST: &str = "d635812d4c415c51a22f416be754e768ef01f4c4e4918cd612199df79fea0415";
const PINNED: &str = "quay.io/ferry-demo/pinned@sha256:8c67bd3eaec9c37aab1fdb39478385e040676adaa7e2056bc0302eb4e1cdef78";

fn check(failures: &mut Vec<String>, name: &str, actual: &str) {
    if let Some(mismatch) = compare_or_bless(&golden_path(&format!("delete/{name}")), actual) {
        failures.push(mismatch);
    }
}

const DELETE_CONFIGURATION: &str = "kind: DeleteImageSetConfiguration
apiVersion: mirror.openshift.io/v2alpha1
delete:
  additionalImages:
  - name: quay.io/ferry-demo/signed:1.0
  - name: quay.io/ferry-demo/hello:1.0
  - name: docker://quay.io/ferry-demo/hello:1.0
  - name: quay.io/ferry-demo/pinned@sha256:8c67bd3eaec9c37aab1fdb39478385e040676adaa7e2056bc0302eb4e1cdef78
";

#[test]
fn generate_then_delete_removes_exactly_the_listed_images() {
    let scenario = Scenario::start(Registry::start(Flavour::PlainHttp, Storage::Empty).unwrap());
    std::fs::create_dir_all(golden_path("delete")).unwrap();
    scenario.mirror(&format!(
        "  - name: registry.redhat.io/ubi9/ubi:latest\n  - name: quay.io/ferry-demo/hello:1.0\n  - name: quay.io/ferry-demo/hello:latest\n  - name: quay.io/ferry-demo/signed:1.0\n  - name: {PINNED}\n"
    ));
    let signature = format!("ferry-demo/signed:sha256-{SIGNED_DIGEST}.sig");
    assert!(
        scenario.holds(&signature),
        "the mirror copied the signature"
    );

    // Step 1 reads the workspace only (no --registries-conf: the public
    // names would not resolve to the world).
    let disc = scenario.write("delete-isc.yaml", DELETE_CONFIGURATION);
    let generated = scenario.generate_delete_list(
        &disc,
        &scenario.workspace(),
        &[
            "--delete-signatures",
            "--delete-id",
            "week48",
            "--src-tls-verify=false",
        ],
    );
    let stderr = text(&generated.stderr);
    assert!(generated.status.success(), "{stderr}");
    assert!(
        stderr.contains("warning: --src-tls-verify is not used by --generate"),
        "{stderr}"
    );
    assert!(
        !stderr.contains("no record"),
        "every listed image was mirrored there: {stderr}"
    );
    // hello:1.0 and hello:latest are one manifest: deleting it by digest
    // would take hello:latest too, which stays, so hello:1.0 is left out.
    assert!(
        stderr.contains("/mirror/ferry-demo/hello:1.0: left out, this image set's mirror/ferry-demo/hello:latest (the same manifest) needs it (--force lists it anyway)"),
        "{stderr}"
    );
    // --force lists it, saying what goes with it (a dry run writes nothing).
    let forced =
        scenario.generate_delete_list(&disc, &scenario.workspace(), &["--force", "--dry-run"]);
    assert!(forced.status.success(), "{}", text(&forced.stderr));
    assert!(
        text(&forced.stdout).contains("/mirror/ferry-demo/hello:1.0\n"),
        "{}",
        text(&forced.stdout)
    );
    assert!(
        text(&forced.stderr).contains("/mirror/ferry-demo/hello:1.0: listed with --force although this image set's mirror/ferry-demo/hello:latest (the same manifest) stays"),
        "{}",
        text(&forced.stderr)
    );
    let folder = scenario.folder.path().join("workspace/working-dir/delete");
    let list_path = folder.join("delete-images-week48.yaml");
    let list = std::fs::read_to_string(&list_path).unwrap();
    let applied =
        std::fs::read_to_string(folder.join("delete-imageset-config-week48.yaml")).unwrap();
    let mut failures = Vec::new();
    check(&mut failures, "delete-images.yaml", &scenario.redact(&list));
    check(&mut failures, "delete-imageset-config.yaml", &applied);
    assert!(failures.is_empty(), "{}", failures.join("\n"));

    // Step 2: a dry run changes nothing, then the deletion.
    let list_argument = list_path.display().to_string();
    let delete = |extra: &[&str]| scenario.delete_listed(&list_argument, extra);
    let dry = delete(&["--dry-run"]);
    assert!(dry.status.success(), "{}", text(&dry.stderr));
    assert!(
        text(&dry.stdout)
            .contains("dry run: 3 would be deleted, 0 already gone, 0 failed (of 3 listed)"),
        "{}",
        text(&dry.stdout)
    );
    assert!(
        scenario.holds("ferry-demo/signed:1.0"),
        "a dry run deletes nothing"
    );

    let deleted = delete(&["--force-cache-delete"]);
    let stdout = text(&deleted.stdout);
    assert!(deleted.status.success(), "{}", text(&deleted.stderr));
    assert!(
        stdout.contains("done: 3 deleted, 0 already gone, 0 failed (of 3 listed)"),
        "{stdout}"
    );
    assert!(
        stdout.contains("mirror-to-mirror records no image in the cache"),
        "{stdout}"
    );
    for gone in [
        "ferry-demo/signed:1.0",
        signature.as_str(),
        "ferry-demo/pinned:sha256-8c67bd3eaec9c37aab1fdb39478385e040676adaa7e2056bc0302eb4e1cdef78",
    ] {
        assert!(!scenario.holds(gone), "{gone} is still served");
    }
    assert!(
        scenario.holds("ubi9/ubi:latest"),
        "an image the list does not name remains"
    );
    // The manifest hello:latest needs stayed, with both its tags.
    assert!(scenario.holds("ferry-demo/hello:1.0"));
    assert!(scenario.holds("ferry-demo/hello:latest"));

    // A rerun has nothing to do.
    let rerun = delete(&[]);
    assert!(rerun.status.success(), "{}", text(&rerun.stderr));
    assert!(
        text(&rerun.stdout).contains("done: 0 deleted, 3 already gone, 0 failed (of 3 listed)"),
        "{}",
        text(&rerun.stdout)
    );

    // A list for another destination is refused before anything is deleted.
    let other = scenario.ferry(&[
        "delete",
        "--delete-yaml-file",
        &list_argument,
        "--dest-tls-verify=false",
        &format!("docker://{}/other", scenario.destination.host()),
    ]);
    assert_eq!(other.status.code(), Some(1));
    assert!(
        text(&other.stderr).contains("does not match the destination"),
        "{}",
        text(&other.stderr)
    );
}

#[test]
fn a_registry_that_does_not_allow_deleting_is_named_with_its_setting() {
    let scenario = Scenario::start(Registry::start_without_deletes(Flavour::PlainHttp).unwrap());
    scenario.mirror("  - name: quay.io/ferry-demo/hello:1.0\n");
    let disc = scenario.write("delete-isc.yaml", DELETE_CONFIGURATION);
    let generated = scenario.generate_delete_list(&disc, &scenario.workspace(), &[]);
    let stderr = text(&generated.stderr);
    assert!(generated.status.success(), "{stderr}");
    assert!(
        stderr.contains(
            "quay.io/ferry-demo/signed:1.0: this workspace has no record of mirroring it"
        ),
        "{stderr}"
    );
    let list = scenario.delete_list("workspace");
    assert!(Path::new(&list).is_file());
    let deleted = scenario.delete_listed(&list, &[]);
    let stderr = text(&deleted.stderr);
    assert_eq!(deleted.status.code(), Some(1), "{stderr}");
    assert!(
        stderr.contains("HTTP 405")
            && stderr.contains("storage.delete.enabled")
            && stderr.contains("REGISTRY_STORAGE_DELETE_ENABLED"),
        "{stderr}"
    );
    assert!(scenario.holds("ferry-demo/hello:1.0"));
}

#[test]
fn v1_images_and_a_missing_workspace_are_refused() {
    let folder = tempfile::tempdir().unwrap();
    let run = |arguments: &[&str]| {
        Command::new(env!("CARGO_BIN_EXE_ferry"))
            .args(arguments)
            .output()
            .unwrap()
    };
    let v1 = run(&[
        "delete",
        "--delete-v1-images",
        "--generate",
        "docker://127.0.0.1:1/mirror",
    ]);
    assert_eq!(v1.status.code(), Some(1));
    assert!(text(&v1.stderr).contains("ferry never wrote oc-mirror v1's tags"));
    let disc = folder.path().join("delete-isc.yaml");
    std::fs::write(&disc, DELETE_CONFIGURATION).unwrap();
    let workspace = format!("file://{}", folder.path().join("nothing-here").display());
    let missing = run(&[
        "delete",
        "--generate",
        "-c",
        &disc.display().to_string(),
        "--workspace",
        &workspace,
        "docker://127.0.0.1:1/mirror",
    ]);
    assert_eq!(missing.status.code(), Some(1));
    assert!(
        text(&missing.stderr).contains("holds no ferry workspace"),
        "{}",
        text(&missing.stderr)
    );
    let no_workspace = run(&[
        "delete",
        "--generate",
        "-c",
        &disc.display().to_string(),
        "docker://127.0.0.1:1/mirror",
    ]);
    assert!(text(&no_workspace.stderr).contains("--workspace flag, it is mandatory"));
    let no_list = run(&["delete", "docker://127.0.0.1:1/mirror"]);
    assert_eq!(no_list.status.code(), Some(1));
    assert!(text(&no_list.stderr).contains("--delete-yaml-file"));
}

#[test]
fn a_disk_folders_cache_forgets_deleted_images_and_keeps_the_rest() {
    let scenario = Scenario::start(Registry::start(Flavour::PlainHttp, Storage::Empty).unwrap());
    let config = scenario.write(
        "isc.yaml",
        "kind: ImageSetConfiguration\napiVersion: mirror.openshift.io/v2alpha1\nmirror:\n  additionalImages:\n  - name: registry.redhat.io/ubi9/ubi:latest\n  - name: quay.io/ferry-demo/signed:1.0\n",
    );
    let disk = format!("file://{}", scenario.folder.path().join("disk").display());
    scenario.mirror_through_disk(&config, &disk);

    // The disk folder is the workspace of both runs.
    let disc = scenario.write(
        "delete-isc.yaml",
        "kind: DeleteImageSetConfiguration\napiVersion: mirror.openshift.io/v2alpha1\ndelete:\n  additionalImages:\n  - name: quay.io/ferry-demo/signed:1.0\n",
    );
    let generated = scenario.generate_delete_list(&disc, &disk, &["--delete-signatures"]);
    assert!(generated.status.success(), "{}", text(&generated.stderr));
    let list = scenario.delete_list("disk");
    let deleted = scenario.delete_listed(&list, &["--force-cache-delete"]);
    let stdout = text(&deleted.stdout);
    assert!(deleted.status.success(), "{}", text(&deleted.stderr));
    assert!(stdout.contains("done: 2 deleted"), "{stdout}");
    assert!(
        stdout.contains("--force-cache-delete: removed 2 images from the cache"),
        "{stdout}"
    );
    assert!(!scenario.holds("ferry-demo/signed:1.0"));
    assert!(scenario.holds("ubi9/ubi:latest"));

    // The cache is whole, keeps ubi (its top manifest is still there), and
    // a prune finds nothing more to remove: the delete freed it all.
    let cache = scenario.folder.path().join("cache");
    let cache_argument = cache.display().to_string();
    let verified = scenario.ferry(&["cache", "verify", "--cache-dir", &cache_argument]);
    assert!(verified.status.success(), "{}", text(&verified.stdout));
    assert!(
        cache
            .join("blobs/sha256/47d12cb4b5d902bb41960bc7482d30250aec2f103ede037a0a92f4a060e61b54")
            .is_file(),
        "ubi's manifest stays in the cache"
    );
    assert!(
        !cache
            .join(format!("blobs/sha256/{SIGNED_DIGEST}"))
            .is_file(),
        "the deleted image's manifest left the cache"
    );
    let pruned = scenario.ferry(&[
        "cache",
        "prune",
        "--dry-run",
        "--cache-dir",
        &cache_argument,
    ]);
    let pruned_text = text(&pruned.stdout);
    assert!(pruned.status.success(), "{pruned_text}");
    assert!(pruned_text.contains("would remove 0 ("), "{pruned_text}");
}
