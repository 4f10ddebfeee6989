//! SLA timers: started when a lead is assigned (response SLA, from the contract that names the
//! rep's team as its IS team, counted in the rep's working hours if the contract says so) or
//! handed off (decision SLA), resolved by the first IS touch or FS's decision, fired by whichever
//! replica claims them first once due.

use baton_proto::{
    distribution::v1::{AssignmentState, SlaBreached, SlaKind},
    reporting::v1::{ContractTerms, SlaEscalation},
};
use baton_shared::{TenantId, events::EventLog, time};
use chrono::{DateTime, Utc};
use prost::Message;
use sea_orm::{
    ActiveValue::{NotSet, Set},
    ConnectionTrait, DatabaseConnection, DbBackend, DbErr, EntityTrait, QueryFilter, QueryOrder,
    QuerySelect, TransactionTrait,
    prelude::*,
    sea_query::{LockBehavior, LockType},
};

use super::{
    entities::{assignment, contract_replica, rep, sla_timer},
    routing::Memo,
};
use crate::domain::sla::{WorkingHours, due_at};

pub const ESCALATE_NOTIFY: &str = "notify_owner";
pub const ESCALATE_REASSIGN: &str = "reassign";

fn escalation_name(value: i32) -> &'static str {
    match SlaEscalation::try_from(value) {
        Ok(SlaEscalation::Reassign) => ESCALATE_REASSIGN,
        _ => ESCALATE_NOTIFY,
    }
}

/// One timer to start.
pub struct NewTimer<'a> {
    pub kind: SlaKind,
    pub subject_id: &'a str,
    pub lead_id: &'a str,
    pub rep_id: &'a str,
    pub due_at: DateTime<Utc>,
    pub escalation: &'a str,
    pub notify: &'a str,
}

pub async fn start<C: ConnectionTrait>(
    txn: &C,
    tenant: &TenantId,
    t: NewTimer<'_>,
) -> Result<(), DbErr> {
    timer_row(tenant, &t).insert(txn).await?;
    Ok(())
}

/// Starts held timers in one statement per 500.
pub(crate) async fn insert_timers<C: ConnectionTrait>(
    txn: &C,
    timers: Vec<sla_timer::ActiveModel>,
) -> Result<(), DbErr> {
    for chunk in timers.chunks(500) {
        sla_timer::Entity::insert_many(chunk.iter().cloned())
            .exec_without_returning(txn)
            .await?;
    }
    Ok(())
}

/// The row of a new timer.
pub(crate) fn timer_row(tenant: &TenantId, t: &NewTimer<'_>) -> sla_timer::ActiveModel {
    sla_timer::ActiveModel {
        seq: NotSet,
        timer_id: Set(uuid::Uuid::now_v7().to_string()),
        tenant_id: Set(tenant.to_string()),
        kind: Set(t.kind as i32),
        subject_id: Set(t.subject_id.to_owned()),
        lead_id: Set(t.lead_id.to_owned()),
        rep_id: Set(t.rep_id.to_owned()),
        due_at: Set(t.due_at),
        escalation: Set(t.escalation.to_owned()),
        notify: Set(t.notify.to_owned()),
        created_at: Set(time::now()),
        fired_at: Set(None),
        resolved_at: Set(None),
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
    start(
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
    memo: &mut Memo,
) -> Result<(), DbErr> {
    let (Some(rep_id), false) = (&a.rep_id, a.team_id.is_empty()) else {
        return Ok(());
    };
    let key = (tenant.to_string(), a.team_id.clone());
    let contract = match memo.contracts.get(&key) {
        Some(known) => known.clone(),
        None => {
            let read = contract_replica::Entity::find()
                .filter(contract_replica::Column::TenantId.eq(tenant.as_str()))
                .filter(contract_replica::Column::IsTeam.eq(a.team_id.as_str()))
                .order_by_desc(contract_replica::Column::ActivatedAt)
                .one(txn)
                .await?;
            memo.contracts.insert(key, read.clone());
            read
        }
    };
    let Some(contract) = contract else {
        return Ok(());
    };
    let terms = ContractTerms::decode(contract.terms.as_slice()).unwrap_or_default();
    if terms.response_sla_minutes == 0 {
        return Ok(());
    }
    let hours = if terms.response_sla_working_hours {
        rep::Entity::find()
            .filter(rep::Column::TenantId.eq(tenant.as_str()))
            .filter(rep::Column::RepId.eq(rep_id.as_str()))
            .one(txn)
            .await?
            .and_then(|r| {
                let a = super::routing::attributes_of(&r);
                WorkingHours::of(&a.time_zone, a.work_start_hour, a.work_end_hour)
            })
    } else {
        None
    };
    memo.timer_write(
        txn,
        tenant,
        NewTimer {
            kind: SlaKind::Response,
            subject_id: &a.assignment_id,
            lead_id: &a.lead_id,
            rep_id,
            due_at: due_at(
                a.assigned_at.unwrap_or_else(time::now),
                terms.response_sla_minutes,
                hours,
            ),
            escalation: escalation_name(terms.response_sla_escalation),
            notify: &terms.is_owner,
        },
    )
    .await
}

/// Stops the open timers of a subject (the SLA was met, or no longer applies).
pub async fn resolve<C: ConnectionTrait>(
    txn: &C,
    tenant: &TenantId,
    kind: SlaKind,
    subject_id: &str,
) -> Result<(), DbErr> {
    sla_timer::Entity::update_many()
        .col_expr(
            sla_timer::Column::ResolvedAt,
            Expr::value(Some(time::now())),
        )
        .filter(sla_timer::Column::TenantId.eq(tenant.as_str()))
        .filter(sla_timer::Column::Kind.eq(kind as i32))
        .filter(sla_timer::Column::SubjectId.eq(subject_id))
        .filter(sla_timer::Column::ResolvedAt.is_null())
        .filter(sla_timer::Column::FiredAt.is_null())
        .exec(txn)
        .await?;
    Ok(())
}

/// An assignment moved to another lead (a merge): its timers follow it.
pub async fn move_lead<C: ConnectionTrait>(
    txn: &C,
    tenant: &TenantId,
    subject_id: &str,
    lead_id: &str,
) -> Result<(), DbErr> {
    sla_timer::Entity::update_many()
        .col_expr(sla_timer::Column::LeadId, Expr::value(lead_id.to_owned()))
        .filter(sla_timer::Column::TenantId.eq(tenant.as_str()))
        .filter(sla_timer::Column::SubjectId.eq(subject_id))
        .exec(txn)
        .await?;
    Ok(())
}

/// The first IS touch of a lead: its open response timers are met.
pub async fn touched<C: ConnectionTrait>(
    txn: &C,
    tenant: &TenantId,
    lead_id: &str,
    at: DateTime<Utc>,
) -> Result<(), DbErr> {
    sla_timer::Entity::update_many()
        .col_expr(sla_timer::Column::ResolvedAt, Expr::value(Some(at)))
        .filter(sla_timer::Column::TenantId.eq(tenant.as_str()))
        .filter(sla_timer::Column::Kind.eq(SlaKind::Response as i32))
        .filter(sla_timer::Column::LeadId.eq(lead_id))
        .filter(sla_timer::Column::ResolvedAt.is_null())
        .filter(sla_timer::Column::FiredAt.is_null())
        .filter(sla_timer::Column::CreatedAt.lte(at))
        .exec(txn)
        .await?;
    Ok(())
}

/// Fires due timers. Each round claims a batch inside one transaction (on PostgreSQL with
/// `FOR UPDATE SKIP LOCKED`, so replicas take different timers) and marks them fired in it, so a
/// timer fires exactly once.
#[derive(Clone)]
pub struct Timers {
    db: DatabaseConnection,
    log: EventLog,
    batch: u64,
}

impl Timers {
    pub fn new(db: DatabaseConnection, log: EventLog, batch: u64) -> Self {
        Timers { db, log, batch }
    }

    /// One round; returns how many timers fired.
    pub async fn fire_due(&self) -> Result<usize, DbErr> {
        let txn = self.db.begin().await?;
        let now = time::now();
        let mut query = sla_timer::Entity::find()
            .filter(sla_timer::Column::DueAt.lte(now))
            .filter(sla_timer::Column::FiredAt.is_null())
            .filter(sla_timer::Column::ResolvedAt.is_null())
            .order_by_asc(sla_timer::Column::DueAt)
            .limit(self.batch);
        if self.db.get_database_backend() == DbBackend::Postgres {
            query = query.lock_with_behavior(LockType::Update, LockBehavior::SkipLocked);
        }
        let due = query.all(&txn).await?;
        let fired = due.len();
        for t in due {
            let tenant = TenantId::new(t.tenant_id.clone());
            let claimed = sla_timer::Entity::update_many()
                .col_expr(sla_timer::Column::FiredAt, Expr::value(Some(now)))
                .filter(sla_timer::Column::Seq.eq(t.seq))
                .filter(sla_timer::Column::FiredAt.is_null())
                .exec(&txn)
                .await?;
            if claimed.rows_affected != 1 {
                continue;
            }
            let event = SlaBreached {
                timer_id: t.timer_id.clone(),
                kind: t.kind,
                lead_id: t.lead_id.clone(),
                subject_id: t.subject_id.clone(),
                rep_id: t.rep_id.clone(),
                due_at: Some(time::to_proto(t.due_at)),
                breached_at: Some(time::to_proto(now)),
                escalation: t.escalation.clone(),
                notify: t.notify.clone(),
            };
            EventLog::append(&txn, &tenant, &t.lead_id, &event).await?;
            if t.kind == SlaKind::Response as i32 && t.escalation == ESCALATE_REASSIGN {
                let open = assignment::Entity::find()
                    .filter(assignment::Column::TenantId.eq(tenant.as_str()))
                    .filter(assignment::Column::AssignmentId.eq(t.subject_id.as_str()))
                    .filter(assignment::Column::State.eq(AssignmentState::Assigned as i32))
                    .one(&txn)
                    .await?;
                if let Some(open) = open {
                    super::routing::reassign(&txn, &tenant, open).await?;
                }
            }
        }
        txn.commit().await?;
        if fired > 0 {
            self.log.notify_committed();
        }
        Ok(fired)
    }

    /// Runs until `shutdown` (see [`baton_shared::background::repeat`]).
    pub async fn run(
        self,
        interval: std::time::Duration,
        shutdown: tokio_util::sync::CancellationToken,
    ) {
        baton_shared::background::repeat("SLA timers", interval, shutdown, move || {
            let timers = self.clone();
            async move { timers.fire_due().await.map(|n| n as u64) }
        })
        .await
    }
}
