//! Which activities count as inside sales touching a lead (the first touch after an assignment
//! meets its response SLA). Tenant data, versioned; these are the seeded defaults.

use std::collections::HashSet;

use baton_proto::capture::v1::ActivityKind;

/// The activity kinds that count as an IS touch.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct TouchRules {
    pub touch_kinds: Vec<ActivityKind>,
}

impl Default for TouchRules {
    /// A call, or an e-mail delivered to the lead.
    fn default() -> Self {
        TouchRules {
            touch_kinds: vec![ActivityKind::Call, ActivityKind::EmailDelivered],
        }
    }
}

impl TouchRules {
    pub fn is_touch(&self, kind: ActivityKind) -> bool {
        self.touch_kinds.contains(&kind)
    }

    /// The kinds by their proto names (how they are stored).
    pub fn names(&self) -> Vec<&'static str> {
        self.touch_kinds.iter().map(|k| k.as_str_name()).collect()
    }

    /// From stored names; a name this build does not know is skipped.
    pub fn from_names(names: &[String]) -> Self {
        TouchRules {
            touch_kinds: names
                .iter()
                .filter_map(|n| ActivityKind::from_str_name(n))
                .collect(),
        }
    }
}

/// Every problem of a rule set, as (field, description).
pub fn validate(rules: &TouchRules) -> Vec<(String, String)> {
    let mut problems = Vec::new();
    if rules.touch_kinds.is_empty() {
        problems.push((
            "rules.touch_kinds".to_owned(),
            "at least one activity kind must count as a touch".to_owned(),
        ));
    }
    let mut seen = HashSet::new();
    for (i, kind) in rules.touch_kinds.iter().enumerate() {
        if *kind == ActivityKind::Unspecified {
            problems.push((
                format!("rules.touch_kinds[{i}]"),
                "is unspecified".to_owned(),
            ));
        } else if !seen.insert(*kind) {
            problems.push((
                format!("rules.touch_kinds[{i}]"),
                format!("{} is listed twice", kind.as_str_name()),
            ));
        }
    }
    problems
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn by_default_a_call_or_a_delivered_email_is_a_touch_and_an_open_is_not() {
        let rules = TouchRules::default();
        assert!(rules.is_touch(ActivityKind::Call));
        assert!(rules.is_touch(ActivityKind::EmailDelivered));
        assert!(!rules.is_touch(ActivityKind::EmailOpened));
    }

    #[test]
    fn an_empty_unspecified_or_repeated_kind_list_is_refused_with_its_field() {
        assert_eq!(
            validate(&TouchRules {
                touch_kinds: vec![]
            })
            .len(),
            1
        );
        let bad = TouchRules {
            touch_kinds: vec![
                ActivityKind::Call,
                ActivityKind::Unspecified,
                ActivityKind::Call,
            ],
        };
        let fields: Vec<String> = validate(&bad).into_iter().map(|(f, _)| f).collect();
        assert_eq!(fields, ["rules.touch_kinds[1]", "rules.touch_kinds[2]"]);
    }
}
