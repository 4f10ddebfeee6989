//! Property test: random schedules of send attempts, random consent changes and random settings
//! and time zones, driven through the rules the scheduler asks before every send. An independent
//! checker asserts that no rule is ever broken: nothing to the unsubscribed, do-not-contact,
//! hard-bounced, erased or (where required) not opted in; never more than the cap in any window;
//! never in the lead's quiet hours; and every deferral names a time at which that rule lets go.

use baton_nurture::domain::{
    consent::{Reachability, Verdict, may_send},
    settings::NurtureSettings,
};
use chrono::{DateTime, Duration, TimeZone, Timelike, Utc};
use chrono_tz::Tz;
use proptest::prelude::*;

const ZONES: [&str; 6] = [
    "UTC",
    "Asia/Tokyo",
    "America/New_York",
    "Europe/London",
    "Australia/Lord_Howe",
    "Asia/Kathmandu",
];

#[derive(Debug, Clone)]
enum Op {
    /// Time passes (minutes).
    Advance(i64),
    /// Consent and address facts change.
    Facts(Reachability),
    /// The scheduler tries to send.
    Attempt,
}

fn reachability() -> impl Strategy<Value = Reachability> {
    // Mostly reachable leads, so that sends happen and the cap and quiet hours are exercised.
    (
        prop::bool::weighted(0.95),
        prop::bool::weighted(0.85),
        prop::bool::weighted(0.1),
        prop::bool::weighted(0.05),
        prop::bool::weighted(0.05),
        prop::bool::weighted(0.03),
    )
        .prop_map(|(a, o, u, d, b, e)| Reachability {
            has_address: a,
            opted_in: o,
            unsubscribed: u,
            do_not_contact: d,
            hard_bounced: b,
            erased: e,
        })
}

fn op() -> impl Strategy<Value = Op> {
    prop_oneof![
        4 => (1i64..3_000).prop_map(Op::Advance),
        1 => reachability().prop_map(Op::Facts),
        6 => Just(Op::Attempt),
    ]
}

fn settings() -> impl Strategy<Value = NurtureSettings> {
    (any::<bool>(), 1u32..5, 1u32..10, 0u32..24, 0u32..24).prop_map(
        |(require_opt_in, cap, window, start, end)| NurtureSettings {
            require_opt_in,
            cap_max_emails: cap,
            cap_window_days: window,
            quiet_start_hour: start,
            quiet_end_hour: end,
            ..NurtureSettings::default()
        },
    )
}

/// The checker's own idea of quiet hours (not the implementation's).
fn quiet(s: &NurtureSettings, t: DateTime<Utc>, tz: Tz) -> bool {
    let h = t.with_timezone(&tz).hour();
    let (a, b) = (s.quiet_start_hour, s.quiet_end_hour);
    match a.cmp(&b) {
        std::cmp::Ordering::Equal => false,
        std::cmp::Ordering::Less => a <= h && h < b,
        std::cmp::Ordering::Greater => h >= a || h < b,
    }
}

fn in_window(sent: &[DateTime<Utc>], at: DateTime<Utc>, window: Duration) -> usize {
    sent.iter()
        .filter(|t| **t > at - window && **t <= at)
        .count()
}

proptest! {
    #![proptest_config(ProptestConfig::with_cases(400))]

    #[test]
    fn no_rule_is_ever_broken(
        s in settings(),
        zone in 0usize..ZONES.len(),
        start_minutes in 0i64..(365 * 24 * 60),
        first in reachability(),
        ops in prop::collection::vec(op(), 1..300),
    ) {
        let tz: Tz = ZONES[zone].parse().unwrap();
        let window = Duration::days(i64::from(s.cap_window_days));
        let mut now = Utc.with_ymd_and_hms(2026, 1, 1, 0, 0, 0).unwrap() + Duration::minutes(start_minutes);
        let mut lead = first;
        let mut sent: Vec<DateTime<Utc>> = Vec::new();
        for op in ops {
            match op {
                Op::Advance(m) => now += Duration::minutes(m),
                Op::Facts(f) => lead = f,
                Op::Attempt => match may_send(&lead, &s, &sent, now, tz) {
                    Verdict::Send => {
                        prop_assert!(lead.has_address && !lead.unsubscribed && !lead.do_not_contact
                            && !lead.hard_bounced && !lead.erased, "sent against consent: {lead:?}");
                        prop_assert!(lead.opted_in || !s.require_opt_in, "sent without opt-in");
                        prop_assert!(!quiet(&s, now, tz), "sent in quiet hours at {now} ({tz})");
                        sent.push(now);
                        prop_assert!(in_window(&sent, now, window) <= s.cap_max_emails as usize,
                            "cap broken at {now}");
                    }
                    Verdict::Stop(reason) => {
                        prop_assert!(lead.unsubscribed || lead.do_not_contact || lead.hard_bounced
                            || lead.erased, "stopped ({reason}) a reachable lead");
                    }
                    Verdict::Skip(reason) => {
                        prop_assert!(!lead.has_address || (s.require_opt_in && !lead.opted_in),
                            "skipped ({reason}) a lead that could be mailed");
                    }
                    Verdict::Defer { reason, until } => {
                        prop_assert!(until > now, "a deferral into the past");
                        prop_assert!(!quiet(&s, until, tz), "deferred ({reason}) into quiet hours: {until}");
                        if reason == "quiet_hours" {
                            prop_assert!(quiet(&s, now, tz), "deferred for quiet hours outside them");
                        } else {
                            prop_assert_eq!(reason, "frequency_cap");
                            prop_assert!(in_window(&sent, now, window) >= s.cap_max_emails as usize);
                            prop_assert!(in_window(&sent, until, window) < s.cap_max_emails as usize,
                                "the cap still holds at the retry time {until}");
                        }
                    }
                },
            }
        }
        // And across the whole schedule: no window of the cap's length holds more than the cap.
        for t in &sent {
            prop_assert!(in_window(&sent, *t, window) <= s.cap_max_emails as usize);
        }
    }
}
