//! The periods a range splits into, aligned to calendar days, weeks, months or quarters of a time
//! zone.

use chrono::{DateTime, Datelike, Duration, NaiveDate, TimeZone, Utc};
use chrono_tz::Tz;

/// Longest answer a query may ask for.
pub const MAX_PERIODS: usize = 1_000;

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

/// Ranges `[from, to)` of UTC times.
pub type Ranges = Vec<(DateTime<Utc>, DateTime<Utc>)>;

/// Lengths of the rollup levels above the cube's 15-minute slots, finest first: an hour, three
/// hours, a UTC day (each divides the next).
pub const LEVEL_SECONDS: [i64; 3] = [3_600, 10_800, 86_400];

/// `[start, end)` cut into the coarsest pieces rollups are kept at: whole UTC days in the
/// middle, then three-hour blocks, hours, and 15-minute slots towards the edges.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct Tiles {
    pub slots: Ranges,
    /// Per level of [`LEVEL_SECONDS`].
    pub levels: [Ranges; 3],
}

impl Tiles {
    fn at(&mut self, level: usize) -> &mut Ranges {
        match level {
            0 => &mut self.slots,
            n => &mut self.levels[n - 1],
        }
    }
}

fn floor_to(t: DateTime<Utc>, size: i64) -> DateTime<Utc> {
    let s = t.timestamp();
    DateTime::from_timestamp(s - s.rem_euclid(size), 0).unwrap_or(t)
}

fn ceil_to(t: DateTime<Utc>, size: i64) -> DateTime<Utc> {
    let f = floor_to(t, size);
    if f == t {
        f
    } else {
        f + Duration::seconds(size)
    }
}

/// Adds `[from, to)` unless it is empty (ranges are never joined: each stays inside the period
/// it was cut from, so it can be summed as a whole).
fn push(r: &mut Ranges, from: DateTime<Utc>, to: DateTime<Utc>) {
    if from < to {
        r.push((from, to));
    }
}

/// The tiles of `[start, end)`, added to `tiles`.
pub fn tile(start: DateTime<Utc>, end: DateTime<Utc>, tiles: &mut Tiles) {
    let (mut a, mut b) = (start, end);
    for (level, size) in LEVEL_SECONDS.iter().enumerate() {
        let (inner_a, inner_b) = (ceil_to(a, *size), floor_to(b, *size));
        if inner_a >= inner_b {
            push(tiles.at(level), a, b);
            return;
        }
        push(tiles.at(level), a, inner_a);
        push(tiles.at(level), inner_b, b);
        (a, b) = (inner_a, inner_b);
    }
    push(tiles.at(LEVEL_SECONDS.len()), a, b);
}

#[cfg(test)]
mod tests {
    use super::*;

    fn utc(s: &str) -> DateTime<Utc> {
        s.parse().unwrap()
    }

    #[test]
    fn a_range_is_tiled_by_days_hours_and_slots_without_gaps() {
        let r = |a: &str, b: &str| (utc(a), utc(b));
        let mut t = Tiles::default();
        // A Tokyo week: Monday 00:00 JST = Sunday 15:00 UTC, to the next. 15:00 starts a
        // three-hour block: no hour and no slot is needed.
        tile(
            utc("2026-11-29T15:00:00Z"),
            utc("2026-12-06T15:00:00Z"),
            &mut t,
        );
        assert_eq!(t.slots, []);
        assert_eq!(t.levels[0], []);
        assert_eq!(
            t.levels[1],
            [
                r("2026-11-29T15:00:00Z", "2026-11-30T00:00:00Z"),
                r("2026-12-06T00:00:00Z", "2026-12-06T15:00:00Z")
            ]
        );
        assert_eq!(
            t.levels[2],
            [r("2026-11-30T00:00:00Z", "2026-12-06T00:00:00Z")]
        );
        // A Kathmandu day (+05:45): slots, then hours, then three-hour blocks; no whole UTC day.
        let mut k = Tiles::default();
        tile(
            utc("2026-11-30T18:15:00Z"),
            utc("2026-12-01T18:15:00Z"),
            &mut k,
        );
        assert_eq!(
            k.slots,
            [
                r("2026-11-30T18:15:00Z", "2026-11-30T19:00:00Z"),
                r("2026-12-01T18:00:00Z", "2026-12-01T18:15:00Z")
            ]
        );
        assert_eq!(
            k.levels[0],
            [r("2026-11-30T19:00:00Z", "2026-11-30T21:00:00Z")]
        );
        assert_eq!(
            k.levels[1],
            [r("2026-11-30T21:00:00Z", "2026-12-01T18:00:00Z")]
        );
        assert!(k.levels[2].is_empty());
        // Contiguous Tokyo days: each keeps its own ranges, so each sums as one period.
        let mut days = Tiles::default();
        tile(
            utc("2026-11-29T15:00:00Z"),
            utc("2026-11-30T15:00:00Z"),
            &mut days,
        );
        tile(
            utc("2026-11-30T15:00:00Z"),
            utc("2026-12-01T15:00:00Z"),
            &mut days,
        );
        assert_eq!(
            days.levels[1],
            [
                r("2026-11-29T15:00:00Z", "2026-11-30T15:00:00Z"),
                r("2026-11-30T15:00:00Z", "2026-12-01T15:00:00Z")
            ]
        );
        // Under an hour: slots only.
        let mut s = Tiles::default();
        tile(
            utc("2026-12-01T10:15:00Z"),
            utc("2026-12-01T10:45:00Z"),
            &mut s,
        );
        assert_eq!(s.slots.len(), 1);
        assert!(s.levels.iter().all(|l| l.is_empty()));
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
}
