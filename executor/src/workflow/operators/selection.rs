//! Which bundles the image set selects, per catalog, and which the last
//! run to a destination mirrored: kept in the workspace
//! (`working-dir/operators/bundles.json`, by destination), so a plan says
//! per catalog and package which bundles are new (`+ foo.v0.3.2 (new
//! bundle in channel beta)`) and which are no longer selected (`-
//! foo.v0.2.0 (no longer selected)`). Each bundle is recorded with its
//! version, bundle image and related images: what `ferry delete` lists for
//! `delete.operators`, offline (`workflow::delete::operators`).

use std::collections::{BTreeMap, BTreeSet};
use std::path::PathBuf;

use ferry_planner::{BundleChange, BundleChangeKind};
use serde::{Deserialize, Serialize};

use crate::workflow::error::{Result, WorkflowError};
use crate::workflow::workspace::Workspace;

/// A bundle a catalog's filter selects.
#[derive(Clone, Debug, Default, PartialEq, Eq, PartialOrd, Ord, Serialize, Deserialize)]
pub struct SelectedBundle {
    /// The catalog as the configuration names it.
    pub catalog: String,
    pub package: String,
    pub bundle: String,
    /// The kept channels holding it.
    pub channels: Vec<String>,
    /// The `olm.package` version, as written (empty when the catalog gives none).
    #[serde(default, skip_serializing_if = "String::is_empty")]
    pub version: String,
    /// The bundle image, as the catalog names it (empty in files written
    /// before ferry recorded it).
    #[serde(default, skip_serializing_if = "String::is_empty")]
    pub image: String,
    /// Its related images, as the catalog names them.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub related_images: Vec<String>,
}

/// The file, by destination (`registry[/prefix]`).
type Recorded = BTreeMap<String, Vec<SelectedBundle>>;

fn file(workspace: &Workspace) -> PathBuf {
    workspace.root().join("operators").join("bundles.json")
}

fn read(workspace: &Workspace) -> Result<Recorded> {
    let path = file(workspace);
    match std::fs::read(&path) {
        Ok(bytes) => serde_json::from_slice(&bytes).map_err(|cause| {
            WorkflowError::environment(format!("{} is not readable: {cause}", path.display()))
        }),
        Err(cause) if cause.kind() == std::io::ErrorKind::NotFound => Ok(Recorded::new()),
        Err(cause) => Err(WorkflowError::environment(format!(
            "cannot read {}: {cause}",
            path.display()
        ))),
    }
}

/// The bundles the last run to `destination` mirrored (none before the
/// first).
pub fn recorded(workspace: &Workspace, destination: &str) -> Result<Vec<SelectedBundle>> {
    Ok(read(workspace)?.remove(destination).unwrap_or_default())
}

/// Records after a run to `destination` the bundles of `selected` whose
/// catalog reached it; a catalog in `failed` keeps what was recorded
/// before (the destination still serves the earlier catalog).
pub fn record(
    workspace: &Workspace,
    destination: &str,
    selected: &[SelectedBundle],
    failed: &BTreeSet<&str>,
) -> Result<()> {
    let mut all = read(workspace)?;
    let before = all.remove(destination).unwrap_or_default();
    let mut now: Vec<SelectedBundle> = before
        .into_iter()
        .filter(|bundle| failed.contains(bundle.catalog.as_str()))
        .chain(
            selected
                .iter()
                .filter(|bundle| !failed.contains(bundle.catalog.as_str()))
                .cloned(),
        )
        .collect();
    now.sort();
    now.dedup();
    all.insert(destination.to_owned(), now);
    write(workspace, &all)
}

fn write(workspace: &Workspace, all: &Recorded) -> Result<()> {
    let path = file(workspace);
    let text = serde_json::to_vec_pretty(all)
        .map_err(|cause| WorkflowError::internal(cause.to_string()))?;
    // Replaced whole: deletes read this record, and a run killed while
    // writing must not leave half of it.
    crate::atomic_file::write(&path, &text).map_err(|cause| {
        WorkflowError::environment(format!("cannot write {}: {cause}", path.display()))
    })
}

/// Forgets the bundles `gone` of what the runs to `destination` recorded
/// (a delete removed their images there), so the next plan names them as
/// new again and the next delete does not list them.
pub fn forget(workspace: &Workspace, destination: &str, gone: &[SelectedBundle]) -> Result<()> {
    if gone.is_empty() {
        return Ok(());
    }
    let mut all = read(workspace)?;
    let Some(recorded) = all.get_mut(destination) else {
        return Ok(());
    };
    recorded.retain(|bundle| !gone.contains(bundle));
    write(workspace, &all)
}

/// The bundles `selected` adds to what `recorded` holds, and those it no
/// longer selects (of the catalogs still in the image set), by catalog,
/// package and bundle.
pub fn changes(recorded: &[SelectedBundle], selected: &[SelectedBundle]) -> Vec<BundleChange> {
    let key = |bundle: &SelectedBundle| {
        (
            bundle.catalog.clone(),
            bundle.package.clone(),
            bundle.bundle.clone(),
        )
    };
    let before: BTreeMap<_, &SelectedBundle> = recorded
        .iter()
        .map(|bundle| (key(bundle), bundle))
        .collect();
    let now: BTreeMap<_, &SelectedBundle> = selected
        .iter()
        .map(|bundle| (key(bundle), bundle))
        .collect();
    let catalogs: BTreeSet<&str> = selected
        .iter()
        .map(|bundle| bundle.catalog.as_str())
        .collect();
    let mut changes: Vec<BundleChange> = now
        .iter()
        .filter(|(key, _)| !before.contains_key(*key))
        .map(|(_, bundle)| BundleChange {
            catalog: bundle.catalog.clone(),
            package: bundle.package.clone(),
            bundle: bundle.bundle.clone(),
            change: BundleChangeKind::New,
            channels: bundle.channels.clone(),
        })
        .chain(
            before
                .iter()
                .filter(|(key, bundle)| {
                    !now.contains_key(*key) && catalogs.contains(bundle.catalog.as_str())
                })
                .map(|(_, bundle)| BundleChange {
                    catalog: bundle.catalog.clone(),
                    package: bundle.package.clone(),
                    bundle: bundle.bundle.clone(),
                    change: BundleChangeKind::NoLongerSelected,
                    channels: Vec::new(),
                }),
        )
        .collect();
    changes.sort_by(|left, right| {
        (&left.catalog, &left.package, &left.bundle).cmp(&(
            &right.catalog,
            &right.package,
            &right.bundle,
        ))
    });
    changes
}

#[cfg(test)]
mod tests {
    use super::*;

    fn bundle(catalog: &str, name: &str, channels: &[&str]) -> SelectedBundle {
        SelectedBundle {
            catalog: catalog.to_owned(),
            package: name.split('.').next().unwrap().to_owned(),
            bundle: name.to_owned(),
            channels: channels
                .iter()
                .map(|channel| (*channel).to_owned())
                .collect(),
            ..SelectedBundle::default()
        }
    }

    #[test]
    fn a_plan_names_new_bundles_and_those_no_longer_selected_and_a_run_records_them() {
        let folder = tempfile::tempdir().unwrap();
        let workspace = Workspace::in_folder(folder.path());
        assert!(recorded(&workspace, "r/m").unwrap().is_empty());
        let first = [
            bundle("c", "foo.v0.2.0", &["beta"]),
            bundle("c", "foo.v0.3.1", &["beta"]),
            bundle("gone", "bar.v1.0.0", &["stable"]),
        ];
        record(&workspace, "r/m", &first, &BTreeSet::new()).unwrap();
        let second = [
            bundle("c", "foo.v0.3.1", &["beta"]),
            bundle("c", "foo.v0.3.2", &["beta", "stable"]),
        ];
        let changes = changes(&recorded(&workspace, "r/m").unwrap(), &second);
        let shown: Vec<(String, BundleChangeKind, Vec<String>)> = changes
            .into_iter()
            .map(|change| (change.bundle, change.change, change.channels))
            .collect();
        assert_eq!(
            shown,
            [
                (
                    "foo.v0.2.0".to_owned(),
                    BundleChangeKind::NoLongerSelected,
                    vec![]
                ),
                (
                    "foo.v0.3.2".to_owned(),
                    BundleChangeKind::New,
                    vec!["beta".to_owned(), "stable".to_owned()]
                ),
            ],
            "a catalog that left the image set is not listed bundle by bundle"
        );
        // A failed catalog keeps its record; another destination has none.
        record(&workspace, "r/m", &second, &BTreeSet::from(["c"])).unwrap();
        assert_eq!(recorded(&workspace, "r/m").unwrap().len(), 2);
        assert!(recorded(&workspace, "other").unwrap().is_empty());
    }
}
