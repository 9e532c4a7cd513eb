//! The standard world, built once and served: publishing into a shared cache,
//! and [`World`], the running world tests use.
//!
//! **Cache.** [`published_storage`] writes a [`Content`] into distribution's
//! storage layout under `<cache root>/<key>/storage`, where `<key>` hashes
//! [`GENERATOR_VERSION`] and every digest and placement of the content. It is
//! built into a temporary sibling directory and renamed into place, under an
//! exclusive file lock (`<key>.lock`, released by the kernel if the holder
//! dies), so concurrent test processes build it once and the others wait.
//! The cache root is, in order: `$FERRY_WORLD_CACHE`; the root a program
//! chose with [`use_cache_root`] (`ferry world up`: [`program_cache_root`],
//! never the source checkout); `$CARGO_TARGET_DIR/ferry-world`; `<workspace>/target/ferry-world` when the
//! workspace this crate was built from still exists; else
//! `<temp dir>/ferry-world-cache`.
//!
//! **World.** [`World::start`] builds (or finds) the standard world's
//! storage, starts a read-only plain-HTTP registry over it and the update
//! graph server, and writes `registries.conf` plus a descriptor
//! (`world.json`) into a temporary directory:
//!
//! ```no_run
//! let world = ferry_testworld::world::World::start()?;
//! // skopeo --registries-conf <world.registries_conf()> inspect docker://quay.io/...
//! let _conf = world.registries_conf();
//! let _update_url_override = world.graph_url();
//! // Other flavours over the same storage, or an empty destination:
//! use ferry_testworld::registry::{Flavour, Registry, Storage};
//! let _tls = world.start_registry(Flavour::Tls)?;
//! let _destination = Registry::start(Flavour::PlainHttp, Storage::Empty)?;
//! # Ok::<(), ferry_testworld::error::Error>(())
//! ```
//!
//! Everything stops when the [`World`] is dropped.

use std::collections::BTreeMap;
use std::fs::{self, File, OpenOptions};
use std::path::{Path, PathBuf};
use std::sync::OnceLock;
use std::time::{Duration, Instant};

use fs4::fs_std::FileExt;
use serde::{Deserialize, Serialize};
use tempfile::TempDir;

use crate::content::Content;
use crate::error::{Context, Result};
use crate::graph_server::{GraphServer, Graphs};
use crate::registries_conf;
use crate::registry::{Credentials, Flavour, Registry, Storage};
use crate::standard::{StandardWorld, standard_world};
use crate::storage;

/// Changes whenever the storage writer's output changes for the same
/// content, so caches built by an older writer are not reused.
pub const GENERATOR_VERSION: &str = "ferry-testworld storage layout 1";

/// The cache root a program chose with [`use_cache_root`], if any.
static CHOSEN_CACHE_ROOT: OnceLock<PathBuf> = OnceLock::new();

/// Makes [`cache_root`] answer `root` for the rest of the process (unless
/// `$FERRY_WORLD_CACHE` is set). Programs that may run from an installed
/// binary (`ferry world up`) call it with [`program_cache_root`] so they
/// never write into the source checkout they were built from. Without
/// effect once the standard storage was looked up.
pub fn use_cache_root(root: PathBuf) {
    let _ = CHOSEN_CACHE_ROOT.set(root);
}

/// The cache root for programs, outside any source checkout:
/// `$XDG_CACHE_HOME/ferry/world`, else `~/.cache/ferry/world`, else
/// `<temp dir>/ferry-world-cache`. `variable` reads the environment.
pub fn program_cache_root(variable: impl Fn(&str) -> Option<std::ffi::OsString>) -> PathBuf {
    let variable = |name: &str| variable(name).filter(|value| !value.is_empty());
    variable("XDG_CACHE_HOME")
        .map(|folder| PathBuf::from(folder).join("ferry/world"))
        .or_else(|| variable("HOME").map(|home| PathBuf::from(home).join(".cache/ferry/world")))
        .unwrap_or_else(|| std::env::temp_dir().join("ferry-world-cache"))
}

/// Where published worlds are cached (see the module docs).
pub fn cache_root() -> PathBuf {
    if let Some(path) = std::env::var_os("FERRY_WORLD_CACHE") {
        return PathBuf::from(path);
    }
    if let Some(root) = CHOSEN_CACHE_ROOT.get() {
        return root.clone();
    }
    if let Some(path) = std::env::var_os("CARGO_TARGET_DIR") {
        return PathBuf::from(path).join("ferry-world");
    }
    let manifest_directory = Path::new(env!("CARGO_MANIFEST_DIR"));
    if let Some(workspace) = manifest_directory.parent()
        && workspace.join("Cargo.toml").is_file()
        && workspace.join("target").is_dir()
    {
        return workspace.join("target").join("ferry-world");
    }
    std::env::temp_dir().join("ferry-world-cache")
}

/// The cache key of `content`: a hash of the generator version and every
/// digest, media type and placement.
pub fn content_key(content: &Content) -> String {
    let mut hasher = blake3::Hasher::new();
    hasher.update(GENERATOR_VERSION.as_bytes());
    for digest in content.blobs.keys() {
        hasher.update(b"\nblob ");
        hasher.update(digest.as_bytes());
    }
    for (digest, manifest) in &content.manifests {
        hasher.update(b"\nmanifest ");
        hasher.update(digest.as_bytes());
        hasher.update(b" ");
        hasher.update(manifest.media_type.as_bytes());
    }
    for placement in &content.placements {
        hasher.update(b"\nplacement ");
        for part in [&placement.host, &placement.repository, &placement.digest] {
            hasher.update(part.as_bytes());
            hasher.update(b" ");
        }
        hasher.update(placement.tags.join(",").as_bytes());
    }
    hasher.finalize().to_hex()[..24].to_owned()
}

/// Published storage of some content, in the cache.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct PublishedStorage {
    /// The registry storage root (`rootdirectory`).
    pub root: PathBuf,
    pub key: String,
    /// Whether this call built it (false: it was already there).
    pub built_now: bool,
    /// How long building (or finding) it took.
    pub elapsed: Duration,
}

/// Publishes `content` under `cache_root` once (see the module docs).
pub fn published_storage(content: &Content, cache_root: &Path) -> Result<PublishedStorage> {
    let started = Instant::now();
    let key = content_key(content);
    let final_directory = cache_root.join(&key);
    let found = |built_now| PublishedStorage {
        root: final_directory.join("storage"),
        key: key.clone(),
        built_now,
        elapsed: started.elapsed(),
    };
    if final_directory.is_dir() {
        return Ok(found(false));
    }
    fs::create_dir_all(cache_root)
        .context(|| format!("creating world cache {}", cache_root.display()))?;
    let lock_path = cache_root.join(format!("{key}.lock"));
    let lock = OpenOptions::new()
        .create(true)
        .truncate(false)
        .write(true)
        .open(&lock_path)
        .context(|| format!("opening lock {}", lock_path.display()))?;
    lock.lock_exclusive()
        .context(|| format!("locking {}", lock_path.display()))?;
    if final_directory.is_dir() {
        return Ok(found(false));
    }
    remove_abandoned_builds(cache_root, &key)?;
    let build_directory = cache_root.join(format!(".build-{key}-{}", std::process::id()));
    let storage_root = build_directory.join("storage");
    storage::publish(content, &storage_root)
        .context(|| format!("publishing the world into {}", storage_root.display()))?;
    fs::rename(&build_directory, &final_directory).context(|| {
        format!(
            "moving {} to {}",
            build_directory.display(),
            final_directory.display()
        )
    })?;
    drop(lock);
    Ok(found(true))
}

/// Removes `.build-<key>-*` left by builders that died (we hold the lock, so
/// nobody is building now).
fn remove_abandoned_builds(cache_root: &Path, key: &str) -> Result<()> {
    let prefix = format!(".build-{key}-");
    let entries =
        fs::read_dir(cache_root).context(|| format!("listing {}", cache_root.display()))?;
    for entry in entries.flatten() {
        if entry.file_name().to_string_lossy().starts_with(&prefix) {
            let path = entry.path();
            fs::remove_dir_all(&path)
                .context(|| format!("removing abandoned build {}", path.display()))?;
        }
    }
    Ok(())
}

/// The standard world, generated once per process.
pub fn standard() -> &'static StandardWorld {
    static STANDARD: OnceLock<StandardWorld> = OnceLock::new();
    STANDARD.get_or_init(standard_world)
}

/// The standard world's storage in the cache, built once per cache (and
/// looked up once per process).
pub fn standard_storage() -> Result<PublishedStorage> {
    static STORAGE: OnceLock<Result<PublishedStorage>> = OnceLock::new();
    STORAGE
        .get_or_init(|| published_storage(&standard().content, &cache_root()))
        .clone()
}

/// One registry as the descriptor records it.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct RegistryDescriptor {
    /// `127.0.0.1:PORT`.
    pub address: String,
    /// `http://…` or `https://…`.
    pub url: String,
    pub read_only: bool,
    /// The authority certificate (TLS flavours).
    #[serde(skip_serializing_if = "Option::is_none", default)]
    pub ca_certificate: Option<PathBuf>,
    /// A directory holding only `ca.crt`, for skopeo's `--cert-dir`.
    #[serde(skip_serializing_if = "Option::is_none", default)]
    pub cert_dir: Option<PathBuf>,
    /// Test-only credentials (auth flavour).
    #[serde(skip_serializing_if = "Option::is_none", default)]
    pub credentials: Option<Credentials>,
    /// The process id (background registries of `ferry world up`).
    #[serde(skip_serializing_if = "Option::is_none", default)]
    pub pid: Option<u32>,
}

impl RegistryDescriptor {
    /// Describes a registry this process runs.
    pub fn of(registry: &Registry) -> RegistryDescriptor {
        RegistryDescriptor {
            address: registry.host(),
            url: registry.url(),
            read_only: registry.is_read_only(),
            ca_certificate: registry.ca_certificate().map(Path::to_path_buf),
            cert_dir: registry.cert_dir().map(Path::to_path_buf),
            credentials: registry.credentials().cloned(),
            pid: None,
        }
    }
}

/// What a running world offers, written as `world.json`.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct WorldDescriptor {
    /// By flavour name: `plain`, `tls`, `auth`.
    pub registries: BTreeMap<String, RegistryDescriptor>,
    /// The update-graph endpoint, for `UPDATE_URL_OVERRIDE`.
    pub graph_url: String,
    /// The graph server's pid (background world only).
    #[serde(skip_serializing_if = "Option::is_none", default)]
    pub graph_server_pid: Option<u32>,
    /// `registries.conf` remapping every public host to the plain registry.
    pub registries_conf: PathBuf,
    /// The storage root the registries serve.
    pub storage_root: PathBuf,
    /// The public hosts remapped.
    pub hosts: Vec<String>,
}

impl WorldDescriptor {
    /// Writes the descriptor as pretty JSON.
    pub fn write(&self, path: &Path) -> Result<()> {
        let text = serde_json::to_string_pretty(self)
            .context(|| "serialising the world descriptor".to_owned())?;
        fs::write(path, text + "\n").context(|| format!("writing {}", path.display()))
    }

    /// Reads a descriptor written by [`WorldDescriptor::write`].
    pub fn read(path: &Path) -> Result<WorldDescriptor> {
        let file = File::open(path).context(|| format!("opening {}", path.display()))?;
        serde_json::from_reader(file).context(|| format!("reading {}", path.display()))
    }
}

/// The running standard world: a read-only plain-HTTP registry over the
/// published storage, the update-graph server, a `registries.conf` and a
/// descriptor. Dropping it stops everything.
#[derive(Debug)]
pub struct World {
    standard: &'static StandardWorld,
    storage: PublishedStorage,
    registry: Registry,
    graph_server: GraphServer,
    registries_conf: PathBuf,
    descriptor_path: PathBuf,
    descriptor: WorldDescriptor,
    // Last: removed after the processes stopped.
    _directory: TempDir,
}

impl World {
    /// Builds the standard world's storage if no process has yet, and starts
    /// serving it.
    pub fn start() -> Result<World> {
        let standard = standard();
        let storage = standard_storage()?;
        let registry = Registry::start(Flavour::PlainHttp, Storage::Shared(storage.root.clone()))
            .context(|| "starting the world's registry".to_owned())?;
        let graph_server = GraphServer::start(standard.graphs.clone())?;
        let directory = tempfile::Builder::new()
            .prefix("ferry-world-")
            .tempdir()
            .context(|| "creating the world directory".to_owned())?;
        let hosts = registries_conf::hosts(&standard.content);
        let registries_conf = directory.path().join("registries.conf");
        fs::write(
            &registries_conf,
            registries_conf::render(&hosts, &registry.host(), true),
        )
        .context(|| format!("writing {}", registries_conf.display()))?;
        let descriptor = WorldDescriptor {
            registries: BTreeMap::from([(
                Flavour::PlainHttp.name().to_owned(),
                RegistryDescriptor::of(&registry),
            )]),
            graph_url: graph_server.url(),
            graph_server_pid: None,
            registries_conf: registries_conf.clone(),
            storage_root: storage.root.clone(),
            hosts: hosts.into_iter().collect(),
        };
        let descriptor_path = directory.path().join("world.json");
        descriptor.write(&descriptor_path)?;
        Ok(World {
            standard,
            storage,
            registry,
            graph_server,
            registries_conf,
            descriptor_path,
            descriptor,
            _directory: directory,
        })
    }

    /// The content the world serves.
    pub fn content(&self) -> &'static Content {
        &self.standard.content
    }

    /// The update graphs the graph server answers.
    pub fn graphs(&self) -> &'static Graphs {
        &self.standard.graphs
    }

    /// The read-only plain-HTTP registry serving every public host.
    pub fn registry(&self) -> &Registry {
        &self.registry
    }

    /// `registries.conf` remapping every public host to [`World::registry`];
    /// pass it as `skopeo --registries-conf FILE`.
    pub fn registries_conf(&self) -> &Path {
        &self.registries_conf
    }

    /// The update-graph endpoint, for `UPDATE_URL_OVERRIDE`.
    pub fn graph_url(&self) -> String {
        self.graph_server.url()
    }

    /// The graph-data tarball's URL, for `FERRY_GRAPH_DATA_URL`.
    pub fn graph_data_url(&self) -> String {
        self.graph_server.graph_data_url()
    }

    /// The graph server (its address, for raw requests).
    pub fn graph_server(&self) -> &GraphServer {
        &self.graph_server
    }

    /// The published storage the registry serves.
    pub fn storage(&self) -> &PublishedStorage {
        &self.storage
    }

    /// The descriptor, also written at [`World::descriptor_path`].
    pub fn descriptor(&self) -> &WorldDescriptor {
        &self.descriptor
    }

    /// Where `world.json` was written.
    pub fn descriptor_path(&self) -> &Path {
        &self.descriptor_path
    }

    /// Starts another registry of `flavour` over the world's storage
    /// (read-only), owned by the caller.
    pub fn start_registry(&self, flavour: Flavour) -> Result<Registry> {
        Registry::start(flavour, Storage::Shared(self.storage.root.clone()))
    }
}

/// Lists every reference the standard world publishes (the golden list).
pub fn standard_reference_lines() -> Result<Vec<String>> {
    storage::reference_lines(&standard().content)
}

/// Fails with a clear message when `program` is not on `PATH` (nor an
/// existing path); `package` names the Debian package that installs it.
pub fn require_program(program: &str, package: &str) -> Result<()> {
    let found = Path::new(program).is_file()
        || std::env::var_os("PATH").is_some_and(|paths| {
            std::env::split_paths(&paths).any(|directory| directory.join(program).is_file())
        });
    if found {
        Ok(())
    } else {
        Err(crate::error::Error::new(format!(
            "{program} is not installed (install the Debian package {package})"
        )))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn programs_cache_the_world_in_the_users_cache_folder_not_the_checkout() {
        let environment = |pairs: &'static [(&'static str, &'static str)]| {
            move |name: &str| {
                pairs
                    .iter()
                    .find(|(key, _)| *key == name)
                    .map(|(_, value)| std::ffi::OsString::from(value))
            }
        };
        assert_eq!(
            program_cache_root(environment(&[
                ("XDG_CACHE_HOME", "/x/cache"),
                ("HOME", "/home/me")
            ])),
            PathBuf::from("/x/cache/ferry/world")
        );
        assert_eq!(
            program_cache_root(environment(&[("HOME", "/home/me")])),
            PathBuf::from("/home/me/.cache/ferry/world")
        );
        assert_eq!(
            program_cache_root(environment(&[("HOME", "")])),
            std::env::temp_dir().join("ferry-world-cache")
        );
    }
}
