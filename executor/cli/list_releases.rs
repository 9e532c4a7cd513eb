//! `ferry list releases`: oc-mirror's listing (`--version`, `--channel`,
//! `--channels`, `--filter-by-archs`; notes §1.6) and ferry's own
//! `-c ISC.yaml [--format json]`: the releases a configuration selects,
//! from the update graph alone (no payload fetched, no workspace, other
//! parts of the configuration ignored). Rows go to stdout, warnings to
//! stderr; an error exits 1.
//!
//! The update service is OCP's, or `UPDATE_URL_OVERRIDE`. Without a channel
//! or version the X.Y versions come from the release repository's tags,
//! reached through registries.conf as every other pull is.

use std::path::PathBuf;
use std::process::ExitCode;

use ferry_content::release::listing::{
    self, ListReleases, RELEASE_REPOSITORY, release_rows, render_channels, render_major_versions,
    render_versions, rows_json, rows_text, stable_channel_hint,
};
use ferry_executor::update_graph::UpdateService;
use ferry_registry::{ClientOptions, CredentialStore, RegistriesConf, RegistryClient};
use ferry_schemas::config::{Architecture, ChannelType};
use ferry_schemas::{ImageReference, load_image_set_configuration, render};

use crate::exit_status;

/// Output of `-c`.
#[derive(Clone, Copy, Debug, PartialEq, Eq, clap::ValueEnum)]
pub enum Format {
    /// A table for people.
    Text,
    /// A bare JSON array: one object per release and architecture.
    Json,
}

/// Arguments of `ferry list releases`.
#[derive(Debug, clap::Args)]
pub struct Args {
    /// List the releases this ImageSetConfiguration selects (ferry's own listing).
    #[arg(short = 'c', long = "config", conflicts_with_all = ["version", "channel", "channels", "filter_by_archs"])]
    pub config: Option<PathBuf>,
    /// Output format of `-c`.
    #[arg(long, value_enum, default_value_t = Format::Text, requires = "config")]
    pub format: Format,
    /// An OpenShift release version (X.Y); alone it means `--channel=stable-X.Y`.
    #[arg(long)]
    pub version: Option<String>,
    /// List the versions of this channel.
    #[arg(long)]
    pub channel: Option<String>,
    /// List every channel of the version (requires `--version`).
    #[arg(long)]
    pub channels: bool,
    /// Architectures to list: amd64 (default), arm64, ppc64le, s390x, multi.
    #[arg(long = "filter-by-archs", value_delimiter = ',')]
    pub filter_by_archs: Vec<String>,
    /// registries.conf for reading the release repository's tags.
    #[arg(long)]
    pub registries_conf: Option<PathBuf>,
    /// Auth file (default: $REGISTRY_AUTH_FILE, then the containers and docker defaults).
    #[arg(long, env = "REGISTRY_AUTH_FILE")]
    pub authfile: Option<PathBuf>,
    /// Verify TLS for the release repository (false also allows plain HTTP).
    #[arg(long, default_value_t = true, action = clap::ArgAction::Set)]
    pub src_tls_verify: bool,
}

fn error(message: impl std::fmt::Display) -> ExitCode {
    eprintln!("error: {message}");
    exit_status::ERROR.into()
}

fn runtime() -> Result<tokio::runtime::Runtime, ExitCode> {
    tokio::runtime::Builder::new_multi_thread()
        .worker_threads(2)
        .enable_all()
        .build()
        .map_err(|failure| error(format!("cannot start the async runtime: {failure}")))
}

fn service() -> Result<UpdateService, ExitCode> {
    let url_override = std::env::var(ferry_content::release::graph::UPDATE_URL_OVERRIDE).ok();
    UpdateService::new(url_override).map_err(error)
}

pub fn run(args: &Args) -> ExitCode {
    let outcome = match &args.config {
        Some(config) => selected_releases(config, args.format),
        None => oc_mirror_listing(args),
    };
    outcome.unwrap_or_else(|code| code)
}

/// `-c ISC.yaml`: the configuration's releases.
fn selected_releases(config: &PathBuf, format: Format) -> Result<ExitCode, ExitCode> {
    let name = config.display().to_string();
    let text = std::fs::read_to_string(config)
        .map_err(|failure| error(format!("cannot read {name}: {failure}")))?;
    let loaded = load_image_set_configuration(&text).map_err(|problems| {
        eprint!("{}", render(&name, &text, &problems));
        ExitCode::from(exit_status::ERROR)
    })?;
    let rows = match &loaded.config.mirror.platform {
        None => Vec::new(),
        Some(platform) => {
            let service = service()?;
            let (selection, _) = runtime()?
                .block_on(service.select(platform))
                .map_err(error)?;
            for warning in &selection.warnings {
                eprintln!("warning: {warning}");
            }
            release_rows(&selection)
        }
    };
    match format {
        Format::Json => println!("{}", rows_json(&rows)),
        Format::Text if rows.is_empty() => eprintln!("{name}: selects no releases"),
        Format::Text => print!("{}", rows_text(&rows)),
    }
    Ok(ExitCode::SUCCESS)
}

/// oc-mirror's `list releases`.
fn oc_mirror_listing(args: &Args) -> Result<ExitCode, ExitCode> {
    let request = listing::list_releases(
        args.version.as_deref(),
        args.channel.as_deref(),
        args.channels,
        &args.filter_by_archs,
    )
    .map_err(error)?;
    let runtime = runtime()?;
    match request {
        ListReleases::Channels { version, channel } => {
            let service = service()?;
            // Channels are the same for every architecture.
            let fetched = runtime
                .block_on(service.graph(ChannelType::Ocp, &channel, Architecture::Amd64))
                .map_err(|failure| error(format!("channel \"{channel}\": {failure}")))?;
            print!("{}", render_channels(&version, &fetched.graph));
            Ok(ExitCode::SUCCESS)
        }
        ListReleases::Versions {
            version,
            channel,
            architectures,
        } => {
            let service = service()?;
            if let Some(hint) = stable_channel_hint(&channel, &version) {
                print!("{hint}");
            }
            let mut failed = false;
            for architecture in architectures {
                let answer =
                    runtime.block_on(service.graph(ChannelType::Ocp, &channel, architecture));
                match answer.map(|fetched| render_versions(&channel, architecture, &fetched.graph))
                {
                    Ok(Some(text)) => print!("{text}"),
                    Ok(None) => {
                        failed = true;
                        eprintln!("error: channel \"{channel}\": no versions found");
                    }
                    Err(failure) => {
                        failed = true;
                        eprintln!("error: channel \"{channel}\": {failure}");
                    }
                }
            }
            Ok(if failed {
                exit_status::ERROR.into()
            } else {
                ExitCode::SUCCESS
            })
        }
        ListReleases::MajorVersions => {
            let tags = runtime.block_on(release_tags(args))?;
            print!("{}", render_major_versions(&tags));
            Ok(ExitCode::SUCCESS)
        }
    }
}

/// The release repository's tags, from the first pull source that answers.
async fn release_tags(args: &Args) -> Result<Vec<String>, ExitCode> {
    let registries = match &args.registries_conf {
        Some(path) => RegistriesConf::load_named(path),
        None => RegistriesConf::load_default(),
    }
    .map_err(error)?;
    let repository: ImageReference = format!("{RELEASE_REPOSITORY}:latest")
        .parse()
        .map_err(error)?;
    let sources = registries.pull_sources(&repository).map_err(error)?;
    let client = RegistryClient::new(ClientOptions {
        credentials: CredentialStore::discover_checked(args.authfile.as_deref()).map_err(error)?,
        tls_verify: args.src_tls_verify,
        insecure_hosts: sources
            .iter()
            .filter(|source| source.insecure)
            .map(|source| source.reference.registry().to_owned())
            .collect(),
        retry_times: 2,
        ..ClientOptions::default()
    });
    let mut failures = Vec::new();
    for source in &sources {
        let reference = &source.reference;
        match client
            .list_tags(reference.registry(), reference.repository())
            .await
        {
            Ok(Some(tags)) => return Ok(tags),
            Ok(None) => failures.push(format!("{}: no such repository", reference.name())),
            Err(failure) => failures.push(failure.to_string()),
        }
    }
    Err(error(format!(
        "failed to get the release tags of {RELEASE_REPOSITORY}: {}",
        failures.join("; ")
    )))
}
