//! The JSON Schema of `ferry plan --format json`, committed as
//! `schemas/plan.schema.json`: current with the plan types (`FERRY_BLESS=1`
//! rewrites it), and every golden JSON plan valid against it.

use crate::support::{blessing, golden_path, workspace_root};

#[test]
fn the_committed_plan_schema_is_current_and_golden_plans_pass_it() {
    let path = workspace_root().join("schemas/plan.schema.json");
    let generated = ferry_planner::plan_schema();
    if blessing() {
        std::fs::write(&path, &generated).unwrap();
    }
    let committed = std::fs::read_to_string(&path).unwrap_or_default();
    assert!(
        committed == generated,
        "schemas/plan.schema.json is stale; regenerate with `FERRY_BLESS=1 cargo nextest run --test golden plan_schema`"
    );
    let schema: serde_json::Value = serde_json::from_str(&committed).unwrap();
    let validator = jsonschema::validator_for(&schema).unwrap();

    let mut checked = 0;
    for entry in std::fs::read_dir(golden_path("plans")).unwrap() {
        let file = entry.unwrap().path();
        if file.extension().is_none_or(|extension| extension != "json") {
            continue;
        }
        // The golden files redact keys (they hash the run's port).
        let text = std::fs::read_to_string(&file)
            .unwrap()
            .replace("[KEY]", &"0".repeat(64));
        let plan: serde_json::Value = serde_json::from_str(&text).unwrap();
        let errors: Vec<String> = validator
            .iter_errors(&plan)
            .map(|error| format!("{} at {}", error, error.instance_path))
            .collect();
        assert!(errors.is_empty(), "{}: {errors:#?}", file.display());
        checked += 1;

        // The schema has teeth: a wrong version, an unknown reason, an
        // action without its digest are refused.
        let mut wrong_version = plan.clone();
        wrong_version["version"] = 1.into();
        assert!(!validator.is_valid(&wrong_version));
        let mut unknown_reason = plan.clone();
        unknown_reason["plan"]["actions"][0]["reason"] = "because".into();
        assert!(!validator.is_valid(&unknown_reason));
        let mut no_digest = plan.clone();
        no_digest["plan"]["actions"][0]["action"]
            .as_object_mut()
            .unwrap()
            .remove("digest");
        assert!(!validator.is_valid(&no_digest));
        let mut bad_key = plan.clone();
        bad_key["plan"]["actions"][0]["key"] = "[KEY]".into();
        assert!(!validator.is_valid(&bad_key));
    }
    assert!(checked > 0, "no golden JSON plan found");
}

/// Checks `plan` (a saved `ferry plan --delete` document) against the
/// committed `schemas/delete-plan.schema.json`, and that the schema refuses
/// it with a wrong version or a manifest without its digest.
pub(crate) fn assert_valid_delete_plan(plan: &serde_json::Value) {
    let text = std::fs::read_to_string(workspace_root().join("schemas/delete-plan.schema.json"))
        .expect("schemas/delete-plan.schema.json");
    let schema: serde_json::Value = serde_json::from_str(&text).unwrap();
    let validator = jsonschema::validator_for(&schema).unwrap();
    let errors: Vec<String> = validator
        .iter_errors(plan)
        .map(|error| format!("{} at {}", error, error.instance_path))
        .collect();
    assert!(errors.is_empty(), "{errors:#?}");
    let mut no_digest = plan.clone();
    no_digest["delete"]["manifests"][0]
        .as_object_mut()
        .expect("a manifest to delete")
        .remove("digest");
    assert!(!validator.is_valid(&no_digest));
    let mut no_apply = plan.clone();
    no_apply.as_object_mut().unwrap().remove("apply");
    assert!(!validator.is_valid(&no_apply));
}

#[test]
fn the_committed_delete_plan_schema_is_current() {
    let path = workspace_root().join("schemas/delete-plan.schema.json");
    let generated = ferry_executor::workflow::delete::document::delete_plan_schema();
    if blessing() {
        std::fs::write(&path, &generated).unwrap();
    }
    let committed = std::fs::read_to_string(&path).unwrap_or_default();
    assert!(
        committed == generated,
        "schemas/delete-plan.schema.json is stale; regenerate with `FERRY_BLESS=1 cargo nextest run --test golden plan_schema`"
    );
}
