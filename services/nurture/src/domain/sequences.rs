//! Sequences: ordered steps, each sent a number of hours after the previous one.

use chrono::{DateTime, Duration, Utc};
use serde::Deserialize;

/// The default welcome sequence's definition, seeded for a tenant that has none.
pub const WELCOME_SEQUENCE_TOML: &str = include_str!("welcome_sequence.toml");

/// The default re-engagement sequence for recycled leads.
pub const RE_ENGAGEMENT_SEQUENCE_TOML: &str = include_str!("re_engagement_sequence.toml");

#[derive(Debug, Clone, PartialEq, Eq, Deserialize)]
pub struct SequenceDefinition {
    pub key: String,
    pub name: String,
    pub steps: Vec<Step>,
}

#[derive(Debug, Clone, PartialEq, Eq, Deserialize)]
pub struct Step {
    pub template: String,
    /// Hours after the previous step (after enrolment for the first).
    pub delay_hours: u32,
}

pub fn parse_sequence(definition: &str) -> Result<SequenceDefinition, String> {
    let def: SequenceDefinition = toml::from_str(definition).map_err(|e| e.to_string())?;
    if def.steps.is_empty() {
        return Err(format!("sequence {} has no steps", def.key));
    }
    Ok(def)
}

/// When the first step of a sequence is due for a lead enrolled at `enrolled_at`.
pub fn first_step_due(
    steps_delay_hours: &[u32],
    enrolled_at: DateTime<Utc>,
) -> Option<DateTime<Utc>> {
    steps_delay_hours
        .first()
        .map(|h| enrolled_at + Duration::hours(i64::from(*h)))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_welcome_sequence_starts_at_once() {
        let def = parse_sequence(WELCOME_SEQUENCE_TOML).unwrap();
        assert_eq!(def.key, "welcome");
        let delays: Vec<u32> = def.steps.iter().map(|s| s.delay_hours).collect();
        let now = Utc::now();
        assert_eq!(first_step_due(&delays, now), Some(now));
    }

    #[test]
    fn the_re_engagement_sequence_waits_a_week() {
        let def = parse_sequence(RE_ENGAGEMENT_SEQUENCE_TOML).unwrap();
        assert_eq!(
            (def.key.as_str(), def.steps[0].delay_hours),
            ("re_engagement", 168)
        );
    }

    #[test]
    fn a_sequence_without_steps_is_refused() {
        assert!(parse_sequence("key='x'\nname='x'\nsteps=[]").is_err());
        assert_eq!(first_step_due(&[], Utc::now()), None);
    }
}
