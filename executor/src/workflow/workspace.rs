//! The workspace: the `working-dir/` folder of a mirror-to-mirror
//! `--workspace file://DIR` or of a disk folder `file://DIR`, and every
//! path in it. Nothing else in ferry spells a path under `working-dir/`.
//!
//! | path | what |
//! |---|---|
//! | `state.db` | the workspace state (completed actions, tags, runs, resolutions, deliveries) |
//! | `logs/ferry-<time>.log` | the log of a `mirror` or `apply` run |
//! | `logs/mirroring_errors_<time>.txt` | the images that failed in a run, one line each |
//! | `dry-run/` | `mapping.txt` (and for mirror-to-disk `missing.txt`) of the last dry run |
//! | `cluster-resources/` | IDMS/ITMS, CatalogSource and ClusterCatalog, the release signature ConfigMap (`signature-configmap.{json,yaml}`; later UpdateService) |
//! | `delete/` | `delete-images[-ID].yaml` and `delete-imageset-config[-ID].yaml` of `ferry delete --generate` |
//! | `signatures/` | release payload signatures as fetched and verified, `<tag>-sha256-<hex>` (notes §5.3) |

use std::path::{Path, PathBuf};

use ferry_store::WorkspaceState;

use crate::workflow::error::{Result, WorkflowError};

/// A `working-dir/` folder.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Workspace {
    root: PathBuf,
}

impl Workspace {
    /// The workspace of folder `folder`: `folder/working-dir`, or `folder`
    /// itself when it is a `working-dir` already.
    pub fn in_folder(folder: impl AsRef<Path>) -> Workspace {
        let folder = folder.as_ref();
        let root = if folder.ends_with("working-dir") {
            folder.to_path_buf()
        } else {
            folder.join("working-dir")
        };
        Workspace { root }
    }

    /// The `working-dir/` folder itself.
    pub fn root(&self) -> &Path {
        &self.root
    }

    /// Creates the folder (and its parents) when missing.
    pub fn create(&self) -> Result<()> {
        std::fs::create_dir_all(&self.root).map_err(|cause| {
            WorkflowError::environment(format!(
                "cannot create the workspace {}: {cause}",
                self.root.display()
            ))
        })
    }

    /// The workspace state's database file.
    pub fn state_file(&self) -> PathBuf {
        self.root.join("state.db")
    }

    /// Opens (creating when missing) the workspace state.
    pub fn open_state(&self) -> Result<WorkspaceState> {
        WorkspaceState::open(self.state_file()).map_err(WorkflowError::environment)
    }

    /// Where run logs and error files go.
    pub fn logs(&self) -> PathBuf {
        self.root.join("logs")
    }

    /// The error file of a run that started at `timestamp`
    /// (`YYYYMMDD_HHMMSS`), named as oc-mirror names it.
    pub fn errors_file(&self, timestamp: &str) -> PathBuf {
        self.logs()
            .join(format!("mirroring_errors_{timestamp}.txt"))
    }

    /// The folder a dry run writes its files to.
    pub fn dry_run(&self) -> PathBuf {
        self.root.join("dry-run")
    }

    /// The folder `ferry delete --generate` writes its files to.
    pub fn delete_folder(&self) -> PathBuf {
        self.root.join("delete")
    }

    /// The folder of verified release signatures (`<tag>-sha256-<hex>`).
    pub fn signatures(&self) -> PathBuf {
        self.root.join("signatures")
    }

    /// The folder of the resources users `oc apply -f` on their clusters.
    pub fn cluster_resources(&self) -> PathBuf {
        self.root.join("cluster-resources")
    }
}

/// A folder of deliveries or a workspace holds `working-dir/` (and the
/// segments): the filesystem root (`file:///`) is never one.
pub fn refuse_filesystem_root(folder: &Path) -> Result<()> {
    let root = folder.components().all(|part| {
        matches!(
            part,
            std::path::Component::RootDir | std::path::Component::CurDir
        )
    });
    if folder.has_root() && root {
        return Err(WorkflowError::input(format!(
            "file://{} names the filesystem root, which cannot hold deliveries or a workspace (ferry would write {}working-dir there); name a folder of its own, e.g. file:///srv/ferry",
            folder.display(),
            folder.display()
        )));
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_folder_or_its_working_dir_name_the_same_workspace() {
        let workspace = Workspace::in_folder("/data/mirror");
        assert_eq!(workspace.root(), Path::new("/data/mirror/working-dir"));
        assert_eq!(Workspace::in_folder("/data/mirror/working-dir"), workspace);
        assert_eq!(
            workspace.state_file(),
            Path::new("/data/mirror/working-dir/state.db")
        );
        assert_eq!(
            workspace.errors_file("20261202_101500"),
            Path::new("/data/mirror/working-dir/logs/mirroring_errors_20261202_101500.txt")
        );
        assert_eq!(
            workspace.cluster_resources(),
            Path::new("/data/mirror/working-dir/cluster-resources")
        );
    }

    #[test]
    fn the_filesystem_root_is_refused_and_a_folder_is_not() {
        assert!(refuse_filesystem_root(Path::new("/")).is_err());
        assert!(refuse_filesystem_root(Path::new("/./")).is_err());
        assert!(refuse_filesystem_root(Path::new("/srv/ferry")).is_ok());
        assert!(refuse_filesystem_root(Path::new("disk")).is_ok());
    }
}
