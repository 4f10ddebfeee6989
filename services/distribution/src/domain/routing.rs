//! Routing as data: an ordered list of rules per tenant (first match wins) sends a lead to a team
//! or a named rep; no match means the fallback queue, so a lead is never dropped. Within a team the
//! team's method picks the rep: round robin, weighted round robin (a counter per rep grows by
//! 1/weight per lead; lowest available counter wins, ties by queue order) or load-balanced (lowest
//! open leads / capacity). Unavailable reps (inactive, out of office, full, already had the lead,
//! weight 0 under weighted routing) are skipped, and every candidate is reported with why.

use std::collections::BTreeMap;

use serde::{Deserialize, Serialize};

/// How a team shares its leads.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
pub enum Method {
    RoundRobin,
    Weighted,
    LoadBalanced,
}

impl Method {
    pub fn name(self) -> &'static str {
        match self {
            Method::RoundRobin => "round_robin",
            Method::Weighted => "weighted_round_robin",
            Method::LoadBalanced => "load_balanced",
        }
    }
}

/// A condition on a lead: `field` is `score`, `stage`, `rank`, or a profile field such as
/// `company.country`, `company.industry`, `company.employees`.
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
pub struct Condition {
    pub field: String,
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub any_of: Vec<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub gte: Option<f64>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub lt: Option<f64>,
}

#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
pub struct Rule {
    pub key: String,
    #[serde(default)]
    pub description: String,
    pub conditions: Vec<Condition>,
    /// Exactly one of a team or a rep.
    #[serde(default)]
    pub to_team: String,
    #[serde(default)]
    pub to_rep: String,
    /// Only reps whose territories include the lead's company country or region.
    #[serde(default)]
    pub match_territory: bool,
    /// Only reps whose industries include the lead's company industry.
    #[serde(default)]
    pub match_industry: bool,
}

/// Whether a rep fits a rule's territory and industry requirements for a lead.
pub fn fit(
    rule: &Rule,
    territories: &[String],
    industries: &[String],
    lead: &LeadFields,
) -> Option<Skip> {
    let has = |list: &[String], value: Option<&String>| {
        value.is_some_and(|v| list.iter().any(|x| x.eq_ignore_ascii_case(v)))
    };
    if rule.match_territory
        && !has(territories, lead.get("company.country"))
        && !has(territories, lead.get("company.region"))
    {
        return Some(Skip::OutsideTerritory);
    }
    if rule.match_industry && !has(industries, lead.get("company.industry")) {
        return Some(Skip::OtherIndustry);
    }
    None
}

#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
pub struct Rules {
    pub rules: Vec<Rule>,
}

/// Every problem of a rule list (ordered, one message each). `teams` and `reps` are the ids that
/// exist.
pub fn validate(rules: &Rules, teams: &[String], reps: &[String]) -> Vec<String> {
    let mut problems = Vec::new();
    let mut keys = std::collections::HashSet::new();
    for (i, r) in rules.rules.iter().enumerate() {
        let name = if r.key.trim().is_empty() {
            problems.push(format!("rules[{i}]: has no key"));
            format!("rules[{i}]")
        } else {
            if !keys.insert(r.key.as_str()) {
                problems.push(format!("rule {}: key used twice", r.key));
            }
            format!("rule {}", r.key)
        };
        match (r.to_team.is_empty(), r.to_rep.is_empty()) {
            (true, true) => {
                problems.push(format!("{name}: routes nowhere (set to_team or to_rep)"))
            }
            (false, false) => problems.push(format!("{name}: set to_team or to_rep, not both")),
            (false, true) if !teams.contains(&r.to_team) => {
                problems.push(format!("{name}: unknown team {}", r.to_team))
            }
            (true, false) if !reps.contains(&r.to_rep) => {
                problems.push(format!("{name}: unknown rep {}", r.to_rep))
            }
            _ => {}
        }
        for (j, c) in r.conditions.iter().enumerate() {
            let shapes =
                usize::from(!c.any_of.is_empty()) + usize::from(c.gte.is_some() || c.lt.is_some());
            if c.field.trim().is_empty() {
                problems.push(format!("{name} condition {}: names no field", j + 1));
            } else if shapes != 1 {
                problems.push(format!(
                    "{name} condition {}: needs any_of, or gte and/or lt",
                    j + 1
                ));
            }
        }
    }
    problems
}

/// What routing knows of a lead: flattened fields (see [`Condition`]).
pub type LeadFields = BTreeMap<String, String>;

fn holds(c: &Condition, lead: &LeadFields) -> bool {
    let Some(value) = lead.get(&c.field) else {
        return false;
    };
    if !c.any_of.is_empty() {
        return c.any_of.iter().any(|v| v.eq_ignore_ascii_case(value));
    }
    let Ok(n) = value.parse::<f64>() else {
        return false;
    };
    c.gte.is_none_or(|min| n >= min) && c.lt.is_none_or(|max| n < max)
}

/// The first rule whose conditions all hold.
pub fn matching_rule<'a>(rules: &'a Rules, lead: &LeadFields) -> Option<&'a Rule> {
    rules
        .rules
        .iter()
        .find(|r| r.conditions.iter().all(|c| holds(c, lead)))
}

/// A rep as routing sees it at the moment of the decision.
#[derive(Debug, Clone, PartialEq)]
pub struct RepView {
    pub rep_id: String,
    /// Queue order.
    pub seq: i64,
    pub active: bool,
    pub out_of_office: bool,
    pub open_leads: i64,
    /// Most open leads; 0 = no limit.
    pub capacity: i64,
    /// The rep's own weight times its performance factor.
    pub weight: f64,
    /// The performance-factor change the weight came from (0 = the rep's own weight alone).
    pub weight_change: i64,
    /// Weighted round robin's counter.
    pub counter: f64,
    /// Whether the rep was available at the team's previous decision (for the catch-up rule).
    pub was_available: bool,
    /// The rep already had this lead once.
    pub had_lead: bool,
    /// The rule's territory or industry requirement the rep does not meet.
    pub mismatch: Option<Skip>,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
pub enum Skip {
    Inactive,
    OutOfOffice,
    Full,
    HadLead,
    ZeroWeight,
    OutsideTerritory,
    OtherIndustry,
}

impl Skip {
    pub fn reason(self) -> &'static str {
        match self {
            Skip::Inactive => "inactive",
            Skip::OutOfOffice => "out_of_office",
            Skip::Full => "at_capacity",
            Skip::HadLead => "already_had_lead",
            Skip::ZeroWeight => "zero_weight",
            Skip::OutsideTerritory => "outside_territory",
            Skip::OtherIndustry => "other_industry",
        }
    }
}

impl RepView {
    fn skip(&self, method: Method) -> Option<Skip> {
        if !self.active {
            Some(Skip::Inactive)
        } else if self.out_of_office {
            Some(Skip::OutOfOffice)
        } else if self.capacity > 0 && self.open_leads >= self.capacity {
            Some(Skip::Full)
        } else if self.had_lead {
            Some(Skip::HadLead)
        } else if self.mismatch.is_some() {
            self.mismatch
        } else if method == Method::Weighted && self.weight <= 0.0 {
            Some(Skip::ZeroWeight)
        } else {
            None
        }
    }

    fn load(&self) -> f64 {
        if self.capacity > 0 {
            self.open_leads as f64 / self.capacity as f64
        } else {
            // No limit: ranks after any rep with room to spare, by open leads.
            self.open_leads as f64 / 1e9
        }
    }

    /// Available regardless of this lead (for the catch-up rule).
    fn available(&self) -> bool {
        self.active
            && !self.out_of_office
            && !(self.capacity > 0 && self.open_leads >= self.capacity)
    }
}

/// One candidate of a decision, as reported by ExplainAssignment.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct Considered {
    pub rep_id: String,
    pub skipped: Option<Skip>,
    pub counter: f64,
    pub open_leads: i64,
    pub capacity: i64,
    /// The weight used (absent in explanations stored before weights were reported).
    #[serde(default)]
    pub weight: f64,
    #[serde(default)]
    pub weight_change: i64,
}

/// The choice within a team, with every candidate and the counters to store afterwards.
#[derive(Debug, Clone, PartialEq)]
pub struct Choice {
    pub rep_id: Option<String>,
    pub considered: Vec<Considered>,
    /// (rep_id, new counter, available now) for every rep of the team.
    pub counters: Vec<(String, f64, bool)>,
}

/// Picks a rep of a team. `reps` in queue order; `last_seq` is round robin's last pick.
pub fn choose(method: Method, reps: &[RepView], last_seq: Option<i64>) -> Choice {
    let mut reps = reps.to_vec();
    // A rep back from absence starts level with the others instead of catching up on every lead
    // it missed: its counter is lifted to the lowest counter of the reps that stayed available.
    let floor = reps
        .iter()
        .filter(|r| r.was_available && r.available() && r.weight > 0.0)
        .map(|r| r.counter)
        .reduce(f64::min);
    if let Some(floor) = floor {
        for r in reps.iter_mut() {
            if !r.was_available && r.available() && r.counter < floor {
                r.counter = floor;
            }
        }
    }
    let considered: Vec<Considered> = reps
        .iter()
        .map(|r| Considered {
            rep_id: r.rep_id.clone(),
            skipped: r.skip(method),
            counter: r.counter,
            open_leads: r.open_leads,
            capacity: r.capacity,
            weight: r.weight,
            weight_change: r.weight_change,
        })
        .collect();
    let eligible: Vec<&RepView> = reps.iter().filter(|r| r.skip(method).is_none()).collect();
    let chosen = match method {
        Method::RoundRobin => last_seq
            .and_then(|last| eligible.iter().find(|r| r.seq > last))
            .or_else(|| eligible.first())
            .copied(),
        Method::Weighted => eligible
            .iter()
            .copied()
            .reduce(|best, r| if r.counter < best.counter { r } else { best }),
        Method::LoadBalanced => eligible
            .iter()
            .copied()
            .reduce(|best, r| if r.load() < best.load() { r } else { best }),
    };
    let chosen_id = chosen.map(|r| r.rep_id.clone());
    let counters = reps
        .iter()
        .map(|r| {
            let mut counter = r.counter;
            if Some(&r.rep_id) == chosen_id.as_ref() && method == Method::Weighted {
                counter += 1.0 / r.weight;
            }
            (r.rep_id.clone(), counter, r.available())
        })
        .collect();
    Choice {
        rep_id: chosen_id,
        considered,
        counters,
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn rep(id: &str, seq: i64, weight: f64) -> RepView {
        RepView {
            rep_id: id.into(),
            seq,
            active: true,
            out_of_office: false,
            open_leads: 0,
            capacity: 0,
            weight,
            weight_change: 0,
            counter: 0.0,
            was_available: true,
            had_lead: false,
            mismatch: None,
        }
    }

    /// Runs `n` weighted decisions, feeding counters back as the store does.
    fn run(reps: &mut [RepView], n: usize) -> BTreeMap<String, usize> {
        let mut got = BTreeMap::new();
        for _ in 0..n {
            let choice = choose(Method::Weighted, reps, None);
            if let Some(id) = choice.rep_id {
                *got.entry(id).or_default() += 1;
            }
            for (r, (_, counter, available)) in reps.iter_mut().zip(choice.counters) {
                r.counter = counter;
                r.was_available = available;
            }
        }
        got
    }

    #[test]
    fn ten_thousand_leads_land_within_one_percent_of_the_weights() {
        let mut reps = vec![
            rep("a", 1, 1.0),
            rep("b", 2, 2.0),
            rep("c", 3, 3.0),
            rep("d", 4, 4.0),
        ];
        let got = run(&mut reps, 10_000);
        for (id, weight) in [("a", 1.0), ("b", 2.0), ("c", 3.0), ("d", 4.0)] {
            let expected = 10_000.0 * weight / 10.0;
            let share = got[id] as f64;
            assert!(
                (share - expected).abs() <= 0.01 * expected,
                "{id}: {share} vs {expected}"
            );
        }
    }

    #[test]
    fn zero_weights_and_nobody_available_route_nowhere_without_panicking() {
        let reps = vec![rep("a", 1, 0.0), rep("b", 2, 0.0)];
        let c = choose(Method::Weighted, &reps, None);
        assert_eq!(c.rep_id, None);
        assert!(
            c.considered
                .iter()
                .all(|c| c.skipped == Some(Skip::ZeroWeight))
        );
        assert_eq!(choose(Method::RoundRobin, &[], None).rep_id, None);
    }

    #[test]
    fn a_rep_back_from_absence_is_not_flooded() {
        let mut reps = vec![rep("a", 1, 1.0), rep("b", 2, 1.0)];
        reps[1].out_of_office = true;
        run(&mut reps, 100);
        reps[1].out_of_office = false;
        let got = run(&mut reps, 10);
        assert_eq!((got["a"], got["b"]), (5, 5), "{got:?}");
    }

    #[test]
    fn full_absent_and_previous_reps_are_skipped_and_say_why() {
        let mut reps = vec![
            rep("a", 1, 1.0),
            rep("b", 2, 1.0),
            rep("c", 3, 1.0),
            rep("d", 4, 1.0),
        ];
        reps[0].capacity = 2;
        reps[0].open_leads = 2;
        reps[1].out_of_office = true;
        reps[2].had_lead = true;
        let c = choose(Method::LoadBalanced, &reps, None);
        assert_eq!(c.rep_id.as_deref(), Some("d"));
        let why: Vec<Option<Skip>> = c.considered.iter().map(|c| c.skipped).collect();
        assert_eq!(
            why,
            vec![
                Some(Skip::Full),
                Some(Skip::OutOfOffice),
                Some(Skip::HadLead),
                None
            ]
        );
    }

    #[test]
    fn load_balancing_prefers_the_emptiest_rep_relative_to_capacity() {
        let mut reps = vec![rep("a", 1, 1.0), rep("b", 2, 1.0)];
        (reps[0].open_leads, reps[0].capacity) = (3, 10);
        (reps[1].open_leads, reps[1].capacity) = (1, 2);
        assert_eq!(
            choose(Method::LoadBalanced, &reps, None).rep_id.as_deref(),
            Some("a")
        );
    }

    #[test]
    fn the_first_matching_rule_wins() {
        let rules = Rules {
            rules: vec![
                Rule {
                    key: "hot_enterprise".into(),
                    conditions: vec![
                        Condition {
                            field: "rank".into(),
                            any_of: vec!["RANK_HOT".into()],
                            ..Default::default()
                        },
                        Condition {
                            field: "company.employees".into(),
                            gte: Some(1000.0),
                            ..Default::default()
                        },
                    ],
                    to_team: "enterprise".into(),
                    ..Default::default()
                },
                Rule {
                    key: "everyone".into(),
                    to_team: "smb".into(),
                    ..Default::default()
                },
            ],
        };
        let mut lead = LeadFields::new();
        lead.insert("rank".into(), "RANK_HOT".into());
        lead.insert("company.employees".into(), "50".into());
        assert_eq!(matching_rule(&rules, &lead).unwrap().key, "everyone");
        lead.insert("company.employees".into(), "5000".into());
        assert_eq!(matching_rule(&rules, &lead).unwrap().key, "hot_enterprise");
    }
}

#[cfg(test)]
mod fit_tests {
    use super::*;

    #[test]
    fn territory_and_industry_requirements_name_what_does_not_fit() {
        let rule = Rule {
            match_territory: true,
            match_industry: true,
            ..Default::default()
        };
        let mut lead = LeadFields::new();
        lead.insert("company.country".into(), "JP".into());
        lead.insert("company.industry".into(), "Manufacturing".into());
        let jp = vec!["jp".to_owned()];
        let mfg = vec!["manufacturing".to_owned()];
        assert_eq!(fit(&rule, &jp, &mfg, &lead), None);
        assert_eq!(fit(&rule, &[], &mfg, &lead), Some(Skip::OutsideTerritory));
        assert_eq!(fit(&rule, &jp, &[], &lead), Some(Skip::OtherIndustry));
    }
}
