//! The plan for people, as text (what `plan` prints and `mirror` and
//! `apply` show before running) and Markdown (for pull-request comments).
//! Mirror-to-disk adds its delivery lines (`disk.rs`); the JSON document is
//! `saved_plan.rs`'s.

use std::fmt::Write as _;

use ferry_executor::resolve::Resolution;
use ferry_planner::{BundleChange, BundleChangeKind, ImageChange, Plan};

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
            shorten_digests(&image.name),
            shorten_digests(&image.destination),
            shorten_digests(image.reason.as_deref().unwrap_or("")),
            image.actions,
            mebibytes(image.bytes)
        );
    }
    for failure in &resolution.failures {
        let _ = writeln!(text, "  ! {}: {}", failure.name, failure.reason());
    }
    for blocked in &resolution.blocked {
        let _ = writeln!(text, "  - {blocked}: left out by blockedImages");
    }
    for removed in &resolution.removed {
        let _ = writeln!(
            text,
            "  - {removed} (no longer in the image set; left at the destination, see delete)"
        );
    }
}

/// The plan for people.
pub(crate) fn render_text(
    plan: &Plan,
    resolution: &Resolution,
    planning: &ferry_executor::workflow::PlanOptions,
) -> String {
    let mut text = String::new();
    let count = |change: ImageChange| {
        plan.images
            .iter()
            .filter(|image| image.change == change)
            .count()
    };
    let _ = writeln!(
        text,
        "Plan: {}: {} new, {} changed, {} unchanged",
        crate::common::counted(plan.images.len() as u64, "image", "images"),
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
        // Say what was checked, no more.
        let checked = if planning.trust_state {
            "the workspace state records the whole image set at the destination (the destination was not asked)"
        } else if planning.verify {
            "the destination holds every manifest and blob of the image set"
        } else {
            "the destination's top manifests are present (use --verify to check every blob)"
        };
        let _ = writeln!(text, "Nothing to do: {checked}.");
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
            "| ! | `{}` | | {} | | |",
            failure.name,
            failure.reason()
        );
    }
    for removed in &resolution.removed {
        let _ = writeln!(
            text,
            "| - | | `{removed}` | no longer in the image set; left at the destination, see delete | | |"
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

/// What a new bundle's line says: `new bundle in channel beta`.
fn bundle_change_reason(change: &BundleChange) -> String {
    match change.change {
        BundleChangeKind::New => match change.channels.as_slice() {
            [] => "new bundle".to_owned(),
            [channel] => format!("new bundle in channel {channel}"),
            channels => format!("new bundle in channels {}", channels.join(", ")),
        },
        BundleChangeKind::NoLongerSelected => "no longer selected".to_owned(),
    }
}

/// Operator bundles the plan adds or no longer selects, per catalog and
/// package (nothing without changes).
pub(crate) fn render_bundle_changes(changes: &[BundleChange], text: &mut String) {
    if changes.is_empty() {
        return;
    }
    let _ = writeln!(text, "Operator bundles:");
    let mut current: Option<(&str, &str)> = None;
    for change in changes {
        let group = (change.catalog.as_str(), change.package.as_str());
        if current != Some(group) {
            let _ = writeln!(
                text,
                "  catalog {}, package {}:",
                shorten_digests(group.0),
                group.1
            );
            current = Some(group);
        }
        let marker = match change.change {
            BundleChangeKind::New => "+",
            BundleChangeKind::NoLongerSelected => "-",
        };
        let _ = writeln!(
            text,
            "    {marker} {} ({})",
            change.bundle,
            bundle_change_reason(change)
        );
    }
}

/// [`render_bundle_changes`] as a Markdown table.
pub(crate) fn render_bundle_changes_markdown(changes: &[BundleChange], text: &mut String) {
    if changes.is_empty() {
        return;
    }
    text.push_str("\n| | catalog | package | bundle | change |\n|---|---|---|---|---|\n");
    for change in changes {
        let marker = match change.change {
            BundleChangeKind::New => "+",
            BundleChangeKind::NoLongerSelected => "-",
        };
        let _ = writeln!(
            text,
            "| {marker} | `{}` | {} | `{}` | {} |",
            change.catalog,
            change.package,
            change.bundle,
            bundle_change_reason(change)
        );
    }
}

/// Hex digits of a digest kept in text for people (JSON and Markdown keep
/// them all).
const SHOWN_HEX: usize = 12;

/// `text` with every sha256 digest (`sha256:<hex>`) and cosign signature
/// tag (`sha256-<hex>.sig`) shortened to its first hex digits and `…`.
/// Written by hand: a scan for two fixed prefixes needs no regex engine.
pub(crate) fn shorten_digests(text: &str) -> String {
    let mut shortened = String::with_capacity(text.len());
    let mut rest = text;
    while let Some(start) = rest.find("sha256") {
        let after = &rest[start + "sha256".len()..];
        let separator = after.chars().next();
        let hex_length = after.get(1..).map_or(0, |hex| {
            hex.bytes().take_while(u8::is_ascii_hexdigit).count()
        });
        if matches!(separator, Some(':' | '-')) && hex_length == 64 {
            shortened.push_str(&rest[..start + "sha256".len() + 1]);
            shortened.push_str(&after[1..1 + SHOWN_HEX]);
            shortened.push('…');
            rest = &after[1 + 64..];
        } else {
            shortened.push_str(&rest[..start + "sha256".len()]);
            rest = after;
        }
    }
    shortened.push_str(rest);
    shortened
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn digests_and_signature_tags_are_shortened_for_people() {
        let hex = "d1d54e7e5c2c1bc2dbec97d103d9c86efe5a84a2a6ba607bd0a3b11793bebb5c";
        assert_eq!(
            shorten_digests(&format!("tag moved from sha256:{hex} to sha256:{hex}")),
            "tag moved from sha256:d1d54e7e5c2c… to sha256:d1d54e7e5c2c…"
        );
        assert_eq!(
            shorten_digests(&format!("quay.io/a/b:sha256-{hex}.sig")),
            "quay.io/a/b:sha256-d1d54e7e5c2c….sig"
        );
        // Not a whole digest: left as it is.
        assert_eq!(
            shorten_digests("sha256:abc and sha256"),
            "sha256:abc and sha256"
        );
        assert_eq!(shorten_digests("quay.io/a/b:1.0"), "quay.io/a/b:1.0");
    }
}
