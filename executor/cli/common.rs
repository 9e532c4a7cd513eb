//! What the workflow commands share on the command line: error messages
//! and exit statuses, the async runtime, the configuration's diagnostics
//! (of an ImageSetConfiguration and of a DeleteImageSetConfiguration),
//! sizes for people, notices, the errors file, holding a workspace for a
//! run, the client a delete (step or plan) reaches its registry with, and
//! the flags `list bundles` and `list operators` reach registry catalogs
//! with.

use std::path::{Path, PathBuf};
use std::process::ExitCode;
use std::time::Duration;

use ferry_executor::workflow::to_disk::Notice;
use ferry_executor::workflow::workspace::refuse_filesystem_root;
use ferry_executor::workflow::{Workspace, publish};
use ferry_planner::Destination;
use ferry_registry::{ClientOptions, CredentialStore, RegistryClient};
use ferry_schemas::{load_delete_configuration, load_image_set_configuration, render};
use ferry_store::RunLock;

use crate::arguments::MirrorArgs;
use crate::exit_status;
use crate::logging;

/// Prints `message` as an error; the exit status of an error.
pub(crate) fn error(message: impl std::fmt::Display) -> ExitCode {
    eprintln!("error: {message}");
    exit_status::ERROR.into()
}

/// The async runtime a command runs its workflow on.
pub(crate) fn runtime() -> Result<tokio::runtime::Runtime, ExitCode> {
    tokio::runtime::Builder::new_multi_thread()
        .worker_threads(2)
        .enable_all()
        .build()
        .map_err(|cause| error(format!("cannot start the async runtime: {cause}")))
}

/// `1 image`, `2 images`: a count with its noun in the right number.
pub(crate) fn counted(count: impl Into<u64>, singular: &str, plural: &str) -> String {
    let count = count.into();
    if count == 1 {
        format!("1 {singular}")
    } else {
        format!("{count} {plural}")
    }
}

pub(crate) fn mebibytes(bytes: u64) -> String {
    ferry_executor::workflow::mebibytes(bytes)
}

/// Prints what a workflow reports, in order.
pub(crate) fn print_notices(notices: &[Notice]) {
    for notice in notices {
        match notice {
            Notice::Info(text) => eprintln!("{text}"),
            Notice::Warning(text) => eprintln!("warning: {text}"),
        }
    }
}

/// Writes `errors` (one line per image) to
/// `working-dir/logs/mirroring_errors_<time>.txt`, shows them, and returns
/// `exit_bits`: the bits of the categories whose images failed (8 when
/// none is known, as every failure today is an additional image's).
pub(crate) fn report_failures(workspace: &Workspace, errors: &str, exit_bits: u8) -> ExitCode {
    let path = match publish::errors_file(workspace, &logging::timestamp(), errors) {
        Ok(path) => path,
        Err(cause) => return error(cause),
    };
    print!("{errors}");
    println!("errors written to {}", path.display());
    if exit_bits == 0 {
        exit_status::ADDITIONAL_IMAGE_FAILED.into()
    } else {
        exit_bits.into()
    }
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
pub(crate) fn check_config(
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

/// A DeleteImageSetConfiguration's text `text` read from `name`, checked
/// (diagnostics printed), refusing parts ferry does not delete yet.
pub(crate) fn load_delete_configuration_text(
    name: &str,
    text: &str,
) -> Result<ferry_schemas::DeleteImageSetConfiguration, ExitCode> {
    let loaded = match load_delete_configuration(text) {
        Ok(loaded) => loaded,
        Err(problems) => {
            eprint!("{}", render(name, text, &problems));
            return Err(exit_status::ERROR.into());
        }
    };
    let refusals = loaded.refusals();
    if !refusals.is_empty() {
        eprint!("{}", render(name, text, &refusals));
        return Err(error(
            "the delete configuration uses parts ferry does not delete yet; nothing was done",
        ));
    }
    Ok(loaded.config)
}

/// Takes `workspace` (a `working-dir`) for this run when it `writes`, so
/// that a second run is refused at once naming the first; a run that only
/// reads (a plan) takes nothing and says when another run holds it.
pub(crate) fn hold_workspace(workspace: &Path, writes: bool) -> Result<Option<RunLock>, ExitCode> {
    if !writes {
        if let Some(holder) = RunLock::holder(workspace) {
            eprintln!(
                "warning: workspace {} in use by pid {} since {}: this plan reads its state as it is now, and that run may still change it",
                workspace.display(),
                holder.pid,
                holder.since
            );
        }
        return Ok(None);
    }
    let now = time::OffsetDateTime::now_utc();
    let since = format!(
        "{:04}-{:02}-{:02} {:02}:{:02}:{:02} UTC",
        now.year(),
        u8::from(now.month()),
        now.day(),
        now.hour(),
        now.minute(),
        now.second()
    );
    // The subcommand only: the rest of a command line may name secrets.
    let command: Vec<String> = std::env::args().take(2).collect();
    RunLock::acquire(workspace, &since, &command.join(" "))
        .map(Some)
        .map_err(error)
}

/// [`hold_workspace`] for mirror-to-mirror and disk-to-mirror: the
/// workspace of `--workspace` or `--from`; `mirror` and `apply` write.
pub(crate) fn hold_workspace_of(arguments: &MirrorArgs) -> Result<Option<RunLock>, ExitCode> {
    let Some(folder) = arguments
        .from
        .as_deref()
        .or(arguments.workspace.as_deref())
        .and_then(|folder| folder.strip_prefix("file://"))
        .filter(|folder| !folder.is_empty())
    else {
        return Ok(None);
    };
    let folder = PathBuf::from(folder);
    refuse_filesystem_root(&folder).map_err(error)?;
    hold_workspace(
        Workspace::in_folder(&folder).root(),
        arguments.run_log.is_some(),
    )
}

pub(crate) fn write_file(path: &Path, text: &str) -> Result<(), ExitCode> {
    if let Some(parent) = path.parent() {
        std::fs::create_dir_all(parent)
            .map_err(|cause| error(format!("cannot create {}: {cause}", parent.display())))?;
    }
    std::fs::write(path, text)
        .map_err(|cause| error(format!("cannot write {}: {cause}", path.display())))
}

/// The summary's per-category lines: `✓ 3 / 3 additional images mirrored`
/// (`✗` when some are missing), on stdout.
pub(crate) fn print_category_counts(
    categories: &[ferry_executor::workflow::to_registry::CategoryCount],
    verb: &str,
) {
    for count in categories {
        let mark = if count.mirrored == count.total {
            "✓"
        } else {
            "✗"
        };
        println!(
            "{mark} {} / {} {} {} {verb}",
            count.mirrored,
            count.total,
            count.category.noun(),
            if count.total == 1 { "image" } else { "images" }
        );
    }
}

/// The client a delete (`ferry delete`, `ferry plan --delete`) reaches
/// `destination` with.
pub(crate) fn destination_client(
    destination: &Destination,
    tls_verify: bool,
    authfile: Option<&Path>,
    retry_times: Option<u32>,
    retry_delay: Option<Duration>,
) -> Result<RegistryClient, ExitCode> {
    let credentials = CredentialStore::discover_checked(authfile)
        .map_err(|missing| error(format!("{missing}; nothing was deleted")))?;
    let defaults = ClientOptions::default();
    Ok(RegistryClient::new(ClientOptions {
        credentials,
        insecure_hosts: if tls_verify {
            Vec::new()
        } else {
            vec![destination.registry.clone()]
        },
        retry_times: retry_times.unwrap_or(defaults.retry_times),
        retry_delay: retry_delay.filter(|delay| !delay.is_zero()),
        ..defaults
    }))
}

/// How registry catalogs are reached (as `list releases` has them).
#[derive(Clone, Debug, Default, clap::Args)]
pub struct RegistryArgs {
    /// registries.conf for pulling registry catalogs.
    #[arg(long)]
    pub registries_conf: Option<PathBuf>,
    /// Auth file (default: $REGISTRY_AUTH_FILE, then the containers and docker defaults).
    #[arg(long, env = "REGISTRY_AUTH_FILE")]
    pub authfile: Option<PathBuf>,
    /// Verify TLS for registry catalogs (false also allows plain HTTP).
    #[arg(long, default_value_t = true, action = clap::ArgAction::Set)]
    pub src_tls_verify: bool,
}

impl RegistryArgs {
    pub(crate) fn access_options(&self) -> ferry_executor::catalog_image::RegistryAccessOptions {
        ferry_executor::catalog_image::RegistryAccessOptions {
            registries_conf: self.registries_conf.clone(),
            authfile: self.authfile.clone(),
            source_tls_verify: self.src_tls_verify,
        }
    }
}
