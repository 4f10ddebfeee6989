//! nurture's persistence: sequences as rows, enrolments with their events.

pub mod entities;

use baton_proto::nurture::v1::{EnrollmentState, LeadEnrolled};
use baton_shared::events::EventLog;
use baton_shared::{
    TenantId,
    paging::{Page, fetch_page},
    time,
};
use chrono::{DateTime, Utc};
use sea_orm::{
    ActiveValue::{NotSet, Set},
    ConnectionTrait, DatabaseConnection, DbErr, EntityTrait, QueryFilter, QueryOrder,
    prelude::*,
};

use crate::domain::sequences::{self, RE_ENGAGEMENT_SEQUENCE_TOML, WELCOME_SEQUENCE_TOML};
use crate::error::Error;
use entities::{enrollment, sequence, sequence_step};

#[derive(Clone)]
pub struct Store {
    db: DatabaseConnection,
}

impl Store {
    pub fn new(db: DatabaseConnection) -> Self {
        Store { db }
    }

    pub async fn list_enrollments(
        &self,
        tenant: &TenantId,
        page: Page,
        lead_id: Option<&str>,
    ) -> Result<(Vec<enrollment::Model>, String), Error> {
        let mut query =
            enrollment::Entity::find().filter(enrollment::Column::TenantId.eq(tenant.as_str()));
        if let Some(lead_id) = lead_id {
            query = query.filter(enrollment::Column::LeadId.eq(lead_id));
        }
        Ok(fetch_page(query, enrollment::Column::Seq, |e| e.seq, page, &self.db).await?)
    }
}

/// Enrols a newly captured lead in the welcome sequence, once (a repeated event changes nothing).
pub async fn enroll_in_welcome<C: ConnectionTrait>(
    txn: &C,
    tenant: &TenantId,
    lead_id: &str,
    captured_at: DateTime<Utc>,
) -> Result<(), DbErr> {
    enroll(
        txn,
        tenant,
        lead_id,
        WELCOME_SEQUENCE_TOML,
        captured_at,
        false,
    )
    .await
}

/// Enrols a recycled lead in the re-engagement sequence, unless it is in it already (a lead may
/// be recycled again after finishing it).
pub async fn enroll_recycled<C: ConnectionTrait>(
    txn: &C,
    tenant: &TenantId,
    lead_id: &str,
    recycled_at: DateTime<Utc>,
) -> Result<(), DbErr> {
    enroll(
        txn,
        tenant,
        lead_id,
        RE_ENGAGEMENT_SEQUENCE_TOML,
        recycled_at,
        true,
    )
    .await
}

/// Enrols a lead in the sequence `definition` seeds; with `again`, a lead whose earlier enrolment
/// in it ended is enrolled anew, otherwise once ever.
async fn enroll<C: ConnectionTrait>(
    txn: &C,
    tenant: &TenantId,
    lead_id: &str,
    definition: &str,
    at: DateTime<Utc>,
    again: bool,
) -> Result<(), DbErr> {
    let (sequence, delays) = sequence_of(txn, tenant, definition).await?;
    let mut existing = enrollment::Entity::find()
        .filter(enrollment::Column::TenantId.eq(tenant.as_str()))
        .filter(enrollment::Column::LeadId.eq(lead_id))
        .filter(enrollment::Column::SequenceId.eq(sequence.sequence_id.as_str()));
    if again {
        existing = existing.filter(enrollment::Column::State.eq(EnrollmentState::Active as i32));
    }
    if existing.one(txn).await?.is_some() {
        return Ok(());
    }
    let row = enrollment::ActiveModel {
        seq: NotSet,
        enrollment_id: Set(uuid::Uuid::now_v7().to_string()),
        tenant_id: Set(tenant.to_string()),
        lead_id: Set(lead_id.to_owned()),
        sequence_id: Set(sequence.sequence_id.clone()),
        sequence_key: Set(sequence.key.clone()),
        state: Set(EnrollmentState::Active as i32),
        next_step: Set(0),
        next_step_due_at: Set(sequences::first_step_due(&delays, at)),
        enrolled_at: Set(time::now()),
    }
    .insert(txn)
    .await?;
    EventLog::append(
        txn,
        tenant,
        lead_id,
        &LeadEnrolled {
            enrollment: Some(crate::convert::enrollment_to_proto(&row)),
        },
    )
    .await?;
    Ok(())
}

/// Ends every active enrolment of a lead (its personal data was erased: nothing may be sent).
pub async fn exit_all<C: ConnectionTrait>(
    txn: &C,
    tenant: &TenantId,
    lead_id: &str,
) -> Result<(), DbErr> {
    enrollment::Entity::update_many()
        .col_expr(
            enrollment::Column::State,
            Expr::value(EnrollmentState::Exited as i32),
        )
        .col_expr(
            enrollment::Column::NextStepDueAt,
            Expr::value(Option::<chrono::DateTime<Utc>>::None),
        )
        .filter(enrollment::Column::TenantId.eq(tenant.as_str()))
        .filter(enrollment::Column::LeadId.eq(lead_id))
        .filter(enrollment::Column::State.eq(EnrollmentState::Active as i32))
        .exec(txn)
        .await?;
    Ok(())
}

/// A recycled lead went back to sales (an overturned rejection re-opened its handoff): it leaves
/// the re-engagement sequence.
pub async fn exit_recycled<C: ConnectionTrait>(
    txn: &C,
    tenant: &TenantId,
    lead_id: &str,
) -> Result<(), DbErr> {
    let (sequence, _) = sequence_of(txn, tenant, RE_ENGAGEMENT_SEQUENCE_TOML).await?;
    enrollment::Entity::update_many()
        .col_expr(
            enrollment::Column::State,
            Expr::value(EnrollmentState::Exited as i32),
        )
        .col_expr(
            enrollment::Column::NextStepDueAt,
            Expr::value(Option::<chrono::DateTime<Utc>>::None),
        )
        .filter(enrollment::Column::TenantId.eq(tenant.as_str()))
        .filter(enrollment::Column::LeadId.eq(lead_id))
        .filter(enrollment::Column::SequenceId.eq(sequence.sequence_id.as_str()))
        .filter(enrollment::Column::State.eq(EnrollmentState::Active as i32))
        .exec(txn)
        .await?;
    Ok(())
}

/// The tenant's sequence of a default definition and its step delays, seeding it on first use.
async fn sequence_of<C: ConnectionTrait>(
    txn: &C,
    tenant: &TenantId,
    definition: &str,
) -> Result<(sequence::Model, Vec<u32>), DbErr> {
    let def = sequences::parse_sequence(definition)
        .map_err(|e| DbErr::Custom(format!("sequence definition: {e}")))?;
    let found = sequence::Entity::find()
        .filter(sequence::Column::TenantId.eq(tenant.as_str()))
        .filter(sequence::Column::Key.eq(def.key.as_str()))
        .one(txn)
        .await?;
    let sequence = match found {
        Some(s) => s,
        None => {
            let s = sequence::ActiveModel {
                seq: NotSet,
                sequence_id: Set(uuid::Uuid::now_v7().to_string()),
                tenant_id: Set(tenant.to_string()),
                key: Set(def.key.clone()),
                name: Set(def.name.clone()),
                created_at: Set(time::now()),
            }
            .insert(txn)
            .await?;
            let steps = def
                .steps
                .iter()
                .enumerate()
                .map(|(i, step)| sequence_step::ActiveModel {
                    seq: NotSet,
                    sequence_id: Set(s.sequence_id.clone()),
                    position: Set(i as i32),
                    template: Set(step.template.clone()),
                    delay_hours: Set(step.delay_hours as i32),
                });
            sequence_step::Entity::insert_many(steps).exec(txn).await?;
            s
        }
    };
    let delays = sequence_step::Entity::find()
        .filter(sequence_step::Column::SequenceId.eq(sequence.sequence_id.as_str()))
        .order_by_asc(sequence_step::Column::Position)
        .all(txn)
        .await?
        .into_iter()
        .map(|s| s.delay_hours.max(0) as u32)
        .collect();
    Ok((sequence, delays))
}
