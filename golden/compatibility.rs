//! oc-mirror command lines paste (issue 13, item 11): oc-mirror v2's flags
//! are accepted with their meaning or a one-line warning saying what ferry
//! does instead (`golden/compatibility/pasted-warnings.txt`), `--v1` is
//! refused naming v2, `--cache-dir` and `$OC_MIRROR_CACHE` name a base
//! folder whose subfolder holds the cache, and `ferry version` answers.

use std::path::{Path, PathBuf};
use std::process::{Command, Output};

use ferry_testworld::registry::{Flavour, Registry, Storage};
use ferry_testworld::world::World;

use crate::support::{compare_or_bless, golden_path};

fn configuration(folder: &Path) -> PathBuf {
    let path = folder.join("isc.yaml");
    std::fs::write(
        &path,
        "kind: ImageSetConfiguration\napiVersion: mirror.openshift.io/v2alpha1\nmirror:\n  additionalImages:\n  - name: quay.io/ferry-demo/hello:1.0\n",
    )
    .unwrap();
    path
}

/// ferry with no credentials of the user's and no cache variables.
fn ferry(folder: &Path) -> Command {
    let mut command = Command::new(env!("CARGO_BIN_EXE_ferry"));
    command
        .env("REGISTRY_AUTH_FILE", folder.join("no-auth.json"))
        .env_remove("OC_MIRROR_CACHE")
        .env_remove("FERRY_CACHE_DIR");
    command
}

fn text(output: &Output) -> String {
    format!(
        "{}{}",
        String::from_utf8_lossy(&output.stdout),
        String::from_utf8_lossy(&output.stderr)
    )
}

#[test]
fn an_oc_mirror_mirror_to_mirror_command_line_runs_with_its_flags_explained() {
    let folder = tempfile::tempdir().unwrap();
    let world = World::start().unwrap();
    let destination = Registry::start(Flavour::PlainHttp, Storage::Empty).unwrap();
    let config = configuration(folder.path());
    let auth = folder.path().join("auth.json");
    std::fs::write(&auth, "{\"auths\":{}}").unwrap();
    // As an oc-mirror user writes it (its root command is the mirror
    // command), with ferry's --registries-conf to reach the test world.
    let output = ferry(folder.path())
        .arg("-c")
        .arg(&config)
        .arg("--workspace")
        .arg(format!("file://{}", folder.path().join("ws").display()))
        .arg(format!("docker://{}/mirror", destination.host()))
        .args(["--v2", "-p", "55001", "--image-timeout", "10m"])
        .args(["--registries.d", "/etc/containers/registries.d"])
        .arg("--src-authfile")
        .arg(&auth)
        .arg("--dest-authfile")
        .arg(&auth)
        .args(["--dest-creds=someone:not-printed", "--secure-policy"])
        .args(["--tls-verify=false", "--parallel-images", "4"])
        .arg("--registries-conf")
        .arg(world.registries_conf())
        .output()
        .unwrap();
    let all = text(&output);
    assert_eq!(output.status.code(), Some(0), "{all}");
    assert!(!all.contains("not-printed"), "a secret was printed: {all}");
    // --tls-verify=false let ferry push to the plain-HTTP destination.
    assert!(all.contains("✓ 1 / 1 additional image mirrored"), "{all}");
    let warnings: String = String::from_utf8_lossy(&output.stderr)
        .lines()
        .filter(|line| line.starts_with("warning:"))
        .map(|line| format!("{line}\n"))
        .collect();
    if let Some(failure) =
        compare_or_bless(&golden_path("compatibility/pasted-warnings.txt"), &warnings)
    {
        panic!("{failure}");
    }
}

#[test]
fn v1_is_refused_naming_v2_and_version_answers() {
    let folder = tempfile::tempdir().unwrap();
    let config = configuration(folder.path());
    let output = ferry(folder.path())
        .arg("mirror")
        .arg("-c")
        .arg(&config)
        .arg(format!("file://{}", folder.path().join("disk").display()))
        .arg("--v1")
        .output()
        .unwrap();
    assert_eq!(output.status.code(), Some(1), "{}", text(&output));
    assert!(text(&output).contains("ferry implements oc-mirror v2 only"));
    assert!(!folder.path().join("disk").exists(), "nothing was done");

    // oc-mirror's root command is its mirror: the same line without `mirror`.
    let root = ferry(folder.path())
        .arg("--v1")
        .arg("-c")
        .arg(&config)
        .arg(format!("file://{}", folder.path().join("disk").display()))
        .output()
        .unwrap();
    assert_eq!(root.status.code(), Some(1), "{}", text(&root));
    assert!(text(&root).contains("ferry implements oc-mirror v2 only"));

    let version = ferry(folder.path())
        .args(["version", "--v2"])
        .output()
        .unwrap();
    assert!(version.status.success(), "{}", text(&version));
    assert_eq!(
        String::from_utf8_lossy(&version.stdout),
        format!("ferry {}\n", env!("CARGO_PKG_VERSION"))
    );
}

#[test]
fn cache_dir_and_oc_mirror_cache_keep_the_cache_in_a_subfolder() {
    let folder = tempfile::tempdir().unwrap();
    let world = World::start().unwrap();
    let config = configuration(folder.path());
    let to_disk = |variable: Option<&Path>, flag: Option<&Path>, disk: &str| {
        let mut command = ferry(folder.path());
        command
            .arg("mirror")
            .arg("-c")
            .arg(&config)
            .arg("--registries-conf")
            .arg(world.registries_conf())
            .arg(format!("file://{}", folder.path().join(disk).display()));
        if let Some(base) = variable {
            command.env("OC_MIRROR_CACHE", base);
        }
        if let Some(base) = flag {
            command.arg("--cache-dir").arg(base);
        }
        command.output().unwrap()
    };
    let blobs = |base: &Path| {
        std::fs::read_dir(base.join(".ferry/cache/blobs/sha256"))
            .map(|entries| entries.count())
            .unwrap_or(0)
    };
    let home = folder.path().join("home");
    let output = to_disk(Some(&home), None, "disk-1");
    assert!(output.status.success(), "{}", text(&output));
    assert!(
        blobs(&home) > 0,
        "the cache is in $OC_MIRROR_CACHE/.ferry/cache"
    );
    let entries: Vec<_> = std::fs::read_dir(&home)
        .unwrap()
        .map(|entry| entry.unwrap().file_name())
        .collect();
    assert_eq!(entries, [".ferry"], "nothing else lands in the base folder");

    let base = folder.path().join("base");
    let output = to_disk(None, Some(&base), "disk-2");
    assert!(output.status.success(), "{}", text(&output));
    assert!(blobs(&base) > 0, "the cache is in --cache-dir/.ferry/cache");

    let both = to_disk(Some(&home), Some(&base), "disk-3");
    assert_eq!(both.status.code(), Some(1), "{}", text(&both));
    assert!(
        text(&both).contains("either OC_MIRROR_CACHE or --cache-dir can be used but not both"),
        "{}",
        text(&both)
    );
    assert!(!folder.path().join("disk-3").exists(), "nothing was done");

    // `ferry cache verify` finds the same cache from the same flag.
    let verify = ferry(folder.path())
        .args(["cache", "verify", "--cache-dir"])
        .arg(&base)
        .output()
        .unwrap();
    assert!(verify.status.success(), "{}", text(&verify));
    assert!(
        text(&verify).contains(&format!(
            "{}: {} blobs re-hashed",
            base.join(".ferry/cache").display(),
            blobs(&base)
        )),
        "{}",
        text(&verify)
    );
}
