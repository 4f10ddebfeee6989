//! Which SLA timers start: a response timer when a lead is assigned (from the contract that names
//! the rep's team as its IS team, counted in the rep's working hours if the contract says so), a
//! decision timer when a lead is handed off. Timer rows themselves are [`super::timers`].

use baton_proto::distribution::v1::SlaKind;
use baton_proto::reporting::v1::{ContractTerms, SlaEscalation};
use baton_shared::{TenantId, time};
use chrono::{DateTime, Utc};
use prost::Message;
use sea_orm::{ConnectionTrait, DbErr, EntityTrait, QueryFilter, QueryOrder, prelude::*};

use super::{
    batch::BatchCache,
    entities::{assignment, contract_replica, rep},
    timers::{self, ESCALATE_NOTIFY, ESCALATE_REASSIGN, NewTimer},
};
use crate::domain::sla::{WorkingHours, due_at};

fn escalation_name(value: i32) -> &'static str {
    match SlaEscalation::try_from(value) {
        Ok(SlaEscalation::Reassign) => ESCALATE_REASSIGN,
        _ => ESCALATE_NOTIFY,
    }
}

/// Starts the decision timer of a new handoff.
pub async fn start_decision<C: ConnectionTrait>(
    txn: &C,
    tenant: &TenantId,
    handoff_id: &str,
    lead_id: &str,
    fs_rep_id: &str,
    due_at: DateTime<Utc>,
    terms: &ContractTerms,
) -> Result<(), DbErr> {
    timers::start(
        txn,
        tenant,
        NewTimer {
            kind: SlaKind::Decision,
            subject_id: handoff_id,
            lead_id,
            rep_id: fs_rep_id,
            due_at,
            // Nobody to hand a decision to: a decision breach always notifies.
            escalation: ESCALATE_NOTIFY,
            notify: &terms.fs_owner,
        },
    )
    .await
}

/// Starts the response timer of an assignment, if a contract names the rep's team as its IS team.
pub async fn start_response<C: ConnectionTrait>(
    txn: &C,
    tenant: &TenantId,
    a: &assignment::Model,
    cache: &mut BatchCache,
) -> Result<(), DbErr> {
    let (Some(rep_id), false) = (&a.rep_id, a.team_id.is_empty()) else {
        return Ok(());
    };
    let key = (tenant.to_string(), a.team_id.clone());
    let contract = match cache.contracts.get(&key) {
        Some(known) => known.clone(),
        None => {
            let read = contract_replica::Entity::find()
                .filter(contract_replica::Column::TenantId.eq(tenant.as_str()))
                .filter(contract_replica::Column::IsTeam.eq(a.team_id.as_str()))
                .order_by_desc(contract_replica::Column::ActivatedAt)
                .one(txn)
                .await?;
            cache.contracts.insert(key, read.clone());
            read
        }
    };
    let Some(contract) = contract else {
        return Ok(());
    };
    let terms = ContractTerms::decode(contract.terms.as_slice()).unwrap_or_default();
    let assigned_at = a.assigned_at.unwrap_or_else(time::now);
    // Outside its period a contract starts no SLA.
    if terms.response_sla_minutes == 0 || !baton_shared::contract::in_force(&terms, assigned_at) {
        return Ok(());
    }
    let hours = if terms.response_sla_working_hours {
        rep::Entity::find()
            .filter(rep::Column::TenantId.eq(tenant.as_str()))
            .filter(rep::Column::RepId.eq(rep_id.as_str()))
            .one(txn)
            .await?
            .and_then(|r| {
                let a = r.attributes();
                WorkingHours::of(&a.time_zone, a.work_start_hour, a.work_end_hour)
            })
    } else {
        None
    };
    cache
        .timer_write(
            txn,
            tenant,
            NewTimer {
                kind: SlaKind::Response,
                subject_id: &a.assignment_id,
                lead_id: &a.lead_id,
                rep_id,
                due_at: due_at(assigned_at, terms.response_sla_minutes, hours),
                escalation: escalation_name(terms.response_sla_escalation),
                notify: &terms.is_owner,
            },
        )
        .await
}
