//! ferry's view of registries: where an image is really pulled from
//! (`registries.conf`), and, as issue 3 lands, credentials and the OCI
//! Distribution client.

pub mod registries_conf;

pub use registries_conf::{ConfigurationError, PullFromMirror, PullSource, RegistriesConf};
