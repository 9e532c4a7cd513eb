//! Catalog images and release payloads read from a registry: the reference pinned to the digest
//! the first answering pull source gives (through registries.conf), then
//! only the linux/amd64 image's manifest, config and layers read through
//! the registries' content source (`source::Registries`, as an image of
//! `source_image`), each checked against its digest, and only one folder
//! (a catalog's labelled configs, a payload's `release-manifests`) read out
//! of the layers (`layer_files`). Blobs are kept where the access's
//! [`LayerBlobs`] says: the cache when it holds them or is to be filled
//! (a run), else a temporary store removed afterwards.

use std::path::{Path, PathBuf};

use ferry_content::catalog::{Catalog, CatalogFile};
use ferry_registry::{ClientOptions, CredentialStore, RegistriesConf, RegistryClient};
use ferry_schemas::{Digest, ImageReference, ImageSource};
use ferry_store::BlobStore;

use crate::layer_files::{self, CATALOG_CONFIGS_LABEL, FolderFiles, ImageBlobs};
use crate::resolve::Recorded;
use crate::source::{Registries, registry_pinned};
use crate::source_image::{CachedReads, LayerBlobs, SourceImage, Waiting};

/// How registry catalogs are reached.
#[derive(Clone, Debug, Default)]
pub struct RegistryAccessOptions {
    /// `--registries-conf` (a named file must exist), else the defaults.
    pub registries_conf: Option<PathBuf>,
    pub authfile: Option<PathBuf>,
    pub source_tls_verify: bool,
}

/// What reading registry catalogs needs: registries.conf, credentials and
/// a runtime for the async client.
pub struct RegistryAccess {
    registries: RegistriesConf,
    options: RegistryAccessOptions,
    runtime: tokio::runtime::Runtime,
    /// The cache blobs are read from first, and whether the others are
    /// put into it (else into a temporary store per image read).
    cache: Option<BlobStore>,
    fill_cache: bool,
    /// Where the blobs read that the cache holds are noted.
    reads: CachedReads,
}

impl RegistryAccess {
    /// Loads registries.conf and starts the runtime the client runs on.
    pub fn new(options: &RegistryAccessOptions) -> Result<Self, String> {
        let registries = match &options.registries_conf {
            Some(path) => RegistriesConf::load_named(path),
            None => RegistriesConf::load_default(),
        }
        .map_err(|error| error.to_string())?;
        let runtime = tokio::runtime::Builder::new_multi_thread()
            .worker_threads(2)
            .enable_all()
            .build()
            .map_err(|error| format!("cannot start the async runtime: {error}"))?;
        Ok(RegistryAccess {
            registries,
            options: options.clone(),
            runtime,
            cache: None,
            fill_cache: false,
            reads: CachedReads::default(),
        })
    }

    /// Reads blobs from `cache` when it holds them, and puts the others
    /// into it when `fill` (a run: its copy stage then reads none of them
    /// from the source again), else into a temporary store. Every blob read
    /// that the cache holds is noted in `reads`.
    pub fn with_cache(mut self, cache: Option<BlobStore>, fill: bool, reads: CachedReads) -> Self {
        self.cache = cache;
        self.fill_cache = fill;
        self.reads = reads;
        self
    }

    fn client(&self, sources: &[ferry_registry::PullSource]) -> RegistryClient {
        RegistryClient::new(ClientOptions {
            credentials: CredentialStore::discover(self.options.authfile.as_deref()),
            tls_verify: self.options.source_tls_verify,
            insecure_hosts: sources
                .iter()
                .filter(|source| source.insecure)
                .map(|source| source.reference.registry().to_owned())
                .collect(),
            retry_times: 2,
            ..ClientOptions::default()
        })
    }

    /// Whether some pull source of `reference` has its manifest; an error
    /// only when no source has it and one could not be asked.
    pub fn exists(&self, reference: &ImageReference) -> Result<bool, String> {
        let sources = self
            .registries
            .pull_sources(reference)
            .map_err(|error| error.to_string())?;
        let client = self.client(&sources);
        let mut failures = Vec::new();
        for source in &sources {
            match self
                .runtime
                .block_on(client.head_manifest(&source.reference))
            {
                Ok(Some(_)) => return Ok(true),
                Ok(None) => {}
                Err(error) => failures.push(error.to_string()),
            }
        }
        if failures.is_empty() {
            Ok(false)
        } else {
            Err(failures.join("; "))
        }
    }

    /// Pins `reference` to the digest the first answering pull source
    /// gives, then reads the configs folder of its linux/amd64 image.
    pub fn read_catalog(&self, reference: &ImageReference) -> Result<FolderFiles, String> {
        self.pinned(reference, |image, _| {
            layer_files::read_labelled_folder_from(image, CATALOG_CONFIGS_LABEL)
                .map_err(|error| error.to_string())
        })
        .map_err(|error| format!("cannot read the catalog image: {error}"))?
    }

    /// Pins `reference` as [`RegistryAccess::read_catalog`] does, then reads
    /// the files under `folder` of its linux/amd64 image (else the first
    /// of an index). Returns the pinned digest with the files.
    pub fn read_image_folder(
        &self,
        reference: &ImageReference,
        folder: &str,
    ) -> Result<(Digest, FolderFiles), String> {
        self.pinned(reference, |image, pinned| {
            let digest = pinned
                .digest()
                .cloned()
                .ok_or_else(|| format!("{pinned} is not pinned to a digest"))?;
            layer_files::read_folder_from(image, folder)
                .map(|files| (digest, files))
                .map_err(|error| error.to_string())
        })?
    }

    /// Pins `reference` to the digest the first answering pull source
    /// gives and hands `read` the image there (its blobs fetched verified
    /// on demand into a temporary store) and the pinned reference at that
    /// source (`host/repository@digest` as reached, after registries.conf).
    pub fn with_image<T>(
        &self,
        reference: &ImageReference,
        read: impl FnOnce(&dyn ImageBlobs, &ImageReference) -> Result<T, String>,
    ) -> Result<T, String> {
        self.pinned(reference, read)?
    }

    /// [`RegistryAccess::with_image`] with the two failures apart: the
    /// outer error says no pull source answered, the inner one is `read`'s.
    fn pinned<T>(
        &self,
        reference: &ImageReference,
        read: impl FnOnce(&dyn ImageBlobs, &ImageReference) -> Result<T, String>,
    ) -> Result<Result<T, String>, String> {
        let sources = self
            .registries
            .pull_sources(reference)
            .map_err(|error| error.to_string())?;
        let client = self.client(&sources);
        let recorded = Recorded::default();
        let registries = Registries::new(&client, &self.registries, &recorded, false, &[]);
        let mut failures = Vec::new();
        for source in &sources {
            match self
                .runtime
                .block_on(client.get_manifest(&source.reference))
            {
                Ok(manifest) => {
                    let pinned = source.reference.with_digest(manifest.digest.clone());
                    // A temporary store lives as long as this image's read.
                    let blobs = LayerBlobs::new(self.cache.clone(), self.fill_cache)
                        .noting_in(self.reads.clone());
                    let image = SourceImage {
                        source: &registries,
                        pinned: registry_pinned(
                            pinned.clone(),
                            manifest.digest.clone(),
                            Some(manifest),
                        ),
                        place: pinned.to_string(),
                        blobs: &blobs,
                        waiting: Waiting::Runtime(&self.runtime),
                    };
                    return Ok(read(&image, &pinned));
                }
                Err(error) => failures.push(error.to_string()),
            }
        }
        Err(failures.join("; "))
    }

    /// Runs `future` on this access's runtime (the caller is not async).
    pub fn block_on<F: std::future::Future>(&self, future: F) -> F::Output {
        self.runtime.block_on(future)
    }
}

/// A catalog image's configs folder, read from an OCI layout or a registry
/// (the registry access made with `options` on first use and kept in
/// `access` for the next catalog), and loaded (`ferry list bundles` and
/// `ferry list operators`).
pub fn load_catalog(
    source: &ImageSource,
    access: &mut Option<RegistryAccess>,
    options: &RegistryAccessOptions,
) -> Result<Catalog, String> {
    let folder = match source {
        ImageSource::OciLayout { path } => {
            layer_files::read_labelled_folder(Path::new(path), CATALOG_CONFIGS_LABEL)
                .map_err(|error| error.to_string())?
        }
        ImageSource::Registry(reference) => {
            let access = match access {
                Some(access) => access,
                None => access.insert(RegistryAccess::new(options)?),
            };
            access.read_catalog(reference)?
        }
    };
    let files = folder
        .files
        .into_iter()
        .map(|(path, bytes)| CatalogFile::new(path, bytes))
        .collect();
    Catalog::load(files).map_err(|error| error.to_string())
}
