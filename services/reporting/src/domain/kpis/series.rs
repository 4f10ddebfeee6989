//! A KPI's series from the metrics' sums: one point per period, each with its numerator,
//! denominator and value (or why it has none).

use std::collections::{BTreeMap, BTreeSet};

use chrono::{DateTime, Utc};

use super::{
    model::{Kpi, Metric, Term, Unit},
    periods::{Period, period_of},
};

/// A metric's sum at one moment (a slot's start, or a day's local midnight) for one group.
#[derive(Debug, Clone, PartialEq)]
pub struct Observation {
    pub metric: Metric,
    pub at: DateTime<Utc>,
    /// The values of the query's `group_by` dimensions, in its order.
    pub group: Vec<String>,
    /// The currency of a metric that carries one (empty when the fact had none).
    pub currency: String,
    pub value: i64,
}

/// One point of a series: the period's numerator, denominator and value.
#[derive(Debug, Clone, PartialEq)]
pub struct Point {
    pub period: Period,
    /// 0 when undefined (see `no_value`).
    pub numerator: f64,
    pub denominator: Option<f64>,
    /// `None` when the denominator is 0 or a part is undefined; `no_value` says why.
    pub value: Option<f64>,
    pub no_value: &'static str,
}

/// One KPI for one group (and one currency, for money), over every period.
#[derive(Debug, Clone, PartialEq)]
pub struct Series {
    pub kpi: Kpi,
    pub group: Vec<String>,
    /// Empty unless the KPI is money.
    pub currency: String,
    pub points: Vec<Point>,
}

/// The currency key that sums every currency of a metric.
const ANY: &str = "\u{0}any";

type Key = (Metric, Vec<String>, String);

/// Sums per metric, group and currency: per period, and before the first period (for stocks).
struct Sums {
    flows: BTreeMap<Key, Vec<i64>>,
    before: BTreeMap<Key, i64>,
    periods: usize,
}

impl Sums {
    fn new(periods: &[Period], observations: &[Observation], grouped: bool) -> Sums {
        let mut sums = Sums {
            flows: BTreeMap::new(),
            before: BTreeMap::new(),
            periods: periods.len(),
        };
        let first = periods.first().map(|p| p.start);
        for o in observations {
            let group = if grouped { o.group.clone() } else { Vec::new() };
            let keys = [
                (o.metric, group.clone(), o.currency.clone()),
                (o.metric, group, ANY.to_owned()),
            ];
            if first.is_some_and(|f| o.at < f) {
                for k in keys {
                    let sum = sums.before.entry(k).or_default();
                    *sum = sum.saturating_add(o.value);
                }
            } else if let Some(i) = period_of(periods, o.at) {
                for k in keys {
                    let flow = sums
                        .flows
                        .entry(k)
                        .or_insert_with(|| vec![0; periods.len()]);
                    flow[i] = flow[i].saturating_add(o.value);
                }
            }
        }
        sums
    }

    fn flow(&self, key: &Key, i: usize) -> i64 {
        self.flows.get(key).map_or(0, |v| v[i])
    }

    /// A stock's value after the first `n` periods.
    fn stock(&self, key: &Key, n: usize) -> i64 {
        let before = self.before.get(key).copied().unwrap_or(0);
        let flows = self.flows.get(key).map_or(&[][..], |v| &v[..n]);
        flows.iter().fold(before, |a, b| a.saturating_add(*b))
    }

    /// The (group, currency) pairs `kpi` has facts for.
    fn groups_of(&self, kpi: &Kpi) -> BTreeSet<(Vec<String>, String)> {
        let metrics = kpi.metrics();
        let money = kpi.is_money();
        self.flows
            .keys()
            .chain(self.before.keys())
            .filter(|(m, _, c)| {
                metrics.contains(m)
                    && if money {
                        m.is_money() && c != ANY && !c.is_empty()
                    } else {
                        c == ANY
                    }
            })
            .map(|(_, g, c)| (g.clone(), if money { c.clone() } else { String::new() }))
            .collect()
    }
}

/// What one point's terms read.
#[derive(Clone, Copy)]
struct At<'a> {
    group: &'a [String],
    /// The series' currency (money KPIs), else `None`.
    currency: Option<&'a str>,
    /// Counts are read in the series' currency (inside [`Term::InCurrency`]).
    in_currency: bool,
    i: usize,
    period: Period,
}

/// Minor units per major unit of `currency` (ISO 4217 exponent; 2 when unknown).
fn minor_per_major(currency: &str) -> f64 {
    let exponent = iso_currency::Currency::from_code(currency)
        .and_then(|c| c.exponent())
        .unwrap_or(2);
    10f64.powi(i32::from(exponent))
}

/// Average month, in seconds (365.2425 / 12 days).
const MONTH_SECONDS: f64 = 30.436_875 * 86_400.0;

fn eval(term: &Term, sums: &Sums, at: &At<'_>) -> Option<f64> {
    let key = |m: &Metric| -> Key {
        let currency = match at.currency {
            Some(c) if m.is_money() || at.in_currency => c.to_owned(),
            _ => ANY.to_owned(),
        };
        (*m, at.group.to_vec(), currency)
    };
    let scale = |m: &Metric, v: i64| -> f64 {
        let v = v as f64;
        match (m, at.currency) {
            (m, Some(c)) if m.is_money() => v / minor_per_major(c),
            (Metric::SalesCycleSeconds | Metric::MedianCycleSeconds, _) => v / 86_400.0,
            _ => v,
        }
    };
    match term {
        Term::Flow(m) => Some(scale(m, sums.flow(&key(m), at.i))),
        Term::AtEnd(m) => Some(scale(m, sums.stock(&key(m), at.i + 1))),
        Term::AtStart(m) => Some(scale(m, sums.stock(&key(m), at.i))),
        Term::Per(a, b) => {
            let (a, b) = (eval(a, sums, at)?, eval(b, sums, at)?);
            (b != 0.0).then(|| a / b)
        }
        Term::MonthlyShare(a, b) => {
            let (a, b) = (eval(a, sums, at)?, eval(b, sums, at)?);
            let length = (at.period.end - at.period.start).num_seconds() as f64;
            (b != 0.0 && length > 0.0).then(|| a / b * MONTH_SECONDS / length)
        }
        Term::InCurrency(t) => eval(
            t,
            sums,
            &At {
                in_currency: true,
                ..*at
            },
        ),
    }
}

/// A KPI's value from its numerator and denominator (`None`: undefined), with why it has none.
pub fn value(
    kpi: &Kpi,
    numerator: Option<f64>,
    denominator: Option<Option<f64>>,
) -> (Option<f64>, &'static str) {
    let Some(n) = numerator else {
        return (None, "the numerator is undefined: it divides by 0");
    };
    match denominator {
        None => (Some(n), ""),
        Some(None) => (None, "the denominator is undefined: it divides by 0"),
        Some(Some(0.0)) => (None, "the denominator is 0"),
        Some(Some(d)) if kpi.unit == Unit::Percent => (Some(n / d * 100.0), ""),
        Some(Some(d)) => (Some(n / d), ""),
    }
}

/// Every KPI's series: one per group (and currency, for money) seen in the metrics it reads
/// (ordered), or one ungrouped series when nothing was seen and `grouped` is false. Every period
/// has a point.
pub fn series(
    kpis: &[Kpi],
    periods: &[Period],
    observations: &[Observation],
    grouped: bool,
) -> Vec<Series> {
    let sums = Sums::new(periods, observations, grouped);
    let mut out = Vec::new();
    for kpi in kpis {
        let mut groups = sums.groups_of(kpi);
        if !grouped && groups.is_empty() {
            groups.insert((Vec::new(), String::new()));
        }
        for (group, currency) in groups {
            let points = periods
                .iter()
                .enumerate()
                .map(|(i, period)| {
                    let at = At {
                        group: &group,
                        currency: kpi.is_money().then_some(currency.as_str()),
                        in_currency: false,
                        i,
                        period: *period,
                    };
                    let numerator = eval(&kpi.numerator, &sums, &at);
                    let denominator = kpi.denominator.as_ref().map(|d| eval(d, &sums, &at));
                    let (value, no_value) = value(kpi, numerator, denominator);
                    Point {
                        period: *period,
                        numerator: numerator.unwrap_or(0.0),
                        denominator: denominator.map(|d| d.unwrap_or(0.0)),
                        value,
                        no_value,
                    }
                })
                .collect();
            out.push(Series {
                kpi: kpi.clone(),
                group,
                currency,
                points,
            });
        }
    }
    debug_assert!(out.iter().all(|s| s.points.len() == sums.periods));
    out
}

#[cfg(test)]
mod tests {
    use chrono_tz::Tz;

    use super::super::{
        catalogue::catalogue,
        periods::{Granularity, periods},
    };
    use super::*;

    fn utc(s: &str) -> DateTime<Utc> {
        s.parse().unwrap()
    }

    fn kpis(keys: &[&str]) -> Vec<Kpi> {
        catalogue()
            .into_iter()
            .filter(|k| keys.contains(&k.key))
            .collect()
    }

    fn o(metric: Metric, at: &str, g: &str, currency: &str, value: i64) -> Observation {
        Observation {
            metric,
            at: utc(at),
            group: vec![g.to_owned()],
            currency: currency.to_owned(),
            value,
        }
    }

    fn days(from: &str, to: &str) -> Vec<Period> {
        periods(utc(from), utc(to), Granularity::Day, Tz::UTC).unwrap()
    }

    #[test]
    fn a_rate_with_no_denominator_has_no_value_and_a_count_is_its_numerator() {
        let k = kpis(&["opt_in_rate", "leads"]);
        let (rate, leads) = (&k[1], &k[0]);
        assert_eq!(rate.key, "opt_in_rate");
        assert_eq!(value(rate, Some(3.0), Some(Some(0.0))).0, None);
        assert_eq!(value(rate, Some(3.0), Some(Some(12.0))).0, Some(25.0));
        assert_eq!(value(leads, Some(7.0), None).0, Some(7.0));
    }

    #[test]
    fn series_sum_each_period_per_group_and_a_rate_without_visitors_has_no_value() {
        let k = kpis(&["opt_in_rate", "leads"]);
        let p = days("2026-12-01T00:00:00Z", "2026-12-03T00:00:00Z");
        let obs = [
            o(Metric::Leads, "2026-12-01T09:00:00Z", "ads", "", 2),
            o(Metric::Leads, "2026-12-01T10:15:00Z", "ads", "", 1),
            o(Metric::Visits, "2026-12-01T00:00:00Z", "ads", "", 12),
            o(Metric::Leads, "2026-12-02T10:00:00Z", "web", "", 4),
            // Outside the range: not counted.
            o(Metric::Leads, "2026-12-03T00:00:00Z", "web", "", 9),
        ];
        let s = series(&k, &p, &obs, true);
        let find = |key: &str, g: &str| {
            s.iter()
                .find(|x| x.kpi.key == key && x.group == [g])
                .unwrap()
        };
        let ads = find("opt_in_rate", "ads");
        let p0 = &ads.points[0];
        assert_eq!(
            (p0.numerator, p0.denominator, p0.value),
            (3.0, Some(12.0), Some(25.0))
        );
        assert_eq!(ads.points[1].value, None, "no visitors on day 2");
        assert_eq!(ads.points[1].no_value, "the denominator is 0");
        let web = find("leads", "web");
        assert_eq!(
            web.points.iter().map(|p| p.numerator).collect::<Vec<_>>(),
            [0.0, 4.0]
        );
        let whole = series(&k, &p, &obs, false);
        assert_eq!(whole.len(), 2);
        assert_eq!(
            whole[0].points[0].numerator + whole[0].points[1].numerator,
            7.0
        );
    }

    #[test]
    fn money_is_one_series_per_currency_in_major_units() {
        let k = kpis(&["average_deal_size", "wins"]);
        let p = days("2026-12-01T00:00:00Z", "2026-12-02T00:00:00Z");
        let obs = [
            o(
                Metric::WonAmountMinor,
                "2026-12-01T09:00:00Z",
                "",
                "EUR",
                100_000,
            ),
            o(
                Metric::WonAmountMinor,
                "2026-12-01T10:00:00Z",
                "",
                "EUR",
                50_000,
            ),
            o(Metric::Wins, "2026-12-01T09:00:00Z", "", "EUR", 2),
            o(
                Metric::WonAmountMinor,
                "2026-12-01T11:00:00Z",
                "",
                "JPY",
                90_000,
            ),
            o(Metric::Wins, "2026-12-01T11:00:00Z", "", "JPY", 1),
            // A win without an amount: a win, but of no currency's deal size.
            o(Metric::Wins, "2026-12-01T12:00:00Z", "", "", 1),
        ];
        let s = series(&k, &p, &obs, false);
        let size = |c: &str| {
            let x = s
                .iter()
                .find(|x| x.kpi.key == "average_deal_size" && x.currency == c)
                .unwrap();
            let p = &x.points[0];
            (p.numerator, p.denominator, p.value)
        };
        assert_eq!(size("EUR"), (1500.0, Some(2.0), Some(750.0)));
        assert_eq!(size("JPY"), (90_000.0, Some(1.0), Some(90_000.0)));
        let wins = s.iter().find(|x| x.kpi.key == "wins").unwrap();
        assert_eq!(
            wins.points[0].value,
            Some(4.0),
            "counts add over currencies"
        );
        assert_eq!(s.len(), 3);
    }

    #[test]
    fn stocks_count_every_change_before_the_period_and_churn_divides_by_the_start() {
        let k = kpis(&["customers", "customer_churn_rate", "arpa"]);
        let p = days("2026-12-01T00:00:00Z", "2026-12-03T00:00:00Z");
        let obs = [
            // Four customers before the range, 400 EUR of MRR.
            o(Metric::Customers, "2026-11-01T00:00:00Z", "", "EUR", 4),
            o(Metric::MrrMinor, "2026-11-01T00:00:00Z", "", "EUR", 40_000),
            // Day 1: one churns (−100 EUR); day 2: one opens (+250 EUR).
            o(Metric::Customers, "2026-12-01T10:00:00Z", "", "EUR", -1),
            o(Metric::MrrMinor, "2026-12-01T10:00:00Z", "", "EUR", -10_000),
            o(Metric::Churned, "2026-12-01T10:00:00Z", "", "EUR", 1),
            o(Metric::Customers, "2026-12-02T10:00:00Z", "", "EUR", 1),
            o(Metric::MrrMinor, "2026-12-02T10:00:00Z", "", "EUR", 25_000),
        ];
        let s = series(&k, &p, &obs, false);
        let get = |key: &str| &s.iter().find(|x| x.kpi.key == key).unwrap().points;
        let customers: Vec<_> = get("customers").iter().map(|p| p.value).collect();
        assert_eq!(customers, [Some(3.0), Some(4.0)]);
        let churn = &get("customer_churn_rate")[0];
        assert_eq!(
            (churn.numerator, churn.denominator, churn.value),
            (1.0, Some(4.0), Some(25.0))
        );
        let arpa = &get("arpa")[1];
        assert_eq!(
            (arpa.numerator, arpa.denominator, arpa.value),
            (550.0, Some(4.0), Some(137.5))
        );
    }
}
