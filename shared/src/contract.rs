//! Shared-KPI contracts between inside sales and field sales: the rules for valid terms and the
//! handoff gate. Owned by reporting (which stores and approves contracts) and applied by
//! distribution (which judges every handoff against its replica of the active version), so both
//! read the same rules from here. Pure functions: no I/O.

use std::collections::HashSet;

use baton_proto::{
    qualification::v1::Rank,
    reporting::v1::{ContractTerms, HandoffGate, RejectedLeadRoute},
};

use crate::time;

/// Handoff fields a gate may require.
pub const GATE_FIELDS: [&str; 3] = ["meeting_at", "notes", "fs_rep_id"];
/// BANT items a gate may require.
pub const BANT_ITEMS: [&str; 4] = ["budget", "authority", "need", "timeframe"];

/// The longest SLAs a contract may set: a 30-day response, a 90-day decision.
pub const MAX_RESPONSE_SLA_MINUTES: u32 = 30 * 24 * 60;
pub const MAX_DECISION_SLA_HOURS: u32 = 90 * 24;

/// One problem of a contract's terms: the term at fault and what is wrong.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Problem {
    pub field: String,
    pub description: String,
}

fn problem(problems: &mut Vec<Problem>, field: impl Into<String>, description: impl Into<String>) {
    problems.push(Problem {
        field: field.into(),
        description: description.into(),
    });
}

/// Whether `terms` are in force at `at`: inside `[period_start, period_end)`. Outside it a
/// contract neither gates handoffs nor starts SLAs. A missing bound does not limit.
pub fn in_force(terms: &ContractTerms, at: chrono::DateTime<chrono::Utc>) -> bool {
    let start = terms.period_start.as_ref().and_then(time::from_proto);
    let end = terms.period_end.as_ref().and_then(time::from_proto);
    start.is_none_or(|s| s <= at) && end.is_none_or(|e| at < e)
}

/// The time zone a contract's periods are counted in (UTC when unset or unknown; an unknown one
/// is a validation problem).
pub fn time_zone(terms: &ContractTerms) -> chrono_tz::Tz {
    terms.time_zone.parse().unwrap_or(chrono_tz::UTC)
}

/// Every problem that keeps `terms` from being approved.
pub fn validate(terms: &ContractTerms) -> Vec<Problem> {
    let mut p = Vec::new();
    validate_parties(terms, &mut p);
    if !terms.time_zone.is_empty() && terms.time_zone.parse::<chrono_tz::Tz>().is_err() {
        problem(
            &mut p,
            "time_zone",
            "is not an IANA time zone (e.g. Asia/Tokyo)",
        );
    }
    validate_gate(terms.gate.as_ref(), &mut p);
    validate_rejections(terms, &mut p);
    validate_slas(terms, &mut p);
    validate_targets(terms, &mut p);
    p
}

/// The two teams, the two owners (distinct people: both sides approve) and the period.
fn validate_parties(terms: &ContractTerms, p: &mut Vec<Problem>) {
    for (field, value) in [
        ("is_team", &terms.is_team),
        ("fs_team", &terms.fs_team),
        ("is_owner", &terms.is_owner),
        ("fs_owner", &terms.fs_owner),
    ] {
        if value.trim().is_empty() {
            problem(p, field, "is required");
        }
    }
    if !terms.is_team.trim().is_empty() && terms.is_team.trim() == terms.fs_team.trim() {
        problem(p, "fs_team", "must differ from is_team");
    }
    if !terms.is_owner.trim().is_empty()
        && terms
            .is_owner
            .trim()
            .eq_ignore_ascii_case(terms.fs_owner.trim())
    {
        problem(
            p,
            "fs_owner",
            "must be another person than is_owner: both sides approve",
        );
    }
    let start = terms.period_start.as_ref().and_then(time::from_proto);
    let end = terms.period_end.as_ref().and_then(time::from_proto);
    match (start, end) {
        (None, _) => problem(p, "period_start", "is required"),
        (_, None) => problem(p, "period_end", "is required"),
        (Some(s), Some(e)) if s >= e => problem(p, "period_end", "must be after period_start"),
        _ => {}
    }
}

/// The gate names only known fields, BANT items and ranks.
fn validate_gate(gate: Option<&HandoffGate>, p: &mut Vec<Problem>) {
    match gate {
        None => problem(p, "gate", "is required"),
        Some(gate) => {
            for (i, f) in gate.required_fields.iter().enumerate() {
                if !GATE_FIELDS.contains(&f.as_str()) {
                    problem(
                        p,
                        format!("gate.required_fields[{i}]"),
                        format!("unknown field {f:?}; one of {GATE_FIELDS:?}"),
                    );
                }
            }
            for (i, b) in gate.bant_items.iter().enumerate() {
                if !BANT_ITEMS.contains(&b.as_str()) {
                    problem(
                        p,
                        format!("gate.bant_items[{i}]"),
                        format!("unknown BANT item {b:?}; one of {BANT_ITEMS:?}"),
                    );
                }
            }
            for (i, r) in gate.allowed_ranks.iter().enumerate() {
                if Rank::from_str_name(r).is_none_or(|r| r == Rank::Unspecified) {
                    problem(
                        p,
                        format!("gate.allowed_ranks[{i}]"),
                        format!("unknown rank {r:?}"),
                    );
                }
            }
        }
    }
}

/// At least one rejection reason, codes unique, and where a rejected lead goes.
fn validate_rejections(terms: &ContractTerms, p: &mut Vec<Problem>) {
    if terms.rejection_reasons.is_empty() {
        problem(
            p,
            "rejection_reasons",
            "at least one: FS must name a reason on every rejection",
        );
    }
    let mut codes = HashSet::new();
    for (i, r) in terms.rejection_reasons.iter().enumerate() {
        if r.code.trim().is_empty() {
            problem(p, format!("rejection_reasons[{i}].code"), "is required");
        } else if !codes.insert(r.code.trim()) {
            problem(
                p,
                format!("rejection_reasons[{i}].code"),
                format!("{} is listed twice", r.code),
            );
        }
    }
    if RejectedLeadRoute::try_from(terms.rejected_lead_route)
        .is_ok_and(|r| r == RejectedLeadRoute::Unspecified)
        || RejectedLeadRoute::try_from(terms.rejected_lead_route).is_err()
    {
        problem(
            p,
            "rejected_lead_route",
            "must say where a rejected lead goes (inside sales or nurture)",
        );
    }
}

/// Both SLAs within their bounds.
fn validate_slas(terms: &ContractTerms, p: &mut Vec<Problem>) {
    if !(1..=MAX_RESPONSE_SLA_MINUTES).contains(&terms.response_sla_minutes) {
        problem(
            p,
            "response_sla_minutes",
            format!("must be between 1 and {MAX_RESPONSE_SLA_MINUTES}"),
        );
    }
    if !(1..=MAX_DECISION_SLA_HOURS).contains(&terms.decision_sla_hours) {
        problem(
            p,
            "decision_sla_hours",
            format!("must be between 1 and {MAX_DECISION_SLA_HOURS}"),
        );
    }
    if terms.dispute_ruling_hours > MAX_DECISION_SLA_HOURS {
        problem(
            p,
            "dispute_ruling_hours",
            format!("must be at most {MAX_DECISION_SLA_HOURS}"),
        );
    }
    let escalates = terms.dispute_deadline_action
        == baton_proto::reporting::v1::DisputeDeadlineAction::Escalate as i32;
    if escalates && terms.escalation_owner.trim().is_empty() {
        problem(
            p,
            "escalation_owner",
            "is required when the dispute deadline escalates",
        );
    }
    if baton_proto::reporting::v1::DisputeDeadlineAction::try_from(terms.dispute_deadline_action)
        .is_err()
    {
        problem(p, "dispute_deadline_action", "is not a known action");
    }
}

/// Both sides' targets: counts positive, rates percentages, money with its currency.
fn validate_targets(terms: &ContractTerms, p: &mut Vec<Problem>) {
    match &terms.is_targets {
        None => problem(p, "is_targets", "is required"),
        Some(t) => {
            if t.handoffs_per_period <= 0 {
                problem(p, "is_targets.handoffs_per_period", "must be > 0");
            }
            for (f, v) in [
                ("is_targets.accepted_rate_pct", t.accepted_rate_pct),
                ("is_targets.win_rate_pct", t.win_rate_pct),
            ] {
                if !(0.0..=100.0).contains(&v) {
                    problem(p, f, "must be a percentage (0-100)");
                }
            }
            if t.won_amount_minor < 0 {
                problem(p, "is_targets.won_amount_minor", "must not be negative");
            }
            if t.valid_leads_per_period < 0 {
                problem(
                    p,
                    "is_targets.valid_leads_per_period",
                    "must not be negative",
                );
            }
            if t.won_amount_minor > 0 && t.currency_code.len() != 3 {
                problem(
                    p,
                    "is_targets.currency_code",
                    "an ISO 4217 code is required with an amount",
                );
            }
        }
    }
    match &terms.fs_targets {
        None => problem(p, "fs_targets", "is required"),
        Some(t) => {
            for (f, v) in [
                (
                    "fs_targets.decision_sla_adherence_pct",
                    t.decision_sla_adherence_pct,
                ),
                ("fs_targets.win_rate_pct", t.win_rate_pct),
                (
                    "fs_targets.dispute_ruling_adherence_pct",
                    t.dispute_ruling_adherence_pct,
                ),
            ] {
                if !(0.0..=100.0).contains(&v) {
                    problem(p, f, "must be a percentage (0-100)");
                }
            }
        }
    }
}

/// What the gate looks at: the handoff as IS submitted it, and what distribution knows of the lead.
#[derive(Debug, Clone, Default, PartialEq)]
pub struct HandoffFacts {
    pub has_meeting: bool,
    pub has_notes: bool,
    pub has_fs_rep: bool,
    /// Confirmed BANT items by name ("budget", ...).
    pub bant_confirmed: Vec<&'static str>,
    /// The lead's score and rank as last heard from qualification (None = never heard).
    pub score: Option<i64>,
    pub rank: Option<Rank>,
}

/// One failing gate item: what (e.g. "bant.budget") and why.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct GateFailure {
    pub item: String,
    pub description: String,
}

/// Every gate item the handoff fails (empty = it passes).
pub fn check_gate(gate: &HandoffGate, facts: &HandoffFacts) -> Vec<GateFailure> {
    let mut failures = Vec::new();
    let mut fail =
        |item: String, description: String| failures.push(GateFailure { item, description });
    for f in &gate.required_fields {
        let present = match f.as_str() {
            "meeting_at" => facts.has_meeting,
            "notes" => facts.has_notes,
            "fs_rep_id" => facts.has_fs_rep,
            _ => true,
        };
        if !present {
            fail(f.clone(), format!("the contract requires {f}"));
        }
    }
    for b in &gate.bant_items {
        if !facts.bant_confirmed.contains(&b.as_str()) {
            fail(
                format!("bant.{b}"),
                format!("the contract requires {b} to be confirmed"),
            );
        }
    }
    if let Some(min) = gate.min_score {
        match facts.score {
            Some(s) if s >= min => {}
            Some(s) => fail(
                "min_score".into(),
                format!("lead score {s} is below the contract's minimum {min}"),
            ),
            None => fail(
                "min_score".into(),
                format!("the lead has no score yet; the contract's minimum is {min}"),
            ),
        }
    }
    if !gate.allowed_ranks.is_empty() {
        let rank = facts.rank.map(|r| r.as_str_name());
        if !rank.is_some_and(|r| gate.allowed_ranks.iter().any(|a| a == r)) {
            fail(
                "rank".into(),
                format!(
                    "lead rank {} is not one of {:?}",
                    rank.unwrap_or("unknown"),
                    gate.allowed_ranks
                ),
            );
        }
    }
    failures
}

/// A complete, valid contract between two teams: a gate asking for a meeting and confirmed budget
/// and need, two rejection reasons, rejected leads recycled to nurture, a 30-minute response SLA,
/// a 48-hour decision SLA, and joint targets, for the half year around now. For tests and examples;
/// adjust with struct update syntax.
#[cfg(any(test, feature = "testing"))]
pub fn example_terms(
    is_team: &str,
    fs_team: &str,
    is_owner: &str,
    fs_owner: &str,
) -> ContractTerms {
    use baton_proto::reporting::v1::{FsTargets, IsTargets, RejectionReason};
    let now = time::now();
    ContractTerms {
        is_team: is_team.into(),
        fs_team: fs_team.into(),
        is_owner: is_owner.into(),
        fs_owner: fs_owner.into(),
        period_start: Some(time::to_proto(now - chrono::Duration::days(1))),
        period_end: Some(time::to_proto(now + chrono::Duration::days(180))),
        gate: Some(HandoffGate {
            required_fields: vec!["meeting_at".into()],
            bant_items: vec!["budget".into(), "need".into()],
            min_score: None,
            allowed_ranks: vec![],
        }),
        rejection_reasons: vec![
            RejectionReason {
                code: "no_budget".into(),
                description: "No budget this fiscal year".into(),
            },
            RejectionReason {
                code: "not_decision_maker".into(),
                description: "Contact cannot decide".into(),
            },
        ],
        rejected_lead_route: RejectedLeadRoute::Nurture as i32,
        response_sla_minutes: 30,
        decision_sla_hours: 48,
        is_targets: Some(IsTargets {
            handoffs_per_period: 40,
            accepted_rate_pct: 70.0,
            win_rate_pct: 25.0,
            won_amount_minor: 50_000_000,
            currency_code: "JPY".into(),
            valid_leads_per_period: 28,
        }),
        fs_targets: Some(FsTargets {
            decision_sla_adherence_pct: 95.0,
            reason_on_every_rejection: true,
            win_rate_pct: 30.0,
            dispute_ruling_adherence_pct: 90.0,
        }),
        dispute_ruling_hours: 24,
        ..Default::default()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_contract_is_in_force_from_its_start_until_just_before_its_end() {
        let start = time::now();
        let end = start + chrono::Duration::days(30);
        let terms = ContractTerms {
            period_start: Some(time::to_proto(start)),
            period_end: Some(time::to_proto(end)),
            ..ContractTerms::default()
        };
        assert!(in_force(&terms, start));
        assert!(in_force(&terms, end - chrono::Duration::seconds(1)));
        assert!(!in_force(&terms, end));
        assert!(!in_force(&terms, start - chrono::Duration::seconds(1)));
    }

    fn terms() -> ContractTerms {
        ContractTerms {
            gate: Some(HandoffGate {
                required_fields: vec!["meeting_at".into()],
                bant_items: vec!["budget".into(), "need".into()],
                min_score: Some(40),
                allowed_ranks: vec!["RANK_HOT".into(), "RANK_WARM".into()],
            }),
            ..example_terms(
                "is-tokyo",
                "fs-tokyo",
                "is-lead@example.com",
                "fs-lead@example.com",
            )
        }
    }

    #[test]
    fn valid_terms_have_no_problems_and_broken_ones_list_each() {
        assert_eq!(validate(&terms()), vec![]);
        let mut t = terms();
        t.fs_owner = t.is_owner.clone();
        t.gate.as_mut().unwrap().bant_items.push("money".into());
        t.rejection_reasons.clear();
        t.decision_sla_hours = u32::MAX;
        let fields: Vec<String> = validate(&t).into_iter().map(|p| p.field).collect();
        assert_eq!(
            fields,
            vec![
                "fs_owner",
                "gate.bant_items[2]",
                "rejection_reasons",
                "decision_sla_hours"
            ]
        );
    }

    #[test]
    fn the_gate_reports_every_failing_item() {
        let gate = terms().gate.unwrap();
        let passing = HandoffFacts {
            has_meeting: true,
            bant_confirmed: vec!["budget", "need", "authority"],
            score: Some(55),
            rank: Some(Rank::Hot),
            ..Default::default()
        };
        assert_eq!(check_gate(&gate, &passing), vec![]);
        let failing = HandoffFacts {
            bant_confirmed: vec!["need"],
            score: Some(12),
            rank: Some(Rank::Cold),
            ..Default::default()
        };
        let items: Vec<String> = check_gate(&gate, &failing)
            .into_iter()
            .map(|f| f.item)
            .collect();
        assert_eq!(
            items,
            vec!["meeting_at", "bant.budget", "min_score", "rank"]
        );
    }
}
