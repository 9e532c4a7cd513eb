//! `registries.conf` (containers-registries.conf(5), version 2): which
//! `[[registry]]` table governs an image, where its content is really pulled
//! from (mirrors in order, then the primary location), and which registries
//! are blocked or insecure.
//!
//! ferry reads this file the way containers/image does, so an enclave's
//! existing configuration works unchanged:
//! - the table whose `prefix` is the longest match of the image name wins;
//!   a prefix matches only at a boundary (`/`, `:`, `@` or the end), and
//!   `*.example.com` matches any subdomain of `example.com`;
//! - `location` rewrites the matched prefix; a wildcard table without a
//!   location keeps the name as it is;
//! - mirrors come first, in order, filtered by `mirror-by-digest-only` and
//!   each mirror's `pull-from-mirror`; the primary location comes last;
//! - a blocked table refuses the image outright, mirrors included;
//! - drop-ins (`registries.conf.d/*.conf`, in name order) override
//!   top-level settings and replace tables with the same prefix.
//!
//! The legacy version 1 tables (`[registries.search]`, `.insecure`,
//! `.block`) are read too, but not mixed with version 2 tables.

use std::collections::BTreeMap;
use std::fmt;
use std::path::{Path, PathBuf};

use ferry_schemas::ImageReference;
use serde::Deserialize;

/// A configuration file ferry cannot use.
#[derive(Debug, thiserror::Error)]
#[error("{path}: {message}")]
pub struct ConfigurationError {
    pub path: PathBuf,
    pub message: String,
}

impl ConfigurationError {
    fn new(path: &Path, message: impl Into<String>) -> Self {
        ConfigurationError {
            path: path.to_owned(),
            message: message.into(),
        }
    }
}

/// When a mirror is used.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub enum PullFromMirror {
    #[default]
    All,
    DigestOnly,
    TagOnly,
}

/// One mirror of a `[[registry]]` table.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Mirror {
    pub location: String,
    pub insecure: bool,
    pub pull_from_mirror: PullFromMirror,
}

/// One `[[registry]]` table, validated.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Registry {
    /// The prefix as written (`quay.io`, `quay.io/team`, `*.example.com`).
    pub prefix: String,
    /// Where the prefix really lives; empty for a wildcard table without one.
    pub location: String,
    pub insecure: bool,
    pub blocked: bool,
    pub mirror_by_digest_only: bool,
    pub mirrors: Vec<Mirror>,
    /// The file that defined it.
    pub origin: PathBuf,
}

/// A place to pull an image from, in the order to try.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct PullSource {
    pub reference: ImageReference,
    /// Plain HTTP and unverified TLS allowed.
    pub insecure: bool,
    /// True for a mirror, false for the primary location.
    pub mirror: bool,
}

impl fmt::Display for PullSource {
    fn fmt(&self, formatter: &mut fmt::Formatter<'_>) -> fmt::Result {
        let kind = if self.mirror { "mirror" } else { "primary" };
        write!(formatter, "{} ({kind}", self.reference)?;
        if self.insecure {
            write!(formatter, ", insecure")?;
        }
        write!(formatter, ")")
    }
}

/// Why an image cannot be pulled.
#[derive(Debug, thiserror::Error, PartialEq, Eq)]
pub enum PullError {
    #[error("registry `{prefix}` is blocked in {origin}; pulling `{reference}` is not allowed")]
    Blocked {
        prefix: String,
        origin: String,
        reference: String,
    },
    #[error("`{location}` (for `{reference}`) is not a valid image location: {message}")]
    BadRewrite {
        location: String,
        reference: String,
        message: String,
    },
}

/// The merged configuration: every table, and which files it came from.
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct RegistriesConf {
    registries: Vec<Registry>,
    unqualified_search_registries: Vec<String>,
    files: Vec<PathBuf>,
}

#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields, rename_all = "kebab-case")]
struct RawFile {
    #[serde(default)]
    unqualified_search_registries: Option<Vec<String>>,
    #[serde(default)]
    short_name_mode: Option<String>,
    #[serde(default)]
    credential_helpers: Option<Vec<String>>,
    #[serde(default)]
    aliases: Option<BTreeMap<String, String>>,
    #[serde(default)]
    registry: Vec<RawRegistry>,
    #[serde(default)]
    registries: Option<RawVersion1>,
}

#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields, rename_all = "kebab-case")]
struct RawRegistry {
    #[serde(default)]
    prefix: String,
    #[serde(default)]
    location: String,
    #[serde(default)]
    insecure: bool,
    #[serde(default)]
    blocked: bool,
    #[serde(default)]
    mirror_by_digest_only: bool,
    #[serde(default)]
    pull_from_mirror: Option<String>,
    #[serde(default)]
    mirror: Vec<RawMirror>,
}

#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields, rename_all = "kebab-case")]
struct RawMirror {
    #[serde(default)]
    location: String,
    #[serde(default)]
    insecure: bool,
    #[serde(default)]
    pull_from_mirror: Option<String>,
}

#[derive(Debug, Default, Deserialize)]
#[serde(deny_unknown_fields)]
struct RawVersion1 {
    #[serde(default)]
    search: Option<RawList>,
    #[serde(default)]
    insecure: Option<RawList>,
    #[serde(default)]
    block: Option<RawList>,
}

#[derive(Debug, Default, Deserialize)]
#[serde(deny_unknown_fields)]
struct RawList {
    #[serde(default)]
    registries: Vec<String>,
}

/// Checks a prefix or location: `host[:port][/path...][:tag|@digest]` or
/// `*.host`, with no scheme.
fn check_name(path: &Path, field: &str, value: &str) -> Result<(), ConfigurationError> {
    if value.contains("://") {
        return Err(ConfigurationError::new(
            path,
            format!("invalid {field} `{value}`: write it without a scheme such as http://"),
        ));
    }
    if let Some(rest) = value.strip_prefix("*.") {
        if rest.is_empty() || rest.contains(['/', ':', '@', '*']) {
            return Err(ConfigurationError::new(
                path,
                format!(
                    "invalid {field} `{value}`: a wildcard is allowed only as `*.host`, with nothing after the host"
                ),
            ));
        }
        return Ok(());
    }
    if value.contains('*') {
        return Err(ConfigurationError::new(
            path,
            format!(
                "invalid {field} `{value}`: a wildcard is allowed only at the start, as `*.host`"
            ),
        ));
    }
    if value.chars().any(char::is_whitespace) {
        return Err(ConfigurationError::new(
            path,
            format!("invalid {field} `{value}`: spaces are not allowed"),
        ));
    }
    Ok(())
}

fn pull_from_mirror(
    path: &Path,
    value: Option<&str>,
) -> Result<PullFromMirror, ConfigurationError> {
    match value {
        None | Some("" | "all") => Ok(PullFromMirror::All),
        Some("digest-only") => Ok(PullFromMirror::DigestOnly),
        Some("tag-only") => Ok(PullFromMirror::TagOnly),
        Some(other) => Err(ConfigurationError::new(
            path,
            format!(
                "unsupported pull-from-mirror value `{other}`: use `all`, `digest-only` or `tag-only`"
            ),
        )),
    }
}

/// One parsed file, before merging.
struct ParsedFile {
    registries: Vec<Registry>,
    unqualified_search_registries: Option<Vec<String>>,
}

fn parse_file(path: &Path, text: &str) -> Result<ParsedFile, ConfigurationError> {
    let raw: RawFile = toml::from_str(text).map_err(|error| {
        ConfigurationError::new(path, format!("not valid registries.conf TOML: {error}"))
    })?;
    let _ = (&raw.short_name_mode, &raw.credential_helpers, &raw.aliases);
    let mut registries = Vec::new();
    let mut unqualified = raw.unqualified_search_registries;
    if let Some(version1) = raw.registries {
        if !raw.registry.is_empty() || unqualified.is_some() {
            return Err(ConfigurationError::new(
                path,
                "mixing version 1 (`[registries.*]`) and version 2 (`[[registry]]`) tables is not allowed",
            ));
        }
        let normalize = |name: &str| name.trim_end_matches('/').to_owned();
        let mut by_location: BTreeMap<String, Registry> = BTreeMap::new();
        let mut entry = |location: String| {
            by_location
                .entry(location.clone())
                .or_insert_with(|| Registry {
                    prefix: location.clone(),
                    location,
                    insecure: false,
                    blocked: false,
                    mirror_by_digest_only: false,
                    mirrors: Vec::new(),
                    origin: path.to_owned(),
                });
        };
        for list in [&version1.search, &version1.insecure, &version1.block]
            .into_iter()
            .flatten()
        {
            for name in &list.registries {
                entry(normalize(name));
            }
        }
        for name in version1.insecure.iter().flat_map(|list| &list.registries) {
            if let Some(registry) = by_location.get_mut(&normalize(name)) {
                registry.insecure = true;
            }
        }
        for name in version1.block.iter().flat_map(|list| &list.registries) {
            if let Some(registry) = by_location.get_mut(&normalize(name)) {
                registry.blocked = true;
            }
        }
        unqualified = version1
            .search
            .map(|list| list.registries.iter().map(|name| normalize(name)).collect());
        registries.extend(by_location.into_values());
        return Ok(ParsedFile {
            registries,
            unqualified_search_registries: unqualified,
        });
    }
    for table in raw.registry {
        if table.pull_from_mirror.is_some() {
            return Err(ConfigurationError::new(
                path,
                format!(
                    "pull-from-mirror is a setting of a [[registry.mirror]] table, not of the [[registry]] `{}`",
                    if table.prefix.is_empty() {
                        &table.location
                    } else {
                        &table.prefix
                    }
                ),
            ));
        }
        let prefix = if table.prefix.is_empty() {
            table.location.clone()
        } else {
            table.prefix.clone()
        };
        if prefix.is_empty() {
            return Err(ConfigurationError::new(
                path,
                "a [[registry]] table needs a `location` or a `prefix`",
            ));
        }
        check_name(path, "prefix", &prefix)?;
        let location = if table.location.is_empty() && !prefix.starts_with("*.") {
            prefix.clone()
        } else {
            table.location.clone()
        };
        if !location.is_empty() {
            check_name(path, "location", &location)?;
            if location.starts_with("*.") {
                return Err(ConfigurationError::new(
                    path,
                    format!("invalid location `{location}`: a location cannot be a wildcard"),
                ));
            }
        }
        let mut mirrors = Vec::new();
        for mirror in table.mirror {
            if mirror.location.is_empty() {
                return Err(ConfigurationError::new(
                    path,
                    format!("a [[registry.mirror]] of `{prefix}` has no location"),
                ));
            }
            check_name(path, "mirror location", &mirror.location)?;
            let pull = pull_from_mirror(path, mirror.pull_from_mirror.as_deref())?;
            if table.mirror_by_digest_only && pull != PullFromMirror::All {
                return Err(ConfigurationError::new(
                    path,
                    format!(
                        "`{prefix}` sets mirror-by-digest-only, so its mirror `{}` cannot also set pull-from-mirror",
                        mirror.location
                    ),
                ));
            }
            mirrors.push(Mirror {
                location: mirror.location,
                insecure: mirror.insecure,
                pull_from_mirror: pull,
            });
        }
        let registry = Registry {
            prefix,
            location,
            insecure: table.insecure,
            blocked: table.blocked,
            mirror_by_digest_only: table.mirror_by_digest_only,
            mirrors,
            origin: path.to_owned(),
        };
        // Tables with one prefix in one file merge their mirrors when they
        // agree, and are an error when they do not.
        if let Some(existing) = registries
            .iter_mut()
            .find(|r: &&mut Registry| r.prefix == registry.prefix)
        {
            for (setting, differs) in [
                ("location", existing.location != registry.location),
                ("insecure", existing.insecure != registry.insecure),
                ("blocked", existing.blocked != registry.blocked),
                (
                    "mirror-by-digest-only",
                    existing.mirror_by_digest_only != registry.mirror_by_digest_only,
                ),
            ] {
                if differs {
                    return Err(ConfigurationError::new(
                        path,
                        format!(
                            "registry `{}` is defined more than once with conflicting `{setting}` settings",
                            registry.prefix
                        ),
                    ));
                }
            }
            existing.mirrors.extend(registry.mirrors);
        } else {
            registries.push(registry);
        }
    }
    Ok(ParsedFile {
        registries,
        unqualified_search_registries: unqualified,
    })
}

impl RegistriesConf {
    /// Parses one file's text.
    pub fn parse(path: &Path, text: &str) -> Result<Self, ConfigurationError> {
        let mut configuration = RegistriesConf::default();
        configuration.merge_file(path, text)?;
        Ok(configuration)
    }

    fn merge_file(&mut self, path: &Path, text: &str) -> Result<(), ConfigurationError> {
        let parsed = parse_file(path, text)?;
        if let Some(search) = parsed.unqualified_search_registries {
            self.unqualified_search_registries = search;
        }
        for registry in parsed.registries {
            match self
                .registries
                .iter_mut()
                .find(|r| r.prefix == registry.prefix)
            {
                Some(existing) => *existing = registry,
                None => self.registries.push(registry),
            }
        }
        self.files.push(path.to_owned());
        Ok(())
    }

    /// Loads `main` (when it exists) and then every `*.conf` in each of
    /// `drop_in_folders`, in name order.
    pub fn load(
        main: Option<&Path>,
        drop_in_folders: &[PathBuf],
    ) -> Result<Self, ConfigurationError> {
        let mut configuration = RegistriesConf::default();
        if let Some(main) = main {
            match std::fs::read_to_string(main) {
                Ok(text) => configuration.merge_file(main, &text)?,
                Err(error) if error.kind() == std::io::ErrorKind::NotFound => {}
                Err(error) => {
                    return Err(ConfigurationError::new(
                        main,
                        format!("cannot read: {error}"),
                    ));
                }
            }
        }
        for folder in drop_in_folders {
            let Ok(entries) = std::fs::read_dir(folder) else {
                continue;
            };
            let mut files: Vec<PathBuf> = entries
                .filter_map(|entry| entry.ok().map(|entry| entry.path()))
                .filter(|path| path.is_file() && path.extension().is_some_and(|ext| ext == "conf"))
                .collect();
            files.sort();
            for file in files {
                let text = std::fs::read_to_string(&file).map_err(|error| {
                    ConfigurationError::new(&file, format!("cannot read: {error}"))
                })?;
                if parse_file(&file, &text)?.registries.is_empty() && text.contains("[registries.")
                {
                    return Err(ConfigurationError::new(
                        &file,
                        "drop-in files must use the version 2 format",
                    ));
                }
                configuration.merge_file(&file, &text)?;
            }
        }
        Ok(configuration)
    }

    /// Loads a file the user named (`--registries-conf FILE`,
    /// `$CONTAINERS_REGISTRIES_CONF`), without drop-ins. Unlike a default
    /// path, a named file must exist and be readable, as containers/image
    /// requires of `SystemRegistriesConfPath`: when it is missing, the
    /// images it redirects would silently be pulled from their public hosts.
    pub fn load_named(path: &Path) -> Result<Self, ConfigurationError> {
        match std::fs::metadata(path) {
            Err(error) if error.kind() == std::io::ErrorKind::NotFound => {
                return Err(ConfigurationError::new(
                    path,
                    "the registries.conf file named does not exist (without it, images would be pulled from their public hosts instead of the locations it names)",
                ));
            }
            Err(error) => {
                return Err(ConfigurationError::new(
                    path,
                    format!("cannot read: {error}"),
                ));
            }
            Ok(metadata) if metadata.is_dir() => {
                return Err(ConfigurationError::new(
                    path,
                    "is a folder, not a registries.conf file",
                ));
            }
            Ok(_) => {}
        }
        let text = std::fs::read_to_string(path)
            .map_err(|error| ConfigurationError::new(path, format!("cannot read: {error}")))?;
        let mut configuration = RegistriesConf::default();
        configuration.merge_file(path, &text)?;
        Ok(configuration)
    }

    /// Loads the configuration containers/image would: `$CONTAINERS_REGISTRIES_CONF`
    /// alone when set (it must exist, see [`Self::load_named`]); otherwise `~/.config/containers/registries.conf` when
    /// it exists, else `/etc/containers/registries.conf`, each with its
    /// drop-in folders.
    pub fn load_default() -> Result<Self, ConfigurationError> {
        if let Some(path) = std::env::var_os("CONTAINERS_REGISTRIES_CONF") {
            return RegistriesConf::load_named(Path::new(&path));
        }
        let home = std::env::var_os("HOME").map(PathBuf::from);
        let system = PathBuf::from("/etc/containers/registries.conf");
        let system_drop_ins = PathBuf::from("/etc/containers/registries.conf.d");
        if let Some(home) = home {
            let user = home.join(".config/containers/registries.conf");
            let user_drop_ins = home.join(".config/containers/registries.conf.d");
            if user.exists() {
                return RegistriesConf::load(Some(&user), &[user_drop_ins]);
            }
            return RegistriesConf::load(Some(&system), &[system_drop_ins, user_drop_ins]);
        }
        RegistriesConf::load(Some(&system), &[system_drop_ins])
    }

    /// Every table, in the order they were defined.
    pub fn registries(&self) -> &[Registry] {
        &self.registries
    }

    pub fn unqualified_search_registries(&self) -> &[String] {
        &self.unqualified_search_registries
    }

    /// The files that were read, in order.
    pub fn files(&self) -> &[PathBuf] {
        &self.files
    }

    /// The table that governs `name` (an image name as text): the longest
    /// matching prefix.
    pub fn find(&self, name: &str) -> Option<&Registry> {
        let host = name.split('/').next().unwrap_or(name);
        self.registries
            .iter()
            .filter_map(|registry| {
                let length = if let Some(domain) = registry.prefix.strip_prefix("*.") {
                    // `*.example.com` matches subdomains of example.com only.
                    let host_only = host.split(':').next().unwrap_or(host);
                    host_only
                        .strip_suffix(domain)
                        .is_some_and(|start| start.ends_with('.') && start.len() > 1)
                        .then_some(registry.prefix.len())
                } else {
                    name.strip_prefix(registry.prefix.as_str())
                        .is_some_and(|rest| rest.is_empty() || rest.starts_with(['/', ':', '@']))
                        .then_some(registry.prefix.len())
                };
                length.map(|length| (length, registry))
            })
            // Longest prefix wins; the first table wins a tie.
            .fold(
                None::<(usize, &Registry)>,
                |best, (length, registry)| match best {
                    Some((best_length, _)) if best_length >= length => best,
                    _ => Some((length, registry)),
                },
            )
            .map(|(_, registry)| registry)
    }

    /// Where to pull `reference` from, in order: the mirrors that apply,
    /// then the primary location.
    pub fn pull_sources(&self, reference: &ImageReference) -> Result<Vec<PullSource>, PullError> {
        let name = reference.to_string();
        let Some(registry) = self.find(&name) else {
            return Ok(vec![PullSource {
                reference: reference.clone(),
                insecure: false,
                mirror: false,
            }]);
        };
        if registry.blocked {
            return Err(PullError::Blocked {
                prefix: registry.prefix.clone(),
                origin: registry.origin.display().to_string(),
                reference: name,
            });
        }
        let rest = if registry.prefix.starts_with("*.") {
            None
        } else {
            Some(&name[registry.prefix.len()..])
        };
        let rewrite = |location: &str| -> Result<ImageReference, PullError> {
            let text = match rest {
                Some(rest) => format!("{location}{rest}"),
                // A wildcard table: a mirror replaces the host only.
                None => match name.split_once('/') {
                    Some((_, path)) if !location.is_empty() => format!("{location}/{path}"),
                    _ => name.clone(),
                },
            };
            text.parse()
                .map_err(
                    |error: ferry_schemas::reference::ReferenceError| PullError::BadRewrite {
                        location: location.to_owned(),
                        reference: name.clone(),
                        message: error.to_string(),
                    },
                )
        };
        let by_digest = reference.digest().is_some();
        let mut sources = Vec::new();
        if !registry.mirror_by_digest_only || by_digest {
            for mirror in &registry.mirrors {
                let applies = match mirror.pull_from_mirror {
                    PullFromMirror::All => true,
                    PullFromMirror::DigestOnly => by_digest,
                    PullFromMirror::TagOnly => !by_digest,
                };
                if applies {
                    sources.push(PullSource {
                        reference: rewrite(&mirror.location)?,
                        insecure: mirror.insecure,
                        mirror: true,
                    });
                }
            }
        }
        let primary = if registry.location.is_empty() {
            reference.clone()
        } else {
            rewrite(&registry.location)?
        };
        sources.push(PullSource {
            reference: primary,
            insecure: registry.insecure,
            mirror: false,
        });
        Ok(sources)
    }

    /// Whether a registry host (`host[:port]`) is marked insecure.
    pub fn is_insecure(&self, host: &str) -> bool {
        self.find(host).is_some_and(|registry| registry.insecure)
            || self
                .registries
                .iter()
                .flat_map(|registry| &registry.mirrors)
                .any(|mirror| mirror.insecure && mirror.location.split('/').next() == Some(host))
    }
}
