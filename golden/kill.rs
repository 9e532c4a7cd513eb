//! Killing `ferry mirror` with SIGKILL at many points of a run (mirror to
//! mirror, mirror to disk, disk to mirror), then rerunning: each rerun
//! does only what is left, and the destination ends with the same tag →
//! digest set as a clean run.

use std::process::{Command, Stdio};
use std::time::{Duration, Instant};

use ferry_testworld::registry::{Flavour, Registry, Storage};
use ferry_testworld::world::World;

/// Images enough for a run of some length: every release payload and
/// catalog of the world, mirrored as additional images.
pub(crate) fn configuration() -> String {
    let mut images = String::new();
    for version in [
        "4.15.10", "4.15.11", "4.15.12", "4.16.0", "4.16.1", "4.16.2",
    ] {
        for architecture in ["x86_64", "aarch64", "multi"] {
            images.push_str(&format!(
                "  - name: quay.io/openshift-release-dev/ocp-release:{version}-{architecture}\n"
            ));
        }
    }
    for image in [
        "registry.redhat.io/redhat/redhat-operator-index:v4.16",
        "registry.redhat.io/redhat/redhat-operator-index:v4.15",
        "quay.io/ferry-demo/test-catalog:latest",
        "registry.redhat.io/ubi9/ubi:latest",
        "registry.redhat.io/ubi9/ubi-minimal:9.4",
        "quay.io/ferry-demo/hello:1.0",
        "quay.io/ferry-demo/hello-oci:1.0",
        "quay.io/ferry-demo/signed:1.0",
    ] {
        images.push_str(&format!("  - name: {image}\n"));
    }
    format!(
        "kind: ImageSetConfiguration\napiVersion: mirror.openshift.io/v2alpha1\nmirror:\n  additionalImages:\n{images}"
    )
}

/// What every kill test starts from: the world, an empty destination
/// registry, and a folder holding the configuration.
struct Site {
    world: World,
    destination: Registry,
    folder: tempfile::TempDir,
}

impl Site {
    fn new() -> Self {
        let site = Site {
            world: World::start().unwrap(),
            destination: Registry::start(Flavour::PlainHttp, Storage::Empty).unwrap(),
            folder: tempfile::tempdir().unwrap(),
        };
        std::fs::write(site.folder.path().join("isc.yaml"), configuration()).unwrap();
        site
    }

    fn run(&self) -> Run<'_> {
        Run {
            world: &self.world,
            destination: &self.destination,
            folder: self.folder.path(),
        }
    }
}

struct Run<'a> {
    world: &'a World,
    destination: &'a Registry,
    folder: &'a std::path::Path,
}

impl Run<'_> {
    fn command(&self, subcommand: &str, workspace: &str, extra: &[&str]) -> Command {
        let mut command = Command::new(env!("CARGO_BIN_EXE_ferry"));
        command
            .arg(subcommand)
            .args(["-c", &self.folder.join("isc.yaml").display().to_string()])
            .args([
                "--workspace",
                &format!("file://{}", self.folder.join(workspace).display()),
            ])
            .args([
                "--registries-conf",
                &self.world.registries_conf().display().to_string(),
            ])
            .args([
                "--dest-tls-verify=false",
                "--parallel-images",
                "1",
                "--parallel-layers",
                "2",
            ])
            .args(extra)
            .arg(format!("docker://{}/{workspace}", self.destination.host()))
            .env("REGISTRY_AUTH_FILE", self.folder.join("no-auth.json"))
            .stdout(Stdio::null())
            .stderr(Stdio::null());
        command
    }

    /// Every tag at the destination under `prefix`, with its digest.
    fn tags(&self, prefix: &str) -> Vec<String> {
        let mut lines = Vec::new();
        let catalog = self.destination.get("/v2/_catalog?n=1000").unwrap();
        let repositories: serde_json::Value = serde_json::from_slice(&catalog.body).unwrap();
        for repository in repositories["repositories"].as_array().unwrap() {
            let repository = repository.as_str().unwrap();
            if !repository.starts_with(&format!("{prefix}/")) {
                continue;
            }
            let list = self
                .destination
                .get(&format!("/v2/{repository}/tags/list"))
                .unwrap();
            let tags: serde_json::Value = serde_json::from_slice(&list.body).unwrap();
            for tag in tags["tags"].as_array().into_iter().flatten() {
                let tag = tag.as_str().unwrap();
                let output = Command::new("skopeo")
                    .args(["inspect", "--raw", "--tls-verify=false"])
                    .arg(format!(
                        "docker://{}/{repository}:{tag}",
                        self.destination.host()
                    ))
                    .output()
                    .unwrap();
                assert!(output.status.success());
                let digest = ferry_registry::client::sha256_of(&output.stdout);
                lines.push(format!("{}:{tag} {digest}", &repository[prefix.len()..]));
            }
        }
        lines.sort();
        lines
    }
}

/// Starts `command` again and again and kills each run with SIGKILL a
/// while after it starts, until one finishes first; returns how many were
/// killed. The first wait is a 25th of `clean_run` and each one grows a
/// little, so the kill points spread over the whole run and progress is
/// certain even when starting up takes most of a wait.
fn kill_repeatedly(clean_run: Duration, mut command: impl FnMut() -> Command) -> usize {
    let mut kills = 0;
    let mut wait = clean_run / 25;
    for _ in 0..200 {
        let mut child = command().spawn().unwrap();
        std::thread::sleep(wait);
        if child.try_wait().unwrap().is_some() {
            break;
        }
        child.kill().unwrap();
        child.wait().unwrap();
        kills += 1;
        wait = wait * 21 / 20;
    }
    kills
}

#[test]
fn kill_at_twenty_points_and_rerun_to_the_same_result() {
    let site = Site::new();
    let run = site.run();

    // A clean run, timed.
    let started = Instant::now();
    let clean = run.command("mirror", "clean", &[]).status().unwrap();
    let duration = started.elapsed();
    assert!(clean.success());
    let expected = run.tags("clean");
    assert!(expected.len() > 20, "{expected:?}");

    // The same mirror, killed again and again, each run a little further.
    let kills = kill_repeatedly(duration, || run.command("mirror", "killed", &[]));
    eprintln!("{kills} runs killed; a clean run took {duration:?}");
    assert!(
        kills >= 20,
        "only {kills} runs were killed (clean run took {duration:?})"
    );
    let finished = run.command("mirror", "killed", &[]).status().unwrap();
    assert!(finished.success());
    let noop = run
        .command("plan", "killed", &["--detailed-exitcode"])
        .status()
        .unwrap();
    assert_eq!(
        noop.code(),
        Some(0),
        "after the final run nothing is left to do"
    );
    assert_eq!(run.tags("killed"), expected);
}

/// `ferry mirror` to disk (or, with `from`, disk-to-mirror into
/// `destination/<prefix>`), quiet.
fn disk_command(
    run: &Run<'_>,
    folder: &str,
    cache: &str,
    from: Option<&str>,
    extra: &[&str],
) -> Command {
    let mut command = Command::new(env!("CARGO_BIN_EXE_ferry"));
    command
        .arg("mirror")
        .args(["-c", &run.folder.join("isc.yaml").display().to_string()])
        .args([
            "--registries-conf",
            &run.world.registries_conf().display().to_string(),
        ])
        .args(["--parallel-images", "1", "--parallel-layers", "2"])
        .args(extra)
        .env("FERRY_CACHE_DIR", run.folder.join(cache))
        .env("REGISTRY_AUTH_FILE", run.folder.join("no-auth.json"))
        .stdout(Stdio::null())
        .stderr(Stdio::null());
    match from {
        Some(prefix) => command
            .arg(format!(
                "--from=file://{}",
                run.folder.join(folder).display()
            ))
            .arg("--dest-tls-verify=false")
            .arg(format!("docker://{}/{prefix}", run.destination.host())),
        None => command.arg(format!("file://{}", run.folder.join(folder).display())),
    };
    command
}

#[test]
fn kill_mirror_to_disk_at_twenty_points_and_rerun_to_the_same_delivery() {
    let site = Site::new();
    let run = site.run();
    // Small segments, so the kills also land between segment writes.
    let segments = ["--max-segment-bytes", "200000"];

    let started = Instant::now();
    let clean = disk_command(&run, "clean", "clean-cache", None, &segments)
        .status()
        .unwrap();
    let duration = started.elapsed();
    assert!(clean.success());

    let kills = kill_repeatedly(duration, || {
        disk_command(&run, "killed", "killed-cache", None, &segments)
    });
    eprintln!("{kills} mirror-to-disk runs killed; a clean run took {duration:?}");
    assert!(kills >= 20, "only {kills} runs were killed ({duration:?})");
    let finished = disk_command(&run, "killed", "killed-cache", None, &segments)
        .status()
        .unwrap();
    assert!(finished.success());

    // Whatever the kills left, the folder verifies, and the cache too.
    for (folder, cache) in [("killed", "killed-cache"), ("clean", "clean-cache")] {
        let verify = Command::new(env!("CARGO_BIN_EXE_ferry"))
            .arg("verify")
            .arg(format!("file://{}", run.folder.join(folder).display()))
            .output()
            .unwrap();
        assert!(
            verify.status.success(),
            "{}",
            String::from_utf8_lossy(&verify.stderr)
        );
        let cache_check = Command::new(env!("CARGO_BIN_EXE_ferry"))
            .args(["cache", "verify"])
            .env("FERRY_CACHE_DIR", run.folder.join(cache))
            .output()
            .unwrap();
        assert!(cache_check.status.success());
    }
    // Whatever the kills hit (a cold or warm cache, segments published or
    // not), the delivery is the clean run's, byte for byte.
    let delivery = |folder: &str| -> Vec<(String, Vec<u8>)> {
        let mut files: Vec<(String, Vec<u8>)> = std::fs::read_dir(run.folder.join(folder))
            .unwrap()
            .filter_map(|entry| {
                let entry = entry.unwrap();
                let name = entry.file_name().to_string_lossy().to_string();
                ferry_archive::segment_number(&name)?;
                Some((name, std::fs::read(entry.path()).unwrap()))
            })
            .collect();
        files.sort();
        files
    };
    let clean_segments = delivery("clean");
    assert!(!clean_segments.is_empty());
    let killed_segments = delivery("killed");
    assert_eq!(
        killed_segments
            .iter()
            .map(|(name, _)| name.as_str())
            .collect::<Vec<_>>(),
        clean_segments
            .iter()
            .map(|(name, _)| name.as_str())
            .collect::<Vec<_>>()
    );
    for ((name, killed), (_, clean)) in killed_segments.iter().zip(&clean_segments) {
        assert!(killed == clean, "{name} differs from the clean run's");
    }
    // The killed workspace's deliveries carry the same image set as the
    // clean one's: both land at the destination with the same tags.
    for prefix in ["clean", "killed"] {
        let applied = disk_command(
            &run,
            prefix,
            &format!("{prefix}-enclave"),
            Some(prefix),
            &[],
        )
        .status()
        .unwrap();
        assert!(applied.success(), "disk-to-mirror of {prefix}");
    }
    let expected = run.tags("clean");
    assert!(expected.len() > 20, "{expected:?}");
    assert_eq!(run.tags("killed"), expected);
}

#[test]
fn kill_disk_to_mirror_at_twenty_points_and_rerun_to_the_same_result() {
    let site = Site::new();
    let run = site.run();
    let written = disk_command(&run, "disk", "cache", None, &[])
        .status()
        .unwrap();
    assert!(written.success());

    // A clean disk-to-mirror, timed, then the same one killed again and
    // again (into another prefix, with a cache of its own): kills land in
    // the import into the cache and in the pushes.
    let started = Instant::now();
    let clean = disk_command(&run, "disk", "clean-enclave", Some("clean"), &[])
        .status()
        .unwrap();
    let duration = started.elapsed();
    assert!(clean.success());
    let kills = kill_repeatedly(duration, || {
        disk_command(&run, "disk", "killed-enclave", Some("killed"), &[])
    });
    eprintln!("{kills} disk-to-mirror runs killed; a clean run took {duration:?}");
    assert!(kills >= 20, "only {kills} runs were killed ({duration:?})");
    let finished = disk_command(&run, "disk", "killed-enclave", Some("killed"), &[])
        .status()
        .unwrap();
    assert!(finished.success());

    // Nothing is left to do, the cache the kills hit verifies, and the
    // destination holds what the clean run put there.
    let noop = Command::new(env!("CARGO_BIN_EXE_ferry"))
        .arg("plan")
        .args(["-c", &run.folder.join("isc.yaml").display().to_string()])
        .arg(format!(
            "--from=file://{}",
            run.folder.join("disk").display()
        ))
        .args(["--dest-tls-verify=false", "--detailed-exitcode"])
        .arg(format!("docker://{}/killed", run.destination.host()))
        .env("FERRY_CACHE_DIR", run.folder.join("killed-enclave"))
        .env("REGISTRY_AUTH_FILE", run.folder.join("no-auth.json"))
        .output()
        .unwrap();
    assert_eq!(
        noop.status.code(),
        Some(0),
        "after the final run nothing is left to do:\n{}",
        String::from_utf8_lossy(&noop.stderr)
    );
    let cache_check = Command::new(env!("CARGO_BIN_EXE_ferry"))
        .args(["cache", "verify"])
        .env("FERRY_CACHE_DIR", run.folder.join("killed-enclave"))
        .output()
        .unwrap();
    assert!(cache_check.status.success());
    let expected = run.tags("clean");
    assert!(expected.len() > 20, "{expected:?}");
    assert_eq!(run.tags("killed"), expected);
}
