//! A lead's erasure in qualification: besides its activities and score entries (forgotten by
//! `forget_lead`), the words people wrote about it (BANT notes, stage reasons) and the rank
//! reasons that quote its fields go, here and in qualification's own past events, and the dead
//! letters about it lose their event.

use baton_proto::qualification::v1::{RankChanged, StageChanged};
use baton_shared::{
    TenantId,
    erasure::{forget_dead_letters, keep_code},
    events::EventLog,
};
use prost::{Message, Name};
use sea_orm::{
    ActiveModelTrait, ActiveValue::Set, ColumnTrait, ConnectionTrait, DbErr, EntityTrait,
    QueryFilter, sea_query::Expr,
};

use super::entities::{lead_bant, lead_rank, stage_history};

/// Everything qualification keeps that could identify `lead_id`, erased inside `txn`.
pub async fn erase<C: ConnectionTrait>(
    txn: &C,
    tenant: &TenantId,
    lead_id: &str,
) -> Result<(), DbErr> {
    super::forget_lead(txn, tenant, lead_id).await?;
    let notes = [
        lead_bant::Column::BudgetNote,
        lead_bant::Column::AuthorityNote,
        lead_bant::Column::NeedNote,
        lead_bant::Column::TimeframeNote,
    ];
    let mut blank = lead_bant::Entity::update_many();
    for note in notes {
        blank = blank.col_expr(note, Expr::value(String::new()));
    }
    blank
        .filter(lead_bant::Column::TenantId.eq(tenant.as_str()))
        .filter(lead_bant::Column::LeadId.eq(lead_id))
        .exec(txn)
        .await?;
    lead_rank::Entity::update_many()
        .col_expr(lead_rank::Column::Reasons, Expr::value("[]"))
        .filter(lead_rank::Column::TenantId.eq(tenant.as_str()))
        .filter(lead_rank::Column::LeadId.eq(lead_id))
        .exec(txn)
        .await?;
    let history = stage_history::Entity::find()
        .filter(stage_history::Column::TenantId.eq(tenant.as_str()))
        .filter(stage_history::Column::LeadId.eq(lead_id))
        .all(txn)
        .await?;
    for row in history {
        let reason = keep_code(&row.reason);
        if reason != row.reason {
            let mut changed: stage_history::ActiveModel = row.into();
            changed.reason = Set(reason);
            changed.update(txn).await?;
        }
    }
    EventLog::rewrite_payloads(txn, lead_id, scrub_event_payload).await?;
    forget_dead_letters(txn, tenant, lead_id).await?;
    Ok(())
}

/// Qualification's events about an erased lead without the words that may identify it: a
/// stage change keeps its reason only when it is a code, a rank change loses its reasons (they
/// quote the lead's fields). A payload that does not decode is blanked whole.
pub fn scrub_event_payload(type_url: &str, payload: &[u8]) -> Option<Vec<u8>> {
    if type_url == StageChanged::type_url() {
        let Ok(mut e) = StageChanged::decode(payload) else {
            return Some(Vec::new());
        };
        e.reason = keep_code(&e.reason);
        Some(e.encode_to_vec())
    } else if type_url == RankChanged::type_url() {
        let Ok(mut e) = RankChanged::decode(payload) else {
            return Some(Vec::new());
        };
        e.reasons.clear();
        Some(e.encode_to_vec())
    } else {
        None
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn stage_reasons_keep_their_codes_and_rank_reasons_go() {
        let words = StageChanged {
            reason: "Qualified on the phone with Ada".into(),
            changed_by: "is0@example.com".into(),
            ..Default::default()
        };
        let code = StageChanged {
            reason: "score_threshold".into(),
            ..Default::default()
        };
        let scrubbed = |e: &StageChanged| {
            let out = scrub_event_payload(&StageChanged::type_url(), &e.encode_to_vec()).unwrap();
            StageChanged::decode(out.as_slice()).unwrap()
        };
        assert_eq!(scrubbed(&words).reason, "");
        assert_eq!(scrubbed(&words).changed_by, "is0@example.com");
        assert_eq!(scrubbed(&code).reason, "score_threshold");
        let rank = RankChanged {
            reasons: vec!["title Chief Zephyr Officer in [..]".into()],
            rule_key: "zephyr".into(),
            ..Default::default()
        };
        let out = scrub_event_payload(&RankChanged::type_url(), &rank.encode_to_vec()).unwrap();
        let rank = RankChanged::decode(out.as_slice()).unwrap();
        assert!(rank.reasons.is_empty());
        assert_eq!(rank.rule_key, "zephyr");
        assert_eq!(scrub_event_payload("type.googleapis.com/other", b"x"), None);
        assert_eq!(
            scrub_event_payload(&StageChanged::type_url(), b"\xff\xff"),
            Some(Vec::new())
        );
    }
}
