//! Anonymous visit counts per source and day, the denominator of the opt-in rate (docs/domain.md:
//! opt-in rate = leads / visitors × 100).

use baton_shared::Violations;
use chrono::NaiveDate;

use super::profile::bounded;

const MAX_CHANNEL_LEN: usize = 64;
const MAX_CAMPAIGN_LEN: usize = 200;

/// Anonymous visitors of one source (channel, campaign) on one day.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct VisitCount {
    pub channel: String,
    pub campaign: String,
    /// `YYYY-MM-DD`.
    pub day: String,
    pub visitors: i64,
}

/// Validates a visit count: channel required, day a calendar date `YYYY-MM-DD`, visitors ≥ 0.
pub fn validate_visits(
    channel: &str,
    campaign: &str,
    day: &str,
    visitors: i64,
    violations: &mut Violations,
) -> VisitCount {
    let channel = bounded("channel", channel, MAX_CHANNEL_LEN, violations);
    if channel.is_empty() {
        violations.add("channel", "is required");
    }
    let day = day.trim();
    if NaiveDate::parse_from_str(day, "%Y-%m-%d").is_err() {
        violations.add("day", "must be a date like 2026-11-23");
    }
    if visitors < 0 {
        violations.add("visitors", "must not be negative");
    }
    VisitCount {
        channel,
        campaign: bounded("campaign", campaign, MAX_CAMPAIGN_LEN, violations),
        day: day.to_owned(),
        visitors,
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn day_visitors_and_channel_are_checked() {
        let mut v = Violations::new();
        validate_visits("", "", "2026-02-30", -1, &mut v);
        assert_eq!(
            v.fields().collect::<Vec<_>>(),
            ["channel", "day", "visitors"]
        );
        let mut ok = Violations::new();
        let visits = validate_visits(" ad_form ", "", "2026-11-23", 1200, &mut ok);
        assert!(ok.is_empty());
        assert_eq!(visits.channel, "ad_form");
    }
}
