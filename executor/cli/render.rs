//! The plan for people, as text (what `plan` prints and `mirror` and
//! `apply` show before running) and Markdown (for pull-request comments).
//! Mirror-to-disk adds its delivery lines (`disk.rs`); the JSON document is
//! `saved_plan.rs`'s.

use std::fmt::Write as _;

use ferry_executor::resolve::Resolution;
use ferry_planner::{ImageChange, Plan};

use crate::common::mebibytes;

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
pub(crate) fn render_text(plan: &Plan, resolution: &Resolution) -> String {
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
pub(crate) fn render_markdown(plan: &Plan, resolution: &Resolution) -> String {
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
