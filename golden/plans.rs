//! Plans people read, end to end: `ferry plan` and `ferry mirror` against
//! the test world and an empty destination registry, the plans compared
//! with golden files (first run, no-op rerun, one image added, one tag
//! moved), the mirror checked with skopeo.

use std::process::{Command, Output};

use ferry_testworld::registry::{Flavour, Registry, Storage};
use ferry_testworld::world::World;

use crate::support::{compare_or_bless, golden_path};

struct Scenario {
    world: World,
    destination: Registry,
    folder: tempfile::TempDir,
}

impl Scenario {
    fn start() -> Self {
        Scenario {
            world: World::start().unwrap(),
            destination: Registry::start(Flavour::PlainHttp, Storage::Empty).unwrap(),
            folder: tempfile::tempdir().unwrap(),
        }
    }

    fn config(&self, name: &str, images: &str) -> String {
        let path = self.folder.path().join(name);
        std::fs::write(
            &path,
            format!("kind: ImageSetConfiguration\napiVersion: mirror.openshift.io/v2alpha1\nmirror:\n  additionalImages:\n{images}"),
        )
        .unwrap();
        path.display().to_string()
    }

    fn ferry(&self, command: &str, config: &str, extra: &[&str]) -> Output {
        let workspace = format!("file://{}", self.folder.path().join("workspace").display());
        let destination = format!("docker://{}/mirror", self.destination.host());
        let registries_conf = self.world.registries_conf().display().to_string();
        let mut arguments = vec![
            command,
            "-c",
            config,
            "--workspace",
            &workspace,
            "--registries-conf",
            &registries_conf,
            "--dest-tls-verify=false",
        ];
        arguments.extend_from_slice(extra);
        arguments.push(&destination);
        Command::new(env!("CARGO_BIN_EXE_ferry"))
            .args(&arguments)
            .env(
                "REGISTRY_AUTH_FILE",
                self.folder.path().join("no-auth.json"),
            )
            .env("SOURCE_DATE_EPOCH", "1764028800")
            .output()
            .unwrap()
    }

    /// Output with the run's own addresses and folders replaced. Action
    /// keys hash the destination (whose port changes every run), so they
    /// are replaced too.
    fn redact(&self, bytes: &[u8]) -> String {
        let text = String::from_utf8_lossy(bytes)
            .replace(
                &self.world.registries_conf().display().to_string(),
                "[REGISTRIES_CONF]",
            )
            .replace(&self.destination.host(), "[DESTINATION]")
            .replace(&self.world.registry().host(), "[SOURCE]")
            .replace(&self.folder.path().display().to_string(), "[TEMP]");
        let key = regex::Regex::new(r#""key": "[0-9a-f]{64}""#).unwrap();
        let text = key.replace_all(&text, r#""key": "[KEY]""#);
        // The saved action keys and state fingerprint (lists of bare keys).
        let bare = regex::Regex::new(r#""[0-9a-f]{64}""#).unwrap();
        bare.replace_all(&text, r#""[KEY]""#).into_owned()
    }
}

fn check(failures: &mut Vec<String>, name: &str, actual: &str) {
    if let Some(mismatch) = compare_or_bless(&golden_path(&format!("plans/{name}")), actual) {
        failures.push(mismatch);
    }
}

const UBI: &str = "  - name: registry.redhat.io/ubi9/ubi:latest\n";
const HELLO: &str = "  - name: quay.io/ferry-demo/hello:1.0\n";
const SIGNED: &str = "  - name: quay.io/ferry-demo/signed:1.0\n";

#[test]
fn plans_through_first_run_noop_addition_and_moved_tag() {
    let scenario = Scenario::start();
    std::fs::create_dir_all(golden_path("plans")).unwrap();
    let mut failures = Vec::new();

    // First run: everything is new.
    let first = scenario.config("first.yaml", &format!("{UBI}{HELLO}"));
    let plan = scenario.ferry("plan", &first, &["--detailed-exitcode"]);
    assert_eq!(
        plan.status.code(),
        Some(2),
        "{}",
        scenario.redact(&plan.stderr)
    );
    check(
        &mut failures,
        "01-first.txt",
        &scenario.redact(&plan.stdout),
    );
    let json = scenario.ferry("plan", &first, &["--format", "json"]);
    check(
        &mut failures,
        "01-first.json",
        &scenario.redact(&json.stdout),
    );
    let markdown = scenario.ferry("plan", &first, &["--format", "markdown"]);
    check(
        &mut failures,
        "01-first.md",
        &scenario.redact(&markdown.stdout),
    );
    let mirrored = scenario.ferry("mirror", &first, &[]);
    assert!(
        mirrored.status.success(),
        "{}",
        scenario.redact(&mirrored.stderr)
    );

    // The mirror holds byte-identical manifests.
    let source_conf = scenario.world.registries_conf().display().to_string();
    for (source, mirror) in [
        (
            "registry.redhat.io/ubi9/ubi:latest",
            "mirror/ubi9/ubi:latest",
        ),
        (
            "quay.io/ferry-demo/hello:1.0",
            "mirror/ferry-demo/hello:1.0",
        ),
    ] {
        let expected = Command::new("skopeo")
            .args([
                "--registries-conf",
                &source_conf,
                "inspect",
                "--raw",
                &format!("docker://{source}"),
            ])
            .output()
            .unwrap();
        let actual = Command::new("skopeo")
            .args([
                "inspect",
                "--raw",
                "--tls-verify=false",
                &format!("docker://{}/{mirror}", scenario.destination.host()),
            ])
            .output()
            .unwrap();
        assert!(expected.status.success() && actual.status.success());
        assert_eq!(expected.stdout, actual.stdout, "{mirror}");
    }

    // Cluster resources cover the image set and pass the strict CRD schema.
    let resources = scenario
        .folder
        .path()
        .join("workspace/working-dir/cluster-resources");
    let itms = std::fs::read_to_string(resources.join("itms-oc-mirror.yaml")).unwrap();
    check(
        &mut failures,
        "01-itms-oc-mirror.yaml",
        &scenario.redact(itms.as_bytes()),
    );
    assert!(
        !resources.join("idms-oc-mirror.yaml").exists(),
        "tag-only origins need no IDMS"
    );
    crate::support::assert_valid_against_crd(
        &itms,
        "config.openshift.io_v1_ImageTagMirrorSet.strict.schema.json",
        ("imageTagMirrors", "imageTagMirror"),
    );

    // Second run: nothing to do, detailed exit code 0.
    let noop = scenario.ferry("plan", &first, &["--detailed-exitcode"]);
    assert_eq!(
        noop.status.code(),
        Some(0),
        "{}",
        scenario.redact(&noop.stdout)
    );
    check(&mut failures, "02-noop.txt", &scenario.redact(&noop.stdout));

    // One image added: only its own blobs are uploaded.
    let added = scenario.config("added.yaml", &format!("{UBI}{HELLO}{SIGNED}"));
    let plan = scenario.ferry("plan", &added, &[]);
    check(
        &mut failures,
        "03-added.txt",
        &scenario.redact(&plan.stdout),
    );
    assert!(scenario.ferry("mirror", &added, &[]).status.success());

    // One tag moved: the same destination tag now names another image.
    let moved = scenario.config(
        "moved.yaml",
        &format!("{UBI}{SIGNED}  - name: quay.io/ferry-demo/hello-oci:1.0\n    targetRepo: ferry-demo/hello\n"),
    );
    let plan = scenario.ferry("plan", &moved, &["--detailed-exitcode"]);
    assert_eq!(plan.status.code(), Some(2));
    let text = scenario.redact(&plan.stdout);
    assert!(text.contains("tag moved from"), "{text}");
    check(&mut failures, "04-tag-moved.txt", &text);

    // A dry run writes oc-mirror's mapping.txt and changes nothing.
    let dry = scenario.ferry("mirror", &moved, &["--dry-run"]);
    assert!(dry.status.success());
    let mapping = std::fs::read_to_string(
        scenario
            .folder
            .path()
            .join("workspace/working-dir/dry-run/mapping.txt"),
    )
    .unwrap();
    assert_eq!(mapping.lines().count(), 4, "{mapping}");
    assert!(
        mapping
            .lines()
            .all(|line| line.starts_with("docker://") && line.contains("=docker://"))
    );
    let still = scenario.ferry("plan", &moved, &["--detailed-exitcode"]);
    assert_eq!(still.status.code(), Some(2), "the dry run changed nothing");

    assert!(failures.is_empty(), "{}", failures.join("\n\n"));
}

#[test]
fn saved_plans_apply_exactly_and_stale_ones_are_refused() {
    let scenario = Scenario::start();
    let config = scenario.config("apply.yaml", &format!("{UBI}{HELLO}"));
    let plan_file = scenario.folder.path().join("first.plan.json");
    let plan_file_text = plan_file.display().to_string();
    let planned = scenario.ferry("plan", &config, &["--out", &plan_file_text]);
    assert!(
        planned.status.success(),
        "{}",
        scenario.redact(&planned.stderr)
    );

    // `ferry apply FILE` reads destination and workspace from the file.
    let apply = |file: &str| {
        Command::new(env!("CARGO_BIN_EXE_ferry"))
            .args([
                "apply",
                file,
                "--dest-tls-verify=false",
                "--registries-conf",
            ])
            .arg(scenario.world.registries_conf())
            .env(
                "REGISTRY_AUTH_FILE",
                scenario.folder.path().join("no-auth.json"),
            )
            .output()
            .unwrap()
    };
    let applied = apply(&plan_file_text);
    assert!(
        applied.status.success(),
        "{}",
        scenario.redact(&applied.stderr)
    );
    let noop = scenario.ferry("plan", &config, &["--detailed-exitcode"]);
    assert_eq!(
        noop.status.code(),
        Some(0),
        "the applied plan left nothing to do"
    );

    // A plan made before another run changed the state is stale.
    let added = scenario.config("apply.yaml", &format!("{UBI}{HELLO}{SIGNED}"));
    let second_file = scenario
        .folder
        .path()
        .join("second.plan.json")
        .display()
        .to_string();
    assert!(
        scenario
            .ferry("plan", &added, &["--out", &second_file])
            .status
            .success()
    );
    assert!(scenario.ferry("mirror", &added, &[]).status.success());
    let stale = apply(&second_file);
    assert_eq!(stale.status.code(), Some(1));
    let message = String::from_utf8_lossy(&stale.stderr);
    assert!(message.contains("the workspace state changed"), "{message}");

    // So is a plan whose configuration was edited afterwards.
    let third_file = scenario
        .folder
        .path()
        .join("third.plan.json")
        .display()
        .to_string();
    assert!(
        scenario
            .ferry("plan", &added, &["--out", &third_file])
            .status
            .success()
    );
    // A configuration edited after the plan was made does not change what
    // the plan applies: it carries its own copy, and says so.
    scenario.config("apply.yaml", UBI);
    let edited = apply(&third_file);
    let message = String::from_utf8_lossy(&edited.stderr);
    assert!(edited.status.success(), "{message}");
    assert!(
        message.contains("changed since the plan was made; the plan is applied as it was made"),
        "{message}"
    );
}

#[test]
fn a_saved_plan_applies_from_any_folder_with_the_options_it_was_made_with() {
    let scenario = Scenario::start();
    let planning_folder = scenario.folder.path().join("planning");
    let elsewhere = scenario.folder.path().join("elsewhere");
    std::fs::create_dir_all(&planning_folder).unwrap();
    std::fs::create_dir_all(&elsewhere).unwrap();
    std::fs::write(
        planning_folder.join("isc.yaml"),
        format!("kind: ImageSetConfiguration\napiVersion: mirror.openshift.io/v2alpha1\nmirror:\n  additionalImages:\n{HELLO}"),
    )
    .unwrap();
    // Relative configuration, workspace and plan file; the destination
    // needs --dest-tls-verify=false (plain HTTP).
    let planned = Command::new(env!("CARGO_BIN_EXE_ferry"))
        .current_dir(&planning_folder)
        .args(["plan", "-c", "isc.yaml", "--workspace", "file://workspace"])
        .arg("--registries-conf")
        .arg(scenario.world.registries_conf())
        .args([
            "--dest-tls-verify=false",
            "--out",
            "saved.json",
            "--format",
            "json",
        ])
        .arg(format!("docker://{}/mirror", scenario.destination.host()))
        .env(
            "REGISTRY_AUTH_FILE",
            scenario.folder.path().join("no-auth.json"),
        )
        .output()
        .unwrap();
    assert!(
        planned.status.success(),
        "{}",
        scenario.redact(&planned.stderr)
    );
    // What --format json prints is what --out saved: one format.
    let saved = std::fs::read_to_string(planning_folder.join("saved.json")).unwrap();
    assert_eq!(String::from_utf8_lossy(&planned.stdout), saved);
    // Applied from another folder with no flags at all.
    let applied = Command::new(env!("CARGO_BIN_EXE_ferry"))
        .current_dir(&elsewhere)
        .args(["apply", "../planning/saved.json"])
        .env_remove("REGISTRY_AUTH_FILE")
        .output()
        .unwrap();
    assert!(
        applied.status.success(),
        "{}",
        scenario.redact(&applied.stderr)
    );
    assert!(
        planning_folder
            .join("workspace/working-dir/state.db")
            .is_file(),
        "the relative workspace was the planning folder's"
    );
    assert!(!elsewhere.join("workspace").exists());
    let copied = Command::new("skopeo")
        .args(["inspect", "--tls-verify=false", "--raw"])
        .arg(format!(
            "docker://{}/mirror/ferry-demo/hello:1.0",
            scenario.destination.host()
        ))
        .output()
        .unwrap();
    assert!(copied.status.success(), "the image is at the destination");
}
