//! The crate's public data: what a delivery is made of, how it is split,
//! and what reading, verifying and importing a folder report.

use std::collections::BTreeMap;

use ferry_schemas::Digest;

/// One image of the image set, as the caller resolved it.
#[derive(Clone, Debug, PartialEq, Eq, serde::Serialize, serde::Deserialize)]
pub struct ImageRecord {
    /// The image as the configuration names it, e.g.
    /// `quay.io/ferry-demo/app:1.0` or `quay.io/x/y@sha256:...`.
    pub name: String,
    /// Its top manifest.
    pub digest: Digest,
    pub media_type: String,
    pub size: u64,
}

/// A manifest to ship, with its exact bytes.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct ManifestEntry {
    pub digest: Digest,
    pub media_type: String,
    pub bytes: Vec<u8>,
}

/// A blob to ship; its bytes are read from the blob store.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct BlobEntry {
    pub digest: Digest,
    pub size: u64,
}

/// Everything one delivery holds (the caller decides what is new).
#[derive(Clone, Debug)]
pub struct DeliveryInput {
    /// 1, 2, 3, ...
    pub delivery: u32,
    /// The delivery before it (`None` for the first).
    pub previous: Option<u32>,
    /// File number of its first segment (continues across deliveries).
    pub first_segment: u32,
    /// The largest segment file allowed, tar overhead included.
    pub max_segment_bytes: u64,
    /// Fail instead of warning when one blob cannot fit in a segment.
    pub strict: bool,
    /// The ImageSetConfiguration as given.
    pub config_text: String,
    /// The plan (no timestamps, no local paths).
    pub plan_json: String,
    /// Every image of the image set (`index.json` lists them all, even if
    /// their blobs shipped earlier).
    pub images: Vec<ImageRecord>,
    /// `inputs.json`: what the collectors read, opaque to the archive
    /// (`None`: no such entry).
    pub inputs: Option<Vec<u8>>,
    /// Manifests to ship in this delivery.
    pub manifests: Vec<ManifestEntry>,
    /// Blobs to ship in this delivery, read from the blob store.
    pub blobs: Vec<BlobEntry>,
}

/// How a delivery is split into segment files.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct DeliveryLayout {
    pub segments: Vec<SegmentLayout>,
    /// One line per blob that got a segment of its own because it is larger
    /// than `max_segment_bytes` allows.
    pub warnings: Vec<String>,
    /// Sum of the segment file sizes.
    pub total_bytes: u64,
}

/// One segment file of a delivery.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct SegmentLayout {
    /// The file number (`mirror_{number:06}.tar`).
    pub number: u32,
    pub file_name: String,
    /// The exact size of the file.
    pub bytes: u64,
    /// Tar entries in the file (metadata included).
    pub entries: usize,
}

/// What one delivery in a folder holds, from its metadata.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct DeliverySummary {
    pub delivery: u32,
    pub previous: Option<u32>,
    /// Segment file names, in order.
    pub segments: Vec<String>,
    pub config_text: String,
    /// The image set as of this delivery.
    pub images: Vec<ImageRecord>,
    /// Blob entries (manifests not counted).
    pub blob_count: usize,
    /// Manifest entries.
    pub manifest_count: usize,
    /// Sum of the segment file sizes.
    pub bytes: u64,
    /// `inputs.json` (digest-checked), when the delivery carries one.
    pub inputs: Option<Vec<u8>>,
}

/// What [`crate::verify_folder`] checked.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct VerifyReport {
    pub deliveries: Vec<DeliverySummary>,
    /// Bytes re-hashed (entry contents).
    pub bytes_checked: u64,
    /// Entries re-hashed (metadata included).
    pub entries_checked: usize,
}

/// What [`crate::import_folder`] did, or what [`crate::preview_import`]
/// checked.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct ImportReport {
    /// Deliveries imported (or checked by a preview), in order.
    pub deliveries: Vec<DeliverySummary>,
    /// Every image record the folder's deliveries hold, by name (sorted),
    /// each as the newest delivery that names it recorded it.
    pub images: Vec<ImageRecord>,
    /// Media type of every manifest of those deliveries, by digest.
    pub manifest_media_types: BTreeMap<Digest, String>,
    /// A preview's manifests, verified, by digest: their bytes. Empty after
    /// an import (the bytes are then in the blob store).
    pub manifests: BTreeMap<Digest, Vec<u8>>,
    /// Blobs and manifests newly written to the blob store (none for a
    /// preview).
    pub blobs_imported: usize,
    /// Bytes newly written to the blob store.
    pub bytes_imported: u64,
}

/// A blob or manifest a delivery carries, as its segment table lists it.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct ContentEntry {
    pub digest: Digest,
    pub size: u64,
    /// Set for manifests, `None` for blobs.
    pub media_type: Option<String>,
}

/// A whole delivery found in a folder, with everything it carries: enough
/// to rebuild the record of what it shipped from the segments alone.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct DeliveryContents {
    pub summary: DeliverySummary,
    /// Its segment files' numbers, in position order.
    pub segment_numbers: Vec<u32>,
    /// Every blob and manifest, in file order.
    pub content: Vec<ContentEntry>,
}

/// What [`crate::survey_folder`] found for one delivery (or one segment
/// file that could not be read as part of any).
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum SurveyedDelivery {
    /// Every segment is present and they agree (structure checked, content
    /// not re-hashed).
    Whole(DeliveryContents),
    /// Some of its segments are present, but not all, or they disagree.
    NotWhole {
        delivery: u32,
        /// The segment files found, by name.
        present: Vec<String>,
        problem: String,
    },
    /// A segment file whose own structure is refused.
    Unreadable { file_name: String, problem: String },
}
