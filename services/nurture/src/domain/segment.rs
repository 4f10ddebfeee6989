//! Segments: leads that meet every condition of a definition, on demographics, firmographics,
//! behaviour, interests and consent. Validated whole; evaluated on nurture's replica. Pure.

use baton_proto::{
    capture::v1::{ActivityKind, PageKind},
    qualification::v1::{Rank, Stage},
};
use baton_shared::Violations;
use chrono::{DateTime, Duration, Utc};
use serde::{Deserialize, Serialize};

use super::consent::Reachability;

/// Text fields an attribute condition may name.
pub const ATTRIBUTE_FIELDS: [&str; 8] = [
    "role",
    "title",
    "department",
    "industry",
    "country",
    "region",
    "channel",
    "lead_magnet",
];
/// Number fields a number condition may name.
pub const NUMBER_FIELDS: [&str; 3] = ["employees", "annual_revenue", "score"];
pub const MAX_CONDITIONS: usize = 50;
pub const MAX_WINDOW_DAYS: u32 = 365;

#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize, Default)]
pub struct SegmentDefinition {
    pub conditions: Vec<Condition>,
}

#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(tag = "type", rename_all = "snake_case")]
pub enum Condition {
    Attribute {
        field: String,
        any_of: Vec<String>,
        contains: String,
    },
    Number {
        field: String,
        min: Option<i64>,
        max: Option<i64>,
        currency_code: String,
    },
    Activity {
        kind: i32,
        page_kind: i32,
        min_count: u32,
        max_count: Option<u32>,
        within_days: u32,
    },
    Stage {
        any_of: Vec<i32>,
    },
    Rank {
        any_of: Vec<i32>,
    },
    Interest {
        lead_magnets: Vec<String>,
        page_kinds: Vec<i32>,
        within_days: u32,
    },
    Consent {
        mailable: bool,
    },
}

/// What a segment looks at of one lead.
#[derive(Debug, Clone, Default)]
pub struct Profile {
    pub role: String,
    pub title: String,
    pub department: String,
    pub industry: String,
    pub country: String,
    pub region: String,
    pub channel: String,
    pub lead_magnet: String,
    pub employees: Option<i64>,
    /// Annual revenue in minor units, and its currency.
    pub revenue: Option<(i64, String)>,
    pub score: i64,
    pub stage: i32,
    pub rank: i32,
    pub reach: Reachability,
}

impl Profile {
    fn text(&self, field: &str) -> &str {
        match field {
            "role" => &self.role,
            "title" => &self.title,
            "department" => &self.department,
            "industry" => &self.industry,
            "country" => &self.country,
            "region" => &self.region,
            "channel" => &self.channel,
            "lead_magnet" => &self.lead_magnet,
            _ => "",
        }
    }
}

/// One activity of a lead, as the replica keeps it (machine-made ones are not kept).
#[derive(Debug, Clone)]
pub struct Act {
    pub kind: i32,
    pub page_kind: i32,
    pub subject: String,
    pub at: DateTime<Utc>,
}

impl SegmentDefinition {
    /// The longest activity window any condition looks back (days), if one looks at activities.
    pub fn window_days(&self) -> Option<u32> {
        self.conditions
            .iter()
            .filter_map(|c| match c {
                Condition::Activity { within_days, .. } => Some(*within_days),
                Condition::Interest { within_days, .. } => Some(if *within_days == 0 {
                    MAX_WINDOW_DAYS * 10
                } else {
                    *within_days
                }),
                _ => None,
            })
            .max()
    }
}

/// Whether a lead meets every condition at `now`.
pub fn matches(def: &SegmentDefinition, p: &Profile, acts: &[Act], now: DateTime<Utc>) -> bool {
    def.conditions.iter().all(|c| holds(c, p, acts, now))
}

fn since(now: DateTime<Utc>, days: u32) -> DateTime<Utc> {
    now - Duration::days(i64::from(days))
}

fn holds(c: &Condition, p: &Profile, acts: &[Act], now: DateTime<Utc>) -> bool {
    match c {
        Condition::Attribute {
            field,
            any_of,
            contains,
        } => {
            let value = p.text(field).trim().to_lowercase();
            if !contains.is_empty() {
                value.contains(&contains.to_lowercase())
            } else {
                any_of.iter().any(|v| v.trim().to_lowercase() == value)
            }
        }
        Condition::Number {
            field,
            min,
            max,
            currency_code,
        } => {
            let value = match field.as_str() {
                "employees" => p.employees,
                "annual_revenue" => p
                    .revenue
                    .as_ref()
                    .filter(|(_, c)| c.eq_ignore_ascii_case(currency_code))
                    .map(|(v, _)| *v),
                _ => Some(p.score),
            };
            value.is_some_and(|v| min.is_none_or(|m| v >= m) && max.is_none_or(|m| v <= m))
        }
        Condition::Activity {
            kind,
            page_kind,
            min_count,
            max_count,
            within_days,
        } => {
            let from = since(now, *within_days);
            let n = acts
                .iter()
                .filter(|a| a.kind == *kind && a.at >= from && a.at <= now)
                .filter(|a| *page_kind == 0 || a.page_kind == *page_kind)
                .count() as u32;
            n >= (*min_count).max(1) && max_count.is_none_or(|m| n <= m)
        }
        Condition::Stage { any_of } => any_of.contains(&p.stage),
        Condition::Rank { any_of } => any_of.contains(&p.rank),
        Condition::Interest {
            lead_magnets,
            page_kinds,
            within_days,
        } => {
            let from = (*within_days > 0).then(|| since(now, *within_days));
            let recent = |a: &&Act| from.is_none_or(|f| a.at >= f) && a.at <= now;
            let magnet = |m: &str| {
                lead_magnets
                    .iter()
                    .any(|x| x.eq_ignore_ascii_case(m.trim()))
            };
            (from.is_none() && !p.lead_magnet.is_empty() && magnet(&p.lead_magnet))
                || acts.iter().filter(recent).any(|a| {
                    (a.kind == ActivityKind::PageViewed as i32 && page_kinds.contains(&a.page_kind))
                        || (is_consumption(a.kind) && !a.subject.is_empty() && magnet(&a.subject))
                })
        }
        Condition::Consent { mailable } => {
            let r = &p.reach;
            let ok = r.has_address
                && r.opted_in
                && !r.unsubscribed
                && !r.do_not_contact
                && !r.hard_bounced
                && !r.erased;
            ok == *mailable
        }
    }
}

/// Activities whose subject names a piece of content the lead consumed.
fn is_consumption(kind: i32) -> bool {
    [
        ActivityKind::DocumentDownloaded,
        ActivityKind::WebinarRegistered,
        ActivityKind::WebinarAttended,
        ActivityKind::FormSubmitted,
    ]
    .iter()
    .any(|k| *k as i32 == kind)
}

/// Every problem of a definition, each under `definition.conditions[i]…`.
pub fn validate(def: &SegmentDefinition, v: &mut Violations) {
    if def.conditions.len() > MAX_CONDITIONS {
        v.add(
            "definition.conditions",
            format!("at most {MAX_CONDITIONS} conditions"),
        );
    }
    for (i, c) in def.conditions.iter().enumerate() {
        validate_condition(&format!("definition.conditions[{i}]"), c, v);
    }
}

fn validate_condition(at: &str, c: &Condition, v: &mut Violations) {
    match c {
        Condition::Attribute {
            field,
            any_of,
            contains,
        } => {
            if !ATTRIBUTE_FIELDS.contains(&field.as_str()) {
                v.add(
                    format!("{at}.attribute.field"),
                    format!("must be one of {}", ATTRIBUTE_FIELDS.join(", ")),
                );
            }
            if any_of.is_empty() == contains.is_empty() {
                v.add(
                    format!("{at}.attribute.any_of"),
                    "give either any_of or contains",
                );
            }
        }
        Condition::Number {
            field,
            min,
            max,
            currency_code,
        } => {
            if !NUMBER_FIELDS.contains(&field.as_str()) {
                v.add(
                    format!("{at}.number.field"),
                    format!("must be one of {}", NUMBER_FIELDS.join(", ")),
                );
            }
            if min.is_none() && max.is_none() {
                v.add(format!("{at}.number.min"), "min, max or both are required");
            }
            if let (Some(a), Some(b)) = (min, max)
                && a > b
            {
                v.add(format!("{at}.number.max"), "must not be below min");
            }
            if field == "annual_revenue" && currency_code.len() != 3 {
                v.add(
                    format!("{at}.number.currency_code"),
                    "an ISO 4217 code is required for annual_revenue",
                );
            }
        }
        Condition::Activity {
            kind,
            page_kind,
            min_count,
            max_count,
            within_days,
        } => {
            if !matches!(ActivityKind::try_from(*kind), Ok(k) if k != ActivityKind::Unspecified) {
                v.add(format!("{at}.activity.kind"), "is required");
            }
            if PageKind::try_from(*page_kind).is_err() {
                v.add(format!("{at}.activity.page_kind"), "unknown page kind");
            }
            if !(1..=MAX_WINDOW_DAYS).contains(within_days) {
                v.add(
                    format!("{at}.activity.within_days"),
                    format!("must be 1-{MAX_WINDOW_DAYS}"),
                );
            }
            if max_count.is_some_and(|m| m < (*min_count).max(1)) {
                v.add(
                    format!("{at}.activity.max_count"),
                    "must not be below min_count",
                );
            }
        }
        Condition::Stage { any_of } => {
            if any_of.is_empty()
                || any_of
                    .iter()
                    .any(|s| !matches!(Stage::try_from(*s), Ok(s) if s != Stage::Unspecified))
            {
                v.add(format!("{at}.stage.any_of"), "one or more known stages");
            }
        }
        Condition::Rank { any_of } => {
            if any_of.is_empty()
                || any_of
                    .iter()
                    .any(|r| !matches!(Rank::try_from(*r), Ok(r) if r != Rank::Unspecified))
            {
                v.add(format!("{at}.rank.any_of"), "one or more known ranks");
            }
        }
        Condition::Interest {
            lead_magnets,
            page_kinds,
            within_days,
        } => {
            if lead_magnets.is_empty() && page_kinds.is_empty() {
                v.add(
                    format!("{at}.interest.lead_magnets"),
                    "name lead magnets, page kinds or both",
                );
            }
            if page_kinds.iter().any(|k| PageKind::try_from(*k).is_err()) {
                v.add(format!("{at}.interest.page_kinds"), "unknown page kind");
            }
            if *within_days > MAX_WINDOW_DAYS {
                v.add(
                    format!("{at}.interest.within_days"),
                    format!("must be 0-{MAX_WINDOW_DAYS}"),
                );
            }
        }
        Condition::Consent { .. } => {}
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn profile() -> Profile {
        Profile {
            role: "Decision_Maker".into(),
            industry: "Manufacturing".into(),
            country: "JP".into(),
            employees: Some(1200),
            revenue: Some((5_000_000_000, "JPY".into())),
            score: 40,
            stage: Stage::Recycled as i32,
            rank: Rank::Warm as i32,
            lead_magnet: "roi-checklist".into(),
            reach: Reachability {
                has_address: true,
                opted_in: true,
                ..Reachability::default()
            },
            ..Profile::default()
        }
    }

    fn at(days_ago: i64) -> DateTime<Utc> {
        Utc::now() - Duration::days(days_ago)
    }

    fn pricing(days_ago: i64) -> Act {
        Act {
            kind: ActivityKind::PageViewed as i32,
            page_kind: PageKind::Pricing as i32,
            subject: String::new(),
            at: at(days_ago),
        }
    }

    #[test]
    fn every_condition_must_hold() {
        let def = SegmentDefinition {
            conditions: vec![
                Condition::Attribute {
                    field: "role".into(),
                    any_of: vec!["decision_maker".into()],
                    contains: String::new(),
                },
                Condition::Number {
                    field: "employees".into(),
                    min: Some(1000),
                    max: None,
                    currency_code: String::new(),
                },
                Condition::Number {
                    field: "annual_revenue".into(),
                    min: Some(5_000_000_000),
                    max: None,
                    currency_code: "JPY".into(),
                },
                Condition::Activity {
                    kind: ActivityKind::PageViewed as i32,
                    page_kind: PageKind::Pricing as i32,
                    min_count: 2,
                    max_count: None,
                    within_days: 30,
                },
                Condition::Stage {
                    any_of: vec![Stage::Recycled as i32, Stage::Lost as i32],
                },
                Condition::Consent { mailable: true },
            ],
        };
        let now = Utc::now();
        let acts = vec![pricing(3), pricing(10), pricing(40)];
        assert!(matches(&def, &profile(), &acts, now));
        // One pricing view in the window is not two.
        assert!(!matches(&def, &profile(), &acts[1..], now));
        let unsubscribed = Profile {
            reach: Reachability {
                unsubscribed: true,
                ..profile().reach
            },
            ..profile()
        };
        assert!(!matches(&def, &unsubscribed, &acts, now));
        let dollars = Profile {
            revenue: Some((5_000_000_000, "USD".into())),
            ..profile()
        };
        assert!(!matches(&def, &dollars, &acts, now), "another currency");
    }

    #[test]
    fn interests_are_magnets_consumed_or_pages_viewed() {
        let def = SegmentDefinition {
            conditions: vec![Condition::Interest {
                lead_magnets: vec!["pricing-guide".into()],
                page_kinds: vec![PageKind::CaseStudy as i32],
                within_days: 0,
            }],
        };
        let now = Utc::now();
        assert!(!matches(&def, &profile(), &[pricing(1)], now));
        let download = Act {
            kind: ActivityKind::DocumentDownloaded as i32,
            page_kind: 0,
            subject: "Pricing-Guide".into(),
            at: at(100),
        };
        assert!(matches(&def, &profile(), &[download], now));
        let by_capture = Profile {
            lead_magnet: "pricing-guide".into(),
            ..profile()
        };
        assert!(matches(&def, &by_capture, &[], now));
    }

    #[test]
    fn a_bad_definition_lists_every_problem() {
        let def = SegmentDefinition {
            conditions: vec![
                Condition::Attribute {
                    field: "shoe_size".into(),
                    any_of: vec![],
                    contains: String::new(),
                },
                Condition::Number {
                    field: "annual_revenue".into(),
                    min: Some(10),
                    max: Some(1),
                    currency_code: String::new(),
                },
                Condition::Activity {
                    kind: 0,
                    page_kind: 0,
                    min_count: 3,
                    max_count: Some(1),
                    within_days: 0,
                },
                Condition::Stage { any_of: vec![] },
            ],
        };
        let mut v = Violations::new();
        validate(&def, &mut v);
        let fields: Vec<&str> = v.fields().collect();
        assert_eq!(
            fields,
            vec![
                "definition.conditions[0].attribute.field",
                "definition.conditions[0].attribute.any_of",
                "definition.conditions[1].number.max",
                "definition.conditions[1].number.currency_code",
                "definition.conditions[2].activity.kind",
                "definition.conditions[2].activity.within_days",
                "definition.conditions[2].activity.max_count",
                "definition.conditions[3].stage.any_of",
            ]
        );
    }
}
