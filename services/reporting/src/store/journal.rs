//! A lead's journal as stored: one row per entry, appended in the transaction that applies the
//! event it comes from.

use baton_shared::{TenantId, time};
use chrono::{DateTime, Utc};
use sea_orm::{
    ActiveValue::{NotSet, Set},
    ConnectionTrait, DbErr, EntityTrait, QueryFilter, QueryOrder,
    prelude::*,
};

use super::{
    Store,
    entities::journal_entry,
    erasure::{WORDS, scrub_details},
};
use crate::{
    domain::journal::{self, Entry},
    error::Error,
};

/// Appends `entry` (its time, else `fallback`).
pub async fn record<C: ConnectionTrait>(
    txn: &C,
    tenant: &TenantId,
    entry: Entry,
    fallback: DateTime<Utc>,
) -> Result<(), DbErr> {
    if entry.lead_id.is_empty() {
        return Ok(());
    }
    let mut details = entry
        .details
        .iter()
        .map(|(k, v)| format!("{k}={}", v.replace('\n', " ")))
        .collect::<Vec<_>>()
        .join("\n");
    // An event that quotes words about a lead erased already (its producer had not yet scrubbed
    // it when reporting read it, e.g. a stage reason read from qualification's log before
    // qualification applied the erasure) is stored scrubbed, as the erasure would have left it.
    if entry
        .details
        .iter()
        .any(|(k, _)| WORDS.contains(&k.as_str()))
        && erased(txn, tenant, &entry.lead_id).await?
    {
        details = scrub_details(&details);
    }
    journal_entry::Entity::insert(journal_entry::ActiveModel {
        seq: NotSet,
        tenant_id: Set(tenant.to_string()),
        lead_id: Set(entry.lead_id),
        at: Set(entry.at.unwrap_or(fallback)),
        service: Set(entry.service.to_owned()),
        kind: Set(entry.kind),
        actor: Set(entry.actor),
        details: Set(details),
        recorded_at: Set(time::now()),
    })
    .exec_without_returning(txn)
    .await?;
    Ok(())
}

/// Whether the journal of `lead_id` records its erasure.
pub(crate) async fn erased<C: ConnectionTrait>(
    txn: &C,
    tenant: &TenantId,
    lead_id: &str,
) -> Result<bool, DbErr> {
    let found = journal_entry::Entity::find()
        .filter(journal_entry::Column::TenantId.eq(tenant.as_str()))
        .filter(journal_entry::Column::LeadId.eq(lead_id))
        .filter(journal_entry::Column::Kind.eq(journal::ERASED))
        .one(txn)
        .await?;
    Ok(found.is_some())
}

/// A stored entry's details as (name, value) pairs.
pub fn details_of(row: &journal_entry::Model) -> Vec<(String, String)> {
    row.details
        .lines()
        .filter_map(|l| l.split_once('='))
        .map(|(k, v)| (k.to_owned(), v.to_owned()))
        .collect()
}

impl Store {
    /// Every entry of a lead's journal in time order (NOT_FOUND when there is none).
    pub async fn journal(
        &self,
        tenant: &TenantId,
        lead_id: &str,
    ) -> Result<Vec<journal_entry::Model>, Error> {
        let rows = journal_entry::Entity::find()
            .filter(journal_entry::Column::TenantId.eq(tenant.as_str()))
            .filter(journal_entry::Column::LeadId.eq(lead_id))
            .order_by_asc(journal_entry::Column::At)
            .order_by_asc(journal_entry::Column::Seq)
            .all(&self.db)
            .await?;
        if rows.is_empty() {
            return Err(Error::not_found("lead", lead_id));
        }
        Ok(rows)
    }
}
