//! Every conversion of qualification between its proto messages and its domain types or stored
//! rows; api.rs calls these and holds none of its own.

use baton_proto::{
    capture::v1::{ActivityKind, PageKind},
    distribution::v1::HandoffAction,
    qualification::v1::{
        self as pb, AttributeTrigger, Bant, BantItem, BantKey, BehaviourTrigger, FieldCondition,
        InactivityTrigger, LeadStage, NumberRange, OneOf, PageVisitsCondition, Rank, RankCondition,
        RankRule, RankRules, Recompute, RecomputeState, ScoreCap, ScoringModel,
        ScoringModelDefinition, ScoringRule, Stage, StageTransition, field_condition,
        rank_condition, scoring_rule,
    },
};
use baton_shared::{Violations, fields::MAX_NOTE_LEN, time};

use crate::{
    domain::{
        ranks,
        scoring::{self, ModelDefinition},
        stages::{HandoffMove, StageRules},
    },
    error::Error,
    store::{
        StageView,
        entities::{scoring_model, stage_ruleset},
        models,
    },
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

pub(crate) fn bant_item(
    field: &str,
    item: Option<&BantItem>,
    violations: &mut Violations,
) -> Option<(bool, String)> {
    item.map(|i| {
        if i.note.len() > MAX_NOTE_LEN {
            violations.add(
                format!("bant.{field}.note"),
                format!("must be at most {MAX_NOTE_LEN} bytes"),
            );
        }
        (i.confirmed, i.note.trim().to_owned())
    })
}

pub(crate) fn rank_name(rank: i32) -> String {
    Rank::try_from(rank)
        .unwrap_or(Rank::Unspecified)
        .as_str_name()
        .to_owned()
}

/// A proto field condition → the domain's (whose validator reports what is missing).
pub(crate) fn condition_from_proto(f: &FieldCondition) -> ranks::Condition {
    use field_condition::Comparison;
    let mut out = ranks::Condition {
        field: Some(f.field.trim().to_owned()),
        currency: Some(f.currency.clone()).filter(|c| !c.is_empty()),
        ..Default::default()
    };
    match &f.comparison {
        Some(Comparison::Gte(v)) => out.gte = Some(*v),
        Some(Comparison::Lt(v)) => out.lt = Some(*v),
        Some(Comparison::Equals(v)) => out.equals = Some(v.clone()),
        Some(Comparison::OneOf(v)) => out.one_of = Some(v.values.clone()),
        Some(Comparison::Exists(v)) => out.exists = Some(*v),
        Some(Comparison::Range(r)) => out.range = Some([r.gte, r.lt]),
        None => {}
    }
    out
}

pub(crate) fn condition_to_proto(c: &ranks::Condition) -> FieldCondition {
    use field_condition::Comparison;
    let comparison = c
        .gte
        .map(Comparison::Gte)
        .or(c.lt.map(Comparison::Lt))
        .or(c.equals.clone().map(Comparison::Equals))
        .or(c
            .one_of
            .clone()
            .map(|values| Comparison::OneOf(OneOf { values })))
        .or(c.exists.map(Comparison::Exists))
        .or(c
            .range
            .map(|[gte, lt]| Comparison::Range(NumberRange { gte, lt })));
    FieldCondition {
        field: c.field.clone().unwrap_or_default(),
        comparison,
        currency: c.currency.clone().unwrap_or_default(),
    }
}

/// Proto rank rules → domain (validation happens in the domain; unknown values become names the
/// validator rejects).
pub(crate) fn rank_rules_from_proto(rules: &RankRules) -> ranks::RankRules {
    use rank_condition::Condition as Shape;
    ranks::RankRules {
        default_rank: rank_name(rules.default_rank),
        rules: rules
            .rules
            .iter()
            .map(|r| ranks::RankRule {
                key: r.key.trim().to_owned(),
                rank: rank_name(r.rank),
                description: r.description.clone(),
                conditions: r
                    .conditions
                    .iter()
                    .map(|c| match &c.condition {
                        Some(Shape::Field(f)) => condition_from_proto(f),
                        Some(Shape::MonthsSinceFirstContactAtMost(m)) => ranks::Condition {
                            months_since_first_contact_at_most: Some(*m),
                            ..Default::default()
                        },
                        Some(Shape::PageVisits(p)) => ranks::Condition {
                            page_url_contains: Some(p.url_contains.clone()),
                            visits_at_least: Some(p.at_least.max(1)),
                            ..Default::default()
                        },
                        None => ranks::Condition::default(),
                    })
                    .collect(),
            })
            .collect(),
    }
}

pub(crate) fn rank_rules_to_proto(
    row: &crate::store::entities::rank_ruleset::Model,
    rules: &ranks::RankRules,
) -> RankRules {
    use rank_condition::Condition as Shape;
    let rank_of = |name: &str| Rank::from_str_name(name).unwrap_or(Rank::Unspecified) as i32;
    let (version, updated_at) = (row.version, row.updated_at);
    let ts = |t: Option<chrono::DateTime<chrono::Utc>>| t.map(time::to_proto);
    RankRules {
        rerank: (row.rerank_state != RecomputeState::Unspecified as i32).then(|| Recompute {
            state: row.rerank_state,
            leads_total: row.rerank_total,
            leads_done: row.rerank_done,
            started_at: ts(row.rerank_started_at),
            finished_at: ts(row.rerank_finished_at),
        }),
        version,
        default_rank: rank_of(&rules.default_rank),
        rules: rules
            .rules
            .iter()
            .map(|r| RankRule {
                key: r.key.clone(),
                rank: rank_of(&r.rank),
                description: r.description.clone(),
                conditions: r
                    .conditions
                    .iter()
                    .map(|c| {
                        let shape = if let Some(m) = c.months_since_first_contact_at_most {
                            Shape::MonthsSinceFirstContactAtMost(m)
                        } else if let Some(url) = &c.page_url_contains {
                            Shape::PageVisits(PageVisitsCondition {
                                url_contains: url.clone(),
                                at_least: c.visits_at_least.unwrap_or(1),
                            })
                        } else {
                            Shape::Field(condition_to_proto(c))
                        };
                        RankCondition {
                            condition: Some(shape),
                        }
                    })
                    .collect(),
            })
            .collect(),
        updated_at: Some(time::to_proto(updated_at)),
    }
}

pub(crate) fn stage_to_proto(view: StageView) -> LeadStage {
    let bant = view.bant.map(|b| Bant {
        budget: Some(BantItem {
            confirmed: b.budget,
            note: b.budget_note,
        }),
        authority: Some(BantItem {
            confirmed: b.authority,
            note: b.authority_note,
        }),
        need: Some(BantItem {
            confirmed: b.need,
            note: b.need_note,
        }),
        timeframe: Some(BantItem {
            confirmed: b.timeframe,
            note: b.timeframe_note,
        }),
    });
    let bant_complete = bant.as_ref().is_some_and(|b| {
        [&b.budget, &b.authority, &b.need, &b.timeframe]
            .iter()
            .all(|i| i.as_ref().is_some_and(|i| i.confirmed))
    });
    LeadStage {
        lead_id: view.score.lead_id,
        stage: view.score.stage,
        bant,
        bant_complete,
        history: view
            .history
            .into_iter()
            .map(|h| StageTransition {
                from_stage: h.from_stage,
                to_stage: h.to_stage,
                changed_at: Some(time::to_proto(h.changed_at)),
                reason: h.reason,
                changed_by: h.changed_by,
                score: h.score,
            })
            .collect(),
    }
}

pub(crate) const MAX_RULES: usize = 500;
pub(crate) const MAX_KEY_LEN: usize = 100;
pub(crate) const MAX_PATTERN_LEN: usize = 2000;

pub(crate) fn activity_kind_name(
    field: &str,
    raw: i32,
    violations: &mut Violations,
) -> Option<String> {
    match ActivityKind::try_from(raw) {
        Ok(ActivityKind::Unspecified) | Err(_) => {
            violations.add(field, "must be an activity kind");
            None
        }
        Ok(k) => Some(k.as_str_name().to_owned()),
    }
}

/// Proto definition → domain, with every field-level problem (malformed, unknown enum values,
/// conditions naming no field) as INVALID_ARGUMENT. Whether the model may be activated is the
/// domain's validation, at activation.
pub(crate) fn definition_from_proto(
    field: &str,
    def: Option<&ScoringModelDefinition>,
    violations: &mut Violations,
) -> ModelDefinition {
    let Some(def) = def else {
        violations.add(field, "is required");
        return ModelDefinition {
            mql_threshold: 0,
            rules: vec![],
        };
    };
    if def.rules.len() > MAX_RULES {
        violations.add(
            format!("{field}.rules"),
            format!("at most {MAX_RULES} rules"),
        );
    }
    let rules = def
        .rules
        .iter()
        .enumerate()
        .map(|(i, r)| {
            let at = format!("{field}.rules[{i}]");
            let key = r.key.trim().to_owned();
            if key.is_empty() {
                violations.add(format!("{at}.key"), "is required");
            } else if key.len() > MAX_KEY_LEN {
                violations.add(
                    format!("{at}.key"),
                    format!("must be at most {MAX_KEY_LEN} bytes"),
                );
            }
            if r.description.len() > MAX_NOTE_LEN {
                violations.add(
                    format!("{at}.description"),
                    format!("must be at most {MAX_NOTE_LEN} bytes"),
                );
            }
            let mut out = scoring::RuleDefinition {
                key,
                description: r.description.trim().to_owned(),
                points: r.points,
                cap: r.cap.as_ref().map(|c| scoring::Cap {
                    max_points: c.max_points,
                    period_days: c.period_days,
                }),
                expires_after_days: Some(r.expires_after_days).filter(|d| *d > 0),
                ..Default::default()
            };
            match &r.trigger {
                None => violations.add(
                    format!("{at}.trigger"),
                    "set one of attribute, behaviour or inactivity",
                ),
                Some(scoring_rule::Trigger::Attribute(a)) => {
                    for (j, c) in a.conditions.iter().enumerate() {
                        if c.field.trim().is_empty() {
                            violations.add(
                                format!("{at}.attribute.conditions[{j}].field"),
                                "names no field",
                            );
                        }
                    }
                    out.conditions = Some(a.conditions.iter().map(condition_from_proto).collect());
                }
                Some(scoring_rule::Trigger::Behaviour(b)) => {
                    out.activity_kind = activity_kind_name(
                        &format!("{at}.behaviour.activity_kind"),
                        b.activity_kind,
                        violations,
                    );
                    match PageKind::try_from(b.page_kind) {
                        Err(_) => violations
                            .add(format!("{at}.behaviour.page_kind"), "must be a page kind"),
                        Ok(PageKind::Unspecified) => {}
                        Ok(k) => out.page_kind = Some(k.as_str_name().to_owned()),
                    }
                    let pattern = b.url_pattern.trim();
                    if pattern.len() > MAX_PATTERN_LEN {
                        violations.add(
                            format!("{at}.behaviour.url_pattern"),
                            format!("must be at most {MAX_PATTERN_LEN} bytes"),
                        );
                    }
                    out.url_pattern = Some(pattern.to_owned()).filter(|p| !p.is_empty());
                }
                Some(scoring_rule::Trigger::Inactivity(n)) => {
                    out.activity_kind = activity_kind_name(
                        &format!("{at}.inactivity.activity_kind"),
                        n.activity_kind,
                        violations,
                    );
                    out.inactive_days = Some(n.days);
                }
            }
            out
        })
        .collect();
    ModelDefinition {
        mql_threshold: def.mql_threshold,
        rules,
    }
}

pub(crate) fn definition_to_proto(def: &ModelDefinition) -> ScoringModelDefinition {
    let kind = |name: &Option<String>| {
        name.as_deref()
            .and_then(ActivityKind::from_str_name)
            .unwrap_or(ActivityKind::Unspecified) as i32
    };
    ScoringModelDefinition {
        mql_threshold: def.mql_threshold,
        rules: def
            .rules
            .iter()
            .map(|r| ScoringRule {
                key: r.key.clone(),
                description: r.description.clone(),
                points: r.points,
                trigger: Some(match (&r.conditions, r.inactive_days) {
                    (Some(conditions), _) => scoring_rule::Trigger::Attribute(AttributeTrigger {
                        conditions: conditions.iter().map(condition_to_proto).collect(),
                    }),
                    (None, Some(days)) => scoring_rule::Trigger::Inactivity(InactivityTrigger {
                        activity_kind: kind(&r.activity_kind),
                        days,
                    }),
                    (None, None) => scoring_rule::Trigger::Behaviour(BehaviourTrigger {
                        activity_kind: kind(&r.activity_kind),
                        page_kind: r
                            .page_kind
                            .as_deref()
                            .and_then(PageKind::from_str_name)
                            .unwrap_or(PageKind::Unspecified)
                            as i32,
                        url_pattern: r.url_pattern.clone().unwrap_or_default(),
                    }),
                }),
                cap: r.cap.map(|c| ScoreCap {
                    max_points: c.max_points,
                    period_days: c.period_days,
                }),
                expires_after_days: r.expires_after_days.unwrap_or(0),
            })
            .collect(),
    }
}

pub(crate) fn model_to_proto(row: scoring_model::Model) -> ScoringModel {
    let definition = models::definition_of(&row)
        .ok()
        .map(|d| definition_to_proto(&d));
    let ts = |t: Option<chrono::DateTime<chrono::Utc>>| t.map(time::to_proto);
    ScoringModel {
        model_id: row.model_id,
        version: row.version,
        status: row.status,
        definition,
        created_at: Some(time::to_proto(row.created_at)),
        created_by: row.created_by,
        activated_at: ts(row.activated_at),
        activated_by: row.activated_by,
        recompute: (row.recompute_state != RecomputeState::Unspecified as i32).then(|| Recompute {
            state: row.recompute_state,
            leads_total: row.recompute_total,
            leads_done: row.recompute_done,
            started_at: ts(row.recompute_started_at),
            finished_at: ts(row.recompute_finished_at),
        }),
    }
}

/// A simulated period, with the win rate of its MQLs' outcomes (unset when none was decided).
pub fn period_to_proto(
    p: &crate::store::models::PeriodResult,
) -> baton_proto::qualification::v1::SimulatedPeriod {
    let decided = p.won + p.lost;
    baton_proto::qualification::v1::SimulatedPeriod {
        period_start: Some(time::to_proto(p.start)),
        period_end: Some(time::to_proto(p.end)),
        mqls: p.mqls,
        reached_sql: p.reached_sql,
        reached_opportunity: p.reached_opportunity,
        reached_customer: p.reached_customer,
        won: p.won,
        lost: p.lost,
        win_rate_pct: (decided > 0).then(|| p.won as f64 * 100.0 / decided as f64),
        won_amount: p
            .won_amount
            .iter()
            .map(
                |(currency_code, amount_minor)| baton_proto::capture::v1::Money {
                    currency_code: currency_code.clone(),
                    amount_minor: *amount_minor,
                },
            )
            .collect(),
    }
}
