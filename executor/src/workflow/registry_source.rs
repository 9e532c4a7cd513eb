//! Where a run to a registry takes its content from, chosen and built:
//! the deliveries of a disk folder (disk-to-mirror, through
//! [`from_deliveries`](crate::workflow::from_deliveries)) or the sources
//! through registries.conf with a workspace (mirror-to-mirror, through
//! [`to_registry::from_registries`]). Disk-to-mirror's release inputs (the
//! update graph answers and payload files the latest delivery carries) are
//! restored into the folder's working-dir here too, so its release
//! collector reads them offline.

use std::path::{Path, PathBuf};

use ferry_planner::Destination;

use crate::workflow::collect::{CollectContext, ImageSet};
use crate::workflow::error::{Result, WorkflowError};
use crate::workflow::from_deliveries::{self, CollectFromDeliveries, Deliveries};
use crate::workflow::options::{PlanOptions, TransferOptions};
use crate::workflow::to_disk::Notice;
use crate::workflow::to_registry::{self, Sourced};
use crate::workflow::workspace::Workspace;

/// Where a run to a registry takes its content from.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum RegistryOrigin {
    /// Disk-to-mirror (`--from file://DIR`): the deliveries in this folder,
    /// whose `working-dir/` is the workspace.
    Deliveries(PathBuf),
    /// Mirror-to-mirror (`--workspace file://DIR`): the sources through
    /// registries.conf, with the workspace in this folder.
    Registries(PathBuf),
}

impl RegistryOrigin {
    /// The folder holding the run's `working-dir/`.
    pub fn folder(&self) -> &Path {
        match self {
            RegistryOrigin::Deliveries(folder) | RegistryOrigin::Registries(folder) => folder,
        }
    }

    /// The run's workspace.
    pub fn workspace(&self) -> Workspace {
        Workspace::in_folder(self.folder())
    }
}

/// How the content of a run to a registry is read.
pub struct SourceOptions<'a> {
    pub transfer: &'a TransferOptions,
    pub planning: &'a PlanOptions,
    /// The cache folder (disk-to-mirror imports the deliveries into it).
    pub cache: &'a Path,
    /// Whether disk-to-mirror imports the deliveries or only verifies them.
    pub deliveries: Deliveries,
}

/// Resolves `image_set` from `origin` for `destination`. Disk-to-mirror
/// collects operator catalogs again from what the deliveries brought (by
/// this side's `mirror` configuration) before resolving, and says what it
/// verified and imported in the notices.
pub async fn source(
    origin: &RegistryOrigin,
    destination: &Destination,
    mirror: &ferry_schemas::config::Mirror,
    image_set: &mut ImageSet,
    options: &SourceOptions<'_>,
) -> Result<(Sourced, Vec<Notice>)> {
    match origin {
        RegistryOrigin::Deliveries(folder) => {
            let context = CollectContext {
                prefix: destination.prefix.clone(),
                max_nested_paths: options.planning.max_nested_paths,
                operators_from_deliveries: true,
                ..CollectContext::default()
            };
            let found = from_deliveries::from_deliveries(
                folder,
                destination,
                image_set,
                Some(CollectFromDeliveries {
                    mirror,
                    context: &context,
                }),
                options.transfer,
                options.planning,
                options.cache,
                options.deliveries,
            )
            .await?;
            Ok((found.sourced, found.notices))
        }
        RegistryOrigin::Registries(folder) => {
            let sourced = to_registry::from_registries(
                &Workspace::in_folder(folder),
                destination,
                image_set,
                options.transfer,
                options.planning,
            )
            .await?;
            Ok((sourced, Vec::new()))
        }
    }
}

/// Disk-to-mirror's release inputs: the latest delivery in `folder` that
/// carries `inputs.json` has its update graph answers and payload files
/// restored into the folder's working-dir, which is returned (the release
/// collector reads them from there, offline). `None` when no delivery
/// carries inputs (the collector then refuses).
pub fn restore_delivered_inputs(folder: &Path) -> Result<Option<Workspace>> {
    let deliveries = ferry_archive::read_folder(folder)
        .map_err(|cause| WorkflowError::input(cause.to_string()))?;
    let Some(inputs) = deliveries
        .iter()
        .rev()
        .find_map(|delivery| delivery.inputs.as_deref())
    else {
        return Ok(None);
    };
    let workspace = Workspace::in_folder(folder);
    workspace.create()?;
    crate::workflow::releases::restore_inputs(&workspace, inputs)?;
    Ok(Some(workspace))
}
