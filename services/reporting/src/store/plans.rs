//! Plans (every version), and the leads stagnating in a stage.

use baton_shared::{TenantId, time};
use chrono::{DateTime, Utc};
use sea_orm::{
    ActiveModelTrait, ActiveValue::Set, EntityTrait, QueryFilter, QueryOrder, QuerySelect,
    TransactionTrait, prelude::*,
};

use super::{
    Store,
    entities::{lead_dim, plan},
};
use crate::error::Error;

/// A plan version to store.
#[derive(Debug, Clone)]
pub struct NewPlan {
    pub request_id: String,
    /// `None`: a new plan.
    pub plan_id: Option<String>,
    pub name: String,
    pub start: DateTime<Utc>,
    pub end: DateTime<Utc>,
    pub time_zone: String,
    pub inputs: Vec<u8>,
    pub derived: Vec<u8>,
    pub created_by: String,
}

/// Leads of one stage and team that stayed longer than the stage allows.
#[derive(Debug, Clone, PartialEq)]
pub struct Stagnant {
    pub stage: String,
    pub team: String,
    pub leads: i64,
    pub oldest_since: DateTime<Utc>,
}

impl Store {
    /// Stores a plan (version 1) or a new version of one, once per request id.
    pub async fn create_plan(
        &self,
        tenant: &TenantId,
        new: &NewPlan,
    ) -> Result<plan::Model, Error> {
        let txn = self.db.begin().await?;
        let earlier = plan::Entity::find()
            .filter(plan::Column::TenantId.eq(tenant.as_str()))
            .filter(plan::Column::RequestId.eq(new.request_id.as_str()))
            .one(&txn)
            .await?;
        if let Some(first) = earlier {
            let same = first.inputs == new.inputs
                && first.name == new.name
                && (first.start_time, first.end_time) == (new.start, new.end)
                && new.plan_id.as_ref().is_none_or(|p| *p == first.plan_id);
            if same {
                return Ok(first);
            }
            return Err(Error::Conflict(format!(
                "request_id {:?} made another plan",
                new.request_id
            )));
        }
        let (plan_id, version) = match &new.plan_id {
            None => (uuid::Uuid::now_v7().to_string(), 1),
            Some(id) => {
                let latest = latest(&txn, tenant, id)
                    .await?
                    .ok_or_else(|| Error::not_found("plan", id))?;
                (id.clone(), latest.version + 1)
            }
        };
        let saved = plan::ActiveModel {
            tenant_id: Set(tenant.to_string()),
            plan_id: Set(plan_id),
            version: Set(version),
            request_id: Set(new.request_id.clone()),
            name: Set(new.name.clone()),
            start_time: Set(new.start),
            end_time: Set(new.end),
            time_zone: Set(new.time_zone.clone()),
            inputs: Set(new.inputs.clone()),
            derived: Set(new.derived.clone()),
            created_by: Set(new.created_by.clone()),
            created_at: Set(time::now()),
        }
        .insert(&txn)
        .await?;
        txn.commit().await?;
        Ok(saved)
    }

    /// A plan's `version`, or its latest when `version` is 0.
    pub async fn get_plan(
        &self,
        tenant: &TenantId,
        plan_id: &str,
        version: i32,
    ) -> Result<plan::Model, Error> {
        let found = if version == 0 {
            latest(&self.db, tenant, plan_id).await?
        } else {
            plan::Entity::find_by_id((tenant.to_string(), plan_id.to_owned(), version))
                .one(&self.db)
                .await?
        };
        found.ok_or_else(|| Error::not_found("plan", plan_id))
    }

    /// The latest version of every plan, newest first.
    pub async fn list_plans(&self, tenant: &TenantId) -> Result<Vec<plan::Model>, Error> {
        let rows = plan::Entity::find()
            .filter(plan::Column::TenantId.eq(tenant.as_str()))
            .order_by_desc(plan::Column::CreatedAt)
            .order_by_desc(plan::Column::Version)
            .all(&self.db)
            .await?;
        let mut seen = std::collections::HashSet::new();
        Ok(rows
            .into_iter()
            .filter(|r| seen.insert(r.plan_id.clone()))
            .collect())
    }

    /// Per team, the leads in `stage` since before `since` (count and the oldest).
    pub async fn stagnant(
        &self,
        tenant: &TenantId,
        stage: &str,
        since: DateTime<Utc>,
    ) -> Result<Vec<Stagnant>, Error> {
        let rows: Vec<(String, i64, Option<DateTime<Utc>>)> = lead_dim::Entity::find()
            .select_only()
            .column(lead_dim::Column::Team)
            .column_as(Expr::cust("CAST(COUNT(*) AS BIGINT)"), "leads")
            .column_as(lead_dim::Column::StageSince.min(), "oldest")
            .filter(lead_dim::Column::TenantId.eq(tenant.as_str()))
            .filter(lead_dim::Column::Stage.eq(stage))
            .filter(lead_dim::Column::StageSince.lt(since))
            .group_by(lead_dim::Column::Team)
            .order_by_asc(lead_dim::Column::Team)
            .into_tuple()
            .all(&self.db)
            .await?;
        Ok(rows
            .into_iter()
            .filter_map(|(team, leads, oldest)| {
                Some(Stagnant {
                    stage: stage.to_owned(),
                    team,
                    leads,
                    oldest_since: oldest?,
                })
            })
            .collect())
    }
}

async fn latest<C: sea_orm::ConnectionTrait>(
    db: &C,
    tenant: &TenantId,
    plan_id: &str,
) -> Result<Option<plan::Model>, sea_orm::DbErr> {
    plan::Entity::find()
        .filter(plan::Column::TenantId.eq(tenant.as_str()))
        .filter(plan::Column::PlanId.eq(plan_id))
        .order_by_desc(plan::Column::Version)
        .one(db)
        .await
}
