//! What the planner's test files share.

use ferry_planner::{Action, Plan, StateSnapshot};

/// Records every planned action as done, as the executor does (an
/// image recorded in a delivery is kept as a tag without a name).
pub fn apply(plan: &Plan, state: &mut StateSnapshot) {
    for planned in &plan.actions {
        state.done.insert(planned.key);
        state
            .done
            .extend(planned.action.implied_link().map(|link| link.key()));
        match &planned.action {
            Action::Tag {
                repository,
                tag,
                digest,
            } => {
                state
                    .tags
                    .insert((repository.clone(), tag.clone()), digest.clone());
            }
            Action::RecordImage { name, digest } => {
                state
                    .tags
                    .insert((name.clone(), String::new()), digest.clone());
            }
            _ => {}
        }
    }
}
