//! A lead's journal: every decision about it that reporting hears of, as one entry each, in time
//! order. Built from the events reporting already follows; entries carry ids, codes and numbers,
//! never personal data, so an erased lead keeps its journal. Pure; no I/O.

use baton_proto::{
    capture::v1::{LeadCaptured, LeadErased, LeadsMerged},
    distribution::v1::{HandoffChanged, LeadAssigned, SlaBreached, SlaKind},
    nurture::v1::LeadEnrolled,
    qualification::v1::{Rank, RankChanged, Stage, StageChanged},
};
use chrono::{DateTime, Utc};

/// One entry of a lead's journal.
#[derive(Debug, Clone, PartialEq)]
pub struct Entry {
    pub lead_id: String,
    pub at: Option<DateTime<Utc>>,
    /// The service that decided: capture, qualification, distribution, nurture.
    pub service: &'static str,
    /// What happened, e.g. "stage_changed", "handoff.rejected", "sla_breached".
    pub kind: String,
    pub actor: String,
    /// What it says, as (name, value) pairs in a fixed order.
    pub details: Vec<(String, String)>,
}

fn stamp(t: Option<&prost_types::Timestamp>) -> Option<DateTime<Utc>> {
    t.and_then(baton_shared::time::from_proto)
}

fn stage(v: i32) -> String {
    Stage::try_from(v)
        .map(|s| {
            s.as_str_name()
                .trim_start_matches("STAGE_")
                .to_ascii_lowercase()
        })
        .unwrap_or_default()
}

fn rank(v: i32) -> String {
    Rank::try_from(v)
        .map(|r| {
            r.as_str_name()
                .trim_start_matches("RANK_")
                .to_ascii_lowercase()
        })
        .unwrap_or_default()
}

/// A positive version as text; empty when unset.
fn version(v: i32) -> String {
    if v > 0 { v.to_string() } else { String::new() }
}

fn pairs(items: &[(&str, String)]) -> Vec<(String, String)> {
    items
        .iter()
        .filter(|(_, v)| !v.is_empty())
        .map(|(k, v)| ((*k).to_owned(), v.clone()))
        .collect()
}

pub fn captured(e: &LeadCaptured) -> Entry {
    let source = e.source.clone().unwrap_or_default();
    Entry {
        lead_id: e.lead_id.clone(),
        at: stamp(e.captured_at.as_ref()),
        service: "capture",
        kind: "captured".into(),
        actor: String::new(),
        details: pairs(&[
            ("channel", source.channel),
            ("campaign", source.campaign),
            ("lead_magnet", source.lead_magnet),
        ]),
    }
}

pub fn merged(e: &LeadsMerged) -> Entry {
    Entry {
        lead_id: e.merged_lead_id.clone(),
        at: stamp(e.merged_at.as_ref()),
        service: "capture",
        kind: "merged".into(),
        actor: String::new(),
        details: pairs(&[("into", e.survivor_lead_id.clone())]),
    }
}

/// The kind of the entry that records a lead's erasure.
pub const ERASED: &str = "personal_data_erased";

pub fn erased(e: &LeadErased) -> Entry {
    Entry {
        lead_id: e.lead_id.clone(),
        at: stamp(e.erased_at.as_ref()),
        service: "capture",
        kind: ERASED.into(),
        actor: String::new(),
        details: Vec::new(),
    }
}

pub fn stage_changed(e: &StageChanged) -> Entry {
    Entry {
        lead_id: e.lead_id.clone(),
        at: stamp(e.changed_at.as_ref()),
        service: "qualification",
        kind: "stage_changed".into(),
        actor: e.changed_by.clone(),
        details: pairs(&[
            ("from", stage(e.from_stage)),
            ("to", stage(e.to_stage)),
            ("reason", e.reason.clone()),
            ("score", e.score.to_string()),
            ("model", e.model_id.clone()),
            ("model_version", version(e.model_version)),
        ]),
    }
}

pub fn rank_changed(e: &RankChanged) -> Entry {
    Entry {
        lead_id: e.lead_id.clone(),
        at: stamp(e.changed_at.as_ref()),
        service: "qualification",
        kind: "rank_changed".into(),
        actor: String::new(),
        details: pairs(&[
            ("from", rank(e.from_rank)),
            ("to", rank(e.to_rank)),
            ("rule", e.rule_key.clone()),
            ("reasons", e.reasons.join("; ")),
        ]),
    }
}

pub fn assigned(e: &LeadAssigned) -> Entry {
    Entry {
        lead_id: e.lead_id.clone(),
        at: stamp(e.assigned_at.as_ref()),
        service: "distribution",
        kind: "assigned".into(),
        actor: String::new(),
        details: pairs(&[
            ("rep", e.rep_id.clone()),
            ("team", e.team_id.clone()),
            ("method", e.method.clone()),
            ("assignment", e.assignment_id.clone()),
            ("rule", e.rule_key.clone()),
            ("rules_version", version(e.rules_version)),
        ]),
    }
}

/// A handoff step: its action, who, and what it decided (never the free-text notes).
pub fn handoff_changed(e: &HandoffChanged) -> Option<Entry> {
    let (h, step) = (e.handoff.as_ref()?, e.step.as_ref()?);
    let amount = h
        .amount
        .as_ref()
        .filter(|_| step.action == "won")
        .map(|m| format!("{} {}", m.amount_minor, m.currency_code))
        .unwrap_or_default();
    let due = if step.action == "created" || step.action == "decision_clock_resumed" {
        stamp(h.decision_due_at.as_ref())
            .map(|t| t.to_rfc3339())
            .unwrap_or_default()
    } else {
        String::new()
    };
    Some(Entry {
        lead_id: h.lead_id.clone(),
        at: stamp(step.at.as_ref()),
        service: "distribution",
        kind: format!("handoff.{}", step.action),
        actor: step.actor.clone(),
        details: pairs(&[
            ("handoff", h.handoff_id.clone()),
            (
                "contract",
                if h.contract_id.is_empty() {
                    String::new()
                } else {
                    format!("{} v{}", h.contract_id, h.contract_version)
                },
            ),
            (
                "reason",
                if step.action == "rejected" {
                    h.rejection_reason.clone()
                } else {
                    String::new()
                },
            ),
            ("decision_due_at", due),
            ("amount", amount),
        ]),
    })
}

pub fn sla_breached(e: &SlaBreached) -> Entry {
    let kind = SlaKind::try_from(e.kind)
        .map(|k| {
            k.as_str_name()
                .trim_start_matches("SLA_KIND_")
                .to_ascii_lowercase()
        })
        .unwrap_or_default();
    let cause = baton_proto::distribution::v1::BreachCause::try_from(e.cause)
        .map(|c| {
            c.as_str_name()
                .trim_start_matches("BREACH_CAUSE_")
                .to_ascii_lowercase()
        })
        .unwrap_or_default();
    Entry {
        lead_id: e.lead_id.clone(),
        at: stamp(e.breached_at.as_ref()),
        service: "distribution",
        kind: "sla_breached".into(),
        actor: String::new(),
        details: pairs(&[
            ("sla", kind),
            ("subject", e.subject_id.clone()),
            ("rep", e.rep_id.clone()),
            (
                "due_at",
                stamp(e.due_at.as_ref())
                    .map(|t| t.to_rfc3339())
                    .unwrap_or_default(),
            ),
            ("cause", cause),
            ("system_delay_seconds", e.system_delay_seconds.to_string()),
            ("human_delay_seconds", e.human_delay_seconds.to_string()),
            ("escalation", e.escalation.clone()),
        ]),
    }
}

pub fn enrolled(e: &LeadEnrolled) -> Option<Entry> {
    let en = e.enrollment.as_ref()?;
    Some(Entry {
        lead_id: en.lead_id.clone(),
        at: stamp(en.enrolled_at.as_ref()),
        service: "nurture",
        kind: "enrolled".into(),
        actor: String::new(),
        details: pairs(&[("sequence", en.sequence_key.clone())]),
    })
}
