//! Whether a marketing e-mail may go to a lead now: consent, the frequency cap and quiet hours.
//! These rules are never broken: the scheduler asks this before every send, and a property test
//! drives random schedules and consent changes through it. Pure.

use chrono::{DateTime, Duration, NaiveTime, TimeZone, Timelike, Utc};
use chrono_tz::Tz;

use super::settings::NurtureSettings;

/// What nurture knows of a lead's address and consent.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct Reachability {
    pub has_address: bool,
    pub opted_in: bool,
    pub unsubscribed: bool,
    pub do_not_contact: bool,
    pub hard_bounced: bool,
    pub erased: bool,
}

/// The answer for one send.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Verdict {
    Send,
    /// Never to this lead (while the fact holds): the enrolment ends.
    Stop(&'static str),
    /// Not this e-mail: the step is skipped and the sequence goes on.
    Skip(&'static str),
    /// Not now: try again at `until`.
    Defer {
        reason: &'static str,
        until: DateTime<Utc>,
    },
}

/// May a marketing e-mail go to a lead now? `sent` are the times of the marketing e-mails sent
/// (or being sent) to it, any order; `tz` is its time zone.
pub fn may_send(
    lead: &Reachability,
    settings: &NurtureSettings,
    sent: &[DateTime<Utc>],
    now: DateTime<Utc>,
    tz: Tz,
) -> Verdict {
    if lead.erased {
        return Verdict::Stop("erased");
    }
    if lead.do_not_contact {
        return Verdict::Stop("do_not_contact");
    }
    if lead.unsubscribed {
        return Verdict::Stop("unsubscribed");
    }
    if lead.hard_bounced {
        return Verdict::Stop("hard_bounced");
    }
    if !lead.has_address {
        return Verdict::Skip("no_address");
    }
    if settings.require_opt_in && !lead.opted_in {
        return Verdict::Skip("no_opt_in");
    }
    if let Some(until) = quiet_until(settings, now, tz) {
        return Verdict::Defer {
            reason: "quiet_hours",
            until,
        };
    }
    if let Some(until) = cap_until(settings, sent, now) {
        // The cap frees up in the middle of the night as often as not: land outside quiet hours.
        let until = quiet_until(settings, until, tz).unwrap_or(until);
        return Verdict::Defer {
            reason: "frequency_cap",
            until,
        };
    }
    Verdict::Send
}

/// When the frequency cap lets the next e-mail go, if it holds it back now: at most
/// `cap_max_emails` in any window of `cap_window_days` (so the next may go when the oldest of
/// the last `cap_max_emails` sends leaves the window).
pub fn cap_until(
    settings: &NurtureSettings,
    sent: &[DateTime<Utc>],
    now: DateTime<Utc>,
) -> Option<DateTime<Utc>> {
    let window = Duration::days(i64::from(settings.cap_window_days));
    let mut recent: Vec<DateTime<Utc>> = sent
        .iter()
        .copied()
        .filter(|t| *t > now - window && *t <= now)
        .collect();
    if recent.len() < settings.cap_max_emails as usize {
        return None;
    }
    recent.sort_unstable();
    // The (len - max + 1)-th oldest must leave the window; one second past it, to be outside.
    let leaving = recent[recent.len() - settings.cap_max_emails as usize];
    Some(leaving + window + Duration::seconds(1))
}

/// Whether `hour` (local) is in the quiet hours [start, end), which may wrap midnight.
pub fn is_quiet_hour(settings: &NurtureSettings, hour: u32) -> bool {
    let (start, end) = (settings.quiet_start_hour, settings.quiet_end_hour);
    if start == end {
        false
    } else if start < end {
        (start..end).contains(&hour)
    } else {
        hour >= start || hour < end
    }
}

/// When quiet hours end, if `at` is in them (in `tz`).
pub fn quiet_until(settings: &NurtureSettings, at: DateTime<Utc>, tz: Tz) -> Option<DateTime<Utc>> {
    let local = at.with_timezone(&tz);
    if !is_quiet_hour(settings, local.hour()) {
        return None;
    }
    let end = NaiveTime::from_hms_opt(settings.quiet_end_hour, 0, 0)?;
    let mut day = local.date_naive();
    if local.hour() >= settings.quiet_end_hour {
        day = day.succ_opt()?;
    }
    // A local time a DST change skips resolves to the earliest instant at or after it. That
    // instant can fall into the next quiet hours when the day's whole window is skipped (quiet
    // 03:00-02:00 on the night clocks go from 02:00 to 03:00): then the window of the next day.
    for _ in 0..3 {
        let mut naive = day.and_time(end);
        for _ in 0..4 {
            if let Some(t) = tz.from_local_datetime(&naive).earliest() {
                if !is_quiet_hour(settings, t.hour()) {
                    return Some(t.with_timezone(&Utc));
                }
                break;
            }
            naive += Duration::minutes(30);
        }
        day = day.succ_opt()?;
    }
    None
}

#[cfg(test)]
mod tests {
    use super::*;

    fn reachable() -> Reachability {
        Reachability {
            has_address: true,
            opted_in: true,
            ..Reachability::default()
        }
    }

    fn at(s: &str) -> DateTime<Utc> {
        DateTime::parse_from_rfc3339(s).unwrap().with_timezone(&Utc)
    }

    #[test]
    fn consent_stops_or_skips_before_anything_else() {
        let s = NurtureSettings::default();
        let now = at("2026-12-02T03:00:00Z"); // 12:00 in Tokyo
        let tz: Tz = "Asia/Tokyo".parse().unwrap();
        assert_eq!(may_send(&reachable(), &s, &[], now, tz), Verdict::Send);
        let unsub = Reachability {
            unsubscribed: true,
            ..reachable()
        };
        assert_eq!(
            may_send(&unsub, &s, &[], now, tz),
            Verdict::Stop("unsubscribed")
        );
        let no_opt_in = Reachability {
            opted_in: false,
            ..reachable()
        };
        assert_eq!(
            may_send(&no_opt_in, &s, &[], now, tz),
            Verdict::Skip("no_opt_in")
        );
        let relaxed = NurtureSettings {
            require_opt_in: false,
            ..s
        };
        assert_eq!(may_send(&no_opt_in, &relaxed, &[], now, tz), Verdict::Send);
    }

    #[test]
    fn a_window_the_clocks_skip_defers_to_the_next_days() {
        // Quiet from 03:00 to 02:00: only 02:00-03:00 is open, and on 2026-03-08 New York's
        // clocks go from 02:00 to 03:00, so that day has no open hour (found by the property test).
        let s = NurtureSettings {
            quiet_start_hour: 3,
            quiet_end_hour: 2,
            ..NurtureSettings::default()
        };
        let ny: Tz = "America/New_York".parse().unwrap();
        // 01:30 EST on 2026-03-08.
        let night = at("2026-03-08T06:30:00Z");
        // 02:00 EDT on 2026-03-09.
        assert_eq!(quiet_until(&s, night, ny), Some(at("2026-03-09T06:00:00Z")));
    }

    #[test]
    fn quiet_hours_are_the_leads_own_night() {
        let s = NurtureSettings::default(); // 20:00-08:00
        let tz: Tz = "Asia/Tokyo".parse().unwrap();
        // 23:30 in Tokyo: wait until 08:00 there (23:00 UTC).
        let late = at("2026-12-02T14:30:00Z");
        assert_eq!(
            may_send(&reachable(), &s, &[], late, tz),
            Verdict::Defer {
                reason: "quiet_hours",
                until: at("2026-12-02T23:00:00Z")
            }
        );
        // 05:00 in Tokyo: until 08:00 the same day.
        let early = at("2026-12-01T20:00:00Z");
        assert_eq!(quiet_until(&s, early, tz), Some(at("2026-12-01T23:00:00Z")));
        // The same instant is 09:30 in New York: not quiet there.
        let ny: Tz = "America/New_York".parse().unwrap();
        assert_eq!(quiet_until(&s, late, ny), None);
    }

    #[test]
    fn the_cap_counts_a_rolling_window() {
        let s = NurtureSettings::default(); // 3 in 7 days
        let now = at("2026-12-10T03:00:00Z");
        let sent = [
            at("2026-12-04T03:00:00Z"),
            at("2026-12-05T03:00:00Z"),
            at("2026-12-09T03:00:00Z"),
        ];
        // The oldest of the three leaves the window on the 11th at 03:00:01 (12:00 in Tokyo).
        let tz: Tz = "Asia/Tokyo".parse().unwrap();
        assert_eq!(
            may_send(&reachable(), &s, &sent, now, tz),
            Verdict::Defer {
                reason: "frequency_cap",
                until: at("2026-12-11T03:00:01Z")
            }
        );
        // Two in the window: one more may go.
        assert_eq!(
            may_send(&reachable(), &s, &sent[1..], now, tz),
            Verdict::Send
        );
        assert_eq!(cap_until(&s, &sent[1..], now), None);
    }
}
