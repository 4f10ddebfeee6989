//! distribution's persistence: reps, assignments, the round-robin position, with their events.

pub mod entities;
pub mod handoffs;
pub mod routing;
pub mod sla;

use baton_proto::distribution::v1::{self as pb, LeadAssigned, RepCreated};
use baton_shared::{
    ApiError, TenantId,
    events::EventLog,
    paging::{Page, fetch_page},
    time,
};

use sea_orm::{
    ActiveValue::{NotSet, Set},
    ConnectionTrait, DatabaseConnection, DbErr, EntityTrait, QueryFilter, TransactionTrait,
    prelude::*,
};

use crate::domain::reps::NewRep;
use entities::{assignment, rep};
pub use routing::{Memo, RepRouting, assign_mql, assign_queued};

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
        routing: &RepRouting,
    ) -> Result<rep::Model, ApiError> {
        let txn = self.db.begin().await?;
        self.check_team(&txn, tenant, &routing.team_id).await?;
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
            team_id: Set(routing.team_id.clone()),
            routing: Set(serde_json::to_string(&routing.attributes)
                .map_err(|e| DbErr::Custom(e.to_string()))?),
            capacity: Set(routing.capacity),
            weight: Set(routing.weight),
            wrr_counter: Set(0.0),
            was_available: Set(true),
            open_leads: Set(0),
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

    /// Reps of a page with their open leads.
    pub async fn list_reps(
        &self,
        tenant: &TenantId,
        page: Page,
    ) -> Result<(Vec<pb::Rep>, String), ApiError> {
        let query = rep::Entity::find().filter(rep::Column::TenantId.eq(tenant.as_str()));
        let (rows, token) = fetch_page(query, rep::Column::Seq, |r| r.seq, page, &self.db).await?;
        Ok((rows.iter().map(rep_to_proto).collect(), token))
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

pub(crate) async fn append_assigned<C: ConnectionTrait>(
    txn: &C,
    tenant: &TenantId,
    row: &assignment::Model,
) -> Result<(), DbErr> {
    EventLog::append(txn, tenant, &row.lead_id, &assigned_event(row))
        .await
        .map(|_| ())
}

/// The `LeadAssigned` event of an assignment to a rep.
pub(crate) fn assigned_event(row: &assignment::Model) -> LeadAssigned {
    LeadAssigned {
        lead_id: row.lead_id.clone(),
        rep_id: row.rep_id.clone().unwrap_or_default(),
        assignment_id: row.assignment_id.clone(),
        method: row.method.clone(),
        assigned_at: time::to_proto_opt(row.assigned_at),
    }
}

pub fn rep_to_proto(rep: &rep::Model) -> pb::Rep {
    let a = routing::attributes_of(rep);
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
                    from: Some(time::to_proto(*from)),
                    to: Some(time::to_proto(*to)),
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
