//! Conversions between qualification's domain types and its proto messages (new conversions land
//! here; api.rs still holds the older ones).

use baton_proto::{
    capture::v1::ActivityKind,
    distribution::v1::HandoffAction,
    qualification::v1::{self as pb, BantKey, Stage},
};
use baton_shared::{Violations, time};

use crate::error::Error;
use crate::{
    domain::stages::{HandoffMove, StageRules},
    store::entities::stage_ruleset,
};

pub fn stage_rules_to_proto(row: &stage_ruleset::Model, rules: &StageRules) -> pb::StageRules {
    pb::StageRules {
        version: row.version,
        iql_activity_kinds: rules.iql_activity_kinds.iter().map(|k| *k as i32).collect(),
        sql_bant_items: rules.sql_bant_items.iter().map(|b| *b as i32).collect(),
        handoff_moves: rules
            .handoff_moves
            .iter()
            .map(|m| pb::HandoffStageMove {
                step: m.step as i32,
                to_stage: m.to as i32,
                only_if_rejected_to: m.only_if_rejected_to.clone(),
            })
            .collect(),
        updated_at: Some(time::to_proto(row.updated_at)),
    }
}

/// INVALID_ARGUMENT for a missing rule set or numbers that name no enum value (each with its
/// field); the rules themselves are validated by the domain.
pub fn stage_rules_from_proto(raw: Option<&pb::StageRules>) -> Result<StageRules, Error> {
    let Some(raw) = raw else {
        return Err(Error::invalid("rules", "is required"));
    };
    let mut v = Violations::new();
    let mut enum_of = |field: String, value: i32, known: bool| {
        if !known {
            v.add(field, format!("{value} is not a known value"));
        }
    };
    let mut rules = StageRules {
        iql_activity_kinds: Vec::new(),
        sql_bant_items: Vec::new(),
        handoff_moves: Vec::new(),
    };
    for (i, value) in raw.iql_activity_kinds.iter().enumerate() {
        let kind = ActivityKind::try_from(*value);
        enum_of(
            format!("rules.iql_activity_kinds[{i}]"),
            *value,
            kind.is_ok(),
        );
        rules.iql_activity_kinds.extend(kind);
    }
    for (i, value) in raw.sql_bant_items.iter().enumerate() {
        let item = BantKey::try_from(*value);
        enum_of(format!("rules.sql_bant_items[{i}]"), *value, item.is_ok());
        rules.sql_bant_items.extend(item);
    }
    for (i, m) in raw.handoff_moves.iter().enumerate() {
        let step = HandoffAction::try_from(m.step);
        let to = Stage::try_from(m.to_stage);
        enum_of(
            format!("rules.handoff_moves[{i}].step"),
            m.step,
            step.is_ok(),
        );
        enum_of(
            format!("rules.handoff_moves[{i}].to_stage"),
            m.to_stage,
            to.is_ok(),
        );
        if let (Ok(step), Ok(to)) = (step, to) {
            rules.handoff_moves.push(HandoffMove {
                step,
                to,
                only_if_rejected_to: m.only_if_rejected_to.trim().to_owned(),
            });
        }
    }
    v.into_result()?;
    Ok(rules)
}
