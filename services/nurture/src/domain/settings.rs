//! A tenant's nurture settings: consent, frequency cap, quiet hours, limits, recycling cool-downs
//! and the bot rules. Data with documented defaults, versioned, validated whole.

use std::collections::BTreeMap;

use baton_shared::Violations;
use serde::{Deserialize, Serialize};

use super::bots::{self, BotRules};

#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct NurtureSettings {
    pub require_opt_in: bool,
    pub cap_max_emails: u32,
    pub cap_window_days: u32,
    pub quiet_start_hour: u32,
    pub quiet_end_hour: u32,
    pub default_time_zone: String,
    pub max_active_enrollments: u32,
    pub send_rate_per_second: u32,
    pub cooldown_hours: BTreeMap<String, u32>,
    pub bot_rules: BotRules,
    pub soft_bounce_retries: u32,
    pub soft_bounce_backoff_seconds: u32,
}

/// The cool-down keys that stand for "any other reason" of the stage.
pub const RECYCLED: &str = "recycled";
pub const LOST: &str = "lost";
const MAX_COOLDOWN_HOURS: u32 = 8760;

impl Default for NurtureSettings {
    fn default() -> Self {
        NurtureSettings {
            require_opt_in: true,
            cap_max_emails: 3,
            cap_window_days: 7,
            quiet_start_hour: 20,
            quiet_end_hour: 8,
            default_time_zone: "UTC".to_owned(),
            max_active_enrollments: 2,
            send_rate_per_second: 50,
            cooldown_hours: BTreeMap::from([(RECYCLED.to_owned(), 720), (LOST.to_owned(), 2160)]),
            bot_rules: BotRules::default(),
            soft_bounce_retries: 3,
            soft_bounce_backoff_seconds: 900,
        }
    }
}

impl NurtureSettings {
    /// Hours a lead whose stage became `stage_key` ("recycled" or "lost") for `reason` cools
    /// down: the reason's own entry, else the stage's.
    pub fn cooldown(&self, stage_key: &str, reason: &str) -> u32 {
        self.cooldown_hours
            .get(reason)
            .or_else(|| self.cooldown_hours.get(stage_key))
            .copied()
            .unwrap_or(0)
    }

    pub fn time_zone(&self) -> chrono_tz::Tz {
        self.default_time_zone.parse().unwrap_or(chrono_tz::UTC)
    }
}

pub fn validate(s: &NurtureSettings, v: &mut Violations) {
    let f = |name: &str| format!("settings.{name}");
    if !(1..=100).contains(&s.cap_max_emails) {
        v.add(f("cap_max_emails"), "must be 1-100");
    }
    if !(1..=90).contains(&s.cap_window_days) {
        v.add(f("cap_window_days"), "must be 1-90");
    }
    if s.quiet_start_hour > 23 {
        v.add(f("quiet_start_hour"), "must be 0-23");
    }
    if s.quiet_end_hour > 23 {
        v.add(f("quiet_end_hour"), "must be 0-23");
    }
    if s.default_time_zone.parse::<chrono_tz::Tz>().is_err() {
        v.add(
            f("default_time_zone"),
            "must be an IANA time zone, e.g. Asia/Tokyo",
        );
    }
    if !(1..=20).contains(&s.max_active_enrollments) {
        v.add(f("max_active_enrollments"), "must be 1-20");
    }
    if !(1..=10_000).contains(&s.send_rate_per_second) {
        v.add(f("send_rate_per_second"), "must be 1-10000");
    }
    for (reason, hours) in &s.cooldown_hours {
        if reason.trim().is_empty() || reason.len() > 64 {
            v.add(f("cooldown_hours"), "keys must be 1-64 characters");
        }
        if *hours > MAX_COOLDOWN_HOURS {
            v.add(
                format!("settings.cooldown_hours[{reason}]"),
                format!("must be 0-{MAX_COOLDOWN_HOURS}"),
            );
        }
    }
    if s.soft_bounce_retries > 10 {
        v.add(f("soft_bounce_retries"), "must be 0-10");
    }
    if !(1..=86_400).contains(&s.soft_bounce_backoff_seconds) {
        v.add(f("soft_bounce_backoff_seconds"), "must be 1-86400");
    }
    let rules = &s.bot_rules;
    for bad in bots::bad_networks(rules) {
        v.add(
            f("bot_rules.networks"),
            format!("{bad:?} is not a CIDR range"),
        );
    }
    if rules.user_agents.iter().any(|a| a.trim().is_empty()) {
        v.add(f("bot_rules.user_agents"), "must not contain empty entries");
    }
    if rules.min_seconds_after_delivery > 3600 {
        v.add(f("bot_rules.min_seconds_after_delivery"), "must be 0-3600");
    }
    if rules.all_links_count > 100 {
        v.add(f("bot_rules.all_links_count"), "must be 0-100 (0 = off)");
    }
    if rules.all_links_seconds > 3600 {
        v.add(f("bot_rules.all_links_seconds"), "must be 0-3600");
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_defaults_are_valid_and_documented_values() {
        let d = NurtureSettings::default();
        let mut v = Violations::new();
        validate(&d, &mut v);
        assert!(v.is_empty(), "{v}");
        assert_eq!((d.cap_max_emails, d.cap_window_days), (3, 7));
        assert_eq!((d.quiet_start_hour, d.quiet_end_hour), (20, 8));
        assert_eq!(d.cooldown(RECYCLED, "no_budget"), 720);
        assert_eq!(d.cooldown(LOST, "competitor"), 2160);
    }

    #[test]
    fn a_reason_of_its_own_wins_over_the_stage() {
        let mut s = NurtureSettings::default();
        s.cooldown_hours.insert("not_now".into(), 48);
        assert_eq!(s.cooldown(RECYCLED, "not_now"), 48);
    }

    #[test]
    fn bad_settings_list_every_problem() {
        let mut s = NurtureSettings {
            cap_max_emails: 0,
            default_time_zone: "Mars/Olympus".into(),
            ..NurtureSettings::default()
        };
        s.bot_rules.networks.push("300.1.1.1/8".into());
        let mut v = Violations::new();
        validate(&s, &mut v);
        let fields: Vec<&str> = v.fields().collect();
        assert_eq!(
            fields,
            vec![
                "settings.cap_max_emails",
                "settings.default_time_zone",
                "settings.bot_rules.networks"
            ]
        );
    }
}
