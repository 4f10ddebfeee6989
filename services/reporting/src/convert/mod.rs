//! Every conversion of reporting between its stored rows and its proto messages (plans in
//! `plans`, attainment in `attainment`).

pub mod attainment;
pub mod plans;

use baton_proto::capture::v1::Money;
use baton_proto::reporting::v1::{
    self as pb, Approval, Contract, ContractTerms, KpiOwner, KpiPhase, KpiUnit,
};
use baton_shared::{
    Violations,
    fields::{self, MAX_ACTOR_LEN, MAX_ID_LEN},
    time,
};
use chrono::{DateTime, NaiveDate, Utc};
use chrono_tz::Tz;
use prost::Message;

use crate::{
    domain::{
        accounts::Condition,
        funnel::{FunnelCounts, conversion_rate},
        kpis::{self, Granularity, Kpi, Owner, Phase, Series, Unit},
    },
    error::Error,
    store::{
        entities::{contract as row, customer, spend},
        money::{ChurnInput, SpendInput},
    },
};

/// Longest channel name (as capture allows).
const MAX_CHANNEL_LEN: usize = 64;

/// The terms stored with a contract version (encoded `ContractTerms`).
pub fn terms_of(r: &row::Model) -> ContractTerms {
    ContractTerms::decode(r.terms.as_slice()).unwrap_or_default()
}

pub fn contract_to_proto(r: &row::Model) -> Contract {
    let approval = |by: &str, at: Option<chrono::DateTime<chrono::Utc>>| {
        at.map(|at| Approval {
            approver: by.to_owned(),
            approved_at: Some(time::to_proto(at)),
        })
    };
    Contract {
        contract_id: r.contract_id.clone(),
        version: r.version,
        status: r.status,
        terms: Some(terms_of(r)),
        is_approval: approval(&r.is_approved_by, r.is_approved_at),
        fs_approval: approval(&r.fs_approved_by, r.fs_approved_at),
        created_by: r.created_by.clone(),
        created_at: Some(time::to_proto(r.created_at)),
        activated_at: r.activated_at.map(time::to_proto),
        superseded_at: r.superseded_at.map(time::to_proto),
    }
}

pub fn kpi_to_proto(k: &Kpi) -> pb::KpiDefinition {
    pb::KpiDefinition {
        key: k.key.to_owned(),
        name: k.name.to_owned(),
        definition: k.definition.to_owned(),
        unit: unit_to_proto(k.unit) as i32,
        numerator: k.numerator_words.to_owned(),
        denominator: k.denominator_words.to_owned(),
        phase: match k.phase {
            Phase::Acquisition => KpiPhase::Acquisition,
            Phase::PeriodicContact => KpiPhase::PeriodicContact,
            Phase::AttitudeChange => KpiPhase::AttitudeChange,
            Phase::Opportunity => KpiPhase::Opportunity,
            Phase::Closing => KpiPhase::Closing,
            Phase::Retention => KpiPhase::Retention,
        } as i32,
        owner: match k.owner {
            Owner::Marketing => KpiOwner::Marketing,
            Owner::InsideSales => KpiOwner::InsideSales,
            Owner::FieldSales => KpiOwner::FieldSales,
            Owner::CustomerSuccess => KpiOwner::CustomerSuccess,
        } as i32,
        version: k.version,
        dimensions: k.dimensions.iter().map(|d| (*d).to_owned()).collect(),
        parameters: k
            .parameters
            .iter()
            .map(|p| pb::KpiParameter {
                name: p.name.to_owned(),
                description: p.description.to_owned(),
                value: k.value(p.name).unwrap_or(p.default),
                default_value: p.default,
                min: p.min,
                max: p.max,
            })
            .collect(),
    }
}

fn unit_to_proto(u: Unit) -> KpiUnit {
    match u {
        Unit::Count => KpiUnit::Count,
        Unit::Percent => KpiUnit::Percent,
        Unit::Seconds => KpiUnit::Seconds,
        Unit::Days => KpiUnit::Days,
        Unit::Money => KpiUnit::Money,
    }
}

/// A validated GetKpis request.
pub struct KpiQuery {
    pub kpis: Vec<Kpi>,
    pub start: DateTime<Utc>,
    pub end: DateTime<Utc>,
    pub granularity: Granularity,
    pub tz: Tz,
    pub group_by: Vec<String>,
    pub filters: Vec<(String, String)>,
}

fn dimensions_listed() -> String {
    kpis::DIMENSIONS.join(", ")
}

/// The dimensions of a `group_by` (each once), every unknown one a violation naming the valid
/// ones.
pub fn group_by_from_proto(names: &[String], v: &mut Violations) -> Vec<String> {
    let mut group_by: Vec<String> = Vec::new();
    for (i, d) in names.iter().enumerate() {
        if !kpis::DIMENSIONS.contains(&d.as_str()) {
            v.add(
                format!("group_by[{i}]"),
                format!("unknown dimension {d:?}; one of {}", dimensions_listed()),
            );
        } else if !group_by.contains(d) {
            group_by.push(d.clone());
        }
    }
    group_by
}

/// Every problem of a GetKpis request, each with its field (unknown KPIs and dimensions name the
/// valid ones).
pub fn kpi_query_from_proto(
    req: &pb::GetKpisRequest,
    catalogue: &[Kpi],
) -> Result<KpiQuery, Error> {
    let mut v = Violations::new();
    if req.kpis.is_empty() {
        v.add("kpis", "name at least one KPI");
    }
    let mut chosen = Vec::new();
    for (i, key) in req.kpis.iter().enumerate() {
        match catalogue.iter().find(|k| k.key == key.trim()) {
            Some(k) => chosen.push(k.clone()),
            None => v.add(
                format!("kpis[{i}]"),
                format!(
                    "unknown KPI {key:?}; one of {}",
                    catalogue
                        .iter()
                        .map(|k| k.key)
                        .collect::<Vec<_>>()
                        .join(", ")
                ),
            ),
        }
    }
    let start = fields::required_time("start_time", req.start_time.as_ref(), &mut v);
    let end = fields::required_time("end_time", req.end_time.as_ref(), &mut v);
    if let (Some(s), Some(e)) = (start, end)
        && s >= e
    {
        v.add("end_time", "must be after start_time");
    }
    let granularity = match pb::Granularity::try_from(req.granularity) {
        Ok(pb::Granularity::Day) => Granularity::Day,
        Ok(pb::Granularity::Week) => Granularity::Week,
        Ok(pb::Granularity::Month) => Granularity::Month,
        Ok(pb::Granularity::Quarter) => Granularity::Quarter,
        Ok(pb::Granularity::Whole) => Granularity::Whole,
        _ => {
            v.add(
                "granularity",
                "DAY, WEEK, MONTH, QUARTER or WHOLE is required",
            );
            Granularity::Whole
        }
    };
    let tz = match req.time_zone.trim() {
        "" => Tz::UTC,
        name => name.parse::<Tz>().unwrap_or_else(|_| {
            v.add("time_zone", format!("{name:?} is not an IANA time zone"));
            Tz::UTC
        }),
    };
    let group_by = group_by_from_proto(&req.group_by, &mut v);
    let mut filters: Vec<(String, String)> = Vec::new();
    for (d, value) in &req.filters {
        if kpis::DIMENSIONS.contains(&d.as_str()) {
            filters.push((d.clone(), value.clone()));
        } else {
            v.add(
                format!("filters.{d}"),
                format!("unknown dimension; one of {}", dimensions_listed()),
            );
        }
    }
    filters.sort();
    for k in &chosen {
        let dimensions = group_by.iter().chain(filters.iter().map(|(d, _)| d));
        for d in dimensions {
            if !k.dimensions.contains(&d.as_str()) {
                v.add(
                    "group_by",
                    format!(
                        "{} cannot be split by {d}; it has {}",
                        k.key,
                        k.dimensions.join(", ")
                    ),
                );
            }
        }
    }
    v.into_result()?;
    match (start, end) {
        (Some(start), Some(end)) => Ok(KpiQuery {
            kpis: chosen,
            start,
            end,
            granularity,
            tz,
            group_by,
            filters,
        }),
        _ => Err(Error::invalid("start_time", "is required")),
    }
}

pub fn series_to_proto(s: &Series, group_by: &[String]) -> pb::KpiSeries {
    pb::KpiSeries {
        kpi: s.kpi.key.to_owned(),
        group: group_by
            .iter()
            .cloned()
            .zip(s.group.iter().cloned())
            .collect(),
        unit: unit_to_proto(s.kpi.unit) as i32,
        version: s.kpi.version,
        currency_code: s.currency.clone(),
        points: s
            .points
            .iter()
            .map(|p| pb::KpiPoint {
                period_start: Some(time::to_proto(p.period.start)),
                period_end: Some(time::to_proto(p.period.end)),
                value: p.value,
                numerator: p.numerator,
                denominator: p.denominator,
                no_value_reason: p.no_value.to_owned(),
            })
            .collect(),
    }
}

fn money_to_proto(currency: &str, minor: i64) -> Option<Money> {
    (!currency.is_empty()).then(|| Money {
        currency_code: currency.to_owned(),
        amount_minor: minor,
    })
}

/// A calendar day `YYYY-MM-DD`.
fn day_field(field: &str, value: &str, v: &mut Violations) -> Option<NaiveDate> {
    match NaiveDate::parse_from_str(value.trim(), "%Y-%m-%d") {
        Ok(d) => Some(d),
        Err(_) => {
            v.add(field, "must be a day YYYY-MM-DD");
            None
        }
    }
}

/// Longest spend a request may spread.
pub const MAX_SPEND_DAYS: i64 = 1_000;

/// Every problem of a RecordSpend request, each with its field.
pub fn spend_from_proto(req: &pb::RecordSpendRequest) -> Result<SpendInput, Error> {
    let mut v = Violations::new();
    let request_id = v.required("request_id", &req.request_id, MAX_ID_LEN);
    let channel = v.required("channel", &req.channel, MAX_CHANNEL_LEN);
    if req.campaign.trim().len() > MAX_ID_LEN {
        v.add("campaign", format!("must be at most {MAX_ID_LEN} bytes"));
    }
    if req.recorded_by.trim().len() > MAX_ACTOR_LEN {
        v.add(
            "recorded_by",
            format!("must be at most {MAX_ACTOR_LEN} bytes"),
        );
    }
    let start = day_field("start_day", &req.start_day, &mut v);
    let end = day_field("end_day", &req.end_day, &mut v);
    if let (Some(s), Some(e)) = (start, end) {
        if e < s {
            v.add("end_day", "must not be before start_day");
        } else if (e - s).num_days() + 1 > MAX_SPEND_DAYS {
            v.add(
                "end_day",
                format!("a spend covers at most {MAX_SPEND_DAYS} days"),
            );
        }
    }
    let amount = match &req.amount {
        None => {
            v.add("amount", "is required");
            None
        }
        Some(m) => {
            if iso_currency::Currency::from_code(&m.currency_code).is_none() {
                v.add("amount.currency_code", "must be an ISO 4217 code");
            }
            if !(1..=baton_shared::fields::MAX_AMOUNT_MINOR).contains(&m.amount_minor) {
                v.add(
                    "amount.amount_minor",
                    format!(
                        "must be from 1 to {} (minor units)",
                        baton_shared::fields::MAX_AMOUNT_MINOR
                    ),
                );
            }
            Some((m.currency_code.clone(), m.amount_minor))
        }
    };
    v.into_result()?;
    match (start, end, amount) {
        (Some(start_day), Some(end_day), Some(amount)) => Ok(SpendInput {
            request_id,
            channel,
            campaign: req.campaign.trim().to_owned(),
            start_day,
            end_day,
            amount,
            recorded_by: req.recorded_by.trim().to_owned(),
        }),
        _ => Err(Error::invalid("amount", "is required")),
    }
}

pub fn spend_to_proto(s: &spend::Model) -> pb::Spend {
    pb::Spend {
        request_id: s.request_id.clone(),
        channel: s.channel.clone(),
        campaign: s.campaign.clone(),
        start_day: s.start_day.clone(),
        end_day: s.end_day.clone(),
        amount: money_to_proto(&s.currency, s.amount_minor),
        recorded_by: s.recorded_by.clone(),
        recorded_at: Some(time::to_proto(s.recorded_at)),
    }
}

/// Every problem of a RecordChurn request, each with its field.
pub fn churn_from_proto(req: &pb::RecordChurnRequest) -> Result<ChurnInput, Error> {
    let mut v = Violations::new();
    let idempotency_key = v.required("idempotency_key", &req.idempotency_key, MAX_ID_LEN);
    let lead_id = v.required("lead_id", &req.lead_id, MAX_ID_LEN);
    let reason = v.required("reason", &req.reason, fields::MAX_NOTE_LEN);
    let churned_at = fields::required_time("churned_at", req.churned_at.as_ref(), &mut v);
    v.into_result()?;
    let Some(churned_at) = churned_at else {
        return Err(Error::invalid("churned_at", "is required"));
    };
    Ok(ChurnInput {
        idempotency_key,
        lead_id,
        churned_at,
        reason,
    })
}

pub fn customer_to_proto(c: &customer::Model) -> pb::Customer {
    pb::Customer {
        lead_id: c.lead_id.clone(),
        opened_at: Some(time::to_proto(c.opened_at)),
        monthly_recurring_revenue: money_to_proto(&c.mrr_currency, c.mrr_minor),
        churned_at: c.churned_at.map(time::to_proto),
        churn_reason: c.churn_reason.clone(),
    }
}

/// The funnel's totals, and per group when it was grouped.
pub fn funnel_to_proto(
    (from, to): (DateTime<Utc>, DateTime<Utc>),
    c: &FunnelCounts,
    groups: &[(Vec<String>, FunnelCounts)],
    group_by: &[String],
) -> pb::Funnel {
    pb::Funnel {
        start_time: Some(time::to_proto(from)),
        end_time: Some(time::to_proto(to)),
        leads: c.leads,
        mqls: c.mqls,
        assignments: c.assignments,
        enrollments: c.enrollments,
        lead_to_mql_rate: conversion_rate(c.mqls, c.leads),
        mql_to_assignment_rate: conversion_rate(c.assignments, c.mqls),
        sqls: c.sqls,
        opportunities: c.opportunities,
        won: c.won,
        groups: groups
            .iter()
            .map(|(group, g)| pb::FunnelGroup {
                group: group_by
                    .iter()
                    .cloned()
                    .zip(group.iter().cloned())
                    .collect(),
                leads: g.leads,
                mqls: g.mqls,
                assignments: g.assignments,
                enrollments: g.enrollments,
                sqls: g.sqls,
                opportunities: g.opportunities,
                won: g.won,
            })
            .collect(),
    }
}

/// A checked UpdateKpiParameters: the KPI and all its parameter values after the change.
pub fn kpi_parameters_from_proto(
    req: &pb::UpdateKpiParametersRequest,
    catalogue: &[Kpi],
) -> Result<(Kpi, Vec<(String, f64)>), Error> {
    let mut v = Violations::new();
    let Some(kpi) = catalogue.iter().find(|k| k.key == req.kpi.trim()) else {
        return Err(Error::invalid("kpi", format!("unknown KPI {:?}", req.kpi)));
    };
    if kpi.parameters.is_empty() {
        v.add("kpi", format!("{} has no parameters", kpi.key));
    } else if req.parameters.is_empty() {
        v.add("parameters", "name at least one");
    }
    if req.updated_by.trim().len() > MAX_ACTOR_LEN {
        v.add(
            "updated_by",
            format!("must be at most {MAX_ACTOR_LEN} bytes"),
        );
    }
    let mut changed: Vec<(String, f64)> = req
        .parameters
        .iter()
        .map(|(n, x)| (n.clone(), *x))
        .collect();
    changed.sort_by(|a, b| a.0.cmp(&b.0));
    if !kpi.parameters.is_empty() {
        for (name, problem) in kpi.check_values(&changed) {
            v.add(format!("parameters.{name}"), problem);
        }
    }
    v.into_result()?;
    let values = kpi
        .parameters
        .iter()
        .map(|p| {
            let new = changed.iter().find(|(n, _)| n == p.name).map(|c| c.1);
            (
                p.name.to_owned(),
                new.or(kpi.value(p.name)).unwrap_or(p.default),
            )
        })
        .collect();
    Ok((kpi.clone(), values))
}

/// The condition a TargetAccounts message states (lower-cased, trimmed).
pub fn condition_of(t: &pb::TargetAccounts) -> Condition {
    let clean = |list: &[String]| -> Vec<String> {
        list.iter()
            .map(|s| s.trim().to_ascii_lowercase())
            .filter(|s| !s.is_empty())
            .collect()
    };
    Condition {
        web_domains: clean(&t.web_domains),
        industries: clean(&t.industries),
        countries: clean(&t.countries),
        min_employees: t.min_employees,
    }
}

/// A checked SetTargetAccounts: the condition to store, cleaned.
pub fn target_accounts_from_proto(
    req: &pb::SetTargetAccountsRequest,
) -> Result<pb::TargetAccounts, Error> {
    let Some(accounts) = &req.accounts else {
        return Err(Error::invalid("accounts", "is required"));
    };
    let condition = condition_of(accounts);
    let mut v = Violations::new();
    if condition.is_empty() {
        v.add(
            "accounts",
            "set web_domains, industries, countries or min_employees",
        );
    }
    if accounts.min_employees.is_some_and(|m| m < 0) {
        v.add("accounts.min_employees", "must not be negative");
    }
    if accounts.updated_by.trim().len() > MAX_ACTOR_LEN {
        v.add(
            "accounts.updated_by",
            format!("must be at most {MAX_ACTOR_LEN} bytes"),
        );
    }
    v.into_result()?;
    Ok(pb::TargetAccounts {
        version: 0,
        web_domains: condition.web_domains,
        industries: condition.industries,
        countries: condition.countries,
        min_employees: condition.min_employees,
        updated_by: accounts.updated_by.trim().to_owned(),
        updated_at: None,
    })
}

/// A lead's journal rows to the proto journal.
pub fn journal_to_proto(
    lead_id: &str,
    rows: &[crate::store::entities::journal_entry::Model],
) -> pb::LeadJourney {
    pb::LeadJourney {
        lead_id: lead_id.to_owned(),
        entries: rows
            .iter()
            .map(|r| pb::JourneyEntry {
                at: Some(time::to_proto(r.at)),
                service: r.service.clone(),
                kind: r.kind.clone(),
                actor: r.actor.clone(),
                details: crate::store::journal::details_of(r).into_iter().collect(),
            })
            .collect(),
    }
}
