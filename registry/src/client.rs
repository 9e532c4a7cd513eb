//! The OCI Distribution (Docker Registry HTTP API V2) client.
//!
//! One [`RegistryClient`] serves every registry of a run. Per host it keeps
//! a connection pool configured for that host's TLS (system roots, plus the
//! CA and client certificates of `certs.d/<host[:port]>/`), whether plain
//! HTTP is allowed, and the authorization that worked last (anonymous,
//! Basic, or a Bearer token cached per scope and refreshed on 401).
//!
//! Content is never trusted: manifests are hashed from their exact bytes and
//! compared with the digest asked for; blobs stream through the store's
//! [`BlobWriter`], which checks digest and size before anything becomes
//! visible, and a dropped connection resumes with `Range` from the bytes
//! already written. Nothing holds a whole blob in memory. A file pushed
//! from the cache is hashed as it streams out: a corrupt copy fails the
//! upload before its last bytes leave, naming the file.
//!
//! Errors name the registry that failed (in a copy, the source or the
//! destination), and say why in words a user can act on: plain HTTP met
//! with HTTPS (and the flag that allows it), no credentials (the files
//! read) or rejected ones (the file they came from), the proxy a failed
//! connection went through (never its password).
//!
//! Each registry gets at most `transfers_per_registry` blob transfers in
//! flight; connections are kept alive and reused per host.
//!
//! Retries: connection errors, timeouts, 408, 429 (honouring
//! `Retry-After`) and 5xx are retried up to `retry_times`, with exponential
//! backoff and jitter, or a fixed `retry_delay`; so is a response whose body
//! is cut short or stalls (manifests, tag lists and tokens are asked again;
//! blobs resume). A request's headers must come within `header_timeout`,
//! and a body may send nothing for at most `stall_timeout`. Every retry is
//! logged at warn level, naming the registry, what failed and the attempt
//! (`retry 2/5`); never a header or a credential.

use std::collections::HashMap;
use std::path::{Path, PathBuf};
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::{Arc, Mutex};
use std::time::Duration;

use bytes::Bytes;
use ferry_schemas::digest::DigestHasher;
use ferry_schemas::{Digest, ImageReference};
use ferry_store::{BlobStore, BlobWriter};
use futures_util::StreamExt as _;
use reqwest::header::{
    ACCEPT, AUTHORIZATION, CONTENT_LENGTH, CONTENT_RANGE, CONTENT_TYPE, LOCATION, RANGE,
    RETRY_AFTER, WWW_AUTHENTICATE,
};
use reqwest::{Method, StatusCode};

use crate::credentials::CredentialStore;

/// Media types ferry asks for when reading a manifest.
pub const MANIFEST_MEDIA_TYPES: [&str; 4] = [
    "application/vnd.oci.image.index.v1+json",
    "application/vnd.oci.image.manifest.v1+json",
    "application/vnd.docker.distribution.manifest.list.v2+json",
    "application/vnd.docker.distribution.manifest.v2+json",
];

const SCHEMA1_MEDIA_TYPES: [&str; 2] = [
    "application/vnd.docker.distribution.manifest.v1+json",
    "application/vnd.docker.distribution.manifest.v1+prettyjws",
];

/// Blobs above this size are uploaded in chunks.
const CHUNKED_UPLOAD_THRESHOLD: u64 = 512 * 1024 * 1024;
/// Size of one chunk of a chunked upload.
const UPLOAD_CHUNK: usize = 16 * 1024 * 1024;
/// Default of [`ClientOptions::ask_before_upload_from`].
pub const ASK_BEFORE_UPLOAD_FROM: u64 = 1024 * 1024;

/// Default of [`ClientOptions::header_timeout`].
pub const HEADER_TIMEOUT: Duration = Duration::from_secs(30);
/// Default of [`ClientOptions::stall_timeout`].
pub const STALL_TIMEOUT: Duration = Duration::from_secs(60);
/// Requests with a body larger than this have no header deadline: sending
/// the body is part of the wait, and a slow link would look like a stall.
const HEADER_TIMEOUT_BODY_LIMIT: usize = 1024 * 1024;
/// The largest manifest ferry reads (containers/image refuses larger ones
/// too).
pub const MANIFEST_MAXIMUM_BYTES: u64 = 4 * 1024 * 1024;
/// The largest tag-list page or token answer ferry reads.
const SMALL_BODY_MAXIMUM_BYTES: u64 = 16 * 1024 * 1024;

/// How long a host that could not be reached (its ping failed after every
/// retry) is taken as unreachable before it is tried again.
const UNREACHABLE_FOR: Duration = Duration::from_secs(10);

/// How a client behaves.
#[derive(Clone, Debug)]
pub struct ClientOptions {
    pub credentials: CredentialStore,
    /// Verify TLS certificates. When false, plain HTTP is allowed too (as
    /// with skopeo's `--tls-verify=false`).
    pub tls_verify: bool,
    /// Hosts (`host[:port]`) that may use plain HTTP and unverified TLS,
    /// such as registries marked `insecure` in registries.conf.
    pub insecure_hosts: Vec<String>,
    /// `certs.d` folders to search for `<host[:port]>/{*.crt,*.cert,*.key}`.
    pub certificate_folders: Vec<PathBuf>,
    pub retry_times: u32,
    /// Blob transfers in flight at once to or from one registry.
    pub transfers_per_registry: usize,
    /// A fixed delay between retries; exponential backoff when `None`.
    pub retry_delay: Option<Duration>,
    pub timeout: Duration,
    /// How long to wait for a response's headers after sending a request
    /// (one without a body above 1 MiB) before retrying it.
    pub header_timeout: Duration,
    /// How long a response body, or a blob streamed from a source, may
    /// send nothing before the transfer counts as stalled and is retried.
    pub stall_timeout: Duration,
    /// Blobs of at least this many bytes are uploaded only after a HEAD
    /// says the destination lacks them; smaller ones are uploaded without
    /// asking (sending a blob the registry has costs about what the HEAD
    /// would, and the registry checks the digest of every upload). 0: ask
    /// before every upload.
    pub ask_before_upload_from: u64,
}

impl Default for ClientOptions {
    fn default() -> Self {
        let mut certificate_folders = vec![
            PathBuf::from("/etc/containers/certs.d"),
            PathBuf::from("/etc/docker/certs.d"),
        ];
        if let Some(home) = std::env::var_os("HOME") {
            certificate_folders.insert(0, PathBuf::from(home).join(".config/containers/certs.d"));
        }
        ClientOptions {
            credentials: CredentialStore::discover(None),
            tls_verify: true,
            insecure_hosts: Vec::new(),
            certificate_folders,
            retry_times: 5,
            transfers_per_registry: 6,
            retry_delay: None,
            timeout: Duration::from_secs(600),
            header_timeout: HEADER_TIMEOUT,
            stall_timeout: STALL_TIMEOUT,
            ask_before_upload_from: ASK_BEFORE_UPLOAD_FROM,
        }
    }
}

/// What went wrong talking to a registry.
#[derive(Debug, thiserror::Error)]
#[error("{registry}/{repository}{target}: {kind}")]
pub struct RegistryError {
    pub registry: String,
    pub repository: String,
    /// `:tag`, `@digest` or empty.
    pub target: String,
    pub kind: ErrorKind,
}

/// The kinds of registry failure, each with what to do about it.
#[derive(Debug, thiserror::Error)]
pub enum ErrorKind {
    #[error(
        "authentication failed (HTTP {status}); check the credentials for this registry in your auth file (--authfile, $REGISTRY_AUTH_FILE, ~/.docker/config.json)"
    )]
    Unauthorized { status: u16 },
    #[error(
        "authentication required (HTTP {status}): no credentials for {host} in {searched}; log in (podman login {host}) or name an auth file with --authfile"
    )]
    NoCredentials {
        status: u16,
        host: String,
        /// The auth files read, for the message.
        searched: String,
    },
    #[error(
        "credentials for {host} rejected (HTTP {status}); they come from {origin}: check them, or log in again"
    )]
    CredentialsRejected {
        status: u16,
        host: String,
        /// Where the credentials were found (a file, or a helper).
        origin: String,
    },
    #[error(
        "the registry answered plain HTTP to an HTTPS request; if {host} serves plain HTTP on purpose, use {flag}, or mark it `insecure = true` in registries.conf"
    )]
    PlainHttp {
        host: String,
        /// The flag that allows it: `--dest-tls-verify=false` where the
        /// request was to a destination, `--src-tls-verify=false` where
        /// it was to a source, both where the client cannot tell.
        flag: &'static str,
    },
    #[error("access denied (HTTP 403); the credentials work but do not allow this")]
    Denied,
    #[error("not found (HTTP 404): the registry has no such manifest or blob")]
    NotFound,
    #[error(
        "Docker schema 1 manifests are not supported; push the image again with a current client (schema 2 or OCI)"
    )]
    Schema1,
    #[error("the manifest's bytes hash to {actual}, not {expected}")]
    DigestMismatch { expected: Digest, actual: Digest },
    #[error(
        "TLS failure: {message}; searched for CA certificates in: {searched}. Add the registry's CA there, or use --src-tls-verify=false / --dest-tls-verify=false"
    )]
    Tls { message: String, searched: String },
    #[error("cannot connect: {0}")]
    Connection(String),
    #[error(
        "the registry closed the connection after {} of the {what}",
        byte_progress(*.received, *.expected)
    )]
    BodyCut {
        what: String,
        received: u64,
        expected: Option<u64>,
    },
    #[error(
        "the registry sent nothing for {} after {} of the {what}",
        seconds(*.waited),
        byte_progress(*.received, *.expected)
    )]
    BodyStalled {
        what: String,
        waited: Duration,
        received: u64,
        expected: Option<u64>,
    },
    #[error("the registry sent no answer within {} of the request", seconds(*.waited))]
    HeadersStalled { waited: Duration },
    #[error(
        "the registry does not allow deleting manifests (HTTP 405); enable deletion and restart it: for distribution (docker-registry), `storage.delete.enabled: true` in its config.yml, or REGISTRY_STORAGE_DELETE_ENABLED=true in its environment"
    )]
    DeletionDisabled,
    #[error("unexpected answer HTTP {status}: {body}")]
    Status { status: u16, body: String },
    #[error("the registry's answer is malformed: {0}")]
    Protocol(String),
    #[error("storing the blob: {0}")]
    Store(#[from] ferry_store::Error),
    #[error("reading the blob to push: {0}")]
    Source(String),
}

impl ErrorKind {
    /// A copy of a connection or TLS failure (the kinds a failed ping
    /// remembers); any other kind becomes its message.
    fn copy(&self) -> ErrorKind {
        match self {
            ErrorKind::Connection(message) => ErrorKind::Connection(message.clone()),
            ErrorKind::PlainHttp { host, flag } => ErrorKind::PlainHttp {
                host: host.clone(),
                flag,
            },
            ErrorKind::Tls { message, searched } => ErrorKind::Tls {
                message: message.clone(),
                searched: searched.clone(),
            },
            other => ErrorKind::Protocol(other.to_string()),
        }
    }

    /// The error as it reads for a request to `side`: a plain-HTTP
    /// registry names the one flag for that side.
    fn on(self, side: Side) -> ErrorKind {
        match self {
            ErrorKind::PlainHttp { host, .. } => ErrorKind::PlainHttp {
                host,
                flag: match side {
                    Side::Source => "--src-tls-verify=false",
                    Side::Destination => "--dest-tls-verify=false",
                },
            },
            other => other,
        }
    }

    /// Whether retrying may help.
    fn retryable(&self) -> bool {
        match self {
            ErrorKind::Connection(_)
            | ErrorKind::BodyCut { .. }
            | ErrorKind::BodyStalled { .. }
            | ErrorKind::HeadersStalled { .. } => true,
            ErrorKind::Status { status, .. } => matches!(status, 408 | 429 | 500..=599),
            _ => false,
        }
    }
}

/// `812 of 2,310 bytes`, or `812 bytes` when the whole size is unknown.
fn byte_progress(received: u64, expected: Option<u64>) -> String {
    match expected {
        Some(expected) => format!("{} of {} bytes", grouped(received), grouped(expected)),
        None => format!("{} bytes", grouped(received)),
    }
}

/// A count with thousands separators (`2,310`).
fn grouped(count: u64) -> String {
    let digits = count.to_string();
    let mut text = String::new();
    for (index, digit) in digits.chars().enumerate() {
        if index > 0 && (digits.len() - index).is_multiple_of(3) {
            text.push(',');
        }
        text.push(digit);
    }
    text
}

/// `30 s`, `1.5 s` or `250 ms`.
fn seconds(duration: Duration) -> String {
    if duration < Duration::from_secs(1) {
        format!("{} ms", duration.as_millis())
    } else if duration.subsec_millis() == 0 {
        format!("{} s", duration.as_secs())
    } else {
        format!("{:.1} s", duration.as_secs_f64())
    }
}

/// Why reading a response body stopped early.
enum BodyFailure {
    /// The connection failed or closed before the body was whole.
    Cut,
    /// Nothing came for the stall timeout.
    Stalled,
}

/// A response body as a stream of chunks, each of which must come within
/// `stall` of the one before.
fn stall_guarded(
    response: reqwest::Response,
    stall: Duration,
) -> impl futures_util::Stream<Item = std::result::Result<Bytes, BodyFailure>> + Send + Unpin {
    let chunks = Box::pin(response.bytes_stream());
    Box::pin(futures_util::stream::unfold(
        Some(chunks),
        move |state| async move {
            let mut chunks = state?;
            match tokio::time::timeout(stall, chunks.next()).await {
                Err(_) => Some((Err(BodyFailure::Stalled), None)),
                Ok(None) => None,
                Ok(Some(Ok(chunk))) => Some((Ok(chunk), Some(chunks))),
                Ok(Some(Err(_))) => Some((Err(BodyFailure::Cut), None)),
            }
        },
    ))
}

/// The plain-HTTP flags, for a registry the client cannot tell is a source
/// or the destination.
const EITHER_TLS_VERIFY_FLAG: &str =
    "--src-tls-verify=false (a source) or --dest-tls-verify=false (the destination)";

/// Which end of a registry-to-registry copy failed.
#[derive(Clone, Copy, Debug)]
enum Side {
    Source,
    Destination,
}

/// A whole response: its status, headers and body.
struct WholeResponse {
    status: StatusCode,
    headers: reqwest::header::HeaderMap,
    bytes: Bytes,
}

/// The method and path of a request, for logs (no query: upload URLs carry
/// session state there; no headers: they carry credentials).
fn request_label(request: &reqwest::Request) -> (String, String) {
    let url = request.url();
    let host = match url.port() {
        Some(port) => format!("{}:{port}", url.host_str().unwrap_or_default()),
        None => url.host_str().unwrap_or_default().to_owned(),
    };
    (host, format!("{} {}", request.method(), url.path()))
}

/// A manifest with its exact bytes.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Manifest {
    pub media_type: String,
    pub digest: Digest,
    pub bytes: Bytes,
}

/// What a HEAD of a manifest tells.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct ManifestHead {
    pub media_type: String,
    pub digest: Option<Digest>,
    pub size: Option<u64>,
}

/// What a DELETE of a manifest found.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum DeleteOutcome {
    /// The registry accepted the deletion (HTTP 202).
    Deleted,
    /// The registry has no such manifest (HTTP 404): already gone.
    Absent,
}

/// How a blob got to the destination.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum PushOutcome {
    /// A HEAD found it there already (asked only before uploading a blob
    /// of at least [`ClientOptions::ask_before_upload_from`] bytes).
    Present,
    /// Mounted from another repository of the same registry: the registry
    /// answered the mount with 201, which it also does when the
    /// repository had the blob already.
    Mounted,
    /// Uploaded in one PUT.
    Uploaded,
    /// Uploaded in PATCH chunks.
    UploadedInChunks,
}

#[derive(Clone, Debug)]
enum Authorization {
    Anonymous,
    Basic(String),
    Bearer { challenge: BearerChallenge },
}

#[derive(Clone, Debug, PartialEq, Eq)]
struct BearerChallenge {
    realm: String,
    service: Option<String>,
}

/// Per-host state.
struct Host {
    http: reqwest::Client,
    scheme: &'static str,
    authorization: Authorization,
    searched_folders: String,
    /// Limits blob transfers in flight with this host.
    transfers: Arc<tokio::sync::Semaphore>,
}

/// The registry client.
#[derive(Clone)]
pub struct RegistryClient {
    options: Arc<ClientOptions>,
    hosts: Arc<tokio::sync::Mutex<HashMap<String, Arc<Host>>>>,
    /// Hosts whose ping failed to connect (after its retries), when, and
    /// why: for [`UNREACHABLE_FOR`] every request to them fails at once
    /// instead of each retrying the ping on its own.
    unreachable: Arc<Mutex<HashMap<String, (std::time::Instant, ErrorKind)>>>,
    tokens: Arc<Mutex<HashMap<(String, String), String>>>,
    /// One async lock per digest being fetched, so concurrent fetches of a
    /// digest wait without blocking a runtime thread, and the later ones
    /// find it in the store.
    fetching: Arc<Mutex<HashMap<Digest, Arc<tokio::sync::Mutex<()>>>>>,
}

type Result<T> = std::result::Result<T, ErrorKind>;

/// A request body that could not be read whole and right (a cached file
/// gone, short, or not hashing to its digest): carried through reqwest's
/// error chain, so the request fails for that reason and is not retried.
#[derive(Debug)]
struct BodySourceProblem(String);

impl std::fmt::Display for BodySourceProblem {
    fn fmt(&self, formatter: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        formatter.write_str(&self.0)
    }
}

impl std::error::Error for BodySourceProblem {}

/// The problem a request body stream reported, if one did.
fn body_source_problem(error: &reqwest::Error) -> Option<String> {
    let mut current: Option<&(dyn std::error::Error + 'static)> = Some(error);
    while let Some(inner) = current {
        if let Some(problem) = inner.downcast_ref::<BodySourceProblem>() {
            return Some(problem.0.clone());
        }
        // io::Error::source skips the error it wraps: look inside.
        if let Some(problem) = inner
            .downcast_ref::<std::io::Error>()
            .and_then(std::io::Error::get_ref)
            .and_then(|wrapped| wrapped.downcast_ref::<BodySourceProblem>())
        {
            return Some(problem.0.clone());
        }
        current = inner.source();
    }
    None
}

/// The proxy a request to `url` goes through, as the environment
/// (`HTTPS_PROXY`, `HTTP_PROXY`, `ALL_PROXY`, `NO_PROXY`) chooses it for
/// reqwest: its address without credentials, and the variables naming it.
fn proxy_for(url: &reqwest::Url) -> Option<String> {
    let matcher = hyper_util::client::proxy::matcher::Matcher::from_env();
    let intercept = matcher.intercept(&url.as_str().parse().ok()?)?;
    let variables = if url.scheme() == "https" {
        "$HTTPS_PROXY or $ALL_PROXY"
    } else {
        "$HTTP_PROXY or $ALL_PROXY"
    };
    Some(format!("{} (from {variables})", intercept.uri()))
}

fn connection_error(error: &reqwest::Error) -> ErrorKind {
    if let Some(problem) = body_source_problem(error) {
        return ErrorKind::Source(problem);
    }
    let mut message = error.to_string();
    let mut source = std::error::Error::source(error);
    while let Some(inner) = source {
        message.push_str(": ");
        message.push_str(&inner.to_string());
        source = inner.source();
    }
    if error.is_connect()
        && let Some(proxy) = error.url().and_then(proxy_for)
    {
        message = format!("through the proxy {proxy}: {message}");
    }
    ErrorKind::Connection(message)
}

fn is_tls_problem(message: &str) -> bool {
    let lowered = message.to_ascii_lowercase();
    [
        "certificate",
        "tls",
        "ssl",
        "handshake",
        "unknownissuer",
        "invalid peer",
    ]
    .iter()
    .any(|needle| lowered.contains(needle))
}

/// Parses `Bearer realm="...",service="...",scope="..."` or `Basic realm=...`.
fn parse_challenge(header: &str) -> Option<(String, HashMap<String, String>)> {
    let (scheme, rest) = header.trim().split_once(' ').unwrap_or((header.trim(), ""));
    let mut parameters = HashMap::new();
    let mut remaining = rest.trim();
    while !remaining.is_empty() {
        let (key, after) = remaining.split_once('=')?;
        let after = after.trim_start();
        let (value, next) = if let Some(quoted) = after.strip_prefix('"') {
            let end = quoted.find('"')?;
            (&quoted[..end], &quoted[end + 1..])
        } else {
            let end = after.find(',').unwrap_or(after.len());
            (&after[..end], &after[end..])
        };
        parameters.insert(key.trim().to_ascii_lowercase(), value.to_owned());
        remaining = next.trim_start_matches([',', ' ']);
    }
    Some((scheme.to_ascii_lowercase(), parameters))
}

/// The digest of bytes, sha256.
/// Pages of a tag list [`RegistryClient::list_tags`] follows at most.
pub const TAG_LIST_PAGES: usize = 100;

/// The path (with query) of a `Link: <...>; rel="next"` header, as the
/// distribution spec pages tag lists (written by hand: one header form, not
/// worth a crate). Only a path on the same registry is followed.
fn next_page_path(header: &str) -> Option<String> {
    header.split(',').find_map(|link| {
        let (target, parameters) = link.split_once(';')?;
        let is_next = parameters
            .split(';')
            .any(|parameter| parameter.replace([' ', '"'], "") == "rel=next");
        let target = target.trim().strip_prefix('<')?.strip_suffix('>')?;
        (is_next && target.starts_with("/v2/")).then(|| target.to_owned())
    })
}

/// The sha256 digest of `bytes`.
pub fn sha256_of(bytes: &[u8]) -> Digest {
    Digest::sha256_of(bytes)
}

impl RegistryClient {
    pub fn new(options: ClientOptions) -> Self {
        RegistryClient {
            options: Arc::new(options),
            hosts: Arc::default(),
            unreachable: Arc::default(),
            tokens: Arc::default(),
            fetching: Arc::default(),
        }
    }

    fn insecure(&self, host: &str) -> bool {
        !self.options.tls_verify || self.options.insecure_hosts.iter().any(|h| h == host)
    }

    /// Builds the HTTP client of a host: its CA and client certificates
    /// from certs.d, TLS verification as configured.
    fn build_http(&self, host: &str) -> Result<(reqwest::Client, String)> {
        let mut builder = reqwest::Client::builder()
            .user_agent(concat!("ferry/", env!("CARGO_PKG_VERSION")))
            .connect_timeout(Duration::from_secs(30))
            .pool_idle_timeout(Duration::from_secs(90))
            .redirect(reqwest::redirect::Policy::limited(10));
        let mut searched = Vec::new();
        for folder in &self.options.certificate_folders {
            let host_folder = folder.join(host);
            searched.push(host_folder.display().to_string());
            let Ok(entries) = std::fs::read_dir(&host_folder) else {
                continue;
            };
            let mut files: Vec<PathBuf> =
                entries.filter_map(|e| e.ok().map(|e| e.path())).collect();
            files.sort();
            for file in &files {
                let extension = file
                    .extension()
                    .and_then(|e| e.to_str())
                    .unwrap_or_default();
                if extension == "crt" {
                    let pem = read_file(file)?;
                    let certificate =
                        reqwest::Certificate::from_pem(&pem).map_err(|error| ErrorKind::Tls {
                            message: format!("{}: {error}", file.display()),
                            searched: String::new(),
                        })?;
                    builder = builder.add_root_certificate(certificate);
                } else if extension == "cert" {
                    let key_path = file.with_extension("key");
                    let mut pem = read_file(file)?;
                    pem.extend(read_file(&key_path)?);
                    let identity =
                        reqwest::Identity::from_pem(&pem).map_err(|error| ErrorKind::Tls {
                            message: format!("{}: {error}", file.display()),
                            searched: String::new(),
                        })?;
                    builder = builder.identity(identity);
                }
            }
        }
        if self.insecure(host) {
            builder = builder.danger_accept_invalid_certs(true);
        }
        let client = builder.build().map_err(|error| ErrorKind::Tls {
            message: error.to_string(),
            searched: searched.join(", "),
        })?;
        Ok((client, searched.join(", ")))
    }

    /// The host's state: pings `/v2/` once to learn the scheme and the
    /// authentication it asks for.
    async fn host(&self, host: &str) -> Result<Arc<Host>> {
        let mut hosts = self.hosts.lock().await;
        if let Some(existing) = hosts.get(host) {
            return Ok(existing.clone());
        }
        if let Some(reason) = self.recently_unreachable(host) {
            return Err(reason);
        }
        let pinged = self.ping(host).await;
        match &pinged {
            Ok(state) => {
                hosts.insert(host.to_owned(), state.clone());
            }
            Err(
                kind @ (ErrorKind::Connection(_)
                | ErrorKind::Tls { .. }
                | ErrorKind::PlainHttp { .. }),
            ) => {
                self.unreachable
                    .lock()
                    .unwrap_or_else(std::sync::PoisonError::into_inner)
                    .insert(host.to_owned(), (std::time::Instant::now(), kind.copy()));
            }
            Err(_) => {}
        }
        pinged
    }

    /// Why `host` could not be reached, when its last ping failed less
    /// than [`UNREACHABLE_FOR`] ago.
    fn recently_unreachable(&self, host: &str) -> Option<ErrorKind> {
        let unreachable = self
            .unreachable
            .lock()
            .unwrap_or_else(std::sync::PoisonError::into_inner);
        let (when, reason) = unreachable.get(host)?;
        (when.elapsed() < UNREACHABLE_FOR).then(|| reason.copy())
    }

    /// Reaches `host` (its `/v2/`, with the configured retries) and learns
    /// how it authenticates; later requests reuse what it learnt. Lets a
    /// run find out at once that its destination cannot be reached.
    pub async fn check_reachable(&self, host: &str) -> std::result::Result<(), RegistryError> {
        self.host(host)
            .await
            .map(drop)
            .map_err(|kind| RegistryError {
                registry: host.to_owned(),
                repository: String::new(),
                target: String::new(),
                kind: kind.on(Side::Destination),
            })
    }

    /// Pings `/v2/` of `host`: its scheme and the authentication it asks for.
    async fn ping(&self, host: &str) -> Result<Arc<Host>> {
        let (http, searched_folders) = self.build_http(host)?;
        let mut schemes = vec!["https"];
        if self.insecure(host) {
            schemes.push("http");
        }
        let mut last_error = None;
        let fallback = schemes.len() > 1;
        for scheme in schemes {
            let url = format!("{scheme}://{host}/v2/");
            // With a plain-HTTP fallback, one HTTPS attempt decides: a
            // registry that speaks only HTTP fails it at once, and retrying
            // would only delay the fallback.
            let attempt = if fallback && scheme == "https" {
                http.get(&url)
                    .timeout(Duration::from_secs(30))
                    .send()
                    .await
                    .map_err(|error| connection_error(&error))
            } else {
                self.send_with_retries(|| http.get(&url)).await
            };
            match attempt {
                Ok(response) => {
                    let authorization = match response.status() {
                        StatusCode::UNAUTHORIZED => {
                            let header = response
                                .headers()
                                .get(WWW_AUTHENTICATE)
                                .and_then(|value| value.to_str().ok())
                                .unwrap_or_default()
                                .to_owned();
                            self.authorization_for(host, &header)?
                        }
                        _ => Authorization::Anonymous,
                    };
                    let state = Arc::new(Host {
                        http,
                        scheme,
                        authorization,
                        searched_folders,
                        transfers: Arc::new(tokio::sync::Semaphore::new(
                            self.options.transfers_per_registry.max(1),
                        )),
                    });
                    return Ok(state);
                }
                Err(error) => last_error = Some(error),
            }
        }
        let error =
            last_error.unwrap_or_else(|| ErrorKind::Connection("no scheme to try".to_owned()));
        // HTTPS failed where plain HTTP is not allowed: a registry that
        // answers plain HTTP gets a message that says so and names the flag.
        if !fallback
            && let ErrorKind::Connection(message) = &error
            && !message.to_ascii_lowercase().contains("certificate")
            && !message.starts_with("through the proxy")
            && self.answers_plain_http(&http, host).await
        {
            return Err(ErrorKind::PlainHttp {
                host: host.to_owned(),
                flag: EITHER_TLS_VERIFY_FLAG,
            });
        }
        Err(match error {
            ErrorKind::Connection(message) if is_tls_problem(&message) => ErrorKind::Tls {
                message,
                searched: searched_folders,
            },
            other => other,
        })
    }

    /// Whether `host` answers a plain-HTTP `/v2/` (asked once, after
    /// HTTPS failed). A TLS server that answers plain HTTP with "400: an
    /// HTTP request to an HTTPS server" does not count.
    async fn answers_plain_http(&self, http: &reqwest::Client, host: &str) -> bool {
        let Ok(response) = http
            .get(format!("http://{host}/v2/"))
            .timeout(Duration::from_secs(10))
            .send()
            .await
        else {
            return false;
        };
        if response.status() != StatusCode::BAD_REQUEST {
            return true;
        }
        let body = tokio::time::timeout(Duration::from_secs(5), response.text())
            .await
            .ok()
            .and_then(std::result::Result::ok)
            .unwrap_or_default();
        !body.contains("HTTPS")
    }

    fn authorization_for(&self, host: &str, header: &str) -> Result<Authorization> {
        let Some((scheme, parameters)) = parse_challenge(header) else {
            return Err(ErrorKind::Protocol(format!(
                "unreadable WWW-Authenticate header: {header}"
            )));
        };
        match scheme.as_str() {
            "basic" => {
                let credentials = self
                    .options
                    .credentials
                    .lookup(host, "")
                    .map_err(|error| ErrorKind::Protocol(error.to_string()))?;
                match credentials {
                    Some(credentials) => Ok(Authorization::Basic(credentials.basic_header())),
                    None => Err(self.unauthorized(host, "", 401)),
                }
            }
            "bearer" => Ok(Authorization::Bearer {
                challenge: BearerChallenge {
                    realm: parameters.get("realm").cloned().ok_or_else(|| {
                        ErrorKind::Protocol("a Bearer challenge without realm".to_owned())
                    })?,
                    service: parameters.get("service").cloned(),
                },
            }),
            other => Err(ErrorKind::Protocol(format!(
                "unsupported authentication scheme `{other}`"
            ))),
        }
    }

    /// The error for a refused authentication at `host`: the credentials
    /// were rejected (naming where they came from), or there were none
    /// (naming the files read). Never the credentials themselves.
    fn unauthorized(&self, host: &str, repository: &str, status: u16) -> ErrorKind {
        match self.options.credentials.find(host, repository) {
            Ok(Some(found)) => ErrorKind::CredentialsRejected {
                status,
                host: host.to_owned(),
                origin: found.origin,
            },
            Ok(None) => ErrorKind::NoCredentials {
                status,
                host: host.to_owned(),
                searched: self.options.credentials.describe_files(),
            },
            Err(error) => ErrorKind::Protocol(error.to_string()),
        }
    }

    /// A Bearer token for `scope` at `host`, from the cache or the realm.
    async fn token(
        &self,
        host_name: &str,
        host: &Host,
        challenge: &BearerChallenge,
        repository: &str,
        scope: &str,
        refresh: bool,
    ) -> Result<String> {
        let key = (host_name.to_owned(), scope.to_owned());
        if !refresh
            && let Some(token) = self
                .tokens
                .lock()
                .unwrap_or_else(std::sync::PoisonError::into_inner)
                .get(&key)
        {
            return Ok(token.clone());
        }
        let mut url = url::Url::parse(&challenge.realm).map_err(|error| {
            ErrorKind::Protocol(format!("token realm `{}`: {error}", challenge.realm))
        })?;
        {
            let mut query = url.query_pairs_mut();
            if let Some(service) = &challenge.service {
                query.append_pair("service", service);
            }
            for part in scope.split(' ') {
                query.append_pair("scope", part);
            }
        }
        let credentials = self
            .options
            .credentials
            .lookup(host_name, repository)
            .map_err(|error| ErrorKind::Protocol(error.to_string()))?;
        let mut attempt = 0;
        let answer = loop {
            let response = self
                .send_with_retries(|| {
                    let request = host.http.get(url.clone());
                    match &credentials {
                        Some(credentials) => {
                            request.header(AUTHORIZATION, credentials.basic_header())
                        }
                        None => request,
                    }
                })
                .await?;
            match response.status() {
                StatusCode::UNAUTHORIZED | StatusCode::FORBIDDEN => {
                    return Err(self.unauthorized(
                        host_name,
                        repository,
                        response.status().as_u16(),
                    ));
                }
                status if !status.is_success() => {
                    return Err(ErrorKind::Status {
                        status: status.as_u16(),
                        body: "from the token service".to_owned(),
                    });
                }
                _ => {}
            }
            let realm_host = url.host_str().unwrap_or_default().to_owned();
            match self
                .read_whole(response, "token answer", SMALL_BODY_MAXIMUM_BYTES)
                .await
            {
                Ok(answer) => break answer,
                Err(error) if error.retryable() && attempt < self.options.retry_times => {
                    attempt += 1;
                    let what = format!("GET {}", url.path());
                    self.before_retry(&realm_host, &what, &error, attempt, None)
                        .await;
                }
                Err(error) => return Err(error),
            }
        };
        let body: serde_json::Value = serde_json::from_slice(&answer.bytes)
            .map_err(|error| ErrorKind::Protocol(format!("token answer: {error}")))?;
        let token = body["token"]
            .as_str()
            .or_else(|| body["access_token"].as_str())
            .ok_or_else(|| ErrorKind::Protocol("the token answer has no token".to_owned()))?
            .to_owned();
        self.tokens
            .lock()
            .unwrap_or_else(std::sync::PoisonError::into_inner)
            .insert(key, token.clone());
        Ok(token)
    }

    /// Sends a request built by `build`, retrying what may pass on a retry.
    async fn send_with_retries(
        &self,
        build: impl Fn() -> reqwest::RequestBuilder,
    ) -> Result<reqwest::Response> {
        let mut attempt = 0;
        loop {
            let request = build().timeout(self.options.timeout);
            // Log the method and URL only: headers carry credentials and
            // are never logged.
            let built = request.try_clone().and_then(|r| r.build().ok());
            if let Some(built) = &built {
                tracing::trace!(method = %built.method(), url = %built.url(), attempt, "registry request");
            }
            // A request that streams its body (it cannot be cloned) or
            // sends a large one has no header deadline: sending is part of
            // the wait.
            let header_deadline = built
                .as_ref()
                .is_some_and(|built| {
                    built.body().is_none_or(|body| {
                        body.as_bytes()
                            .is_some_and(|bytes| bytes.len() <= HEADER_TIMEOUT_BODY_LIMIT)
                    })
                })
                .then_some(self.options.header_timeout);
            let label = built.as_ref().map(request_label);
            let outcome = match header_deadline {
                Some(deadline) => match tokio::time::timeout(deadline, request.send()).await {
                    Ok(outcome) => outcome.map_err(|error| connection_error(&error)),
                    Err(_) => Err(ErrorKind::HeadersStalled { waited: deadline }),
                },
                None => request
                    .send()
                    .await
                    .map_err(|error| connection_error(&error)),
            };
            if let Ok(response) = &outcome {
                tracing::trace!(status = response.status().as_u16(), url = %response.url(), "registry response");
            }
            let (error, retry_after) = match outcome {
                Ok(response) => {
                    let status = response.status().as_u16();
                    if !matches!(status, 408 | 429 | 500..=599)
                        || attempt >= self.options.retry_times
                    {
                        return Ok(response);
                    }
                    let retry_after = response
                        .headers()
                        .get(RETRY_AFTER)
                        .and_then(|value| value.to_str().ok())
                        .and_then(|value| value.trim().parse::<u64>().ok())
                        .map(Duration::from_secs);
                    (
                        ErrorKind::Status {
                            status,
                            body: String::new(),
                        },
                        retry_after,
                    )
                }
                Err(error) => (error, None),
            };
            if !error.retryable() || attempt >= self.options.retry_times {
                return Err(error);
            }
            attempt += 1;
            let (registry, what) = label.unwrap_or_default();
            self.before_retry(&registry, &what, &error, attempt, retry_after)
                .await;
        }
    }

    /// Logs that a request to `registry` is retried (at warn level: on
    /// screen and in the run log) and waits before the retry.
    async fn before_retry(
        &self,
        registry: &str,
        what: &str,
        error: &ErrorKind,
        attempt: u32,
        retry_after: Option<Duration>,
    ) {
        let delay = retry_after.unwrap_or_else(|| self.backoff(attempt));
        tracing::warn!(
            "{registry}: {what} failed: {error}; retry {attempt}/{} in {}",
            self.options.retry_times,
            seconds(delay)
        );
        tokio::time::sleep(delay).await;
    }

    /// Sends a request whose whole body is wanted (a manifest, a tag-list
    /// page, a token answer) and reads it, at most `limit` bytes. A body
    /// that is cut short or stalls is asked for again, as a failed
    /// connection is.
    async fn request_whole(
        &self,
        registry: &str,
        repository: &str,
        scope: &str,
        what: &str,
        limit: u64,
        build: impl Fn(&reqwest::Client, &str) -> reqwest::RequestBuilder,
    ) -> Result<WholeResponse> {
        let mut attempt = 0;
        loop {
            let response = self.request(registry, repository, scope, &build).await?;
            let path = format!("GET {}", response.url().path());
            match self.read_whole(response, what, limit).await {
                Ok(whole) => return Ok(whole),
                Err(error) if error.retryable() && attempt < self.options.retry_times => {
                    attempt += 1;
                    self.before_retry(registry, &path, &error, attempt, None)
                        .await;
                }
                Err(error) => return Err(error),
            }
        }
    }

    /// Reads a whole response body of at most `limit` bytes, each chunk
    /// within the stall timeout.
    async fn read_whole(
        &self,
        response: reqwest::Response,
        what: &str,
        limit: u64,
    ) -> Result<WholeResponse> {
        let status = response.status();
        let headers = response.headers().clone();
        let expected = response.content_length();
        if let Some(length) = expected
            && length > limit
        {
            return Err(ErrorKind::Protocol(format!(
                "the {what} is {} bytes, more than the {} ferry reads",
                grouped(length),
                grouped(limit)
            )));
        }
        let mut body = Vec::with_capacity(expected.unwrap_or(0) as usize);
        let mut chunks = stall_guarded(response, self.options.stall_timeout);
        while let Some(chunk) = chunks.next().await {
            let received = body.len() as u64;
            match chunk {
                Ok(chunk) => body.extend_from_slice(&chunk),
                Err(BodyFailure::Cut) => {
                    return Err(ErrorKind::BodyCut {
                        what: what.to_owned(),
                        received,
                        expected,
                    });
                }
                Err(BodyFailure::Stalled) => {
                    return Err(ErrorKind::BodyStalled {
                        what: what.to_owned(),
                        waited: self.options.stall_timeout,
                        received,
                        expected,
                    });
                }
            }
            if body.len() as u64 > limit {
                return Err(ErrorKind::Protocol(format!(
                    "the {what} is more than the {} bytes ferry reads",
                    grouped(limit)
                )));
            }
        }
        if let Some(expected) = expected
            && (body.len() as u64) < expected
        {
            return Err(ErrorKind::BodyCut {
                what: what.to_owned(),
                received: body.len() as u64,
                expected: Some(expected),
            });
        }
        Ok(WholeResponse {
            status,
            headers,
            bytes: Bytes::from(body),
        })
    }

    fn backoff(&self, attempt: u32) -> Duration {
        if let Some(delay) = self.options.retry_delay {
            return delay;
        }
        let base = Duration::from_millis(200) * 2u32.saturating_pow(attempt.min(8));
        let jitter = Duration::from_millis(rand::random::<u64>() % 200);
        base.min(Duration::from_secs(30)) + jitter
    }

    /// Sends an authorized request to `path` on the reference's registry,
    /// retrying once with a fresh token after a 401.
    async fn request(
        &self,
        registry: &str,
        repository: &str,
        scope: &str,
        build: impl Fn(&reqwest::Client, &str) -> reqwest::RequestBuilder,
    ) -> Result<reqwest::Response> {
        let host = self.host(registry).await?;
        let base = format!("{}://{registry}", host.scheme);
        for refresh in [false, true] {
            let authorization = match &host.authorization {
                Authorization::Anonymous => None,
                Authorization::Basic(header) => Some(header.clone()),
                Authorization::Bearer { challenge } => Some(format!(
                    "Bearer {}",
                    self.token(registry, &host, challenge, repository, scope, refresh)
                        .await?
                )),
            };
            let response = self
                .send_with_retries(|| {
                    let request = build(&host.http, &base);
                    match &authorization {
                        Some(header) => request.header(AUTHORIZATION, header),
                        None => request,
                    }
                })
                .await
                .map_err(|error| match error {
                    ErrorKind::Connection(message) if is_tls_problem(&message) => ErrorKind::Tls {
                        message,
                        searched: host.searched_folders.clone(),
                    },
                    other => other,
                })?;
            if response.status() == StatusCode::UNAUTHORIZED
                && !refresh
                && matches!(host.authorization, Authorization::Bearer { .. })
            {
                continue;
            }
            if response.status() == StatusCode::UNAUTHORIZED {
                return Err(self.unauthorized(registry, repository, 401));
            }
            return Ok(response);
        }
        unreachable!("the loop returns on its second pass")
    }

    /// The Authorization header for one request (no retry, no refresh).
    async fn authorization_header(
        &self,
        registry: &str,
        host: &Host,
        repository: &str,
        scope: &str,
    ) -> Result<Option<String>> {
        Ok(match &host.authorization {
            Authorization::Anonymous => None,
            Authorization::Basic(header) => Some(header.clone()),
            Authorization::Bearer { challenge } => Some(format!(
                "Bearer {}",
                self.token(registry, host, challenge, repository, scope, false)
                    .await?
            )),
        })
    }

    /// Copies a blob from one registry to another without storing it: the
    /// source's bytes stream into the destination's upload, hashed on the
    /// way; a wrong digest or size aborts the upload before it completes
    /// (and the destination checks the digest of a completed upload too).
    /// The whole copy is retried on retryable failures.
    ///
    /// With `mount_from`, a mount is tried first (no HEAD: a mount of a
    /// blob the repository has answers 201 too). Before an upload, a HEAD
    /// asks whether the destination has the blob only when it is at least
    /// [`ClientOptions::ask_before_upload_from`] bytes.
    #[allow(clippy::too_many_arguments)] // two endpoints and the blob: all needed
    pub async fn copy_blob(
        &self,
        source_registry: &str,
        source_repository: &str,
        destination_registry: &str,
        destination_repository: &str,
        digest: &Digest,
        size: u64,
        mount_from: Option<&str>,
    ) -> std::result::Result<PushOutcome, RegistryError> {
        self.copy_blob_counting(
            source_registry,
            source_repository,
            destination_registry,
            destination_repository,
            digest,
            size,
            mount_from,
            &Arc::new(AtomicU64::new(0)),
        )
        .await
    }

    /// [`Self::copy_blob`], keeping `streamed` at the number of bytes the
    /// current attempt has passed from source to destination so far (back
    /// to 0 when a retry starts over), for progress reports while a large
    /// blob moves.
    #[allow(clippy::too_many_arguments)] // two endpoints, the blob and its counter
    pub async fn copy_blob_counting(
        &self,
        source_registry: &str,
        source_repository: &str,
        destination_registry: &str,
        destination_repository: &str,
        digest: &Digest,
        size: u64,
        mount_from: Option<&str>,
        streamed: &Arc<AtomicU64>,
    ) -> std::result::Result<PushOutcome, RegistryError> {
        let wrap =
            |kind| Self::blob_error(destination_registry, destination_repository, digest, kind);
        // A failure at the source is reported against the source.
        let at = |side: Side, kind: ErrorKind| match side {
            Side::Source => {
                Self::blob_error(source_registry, source_repository, digest, kind.on(side))
            }
            Side::Destination => wrap(kind.on(side)),
        };
        // A mount goes first, without a HEAD: the registry answers 201
        // when the repository has the blob already, too. When it opens an
        // upload session instead, the copy uses that session.
        let mut session = None;
        if let Some(from) = mount_from {
            match self
                .mount(destination_registry, destination_repository, digest, from)
                .await
            {
                Ok(None) => return Ok(PushOutcome::Mounted),
                Ok(Some(location)) => session = Some(location),
                Err(error) => {
                    tracing::debug!(%error, "mount refused; copying the blob instead");
                }
            }
        }
        if self
            .present_before_upload(destination_registry, destination_repository, digest, size)
            .await?
        {
            return Ok(PushOutcome::Present);
        }
        let _source_permit = self
            .transfer_permit(source_registry)
            .await
            .map_err(|kind| at(Side::Source, kind))?;
        let _destination_permit = self
            .transfer_permit(destination_registry)
            .await
            .map_err(wrap)?;
        let mut attempt = 0;
        loop {
            match self
                .copy_blob_once(
                    source_registry,
                    source_repository,
                    destination_registry,
                    destination_repository,
                    digest,
                    size,
                    session.take(),
                    streamed,
                )
                .await
            {
                Ok(()) => return Ok(PushOutcome::Uploaded),
                Err((side, error)) if error.retryable() && attempt < self.options.retry_times => {
                    attempt += 1;
                    let what = format!(
                        "copy of blob {digest} from {source_registry}/{source_repository} to {destination_repository}"
                    );
                    let failed_registry = match side {
                        Side::Source => source_registry,
                        Side::Destination => destination_registry,
                    };
                    self.before_retry(failed_registry, &what, &error, attempt, None)
                        .await;
                }
                Err((side, error)) => return Err(at(side, error)),
            }
        }
    }

    /// Whether a blob about to be uploaded is at the destination already:
    /// asked with a HEAD only for blobs of at least
    /// [`ClientOptions::ask_before_upload_from`] bytes (a smaller one is
    /// sent without asking).
    async fn present_before_upload(
        &self,
        registry: &str,
        repository: &str,
        digest: &Digest,
        size: u64,
    ) -> std::result::Result<bool, RegistryError> {
        Ok(size >= self.options.ask_before_upload_from
            && self
                .blob_size(registry, repository, digest)
                .await
                .map_err(|error| RegistryError {
                    kind: error.kind.on(Side::Destination),
                    ..error
                })?
                .is_some())
    }

    /// One attempt of a copy, into the upload `session` when one is open
    /// already, else into a new one.
    #[allow(clippy::too_many_arguments)] // as copy_blob_counting
    async fn copy_blob_once(
        &self,
        source_registry: &str,
        source_repository: &str,
        destination_registry: &str,
        destination_repository: &str,
        digest: &Digest,
        size: u64,
        session: Option<String>,
        streamed: &Arc<AtomicU64>,
    ) -> std::result::Result<(), (Side, ErrorKind)> {
        let at_destination = |kind| (Side::Destination, kind);
        streamed.store(0, Ordering::Relaxed);
        let counter = streamed.clone();
        let location = match session {
            Some(location) => location,
            None => self
                .start_upload(destination_registry, destination_repository)
                .await
                .map_err(at_destination)?,
        };
        let source = self
            .request(
                source_registry,
                source_repository,
                &Self::pull_scope(source_repository),
                |http, base| http.get(format!("{base}/v2/{source_repository}/blobs/{digest}")),
            )
            .await
            .map_err(|kind| (Side::Source, kind))?;
        if !source.status().is_success() {
            return Err((Side::Source, Self::status_error(source).await));
        }
        let expected = digest.clone();
        let (outcome_sender, outcome_receiver) = tokio::sync::oneshot::channel::<Result<()>>();
        let mut outcome_sender = Some(outcome_sender);
        let mut hasher = Some(DigestHasher::new(expected.algorithm()));
        let mut received: u64 = 0;
        let stall = self.options.stall_timeout;
        let verified = stall_guarded(source, stall).map(move |chunk| -> std::result::Result<Bytes, std::io::Error> {
            let chunk = chunk.map_err(|failure| {
                if let Some(sender) = outcome_sender.take() {
                    let what = "blob (at the source)".to_owned();
                    let _ = sender.send(Err(match failure {
                        BodyFailure::Cut => ErrorKind::BodyCut { what, received, expected: Some(size) },
                        BodyFailure::Stalled => ErrorKind::BodyStalled { what, waited: stall, received, expected: Some(size) },
                    }));
                }
                std::io::Error::other("the source connection failed")
            })?;
            received += chunk.len() as u64;
            counter.store(received.min(size), Ordering::Relaxed);
            if let Some(hasher) = hasher.as_mut() {
                hasher.update(&chunk);
            }
            let finished = received >= size;
            if received > size || (finished && hasher.take().map(DigestHasher::finish).as_ref() != Some(&expected)) {
                if let Some(sender) = outcome_sender.take() {
                    let _ = sender.send(Err(ErrorKind::Protocol(format!(
                        "the source sent content that does not match {expected} ({received} bytes for {size})"
                    ))));
                }
                return Err(std::io::Error::other("content does not match its digest"));
            }
            if finished && let Some(sender) = outcome_sender.take() {
                let _ = sender.send(Ok(()));
            }
            Ok(chunk)
        });
        let host = self
            .host(destination_registry)
            .await
            .map_err(at_destination)?;
        let authorization = self
            .authorization_header(
                destination_registry,
                &host,
                destination_repository,
                &Self::push_scope(destination_repository),
            )
            .await
            .map_err(at_destination)?;
        let url = with_digest(&location, digest);
        tracing::trace!(method = "PUT", %url, "registry request");
        let mut request = host
            .http
            .put(&url)
            .header(CONTENT_TYPE, "application/octet-stream")
            .header(CONTENT_LENGTH, size)
            .timeout(self.options.timeout)
            .body(reqwest::Body::wrap_stream(verified));
        if let Some(header) = authorization {
            request = request.header(AUTHORIZATION, header);
        }
        let response = request.send().await;
        // A failure on the source side, or a digest mismatch, explains a
        // failed PUT better than the PUT's own error.
        if let Ok(Err(source_error)) = outcome_receiver.await {
            return Err((Side::Source, source_error));
        }
        let response = response.map_err(|error| at_destination(connection_error(&error)))?;
        if response.status() != StatusCode::CREATED {
            return Err(at_destination(Self::status_error(response).await));
        }
        Ok(())
    }

    fn error(reference: &ImageReference, kind: ErrorKind) -> RegistryError {
        let target = match (reference.tag(), reference.digest()) {
            (_, Some(digest)) => format!("@{digest}"),
            (Some(tag), None) => format!(":{tag}"),
            (None, None) => String::new(),
        };
        RegistryError {
            registry: reference.registry().to_owned(),
            repository: reference.repository().to_owned(),
            target,
            kind,
        }
    }

    fn blob_error(
        registry: &str,
        repository: &str,
        digest: &Digest,
        kind: ErrorKind,
    ) -> RegistryError {
        RegistryError {
            registry: registry.to_owned(),
            repository: repository.to_owned(),
            target: format!("@{digest}"),
            kind,
        }
    }

    async fn status_error(response: reqwest::Response) -> ErrorKind {
        let status = response.status().as_u16();
        match status {
            401 => ErrorKind::Unauthorized { status },
            403 => ErrorKind::Denied,
            404 => ErrorKind::NotFound,
            _ => {
                // The body only explains the status: a stalled one is not
                // waited for long.
                let body = tokio::time::timeout(Duration::from_secs(10), response.text())
                    .await
                    .ok()
                    .and_then(std::result::Result::ok)
                    .unwrap_or_default();
                let body: String = body.chars().take(300).collect();
                ErrorKind::Status { status, body }
            }
        }
    }

    /// The error for a whole response with a failure status.
    fn status_error_whole(whole: &WholeResponse) -> ErrorKind {
        let status = whole.status.as_u16();
        match status {
            401 => ErrorKind::Unauthorized { status },
            403 => ErrorKind::Denied,
            404 => ErrorKind::NotFound,
            _ => ErrorKind::Status {
                status,
                body: String::from_utf8_lossy(&whole.bytes)
                    .chars()
                    .take(300)
                    .collect(),
            },
        }
    }

    fn manifest_path(reference: &ImageReference) -> String {
        let target = match (reference.digest(), reference.tag()) {
            (Some(digest), _) => digest.to_string(),
            (None, Some(tag)) => tag.to_owned(),
            (None, None) => "latest".to_owned(),
        };
        format!("/v2/{}/manifests/{target}", reference.repository())
    }

    fn pull_scope(repository: &str) -> String {
        format!("repository:{repository}:pull")
    }

    fn push_scope(repository: &str) -> String {
        format!("repository:{repository}:pull,push")
    }

    /// Waits for a free transfer slot of `registry`.
    async fn transfer_permit(&self, registry: &str) -> Result<tokio::sync::OwnedSemaphorePermit> {
        let host = self.host(registry).await?;
        host.transfers
            .clone()
            .acquire_owned()
            .await
            .map_err(|_| ErrorKind::Protocol("the client is shutting down".to_owned()))
    }

    /// HEAD of a manifest: `None` when it does not exist.
    pub async fn head_manifest(
        &self,
        reference: &ImageReference,
    ) -> std::result::Result<Option<ManifestHead>, RegistryError> {
        let path = Self::manifest_path(reference);
        let accept = MANIFEST_MEDIA_TYPES.join(", ");
        let response = self
            .request(
                reference.registry(),
                reference.repository(),
                &Self::pull_scope(reference.repository()),
                |http, base| {
                    http.request(Method::HEAD, format!("{base}{path}"))
                        .header(ACCEPT, &accept)
                },
            )
            .await
            .map_err(|kind| Self::error(reference, kind))?;
        if response.status() == StatusCode::NOT_FOUND {
            return Ok(None);
        }
        if !response.status().is_success() {
            return Err(Self::error(reference, Self::status_error(response).await));
        }
        let headers = response.headers();
        let text = |name: &str| {
            headers
                .get(name)
                .and_then(|value| value.to_str().ok())
                .map(str::to_owned)
        };
        Ok(Some(ManifestHead {
            media_type: text("content-type").unwrap_or_default(),
            digest: text("docker-content-digest").and_then(|digest| digest.parse().ok()),
            size: text("content-length").and_then(|length| length.parse().ok()),
        }))
    }

    /// GET of a manifest, its exact bytes verified against the digest asked for.
    pub async fn get_manifest(
        &self,
        reference: &ImageReference,
    ) -> std::result::Result<Manifest, RegistryError> {
        let path = Self::manifest_path(reference);
        let accept = MANIFEST_MEDIA_TYPES.join(", ");
        let response = self
            .request_whole(
                reference.registry(),
                reference.repository(),
                &Self::pull_scope(reference.repository()),
                "manifest",
                MANIFEST_MAXIMUM_BYTES,
                |http, base| http.get(format!("{base}{path}")).header(ACCEPT, &accept),
            )
            .await
            .map_err(|kind| Self::error(reference, kind))?;
        if !response.status.is_success() {
            return Err(Self::error(reference, Self::status_error_whole(&response)));
        }
        let header_type = response
            .headers
            .get(CONTENT_TYPE)
            .and_then(|value| value.to_str().ok())
            .unwrap_or_default()
            .to_owned();
        let bytes = response.bytes;
        // A manifest asked for by digest is hashed with that digest's
        // algorithm (and named by it); one asked for by tag, by sha256.
        let digest = match reference.digest() {
            Some(expected) => Digest::of(expected.algorithm(), &bytes),
            None => sha256_of(&bytes),
        };
        if let Some(expected) = reference.digest()
            && *expected != digest
        {
            return Err(Self::error(
                reference,
                ErrorKind::DigestMismatch {
                    expected: expected.clone(),
                    actual: digest,
                },
            ));
        }
        // The media type in the body is authoritative when present.
        let body_type = serde_json::from_slice::<serde_json::Value>(&bytes)
            .ok()
            .and_then(|value| value["mediaType"].as_str().map(str::to_owned));
        let media_type = body_type.unwrap_or(header_type);
        if SCHEMA1_MEDIA_TYPES.contains(&media_type.as_str()) {
            return Err(Self::error(reference, ErrorKind::Schema1));
        }
        Ok(Manifest {
            media_type,
            digest,
            bytes,
        })
    }

    /// PUT of a manifest under `reference`'s tag (or digest).
    pub async fn put_manifest(
        &self,
        reference: &ImageReference,
        manifest: &Manifest,
    ) -> std::result::Result<(), RegistryError> {
        let path = Self::manifest_path(reference);
        let response = self
            .request(
                reference.registry(),
                reference.repository(),
                &Self::push_scope(reference.repository()),
                |http, base| {
                    http.put(format!("{base}{path}"))
                        .header(CONTENT_TYPE, &manifest.media_type)
                        .body(manifest.bytes.clone())
                },
            )
            .await
            .map_err(|kind| Self::error(reference, kind.on(Side::Destination)))?;
        if !response.status().is_success() {
            return Err(Self::error(
                reference,
                Self::status_error(response).await.on(Side::Destination),
            ));
        }
        Ok(())
    }

    /// DELETE of a manifest by digest (`DELETE /v2/<name>/manifests/<digest>`):
    /// the registry drops the manifest and every tag pointing to it; its
    /// blobs stay until the registry's garbage collector runs. A manifest
    /// already gone is [`DeleteOutcome::Absent`]; a registry that does not
    /// allow deleting (HTTP 405) is [`ErrorKind::DeletionDisabled`].
    pub async fn delete_manifest(
        &self,
        registry: &str,
        repository: &str,
        digest: &Digest,
    ) -> std::result::Result<DeleteOutcome, RegistryError> {
        let failed = |kind: ErrorKind| Self::blob_error(registry, repository, digest, kind);
        let response = self
            .request(
                registry,
                repository,
                &format!("repository:{repository}:delete"),
                |http, base| http.delete(format!("{base}/v2/{repository}/manifests/{digest}")),
            )
            .await
            .map_err(|kind| failed(kind.on(Side::Destination)))?;
        match response.status() {
            status if status.is_success() => Ok(DeleteOutcome::Deleted),
            StatusCode::NOT_FOUND => Ok(DeleteOutcome::Absent),
            StatusCode::METHOD_NOT_ALLOWED => Err(failed(ErrorKind::DeletionDisabled)),
            _ => Err(failed(
                Self::status_error(response).await.on(Side::Destination),
            )),
        }
    }

    /// Every tag of a repository (`GET /v2/<name>/tags/list`, following
    /// the `Link` header's next pages, at most [`TAG_LIST_PAGES`] of them).
    /// `None` when the repository does not exist.
    pub async fn list_tags(
        &self,
        registry: &str,
        repository: &str,
    ) -> std::result::Result<Option<Vec<String>>, RegistryError> {
        #[derive(serde::Deserialize)]
        struct TagList {
            #[serde(default)]
            tags: Option<Vec<String>>,
        }
        let failed = |kind| RegistryError {
            registry: registry.to_owned(),
            repository: repository.to_owned(),
            target: " (tag list)".to_owned(),
            kind,
        };
        let mut tags = Vec::new();
        let mut path = format!("/v2/{repository}/tags/list");
        for _ in 0..TAG_LIST_PAGES {
            let response = self
                .request_whole(
                    registry,
                    repository,
                    &Self::pull_scope(repository),
                    "tag list",
                    SMALL_BODY_MAXIMUM_BYTES,
                    |http, base| http.get(format!("{base}{path}")),
                )
                .await
                .map_err(failed)?;
            if response.status == StatusCode::NOT_FOUND {
                return Ok(None);
            }
            if !response.status.is_success() {
                return Err(failed(Self::status_error_whole(&response)));
            }
            let next = response
                .headers
                .get(reqwest::header::LINK)
                .and_then(|value| value.to_str().ok())
                .and_then(next_page_path);
            let page: TagList = serde_json::from_slice(&response.bytes)
                .map_err(|error| failed(ErrorKind::Protocol(format!("tag list: {error}"))))?;
            tags.extend(page.tags.unwrap_or_default());
            match next {
                Some(next) => path = next,
                None => return Ok(Some(tags)),
            }
        }
        Err(failed(ErrorKind::Protocol(format!(
            "tag list longer than {TAG_LIST_PAGES} pages"
        ))))
    }

    /// Whether a blob exists in a repository; its size when it does.
    pub async fn blob_size(
        &self,
        registry: &str,
        repository: &str,
        digest: &Digest,
    ) -> std::result::Result<Option<u64>, RegistryError> {
        let response = self
            .request(
                registry,
                repository,
                &Self::pull_scope(repository),
                |http, base| http.head(format!("{base}/v2/{repository}/blobs/{digest}")),
            )
            .await
            .map_err(|kind| Self::blob_error(registry, repository, digest, kind))?;
        match response.status() {
            StatusCode::NOT_FOUND => Ok(None),
            status if status.is_success() => Ok(response
                .headers()
                .get(CONTENT_LENGTH)
                .and_then(|value| value.to_str().ok())
                .and_then(|value| value.parse().ok())
                .or(Some(0))),
            _ => Err(Self::blob_error(
                registry,
                repository,
                digest,
                Self::status_error(response).await,
            )),
        }
    }

    /// Fetches a blob into the store, verified; resumes with `Range` after
    /// a dropped connection. Returns the bytes received over the network
    /// (0 when the store had it).
    pub async fn fetch_blob(
        &self,
        registry: &str,
        repository: &str,
        digest: &Digest,
        size: Option<u64>,
        store: &BlobStore,
    ) -> std::result::Result<u64, RegistryError> {
        let wrap =
            |kind: ErrorKind| Self::blob_error(registry, repository, digest, kind.on(Side::Source));
        let digest_lock = self
            .fetching
            .lock()
            .unwrap_or_else(std::sync::PoisonError::into_inner)
            .entry(digest.clone())
            .or_default()
            .clone();
        let _fetching = digest_lock.lock().await;
        let _permit = self.transfer_permit(registry).await.map_err(wrap)?;
        let Some(mut writer) = store.begin(digest, size).map_err(|e| wrap(e.into()))? else {
            return Ok(0);
        };
        let mut received = 0;
        let mut attempt = 0;
        loop {
            match self
                .fetch_into(registry, repository, digest, &mut writer)
                .await
            {
                Ok(bytes) => {
                    received += bytes;
                    break;
                }
                Err((bytes, error)) => {
                    received += bytes;
                    if !error.retryable() || attempt >= self.options.retry_times {
                        return Err(wrap(error));
                    }
                    attempt += 1;
                    let what = format!("GET /v2/{repository}/blobs/{digest}");
                    self.before_retry(registry, &what, &error, attempt, None)
                        .await;
                }
            }
        }
        writer.commit().map_err(|e| wrap(e.into()))?;
        Ok(received)
    }

    /// One GET of a blob, from where `writer` stands. Returns the bytes
    /// received; on failure, also how many arrived before it.
    async fn fetch_into(
        &self,
        registry: &str,
        repository: &str,
        digest: &Digest,
        writer: &mut BlobWriter,
    ) -> std::result::Result<u64, (u64, ErrorKind)> {
        let offset = writer.written();
        let response = self
            .request(
                registry,
                repository,
                &Self::pull_scope(repository),
                |http, base| {
                    let request = http.get(format!("{base}/v2/{repository}/blobs/{digest}"));
                    if offset > 0 {
                        request.header(RANGE, format!("bytes={offset}-"))
                    } else {
                        request
                    }
                },
            )
            .await
            .map_err(|error| (0, error))?;
        let status = response.status();
        if offset > 0 && status == StatusCode::OK {
            // The registry ignored the Range: the content starts over.
            return Err((
                0,
                ErrorKind::Protocol(
                    "the registry does not resume downloads (Range ignored)".to_owned(),
                ),
            ));
        }
        if !(status == StatusCode::OK || status == StatusCode::PARTIAL_CONTENT) {
            return Err((0, Self::status_error(response).await));
        }
        let expected = response.content_length().map(|length| offset + length);
        let mut stream = stall_guarded(response, self.options.stall_timeout);
        let mut received = 0;
        while let Some(chunk) = stream.next().await {
            let chunk = chunk.map_err(|failure| {
                let what = "blob".to_owned();
                let error = match failure {
                    BodyFailure::Cut => ErrorKind::BodyCut {
                        what,
                        received: offset + received,
                        expected,
                    },
                    BodyFailure::Stalled => ErrorKind::BodyStalled {
                        what,
                        waited: self.options.stall_timeout,
                        received: offset + received,
                        expected,
                    },
                };
                (received, error)
            })?;
            writer
                .write_chunk(&chunk)
                .map_err(|error| (received, ErrorKind::Store(error)))?;
            received += chunk.len() as u64;
        }
        Ok(received)
    }

    /// Pushes a blob from a file: `mount_from` (another repository of the
    /// same registry) → a mount; a blob of at least
    /// [`ClientOptions::ask_before_upload_from`] bytes that a HEAD finds
    /// present → nothing; otherwise an upload (into the session a refused
    /// mount opened, if any), in one PUT, or in chunks for large blobs or
    /// when the PUT is refused.
    pub async fn push_blob(
        &self,
        registry: &str,
        repository: &str,
        digest: &Digest,
        size: u64,
        file: &Path,
        mount_from: Option<&str>,
    ) -> std::result::Result<PushOutcome, RegistryError> {
        let wrap = |kind: ErrorKind| {
            Self::blob_error(registry, repository, digest, kind.on(Side::Destination))
        };
        let _permit = self.transfer_permit(registry).await.map_err(wrap)?;
        // A mount goes first, without a HEAD: the registry answers 201
        // when the repository has the blob already, too.
        let session = match mount_from {
            Some(from) => match self.mount(registry, repository, digest, from).await? {
                None => return Ok(PushOutcome::Mounted),
                Some(location) => Some(location),
            },
            None => None,
        };
        if self
            .present_before_upload(registry, repository, digest, size)
            .await?
        {
            return Ok(PushOutcome::Present);
        }
        let location = match session {
            Some(location) => location,
            None => self
                .start_upload(registry, repository)
                .await
                .map_err(wrap)?,
        };
        if size < CHUNKED_UPLOAD_THRESHOLD {
            let path = file.to_owned();
            let monolithic = self
                .request(
                    registry,
                    repository,
                    &Self::push_scope(repository),
                    |http, _| {
                        http.put(with_digest(&location, digest))
                            .header(CONTENT_TYPE, "application/octet-stream")
                            .header(CONTENT_LENGTH, size)
                            .body(file_body(&path, digest, size))
                    },
                )
                .await
                .map_err(wrap)?;
            if monolithic.status() == StatusCode::CREATED {
                return Ok(PushOutcome::Uploaded);
            }
            if !matches!(monolithic.status().as_u16(), 400 | 405 | 413 | 416) {
                return Err(wrap(Self::status_error(monolithic).await));
            }
            // Refused: start a fresh session and send chunks.
            let location = self
                .start_upload(registry, repository)
                .await
                .map_err(wrap)?;
            self.upload_chunks(registry, repository, digest, size, file, location)
                .await?;
            return Ok(PushOutcome::UploadedInChunks);
        }
        self.upload_chunks(registry, repository, digest, size, file, location)
            .await?;
        Ok(PushOutcome::UploadedInChunks)
    }

    /// Opens an upload session (`POST .../blobs/uploads/`): its location.
    async fn start_upload(&self, registry: &str, repository: &str) -> Result<String> {
        let response = self
            .request(
                registry,
                repository,
                &Self::push_scope(repository),
                |http, base| {
                    http.post(format!("{base}/v2/{repository}/blobs/uploads/"))
                        .header(CONTENT_LENGTH, "0")
                },
            )
            .await?;
        if response.status() != StatusCode::ACCEPTED {
            return Err(Self::status_error(response).await);
        }
        Self::upload_location(registry, &response)
    }

    /// A cross-repository mount (`POST .../blobs/uploads/?mount=&from=`):
    /// `None` when the registry mounted the blob (201, also when the
    /// repository had it already), else the upload session it opened
    /// instead (202: `from` lacks the blob, or the registry does not
    /// mount), for the upload that follows.
    async fn mount(
        &self,
        registry: &str,
        repository: &str,
        digest: &Digest,
        from: &str,
    ) -> std::result::Result<Option<String>, RegistryError> {
        let wrap = |kind: ErrorKind| {
            Self::blob_error(registry, repository, digest, kind.on(Side::Destination))
        };
        let scope = format!("{} repository:{from}:pull", Self::push_scope(repository));
        let response = self
            .request(registry, repository, &scope, |http, base| {
                http.post(format!(
                    "{base}/v2/{repository}/blobs/uploads/?mount={digest}&from={from}"
                ))
                .header(CONTENT_LENGTH, "0")
            })
            .await
            .map_err(wrap)?;
        match response.status() {
            StatusCode::CREATED => Ok(None),
            StatusCode::ACCEPTED => Self::upload_location(registry, &response)
                .map(Some)
                .map_err(wrap),
            _ => Err(wrap(Self::status_error(response).await)),
        }
    }

    fn upload_location(registry: &str, response: &reqwest::Response) -> Result<String> {
        let location = response
            .headers()
            .get(LOCATION)
            .and_then(|value| value.to_str().ok())
            .ok_or_else(|| ErrorKind::Protocol("an upload answer without Location".to_owned()))?;
        if location.starts_with("http://") || location.starts_with("https://") {
            return Ok(location.to_owned());
        }
        let scheme = response.url().scheme();
        Ok(format!("{scheme}://{registry}{location}"))
    }

    async fn upload_chunks(
        &self,
        registry: &str,
        repository: &str,
        digest: &Digest,
        size: u64,
        file: &Path,
        mut location: String,
    ) -> std::result::Result<(), RegistryError> {
        use tokio::io::AsyncReadExt as _;
        let wrap = |kind: ErrorKind| {
            Self::blob_error(registry, repository, digest, kind.on(Side::Destination))
        };
        let mut reader = tokio::fs::File::open(file)
            .await
            .map_err(|error| wrap(ErrorKind::Source(format!("{}: {error}", file.display()))))?;
        let mut offset: u64 = 0;
        let mut hasher = DigestHasher::new(digest.algorithm());
        let mut buffer = vec![0; UPLOAD_CHUNK];
        while offset < size {
            let mut filled = 0;
            while filled < buffer.len() {
                let count = reader.read(&mut buffer[filled..]).await.map_err(|error| {
                    wrap(ErrorKind::Source(format!("{}: {error}", file.display())))
                })?;
                if count == 0 {
                    break;
                }
                filled += count;
            }
            if filled == 0 {
                return Err(wrap(ErrorKind::Source(format!(
                    "{} is shorter than {size} bytes",
                    file.display()
                ))));
            }
            let chunk = Bytes::copy_from_slice(&buffer[..filled]);
            hasher.update(&chunk);
            let end = offset + filled as u64 - 1;
            let current = location.clone();
            let response = self
                .request(
                    registry,
                    repository,
                    &Self::push_scope(repository),
                    |http, _| {
                        http.patch(&current)
                            .header(CONTENT_TYPE, "application/octet-stream")
                            .header(CONTENT_RANGE, format!("{offset}-{end}"))
                            .header(CONTENT_LENGTH, filled)
                            .body(chunk.clone())
                    },
                )
                .await
                .map_err(wrap)?;
            if response.status() != StatusCode::ACCEPTED {
                return Err(wrap(Self::status_error(response).await));
            }
            location = Self::upload_location(registry, &response).map_err(wrap)?;
            offset += filled as u64;
        }
        // The upload is completed only with the right bytes: a corrupt
        // cached copy is named here, not refused as DIGEST_INVALID.
        let actual = hasher.finish();
        if let Some(message) = file_mismatch(file, digest, size, offset, Some(&actual)) {
            return Err(wrap(ErrorKind::Source(message)));
        }
        let response = self
            .request(
                registry,
                repository,
                &Self::push_scope(repository),
                |http, _| {
                    http.put(with_digest(&location, digest))
                        .header(CONTENT_LENGTH, "0")
                },
            )
            .await
            .map_err(wrap)?;
        if response.status() != StatusCode::CREATED {
            return Err(wrap(Self::status_error(response).await));
        }
        Ok(())
    }
}

fn with_digest(location: &str, digest: &Digest) -> String {
    let separator = if location.contains('?') { '&' } else { '?' };
    format!("{location}{separator}digest={digest}")
}

fn read_file(path: &Path) -> Result<Vec<u8>> {
    std::fs::read(path).map_err(|error| ErrorKind::Tls {
        message: format!("cannot read {}: {error}", path.display()),
        searched: String::new(),
    })
}

/// Why a file's bytes are not the blob they should be, or `None` when
/// `received` bytes hashing to `actual` (not known yet: `None`) are it.
fn file_mismatch(
    path: &Path,
    digest: &Digest,
    size: u64,
    received: u64,
    actual: Option<&Digest>,
) -> Option<String> {
    if received != size {
        return Some(format!(
            "the cached blob {} holds {} bytes, not the {} of {digest}: the cached copy is corrupt",
            path.display(),
            grouped(received),
            grouped(size)
        ));
    }
    let actual = actual.filter(|actual| *actual != digest)?;
    Some(format!(
        "the cached blob {} hashes to {actual}, not {digest}: the cached copy is corrupt",
        path.display()
    ))
}

/// A request body that streams a file (re-opened for each retry), hashed
/// on the way: bytes that do not hash to `digest` (or are not `size`
/// long) fail the request before its last chunk is sent, so a corrupt
/// cached copy is caught here, naming the file, rather than refused by the
/// registry as DIGEST_INVALID.
fn file_body(path: &Path, digest: &Digest, size: u64) -> reqwest::Body {
    let opened_path = path.to_owned();
    let path = path.to_owned();
    let digest = digest.clone();
    let problem = |message: String| std::io::Error::other(BodySourceProblem(message));
    let chunks = futures_util::stream::once(async move {
        tokio::fs::File::open(&opened_path).await.map_err(|error| {
            problem(format!(
                "cannot read the cached blob {}: {error}",
                opened_path.display()
            ))
        })
    })
    .map(|file| match file {
        Ok(file) => tokio_util::io::ReaderStream::with_capacity(file, 256 * 1024).left_stream(),
        Err(error) => futures_util::stream::once(async move { Err(error) }).right_stream(),
    })
    .flatten();
    // Each chunk is held back until the next arrives, so the last one is
    // sent only once the whole file is known to be right.
    let mut hasher = Some(DigestHasher::new(digest.algorithm()));
    let mut received: u64 = 0;
    let checked = chunks
        .map(Some)
        .chain(futures_util::stream::once(async { None }))
        .scan(None::<Bytes>, move |held, item| {
            let output = match item {
                Some(Ok(chunk)) => {
                    received += chunk.len() as u64;
                    if let Some(hasher) = hasher.as_mut() {
                        hasher.update(&chunk);
                    }
                    if received > size {
                        Some(Err(problem(
                            file_mismatch(&path, &digest, size, received, None).unwrap_or_default(),
                        )))
                    } else {
                        held.replace(chunk).map(Ok)
                    }
                }
                Some(Err(error)) => Some(Err(error)),
                None => {
                    let actual = hasher.take().map(DigestHasher::finish);
                    match file_mismatch(&path, &digest, size, received, actual.as_ref()) {
                        Some(message) => Some(Err(problem(message))),
                        None => held.take().map(Ok),
                    }
                }
            };
            futures_util::future::ready(Some(output))
        })
        .filter_map(futures_util::future::ready);
    reqwest::Body::wrap_stream(checked)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn challenges_are_parsed() {
        let (scheme, parameters) =
            parse_challenge(r#"Bearer realm="https://auth.example.com/token",service="registry.example.com",scope="repository:a/b:pull""#).unwrap();
        assert_eq!(scheme, "bearer");
        assert_eq!(parameters["realm"], "https://auth.example.com/token");
        assert_eq!(parameters["service"], "registry.example.com");
        assert_eq!(parameters["scope"], "repository:a/b:pull");
        let (scheme, parameters) = parse_challenge(r#"Basic realm="Registry Realm""#).unwrap();
        assert_eq!(scheme, "basic");
        assert_eq!(parameters["realm"], "Registry Realm");
    }

    #[test]
    fn tag_list_pages_follow_the_next_link_on_the_same_registry() {
        assert_eq!(
            next_page_path(r#"</v2/a/b/tags/list?last=v9&n=10>; rel="next""#).as_deref(),
            Some("/v2/a/b/tags/list?last=v9&n=10")
        );
        assert_eq!(
            next_page_path(
                r#"</v2/x/tags/list?n=1>; rel="prev", </v2/x/tags/list?last=b&n=1>; rel=next"#
            )
            .as_deref(),
            Some("/v2/x/tags/list?last=b&n=1"),
            "an unquoted rel is accepted too"
        );
        assert_eq!(
            next_page_path(
                r#"</v2/x/tags/list?n=1>; rel="prev", </v2/x/tags/list?last=b&n=1>; rel="next""#
            )
            .as_deref(),
            Some("/v2/x/tags/list?last=b&n=1")
        );
        assert_eq!(
            next_page_path(r#"<https://elsewhere.example/v2/a/tags/list>; rel="next""#),
            None
        );
        assert_eq!(next_page_path(""), None);
    }

    #[test]
    fn digest_goes_into_the_upload_url() {
        let digest = sha256_of(b"x");
        assert_eq!(
            with_digest("http://h/v2/r/blobs/uploads/u?_state=s", &digest),
            format!("http://h/v2/r/blobs/uploads/u?_state=s&digest={digest}")
        );
        assert_eq!(
            with_digest("http://h/u", &digest),
            format!("http://h/u?digest={digest}")
        );
    }
}
