//! ferry's test world: real `docker-registry` processes on 127.0.0.1, seeded
//! deterministically with content shaped like an OpenShift universe (release
//! payloads, an update graph, operator catalogs, additional images), reached
//! through a generated `registries.conf`.
//!
//! Pure data: `content` (the contract), `image_builder` (with `gzip`, the
//! world's build-independent gzip encoder), the generators
//! `additional_images`, `releases`, `catalogs`, and `standard` (the world).
//! Side effects: `storage` (publishing into registry storage), `registry`
//! (processes), `graph_server`, `world` (the whole, built once and shared),
//! `background` (`ferry world up|down`); their helpers `certificates`,
//! `registries_conf`, `http` (loopback checks) and `error`.

pub mod additional_images;
pub mod background;
pub mod catalogs;
pub mod certificates;
pub mod content;
pub mod error;
pub mod graph_server;
pub mod gzip;
pub mod http;
pub mod image_builder;
pub mod proxy;
pub mod registries_conf;
pub mod registry;
pub mod release_signatures;
pub mod releases;
pub mod standard;
pub mod storage;
pub mod tokens;
pub mod world;
