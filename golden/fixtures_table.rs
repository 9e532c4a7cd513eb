//! The accept/reject table over every ImageSetConfiguration and
//! DeleteImageSetConfiguration in `shared/fixtures/openshift+oc-mirror/`
//! (Go templates excluded): ferry's verdict on each file must match
//! `schemas/fixtures-table.md`, and every such file must have a row.

use std::collections::BTreeMap;
use std::path::{Path, PathBuf};

use ferry_schemas::load_any_configuration;

use crate::support::workspace_root;

fn fixtures_root() -> PathBuf {
    workspace_root().join("../shared/fixtures")
}

/// Every ISC/DISC under the oc-mirror fixtures, relative to `shared/fixtures`.
fn configuration_files() -> Vec<String> {
    fn walk(folder: &Path, found: &mut Vec<PathBuf>) {
        let Ok(entries) = std::fs::read_dir(folder) else {
            return;
        };
        for entry in entries.flatten() {
            let path = entry.path();
            if path.is_dir() {
                walk(&path, found);
            } else if path
                .extension()
                .is_some_and(|ext| ext == "yaml" || ext == "yml")
            {
                found.push(path);
            }
        }
    }
    let root = fixtures_root();
    let mut found = Vec::new();
    walk(&root.join("openshift+oc-mirror"), &mut found);
    let mut files: Vec<String> = found
        .into_iter()
        .filter(|path| {
            let text = std::fs::read_to_string(path).unwrap_or_default();
            let is_configuration = text.lines().any(|line| {
                let line = line.trim();
                line == "kind: ImageSetConfiguration" || line == "kind: DeleteImageSetConfiguration"
            });
            is_configuration && !text.contains("{{")
        })
        .map(|path| {
            path.strip_prefix(&root)
                .expect("under the fixtures root")
                .to_string_lossy()
                .into_owned()
        })
        .collect();
    files.sort();
    files
}

/// The table's rows: path → verdict (`accept` or `reject`).
fn table() -> BTreeMap<String, String> {
    let text = std::fs::read_to_string(workspace_root().join("schemas/fixtures-table.md"))
        .expect("schemas/fixtures-table.md exists");
    text.lines()
        .filter(|line| line.starts_with("| `"))
        .map(|line| {
            let cells: Vec<&str> = line.split('|').map(str::trim).collect();
            (cells[1].trim_matches('`').to_owned(), cells[3].to_owned())
        })
        .collect()
}

#[test]
fn every_fixture_configuration_gets_the_verdict_in_the_table() {
    let root = fixtures_root();
    if !root.exists() {
        panic!(
            "{} is missing: the fixtures sit beside the checkout",
            root.display()
        );
    }
    let files = configuration_files();
    assert!(
        files.len() > 90,
        "found only {} configurations",
        files.len()
    );
    let table = table();
    let mut failures = Vec::new();
    for file in &files {
        let text = std::fs::read_to_string(root.join(file)).expect("readable");
        let verdict = match load_any_configuration(&text) {
            Ok(_) => "accept",
            Err(_) => "reject",
        };
        match table.get(file) {
            None => failures.push(format!(
                "{file}: no row in schemas/fixtures-table.md (ferry says {verdict})"
            )),
            Some(expected) if expected != verdict => {
                failures.push(format!(
                    "{file}: the table says {expected}, ferry says {verdict}"
                ));
            }
            Some(_) => {}
        }
    }
    for row in table.keys() {
        if !files.contains(row) {
            failures.push(format!(
                "{row}: a row for a file that is not a fixture configuration"
            ));
        }
    }
    assert!(failures.is_empty(), "{}", failures.join("\n"));
}

/// Prints each file's verdict and first problem; run with `--ignored
/// --nocapture` when updating the table.
#[test]
#[ignore = "a tool for updating the table, not a check"]
fn print_verdicts() {
    let root = fixtures_root();
    for file in configuration_files() {
        let text = std::fs::read_to_string(root.join(&file)).expect("readable");
        match load_any_configuration(&text) {
            Ok(_) => println!("accept\t{file}"),
            Err(problems) => println!("reject\t{file}\t{}", problems[0].message),
        }
    }
}
