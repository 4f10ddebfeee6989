//! A contract's attainment, kept current as distribution's events arrive: each handoff's facts
//! (`attainment_handoff`), and per contract period and (IS rep, FS rep) the sum of the handoffs'
//! contributions (`attainment_counter`). A change moves the counters by the difference between
//! the handoff's new and old contribution, so reading a period sums a few rows however many
//! handoffs it had.

use baton_proto::{
    distribution::v1::{
        BreachCause, HandoffAction, HandoffChanged, HandoffState, SlaBreached, SlaKind,
    },
    reporting::v1::ContractTerms,
};
use baton_shared::{TenantId, time};
use chrono::{DateTime, Duration, Utc};
use prost::Message;
use sea_orm::{
    ActiveValue::Set,
    ConnectionTrait, DbErr, EntityTrait, QueryFilter,
    prelude::*,
    sea_query::{Alias, OnConflict},
};

use super::{
    Store,
    entities::{attainment_counter as counter, attainment_handoff as facts_row, contract},
    scorecards,
};
use crate::{
    domain::{
        attainment::{self, Breach, COUNT_NAMES, Counts, HandoffFacts, State},
        kpis::{Period, period_of},
    },
    error::Error,
};

/// Where a handoff's contribution is counted: its contract, period and reps.
#[derive(Debug, Clone, PartialEq, Eq)]
struct Key {
    contract_id: String,
    period_start: DateTime<Utc>,
    is_rep: String,
    fs_rep: String,
}

fn state_of(value: i32) -> State {
    match HandoffState::try_from(value) {
        Ok(HandoffState::Accepted) => State::Accepted,
        Ok(HandoffState::Rejected) => State::Rejected,
        Ok(HandoffState::Disputed) => State::Disputed,
        Ok(HandoffState::Won) => State::Won,
        Ok(HandoffState::Lost) => State::Lost,
        _ => State::Pending,
    }
}

fn breach_of(value: i32) -> Option<Breach> {
    match value {
        1 => Some(Breach::Human),
        2 => Some(Breach::System),
        _ => None,
    }
}

fn facts_of(row: &facts_row::Model) -> HandoffFacts {
    HandoffFacts {
        state: state_of(row.state),
        reason_code: row.reason_code.clone(),
        decided_at: row.decided_at,
        decision_due_at: row.decision_due_at,
        decision_breach: breach_of(row.decision_breach),
        ruled_at: row.ruled_at,
        ruling_due_at: row.ruling_due_at,
        ruling_breach: breach_of(row.ruling_breach),
        amount: row.amount_currency.clone().zip(row.amount_minor),
    }
}

fn key_of(row: &facts_row::Model) -> Key {
    Key {
        contract_id: row.contract_id.clone(),
        period_start: row.counted_in,
        is_rep: row.is_rep.clone(),
        fs_rep: row.fs_rep.clone(),
    }
}

/// A contract version's terms as reporting stores them.
pub async fn terms_of<C: ConnectionTrait>(
    db: &C,
    tenant: &TenantId,
    contract_id: &str,
) -> Result<Option<(contract::Model, ContractTerms)>, DbErr> {
    Ok(contract::Entity::find()
        .filter(contract::Column::TenantId.eq(tenant.as_str()))
        .filter(contract::Column::ContractId.eq(contract_id))
        .one(db)
        .await?
        .map(|row| {
            let terms = ContractTerms::decode(row.terms.as_slice()).unwrap_or_default();
            (row, terms)
        }))
}

/// What a change is, for the adjustment a closed period lists.
struct Change<'a> {
    handoff_id: &'a str,
    cause: &'a str,
    at: DateTime<Utc>,
    periods: &'a [Period],
}

/// Moves the numbers of `key` by `delta`; if `key`'s period is closed, the numbers of the next
/// open period move instead and the closed scorecard lists the change.
async fn count<C: ConnectionTrait>(
    txn: &C,
    tenant: &TenantId,
    key: &Key,
    delta: Counts,
    change: &Change<'_>,
) -> Result<(), DbErr> {
    if delta.is_zero() {
        return Ok(());
    }
    let closed = scorecards::closed_periods(txn, tenant, &key.contract_id).await?;
    let Some((_, scorecard_id)) = closed.iter().find(|(start, _)| *start == key.period_start)
    else {
        return bump(txn, tenant, key, delta).await;
    };
    let starts: Vec<DateTime<Utc>> = closed.iter().map(|(s, _)| *s).collect();
    let target = attainment::counting_period(change.periods, &starts, key.period_start);
    scorecards::record_adjustment(
        txn,
        tenant,
        scorecards::Adjustment {
            scorecard_id,
            handoff_id: change.handoff_id,
            cause: change.cause,
            at: change.at,
            counted_in: target.map(|p| p.start),
            delta,
        },
    )
    .await?;
    match target {
        Some(p) => {
            let moved = Key {
                period_start: p.start,
                ..key.clone()
            };
            bump(txn, tenant, &moved, delta).await
        }
        None => Ok(()),
    }
}

/// Moves the counters of `key` by `delta`.
async fn bump<C: ConnectionTrait>(
    txn: &C,
    tenant: &TenantId,
    key: &Key,
    delta: Counts,
) -> Result<(), DbErr> {
    if delta.is_zero() {
        return Ok(());
    }
    let d = delta.to_array();
    let row = counter::ActiveModel {
        tenant_id: Set(tenant.to_string()),
        contract_id: Set(key.contract_id.clone()),
        period_start: Set(key.period_start),
        is_rep: Set(key.is_rep.clone()),
        fs_rep: Set(key.fs_rep.clone()),
        handoffs: Set(d[0]),
        accepted: Set(d[1]),
        rejected: Set(d[2]),
        rejected_final: Set(d[3]),
        rejected_with_reason: Set(d[4]),
        won: Set(d[5]),
        lost: Set(d[6]),
        won_amount_minor: Set(d[7]),
        decisions_due: Set(d[8]),
        decisions_in_time: Set(d[9]),
        human_breaches: Set(d[10]),
        system_breaches: Set(d[11]),
        disputes_due: Set(d[12]),
        disputes_in_time: Set(d[13]),
    };
    let mut on_conflict = OnConflict::columns([
        counter::Column::TenantId,
        counter::Column::ContractId,
        counter::Column::PeriodStart,
        counter::Column::IsRep,
        counter::Column::FsRep,
    ]);
    for name in COUNT_NAMES {
        on_conflict.value(
            Alias::new(name),
            Expr::cust(format!("attainment_counter.{name} + excluded.{name}")),
        );
    }
    counter::Entity::insert(row)
        .on_conflict(on_conflict.to_owned())
        .exec_without_returning(txn)
        .await?;
    Ok(())
}

/// Stores `after` in place of `before` and moves the counters by the change of contribution.
async fn replace<C: ConnectionTrait>(
    txn: &C,
    tenant: &TenantId,
    (before, after): (Option<&facts_row::Model>, facts_row::Model),
    currency: &str,
    change: &Change<'_>,
) -> Result<(), DbErr> {
    let new = attainment::contribution(&facts_of(&after), currency);
    let new_key = key_of(&after);
    match before {
        Some(old_row) => {
            let old = attainment::contribution(&facts_of(old_row), currency);
            let old_key = key_of(old_row);
            if old_key == new_key {
                count(txn, tenant, &new_key, new.minus(old), change).await?;
            } else {
                count(txn, tenant, &old_key, Counts::default().minus(old), change).await?;
                count(txn, tenant, &new_key, new, change).await?;
            }
            // Every column written (a model converts to unchanged values), but the key.
            let mut active = facts_row::ActiveModel::from(after).reset_all();
            for c in [facts_row::Column::TenantId, facts_row::Column::HandoffId] {
                active.not_set(c);
            }
            facts_row::Entity::update_many()
                .set(active)
                .filter(facts_row::Column::TenantId.eq(tenant.as_str()))
                .filter(facts_row::Column::HandoffId.eq(old_row.handoff_id.as_str()))
                .exec(txn)
                .await?;
        }
        None => {
            count(txn, tenant, &new_key, new, change).await?;
            facts_row::Entity::insert(facts_row::ActiveModel::from(after))
                .exec_without_returning(txn)
                .await?;
        }
    }
    Ok(())
}

async fn facts_for<C: ConnectionTrait>(
    txn: &C,
    tenant: &TenantId,
    handoff_id: &str,
) -> Result<Option<facts_row::Model>, DbErr> {
    facts_row::Entity::find_by_id((tenant.to_string(), handoff_id.to_owned()))
        .one(txn)
        .await
}

fn bant_bits(b: Option<&baton_proto::distribution::v1::HandoffBant>) -> i32 {
    b.map_or(0, |b| {
        i32::from(b.budget)
            | i32::from(b.authority) << 1
            | i32::from(b.need) << 2
            | i32::from(b.timeframe) << 3
    })
}

fn currency_of(terms: &ContractTerms) -> String {
    terms
        .is_targets
        .as_ref()
        .map(|t| t.currency_code.clone())
        .unwrap_or_default()
}

/// A handoff step: the handoff's new facts, counted in the period it was created in.
pub async fn handoff_changed<C: ConnectionTrait>(
    txn: &C,
    tenant: &TenantId,
    e: &HandoffChanged,
    at: DateTime<Utc>,
) -> Result<(), DbErr> {
    let (Some(h), Some(step)) = (&e.handoff, &e.step) else {
        return Ok(());
    };
    if h.contract_id.is_empty() {
        return Ok(());
    }
    let Some((_, terms)) = terms_of(txn, tenant, &h.contract_id).await? else {
        return Ok(());
    };
    let periods = attainment::contract_periods(&terms);
    let created = h
        .created_at
        .as_ref()
        .and_then(time::from_proto)
        .unwrap_or(at);
    let Some(i) = period_of(&periods, created) else {
        return Ok(());
    };
    let before = facts_for(txn, tenant, &h.handoff_id).await?;
    let mut after = before.clone().unwrap_or_else(|| facts_row::Model {
        tenant_id: tenant.to_string(),
        handoff_id: h.handoff_id.clone(),
        contract_id: h.contract_id.clone(),
        lead_id: h.lead_id.clone(),
        is_team: h.is_team.clone(),
        fs_team: h.fs_team.clone(),
        created_at: created,
        score_at_handoff: h.score_at_handoff,
        rank_at_handoff: crate::domain::kpis::rank_name(h.rank_at_handoff).to_owned(),
        bant: bant_bits(h.bant.as_ref()),
        period_start: periods[i].start,
        counted_in: periods[i].start,
        is_rep: h.handed_off_by.clone(),
        fs_rep: h.fs_rep_id.clone(),
        state: HandoffState::Pending as i32,
        reason_code: String::new(),
        decided_at: None,
        decision_due_at: None,
        decision_breach: 0,
        ruled_at: None,
        ruling_due_at: None,
        ruling_breach: 0,
        amount_currency: None,
        amount_minor: None,
        updated_at: at,
    });
    after.state = h.state;
    after.reason_code = h.rejection_reason.clone();
    after.decision_due_at = h.decision_due_at.as_ref().and_then(time::from_proto);
    after.updated_at = at;
    if h.state == HandoffState::Won as i32 {
        let amount = h.amount.as_ref();
        after.amount_currency = amount.map(|m| m.currency_code.clone());
        after.amount_minor = amount.map(|m| m.amount_minor);
    }
    match HandoffAction::try_from(step.kind).unwrap_or(HandoffAction::Unspecified) {
        HandoffAction::Accepted | HandoffAction::Rejected => {
            after.decided_at = after.decided_at.or(Some(at));
            after.fs_rep = step.actor.clone();
        }
        HandoffAction::Disputed => {
            after.ruled_at = None;
            after.ruling_breach = 0;
            after.ruling_due_at = (terms.dispute_ruling_hours > 0)
                .then(|| at + Duration::hours(i64::from(terms.dispute_ruling_hours)));
        }
        HandoffAction::DisputeUpheld | HandoffAction::DisputeOverturned => {
            after.ruled_at = Some(at);
        }
        _ => {}
    }
    let action = HandoffAction::try_from(step.kind).unwrap_or(HandoffAction::Unspecified);
    let cause = action
        .as_str_name()
        .trim_start_matches("HANDOFF_ACTION_")
        .to_ascii_lowercase();
    let change = Change {
        handoff_id: &h.handoff_id,
        cause: &cause,
        at,
        periods: &periods,
    };
    let currency = currency_of(&terms);
    replace(txn, tenant, (before.as_ref(), after), &currency, &change).await
}

/// A decision or ruling SLA ran out: charged to a person or to the system, as distribution says.
pub async fn sla_breached<C: ConnectionTrait>(
    txn: &C,
    tenant: &TenantId,
    e: &SlaBreached,
) -> Result<(), DbErr> {
    let kind = SlaKind::try_from(e.kind).unwrap_or(SlaKind::Unspecified);
    if !matches!(kind, SlaKind::Decision | SlaKind::DisputeRuling) {
        return Ok(());
    }
    let Some(before) = facts_for(txn, tenant, &e.subject_id).await? else {
        return Ok(());
    };
    let Some((_, terms)) = terms_of(txn, tenant, &before.contract_id).await? else {
        return Ok(());
    };
    let cause = match BreachCause::try_from(e.cause) {
        Ok(BreachCause::System) => 2,
        _ => 1,
    };
    let mut after = before.clone();
    if kind == SlaKind::Decision {
        after.decision_breach = cause;
    } else {
        after.ruling_breach = cause;
    }
    let periods = attainment::contract_periods(&terms);
    let change = Change {
        handoff_id: &before.handoff_id,
        cause: "sla_breached",
        at: e
            .breached_at
            .as_ref()
            .and_then(time::from_proto)
            .unwrap_or_else(time::now),
        periods: &periods,
    };
    let currency = currency_of(&terms);
    replace(txn, tenant, (Some(&before), after), &currency, &change).await
}

/// A period's numbers: the totals and each (IS rep, FS rep) pair's.
#[derive(Debug, Clone)]
pub struct PeriodNumbers {
    pub contract: contract::Model,
    pub terms: ContractTerms,
    pub period: Period,
    pub totals: Counts,
    pub by_reps: Vec<(String, String, Counts)>,
}

fn counts_of(r: &counter::Model) -> Counts {
    Counts::from_array([
        r.handoffs,
        r.accepted,
        r.rejected,
        r.rejected_final,
        r.rejected_with_reason,
        r.won,
        r.lost,
        r.won_amount_minor,
        r.decisions_due,
        r.decisions_in_time,
        r.human_breaches,
        r.system_breaches,
        r.disputes_due,
        r.disputes_in_time,
    ])
}

/// Picks the period: the one starting at `period_start`, else the one holding `as_of` (the last
/// one once the contract ended).
fn pick_period(
    periods: &[Period],
    period_start: Option<DateTime<Utc>>,
    as_of: DateTime<Utc>,
) -> Result<Period, Error> {
    let first = periods
        .first()
        .ok_or_else(|| Error::invalid("contract_id", "the contract has no period"))?;
    if let Some(start) = period_start {
        return periods
            .iter()
            .find(|p| p.start == start)
            .copied()
            .ok_or_else(|| {
                Error::invalid(
                    "period_start",
                    format!(
                        "does not begin one of the contract's periods (the first begins {})",
                        first.start.to_rfc3339()
                    ),
                )
            });
    }
    if as_of < first.start {
        return Err(Error::invalid(
            "as_of",
            format!(
                "is before the contract's first period ({})",
                first.start.to_rfc3339()
            ),
        ));
    }
    Ok(period_of(periods, as_of)
        .map(|i| periods[i])
        .unwrap_or(*periods.last().unwrap_or(first)))
}

impl Store {
    /// A contract version's terms (NOT_FOUND if there is none).
    pub async fn contract_terms(
        &self,
        tenant: &TenantId,
        contract_id: &str,
    ) -> Result<ContractTerms, Error> {
        Ok(terms_of(&self.db, tenant, contract_id)
            .await?
            .ok_or_else(|| Error::not_found("contract", contract_id))?
            .1)
    }

    /// The numbers of one period of a contract.
    pub async fn period_numbers(
        &self,
        tenant: &TenantId,
        contract_id: &str,
        period_start: Option<DateTime<Utc>>,
        as_of: DateTime<Utc>,
    ) -> Result<PeriodNumbers, Error> {
        let (contract, terms) = terms_of(&self.db, tenant, contract_id)
            .await?
            .ok_or_else(|| Error::not_found("contract", contract_id))?;
        let period = pick_period(&attainment::contract_periods(&terms), period_start, as_of)?;
        let rows = counter::Entity::find()
            .filter(counter::Column::TenantId.eq(tenant.as_str()))
            .filter(counter::Column::ContractId.eq(contract_id))
            .filter(counter::Column::PeriodStart.eq(period.start))
            .all(&self.db)
            .await?;
        let mut totals = Counts::default();
        let mut by_reps = Vec::with_capacity(rows.len());
        for r in &rows {
            let c = counts_of(r);
            totals = totals.plus(c);
            by_reps.push((r.is_rep.clone(), r.fs_rep.clone(), c));
        }
        Ok(PeriodNumbers {
            contract,
            terms,
            period,
            totals,
            by_reps,
        })
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use chrono::TimeZone;

    #[test]
    fn a_period_is_picked_by_its_start_or_by_the_moment_asked() {
        let at = |m: u32| Utc.with_ymd_and_hms(2027, m, 1, 0, 0, 0).unwrap();
        let periods = vec![
            Period {
                start: at(1),
                end: at(2),
            },
            Period {
                start: at(2),
                end: at(3),
            },
        ];
        assert_eq!(pick_period(&periods, None, at(2)).unwrap().start, at(2));
        assert_eq!(
            pick_period(&periods, Some(at(1)), at(5)).unwrap().start,
            at(1)
        );
        assert_eq!(pick_period(&periods, None, at(5)).unwrap().start, at(2));
        assert!(pick_period(&periods, Some(at(4)), at(2)).is_err());
        let before = Utc.with_ymd_and_hms(2026, 12, 1, 0, 0, 0).unwrap();
        assert!(pick_period(&periods, None, before).is_err());
    }
}
