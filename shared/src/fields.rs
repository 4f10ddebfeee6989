//! Checks of request fields that every service makes the same way, with the same limits and the
//! same messages.

use chrono::{DateTime, Utc};

use crate::{
    error::{ApiError, Violations},
    time,
};

/// Longest id or idempotency key a request may carry, in bytes.
pub const MAX_ID_LEN: usize = 128;

/// The largest amount of money a caller may give, in minor units (10^15: ten trillion of a
/// currency with cents). Sums of many such amounts still fit in 64 bits.
pub const MAX_AMOUNT_MINOR: i64 = 1_000_000_000_000_000;
/// Longest actor (who did it: a rep's id or e-mail) a request may carry, in bytes.
pub const MAX_ACTOR_LEN: usize = 200;
/// Longest free-text note or reason, in bytes.
pub const MAX_NOTE_LEN: usize = 500;

/// A required id, trimmed: INVALID_ARGUMENT naming `field` when it is empty or longer than
/// [`MAX_ID_LEN`].
pub fn required_id(field: &str, raw: &str) -> Result<String, ApiError> {
    let mut violations = Violations::new();
    let id = violations.required(field, raw, MAX_ID_LEN);
    violations.into_result()?;
    Ok(id)
}

/// A required timestamp: recorded as invalid when missing or out of range (before 2000 or from
/// 2100 on: [`time::from_caller`]).
pub fn required_time(
    field: &str,
    raw: Option<&prost_types::Timestamp>,
    violations: &mut Violations,
) -> Option<DateTime<Utc>> {
    if raw.is_none() {
        violations.add(field, "is required");
    }
    optional_time(field, raw, violations)
}

/// An optional timestamp: `None` when unset; recorded as invalid when out of range (before 2000
/// or from 2100 on: [`time::from_caller`]), so an unset time sent as 0 is not taken for 1970.
pub fn optional_time(
    field: &str,
    raw: Option<&prost_types::Timestamp>,
    violations: &mut Violations,
) -> Option<DateTime<Utc>> {
    time::from_caller(raw?).or_else(|| {
        violations.add(
            field,
            "is not a valid timestamp from 2000-01-01 to 2100-01-01 (UTC)",
        );
        None
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn ids_are_trimmed_required_and_bounded() {
        assert_eq!(required_id("lead_id", "  l-1 ").unwrap(), "l-1");
        assert!(required_id("lead_id", "   ").is_err());
        assert!(required_id("lead_id", &"x".repeat(MAX_ID_LEN + 1)).is_err());
    }

    #[test]
    fn a_missing_or_impossible_time_is_named() {
        let mut v = Violations::new();
        assert_eq!(required_time("at", None, &mut v), None);
        let bad = prost_types::Timestamp {
            seconds: i64::MAX,
            nanos: 0,
        };
        assert_eq!(required_time("until", Some(&bad), &mut v), None);
        assert_eq!(v.fields().collect::<Vec<_>>(), ["at", "until"]);
    }
}
