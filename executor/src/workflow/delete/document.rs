//! The saved delete plan (`ferry plan --delete --out FILE`, `--format
//! json`): `{"version": 2, "delete": <the plan>, "apply": <its inputs>}`.
//! The same version as mirror plans and the same `ferry apply PLANFILE`;
//! the `delete` key tells the two apart. `apply` plans again from exactly
//! the saved inputs and refuses the plan when the result differs. Its JSON
//! Schema is committed as `schemas/delete-plan.schema.json`
//! ([`delete_plan_schema`]).

use ferry_planner::SavedConfiguration;
use serde::{Deserialize, Serialize};

use super::plan::DeletePlan;

/// What `ferry apply` runs a delete plan from.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize, schemars::JsonSchema)]
pub struct DeleteApplyInputs {
    /// The DeleteImageSetConfiguration, by content.
    pub configuration: SavedConfiguration,
    /// `docker://REGISTRY[/PREFIX]`.
    pub destination: String,
    /// `file://DIR` (absolute): the workspace the mirror runs used.
    pub workspace: String,
    /// The cache whose recorded image sets are protected (absolute).
    pub cache_dir: String,
    pub force: bool,
    pub delete_signatures: bool,
    pub trust_state: bool,
    pub destination_tls_verify: bool,
    pub authfile: Option<String>,
    pub retry_times: u32,
    pub retry_delay_milliseconds: u64,
}

/// `ferry plan --delete --format json`.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize, schemars::JsonSchema)]
pub struct DeletePlanDocument {
    pub version: u32,
    pub delete: DeletePlan,
    pub apply: DeleteApplyInputs,
}

impl DeletePlanDocument {
    pub fn new(delete: DeletePlan, apply: DeleteApplyInputs) -> Self {
        DeletePlanDocument {
            version: ferry_planner::PLAN_DOCUMENT_VERSION,
            delete,
            apply,
        }
    }

    /// Whether the plan document `text` is a delete plan.
    pub fn is_delete_plan(text: &str) -> bool {
        serde_json::from_str::<serde_json::Value>(text)
            .is_ok_and(|value| value.get("delete").is_some())
    }
}

/// The JSON Schema of [`DeletePlanDocument`] (draft 7), as committed in
/// `schemas/delete-plan.schema.json`.
pub fn delete_plan_schema() -> String {
    let schema = schemars::r#gen::SchemaSettings::draft07()
        .into_generator()
        .into_root_schema_for::<DeletePlanDocument>();
    let mut text = serde_json::to_string_pretty(&schema).unwrap_or_default();
    text.push('\n');
    text
}
