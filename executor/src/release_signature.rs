//! Release payload signatures (notes §5.3), the side effects: reading the
//! keyring, finding a payload's signature (kept in `working-dir/signatures/`
//! by an earlier run, else one GET of `<base>sha256=<hex>/signature-1`,
//! where the base is Red Hat's or `OCP_SIGNATURE_URL`), verifying it with
//! `ferry-content` and keeping it as `<tag>-sha256-<hex>`.
//!
//! [`ReleaseSignatures::verified`] is the one call a release collector
//! makes per payload; [`SignatureSettings::from_environment`] reads the two
//! variables once per run. Any failure is a typed [`ReleaseSignatureError`]:
//! for oc-mirror and ferry alike a fatal release error (skipped only with
//! `--ignore-release-signature`, by not calling this module).

use std::path::{Path, PathBuf};
use std::time::Duration;

use ferry_content::release::signature::{
    Keyring, KeyringError, SignatureError, VERIFICATION_KEY_VARIABLE, VerifiedSignature, verify,
};
use ferry_schemas::{Digest, ImageReference};

/// Where Red Hat publishes release signatures.
pub const DEFAULT_SIGNATURE_URL: &str =
    "https://mirror.openshift.com/pub/openshift-v4/signatures/openshift/release/";

/// The environment variable naming another signature store (a base URL).
pub const SIGNATURE_URL_VARIABLE: &str = "OCP_SIGNATURE_URL";

/// A signature file is about 1 KiB; more than this is not one.
const SIGNATURE_MAXIMUM_BYTES: usize = 1024 * 1024;

/// An armored keyring of a few keys is a few KiB; more than this is not one.
const KEY_FILE_MAXIMUM_BYTES: u64 = 4 * 1024 * 1024;

/// Why a payload's signature could not be had or was refused.
#[derive(Debug, thiserror::Error)]
pub enum ReleaseSignatureError {
    #[error("release signature {url}: {message}")]
    Request { url: String, message: String },
    #[error("no signature found for {digest} image {image} at {url} (HTTP {status})")]
    NotFound {
        digest: Digest,
        image: String,
        url: String,
        status: u16,
    },
    #[error(
        "no signature kept for {digest} image {image} in {}, and this run does not fetch any",
        folder.display()
    )]
    NotKept {
        digest: Digest,
        image: String,
        folder: PathBuf,
    },
    #[error("release signature {url} is larger than {SIGNATURE_MAXIMUM_BYTES} bytes")]
    TooLarge { url: String },
    #[error("release signature {url} for {digest} image {image}: {source}")]
    Invalid {
        digest: Digest,
        image: String,
        url: String,
        source: Box<SignatureError>,
    },
    #[error(
        "release signature {} kept in the workspace for {digest} image {image}: {source} (remove the file to fetch it again)",
        path.display()
    )]
    InvalidKept {
        digest: Digest,
        image: String,
        path: PathBuf,
        source: Box<SignatureError>,
    },
    #[error("{VERIFICATION_KEY_VARIABLE}={}: {message}", path.display())]
    KeyFile { path: PathBuf, message: String },
    #[error("{VERIFICATION_KEY_VARIABLE}={}: {source}", path.display())]
    Keyring {
        path: PathBuf,
        source: Box<KeyringError>,
    },
    #[error("cannot keep the release signature in {}: {message}", path.display())]
    Keep { path: PathBuf, message: String },
}

impl ReleaseSignatureError {
    /// Why the signature itself was refused, when it was (a fetched or a
    /// kept one): bad signature, other digest, bad claims...
    pub fn signature_error(&self) -> Option<&SignatureError> {
        match self {
            ReleaseSignatureError::Invalid { source, .. }
            | ReleaseSignatureError::InvalidKept { source, .. } => Some(source),
            _ => None,
        }
    }
}

/// The URL of a payload's first signature under `base`.
pub fn signature_url(base: &str, digest: &Digest) -> String {
    let separator = if base.ends_with('/') { "" } else { "/" };
    format!(
        "{base}{separator}{}={}/signature-1",
        digest.algorithm().name(),
        digest.hex()
    )
}

/// The name a signature is kept under in `working-dir/signatures/`, as
/// oc-mirror names it: `<tag>-sha256-<hex>`, or `sha256-<hex>` when the
/// signed identity has no tag.
pub fn kept_file_name(tag: Option<&str>, digest: &Digest) -> String {
    let digest_part = format!("{}-{}", digest.algorithm().name(), digest.hex());
    match tag {
        Some(tag) => format!("{tag}-{digest_part}"),
        None => digest_part,
    }
}

/// A fetched and verified signature.
#[derive(Clone, Debug)]
pub struct FetchedSignature {
    pub url: String,
    /// The file, byte for byte.
    pub bytes: Vec<u8>,
    pub verified: VerifiedSignature,
}

/// Where signatures come from.
#[derive(Clone, Debug)]
pub struct SignatureSource {
    base: String,
    client: reqwest::Client,
}

impl SignatureSource {
    /// `url_override` is `OCP_SIGNATURE_URL` as read by the caller.
    pub fn new(url_override: Option<String>) -> Result<SignatureSource, ReleaseSignatureError> {
        let base = url_override
            .filter(|url| !url.is_empty())
            .unwrap_or_else(|| DEFAULT_SIGNATURE_URL.to_owned());
        let client = reqwest::Client::builder()
            .user_agent(concat!("ferry/", env!("CARGO_PKG_VERSION")))
            .connect_timeout(Duration::from_secs(30))
            .timeout(Duration::from_secs(120))
            .build()
            .map_err(|error| ReleaseSignatureError::Request {
                url: base.clone(),
                message: error.to_string(),
            })?;
        Ok(SignatureSource { base, client })
    }

    /// The base URL signatures are fetched under.
    pub fn base(&self) -> &str {
        &self.base
    }

    /// GETs the signature of the payload `digest` (of the image `image`, for
    /// messages) and verifies it with `keyring`.
    pub async fn fetch_verified(
        &self,
        digest: &Digest,
        image: &str,
        keyring: &Keyring,
    ) -> Result<FetchedSignature, ReleaseSignatureError> {
        let url = signature_url(&self.base, digest);
        let request_error = |error: reqwest::Error| ReleaseSignatureError::Request {
            url: url.clone(),
            message: error.to_string(),
        };
        let response = self.client.get(&url).send().await.map_err(request_error)?;
        let status = response.status();
        if !status.is_success() {
            return Err(ReleaseSignatureError::NotFound {
                digest: digest.clone(),
                image: image.to_owned(),
                url,
                status: status.as_u16(),
            });
        }
        if response
            .content_length()
            .is_some_and(|length| length > SIGNATURE_MAXIMUM_BYTES as u64)
        {
            return Err(ReleaseSignatureError::TooLarge { url });
        }
        let bytes = response.bytes().await.map_err(request_error)?.to_vec();
        if bytes.len() > SIGNATURE_MAXIMUM_BYTES {
            return Err(ReleaseSignatureError::TooLarge { url });
        }
        let verified =
            verify(keyring, &bytes, digest).map_err(|source| ReleaseSignatureError::Invalid {
                digest: digest.clone(),
                image: image.to_owned(),
                url: url.clone(),
                source: Box::new(source),
            })?;
        Ok(FetchedSignature {
            url,
            bytes,
            verified,
        })
    }
}

/// The two environment variables of release signatures, read once.
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct SignatureSettings {
    /// `OCP_SIGNATURE_URL`: the signature store's base URL instead of Red Hat's.
    pub url_override: Option<String>,
    /// `OCP_SIGNATURE_VERIFICATION_PK`: an armored keyring file instead of
    /// the embedded Red Hat release keys.
    pub key_file: Option<PathBuf>,
}

impl SignatureSettings {
    /// Reads `OCP_SIGNATURE_URL` and `OCP_SIGNATURE_VERIFICATION_PK`; an
    /// empty value counts as unset.
    pub fn from_environment() -> SignatureSettings {
        let read = |name: &str| std::env::var_os(name).filter(|value| !value.is_empty());
        SignatureSettings {
            url_override: read(SIGNATURE_URL_VARIABLE)
                .map(|value| value.to_string_lossy().into_owned()),
            key_file: read(VERIFICATION_KEY_VARIABLE).map(PathBuf::from),
        }
    }

    /// The keyring: the key file's, or Red Hat's release keys.
    pub fn keyring(&self) -> Result<Keyring, ReleaseSignatureError> {
        let Some(path) = &self.key_file else {
            return Ok(Keyring::red_hat_release());
        };
        let key_file_error = |message: String| ReleaseSignatureError::KeyFile {
            path: path.clone(),
            message,
        };
        let metadata = std::fs::metadata(path)
            .map_err(|cause| key_file_error(format!("cannot read the key file: {cause}")))?;
        if metadata.len() > KEY_FILE_MAXIMUM_BYTES {
            return Err(key_file_error(format!(
                "the key file is larger than {KEY_FILE_MAXIMUM_BYTES} bytes: not an armored keyring"
            )));
        }
        let text = std::fs::read_to_string(path)
            .map_err(|cause| key_file_error(format!("cannot read the key file: {cause}")))?;
        Keyring::from_armored(&text).map_err(|source| ReleaseSignatureError::Keyring {
            path: path.clone(),
            source: Box::new(source),
        })
    }
}

/// Where a verified signature came from.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum SignatureOrigin {
    /// Kept in the workspace by an earlier run (no request made).
    Kept,
    /// Fetched from this URL in this run.
    Fetched { url: String },
}

/// A payload's verified signature, kept in the workspace.
#[derive(Clone, Debug)]
pub struct ReleaseSignature {
    /// The payload's digest, which the signature names.
    pub digest: Digest,
    /// The signature file, byte for byte (for the signature ConfigMap).
    pub bytes: Vec<u8>,
    /// The signed identity, e.g. `quay.io/openshift-release-dev/ocp-release:4.18.1-x86_64`:
    /// where oc-mirror pulls the payload from.
    pub identity: ImageReference,
    /// Its tag (`4.18.1-x86_64`), which names the payload at the destination
    /// (`openshift/release-images:<tag>`, notes §4.5); `None` names it by digest.
    pub release_tag: Option<String>,
    /// The key that made the signature and the packet version (3 or 4).
    pub verified: VerifiedSignature,
    /// Where it is kept: `working-dir/signatures/<tag>-sha256-<hex>`.
    pub kept_at: PathBuf,
    pub origin: SignatureOrigin,
}

/// A run's release signatures: the keyring, the store, the workspace folder.
#[derive(Clone, Debug)]
pub struct ReleaseSignatures {
    source: SignatureSource,
    keyring: Keyring,
    folder: PathBuf,
    /// The cache's `signatures/` folder, shared by every workspace that
    /// uses the cache: looked in after `folder`, and given a copy of every
    /// signature verified, so an enclave's mirror-to-disk finds what the
    /// enterprise side's disk-to-mirror brought, never asking the store.
    shared: Option<PathBuf>,
    offline: bool,
}

impl ReleaseSignatures {
    /// Reads the keyring the settings name (an unreadable or invalid key
    /// file is an error now, before any payload). `folder` is
    /// `Workspace::signatures()`. Offline (disk-to-mirror, `--trust-state`
    /// runs that must not reach out), only kept signatures are used.
    pub fn new(
        settings: &SignatureSettings,
        folder: PathBuf,
        offline: bool,
    ) -> Result<ReleaseSignatures, ReleaseSignatureError> {
        Ok(ReleaseSignatures {
            source: SignatureSource::new(settings.url_override.clone())?,
            keyring: settings.keyring()?,
            folder,
            shared: None,
            offline,
        })
    }

    /// Also looks in, and keeps a copy in, `shared` (the cache's
    /// `signatures/` folder).
    pub fn sharing(mut self, shared: Option<PathBuf>) -> ReleaseSignatures {
        self.shared = shared;
        self
    }

    /// The keyring signatures are verified with.
    pub fn keyring(&self) -> &Keyring {
        &self.keyring
    }

    /// The payload `digest`'s signature, verified: the one kept in the
    /// workspace when there is one (verified again: a file changed since is
    /// refused, not replaced), else fetched, verified and kept. `image` is
    /// the payload's source reference, named in errors.
    pub async fn verified(
        &self,
        digest: &Digest,
        image: &ImageReference,
    ) -> Result<ReleaseSignature, ReleaseSignatureError> {
        let image_text = image.to_string();
        let kept = match Self::kept_file(&self.folder, digest)? {
            Some(path) => Some((path, false)),
            None => self.shared_file(digest),
        };
        if let Some((path, from_shared)) = kept {
            let bytes = std::fs::read(&path).map_err(|cause| ReleaseSignatureError::Keep {
                path: path.clone(),
                message: format!("cannot read it: {cause}"),
            })?;
            let verified = verify(&self.keyring, &bytes, digest).map_err(|source| {
                ReleaseSignatureError::InvalidKept {
                    digest: digest.clone(),
                    image: image_text.clone(),
                    path: path.clone(),
                    source: Box::new(source),
                }
            })?;
            let name = path.file_name().map(PathBuf::from).unwrap_or_default();
            let path = if from_shared {
                // Kept in this workspace too, as a fetched one would be.
                let own = self.folder.join(&name);
                keep(&own, &bytes)?;
                own
            } else {
                self.share(&name, &bytes);
                path
            };
            return Ok(release_signature(
                digest,
                bytes,
                verified,
                path,
                SignatureOrigin::Kept,
            ));
        }
        if self.offline {
            return Err(ReleaseSignatureError::NotKept {
                digest: digest.clone(),
                image: image_text,
                folder: self.folder.clone(),
            });
        }
        let fetched = self
            .source
            .fetch_verified(digest, &image_text, &self.keyring)
            .await?;
        let name = kept_file_name(fetched.verified.release_tag(), digest);
        let path = self.folder.join(&name);
        keep(&path, &fetched.bytes)?;
        self.share(Path::new(&name), &fetched.bytes);
        Ok(release_signature(
            digest,
            fetched.bytes,
            fetched.verified,
            path,
            SignatureOrigin::Fetched { url: fetched.url },
        ))
    }

    /// The shared folder's file for `digest` when it verifies with this
    /// keyring (`true`: from the shared folder). One that does not (another
    /// keyring's, or damaged) is passed over, not an error: the shared
    /// folder is a cache, and the signature is fetched as if it were not
    /// there.
    fn shared_file(&self, digest: &Digest) -> Option<(PathBuf, bool)> {
        let path = Self::kept_file(self.shared.as_deref()?, digest).ok()??;
        let bytes = std::fs::read(&path).ok()?;
        match verify(&self.keyring, &bytes, digest) {
            Ok(_) => Some((path, true)),
            Err(error) => {
                tracing::warn!(
                    "release signature {} in the cache passed over: {error}",
                    path.display()
                );
                None
            }
        }
    }

    /// A copy of a verified signature in the shared folder, when there is
    /// one. A copy that cannot be written costs only a later fetch: logged,
    /// not an error.
    fn share(&self, name: &Path, bytes: &[u8]) {
        let Some(shared) = &self.shared else { return };
        let path = shared.join(name);
        if path.is_file() {
            return;
        }
        if let Err(error) = keep(&path, bytes) {
            tracing::warn!("release signature not shared through the cache: {error}");
        }
    }

    /// The file kept in `folder` for `digest`, if any: the first name
    /// (sorted) that ends with `sha256-<hex>`, as oc-mirror looks for
    /// `*<digest>*`.
    fn kept_file(folder: &Path, digest: &Digest) -> Result<Option<PathBuf>, ReleaseSignatureError> {
        let suffix = kept_file_name(None, digest);
        let entries = match std::fs::read_dir(folder) {
            Ok(entries) => entries,
            Err(cause) if cause.kind() == std::io::ErrorKind::NotFound => return Ok(None),
            Err(cause) => {
                return Err(ReleaseSignatureError::Keep {
                    path: folder.to_path_buf(),
                    message: format!("cannot list the folder: {cause}"),
                });
            }
        };
        let mut matching: Vec<PathBuf> = entries
            .flatten()
            .filter(|entry| entry.file_name().to_string_lossy().ends_with(&suffix))
            .map(|entry| entry.path())
            .filter(|path| path.is_file())
            .collect();
        matching.sort();
        Ok(matching.into_iter().next())
    }
}

fn release_signature(
    digest: &Digest,
    bytes: Vec<u8>,
    verified: VerifiedSignature,
    kept_at: PathBuf,
    origin: SignatureOrigin,
) -> ReleaseSignature {
    ReleaseSignature {
        digest: digest.clone(),
        bytes,
        identity: verified.claims.identity.clone(),
        release_tag: verified.release_tag().map(str::to_owned),
        verified,
        kept_at,
        origin,
    }
}

/// Writes `bytes` beside `path` and renames, so an interrupted run leaves
/// no half file that a later run would refuse.
fn keep(path: &Path, bytes: &[u8]) -> Result<(), ReleaseSignatureError> {
    let keep_error = |cause: std::io::Error| ReleaseSignatureError::Keep {
        path: path.to_path_buf(),
        message: cause.to_string(),
    };
    crate::atomic_file::write(path, bytes).map_err(keep_error)
}
