//! Data-driven planner cases: each folder of `planner/tests/cases/` holds
//! `images.yaml` (this run's resolved images, with symbolic digests) and,
//! when earlier runs matter, `state.yaml` (image sets whose plans were
//! applied in full before, and what the destination checks found missing).
//! The plan the planner makes from them is rendered for people, symbolic
//! names put back in place of digests, and compared with the case's
//! `plan.txt`. `FERRY_BLESS=1` writes `plan.txt` anew.
//!
//! A new case is a new folder: no code.

use std::collections::BTreeMap;
use std::fmt::Write as _;
use std::path::{Path, PathBuf};

use ferry_planner::{
    Action, Category, Destination, Plan, ResolvedImage, ResolvedManifest, Source, StateSnapshot,
    compile, compile_archive, plan,
};
use ferry_schemas::Digest;
use serde::Deserialize;

mod support;
use support::apply;

/// `images.yaml`.
#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct ImagesFile {
    /// What the case shows (first line of the rendered plan).
    about: String,
    /// `registry[/prefix]` for a registry destination, or `disk` for a
    /// delivery (`compile_archive`).
    destination: String,
    images: Vec<ImageCase>,
}

/// One resolved image; digests are symbolic names.
#[derive(Clone, Deserialize)]
#[serde(deny_unknown_fields)]
struct ImageCase {
    name: String,
    /// `registry/repository`, or `cache` for a built image.
    source: String,
    /// Blobs read from elsewhere than `source` (name → `registry/repository`
    /// or `cache`).
    #[serde(default)]
    blob_sources: BTreeMap<String, String>,
    repository: String,
    tag: Option<String>,
    /// The top manifest's name: the first of `manifests` when left out.
    top: Option<String>,
    manifests: Vec<ManifestCase>,
    #[serde(default)]
    category: Option<String>,
}

#[derive(Clone, Deserialize)]
#[serde(deny_unknown_fields)]
struct ManifestCase {
    name: String,
    #[serde(default = "default_manifest_size")]
    size: u64,
    /// Child manifests (an index).
    #[serde(default)]
    children: Vec<String>,
    /// Blobs as `name: size`.
    #[serde(default)]
    blobs: BTreeMap<String, u64>,
}

fn default_manifest_size() -> u64 {
    500
}

/// `state.yaml`.
#[derive(Default, Deserialize)]
#[serde(deny_unknown_fields)]
struct StateFile {
    /// Earlier runs, oldest first: each image set's plan applied in full.
    #[serde(default)]
    applied: Vec<Vec<ImageCase>>,
    /// Top manifests the destination check found missing:
    /// `[repository, manifest name]`.
    #[serde(default)]
    missing: Vec<(String, String)>,
    /// Blobs `--verify` found missing: `[repository, blob name]`.
    #[serde(default)]
    missing_blobs: Vec<(String, String)>,
}

/// Symbolic names ↔ digests, stable per name.
#[derive(Default)]
struct Names {
    by_digest: BTreeMap<Digest, String>,
}

impl Names {
    fn digest(&mut self, name: &str) -> Digest {
        let digest: Digest = format!("sha256:{}", blake3::hash(name.as_bytes()).to_hex())
            .parse()
            .unwrap();
        self.by_digest.insert(digest.clone(), name.to_owned());
        digest
    }

    /// `text` with every digest it names replaced by its symbolic name.
    fn readable(&self, text: &str) -> String {
        let mut text = text.to_owned();
        for (digest, name) in &self.by_digest {
            text = text.replace(&digest.to_string(), name);
        }
        text
    }
}

fn source_of(text: &str) -> Source {
    if text == "cache" {
        Source::Cache
    } else {
        Source::Registry(text.to_owned())
    }
}

fn category_of(text: Option<&str>) -> Category {
    match text.unwrap_or("additional") {
        "release" => Category::Release,
        "operator" => Category::Operator,
        "helm" => Category::Helm,
        "additional" => Category::Additional,
        other => panic!("unknown category `{other}`"),
    }
}

fn resolved(case: &ImageCase, names: &mut Names) -> ResolvedImage {
    let top = case
        .top
        .clone()
        .unwrap_or_else(|| case.manifests[0].name.clone());
    ResolvedImage {
        name: case.name.clone(),
        source: source_of(&case.source),
        blob_sources: case
            .blob_sources
            .iter()
            .map(|(blob, source)| (names.digest(blob), source_of(source)))
            .collect(),
        destination_repository: case.repository.clone(),
        destination_tag: case.tag.clone(),
        top: names.digest(&top),
        manifests: case
            .manifests
            .iter()
            .map(|manifest| ResolvedManifest {
                digest: names.digest(&manifest.name),
                media_type: if manifest.children.is_empty() {
                    "application/vnd.oci.image.manifest.v1+json".to_owned()
                } else {
                    "application/vnd.oci.image.index.v1+json".to_owned()
                },
                size: manifest.size,
                children: manifest
                    .children
                    .iter()
                    .map(|child| names.digest(child))
                    .collect(),
                blobs: manifest
                    .blobs
                    .iter()
                    .map(|(blob, size)| (names.digest(blob), *size))
                    .collect(),
            })
            .collect(),
        category: category_of(case.category.as_deref()),
        signature_of: None,
    }
}

fn destination_of(text: &str) -> Option<Destination> {
    if text == "disk" {
        return None;
    }
    let (registry, prefix) = text.split_once('/').unwrap_or((text, ""));
    Some(Destination {
        registry: registry.to_owned(),
        prefix: prefix.to_owned(),
    })
}

fn plan_for(
    images: &[ResolvedImage],
    destination: Option<&Destination>,
    state: &StateSnapshot,
) -> Plan {
    let graph = match destination {
        Some(destination) => compile(images, destination),
        None => compile_archive(images),
    };
    plan(&graph, state)
}

/// The plan as people read it: every action with its reason, each image's
/// change, the totals.
fn render(about: &str, plan: &Plan, names: &Names) -> String {
    let mut text = format!("# {about}\n\nactions ({}):\n", plan.actions.len());
    for planned in &plan.actions {
        // Where the bytes come from, so typed origins show.
        let origin = match &planned.action {
            Action::UploadBlob { source, .. } | Action::PushManifest { source, .. } => {
                format!(", read from {source}")
            }
            _ => String::new(),
        };
        writeln!(
            text,
            "  {}  [{}{origin}]",
            planned.action.describe(),
            planned.reason.describe()
        )
        .unwrap();
    }
    text.push_str("\nimages:\n");
    for image in &plan.images {
        writeln!(
            text,
            "  {} -> {}: {:?}, {} actions, {} bytes{}",
            image.name,
            image.destination,
            image.change,
            image.actions,
            image.bytes,
            image
                .reason
                .as_deref()
                .map(|reason| format!(" ({reason})"))
                .unwrap_or_default()
        )
        .unwrap();
    }
    let totals = serde_json::to_value(&plan.totals).unwrap();
    text.push_str("\ntotals:\n");
    for (key, value) in totals.as_object().unwrap() {
        writeln!(text, "  {key}: {value}").unwrap();
    }
    names.readable(&text)
}

fn run_case(folder: &Path) -> String {
    let images: ImagesFile = serde_yaml::from_str(
        &std::fs::read_to_string(folder.join("images.yaml")).expect("images.yaml"),
    )
    .unwrap_or_else(|error| panic!("{}: images.yaml: {error}", folder.display()));
    let state_file: StateFile = match std::fs::read_to_string(folder.join("state.yaml")) {
        Ok(text) => serde_yaml::from_str(&text)
            .unwrap_or_else(|error| panic!("{}: state.yaml: {error}", folder.display())),
        Err(_) => StateFile::default(),
    };
    let destination = destination_of(&images.destination);
    let mut names = Names::default();
    let mut state = StateSnapshot::default();
    for earlier in &state_file.applied {
        let earlier: Vec<ResolvedImage> = earlier
            .iter()
            .map(|image| resolved(image, &mut names))
            .collect();
        let earlier_plan = plan_for(&earlier, destination.as_ref(), &state);
        apply(&earlier_plan, &mut state);
    }
    for (repository, manifest) in &state_file.missing {
        state
            .missing
            .insert((repository.clone(), names.digest(manifest)));
    }
    for (repository, blob) in &state_file.missing_blobs {
        state
            .missing_blobs
            .insert((repository.clone(), names.digest(blob)));
    }
    let now: Vec<ResolvedImage> = images
        .images
        .iter()
        .map(|image| resolved(image, &mut names))
        .collect();
    let plan = plan_for(&now, destination.as_ref(), &state);
    render(&images.about, &plan, &names)
}

fn case_folders() -> Vec<PathBuf> {
    let root = Path::new(env!("CARGO_MANIFEST_DIR")).join("tests/cases");
    let mut folders: Vec<PathBuf> = std::fs::read_dir(&root)
        .expect("planner/tests/cases")
        .map(|entry| entry.unwrap().path())
        .filter(|path| path.is_dir())
        .collect();
    folders.sort();
    folders
}

#[test]
fn every_case_plans_as_its_golden_says() {
    let bless = std::env::var_os("FERRY_BLESS").is_some();
    let folders = case_folders();
    assert!(folders.len() >= 8, "the cases are missing: {folders:?}");
    let mut differ = Vec::new();
    for folder in folders {
        let rendered = run_case(&folder);
        let golden = folder.join("plan.txt");
        if bless {
            std::fs::write(&golden, &rendered).unwrap();
            continue;
        }
        let expected = std::fs::read_to_string(&golden).unwrap_or_default();
        if expected != rendered {
            differ.push(format!(
                "{}:\n--- expected\n{expected}\n--- planned\n{rendered}",
                folder.display()
            ));
        }
    }
    assert!(
        differ.is_empty(),
        "plans differ from their goldens (FERRY_BLESS=1 to accept):\n{}",
        differ.join("\n")
    );
}
