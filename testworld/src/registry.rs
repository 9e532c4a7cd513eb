//! Real `docker-registry` processes (distribution 2.8) on 127.0.0.1.
//!
//! [`Registry::start`] writes a configuration for one process into a
//! temporary directory, starts it on a free port and waits until `GET /v2/`
//! answers. Three [`Flavour`]s: plain HTTP, TLS with a certificate signed by
//! a throw-away authority generated at start, and TLS with htpasswd basic
//! auth. [`Storage::Shared`] serves an existing storage root read-only (the
//! published world); [`Storage::Empty`] is a fresh writable registry with
//! deletes enabled (a mirror destination), or without them
//! ([`Registry::start_without_deletes`]: distribution's default, which
//! answers a DELETE with 405).
//!
//! No registry outlives its test: dropping a [`Registry`] stops the process,
//! and because every process is started through a small `sh` watchdog that
//! reads the test process's end of a pipe on its stdin, the registry is also
//! killed when the test process dies in any way (panic, SIGKILL, timeout):
//! the pipe closes, `read` returns, the watchdog kills the registry.
//!
//! [`launch_detached`] starts a process that outlives its starter, for
//! `ferry world up`; the caller records its pid and stops it later.

use std::fs::{self, File};
use std::io::Read;
use std::net::{SocketAddr, TcpListener};
use std::os::unix::process::CommandExt;
use std::path::{Path, PathBuf};
use std::process::{Child, ChildStdin, Command, Stdio};
use std::thread;
use std::time::{Duration, Instant};

use tempfile::TempDir;

use crate::certificates::Certificates;
use crate::error::{Context, Error, Result};
use crate::http::{self, Transport};

/// The registry program; `FERRY_DOCKER_REGISTRY` overrides it.
pub fn registry_program() -> String {
    std::env::var("FERRY_DOCKER_REGISTRY").unwrap_or_else(|_| "docker-registry".to_owned())
}

/// Fails clearly when the registry program cannot be found.
pub fn registry_program_check() -> Result<()> {
    let program = registry_program();
    let found = Path::new(&program).is_file()
        || std::env::var_os("PATH").is_some_and(|paths| {
            std::env::split_paths(&paths).any(|directory| directory.join(&program).is_file())
        });
    if found {
        Ok(())
    } else {
        Err(Error::new(format!(
            "{program} is not installed (install the Debian package docker-registry, or set FERRY_DOCKER_REGISTRY)"
        )))
    }
}

/// How a registry is reached.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub enum Flavour {
    /// `http://`, no authentication (clients need `--tls-verify=false`).
    PlainHttp,
    /// `https://` with a generated authority (skopeo: `--cert-dir`).
    Tls,
    /// `https://` plus htpasswd basic auth (skopeo: `--creds user:password`).
    BasicAuthTls,
}

impl Flavour {
    /// Every flavour, in a fixed order.
    pub const ALL: [Flavour; 3] = [Flavour::PlainHttp, Flavour::Tls, Flavour::BasicAuthTls];

    /// Short name used in file names and descriptors: `plain`, `tls`, `auth`.
    pub fn name(self) -> &'static str {
        match self {
            Flavour::PlainHttp => "plain",
            Flavour::Tls => "tls",
            Flavour::BasicAuthTls => "auth",
        }
    }

    /// Whether the registry speaks TLS.
    pub fn uses_tls(self) -> bool {
        self != Flavour::PlainHttp
    }

    /// Whether the registry asks for basic-auth credentials.
    pub fn uses_auth(self) -> bool {
        self == Flavour::BasicAuthTls
    }
}

/// What a registry serves.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum Storage {
    /// A fresh, empty, writable storage root (deletes enabled), removed with
    /// the registry.
    Empty,
    /// An existing storage root (e.g. the published world), served read-only.
    Shared(PathBuf),
}

/// Basic-auth credentials of the auth flavour (test-only secrets).
#[derive(Clone, Debug, PartialEq, Eq, serde::Serialize, serde::Deserialize)]
pub struct Credentials {
    pub user: String,
    pub password: String,
}

impl Credentials {
    /// The fixed test credentials of the world.
    pub fn test_credentials() -> Credentials {
        Credentials {
            user: "ferry".to_owned(),
            password: "ferry-world-password".to_owned(),
        }
    }

    /// `user:password`, as skopeo's `--creds` takes it.
    pub fn joined(&self) -> String {
        format!("{}:{}", self.user, self.password)
    }

    /// Writes an htpasswd file with a bcrypt hash (the only scheme
    /// distribution 2.8 accepts). Cost 4: the registry checks the hash on
    /// every request, and these are throw-away test secrets.
    pub fn write_htpasswd(&self, path: &Path) -> Result<()> {
        let hash = bcrypt::hash_with_result(&self.password, 4)
            .context(|| format!("hashing the password of {}", self.user))?
            .format_for_version(bcrypt::Version::TwoA);
        fs::write(path, format!("{}:{hash}\n", self.user))
            .context(|| format!("writing htpasswd file {}", path.display()))
    }
}

/// Everything that goes into one registry's configuration file.
#[derive(Clone, Debug)]
pub struct RegistrySettings<'a> {
    pub flavour: Flavour,
    pub storage_root: &'a Path,
    /// Serve read-only (`storage.maintenance.readonly`); otherwise writable
    /// with deletes enabled (unless `deletes_disabled`).
    pub read_only: bool,
    /// A writable registry without `storage.delete.enabled` (distribution's
    /// default: a DELETE answers 405).
    pub deletes_disabled: bool,
    pub port: u16,
    /// Required by the TLS flavours.
    pub certificates: Option<&'a Certificates>,
    /// Required by the auth flavour.
    pub htpasswd: Option<&'a Path>,
    /// Bearer-token authentication (`auth: token:`) instead of htpasswd.
    pub token: Option<&'a TokenAuthSettings>,
    /// Sent back in every response as `X-Ferry-Registry`, so readiness
    /// checks know they reached this process and not another one that took
    /// the port (see [`new_identity`]).
    pub identity: &'a str,
}

/// Where a token-authenticated registry sends clients for tokens, and
/// whose signatures it trusts (distribution's `auth: token:` settings).
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct TokenAuthSettings {
    pub realm: String,
    pub service: String,
    pub issuer: String,
    /// PEM certificate(s) whose keys sign the tokens.
    pub root_certificate_bundle: PathBuf,
}

/// The header every response of a registry started here carries.
pub const IDENTITY_HEADER: &str = "X-Ferry-Registry";

/// A fresh identity for one registry process.
pub fn new_identity(flavour: Flavour) -> String {
    let nanos = std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .map(|elapsed| elapsed.as_nanos())
        .unwrap_or_default();
    format!("{}-{}-{nanos}", flavour.name(), std::process::id())
}

/// A registry configuration (YAML) for `settings`.
pub fn config_yaml(settings: &RegistrySettings<'_>) -> Result<String> {
    let quoted = |path: &Path| -> Result<String> {
        let text = path
            .to_str()
            .ok_or_else(|| Error::new(format!("path {} is not UTF-8", path.display())))?;
        serde_json::to_string(text).context(|| format!("quoting {}", path.display()))
    };
    let mut yaml = String::new();
    yaml.push_str("version: 0.1\n");
    yaml.push_str("log:\n  level: warn\n  accesslog:\n    disabled: true\n");
    yaml.push_str("storage:\n");
    yaml.push_str(&format!(
        "  filesystem:\n    rootdirectory: {}\n",
        quoted(settings.storage_root)?
    ));
    yaml.push_str("  maintenance:\n    uploadpurging:\n      enabled: false\n");
    if settings.read_only {
        yaml.push_str("    readonly:\n      enabled: true\n");
    } else if !settings.deletes_disabled {
        yaml.push_str("  delete:\n    enabled: true\n");
    }
    yaml.push_str(&format!(
        "http:\n  addr: 127.0.0.1:{}\n  secret: ferry-test-world-secret\n",
        settings.port
    ));
    yaml.push_str(&format!(
        "  headers:\n    X-Content-Type-Options: [nosniff]\n    {IDENTITY_HEADER}: [{}]\n",
        serde_json::Value::String(settings.identity.to_owned())
    ));
    if settings.flavour.uses_tls() {
        let certificates = settings.certificates.ok_or_else(|| {
            Error::new(format!(
                "the {} registry needs certificates",
                settings.flavour.name()
            ))
        })?;
        yaml.push_str(&format!(
            "  tls:\n    certificate: {}\n    key: {}\n",
            quoted(&certificates.server_certificate)?,
            quoted(&certificates.server_key)?
        ));
    }
    if settings.flavour.uses_auth() {
        let htpasswd = settings
            .htpasswd
            .ok_or_else(|| Error::new("the auth registry needs an htpasswd file".to_owned()))?;
        yaml.push_str(&format!(
            "auth:\n  htpasswd:\n    realm: ferry-test-world\n    path: {}\n",
            quoted(htpasswd)?
        ));
    }
    if let Some(token) = settings.token {
        yaml.push_str(&format!(
            "auth:\n  token:\n    realm: {}\n    service: {}\n    issuer: {}\n    rootcertbundle: {}\n",
            serde_json::Value::String(token.realm.clone()),
            serde_json::Value::String(token.service.clone()),
            serde_json::Value::String(token.issuer.clone()),
            quoted(&token.root_certificate_bundle)?
        ));
    }
    Ok(yaml)
}

/// A free port on 127.0.0.1 (bound then released: a race is possible, and
/// starting retries on "address already in use").
pub fn free_port() -> Result<u16> {
    let listener =
        TcpListener::bind(("127.0.0.1", 0)).context(|| "finding a free port".to_owned())?;
    Ok(listener
        .local_addr()
        .context(|| "finding a free port".to_owned())?
        .port())
}

/// A running `docker-registry` owned by this process; stopped on drop.
#[derive(Debug)]
pub struct Registry {
    flavour: Flavour,
    address: SocketAddr,
    storage_root: PathBuf,
    read_only: bool,
    certificates: Option<Certificates>,
    credentials: Option<Credentials>,
    log: PathBuf,
    process: Supervised,
    // Declared last: removed after the process has stopped.
    _directory: TempDir,
}

impl Registry {
    /// Starts a registry of `flavour` serving `storage`, and waits until it
    /// answers `GET /v2/`.
    pub fn start(flavour: Flavour, storage: Storage) -> Result<Registry> {
        Registry::start_configured(flavour, storage, None, false)
    }

    /// Starts a registry of `flavour` with fresh writable storage that does
    /// not allow deleting (distribution's default: DELETE answers 405).
    pub fn start_without_deletes(flavour: Flavour) -> Result<Registry> {
        Registry::start_configured(flavour, Storage::Empty, None, true)
    }

    /// Starts a plain-HTTP registry that asks for Bearer tokens from
    /// `token.realm` and trusts the certificates in `token`'s bundle.
    pub fn start_with_token_auth(storage: Storage, token: TokenAuthSettings) -> Result<Registry> {
        Registry::start_configured(Flavour::PlainHttp, storage, Some(token), false)
    }

    fn start_configured(
        flavour: Flavour,
        storage: Storage,
        token: Option<TokenAuthSettings>,
        deletes_disabled: bool,
    ) -> Result<Registry> {
        registry_program_check()?;
        let directory = tempfile::Builder::new()
            .prefix(&format!("ferry-registry-{}-", flavour.name()))
            .tempdir()
            .context(|| "creating a registry directory".to_owned())?;
        let (storage_root, read_only) = match storage {
            Storage::Empty => {
                let root = directory.path().join("storage");
                fs::create_dir_all(&root)
                    .context(|| format!("creating storage {}", root.display()))?;
                (root, false)
            }
            Storage::Shared(root) => {
                if !root.is_dir() {
                    return Err(Error::new(format!(
                        "shared storage {} is not a directory",
                        root.display()
                    )));
                }
                (root, true)
            }
        };
        let certificates = if flavour.uses_tls() {
            Some(Certificates::generate(
                &directory.path().join("certificates"),
            )?)
        } else {
            None
        };
        let credentials = flavour.uses_auth().then(Credentials::test_credentials);
        let htpasswd = directory.path().join("htpasswd");
        if let Some(credentials) = &credentials {
            credentials.write_htpasswd(&htpasswd)?;
        }
        let config = directory.path().join("config.yml");
        let log = directory.path().join("registry.log");
        let mut last_error = None;
        for _attempt in 0..5 {
            let port = free_port()?;
            let identity = new_identity(flavour);
            let settings = RegistrySettings {
                identity: &identity,
                flavour,
                storage_root: &storage_root,
                read_only,
                deletes_disabled,
                port,
                certificates: certificates.as_ref(),
                htpasswd: credentials.as_ref().map(|_| htpasswd.as_path()),
                token: token.as_ref(),
            };
            fs::write(&config, config_yaml(&settings)?)
                .context(|| format!("writing registry configuration {}", config.display()))?;
            let mut process = Supervised::spawn(&config, &log)?;
            let address = SocketAddr::from(([127, 0, 0, 1], port));
            match wait_until_ready(
                flavour,
                token.is_some(),
                address,
                &identity,
                certificates.as_ref(),
                &log,
                || process.has_exited(),
            ) {
                Ok(()) => {
                    return Ok(Registry {
                        flavour,
                        address,
                        storage_root,
                        read_only,
                        certificates,
                        credentials,
                        log,
                        process,
                        _directory: directory,
                    });
                }
                Err(StartError::PortTaken) => {
                    process.stop();
                    last_error = Some(Error::new(format!("port {port} was taken")));
                }
                Err(StartError::Failed(error)) => {
                    process.stop();
                    return Err(error);
                }
            }
        }
        Err(last_error.unwrap_or_else(|| Error::new("no attempt made")))
            .context(|| "starting docker-registry: no free port after 5 attempts".to_owned())
    }

    pub fn flavour(&self) -> Flavour {
        self.flavour
    }

    /// `127.0.0.1:PORT`.
    pub fn address(&self) -> SocketAddr {
        self.address
    }

    /// `127.0.0.1:PORT` as text, the registry part of image references.
    pub fn host(&self) -> String {
        self.address.to_string()
    }

    /// `http://127.0.0.1:PORT` or `https://127.0.0.1:PORT`.
    pub fn url(&self) -> String {
        let scheme = if self.flavour.uses_tls() {
            "https"
        } else {
            "http"
        };
        format!("{scheme}://{}", self.address)
    }

    /// The storage root the registry serves.
    pub fn storage_root(&self) -> &Path {
        &self.storage_root
    }

    /// Whether the registry refuses writes.
    pub fn is_read_only(&self) -> bool {
        self.read_only
    }

    /// The authority certificate (PEM) of the TLS flavours.
    pub fn ca_certificate(&self) -> Option<&Path> {
        self.certificates
            .as_ref()
            .map(|certificates| certificates.ca_certificate.as_path())
    }

    /// A directory holding only `ca.crt`: skopeo's `--cert-dir`.
    pub fn cert_dir(&self) -> Option<&Path> {
        self.certificates
            .as_ref()
            .map(|certificates| certificates.cert_dir.as_path())
    }

    /// The basic-auth credentials of the auth flavour.
    pub fn credentials(&self) -> Option<&Credentials> {
        self.credentials.as_ref()
    }

    /// The process's log file (warnings and errors only).
    pub fn log_path(&self) -> &Path {
        &self.log
    }

    /// Whether the process has stopped by itself (it should not).
    pub fn has_exited(&mut self) -> bool {
        self.process.has_exited()
    }

    /// `GET path` on this registry, with its credentials if it has any.
    pub fn get(&self, path: &str) -> Result<http::Response> {
        let transport = match self.ca_certificate() {
            Some(ca_certificate) => Transport::Tls { ca_certificate },
            None => Transport::Plain,
        };
        let credentials = self
            .credentials
            .as_ref()
            .map(|credentials| (credentials.user.as_str(), credentials.password.as_str()));
        http::get(self.address, path, transport, credentials)
    }
}

enum StartError {
    PortTaken,
    Failed(Error),
}

/// Polls `GET /v2/` until it answers 200 (401 for the auth flavour) with
/// this process's identity header.
fn wait_until_ready(
    flavour: Flavour,
    token_auth: bool,
    address: SocketAddr,
    identity: &str,
    certificates: Option<&Certificates>,
    log: &Path,
    mut has_exited: impl FnMut() -> bool,
) -> std::result::Result<(), StartError> {
    let expected = if flavour.uses_auth() || token_auth {
        401
    } else {
        200
    };
    let transport = match certificates {
        Some(certificates) => Transport::Tls {
            ca_certificate: &certificates.ca_certificate,
        },
        None => Transport::Plain,
    };
    let deadline = Instant::now() + Duration::from_secs(30);
    let mut last_answer;
    loop {
        if has_exited() {
            let log_text = read_log(log);
            if log_text.contains("address already in use") {
                return Err(StartError::PortTaken);
            }
            return Err(StartError::Failed(Error::new(format!(
                "docker-registry ({} on {address}) exited during start; its log {}:\n{log_text}",
                flavour.name(),
                log.display()
            ))));
        }
        match http::get(address, "/v2/", transport, None) {
            Ok(response) if response.header(IDENTITY_HEADER) != Some(identity) => {
                // Someone else answers on the port: ours cannot bind it.
                return Err(StartError::PortTaken);
            }
            Ok(response) if response.status == expected => return Ok(()),
            Ok(response) => last_answer = format!("status {}", response.status),
            Err(error) => last_answer = error.to_string(),
        }
        if Instant::now() > deadline {
            return Err(StartError::Failed(Error::new(format!(
                "docker-registry ({} on {address}) not ready after 30 s (last: {last_answer}); its log {}:\n{}",
                flavour.name(),
                log.display(),
                read_log(log)
            ))));
        }
        thread::sleep(Duration::from_millis(20));
    }
}

fn read_log(log: &Path) -> String {
    let mut text = String::new();
    if let Ok(mut file) = File::open(log) {
        let _ = file.read_to_string(&mut text);
    }
    text
}

/// The watchdog: runs the registry in the background, and kills it when the
/// starter's end of the stdin pipe closes (the starter stopped it, or died).
/// Exits with the registry's status when the registry exits by itself.
const WATCHDOG_SCRIPT: &str = r#"exec 3<&0
"$0" serve "$1" </dev/null 3<&- &
registry=$!
{ read -r ignored <&3; kill -9 "$registry" 2>/dev/null; } &
watchdog=$!
wait "$registry"
status=$?
kill "$watchdog" 2>/dev/null
exit "$status"
"#;

/// A registry process started through the watchdog; owning the write end of
/// its stdin pipe keeps it alive.
#[derive(Debug)]
struct Supervised {
    child: Child,
    lifeline: Option<ChildStdin>,
    exited: bool,
}

impl Supervised {
    fn spawn(config: &Path, log: &Path) -> Result<Supervised> {
        let program = registry_program();
        let log_file = File::create(log).context(|| format!("creating log {}", log.display()))?;
        let log_copy = log_file
            .try_clone()
            .context(|| format!("opening log {}", log.display()))?;
        let mut child = Command::new("sh")
            .arg("-c")
            .arg(WATCHDOG_SCRIPT)
            .arg(&program)
            .arg(config)
            .stdin(Stdio::piped())
            .stdout(log_file)
            .stderr(log_copy)
            .spawn()
            .context(|| format!("starting {program} through sh for {}", config.display()))?;
        let lifeline = child.stdin.take();
        Ok(Supervised {
            child,
            lifeline,
            exited: false,
        })
    }

    fn has_exited(&mut self) -> bool {
        if !self.exited {
            self.exited = matches!(self.child.try_wait(), Ok(Some(_)) | Err(_));
        }
        self.exited
    }

    /// Closes the lifeline (the watchdog kills the registry) and waits.
    fn stop(&mut self) {
        self.lifeline.take();
        let deadline = Instant::now() + Duration::from_secs(10);
        while !self.has_exited() {
            if Instant::now() > deadline {
                let _ = self.child.kill();
                let _ = self.child.wait();
                self.exited = true;
                return;
            }
            thread::sleep(Duration::from_millis(5));
        }
    }
}

impl Drop for Supervised {
    fn drop(&mut self) {
        self.stop();
    }
}

/// Starts `docker-registry serve config` in its own process group, detached
/// from this process (it outlives it), logging to `log`; waits until it is
/// ready and returns its pid. For `ferry world up`.
pub fn launch_detached(
    flavour: Flavour,
    config: &Path,
    address: SocketAddr,
    identity: &str,
    certificates: Option<&Certificates>,
    log: &Path,
) -> Result<u32> {
    let program = registry_program();
    let log_file = File::create(log).context(|| format!("creating log {}", log.display()))?;
    let log_copy = log_file
        .try_clone()
        .context(|| format!("opening log {}", log.display()))?;
    let mut child = Command::new(&program)
        .arg("serve")
        .arg(config)
        .stdin(Stdio::null())
        .stdout(log_file)
        .stderr(log_copy)
        .process_group(0)
        .spawn()
        .context(|| format!("starting {program} for {}", config.display()))?;
    let pid = child.id();
    let ready = wait_until_ready(flavour, false, address, identity, certificates, log, || {
        matches!(child.try_wait(), Ok(Some(_)) | Err(_))
    });
    match ready {
        Ok(()) => Ok(pid),
        Err(StartError::PortTaken) => {
            let _ = child.kill();
            let _ = child.wait();
            Err(Error::new(format!(
                "docker-registry ({}): port {} is taken",
                flavour.name(),
                address.port()
            )))
        }
        Err(StartError::Failed(error)) => {
            let _ = child.kill();
            let _ = child.wait();
            Err(error)
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn configuration_follows_the_flavour_and_storage() {
        let directory = tempfile::tempdir().unwrap();
        let certificates = Certificates::generate(directory.path()).unwrap();
        let htpasswd = directory.path().join("htpasswd");
        let storage_root = directory.path().join("storage");
        let settings = |flavour, read_only| RegistrySettings {
            flavour,
            storage_root: &storage_root,
            read_only,
            deletes_disabled: false,
            port: 5000,
            certificates: Some(&certificates),
            htpasswd: Some(&htpasswd),
            token: None,
            identity: "test",
        };
        let plain = config_yaml(&settings(Flavour::PlainHttp, true)).unwrap();
        assert!(plain.contains("addr: 127.0.0.1:5000"));
        assert!(plain.contains("X-Ferry-Registry: [\"test\"]"));
        assert!(plain.contains("readonly:\n      enabled: true"));
        assert!(plain.contains("uploadpurging:\n      enabled: false"));
        assert!(!plain.contains("tls:") && !plain.contains("auth:"));
        let writable = config_yaml(&settings(Flavour::Tls, false)).unwrap();
        assert!(writable.contains("delete:\n    enabled: true"));
        assert!(writable.contains("tls:") && !writable.contains("readonly"));
        let auth = config_yaml(&settings(Flavour::BasicAuthTls, true)).unwrap();
        assert!(auth.contains("tls:") && auth.contains("htpasswd:"));
        let without_deletes = config_yaml(&RegistrySettings {
            deletes_disabled: true,
            ..settings(Flavour::PlainHttp, false)
        })
        .unwrap();
        assert!(!without_deletes.contains("delete:") && !without_deletes.contains("readonly"));
    }

    #[test]
    fn htpasswd_holds_a_bcrypt_hash_of_the_password() {
        let directory = tempfile::tempdir().unwrap();
        let path = directory.path().join("htpasswd");
        let credentials = Credentials::test_credentials();
        credentials.write_htpasswd(&path).unwrap();
        let text = fs::read_to_string(&path).unwrap();
        let (user, hash) = text.trim_end().split_once(':').unwrap();
        assert_eq!(user, credentials.user);
        assert!(hash.starts_with("$2a$04$"), "{hash}");
        assert!(bcrypt::verify(&credentials.password, hash).unwrap());
    }
}
