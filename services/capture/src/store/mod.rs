//! capture's persistence: one function per use case, each change and its event in one transaction.

pub mod entities;

use baton_proto::capture::v1::{self as pb, ActivityRecorded, LeadCaptured};
use baton_shared::{ApiError, TenantId, events::EventLog, time};

use sea_orm::{
    ActiveValue::{NotSet, Set},
    DatabaseConnection, DbErr, EntityTrait, QueryFilter, SqlErr, TransactionTrait,
    prelude::*,
};

use crate::domain::{activity::NewActivity, lead::NewLead};
use entities::{activity, capture_request, lead};

/// How often a write that lost a race on a unique key is retried (it then sees the winner's row).
const UNIQUE_RACE_RETRIES: usize = 3;

#[derive(Clone)]
pub struct Store {
    db: DatabaseConnection,
    log: EventLog,
}

impl Store {
    pub fn new(db: DatabaseConnection, log: EventLog) -> Self {
        Store { db, log }
    }

    /// Captures a lead: replays a known request_id, returns the existing lead of the same normalised
    /// e-mail, or creates the lead and its `LeadCaptured` event. Returns the lead and whether it was created.
    pub async fn capture_lead(
        &self,
        tenant: &TenantId,
        new: &NewLead,
    ) -> Result<(lead::Model, bool), ApiError> {
        let mut attempt = 0;
        loop {
            match self.try_capture_lead(tenant, new).await {
                Err(ApiError::Database(e))
                    if is_unique_violation(&e) && attempt < UNIQUE_RACE_RETRIES =>
                {
                    attempt += 1
                }
                other => return other,
            }
        }
    }

    async fn try_capture_lead(
        &self,
        tenant: &TenantId,
        new: &NewLead,
    ) -> Result<(lead::Model, bool), ApiError> {
        let txn = self.db.begin().await?;
        if let Some(seen) =
            capture_request::Entity::find_by_id((tenant.to_string(), new.request_id.clone()))
                .one(&txn)
                .await?
        {
            if seen.fingerprint != new.fingerprint {
                return Err(ApiError::invalid(
                    "request_id",
                    "was already used for a different capture",
                ));
            }
            let lead = find_lead(&txn, tenant, &seen.lead_id).await?;
            return Ok((lead, seen.created));
        }
        let existing = lead::Entity::find()
            .filter(lead::Column::TenantId.eq(tenant.as_str()))
            .filter(lead::Column::EmailNormalized.eq(new.email_normalized.as_str()))
            .one(&txn)
            .await?;
        let now = time::now();
        let (lead, created) = match existing {
            Some(lead) => (lead, false),
            None => {
                let lead = lead::ActiveModel {
                    seq: NotSet,
                    lead_id: Set(uuid::Uuid::now_v7().to_string()),
                    tenant_id: Set(tenant.to_string()),
                    email: Set(new.email.clone()),
                    email_normalized: Set(new.email_normalized.clone()),
                    first_name: Set(new.first_name.clone()),
                    last_name: Set(new.last_name.clone()),
                    company_name: Set(new.company_name.clone()),
                    source_channel: Set(new.channel.clone()),
                    source_campaign: Set(new.campaign.clone()),
                    captured_at: Set(new.captured_at),
                    created_at: Set(now),
                }
                .insert(&txn)
                .await?;
                (lead, true)
            }
        };
        capture_request::ActiveModel {
            tenant_id: Set(tenant.to_string()),
            request_id: Set(new.request_id.clone()),
            fingerprint: Set(new.fingerprint.clone()),
            lead_id: Set(lead.lead_id.clone()),
            created: Set(created),
            created_at: Set(now),
        }
        .insert(&txn)
        .await?;
        if created {
            let event = LeadCaptured {
                lead_id: lead.lead_id.clone(),
                email: lead.email.clone(),
                source: Some(source_of(&lead)),
                captured_at: Some(time::to_proto(lead.captured_at)),
            };
            EventLog::append(&txn, tenant, &lead.lead_id, &event).await?;
        }
        txn.commit().await?;
        if created {
            self.log.notify_committed();
        }
        Ok((lead, created))
    }

    /// Records an activity once per idempotency key, with its `ActivityRecorded` event.
    pub async fn record_activity(
        &self,
        tenant: &TenantId,
        new: &NewActivity,
    ) -> Result<(activity::Model, bool), ApiError> {
        let mut attempt = 0;
        loop {
            match self.try_record_activity(tenant, new).await {
                Err(ApiError::Database(e))
                    if is_unique_violation(&e) && attempt < UNIQUE_RACE_RETRIES =>
                {
                    attempt += 1
                }
                other => return other,
            }
        }
    }

    async fn try_record_activity(
        &self,
        tenant: &TenantId,
        new: &NewActivity,
    ) -> Result<(activity::Model, bool), ApiError> {
        let txn = self.db.begin().await?;
        let seen = activity::Entity::find()
            .filter(activity::Column::TenantId.eq(tenant.as_str()))
            .filter(activity::Column::IdempotencyKey.eq(new.idempotency_key.as_str()))
            .one(&txn)
            .await?;
        if let Some(seen) = seen {
            if seen.lead_id != new.lead_id || seen.kind != new.kind as i32 {
                return Err(ApiError::invalid(
                    "idempotency_key",
                    "was already used for a different activity",
                ));
            }
            return Ok((seen, false));
        }
        find_lead(&txn, tenant, &new.lead_id).await?;
        let activity = activity::ActiveModel {
            seq: NotSet,
            activity_id: Set(uuid::Uuid::now_v7().to_string()),
            tenant_id: Set(tenant.to_string()),
            lead_id: Set(new.lead_id.clone()),
            idempotency_key: Set(new.idempotency_key.clone()),
            kind: Set(new.kind as i32),
            url: Set(new.url.clone()),
            page_kind: Set(new.page_kind as i32),
            occurred_at: Set(new.occurred_at),
            created_at: Set(time::now()),
        }
        .insert(&txn)
        .await?;
        let event = ActivityRecorded {
            activity: Some(activity_to_proto(&activity)),
        };
        EventLog::append(&txn, tenant, &activity.lead_id, &event).await?;
        txn.commit().await?;
        self.log.notify_committed();
        Ok((activity, true))
    }

    pub async fn get_lead(
        &self,
        tenant: &TenantId,
        lead_id: &str,
    ) -> Result<lead::Model, ApiError> {
        find_lead(&self.db, tenant, lead_id).await
    }
}

async fn find_lead<C: sea_orm::ConnectionTrait>(
    db: &C,
    tenant: &TenantId,
    lead_id: &str,
) -> Result<lead::Model, ApiError> {
    lead::Entity::find()
        .filter(lead::Column::TenantId.eq(tenant.as_str()))
        .filter(lead::Column::LeadId.eq(lead_id))
        .one(db)
        .await?
        .ok_or_else(|| ApiError::not_found("lead", lead_id))
}

fn is_unique_violation(e: &DbErr) -> bool {
    matches!(e.sql_err(), Some(SqlErr::UniqueConstraintViolation(_)))
}

pub fn source_of(lead: &lead::Model) -> pb::LeadSource {
    pb::LeadSource {
        channel: lead.source_channel.clone(),
        campaign: lead.source_campaign.clone(),
    }
}

pub fn lead_to_proto(lead: &lead::Model) -> pb::Lead {
    pb::Lead {
        lead_id: lead.lead_id.clone(),
        email: lead.email.clone(),
        first_name: lead.first_name.clone(),
        last_name: lead.last_name.clone(),
        company_name: lead.company_name.clone(),
        source: Some(source_of(lead)),
        captured_at: Some(time::to_proto(lead.captured_at)),
        created_at: Some(time::to_proto(lead.created_at)),
    }
}

pub fn activity_to_proto(a: &activity::Model) -> pb::Activity {
    pb::Activity {
        activity_id: a.activity_id.clone(),
        lead_id: a.lead_id.clone(),
        kind: a.kind,
        occurred_at: Some(time::to_proto(a.occurred_at)),
        url: a.url.clone(),
        page_kind: a.page_kind,
    }
}
