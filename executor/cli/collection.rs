//! The collect stage on the command line, shared by every workflow that
//! mirrors (`mirror.rs` for registry destinations, `disk.rs` for
//! `file://`): the flags become a `CollectContext`, collection warnings are
//! printed, and a workflow error becomes its exit status.

use std::process::ExitCode;

use ferry_executor::workflow::{CollectContext, ImageSet};

use crate::arguments::MirrorArgs;
use crate::common::error;

/// The collect stage for a destination prefix. Releases are collected
/// with `releases` (mirror-to-mirror: the workspace keeps their graphs and
/// payload files; mirror-to-disk: the folder's working-dir); a release
/// error ends the command with the release exit bit. `plan_only`: a plan,
/// which leaves the cache as it is (built images' blobs are described, not
/// stored). A `file://` destination gets the original operator catalogs
/// (disk-to-mirror filters them again).
pub(crate) fn collect(
    arguments: &MirrorArgs,
    prefix: &str,
    config: &ferry_schemas::ImageSetConfiguration,
    releases: Option<ferry_executor::workflow::releases::ReleaseSources>,
    plan_only: bool,
) -> Result<ImageSet, ExitCode> {
    // Rebuilt catalogs' and the graph image's blobs go to the cache, and
    // every run keeps there what collectors read out of images (a delivery
    // packs them from there, a registry run uploads them from there);
    // nothing else needs it here (disk-to-mirror collects catalogs from
    // the deliveries, later, and names the delivered graph image).
    let to_disk = arguments
        .destination
        .as_deref()
        .is_some_and(|destination| destination.starts_with("file://"));
    // Operator catalogs and release payloads are read out of their
    // layers: the cache holds what is read, so the copy stage reads none
    // of it from the source again (and rebuilt catalogs and the graph
    // image are built into it).
    let reads_layers = !config.mirror.operators.is_empty() || config.mirror.platform.is_some();
    let cache = if !(reads_layers || to_disk) || arguments.from.is_some() {
        None
    } else if plan_only {
        Some(ferry_store::BlobStore::read_only(
            arguments.disk_options().cache,
        ))
    } else {
        let folder = arguments.disk_options().cache;
        Some(ferry_store::BlobStore::open(&folder).map_err(|cause| {
            error(format!(
                "cannot open the cache {}: {cause}",
                folder.display()
            ))
        })?)
    };
    let context = CollectContext {
        prefix: prefix.to_owned(),
        max_nested_paths: arguments.max_nested_paths,
        releases,
        // Disk-to-mirror reaches no source registry.
        registry: arguments
            .from
            .is_none()
            .then(|| arguments.transfer_options().catalog_access()),
        cache,
        operators_from_deliveries: arguments.from.is_some(),
        deliver_original_catalogs: to_disk,
        plan_only,
        cache_read_blobs: true,
        cached_reads: Default::default(),
    };
    let image_set = ferry_executor::workflow::collect(config, &context).map_err(collect_error)?;
    for warning in &image_set.warnings {
        eprintln!("warning: {warning}");
    }
    Ok(image_set)
}

/// A workflow error: exit 1, or the category's exit bit (a release error is
/// fatal with exit 2, notes §7); nothing was pushed or delivered.
pub(crate) fn collect_error(cause: ferry_executor::workflow::WorkflowError) -> ExitCode {
    match cause.category {
        Some(category) => {
            eprintln!("error: {cause}\nnothing was pushed");
            ferry_executor::workflow::exit_bits([category]).into()
        }
        None => error(cause),
    }
}
