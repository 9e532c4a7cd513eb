//! `ferry mirror`, `ferry plan` and `ferry apply` for additional images:
//! mirror-to-mirror, disk-to-mirror (`--from`, its sources being the
//! deliveries `disk.rs` reads) and saved plans; a `file://` destination is
//! handed to `disk.rs` (mirror-to-disk).
//!
//! The flow is the one in ARCHITECTURE.md: load the configuration (refusing
//! parts ferry does not act on yet), resolve through registries.conf or
//! from the deliveries, compile the action graph, diff it against the
//! workspace state (and, by default, against the destination: one HEAD per
//! image), then print the plan (`plan`) or run it (`mirror`, `apply`).

use std::collections::BTreeSet;
use std::fmt::Write as _;
use std::path::{Path, PathBuf};
use std::process::ExitCode;
use std::time::Duration;

use ferry_executor::resolve::{self, Resolution, ResolveOptions};
use ferry_executor::workflow::to_registry::{self, Planned};
use ferry_executor::workflow::{CollectContext, ImageSet, PlanOptions, TransferOptions, Workspace};
use ferry_planner::{Destination, ImageChange, Plan};
use ferry_registry::{RegistriesConf, RegistryClient};
use ferry_schemas::{ImageReference, load_image_set_configuration, render};

pub(crate) use ferry_executor::workflow::to_registry::{LocalSource, Sourced};

use crate::exit_status;
use crate::logging;
use crate::progress::{Mode, RunProgress};

pub(crate) fn unix_now() -> i64 {
    to_registry::unix_now()
}

/// Flags shared by `mirror` and `plan` (oc-mirror's names).
#[derive(Clone, Debug, clap::Args)]
pub struct MirrorArgs {
    /// The ImageSetConfiguration.
    #[arg(short = 'c', long = "config")]
    pub(crate) config: Option<PathBuf>,
    /// Destination: `docker://REGISTRY[/PREFIX]` (or `file://DIR`, not built
    /// yet). For `apply` without `-c`: the saved plan file.
    pub(crate) destination: Option<String>,
    /// The workspace (mirror-to-mirror): `file://DIR`; state lives in DIR/working-dir.
    #[arg(long)]
    pub(crate) workspace: Option<String>,
    /// Disk-to-mirror source: `file://DIR` (not built yet).
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
    /// Content cache (mirror-to-mirror streams and does not use it).
    #[arg(long, env = "FERRY_CACHE_DIR")]
    pub(crate) cache_dir: Option<PathBuf>,
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
}

impl MirrorArgs {
    /// How registries are reached, from the flags.
    pub(crate) fn transfer_options(&self) -> TransferOptions {
        TransferOptions {
            source_tls_verify: self.src_tls_verify,
            destination_tls_verify: self.dest_tls_verify,
            authfile: self.authfile.clone(),
            registries_conf: self.registries_conf.clone(),
            parallel_images: self.parallel_images,
            parallel_layers: self.parallel_layers,
            retry_times: self.retry_times,
            retry_delay: (!self.retry_delay.is_zero()).then_some(self.retry_delay),
            header_timeout: self.header_timeout,
            stall_timeout: self.stall_timeout,
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
}

/// `ferry plan`.
#[derive(Debug, clap::Args)]
pub struct PlanCommand {
    #[command(flatten)]
    common: MirrorArgs,
    /// text, json or markdown.
    #[arg(long, default_value = "text", value_parser = ["text", "json", "markdown"])]
    format: String,
    /// Also save the plan to this file, for `ferry apply FILE`.
    #[arg(long)]
    out: Option<PathBuf>,
    /// Exit 0 when there is nothing to do, 2 when there are changes, 1 on error.
    #[arg(long)]
    detailed_exitcode: bool,
}

fn parse_duration(text: &str) -> Result<Duration, String> {
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
        _ => return Err(format!("`{text}`: use ms, s or m")),
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

pub(crate) fn error(message: impl std::fmt::Display) -> ExitCode {
    eprintln!("error: {message}");
    exit_status::ERROR.into()
}

/// Everything prepared before the plan.
struct Prepared {
    config_text: String,
    planned: Planned,
    /// The run log (`mirror` and `apply`).
    log_file: Option<PathBuf>,
    /// One run per workspace: held until the run ends.
    _run_lock: Option<ferry_store::RunLock>,
}

/// What disk-to-mirror does with the deliveries before resolving.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub(crate) enum Deliveries {
    /// `plan` and `mirror --dry-run`: verify them and read their manifests
    /// into memory; the cache is only read.
    Verify,
    /// `mirror` and `apply`: verify them and import them into the cache.
    Import,
}

/// Mirror-to-mirror: the workspace named by `--workspace`, sources
/// resolved through registries.conf.
fn from_registries(
    arguments: &MirrorArgs,
    destination: &Destination,
    config: &ferry_schemas::ImageSetConfiguration,
) -> Result<Sourced, ExitCode> {
    let Some(workspace) = &arguments.workspace else {
        return Err(error(
            "when destination is docker://, either --from (assumes disk to mirror workflow) or --workspace (assumes mirror to mirror workflow) need to be provided",
        ));
    };
    let Some(workspace_path) = workspace.strip_prefix("file://") else {
        return Err(error(
            "when --workspace is used, it must have file:// prefix",
        ));
    };
    let image_set = collect(arguments, &destination.prefix, config)?;
    runtime()?
        .block_on(to_registry::from_registries(
            &Workspace::in_folder(workspace_path),
            destination,
            &image_set,
            &arguments.transfer_options(),
            &arguments.plan_options(),
        ))
        .map_err(error)
}

/// The collect stage for a destination prefix.
pub(crate) fn collect(
    arguments: &MirrorArgs,
    prefix: &str,
    config: &ferry_schemas::ImageSetConfiguration,
) -> Result<ImageSet, ExitCode> {
    let context = CollectContext {
        prefix: prefix.to_owned(),
        max_nested_paths: arguments.max_nested_paths,
    };
    ferry_executor::workflow::collect(config, &context).map_err(error)
}

/// `DIR/working-dir` for a workspace or disk folder `DIR` (or `DIR`
/// itself when it is already a working-dir).
pub(crate) fn working_dir(path: &str) -> PathBuf {
    Workspace::in_folder(path).root().to_path_buf()
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

/// Reads and checks the configuration, refusing parts ferry does not
/// mirror yet. Returns its text and the loaded model.
pub(crate) fn load_config(
    config_path: &Path,
) -> Result<
    (
        String,
        ferry_schemas::Loaded<ferry_schemas::ImageSetConfiguration>,
    ),
    ExitCode,
> {
    let text = ferry_schemas::read_configuration_file(config_path)
        .map_err(|cause| error(format!("cannot read {}: {cause}", config_path.display())))?;
    check_config(config_path, text)
}

/// Checks the configuration `text` (read from `config_path`), refusing
/// parts ferry does not mirror yet.
fn check_config(
    config_path: &Path,
    text: String,
) -> Result<
    (
        String,
        ferry_schemas::Loaded<ferry_schemas::ImageSetConfiguration>,
    ),
    ExitCode,
> {
    let config_name = config_path.display().to_string();
    let loaded = match load_image_set_configuration(&text) {
        Ok(loaded) => loaded,
        Err(problems) => {
            eprint!("{}", render(&config_name, &text, &problems));
            return Err(exit_status::ERROR.into());
        }
    };
    let refusals = loaded.refusals();
    if !refusals.is_empty() {
        eprint!("{}", render(&config_name, &text, &refusals));
        return Err(error(
            "the configuration uses parts ferry does not mirror yet; nothing was done",
        ));
    }

    Ok((text, loaded))
}

/// registries.conf from `--registries-conf`, else the containers defaults.
pub(crate) fn load_registries(arguments: &MirrorArgs) -> Result<RegistriesConf, ExitCode> {
    to_registry::load_registries(arguments.registries_conf.as_deref()).map_err(error)
}

pub(crate) fn resolve_options(arguments: &MirrorArgs, prefix: &str) -> ResolveOptions {
    to_registry::resolve_options(&arguments.plan_options(), prefix)
}

/// The registry client for a run: plain HTTP allowed where registries.conf
/// says `insecure`, where TLS verification is off, and for
/// `insecure_destination`.
pub(crate) fn source_client(
    arguments: &MirrorArgs,
    registries: &RegistriesConf,
    requests: &[resolve::Request],
    insecure_destination: Option<&str>,
) -> RegistryClient {
    to_registry::source_client(
        &arguments.transfer_options(),
        registries,
        requests,
        insecure_destination,
    )
}

/// Checks the destination and flags the way oc-mirror does, then resolves,
/// compiles and plans. `deliveries`: whether disk-to-mirror imports.
fn prepare(arguments: &MirrorArgs, deliveries: Deliveries) -> Result<Prepared, ExitCode> {
    let run_lock = crate::disk::hold_workspace_of(arguments)?;
    // `mirror` and `apply` log to the workspace (mirror-to-mirror) or the
    // disk folder's working-dir (disk-to-mirror).
    let logs_folder = arguments
        .run_log
        .and_then(|_| arguments.from.as_deref().or(arguments.workspace.as_deref()))
        .and_then(|folder| folder.strip_prefix("file://"))
        .map(|folder| working_dir(folder).join("logs"));
    let log_file = logging::init(&arguments.log_level, logs_folder.as_deref()).map_err(error)?;
    if let (Some(command), Some(config), Some(destination)) =
        (arguments.run_log, &arguments.config, &arguments.destination)
    {
        tracing::info!(
            "ferry {} {command}: configuration {}, destination {destination}",
            env!("CARGO_PKG_VERSION"),
            config.display(),
        );
    }
    let Some(config_path) = &arguments.config else {
        return Err(error("use the --config flag, it is mandatory"));
    };
    let Some(destination_text) = &arguments.destination else {
        return Err(error("name a destination: docker://REGISTRY[/PREFIX]"));
    };
    if destination_text.starts_with("file://") {
        return Err(error(
            "a file:// destination is mirror-to-disk: use `ferry mirror` or `ferry plan` with it",
        ));
    }
    let Some(destination_path) = destination_text.strip_prefix("docker://") else {
        return Err(error(
            "destination must have either file:// (mirror to disk) or docker:// (mirror to mirror, disk to mirror) protocol prefixes",
        ));
    };
    if arguments.from.is_some() && arguments.workspace.is_some() {
        return Err(error(
            "when destination is docker://, --from (assumes disk to mirror workflow) and --workspace (assumes mirror to mirror workflow) cannot be used together",
        ));
    }
    let destination = parse_destination(destination_text, destination_path)?;
    let (text, loaded) = match &arguments.config_text {
        Some(text) => check_config(config_path, text.clone())?,
        None => load_config(config_path)?,
    };
    let sourced = match &arguments.from {
        Some(from) => {
            crate::disk::from_deliveries(arguments, from, &destination, &loaded.config, deliveries)?
        }
        None => from_registries(arguments, &destination, &loaded.config)?,
    };
    let planned = runtime()?
        .block_on(to_registry::plan(
            sourced,
            destination,
            &arguments.plan_options(),
        ))
        .map_err(error)?;
    Ok(Prepared {
        config_text: text,
        planned,
        log_file,
        _run_lock: run_lock,
    })
}

pub(crate) fn runtime() -> Result<tokio::runtime::Runtime, ExitCode> {
    tokio::runtime::Builder::new_multi_thread()
        .worker_threads(2)
        .enable_all()
        .build()
        .map_err(|cause| error(format!("cannot start the async runtime: {cause}")))
}

pub(crate) fn mebibytes(bytes: u64) -> String {
    if bytes < 1024 * 1024 {
        format!("{:.1} KiB", bytes as f64 / 1024.0)
    } else {
        format!("{:.1} MiB", bytes as f64 / (1024.0 * 1024.0))
    }
}

/// One line per new or changed image, then what was not resolved or was
/// left out.
pub(crate) fn render_image_lines(plan: &Plan, resolution: &Resolution, text: &mut String) {
    for image in &plan.images {
        let marker = match image.change {
            ImageChange::New => "+",
            ImageChange::Changed => "~",
            ImageChange::Unchanged => continue,
        };
        let _ = writeln!(
            text,
            "  {marker} {} -> {} ({}; {} actions, {})",
            image.name,
            image.destination,
            image.reason.as_deref().unwrap_or(""),
            image.actions,
            mebibytes(image.bytes)
        );
    }
    for failure in &resolution.failures {
        let _ = writeln!(
            text,
            "  ! {}: not resolved: {}",
            failure.name, failure.message
        );
    }
    for blocked in &resolution.blocked {
        let _ = writeln!(text, "  - {blocked}: left out by blockedImages");
    }
}

/// The plan for people.
pub fn render_text(plan: &Plan, resolution: &Resolution) -> String {
    let mut text = String::new();
    let count = |change: ImageChange| {
        plan.images
            .iter()
            .filter(|image| image.change == change)
            .count()
    };
    let _ = writeln!(
        text,
        "Plan: {} images: {} new, {} changed, {} unchanged",
        plan.images.len(),
        count(ImageChange::New),
        count(ImageChange::Changed),
        count(ImageChange::Unchanged)
    );
    render_image_lines(plan, resolution, &mut text);
    let totals = &plan.totals;
    let _ = writeln!(
        text,
        "Manifests: {} to push, {} to skip. Blobs: {} to upload, {} to link, {} to skip. Bytes: {} to push, {} skipped. Tags: {} to set.",
        totals.manifests_to_push,
        totals.manifests_to_skip,
        totals.blobs_to_upload,
        totals.blobs_to_link,
        totals.blobs_to_skip,
        mebibytes(totals.bytes_to_push),
        mebibytes(totals.bytes_to_skip),
        totals.tags_to_set
    );
    if plan.is_empty() && resolution.failures.is_empty() {
        let _ = writeln!(
            text,
            "Nothing to do: the destination has the whole image set."
        );
    }
    text
}

/// The plan as Markdown (for pull-request comments).
pub fn render_markdown(plan: &Plan, resolution: &Resolution) -> String {
    let mut text = String::from(
        "### ferry plan\n\n| | image | destination | reason | actions | bytes |\n|---|---|---|---|---|---|\n",
    );
    for image in &plan.images {
        let marker = match image.change {
            ImageChange::New => "+",
            ImageChange::Changed => "~",
            ImageChange::Unchanged => "=",
        };
        let _ = writeln!(
            text,
            "| {marker} | `{}` | `{}` | {} | {} | {} |",
            image.name,
            image.destination,
            image.reason.as_deref().unwrap_or("unchanged"),
            image.actions,
            mebibytes(image.bytes)
        );
    }
    for failure in &resolution.failures {
        let _ = writeln!(
            text,
            "| ! | `{}` | | not resolved: {} | | |",
            failure.name, failure.message
        );
    }
    let totals = &plan.totals;
    let _ = writeln!(
        text,
        "\n**{}** to push, {} skipped; {} manifests, {} blobs uploaded, {} linked, {} tags.",
        mebibytes(totals.bytes_to_push),
        mebibytes(totals.bytes_to_skip),
        totals.manifests_to_push,
        totals.blobs_to_upload,
        totals.blobs_to_link,
        totals.tags_to_set
    );
    text
}

/// The plan as versioned JSON (what `--format json` prints and `--out`
/// saves).
pub fn render_json(document: &ferry_planner::PlanDocument) -> String {
    let mut text = serde_json::to_string_pretty(document).unwrap_or_default();
    text.push('\n');
    text
}

/// `path` made absolute (against the current folder), for a plan that may
/// be applied from another folder.
fn absolute(path: &Path) -> String {
    std::path::absolute(path)
        .unwrap_or_else(|_| path.to_path_buf())
        .display()
        .to_string()
}

/// A `file://DIR` made absolute; other locations as they are.
fn absolute_location(location: &str) -> String {
    match location.strip_prefix("file://") {
        Some(folder) => format!("file://{}", absolute(Path::new(folder))),
        None => location.to_owned(),
    }
}

/// What `ferry apply` needs to run a plan made with `arguments` exactly,
/// from any folder.
pub(crate) fn run_settings(arguments: &MirrorArgs) -> ferry_planner::RunSettings {
    ferry_planner::RunSettings {
        source_tls_verify: arguments.src_tls_verify,
        destination_tls_verify: arguments.dest_tls_verify,
        registries_conf: arguments.registries_conf.as_deref().map(absolute),
        authfile: arguments.authfile.as_deref().map(absolute),
        cache_dir: arguments.cache_dir.as_deref().map(absolute),
        parallel_images: arguments.parallel_images,
        parallel_layers: arguments.parallel_layers,
        retry_times: arguments.retry_times,
        retry_delay_milliseconds: arguments.retry_delay.as_millis() as u64,
        max_nested_paths: arguments.max_nested_paths,
        remove_signatures: arguments.remove_signatures,
        trust_state: arguments.trust_state,
        verify: arguments.verify,
        since: arguments.since,
        strict_archive: arguments.strict_archive,
        max_segment_bytes: arguments.max_segment_bytes,
    }
}

/// The plan document of a plan to a registry, with what `apply` runs it
/// from.
fn plan_document(arguments: &MirrorArgs, prepared: &Prepared) -> ferry_planner::PlanDocument {
    let mut document = ferry_planner::PlanDocument::new(prepared.planned.plan.clone());
    document.apply = Some(ferry_planner::ApplyInputs {
        configuration: ferry_planner::SavedConfiguration {
            path: arguments
                .config
                .as_deref()
                .map(absolute)
                .unwrap_or_default(),
            text: prepared.config_text.clone(),
        },
        destination: arguments.destination.clone().unwrap_or_default(),
        workspace: arguments.workspace.as_deref().map(absolute_location),
        from: arguments.from.as_deref().map(absolute_location),
        settings: run_settings(arguments),
        state_fingerprint: prepared.planned.state_fingerprint.clone(),
        images: saved_images(&prepared.planned.resolution),
        action_keys: prepared
            .planned
            .plan
            .actions
            .iter()
            .map(|planned| planned.key.to_hex())
            .collect(),
    });
    document
}

/// Each resolved image with its top digest, as a plan document records them.
fn saved_images(resolution: &Resolution) -> Vec<ferry_planner::PlannedImage> {
    resolution
        .images
        .iter()
        .map(|image| ferry_planner::PlannedImage {
            name: image.name.clone(),
            top: image.top.to_string(),
        })
        .collect()
}

/// The flags of a plan made with `settings`, for `apply` to plan again
/// exactly as the plan was made (`log_level` stays the apply's own).
fn arguments_of(apply: &ferry_planner::ApplyInputs, log_level: &str) -> MirrorArgs {
    let settings = &apply.settings;
    MirrorArgs {
        config: Some(PathBuf::from(&apply.configuration.path)),
        destination: Some(apply.destination.clone()),
        workspace: apply.workspace.clone(),
        from: apply.from.clone(),
        authfile: settings.authfile.as_ref().map(PathBuf::from),
        src_tls_verify: settings.source_tls_verify,
        dest_tls_verify: settings.destination_tls_verify,
        registries_conf: settings.registries_conf.as_ref().map(PathBuf::from),
        parallel_images: settings.parallel_images,
        parallel_layers: settings.parallel_layers,
        retry_times: settings.retry_times,
        retry_delay: Duration::from_millis(settings.retry_delay_milliseconds),
        // Plans do not record timeouts: a saved plan applies with the defaults.
        header_timeout: ferry_registry::client::HEADER_TIMEOUT,
        stall_timeout: ferry_registry::client::STALL_TIMEOUT,
        cache_dir: settings.cache_dir.as_ref().map(PathBuf::from),
        log_level: log_level.to_owned(),
        remove_signatures: settings.remove_signatures,
        max_nested_paths: settings.max_nested_paths,
        trust_state: settings.trust_state,
        verify: settings.verify,
        run_log: Some("apply"),
        config_text: Some(apply.configuration.text.clone()),
        since: settings.since,
        strict_archive: settings.strict_archive,
        max_segment_bytes: settings.max_segment_bytes,
    }
}

/// Runs a version 2 plan document to a registry exactly, or refuses it
/// naming why it is stale.
fn apply_document(apply: &ferry_planner::ApplyInputs, log_level: &str) -> ExitCode {
    let common = arguments_of(apply, log_level);
    if std::fs::read_to_string(&apply.configuration.path)
        .is_ok_and(|text| text != apply.configuration.text)
    {
        eprintln!(
            "note: {} changed since the plan was made; the plan is applied as it was made, from its own copy of the configuration",
            apply.configuration.path
        );
    }
    let prepared = match prepare(&common, Deliveries::Import) {
        Ok(prepared) => prepared,
        Err(code) => return code,
    };
    let keys: Vec<String> = prepared
        .planned
        .plan
        .actions
        .iter()
        .map(|planned| planned.key.to_hex())
        .collect();
    let images = saved_images(&prepared.planned.resolution);
    let current = ferry_planner::saved::Current {
        state_fingerprint: &prepared.planned.state_fingerprint,
        images: &images,
        action_keys: &keys,
    };
    if let Some(stale) = ferry_planner::staleness(apply, &current) {
        return error(stale_message(
            &stale,
            Staleness {
                state: "the workspace state changed since the plan was made (another run mirrored to this destination)",
                actions: "the destination no longer matches what the plan assumed (content went missing)",
            },
        ));
    }
    eprint!(
        "{}",
        render_text(&prepared.planned.plan, &prepared.planned.resolution)
    );
    run_prepared(prepared, &common)
}

/// The message of a stale plan.
pub(crate) fn stale_message(stale: &ferry_planner::Stale, messages: Staleness) -> String {
    match stale {
        ferry_planner::Stale::State => format!(
            "the plan is stale: {}; run `ferry plan` again",
            messages.state
        ),
        ferry_planner::Stale::ImageMoved {
            name,
            now,
            expected,
        } => format!(
            "the plan is stale: {name} now points to {now}, the plan expected {expected}; run `ferry plan` again"
        ),
        ferry_planner::Stale::ImageGone { name } => {
            format!("the plan is stale: {name} can no longer be resolved; run `ferry plan` again")
        }
        ferry_planner::Stale::Actions => format!(
            "the plan is stale: {}; run `ferry plan` again",
            messages.actions
        ),
    }
}

pub fn plan_command(arguments: &PlanCommand) -> ExitCode {
    if let Err(code) = refuse_flags_of_other_modes(&arguments.common) {
        return code;
    }
    if let Some(folder) = disk_destination(&arguments.common) {
        return crate::disk::mirror_to_disk(
            &arguments.common,
            folder,
            &crate::disk::Mode::Plan {
                format: arguments.format.clone(),
                out: arguments.out.clone(),
                detailed_exitcode: arguments.detailed_exitcode,
            },
        );
    }
    let prepared = match prepare(&arguments.common, Deliveries::Verify) {
        Ok(prepared) => prepared,
        Err(code) => return code,
    };
    let document = plan_document(&arguments.common, &prepared);
    let output = match arguments.format.as_str() {
        "json" => render_json(&document),
        "markdown" => render_markdown(&prepared.planned.plan, &prepared.planned.resolution),
        _ => render_text(&prepared.planned.plan, &prepared.planned.resolution),
    };
    print!("{output}");
    if let Some(out) = &arguments.out
        && let Err(code) = write_file(out, &render_json(&document))
    {
        return code;
    }
    if !prepared.planned.resolution.failures.is_empty() {
        return exit_status::ERROR.into();
    }
    if arguments.detailed_exitcode && !prepared.planned.plan.is_empty() {
        return exit_status::PLAN_HAS_CHANGES.into();
    }
    ExitCode::SUCCESS
}

pub(crate) fn write_file(path: &Path, text: &str) -> Result<(), ExitCode> {
    if let Some(parent) = path.parent() {
        std::fs::create_dir_all(parent)
            .map_err(|cause| error(format!("cannot create {}: {cause}", parent.display())))?;
    }
    std::fs::write(path, text)
        .map_err(|cause| error(format!("cannot write {}: {cause}", path.display())))
}

/// Publishes the cluster resources for every image now at the
/// destination (failed ones left out), removing ferry's files that no
/// longer apply.
fn write_cluster_resources(
    prepared: &Prepared,
    report: &ferry_executor::run::RunReport,
    repository_scope: bool,
) -> Result<(), ExitCode> {
    use ferry_executor::cluster_resources::MirroredImage;
    use ferry_executor::workflow::{Workspace, publish};
    let failed: BTreeSet<&str> = report
        .failed_images()
        .map(|image| image.name.as_str())
        .collect();
    let images: Vec<MirroredImage> = prepared
        .planned
        .resolution
        .images
        .iter()
        .filter(|image| !failed.contains(image.name.as_str()))
        .filter_map(|image| {
            Some(MirroredImage {
                origin: image.name.parse().ok()?,
                destination: format!(
                    "{}/{}",
                    prepared.planned.destination.registry, image.destination_repository
                ),
                category: image.category,
            })
        })
        .collect();
    let published = publish::cluster_resources(
        &Workspace::in_folder(&prepared.planned.workspace),
        &images,
        repository_scope,
        publish::creation_time(),
    )
    .map_err(error)?;
    for path in &published.written {
        eprintln!("wrote {}", path.display());
    }
    for path in &published.removed {
        eprintln!(
            "removed {}: what it listed left the image set",
            path.display()
        );
    }
    Ok(())
}

/// The folder of a `file://` destination (mirror-to-disk).
fn disk_destination(arguments: &MirrorArgs) -> Option<&str> {
    arguments.destination.as_deref()?.strip_prefix("file://")
}

/// Refuses ferry's own flags that the chosen mode does not act on, so
/// none is accepted and then ignored.
fn refuse_flags_of_other_modes(arguments: &MirrorArgs) -> Result<(), ExitCode> {
    // A mistyped --authfile would otherwise mean anonymous pulls.
    ferry_registry::CredentialStore::discover_checked(arguments.authfile.as_deref())
        .map_err(|missing| error(format!("{missing}; nothing was done")))?;
    let to_disk = disk_destination(arguments).is_some();
    let refused: Vec<&str> = if to_disk {
        [
            (arguments.trust_state, "--trust-state"),
            (arguments.verify, "--verify"),
        ]
        .into_iter()
        .filter_map(|(given, flag)| given.then_some(flag))
        .collect()
    } else {
        [
            (arguments.since.is_some(), "--since"),
            (arguments.strict_archive, "--strict-archive"),
            (arguments.max_segment_bytes.is_some(), "--max-segment-bytes"),
        ]
        .into_iter()
        .filter_map(|(given, flag)| given.then_some(flag))
        .collect()
    };
    let Some(first) = refused.first() else {
        return Ok(());
    };
    let what = if refused.len() == 1 {
        format!("{first} does")
    } else {
        format!("{} do", refused.join(" and "))
    };
    Err(error(if to_disk {
        format!(
            "{what} not apply to mirror-to-disk yet (it is built for destinations that are registries); nothing was done"
        )
    } else {
        format!(
            "{what} not apply to a docker:// destination: it shapes the deliveries of mirror-to-disk (file://DIR); nothing was done"
        )
    }))
}

pub fn mirror_command(arguments: &Mirror) -> ExitCode {
    if let Err(code) = refuse_flags_of_other_modes(&arguments.common) {
        return code;
    }
    if let Some(folder) = disk_destination(&arguments.common) {
        return crate::disk::mirror_to_disk(
            &arguments.common,
            folder,
            &crate::disk::Mode::Mirror {
                dry_run: arguments.dry_run,
            },
        );
    }
    let mut common = arguments.common.clone();
    common.run_log = Some("mirror");
    let deliveries = if arguments.dry_run {
        Deliveries::Verify
    } else {
        Deliveries::Import
    };
    let prepared = match prepare(&common, deliveries) {
        Ok(prepared) => prepared,
        Err(code) => return code,
    };
    eprint!(
        "{}",
        render_text(&prepared.planned.plan, &prepared.planned.resolution)
    );
    if arguments.dry_run {
        // oc-mirror's mapping.txt: docker://source=docker://destination, one per image.
        let mut mapping = String::new();
        for image in &prepared.planned.resolution.images {
            let destination = prepared
                .planned
                .graph
                .images
                .iter()
                .find(|nodes| nodes.name == image.name)
                .map(|nodes| nodes.destination.clone())
                .unwrap_or_default();
            let _ = writeln!(
                mapping,
                "docker://{}@{}=docker://{destination}",
                image.source, image.top
            );
        }
        let workspace = Workspace::in_folder(&prepared.planned.workspace);
        let written = match ferry_executor::workflow::publish::dry_run_files(
            &workspace,
            &[("mapping.txt", &mapping)],
        ) {
            Ok(written) => written,
            Err(cause) => return error(cause),
        };
        for path in written {
            eprintln!("dry run: wrote {}; nothing was copied", path.display());
        }
        return ExitCode::SUCCESS;
    }
    run_prepared(prepared, &common)
}

/// Runs a prepared plan: the shared end of `mirror` and `apply`.
fn run_prepared(mut prepared: Prepared, arguments: &MirrorArgs) -> ExitCode {
    let runtime = match runtime() {
        Ok(runtime) => runtime,
        Err(code) => return code,
    };
    let progress = RunProgress::start(&prepared.planned.plan, Mode::choose(&arguments.log_level));
    let executed = runtime.block_on(to_registry::execute(
        &mut prepared.planned,
        &arguments.transfer_options(),
        &progress,
    ));
    progress.finish();
    drop(progress);
    let executed = match executed {
        Ok(executed) => executed,
        Err(cause) => return error(cause),
    };
    let report = &executed.report;
    if let Err(code) = write_cluster_resources(&prepared, report, arguments.max_nested_paths > 0) {
        return code;
    }
    let mut errors = String::new();
    for image in &executed.failed {
        let _ = writeln!(errors, "{}: {}", image.name, image.reason);
    }
    eprintln!(
        "Done: {} actions completed, {} failed, {} skipped; {} pushed.",
        report.completed,
        report.failed,
        report.skipped,
        mebibytes(report.bytes)
    );
    if let Some(log_file) = &prepared.log_file
        && arguments.log_level != "error"
    {
        eprintln!("log written to {}", log_file.display());
    }
    if errors.is_empty() {
        return ExitCode::SUCCESS;
    }
    report_failures_of(&prepared.planned.workspace, &errors, executed.exit_bits())
}

/// Writes `errors` (one line per image) to
/// `working-dir/logs/mirroring_errors_<time>.txt`, shows them, and returns
/// the exit status of failed additional images.
pub(crate) fn report_failures(workspace: &Path, errors: &str) -> ExitCode {
    report_failures_of(workspace, errors, exit_status::ADDITIONAL_IMAGE_FAILED)
}

/// Writes `errors` (one line per image) to
/// `working-dir/logs/mirroring_errors_<time>.txt`, shows them, and returns
/// `exit_bits`: the bits of the categories whose images failed (8 when
/// none is known, as every failure today is an additional image's).
pub(crate) fn report_failures_of(workspace: &Path, errors: &str, exit_bits: u8) -> ExitCode {
    use ferry_executor::workflow::{Workspace, publish};
    let path = match publish::errors_file(
        &Workspace::in_folder(workspace),
        &logging::timestamp(),
        errors,
    ) {
        Ok(path) => path,
        Err(cause) => return error(cause),
    };
    eprint!("{errors}");
    eprintln!("errors written to {}", path.display());
    if exit_bits == 0 {
        exit_status::ADDITIONAL_IMAGE_FAILED.into()
    } else {
        exit_bits.into()
    }
}

/// A saved plan (`ferry plan --out FILE`), applied by `ferry apply FILE`.
#[derive(serde::Serialize)]
pub(crate) struct PlanFile {
    pub(crate) version: u32,
    pub(crate) config: PathBuf,
    pub(crate) config_text: String,
    pub(crate) destination: String,
    pub(crate) workspace: String,
    /// Disk-to-mirror: the `--from` folder (empty otherwise).
    pub(crate) from: String,
    pub(crate) state_fingerprint: String,
    pub(crate) images: Vec<PlannedImage>,
    pub(crate) action_keys: Vec<String>,
    pub(crate) plan: Plan,
}

#[derive(serde::Serialize, serde::Deserialize)]
pub(crate) struct PlannedImage {
    pub(crate) name: String,
    pub(crate) top: String,
}

/// What `apply` reads back from a plan file.
#[derive(serde::Deserialize)]
pub(crate) struct SavedPlan {
    pub(crate) config: PathBuf,
    pub(crate) config_text: String,
    pub(crate) destination: String,
    pub(crate) workspace: String,
    /// Absent from plans made before disk-to-mirror plans were saved.
    #[serde(default)]
    pub(crate) from: String,
    pub(crate) state_fingerprint: String,
    pub(crate) images: Vec<PlannedImage>,
    pub(crate) action_keys: Vec<String>,
}

/// Each resolved image with its top digest, as a plan file records them.
pub(crate) fn planned_images(resolution: &Resolution) -> Vec<PlannedImage> {
    resolution
        .images
        .iter()
        .map(|image| PlannedImage {
            name: image.name.clone(),
            top: image.top.to_string(),
        })
        .collect()
}

/// What to say when a saved plan's state or actions no longer match.
pub(crate) struct Staleness {
    pub state: &'static str,
    pub actions: &'static str,
}

/// Why a saved plan is stale, checked in this order: the state it was made
/// against changed, an image resolves elsewhere now, or the actions the
/// plan would run differ.
pub(crate) fn stale_plan(
    saved: &SavedPlan,
    state_fingerprint: &str,
    resolution: &Resolution,
    action_keys: &[String],
    messages: Staleness,
) -> Option<String> {
    if state_fingerprint != saved.state_fingerprint {
        return Some(format!(
            "the plan is stale: {}; run `ferry plan` again",
            messages.state
        ));
    }
    if let Some(stale) = stale_image(&saved.images, resolution) {
        return Some(stale);
    }
    (action_keys != saved.action_keys).then(|| {
        format!(
            "the plan is stale: {}; run `ferry plan` again",
            messages.actions
        )
    })
}

/// Why a saved plan's images no longer match what resolving gives now.
fn stale_image(saved: &[PlannedImage], resolution: &Resolution) -> Option<String> {
    for image in saved {
        match resolution
            .images
            .iter()
            .find(|resolved| resolved.name == image.name)
        {
            Some(resolved) if resolved.top.to_string() != image.top => {
                return Some(format!(
                    "the plan is stale: {} now points to {}, the plan expected {}; run `ferry plan` again",
                    image.name, resolved.top, image.top
                ));
            }
            None => {
                return Some(format!(
                    "the plan is stale: {} can no longer be resolved",
                    image.name
                ));
            }
            Some(_) => {}
        }
    }
    None
}

/// `ferry apply`.
#[derive(Debug, clap::Args)]
pub struct Apply {
    #[command(flatten)]
    common: MirrorArgs,
}

/// `ferry apply PLANFILE` runs exactly a saved plan, refusing a stale one;
/// `ferry apply -c FILE DESTINATION` plans and applies in one step.
pub fn apply_command(arguments: &Apply) -> ExitCode {
    if let Err(code) = refuse_flags_of_other_modes(&arguments.common) {
        return code;
    }
    let mut arguments_with_log = arguments.common.clone();
    arguments_with_log.run_log = Some("apply");
    if arguments.common.config.is_some() {
        if let Some(folder) = disk_destination(&arguments.common) {
            return crate::disk::mirror_to_disk(
                &arguments.common,
                folder,
                &crate::disk::Mode::Mirror { dry_run: false },
            );
        }
        let prepared = match prepare(&arguments_with_log, Deliveries::Import) {
            Ok(prepared) => prepared,
            Err(code) => return code,
        };
        eprint!(
            "{}",
            render_text(&prepared.planned.plan, &prepared.planned.resolution)
        );
        return run_prepared(prepared, &arguments_with_log);
    }
    let Some(plan_path) = &arguments.common.destination else {
        return error(
            "name a plan file (from `ferry plan --out FILE`), or use -c to plan and apply in one step",
        );
    };
    let text = match std::fs::read_to_string(plan_path) {
        Ok(text) => text,
        Err(cause) => return error(format!("cannot read the plan {plan_path}: {cause}")),
    };
    #[derive(serde::Deserialize)]
    struct Versioned {
        version: u32,
        #[serde(default)]
        apply: Option<ferry_planner::ApplyInputs>,
    }
    let versioned: Versioned = match serde_json::from_str(&text) {
        Ok(versioned) => versioned,
        Err(cause) => return error(format!("{plan_path} is not a ferry plan: {cause}")),
    };
    if versioned.version == ferry_planner::PLAN_DOCUMENT_VERSION {
        let Some(apply) = &versioned.apply else {
            return error(format!(
                "{plan_path} is a plan without what `ferry apply` needs (its `apply` section); save one with `ferry plan --out FILE` or `--format json`"
            ));
        };
        return apply_document(apply, &arguments.common.log_level);
    }
    // Version 1 plan files (mirror-to-disk still writes them).
    let saved: SavedPlan = match serde_json::from_str(&text) {
        Ok(saved) if versioned.version == 1 => saved,
        Ok(_) => {
            return error(format!(
                "{plan_path} is a version {} plan; this ferry reads versions 1 and {}",
                versioned.version,
                ferry_planner::PLAN_DOCUMENT_VERSION
            ));
        }
        Err(cause) => return error(format!("{plan_path} is not a ferry plan file: {cause}")),
    };
    let current_config = std::fs::read_to_string(&saved.config).unwrap_or_default();
    if current_config != saved.config_text {
        return error(format!(
            "the plan is stale: {} changed since the plan was made; run `ferry plan` again",
            saved.config.display()
        ));
    }
    if saved.destination.starts_with("file://") {
        return crate::disk::apply_saved(&saved, &arguments_with_log);
    }
    let mut common = arguments_with_log;
    common.config = Some(saved.config.clone());
    common.destination = Some(saved.destination.clone());
    // Disk-to-mirror: the deliveries are verified and imported now.
    common.workspace = (!saved.workspace.is_empty()).then(|| saved.workspace.clone());
    common.from = (!saved.from.is_empty()).then(|| saved.from.clone());
    let prepared = match prepare(&common, Deliveries::Import) {
        Ok(prepared) => prepared,
        Err(code) => return code,
    };
    let keys: Vec<String> = prepared
        .planned
        .plan
        .actions
        .iter()
        .map(|planned| planned.key.to_hex())
        .collect();
    if let Some(stale) = stale_plan(
        &saved,
        &prepared.planned.state_fingerprint,
        &prepared.planned.resolution,
        &keys,
        Staleness {
            state: "the workspace state changed since the plan was made (another run mirrored to this destination)",
            actions: "the destination no longer matches what the plan assumed (content went missing)",
        },
    ) {
        return error(stale);
    }
    eprint!(
        "{}",
        render_text(&prepared.planned.plan, &prepared.planned.resolution)
    );
    run_prepared(prepared, &common)
}
