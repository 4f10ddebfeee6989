//! What a KPI query reads: the rollups' sums per metric, slot, currency and group (stocks also
//! summed over everything before the range), and visits and spend per day.

use baton_shared::TenantId;
use chrono::{DateTime, NaiveDate, Utc};
use sea_orm::{
    ConnectionTrait, EntityTrait, QueryFilter, QueryResult,
    prelude::*,
    sea_query::{Alias, Condition, Query, SelectStatement},
};

use super::{
    Store,
    entities::{kpi_cube, kpi_source, spend_day, visit_day, won_deal},
    kpis::Dims,
};
use crate::{
    domain::kpis::{self, Metric, Observation, Tiles},
    error::Error,
};

/// What to sum: metrics, `[start, end)`, the dimensions to group by and the filters.
pub struct SumQuery<'a> {
    pub metrics: &'a [Metric],
    pub start: DateTime<Utc>,
    pub end: DateTime<Utc>,
    pub group_by: &'a [String],
    pub filters: &'a [(String, String)],
    /// Days of visits and spend are placed at their local midnight in this zone.
    pub tz: chrono_tz::Tz,
    /// The periods leads counted once per period are counted in.
    pub periods: &'a [kpis::Period],
    /// E-mail conversions count within this many seconds of their delivery.
    pub conversion_window_seconds: i64,
}

fn cube_column(dimension: &str) -> Option<kpi_cube::Column> {
    dimension.parse().ok()
}

/// Rows whose `column` falls in one of `ranges`.
fn in_ranges<C: sea_orm::ColumnTrait>(
    column: C,
    ranges: &[(DateTime<Utc>, DateTime<Utc>)],
) -> Condition {
    ranges.iter().fold(Condition::any(), |any, (from, to)| {
        any.add(Condition::all().add(column.gte(*from)).add(column.lt(*to)))
    })
}

/// The cube's sums of `names` per metric, currency and group, for slots in `ranges`.
fn cube_select(
    tenant: &TenantId,
    q: &SumQuery<'_>,
    names: &[&str],
    ranges: &[(DateTime<Utc>, DateTime<Utc>)],
) -> SelectStatement {
    use kpi_cube::Column as C;
    let mut select = Query::select();
    select
        .from(kpi_cube::Entity)
        .column(C::Metric)
        .column(C::Currency)
        .expr_as(
            Expr::cust("CAST(SUM(kpi_cube.value) AS BIGINT)"),
            Alias::new("total"),
        )
        .and_where(C::TenantId.eq(tenant.as_str()))
        .and_where(C::Metric.is_in(names.iter().copied()))
        .cond_where(in_ranges(C::Slot, ranges))
        .group_by_col(C::Metric)
        .group_by_col(C::Currency);
    for d in q.group_by {
        if let Some(column) = cube_column(d) {
            select.column(column).group_by_col(column);
        }
    }
    let mut filters = Condition::all();
    for (d, value) in q.filters {
        if let Some(column) = cube_column(d) {
            filters = filters.add(column.eq(value.as_str()));
        }
    }
    select.cond_where(filters);
    select
}

/// The source rollups' sums of `names` per metric, currency and group, for the rows of `level`
/// in `[from, to)`.
fn source_select(
    tenant: &TenantId,
    q: &SumQuery<'_>,
    names: &[&str],
    (level, (from, to)): (&str, (DateTime<Utc>, DateTime<Utc>)),
) -> SelectStatement {
    use kpi_source::Column as S;
    let mut select = Query::select();
    select
        .from(kpi_source::Entity)
        .column(S::Metric)
        .column(S::Currency)
        .expr_as(
            Expr::cust("CAST(SUM(kpi_source.value) AS BIGINT)"),
            Alias::new("total"),
        )
        .and_where(S::TenantId.eq(tenant.as_str()))
        .and_where(S::Metric.is_in(names.iter().copied()))
        .and_where(S::Level.eq(level))
        .and_where(S::At.gte(from))
        .and_where(S::At.lt(to))
        .group_by_col(S::Metric)
        .group_by_col(S::Currency);
    // A source dimension the query neither groups nor filters by is read from its total row.
    for (name, column) in [("channel", S::Channel), ("campaign", S::Campaign)] {
        let grouped = q.group_by.iter().any(|d| d == name);
        let filter = q.filters.iter().find(|(d, _)| d == name).map(|(_, v)| v);
        match (grouped, filter) {
            (_, Some(value)) => {
                select.and_where(column.eq(value.as_str()));
            }
            (true, None) => {
                select.and_where(column.ne(super::kpis::ALL_SOURCES));
            }
            (false, None) => {
                select.and_where(column.eq(super::kpis::ALL_SOURCES));
            }
        }
        if grouped {
            select.column(column).group_by_col(column);
        }
    }
    select
}

/// Whether the query only groups and filters by source (the hour and day rollups serve it).
fn by_source(q: &SumQuery<'_>) -> bool {
    q.group_by
        .iter()
        .chain(q.filters.iter().map(|(d, _)| d))
        .all(|d| kpis::SOURCE_DIMENSIONS.contains(&d.as_str()))
}

/// How `[from, to)` pieces are read: whole days and hours from the source rollups when the
/// query allows it, the rest from the cube.
fn tiles_of(q: &SumQuery<'_>, ranges: &[(DateTime<Utc>, DateTime<Utc>)]) -> Tiles {
    let mut tiles = Tiles::default();
    for (from, to) in ranges {
        if by_source(q) {
            kpis::tile(*from, *to, &mut tiles);
        } else if from < to {
            tiles.slots.push((*from, *to));
        }
    }
    tiles
}

fn observation(
    row: &QueryResult,
    q: &SumQuery<'_>,
    at: DateTime<Utc>,
) -> Result<Option<Observation>, sea_orm::DbErr> {
    let metric: String = row.try_get("", "metric")?;
    let Some(metric) = Metric::from_name(&metric) else {
        return Ok(None);
    };
    let mut group = Vec::with_capacity(q.group_by.len());
    for d in q.group_by {
        group.push(row.try_get::<String>("", d)?);
    }
    Ok(Some(Observation {
        metric,
        at,
        group,
        currency: row.try_get("", "currency")?,
        value: row.try_get("", "total")?,
    }))
}

impl Store {
    /// The rollups' sums per metric, slot, currency and group, and visits and spend per day.
    pub async fn kpi_sums(
        &self,
        tenant: &TenantId,
        q: &SumQuery<'_>,
    ) -> Result<Vec<Observation>, Error> {
        let mut sums = self.cube_sums(tenant, q).await?;
        if q.metrics.contains(&Metric::Visits) {
            sums.extend(self.visit_sums(tenant, q).await?);
        }
        if q.metrics.contains(&Metric::SpendMinor) {
            sums.extend(self.spend_sums(tenant, q).await?);
        }
        if q.metrics.contains(&Metric::MedianCycleSeconds) {
            sums.extend(self.median_cycles(tenant, q).await?);
        }
        for metric in q.metrics {
            let Some(reach) = metric.reach() else {
                continue;
            };
            let counts = self
                .reach_counts(tenant, reach, q.periods, q, q.conversion_window_seconds)
                .await?;
            for (i, group, value) in counts {
                sums.push(Observation {
                    metric: *metric,
                    at: q.periods[i].start,
                    group,
                    currency: String::new(),
                    value,
                });
            }
        }
        Ok(sums)
    }

    async fn cube_sums(
        &self,
        tenant: &TenantId,
        q: &SumQuery<'_>,
    ) -> Result<Vec<Observation>, Error> {
        let names: Vec<&str> = q
            .metrics
            .iter()
            .filter(|m| !m.is_daily() && m.reach().is_none() && **m != Metric::MedianCycleSeconds)
            .map(|m| m.as_str())
            .collect();
        let mut sums = Vec::new();
        if names.is_empty() {
            return Ok(sums);
        }
        let ranges: Vec<_> = q.periods.iter().map(|p| (p.start, p.end)).collect();
        sums.extend(
            self.tiled_sums(tenant, q, &names, &tiles_of(q, &ranges), None)
                .await?,
        );
        // A stock's value in the range starts from every change before it, summed in one row per
        // group placed just before the range.
        let stocks: Vec<&str> = q
            .metrics
            .iter()
            .filter(|m| m.is_stock())
            .map(|m| m.as_str())
            .collect();
        if !stocks.is_empty() {
            let before = q.start - chrono::Duration::seconds(1);
            let first = DateTime::<Utc>::UNIX_EPOCH;
            let tiles = tiles_of(q, &[(first, q.start)]);
            sums.extend(
                self.tiled_sums(tenant, q, &stocks, &tiles, Some(before))
                    .await?,
            );
        }
        Ok(sums)
    }

    /// The sums of `names` over each range of `tiles`, at the range's start, or all at `at` when
    /// it is given.
    async fn tiled_sums(
        &self,
        tenant: &TenantId,
        q: &SumQuery<'_>,
        names: &[&str],
        tiles: &Tiles,
        at: Option<DateTime<Utc>>,
    ) -> Result<Vec<Observation>, Error> {
        // One simple range a statement, summed by the database (each is an index range scan; a
        // disjunction of ranges is not, on SQLite), placed at the range's start (every range lies
        // in one period) or at `at`.
        let mut sums = Vec::new();
        for range in &tiles.slots {
            let select = cube_select(tenant, q, names, std::slice::from_ref(range));
            for row in self.db.query_all(&select).await? {
                sums.extend(observation(&row, q, at.unwrap_or(range.0))?);
            }
        }
        for ((level, _), ranges) in super::kpis::SOURCE_LEVELS.iter().zip(&tiles.levels) {
            for range in ranges {
                let select = source_select(tenant, q, names, (level, *range));
                for row in self.db.query_all(&select).await? {
                    sums.extend(observation(&row, q, at.unwrap_or(range.0))?);
                }
            }
        }
        Ok(sums)
    }

    /// Per period and group, the median sales cycle of the wins (one observation each, at the
    /// period's start; the mean of the two middle cycles for an even count, rounded down).
    async fn median_cycles(
        &self,
        tenant: &TenantId,
        q: &SumQuery<'_>,
    ) -> Result<Vec<Observation>, Error> {
        use std::collections::BTreeMap;
        use won_deal::Column as W;
        let mut out = Vec::new();
        for p in q.periods {
            let mut query = won_deal::Entity::find()
                .filter(W::TenantId.eq(tenant.as_str()))
                .filter(W::WonAt.gte(p.start))
                .filter(W::WonAt.lt(p.end))
                .filter(W::CycleSeconds.gte(0));
            for (d, value) in q.filters {
                if let Ok(column) = d.parse::<W>() {
                    query = query.filter(column.eq(value.as_str()));
                }
            }
            let mut groups: BTreeMap<Vec<String>, Vec<i64>> = BTreeMap::new();
            for row in query.all(&self.db).await? {
                let dims = super::kpis::dims_of_won(&row);
                let group = q
                    .group_by
                    .iter()
                    .map(|d| dims.value(d).to_owned())
                    .collect();
                groups.entry(group).or_default().push(row.cycle_seconds);
            }
            for (group, cycles) in groups {
                out.push(Observation {
                    metric: Metric::MedianCycleSeconds,
                    at: p.start,
                    group,
                    currency: String::new(),
                    value: kpis::median(cycles),
                });
            }
        }
        Ok(out)
    }

    /// Every day whose local midnight may fall in the range (a day either side of it).
    fn day_bounds(q: &SumQuery<'_>) -> (String, String) {
        let first = q.start.with_timezone(&q.tz).date_naive() - chrono::Duration::days(1);
        let last = q.end.with_timezone(&q.tz).date_naive() + chrono::Duration::days(1);
        (first.to_string(), last.to_string())
    }

    /// A day's local midnight, if it falls in the range.
    fn day_at(q: &SumQuery<'_>, day: &str) -> Option<DateTime<Utc>> {
        let day = day.parse::<NaiveDate>().ok()?;
        let at = kpis::midnight(day, q.tz);
        (at >= q.start && at < q.end).then_some(at)
    }

    fn source_group(q: &SumQuery<'_>, channel: &str, campaign: &str) -> Vec<String> {
        let dims = Dims::source(channel, campaign);
        q.group_by
            .iter()
            .map(|d| dims.value(d).to_owned())
            .collect()
    }

    /// The rows of a per-day table (visits, spend) for the days the range may hold, filtered by
    /// source.
    async fn day_rows<E>(
        &self,
        tenant: &TenantId,
        q: &SumQuery<'_>,
        (tenant_column, day_column): (E::Column, E::Column),
    ) -> Result<Vec<E::Model>, Error>
    where
        E: EntityTrait,
        E::Column: std::str::FromStr,
    {
        let (first, last) = Self::day_bounds(q);
        let mut query = E::find()
            .filter(tenant_column.eq(tenant.as_str()))
            .filter(day_column.gte(first))
            .filter(day_column.lte(last));
        for (dimension, value) in q.filters {
            if let Ok(column) = dimension.parse::<E::Column>() {
                query = query.filter(column.eq(value.as_str()));
            }
        }
        Ok(query.all(&self.db).await?)
    }

    /// A day's amount, at the day's local midnight, if that falls in the range.
    fn daily(
        q: &SumQuery<'_>,
        metric: Metric,
        day: &str,
        (channel, campaign): (&str, &str),
        (currency, value): (String, i64),
    ) -> Option<Observation> {
        Some(Observation {
            metric,
            at: Self::day_at(q, day)?,
            group: Self::source_group(q, channel, campaign),
            currency,
            value,
        })
    }

    async fn visit_sums(
        &self,
        tenant: &TenantId,
        q: &SumQuery<'_>,
    ) -> Result<Vec<Observation>, Error> {
        use visit_day::Column as V;
        let rows = self
            .day_rows::<visit_day::Entity>(tenant, q, (V::TenantId, V::Day))
            .await?;
        Ok(rows
            .into_iter()
            .filter_map(|r| {
                let source = (r.channel.as_str(), r.campaign.as_str());
                Self::daily(
                    q,
                    Metric::Visits,
                    &r.day,
                    source,
                    (String::new(), r.visitors),
                )
            })
            .collect())
    }

    async fn spend_sums(
        &self,
        tenant: &TenantId,
        q: &SumQuery<'_>,
    ) -> Result<Vec<Observation>, Error> {
        use spend_day::Column as D;
        let rows = self
            .day_rows::<spend_day::Entity>(tenant, q, (D::TenantId, D::Day))
            .await?;
        Ok(rows
            .into_iter()
            .filter_map(|r| {
                let source = (r.channel.as_str(), r.campaign.as_str());
                let amount = (r.currency.clone(), r.amount_minor);
                Self::daily(q, Metric::SpendMinor, &r.day, source, amount)
            })
            .collect())
    }
}
