//! The KPI engine's facts. Written in the transaction that applies each event, so the rollups are
//! always current: counters per metric, 15-minute slot and dimension group (every IANA offset is a
//! multiple of 15 minutes, so any time zone's periods are whole slots), and visitors per day.
//! Queries sum rollups; they never scan raw events.

use baton_shared::TenantId;
use chrono::{DateTime, NaiveDate, Utc};
use sea_orm::{
    ActiveValue::Set, ConnectionTrait, DbErr, EntityTrait, QueryFilter, QuerySelect, prelude::*,
    sea_query::OnConflict,
};

use super::{
    Store,
    entities::{funnel_fact, kpi_pending, kpi_rollup, lead_dim, visit_day},
};
use crate::{
    domain::{
        funnel::Step,
        kpis::{self, Metric, Observation},
    },
    error::Error,
};

/// The dimensions a fact is counted under.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct Dims {
    pub channel: String,
    pub campaign: String,
}

impl Dims {
    /// The value of dimension `name` (see [`kpis::DIMENSIONS`]).
    pub fn value(&self, name: &str) -> String {
        match name {
            "channel" => self.channel.clone(),
            "campaign" => self.campaign.clone(),
            _ => String::new(),
        }
    }
}

/// The start of the 15-minute slot that holds `at`.
pub fn slot_of(at: DateTime<Utc>) -> DateTime<Utc> {
    let secs = at.timestamp();
    let start = secs - secs.rem_euclid(15 * 60);
    DateTime::from_timestamp(start, 0).unwrap_or(at)
}

/// The lead's row, created as a placeholder (no capture yet) when missing, and locked for the rest
/// of the transaction on PostgreSQL: a lead's capture and its other facts arrive on different logs
/// and may be applied concurrently; the row orders them.
async fn lock_lead<C: ConnectionTrait>(
    txn: &C,
    tenant: &TenantId,
    lead_id: &str,
) -> Result<lead_dim::Model, DbErr> {
    lead_dim::Entity::insert(lead_dim::ActiveModel {
        tenant_id: Set(tenant.to_string()),
        lead_id: Set(lead_id.to_owned()),
        channel: Set(String::new()),
        campaign: Set(String::new()),
        captured_at: Set(None),
    })
    .on_conflict_do_nothing_on([lead_dim::Column::TenantId, lead_dim::Column::LeadId])
    .exec(txn)
    .await?;
    let mut query = lead_dim::Entity::find_by_id((tenant.to_string(), lead_id.to_owned()));
    if txn.get_database_backend() == sea_orm::DbBackend::Postgres {
        query = query.lock_exclusive();
    }
    query
        .one(txn)
        .await?
        .ok_or_else(|| DbErr::RecordNotFound(format!("lead_dim {lead_id}")))
}

/// A lead was captured: its dimensions are kept and `leads` counts it, once; facts of the lead
/// that arrived first move under its dimensions.
pub async fn lead_captured<C: ConnectionTrait>(
    txn: &C,
    tenant: &TenantId,
    lead_id: &str,
    dims: &Dims,
    at: DateTime<Utc>,
) -> Result<(), DbErr> {
    let row = lock_lead(txn, tenant, lead_id).await?;
    if row.captured_at.is_some() {
        return Ok(());
    }
    let mut captured: lead_dim::ActiveModel = row.into();
    captured.channel = Set(dims.channel.clone());
    captured.campaign = Set(dims.campaign.clone());
    captured.captured_at = Set(Some(at));
    sea_orm::ActiveModelTrait::update(captured, txn).await?;
    bump(txn, tenant, Metric::Leads, at, dims, 1).await?;
    let pending = kpi_pending::Entity::find()
        .filter(kpi_pending::Column::TenantId.eq(tenant.as_str()))
        .filter(kpi_pending::Column::LeadId.eq(lead_id))
        .all(txn)
        .await?;
    for p in &pending {
        let Some(metric) = Metric::from_name(&p.metric) else {
            continue;
        };
        bump(txn, tenant, metric, p.at, &Dims::default(), -p.value).await?;
        bump(txn, tenant, metric, p.at, dims, p.value).await?;
    }
    if !pending.is_empty() {
        kpi_pending::Entity::delete_many()
            .filter(kpi_pending::Column::TenantId.eq(tenant.as_str()))
            .filter(kpi_pending::Column::LeadId.eq(lead_id))
            .exec(txn)
            .await?;
    }
    Ok(())
}

/// A lead reached a funnel step: the step is recorded once, and the cohort conversions it closes
/// are counted (at the moment the lead reached the cohort's first step, whichever of the two steps
/// arrives last). Returns whether this was the first time the lead reached the step.
pub async fn step_reached<C: ConnectionTrait>(
    txn: &C,
    tenant: &TenantId,
    lead_id: &str,
    step: Step,
    at: DateTime<Utc>,
) -> Result<bool, DbErr> {
    // The lead's row orders this against the lead's other steps arriving on other logs.
    lock_lead(txn, tenant, lead_id).await?;
    if !super::record_fact(txn, tenant, lead_id, step, at).await? {
        return Ok(false);
    }
    for cohort in &kpis::COHORTS {
        let first_at = if cohort.second == step {
            step_time(txn, tenant, lead_id, cohort.first).await?
        } else if cohort.first == step
            && step_time(txn, tenant, lead_id, cohort.second)
                .await?
                .is_some()
        {
            Some(at)
        } else {
            None
        };
        if let Some(first_at) = first_at {
            bump_for_lead(txn, tenant, lead_id, cohort.metric, first_at, 1).await?;
        }
    }
    Ok(true)
}

/// When the lead first reached `step`, if it did.
async fn step_time<C: ConnectionTrait>(
    txn: &C,
    tenant: &TenantId,
    lead_id: &str,
    step: Step,
) -> Result<Option<DateTime<Utc>>, DbErr> {
    Ok(funnel_fact::Entity::find()
        .filter(funnel_fact::Column::TenantId.eq(tenant.as_str()))
        .filter(funnel_fact::Column::LeadId.eq(lead_id))
        .filter(funnel_fact::Column::Step.eq(step.as_str()))
        .one(txn)
        .await?
        .map(|f| f.occurred_at))
}

/// Counts a fact about a lead under the dimensions it was captured with; before its capture has
/// arrived, without dimensions (kept pending, moved when the capture arrives).
pub async fn bump_for_lead<C: ConnectionTrait>(
    txn: &C,
    tenant: &TenantId,
    lead_id: &str,
    metric: Metric,
    at: DateTime<Utc>,
    delta: i64,
) -> Result<(), DbErr> {
    if delta == 0 {
        return Ok(());
    }
    let row = lock_lead(txn, tenant, lead_id).await?;
    let dims = if row.captured_at.is_some() {
        Dims {
            channel: row.channel,
            campaign: row.campaign,
        }
    } else {
        kpi_pending::Entity::insert(kpi_pending::ActiveModel {
            seq: sea_orm::ActiveValue::NotSet,
            tenant_id: Set(tenant.to_string()),
            lead_id: Set(lead_id.to_owned()),
            metric: Set(metric.as_str().to_owned()),
            at: Set(at),
            value: Set(delta),
        })
        .exec(txn)
        .await?;
        Dims::default()
    };
    bump(txn, tenant, metric, at, &dims, delta).await
}

/// Adds `delta` to `metric` in the slot of `at` for `dims`.
pub async fn bump<C: ConnectionTrait>(
    txn: &C,
    tenant: &TenantId,
    metric: Metric,
    at: DateTime<Utc>,
    dims: &Dims,
    delta: i64,
) -> Result<(), DbErr> {
    if delta == 0 {
        return Ok(());
    }
    kpi_rollup::Entity::insert(kpi_rollup::ActiveModel {
        tenant_id: Set(tenant.to_string()),
        metric: Set(metric.as_str().to_owned()),
        slot: Set(slot_of(at)),
        channel: Set(dims.channel.clone()),
        campaign: Set(dims.campaign.clone()),
        value: Set(delta),
    })
    .on_conflict(
        OnConflict::columns([
            kpi_rollup::Column::TenantId,
            kpi_rollup::Column::Metric,
            kpi_rollup::Column::Slot,
            kpi_rollup::Column::Channel,
            kpi_rollup::Column::Campaign,
        ])
        .value(
            kpi_rollup::Column::Value,
            Expr::cust("kpi_rollup.value + excluded.value"),
        )
        .to_owned(),
    )
    .exec(txn)
    .await?;
    if delta < 0 {
        // A counter moved elsewhere leaves no empty row behind (groups are the ones with facts).
        kpi_rollup::Entity::delete_many()
            .filter(kpi_rollup::Column::TenantId.eq(tenant.as_str()))
            .filter(kpi_rollup::Column::Metric.eq(metric.as_str()))
            .filter(kpi_rollup::Column::Slot.eq(slot_of(at)))
            .filter(kpi_rollup::Column::Channel.eq(dims.channel.as_str()))
            .filter(kpi_rollup::Column::Campaign.eq(dims.campaign.as_str()))
            .filter(kpi_rollup::Column::Value.eq(0))
            .exec(txn)
            .await?;
    }
    Ok(())
}

/// Sets the visitors of a source on a day (a later count for the same day replaces the earlier).
pub async fn set_visits<C: ConnectionTrait>(
    txn: &C,
    tenant: &TenantId,
    day: &str,
    dims: &Dims,
    visitors: i64,
) -> Result<(), DbErr> {
    visit_day::Entity::insert(visit_day::ActiveModel {
        tenant_id: Set(tenant.to_string()),
        day: Set(day.to_owned()),
        channel: Set(dims.channel.clone()),
        campaign: Set(dims.campaign.clone()),
        visitors: Set(visitors),
    })
    .on_conflict(
        OnConflict::columns([
            visit_day::Column::TenantId,
            visit_day::Column::Day,
            visit_day::Column::Channel,
            visit_day::Column::Campaign,
        ])
        .update_column(visit_day::Column::Visitors)
        .to_owned(),
    )
    .exec(txn)
    .await?;
    Ok(())
}

/// What to sum: metrics, `[start, end)`, the dimensions to group by and the filters.
pub struct SumQuery<'a> {
    pub metrics: &'a [Metric],
    pub start: DateTime<Utc>,
    pub end: DateTime<Utc>,
    pub group_by: &'a [String],
    pub filters: &'a [(String, String)],
    /// Days of visit counts are placed at their local midnight in this zone.
    pub tz: chrono_tz::Tz,
}

fn column_of<E: EntityTrait>(dimension: &str) -> Option<E::Column> {
    <E::Column as std::str::FromStr>::from_str(dimension).ok()
}

impl Store {
    /// The rollups' sums per metric, slot and group, and the visits per day and group.
    pub async fn kpi_sums(
        &self,
        tenant: &TenantId,
        q: &SumQuery<'_>,
    ) -> Result<Vec<Observation>, Error> {
        let mut sums = self.rollup_sums(tenant, q).await?;
        if q.metrics.contains(&Metric::Visits) {
            sums.extend(self.visit_sums(tenant, q).await?);
        }
        Ok(sums)
    }

    async fn rollup_sums(
        &self,
        tenant: &TenantId,
        q: &SumQuery<'_>,
    ) -> Result<Vec<Observation>, Error> {
        let names: Vec<&str> = q
            .metrics
            .iter()
            .filter(|m| **m != Metric::Visits)
            .map(|m| m.as_str())
            .collect();
        if names.is_empty() {
            return Ok(Vec::new());
        }
        let mut query = kpi_rollup::Entity::find()
            .select_only()
            .column(kpi_rollup::Column::Metric)
            .column(kpi_rollup::Column::Slot)
            .column(kpi_rollup::Column::Channel)
            .column(kpi_rollup::Column::Campaign)
            .column_as(Expr::cust("CAST(SUM(kpi_rollup.value) AS BIGINT)"), "total")
            .filter(kpi_rollup::Column::TenantId.eq(tenant.as_str()))
            .filter(kpi_rollup::Column::Metric.is_in(names))
            .filter(kpi_rollup::Column::Slot.gte(q.start))
            .filter(kpi_rollup::Column::Slot.lt(q.end))
            .group_by(kpi_rollup::Column::Metric)
            .group_by(kpi_rollup::Column::Slot)
            .group_by(kpi_rollup::Column::Channel)
            .group_by(kpi_rollup::Column::Campaign);
        for (dimension, value) in q.filters {
            if let Some(column) = column_of::<kpi_rollup::Entity>(dimension) {
                query = query.filter(column.eq(value.as_str()));
            }
        }
        let rows: Vec<(String, DateTime<Utc>, String, String, i64)> =
            query.into_tuple().all(&self.db).await?;
        let mut sums = Vec::with_capacity(rows.len());
        for (metric, at, channel, campaign, value) in rows {
            let Some(metric) = Metric::from_name(&metric) else {
                continue;
            };
            let dims = Dims { channel, campaign };
            sums.push(Observation {
                metric,
                at,
                group: q.group_by.iter().map(|d| dims.value(d)).collect(),
                value,
            });
        }
        Ok(sums)
    }

    async fn visit_sums(
        &self,
        tenant: &TenantId,
        q: &SumQuery<'_>,
    ) -> Result<Vec<Observation>, Error> {
        // Every day whose local midnight may fall in the range (a day either side of it).
        let first =
            (q.start.with_timezone(&q.tz).date_naive() - chrono::Duration::days(1)).to_string();
        let last =
            (q.end.with_timezone(&q.tz).date_naive() + chrono::Duration::days(1)).to_string();
        let mut query = visit_day::Entity::find()
            .filter(visit_day::Column::TenantId.eq(tenant.as_str()))
            .filter(visit_day::Column::Day.gte(first))
            .filter(visit_day::Column::Day.lte(last));
        for (dimension, value) in q.filters {
            if let Some(column) = column_of::<visit_day::Entity>(dimension) {
                query = query.filter(column.eq(value.as_str()));
            }
        }
        let mut sums = Vec::new();
        for row in query.all(&self.db).await? {
            let Ok(day) = row.day.parse::<NaiveDate>() else {
                continue;
            };
            let at = kpis::midnight(day, q.tz);
            if at < q.start || at >= q.end {
                continue;
            }
            let dims = Dims {
                channel: row.channel,
                campaign: row.campaign,
            };
            let group = q.group_by.iter().map(|d| dims.value(d)).collect();
            sums.push(Observation {
                metric: Metric::Visits,
                at,
                group,
                value: row.visitors,
            });
        }
        Ok(sums)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn slots_are_quarter_hours() {
        let at: DateTime<Utc> = "2026-12-01T10:44:59Z".parse().unwrap();
        assert_eq!(slot_of(at).to_rfc3339(), "2026-12-01T10:30:00+00:00");
        let on: DateTime<Utc> = "2026-12-01T10:45:00Z".parse().unwrap();
        assert_eq!(slot_of(on), on);
    }
}
