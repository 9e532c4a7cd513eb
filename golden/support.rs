//! Shared helpers of the golden tests: where the files are, the
//! compare-or-bless step, and the setup the end-to-end tests repeat (the
//! `ferry` command with the test environment, image set files, skopeo
//! reads, the strict CRD schemas, the delete goldens' [`Scenario`]).

use std::path::{Path, PathBuf};
use std::process::{Command, Output};

use ferry_testworld::registry::Registry;
use ferry_testworld::world::World;
use serde_json::Value;

/// The workspace root (the root package's manifest folder).
pub fn workspace_root() -> &'static Path {
    Path::new(env!("CARGO_MANIFEST_DIR"))
}

/// `golden/<relative>`.
pub fn golden_path(relative: &str) -> PathBuf {
    workspace_root().join("golden").join(relative)
}

/// True when the committed files should be rewritten instead of compared.
pub fn blessing() -> bool {
    std::env::var_os("FERRY_BLESS").is_some()
}

/// Compares `actual` with the committed file at `path`, or rewrites the file
/// when blessing. Returns a description of the mismatch, if any.
pub fn compare_or_bless(path: &Path, actual: &str) -> Option<String> {
    if blessing() {
        std::fs::write(path, actual).expect("write golden file");
        return None;
    }
    let expected = std::fs::read_to_string(path).unwrap_or_default();
    if expected == actual {
        return None;
    }
    Some(format!(
        "{} differs from the current output:\n--- expected\n{expected}\n--- actual\n{actual}",
        path.display()
    ))
}

/// Command output as text (lossy).
pub fn text(bytes: &[u8]) -> String {
    String::from_utf8_lossy(bytes).into_owned()
}

/// A command's stdout then its stderr, as text.
pub fn all_output(output: &Output) -> String {
    format!("{}{}", text(&output.stdout), text(&output.stderr))
}

/// Writes `folder/name`, an ImageSetConfiguration whose `mirror:` holds
/// `mirror` (lines indented by two spaces, each ending with a newline);
/// returns its path.
pub fn write_image_set(folder: &Path, name: &str, mirror: &str) -> String {
    let path = folder.join(name);
    std::fs::write(
        &path,
        format!(
            "kind: ImageSetConfiguration\napiVersion: mirror.openshift.io/v2alpha1\nmirror:\n{mirror}"
        ),
    )
    .expect("write the image set configuration");
    path.display().to_string()
}

/// `ferry SUBCOMMAND` as the tests run it: no credentials (an auth file
/// that does not exist), the cache `folder/cache`, a fixed
/// `SOURCE_DATE_EPOCH`, and no `FERRY_GRAPH_DATA_URL` from the caller.
pub fn ferry(folder: &Path, subcommand: &str) -> Command {
    let mut command = Command::new(env!("CARGO_BIN_EXE_ferry"));
    command
        .arg(subcommand)
        .env("REGISTRY_AUTH_FILE", folder.join("no-auth.json"))
        .env("FERRY_CACHE_DIR", folder.join("cache"))
        .env("SOURCE_DATE_EPOCH", "1764028800")
        .env_remove("FERRY_GRAPH_DATA_URL");
    command
}

/// [`ferry`] against the test world: its registries.conf, TLS checks off
/// (its registries and the destinations are plain HTTP), its update
/// service as `UPDATE_URL_OVERRIDE`.
pub fn world_ferry(world: &World, folder: &Path, subcommand: &str) -> Command {
    let mut command = ferry(folder, subcommand);
    command
        .arg("--registries-conf")
        .arg(world.registries_conf())
        .args(["--src-tls-verify=false", "--dest-tls-verify=false"])
        .env("UPDATE_URL_OVERRIDE", world.graph_url());
    command
}

/// Runs `command`; its output, after checking it exited 0 (the panic shows
/// stdout and stderr).
pub fn succeeded(command: &mut Command) -> Output {
    let output = command.output().expect("run the command");
    assert_eq!(
        output.status.code(),
        Some(0),
        "{command:?}\n{}",
        all_output(&output)
    );
    output
}

/// The `mirroring_errors_*` files of a logs folder, concatenated.
pub fn mirroring_errors(logs: &Path) -> String {
    std::fs::read_dir(logs)
        .expect("the logs folder")
        .flatten()
        .filter(|entry| {
            entry
                .file_name()
                .to_string_lossy()
                .starts_with("mirroring_errors_")
        })
        .map(|entry| std::fs::read_to_string(entry.path()).expect("an errors file"))
        .collect()
}

/// `skopeo inspect --raw` of `docker://REFERENCE` (TLS checks off): the
/// manifest's bytes, or `None` when skopeo cannot read it.
pub fn skopeo_raw_bytes(reference: &str) -> Option<Vec<u8>> {
    let output = Command::new("skopeo")
        .args(["inspect", "--raw", "--tls-verify=false"])
        .arg(format!("docker://{reference}"))
        .output()
        .expect("run skopeo");
    output.status.success().then_some(output.stdout)
}

/// `sha256:<hex>` of `bytes`.
pub fn sha256(bytes: &[u8]) -> String {
    ferry_schemas::Digest::sha256_of(bytes).to_string()
}

/// The tags skopeo lists at `reference` (`docker://REGISTRY/REPOSITORY`).
pub fn skopeo_tags(reference: &str) -> std::collections::BTreeSet<String> {
    let output = Command::new("skopeo")
        .args(["list-tags", "--tls-verify=false", reference])
        .output()
        .expect("run skopeo");
    assert!(
        output.status.success(),
        "{reference}: {}",
        text(&output.stderr)
    );
    let listed: serde_json::Value = serde_json::from_slice(&output.stdout).unwrap();
    listed["Tags"]
        .as_array()
        .unwrap()
        .iter()
        .map(|tag| tag.as_str().unwrap().to_owned())
        .collect()
}

/// Writes `file`: a registries.conf sending every host of the world's
/// content through `proxy` (a counting or fault-injecting proxy), insecure.
pub fn registries_conf_through(world: &World, proxy: &str, file: &Path) {
    use ferry_testworld::registries_conf;
    std::fs::write(
        file,
        registries_conf::render(&registries_conf::hosts(world.content()), proxy, true),
    )
    .unwrap();
}

/// Checks every YAML document of `text` against the strict JSON Schema
/// `schema_name` of the fixtures' CRDs (`additionalProperties: false`),
/// and that the schema refuses the text with `field` misspelt as `typo`.
pub fn assert_valid_against_crd(text: &str, schema_name: &str, (field, typo): (&str, &str)) {
    let path = workspace_root()
        .join("../shared/fixtures/derived/jsonschema/crds")
        .join(schema_name);
    let schema: Value = serde_json::from_str(&std::fs::read_to_string(&path).unwrap()).unwrap();
    let validator = jsonschema::validator_for(&schema).unwrap();
    let mut documents = 0;
    for document in serde_yaml::Deserializer::from_str(text) {
        let value: Value = serde::Deserialize::deserialize(document).unwrap();
        let errors: Vec<String> = validator
            .iter_errors(&value)
            .map(|error| error.to_string())
            .collect();
        assert!(errors.is_empty(), "{schema_name}: {errors:?}\n{text}");
        documents += 1;
    }
    assert!(documents > 0, "{schema_name}: no document in {text}");
    assert!(text.contains(field), "{field} in {text}");
    let broken = text.replacen(field, typo, 1);
    let document = serde_yaml::Deserializer::from_str(&broken).next().unwrap();
    let value: Value = serde::Deserialize::deserialize(document).unwrap();
    assert!(
        !validator.is_valid(&value),
        "{schema_name} accepts a misspelt field: {broken}"
    );
}

/// Sends every address but loopback of `command` to the HTTP proxy `proxy`
/// (`HTTP_PROXY`, `HTTPS_PROXY`, `ALL_PROXY`; loopback goes direct), so a
/// test can show nothing else was reached.
pub fn through_proxy(command: &mut Command, proxy: &str) {
    for variable in ["http_proxy", "https_proxy", "all_proxy", "no_proxy"] {
        command.env_remove(variable);
    }
    command
        .env("HTTP_PROXY", proxy)
        .env("HTTPS_PROXY", proxy)
        .env("ALL_PROXY", proxy)
        .env("NO_PROXY", "127.0.0.1,localhost");
}

/// What a node pulls: `skopeo --registries-conf CONF inspect --raw` of
/// `docker://REFERENCE`, everything but loopback through `proxy`; the
/// digest of the manifest it read (checked against the reference's own
/// digest when it names one).
pub fn pulled_digest(conf: &Path, reference: &str, proxy: &str) -> String {
    let mut command = Command::new("skopeo");
    through_proxy(&mut command, proxy);
    let output = command
        .arg("--registries-conf")
        .arg(conf)
        .args(["inspect", "--raw", "--tls-verify=false"])
        .arg(format!("docker://{reference}"))
        .output()
        .expect("run skopeo");
    assert!(
        output.status.success(),
        "{reference} through {}: {}",
        conf.display(),
        text(&output.stderr)
    );
    let digest = sha256(&output.stdout);
    if let Some((_, named)) = reference.rsplit_once('@') {
        assert_eq!(digest, named, "{reference}");
    }
    digest
}

/// Checks that `output` exited with `code` (the panic shows stdout and
/// stderr); returns stdout then stderr, as text.
pub fn exited(output: &Output, code: i32) -> String {
    let all = all_output(output);
    assert_eq!(output.status.code(), Some(code), "{all}");
    all
}

/// The delete goldens' setting (`delete*.rs`): the test world, an empty
/// destination registry, and a temporary folder for workspaces, files and
/// the cache.
pub(crate) struct Scenario {
    pub(crate) world: World,
    pub(crate) destination: Registry,
    pub(crate) folder: tempfile::TempDir,
}

impl Scenario {
    pub(crate) fn start(destination: Registry) -> Self {
        Scenario {
            world: World::start().unwrap(),
            destination,
            folder: tempfile::tempdir().unwrap(),
        }
    }

    pub(crate) fn write(&self, name: &str, text: &str) -> String {
        let path = self.folder.path().join(name);
        std::fs::write(&path, text).unwrap();
        path.display().to_string()
    }

    pub(crate) fn workspace(&self) -> String {
        format!("file://{}", self.folder.path().join("workspace").display())
    }

    pub(crate) fn destination(&self) -> String {
        format!("docker://{}/mirror", self.destination.host())
    }

    pub(crate) fn ferry(&self, arguments: &[&str]) -> Output {
        Command::new(env!("CARGO_BIN_EXE_ferry"))
            .args(arguments)
            .env(
                "REGISTRY_AUTH_FILE",
                self.folder.path().join("no-auth.json"),
            )
            .env("FERRY_CACHE_DIR", self.folder.path().join("cache"))
            .output()
            .unwrap()
    }

    /// Mirrors `images` (additionalImages lines) to the destination.
    pub(crate) fn mirror(&self, images: &str) {
        self.mirror_from("workspace", images);
    }

    /// The workspace folder `name`, as `file://DIR`.
    pub(crate) fn workspace_named(&self, name: &str) -> String {
        format!("file://{}", self.folder.path().join(name).display())
    }

    /// Mirrors `images` (additionalImages lines) to the destination with
    /// the workspace `name` (its configuration `name.yaml`).
    pub(crate) fn mirror_from(&self, name: &str, images: &str) {
        let config = self.write(
            &format!("{name}.yaml"),
            &format!("kind: ImageSetConfiguration\napiVersion: mirror.openshift.io/v2alpha1\nmirror:\n  additionalImages:\n{images}"),
        );
        let registries_conf = self.world.registries_conf().display().to_string();
        let output = self.ferry(&[
            "mirror",
            "-c",
            &config,
            "--workspace",
            &self.workspace_named(name),
            "--registries-conf",
            &registries_conf,
            "--dest-tls-verify=false",
            &self.destination(),
        ]);
        assert!(output.status.success(), "{}", text(&output.stderr));
    }

    /// Mirrors `config` to the disk folder `disk` (`file://DIR`), then
    /// from it to the destination, as the disconnected flow does.
    pub(crate) fn mirror_through_disk(&self, config: &str, disk: &str) {
        let registries_conf = self.world.registries_conf().display().to_string();
        let to_disk = self.ferry(&[
            "mirror",
            "-c",
            config,
            "--registries-conf",
            &registries_conf,
            disk,
        ]);
        assert!(to_disk.status.success(), "{}", text(&to_disk.stderr));
        let from_disk = self.ferry(&[
            "mirror",
            "-c",
            config,
            "--from",
            disk,
            "--dest-tls-verify=false",
            &self.destination(),
        ]);
        assert!(from_disk.status.success(), "{}", text(&from_disk.stderr));
    }

    /// Whether the destination serves `reference` (below `mirror/`).
    pub(crate) fn holds(&self, reference: &str) -> bool {
        Command::new("skopeo")
            .args([
                "inspect",
                "--raw",
                "--tls-verify=false",
                &format!("docker://{}/mirror/{reference}", self.destination.host()),
            ])
            .output()
            .unwrap()
            .status
            .success()
    }

    /// `ferry delete --generate -c DISC --workspace WORKSPACE EXTRA...
    /// DESTINATION`: step 1, the delete list written into `workspace`
    /// (`file://DIR`).
    pub(crate) fn generate_delete_list(
        &self,
        disc: &str,
        workspace: &str,
        extra: &[&str],
    ) -> Output {
        let destination = self.destination();
        let mut arguments = vec!["delete", "--generate", "-c", disc, "--workspace", workspace];
        arguments.extend_from_slice(extra);
        arguments.push(&destination);
        self.ferry(&arguments)
    }

    /// The delete list step 1 wrote into the workspace (or disk folder)
    /// `folder`.
    pub(crate) fn delete_list(&self, folder: &str) -> String {
        self.folder
            .path()
            .join(folder)
            .join("working-dir/delete/delete-images.yaml")
            .display()
            .to_string()
    }

    /// `ferry plan --delete -c DISC --workspace WORKSPACE
    /// --dest-tls-verify=false EXTRA... DESTINATION`, `workspace` being a
    /// folder's name in the scenario's.
    pub(crate) fn plan_delete(&self, workspace: &str, disc: &str, extra: &[&str]) -> Output {
        let workspace = self.workspace_named(workspace);
        let destination = self.destination();
        let mut arguments = vec![
            "plan",
            "--delete",
            "-c",
            disc,
            "--workspace",
            &workspace,
            "--dest-tls-verify=false",
        ];
        arguments.extend_from_slice(extra);
        arguments.push(&destination);
        self.ferry(&arguments)
    }

    /// `ferry delete --delete-yaml-file LIST --dest-tls-verify=false
    /// EXTRA... DESTINATION`: step 2, what `list` names deleted.
    pub(crate) fn delete_listed(&self, list: &str, extra: &[&str]) -> Output {
        let destination = self.destination();
        let mut arguments = vec![
            "delete",
            "--delete-yaml-file",
            list,
            "--dest-tls-verify=false",
        ];
        arguments.extend_from_slice(extra);
        arguments.push(&destination);
        self.ferry(&arguments)
    }

    pub(crate) fn redact(&self, text: &str) -> String {
        text.replace(&self.destination.host(), "[DESTINATION]")
            .replace(&self.folder.path().display().to_string(), "[TEMP]")
    }
}
