//! Every conversion between distribution's stored rows or domain types and its proto messages.

use baton_proto::{
    capture::v1::{ActivityKind, Money},
    distribution::v1::{self as pb, Handoff, HandoffBant, HandoffStep},
};
use baton_shared::{Violations, fields::MAX_ID_LEN, time};

use std::collections::HashMap;

use crate::error::Error;
use crate::{
    domain::{
        handoffs,
        reps::{RepAttributes, RepRouting},
        routing::{self as rules, Considered},
        touches::TouchRules,
        weighting::{self, Basis, Guardrails, Origin},
    },
    store::entities::{
        assignment, handoff, handoff_settings, handoff_step, rep, rep_weight_change, team,
        team_weighting, touch_ruleset,
    },
};

pub fn rep_to_proto(rep: &rep::Model) -> pb::Rep {
    let a = rep.attributes();
    pb::Rep {
        rep_id: rep.rep_id.clone(),
        name: rep.name.clone(),
        email: rep.email.clone(),
        active: rep.active,
        created_at: Some(time::to_proto(rep.created_at)),
        routing: Some(pb::RepRouting {
            team_id: rep.team_id.clone(),
            territories: a.territories,
            industries: a.industries,
            seniority: a.seniority,
            capacity: rep.capacity,
            weight: Some(rep.weight),
            time_zone: a.time_zone,
            work_start_hour: a.work_start_hour,
            work_end_hour: a.work_end_hour,
            out_of_office: a
                .out_of_office
                .iter()
                .map(|(from, to)| pb::TimeRange {
                    start_time: Some(time::to_proto(*from)),
                    end_time: Some(time::to_proto(*to)),
                })
                .collect(),
        }),
        open_leads: rep.open_leads,
    }
}

pub fn assignment_to_proto(a: &assignment::Model) -> pb::Assignment {
    pb::Assignment {
        assignment_id: a.assignment_id.clone(),
        lead_id: a.lead_id.clone(),
        rep_id: a.rep_id.clone().unwrap_or_default(),
        state: a.state,
        method: a.method.clone(),
        created_at: Some(time::to_proto(a.created_at)),
        assigned_at: time::to_proto_opt(a.assigned_at),
        team_id: a.team_id.clone(),
        rule_key: a.rule_key.clone(),
    }
}

pub fn team_to_proto(t: &team::Model) -> pb::Team {
    pb::Team {
        team_id: t.team_id.clone(),
        name: t.name.clone(),
        function: t.function,
        method: t.method,
        created_at: Some(time::to_proto(t.created_at)),
    }
}

/// A candidate of a decision, with the weight change its weight came from (in `origins`).
pub fn considered_to_proto(
    c: &Considered,
    origins: &HashMap<i64, rep_weight_change::Model>,
) -> pb::CandidateConsidered {
    pb::CandidateConsidered {
        rep_id: c.rep_id.clone(),
        skipped_because: c.skipped.map(|s| s.reason().to_owned()).unwrap_or_default(),
        counter: c.counter,
        open_leads: c.open_leads,
        capacity: c.capacity as i32,
        weight: c.weight,
        weight_origin: origins.get(&c.weight_change).map(origin_to_proto),
    }
}

/// Where a performance factor came from, as its change row keeps it.
pub fn origin_to_proto(change: &rep_weight_change::Model) -> pb::WeightOrigin {
    let Ok(o) = serde_json::from_str::<Origin>(&change.origin) else {
        return pb::WeightOrigin {
            change_id: change.change_id,
            factor: change.new_factor,
            ..Default::default()
        };
    };
    pb::WeightOrigin {
        change_id: change.change_id,
        reason: o.reason.code().to_owned(),
        detail: o.detail,
        won: o.rep.0,
        decided: o.rep.1,
        team_won: o.team.0,
        team_decided: o.team.1,
        raw_factor: o.raw_factor,
        factor: o.factor,
        weighting_version: o.weighting_version,
        computed_at: Some(time::to_proto(o.computed_at)),
    }
}

/// The event of one factor move; `own_weight` is the rep's own weight.
pub fn weight_change_to_proto(
    change: &rep_weight_change::Model,
    own_weight: f64,
) -> pb::RepWeightChanged {
    pb::RepWeightChanged {
        team_id: change.team_id.clone(),
        rep_id: change.rep_id.clone(),
        old_factor: change.old_factor,
        new_factor: change.new_factor,
        old_weight: own_weight * change.old_factor,
        new_weight: own_weight * change.new_factor,
        origin: Some(origin_to_proto(change)),
        changed_by: change.changed_by.clone(),
    }
}

pub fn guardrails_to_proto(g: &Guardrails) -> pb::WeightGuardrails {
    pb::WeightGuardrails {
        window_days: g.window_days,
        min_decided: g.min_decided,
        min_weight: Some(g.min_weight),
        max_weight: Some(g.max_weight),
        max_change_per_period: Some(g.max_change),
        period_days: g.period_days,
    }
}

/// Guardrails from a request, unset fields at their defaults; every bad field is added to `v`.
pub fn guardrails_from_proto(raw: Option<&pb::WeightGuardrails>, v: &mut Violations) -> Guardrails {
    let d = Guardrails::default();
    let raw = raw.cloned().unwrap_or_default();
    let or = |value: i32, default: i32| if value == 0 { default } else { value };
    let g = Guardrails {
        window_days: or(raw.window_days, d.window_days),
        min_decided: or(raw.min_decided, d.min_decided),
        min_weight: raw.min_weight.unwrap_or(d.min_weight),
        max_weight: raw.max_weight.unwrap_or(d.max_weight),
        max_change: raw.max_change_per_period.unwrap_or(d.max_change),
        period_days: or(raw.period_days, d.period_days),
    };
    for (field, problem) in weighting::validate(&g) {
        v.add(field, problem);
    }
    g
}

pub fn basis_of(value: i32) -> Basis {
    match pb::WeightBasis::try_from(value) {
        Ok(pb::WeightBasis::Closed) => Basis::Closed,
        _ => Basis::HandedOff,
    }
}

pub fn basis_value(basis: Basis) -> i32 {
    match basis {
        Basis::HandedOff => pb::WeightBasis::HandedOff as i32,
        Basis::Closed => pb::WeightBasis::Closed as i32,
    }
}

/// A team's weighting: its row (None until first set), its reps in queue order, and the changes
/// their factors came from, by id.
pub fn weighting_to_proto(
    team_id: &str,
    row: Option<&team_weighting::Model>,
    reps: &[rep::Model],
    origins: &HashMap<i64, rep_weight_change::Model>,
) -> pb::TeamWeighting {
    let g = row.map(|r| r.guardrails()).unwrap_or_default();
    let reps = reps
        .iter()
        .map(|r| {
            let factor = r.performance_factor();
            let ours = r.weighted_by_team();
            pb::RepWeight {
                rep_id: r.rep_id.clone(),
                own_weight: r.weight,
                factor,
                weight: r.weight * factor,
                origin: origins
                    .get(&r.perf_change_id)
                    .filter(|_| ours)
                    .map(origin_to_proto),
                period_started_at: time::to_proto_opt(r.perf_period_start.filter(|_| ours)),
                period_start_factor: if ours { r.perf_period_factor } else { 1.0 },
            }
        })
        .collect();
    pb::TeamWeighting {
        team_id: team_id.to_owned(),
        enabled: row.is_some_and(|r| r.enabled),
        basis: row.map_or(pb::WeightBasis::HandedOff as i32, |r| {
            basis_value(basis_of(r.basis))
        }),
        guardrails: Some(guardrails_to_proto(&g)),
        version: row.map_or(0, |r| r.version),
        updated_at: row.map(|r| time::to_proto(r.updated_at)),
        updated_by: row.map(|r| r.updated_by.clone()).unwrap_or_default(),
        reason: row.map(|r| r.reason.clone()).unwrap_or_default(),
        reps,
    }
}

pub fn handoff_settings_to_proto(row: &handoff_settings::Model) -> pb::HandoffSettings {
    pb::HandoffSettings {
        version: row.version,
        allow_uncontracted_handoffs: row.allow_uncontracted,
        updated_at: Some(time::to_proto(row.updated_at)),
    }
}

pub fn touch_rules_to_proto(row: &touch_ruleset::Model, rules: &TouchRules) -> pb::TouchRules {
    pb::TouchRules {
        version: row.version,
        touch_kinds: rules.touch_kinds.iter().map(|k| *k as i32).collect(),
        updated_at: Some(time::to_proto(row.updated_at)),
    }
}

/// INVALID_ARGUMENT for a missing rule set or a number that is no activity kind; the rules
/// themselves are validated by the domain.
pub fn touch_rules_from_proto(raw: Option<&pb::TouchRules>) -> Result<TouchRules, Error> {
    let Some(raw) = raw else {
        return Err(Error::invalid("rules", "is required"));
    };
    let mut violations = Violations::new();
    let mut touch_kinds = Vec::with_capacity(raw.touch_kinds.len());
    for (i, value) in raw.touch_kinds.iter().enumerate() {
        match ActivityKind::try_from(*value) {
            Ok(kind) => touch_kinds.push(kind),
            Err(_) => violations.add(
                format!("rules.touch_kinds[{i}]"),
                format!("{value} is no activity kind"),
            ),
        }
    }
    violations.into_result()?;
    Ok(TouchRules { touch_kinds })
}

/// Proto routing attributes → the domain's, with every field-level problem.
pub fn routing_from_proto(raw: Option<&pb::RepRouting>, v: &mut Violations) -> RepRouting {
    let Some(r) = raw else {
        return RepRouting::default();
    };
    let weight = r.weight.unwrap_or(1.0);
    if !weight.is_finite() || weight < 0.0 {
        v.add("routing.weight", "must be a number >= 0");
    }
    if r.capacity < 0 {
        v.add("routing.capacity", "must be >= 0 (0 = no limit)");
    }
    for (field, hour) in [
        ("routing.work_start_hour", r.work_start_hour),
        ("routing.work_end_hour", r.work_end_hour),
    ] {
        if !(0..=24).contains(&hour) {
            v.add(field, "must be an hour between 0 and 24");
        }
    }
    if !r.time_zone.trim().is_empty() && r.time_zone.trim().parse::<chrono_tz::Tz>().is_err() {
        v.add(
            "routing.time_zone",
            "must be an IANA time zone, e.g. Asia/Tokyo",
        );
    }
    let mut out_of_office = Vec::new();
    for (i, range) in r.out_of_office.iter().enumerate() {
        let from = range.start_time.as_ref().and_then(time::from_caller);
        let to = range.end_time.as_ref().and_then(time::from_caller);
        match (from, to) {
            (Some(f), Some(t)) if f < t => out_of_office.push((f, t)),
            _ => v.add(
                format!("routing.out_of_office[{i}]"),
                "needs start_time and end_time from 2000-01-01 to 2100-01-01 (UTC), start_time before end_time",
            ),
        }
    }
    RepRouting {
        team_id: v.optional("routing.team_id", &r.team_id, MAX_ID_LEN),
        capacity: r.capacity.max(0),
        weight: if weight.is_finite() {
            weight.max(0.0)
        } else {
            1.0
        },
        attributes: RepAttributes {
            territories: r.territories.clone(),
            industries: r.industries.clone(),
            seniority: r.seniority.trim().to_owned(),
            time_zone: r.time_zone.trim().to_owned(),
            work_start_hour: r.work_start_hour,
            work_end_hour: r.work_end_hour,
            out_of_office,
        },
    }
}

pub fn rules_from_proto(raw: &[pb::RoutingRule]) -> rules::Rules {
    rules::Rules {
        rules: raw
            .iter()
            .map(|r| rules::Rule {
                key: r.key.trim().to_owned(),
                description: r.description.clone(),
                conditions: r
                    .conditions
                    .iter()
                    .map(|c| rules::Condition {
                        field: c.field.trim().to_owned(),
                        any_of: c.any_of.clone(),
                        gte: c.gte,
                        lt: c.lt,
                    })
                    .collect(),
                to_team: r.to_team.trim().to_owned(),
                to_rep: r.to_rep.trim().to_owned(),
                match_territory: r.match_territory,
                match_industry: r.match_industry,
            })
            .collect(),
    }
}

pub fn rules_to_proto(
    version: i32,
    rules: &rules::Rules,
    updated_at: Option<chrono::DateTime<chrono::Utc>>,
) -> pb::RoutingRules {
    pb::RoutingRules {
        version,
        rules: rules
            .rules
            .iter()
            .map(|r| pb::RoutingRule {
                key: r.key.clone(),
                description: r.description.clone(),
                conditions: r
                    .conditions
                    .iter()
                    .map(|c| pb::RoutingCondition {
                        field: c.field.clone(),
                        any_of: c.any_of.clone(),
                        gte: c.gte,
                        lt: c.lt,
                    })
                    .collect(),
                to_team: r.to_team.clone(),
                to_rep: r.to_rep.clone(),
                match_territory: r.match_territory,
                match_industry: r.match_industry,
            })
            .collect(),
        updated_at: updated_at.map(time::to_proto),
    }
}

pub fn handoff_to_proto(h: &handoff::Model, steps: &[handoff_step::Model]) -> Handoff {
    Handoff {
        handoff_id: h.handoff_id.clone(),
        lead_id: h.lead_id.clone(),
        is_team: h.is_team.clone(),
        fs_team: h.fs_team.clone(),
        fs_rep_id: h.fs_rep_id.clone(),
        meeting_at: h.meeting_at.map(time::to_proto),
        bant: Some(HandoffBant {
            budget: h.bant_budget,
            authority: h.bant_authority,
            need: h.bant_need,
            timeframe: h.bant_timeframe,
        }),
        notes: h.notes.clone(),
        handed_off_by: h.handed_off_by.clone(),
        state: h.state,
        contract_id: h.contract_id.clone(),
        contract_version: h.contract_version,
        decision_due_at: (!h.contract_id.is_empty()).then(|| time::to_proto(h.decision_due_at)),
        rejection_reason: h.rejection_reason.clone(),
        rejected_lead_route: h.rejected_lead_route.clone(),
        amount: h.amount_currency.clone().zip(h.amount_minor).map(
            |(currency_code, amount_minor)| Money {
                currency_code,
                amount_minor,
            },
        ),
        monthly_recurring_revenue: h.mrr_currency.clone().zip(h.mrr_minor).map(
            |(currency_code, amount_minor)| Money {
                currency_code,
                amount_minor,
            },
        ),
        closed_at: h.closed_at.map(time::to_proto),
        lost_reason: h.lost_reason.clone(),
        steps: steps.iter().map(step_to_proto).collect(),
        created_at: Some(time::to_proto(h.created_at)),
        score_at_handoff: h.score_at_handoff,
        rank_at_handoff: h.rank_at_handoff.unwrap_or_default(),
        is_rep_id: h.is_rep_id.clone(),
    }
}

pub fn step_to_proto(s: &handoff_step::Model) -> HandoffStep {
    HandoffStep {
        kind: handoffs::action_kind(&s.action) as i32,
        action: s.action.clone(),
        actor: s.actor.clone(),
        note: s.note.clone(),
        at: Some(time::to_proto(s.at)),
    }
}
