//! File-based operator catalogs (FBC): loading one from its files, oc-mirror
//! v2's bundle filter, the filtered catalog written back as JSON, the images
//! its bundles need, the dependencies the selection lacks, and what `list`
//! shows. Everything here works on bytes and values handed in.
//!
//! - `model`: the catalog and its loader (JSON streams, YAML documents,
//!   files in parallel, bundles kept as their JSON text).
//! - `version`: bundle versions and the two range syntaxes.
//! - `graph`: a channel's upgrade graph, its head, and the version-range walk.
//! - `filter`: the selection oc-mirror makes for one `mirror.operators` entry.
//! - `write`: the filtered catalog as deterministic FBC JSON.
//! - `fix`: the configuration lines that resolve "multiple channel heads".
//! - `dependencies`: required packages and APIs the selection lacks.
//! - `images`: the bundle and related images of the kept bundles.
//! - `listing`: what `list operators` and `list bundles` show.
//! - `error`: load and filter errors.

pub mod dependencies;
pub mod error;
pub mod filter;
pub mod fix;
pub mod graph;
pub mod images;
pub mod listing;
pub mod model;
pub mod version;
pub mod write;

pub use dependencies::{MissingDependency, Requirement, missing_dependencies};
pub use error::{FilterError, LoadError};
pub use filter::{Filtered, KeptBundle, KeptChannel, KeptPackage, filter};
pub use fix::HeadsFix;
pub use images::{BundleImage, ImageError, bundle_images, distinct_references};
pub use model::{
    Api, Bundle, Catalog, CatalogFile, Channel, ChannelEntry, Deprecation, Other, Package,
    PackageRequirement,
};
pub use version::{BundleVersion, DependencyRange, FilterRange};
