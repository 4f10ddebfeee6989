//! distribution's persistence: reps, assignments, the round-robin position, with their events.

pub mod entities;
pub mod handoffs;

use baton_proto::distribution::v1::{self as pb, AssignmentState, LeadAssigned, RepCreated};
use baton_shared::{
    ApiError, TenantId,
    events::EventLog,
    paging::{Page, fetch_page},
    time,
};

use sea_orm::{
    ActiveValue::{NotSet, Set},
    ConnectionTrait, DatabaseConnection, DbErr, EntityTrait, QueryFilter, QueryOrder,
    TransactionTrait,
    prelude::*,
    sea_query::OnConflict,
};

use crate::domain::{
    reps::NewRep,
    round_robin::{Candidate, next_in_rotation},
};
use entities::{assignment, rep, rotation};

/// How an assignment's rep was chosen (recorded on the assignment and in `LeadAssigned`).
pub const METHOD_ROUND_ROBIN: &str = "round_robin";

#[derive(Clone)]
pub struct Store {
    db: DatabaseConnection,
    log: EventLog,
}

impl Store {
    pub fn new(db: DatabaseConnection, log: EventLog) -> Self {
        Store { db, log }
    }

    /// Creates a rep (idempotent on request_id) and, if it is active, hands it the queued leads.
    pub async fn create_rep(
        &self,
        tenant: &TenantId,
        new: &NewRep,
    ) -> Result<rep::Model, ApiError> {
        let txn = self.db.begin().await?;
        let by_request = rep::Entity::find()
            .filter(rep::Column::TenantId.eq(tenant.as_str()))
            .filter(rep::Column::RequestId.eq(new.request_id.as_str()))
            .one(&txn)
            .await?;
        if let Some(seen) = by_request {
            if seen.email_normalized != new.email_normalized
                || seen.name != new.name
                || seen.active != new.active
            {
                return Err(ApiError::invalid(
                    "request_id",
                    "was already used for a different rep",
                ));
            }
            return Ok(seen);
        }
        let same_email = rep::Entity::find()
            .filter(rep::Column::TenantId.eq(tenant.as_str()))
            .filter(rep::Column::EmailNormalized.eq(new.email_normalized.as_str()))
            .one(&txn)
            .await?;
        if same_email.is_some() {
            return Err(ApiError::AlreadyExists(format!(
                "a rep with e-mail {} already exists",
                new.email
            )));
        }
        let rep = rep::ActiveModel {
            seq: NotSet,
            rep_id: Set(uuid::Uuid::now_v7().to_string()),
            tenant_id: Set(tenant.to_string()),
            request_id: Set(new.request_id.clone()),
            name: Set(new.name.clone()),
            email: Set(new.email.clone()),
            email_normalized: Set(new.email_normalized.clone()),
            active: Set(new.active),
            created_at: Set(time::now()),
        }
        .insert(&txn)
        .await?;
        EventLog::append(
            &txn,
            tenant,
            &rep.rep_id,
            &RepCreated {
                rep: Some(rep_to_proto(&rep)),
            },
        )
        .await?;
        if rep.active {
            assign_queued(&txn, tenant).await?;
        }
        txn.commit().await?;
        self.log.notify_committed();
        Ok(rep)
    }

    pub async fn list_reps(
        &self,
        tenant: &TenantId,
        page: Page,
    ) -> Result<(Vec<rep::Model>, String), ApiError> {
        let query = rep::Entity::find().filter(rep::Column::TenantId.eq(tenant.as_str()));
        Ok(fetch_page(query, rep::Column::Seq, |r| r.seq, page, &self.db).await?)
    }

    pub async fn list_assignments(
        &self,
        tenant: &TenantId,
        page: Page,
        rep_id: Option<&str>,
    ) -> Result<(Vec<assignment::Model>, String), ApiError> {
        let mut query =
            assignment::Entity::find().filter(assignment::Column::TenantId.eq(tenant.as_str()));
        if let Some(rep_id) = rep_id {
            query = query.filter(assignment::Column::RepId.eq(rep_id));
        }
        Ok(fetch_page(query, assignment::Column::Seq, |a| a.seq, page, &self.db).await?)
    }
}

/// Assigns a lead that just became an MQL, exactly once: a lead that already has an assignment
/// (a redelivered or repeated event) is left alone. No active rep → the lead waits in the queue.
pub async fn assign_mql<C: ConnectionTrait>(
    txn: &C,
    tenant: &TenantId,
    lead_id: &str,
) -> Result<(), DbErr> {
    let existing = assignment::Entity::find()
        .filter(assignment::Column::TenantId.eq(tenant.as_str()))
        .filter(assignment::Column::LeadId.eq(lead_id))
        .one(txn)
        .await?;
    if existing.is_some() {
        return Ok(());
    }
    let now = time::now();
    let chosen = pick_rep(txn, tenant).await?;
    let row = assignment::ActiveModel {
        seq: NotSet,
        assignment_id: Set(uuid::Uuid::now_v7().to_string()),
        tenant_id: Set(tenant.to_string()),
        lead_id: Set(lead_id.to_owned()),
        rep_id: Set(chosen.as_ref().map(|r| r.rep_id.clone())),
        state: Set(if chosen.is_some() {
            AssignmentState::Assigned
        } else {
            AssignmentState::Queued
        } as i32),
        method: Set(METHOD_ROUND_ROBIN.to_owned()),
        created_at: Set(now),
        assigned_at: Set(chosen.as_ref().map(|_| now)),
    }
    .insert(txn)
    .await?;
    if chosen.is_some() {
        append_assigned(txn, tenant, &row).await?;
    }
    Ok(())
}

/// Hands queued leads, oldest first, to the active reps in rotation.
async fn assign_queued<C: ConnectionTrait>(txn: &C, tenant: &TenantId) -> Result<(), DbErr> {
    let queued = assignment::Entity::find()
        .filter(assignment::Column::TenantId.eq(tenant.as_str()))
        .filter(assignment::Column::State.eq(AssignmentState::Queued as i32))
        .order_by_asc(assignment::Column::Seq)
        .all(txn)
        .await?;
    for waiting in queued {
        let Some(rep) = pick_rep(txn, tenant).await? else {
            break;
        };
        let mut row: assignment::ActiveModel = waiting.into();
        row.rep_id = Set(Some(rep.rep_id.clone()));
        row.state = Set(AssignmentState::Assigned as i32);
        row.assigned_at = Set(Some(time::now()));
        let row = row.update(txn).await?;
        append_assigned(txn, tenant, &row).await?;
    }
    Ok(())
}

/// The next rep in the tenant's rotation, moving the rotation forward; `None` if nobody is active.
async fn pick_rep<C: ConnectionTrait>(
    txn: &C,
    tenant: &TenantId,
) -> Result<Option<rep::Model>, DbErr> {
    let reps = rep::Entity::find()
        .filter(rep::Column::TenantId.eq(tenant.as_str()))
        .order_by_asc(rep::Column::Seq)
        .all(txn)
        .await?;
    let candidates: Vec<Candidate> = reps
        .iter()
        .map(|r| Candidate {
            queue_position: r.seq,
            active: r.active,
        })
        .collect();
    let last = rotation::Entity::find_by_id(tenant.to_string())
        .one(txn)
        .await?
        .map(|r| r.last_rep_seq);
    let Some(next) = next_in_rotation(&candidates, last) else {
        return Ok(None);
    };
    rotation::Entity::insert(rotation::ActiveModel {
        tenant_id: Set(tenant.to_string()),
        last_rep_seq: Set(next),
    })
    .on_conflict(
        OnConflict::column(rotation::Column::TenantId)
            .update_column(rotation::Column::LastRepSeq)
            .to_owned(),
    )
    .exec(txn)
    .await?;
    Ok(reps.into_iter().find(|r| r.seq == next))
}

async fn append_assigned<C: ConnectionTrait>(
    txn: &C,
    tenant: &TenantId,
    row: &assignment::Model,
) -> Result<(), DbErr> {
    let event = LeadAssigned {
        lead_id: row.lead_id.clone(),
        rep_id: row.rep_id.clone().unwrap_or_default(),
        assignment_id: row.assignment_id.clone(),
        method: row.method.clone(),
        assigned_at: time::to_proto_opt(row.assigned_at),
    };
    EventLog::append(txn, tenant, &row.lead_id, &event)
        .await
        .map(|_| ())
}

pub fn rep_to_proto(rep: &rep::Model) -> pb::Rep {
    pb::Rep {
        rep_id: rep.rep_id.clone(),
        name: rep.name.clone(),
        email: rep.email.clone(),
        active: rep.active,
        created_at: Some(time::to_proto(rep.created_at)),
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
    }
}
