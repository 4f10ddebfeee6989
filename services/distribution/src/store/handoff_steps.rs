//! Steps on a handoff after it was created: FS's decision (its clock stopped, the time left
//! kept), IS's dispute (the decision clock stays paused, the ruling clock starts), an owner's
//! ruling (an overturn re-opens the handoff with the decision clock resumed), and the outcome.
//! Each step is logged with who and when; the dispute deadline takes its step as "system".

use baton_proto::{
    distribution::v1::{Handoff, HandoffState, SlaKind},
    reporting::v1::{ContractTerms, DisputeDeadlineAction},
};
use baton_shared::{TenantId, time};
use chrono::Duration;
use sea_orm::{
    ActiveValue::Set, ConnectionTrait, EntityTrait, QueryFilter, TransactionTrait, prelude::*,
};

use super::{
    Store,
    entities::{handoff, handoff_step},
    handoffs::{StepDetails, log_step, replica_of, route_name, steps_of, terms_of},
    timers::{self, NewTimer},
};
use crate::{
    convert,
    domain::handoffs::{self, Step},
    error::Error,
};

/// The name the dispute deadline acts under.
pub const SYSTEM_ACTOR: &str = "system";

/// Who takes a step: a person (checked against the contract where it matters) or the deadline.
#[derive(Debug, Clone, Copy)]
pub enum Actor<'a> {
    Person(&'a str),
    Deadline,
}

impl Actor<'_> {
    fn name(&self) -> &str {
        match self {
            Actor::Person(name) => name,
            Actor::Deadline => SYSTEM_ACTOR,
        }
    }
}

/// A step to take: what, by whom, why, with what.
pub struct StepRequest<'a> {
    pub step: Step,
    pub actor: Actor<'a>,
    pub note: &'a str,
    pub details: &'a StepDetails,
}

async fn escalated<C: ConnectionTrait>(db: &C, handoff_id: &str) -> Result<bool, Error> {
    Ok(handoff_step::Entity::find()
        .filter(handoff_step::Column::HandoffId.eq(handoff_id))
        .filter(handoff_step::Column::Action.eq("dispute_escalated"))
        .one(db)
        .await?
        .is_some())
}

/// The reason must be one of the contract's.
fn check_reason(terms: &ContractTerms, reason_code: &str) -> Result<(), Error> {
    let codes: Vec<&str> = terms
        .rejection_reasons
        .iter()
        .map(|r| r.code.as_str())
        .collect();
    if codes.contains(&reason_code) {
        return Ok(());
    }
    Err(Error::invalid(
        "reason_code",
        format!("must be one of the contract's reasons {codes:?}"),
    ))
}

/// Only an owner (or, once escalated, the escalation owner) rules; the deadline always may.
async fn check_ruler<C: ConnectionTrait>(
    db: &C,
    current: &handoff::Model,
    terms: &ContractTerms,
    actor: Actor<'_>,
) -> Result<(), Error> {
    let Actor::Person(name) = actor else {
        return Ok(());
    };
    let owners = [terms.is_owner.as_str(), terms.fs_owner.as_str()];
    let escalated = escalated(db, &current.handoff_id).await?;
    if handoffs::may_rule(name, owners, &terms.escalation_owner, escalated) {
        return Ok(());
    }
    Err(Error::NotAllowed(format!(
        "{name} is not an owner of the contract between {} and {}{}",
        current.is_team,
        current.fs_team,
        if escalated {
            " nor its escalation owner"
        } else {
            ""
        }
    )))
}

/// Starts the ruling clock of a dispute, if the contract sets one.
async fn start_ruling_clock<C: ConnectionTrait>(
    txn: &C,
    tenant: &TenantId,
    h: &handoff::Model,
    terms: &ContractTerms,
) -> Result<(), Error> {
    if terms.dispute_ruling_hours == 0 {
        return Ok(());
    }
    let notify = if terms.escalation_owner.is_empty() {
        format!("{},{}", terms.is_owner, terms.fs_owner)
    } else {
        terms.escalation_owner.clone()
    };
    timers::start(
        txn,
        tenant,
        NewTimer {
            kind: SlaKind::DisputeRuling,
            subject_id: &h.handoff_id,
            lead_id: &h.lead_id,
            rep_id: "",
            due_at: time::now() + Duration::hours(i64::from(terms.dispute_ruling_hours)),
            escalation: deadline_name(terms.dispute_deadline_action),
            notify: &notify,
        },
    )
    .await?;
    Ok(())
}

/// The stored name of what a dispute deadline does.
pub fn deadline_name(action: i32) -> &'static str {
    match DisputeDeadlineAction::try_from(action) {
        Ok(DisputeDeadlineAction::Overturn) => "overturn",
        Ok(DisputeDeadlineAction::Escalate) => "escalate",
        _ => "uphold",
    }
}

/// Applies `req` to the stored handoff (state, fields, clocks) and logs it; returns the saved row.
pub async fn take_step<C: ConnectionTrait>(
    txn: &C,
    tenant: &TenantId,
    handoff_id: &str,
    req: &StepRequest<'_>,
) -> Result<handoff::Model, Error> {
    let current = handoff::Entity::find()
        .filter(handoff::Column::TenantId.eq(tenant.as_str()))
        .filter(handoff::Column::HandoffId.eq(handoff_id))
        .one(txn)
        .await?
        .ok_or_else(|| Error::not_found("handoff", handoff_id))?;
    let state = HandoffState::try_from(current.state).unwrap_or_default();
    let step = req.step;
    let next = handoffs::after(state, step).map_err(|rule| Error::RuleBroken {
        rule: rule.into(),
        description: format!(
            "handoff {handoff_id} is {}; cannot be {}",
            state.as_str_name(),
            step.action()
        ),
    })?;
    let terms = replica_of(txn, tenant, &current.is_team, &current.fs_team)
        .await?
        .map(|r| terms_of(&r))
        .unwrap_or_default();
    let now = time::now();
    let mut row: handoff::ActiveModel = current.clone().into();
    let mut after_steps: Vec<(&str, String)> = Vec::new();
    match step {
        Step::Reject => {
            check_reason(&terms, &req.details.reason_code)?;
            row.rejection_reason = Set(req.details.reason_code.clone());
            row.rejected_lead_route = Set(route_name(terms.rejected_lead_route).to_owned());
            let left = handoffs::decision_left(current.decision_due_at, now);
            row.decision_left_seconds = Set(Some(left));
        }
        Step::Dispute => {
            let left = current.decision_left_seconds.unwrap_or(0);
            after_steps.push((
                "decision_clock_paused",
                format!("{left} s of the decision SLA left"),
            ));
        }
        Step::Uphold | Step::Overturn => {
            check_ruler(txn, &current, &terms, req.actor).await?;
            timers::resolve(txn, tenant, SlaKind::DisputeRuling, handoff_id).await?;
            if step == Step::Overturn {
                let left = current.decision_left_seconds.unwrap_or(0);
                row.rejected_lead_route = Set(String::new());
                row.rejection_reason = Set(String::new());
                row.decision_due_at = Set(now + Duration::seconds(left));
                after_steps.push((
                    "decision_clock_resumed",
                    format!("{left} s of the decision SLA left"),
                ));
            }
        }
        Step::Win | Step::Lose => {
            let d = req.details;
            row.amount_currency = Set(d.amount.as_ref().map(|(c, _)| c.clone()));
            row.amount_minor = Set(d.amount.as_ref().map(|(_, m)| *m));
            row.mrr_currency = Set(d.mrr.as_ref().map(|(c, _)| c.clone()));
            row.mrr_minor = Set(d.mrr.as_ref().map(|(_, m)| *m));
            row.closed_at = Set(d.closed_at.or(Some(now)));
            if step == Step::Lose {
                row.lost_reason = Set(req.note.to_owned());
            }
        }
        Step::Accept => {}
    }
    if matches!(step, Step::Accept | Step::Reject) {
        timers::resolve(txn, tenant, SlaKind::Decision, handoff_id).await?;
    }
    row.state = Set(next as i32);
    row.updated_at = Set(now);
    let saved = row.update(txn).await?;
    log_step(
        txn,
        tenant,
        &saved,
        step.action(),
        req.actor.name(),
        req.note,
    )
    .await?;
    for (action, note) in after_steps {
        log_step(txn, tenant, &saved, action, SYSTEM_ACTOR, &note).await?;
    }
    match step {
        Step::Dispute => start_ruling_clock(txn, tenant, &saved, &terms).await?,
        Step::Overturn => {
            super::sla::start_decision(
                txn,
                tenant,
                &saved.handoff_id,
                &saved.lead_id,
                &saved.fs_rep_id,
                saved.decision_due_at,
                &terms,
            )
            .await?;
        }
        _ => {}
    }
    Ok(saved)
}

/// The dispute deadline passed with no ruling: the contract's action, taken as "system".
pub async fn dispute_deadline<C: ConnectionTrait>(
    txn: &C,
    tenant: &TenantId,
    handoff_id: &str,
    action: &str,
) -> Result<(), Error> {
    let details = StepDetails::default();
    let step = match action {
        "overturn" => Step::Overturn,
        "escalate" => {
            let current = handoff::Entity::find()
                .filter(handoff::Column::TenantId.eq(tenant.as_str()))
                .filter(handoff::Column::HandoffId.eq(handoff_id))
                .one(txn)
                .await?;
            let Some(h) = current.filter(|h| h.state == HandoffState::Disputed as i32) else {
                return Ok(());
            };
            let terms = replica_of(txn, tenant, &h.is_team, &h.fs_team)
                .await?
                .map(|r| terms_of(&r))
                .unwrap_or_default();
            let note = format!("to {}", terms.escalation_owner);
            log_step(txn, tenant, &h, "dispute_escalated", SYSTEM_ACTOR, &note).await?;
            return Ok(());
        }
        _ => Step::Uphold,
    };
    let req = StepRequest {
        step,
        actor: Actor::Deadline,
        note: "nobody ruled by the dispute deadline",
        details: &details,
    };
    match take_step(txn, tenant, handoff_id, &req).await {
        // Ruled meanwhile: nothing to do.
        Err(Error::RuleBroken { .. }) => Ok(()),
        other => other.map(|_| ()),
    }
}

impl Store {
    /// Takes one step on a handoff (accept, reject, dispute, rule, outcome), logged with who and why.
    pub async fn handoff_step(
        &self,
        tenant: &TenantId,
        handoff_id: &str,
        step: Step,
        actor: &str,
        note: &str,
        details: &StepDetails,
    ) -> Result<Handoff, Error> {
        let txn = self.db.begin().await?;
        let req = StepRequest {
            step,
            actor: Actor::Person(actor),
            note,
            details,
        };
        let saved = take_step(&txn, tenant, handoff_id, &req).await?;
        let steps = steps_of(&txn, handoff_id).await?;
        txn.commit().await?;
        self.log.notify_committed();
        Ok(convert::handoff_to_proto(&saved, &steps))
    }
}
