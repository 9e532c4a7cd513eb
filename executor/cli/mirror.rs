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
use std::time::{Duration, SystemTime, UNIX_EPOCH};

use ferry_executor::resolve::{self, Recorded, Resolution, ResolveOptions};
use ferry_executor::run::{self, Target};
use ferry_planner::{
    ActionGraph, ActionKey, Destination, ImageChange, Plan, StateSnapshot, compile, plan,
};
use ferry_registry::{ClientOptions, CredentialStore, RegistriesConf, RegistryClient};
use ferry_schemas::{Digest, ImageReference, load_image_set_configuration, render};
use ferry_store::WorkspaceState;

use crate::exit_status;
use crate::logging;
use crate::progress::{Mode, RunProgress};

pub(crate) fn unix_now() -> i64 {
    SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .map(|elapsed| elapsed.as_secs() as i64)
        .unwrap_or(0)
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
    if !(1970..=9999).contains(&year) || !(1..=12).contains(&month) || !(1..=31).contains(&day) {
        return Err(invalid());
    }
    // Days from the civil date (Howard Hinnant's algorithm): no date crate
    // is needed for one conversion.
    let shifted_year = if month <= 2 { year - 1 } else { year };
    let era = shifted_year.div_euclid(400);
    let year_of_era = shifted_year - era * 400;
    let day_of_year = (153 * ((month + 9) % 12) + 2) / 5 + day - 1;
    let day_of_era = year_of_era * 365 + year_of_era / 4 - year_of_era / 100 + day_of_year;
    let days = era * 146_097 + day_of_era - 719_468;
    Ok(days * 86_400)
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

pub(crate) fn error(message: impl std::fmt::Display) -> ExitCode {
    eprintln!("error: {message}");
    exit_status::ERROR.into()
}

/// Everything prepared before the plan.
struct Prepared {
    config_text: String,
    /// blake3 of what the state recorded for the destination, before this run.
    state_fingerprint: String,
    destination: Destination,
    workspace: PathBuf,
    client: RegistryClient,
    resolution: Resolution,
    graph: ActionGraph,
    plan: Plan,
    state: WorkspaceState,
    /// Disk-to-mirror: the cache the deliveries were imported into.
    local: Option<LocalSource>,
    /// The run log (`mirror` and `apply`).
    log_file: Option<PathBuf>,
}

/// Where a run's content comes from, resolved.
pub(crate) struct Sourced {
    pub workspace: PathBuf,
    pub client: RegistryClient,
    pub resolution: Resolution,
    pub local: Option<LocalSource>,
    /// Top manifests already looked for at the destination (while the
    /// sources were asked), and those it lacks.
    pub checked: Checked,
}

/// Destination checks answered before planning: (repository, digest) of
/// top manifests asked for, and the ones the destination lacks.
#[derive(Default)]
pub(crate) struct Checked {
    pub asked: BTreeSet<(String, Digest)>,
    pub absent: BTreeSet<(String, Digest)>,
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

/// Disk-to-mirror: blobs come from the cache, verified on import.
pub(crate) struct LocalSource {
    pub blobs: ferry_store::BlobStore,
    /// Deliveries whose content this run completes at the destination.
    pub deliveries: Vec<u32>,
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
    let workspace = working_dir(workspace_path);
    let registries = load_registries(arguments)?;
    let options = resolve_options(arguments, &destination.prefix);
    let (requests, blocked) = resolve::additional_image_requests(&config.mirror, &options);
    let client = source_client(
        arguments,
        &registries,
        &requests,
        (!arguments.dest_tls_verify).then_some(destination.registry.as_str()),
    );
    let runtime = runtime()?;
    std::fs::create_dir_all(&workspace).map_err(|cause| {
        error(format!(
            "cannot create the workspace {}: {cause}",
            workspace.display()
        ))
    })?;
    // What earlier runs resolved: reused when a tag still points to the
    // same digest, or (with --trust-state) without asking the source.
    let mut state = WorkspaceState::open(workspace.join("state.db")).map_err(error)?;
    let recorded = Recorded::load(&state, &requests).map_err(error)?;
    // The destination is asked about the top manifests the state records
    // as pushed while the sources are asked for their tags: the same HEADs
    // the check before planning needs (see `prepare`), with both registries
    // busy at once instead of one after the other.
    let to_check: BTreeSet<(String, Digest)> = if arguments.trust_state {
        BTreeSet::new()
    } else {
        let history = state.history(&destination.display()).map_err(error)?;
        recorded_tops_pushed(&requests, &recorded, &history.done, &options)
    };
    let (mut resolution, absent) = runtime.block_on(async {
        futures_util::join!(
            resolve::resolve_with(&client, &registries, &requests, &options, &recorded),
            async {
                if !to_check.is_empty() {
                    reachable_destination(&client, &destination.registry).await?;
                }
                Ok::<_, ExitCode>(
                    absent_at_destination(to_check.iter().cloned(), |pair| {
                        manifest_absent(&client, &destination.registry, pair)
                    })
                    .await,
                )
            }
        )
    });
    let absent: Vec<_> = absent?;
    let checked = Checked {
        asked: to_check,
        absent: absent.into_iter().collect(),
    };
    resolution.blocked = blocked;
    tracing::info!(
        images = requests.len(),
        reused = resolution.reused,
        changed = resolution.records.len(),
        "resolved"
    );
    if !resolution.records.is_empty() {
        state
            .record_resolutions(
                &resolution.records,
                &resolve::manifests_to_record(&resolution, &recorded),
                unix_now(),
            )
            .map_err(error)?;
    }
    Ok(Sourced {
        workspace,
        client,
        resolution,
        local: None,
        checked,
    })
}

/// (destination repository, digest) of each recorded top manifest (an
/// image's and, unless signatures are removed, its signature's) whose push
/// the state records as done at this destination: what the check before
/// planning asks about when the sources still name the recorded digests.
fn recorded_tops_pushed(
    requests: &[resolve::Request],
    recorded: &Recorded,
    done: &BTreeSet<String>,
    options: &ResolveOptions,
) -> BTreeSet<(String, Digest)> {
    let mut tops = BTreeSet::new();
    for request in requests {
        let Some(record) = recorded.images.get(&request.name) else {
            continue;
        };
        let signature = record
            .signature
            .as_ref()
            .filter(|_| !options.remove_signatures);
        for digest in std::iter::once(&record.top).chain(signature) {
            let Some(manifest) = recorded.manifests.get(digest) else {
                continue;
            };
            let push = ferry_planner::Action::PushManifest {
                repository: request.destination_repository.clone(),
                digest: digest.clone(),
                media_type: manifest.media_type.clone(),
                size: manifest.bytes.len() as u64,
                source: record.source.clone(),
            };
            if done.contains(&push.key().to_hex()) {
                tops.insert((request.destination_repository.clone(), digest.clone()));
            }
        }
    }
    tops
}

/// Whether the destination lacks a manifest (one HEAD; an error counts as
/// present: the run finds out).
fn manifest_absent<'a>(
    client: &'a RegistryClient,
    registry: &str,
    (repository, digest): &(String, Digest),
) -> impl std::future::Future<Output = bool> + use<'a> {
    let reference = format!("{registry}/{repository}@{digest}").parse::<ImageReference>();
    async move {
        match reference {
            Ok(reference) => matches!(client.head_manifest(&reference).await, Ok(None)),
            Err(_) => false,
        }
    }
}

/// `DIR/working-dir` for a workspace or disk folder `DIR` (or `DIR`
/// itself when it is already a working-dir).
pub(crate) fn working_dir(path: &str) -> PathBuf {
    let path = PathBuf::from(path);
    if path.ends_with("working-dir") {
        path
    } else {
        path.join("working-dir")
    }
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
    let config_name = config_path.display().to_string();
    let text = std::fs::read_to_string(config_path)
        .map_err(|cause| error(format!("cannot read {config_name}: {cause}")))?;
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
    match &arguments.registries_conf {
        Some(path) => RegistriesConf::load(Some(path), &[]),
        None => RegistriesConf::load_default(),
    }
    .map_err(error)
}

pub(crate) fn resolve_options(arguments: &MirrorArgs, prefix: &str) -> ResolveOptions {
    ResolveOptions {
        prefix: prefix.to_owned(),
        max_nested_paths: arguments.max_nested_paths,
        remove_signatures: arguments.remove_signatures,
        trust_state: arguments.trust_state,
        concurrency: 32,
    }
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
    let mut insecure_hosts: BTreeSet<String> = BTreeSet::new();
    if let Some(host) = insecure_destination {
        insecure_hosts.insert(host.to_owned());
    }
    for request in requests {
        for source in registries.pull_sources(&request.origin).unwrap_or_default() {
            if source.insecure || !arguments.src_tls_verify {
                insecure_hosts.insert(source.reference.registry().to_owned());
            }
        }
    }
    RegistryClient::new(ClientOptions {
        credentials: CredentialStore::discover(arguments.authfile.as_deref()),
        insecure_hosts: insecure_hosts.into_iter().collect(),
        retry_times: arguments.retry_times,
        retry_delay: (!arguments.retry_delay.is_zero()).then_some(arguments.retry_delay),
        transfers_per_registry: (arguments.parallel_images * arguments.parallel_layers) as usize,
        ..ClientOptions::default()
    })
}

/// Checks the destination and flags the way oc-mirror does, then resolves,
/// compiles and plans. `deliveries`: whether disk-to-mirror imports.
fn prepare(arguments: &MirrorArgs, deliveries: Deliveries) -> Result<Prepared, ExitCode> {
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
    let (text, loaded) = load_config(config_path)?;
    let sourced = match &arguments.from {
        Some(from) => {
            crate::disk::from_deliveries(arguments, from, &destination, &loaded.config, deliveries)?
        }
        None => from_registries(arguments, &destination, &loaded.config)?,
    };
    let Sourced {
        workspace,
        client,
        resolution,
        local,
        checked,
    } = sourced;

    std::fs::create_dir_all(&workspace).map_err(|cause| {
        error(format!(
            "cannot create the workspace {}: {cause}",
            workspace.display()
        ))
    })?;
    let state = WorkspaceState::open(workspace.join("state.db")).map_err(error)?;
    let history = state.history(&destination.display()).map_err(error)?;
    let state_fingerprint = {
        let mut hasher = blake3::Hasher::new();
        for key in &history.done {
            hasher.update(key.as_bytes());
            hasher.update(b"\n");
        }
        for ((repository, tag), digest) in &history.tags {
            hasher.update(format!("{repository}:{tag}={digest}\n").as_bytes());
        }
        hasher.finalize().to_hex().to_string()
    };
    let mut snapshot = StateSnapshot {
        done: history
            .done
            .iter()
            .filter_map(|key| ActionKey::from_hex(key))
            .collect(),
        tags: history.tags,
        missing: BTreeSet::new(),
        missing_blobs: BTreeSet::new(),
    };
    let graph = compile(&resolution.images, &destination);
    let runtime = runtime()?;
    if !arguments.trust_state {
        // The whole image set is verified at every run: one HEAD per image
        // whose top manifest the state says is there, 32 at a time (most
        // of them asked already while the sources were, see `Checked`).
        let checks: Vec<(String, ferry_schemas::Digest)> = graph
            .images
            .iter()
            .map(|image| graph.action(image.top_manifest))
            .filter(|action| snapshot.done.contains(&action.key()))
            .filter_map(|action| match action {
                ferry_planner::Action::PushManifest {
                    repository, digest, ..
                } => Some((repository.clone(), digest.clone())),
                _ => None,
            })
            .collect();
        let (answered, to_ask): (Vec<_>, Vec<_>) = checks
            .into_iter()
            .partition(|pair| checked.asked.contains(pair));
        snapshot.missing.extend(
            answered
                .into_iter()
                .filter(|pair| checked.absent.contains(pair)),
        );
        let registry = &destination.registry;
        let missing = runtime.block_on(async {
            if !to_ask.is_empty() {
                reachable_destination(&client, registry).await?;
            }
            Ok::<_, ExitCode>(
                absent_at_destination(to_ask, |pair| manifest_absent(&client, registry, pair))
                    .await,
            )
        })?;
        snapshot.missing.extend(missing);
    }
    if arguments.verify {
        snapshot.missing_blobs = runtime.block_on(missing_blobs(
            &client,
            &destination.registry,
            &graph,
            &snapshot,
        ));
        tracing::info!(
            missing = snapshot.missing_blobs.len(),
            "checked every blob at the destination"
        );
    }
    let plan = plan(&graph, &snapshot);
    Ok(Prepared {
        config_text: text,
        state_fingerprint,
        destination,
        workspace,
        client,
        resolution,
        graph,
        plan,
        state,
        local,
        log_file,
    })
}

/// Reaches the destination before it is asked whether the image set is
/// still there: a check that fails counts as present (see
/// [`absent_at_destination`]), so an unreachable destination would
/// otherwise make a plan with nothing to do.
async fn reachable_destination(client: &RegistryClient, registry: &str) -> Result<(), ExitCode> {
    client.check_reachable(registry).await.map_err(|cause| {
        error(format!(
            "cannot reach the destination {registry} to check that the image set is still there: {}\nto plan from the workspace state alone, without asking the destination, use --trust-state",
            cause.kind
        ))
    })
}

/// Runs `absent` on every item, 32 at a time, and keeps the items it says
/// the destination lacks (an error counts as present: the run finds out).
async fn absent_at_destination<T, Check, Answer>(
    items: impl IntoIterator<Item = T>,
    absent: Check,
) -> Vec<T>
where
    Check: Fn(&T) -> Answer,
    Answer: std::future::Future<Output = bool>,
{
    use futures_util::StreamExt as _;
    futures_util::stream::iter(items)
        .map(|item| {
            let answer = absent(&item);
            async move { answer.await.then_some(item) }
        })
        .buffer_unordered(32)
        .filter_map(|found| async move { found })
        .collect()
        .await
}

/// `--verify`: one HEAD per (repository, blob) the state says is at the
/// destination, 32 at a time; the pairs the destination lacks.
async fn missing_blobs(
    client: &RegistryClient,
    registry: &str,
    graph: &ActionGraph,
    snapshot: &StateSnapshot,
) -> BTreeSet<(String, ferry_schemas::Digest)> {
    let mut pairs: BTreeSet<(String, ferry_schemas::Digest)> = BTreeSet::new();
    for node in graph.graph.node_indices() {
        let action = graph.action(node);
        let recorded = snapshot.done.contains(&action.key());
        match action {
            ferry_planner::Action::LinkBlob {
                repository, digest, ..
            }
            | ferry_planner::Action::UploadBlob {
                repository, digest, ..
            } if recorded => {
                pairs.insert((repository.clone(), digest.clone()));
            }
            _ => {}
        }
    }
    absent_at_destination(pairs, |(repository, digest)| {
        let (repository, digest) = (repository.clone(), digest.clone());
        async move {
            matches!(
                client.blob_size(registry, &repository, &digest).await,
                Ok(None)
            )
        }
    })
    .await
    .into_iter()
    .collect()
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

/// The plan as versioned JSON.
pub fn render_json(plan: &Plan) -> String {
    let document = ferry_planner::PlanDocument::new(plan.clone());
    let mut text = serde_json::to_string_pretty(&document).unwrap_or_default();
    text.push('\n');
    text
}

pub fn plan_command(arguments: &PlanCommand) -> ExitCode {
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
    let output = match arguments.format.as_str() {
        "json" => render_json(&prepared.plan),
        "markdown" => render_markdown(&prepared.plan, &prepared.resolution),
        _ => render_text(&prepared.plan, &prepared.resolution),
    };
    print!("{output}");
    if let Some(out) = &arguments.out {
        let file = PlanFile {
            version: 1,
            config: arguments.common.config.clone().unwrap_or_default(),
            config_text: prepared.config_text.clone(),
            destination: arguments.common.destination.clone().unwrap_or_default(),
            workspace: arguments.common.workspace.clone().unwrap_or_default(),
            from: arguments.common.from.clone().unwrap_or_default(),
            state_fingerprint: prepared.state_fingerprint.clone(),
            images: planned_images(&prepared.resolution),
            action_keys: prepared
                .plan
                .actions
                .iter()
                .map(|planned| planned.key.to_hex())
                .collect(),
            plan: prepared.plan.clone(),
        };
        let text = serde_json::to_string_pretty(&file).unwrap_or_default();
        if let Err(cause) = std::fs::write(out, text + "\n") {
            return error(format!("cannot write {}: {cause}", out.display()));
        }
    }
    if !prepared.resolution.failures.is_empty() {
        return exit_status::ERROR.into();
    }
    if arguments.detailed_exitcode && !prepared.plan.is_empty() {
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

/// Writes `working-dir/cluster-resources/{idms,itms}-oc-mirror.yaml` for
/// every image now at the destination (failed ones left out).
fn write_cluster_resources(
    prepared: &Prepared,
    report: &run::RunReport,
    repository_scope: bool,
) -> Result<(), ExitCode> {
    use ferry_executor::cluster_resources::{Category, MirroredImage, generate};
    let failed: BTreeSet<&str> = report
        .failed_images()
        .map(|image| image.name.as_str())
        .collect();
    let images: Vec<MirroredImage> = prepared
        .resolution
        .images
        .iter()
        .filter(|image| !failed.contains(image.name.as_str()))
        .filter_map(|image| {
            Some(MirroredImage {
                origin: image.name.parse().ok()?,
                destination: format!(
                    "{}/{}",
                    prepared.destination.registry, image.destination_repository
                ),
                category: Category::Generic,
            })
        })
        .collect();
    let created_at = std::env::var("SOURCE_DATE_EPOCH")
        .ok()
        .and_then(|text| text.trim().parse::<i64>().ok())
        .unwrap_or_else(|| {
            SystemTime::now()
                .duration_since(UNIX_EPOCH)
                .map(|d| d.as_secs() as i64)
                .unwrap_or(0)
        });
    let resources = generate(&images, repository_scope, created_at);
    let folder = prepared.workspace.join("cluster-resources");
    for (name, content) in [
        ("idms-oc-mirror.yaml", &resources.image_digest_mirror_sets),
        ("itms-oc-mirror.yaml", &resources.image_tag_mirror_sets),
    ] {
        let path = folder.join(name);
        match content {
            Some(text) => {
                write_file(&path, text)?;
                eprintln!("wrote {}", path.display());
            }
            None => {
                // The image set no longer needs this file.
                let _ = std::fs::remove_file(&path);
            }
        }
    }
    Ok(())
}

/// The folder of a `file://` destination (mirror-to-disk).
fn disk_destination(arguments: &MirrorArgs) -> Option<&str> {
    arguments.destination.as_deref()?.strip_prefix("file://")
}

pub fn mirror_command(arguments: &Mirror) -> ExitCode {
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
    eprint!("{}", render_text(&prepared.plan, &prepared.resolution));
    if arguments.dry_run {
        // oc-mirror's mapping.txt: docker://source=docker://destination, one per image.
        let mut mapping = String::new();
        for image in &prepared.resolution.images {
            let destination = prepared
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
        let path = prepared.workspace.join("dry-run/mapping.txt");
        if let Err(code) = write_file(&path, &mapping) {
            return code;
        }
        eprintln!("dry run: wrote {}; nothing was copied", path.display());
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
    let destination = prepared.destination.display();
    let target = Target {
        destination: &destination,
        registry: &prepared.destination.registry,
        local_blobs: prepared.local.as_ref().map(|local| local.blobs.clone()),
    };
    let limits = run::Limits {
        blobs: (arguments.parallel_images * arguments.parallel_layers) as usize,
        manifests: arguments.parallel_images as usize,
    };
    // A destination that cannot be reached fails the run here, once,
    // instead of failing every action after its own retries.
    if !prepared.plan.actions.is_empty()
        && let Err(cause) = runtime.block_on(
            prepared
                .client
                .check_reachable(&prepared.destination.registry),
        )
    {
        return error(format!(
            "cannot reach the destination {}: {}\nnothing was pushed",
            prepared.destination.registry, cause.kind
        ));
    }
    let run_id = match prepared.state.begin_run(&destination, unix_now()) {
        Ok(id) => id,
        Err(cause) => return error(cause),
    };
    let progress = RunProgress::start(&prepared.plan, Mode::choose(&arguments.log_level));
    let executed = runtime.block_on(run::execute(
        &prepared.plan,
        &prepared.graph,
        &prepared.resolution.manifests,
        &prepared.client,
        &mut prepared.state,
        &target,
        limits,
        &progress,
    ));
    progress.finish();
    drop(progress);
    let report = match executed {
        Ok(report) => report,
        Err(cause) => return error(cause),
    };
    tracing::info!(
        completed = report.completed,
        failed = report.failed,
        skipped = report.skipped,
        bytes = report.bytes,
        "run finished"
    );
    let outcome = if report.failed + report.skipped == 0 && prepared.resolution.failures.is_empty()
    {
        "succeeded"
    } else {
        "failed"
    };
    if let Err(cause) = prepared.state.finish_run(run_id, outcome, unix_now()) {
        return error(cause);
    }
    if let Err(code) = write_cluster_resources(&prepared, &report, arguments.max_nested_paths > 0) {
        return code;
    }
    let mut errors = String::new();
    for failure in &prepared.resolution.failures {
        let _ = writeln!(
            errors,
            "{}: not resolved: {}",
            failure.name, failure.message
        );
    }
    for image in report.failed_images() {
        tracing::info!(image = %image.name, error = image.error.as_deref().unwrap_or(""), "image failed");
        let _ = writeln!(
            errors,
            "{}: {}",
            image.name,
            image.error.as_deref().unwrap_or("")
        );
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
        if let Some(local) = &prepared.local {
            // Every image reached the destination: the deliveries are applied.
            for delivery in &local.deliveries {
                if let Err(cause) =
                    prepared
                        .state
                        .record_applied_delivery(&destination, *delivery, unix_now())
                {
                    return error(cause);
                }
            }
        }
        return ExitCode::SUCCESS;
    }
    report_failures(&prepared.workspace, &errors)
}

/// Writes `errors` (one line per image) to
/// `working-dir/logs/mirroring_errors_<time>.txt`, shows them, and returns
/// the exit status of failed additional images.
pub(crate) fn report_failures(workspace: &Path, errors: &str) -> ExitCode {
    let path = workspace.join(format!(
        "logs/mirroring_errors_{}.txt",
        logging::timestamp()
    ));
    if let Err(code) = write_file(&path, errors) {
        return code;
    }
    eprint!("{errors}");
    eprintln!("errors written to {}", path.display());
    exit_status::ADDITIONAL_IMAGE_FAILED.into()
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
    pub(crate) version: u32,
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
        eprint!("{}", render_text(&prepared.plan, &prepared.resolution));
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
    let saved: SavedPlan = match serde_json::from_str(&text) {
        Ok(saved) => saved,
        Err(cause) => return error(format!("{plan_path} is not a ferry plan file: {cause}")),
    };
    if saved.version != 1 {
        return error(format!(
            "{plan_path} is a version {} plan; this ferry reads version 1",
            saved.version
        ));
    }
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
        .plan
        .actions
        .iter()
        .map(|planned| planned.key.to_hex())
        .collect();
    if let Some(stale) = stale_plan(
        &saved,
        &prepared.state_fingerprint,
        &prepared.resolution,
        &keys,
        Staleness {
            state: "the workspace state changed since the plan was made (another run mirrored to this destination)",
            actions: "the destination no longer matches what the plan assumed (content went missing)",
        },
    ) {
        return error(stale);
    }
    eprint!("{}", render_text(&prepared.plan, &prepared.resolution));
    run_prepared(prepared, &common)
}
