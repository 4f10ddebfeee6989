//! Money facts: won deals (amount, sales cycle, the customer they open), churn, and spend.

use baton_shared::{TenantId, time};
use chrono::{DateTime, NaiveDate, Utc};
use sea_orm::{
    ActiveModelTrait, ActiveValue::Set, ConnectionTrait, DbErr, EntityTrait, TransactionTrait,
    prelude::*, sea_query::OnConflict,
};

use super::{
    Store,
    entities::{customer, spend, spend_day},
    kpis::{self, Fact},
};
use crate::{domain::kpis::Metric, error::Error};

/// An amount: ISO 4217 currency and minor units.
pub type Money = (String, i64);

/// A won outcome of a handed-off lead.
#[derive(Debug, Clone, Default)]
pub struct Win {
    pub amount: Option<Money>,
    pub mrr: Option<Money>,
    /// The close date given with the outcome (the sales cycle ends there), if any.
    pub closed_at: Option<DateTime<Utc>>,
}

/// A won outcome recorded at `at`: a win (under its amount's currency), the amount, the sales
/// cycle from the lead's first touch to the close date (else `at`), and a customer opened (or
/// reopened after a churn).
pub async fn won<C: ConnectionTrait>(
    txn: &C,
    tenant: &TenantId,
    lead_id: &str,
    at: DateTime<Utc>,
    win: &Win,
) -> Result<(), DbErr> {
    let (amount, mrr) = (win.amount.as_ref(), win.mrr.as_ref());
    let row = kpis::lock_lead(txn, tenant, lead_id).await?;
    let currency = amount.map_or("", |(c, _)| c.as_str());
    let fact = |metric, delta| Fact {
        currency,
        ..Fact::new(metric, at, delta)
    };
    kpis::bump_for_lead(txn, tenant, lead_id, &fact(Metric::Wins, 1)).await?;
    kpis::bump_for_lead(txn, tenant, lead_id, &fact(Metric::Decided, 1)).await?;
    if let Some((_, minor)) = amount {
        kpis::bump_for_lead(txn, tenant, lead_id, &fact(Metric::WonAmountMinor, *minor)).await?;
    }
    let end = win.closed_at.unwrap_or(at);
    let cycle = match row.first_touch_at {
        Some(first) => {
            let cycle = (end - first).num_seconds().max(0);
            count_cycle(txn, tenant, lead_id, at, cycle).await?;
            cycle
        }
        // Counted when the capture arrives (see `pending_cycles`).
        None => -1,
    };
    record_cycle(txn, tenant, &row, (at, end), cycle).await?;
    open_customer(txn, tenant, lead_id, at, mrr).await
}

async fn count_cycle<C: ConnectionTrait>(
    txn: &C,
    tenant: &TenantId,
    lead_id: &str,
    at: DateTime<Utc>,
    cycle: i64,
) -> Result<(), DbErr> {
    let cycle_fact = Fact::new(Metric::SalesCycleSeconds, at, cycle);
    kpis::bump_for_lead(txn, tenant, lead_id, &cycle_fact).await?;
    kpis::bump_for_lead(txn, tenant, lead_id, &Fact::new(Metric::TimedWins, at, 1)).await
}

/// Wins of the lead applied before its capture: their sales cycles, now that its first touch is
/// known, under the dimensions the lead had at each win.
pub async fn pending_cycles<C: ConnectionTrait>(
    txn: &C,
    tenant: &TenantId,
    lead_id: &str,
) -> Result<(), DbErr> {
    use super::entities::won_deal;
    if kpis::created_in_batch(tenant, lead_id) {
        return Ok(());
    }
    let waiting = won_deal::Entity::find()
        .filter(won_deal::Column::TenantId.eq(tenant.as_str()))
        .filter(won_deal::Column::LeadId.eq(lead_id))
        .filter(won_deal::Column::CycleSeconds.lt(0))
        .all(txn)
        .await?;
    if waiting.is_empty() {
        return Ok(());
    }
    let row = kpis::lock_lead(txn, tenant, lead_id).await?;
    let Some(first) = row.first_touch_at else {
        return Ok(());
    };
    for w in waiting {
        let cycle = (w.cycle_end - first).num_seconds().max(0);
        count_cycle(txn, tenant, lead_id, w.won_at, cycle).await?;
        let d = kpis::dims_at(&row, w.won_at);
        let mut known: won_deal::ActiveModel = w.into();
        known.cycle_seconds = Set(cycle);
        set_won_dims(&mut known, &d);
        known.update(txn).await?;
    }
    Ok(())
}

/// Keeps the win's cycle for the median (a repeated win event is kept once).
async fn record_cycle<C: ConnectionTrait>(
    txn: &C,
    tenant: &TenantId,
    lead: &super::entities::lead_dim::Model,
    (at, end): (DateTime<Utc>, DateTime<Utc>),
    cycle: i64,
) -> Result<(), DbErr> {
    use super::entities::won_deal;
    let mut row = won_deal::ActiveModel {
        tenant_id: Set(tenant.to_string()),
        lead_id: Set(lead.lead_id.clone()),
        won_at: Set(at),
        cycle_end: Set(end),
        cycle_seconds: Set(cycle),
        ..Default::default()
    };
    set_won_dims(&mut row, &kpis::dims_at(lead, at));
    let result = won_deal::Entity::insert(row)
        .on_conflict_do_nothing_on([
            won_deal::Column::TenantId,
            won_deal::Column::LeadId,
            won_deal::Column::WonAt,
        ])
        .exec_without_returning(txn)
        .await;
    result.map(|_| ())
}

/// The win's dimensions on its row.
fn set_won_dims(row: &mut super::entities::won_deal::ActiveModel, d: &kpis::Dims) {
    let s = |v: &str| Set(v.to_owned());
    row.channel = s(&d.channel);
    row.campaign = s(&d.campaign);
    row.lead_magnet = s(&d.lead_magnet);
    row.funnel_position = s(&d.funnel_position);
    row.industry = s(&d.industry);
    row.employee_band = s(&d.employee_band);
    row.country = s(&d.country);
    row.rank = s(&d.rank);
    row.team = s(&d.team);
    row.rep = s(&d.rep);
}

async fn open_customer<C: ConnectionTrait>(
    txn: &C,
    tenant: &TenantId,
    lead_id: &str,
    at: DateTime<Utc>,
    mrr: Option<&Money>,
) -> Result<(), DbErr> {
    let existing = customer::Entity::find_by_id((tenant.to_string(), lead_id.to_owned()))
        .one(txn)
        .await?;
    let (currency, minor) = mrr.cloned().unwrap_or_default();
    match existing {
        Some(c) if c.churned_at.is_none() => return Ok(()),
        Some(c) => {
            let mut reopened: customer::ActiveModel = c.into();
            reopened.opened_at = Set(at);
            reopened.mrr_currency = Set(currency.clone());
            reopened.mrr_minor = Set(minor);
            reopened.churned_at = Set(None);
            reopened.churn_reason = Set(String::new());
            reopened.churn_key = Set(String::new());
            reopened.update(txn).await?;
        }
        None => {
            customer::ActiveModel {
                tenant_id: Set(tenant.to_string()),
                lead_id: Set(lead_id.to_owned()),
                opened_at: Set(at),
                mrr_currency: Set(currency.clone()),
                mrr_minor: Set(minor),
                churned_at: Set(None),
                churn_reason: Set(String::new()),
                churn_key: Set(String::new()),
            }
            .insert(txn)
            .await?;
        }
    }
    customer_change(txn, tenant, lead_id, at, (&currency, minor), 1).await
}

/// A customer opens (`sign` 1) or closes (−1): the customer count and the MRR move.
async fn customer_change<C: ConnectionTrait>(
    txn: &C,
    tenant: &TenantId,
    lead_id: &str,
    at: DateTime<Utc>,
    (currency, minor): (&str, i64),
    sign: i64,
) -> Result<(), DbErr> {
    let fact = |metric, delta| Fact {
        currency,
        ..Fact::new(metric, at, delta)
    };
    kpis::bump_for_lead(txn, tenant, lead_id, &fact(Metric::Customers, sign)).await?;
    if !currency.is_empty() {
        kpis::bump_for_lead(txn, tenant, lead_id, &fact(Metric::MrrMinor, sign * minor)).await?;
    }
    if sign < 0 {
        kpis::bump_for_lead(txn, tenant, lead_id, &fact(Metric::Churned, 1)).await?;
    }
    Ok(())
}

/// A validated RecordSpend.
#[derive(Debug, Clone)]
pub struct SpendInput {
    pub request_id: String,
    pub channel: String,
    pub campaign: String,
    pub start_day: NaiveDate,
    pub end_day: NaiveDate,
    pub amount: Money,
    pub recorded_by: String,
}

/// A validated RecordChurn.
#[derive(Debug, Clone)]
pub struct ChurnInput {
    pub idempotency_key: String,
    pub lead_id: String,
    pub churned_at: DateTime<Utc>,
    pub reason: String,
}

/// `amount` spread over `days` days: equal shares, the remainder one minor unit each on the first.
pub fn spread(amount: i64, days: i64) -> Vec<i64> {
    let days = days.max(1);
    let (share, rest) = (amount / days, amount % days);
    (0..days).map(|i| share + i64::from(i < rest)).collect()
}

impl Store {
    /// Records spend once per request id, spread over its days.
    pub async fn record_spend(
        &self,
        tenant: &TenantId,
        input: &SpendInput,
    ) -> Result<(spend::Model, bool), Error> {
        let txn = self.db.begin().await?;
        let existing = spend::Entity::find_by_id((tenant.to_string(), input.request_id.clone()))
            .one(&txn)
            .await?;
        if let Some(first) = existing {
            let same = first.channel == input.channel
                && first.campaign == input.campaign
                && first.start_day == input.start_day.to_string()
                && first.end_day == input.end_day.to_string()
                && (first.currency.as_str(), first.amount_minor)
                    == (input.amount.0.as_str(), input.amount.1);
            if !same {
                return Err(Error::Conflict(format!(
                    "request_id {:?} recorded another spend",
                    input.request_id
                )));
            }
            return Ok((first, false));
        }
        let saved = spend::ActiveModel {
            tenant_id: Set(tenant.to_string()),
            request_id: Set(input.request_id.clone()),
            channel: Set(input.channel.clone()),
            campaign: Set(input.campaign.clone()),
            start_day: Set(input.start_day.to_string()),
            end_day: Set(input.end_day.to_string()),
            currency: Set(input.amount.0.clone()),
            amount_minor: Set(input.amount.1),
            recorded_by: Set(input.recorded_by.clone()),
            recorded_at: Set(time::now()),
        }
        .insert(&txn)
        .await?;
        let days = (input.end_day - input.start_day).num_days() + 1;
        for (i, share) in spread(input.amount.1, days).into_iter().enumerate() {
            let day = input.start_day + chrono::Duration::days(i as i64);
            add_spend_day(&txn, tenant, input, day, share).await?;
        }
        txn.commit().await?;
        Ok((saved, true))
    }

    /// Closes a customer, once per idempotency key.
    pub async fn record_churn(
        &self,
        tenant: &TenantId,
        input: &ChurnInput,
    ) -> Result<customer::Model, Error> {
        let txn = self.db.begin().await?;
        let lead = kpis::lock_lead(&txn, tenant, &input.lead_id).await?;
        let Some(c) = customer::Entity::find_by_id((tenant.to_string(), input.lead_id.clone()))
            .one(&txn)
            .await?
        else {
            return Err(Error::not_found("customer", &input.lead_id));
        };
        if let Some(churned) = c.churned_at {
            if c.churn_key == input.idempotency_key {
                return Ok(c);
            }
            return Err(Error::rule(
                "customer_open",
                format!("the customer churned already, at {}", churned.to_rfc3339()),
            ));
        }
        if input.churned_at < c.opened_at {
            return Err(Error::rule(
                "churn_after_win",
                format!(
                    "churned_at is before the win at {}",
                    c.opened_at.to_rfc3339()
                ),
            ));
        }
        let money = (c.mrr_currency.clone(), c.mrr_minor);
        // An erased customer's churn keeps a reason that is a code, never words about them.
        let reason = if super::journal::erased(&txn, tenant, &input.lead_id).await? {
            baton_shared::erasure::keep_code(&input.reason)
        } else {
            input.reason.clone()
        };
        let mut closed: customer::ActiveModel = c.into();
        closed.churned_at = Set(Some(input.churned_at));
        closed.churn_reason = Set(reason);
        closed.churn_key = Set(input.idempotency_key.clone());
        let saved = closed.update(&txn).await?;
        let at = input.churned_at;
        customer_change(&txn, tenant, &lead.lead_id, at, (&money.0, money.1), -1).await?;
        txn.commit().await?;
        Ok(saved)
    }
}

async fn add_spend_day<C: ConnectionTrait>(
    txn: &C,
    tenant: &TenantId,
    input: &SpendInput,
    day: NaiveDate,
    minor: i64,
) -> Result<(), DbErr> {
    if minor == 0 {
        return Ok(());
    }
    spend_day::Entity::insert(spend_day::ActiveModel {
        tenant_id: Set(tenant.to_string()),
        day: Set(day.to_string()),
        channel: Set(input.channel.clone()),
        campaign: Set(input.campaign.clone()),
        currency: Set(input.amount.0.clone()),
        amount_minor: Set(minor),
    })
    .on_conflict(
        OnConflict::columns([
            spend_day::Column::TenantId,
            spend_day::Column::Day,
            spend_day::Column::Channel,
            spend_day::Column::Campaign,
            spend_day::Column::Currency,
        ])
        .value(
            spend_day::Column::AmountMinor,
            Expr::cust("spend_day.amount_minor + excluded.amount_minor"),
        )
        .to_owned(),
    )
    .exec(txn)
    .await?;
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn spend_spreads_evenly_with_the_remainder_on_the_first_days() {
        assert_eq!(spread(1000, 3), [334, 333, 333]);
        assert_eq!(spread(900, 3), [300, 300, 300]);
        assert_eq!(spread(2, 3), [1, 1, 0]);
        assert_eq!(spread(10_000, 1), [10_000]);
        assert_eq!(spread(1001, 7).iter().sum::<i64>(), 1001);
    }
}
