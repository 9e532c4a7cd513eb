//! ferry's disk delivery format: how `ferry mirror ... file://DIR` writes
//! a delivery, and how `--from file://DIR` and `ferry verify` read it back.
//! This comment is the format's specification (version [`FORMAT_VERSION`],
//! 2; what version 1 differs in, and how it is read, is at the end).
//!
//! # Deliveries and segment files
//!
//! A *delivery* is what one mirror-to-disk run writes: the blobs and
//! manifests the destination does not have yet, plus metadata. It is one
//! or more *segment files* named `mirror_NNNNNN.tar` (oc-mirror's pattern:
//! `mirror_` + exactly six digits + `.tar`; see [`segment_file_name`]).
//! Deliveries are numbered 1, 2, 3, ... and each names the one before it,
//! so they form a chain. Segment numbers continue across deliveries: if
//! delivery 1 is `mirror_000001.tar` to `mirror_000003.tar`, delivery 2
//! starts at `mirror_000004.tar`. Segments are uncompressed tar files.
//!
//! # The tar dialect
//!
//! Every entry is a regular file with a GNU tar header: mode 0644, uid and
//! gid 0, empty user and group names, mtime 0, no device numbers, no PAX
//! headers, no directories, links or devices. A path longer than 100 bytes
//! (only `blobs/sha512/<128 hex>`) is preceded by a GNU long-name entry
//! (`././@LongLink`, type `L`, mode 0644, holding the path and a NUL).
//! Content is padded with zeros to 512-byte blocks; the file ends with two
//! zero blocks and nothing after them. A segment's size is therefore known
//! exactly in advance ([`layout`]).
//!
//! # Entries of a segment, in order
//!
//! `DDDDDD` is the delivery number, `NNNNNN` the segment's file number,
//! both six digits.
//!
//! 1. `ferry/deliveries/DDDDDD/segment-NNNNNN.json`: the segment table
//!    (below). Always first, so reading a folder's metadata reads the
//!    first few blocks of each file and seeks past content.
//! 2. `ferry/deliveries/DDDDDD/config.yaml`: the ImageSetConfiguration the
//!    delivery was made from, as given. In every segment.
//! 3. `ferry/deliveries/DDDDDD/plan.json.gz`: the plan, as the caller gave
//!    it (no timestamps, no local paths), compressed (see *Compressed
//!    metadata*). In every segment. ferry's own is
//!    `{"version": 2, "delivery": D, "previous": P, "plan": ...}`: the plan
//!    made against the workspace's delivery history alone, never against
//!    what the cache holds, with no source hosts, so that nothing in a
//!    delivery depends on the cache, the clock or the machine (its version
//!    1, written before 2026-12, listed fetch actions only for blobs the
//!    cache lacked; readers do not interpret it).
//! 4. First segment of the delivery only, when the delivery carries one:
//!    `ferry/deliveries/DDDDDD/inputs.json.gz` (table kind `inputs`,
//!    compressed): what ferry's collectors read on the connected side
//!    (update graph answers, release payload files), so the disconnected
//!    side collects offline. The archive does not interpret it; its writer
//!    (the executor) documents its content.
//! 5. Content: `blobs/<algorithm>/<hex>` for every manifest and blob this
//!    delivery ships, each digest once per delivery, in digest order
//!    (algorithm name, then hex) across the delivery's segments. Manifests
//!    and blobs share the folder, as in an OCI image layout.
//! 6. First segment only: `oci-layout` (`{"imageLayoutVersion":"1.0.0"}`)
//!    and `index.json`.
//!
//! # The segment table (`segment-NNNNNN.json`)
//!
//! Compact JSON (no whitespace), fields in this order, unknown fields
//! refused:
//!
//! | field | meaning |
//! |---|---|
//! | `format` | always `"ferry-archive"` |
//! | `format_version` | `2` |
//! | `writer` | the ferry that wrote it, e.g. `"ferry 0.1.0"` |
//! | `delivery` | this delivery's number |
//! | `previous` | the delivery before it, or `null` for the first |
//! | `file_name` | this segment's own file name, e.g. `"mirror_000004.tar"` |
//! | `number` | its file number, e.g. `4` |
//! | `position` | its place in the delivery, 1-based |
//! | `count` | how many segments the delivery has |
//! | `segments` | the file names of all the delivery's segments, in order |
//! | `entries` | one row per entry after the table, in file order |
//!
//! Each row: `path`, `kind` (`config`, `plan`, `inputs`, `manifest`,
//! `blob`, `oci-layout`, `oci-index`), `digest` (`sha256:<hex>`; metadata
//! files are named by sha256 of the bytes stored, compressed or not,
//! content by its own digest), `size` in bytes stored, and for manifests
//! `media_type`. A content row's path is always `blobs/<algorithm>/<hex>`
//! of its digest. A reader checks `format` and `format_version` before
//! the rest, so a table of a newer version is refused by its version,
//! naming its `writer`, and not by a field it does not know.
//!
//! # Compressed metadata
//!
//! `plan.json.gz` and `inputs.json.gz` are single-member gzip files with
//! fixed header fields (no name, comment or extra field, mtime 0, operating
//! system 255) at a fixed level, so two deliveries of the same inputs are
//! byte-identical. Readers decompress with a bound ([`MAX_METADATA`]
//! bytes) and refuse bytes after the gzip stream. The segment table and
//! `config.yaml` stay plain (they are small, and the table's exact length
//! drives the packing), and so do the OCI files.
//!
//! # `index.json`, the image list, and the OCI image layout
//!
//! An OCI image index (`schemaVersion` 2, `mediaType`
//! `application/vnd.oci.image.index.v1+json`), compact JSON (no
//! whitespace), with one descriptor per image of the image set as of this
//! delivery (all of them, including images whose blobs shipped in earlier
//! deliveries), sorted by configured name: `mediaType`, `digest` and
//! `size` of the top manifest, and two annotations: `io.ferry.image.name`
//! (the full configured name, e.g. `quay.io/x/y:1.0` or
//! `quay.io/x/y@sha256:...`) and `org.opencontainers.image.ref.name` (the
//! ref name). It is the delivery's image list: a reader takes the images
//! from it and writes the index again from them; the bytes must be equal
//! (fields, order, ref names), so nothing but what ferry writes is read.
//!
//! A single-segment delivery that holds all blobs of its images is a valid
//! OCI image layout, and several segments of one delivery unpacked into one
//! folder form one layout. skopeo reads it:
//! `skopeo copy --all oci-archive:DIR/mirror_000001.tar:REF docker://...`
//! or, unpacked, `oci:FOLDER:REF`.
//!
//! The ref name is the configured name when skopeo accepts it, which is
//! the usual case, tags and digests included (`quay.io/x/y:1.0`,
//! `localhost:5000/a/b:v1`, `quay.io/x/y@sha256:<hex>`); see
//! [`oci_ref_name`] for the grammar (containers/image
//! `oci/internal/oci_util.go`) and the mapping of the few names it refuses
//! (runs of separators such as `__` or `---`). containers/image splits
//! `oci-archive:PATH:REF` at the first colon, so the PATH part must not
//! contain one.
//!
//! Known limit of skopeo 1.9.3 (found by experiment, matching
//! `getManifestDescriptor` in containers/image): when looking an image up
//! by ref name, it skips descriptors whose media type is not the OCI
//! manifest or OCI index type, so images in Docker schema 2 format
//! (`application/vnd.docker.distribution.manifest.v2+json`, manifest
//! lists) are listed in `index.json` with their true media type (their
//! digests must not change) but skopeo 1.9 cannot select them by name.
//! ferry's own import does not depend on `index.json`.
//!
//! # Unpacking several segments into one folder
//!
//! Everything ferry-specific lives under `ferry/deliveries/DDDDDD/`, and
//! the table's name carries the segment number, so files of different
//! segments never collide unless they are identical (`config.yaml` and
//! `plan.json.gz` repeat in every segment of a delivery; a blob shipped again
//! in a later delivery has the same bytes). The one exception is
//! `index.json`: each delivery writes the image set as of that delivery.
//! Unpacked in delivery order, the newest one remains, and the blobs of
//! all deliveries together complete its layout.
//!
//! # How a delivery is split
//!
//! See the `layout` module: content entries are filled into segments in
//! digest order; an entry that would push a segment past
//! `max_segment_bytes` (the file's size, tar overhead and metadata
//! included) starts the next one. An entry too large for any segment gets
//! a segment of its own and a warning naming it, its size and the segment
//! size it needs; in strict mode that is an error instead.
//!
//! # Writing
//!
//! Each segment is written as `.mirror_NNNNNN.tar.partial` in the target
//! folder, blobs streamed from the blob store and re-hashed on the way,
//! synced, and checked against its planned size. When all are complete,
//! each gets its final name without overwriting anything and the folder is
//! synced. An existing `mirror_NNNNNN.tar` is never overwritten (an error
//! names it); partial files of an interrupted earlier write are removed.
//!
//! # Reading and checking
//!
//! Only files named `mirror_NNNNNN.tar` are read; other files are ignored.
//! The structural pass ([`read_folder`]) reads every header and table:
//! each header must be canonical (any link, device, directory, absolute
//! path or `..` is refused by name); each entry must be the one its table
//! lists, with its size; the table must name this very file (so renamed or
//! reordered segments are caught); every segment the delivery lists must
//! be present and all must agree on the delivery's previous delivery,
//! segment list, configuration and plan; no digest may appear twice in a
//! delivery. [`verify_folder`] and [`import_folder`] also check the chain
//! (each delivery's predecessor is in the folder or already applied) and
//! then re-hash every byte of every entry against its table row and check
//! that padding is zero. [`import_folder`] stores blobs and manifests into
//! the blob store as they stream, and only after the structural pass over
//! the whole folder succeeded; [`preview_import`] makes the same checks,
//! stores nothing and hands back the manifests' bytes.
//!
//! # Format version 1, and other versions
//!
//! Version 1 (ferry before 2026-12) differs only in its metadata: the plan
//! and the inputs are plain (`plan.json`, `inputs.json`); the first segment
//! carries `ferry/deliveries/DDDDDD/images.json` (kind `images`, right
//! after `plan.json`): pretty JSON `{"format_version": 1, "delivery": D,
//! "images": [...]}`, one object per image sorted by name (`name`,
//! `ref_name`, `digest`, `media_type`, `size`), the image list, which
//! `index.json` (pretty JSON, ending with a newline) must match; the table
//! has no `writer`. This ferry reads version 1 as it reads version 2:
//! verify, import, and the chain of deliveries, even with deliveries of
//! both versions in one folder (a delivery written before an upgrade,
//! the next one after), since deliveries already carried to an enclave
//! cannot be written again. All segments of one delivery must have the
//! same version. A version above 2 is refused with the `writer` its table
//! names ("format version 3, written by ferry X, is newer than this ferry
//! reads"); the version 2 this ferry writes always names its writer. The
//! measured effect of version 2 (README, *Platform releases*): a second
//! z-stream's delivery on the test world went from 134,144 to 65,536
//! bytes for 20,675 bytes of new content.

mod compression;
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
    BlobEntry, ContentEntry, DeliveryContents, DeliveryInput, DeliveryLayout, DeliverySummary,
    ImageRecord, ImportReport, ManifestEntry, SegmentLayout, SurveyedDelivery, VerifyReport,
};
pub use ref_name::{is_valid_ref_name, oci_ref_name, oci_ref_names};
pub use verify::{import_folder, preview_import, verify_folder};
pub use write::{partial_file_name, write_delivery};

/// The version of the format this crate writes, and the newest it reads
/// (it reads [`metadata::FORMAT_VERSION_1`] too).
pub const FORMAT_VERSION: u32 = 2;

/// The largest size a compressed metadata file may decompress to.
pub const MAX_METADATA: u64 = metadata::MAX_METADATA_BYTES;

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

/// What the segment files of `folder` whose numbers `wanted` accepts say
/// about themselves, delivery by delivery: whole deliveries with what they
/// carry, deliveries of which only some segments are present, and files
/// that are not readable segments. Metadata only (no re-hashing); a folder
/// without segments gives an empty list. Used to rebuild a workspace's
/// record of its deliveries from the segments when the record is lost.
pub fn survey_folder(folder: &Path, wanted: &dyn Fn(u32) -> bool) -> Result<Vec<SurveyedDelivery>> {
    read::survey(folder, wanted)
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
