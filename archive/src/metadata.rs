//! The metadata files inside segments: their paths and JSON forms in each
//! format version, and the OCI layout files (`oci-layout`, `index.json`).
//! Pure: bytes in and out, no I/O.

use std::collections::BTreeMap;

use ferry_schemas::{Digest, DigestAlgorithm};
use serde::{Deserialize, Serialize};
use serde_json::{Value, json};

use crate::model::ImageRecord;
use crate::ref_name::oci_ref_names;

/// The `format` field of every segment table.
pub const FORMAT_NAME: &str = "ferry-archive";
/// `oci-layout`, byte for byte.
pub const OCI_LAYOUT_BYTES: &[u8] = br#"{"imageLayoutVersion":"1.0.0"}"#;
/// Annotation in `index.json` carrying the image's full name as configured.
pub const IMAGE_NAME_ANNOTATION: &str = "io.ferry.image.name";
/// The OCI annotation skopeo looks images up by.
pub const REF_NAME_ANNOTATION: &str = "org.opencontainers.image.ref.name";
pub const OCI_INDEX_MEDIA_TYPE: &str = "application/vnd.oci.image.index.v1+json";

/// The largest metadata file (table, config, plan, image list, index)
/// read into memory; anything larger is refused as damaged.
pub const MAX_METADATA_BYTES: u64 = 256 * 1024 * 1024;

/// `ferry/deliveries/{delivery:06}`
pub fn delivery_folder(delivery: u32) -> String {
    format!("ferry/deliveries/{delivery:06}")
}

/// The segment table: the first entry of every segment.
pub fn table_path(delivery: u32, number: u32) -> String {
    format!("{}/segment-{number:06}.json", delivery_folder(delivery))
}

pub fn config_path(delivery: u32) -> String {
    format!("{}/config.yaml", delivery_folder(delivery))
}

/// The format version deliveries were written in before 2026-12 (plain
/// `plan.json` and `inputs.json`, and `images.json`); still read.
pub const FORMAT_VERSION_1: u32 = 1;

/// Whether the plan and the inputs of this format version are gzip files.
pub fn compressed_metadata(format_version: u32) -> bool {
    format_version >= 2
}

/// `plan.json`, or `plan.json.gz` from format version 2.
pub fn plan_path(delivery: u32, format_version: u32) -> String {
    let suffix = if compressed_metadata(format_version) {
        ".gz"
    } else {
        ""
    };
    format!("{}/plan.json{suffix}", delivery_folder(delivery))
}

/// What the collectors read (update graph answers, payload files), for
/// the disconnected side to collect offline: `inputs.json`, or
/// `inputs.json.gz` from format version 2.
pub fn inputs_path(delivery: u32, format_version: u32) -> String {
    let suffix = if compressed_metadata(format_version) {
        ".gz"
    } else {
        ""
    };
    format!("{}/inputs.json{suffix}", delivery_folder(delivery))
}

/// The image list of format version 1 (version 2 reads `index.json`).
pub fn images_path(delivery: u32) -> String {
    format!("{}/images.json", delivery_folder(delivery))
}

/// The `writer` of the segment tables this crate writes.
pub fn writer_name() -> String {
    format!("ferry {}", env!("CARGO_PKG_VERSION"))
}

pub const OCI_LAYOUT_PATH: &str = "oci-layout";
pub const OCI_INDEX_PATH: &str = "index.json";

/// `blobs/<algorithm>/<hex>`: where the OCI layout keeps blobs and manifests.
pub fn blob_path(digest: &Digest) -> String {
    format!("blobs/{}/{}", digest.algorithm().name(), digest.hex())
}

/// What an entry of a segment is.
#[derive(Clone, Copy, Debug, PartialEq, Eq, PartialOrd, Ord, Serialize, Deserialize)]
#[serde(rename_all = "kebab-case")]
pub enum EntryKind {
    /// `ferry/deliveries/D/config.yaml`
    Config,
    /// `ferry/deliveries/D/plan.json.gz` (format 1: `plan.json`)
    Plan,
    /// `ferry/deliveries/D/images.json` (format 1 only)
    Images,
    /// `ferry/deliveries/D/inputs.json.gz` (format 1: `inputs.json`;
    /// first segment, optional)
    Inputs,
    /// A manifest under `blobs/`.
    Manifest,
    /// A blob under `blobs/`.
    Blob,
    /// `oci-layout`
    OciLayout,
    /// `index.json`
    OciIndex,
}

/// One row of a segment table: an entry that follows the table.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct TableEntry {
    pub path: String,
    pub kind: EntryKind,
    pub digest: Digest,
    pub size: u64,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub media_type: Option<String>,
}

/// The first entry of every segment: which delivery it belongs to, where
/// it stands, and every entry after it.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct SegmentTable {
    /// Always [`FORMAT_NAME`].
    pub format: String,
    pub format_version: u32,
    /// The ferry that wrote it, e.g. `ferry 0.1.0` (from format version 2).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub writer: Option<String>,
    pub delivery: u32,
    pub previous: Option<u32>,
    /// This segment's own file name and number.
    pub file_name: String,
    pub number: u32,
    /// 1-based position among the delivery's segments.
    pub position: u32,
    pub count: u32,
    /// Every segment file of the delivery, in order.
    pub segments: Vec<String>,
    /// The entries after the table, in order.
    pub entries: Vec<TableEntry>,
}

impl SegmentTable {
    /// The table as stored: compact JSON, so its length grows by exactly
    /// one row plus one comma per entry (the packing relies on it).
    pub fn to_bytes(&self) -> Vec<u8> {
        serde_json::to_vec(self).expect("a table serializes")
    }
}

/// One image in `images.json`.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct ArchivedImage {
    /// The image as configured.
    pub name: String,
    /// The `org.opencontainers.image.ref.name` given to it in `index.json`.
    pub ref_name: String,
    pub digest: Digest,
    pub media_type: String,
    pub size: u64,
}

impl ArchivedImage {
    pub fn record(&self) -> ImageRecord {
        ImageRecord {
            name: self.name.clone(),
            digest: self.digest.clone(),
            media_type: self.media_type.clone(),
            size: self.size,
        }
    }
}

/// The image set as of delivery D: `ferry/deliveries/D/images.json` in
/// format version 1, read from `index.json` from version 2.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct ImagesFile {
    pub format_version: u32,
    pub delivery: u32,
    pub images: Vec<ArchivedImage>,
}

impl ImagesFile {
    /// Images sorted by name, each with its ref name.
    pub fn new(delivery: u32, images: &[ImageRecord]) -> Self {
        let refs = oci_ref_names(images.iter().map(|image| image.name.as_str()));
        let mut archived: Vec<ArchivedImage> = images
            .iter()
            .map(|image| ArchivedImage {
                name: image.name.clone(),
                ref_name: refs[&image.name].clone(),
                digest: image.digest.clone(),
                media_type: image.media_type.clone(),
                size: image.size,
            })
            .collect();
        archived.sort_by(|a, b| a.name.cmp(&b.name));
        ImagesFile {
            format_version: crate::FORMAT_VERSION,
            delivery,
            images: archived,
        }
    }

    /// The image list of `index.json` (format version 2 and later): each
    /// descriptor's annotations give the name and ref name. The caller
    /// checks that [`ImagesFile::oci_index`] gives back the same bytes.
    pub fn from_oci_index(
        format_version: u32,
        delivery: u32,
        index: &[u8],
    ) -> std::result::Result<Self, String> {
        #[derive(Deserialize)]
        struct Index {
            manifests: Vec<Descriptor>,
        }
        #[derive(Deserialize)]
        #[serde(rename_all = "camelCase")]
        struct Descriptor {
            media_type: String,
            digest: Digest,
            size: u64,
            annotations: BTreeMap<String, String>,
        }
        let index: Index = serde_json::from_slice(index).map_err(|error| error.to_string())?;
        let images = index
            .manifests
            .into_iter()
            .map(|descriptor| {
                let annotation = |key: &str| {
                    descriptor.annotations.get(key).cloned().ok_or_else(|| {
                        format!("the descriptor of {} has no {key}", descriptor.digest)
                    })
                };
                Ok(ArchivedImage {
                    name: annotation(IMAGE_NAME_ANNOTATION)?,
                    ref_name: annotation(REF_NAME_ANNOTATION)?,
                    digest: descriptor.digest.clone(),
                    media_type: descriptor.media_type.clone(),
                    size: descriptor.size,
                })
            })
            .collect::<std::result::Result<_, String>>()?;
        Ok(ImagesFile {
            format_version,
            delivery,
            images,
        })
    }

    /// `index.json` of the OCI layout: one descriptor per image, in the
    /// order of the list, annotated with its ref name and full name.
    /// Compact JSON from format version 2, pretty before.
    pub fn oci_index(&self) -> Vec<u8> {
        let manifests: Vec<Value> = self
            .images
            .iter()
            .map(|image| {
                let annotations: BTreeMap<&str, &str> = [
                    (IMAGE_NAME_ANNOTATION, image.name.as_str()),
                    (REF_NAME_ANNOTATION, image.ref_name.as_str()),
                ]
                .into_iter()
                .collect();
                json!({
                    "mediaType": image.media_type,
                    "digest": image.digest.to_string(),
                    "size": image.size,
                    "annotations": annotations,
                })
            })
            .collect();
        let index = json!({
            "schemaVersion": 2,
            "mediaType": OCI_INDEX_MEDIA_TYPE,
            "manifests": manifests,
        });
        if self.format_version == FORMAT_VERSION_1 {
            let mut bytes = serde_json::to_vec_pretty(&index).expect("an index serializes");
            bytes.push(b'\n');
            bytes
        } else {
            serde_json::to_vec(&index).expect("an index serializes")
        }
    }
}

/// A running hash of either digest algorithm (the one ferry-schemas
/// defines).
pub use ferry_schemas::DigestHasher as ContentHasher;

/// The digest of `bytes` with `algorithm`.
pub fn digest_of(algorithm: DigestAlgorithm, bytes: &[u8]) -> Digest {
    Digest::of(algorithm, bytes)
}

/// The sha256 digest of `bytes` (metadata files are named by sha256).
pub fn sha256_of(bytes: &[u8]) -> Digest {
    Digest::sha256_of(bytes)
}
