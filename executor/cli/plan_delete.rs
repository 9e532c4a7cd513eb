//! `ferry plan --delete -c DISC --workspace file://WS docker://REG` and
//! `ferry apply PLANFILE` of such a plan: delete as a plan. The delete
//! configuration becomes the same list `ferry delete --generate` writes;
//! `workflow::delete::plan` turns it into the manifests and tags to
//! delete and the blobs the registry's garbage collector then frees, with
//! what other image sets (known from the cache) need kept unless
//! `--force`. Printed as text, JSON (the saved plan) or Markdown; `apply`
//! plans again from the saved inputs, refuses a plan that no longer
//! matches, deletes exactly its manifests and makes the workspace state
//! forget them, so the next mirror plans them again.

use std::collections::{BTreeMap, BTreeSet};
use std::path::Path;
use std::process::ExitCode;
use std::time::Duration;

use ferry_executor::workflow::Workspace;
use ferry_executor::workflow::delete::document::{DeleteApplyInputs, DeletePlanDocument};
use ferry_executor::workflow::delete::plan::{self, DeletePlan, ManifestOutcome};
use ferry_executor::workflow::delete::shared::recorded_manifest;
use ferry_executor::workflow::delete::{self, Protection, SharedContent, WorkspaceRecord};
use ferry_planner::{Destination, ResolvedManifest};
use ferry_registry::RegistryClient;

use crate::arguments::{PlanCommand, parse_destination};
use crate::cache_location::cache_folder;
use crate::common::{
    destination_client, error, hold_workspace, load_delete_configuration_text, mebibytes,
    print_notices, runtime,
};
use crate::{exit_status, logging};

/// `file://DIR` or a path, made absolute.
fn absolute(path: &Path) -> String {
    std::path::absolute(path)
        .unwrap_or_else(|_| path.to_path_buf())
        .display()
        .to_string()
}

/// The inputs of `ferry plan --delete`, as a saved plan records them.
fn inputs_of(arguments: &PlanCommand) -> Result<DeleteApplyInputs, ExitCode> {
    let common = &arguments.common;
    let Some(config_path) = &common.config else {
        return Err(error(
            "use the --config flag with a DeleteImageSetConfiguration, it is mandatory with --delete",
        ));
    };
    let Some(destination) = &common.destination else {
        return Err(error("name the registry: docker://REGISTRY[/PREFIX]"));
    };
    let Some(workspace) = common
        .workspace
        .as_deref()
        .and_then(|workspace| workspace.strip_prefix("file://"))
        .filter(|folder| !folder.is_empty())
    else {
        return Err(error(
            "use --workspace file://DIR with --delete: the workspace (or disk folder) the mirror runs used",
        ));
    };
    if common.from.is_some() {
        return Err(error(
            "--from is not used by --delete: name the disk folder the runs used with --workspace file://DIR",
        ));
    }
    let text = ferry_schemas::read_configuration_file(config_path)
        .map_err(|cause| error(format!("cannot read {}: {cause}", config_path.display())))?;
    Ok(DeleteApplyInputs {
        configuration: ferry_planner::SavedConfiguration {
            path: absolute(config_path),
            text,
        },
        destination: destination.clone(),
        workspace: format!("file://{}", absolute(Path::new(workspace))),
        cache_dir: absolute(&cache_folder(common.cache_dir.as_deref())?),
        force: common.oc_mirror.force,
        delete_signatures: arguments.delete_signatures,
        trust_state: common.trust_state,
        destination_tls_verify: common.destination_tls_verify(),
        authfile: common.effective_authfile().as_deref().map(absolute),
        retry_times: common.retry_times,
        retry_delay_milliseconds: common.retry_delay.as_millis() as u64,
    })
}

/// Everything planned, with what applying needs.
struct Prepared {
    destination: Destination,
    workspace: Workspace,
    client: RegistryClient,
    recorded: WorkspaceRecord,
    plan: DeletePlan,
    /// Manifests the states recorded or planning read, by digest.
    manifests: BTreeMap<ferry_schemas::Digest, ResolvedManifest>,
    _lock: Option<ferry_store::RunLock>,
}

/// Plans from `inputs`: the delete list of the configuration, each item
/// asked at the destination (unless `trust_state`), the plan.
fn prepare(inputs: &DeleteApplyInputs, writes: bool) -> Result<Prepared, ExitCode> {
    let Some(destination_path) = inputs.destination.strip_prefix("docker://") else {
        return Err(error(format!(
            "`{}`: the destination registry argument must have a docker:// protocol prefix",
            inputs.destination
        )));
    };
    let destination = parse_destination(&inputs.destination, destination_path)?;
    let configuration =
        load_delete_configuration_text(&inputs.configuration.path, &inputs.configuration.text)?;
    let folder = inputs.workspace.trim_start_matches("file://");
    let workspace = Workspace::in_folder(folder);
    if !workspace.state_file().is_file() {
        return Err(error(format!(
            "{folder} holds no ferry workspace ({} is missing): a delete plan is made from what earlier runs recorded there; name the --workspace (or disk folder) those runs used",
            workspace.state_file().display()
        )));
    }
    let lock = hold_workspace(workspace.root(), writes)?;
    let state = workspace.open_state().map_err(error)?;
    let recorded = WorkspaceRecord::load_in(&workspace, &state, &destination).map_err(error)?;
    let (shared, notices) = SharedContent::load(
        Path::new(&inputs.cache_dir),
        Path::new(folder),
        &destination.display(),
        &destination.registry,
    )
    .map_err(error)?;
    print_notices(&notices);
    // Protection from other image sets is the plan's: it knows each
    // item's digest at the destination. What this image set's staying
    // operator bundles need is left out while listing.
    let unprotected = SharedContent::default();
    let generated = delete::generate(
        &configuration,
        &destination,
        &recorded,
        inputs.delete_signatures,
        &Protection {
            shared: &unprotected,
            force: inputs.force,
        },
    )
    .map_err(error)?;
    print_notices(&generated.notices);
    let kept_while_listing = generated.kept;
    let items = generated.list.items;
    let client = destination_client(
        &destination,
        inputs.destination_tls_verify,
        inputs.authfile.as_deref().map(Path::new),
        Some(inputs.retry_times),
        Some(Duration::from_millis(inputs.retry_delay_milliseconds)),
    )?;
    // Every manifest the workspace and the other image sets recorded.
    let mut manifests: BTreeMap<ferry_schemas::Digest, ResolvedManifest> = BTreeMap::new();
    let mut remember = |state: &ferry_store::WorkspaceState, tops: Vec<ferry_schemas::Digest>| {
        for top in tops {
            let (tree, _) =
                delete::shared::manifest_tree(&top, &|digest| recorded_manifest(state, digest));
            for manifest in tree {
                manifests.insert(manifest.digest.clone(), manifest);
            }
        }
    };
    remember(
        &state,
        recorded.tags_at_destination.values().cloned().collect(),
    );
    for resolution in recorded.resolutions.values() {
        remember(&state, vec![resolution.top.clone()]);
    }
    let live = if inputs.trust_state {
        BTreeMap::new()
    } else {
        let runtime = runtime()?;
        let live = runtime
            .block_on(plan::live_digests(&items, &client))
            .map_err(error)?;
        let known = manifests.clone();
        let fetched = runtime.block_on(plan::fetch_unknown(
            &destination,
            &live,
            &items,
            &|digest| known.get(digest).cloned(),
            &client,
        ));
        manifests.extend(fetched);
        live
    };
    for image_set in &shared.image_sets {
        for (digest, manifest) in &image_set.known {
            manifests
                .entry(digest.clone())
                .or_insert_with(|| manifest.clone());
        }
    }
    let mut plan = plan::plan_delete(&plan::DeleteInputs {
        destination: &destination,
        items: &items,
        live: &live,
        recorded_tags: &recorded.tags_at_destination,
        manifests: &|digest| manifests.get(digest).cloned(),
        shared: &shared,
        force: inputs.force,
    });
    plan.kept.extend(kept_while_listing);
    plan.kept
        .sort_by(|left, right| left.reference.cmp(&right.reference));
    Ok(Prepared {
        destination,
        workspace,
        client,
        recorded,
        plan,
        manifests,
        _lock: lock,
    })
}

/// The plan as text (`ferry plan --delete`, and what `apply` shows).
fn render_text(plan: &DeletePlan) -> String {
    use std::fmt::Write as _;
    let mut text = String::new();
    let _ = writeln!(text, "Delete plan for docker://{}:", plan.destination);
    for manifest in &plan.manifests {
        let why = match &manifest.child_of {
            Some(index) => format!("child of {index}"),
            None => format!("listed as {}", manifest.listed.join(", ")),
        };
        let _ = writeln!(
            text,
            "  delete manifest {}@{} ({} bytes; {why})",
            manifest.repository, manifest.digest, manifest.size
        );
    }
    for tag in &plan.tags {
        let _ = writeln!(
            text,
            "  remove tag {}:{} -> {}{}",
            tag.repository,
            tag.tag,
            tag.digest,
            if tag.listed {
                ""
            } else {
                " (not listed: it names a deleted manifest)"
            }
        );
    }
    for kept in &plan.kept {
        let _ = writeln!(
            text,
            "  keep {}: {} needs it (--force deletes it)",
            kept.reference, kept.needed_by
        );
    }
    for gone in &plan.already_gone {
        let _ = writeln!(text, "  already gone {gone}");
    }
    for unknown in &plan.unknown_content {
        let _ = writeln!(
            text,
            "  note: the content of {unknown} is not known here, so its blobs are not counted below"
        );
    }
    let _ = writeln!(
        text,
        "Plan: {}",
        summary(plan, "the registry's garbage collector")
    );
    text
}

/// The plan in one sentence (the text's last line, the Markdown's first
/// paragraph); `collector` names what frees the blobs.
fn summary(plan: &DeletePlan, collector: &str) -> String {
    format!(
        "{} manifests and {} tags to delete, {} kept, {} already gone; {collector} then frees {} blobs, {} bytes ({}).",
        plan.manifests.len(),
        plan.tags.len(),
        plan.kept.len(),
        plan.already_gone.len(),
        plan.freed_blobs.len(),
        plan.freed_bytes,
        mebibytes(plan.freed_bytes)
    )
}

/// The plan as Markdown.
fn render_markdown(plan: &DeletePlan) -> String {
    use std::fmt::Write as _;
    let mut text = String::new();
    let _ = writeln!(text, "# Delete plan for `docker://{}`\n", plan.destination);
    let _ = writeln!(text, "{}\n", summary(plan, "garbage collection"));
    let _ = writeln!(text, "| Manifest | Bytes | Why |\n|---|---:|---|");
    for manifest in &plan.manifests {
        let why = match &manifest.child_of {
            Some(index) => format!("child of `{index}`"),
            None => format!("listed as `{}`", manifest.listed.join("`, `")),
        };
        let _ = writeln!(
            text,
            "| `{}@{}` | {} | {why} |",
            manifest.repository, manifest.digest, manifest.size
        );
    }
    let _ = writeln!(text, "\n| Tag | Manifest | Listed |\n|---|---|---|");
    for tag in &plan.tags {
        let _ = writeln!(
            text,
            "| `{}:{}` | `{}` | {} |",
            tag.repository,
            tag.tag,
            tag.digest,
            if tag.listed { "yes" } else { "no" }
        );
    }
    if !plan.kept.is_empty() {
        let _ = writeln!(text, "\n| Kept | Needed by |\n|---|---|");
        for kept in &plan.kept {
            let _ = writeln!(text, "| `{}` | {} |", kept.reference, kept.needed_by);
        }
    }
    text
}

/// `ferry plan --delete`.
pub fn plan_command(arguments: &PlanCommand) -> ExitCode {
    if let Err(cause) = logging::init(&arguments.common.log_level, None) {
        return error(cause);
    }
    let inputs = match inputs_of(arguments) {
        Ok(inputs) => inputs,
        Err(code) => return code,
    };
    let prepared = match prepare(&inputs, false) {
        Ok(prepared) => prepared,
        Err(code) => return code,
    };
    let document = DeletePlanDocument::new(prepared.plan.clone(), inputs);
    let json = {
        let mut text = serde_json::to_string_pretty(&document).unwrap_or_default();
        text.push('\n');
        text
    };
    let output = match arguments.format.as_str() {
        "json" => json.clone(),
        "markdown" => render_markdown(&prepared.plan),
        _ => render_text(&prepared.plan),
    };
    print!("{output}");
    if let Some(out) = &arguments.out
        && let Err(code) = crate::common::write_file(out, &json)
    {
        return code;
    }
    if arguments.detailed_exitcode && !prepared.plan.is_empty() {
        return exit_status::PLAN_HAS_CHANGES.into();
    }
    ExitCode::SUCCESS
}

/// `ferry apply PLANFILE` of a delete plan (`text`, read from `plan_path`):
/// planned again from its inputs, refused when that differs, then applied.
pub fn apply_document(plan_path: &str, text: &str, log_level: &str) -> ExitCode {
    if let Err(cause) = logging::init(log_level, None) {
        return error(cause);
    }
    let saved: DeletePlanDocument = match serde_json::from_str(text) {
        Ok(saved) => saved,
        Err(cause) => return error(format!("{plan_path} is not a ferry delete plan: {cause}")),
    };
    if saved.version != ferry_planner::PLAN_DOCUMENT_VERSION {
        return error(format!(
            "{plan_path} is a version {} plan; this ferry applies version {} plans only: run `ferry plan --delete` again",
            saved.version,
            ferry_planner::PLAN_DOCUMENT_VERSION
        ));
    }
    if std::fs::read_to_string(&saved.apply.configuration.path)
        .is_ok_and(|current| current != saved.apply.configuration.text)
    {
        eprintln!(
            "note: {} changed since the plan was made; the plan is applied as it was made, from its own copy of the configuration",
            saved.apply.configuration.path
        );
    }
    let prepared = match prepare(&saved.apply, true) {
        Ok(prepared) => prepared,
        Err(code) => return code,
    };
    if prepared.plan != saved.delete {
        return error(
            "the plan is stale: what the destination or the workspace holds changed since the plan was made (a tag moved, an image went away, another run mirrored or deleted); nothing was deleted; run `ferry plan --delete` again",
        );
    }
    print!("{}", render_text(&prepared.plan));
    run(prepared)
}

/// Deletes the planned manifests, then makes the workspace state forget them.
fn run(prepared: Prepared) -> ExitCode {
    let runtime = match runtime() {
        Ok(runtime) => runtime,
        Err(code) => return code,
    };
    let outcomes = match runtime.block_on(plan::apply_plan(
        &prepared.plan,
        &prepared.destination,
        &prepared.client,
    )) {
        Ok(outcomes) => outcomes,
        Err(cause) => return error(cause),
    };
    let mut deleted: BTreeSet<(String, ferry_schemas::Digest)> = BTreeSet::new();
    let mut failed = 0;
    for (manifest, outcome) in &outcomes {
        let name = format!(
            "docker://{}/{}@{}",
            prepared.destination.registry, manifest.repository, manifest.digest
        );
        match outcome {
            ManifestOutcome::Deleted => println!("deleted {name}"),
            ManifestOutcome::AlreadyGone => println!("already gone {name}"),
            ManifestOutcome::Failed(why) => {
                failed += 1;
                eprintln!("failed {name}: {why}");
                continue;
            }
        }
        deleted.insert((manifest.repository.clone(), manifest.digest.clone()));
    }
    let (keys, tags) = plan::forgotten(
        &prepared.plan,
        &deleted,
        &prepared.recorded.tags_at_destination,
        &|digest| prepared.manifests.get(digest).cloned(),
    );
    let forgotten = prepared.workspace.open_state().and_then(|mut state| {
        state
            .forget_deleted(&prepared.destination.display(), &keys, &tags)
            .map_err(ferry_executor::workflow::WorkflowError::environment)
    });
    if let Err(cause) = forgotten {
        return error(cause);
    }
    // The operator bundles whose bundle image went are no longer recorded.
    let forgotten_tags: BTreeSet<(String, String)> = tags.iter().cloned().collect();
    let gone = delete::operators::deleted_bundles(
        &prepared.recorded.bundles,
        &prepared.destination,
        &forgotten_tags,
    );
    if let Err(cause) = ferry_executor::workflow::operators::selection::forget(
        &prepared.workspace,
        &prepared.destination.display(),
        &gone,
    ) {
        return error(cause);
    }
    println!(
        "done: {} manifests deleted, {failed} failed; the workspace forgot {} tags, so the next mirror copies those images again",
        deleted.len(),
        tags.len()
    );
    println!(
        "run the registry's garbage collector to free {} blobs, {} bytes ({}) (distribution: `registry garbage-collect CONFIG`)",
        prepared.plan.freed_blobs.len(),
        prepared.plan.freed_bytes,
        mebibytes(prepared.plan.freed_bytes)
    );
    if failed > 0 {
        exit_status::ERROR.into()
    } else {
        ExitCode::SUCCESS
    }
}
