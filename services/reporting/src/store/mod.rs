//! reporting's persistence: funnel facts and the counts read from them.

pub mod accounts;
pub mod attainment;
pub mod contracts;
pub mod email;
pub mod entities;
pub mod erasure;
pub mod factors;
pub mod journal;
pub mod kpi_sums;
pub mod kpi_versions;
pub mod kpis;
pub mod money;
pub mod plans;
pub mod scorecards;

use baton_shared::{TenantId, events::EventLog};
use chrono::{DateTime, Utc};
use sea_orm::{
    ActiveValue::{NotSet, Set},
    ConnectionTrait, DatabaseConnection, DbErr, EntityTrait, PaginatorTrait, QueryFilter,
    prelude::*,
};

use crate::domain::funnel::{FunnelCounts, Step};
use crate::error::Error;
use entities::funnel_fact;

#[derive(Clone)]
pub struct Store {
    db: DatabaseConnection,
    log: EventLog,
}

impl Store {
    pub fn new(db: DatabaseConnection, log: EventLog) -> Self {
        Store { db, log }
    }

    /// Counts each step's facts with `from <= occurred_at < to`.
    pub async fn funnel(
        &self,
        tenant: &TenantId,
        from: DateTime<Utc>,
        to: DateTime<Utc>,
    ) -> Result<FunnelCounts, Error> {
        let mut counts = FunnelCounts::default();
        for step in Step::ALL {
            let n = funnel_fact::Entity::find()
                .filter(funnel_fact::Column::TenantId.eq(tenant.as_str()))
                .filter(funnel_fact::Column::Step.eq(step.as_str()))
                .filter(funnel_fact::Column::OccurredAt.gte(from))
                .filter(funnel_fact::Column::OccurredAt.lt(to))
                .count(&self.db)
                .await? as i64;
            counts.add(step, n);
        }
        Ok(counts)
    }
}

impl Store {
    /// Each step's leads with `from <= occurred_at < to`, per group of `group_by` (the leads'
    /// dimensions as the KPI engine holds them), ordered by group.
    pub async fn funnel_groups(
        &self,
        tenant: &TenantId,
        (from, to): (DateTime<Utc>, DateTime<Utc>),
        group_by: &[String],
    ) -> Result<Vec<(Vec<String>, FunnelCounts)>, Error> {
        use sea_orm::sea_query::{Alias, Expr, ExprTrait, Query};
        let f = Alias::new("f");
        let mut select = Query::select();
        select
            .from_as(funnel_fact::Entity, f.clone())
            .inner_join(
                entities::lead_dim::Entity,
                Expr::col((f.clone(), funnel_fact::Column::LeadId))
                    .equals((
                        entities::lead_dim::Entity,
                        entities::lead_dim::Column::LeadId,
                    ))
                    .and(
                        Expr::col((f.clone(), funnel_fact::Column::TenantId)).equals((
                            entities::lead_dim::Entity,
                            entities::lead_dim::Column::TenantId,
                        )),
                    ),
            )
            .column((f.clone(), funnel_fact::Column::Step))
            .expr_as(Expr::cust("CAST(COUNT(*) AS BIGINT)"), Alias::new("n"))
            .and_where(Expr::col((f.clone(), funnel_fact::Column::TenantId)).eq(tenant.as_str()))
            .and_where(Expr::col((f.clone(), funnel_fact::Column::OccurredAt)).gte(from))
            .and_where(Expr::col((f.clone(), funnel_fact::Column::OccurredAt)).lt(to))
            .group_by_col((f, funnel_fact::Column::Step));
        for dim in group_by {
            if let Ok(column) = dim.parse::<entities::lead_dim::Column>() {
                select
                    .column((entities::lead_dim::Entity, column))
                    .group_by_col((entities::lead_dim::Entity, column));
            }
        }
        let mut groups: std::collections::BTreeMap<Vec<String>, FunnelCounts> = Default::default();
        for row in self.db.query_all(&select).await? {
            let step: String = row.try_get("", "step")?;
            let n: i64 = row.try_get("", "n")?;
            let mut group = Vec::with_capacity(group_by.len());
            for dim in group_by {
                group.push(row.try_get::<String>("", dim)?);
            }
            if let Some(step) = Step::from_name(&step) {
                groups.entry(group).or_default().add(step, n);
            }
        }
        Ok(groups.into_iter().collect())
    }
}

/// Records that a lead passed a step, once (later passes of the same step are not counted again).
/// Returns whether this was the first pass.
pub async fn record_fact<C: ConnectionTrait>(
    txn: &C,
    tenant: &TenantId,
    lead_id: &str,
    step: Step,
    occurred_at: DateTime<Utc>,
) -> Result<bool, DbErr> {
    let inserted = funnel_fact::Entity::insert(funnel_fact::ActiveModel {
        seq: NotSet,
        tenant_id: Set(tenant.to_string()),
        lead_id: Set(lead_id.to_owned()),
        step: Set(step.as_str().to_owned()),
        occurred_at: Set(occurred_at),
    })
    .on_conflict_do_nothing_on([
        funnel_fact::Column::TenantId,
        funnel_fact::Column::LeadId,
        funnel_fact::Column::Step,
    ])
    .exec_without_returning(txn)
    .await?;
    Ok(matches!(inserted, sea_orm::TryInsertResult::Inserted(n) if n > 0))
}
