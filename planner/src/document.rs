//! The plan as a versioned JSON document (`ferry plan --format json`):
//! `{"version": 1, "plan": ...}`, and its JSON Schema, generated from the
//! types and committed as `schemas/plan.schema.json` (a golden test fails
//! when the committed file is stale; `FERRY_BLESS=1` rewrites it).
//!
//! The version changes when a field changes meaning or goes away; added
//! fields keep it.

use serde::Serialize;

use crate::plan::Plan;

/// The version this ferry writes.
pub const PLAN_DOCUMENT_VERSION: u32 = 1;

/// `ferry plan --format json`.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, schemars::JsonSchema)]
#[schemars(title = "ferry plan (ferry plan --format json)")]
pub struct PlanDocument {
    /// Format version of this document: 1.
    #[schemars(range(min = 1, max = 1))]
    pub version: u32,
    /// The plan: actions in dependency order with their reasons, the
    /// per-image summary and totals.
    pub plan: Plan,
}

impl PlanDocument {
    pub fn new(plan: Plan) -> Self {
        PlanDocument {
            version: PLAN_DOCUMENT_VERSION,
            plan,
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
