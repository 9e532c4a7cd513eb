//! Disk-to-mirror's source: the deliveries in a folder, verified and
//! imported into the cache (or, for a plan, verified with their manifests
//! kept in memory and the cache only read), the manifests an earlier
//! delivery brought that the cache lost read back from the destination,
//! and the configuration's images resolved from the deliveries, with no
//! network but the destination. The rest is the registry path of
//! [`crate::workflow::to_registry`].

use std::path::Path;

use ferry_planner::Destination;
use ferry_registry::RegistriesConf;
use ferry_store::BlobStore;

use crate::disk::{self, DeliveredManifests};
use crate::workflow::collect::{CollectContext, ImageSet};
use crate::workflow::error::{Result, WorkflowError};
use crate::workflow::options::{PlanOptions, TransferOptions};
use crate::workflow::to_disk::{Notice, clean_cache_temporary, open_cache};
use crate::workflow::to_registry::{LocalSource, Sourced, resolve_options, source_client};
use crate::workflow::workspace::{Workspace, refuse_filesystem_root};

/// What disk-to-mirror does with the deliveries before resolving.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Deliveries {
    /// `plan` and `mirror --dry-run`: verify them and read their manifests
    /// into memory; the cache is only read.
    Verify,
    /// `mirror` and `apply`: verify them and import them into the cache.
    Import,
}

/// The deliveries resolved, and what the user should read about them.
pub struct FromDeliveries {
    pub sourced: Sourced,
    pub notices: Vec<Notice>,
}

/// What disk-to-mirror collects from the deliveries themselves: operator
/// catalogs (`mirror.operators` of this side's configuration).
pub struct CollectFromDeliveries<'a> {
    pub mirror: &'a ferry_schemas::config::Mirror,
    pub context: &'a CollectContext,
}

/// Verifies the deliveries in `folder` and imports them into the cache
/// `cache` (or, for [`Deliveries::Verify`], keeps their manifests in
/// memory and writes nothing to the cache), collects into `image_set`
/// what `collect_again` names from the delivered content (operator
/// catalogs), then resolves `image_set` from them: its copied images and
/// its built ones (`image_set.built`, matched by name; only their names,
/// destinations and categories are read, for the delivery holds their
/// manifests and blobs).
#[allow(clippy::too_many_arguments)]
pub async fn from_deliveries(
    folder: &Path,
    destination: &Destination,
    image_set: &mut ImageSet,
    collect_again: Option<CollectFromDeliveries<'_>>,
    transfer: &TransferOptions,
    planning: &PlanOptions,
    cache: &Path,
    deliveries: Deliveries,
) -> Result<FromDeliveries> {
    refuse_filesystem_root(folder)?;
    if !folder.is_dir() {
        return Err(WorkflowError::input(format!(
            "{} is not a folder",
            folder.display()
        )));
    }
    let workspace = Workspace::in_folder(folder);
    workspace.create()?;
    let applied = workspace
        .open_state()?
        .applied_deliveries(&destination.display())
        .map_err(WorkflowError::environment)?;
    let mut notices = Vec::new();
    let refused = |cause: ferry_archive::ArchiveError| {
        WorkflowError::input(format!("{cause}\nnothing was pushed"))
    };
    let (mut report, blobs) = match deliveries {
        Deliveries::Import => {
            let cache = open_cache(cache)?;
            notices.extend(clean_cache_temporary(&cache));
            let report =
                ferry_archive::import_folder(folder, &applied, cache.blobs()).map_err(refused)?;
            (report, cache.blobs().clone())
        }
        Deliveries::Verify => (
            ferry_archive::preview_import(folder, &applied).map_err(refused)?,
            BlobStore::read_only(cache),
        ),
    };
    if report.deliveries.is_empty() && report.images.is_empty() {
        return Err(WorkflowError::input(format!(
            "no tar archives matching \"mirror_[0-9]{{6}}\\.tar\" found in \"{}\"",
            folder.display()
        )));
    }
    if !report.deliveries.is_empty() {
        let numbers: Vec<String> = report
            .deliveries
            .iter()
            .map(|delivery| delivery.delivery.to_string())
            .collect();
        notices.push(Notice::Info(match deliveries {
            Deliveries::Import => format!(
                "verified deliveries {}: {} blobs and manifests ({}) new to the cache {}",
                numbers.join(", "),
                report.blobs_imported,
                crate::workflow::mebibytes(report.bytes_imported),
                blobs.root().display()
            ),
            Deliveries::Verify => format!(
                "verified deliveries {}: nothing imported, the cache {} is left as it is",
                numbers.join(", "),
                blobs.root().display()
            ),
        }));
    }
    let mut delivered = match deliveries {
        Deliveries::Import => DeliveredManifests::imported(blobs.clone()),
        Deliveries::Verify => {
            DeliveredManifests::held(std::mem::take(&mut report.manifests), blobs.clone())
        }
    };
    // Built images the deliveries carry (matched by name), and those built
    // here (the catalogs rebuilt from the delivered originals).
    let delivered_built = image_set.built.len();
    if let Some(again) = collect_again {
        let warnings = image_set.warnings.len();
        crate::workflow::operators::collect_delivered(
            again.mirror,
            again.context,
            &report.images,
            &delivered,
            deliveries == Deliveries::Import,
            image_set,
        )?;
        notices.extend(
            image_set.warnings[warnings..]
                .iter()
                .map(|warning| Notice::Warning(warning.clone())),
        );
    }
    let image_set = &*image_set;
    let options = resolve_options(planning, &destination.prefix);
    let requests = &image_set.images;
    let client = || {
        source_client(
            transfer,
            &RegistriesConf::default(),
            &[],
            (!transfer.destination_tls_verify).then_some(destination.registry.as_str()),
        )
    };
    // A client of its own for the recovery: the returned one starts with
    // no pooled connection, whichever runtime plans and runs with it.
    let recovered = disk::recover_from_destination(
        &client(),
        &destination.registry,
        requests,
        &report.images,
        &mut delivered,
        planning.remove_signatures,
    )
    .await;
    if recovered > 0 {
        notices.push(Notice::Info(format!(
            "{recovered} manifests of images an earlier delivery brought were missing from the cache {}: read from the destination{}",
            blobs.root().display(),
            match deliveries {
                Deliveries::Import => "",
                Deliveries::Verify => " (kept in memory, not stored)",
            }
        )));
    }
    let mut resolution = disk::resolve_from_deliveries(
        requests,
        &report.images,
        &report.manifest_media_types,
        &delivered,
        options.remove_signatures,
    )
    .await;
    // Built images by name, as the delivery recorded them: every blob of
    // theirs is in the cache now, whatever its source was where they were
    // built.
    disk::resolve_built_from_deliveries(
        &image_set.built[..delivered_built],
        &report.images,
        &report.manifest_media_types,
        &delivered,
        &mut resolution,
    )
    .await;
    crate::workflow::built::add_to_resolution(&mut resolution, &image_set.built[delivered_built..]);
    resolution.blocked = image_set.blocked.clone();
    resolution.needs = image_set.needs.clone();
    crate::workflow::needs::drop_unmet(&mut resolution, &image_set.needs);
    Ok(FromDeliveries {
        sourced: Sourced {
            workspace: workspace.root().to_path_buf(),
            client: client(),
            resolution,
            checked: Default::default(),
            local: Some(LocalSource {
                blobs,
                deliveries: report
                    .deliveries
                    .iter()
                    .map(|delivery| delivery.delivery)
                    .collect(),
            }),
        },
        notices,
    })
}
