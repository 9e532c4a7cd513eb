//! ferry's view of registries: where an image is really pulled from
//! (`registries_conf`), who we are there (`credentials`), and the OCI
//! Distribution client that moves manifests and blobs (`client`).

pub mod client;
pub mod credentials;
pub mod registries_conf;

pub use client::{
    ClientOptions, DeleteOutcome, Manifest, PushOutcome, RegistryClient, RegistryError,
};
pub use credentials::{CredentialStore, Credentials};
pub use registries_conf::{ConfigurationError, PullFromMirror, PullSource, RegistriesConf};
