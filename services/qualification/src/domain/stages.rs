//! Lifecycle stages: when a score moves a lead to the next stage.

use baton_proto::{capture::v1::ActivityKind, qualification::v1::Stage};

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

/// The stage an activity moves a lead to by itself: asking for an information asset (a document
/// download) makes a plain lead information-qualified (DOMAIN.md §2).
pub fn stage_after_activity(current: Stage, kind: ActivityKind) -> Option<Stage> {
    (current == Stage::Lead && kind == ActivityKind::DocumentDownloaded).then_some(Stage::Iql)
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
}

/// A lead in marketing's stages becomes an SQL once BANT is complete.
pub fn stage_after_bant(current: Stage, bant: BantStatus) -> Option<Stage> {
    (bant.complete() && MARKETING_STAGES.contains(&current)).then_some(Stage::Sql)
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
        assert_eq!(
            stage_after_activity(Stage::Lead, ActivityKind::DocumentDownloaded),
            Some(Stage::Iql)
        );
        assert_eq!(
            stage_after_activity(Stage::Mql, ActivityKind::DocumentDownloaded),
            None
        );
        assert_eq!(
            stage_after_activity(Stage::Lead, ActivityKind::EmailOpened),
            None
        );
    }

    #[test]
    fn sql_needs_all_four_bant_items_and_a_marketing_stage() {
        let three = BantStatus {
            budget: true,
            authority: true,
            need: true,
            timeframe: false,
        };
        assert_eq!(stage_after_bant(Stage::Mql, three), None);
        let all = BantStatus {
            timeframe: true,
            ..three
        };
        assert_eq!(stage_after_bant(Stage::Mql, all), Some(Stage::Sql));
        assert_eq!(stage_after_bant(Stage::Lead, all), Some(Stage::Sql));
        assert_eq!(stage_after_bant(Stage::Opportunity, all), None);
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
