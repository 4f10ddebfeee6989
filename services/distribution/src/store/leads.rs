//! What a handoff checks of its lead besides score and rank, kept from other services' events:
//! qualification's BANT record (`BantRecorded`), capture's erasure (`LeadErased`) and merge
//! (`LeadsMerged`); and the tenant's handoff settings.

use baton_proto::qualification::v1::BantRecorded;
use baton_shared::{TenantId, time};
use chrono::{DateTime, Utc};
use sea_orm::{
    ActiveValue::{NotSet, Set},
    ConnectionTrait, DbErr, EntityTrait, TransactionTrait,
    sea_query::OnConflict,
};

use super::{
    Store,
    entities::{handoff_settings, lead_record},
};
use crate::{domain::handoffs::Bant, error::Error};

/// What changes on a lead's record.
enum Change<'a> {
    Bant(Bant, DateTime<Utc>),
    Erased(DateTime<Utc>),
    Merged(&'a str),
}

async fn record<C: ConnectionTrait>(
    txn: &C,
    tenant: &TenantId,
    lead_id: &str,
    change: Change<'_>,
) -> Result<(), DbErr> {
    let mut row = lead_record::ActiveModel {
        tenant_id: Set(tenant.to_string()),
        lead_id: Set(lead_id.to_owned()),
        bant: NotSet,
        bant_recorded_at: NotSet,
        erased_at: NotSet,
        merged_into: NotSet,
        updated_at: Set(time::now()),
    };
    let column = match change {
        Change::Bant(bant, at) => {
            row.bant = Set(bant.bits());
            row.bant_recorded_at = Set(Some(at));
            vec![
                lead_record::Column::Bant,
                lead_record::Column::BantRecordedAt,
            ]
        }
        Change::Erased(at) => {
            row.erased_at = Set(Some(at));
            vec![lead_record::Column::ErasedAt]
        }
        Change::Merged(survivor) => {
            row.merged_into = Set(Some(survivor.to_owned()));
            vec![lead_record::Column::MergedInto]
        }
    };
    let mut on_conflict =
        OnConflict::columns([lead_record::Column::TenantId, lead_record::Column::LeadId]);
    on_conflict.update_columns(column);
    on_conflict.update_column(lead_record::Column::UpdatedAt);
    lead_record::Entity::insert(row)
        .on_conflict(on_conflict.to_owned())
        .exec_without_returning(txn)
        .await?;
    Ok(())
}

/// Keeps qualification's BANT record of a lead (the whole BANT, as of the event).
pub async fn bant_recorded<C: ConnectionTrait>(
    txn: &C,
    tenant: &TenantId,
    e: &BantRecorded,
) -> Result<(), DbErr> {
    let bant = Bant {
        budget: e.budget,
        authority: e.authority,
        need: e.need,
        timeframe: e.timeframe,
    };
    let at = e
        .recorded_at
        .as_ref()
        .and_then(time::from_proto)
        .unwrap_or_else(time::now);
    record(txn, tenant, &e.lead_id, Change::Bant(bant, at)).await
}

/// Capture erased the lead's personal data: it can no longer be handed off.
pub async fn erased<C: ConnectionTrait>(
    txn: &C,
    tenant: &TenantId,
    lead_id: &str,
    at: DateTime<Utc>,
) -> Result<(), DbErr> {
    record(txn, tenant, lead_id, Change::Erased(at)).await
}

/// Capture merged `merged` into `survivor`: hand off the survivor instead.
pub async fn merged<C: ConnectionTrait>(
    txn: &C,
    tenant: &TenantId,
    merged: &str,
    survivor: &str,
) -> Result<(), DbErr> {
    record(txn, tenant, merged, Change::Merged(survivor)).await
}

/// The lead's record, if distribution heard anything of it.
pub async fn record_of<C: ConnectionTrait>(
    db: &C,
    tenant: &TenantId,
    lead_id: &str,
) -> Result<Option<lead_record::Model>, DbErr> {
    lead_record::Entity::find_by_id((tenant.to_string(), lead_id.to_owned()))
        .one(db)
        .await
}

/// The tenant's handoff settings, seeding the defaults (version 1) on first use.
pub async fn settings<C: ConnectionTrait>(
    db: &C,
    tenant: &TenantId,
) -> Result<handoff_settings::Model, DbErr> {
    if let Some(row) = handoff_settings::Entity::find_by_id(tenant.to_string())
        .one(db)
        .await?
    {
        return Ok(row);
    }
    handoff_settings::Entity::insert(handoff_settings::ActiveModel {
        tenant_id: Set(tenant.to_string()),
        version: Set(1),
        allow_uncontracted: Set(false),
        updated_at: Set(time::now()),
    })
    .on_conflict_do_nothing_on([handoff_settings::Column::TenantId])
    .exec(db)
    .await?;
    handoff_settings::Entity::find_by_id(tenant.to_string())
        .one(db)
        .await?
        .ok_or_else(|| DbErr::RecordNotFound("handoff settings just seeded".into()))
}

impl Store {
    pub async fn handoff_settings(
        &self,
        tenant: &TenantId,
    ) -> Result<handoff_settings::Model, Error> {
        Ok(settings(&self.db, tenant).await?)
    }

    /// Replaces the tenant's handoff settings with a new version.
    pub async fn set_handoff_settings(
        &self,
        tenant: &TenantId,
        allow_uncontracted: bool,
        expected_version: i32,
    ) -> Result<handoff_settings::Model, Error> {
        let txn = self.db.begin().await?;
        let current = settings(&txn, tenant).await?;
        if expected_version != 0 && expected_version != current.version {
            return Err(Error::RuleBroken {
                rule: "version_conflict".into(),
                description: format!(
                    "handoff settings are at version {}, not {expected_version}",
                    current.version
                ),
            });
        }
        let version = current.version + 1;
        let mut row: handoff_settings::ActiveModel = current.into();
        row.version = Set(version);
        row.allow_uncontracted = Set(allow_uncontracted);
        row.updated_at = Set(time::now());
        let saved = sea_orm::ActiveModelTrait::update(row, &txn).await?;
        txn.commit().await?;
        Ok(saved)
    }
}
