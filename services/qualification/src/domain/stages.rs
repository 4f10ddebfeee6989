//! Lifecycle stages: when a score, an activity, BANT or a handoff step moves a lead to another
//! stage. Which activities, BANT items and handoff steps do so is tenant data ([`StageRules`]),
//! versioned; [`StageRules::default`] is what is seeded.

use std::collections::HashSet;

use baton_proto::{
    capture::v1::ActivityKind,
    distribution::v1::HandoffAction,
    qualification::v1::{BantKey, Stage},
};
use serde::{Deserialize, Serialize};

/// Where a handoff step moves a lead.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct HandoffMove {
    pub step: HandoffAction,
    pub to: Stage,
    /// For a rejection: only when the contract routes rejected leads here ("nurture",
    /// "inside_sales"); empty: whatever the route.
    pub only_if_rejected_to: String,
}

/// The tenant's stage rules.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct StageRules {
    /// Activities that make a plain lead information-qualified.
    pub iql_activity_kinds: Vec<ActivityKind>,
    /// BANT items that, all confirmed, make a lead in marketing's stages an SQL.
    pub sql_bant_items: Vec<BantKey>,
    pub handoff_moves: Vec<HandoffMove>,
}

impl Default for StageRules {
    /// A document download makes an IQL (asking for an information asset); all four BANT items
    /// make an SQL; FS accepting a handoff (or a rejection overturned) makes an opportunity, a won
    /// deal a customer, a lost one lost, and a rejection routed to nurture recycles the lead.
    fn default() -> Self {
        let to = |step, to| HandoffMove {
            step,
            to,
            only_if_rejected_to: String::new(),
        };
        StageRules {
            iql_activity_kinds: vec![ActivityKind::DocumentDownloaded],
            sql_bant_items: vec![
                BantKey::Budget,
                BantKey::Authority,
                BantKey::Need,
                BantKey::Timeframe,
            ],
            handoff_moves: vec![
                to(HandoffAction::Accepted, Stage::Opportunity),
                to(HandoffAction::DisputeOverturned, Stage::Opportunity),
                to(HandoffAction::Won, Stage::Customer),
                to(HandoffAction::Lost, Stage::Lost),
                HandoffMove {
                    step: HandoffAction::Rejected,
                    to: Stage::Recycled,
                    only_if_rejected_to: "nurture".into(),
                },
            ],
        }
    }
}

/// Rejection routes a move may name.
pub const REJECTION_ROUTES: [&str; 2] = ["nurture", "inside_sales"];

/// Every problem of a rule set, as (field, description).
pub fn validate_rules(rules: &StageRules) -> Vec<(String, String)> {
    let mut p = Vec::new();
    let mut kinds = HashSet::new();
    for (i, k) in rules.iql_activity_kinds.iter().enumerate() {
        if *k == ActivityKind::Unspecified || !kinds.insert(*k) {
            p.push((
                format!("rules.iql_activity_kinds[{i}]"),
                "unspecified or listed twice".to_owned(),
            ));
        }
    }
    if rules.sql_bant_items.is_empty() {
        p.push((
            "rules.sql_bant_items".to_owned(),
            "at least one BANT item gates SQL".to_owned(),
        ));
    }
    let mut items = HashSet::new();
    for (i, b) in rules.sql_bant_items.iter().enumerate() {
        if *b == BantKey::Unspecified || !items.insert(*b) {
            p.push((
                format!("rules.sql_bant_items[{i}]"),
                "unspecified or listed twice".to_owned(),
            ));
        }
    }
    let mut steps = HashSet::new();
    for (i, m) in rules.handoff_moves.iter().enumerate() {
        if m.step == HandoffAction::Unspecified
            || !steps.insert((m.step, m.only_if_rejected_to.clone()))
        {
            p.push((
                format!("rules.handoff_moves[{i}].step"),
                "unspecified or listed twice".to_owned(),
            ));
        }
        if m.to == Stage::Unspecified {
            p.push((
                format!("rules.handoff_moves[{i}].to_stage"),
                "is required".to_owned(),
            ));
        }
        if !m.only_if_rejected_to.is_empty() {
            if m.step != HandoffAction::Rejected {
                p.push((
                    format!("rules.handoff_moves[{i}].only_if_rejected_to"),
                    "applies to HANDOFF_ACTION_REJECTED only".to_owned(),
                ));
            } else if !REJECTION_ROUTES.contains(&m.only_if_rejected_to.as_str()) {
                p.push((
                    format!("rules.handoff_moves[{i}].only_if_rejected_to"),
                    format!("one of {REJECTION_ROUTES:?}"),
                ));
            }
        }
    }
    p
}

/// How stage rules are stored: proto names, so a stored version reads the same after the enums
/// grow.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct StoredStageRules {
    pub iql_activity_kinds: Vec<String>,
    pub sql_bant_items: Vec<String>,
    pub handoff_moves: Vec<(String, String, String)>,
}

impl StageRules {
    pub fn to_stored(&self) -> StoredStageRules {
        StoredStageRules {
            iql_activity_kinds: self
                .iql_activity_kinds
                .iter()
                .map(|k| k.as_str_name().to_owned())
                .collect(),
            sql_bant_items: self
                .sql_bant_items
                .iter()
                .map(|b| b.as_str_name().to_owned())
                .collect(),
            handoff_moves: self
                .handoff_moves
                .iter()
                .map(|m| {
                    (
                        m.step.as_str_name().to_owned(),
                        m.to.as_str_name().to_owned(),
                        m.only_if_rejected_to.clone(),
                    )
                })
                .collect(),
        }
    }

    /// From the stored form; names this build does not know are skipped.
    pub fn from_stored(s: &StoredStageRules) -> Self {
        StageRules {
            iql_activity_kinds: s
                .iql_activity_kinds
                .iter()
                .filter_map(|n| ActivityKind::from_str_name(n))
                .collect(),
            sql_bant_items: s
                .sql_bant_items
                .iter()
                .filter_map(|n| BantKey::from_str_name(n))
                .collect(),
            handoff_moves: s
                .handoff_moves
                .iter()
                .filter_map(|(step, to, route)| {
                    Some(HandoffMove {
                        step: HandoffAction::from_str_name(step)?,
                        to: Stage::from_str_name(to)?,
                        only_if_rejected_to: route.clone(),
                    })
                })
                .collect(),
        }
    }
}

/// The stage a handoff step moves a lead to, if the rules say it does. A move naming the
/// rejection route wins over one that does not.
pub fn stage_after_handoff(
    rules: &StageRules,
    step: HandoffAction,
    rejected_route: &str,
) -> Option<Stage> {
    let matching = |m: &&HandoffMove| m.step == step;
    rules
        .handoff_moves
        .iter()
        .filter(matching)
        .find(|m| !m.only_if_rejected_to.is_empty() && m.only_if_rejected_to == rejected_route)
        .or_else(|| {
            rules
                .handoff_moves
                .iter()
                .filter(matching)
                .find(|m| m.only_if_rejected_to.is_empty())
        })
        .map(|m| m.to)
}

/// The reason an activity's IQL move is logged with, e.g. "document_downloaded".
pub fn iql_reason(kind: ActivityKind) -> String {
    kind.as_str_name()
        .trim_start_matches("ACTIVITY_KIND_")
        .to_ascii_lowercase()
}

/// Stages marketing still owns: scoring and BANT may move a lead out of them.
const MARKETING_STAGES: [Stage; 4] = [Stage::Lead, Stage::Iql, Stage::Mql, Stage::Recycled];

/// The stage a lead moves to after its score changed, if any. A lead still in marketing's hands
/// (lead, IQL, recycled) becomes an MQL when its score reaches the model's threshold. Stages owned
/// by sales (SQL and later) are never changed by scoring.
pub fn stage_after_scoring(current: Stage, score: i64, mql_threshold: i64) -> Option<Stage> {
    match current {
        Stage::Lead | Stage::Iql | Stage::Recycled if score >= mql_threshold => Some(Stage::Mql),
        _ => None,
    }
}

/// The stage an activity moves a lead to by itself: an activity the rules name (by default a
/// document download: asking for an information asset) makes a plain lead an IQL.
pub fn stage_after_activity(
    current: Stage,
    kind: ActivityKind,
    rules: &StageRules,
) -> Option<Stage> {
    (current == Stage::Lead && rules.iql_activity_kinds.contains(&kind)).then_some(Stage::Iql)
}

/// What inside sales knows of Budget, Authority, Need and Timeframe.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct BantStatus {
    pub budget: bool,
    pub authority: bool,
    pub need: bool,
    pub timeframe: bool,
}

impl BantStatus {
    pub fn complete(self) -> bool {
        self.budget && self.authority && self.need && self.timeframe
    }

    pub fn confirmed(self, item: BantKey) -> bool {
        match item {
            BantKey::Budget => self.budget,
            BantKey::Authority => self.authority,
            BantKey::Need => self.need,
            BantKey::Timeframe => self.timeframe,
            BantKey::Unspecified => true,
        }
    }

    /// The items the rules' SQL gate needs that are not confirmed.
    pub fn missing(self, rules: &StageRules) -> Vec<BantKey> {
        rules
            .sql_bant_items
            .iter()
            .copied()
            .filter(|item| !self.confirmed(*item))
            .collect()
    }
}

/// A lead in marketing's stages becomes an SQL once the BANT items the rules name are confirmed.
pub fn stage_after_bant(current: Stage, bant: BantStatus, rules: &StageRules) -> Option<Stage> {
    (bant.missing(rules).is_empty() && MARKETING_STAGES.contains(&current)).then_some(Stage::Sql)
}

/// A manual move must go somewhere else, and somewhere real.
pub fn check_manual_move(current: Stage, to: Stage) -> Result<(), &'static str> {
    if to == Stage::Unspecified {
        Err("to_stage")
    } else if to == current {
        Err("same_stage")
    } else {
        Ok(())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_document_download_makes_a_plain_lead_an_iql_only() {
        let d = StageRules::default();
        assert_eq!(
            stage_after_activity(Stage::Lead, ActivityKind::DocumentDownloaded, &d),
            Some(Stage::Iql)
        );
        assert_eq!(
            stage_after_activity(Stage::Mql, ActivityKind::DocumentDownloaded, &d),
            None
        );
        assert_eq!(
            stage_after_activity(Stage::Lead, ActivityKind::EmailOpened, &d),
            None
        );
    }

    #[test]
    fn sql_needs_all_four_bant_items_and_a_marketing_stage() {
        let d = StageRules::default();
        let three = BantStatus {
            budget: true,
            authority: true,
            need: true,
            timeframe: false,
        };
        assert_eq!(stage_after_bant(Stage::Mql, three, &d), None);
        let all = BantStatus {
            timeframe: true,
            ..three
        };
        assert_eq!(stage_after_bant(Stage::Mql, all, &d), Some(Stage::Sql));
        assert_eq!(stage_after_bant(Stage::Lead, all, &d), Some(Stage::Sql));
        assert_eq!(stage_after_bant(Stage::Opportunity, all, &d), None);
    }

    #[test]
    fn a_tenant_may_gate_sql_on_budget_and_need_only() {
        let rules = StageRules {
            sql_bant_items: vec![BantKey::Budget, BantKey::Need],
            ..StageRules::default()
        };
        let two = BantStatus {
            budget: true,
            need: true,
            ..BantStatus::default()
        };
        assert_eq!(stage_after_bant(Stage::Mql, two, &rules), Some(Stage::Sql));
        assert_eq!(
            BantStatus::default().missing(&rules),
            [BantKey::Budget, BantKey::Need]
        );
    }

    #[test]
    fn handoff_steps_move_stages_as_the_rules_say_and_a_route_specific_move_wins() {
        let d = StageRules::default();
        assert_eq!(
            stage_after_handoff(&d, HandoffAction::Accepted, ""),
            Some(Stage::Opportunity)
        );
        assert_eq!(
            stage_after_handoff(&d, HandoffAction::Rejected, "nurture"),
            Some(Stage::Recycled)
        );
        assert_eq!(
            stage_after_handoff(&d, HandoffAction::Rejected, "inside_sales"),
            None
        );
        assert_eq!(stage_after_handoff(&d, HandoffAction::Created, ""), None);
    }

    #[test]
    fn stored_rules_read_back_the_same_and_bad_rules_name_their_field() {
        let d = StageRules::default();
        assert_eq!(StageRules::from_stored(&d.to_stored()), d);
        assert!(validate_rules(&d).is_empty());
        let bad = StageRules {
            sql_bant_items: vec![],
            handoff_moves: vec![HandoffMove {
                step: HandoffAction::Won,
                to: Stage::Unspecified,
                only_if_rejected_to: "nurture".into(),
            }],
            ..d
        };
        let fields: Vec<String> = validate_rules(&bad).into_iter().map(|(f, _)| f).collect();
        assert_eq!(
            fields,
            [
                "rules.sql_bant_items",
                "rules.handoff_moves[0].to_stage",
                "rules.handoff_moves[0].only_if_rejected_to"
            ]
        );
        assert_eq!(
            iql_reason(ActivityKind::DocumentDownloaded),
            "document_downloaded"
        );
    }

    #[test]
    fn manual_moves_go_somewhere_else() {
        assert_eq!(check_manual_move(Stage::Mql, Stage::Mql), Err("same_stage"));
        assert_eq!(
            check_manual_move(Stage::Mql, Stage::Unspecified),
            Err("to_stage")
        );
        assert_eq!(check_manual_move(Stage::Mql, Stage::Disqualified), Ok(()));
    }

    #[test]
    fn a_lead_becomes_mql_when_its_score_reaches_the_threshold() {
        assert_eq!(stage_after_scoring(Stage::Lead, 49, 50), None);
        assert_eq!(stage_after_scoring(Stage::Lead, 50, 50), Some(Stage::Mql));
        assert_eq!(
            stage_after_scoring(Stage::Recycled, 80, 50),
            Some(Stage::Mql)
        );
    }

    #[test]
    fn scoring_never_moves_a_lead_sales_already_owns_or_one_already_mql() {
        for stage in [
            Stage::Mql,
            Stage::Sql,
            Stage::Opportunity,
            Stage::Customer,
            Stage::Lost,
            Stage::Disqualified,
        ] {
            assert_eq!(stage_after_scoring(stage, 1_000, 50), None, "{stage:?}");
        }
    }
}
