//! E-mail facts: the leads e-mail reached per slot (for rates that count each lead once per
//! period), and the deliverable addresses (the list size).

use baton_shared::TenantId;
use chrono::{DateTime, Utc};
use sea_orm::{
    ActiveValue::Set, ConnectionTrait, DbErr, EntityTrait, QueryFilter, QueryOrder, QuerySelect,
    QueryTrait, prelude::*, sea_query::OnConflict,
};

use super::{
    Store,
    entities::{email_lead_slot, lead_dim},
    kpis::{self, Dims, Fact, slot_of},
};
use crate::{
    domain::{
        email::{self, At, Reach},
        kpis::{Metric, Period},
    },
    error::Error,
};

/// How far back a conversion or an open looks for the delivery it follows.
const LOOK_BACK_DAYS: i64 = email::MAX_CONVERSION_WINDOW_DAYS as i64;

/// The slot of the lead's latest delivery at or before `at` (within the look-back), if any.
async fn latest_delivery<C: ConnectionTrait>(
    txn: &C,
    tenant: &TenantId,
    lead_id: &str,
    at: DateTime<Utc>,
) -> Result<Option<DateTime<Utc>>, DbErr> {
    let since = at - chrono::Duration::days(LOOK_BACK_DAYS);
    if let Some(slot) = kpis::batch_delivery(tenant, lead_id, (since, slot_of(at))) {
        return Ok(Some(slot));
    }
    use email_lead_slot::Column as C;
    let found: Option<DateTime<Utc>> = email_lead_slot::Entity::find()
        .select_only()
        .column(C::Slot)
        .filter(C::TenantId.eq(tenant.as_str()))
        .filter(C::LeadId.eq(lead_id))
        .filter(C::Kind.eq(Reach::Delivered.as_str()))
        .filter(C::Slot.lte(slot_of(at)))
        .filter(C::Slot.gte(at - chrono::Duration::days(LOOK_BACK_DAYS)))
        .order_by_desc(C::Slot)
        .into_tuple()
        .one(txn)
        .await?;
    Ok(found)
}

/// Records how an activity at `at` reached the lead (see [`email::reaches`]).
pub async fn record_reach<C: ConnectionTrait>(
    txn: &C,
    tenant: &TenantId,
    lead_id: &str,
    kind: baton_proto::capture::v1::ActivityKind,
    at: DateTime<Utc>,
) -> Result<(), DbErr> {
    let reaches = email::reaches(kind);
    if reaches.is_empty() {
        return Ok(());
    }
    let row = kpis::lock_lead(txn, tenant, lead_id).await?;
    let dims = kpis::dims_at(&row, at);
    for (reach, at_where) in reaches {
        let slot = match at_where {
            At::Itself => slot_of(at),
            At::LatestDelivery => match latest_delivery(txn, tenant, lead_id, at).await? {
                Some(slot) => slot,
                None => continue,
            },
        };
        let gap = (at - slot).num_seconds().max(0);
        insert_reach(txn, tenant, lead_id, (*reach, slot), &dims, gap).await?;
    }
    Ok(())
}

async fn insert_reach<C: ConnectionTrait>(
    txn: &C,
    tenant: &TenantId,
    lead_id: &str,
    (reach, slot): (Reach, DateTime<Utc>),
    dims: &Dims,
    gap: i64,
) -> Result<(), DbErr> {
    let key = (tenant.to_string(), reach.as_str(), slot, lead_id.to_owned());
    if kpis::defer_reach(key, dims, gap) {
        return Ok(());
    }
    use email_lead_slot::Column as C;
    let mut on_conflict = OnConflict::columns([C::TenantId, C::Kind, C::Slot, C::LeadId]);
    if reach == Reach::Converted {
        // The shortest time from the delivery to a conversion is the one the window is held to.
        on_conflict.value(C::GapSeconds, Expr::cust(kpis::SHORTEST_GAP));
    } else {
        on_conflict.do_nothing();
    }
    let row = kpis::reach_row(tenant.as_str(), reach.as_str(), slot, lead_id, dims, gap);
    let result = email_lead_slot::Entity::insert(row)
        .on_conflict(on_conflict)
        .exec_without_returning(txn)
        .await;
    match result {
        Ok(_) | Err(DbErr::RecordNotInserted) => Ok(()),
        Err(e) => Err(e),
    }
}

/// The lead's e-mail state becomes `flags` at `at`: the list sizes follow when it became, or
/// stopped being, deliverable.
pub async fn set_email_flags<C: ConnectionTrait>(
    txn: &C,
    tenant: &TenantId,
    lead_id: &str,
    change: impl Fn(i32) -> i32,
    at: DateTime<Utc>,
) -> Result<(), DbErr> {
    let row = kpis::lock_lead(txn, tenant, lead_id).await?;
    let before = row.email_flags;
    let after = change(before);
    if after == before {
        return Ok(());
    }
    let mut active: lead_dim::ActiveModel = row.into();
    active.email_flags = Set(after);
    kpis::save_lead(txn, active).await?;
    for (metric, requires_opt_in) in [
        (Metric::ListSize, true),
        (Metric::ListSizeAnyConsent, false),
    ] {
        let delta = i64::from(email::deliverable(after, requires_opt_in))
            - i64::from(email::deliverable(before, requires_opt_in));
        kpis::bump_for_lead(txn, tenant, lead_id, &Fact::new(metric, at, delta)).await?;
    }
    Ok(())
}

impl Store {
    /// Per period and group, the leads e-mail reached in `reach` (each once per period);
    /// conversions only within `window_seconds` of their delivery.
    pub async fn reach_counts(
        &self,
        tenant: &TenantId,
        reach: Reach,
        periods: &[Period],
        q: &super::kpi_sums::SumQuery<'_>,
        window_seconds: i64,
    ) -> Result<Vec<(usize, Vec<String>, i64)>, Error> {
        use email_lead_slot::Column as C;
        let mut out = Vec::new();
        for (i, p) in periods.iter().enumerate() {
            let mut select = email_lead_slot::Entity::find()
                .select_only()
                .column_as(
                    Expr::cust("CAST(COUNT(DISTINCT email_lead_slot.lead_id) AS BIGINT)"),
                    "n",
                )
                .filter(C::TenantId.eq(tenant.as_str()))
                .filter(C::Kind.eq(reach.as_str()))
                .filter(C::Slot.gte(p.start))
                .filter(C::Slot.lt(p.end));
            if reach == Reach::Converted {
                select = select.filter(C::GapSeconds.lte(window_seconds));
            }
            for d in q.group_by {
                if let Ok(column) = d.parse::<C>() {
                    select = select.column(column).group_by(column);
                }
            }
            for (d, value) in q.filters {
                if let Ok(column) = d.parse::<C>() {
                    select = select.filter(column.eq(value.as_str()));
                }
            }
            for row in self.db.query_all(&select.into_query()).await? {
                let mut group = Vec::with_capacity(q.group_by.len());
                for d in q.group_by {
                    group.push(row.try_get::<String>("", d)?);
                }
                out.push((i, group, row.try_get::<i64>("", "n")?));
            }
        }
        Ok(out)
    }
}
