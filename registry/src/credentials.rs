//! Registry credentials, found the way the containers tools find them.
//!
//! Files, in order, until one has a credential for the registry:
//! `--authfile` or `$REGISTRY_AUTH_FILE` (the explicit override) else
//! `$XDG_RUNTIME_DIR/containers/auth.json`; then
//! `$XDG_CONFIG_HOME/containers/auth.json` (default
//! `~/.config/containers/auth.json`); then `$DOCKER_CONFIG/config.json`
//! (default `~/.docker/config.json`). In each file: a `credHelpers` entry for
//! the host runs `docker-credential-<name> get`; otherwise `auths` keys are
//! tried from the most specific namespace to the host
//! (`host/a/b/image`, `host/a/b`, `host/a`, `host`); otherwise a `credsStore`
//! helper is asked.
//!
//! A missing `--authfile` is refused ([`CredentialStore::discover_checked`]);
//! every other file that does not exist is read as empty, as
//! containers/image reads it. Lookups say where credentials came from
//! ([`Found::origin`]), so a refusal can name the file.
//!
//! Secrets never leave this module in a printable form: [`Credentials`]
//! prints its password as `<redacted>`.

use std::collections::BTreeMap;
use std::fmt;
use std::io::Write as _;
use std::path::{Path, PathBuf};
use std::process::{Command, Stdio};

use base64::Engine as _;
use serde::Deserialize;

/// A user name and password (or token) for one registry.
#[derive(Clone, PartialEq, Eq)]
pub struct Credentials {
    pub username: String,
    password: String,
}

impl Credentials {
    pub fn new(username: impl Into<String>, password: impl Into<String>) -> Self {
        Credentials {
            username: username.into(),
            password: password.into(),
        }
    }

    /// The secret, for building an Authorization header only.
    pub fn password(&self) -> &str {
        &self.password
    }

    /// `Basic <base64(user:password)>`.
    pub fn basic_header(&self) -> String {
        let pair = format!("{}:{}", self.username, self.password);
        format!(
            "Basic {}",
            base64::engine::general_purpose::STANDARD.encode(pair)
        )
    }
}

impl fmt::Debug for Credentials {
    fn fmt(&self, formatter: &mut fmt::Formatter<'_>) -> fmt::Result {
        formatter
            .debug_struct("Credentials")
            .field("username", &self.username)
            .field("password", &"<redacted>")
            .finish()
    }
}

/// A credentials file that cannot be used.
#[derive(Debug, thiserror::Error)]
pub enum CredentialsError {
    #[error("cannot read the auth file {path}: {message}")]
    File { path: PathBuf, message: String },
    #[error("the auth file {} named by --authfile does not exist", path.display())]
    MissingAuthFile { path: PathBuf },
    #[error("the credential helper docker-credential-{helper} failed for {host}: {message}")]
    Helper {
        helper: String,
        host: String,
        message: String,
    },
}

#[derive(Debug, Default, Deserialize)]
struct AuthFile {
    #[serde(default)]
    auths: BTreeMap<String, AuthEntry>,
    #[serde(default, rename = "credHelpers")]
    credential_helpers: BTreeMap<String, String>,
    #[serde(default, rename = "credsStore")]
    credentials_store: Option<String>,
}

#[derive(Debug, Default, Deserialize)]
struct AuthEntry {
    #[serde(default)]
    auth: Option<String>,
    #[serde(default)]
    username: Option<String>,
    #[serde(default)]
    password: Option<String>,
}

#[derive(Debug, Deserialize)]
struct HelperAnswer {
    #[serde(rename = "Username")]
    username: String,
    #[serde(rename = "Secret")]
    secret: String,
}

/// Credentials and where they were found.
#[derive(Clone, Debug)]
pub struct Found {
    pub credentials: Credentials,
    /// The auth file, or the credential helper and the file naming it.
    pub origin: String,
}

/// Where credentials come from: an ordered list of auth files.
#[derive(Clone, Debug, Default)]
pub struct CredentialStore {
    files: Vec<PathBuf>,
    /// `PATH` for credential helpers; the process's own when `None`.
    helper_path: Option<String>,
}

impl CredentialStore {
    /// The files the containers tools read, with `explicit` (`--authfile`)
    /// taking the place of the primary file.
    pub fn discover(explicit: Option<&Path>) -> Self {
        let environment = |name: &str| {
            std::env::var_os(name)
                .filter(|value| !value.is_empty())
                .map(PathBuf::from)
        };
        let home = environment("HOME");
        let mut files = Vec::new();
        match explicit
            .map(Path::to_owned)
            .or_else(|| environment("REGISTRY_AUTH_FILE"))
        {
            Some(path) => files.push(path),
            None => {
                if let Some(runtime) = environment("XDG_RUNTIME_DIR") {
                    files.push(runtime.join("containers/auth.json"));
                }
            }
        }
        let config = environment("XDG_CONFIG_HOME")
            .or_else(|| home.as_ref().map(|home| home.join(".config")));
        if let Some(config) = config {
            files.push(config.join("containers/auth.json"));
        }
        match environment("DOCKER_CONFIG") {
            Some(folder) => files.push(folder.join("config.json")),
            None => {
                if let Some(home) = &home {
                    files.push(home.join(".docker/config.json"));
                }
            }
        }
        CredentialStore {
            files,
            helper_path: None,
        }
    }

    /// [`Self::discover`], refusing an `explicit` file that does not exist
    /// (a mistyped `--authfile` would otherwise mean anonymous access). A
    /// missing `$REGISTRY_AUTH_FILE` is read as empty, as containers/image
    /// reads every auth file it does not find: `explicit` equal to it (the
    /// command line takes the variable as the flag's default) is not
    /// refused.
    pub fn discover_checked(explicit: Option<&Path>) -> Result<Self, CredentialsError> {
        let from_variable = |path: &Path| {
            std::env::var_os("REGISTRY_AUTH_FILE").is_some_and(|value| Path::new(&value) == path)
        };
        if let Some(path) = explicit
            && !path.exists()
            && !from_variable(path)
        {
            return Err(CredentialsError::MissingAuthFile {
                path: path.to_owned(),
            });
        }
        Ok(Self::discover(explicit))
    }

    /// Exactly these files, in order.
    pub fn from_files(files: Vec<PathBuf>) -> Self {
        CredentialStore {
            files,
            helper_path: None,
        }
    }

    /// Looks credential helpers up on `path` instead of `$PATH`.
    pub fn with_helper_path(mut self, path: String) -> Self {
        self.helper_path = Some(path);
        self
    }

    pub fn files(&self) -> &[PathBuf] {
        &self.files
    }

    /// The files searched, for messages: `a.json, b.json (missing)`.
    pub fn describe_files(&self) -> String {
        if self.files.is_empty() {
            return "no auth file (none is configured)".to_owned();
        }
        self.files
            .iter()
            .map(|path| {
                if path.exists() {
                    path.display().to_string()
                } else {
                    format!("{} (missing)", path.display())
                }
            })
            .collect::<Vec<_>>()
            .join(", ")
    }

    /// Credentials for `registry` (host[:port]) and `repository`, if any
    /// file has them.
    pub fn lookup(
        &self,
        registry: &str,
        repository: &str,
    ) -> Result<Option<Credentials>, CredentialsError> {
        Ok(self
            .find(registry, repository)?
            .map(|found| found.credentials))
    }

    /// [`Self::lookup`], with where the credentials were found.
    pub fn find(
        &self,
        registry: &str,
        repository: &str,
    ) -> Result<Option<Found>, CredentialsError> {
        for path in &self.files {
            let text = match std::fs::read_to_string(path) {
                Ok(text) => text,
                Err(error) if error.kind() == std::io::ErrorKind::NotFound => continue,
                Err(error) => {
                    return Err(CredentialsError::File {
                        path: path.clone(),
                        message: error.to_string(),
                    });
                }
            };
            let file: AuthFile =
                serde_json::from_str(&text).map_err(|error| CredentialsError::File {
                    path: path.clone(),
                    message: format!("not valid JSON: {error}"),
                })?;
            let from_helper = |helper: &str, credentials| Found {
                credentials,
                origin: format!(
                    "the credential helper docker-credential-{helper} (named in {})",
                    path.display()
                ),
            };
            if let Some(helper) = file.credential_helpers.get(registry) {
                return run_helper(helper, registry, self.helper_path.as_deref())
                    .map(|credentials| Some(from_helper(helper, credentials)));
            }
            let mut scope = format!("{registry}/{repository}");
            loop {
                if let Some(entry) = find_entry(&file.auths, &scope) {
                    return decode_entry(entry, path).map(|credentials| {
                        Some(Found {
                            credentials,
                            origin: path.display().to_string(),
                        })
                    });
                }
                match scope.rfind('/') {
                    Some(slash) => scope.truncate(slash),
                    None => break,
                }
            }
            if let Some(helper) = &file.credentials_store {
                match run_helper(helper, registry, self.helper_path.as_deref()) {
                    Ok(credentials) => return Ok(Some(from_helper(helper, credentials))),
                    // A store without an entry for this host is not an error.
                    Err(CredentialsError::Helper { message, .. })
                        if message.contains("not found") => {}
                    Err(error) => return Err(error),
                }
            }
        }
        Ok(None)
    }
}

/// Finds an `auths` key, accepting the legacy forms `https://host/` and
/// `https://host/v1/`.
fn find_entry<'a>(auths: &'a BTreeMap<String, AuthEntry>, scope: &str) -> Option<&'a AuthEntry> {
    auths.get(scope).or_else(|| {
        auths.iter().find_map(|(key, entry)| {
            let normalized = key
                .trim_start_matches("https://")
                .trim_start_matches("http://")
                .trim_end_matches('/')
                .trim_end_matches("/v1")
                .trim_end_matches("/v2");
            (normalized == scope && !scope.contains('/')).then_some(entry)
        })
    })
}

fn decode_entry(entry: &AuthEntry, path: &Path) -> Result<Credentials, CredentialsError> {
    if let Some(auth) = &entry.auth {
        let bad = |message: &str| CredentialsError::File {
            path: path.to_owned(),
            message: message.to_owned(),
        };
        let bytes = base64::engine::general_purpose::STANDARD
            .decode(auth.trim())
            .map_err(|_| bad("an `auth` value is not valid base64"))?;
        let text = String::from_utf8(bytes).map_err(|_| bad("an `auth` value is not UTF-8"))?;
        let (username, password) = text
            .split_once(':')
            .ok_or_else(|| bad("an `auth` value is not `user:password` in base64"))?;
        return Ok(Credentials::new(username, password));
    }
    Ok(Credentials::new(
        entry.username.clone().unwrap_or_default(),
        entry.password.clone().unwrap_or_default(),
    ))
}

fn run_helper(
    helper: &str,
    host: &str,
    search_path: Option<&str>,
) -> Result<Credentials, CredentialsError> {
    let failure = |message: String| CredentialsError::Helper {
        helper: helper.to_owned(),
        host: host.to_owned(),
        message,
    };
    let program = format!("docker-credential-{helper}");
    let mut command = Command::new(&program);
    if let Some(search_path) = search_path {
        command.env("PATH", search_path);
    }
    let mut child = command
        .arg("get")
        .stdin(Stdio::piped())
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .map_err(|error| failure(format!("cannot run {program}: {error}")))?;
    if let Some(mut stdin) = child.stdin.take() {
        stdin
            .write_all(host.as_bytes())
            .map_err(|error| failure(format!("cannot write to {program}: {error}")))?;
    }
    let output = child
        .wait_with_output()
        .map_err(|error| failure(format!("{program} did not finish: {error}")))?;
    if !output.status.success() {
        // The helper's output may hold a secret: report only its first line.
        let stdout = String::from_utf8_lossy(&output.stdout);
        let first_line = stdout.lines().next().unwrap_or("").trim();
        return Err(failure(format!(
            "exit status {}: {first_line}",
            output.status
        )));
    }
    let answer: HelperAnswer = serde_json::from_slice(&output.stdout)
        .map_err(|_| failure("its answer is not the JSON credential helpers print".to_owned()))?;
    Ok(Credentials::new(answer.username, answer.secret))
}

#[cfg(test)]
mod tests {
    use super::*;

    fn write(folder: &Path, name: &str, text: &str) -> PathBuf {
        let path = folder.join(name);
        std::fs::write(&path, text).unwrap();
        path
    }

    #[test]
    fn most_specific_namespace_wins() {
        let folder = tempfile::tempdir().unwrap();
        let encode = |pair: &str| base64::engine::general_purpose::STANDARD.encode(pair);
        let file = write(
            folder.path(),
            "auth.json",
            &format!(
                r#"{{"auths": {{
                    "registry.local": {{"auth": "{}"}},
                    "registry.local/team": {{"auth": "{}"}},
                    "registry.local/team/app": {{"auth": "{}"}}
                }}}}"#,
                encode("host:1"),
                encode("team:2"),
                encode("app:3")
            ),
        );
        let store = CredentialStore::from_files(vec![file]);
        let user = |repository: &str| {
            store
                .lookup("registry.local", repository)
                .unwrap()
                .unwrap()
                .username
        };
        assert_eq!(user("team/app"), "app");
        assert_eq!(user("team/other"), "team");
        assert_eq!(user("elsewhere/x"), "host");
        assert!(store.lookup("other.local", "x").unwrap().is_none());
    }

    #[test]
    fn later_files_and_legacy_keys_are_read() {
        let folder = tempfile::tempdir().unwrap();
        let empty = write(folder.path(), "first.json", r#"{"auths": {}}"#);
        let docker = write(
            folder.path(),
            "config.json",
            r#"{"auths": {"https://index.docker.io/v1/": {"username": "u", "password": "p"}}}"#,
        );
        let store =
            CredentialStore::from_files(vec![folder.path().join("missing.json"), empty, docker]);
        let credentials = store
            .lookup("index.docker.io", "library/busybox")
            .unwrap()
            .unwrap();
        assert_eq!(credentials.username, "u");
        assert_eq!(credentials.password(), "p");
    }

    #[test]
    fn debug_output_hides_the_password() {
        let credentials = Credentials::new("alice", "s3cret-value");
        let printed = format!("{credentials:?}");
        assert!(!printed.contains("s3cret-value"), "{printed}");
        assert!(printed.contains("alice"));
        assert_eq!(credentials.basic_header(), "Basic YWxpY2U6czNjcmV0LXZhbHVl");
    }

    #[test]
    fn credential_helpers_are_run() {
        let folder = tempfile::tempdir().unwrap();
        let helper = folder.path().join("docker-credential-ferrytest");
        std::fs::write(
            &helper,
            "#!/bin/sh\nread host\necho \"{\\\"ServerURL\\\":\\\"$host\\\",\\\"Username\\\":\\\"helper-user\\\",\\\"Secret\\\":\\\"helper-secret\\\"}\"\n",
        )
        .unwrap();
        std::process::Command::new("chmod")
            .arg("+x")
            .arg(&helper)
            .status()
            .unwrap();
        let file = write(
            folder.path(),
            "auth.json",
            r#"{"credHelpers": {"registry.example.com": "ferrytest"}}"#,
        );
        let path = format!(
            "{}:{}",
            folder.path().display(),
            std::env::var("PATH").unwrap_or_default()
        );
        let store = CredentialStore::from_files(vec![file]).with_helper_path(path);
        let credentials = store.lookup("registry.example.com", "x").unwrap().unwrap();
        assert_eq!(credentials.username, "helper-user");
        assert_eq!(credentials.password(), "helper-secret");
    }
}
