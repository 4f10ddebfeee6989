//! reporting's persistence: funnel facts and the counts read from them.

pub mod contracts;
pub mod entities;
pub mod kpi_sums;
pub mod kpis;
pub mod money;
pub mod plans;

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
            match step {
                Step::Captured => counts.leads = n,
                Step::Enrolled => counts.enrollments = n,
                Step::BecameMql => counts.mqls = n,
                Step::Assigned => counts.assignments = n,
                Step::BecameSql => counts.sqls = n,
                Step::HandedOff => counts.opportunities = n,
                Step::Won => counts.won = n,
            }
        }
        Ok(counts)
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
    let seen = funnel_fact::Entity::find()
        .filter(funnel_fact::Column::TenantId.eq(tenant.as_str()))
        .filter(funnel_fact::Column::LeadId.eq(lead_id))
        .filter(funnel_fact::Column::Step.eq(step.as_str()))
        .one(txn)
        .await?;
    if seen.is_none() {
        funnel_fact::ActiveModel {
            seq: NotSet,
            tenant_id: Set(tenant.to_string()),
            lead_id: Set(lead_id.to_owned()),
            step: Set(step.as_str().to_owned()),
            occurred_at: Set(occurred_at),
        }
        .insert(txn)
        .await?;
    }
    Ok(seen.is_none())
}
