//! Ranks (hot / warm / cold): ordered rules of conditions on the lead's profile and behaviour,
//! kept as data. The first rule whose conditions all hold decides, and says why.

use std::collections::BTreeMap;

use baton_proto::qualification::v1::Rank;
use chrono::{DateTime, Months, Utc};
use serde::{Deserialize, Serialize};

/// The default rank rules (docs/domain.md), seeded for a tenant that has none.
pub const DEFAULT_RANK_RULES_TOML: &str = include_str!("default_rank_rules.toml");

/// What ranking looks at: the lead's fit attributes (a replica of capture's profile) and behaviour.
#[derive(Debug, Clone, Default, PartialEq)]
pub struct RankFacts {
    /// Flattened attributes: "company.employees" → "1200", "attr.listed" → "true", ...
    pub fields: BTreeMap<String, String>,
    /// Annual revenue as (currency, amount in minor units).
    pub revenue: Option<(String, i64)>,
    pub first_contact_at: Option<DateTime<Utc>>,
    /// URLs of the lead's page views, one entry per view.
    pub page_views: Vec<String>,
}

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct RankRules {
    pub default_rank: String,
    pub rules: Vec<RankRule>,
}

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct RankRule {
    pub key: String,
    pub rank: String,
    #[serde(default)]
    pub description: String,
    pub conditions: Vec<Condition>,
}

/// One condition. Exactly one shape applies: a field comparison (`field` with one of `gte`, `lt`,
/// `equals`, `one_of`, `exists`, and `currency` for money), recency of first contact, or page visits.
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Condition {
    pub field: Option<String>,
    pub gte: Option<f64>,
    pub lt: Option<f64>,
    pub equals: Option<String>,
    pub one_of: Option<Vec<String>>,
    pub exists: Option<bool>,
    /// `[gte, lt)`: a number range.
    pub range: Option<[f64; 2]>,
    pub currency: Option<String>,
    pub months_since_first_contact_at_most: Option<u32>,
    pub page_url_contains: Option<String>,
    pub visits_at_least: Option<u32>,
}

/// The outcome: the rank, the rule that decided (None = default) and why.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct RankDecision {
    pub rank: Rank,
    pub rule_key: Option<String>,
    pub reasons: Vec<String>,
}

/// Parses and validates rules written as TOML (the seeded defaults) or JSON (as stored).
pub fn parse_rules(definition: &str) -> Result<RankRules, Vec<String>> {
    let rules: RankRules = if definition.trim_start().starts_with('{') {
        serde_json::from_str(definition).map_err(|e| vec![e.to_string()])?
    } else {
        toml::from_str(definition).map_err(|e| vec![e.to_string()])?
    };
    let problems = validate(&rules);
    if problems.is_empty() {
        Ok(rules)
    } else {
        Err(problems)
    }
}

/// Every problem of a rule set: unknown ranks, duplicate keys, rules without conditions, and
/// conditions that are incomplete or mix shapes.
pub fn validate(rules: &RankRules) -> Vec<String> {
    let mut problems = Vec::new();
    if Rank::from_str_name(&rules.default_rank).is_none_or(|r| r == Rank::Unspecified) {
        problems.push(format!("default_rank: unknown rank {}", rules.default_rank));
    }
    let mut keys = std::collections::HashSet::new();
    for rule in &rules.rules {
        if rule.key.trim().is_empty() {
            problems.push("a rule has no key".to_owned());
        } else if !keys.insert(rule.key.as_str()) {
            problems.push(format!("rule {}: key used twice", rule.key));
        }
        if Rank::from_str_name(&rule.rank).is_none_or(|r| r == Rank::Unspecified) {
            problems.push(format!("rule {}: unknown rank {}", rule.key, rule.rank));
        }
        if rule.conditions.is_empty() {
            problems.push(format!("rule {}: has no conditions", rule.key));
        }
        for (i, c) in rule.conditions.iter().enumerate() {
            if let Err(p) = check_condition(c) {
                problems.push(format!("rule {} condition {}: {p}", rule.key, i + 1));
            }
        }
    }
    problems
}

fn check_condition(c: &Condition) -> Result<(), &'static str> {
    let comparisons = [
        c.gte.is_some(),
        c.lt.is_some(),
        c.equals.is_some(),
        c.one_of.is_some(),
        c.exists.is_some(),
        c.range.is_some(),
    ]
    .iter()
    .filter(|b| **b)
    .count();
    match (
        &c.field,
        c.months_since_first_contact_at_most,
        &c.page_url_contains,
    ) {
        (Some(f), None, None) if f.trim().is_empty() => Err("names no field"),
        (Some(_), None, None) if comparisons == 0 => {
            Err("a field condition needs gte, lt, range, equals, one_of or exists")
        }
        (Some(_), None, None) if comparisons > 1 => Err("a field condition takes one comparison"),
        (Some(_), None, None) => match c.range {
            Some([lo, hi]) if lo.partial_cmp(&hi) != Some(std::cmp::Ordering::Less) => {
                Err("a range needs gte < lt")
            }
            _ => Ok(()),
        },
        (None, Some(_), None) => Ok(()),
        (None, None, Some(_)) if c.visits_at_least.is_some() => Ok(()),
        (None, None, Some(_)) => Err("a page condition needs visits_at_least"),
        (None, None, None) => Err("names no field"),
        _ => Err("mixes condition shapes"),
    }
}

/// Ranks a lead at time `now`.
pub fn rank(rules: &RankRules, facts: &RankFacts, now: DateTime<Utc>) -> RankDecision {
    for rule in &rules.rules {
        let reasons: Option<Vec<String>> = rule
            .conditions
            .iter()
            .map(|c| holds(c, facts, now))
            .collect();
        if let Some(reasons) = reasons {
            return RankDecision {
                rank: Rank::from_str_name(&rule.rank).unwrap_or(Rank::Warm),
                rule_key: Some(rule.key.clone()),
                reasons,
            };
        }
    }
    RankDecision {
        rank: Rank::from_str_name(&rules.default_rank).unwrap_or(Rank::Warm),
        rule_key: None,
        reasons: vec![],
    }
}

/// The next moment after `now` at which a time condition ("within N months of first contact")
/// flips for these facts, so the rank may change with no new event; `None` if never.
pub fn next_change(
    rules: &RankRules,
    facts: &RankFacts,
    now: DateTime<Utc>,
) -> Option<DateTime<Utc>> {
    let first = facts.first_contact_at?;
    rules
        .rules
        .iter()
        .flat_map(|r| &r.conditions)
        .filter_map(|c| c.months_since_first_contact_at_most)
        .filter_map(|m| first.checked_add_months(Months::new(m)))
        .map(|limit| limit + chrono::Duration::microseconds(1))
        .filter(|t| *t > now)
        .min()
}

/// `Some(reason)` if the condition holds.
fn holds(c: &Condition, facts: &RankFacts, now: DateTime<Utc>) -> Option<String> {
    if let Some(months) = c.months_since_first_contact_at_most {
        let first = facts.first_contact_at?;
        let limit = first.checked_add_months(Months::new(months))?;
        return (now <= limit).then(|| {
            format!(
                "first contact {} within {months} months",
                first.date_naive()
            )
        });
    }
    if let Some(pattern) = &c.page_url_contains {
        let visits = facts
            .page_views
            .iter()
            .filter(|u| u.contains(pattern.as_str()))
            .count();
        let min = c.visits_at_least.unwrap_or(1) as usize;
        return (visits >= min)
            .then(|| format!("{visits} visits to pages containing {pattern:?} >= {min}"));
    }
    field_holds(c, &facts.fields, facts.revenue.as_ref())
}

/// `Some(reason)` if a field condition holds for these attributes (and revenue, for
/// `company.annual_revenue`).
pub fn field_holds(
    c: &Condition,
    fields: &BTreeMap<String, String>,
    revenue: Option<&(String, i64)>,
) -> Option<String> {
    let field = c.field.as_deref()?;
    if field == "company.annual_revenue" {
        let (currency, amount) = revenue?;
        if c.currency.as_ref().is_some_and(|want| want != currency) {
            return None;
        }
        return compare(field, &amount.to_string(), c).map(|r| format!("{r} {currency}"));
    }
    match fields.get(field) {
        None => (c.exists == Some(false)).then(|| format!("{field} absent")),
        Some(value) => compare(field, value, c),
    }
}

fn compare(field: &str, value: &str, c: &Condition) -> Option<String> {
    let number = value.parse::<f64>().ok();
    if let Some(min) = c.gte {
        return (number? >= min).then(|| format!("{field} {value} >= {min}"));
    }
    if let Some(max) = c.lt {
        return (number? < max).then(|| format!("{field} {value} < {max}"));
    }
    if let Some([lo, hi]) = c.range {
        let n = number?;
        return (lo <= n && n < hi).then(|| format!("{field} {value} in [{lo}, {hi})"));
    }
    if let Some(want) = &c.equals {
        return value
            .eq_ignore_ascii_case(want)
            .then(|| format!("{field} = {value}"));
    }
    if let Some(options) = &c.one_of {
        return options
            .iter()
            .any(|o| o.eq_ignore_ascii_case(value))
            .then(|| format!("{field} {value} in {options:?}"));
    }
    c.exists.filter(|e| *e).map(|_| format!("{field} present"))
}

#[cfg(test)]
mod tests {
    use super::*;

    fn rules() -> RankRules {
        parse_rules(DEFAULT_RANK_RULES_TOML).expect("default rules are valid")
    }

    fn facts(employees: i64, revenue_jpy: Option<i64>, months_ago: u32) -> RankFacts {
        let mut fields = BTreeMap::new();
        fields.insert("company.employees".into(), employees.to_string());
        RankFacts {
            fields,
            revenue: revenue_jpy.map(|r| ("JPY".to_owned(), r)),
            first_contact_at: Utc::now().checked_sub_months(Months::new(months_ago)),
            page_views: vec![],
        }
    }

    #[test]
    fn a_recent_large_enterprise_is_hot_and_says_why() {
        let d = rank(&rules(), &facts(1200, Some(6_000_000_000), 1), Utc::now());
        assert_eq!(
            (d.rank, d.rule_key.as_deref()),
            (Rank::Hot, Some("large_enterprise_recent"))
        );
        assert_eq!(d.reasons.len(), 3);
        assert!(d.reasons[0].contains("1200 >= 1000"), "{:?}", d.reasons);
    }

    #[test]
    fn a_rank_that_depends_on_time_knows_when_it_changes() {
        let f = facts(1200, Some(6_000_000_000), 1);
        let next = next_change(&rules(), &f, Utc::now()).expect("a time condition");
        let first = f.first_contact_at.unwrap();
        assert_eq!(
            next,
            first.checked_add_months(Months::new(3)).unwrap() + chrono::Duration::microseconds(1)
        );
        assert_eq!(rank(&rules(), &f, next).rank, Rank::Warm);
        assert_eq!(
            next_change(&rules(), &facts(1200, None, 12), Utc::now()),
            None
        );
    }

    #[test]
    fn the_same_enterprise_after_three_months_is_only_warm() {
        let d = rank(&rules(), &facts(1200, Some(6_000_000_000), 4), Utc::now());
        assert_eq!((d.rank, d.rule_key), (Rank::Warm, None));
    }

    #[test]
    fn revenue_in_another_currency_does_not_count_as_yen() {
        let mut f = facts(1200, None, 1);
        f.revenue = Some(("USD".into(), 6_000_000_000));
        assert_eq!(rank(&rules(), &f, Utc::now()).rank, Rank::Warm);
    }

    #[test]
    fn two_pricing_visits_make_even_a_small_company_hot_and_small_companies_are_cold() {
        let mut f = facts(20, None, 12);
        assert_eq!(rank(&rules(), &f, Utc::now()).rank, Rank::Cold);
        f.page_views = vec![
            "https://x.example/pricing".into(),
            "https://x.example/pricing?plan=pro".into(),
        ];
        assert_eq!(
            rank(&rules(), &f, Utc::now()).rule_key.as_deref(),
            Some("pricing_page_repeat")
        );
    }

    #[test]
    fn a_listed_company_is_hot_from_300_employees() {
        let mut f = facts(350, None, 12);
        f.fields.insert("attr.listed".into(), "true".into());
        assert_eq!(
            rank(&rules(), &f, Utc::now()).rule_key.as_deref(),
            Some("listed_mid_size")
        );
    }

    #[test]
    fn invalid_rules_list_every_problem() {
        let bad = r#"
default_rank = "RANK_LUKEWARM"
[[rules]]
key = "a"
rank = "RANK_HOT"
conditions = [ { field = "", gte = 1 }, { gte = 5 }, { field = "x" } ]
"#;
        let problems = parse_rules(bad).unwrap_err();
        assert_eq!(problems.len(), 4, "{problems:?}");
        assert!(problems.iter().any(|p| p.contains("names no field")));
    }
}
