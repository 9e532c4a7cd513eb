//! Saved plans on the command line: the plan document (version 2) that
//! `ferry plan --format json` prints and `--out` saves, with what `ferry
//! apply PLANFILE` runs it from ([`ferry_planner::ApplyInputs`]): the
//! flags recorded as settings, read back as flags, and the messages of a
//! stale plan. Every mode saves and applies this one format.

use std::path::{Path, PathBuf};
use std::process::ExitCode;
use std::time::Duration;

use ferry_executor::resolve::Resolution;
use ferry_planner::{ApplyInputs, PlanDocument};

use crate::arguments::MirrorArgs;
use crate::common::error;

/// The plan as versioned JSON (what `--format json` prints and `--out`
/// saves).
pub(crate) fn render_json(document: &PlanDocument) -> String {
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
        source_tls_verify: arguments.source_tls_verify(),
        destination_tls_verify: arguments.destination_tls_verify(),
        registries_conf: arguments.registries_conf.as_deref().map(absolute),
        authfile: arguments.effective_authfile().as_deref().map(absolute),
        // The cache folder itself (not the base folder of --cache-dir).
        cache_dir: arguments
            .chosen_cache_folder()
            .ok()
            .flatten()
            .as_deref()
            .map(absolute),
        parallel_images: arguments.parallel_images,
        parallel_layers: arguments.parallel_layers,
        retry_times: arguments.retry_times,
        retry_delay_milliseconds: arguments.retry_delay.as_millis() as u64,
        max_nested_paths: arguments.max_nested_paths,
        remove_signatures: arguments.remove_signatures,
        ignore_release_signature: arguments.ignore_release_signature,
        trust_state: arguments.trust_state,
        verify: arguments.verify,
        since: arguments.since,
        strict_archive: arguments.strict_archive,
        max_segment_bytes: arguments.max_segment_bytes,
    }
}

/// What a plan records so that `apply` can run it exactly: the inputs of
/// `arguments`, and what planning gave.
pub(crate) fn apply_inputs(
    arguments: &MirrorArgs,
    config_text: &str,
    state_fingerprint: &str,
    resolution: &Resolution,
    action_keys: Vec<ferry_planner::ActionKey>,
) -> ApplyInputs {
    ApplyInputs {
        configuration: ferry_planner::SavedConfiguration {
            path: arguments
                .config
                .as_deref()
                .map(absolute)
                .unwrap_or_default(),
            text: config_text.to_owned(),
        },
        destination: arguments
            .destination
            .as_deref()
            .map(absolute_location)
            .unwrap_or_default(),
        workspace: arguments.workspace.as_deref().map(absolute_location),
        from: arguments.from.as_deref().map(absolute_location),
        settings: run_settings(arguments),
        state_fingerprint: state_fingerprint.to_owned(),
        images: saved_images(resolution),
        action_keys,
    }
}

/// Reads the plan document `plan_path` for `apply`: its `apply` section,
/// or why it cannot be applied.
pub(crate) fn read_saved(plan_path: &str) -> Result<ApplyInputs, ExitCode> {
    let text = std::fs::read_to_string(plan_path)
        .map_err(|cause| error(format!("cannot read the plan {plan_path}: {cause}")))?;
    #[derive(serde::Deserialize)]
    struct Versioned {
        version: u32,
        #[serde(default)]
        apply: Option<ApplyInputs>,
    }
    let versioned: Versioned = serde_json::from_str(&text)
        .map_err(|cause| error(format!("{plan_path} is not a ferry plan: {cause}")))?;
    if versioned.version != ferry_planner::PLAN_DOCUMENT_VERSION {
        return Err(error(format!(
            "{plan_path} is a version {} plan; this ferry applies version {} plans only: run `ferry plan` again (with --out FILE) to save one",
            versioned.version,
            ferry_planner::PLAN_DOCUMENT_VERSION
        )));
    }
    versioned.apply.ok_or_else(|| {
        error(format!(
            "{plan_path} is a plan without what `ferry apply` needs (its `apply` section); save one with `ferry plan --out FILE` or `--format json`"
        ))
    })
}

/// Says when the configuration file changed since the plan was made: the
/// plan is applied from its own copy.
pub(crate) fn note_changed_configuration(apply: &ApplyInputs) {
    if std::fs::read_to_string(&apply.configuration.path)
        .is_ok_and(|text| text != apply.configuration.text)
    {
        eprintln!(
            "note: {} changed since the plan was made; the plan is applied as it was made, from its own copy of the configuration",
            apply.configuration.path
        );
    }
}

/// Refuses `apply` when what planning gives now differs from the plan,
/// naming why (`messages` say it for the mode).
pub(crate) fn refuse_stale(
    apply: &ApplyInputs,
    state_fingerprint: &str,
    resolution: &Resolution,
    action_keys: &[ferry_planner::ActionKey],
    messages: Staleness,
) -> Result<(), ExitCode> {
    let images = saved_images(resolution);
    let current = ferry_planner::saved::Current {
        state_fingerprint,
        images: &images,
        action_keys,
    };
    match ferry_planner::staleness(apply, &current) {
        Some(stale) => Err(error(stale_message(&stale, messages))),
        None => Ok(()),
    }
}

/// Saves `document` to `path` (its folder created when missing).
pub(crate) fn write_plan_file(path: &Path, document: &PlanDocument) -> Result<(), ExitCode> {
    crate::common::write_file(path, &render_json(document))
}

/// Each resolved image with its top digest, as a plan document records them.
pub(crate) fn saved_images(resolution: &Resolution) -> Vec<ferry_planner::PlannedImage> {
    resolution
        .images
        .iter()
        .map(|image| ferry_planner::PlannedImage {
            name: image.name.clone(),
            top: image.top.clone(),
        })
        .collect()
}

/// The flags of a plan made with `settings`, for `apply` to plan again
/// exactly as the plan was made (`log_level` stays the apply's own).
pub(crate) fn arguments_of(apply: &ferry_planner::ApplyInputs, log_level: &str) -> MirrorArgs {
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
        cache_dir: None,
        cache_folder: settings.cache_dir.as_ref().map(PathBuf::from),
        log_level: log_level.to_owned(),
        remove_signatures: settings.remove_signatures,
        max_nested_paths: settings.max_nested_paths,
        trust_state: settings.trust_state,
        verify: settings.verify,
        // As the plan was made: a plan made with --ignore-release-signature
        // applies without verifying the payloads' signatures.
        ignore_release_signature: settings.ignore_release_signature,
        run_log: Some("apply"),
        config_text: Some(apply.configuration.text.clone()),
        since: settings.since,
        strict_archive: settings.strict_archive,
        max_segment_bytes: settings.max_segment_bytes,
        oc_mirror: Default::default(),
    }
}

/// What to say when a saved plan's state or actions no longer match.
pub(crate) struct Staleness {
    pub state: &'static str,
    pub actions: &'static str,
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
