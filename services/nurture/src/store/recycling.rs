//! The recycle pool: leads in stage recycled or lost, by reason and age.

use std::collections::BTreeMap;

use baton_proto::{nurture::v1::EnrollmentState, qualification::v1::Stage};
use baton_shared::{TenantId, time};
use chrono::{DateTime, Utc};
use sea_orm::{EntityTrait, QueryFilter, prelude::*};

use super::{
    Store,
    entities::{enrollment, lead},
};
use crate::error::Error;

/// One group of the pool: (stage, reason) → counts by age bucket.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct Group {
    pub leads: i64,
    /// 0-30, 31-90, 91-180, over 180 days.
    pub by_age: [i64; 4],
}

#[derive(Debug, Clone, Default, PartialEq)]
pub struct Pool {
    pub known: i64,
    pub pool: i64,
    pub groups: BTreeMap<(String, String), Group>,
    pub cooling_down: i64,
    pub in_sequence: i64,
    pub as_of: DateTime<Utc>,
}

fn bucket(days: i64) -> usize {
    match days {
        ..=30 => 0,
        31..=90 => 1,
        91..=180 => 2,
        _ => 3,
    }
}

impl Store {
    pub async fn recycle_pool(&self, tenant: &TenantId) -> Result<Pool, Error> {
        let now = time::now();
        let leads = lead::Entity::find()
            .filter(lead::Column::TenantId.eq(tenant.as_str()))
            .filter(lead::Column::Erased.eq(false))
            .filter(lead::Column::MergedInto.is_null())
            .filter(lead::Column::Email.ne(""))
            .all(&self.db)
            .await?;
        let active = enrollment::Entity::find()
            .filter(enrollment::Column::TenantId.eq(tenant.as_str()))
            .filter(enrollment::Column::State.eq(EnrollmentState::Active as i32))
            .filter(enrollment::Column::EnrolledBy.is_in(["stage_recycled", "stage_lost"]))
            .all(&self.db)
            .await?;
        let mut active_of: std::collections::HashMap<&str, Vec<&enrollment::Model>> =
            std::collections::HashMap::new();
        for e in &active {
            active_of.entry(e.lead_id.as_str()).or_default().push(e);
        }
        let mut pool = Pool {
            known: leads.len() as i64,
            as_of: now,
            ..Pool::default()
        };
        for l in &leads {
            let stage = match Stage::try_from(l.stage) {
                Ok(Stage::Recycled) => "recycled",
                Ok(Stage::Lost) => "lost",
                _ => continue,
            };
            pool.pool += 1;
            let days = l
                .stage_changed_at
                .map(|t| (now - t).num_days())
                .unwrap_or(0);
            let g = pool
                .groups
                .entry((stage.to_owned(), l.stage_reason.clone()))
                .or_default();
            g.leads += 1;
            g.by_age[bucket(days)] += 1;
            let mine = active_of
                .get(l.lead_id.as_str())
                .cloned()
                .unwrap_or_default();
            if mine
                .iter()
                .any(|e| e.next_step == 0 && e.next_step_due_at.is_some_and(|d| d > now))
            {
                pool.cooling_down += 1;
            } else if !mine.is_empty() {
                pool.in_sequence += 1;
            }
        }
        Ok(pool)
    }
}
