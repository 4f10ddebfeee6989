//! Conversions between `google.protobuf.Timestamp` and `chrono`, and validation of caller times.

use chrono::{DateTime, Timelike, Utc};

use crate::error::Violations;

/// The current time, to the microsecond (see [`from_proto`]). Use it for every stored time.
pub fn now() -> DateTime<Utc> {
    let t = Utc::now();
    t.with_nanosecond(t.timestamp_subsec_micros() * 1_000)
        .unwrap_or(t)
}

pub fn to_proto(t: DateTime<Utc>) -> prost_types::Timestamp {
    prost_types::Timestamp {
        seconds: t.timestamp(),
        nanos: t.timestamp_subsec_nanos() as i32,
    }
}

pub fn to_proto_opt(t: Option<DateTime<Utc>>) -> Option<prost_types::Timestamp> {
    t.map(to_proto)
}

/// Converts a timestamp, or `None` if it is out of range. Baton keeps times to the microsecond
/// (PostgreSQL's precision), so a time reads back the same on every backend.
pub fn from_proto(t: &prost_types::Timestamp) -> Option<DateTime<Utc>> {
    if !(0..1_000_000_000).contains(&t.nanos) {
        return None;
    }
    DateTime::from_timestamp(t.seconds, (t.nanos as u32 / 1_000) * 1_000)
}

/// The earliest time a caller may give: business events of this century. An earlier one is a
/// caller's mistake, most often an unset timestamp sent as 0 (1970-01-01).
pub const EARLIEST: DateTime<Utc> = DateTime::from_timestamp_nanos(946_684_800_000_000_000);

/// The latest time a caller may give (plans and contracts reach years ahead, not centuries).
pub const LATEST: DateTime<Utc> = DateTime::from_timestamp_nanos(4_102_444_800_000_000_000);

/// A caller-given timestamp: valid, and within [`EARLIEST`, `LATEST`) (2000-01-01 to
/// 2100-01-01, UTC).
pub fn from_caller(t: &prost_types::Timestamp) -> Option<DateTime<Utc>> {
    from_proto(t).filter(|at| (EARLIEST..LATEST).contains(at))
}

/// A caller-supplied time of a past event: defaults to `now`, must be valid, not before
/// [`EARLIEST`] and not in the future (a little clock skew is tolerated).
pub fn past_or_now(
    field: &str,
    t: Option<&prost_types::Timestamp>,
    now: DateTime<Utc>,
    violations: &mut Violations,
) -> DateTime<Utc> {
    past_or_now_decoded(field, t.map(from_proto), now, violations)
}

/// [`past_or_now`] of a time already decoded: `None` when it was not sent, `Some(None)` when it
/// was sent but is no valid timestamp.
pub fn past_or_now_decoded(
    field: &str,
    t: Option<Option<DateTime<Utc>>>,
    now: DateTime<Utc>,
    violations: &mut Violations,
) -> DateTime<Utc> {
    const SKEW_SECONDS: i64 = 300;
    match t {
        None => now,
        Some(None) => {
            violations.add(field, "not a valid timestamp");
            now
        }
        Some(Some(at)) if at < EARLIEST => {
            violations.add(field, "must not be before 2000-01-01T00:00:00Z");
            now
        }
        Some(Some(at)) if at > now + chrono::Duration::seconds(SKEW_SECONDS) => {
            violations.add(field, "must not be in the future");
            now
        }
        Some(Some(at)) => at,
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn round_trips_to_the_microsecond() {
        let t = DateTime::from_timestamp(1_700_000_000, 123_456_789).unwrap();
        let micros = DateTime::from_timestamp(1_700_000_000, 123_456_000).unwrap();
        assert_eq!(from_proto(&to_proto(t)), Some(micros));
        assert_eq!(from_proto(&to_proto(micros)), Some(micros));
    }

    #[test]
    fn caller_times_are_bounded_on_both_sides() {
        let at = |seconds| prost_types::Timestamp { seconds, nanos: 0 };
        assert_eq!(from_caller(&at(0)), None, "an unset time sent as 0");
        assert_eq!(from_caller(&at(946_684_799)), None, "1999-12-31T23:59:59Z");
        assert!(
            from_caller(&at(946_684_800)).is_some(),
            "2000-01-01T00:00:00Z"
        );
        assert!(
            from_caller(&at(4_102_444_799)).is_some(),
            "2099-12-31T23:59:59Z"
        );
        assert_eq!(
            from_caller(&at(4_102_444_800)),
            None,
            "2100-01-01T00:00:00Z"
        );
        assert_eq!(from_caller(&at(i64::MAX)), None);
        let mut v = Violations::new();
        let now = Utc::now();
        assert_eq!(past_or_now("occurred_at", Some(&at(0)), now, &mut v), now);
        assert_eq!(v.fields().collect::<Vec<_>>(), ["occurred_at"]);
    }

    #[test]
    fn future_times_are_rejected() {
        let now = Utc::now();
        let mut v = Violations::new();
        past_or_now(
            "occurred_at",
            Some(&to_proto(now + chrono::Duration::days(1))),
            now,
            &mut v,
        );
        assert_eq!(v.fields().collect::<Vec<_>>(), ["occurred_at"]);
    }
}
