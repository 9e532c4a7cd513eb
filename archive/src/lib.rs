//! ferry's disk delivery format (specification below is filled in with the
//! format; see the module docs of `layout`, `tar_format`, `metadata`).

mod error;
mod layout;
mod metadata;
mod model;
mod read;
mod ref_name;
mod tar_format;
mod verify;
mod write;

use std::path::Path;

pub use error::{ArchiveError, Result};
pub use layout::layout;
pub use metadata::{IMAGE_NAME_ANNOTATION, REF_NAME_ANNOTATION};
pub use model::{
    BlobEntry, DeliveryInput, DeliveryLayout, DeliverySummary, ImageRecord, ImportReport,
    ManifestEntry, SegmentLayout, VerifyReport,
};
pub use ref_name::{is_valid_ref_name, oci_ref_name, oci_ref_names};
pub use verify::{import_folder, verify_folder};
pub use write::{partial_file_name, write_delivery};

/// The version of the format this crate writes and reads.
pub const FORMAT_VERSION: u32 = 1;

/// `mirror_{number:06}.tar`
pub fn segment_file_name(number: u32) -> String {
    format!("mirror_{number:06}.tar")
}

/// The number of a segment file name (`mirror_` and exactly 6 digits and
/// `.tar`), or `None` for any other name.
pub fn segment_number(file_name: &str) -> Option<u32> {
    let digits = file_name.strip_prefix("mirror_")?.strip_suffix(".tar")?;
    if digits.len() == 6 && digits.bytes().all(|byte| byte.is_ascii_digit()) {
        digits.parse().ok()
    } else {
        None
    }
}

/// What a folder holds, from metadata only (cheap; no re-hashing):
/// deliveries in order with their segments. Every segment's structure is
/// checked (headers, tables, completeness of each delivery).
pub fn read_folder(folder: &Path) -> Result<Vec<DeliverySummary>> {
    Ok(read::scan_folder(folder)?
        .iter()
        .map(read::ScannedDelivery::summary)
        .collect())
}
