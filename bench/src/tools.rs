//! The two tools under comparison, as command lines: ferry's release
//! binary (`mirror` and `plan` with a generated `registries.conf`, as the
//! golden plan tests run it) and skopeo (`copy`, `sync --src yaml`,
//! `inspect --raw`), plus the check that a destination holds the source's
//! exact manifest bytes.

use std::fmt::Write as _;
use std::fs;
use std::path::{Path, PathBuf};
use std::process::Command;

use ferry_testworld::error::{Context, Error, Result};
use ferry_testworld::registries_conf;

use crate::image_sets::{ImageSet, SetImage};

/// The `ferry` binary: `$FERRY_BIN`, else `ferry` next to this benchmark's
/// own binary (both are built into the same `target/release`).
pub fn ferry_binary() -> Result<PathBuf> {
    if let Some(path) = std::env::var_os("FERRY_BIN") {
        return Ok(PathBuf::from(path));
    }
    let own = std::env::current_exe().context(|| "finding this benchmark's binary".to_owned())?;
    let candidate = own.with_file_name("ferry");
    if candidate.is_file() {
        Ok(candidate)
    } else {
        Err(Error::new(format!(
            "{} is missing: build it with `cargo build --release --bin ferry` (bench/run does), or set FERRY_BIN",
            candidate.display()
        )))
    }
}

/// Everything a `ferry mirror` / `ferry plan` of one image set needs: a
/// configuration listing the set's images, a `registries.conf` sending
/// `quay.io` to the loopback source, and the destination registry.
#[derive(Debug)]
pub struct FerryJob {
    binary: PathBuf,
    folder: PathBuf,
    config: PathBuf,
    registries_conf: PathBuf,
    destination: String,
}

impl FerryJob {
    /// Writes the configuration and `registries.conf` into `folder`.
    /// `binary` is ferry's ([`ferry_binary`]); `destination` is
    /// `REGISTRY[/PREFIX]`.
    pub fn new(
        binary: PathBuf,
        folder: &Path,
        set: &ImageSet,
        source_host: &str,
        destination: &str,
    ) -> Result<FerryJob> {
        fs::create_dir_all(folder).context(|| format!("creating {}", folder.display()))?;
        let config = folder.join("imageset-config.yaml");
        let mut text = String::from(
            "kind: ImageSetConfiguration\napiVersion: mirror.openshift.io/v2alpha1\nmirror:\n  additionalImages:\n",
        );
        for image in &set.images {
            let _ = writeln!(text, "  - name: {}", image.public_reference());
        }
        fs::write(&config, text).context(|| format!("writing {}", config.display()))?;
        let registries_conf = folder.join("registries.conf");
        let hosts = registries_conf::hosts(&set.content);
        fs::write(
            &registries_conf,
            registries_conf::render(&hosts, source_host, true),
        )
        .context(|| format!("writing {}", registries_conf.display()))?;
        Ok(FerryJob {
            binary,
            folder: folder.to_path_buf(),
            config,
            registries_conf,
            destination: destination.to_owned(),
        })
    }

    /// The configuration file listing the set's images.
    pub fn config(&self) -> &Path {
        &self.config
    }

    /// The `registries.conf` sending `quay.io` to the loopback source.
    pub fn registries_conf(&self) -> &Path {
        &self.registries_conf
    }

    /// `ferry <subcommand> -c CONFIG --workspace file://FOLDER/<workspace>
    /// --registries-conf FILE --dest-tls-verify=false [extra] docker://DESTINATION`,
    /// with no credentials and a content cache of its own.
    pub fn command(&self, subcommand: &str, workspace: &str, extra: &[&str]) -> Command {
        let mut command = Command::new(&self.binary);
        command
            .arg(subcommand)
            .arg("-c")
            .arg(&self.config)
            .arg("--workspace")
            .arg(format!("file://{}", self.folder.join(workspace).display()))
            .arg("--registries-conf")
            .arg(&self.registries_conf)
            .arg("--dest-tls-verify=false")
            .args(extra)
            .arg(format!("docker://{}", self.destination))
            .env("REGISTRY_AUTH_FILE", self.folder.join("no-auth.json"))
            .env("FERRY_CACHE_DIR", self.folder.join("cache"));
        command
    }
}

/// A shell script running `job`'s command line with the subcommand and
/// extra flags it is given (`rerun plan --trust-state`), and `$FERRY_BIN`
/// instead of the job's binary when set: for profiling one step on a kept
/// world.
pub fn rerun_script(job: &FerryJob) -> String {
    let command = job.command("SUBCOMMAND", "workspace", &[]);
    let arguments: Vec<String> = command
        .get_args()
        .map(|argument| shell_quote(&argument.to_string_lossy()))
        .collect();
    let mut text = String::from("#!/bin/sh\nset -e\nsubcommand=$1\nshift\n");
    for (name, value) in command.get_envs() {
        if let Some(value) = value {
            let _ = writeln!(
                text,
                "export {}={}",
                name.to_string_lossy(),
                shell_quote(&value.to_string_lossy())
            );
        }
    }
    let (destination, fixed) = arguments[1..]
        .split_last()
        .expect("a ferry command line ends with its destination");
    let _ = writeln!(
        text,
        "exec \"${{FERRY_BIN:-{}}}\" \"$subcommand\" {} \"$@\" {destination}",
        job.binary.display(),
        fixed.join(" ")
    );
    text
}

/// `text` single-quoted for a POSIX shell.
fn shell_quote(text: &str) -> String {
    format!("'{}'", text.replace('\'', "'\\''"))
}

/// Fails unless ferry's output says the plan was empty.
pub fn require_nothing_to_do(label: &str, output: &str) -> Result<()> {
    if output.contains("Nothing to do") {
        Ok(())
    } else {
        Err(Error::new(format!(
            "{label} was not a no-op; its plan said:\n{}",
            crate::measure::last_lines(output, 15)
        )))
    }
}

/// `skopeo copy` of one image between two plain-HTTP registries.
pub fn skopeo_copy(source: &str, destination: &str) -> Command {
    let mut command = Command::new("skopeo");
    command
        .args(["copy", "--src-tls-verify=false", "--dest-tls-verify=false"])
        .arg(format!("docker://{source}"))
        .arg(format!("docker://{destination}"));
    command
}

/// The `skopeo sync --src yaml` file listing every image of `set` with its
/// tags, read straight from the loopback source (skopeo sync cannot remap
/// source names through `registries.conf`; the content is the same).
pub fn skopeo_sync_yaml(set: &ImageSet, source_host: &str) -> String {
    let mut text = format!("{source_host}:\n  tls-verify: false\n  images:\n");
    for (repository, tags) in set.tags_by_repository() {
        let _ = writeln!(text, "    {repository}:");
        for tag in tags {
            let _ = writeln!(text, "      - \"{tag}\"");
        }
    }
    text
}

/// `skopeo sync --src yaml FILE --dest docker DESTINATION`. skopeo puts each
/// repository at `DESTINATION/<last path component>`, so a destination of
/// `REGISTRY/<namespace>` gives the same names as ferry's `docker://REGISTRY`.
pub fn skopeo_sync(yaml: &Path, destination: &str) -> Command {
    let mut command = Command::new("skopeo");
    command
        .args([
            "sync",
            "--src",
            "yaml",
            "--dest",
            "docker",
            "--dest-tls-verify=false",
        ])
        .arg(yaml)
        .arg(destination);
    command
}

/// The raw manifest at `reference` (`HOST/REPOSITORY:TAG`, plain HTTP).
pub fn inspect_raw(reference: &str) -> Result<Vec<u8>> {
    let output = Command::new("skopeo")
        .args(["inspect", "--raw", "--tls-verify=false"])
        .arg(format!("docker://{reference}"))
        .output()
        .context(|| "running skopeo (install it with bash .ci/install)".to_owned())?;
    if !output.status.success() {
        return Err(Error::new(format!(
            "skopeo inspect --raw docker://{reference} failed: {}",
            String::from_utf8_lossy(&output.stderr).trim()
        )));
    }
    Ok(output.stdout)
}

/// Checks with `skopeo inspect --raw` that `destination_host` holds each of
/// `images` at `<repository>:<tag>` with exactly the source's manifest
/// bytes. (A registry accepts a manifest only when every blob it names is
/// in the repository, so this also covers the blobs.)
pub fn verify_destination(
    tool: &str,
    set: &ImageSet,
    destination_host: &str,
    images: &[&SetImage],
) -> Result<usize> {
    for image in images {
        let reference = format!("{destination_host}/{}:{}", image.repository, image.tag);
        let expected = set
            .manifest_bytes(image)
            .ok_or_else(|| Error::new(format!("{} is not in the generated set", image.digest)))?;
        let actual = inspect_raw(&reference)
            .context(|| format!("checking {tool}'s copy of {}", image.public_reference()))?;
        if actual != expected {
            return Err(Error::new(format!(
                "{tool}'s destination differs from the source at {reference}: {} bytes ({}) where the source has {} bytes ({})",
                actual.len(),
                ferry_testworld::content::sha256_digest(&actual),
                expected.len(),
                image.digest
            )));
        }
    }
    Ok(images.len())
}

/// Counts the repositories a registry's storage holds (folders with a
/// `_manifests` child under `docker/registry/v2/repositories`).
pub fn repository_count(storage_root: &Path) -> Result<usize> {
    let mut count = 0;
    let mut folders = vec![storage_root.join("docker/registry/v2/repositories")];
    while let Some(folder) = folders.pop() {
        if !folder.is_dir() {
            continue;
        }
        if folder.join("_manifests").is_dir() {
            count += 1;
            continue;
        }
        for entry in fs::read_dir(&folder).context(|| format!("listing {}", folder.display()))? {
            let entry = entry.context(|| format!("listing {}", folder.display()))?;
            if entry.path().is_dir() {
                folders.push(entry.path());
            }
        }
    }
    Ok(count)
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::image_sets;

    #[test]
    fn the_sync_file_lists_every_tag_under_its_source_repository() {
        let set = image_sets::small("yaml", "ferry-bench-yaml", 3, 2);
        let yaml = skopeo_sync_yaml(&set, "127.0.0.1:5000");
        assert_eq!(
            yaml,
            "127.0.0.1:5000:\n  tls-verify: false\n  images:\n    quay.io/ferry-bench-yaml/app-000:\n      - \"v0\"\n      - \"v1\"\n    quay.io/ferry-bench-yaml/app-001:\n      - \"v0\"\n"
        );
    }

    #[test]
    fn ferry_gets_a_configuration_of_the_set_and_a_remapping_to_the_source() {
        let folder = tempfile::tempdir().unwrap();
        let set = image_sets::small("config", "ferry-bench-config", 2, 5);
        let job = FerryJob::new(
            PathBuf::from("/opt/ferry"),
            folder.path(),
            &set,
            "127.0.0.1:5000",
            "127.0.0.1:6000",
        )
        .unwrap();
        let config = fs::read_to_string(folder.path().join("imageset-config.yaml")).unwrap();
        assert!(config.ends_with(
            "  additionalImages:\n  - name: quay.io/ferry-bench-config/app-000:v0\n  - name: quay.io/ferry-bench-config/app-000:v1\n"
        ));
        let remapping = fs::read_to_string(folder.path().join("registries.conf")).unwrap();
        assert!(remapping.contains("prefix = \"quay.io\"\nlocation = \"127.0.0.1:5000/quay.io\""));
        let command = job.command("plan", "workspace", &["--trust-state"]);
        let arguments: Vec<String> = command
            .get_args()
            .map(|argument| argument.to_string_lossy().into_owned())
            .collect();
        assert_eq!(command.get_program(), "/opt/ferry");
        assert_eq!(arguments[0], "plan");
        assert_eq!(
            arguments[arguments.len() - 2..],
            ["--trust-state", "docker://127.0.0.1:6000"]
        );
        let workspace = format!("file://{}", folder.path().join("workspace").display());
        assert!(arguments.contains(&workspace));
    }

    #[test]
    fn the_rerun_script_runs_the_job_with_the_flags_it_is_given() {
        let folder = tempfile::tempdir().unwrap();
        let set = image_sets::small("rerun", "ferry-bench-rerun", 2, 5);
        let job = FerryJob::new(
            PathBuf::from("/opt/it's/ferry"),
            folder.path(),
            &set,
            "127.0.0.1:5000",
            "127.0.0.1:6000",
        )
        .unwrap();
        let script = rerun_script(&job);
        let exec = script.lines().last().unwrap();
        assert!(
            exec.starts_with("exec \"${FERRY_BIN:-/opt/it's/ferry}\" \"$subcommand\" '-c' "),
            "{exec}"
        );
        assert!(
            exec.ends_with(" '--dest-tls-verify=false' \"$@\" 'docker://127.0.0.1:6000'"),
            "{exec}"
        );
        let cache = folder.path().join("cache");
        assert!(script.contains(&format!("export FERRY_CACHE_DIR='{}'\n", cache.display())));
        assert_eq!(shell_quote("it's"), "'it'\\''s'");
    }

    #[test]
    fn repositories_are_counted_by_their_manifests_folder() {
        let folder = tempfile::tempdir().unwrap();
        let repositories = folder.path().join("docker/registry/v2/repositories");
        for name in ["a/b", "a/c", "d"] {
            fs::create_dir_all(repositories.join(name).join("_manifests")).unwrap();
            fs::create_dir_all(repositories.join(name).join("_layers")).unwrap();
        }
        assert_eq!(repository_count(folder.path()).unwrap(), 3);
    }
}
