//! SLA timer rows: started, resolved, moved with a merged lead, and claimed once due. Which timers
//! an assignment or a handoff starts is [`super::sla`]'s business; what a fired response timer
//! reassigns is the caller's ([`super::sla_worker`]).

use baton_proto::distribution::v1::{AssignmentState, BreachCause, SlaBreached, SlaKind};
use baton_shared::{TenantId, events::EventLog, time};
use chrono::{DateTime, Utc};
use sea_orm::{
    ActiveValue::{NotSet, Set},
    ConnectionTrait, DbBackend, DbErr, EntityTrait, QueryFilter, QueryOrder, QuerySelect,
    prelude::*,
    sea_query::{LockBehavior, LockType},
};

use super::entities::{assignment, handoff, rep, sla_timer};

/// What a breached timer asks for: tell the owner, or also take the lead from its rep.
pub const ESCALATE_NOTIFY: &str = "notify_owner";
pub const ESCALATE_REASSIGN: &str = "reassign";

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
pub async fn insert_timers<C: ConnectionTrait>(
    txn: &C,
    timers: Vec<sla_timer::ActiveModel>,
) -> Result<(), DbErr> {
    baton_shared::db::insert_chunked(txn, &timers).await?;
    Ok(())
}

/// The row of a new timer.
pub fn timer_row(tenant: &TenantId, t: &NewTimer<'_>) -> sla_timer::ActiveModel {
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

/// What fired timers ask the caller to do in the same transaction.
#[derive(Debug, Default)]
pub struct Fired {
    pub count: usize,
    /// Open assignments whose response timer asks for reassignment.
    pub to_reassign: Vec<(TenantId, assignment::Model)>,
    /// Disputes whose ruling deadline passed: (tenant, handoff id, action).
    pub rulings: Vec<(TenantId, String, String)>,
}

/// Of the time a fired timer ran: the system's part, the person's part, and who is charged.
async fn breach_split<C: ConnectionTrait>(
    txn: &C,
    t: &sla_timer::Model,
    now: DateTime<Utc>,
) -> Result<(i64, i64, BreachCause), DbErr> {
    let human = (now - t.created_at).num_seconds().max(0);
    let inactive = |rep: Option<rep::Model>| rep.is_some_and(|r| !r.active);
    match SlaKind::try_from(t.kind) {
        Ok(SlaKind::Response) => {
            let a = assignment::Entity::find()
                .filter(assignment::Column::TenantId.eq(t.tenant_id.as_str()))
                .filter(assignment::Column::AssignmentId.eq(t.subject_id.as_str()))
                .one(txn)
                .await?;
            // The clock starts when a rep holds the lead: the wait in the queue before was the
            // system's, and so is the rest if the rep was made unavailable meanwhile.
            let queued = a
                .as_ref()
                .and_then(|a| {
                    a.assigned_at
                        .map(|at| (at - a.created_at).num_seconds().max(0))
                })
                .unwrap_or(0);
            let holder = rep_named(txn, &t.tenant_id, &t.rep_id).await?;
            let cause = if inactive(holder) {
                BreachCause::System
            } else {
                BreachCause::Human
            };
            Ok((queued, human, cause))
        }
        Ok(SlaKind::Decision) => {
            let named = rep_named(txn, &t.tenant_id, &t.rep_id).await?;
            let h = handoff::Entity::find()
                .filter(handoff::Column::TenantId.eq(t.tenant_id.as_str()))
                .filter(handoff::Column::HandoffId.eq(t.subject_id.as_str()))
                .one(txn)
                .await?;
            let team_reps = match &h {
                Some(h) => {
                    rep::Entity::find()
                        .filter(rep::Column::TenantId.eq(t.tenant_id.as_str()))
                        .filter(rep::Column::TeamId.eq(h.fs_team.as_str()))
                        .all(txn)
                        .await?
                }
                None => Vec::new(),
            };
            // Nobody to decide: the named FS rep is unavailable, or the FS team has reps and
            // none of them is active.
            let nobody =
                inactive(named) || (!team_reps.is_empty() && team_reps.iter().all(|r| !r.active));
            let cause = if nobody {
                BreachCause::System
            } else {
                BreachCause::Human
            };
            Ok((
                if nobody { human } else { 0 },
                if nobody { 0 } else { human },
                cause,
            ))
        }
        _ => Ok((0, human, BreachCause::Human)),
    }
}

async fn rep_named<C: ConnectionTrait>(
    txn: &C,
    tenant: &str,
    rep_id: &str,
) -> Result<Option<rep::Model>, DbErr> {
    if rep_id.is_empty() {
        return Ok(None);
    }
    rep::Entity::find()
        .filter(rep::Column::TenantId.eq(tenant))
        .filter(rep::Column::RepId.eq(rep_id))
        .one(txn)
        .await
}

/// Claims up to `batch` due timers in `txn` (on PostgreSQL with `FOR UPDATE SKIP LOCKED`, so
/// replicas take different timers), marks them fired and appends their `SlaBreached` events,
/// each with its split into system and human delay. Returns what the caller must do next in the
/// same transaction.
pub async fn fire_due<C: ConnectionTrait>(txn: &C, batch: u64) -> Result<Fired, DbErr> {
    let now = time::now();
    let mut query = sla_timer::Entity::find()
        .filter(sla_timer::Column::DueAt.lte(now))
        .filter(sla_timer::Column::FiredAt.is_null())
        .filter(sla_timer::Column::ResolvedAt.is_null())
        .order_by_asc(sla_timer::Column::DueAt)
        .limit(batch);
    if txn.get_database_backend() == DbBackend::Postgres {
        query = query.lock_with_behavior(LockType::Update, LockBehavior::SkipLocked);
    }
    let due = query.all(txn).await?;
    let mut fired = Fired {
        count: due.len(),
        ..Fired::default()
    };
    for t in due {
        let tenant = TenantId::new(t.tenant_id.clone());
        let claimed = sla_timer::Entity::update_many()
            .col_expr(sla_timer::Column::FiredAt, Expr::value(Some(now)))
            .filter(sla_timer::Column::Seq.eq(t.seq))
            .filter(sla_timer::Column::FiredAt.is_null())
            .exec(txn)
            .await?;
        if claimed.rows_affected != 1 {
            continue;
        }
        let (system, human, cause) = breach_split(txn, &t, now).await?;
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
            system_delay_seconds: system,
            human_delay_seconds: human,
            cause: cause as i32,
        };
        EventLog::append(txn, &tenant, &t.lead_id, &event).await?;
        if t.kind == SlaKind::DisputeRuling as i32 {
            fired
                .rulings
                .push((tenant, t.subject_id.clone(), t.escalation.clone()));
        } else if t.kind == SlaKind::Response as i32 && t.escalation == ESCALATE_REASSIGN {
            let open = assignment::Entity::find()
                .filter(assignment::Column::TenantId.eq(tenant.as_str()))
                .filter(assignment::Column::AssignmentId.eq(t.subject_id.as_str()))
                .filter(assignment::Column::State.eq(AssignmentState::Assigned as i32))
                .one(txn)
                .await?;
            if let Some(open) = open {
                fired.to_reassign.push((tenant, open));
            }
        }
    }
    Ok(fired)
}
