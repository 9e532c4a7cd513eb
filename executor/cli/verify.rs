//! `ferry verify file://DIR`: re-hashes every byte of every delivery in a
//! folder, offline.

use std::collections::BTreeSet;
use std::path::PathBuf;
use std::process::ExitCode;

use ferry_executor::workflow::Workspace;
use ferry_store::WorkspaceState;

use crate::common::{counted, error, mebibytes};

/// `ferry verify`.
#[derive(Debug, clap::Args)]
pub struct Args {
    /// The folder with the deliveries: `file://DIR`.
    folder: String,
}

/// `ferry verify file://DIR`: re-hashes every byte of every delivery.
pub fn run(arguments: &Args) -> ExitCode {
    let Some(folder) = arguments.folder.strip_prefix("file://") else {
        return error("name the folder as file://DIR");
    };
    let folder = PathBuf::from(folder);
    // Deliveries this workspace wrote earlier may have been carried across
    // already; their absence is not an error.
    let state_path = Workspace::in_folder(&folder).state_file();
    let known: BTreeSet<u32> = if state_path.is_file() {
        WorkspaceState::open(&state_path)
            .and_then(|state| state.deliveries())
            .map(|deliveries| deliveries.iter().map(|delivery| delivery.number).collect())
            .unwrap_or_default()
    } else {
        BTreeSet::new()
    };
    match ferry_archive::verify_folder(&folder, &known) {
        Ok(report) => {
            for delivery in &report.deliveries {
                println!(
                    "delivery {}: {} ({}, {}, {}, {})",
                    delivery.delivery,
                    delivery.segments.join(", "),
                    counted(delivery.blob_count as u64, "blob", "blobs"),
                    counted(delivery.manifest_count as u64, "manifest", "manifests"),
                    counted(delivery.images.len() as u64, "image", "images"),
                    mebibytes(delivery.bytes)
                );
            }
            println!(
                "{}: {} verified: {} entries, {} re-hashed",
                folder.display(),
                counted(report.deliveries.len() as u64, "delivery", "deliveries"),
                report.entries_checked,
                mebibytes(report.bytes_checked)
            );
            ExitCode::SUCCESS
        }
        Err(cause) => error(format!("{}: {cause}", folder.display())),
    }
}
