//! ferry's test world: real `docker-registry` processes on 127.0.0.1, seeded
//! deterministically with content shaped like an OpenShift universe (release
//! payloads, an update graph, operator catalogs, additional images), reached
//! through a generated `registries.conf`.
//!
//! `content` is pure: it describes what the world holds. The rest starts
//! processes and writes storage.

pub mod content;
pub mod standard;
