//! The plan as a versioned JSON document (`ferry plan --format json`, and
//! the file `ferry plan --out FILE` saves): `{"version": 2, "plan": ...,
//! "apply": ...}`, and its JSON Schema, generated from the types and
//! committed as `schemas/plan.schema.json` (a golden test fails when the
//! committed file is stale; `FERRY_BLESS=1` rewrites it).
//!
//! The version changes when a field changes meaning or goes away; added
//! fields keep it.
//!
//! | version | change |
//! |---|---|
//! | 1 | the plan, and for mirror-to-disk the delivery |
//! | 2 | `apply`: what `ferry apply` runs the plan from ([`ApplyInputs`]); the saved plan file and this document became one format (version 1 plan files were a format of their own, and are refused with a message) |

use serde::Serialize;

use crate::plan::Plan;
use crate::saved::ApplyInputs;

/// The version this ferry writes.
pub const PLAN_DOCUMENT_VERSION: u32 = 2;

/// `ferry plan --format json`.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, schemars::JsonSchema)]
#[schemars(title = "ferry plan (ferry plan --format json, ferry plan --out FILE)")]
pub struct PlanDocument {
    /// Format version of this document: 2.
    #[schemars(range(min = 2, max = 2))]
    pub version: u32,
    /// The plan: actions in dependency order with their reasons, the
    /// per-image summary and totals.
    pub plan: Plan,
    /// Mirror-to-disk: the delivery the plan writes (absent when there is
    /// nothing to deliver, and for plans to a registry).
    #[serde(skip_serializing_if = "Option::is_none")]
    pub delivery: Option<PlannedDelivery>,
    /// What `ferry apply` runs this plan from: the configuration by
    /// content, the destination, absolute folders and every option that
    /// shapes the run (absent from plans that cannot be applied).
    #[serde(skip_serializing_if = "Option::is_none")]
    pub apply: Option<ApplyInputs>,
    /// Operator catalogs: the bundles this plan starts mirroring and those
    /// the last run to the destination mirrored that it no longer selects
    /// (absent without operator catalogs or changes).
    #[serde(skip_serializing_if = "Vec::is_empty", default)]
    pub bundles: Vec<BundleChange>,
}

/// A bundle of an operator catalog that the plan adds or no longer selects.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, schemars::JsonSchema)]
pub struct BundleChange {
    /// The catalog as the configuration names it.
    pub catalog: String,
    pub package: String,
    /// The `olm.bundle` name.
    pub bundle: String,
    pub change: BundleChangeKind,
    /// A new bundle's kept channels holding it (empty otherwise).
    pub channels: Vec<String>,
}

/// How a bundle changes.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Serialize, schemars::JsonSchema)]
#[serde(rename_all = "kebab-case")]
pub enum BundleChangeKind {
    /// Selected now, not mirrored by the last run to the destination.
    New,
    /// Mirrored by the last run to the destination, not selected now.
    NoLongerSelected,
}

/// The next delivery of a mirror-to-disk plan.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, schemars::JsonSchema)]
pub struct PlannedDelivery {
    /// Its number (1, 2, ...).
    pub number: u32,
    /// The delivery whose content it assumes at the destination.
    pub previous: Option<u32>,
    /// Bytes of all its segment files.
    pub bytes: u64,
    pub segments: Vec<PlannedSegment>,
    /// Blobs larger than a segment, each given one of its own.
    pub warnings: Vec<String>,
}

/// One segment file of a planned delivery.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, schemars::JsonSchema)]
pub struct PlannedSegment {
    /// `mirror_NNNNNN.tar`.
    pub file: String,
    pub bytes: u64,
    pub entries: usize,
}

impl PlanDocument {
    pub fn new(plan: Plan) -> Self {
        PlanDocument {
            version: PLAN_DOCUMENT_VERSION,
            plan,
            delivery: None,
            apply: None,
            bundles: Vec::new(),
        }
    }
}

/// The JSON Schema of [`PlanDocument`], pretty-printed with a final newline.
pub fn plan_schema() -> String {
    let schema = schemars::r#gen::SchemaSettings::draft07()
        .into_generator()
        .into_root_schema_for::<PlanDocument>();
    let mut text = serde_json::to_string_pretty(&schema).unwrap_or_default();
    text.push('\n');
    text
}
