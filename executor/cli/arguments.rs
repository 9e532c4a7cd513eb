//! The flags of `ferry mirror`, `plan` and `apply` (oc-mirror's names, and
//! ferry's own), resolved once into the workflow's typed options, and the
//! refusal of flags the chosen mode does not act on.

use std::path::PathBuf;
use std::process::ExitCode;
use std::time::Duration;

use ferry_executor::workflow::registry_source::RegistryOrigin;
use ferry_executor::workflow::releases::ReleaseSources;
use ferry_executor::workflow::{DiskOptions, PlanOptions, TransferOptions};
use ferry_planner::Destination;
use ferry_schemas::ImageReference;

use crate::common::error;
use crate::oc_mirror_flags::{Folded, OcMirrorFlags};

/// Flags shared by `mirror` and `plan` (oc-mirror's names).
#[derive(Clone, Debug, clap::Args)]
pub struct MirrorArgs {
    /// The ImageSetConfiguration.
    #[arg(short = 'c', long = "config")]
    pub(crate) config: Option<PathBuf>,
    /// Destination: `docker://REGISTRY[/PREFIX]` (mirror-to-mirror,
    /// disk-to-mirror) or `file://DIR` (mirror-to-disk). For `apply` without
    /// `-c`: the saved plan file.
    pub(crate) destination: Option<String>,
    /// The workspace (mirror-to-mirror): `file://DIR`; state lives in DIR/working-dir.
    #[arg(long)]
    pub(crate) workspace: Option<String>,
    /// Disk-to-mirror source: `file://DIR`, the folder with the deliveries
    /// (`mirror_NNNNNN.tar`).
    #[arg(long)]
    pub(crate) from: Option<String>,
    /// Auth file (default: $REGISTRY_AUTH_FILE, then the containers and docker defaults).
    #[arg(long, env = "REGISTRY_AUTH_FILE")]
    pub(crate) authfile: Option<PathBuf>,
    /// Verify TLS for sources (false also allows plain HTTP).
    #[arg(long, default_value_t = true, action = clap::ArgAction::Set)]
    pub(crate) src_tls_verify: bool,
    /// Verify TLS for the destination (false also allows plain HTTP).
    #[arg(long, default_value_t = true, action = clap::ArgAction::Set)]
    pub(crate) dest_tls_verify: bool,
    /// registries.conf to resolve sources with (default: the containers defaults).
    #[arg(long = "registries-conf")]
    pub(crate) registries_conf: Option<PathBuf>,
    /// Images copied at once (1-10).
    #[arg(long, default_value_t = 4, value_parser = clap::value_parser!(u32).range(1..=10))]
    pub(crate) parallel_images: u32,
    /// Layers copied at once per image (1-10).
    #[arg(long, default_value_t = 5, value_parser = clap::value_parser!(u32).range(1..=10))]
    pub(crate) parallel_layers: u32,
    /// Retries of a failed request.
    #[arg(long, default_value_t = 5)]
    pub(crate) retry_times: u32,
    /// Fixed delay between retries, e.g. `500ms` or `2s` (0: exponential backoff).
    #[arg(long, default_value = "0", value_parser = parse_duration)]
    pub(crate) retry_delay: Duration,
    /// How long to wait for a registry's answer (its response headers)
    /// before retrying the request, e.g. `30s`; the retry is logged.
    #[arg(long, default_value = "30s", value_parser = parse_timeout)]
    pub(crate) header_timeout: Duration,
    /// How long a response body (a manifest, a blob) may send nothing
    /// before the transfer counts as stalled and is retried, e.g. `60s`.
    #[arg(long, default_value = "60s", value_parser = parse_timeout)]
    pub(crate) stall_timeout: Duration,
    /// Base folder of the content cache, as in oc-mirror: the cache is
    /// DIR/.ferry/cache (mirror-to-mirror streams images and keeps there
    /// only built images and the layers read to collect catalogs and
    /// releases)
    /// [default: $OC_MIRROR_CACHE as a base folder, else $FERRY_CACHE_DIR
    /// as the cache itself, else ~/.cache/ferry]
    #[arg(long, value_name = "DIR")]
    pub(crate) cache_dir: Option<PathBuf>,
    /// Set by `apply PLANFILE` (not a flag): the cache folder itself, as
    /// the plan recorded it.
    #[arg(skip)]
    pub(crate) cache_folder: Option<PathBuf>,
    /// info, debug, trace or error.
    #[arg(long, default_value = "info", value_parser = ["info", "debug", "trace", "error"])]
    pub(crate) log_level: String,
    /// Do not copy cosign signatures (`sha256-<hex>.sig` tags).
    #[arg(long)]
    pub(crate) remove_signatures: bool,
    /// Flatten destination paths to at most this many components (0: keep).
    #[arg(long, default_value_t = 0)]
    pub(crate) max_nested_paths: usize,
    /// Plan from the workspace state alone: no request to sources for images
    /// resolved before, and no check of the destination.
    #[arg(long, conflicts_with = "verify")]
    pub(crate) trust_state: bool,
    /// Also check every blob of every image at the destination (one HEAD
    /// each) and put back any that is missing.
    #[arg(long)]
    pub(crate) verify: bool,
    /// Do not verify release payload signatures (fetched from
    /// OCP_SIGNATURE_URL, checked with the OCP_SIGNATURE_VERIFICATION_PK
    /// keyring, by default Red Hat's).
    #[arg(long)]
    pub(crate) ignore_release_signature: bool,
    /// Set by `mirror` and `apply` (not a flag): the command whose run log
    /// goes to working-dir/logs/.
    #[arg(skip)]
    pub(crate) run_log: Option<&'static str>,
    /// Set by `apply PLANFILE` (not a flag): the configuration's text as the
    /// plan recorded it, used instead of reading `config`.
    #[arg(skip)]
    pub(crate) config_text: Option<String>,
    /// Mirror-to-disk: pack everything new since this date (YYYY-MM-DD),
    /// as if no delivery had been made from that day on.
    #[arg(long, value_parser = parse_since)]
    pub(crate) since: Option<i64>,
    /// Mirror-to-disk: fail instead of giving a blob larger than the segment
    /// size a segment of its own.
    #[arg(long)]
    pub(crate) strict_archive: bool,
    /// Mirror-to-disk: largest segment file in bytes (default: the
    /// configuration's archiveSize in GiB, else 500 GiB).
    #[arg(long, value_parser = clap::value_parser!(u64).range(1..))]
    pub(crate) max_segment_bytes: Option<u64>,
    /// oc-mirror's flags, accepted so its command lines paste.
    #[command(flatten)]
    pub(crate) oc_mirror: OcMirrorFlags,
}

impl MirrorArgs {
    /// How registries are reached, from the flags.
    pub(crate) fn transfer_options(&self) -> TransferOptions {
        TransferOptions {
            source_tls_verify: self.source_tls_verify(),
            destination_tls_verify: self.destination_tls_verify(),
            authfile: self.effective_authfile(),
            registries_conf: self.registries_conf.clone(),
            parallel_images: self.parallel_images,
            parallel_layers: self.parallel_layers,
            retry_times: self.retry_times,
            retry_delay: (!self.retry_delay.is_zero()).then_some(self.retry_delay),
            header_timeout: self.header_timeout,
            stall_timeout: self.stall_timeout,
        }
    }

    /// What oc-mirror's flags mean here (checked before any command runs:
    /// see [`check_flags_for_mode`]).
    fn folded(&self) -> Folded {
        self.oc_mirror
            .fold(self.explicit_authfile())
            .unwrap_or_default()
    }

    /// `--authfile` when given on the command line (not only taken from
    /// `$REGISTRY_AUTH_FILE`, which `--src-authfile` and
    /// `--dest-authfile` override).
    fn explicit_authfile(&self) -> Option<&PathBuf> {
        let from_variable = |path: &PathBuf| {
            std::env::var_os("REGISTRY_AUTH_FILE")
                .is_some_and(|value| path.as_path() == std::path::Path::new(&value))
        };
        self.authfile.as_ref().filter(|path| !from_variable(path))
    }

    /// Where a run to a registry takes its content from: `--from
    /// file://DIR` (disk-to-mirror) or `--workspace file://DIR`
    /// (mirror-to-mirror), refused as oc-mirror refuses them.
    pub(crate) fn registry_origin(&self) -> Result<RegistryOrigin, String> {
        match (&self.from, &self.workspace) {
            (Some(_), Some(_)) => Err("when destination is docker://, --from (assumes disk to mirror workflow) and --workspace (assumes mirror to mirror workflow) cannot be used together".to_owned()),
            (Some(from), None) => from
                .strip_prefix("file://")
                .map(|folder| RegistryOrigin::Deliveries(PathBuf::from(folder)))
                .ok_or_else(|| "when --from is used, it must have file:// prefix".to_owned()),
            (None, Some(workspace)) => workspace
                .strip_prefix("file://")
                .map(|folder| RegistryOrigin::Registries(PathBuf::from(folder)))
                .ok_or_else(|| "when --workspace is used, it must have file:// prefix".to_owned()),
            (None, None) => Err("when destination is docker://, either --from (assumes disk to mirror workflow) or --workspace (assumes mirror to mirror workflow) need to be provided".to_owned()),
        }
    }

    /// The auth file `--src-authfile`/`--dest-authfile` name, else
    /// `--authfile` (or `$REGISTRY_AUTH_FILE`).
    pub(crate) fn effective_authfile(&self) -> Option<PathBuf> {
        self.folded().authfile.or_else(|| self.authfile.clone())
    }

    /// `--src-tls-verify`, turned off by oc-mirror's `--tls-verify=false`.
    pub(crate) fn source_tls_verify(&self) -> bool {
        self.src_tls_verify && !self.folded().no_tls_verify
    }

    /// `--dest-tls-verify`, turned off by oc-mirror's `--tls-verify=false`.
    pub(crate) fn destination_tls_verify(&self) -> bool {
        self.dest_tls_verify && !self.folded().no_tls_verify
    }

    /// The cache folder the user chose (a saved plan's, `--cache-dir`,
    /// `$OC_MIRROR_CACHE`, `$FERRY_CACHE_DIR`), `None` for the default.
    pub(crate) fn chosen_cache_folder(&self) -> Result<Option<PathBuf>, String> {
        match &self.cache_folder {
            Some(folder) => Ok(Some(folder.clone())),
            None => crate::cache_location::chosen_cache_folder_here(self.cache_dir.as_deref()),
        }
    }

    /// Where the cache is and what shapes a delivery, from the flags.
    pub(crate) fn disk_options(&self) -> DiskOptions {
        DiskOptions {
            cache: self
                .chosen_cache_folder()
                .ok()
                .flatten()
                .unwrap_or_else(crate::cache_location::default_cache_dir),
            since: self.since,
            strict_archive: self.strict_archive,
            max_segment_bytes: self.max_segment_bytes,
        }
    }

    /// Where release content comes from: the update service
    /// (`UPDATE_URL_OVERRIDE`), the sources of `transfer_options`, and
    /// `workspace` for the saved answers.
    pub(crate) fn release_sources(
        &self,
        workspace: &ferry_executor::workflow::Workspace,
    ) -> ReleaseSources {
        ReleaseSources {
            registries: ferry_executor::catalog_image::RegistryAccessOptions {
                registries_conf: self.registries_conf.clone(),
                authfile: self.authfile.clone(),
                source_tls_verify: self.src_tls_verify,
            },
            update_url_override: std::env::var(ferry_content::release::graph::UPDATE_URL_OVERRIDE)
                .ok(),
            graph_data_url: std::env::var(
                ferry_executor::workflow::graph_image::GRAPH_DATA_URL_VARIABLE,
            )
            .ok()
            .filter(|url| !url.is_empty()),
            workspace: workspace.clone(),
            reuse_saved_graphs: self.trust_state,
            offline: false,
            signatures: (!self.ignore_release_signature)
                .then(ferry_executor::release_signature::SignatureSettings::from_environment),
            shared_signatures: Some(self.disk_options().cache.join("signatures")),
            shared_graph_image: Some(
                self.disk_options()
                    .cache
                    .join(ferry_executor::workflow::graph_image::SHARED_RECORD),
            ),
        }
    }

    /// What shapes the plan, from the flags.
    pub(crate) fn plan_options(&self) -> PlanOptions {
        PlanOptions {
            remove_signatures: self.remove_signatures,
            max_nested_paths: self.max_nested_paths,
            trust_state: self.trust_state,
            verify: self.verify,
        }
    }
}

/// `YYYY-MM-DD` as seconds since the epoch at midnight UTC.
fn parse_since(text: &str) -> Result<i64, String> {
    let invalid = || format!("`{text}` is not a date such as 2025-03-31");
    let mut parts = text.trim().splitn(3, '-');
    let mut number = || -> Result<i64, String> {
        parts
            .next()
            .and_then(|part| part.parse::<i64>().ok())
            .ok_or_else(invalid)
    };
    let (year, month, day) = (number()?, number()?, number()?);
    if !(1970..=9999).contains(&year) {
        return Err(invalid());
    }
    let month = u8::try_from(month)
        .ok()
        .and_then(|month| time::Month::try_from(month).ok())
        .ok_or_else(invalid)?;
    let day = u8::try_from(day).map_err(|_| invalid())?;
    let date = time::Date::from_calendar_date(year as i32, month, day).map_err(|_| invalid())?;
    Ok(date.midnight().assume_utc().unix_timestamp())
}

/// `ferry mirror`.
#[derive(Debug, clap::Args)]
pub struct Mirror {
    #[command(flatten)]
    pub(crate) common: MirrorArgs,
    /// Write working-dir/dry-run/mapping.txt and change nothing.
    #[arg(long)]
    pub(crate) dry_run: bool,
    /// A dry run whose mapping.txt also lists every image of each manifest
    /// list (`SOURCE@DIGEST=DESTINATION@DIGEST`), as oc-mirror's does.
    #[arg(long, conflicts_with = "dry_run")]
    pub(crate) dry_run_manifest_lists: bool,
}

impl Mirror {
    /// `--dry-run` or `--dry-run-manifest-lists`.
    pub(crate) fn is_dry_run(&self) -> bool {
        self.dry_run || self.dry_run_manifest_lists
    }
}

/// `ferry plan`.
#[derive(Debug, clap::Args)]
pub struct PlanCommand {
    #[command(flatten)]
    pub(crate) common: MirrorArgs,
    /// text, json or markdown.
    #[arg(long, default_value = "text", value_parser = ["text", "json", "markdown"])]
    pub(crate) format: String,
    /// Also save the plan to this file, for `ferry apply FILE`.
    #[arg(long)]
    pub(crate) out: Option<PathBuf>,
    /// Exit 0 when there is nothing to do, 2 when there are changes, 1 on error.
    #[arg(long)]
    pub(crate) detailed_exitcode: bool,
    /// Plan a delete: -c names a DeleteImageSetConfiguration; the plan lists
    /// the manifests and tags to delete and the blobs garbage collection frees
    /// (`--force`: also what another image set at that registry needs).
    #[arg(long)]
    pub(crate) delete: bool,
    /// With --delete: also delete the images' cosign signature tags.
    #[arg(long, requires = "delete")]
    pub(crate) delete_signatures: bool,
}

/// A duration flag: `500ms`, `2s`, `10m`, `1h` (a number alone is seconds).
pub(crate) fn parse_duration(text: &str) -> Result<Duration, String> {
    let text = text.trim();
    let (number, unit) = text
        .find(|c: char| !c.is_ascii_digit() && c != '.')
        .map_or((text, "s"), |split| text.split_at(split));
    let value: f64 = number
        .parse()
        .map_err(|_| format!("`{text}` is not a duration such as 500ms or 2s"))?;
    let seconds = match unit {
        "ms" => value / 1000.0,
        "s" | "" => value,
        "m" => value * 60.0,
        "h" => value * 3600.0,
        _ => return Err(format!("`{text}`: use ms, s, m or h")),
    };
    Ok(Duration::from_secs_f64(seconds))
}

/// A duration above zero (a zero timeout would fail every request).
fn parse_timeout(text: &str) -> Result<Duration, String> {
    let timeout = parse_duration(text)?;
    if timeout.is_zero() {
        return Err(format!("`{text}`: a timeout must be above zero"));
    }
    Ok(timeout)
}

/// `ferry apply`.
#[derive(Debug, clap::Args)]
pub struct Apply {
    #[command(flatten)]
    pub(crate) common: MirrorArgs,
}

/// The folder of a `file://` destination (mirror-to-disk).
pub(crate) fn disk_destination(arguments: &MirrorArgs) -> Option<&str> {
    arguments.destination.as_deref()?.strip_prefix("file://")
}

/// Checks the flags before any command runs: oc-mirror's flags are folded
/// into ferry's (with a one-line warning where ferry does otherwise), the
/// cache folder and the authfile are checked, and ferry's own flags that
/// the chosen mode does not act on are refused, so none is accepted and
/// then ignored (the flags that shape a delivery, with a registry
/// destination; `--trust-state` and `--verify` apply to every mode).
pub(crate) fn check_flags_for_mode(arguments: &MirrorArgs) -> Result<(), ExitCode> {
    let folded = arguments
        .oc_mirror
        .fold(arguments.explicit_authfile())
        .map_err(|refused| error(format!("{refused}; nothing was done")))?;
    for warning in &folded.warnings {
        eprintln!("warning: {warning}");
    }
    arguments
        .chosen_cache_folder()
        .map_err(|refused| error(format!("{refused}; nothing was done")))?;
    // A mistyped --authfile would otherwise mean anonymous pulls.
    ferry_registry::CredentialStore::discover_checked(arguments.effective_authfile().as_deref())
        .map_err(|missing| error(format!("{missing}; nothing was done")))?;
    if disk_destination(arguments).is_some() {
        return Ok(());
    }
    let refused: Vec<&str> = [
        (arguments.since.is_some(), "--since"),
        (arguments.strict_archive, "--strict-archive"),
        (arguments.max_segment_bytes.is_some(), "--max-segment-bytes"),
    ]
    .into_iter()
    .filter_map(|(given, flag)| given.then_some(flag))
    .collect();
    let Some(first) = refused.first() else {
        return Ok(());
    };
    let what = if refused.len() == 1 {
        format!("{first} does")
    } else {
        format!("{} do", refused.join(" and "))
    };
    Err(error(format!(
        "{what} not apply to a docker:// destination: it shapes the deliveries of mirror-to-disk (file://DIR); nothing was done"
    )))
}

/// `registry[/prefix]` of a `docker://` destination, checked.
pub(crate) fn parse_destination(
    destination_text: &str,
    destination_path: &str,
) -> Result<Destination, ExitCode> {
    let (registry, prefix) = destination_path
        .split_once('/')
        .map_or((destination_path, ""), |(registry, prefix)| {
            (registry, prefix)
        });
    let prefix = prefix.trim_end_matches('/');
    if registry.is_empty() || format!("{registry}/x").parse::<ImageReference>().is_err() {
        return Err(error(format!(
            "`{destination_text}` does not name a registry host"
        )));
    }
    if !prefix.is_empty() && !ferry_schemas::reference::is_valid_repository_path(prefix) {
        return Err(error(format!(
            "`{prefix}` is not a valid repository path prefix"
        )));
    }
    Ok(Destination {
        registry: registry.to_owned(),
        prefix: prefix.to_owned(),
    })
}

#[cfg(test)]
mod tests {
    use super::*;
    use clap::Parser as _;

    #[derive(clap::Parser)]
    struct Flags {
        #[command(flatten)]
        common: MirrorArgs,
    }

    fn origin(flags: &[&str]) -> Result<RegistryOrigin, String> {
        let mut line = vec!["ferry", "docker://mirror.local"];
        line.extend_from_slice(flags);
        Flags::try_parse_from(line)
            .expect("the flags parse")
            .common
            .registry_origin()
    }

    #[test]
    fn a_registry_run_takes_its_content_from_the_deliveries_or_the_registries() {
        assert_eq!(
            origin(&["--from", "file:///srv/disk"]),
            Ok(RegistryOrigin::Deliveries(PathBuf::from("/srv/disk")))
        );
        assert_eq!(
            origin(&["--workspace", "file://relative"]),
            Ok(RegistryOrigin::Registries(PathBuf::from("relative")))
        );
        assert_eq!(
            origin(&["--from", "/srv/disk"]).unwrap_err(),
            "when --from is used, it must have file:// prefix"
        );
        assert_eq!(
            origin(&["--workspace", "/srv/ws"]).unwrap_err(),
            "when --workspace is used, it must have file:// prefix"
        );
        assert!(
            origin(&[])
                .unwrap_err()
                .contains("either --from (assumes disk to mirror workflow) or --workspace")
        );
        assert!(
            origin(&["--from", "file:///a", "--workspace", "file:///b"])
                .unwrap_err()
                .contains("cannot be used together")
        );
    }
}
