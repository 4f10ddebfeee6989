//! When an SLA falls due: N minutes after it starts, counted either on the clock or only inside a
//! rep's working hours (Monday to Friday, [start_hour, end_hour) in the rep's time zone).

use chrono::{DateTime, Datelike, Duration, NaiveTime, TimeZone, Utc, Weekday};
use chrono_tz::Tz;

/// A rep's working week.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct WorkingHours {
    pub tz: Tz,
    pub start_hour: u32,
    pub end_hour: u32,
}

impl WorkingHours {
    /// Working hours from a rep's settings, if they describe a working day.
    pub fn of(time_zone: &str, start_hour: i32, end_hour: i32) -> Option<WorkingHours> {
        let tz = time_zone.parse::<Tz>().ok()?;
        let (start, end) = (
            u32::try_from(start_hour).ok()?,
            u32::try_from(end_hour).ok()?,
        );
        (start < end && end <= 24).then_some(WorkingHours {
            tz,
            start_hour: start,
            end_hour: end,
        })
    }

    /// The working window of the local day of `at`, in UTC (None on weekends).
    fn window(&self, day: chrono::NaiveDate) -> Option<(DateTime<Utc>, DateTime<Utc>)> {
        if matches!(day.weekday(), Weekday::Sat | Weekday::Sun) {
            return None;
        }
        let at = |hour: u32| {
            let local = if hour == 24 {
                day.succ_opt()?.and_time(NaiveTime::MIN)
            } else {
                day.and_hms_opt(hour, 0, 0)?
            };
            self.tz
                .from_local_datetime(&local)
                .earliest()
                .map(|t| t.with_timezone(&Utc))
        };
        Some((at(self.start_hour)?, at(self.end_hour)?))
    }
}

/// `start` plus `minutes`, on the clock or inside working hours.
pub fn due_at(start: DateTime<Utc>, minutes: u32, hours: Option<WorkingHours>) -> DateTime<Utc> {
    let Some(hours) = hours else {
        return start + Duration::minutes(i64::from(minutes));
    };
    let mut left = Duration::minutes(i64::from(minutes));
    let mut day = start.with_timezone(&hours.tz).date_naive();
    // A working week has at least one working day, so this ends; the bound only guards bad data.
    for _ in 0..(7 + minutes / 60 + 7) {
        if let Some((open, close)) = hours.window(day) {
            let from = open.max(start);
            if from < close {
                if from + left <= close {
                    return from + left;
                }
                left -= close - from;
            }
        }
        match day.succ_opt() {
            Some(next) => day = next,
            None => break,
        }
    }
    start + Duration::minutes(i64::from(minutes))
}

#[cfg(test)]
mod tests {
    use super::*;

    fn tokyo(y: i32, m: u32, d: u32, h: u32, min: u32) -> DateTime<Utc> {
        chrono_tz::Asia::Tokyo
            .with_ymd_and_hms(y, m, d, h, min, 0)
            .single()
            .expect("a Tokyo time")
            .with_timezone(&Utc)
    }

    fn nine_to_six() -> Option<WorkingHours> {
        WorkingHours::of("Asia/Tokyo", 9, 18)
    }

    #[test]
    fn on_the_clock_it_is_plain_minutes() {
        let start = tokyo(2026, 11, 27, 17, 45);
        assert_eq!(due_at(start, 30, None), tokyo(2026, 11, 27, 18, 15));
    }

    #[test]
    fn friday_evening_runs_into_monday_morning() {
        // 2026-11-27 is a Friday.
        let start = tokyo(2026, 11, 27, 17, 45);
        assert_eq!(due_at(start, 30, nine_to_six()), tokyo(2026, 11, 30, 9, 15));
    }

    #[test]
    fn a_night_assignment_starts_counting_at_opening() {
        let start = tokyo(2026, 11, 24, 23, 0);
        assert_eq!(due_at(start, 60, nine_to_six()), tokyo(2026, 11, 25, 10, 0));
    }

    #[test]
    fn unknown_zones_or_empty_days_mean_no_working_hours() {
        assert_eq!(WorkingHours::of("Mars/Olympus", 9, 18), None);
        assert_eq!(WorkingHours::of("Asia/Tokyo", 18, 9), None);
        assert_eq!(WorkingHours::of("Asia/Tokyo", 0, 0), None);
    }
}
