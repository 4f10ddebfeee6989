//! Assignments as callers read and move them: pages, explanations, reassignment by hand.

use std::collections::HashMap;

use baton_proto::distribution::v1::AssignmentState;
use baton_shared::{
    TenantId,
    paging::{Page, fetch_page},
};
use sea_orm::{
    ActiveValue::Set, EntityTrait, QueryFilter, QueryOrder, TransactionTrait, prelude::*,
};

use super::{
    Store,
    entities::{assignment, rep, rep_weight_change},
    routing::{open_assignment, reassign},
    weighting::changes_by_id,
};
use crate::domain::routing::Considered;
use crate::error::Error;

/// An assignment with why it went where it did.
pub struct Explanation {
    pub current: assignment::Model,
    pub considered: Vec<Considered>,
    pub history: Vec<assignment::Model>,
    /// The weight changes the candidates' weights came from, by id.
    pub origins: HashMap<i64, rep_weight_change::Model>,
}

impl Store {
    pub async fn list_assignments(
        &self,
        tenant: &TenantId,
        page: Page,
        rep_id: Option<&str>,
    ) -> Result<(Vec<assignment::Model>, String), Error> {
        let mut query =
            assignment::Entity::find().filter(assignment::Column::TenantId.eq(tenant.as_str()));
        if let Some(rep_id) = rep_id {
            query = query.filter(assignment::Column::RepId.eq(rep_id));
        }
        Ok(fetch_page(query, assignment::Column::Seq, |a| a.seq, page, &self.db).await?)
    }
    pub async fn explain_assignment(
        &self,
        tenant: &TenantId,
        lead_id: &str,
    ) -> Result<Explanation, Error> {
        let mut all = assignment::Entity::find()
            .filter(assignment::Column::TenantId.eq(tenant.as_str()))
            .filter(assignment::Column::LeadId.eq(lead_id))
            .order_by_asc(assignment::Column::Seq)
            .all(&self.db)
            .await?;
        let current = all
            .pop()
            .ok_or_else(|| Error::not_found("assignment of lead", lead_id))?;
        let considered: Vec<Considered> =
            serde_json::from_str(&current.explanation).unwrap_or_default();
        let ids: Vec<i64> = considered
            .iter()
            .map(|c| c.weight_change)
            .filter(|id| *id > 0)
            .collect();
        Ok(Explanation {
            origins: changes_by_id(&self.db, &ids).await?,
            considered,
            current,
            history: all,
        })
    }
    pub async fn reassign_lead(
        &self,
        tenant: &TenantId,
        lead_id: &str,
    ) -> Result<assignment::Model, Error> {
        let txn = self.db.begin().await?;
        let open = open_assignment(&txn, tenant, lead_id)
            .await?
            .ok_or_else(|| Error::not_found("open assignment of lead", lead_id))?;
        let next = reassign(&txn, tenant, open).await?;
        txn.commit().await?;
        self.log.notify_committed();
        Ok(next)
    }
    pub async fn reassign_rep_leads(
        &self,
        tenant: &TenantId,
        rep_id: &str,
        deactivate: bool,
    ) -> Result<Vec<assignment::Model>, Error> {
        let txn = self.db.begin().await?;
        let rep_row = rep::Entity::find()
            .filter(rep::Column::TenantId.eq(tenant.as_str()))
            .filter(rep::Column::RepId.eq(rep_id))
            .one(&txn)
            .await?
            .ok_or_else(|| Error::not_found("rep", rep_id))?;
        if deactivate {
            let mut row: rep::ActiveModel = rep_row.into();
            row.active = Set(false);
            row.update(&txn).await?;
        }
        let open = assignment::Entity::find()
            .filter(assignment::Column::TenantId.eq(tenant.as_str()))
            .filter(assignment::Column::RepId.eq(rep_id))
            .filter(assignment::Column::State.eq(AssignmentState::Assigned as i32))
            .order_by_asc(assignment::Column::Seq)
            .all(&txn)
            .await?;
        let mut moved = Vec::with_capacity(open.len());
        for a in open {
            moved.push(reassign(&txn, tenant, a).await?);
        }
        txn.commit().await?;
        self.log.notify_committed();
        Ok(moved)
    }
}
