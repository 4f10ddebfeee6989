//! Scorecards as stored: a closed period's frozen attainment, its two signatures, and the
//! adjustments that reached the period after it closed.

use baton_shared::{TenantId, time};
use chrono::{DateTime, Utc};
use sea_orm::{
    ActiveValue::{NotSet, Set},
    ConnectionTrait, DbErr, EntityTrait, QueryFilter, QueryOrder, TransactionTrait,
    prelude::*,
};

use super::{
    Store,
    entities::{scorecard, scorecard_adjustment},
};
use crate::{domain::attainment::Counts, error::Error};

/// The closed periods of a contract: (period start, scorecard id).
pub async fn closed_periods<C: ConnectionTrait>(
    db: &C,
    tenant: &TenantId,
    contract_id: &str,
) -> Result<Vec<(DateTime<Utc>, String)>, DbErr> {
    Ok(scorecard::Entity::find()
        .filter(scorecard::Column::TenantId.eq(tenant.as_str()))
        .filter(scorecard::Column::ContractId.eq(contract_id))
        .all(db)
        .await?
        .into_iter()
        .map(|s| (s.period_start, s.scorecard_id))
        .collect())
}

/// A change that reached a closed period.
pub struct Adjustment<'a> {
    pub scorecard_id: &'a str,
    pub handoff_id: &'a str,
    pub cause: &'a str,
    pub at: DateTime<Utc>,
    pub counted_in: Option<DateTime<Utc>>,
    pub delta: Counts,
}

pub async fn record_adjustment<C: ConnectionTrait>(
    txn: &C,
    tenant: &TenantId,
    a: Adjustment<'_>,
) -> Result<(), DbErr> {
    let delta = a
        .delta
        .to_array()
        .iter()
        .map(i64::to_string)
        .collect::<Vec<_>>()
        .join(",");
    scorecard_adjustment::Entity::insert(scorecard_adjustment::ActiveModel {
        seq: NotSet,
        tenant_id: Set(tenant.to_string()),
        scorecard_id: Set(a.scorecard_id.to_owned()),
        handoff_id: Set(a.handoff_id.to_owned()),
        cause: Set(a.cause.to_owned()),
        at: Set(a.at),
        counted_in: Set(a.counted_in),
        delta: Set(delta),
    })
    .exec_without_returning(txn)
    .await?;
    Ok(())
}

/// A stored adjustment's delta.
pub fn delta_of(a: &scorecard_adjustment::Model) -> Counts {
    let mut array = [0i64; 14];
    for (slot, v) in array.iter_mut().zip(a.delta.split(',')) {
        *slot = v.trim().parse().unwrap_or(0);
    }
    Counts::from_array(array)
}

/// A scorecard with its adjustments, oldest first.
pub type ScorecardView = (scorecard::Model, Vec<scorecard_adjustment::Model>);

/// A scorecard to store at close.
pub struct NewScorecard {
    pub contract_id: String,
    pub contract_version: i32,
    pub period_start: DateTime<Utc>,
    pub period_end: DateTime<Utc>,
    pub attainment: Vec<u8>,
    pub closed_by: String,
}

impl Store {
    async fn with_adjustments(&self, card: scorecard::Model) -> Result<ScorecardView, Error> {
        let adjustments = scorecard_adjustment::Entity::find()
            .filter(scorecard_adjustment::Column::TenantId.eq(card.tenant_id.as_str()))
            .filter(scorecard_adjustment::Column::ScorecardId.eq(card.scorecard_id.as_str()))
            .order_by_asc(scorecard_adjustment::Column::Seq)
            .all(&self.db)
            .await?;
        Ok((card, adjustments))
    }

    /// The scorecard of a contract period, if closed.
    pub async fn scorecard_of_period(
        &self,
        tenant: &TenantId,
        contract_id: &str,
        period_start: DateTime<Utc>,
    ) -> Result<Option<ScorecardView>, Error> {
        let card = scorecard::Entity::find()
            .filter(scorecard::Column::TenantId.eq(tenant.as_str()))
            .filter(scorecard::Column::ContractId.eq(contract_id))
            .filter(scorecard::Column::PeriodStart.eq(period_start))
            .one(&self.db)
            .await?;
        match card {
            Some(card) => Ok(Some(self.with_adjustments(card).await?)),
            None => Ok(None),
        }
    }

    /// Stores a closed scorecard; a period closed meanwhile keeps the first one.
    pub async fn insert_scorecard(
        &self,
        tenant: &TenantId,
        new: NewScorecard,
    ) -> Result<ScorecardView, Error> {
        scorecard::Entity::insert(scorecard::ActiveModel {
            tenant_id: Set(tenant.to_string()),
            scorecard_id: Set(uuid::Uuid::now_v7().to_string()),
            contract_id: Set(new.contract_id.clone()),
            contract_version: Set(new.contract_version),
            period_start: Set(new.period_start),
            period_end: Set(new.period_end),
            attainment: Set(new.attainment),
            closed_at: Set(time::now()),
            closed_by: Set(new.closed_by),
            is_signed_by: Set(String::new()),
            is_signed_at: Set(None),
            fs_signed_by: Set(String::new()),
            fs_signed_at: Set(None),
        })
        .on_conflict_do_nothing_on([
            scorecard::Column::TenantId,
            scorecard::Column::ContractId,
            scorecard::Column::PeriodStart,
        ])
        .exec_without_returning(&self.db)
        .await?;
        self.scorecard_of_period(tenant, &new.contract_id, new.period_start)
            .await?
            .ok_or_else(|| Error::not_found("scorecard", new.contract_id))
    }

    pub async fn get_scorecard(
        &self,
        tenant: &TenantId,
        scorecard_id: &str,
    ) -> Result<ScorecardView, Error> {
        let card = scorecard::Entity::find_by_id((tenant.to_string(), scorecard_id.to_owned()))
            .one(&self.db)
            .await?
            .ok_or_else(|| Error::not_found("scorecard", scorecard_id))?;
        self.with_adjustments(card).await
    }

    pub async fn list_scorecards(
        &self,
        tenant: &TenantId,
        contract_id: &str,
    ) -> Result<Vec<ScorecardView>, Error> {
        let cards = scorecard::Entity::find()
            .filter(scorecard::Column::TenantId.eq(tenant.as_str()))
            .filter(scorecard::Column::ContractId.eq(contract_id))
            .order_by_asc(scorecard::Column::PeriodStart)
            .all(&self.db)
            .await?;
        let mut out = Vec::with_capacity(cards.len());
        for card in cards {
            out.push(self.with_adjustments(card).await?);
        }
        Ok(out)
    }

    /// Records `signer`'s signature on the side it owns (`is_side`); a side signed stays signed.
    pub async fn sign_scorecard(
        &self,
        tenant: &TenantId,
        scorecard_id: &str,
        signer: &str,
        is_side: bool,
    ) -> Result<ScorecardView, Error> {
        let txn = self.db.begin().await?;
        let card = scorecard::Entity::find_by_id((tenant.to_string(), scorecard_id.to_owned()))
            .one(&txn)
            .await?
            .ok_or_else(|| Error::not_found("scorecard", scorecard_id))?;
        let signed = if is_side {
            card.is_signed_at.is_some()
        } else {
            card.fs_signed_at.is_some()
        };
        if !signed {
            let mut row: scorecard::ActiveModel = card.into();
            if is_side {
                row.is_signed_by = Set(signer.to_owned());
                row.is_signed_at = Set(Some(time::now()));
            } else {
                row.fs_signed_by = Set(signer.to_owned());
                row.fs_signed_at = Set(Some(time::now()));
            }
            row.update(&txn).await?;
        }
        txn.commit().await?;
        self.get_scorecard(tenant, scorecard_id).await
    }
}
