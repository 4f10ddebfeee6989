//! The KGI worked back: from a target monthly recurring revenue to the customers, won deals,
//! opportunities, SQLs, MQLs and leads a period needs, the allowable cost of each stage, and the
//! period's progress (fill rates, projection, bottleneck). Pure; integer arithmetic where it
//! rounds, so 3 / 30 % is 10, never 11.

/// The funnel stages of a plan, top to bottom.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Stage {
    Leads,
    Mqls,
    Sqls,
    Opportunities,
    WonDeals,
}

impl Stage {
    pub const ALL: [Stage; 5] = [
        Stage::Leads,
        Stage::Mqls,
        Stage::Sqls,
        Stage::Opportunities,
        Stage::WonDeals,
    ];
}

/// A conversion rate, in millionths of a percent (30 % = 30,000,000): exact for every rate given
/// with up to six decimals.
pub type RatePpm = i64;

pub const FULL_RATE: RatePpm = 100_000_000;

/// Percent → [`RatePpm`], rounded to the millionth.
pub fn rate_ppm(percent: f64) -> RatePpm {
    (percent * 1_000_000.0).round() as RatePpm
}

/// `ceil(next / rate)`: how many must enter a stage for `next` to reach the next one.
pub fn needed(next: i64, rate: RatePpm) -> i64 {
    if rate <= 0 {
        return 0;
    }
    let n = i128::from(next) * i128::from(FULL_RATE);
    let r = i128::from(rate);
    i64::try_from((n + r - 1) / r).unwrap_or(i64::MAX)
}

/// `round(amount × rate)`, half away from zero, in minor units.
pub fn scaled(amount: i64, rate: RatePpm) -> i64 {
    let p = i128::from(amount) * i128::from(rate);
    let half = i128::from(FULL_RATE) / 2;
    let q = if p >= 0 {
        (p + half) / i128::from(FULL_RATE)
    } else {
        (p - half) / i128::from(FULL_RATE)
    };
    i64::try_from(q).unwrap_or(i64::MAX)
}

/// Validated inputs, money in minor units of one currency.
#[derive(Debug, Clone, PartialEq)]
pub struct Inputs {
    pub target_mrr: i64,
    pub arpa: i64,
    pub existing_customers: i64,
    /// Given, or from the churn rate.
    pub churned_customers: i64,
    pub monthly_gross_profit: i64,
    pub payback_months: f64,
    /// Lead → MQL, MQL → SQL, SQL → opportunity, opportunity → won.
    pub rates: [RatePpm; 4],
}

/// Churned customers from a churn rate of the existing ones (rounded up: a plan is prudent).
pub fn churned_of(existing: i64, churn_rate: RatePpm) -> i64 {
    let p = i128::from(existing.max(0)) * i128::from(churn_rate.max(0));
    let full = i128::from(FULL_RATE);
    i64::try_from((p + full - 1) / full).unwrap_or(i64::MAX)
}

/// `v` as an i64, saturated.
fn clamp(v: i128) -> i64 {
    i64::try_from(v).unwrap_or(if v < 0 { i64::MIN } else { i64::MAX })
}

/// Every number a plan derives.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Derived {
    pub required_customers: i64,
    pub churned_customers: i64,
    pub required_new_customers: i64,
    /// Per stage, top to bottom: (target, allowable cost in minor units).
    pub stages: [(i64, i64); 5],
}

pub fn derive(i: &Inputs) -> Derived {
    // In i128: any i64 inputs (money, customer counts) give an answer, never an overflow.
    let required = if i.arpa > 0 {
        let (target, arpa) = (i128::from(i.target_mrr), i128::from(i.arpa));
        clamp((target + arpa - 1) / arpa)
    } else {
        0
    };
    let new = clamp(
        (i128::from(required) - i128::from(i.existing_customers) + i128::from(i.churned_customers))
            .max(0),
    );
    let won = new;
    let [l2m, m2s, s2o, o2w] = i.rates;
    let opportunities = needed(won, o2w);
    let sqls = needed(opportunities, s2o);
    let mqls = needed(sqls, m2s);
    let leads = needed(mqls, l2m);
    let per_won = (i.monthly_gross_profit as f64 * i.payback_months).round() as i64;
    let per_opportunity = scaled(per_won, o2w);
    let per_sql = scaled(per_opportunity, s2o);
    let per_mql = scaled(per_sql, m2s);
    let per_lead = scaled(per_mql, l2m);
    Derived {
        required_customers: required,
        churned_customers: i.churned_customers,
        required_new_customers: new,
        stages: [
            (leads, per_lead),
            (mqls, per_mql),
            (sqls, per_sql),
            (opportunities, per_opportunity),
            (won, per_won),
        ],
    }
}

/// One stage's progress at a moment.
#[derive(Debug, Clone, PartialEq)]
pub struct Progress {
    pub expected: f64,
    /// `None` when nothing is expected yet.
    pub fill_rate: Option<f64>,
    /// `None` before the period starts.
    pub projected: Option<f64>,
}

/// Progress of `actual` against `target` with `elapsed` (0–1) of the period gone.
pub fn progress(target: i64, actual: i64, elapsed: f64) -> Progress {
    let expected = target as f64 * elapsed;
    Progress {
        expected,
        fill_rate: (expected > 0.0).then(|| actual as f64 / expected * 100.0),
        projected: (elapsed > 0.0).then(|| actual as f64 / elapsed),
    }
}

/// The highest stage filling below `threshold` %, with the stages below it.
pub fn bottleneck(
    fill_rates: &[(Stage, Option<f64>)],
    threshold: f64,
) -> Option<(Stage, f64, Vec<Stage>)> {
    let i = fill_rates
        .iter()
        .position(|(_, f)| f.is_some_and(|f| f < threshold))?;
    let (stage, fill) = fill_rates[i];
    let starves = fill_rates[i + 1..].iter().map(|(s, _)| *s).collect();
    Some((stage, fill.unwrap_or_default(), starves))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn rounding_up_is_exact_where_floats_are_not() {
        // 3 / 0.3 is 10.000000000000002 in floating point.
        assert_eq!(needed(3, rate_ppm(30.0)), 10);
        assert_eq!(needed(10, rate_ppm(30.0)), 34);
        assert_eq!(needed(7, rate_ppm(100.0)), 7);
        assert_eq!(needed(1, rate_ppm(33.333333)), 4);
        assert_eq!(scaled(40_000, rate_ppm(25.0)), 10_000);
        assert_eq!(scaled(5, rate_ppm(50.0)), 3, "2.5 rounds away from zero");
    }

    #[test]
    fn a_plan_works_back_from_the_mrr_to_leads_and_costs() {
        // 1,000,000 / 50,000 = 20 customers; 20 − 12 + 2 = 10 new; 10 / 25 % = 40
        // opportunities; / 50 % = 80 SQLs; / 40 % = 200 MQLs; / 10 % = 2,000 leads.
        let d = derive(&Inputs {
            target_mrr: 1_000_000,
            arpa: 50_000,
            existing_customers: 12,
            churned_customers: 2,
            monthly_gross_profit: 30_000,
            payback_months: 12.0,
            rates: [10.0, 40.0, 50.0, 25.0].map(rate_ppm),
        });
        assert_eq!(
            (
                d.required_customers,
                d.churned_customers,
                d.required_new_customers
            ),
            (20, 2, 10)
        );
        // Won: 30,000 × 12 = 360,000; opportunity 90,000; SQL 45,000; MQL 18,000; lead 1,800.
        assert_eq!(
            d.stages,
            [
                (2_000, 1_800),
                (200, 18_000),
                (80, 45_000),
                (40, 90_000),
                (10, 360_000)
            ]
        );
    }

    #[test]
    fn churn_from_a_rate_rounds_up_and_enough_customers_need_no_new_ones() {
        assert_eq!(churned_of(12, rate_ppm(10.0)), 2, "1.2 churned is 2");
        let d = derive(&Inputs {
            target_mrr: 100,
            arpa: 50,
            existing_customers: 5,
            churned_customers: 1,
            monthly_gross_profit: 1,
            payback_months: 1.0,
            rates: [FULL_RATE; 4],
        });
        assert_eq!(d.required_new_customers, 0);
        assert_eq!(d.stages[0].0, 0);
    }

    #[test]
    fn extreme_inputs_saturate_instead_of_overflowing() {
        let d = derive(&Inputs {
            target_mrr: i64::MAX,
            arpa: 1,
            existing_customers: -0,
            churned_customers: i64::MAX,
            monthly_gross_profit: i64::MAX,
            payback_months: 1e9,
            rates: [1; 4],
        });
        assert_eq!(d.required_customers, i64::MAX);
        assert_eq!(d.required_new_customers, i64::MAX);
        assert_eq!(d.stages[0].0, i64::MAX);
    }

    #[test]
    fn the_bottleneck_is_the_highest_stage_below_the_threshold() {
        let fills = [
            (Stage::Leads, Some(95.0)),
            (Stage::Mqls, Some(85.0)),
            (Stage::Sqls, Some(60.0)),
            (Stage::Opportunities, Some(40.0)),
            (Stage::WonDeals, None),
        ];
        assert_eq!(
            bottleneck(&fills, 80.0),
            Some((
                Stage::Sqls,
                60.0,
                vec![Stage::Opportunities, Stage::WonDeals]
            ))
        );
        assert_eq!(bottleneck(&fills, 30.0), None);
        let p = progress(100, 30, 0.5);
        assert_eq!(
            (p.expected, p.fill_rate, p.projected),
            (50.0, Some(60.0), Some(60.0))
        );
    }
}
