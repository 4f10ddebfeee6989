//! Lifecycle stages: when a score moves a lead to the next stage.

use baton_proto::qualification::v1::Stage;

/// The stage a lead moves to after its score changed, if any. A lead still in marketing's hands
/// (lead, IQL, recycled) becomes an MQL when its score reaches the model's threshold. Stages owned
/// by sales (SQL and later) are never changed by scoring.
pub fn stage_after_scoring(current: Stage, score: i64, mql_threshold: i64) -> Option<Stage> {
    match current {
        Stage::Lead | Stage::Iql | Stage::Recycled if score >= mql_threshold => Some(Stage::Mql),
        _ => None,
    }
}

#[cfg(test)]
mod tests {
    use super::*;

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
