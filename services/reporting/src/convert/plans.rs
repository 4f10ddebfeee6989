//! Plans between their proto messages and the planning rules: the checked request, the derived
//! numbers, the stored row.

use baton_proto::{
    capture::v1::Money,
    reporting::v1::{self as pb, PlanStage, RateSource},
};
use baton_shared::{
    Violations,
    fields::{self, MAX_ACTOR_LEN, MAX_ID_LEN},
    time,
};
use chrono::{DateTime, Utc};
use chrono_tz::Tz;
use prost::Message;

use crate::{
    domain::planning::{self, Derived, RatePpm, Stage},
    error::Error,
    store::entities::plan as row,
};

/// The qualification stages a dwell limit may name.
pub const DWELL_STAGES: [&str; 5] = ["lead", "iql", "mql", "sql", "opportunity"];

const MAX_NAME_LEN: usize = 200;

/// A checked CreatePlan request.
#[derive(Debug, Clone)]
pub struct PlanRequest {
    pub request_id: String,
    pub plan_id: Option<String>,
    pub name: String,
    pub start: DateTime<Utc>,
    pub end: DateTime<Utc>,
    pub time_zone: String,
    pub created_by: String,
    pub inputs: pb::PlanInputs,
    pub currency: String,
    /// The planning inputs, with the rates not given at 0 (see `given`).
    pub planning: planning::Inputs,
    /// Lead → MQL, MQL → SQL, SQL → opportunity, opportunity → won: given or not.
    pub given: [bool; 4],
    pub history: Option<(DateTime<Utc>, DateTime<Utc>)>,
}

/// The names of the four rates, as fields.
pub const RATE_FIELDS: [&str; 4] = [
    "inputs.rates.lead_to_mql",
    "inputs.rates.mql_to_sql",
    "inputs.rates.sql_to_opportunity",
    "inputs.rates.opportunity_to_won",
];

fn money(field: &str, m: Option<&Money>, currency: &mut String, v: &mut Violations) -> i64 {
    let Some(m) = m else {
        v.add(field, "is required");
        return 0;
    };
    if iso_currency::Currency::from_code(&m.currency_code).is_none() {
        v.add(format!("{field}.currency_code"), "must be an ISO 4217 code");
    } else if currency.is_empty() {
        m.currency_code.clone_into(currency);
    } else if *currency != m.currency_code {
        v.add(
            format!("{field}.currency_code"),
            format!("must be the plan's currency {currency} (money in one currency only)"),
        );
    }
    if !(1..=baton_shared::fields::MAX_AMOUNT_MINOR).contains(&m.amount_minor) {
        v.add(
            format!("{field}.amount_minor"),
            format!(
                "must be from 1 to {} (minor units)",
                baton_shared::fields::MAX_AMOUNT_MINOR
            ),
        );
    }
    m.amount_minor
}

fn percent(field: &str, value: f64, v: &mut Violations) -> RatePpm {
    if value.is_nan() || value <= 0.0 || value > 100.0 {
        v.add(field, "must be a percent above 0 and at most 100");
        return 0;
    }
    planning::rate_ppm(value)
}

fn rates(r: &pb::StageRates, v: &mut Violations) -> ([RatePpm; 4], [bool; 4]) {
    let given = [
        r.lead_to_mql,
        r.mql_to_sql,
        r.sql_to_opportunity,
        r.opportunity_to_won,
    ];
    let mut ppm = [0; 4];
    for (i, rate) in given.iter().enumerate() {
        if let Some(rate) = rate {
            ppm[i] = percent(RATE_FIELDS[i], *rate, v);
        }
    }
    (ppm, given.map(|g| g.is_some()))
}

fn churned(i: &pb::PlanInputs, v: &mut Violations) -> i64 {
    match (i.expected_churned_customers, i.churn_rate) {
        (Some(n), _) if n < 0 => {
            v.add("inputs.expected_churned_customers", "must not be negative");
            0
        }
        (Some(n), _) => n,
        (None, Some(rate)) if !(0.0..=100.0).contains(&rate) => {
            v.add("inputs.churn_rate", "must be a percent from 0 to 100");
            0
        }
        (None, Some(rate)) => planning::churned_of(i.existing_customers, planning::rate_ppm(rate)),
        (None, None) => 0,
    }
}

fn dwell(i: &pb::PlanInputs, v: &mut Violations) {
    for (n, d) in i.max_dwell.iter().enumerate() {
        if !DWELL_STAGES.contains(&d.stage.as_str()) {
            v.add(
                format!("inputs.max_dwell[{n}].stage"),
                format!("one of {}", DWELL_STAGES.join(", ")),
            );
        }
        if d.max_days.is_nan() || d.max_days <= 0.0 {
            v.add(format!("inputs.max_dwell[{n}].max_days"), "must be above 0");
        }
    }
}

/// Every problem of the inputs, each with its field.
fn inputs_from_proto(
    i: &pb::PlanInputs,
    v: &mut Violations,
) -> (planning::Inputs, String, [bool; 4]) {
    let mut currency = String::new();
    let target_mrr = money("inputs.target_mrr", i.target_mrr.as_ref(), &mut currency, v);
    let arpa = money("inputs.arpa", i.arpa.as_ref(), &mut currency, v);
    let monthly_gross_profit = money(
        "inputs.monthly_gross_profit_per_customer",
        i.monthly_gross_profit_per_customer.as_ref(),
        &mut currency,
        v,
    );
    if i.existing_customers < 0 {
        v.add("inputs.existing_customers", "must not be negative");
    }
    if !i.payback_months.is_finite() || i.payback_months <= 0.0 {
        v.add("inputs.payback_months", "must be above 0");
    }
    if !(0.0..=100.0).contains(&i.alert_threshold) {
        v.add("inputs.alert_threshold", "must be a percent from 0 to 100");
    }
    dwell(i, v);
    let (rates, given) = rates(&i.rates.unwrap_or_default(), v);
    let planning = planning::Inputs {
        target_mrr,
        arpa,
        existing_customers: i.existing_customers.max(0),
        churned_customers: churned(i, v),
        monthly_gross_profit,
        payback_months: i.payback_months,
        rates,
    };
    (planning, currency, given)
}

fn history(
    i: &pb::PlanInputs,
    given: [bool; 4],
    v: &mut Violations,
) -> Option<(DateTime<Utc>, DateTime<Utc>)> {
    if given.iter().all(|g| *g) {
        return None;
    }
    let start = fields::required_time(
        "inputs.history_start_time",
        i.history_start_time.as_ref(),
        v,
    );
    let end = fields::required_time("inputs.history_end_time", i.history_end_time.as_ref(), v);
    match (start, end) {
        (Some(s), Some(e)) if s < e => Some((s, e)),
        (Some(_), Some(_)) => {
            v.add(
                "inputs.history_end_time",
                "must be after history_start_time",
            );
            None
        }
        _ => None,
    }
}

/// Every problem of a CreatePlan request, each with its field.
pub fn plan_request_from_proto(req: &pb::CreatePlanRequest) -> Result<PlanRequest, Error> {
    let mut v = Violations::new();
    let request_id = v.required("request_id", &req.request_id, MAX_ID_LEN);
    let name = v.required("name", &req.name, MAX_NAME_LEN);
    if req.created_by.trim().len() > MAX_ACTOR_LEN {
        v.add(
            "created_by",
            format!("must be at most {MAX_ACTOR_LEN} bytes"),
        );
    }
    let start = fields::required_time("start_time", req.start_time.as_ref(), &mut v);
    let end = fields::required_time("end_time", req.end_time.as_ref(), &mut v);
    if let (Some(s), Some(e)) = (start, end)
        && s >= e
    {
        v.add("end_time", "must be after start_time");
    }
    if !req.time_zone.is_empty() && req.time_zone.parse::<Tz>().is_err() {
        v.add(
            "time_zone",
            format!("{:?} is not an IANA time zone", req.time_zone),
        );
    }
    let inputs = req.inputs.clone().unwrap_or_default();
    if req.inputs.is_none() {
        v.add("inputs", "is required");
    }
    let (planning, currency, given) = inputs_from_proto(&inputs, &mut v);
    let history = history(&inputs, given, &mut v);
    v.into_result()?;
    let (Some(start), Some(end)) = (start, end) else {
        return Err(Error::invalid("start_time", "is required"));
    };
    Ok(PlanRequest {
        request_id,
        plan_id: Some(req.plan_id.trim().to_owned()).filter(|p| !p.is_empty()),
        name,
        start,
        end,
        time_zone: req.time_zone.clone(),
        created_by: req.created_by.trim().to_owned(),
        inputs,
        currency,
        planning,
        given,
        history,
    })
}

pub fn stage_to_proto(s: Stage) -> PlanStage {
    match s {
        Stage::Leads => PlanStage::Leads,
        Stage::Mqls => PlanStage::Mqls,
        Stage::Sqls => PlanStage::Sqls,
        Stage::Opportunities => PlanStage::Opportunities,
        Stage::WonDeals => PlanStage::WonDeals,
    }
}

pub fn money_of(currency: &str, minor: i64) -> Option<Money> {
    Some(Money {
        currency_code: currency.to_owned(),
        amount_minor: minor,
    })
}

/// The derived numbers as stored and answered. `history[i]`: the cohort numerator and
/// denominator rate `i` was taken from, when it was.
pub fn derived_to_proto(
    d: &Derived,
    rates: [RatePpm; 4],
    history: [Option<(f64, f64)>; 4],
    currency: &str,
) -> pb::PlanDerived {
    let stages = Stage::ALL
        .iter()
        .enumerate()
        .map(|(i, stage)| {
            let (target, allowable) = d.stages[i];
            let from_history = history.get(i).copied().flatten();
            pb::PlanStageTarget {
                stage: stage_to_proto(*stage) as i32,
                target,
                rate_to_next: rates.get(i).map(|r| *r as f64 / 1_000_000.0),
                rate_source: match (i < 4, from_history) {
                    (false, _) => RateSource::Unspecified,
                    (true, Some(_)) => RateSource::History,
                    (true, None) => RateSource::Given,
                } as i32,
                history_numerator: from_history.map(|h| h.0),
                history_denominator: from_history.map(|h| h.1),
                allowable_cost: money_of(currency, allowable),
            }
        })
        .collect();
    pb::PlanDerived {
        required_customers: d.required_customers,
        churned_customers: d.churned_customers,
        required_new_customers: d.required_new_customers,
        stages,
    }
}

pub fn plan_to_proto(r: &row::Model) -> pb::Plan {
    pb::Plan {
        plan_id: r.plan_id.clone(),
        version: r.version,
        name: r.name.clone(),
        start_time: Some(time::to_proto(r.start_time)),
        end_time: Some(time::to_proto(r.end_time)),
        time_zone: r.time_zone.clone(),
        inputs: pb::PlanInputs::decode(r.inputs.as_slice()).ok(),
        derived: pb::PlanDerived::decode(r.derived.as_slice()).ok(),
        created_by: r.created_by.clone(),
        created_at: Some(time::to_proto(r.created_at)),
        request_id: r.request_id.clone(),
    }
}
