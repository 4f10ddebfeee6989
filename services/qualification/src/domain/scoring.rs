//! Scoring models as data (docs/domain.md): a threshold and rules. A rule fires on the lead's fit
//! (attribute conditions), on its behaviour (activities, filtered by page kind and URL pattern), or
//! on its inactivity (N days without some activity); points may be negative, capped per period, and
//! expire after N days.
//!
//! A score is a pure function of (model, the lead's attributes and activity history, a moment):
//! [`compute`] always gives the same answer for the same inputs, which is what makes recomputing
//! every lead after an activation, and simulating a draft over history, trustworthy.

use std::collections::{BTreeMap, HashMap, HashSet};

use baton_proto::capture::v1::{ActivityKind, PageKind};
use chrono::{DateTime, Duration, Utc};
use serde::{Deserialize, Serialize};

use super::ranks::{self, Condition};

/// The default model's definition (docs/domain.md), seeded for a tenant that has none.
pub const DEFAULT_MODEL_TOML: &str = include_str!("default_scoring_model.toml");

/// A model as stored (JSON) and written by hand (TOML): enum values by their proto names.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct ModelDefinition {
    pub mql_threshold: i64,
    #[serde(default)]
    pub rules: Vec<RuleDefinition>,
}

/// One rule. Its trigger is given by which fields are set: `conditions` (attribute),
/// `inactive_days` with `activity_kind` (inactivity), or `activity_kind` alone (behaviour, with
/// optional `page_kind` and `url_pattern`).
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct RuleDefinition {
    pub key: String,
    #[serde(default)]
    pub description: String,
    pub points: i64,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub conditions: Option<Vec<Condition>>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub activity_kind: Option<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub page_kind: Option<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub url_pattern: Option<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub inactive_days: Option<u32>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub cap: Option<Cap>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub expires_after_days: Option<u32>,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
pub struct Cap {
    pub max_points: i64,
    pub period_days: u32,
}

impl ModelDefinition {
    pub fn parse_toml(text: &str) -> Result<ModelDefinition, String> {
        toml::from_str(text).map_err(|e| e.to_string())
    }

    pub fn from_json(text: &str) -> Result<ModelDefinition, String> {
        serde_json::from_str(text).map_err(|e| e.to_string())
    }

    pub fn to_json(&self) -> String {
        // A derived Serialize of strings, numbers and options cannot fail.
        serde_json::to_string(self).unwrap_or_default()
    }
}

/// What fires a rule, parsed.
#[derive(Debug, Clone, PartialEq)]
pub enum Trigger {
    Attribute(Vec<Condition>),
    Behaviour {
        activity_kind: ActivityKind,
        page_kind: PageKind,
        url_pattern: Option<String>,
    },
    Inactivity {
        activity_kind: ActivityKind,
        days: u32,
    },
}

#[derive(Debug, Clone, PartialEq)]
pub struct Rule {
    pub key: String,
    pub description: String,
    pub points: i64,
    pub trigger: Trigger,
    pub cap: Option<Cap>,
    pub expires_after_days: Option<u32>,
}

/// A valid model, ready to score with.
#[derive(Debug, Clone, PartialEq)]
pub struct ScoringModel {
    pub model_id: String,
    pub version: i32,
    pub mql_threshold: i64,
    pub rules: Vec<Rule>,
}

fn activity_kind(name: &str) -> Option<ActivityKind> {
    ActivityKind::from_str_name(name).filter(|k| *k != ActivityKind::Unspecified)
}

/// The longest span a rule may name, in days (100 years): a period, an expiry, an inactivity.
pub const MAX_DAYS: u32 = 36_500;

/// The most points one rule gives or takes, and the highest threshold and cap: a lead's score,
/// however many activities it has, stays far inside 64 bits.
pub const MAX_POINTS: i64 = 1_000_000;

/// Every problem that keeps a definition from being activated, one message each.
pub fn validate(def: &ModelDefinition) -> Vec<String> {
    let mut problems = Vec::new();
    if def.mql_threshold <= 0 || def.mql_threshold > MAX_POINTS {
        problems.push(format!(
            "mql_threshold: must be from 1 to {MAX_POINTS}, is {}",
            def.mql_threshold
        ));
    }
    if def.rules.is_empty() {
        problems.push("rules: a model needs at least one rule".to_owned());
    }
    let mut keys = HashSet::new();
    for (i, r) in def.rules.iter().enumerate() {
        let name = if r.key.trim().is_empty() {
            problems.push(format!("rules[{i}]: has no key"));
            format!("rules[{i}]")
        } else {
            if !keys.insert(r.key.as_str()) {
                problems.push(format!("rule {}: key used twice", r.key));
            }
            format!("rule {}", r.key)
        };
        if r.points == 0 || !(-MAX_POINTS..=MAX_POINTS).contains(&r.points) {
            problems.push(format!(
                "{name}: points must not be 0 and at most {MAX_POINTS} either way, is {}",
                r.points
            ));
        }
        validate_trigger(r, &name, &mut problems);
        if let Some(cap) = r.cap {
            if cap.max_points <= 0 || cap.max_points > MAX_POINTS {
                problems.push(format!(
                    "{name}: cap.max_points must be from 1 to {MAX_POINTS}"
                ));
            }
            if cap.period_days == 0 {
                problems.push(format!("{name}: cap.period_days must be at least 1"));
            }
        }
        if r.expires_after_days == Some(0) {
            problems.push(format!(
                "{name}: expires_after_days must be at least 1 (or unset)"
            ));
        }
        for (what, days) in [
            ("expires_after_days", r.expires_after_days),
            ("inactive_days", r.inactive_days),
            ("cap.period_days", r.cap.map(|c| c.period_days)),
        ] {
            if days.is_some_and(|d| d > MAX_DAYS) {
                problems.push(format!("{name}: {what} must be at most {MAX_DAYS}"));
            }
        }
    }
    problems
}

/// A rule's trigger: attribute conditions, or an activity kind (with an optional page filter,
/// or a number of inactive days); never both.
fn validate_trigger(r: &RuleDefinition, name: &str, problems: &mut Vec<String>) {
    match (&r.conditions, &r.activity_kind, r.inactive_days) {
        (Some(conditions), None, None) => {
            if conditions.is_empty() {
                problems.push(format!("{name}: an attribute rule needs a condition"));
            }
            for (j, c) in conditions.iter().enumerate() {
                if c.field.is_none()
                    || c.months_since_first_contact_at_most.is_some()
                    || c.page_url_contains.is_some()
                {
                    problems.push(format!(
                        "{name} condition {}: only field conditions apply to scoring",
                        j + 1
                    ));
                } else {
                    let one = ranks::RankRules {
                        default_rank: "RANK_WARM".into(),
                        rules: vec![ranks::RankRule {
                            key: "x".into(),
                            rank: "RANK_HOT".into(),
                            description: String::new(),
                            conditions: vec![c.clone()],
                        }],
                    };
                    for p in ranks::validate(&one) {
                        problems.push(format!(
                            "{name} condition {}: {}",
                            j + 1,
                            p.trim_start_matches("rule x condition 1: ")
                        ));
                    }
                }
            }
            if r.page_kind.is_some() || r.url_pattern.is_some() {
                problems.push(format!(
                    "{name}: page_kind and url_pattern apply to behaviour rules only"
                ));
            }
        }
        (None, Some(kind), days) => {
            if activity_kind(kind).is_none() {
                problems.push(format!("{name}: unknown activity_kind {kind}"));
            }
            if let Some(page) = &r.page_kind
                && PageKind::from_str_name(page).is_none()
            {
                problems.push(format!("{name}: unknown page_kind {page}"));
            }
            if let Some(pattern) = &r.url_pattern
                && pattern.trim().is_empty()
            {
                problems.push(format!("{name}: url_pattern is empty"));
            }
            match days {
                Some(0) => problems.push(format!("{name}: inactive_days must be at least 1")),
                Some(_) if r.page_kind.is_some() || r.url_pattern.is_some() => problems.push(
                    format!("{name}: page_kind and url_pattern apply to behaviour rules only"),
                ),
                _ => {}
            }
        }
        (Some(_), Some(_), _) => {
            problems.push(format!("{name}: has both conditions and an activity_kind"))
        }
        (None, None, _) => problems.push(format!(
            "{name}: needs a trigger (conditions, or an activity_kind)"
        )),
        (Some(_), None, Some(_)) => problems.push(format!(
            "{name}: inactive_days needs an activity_kind, not conditions"
        )),
    }
}

/// Validates and compiles a definition.
pub fn compile(
    model_id: String,
    version: i32,
    def: &ModelDefinition,
) -> Result<ScoringModel, Vec<String>> {
    let problems = validate(def);
    if !problems.is_empty() {
        return Err(problems);
    }
    let rules = def
        .rules
        .iter()
        .map(|r| {
            let trigger = match (&r.conditions, &r.activity_kind, r.inactive_days) {
                (Some(c), _, _) => Trigger::Attribute(c.clone()),
                (None, Some(kind), Some(days)) => Trigger::Inactivity {
                    activity_kind: activity_kind(kind).unwrap_or(ActivityKind::Unspecified),
                    days,
                },
                (None, kind, None) => Trigger::Behaviour {
                    activity_kind: kind
                        .as_deref()
                        .and_then(activity_kind)
                        .unwrap_or(ActivityKind::Unspecified),
                    page_kind: r
                        .page_kind
                        .as_deref()
                        .and_then(PageKind::from_str_name)
                        .unwrap_or(PageKind::Unspecified),
                    url_pattern: r.url_pattern.clone(),
                },
                (None, None, Some(_)) => Trigger::Attribute(vec![]),
            };
            Rule {
                key: r.key.clone(),
                description: r.description.clone(),
                points: r.points,
                trigger,
                cap: r.cap,
                expires_after_days: r.expires_after_days,
            }
        })
        .collect();
    Ok(ScoringModel {
        model_id,
        version,
        mql_threshold: def.mql_threshold,
        rules,
    })
}

/// Whole-string match where `*` stands for any run of characters.
pub fn url_matches(pattern: &str, url: &str) -> bool {
    let parts: Vec<&str> = pattern.split('*').collect();
    if parts.len() == 1 {
        return pattern == url;
    }
    let (first, last) = (parts[0], parts[parts.len() - 1]);
    if !url.starts_with(first) || url.len() < first.len() + last.len() || !url.ends_with(last) {
        return false;
    }
    let mut rest = &url[first.len()..url.len() - last.len()];
    for middle in &parts[1..parts.len() - 1] {
        match rest.find(middle) {
            Some(at) => rest = &rest[at + middle.len()..],
            None => return false,
        }
    }
    true
}

/// One activity of a lead, as scoring sees it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ActivityFact {
    pub activity_id: String,
    pub kind: ActivityKind,
    pub page_kind: PageKind,
    pub url: String,
    pub occurred_at: DateTime<Utc>,
}

/// Everything a score depends on besides the model.
#[derive(Debug, Clone, Default, PartialEq)]
pub struct LeadFacts {
    /// Flattened attributes (see the profile replica).
    pub fields: BTreeMap<String, String>,
    pub revenue: Option<(String, i64)>,
    /// When the lead was first seen (capture time); inactivity and attribute rules count from it.
    pub first_seen_at: Option<DateTime<Utc>>,
    pub activities: Vec<ActivityFact>,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum TriggerKind {
    Attribute,
    Behaviour,
    Inactivity,
}

/// One firing of a rule.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Contribution {
    pub rule_key: String,
    pub description: String,
    pub trigger: TriggerKind,
    pub points: i64,
    pub fired_at: DateTime<Utc>,
    pub expires_at: Option<DateTime<Utc>>,
    /// The activity behind a behaviour rule; empty otherwise.
    pub activity_id: String,
    pub detail: String,
}

impl Contribution {
    pub fn counts_at(&self, at: DateTime<Utc>) -> bool {
        self.fired_at <= at && self.expires_at.is_none_or(|e| at < e)
    }
}

/// A lead's score under a model at one moment, with every firing behind it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Computation {
    pub score: i64,
    /// Every firing up to the moment, oldest first (expired ones included, not counted).
    pub contributions: Vec<Contribution>,
    /// When the score next changes with no new activity (an expiry or an inactivity firing).
    pub next_change_at: Option<DateTime<Utc>>,
}

/// One moment a rule's trigger fired: when, on which activity (if any), and why.
struct Firing {
    at: DateTime<Utc>,
    activity_id: String,
    detail: String,
}

impl Firing {
    fn new(at: DateTime<Utc>, activity_id: &str, detail: String) -> Self {
        Firing {
            at,
            activity_id: activity_id.to_owned(),
            detail,
        }
    }
}

/// When a trigger fired up to `as_of`, in order, and (for inactivity) the next moment it would
/// fire again (pure; caps and expiry are applied by the caller).
fn firings_of(
    trigger: &Trigger,
    facts: &LeadFacts,
    activities: &[&ActivityFact],
    first_seen: Option<DateTime<Utc>>,
    as_of: DateTime<Utc>,
) -> (Vec<Firing>, Option<DateTime<Utc>>) {
    let mut firings = Vec::new();
    let mut next_check = None;
    match trigger {
        Trigger::Attribute(conditions) => {
            let Some(at) = first_seen else {
                return (firings, None);
            };
            let reasons: Option<Vec<String>> = conditions
                .iter()
                .map(|c| ranks::field_holds(c, &facts.fields, facts.revenue.as_ref()))
                .collect();
            if let Some(reasons) = reasons {
                firings.push(Firing::new(at, "", reasons.join("; ")));
            }
        }
        Trigger::Behaviour {
            activity_kind,
            page_kind,
            url_pattern,
        } => {
            for a in activities {
                let matches = a.kind == *activity_kind
                    && (*page_kind == PageKind::Unspecified || a.page_kind == *page_kind)
                    && url_pattern
                        .as_deref()
                        .is_none_or(|p| url_matches(p, &a.url));
                if matches {
                    let detail = if a.url.is_empty() {
                        a.kind.as_str_name().to_owned()
                    } else {
                        format!("{} {}", a.kind.as_str_name(), a.url)
                    };
                    firings.push(Firing::new(a.occurred_at, &a.activity_id, detail));
                }
            }
        }
        Trigger::Inactivity {
            activity_kind,
            days,
        } => {
            let Some(first) = first_seen else {
                return (firings, None);
            };
            // Counted over at most the last MAX_DAYS (a lead "first seen" in year 1 must not
            // make a computation fire millions of times).
            let mut anchor = first.max(as_of - Duration::days(i64::from(MAX_DAYS)));
            let step = Duration::days(i64::from(*days));
            let detail = format!("no {} for {days} days", activity_kind.as_str_name());
            let seen = activities
                .iter()
                .filter(|a| a.kind == *activity_kind)
                .map(|a| a.occurred_at);
            for t in seen {
                while anchor + step <= t {
                    anchor += step;
                    firings.push(Firing::new(anchor, "", detail.clone()));
                }
                anchor = anchor.max(t);
            }
            while anchor + step <= as_of {
                anchor += step;
                firings.push(Firing::new(anchor, "", detail.clone()));
            }
            next_check = Some(anchor + step);
        }
    }
    (firings, next_check)
}

/// Scores a lead at `as_of`. Deterministic: activities are taken in (occurred_at, activity_id)
/// order and only those at or before `as_of` count.
pub fn compute(model: &ScoringModel, facts: &LeadFacts, as_of: DateTime<Utc>) -> Computation {
    let mut activities: Vec<&ActivityFact> = facts
        .activities
        .iter()
        .filter(|a| a.occurred_at <= as_of)
        .collect();
    activities
        .sort_by(|a, b| (a.occurred_at, &a.activity_id).cmp(&(b.occurred_at, &b.activity_id)));
    let first_seen = facts
        .first_seen_at
        .into_iter()
        .chain(activities.first().map(|a| a.occurred_at))
        .min()
        .filter(|t| *t <= as_of);
    let mut contributions = Vec::new();
    let mut next_change_at: Option<DateTime<Utc>> = None;
    let mut soonest = |t: DateTime<Utc>| {
        if t > as_of && next_change_at.is_none_or(|n| t < n) {
            next_change_at = Some(t);
        }
    };
    for rule in &model.rules {
        let (firings, next_check) =
            firings_of(&rule.trigger, facts, &activities, first_seen, as_of);
        if let Some(t) = next_check {
            soonest(t);
        }
        let mut capper = Capper::new(rule.cap);
        for Firing {
            at,
            activity_id,
            detail,
        } in firings
        {
            let (points, detail) = match capper.allow(at, rule.points) {
                0 => continue,
                p if p != rule.points => (
                    p,
                    format!("{detail} (capped: {p} of {} points)", rule.points),
                ),
                p => (p, detail),
            };
            let expires_at = rule
                .expires_after_days
                .map(|d| at + Duration::days(i64::from(d)));
            contributions.push(Contribution {
                rule_key: rule.key.clone(),
                description: rule.description.clone(),
                trigger: match rule.trigger {
                    Trigger::Attribute(_) => TriggerKind::Attribute,
                    Trigger::Behaviour { .. } => TriggerKind::Behaviour,
                    Trigger::Inactivity { .. } => TriggerKind::Inactivity,
                },
                points,
                fired_at: at,
                expires_at,
                activity_id,
                detail,
            });
        }
    }
    contributions.sort_by(|a, b| {
        (a.fired_at, &a.rule_key, &a.activity_id).cmp(&(b.fired_at, &b.rule_key, &b.activity_id))
    });
    for c in &contributions {
        if let Some(e) = c.expires_at {
            soonest(e);
        }
    }
    let score = contributions
        .iter()
        .filter(|c| c.counts_at(as_of))
        .map(|c| c.points)
        .sum();
    Computation {
        score,
        contributions,
        next_change_at,
    }
}

/// The first moment in `[from, to)` at which the contributions add up to `threshold` or more —
/// `None` if the score reached it before `from` already, or never does in the window.
pub fn first_reached(
    contributions: &[Contribution],
    threshold: i64,
    from: DateTime<Utc>,
    to: DateTime<Utc>,
) -> Option<DateTime<Utc>> {
    let mut moments: Vec<DateTime<Utc>> = contributions
        .iter()
        .flat_map(|c| std::iter::once(c.fired_at).chain(c.expires_at))
        .filter(|t| *t < to)
        .collect();
    moments.sort();
    moments.dedup();
    for t in moments {
        let score: i64 = contributions
            .iter()
            .filter(|c| c.counts_at(t))
            .map(|c| c.points)
            .sum();
        if score >= threshold {
            return (t >= from).then_some(t);
        }
    }
    None
}

/// Caps a rule's points per fixed period (days since the Unix epoch, UTC).
struct Capper {
    cap: Option<Cap>,
    used: HashMap<i64, i64>,
}

impl Capper {
    fn new(cap: Option<Cap>) -> Self {
        Capper {
            cap,
            used: HashMap::new(),
        }
    }

    /// The points allowed for a firing at `at` (0 when the period's cap is used up).
    fn allow(&mut self, at: DateTime<Utc>, points: i64) -> i64 {
        let Some(cap) = self.cap else { return points };
        let period = at
            .timestamp()
            .div_euclid(86_400 * i64::from(cap.period_days.max(1)));
        let used = self.used.entry(period).or_insert(0);
        let room = (cap.max_points - *used).max(0);
        let allowed = points.abs().min(room);
        *used += allowed;
        allowed * points.signum()
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use chrono::TimeZone;

    fn default_model() -> ScoringModel {
        let def = ModelDefinition::parse_toml(DEFAULT_MODEL_TOML).expect("default model parses");
        compile("m".into(), 1, &def).expect("default model is valid")
    }

    fn day(d: u32) -> DateTime<Utc> {
        Utc.with_ymd_and_hms(2026, 1, d, 12, 0, 0)
            .single()
            .expect("valid date")
    }

    fn act(
        id: &str,
        kind: ActivityKind,
        page: PageKind,
        url: &str,
        at: DateTime<Utc>,
    ) -> ActivityFact {
        ActivityFact {
            activity_id: id.into(),
            kind,
            page_kind: page,
            url: url.into(),
            occurred_at: at,
        }
    }

    fn score_of(model: &ScoringModel, kind: ActivityKind, page: PageKind) -> i64 {
        let facts = LeadFacts {
            first_seen_at: Some(day(1)),
            activities: vec![act("a", kind, page, "", day(1))],
            ..Default::default()
        };
        compute(model, &facts, day(2)).score
    }

    fn model(toml: &str) -> ScoringModel {
        let def = ModelDefinition::parse_toml(toml).expect("parses");
        compile("m".into(), 1, &def).expect("valid")
    }

    #[test]
    fn default_model_has_the_documented_points() {
        let m = default_model();
        use ActivityKind::*;
        for (kind, points) in [
            (ListSubscribed, 5),
            (MeetingCancelled, -5),
            (MeetingBooked, 25),
            (EmailOpened, 5),
            (EmailClicked, 10),
            (EmailReplied, 15),
            (FreeTrialStarted, 25),
            (EmailNotOpened, -10),
            (EmailUnsubscribed, -25),
        ] {
            assert_eq!(
                score_of(&m, kind, PageKind::Unspecified),
                points,
                "{kind:?}"
            );
        }
        assert_eq!(score_of(&m, PageViewed, PageKind::Pricing), 10);
        assert_eq!(score_of(&m, PageViewed, PageKind::Blog), 0);
    }

    #[test]
    fn the_same_history_gives_the_same_score_in_any_order() {
        let m = default_model();
        let mut facts = LeadFacts {
            first_seen_at: Some(day(1)),
            activities: vec![
                act(
                    "b",
                    ActivityKind::EmailOpened,
                    PageKind::Unspecified,
                    "",
                    day(2),
                ),
                act(
                    "a",
                    ActivityKind::MeetingBooked,
                    PageKind::Unspecified,
                    "",
                    day(3),
                ),
                act(
                    "c",
                    ActivityKind::EmailClicked,
                    PageKind::Unspecified,
                    "",
                    day(2),
                ),
            ],
            ..Default::default()
        };
        let first = compute(&m, &facts, day(10));
        facts.activities.reverse();
        assert_eq!(compute(&m, &facts, day(10)), first);
        assert_eq!(first.score, 40);
    }

    #[test]
    fn points_decay_caps_apply_per_period_and_the_next_change_is_known() {
        let m = model(
            r#"
mql_threshold = 50
[[rules]]
key = "opened"
activity_kind = "ACTIVITY_KIND_EMAIL_OPENED"
points = 5
cap = { max_points = 8, period_days = 7 }
expires_after_days = 30
"#,
        );
        let facts = LeadFacts {
            first_seen_at: Some(day(1)),
            activities: (1..=3)
                .map(|i| {
                    act(
                        &format!("o{i}"),
                        ActivityKind::EmailOpened,
                        PageKind::Unspecified,
                        "",
                        day(i),
                    )
                })
                .collect(),
            ..Default::default()
        };
        let now = compute(&m, &facts, day(5));
        assert_eq!(now.score, 8, "5 + 3 (capped) + 0: {:?}", now.contributions);
        assert_eq!(now.contributions.len(), 2);
        assert!(now.contributions[1].detail.contains("capped: 3 of 5"));
        assert_eq!(now.next_change_at, Some(day(1) + Duration::days(30)));
        let later = compute(&m, &facts, day(1) + Duration::days(30) + Duration::hours(1));
        assert_eq!(later.score, 3, "the first 5 points expired");
    }

    #[test]
    fn inactivity_fires_every_n_days_without_the_activity() {
        let m = model(
            r#"
mql_threshold = 50
[[rules]]
key = "silent"
activity_kind = "ACTIVITY_KIND_EMAIL_OPENED"
inactive_days = 10
points = -10
"#,
        );
        let mut facts = LeadFacts {
            first_seen_at: Some(day(1)),
            ..Default::default()
        };
        let c = compute(&m, &facts, day(25));
        assert_eq!(c.score, -20, "day 11 and day 21");
        assert_eq!(c.next_change_at, Some(day(31)));
        facts.activities.push(act(
            "o",
            ActivityKind::EmailOpened,
            PageKind::Unspecified,
            "",
            day(5),
        ));
        let c = compute(&m, &facts, day(24));
        assert_eq!(
            c.score, -10,
            "an open on day 5 restarts the clock: fires on day 15"
        );
        assert_eq!(c.contributions[0].fired_at, day(15));
    }

    #[test]
    fn attribute_rules_match_fields_and_url_patterns_filter_page_views() {
        let m = model(
            r#"
mql_threshold = 50
[[rules]]
key = "big"
points = 20
conditions = [ { field = "company.employees", range = [1000.0, 100000.0] }, { field = "company.industry", one_of = ["software", "finance"] } ]
[[rules]]
key = "docs"
activity_kind = "ACTIVITY_KIND_PAGE_VIEWED"
url_pattern = "*/docs/*"
points = 3
"#,
        );
        let mut facts = LeadFacts {
            first_seen_at: Some(day(1)),
            activities: vec![
                act(
                    "p1",
                    ActivityKind::PageViewed,
                    PageKind::Other,
                    "https://x.io/docs/a",
                    day(2),
                ),
                act(
                    "p2",
                    ActivityKind::PageViewed,
                    PageKind::Other,
                    "https://x.io/blog/a",
                    day(2),
                ),
            ],
            ..Default::default()
        };
        facts
            .fields
            .insert("company.employees".into(), "1500".into());
        facts
            .fields
            .insert("company.industry".into(), "Software".into());
        let c = compute(&m, &facts, day(3));
        assert_eq!(c.score, 23, "{:?}", c.contributions);
        assert!(c.contributions[0].detail.contains("1500 in [1000, 100000)"));
        facts.fields.insert("company.employees".into(), "50".into());
        assert_eq!(compute(&m, &facts, day(3)).score, 3);
    }

    #[test]
    fn the_first_moment_the_threshold_is_reached_counts_only_inside_the_window() {
        let m = default_model();
        let facts = LeadFacts {
            first_seen_at: Some(day(1)),
            activities: vec![
                act(
                    "a",
                    ActivityKind::MeetingBooked,
                    PageKind::Unspecified,
                    "",
                    day(2),
                ),
                act(
                    "b",
                    ActivityKind::FreeTrialStarted,
                    PageKind::Unspecified,
                    "",
                    day(4),
                ),
            ],
            ..Default::default()
        };
        let c = compute(&m, &facts, day(20));
        assert_eq!(
            first_reached(&c.contributions, 50, day(1), day(20)),
            Some(day(4))
        );
        assert_eq!(first_reached(&c.contributions, 50, day(5), day(20)), None);
        assert_eq!(first_reached(&c.contributions, 60, day(1), day(20)), None);
    }

    #[test]
    fn every_problem_of_an_invalid_model_is_listed() {
        let def = ModelDefinition {
            mql_threshold: 0,
            rules: vec![
                RuleDefinition {
                    key: "a".into(),
                    points: 0,
                    activity_kind: Some("NOPE".into()),
                    ..Default::default()
                },
                RuleDefinition {
                    key: "a".into(),
                    points: 1,
                    cap: Some(Cap {
                        max_points: 0,
                        period_days: 0,
                    }),
                    ..Default::default()
                },
                RuleDefinition {
                    key: "c".into(),
                    points: 1,
                    conditions: Some(vec![Condition {
                        field: Some("x".into()),
                        ..Default::default()
                    }]),
                    ..Default::default()
                },
            ],
        };
        let problems = validate(&def);
        assert_eq!(problems.len(), 8, "{problems:#?}");
        assert!(
            problems
                .iter()
                .any(|p| p.contains("unknown activity_kind NOPE"))
        );
        assert!(problems.iter().any(|p| p.contains("key used twice")));
    }

    #[test]
    fn spans_beyond_a_century_are_refused_rather_than_overflowing_the_calendar() {
        let def = ModelDefinition {
            mql_threshold: 10,
            rules: vec![RuleDefinition {
                key: "forever".into(),
                points: 1,
                activity_kind: Some("ACTIVITY_KIND_EMAIL_OPENED".into()),
                expires_after_days: Some(u32::MAX),
                ..Default::default()
            }],
        };
        let problems = validate(&def);
        assert_eq!(problems.len(), 1, "{problems:?}");
        assert!(problems[0].contains("expires_after_days must be at most 36500"));
    }

    #[test]
    fn points_thresholds_and_caps_are_bounded_so_scores_cannot_overflow() {
        let rule = |key: &str, points: i64| RuleDefinition {
            key: key.into(),
            points,
            activity_kind: Some("ACTIVITY_KIND_EMAIL_OPENED".into()),
            ..Default::default()
        };
        let def = ModelDefinition {
            mql_threshold: i64::MAX,
            rules: vec![
                rule("huge", i64::MAX),
                rule("most_negative", i64::MIN),
                rule("largest", MAX_POINTS),
                rule("smallest", -MAX_POINTS),
                RuleDefinition {
                    cap: Some(Cap {
                        max_points: MAX_POINTS + 1,
                        period_days: 1,
                    }),
                    ..rule("capped", 5)
                },
            ],
        };
        let problems = validate(&def);
        assert_eq!(problems.len(), 4, "{problems:?}");
        assert!(problems[0].starts_with("mql_threshold: must be from 1 to 1000000"));
        assert!(problems[1].starts_with("rule huge: points"));
        assert!(problems[2].starts_with("rule most_negative: points"));
        assert!(problems[3].starts_with("rule capped: cap.max_points"));
    }

    #[test]
    fn url_patterns_match_whole_urls() {
        assert!(url_matches("*/pricing*", "https://a.io/pricing?x=1"));
        assert!(url_matches("https://a.io/*/b", "https://a.io/x/y/b"));
        assert!(!url_matches("*/pricing", "https://a.io/pricing/x"));
        assert!(url_matches("https://a.io/", "https://a.io/"));
        assert!(!url_matches("a*a", "a"));
    }
}
