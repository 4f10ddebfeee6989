//! A lead's erasure in reporting: its facts stay (counts and sums must not change), but the
//! words its journal and customer record quote (stage reasons, rank reasons that quote its
//! fields, rejection and churn reasons that are not codes) go, and the dead letters about it
//! lose their event.

use baton_shared::{
    TenantId,
    erasure::{forget_dead_letters, keep_code},
};
use sea_orm::{
    ActiveModelTrait, ActiveValue::Set, ColumnTrait, ConnectionTrait, DbErr, EntityTrait,
    QueryFilter,
};

use super::entities::{customer, journal_entry};

/// The journal details whose values are words rather than ids, stages, times or amounts.
pub(crate) const WORDS: [&str; 2] = ["reason", "reasons"];

/// Everything reporting keeps that could identify `lead_id`, erased inside `txn`.
pub async fn erase<C: ConnectionTrait>(
    txn: &C,
    tenant: &TenantId,
    lead_id: &str,
) -> Result<(), DbErr> {
    let entries = journal_entry::Entity::find()
        .filter(journal_entry::Column::TenantId.eq(tenant.as_str()))
        .filter(journal_entry::Column::LeadId.eq(lead_id))
        .all(txn)
        .await?;
    for row in entries {
        let details = scrub_details(&row.details);
        if details != row.details {
            let mut entry: journal_entry::ActiveModel = row.into();
            entry.details = Set(details);
            entry.update(txn).await?;
        }
    }
    if let Some(c) = customer::Entity::find_by_id((tenant.to_string(), lead_id.to_owned()))
        .one(txn)
        .await?
    {
        let reason = keep_code(&c.churn_reason);
        if reason != c.churn_reason {
            let mut row: customer::ActiveModel = c.into();
            row.churn_reason = Set(reason);
            row.update(txn).await?;
        }
    }
    forget_dead_letters(txn, tenant, lead_id).await?;
    Ok(())
}

/// Stored details ("name=value" lines) with the values of [`WORDS`] reduced to codes.
pub(crate) fn scrub_details(details: &str) -> String {
    details
        .lines()
        .map(|line| match line.split_once('=') {
            Some((k, v)) if WORDS.contains(&k) => format!("{k}={}", keep_code(v)),
            _ => line.to_owned(),
        })
        .collect::<Vec<_>>()
        .join("\n")
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn only_words_go() {
        let stored = "from=mql\nto=sql\nreason=Qualified on the phone with Ada\nscore=50";
        assert_eq!(scrub_details(stored), "from=mql\nto=sql\nreason=\nscore=50");
        assert_eq!(scrub_details("reason=no_budget"), "reason=no_budget");
        assert_eq!(scrub_details("reasons=title Ada in [..]; x"), "reasons=");
    }
}
