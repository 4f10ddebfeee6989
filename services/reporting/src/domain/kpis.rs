//! The KPI engine's rules: the catalogue (what each KPI counts and divides), the periods a range
//! splits into in a time zone, and a point's value from its numerator and denominator. Pure.

use chrono::{DateTime, Datelike, Duration, NaiveDate, TimeZone, Utc};
use chrono_tz::Tz;

use super::funnel::Step;

/// Longest answer a query may ask for.
pub const MAX_PERIODS: usize = 1_000;

/// A counter reporting keeps per 15-minute slot and dimension group (facts rolled up in the
/// transaction that applies the event).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub enum Metric {
    /// Leads captured (each lead once).
    Leads,
    /// Anonymous visitors, per day.
    Visits,
    /// Form submissions (activities of kind form submitted).
    FormSubmissions,
    /// Leads that became MQL (each once).
    Mqls,
    /// Leads that became SQL (each once).
    Sqls,
    /// Handoffs IS created for FS (appointments handed over).
    Opportunities,
    /// Handed-off leads won.
    Wins,
    /// Handed-off leads won or lost.
    Decided,
    /// Call activities.
    Calls,
    /// Calls whose outcome is connected.
    Connects,
    /// Connected calls that reached the department that buys.
    ValidConnects,
    /// Seconds of talk time over all calls.
    TalkTimeSeconds,
    /// Leads that moved to a hotter rank (warm → hot, cold → warm or hot).
    RankUps,
    /// Of the leads captured in a slot, those that became MQL (at any time), at their capture's
    /// slot.
    MqlsOfCapturedCohort,
    /// Of the leads that became MQL in a slot, those that became SQL (at any time), at their
    /// MQL's slot.
    SqlsOfMqlCohort,
}

impl Metric {
    pub const ALL: [Metric; 15] = [
        Metric::Leads,
        Metric::Visits,
        Metric::FormSubmissions,
        Metric::Mqls,
        Metric::Sqls,
        Metric::Opportunities,
        Metric::Wins,
        Metric::Decided,
        Metric::Calls,
        Metric::Connects,
        Metric::ValidConnects,
        Metric::TalkTimeSeconds,
        Metric::RankUps,
        Metric::MqlsOfCapturedCohort,
        Metric::SqlsOfMqlCohort,
    ];

    /// The name stored in `kpi_rollup.metric`.
    pub fn as_str(self) -> &'static str {
        match self {
            Metric::Leads => "leads",
            Metric::Visits => "visits",
            Metric::FormSubmissions => "form_submissions",
            Metric::Mqls => "mqls",
            Metric::Sqls => "sqls",
            Metric::Opportunities => "opportunities",
            Metric::Wins => "wins",
            Metric::Decided => "decided",
            Metric::Calls => "calls",
            Metric::Connects => "connects",
            Metric::ValidConnects => "valid_connects",
            Metric::TalkTimeSeconds => "talk_time_seconds",
            Metric::RankUps => "rank_ups",
            Metric::MqlsOfCapturedCohort => "mqls_of_captured_cohort",
            Metric::SqlsOfMqlCohort => "sqls_of_mql_cohort",
        }
    }

    pub fn from_name(name: &str) -> Option<Metric> {
        Metric::ALL.into_iter().find(|m| m.as_str() == name)
    }
}

/// Cohort conversions: a lead that reached `first` and then (at any time) `second` counts for
/// `metric` at the moment it reached `first`.
pub struct Cohort {
    pub first: Step,
    pub second: Step,
    pub metric: Metric,
}

pub const COHORTS: [Cohort; 2] = [
    Cohort {
        first: Step::Captured,
        second: Step::BecameMql,
        metric: Metric::MqlsOfCapturedCohort,
    },
    Cohort {
        first: Step::BecameMql,
        second: Step::BecameSql,
        metric: Metric::SqlsOfMqlCohort,
    },
];

/// Whether a rank change is a rank-up (hot = 1 < warm = 2 < cold = 3; a first rank is none).
pub fn is_rank_up(from: i32, to: i32) -> bool {
    from > 0 && to > 0 && to < from
}

/// Dimensions a KPI can be grouped and filtered by, as stored on each rollup row.
pub const DIMENSIONS: [&str; 2] = ["channel", "campaign"];

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Unit {
    Count,
    /// numerator / denominator × 100.
    Percent,
    /// A sum of seconds, or (with a denominator) seconds per item.
    Seconds,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Phase {
    Acquisition,
    AttitudeChange,
    Opportunity,
    Closing,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Owner {
    Marketing,
    InsideSales,
    FieldSales,
}

/// One KPI of the catalogue.
#[derive(Debug, Clone, PartialEq)]
pub struct Kpi {
    pub key: &'static str,
    pub name: &'static str,
    pub definition: &'static str,
    pub unit: Unit,
    pub numerator: Metric,
    pub numerator_words: &'static str,
    /// `None` for a count.
    pub denominator: Option<Metric>,
    pub denominator_words: &'static str,
    pub phase: Phase,
    pub owner: Owner,
    pub version: i32,
}

const fn count(
    key: &'static str,
    name: &'static str,
    definition: &'static str,
    metric: Metric,
    phase: Phase,
    owner: Owner,
) -> Kpi {
    Kpi {
        key,
        name,
        definition,
        unit: Unit::Count,
        numerator: metric,
        numerator_words: definition,
        denominator: None,
        denominator_words: "",
        phase,
        owner,
        version: 1,
    }
}

const fn rate(
    key: &'static str,
    name: &'static str,
    definition: &'static str,
    numerator: (Metric, &'static str),
    denominator: (Metric, &'static str),
    owner: Owner,
) -> Kpi {
    Kpi {
        key,
        name,
        definition,
        unit: Unit::Percent,
        numerator: numerator.0,
        numerator_words: numerator.1,
        denominator: Some(denominator.0),
        denominator_words: denominator.1,
        phase: Phase::Opportunity,
        owner,
        version: 1,
    }
}

/// The catalogue, in the order ListKpis answers.
const CATALOGUE: [Kpi; 19] = [
    count(
        "visits",
        "Visits",
        "anonymous visitors of the period, as recorded per source and day",
        Metric::Visits,
        Phase::Acquisition,
        Owner::Marketing,
    ),
    count(
        "leads",
        "Leads",
        "leads captured in the period (a lead counts once, when first captured)",
        Metric::Leads,
        Phase::Acquisition,
        Owner::Marketing,
    ),
    count(
        "form_submissions",
        "Form submissions",
        "forms submitted by leads in the period",
        Metric::FormSubmissions,
        Phase::Acquisition,
        Owner::Marketing,
    ),
    Kpi {
        key: "opt_in_rate",
        name: "Opt-in rate",
        definition: "leads captured / anonymous visitors × 100, in the period",
        unit: Unit::Percent,
        numerator: Metric::Leads,
        numerator_words: "leads captured in the period",
        denominator: Some(Metric::Visits),
        denominator_words: "anonymous visitors in the period",
        phase: Phase::Acquisition,
        owner: Owner::Marketing,
        version: 1,
    },
    count(
        "mqls",
        "MQLs",
        "leads that became marketing-qualified in the period (each lead once)",
        Metric::Mqls,
        Phase::AttitudeChange,
        Owner::Marketing,
    ),
    Kpi {
        key: "lead_to_mql_rate",
        name: "Lead → MQL (cohort)",
        definition: "of the leads captured in the period, the share that became MQL by the time \
                     of the query × 100",
        unit: Unit::Percent,
        numerator: Metric::MqlsOfCapturedCohort,
        numerator_words: "leads captured in the period that became MQL since",
        denominator: Some(Metric::Leads),
        denominator_words: "leads captured in the period",
        phase: Phase::AttitudeChange,
        owner: Owner::Marketing,
        version: 1,
    },
    Kpi {
        key: "mql_to_sql_rate",
        name: "MQL → SQL (cohort)",
        definition: "of the leads that became MQL in the period, the share that became SQL by \
                     the time of the query × 100",
        unit: Unit::Percent,
        numerator: Metric::SqlsOfMqlCohort,
        numerator_words: "leads that became MQL in the period and SQL since",
        denominator: Some(Metric::Mqls),
        denominator_words: "leads that became MQL in the period",
        phase: Phase::AttitudeChange,
        owner: Owner::InsideSales,
        version: 1,
    },
    count(
        "rank_ups",
        "Rank-ups",
        "rank changes of the period to a hotter rank (cold → warm or hot, warm → hot)",
        Metric::RankUps,
        Phase::AttitudeChange,
        Owner::Marketing,
    ),
    count(
        "sqls",
        "SQLs",
        "leads that became sales-qualified in the period (each lead once)",
        Metric::Sqls,
        Phase::AttitudeChange,
        Owner::InsideSales,
    ),
    count(
        "opportunities",
        "Opportunities",
        "handoffs IS created for FS in the period (appointments handed over)",
        Metric::Opportunities,
        Phase::Opportunity,
        Owner::InsideSales,
    ),
    count(
        "wins",
        "Wins",
        "handed-off leads FS won in the period",
        Metric::Wins,
        Phase::Closing,
        Owner::FieldSales,
    ),
    count(
        "calls",
        "Calls",
        "calls logged by inside sales in the period",
        Metric::Calls,
        Phase::Opportunity,
        Owner::InsideSales,
    ),
    Kpi {
        key: "talk_time_seconds",
        name: "Talk time",
        definition: "seconds of talk time over the period's calls (the total)",
        unit: Unit::Seconds,
        ..count(
            "",
            "",
            "seconds of talk time over the period's calls",
            Metric::TalkTimeSeconds,
            Phase::Opportunity,
            Owner::InsideSales,
        )
    },
    Kpi {
        key: "mean_talk_time_seconds",
        name: "Mean talk time",
        definition: "seconds of talk time / connected calls, in the period",
        unit: Unit::Seconds,
        numerator: Metric::TalkTimeSeconds,
        numerator_words: "seconds of talk time over the period's calls",
        denominator: Some(Metric::Connects),
        denominator_words: "connected calls in the period",
        phase: Phase::Opportunity,
        owner: Owner::InsideSales,
        version: 1,
    },
    count(
        "connects",
        "Connects",
        "calls of the period whose outcome is connected",
        Metric::Connects,
        Phase::Opportunity,
        Owner::InsideSales,
    ),
    rate(
        "connect_rate",
        "Connect rate",
        "connected calls / calls × 100, in the period",
        (Metric::Connects, "connected calls in the period"),
        (Metric::Calls, "calls in the period"),
        Owner::InsideSales,
    ),
    count(
        "valid_connects",
        "Valid connects",
        "connected calls of the period that reached the department that buys",
        Metric::ValidConnects,
        Phase::Opportunity,
        Owner::InsideSales,
    ),
    rate(
        "valid_connect_rate",
        "Valid connect rate",
        "calls that reached the department that buys / calls × 100, in the period",
        (
            Metric::ValidConnects,
            "calls that reached the buying department in the period",
        ),
        (Metric::Calls, "calls in the period"),
        Owner::InsideSales,
    ),
    Kpi {
        key: "win_rate",
        name: "Win rate",
        definition: "handed-off leads won / handed-off leads decided (won or lost) × 100, \
                         by when the outcome was recorded",
        unit: Unit::Percent,
        numerator: Metric::Wins,
        numerator_words: "handed-off leads won in the period",
        denominator: Some(Metric::Decided),
        denominator_words: "handed-off leads won or lost in the period",
        phase: Phase::Closing,
        owner: Owner::FieldSales,
        version: 1,
    },
];

/// The catalogue, in the order ListKpis answers.
pub fn catalogue() -> Vec<Kpi> {
    CATALOGUE.to_vec()
}

/// How a range is split.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Granularity {
    Day,
    Week,
    Month,
    Quarter,
    Whole,
}

/// A period: `[start, end)`.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Period {
    pub start: DateTime<Utc>,
    pub end: DateTime<Utc>,
}

/// The start of the period of `granularity` that contains local date `d`.
fn period_start_date(d: NaiveDate, granularity: Granularity) -> NaiveDate {
    match granularity {
        Granularity::Day | Granularity::Whole => d,
        Granularity::Week => d - Duration::days(i64::from(d.weekday().num_days_from_monday())),
        Granularity::Month => d.with_day(1).unwrap_or(d),
        Granularity::Quarter => {
            let month = (d.month0() / 3) * 3 + 1;
            NaiveDate::from_ymd_opt(d.year(), month, 1).unwrap_or(d)
        }
    }
}

fn next_start_date(d: NaiveDate, granularity: Granularity) -> NaiveDate {
    let months = |n: u32| d.checked_add_months(chrono::Months::new(n)).unwrap_or(d);
    match granularity {
        Granularity::Day | Granularity::Whole => d + Duration::days(1),
        Granularity::Week => d + Duration::days(7),
        Granularity::Month => months(1),
        Granularity::Quarter => months(3),
    }
}

/// Local midnight of `d` in `tz`, as UTC (the first valid instant of the day where a DST change
/// skips midnight).
pub fn midnight(d: NaiveDate, tz: Tz) -> DateTime<Utc> {
    let naive = d.and_hms_opt(0, 0, 0).unwrap_or_default();
    match tz.from_local_datetime(&naive) {
        chrono::LocalResult::Single(t) => t.with_timezone(&Utc),
        chrono::LocalResult::Ambiguous(first, _) => first.with_timezone(&Utc),
        chrono::LocalResult::None => tz
            .from_local_datetime(&(naive + Duration::hours(1)))
            .earliest()
            .map_or_else(|| naive.and_utc(), |t| t.with_timezone(&Utc)),
    }
}

/// The periods `[start, end)` splits into, aligned to calendar days, weeks (from Monday), months
/// or quarters in `tz`; the first and last are cut to the range. `Err(n)` when there would be more
/// than [`MAX_PERIODS`].
pub fn periods(
    start: DateTime<Utc>,
    end: DateTime<Utc>,
    granularity: Granularity,
    tz: Tz,
) -> Result<Vec<Period>, usize> {
    if granularity == Granularity::Whole {
        return Ok(vec![Period { start, end }]);
    }
    let mut out = Vec::new();
    let mut day = period_start_date(start.with_timezone(&tz).date_naive(), granularity);
    let mut from = start;
    while from < end {
        day = next_start_date(day, granularity);
        let to = midnight(day, tz).min(end);
        if to > from {
            out.push(Period {
                start: from,
                end: to,
            });
            if out.len() > MAX_PERIODS {
                return Err(out.len());
            }
        }
        from = to;
    }
    Ok(out)
}

/// The period of `periods` that contains `at`, if any (periods are ordered and contiguous).
pub fn period_of(periods: &[Period], at: DateTime<Utc>) -> Option<usize> {
    let i = periods.partition_point(|p| p.end <= at);
    (i < periods.len() && periods[i].start <= at).then_some(i)
}

/// A metric's sum at one moment (a slot's start, or a visit day's local midnight) for one group.
#[derive(Debug, Clone, PartialEq)]
pub struct Observation {
    pub metric: Metric,
    pub at: DateTime<Utc>,
    /// The values of the query's `group_by` dimensions, in its order.
    pub group: Vec<String>,
    pub value: i64,
}

/// One point of a series: the period's numerator, denominator (rates) and value.
#[derive(Debug, Clone, PartialEq)]
pub struct Point {
    pub period: Period,
    pub numerator: f64,
    pub denominator: Option<f64>,
    /// `None` when a rate's denominator is 0.
    pub value: Option<f64>,
}

/// One KPI for one group, over every period.
#[derive(Debug, Clone, PartialEq)]
pub struct Series {
    pub kpi: Kpi,
    pub group: Vec<String>,
    pub points: Vec<Point>,
}

/// The metrics `kpis` read (numerators and denominators), each once.
pub fn metrics_of(kpis: &[Kpi]) -> Vec<Metric> {
    let mut metrics: Vec<Metric> = kpis
        .iter()
        .flat_map(|k| std::iter::once(k.numerator).chain(k.denominator))
        .collect();
    metrics.sort();
    metrics.dedup();
    metrics
}

/// Every KPI's series: one per group seen in its numerator's or denominator's observations
/// (ordered by group), or one ungrouped series when `grouped` is false. Every period has a point.
pub fn series(
    kpis: &[Kpi],
    periods: &[Period],
    observations: &[Observation],
    grouped: bool,
) -> Vec<Series> {
    use std::collections::BTreeMap;
    // (metric, group) → sum per period.
    let mut sums: BTreeMap<(Metric, Vec<String>), Vec<i64>> = BTreeMap::new();
    for o in observations {
        let Some(i) = period_of(periods, o.at) else {
            continue;
        };
        let group = if grouped { o.group.clone() } else { Vec::new() };
        sums.entry((o.metric, group))
            .or_insert_with(|| vec![0; periods.len()])[i] += o.value;
    }
    let mut out = Vec::new();
    for kpi in kpis {
        let mut groups: Vec<Vec<String>> = sums
            .keys()
            .filter(|(m, _)| *m == kpi.numerator || Some(*m) == kpi.denominator)
            .map(|(_, g)| g.clone())
            .collect();
        groups.dedup();
        if !grouped && groups.is_empty() {
            groups.push(Vec::new());
        }
        for group in groups {
            let of = |m: Metric, i: usize| sums.get(&(m, group.clone())).map_or(0, |v| v[i]) as f64;
            let points = periods
                .iter()
                .enumerate()
                .map(|(i, period)| {
                    let numerator = of(kpi.numerator, i);
                    let denominator = kpi.denominator.map(|d| of(d, i));
                    Point {
                        period: *period,
                        numerator,
                        denominator,
                        value: value(kpi, numerator, denominator),
                    }
                })
                .collect();
            out.push(Series {
                kpi: kpi.clone(),
                group,
                points,
            });
        }
    }
    out
}

/// A KPI's value from its numerator and denominator: a count is its numerator; a rate has no value
/// when its denominator is 0.
pub fn value(kpi: &Kpi, numerator: f64, denominator: Option<f64>) -> Option<f64> {
    match (kpi.unit, denominator) {
        (Unit::Count, _) | (_, None) => Some(numerator),
        (_, Some(0.0)) => None,
        (Unit::Percent, Some(d)) => Some(numerator / d * 100.0),
        (Unit::Seconds, Some(d)) => Some(numerator / d),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn utc(s: &str) -> DateTime<Utc> {
        s.parse().unwrap()
    }

    #[test]
    fn days_follow_the_time_zone_and_the_ends_are_cut_to_the_range() {
        let tokyo: Tz = "Asia/Tokyo".parse().unwrap();
        // 2026-12-01 03:00 JST to 2026-12-03 12:00 JST.
        let p = periods(
            utc("2026-11-30T18:00:00Z"),
            utc("2026-12-03T03:00:00Z"),
            Granularity::Day,
            tokyo,
        )
        .unwrap();
        let starts: Vec<String> = p.iter().map(|p| p.start.to_rfc3339()).collect();
        assert_eq!(
            starts,
            [
                "2026-11-30T18:00:00+00:00",
                "2026-12-01T15:00:00+00:00",
                "2026-12-02T15:00:00+00:00"
            ]
        );
        assert_eq!(p[2].end, utc("2026-12-03T03:00:00Z"));
    }

    #[test]
    fn weeks_start_on_monday_and_a_dst_change_makes_a_shorter_day() {
        let berlin: Tz = "Europe/Berlin".parse().unwrap();
        // Sunday 2026-03-29 is the spring-forward day (23 hours long) in Berlin.
        let p = periods(
            utc("2026-03-22T23:00:00Z"),
            utc("2026-04-05T22:00:00Z"),
            Granularity::Week,
            berlin,
        )
        .unwrap();
        assert_eq!(p.len(), 2);
        assert_eq!(
            p[0].end,
            utc("2026-03-29T22:00:00Z"),
            "Monday 30 March, 00:00 CEST"
        );
        assert_eq!(p[0].end - p[0].start, Duration::hours(7 * 24 - 1));
    }

    #[test]
    fn months_and_quarters_are_calendar_ones_and_too_many_periods_are_refused() {
        let p = periods(
            utc("2026-01-15T00:00:00Z"),
            utc("2026-07-01T00:00:00Z"),
            Granularity::Quarter,
            Tz::UTC,
        )
        .unwrap();
        let bounds: Vec<String> = p.iter().map(|p| p.end.date_naive().to_string()).collect();
        assert_eq!(bounds, ["2026-04-01", "2026-07-01"]);
        let m = periods(
            utc("2026-01-31T00:00:00Z"),
            utc("2026-03-01T00:00:00Z"),
            Granularity::Month,
            Tz::UTC,
        )
        .unwrap();
        assert_eq!(m.len(), 2);
        assert!(
            periods(
                utc("2020-01-01T00:00:00Z"),
                utc("2026-01-01T00:00:00Z"),
                Granularity::Day,
                Tz::UTC
            )
            .is_err()
        );
    }

    #[test]
    fn a_rate_with_no_denominator_has_no_value_and_a_count_is_its_numerator() {
        let kpis = catalogue();
        let rate = kpis.iter().find(|k| k.key == "opt_in_rate").unwrap();
        assert_eq!(value(rate, 3.0, Some(0.0)), None);
        assert_eq!(value(rate, 3.0, Some(12.0)), Some(25.0));
        let leads = kpis.iter().find(|k| k.key == "leads").unwrap();
        assert_eq!(value(leads, 7.0, None), Some(7.0));
    }

    #[test]
    fn a_time_falls_in_one_period_or_none() {
        let p = periods(
            utc("2026-12-01T00:00:00Z"),
            utc("2026-12-03T00:00:00Z"),
            Granularity::Day,
            Tz::UTC,
        )
        .unwrap();
        assert_eq!(period_of(&p, utc("2026-12-01T00:00:00Z")), Some(0));
        assert_eq!(period_of(&p, utc("2026-12-02T23:59:59Z")), Some(1));
        assert_eq!(period_of(&p, utc("2026-12-03T00:00:00Z")), None);
        assert_eq!(period_of(&p, utc("2026-11-30T23:59:59Z")), None);
    }

    #[test]
    fn series_sum_each_period_per_group_and_a_rate_without_visitors_has_no_value() {
        let kpis: Vec<Kpi> = catalogue()
            .into_iter()
            .filter(|k| k.key == "opt_in_rate" || k.key == "leads")
            .collect();
        let p = periods(
            utc("2026-12-01T00:00:00Z"),
            utc("2026-12-03T00:00:00Z"),
            Granularity::Day,
            Tz::UTC,
        )
        .unwrap();
        let o = |metric, at: &str, g: &str, value| Observation {
            metric,
            at: utc(at),
            group: vec![g.to_owned()],
            value,
        };
        let obs = [
            o(Metric::Leads, "2026-12-01T09:00:00Z", "ads", 2),
            o(Metric::Leads, "2026-12-01T10:15:00Z", "ads", 1),
            o(Metric::Visits, "2026-12-01T00:00:00Z", "ads", 12),
            o(Metric::Leads, "2026-12-02T10:00:00Z", "web", 4),
            // Outside the range: not counted.
            o(Metric::Leads, "2026-12-03T00:00:00Z", "web", 9),
        ];
        let s = series(&kpis, &p, &obs, true);
        let find = |key: &str, g: &str| {
            s.iter()
                .find(|x| x.kpi.key == key && x.group == [g])
                .unwrap()
        };
        let ads = find("opt_in_rate", "ads");
        assert_eq!(
            (
                ads.points[0].numerator,
                ads.points[0].denominator,
                ads.points[0].value
            ),
            (3.0, Some(12.0), Some(25.0))
        );
        assert_eq!(ads.points[1].value, None, "no visitors on day 2");
        let web = find("leads", "web");
        assert_eq!(
            web.points.iter().map(|p| p.numerator).collect::<Vec<_>>(),
            [0.0, 4.0]
        );
        let whole = series(&kpis, &p, &obs, false);
        assert_eq!(whole.len(), 2);
        assert_eq!(
            whole[0].points[0].numerator + whole[0].points[1].numerator,
            7.0
        );
    }

    #[test]
    fn the_documented_catalogue_lists_every_kpi() {
        let page = include_str!("../../../../docs/kpis.md");
        for k in catalogue() {
            assert!(
                page.contains(&format!("| `{}` |", k.key)),
                "docs/kpis.md does not list {}",
                k.key
            );
        }
    }

    #[test]
    fn only_a_move_to_a_hotter_rank_is_a_rank_up() {
        assert!(is_rank_up(3, 2) && is_rank_up(2, 1) && is_rank_up(3, 1));
        assert!(!is_rank_up(1, 2) && !is_rank_up(0, 1) && !is_rank_up(2, 2));
    }

    #[test]
    fn keys_and_metric_names_are_unique() {
        let keys: std::collections::HashSet<_> = catalogue().iter().map(|k| k.key).collect();
        assert_eq!(keys.len(), catalogue().len());
        for m in Metric::ALL {
            assert_eq!(Metric::from_name(m.as_str()), Some(m));
        }
    }
}
