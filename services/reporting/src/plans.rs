//! Plans end to end: a request checked, its missing rates taken from history, every number
//! derived and stored; and a plan's progress read from the KPI engine's facts.

use baton_proto::reporting::v1::{self as pb, CreatePlanRequest, PlanProgress};
use baton_shared::{TenantId, time};
use chrono::{DateTime, Utc};
use chrono_tz::Tz;
use prost::Message;

use crate::{
    convert::plans::{self as convert, PlanRequest, RATE_FIELDS},
    domain::{
        kpis::Metric,
        planning::{self, RatePpm, Stage},
    },
    error::Error,
    store::{Store, kpi_sums::SumQuery, plans::NewPlan},
};

/// Each rate's cohort: (numerator, denominator) metrics.
const COHORTS: [(Metric, Metric); 4] = [
    (Metric::MqlsOfCapturedCohort, Metric::Leads),
    (Metric::SqlsOfMqlCohort, Metric::Mqls),
    (Metric::OpportunitiesOfSqlCohort, Metric::Sqls),
    (Metric::WinsOfOpportunityCohort, Metric::HandedOffLeads),
];

/// What each stage's actual counts (handoffs for opportunities, won outcomes for won deals).
const ACTUALS: [Metric; 5] = [
    Metric::Leads,
    Metric::Mqls,
    Metric::Sqls,
    Metric::Opportunities,
    Metric::Wins,
];

/// Every metric's total over `[start, end)`, per currency (empty for counts).
async fn totals(
    store: &Store,
    tenant: &TenantId,
    metrics: &[Metric],
    (start, end): (DateTime<Utc>, DateTime<Utc>),
    tz: Tz,
) -> Result<Vec<(Metric, String, i64)>, Error> {
    if start >= end {
        return Ok(Vec::new());
    }
    let whole = [crate::domain::kpis::Period { start, end }];
    let q = SumQuery {
        metrics,
        start,
        end,
        group_by: &[],
        filters: &[],
        tz,
        periods: &whole,
        conversion_window_seconds: 0,
    };
    let mut out: Vec<(Metric, String, i64)> = Vec::new();
    for o in store.kpi_sums(tenant, &q).await? {
        let currency = if o.metric.is_money() {
            o.currency
        } else {
            String::new()
        };
        match out
            .iter_mut()
            .find(|(m, c, _)| *m == o.metric && *c == currency)
        {
            Some(t) => t.2 += o.value,
            None => out.push((o.metric, currency, o.value)),
        }
    }
    Ok(out)
}

fn total(totals: &[(Metric, String, i64)], metric: Metric, currency: &str) -> i64 {
    totals
        .iter()
        .filter(|(m, c, _)| *m == metric && (c == currency || !metric.is_money()))
        .map(|t| t.2)
        .sum()
}

/// The rates not given, from the cohorts of the history window.
async fn rates_from_history(
    store: &Store,
    tenant: &TenantId,
    req: &PlanRequest,
) -> Result<([RatePpm; 4], [Option<(f64, f64)>; 4]), Error> {
    let mut rates = req.planning.rates;
    let mut from = [None; 4];
    let Some(window) = req.history else {
        return Ok((rates, from));
    };
    let metrics: Vec<Metric> = COHORTS.iter().flat_map(|(n, d)| [*n, *d]).collect();
    let sums = totals(store, tenant, &metrics, window, Tz::UTC).await?;
    for (i, (n, d)) in COHORTS.iter().enumerate() {
        if req.given[i] {
            continue;
        }
        let (num, den) = (total(&sums, *n, ""), total(&sums, *d, ""));
        if num == 0 || den == 0 {
            return Err(Error::rule(
                "rates_from_history",
                format!(
                    "{} is not given and its history is {num} of {den}: give it, or choose a \
                     window with conversions",
                    RATE_FIELDS[i]
                ),
            ));
        }
        rates[i] = planning::rate_ppm(num as f64 / den as f64 * 100.0);
        from[i] = Some((num as f64, den as f64));
    }
    Ok((rates, from))
}

/// Checks, derives and stores a plan version.
pub async fn create(
    store: &Store,
    tenant: &TenantId,
    request: &CreatePlanRequest,
) -> Result<pb::Plan, Error> {
    let req = convert::plan_request_from_proto(request)?;
    let (rates, history) = rates_from_history(store, tenant, &req).await?;
    let derived = planning::derive(&planning::Inputs {
        rates,
        ..req.planning.clone()
    });
    let derived = convert::derived_to_proto(&derived, rates, history, &req.currency);
    let row = store
        .create_plan(
            tenant,
            &NewPlan {
                request_id: req.request_id.clone(),
                plan_id: req.plan_id.clone(),
                name: req.name.clone(),
                start: req.start,
                end: req.end,
                time_zone: req.time_zone.clone(),
                inputs: req.inputs.encode_to_vec(),
                derived: derived.encode_to_vec(),
                created_by: req.created_by.clone(),
            },
        )
        .await?;
    Ok(convert::plan_to_proto(&row))
}

/// Default share of its pro-rata target a stage must reach (percent).
const DEFAULT_ALERT_THRESHOLD: f64 = 80.0;

/// A plan's progress at `as_of` (clamped to the period's end).
pub async fn progress(
    store: &Store,
    tenant: &TenantId,
    plan_id: &str,
    as_of: Option<DateTime<Utc>>,
) -> Result<PlanProgress, Error> {
    let row = store.get_plan(tenant, plan_id, 0).await?;
    let plan = convert::plan_to_proto(&row);
    let (inputs, derived) = (
        plan.inputs.clone().unwrap_or_default(),
        plan.derived.clone().unwrap_or_default(),
    );
    let as_of = as_of.unwrap_or_else(time::now);
    if as_of < row.start_time {
        return Err(Error::invalid("as_of", "is before the plan's period"));
    }
    let until = as_of.min(row.end_time);
    let length = (row.end_time - row.start_time).num_seconds().max(1) as f64;
    let elapsed = ((until - row.start_time).num_seconds() as f64 / length).clamp(0.0, 1.0);
    let tz = row.time_zone.parse::<Tz>().unwrap_or(Tz::UTC);
    let mut metrics = ACTUALS.to_vec();
    metrics.push(Metric::SpendMinor);
    let sums = totals(store, tenant, &metrics, (row.start_time, until), tz).await?;
    let currency = inputs
        .target_mrr
        .as_ref()
        .map(|m| m.currency_code.clone())
        .unwrap_or_default();
    let spent = total(&sums, Metric::SpendMinor, &currency);
    let mut stages = Vec::new();
    for (i, stage) in Stage::ALL.iter().enumerate() {
        let target = derived.stages.get(i).cloned().unwrap_or_default();
        let actual = total(&sums, ACTUALS[i], "");
        let p = planning::progress(target.target, actual, elapsed);
        stages.push(pb::StageProgress {
            stage: convert::stage_to_proto(*stage) as i32,
            target: target.target,
            expected_to_date: p.expected,
            actual,
            fill_rate: p.fill_rate,
            projected: p.projected,
            allowable_cost: target.allowable_cost,
            actual_cost: (actual > 0)
                .then(|| {
                    convert::money_of(&currency, (spent as f64 / actual as f64).round() as i64)
                })
                .flatten(),
        });
    }
    let threshold = match inputs.alert_threshold {
        t if t > 0.0 => t,
        _ => DEFAULT_ALERT_THRESHOLD,
    };
    let fills: Vec<(Stage, Option<f64>)> = Stage::ALL
        .iter()
        .zip(&stages)
        .map(|(s, p)| (*s, p.fill_rate))
        .collect();
    let bottleneck =
        planning::bottleneck(&fills, threshold).map(|(stage, fill_rate, starves)| pb::Bottleneck {
            stage: convert::stage_to_proto(stage) as i32,
            fill_rate,
            alert_threshold: threshold,
            starves: starves
                .into_iter()
                .map(|s| convert::stage_to_proto(s) as i32)
                .collect(),
        });
    let stagnation = stagnation(store, tenant, &inputs, as_of).await?;
    Ok(PlanProgress {
        plan: Some(plan),
        as_of: Some(time::to_proto(as_of)),
        elapsed,
        stages,
        bottleneck,
        stagnation,
    })
}

/// Per dwell limit of the plan, the leads past it, per owner team.
async fn stagnation(
    store: &Store,
    tenant: &TenantId,
    inputs: &pb::PlanInputs,
    as_of: DateTime<Utc>,
) -> Result<Vec<pb::Stagnation>, Error> {
    let mut out = Vec::new();
    for d in &inputs.max_dwell {
        let limit = chrono::Duration::seconds((d.max_days * 86_400.0) as i64);
        for s in store.stagnant(tenant, &d.stage, as_of - limit).await? {
            out.push(pb::Stagnation {
                stage: s.stage,
                max_days: d.max_days,
                owner_team: s.team,
                leads: s.leads,
                oldest_days: (as_of - s.oldest_since).num_seconds() as f64 / 86_400.0,
            });
        }
    }
    Ok(out)
}
