//! Behaviour scoring: a model is a threshold and a list of rules, each matching an activity kind
//! (and optionally a page kind) and worth some points, possibly negative. Models are data.

use baton_proto::capture::v1::{ActivityKind, PageKind};
use serde::Deserialize;

/// The default model's definition (DOMAIN.md §3), seeded for a tenant that has none.
pub const DEFAULT_MODEL_TOML: &str = include_str!("default_scoring_model.toml");

#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ScoringModel {
    pub model_id: String,
    pub version: i32,
    pub mql_threshold: i64,
    pub rules: Vec<Rule>,
}

#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Rule {
    pub key: String,
    pub description: String,
    pub activity_kind: ActivityKind,
    /// `Unspecified` matches any page (and activities that are not page views).
    pub page_kind: PageKind,
    pub points: i64,
}

impl Rule {
    pub fn matches(&self, kind: ActivityKind, page_kind: PageKind) -> bool {
        self.activity_kind == kind
            && (self.page_kind == PageKind::Unspecified || self.page_kind == page_kind)
    }
}

/// The rules of `model` that fire for one activity.
pub fn fired_rules(model: &ScoringModel, kind: ActivityKind, page_kind: PageKind) -> Vec<&Rule> {
    model
        .rules
        .iter()
        .filter(|r| r.matches(kind, page_kind))
        .collect()
}

#[derive(Debug, Deserialize)]
struct ModelDefinition {
    mql_threshold: i64,
    rules: Vec<RuleDefinition>,
}

#[derive(Debug, Deserialize)]
struct RuleDefinition {
    key: String,
    description: String,
    activity_kind: String,
    #[serde(default)]
    page_kind: Option<String>,
    points: i64,
}

/// Parses a model definition (TOML, enum values by their proto names).
pub fn parse_model(
    model_id: String,
    version: i32,
    definition: &str,
) -> Result<ScoringModel, String> {
    let def: ModelDefinition = toml::from_str(definition).map_err(|e| e.to_string())?;
    let rules = def
        .rules
        .into_iter()
        .map(|r| {
            let activity_kind = ActivityKind::from_str_name(&r.activity_kind)
                .filter(|k| *k != ActivityKind::Unspecified)
                .ok_or_else(|| {
                    format!("rule {}: unknown activity_kind {}", r.key, r.activity_kind)
                })?;
            let page_kind = match r.page_kind.as_deref() {
                None => PageKind::Unspecified,
                Some(name) => PageKind::from_str_name(name)
                    .ok_or_else(|| format!("rule {}: unknown page_kind {name}", r.key))?,
            };
            Ok(Rule {
                key: r.key,
                description: r.description,
                activity_kind,
                page_kind,
                points: r.points,
            })
        })
        .collect::<Result<Vec<_>, String>>()?;
    Ok(ScoringModel {
        model_id,
        version,
        mql_threshold: def.mql_threshold,
        rules,
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    fn default_model() -> ScoringModel {
        parse_model("m".into(), 1, DEFAULT_MODEL_TOML).expect("default model parses")
    }

    fn points(model: &ScoringModel, kind: ActivityKind, page: PageKind) -> i64 {
        fired_rules(model, kind, page)
            .iter()
            .map(|r| r.points)
            .sum()
    }

    #[test]
    fn default_model_has_the_documented_points() {
        let m = default_model();
        assert_eq!(
            points(&m, ActivityKind::ListSubscribed, PageKind::Unspecified),
            5
        );
        assert_eq!(
            points(&m, ActivityKind::MeetingCancelled, PageKind::Unspecified),
            -5
        );
        assert_eq!(
            points(&m, ActivityKind::MeetingBooked, PageKind::Unspecified),
            25
        );
        assert_eq!(
            points(&m, ActivityKind::EmailOpened, PageKind::Unspecified),
            5
        );
        assert_eq!(
            points(&m, ActivityKind::EmailClicked, PageKind::Unspecified),
            10
        );
        assert_eq!(
            points(&m, ActivityKind::EmailReplied, PageKind::Unspecified),
            15
        );
        assert_eq!(
            points(&m, ActivityKind::FreeTrialStarted, PageKind::Unspecified),
            25
        );
        assert_eq!(
            points(&m, ActivityKind::EmailNotOpened, PageKind::Unspecified),
            -10
        );
        assert_eq!(
            points(&m, ActivityKind::EmailUnsubscribed, PageKind::Unspecified),
            -25
        );
    }

    #[test]
    fn only_the_pricing_page_scores() {
        let m = default_model();
        assert_eq!(points(&m, ActivityKind::PageViewed, PageKind::Pricing), 10);
        assert_eq!(points(&m, ActivityKind::PageViewed, PageKind::Blog), 0);
    }

    #[test]
    fn unknown_kinds_in_a_definition_are_reported() {
        let bad = "mql_threshold = 1\n[[rules]]\nkey='x'\ndescription=''\nactivity_kind='NOPE'\npoints=1\n";
        assert!(
            parse_model("m".into(), 1, bad)
                .unwrap_err()
                .contains("NOPE")
        );
    }
}
