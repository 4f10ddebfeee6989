//! A lead's erasure in distribution: the words people wrote about it (handoff notes, rejection,
//! dispute and ruling notes, lost reasons) and the profile fields routing read go, here and in
//! distribution's own past events; the dead letters about it lose their event. Codes (reason
//! codes, lost reasons that are codes) stay, so the contract's numbers do not change.

use baton_proto::distribution::v1::{Handoff, HandoffChanged};
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

use super::entities::{handoff, handoff_step, lead_signal};

/// Everything distribution keeps that could identify `lead_id`, erased inside `txn`.
pub async fn erase<C: ConnectionTrait>(
    txn: &C,
    tenant: &TenantId,
    lead_id: &str,
) -> Result<(), DbErr> {
    let handoffs = handoff::Entity::find()
        .filter(handoff::Column::TenantId.eq(tenant.as_str()))
        .filter(handoff::Column::LeadId.eq(lead_id))
        .all(txn)
        .await?;
    let ids: Vec<String> = handoffs.iter().map(|h| h.handoff_id.clone()).collect();
    for row in handoffs {
        let mut h: handoff::ActiveModel = row.clone().into();
        h.notes = Set(String::new());
        h.rejection_reason = Set(keep_code(&row.rejection_reason));
        h.lost_reason = Set(keep_code(&row.lost_reason));
        h.update(txn).await?;
    }
    if !ids.is_empty() {
        handoff_step::Entity::update_many()
            .col_expr(handoff_step::Column::Note, Expr::value(String::new()))
            .filter(handoff_step::Column::TenantId.eq(tenant.as_str()))
            .filter(handoff_step::Column::HandoffId.is_in(ids))
            .exec(txn)
            .await?;
    }
    lead_signal::Entity::update_many()
        .col_expr(lead_signal::Column::Fields, Expr::value("{}"))
        .filter(lead_signal::Column::TenantId.eq(tenant.as_str()))
        .filter(lead_signal::Column::LeadId.eq(lead_id))
        .exec(txn)
        .await?;
    EventLog::rewrite_payloads(txn, lead_id, scrub_event_payload).await?;
    forget_dead_letters(txn, tenant, lead_id).await?;
    Ok(())
}

fn scrub_handoff(h: &mut Handoff) {
    h.notes.clear();
    h.rejection_reason = keep_code(&h.rejection_reason);
    h.lost_reason = keep_code(&h.lost_reason);
    for step in &mut h.steps {
        step.note.clear();
    }
}

/// Distribution's events about an erased lead without the words people wrote about it. A
/// payload that does not decode is blanked whole.
pub fn scrub_event_payload(type_url: &str, payload: &[u8]) -> Option<Vec<u8>> {
    if type_url != HandoffChanged::type_url() {
        return None;
    }
    let Ok(mut e) = HandoffChanged::decode(payload) else {
        return Some(Vec::new());
    };
    if let Some(h) = e.handoff.as_mut() {
        scrub_handoff(h);
    }
    if let Some(step) = e.step.as_mut() {
        step.note.clear();
    }
    Some(e.encode_to_vec())
}

#[cfg(test)]
mod tests {
    use baton_proto::distribution::v1::HandoffStep;

    use super::*;

    #[test]
    fn handoff_events_keep_codes_and_lose_words() {
        let event = HandoffChanged {
            handoff: Some(Handoff {
                handoff_id: "h".into(),
                notes: "Demo for Ada".into(),
                rejection_reason: "no_budget".into(),
                lost_reason: "Went with a rival, said Ada".into(),
                steps: vec![HandoffStep {
                    note: "Ada said no".into(),
                    actor: "fs0".into(),
                    ..Default::default()
                }],
                ..Default::default()
            }),
            step: Some(HandoffStep {
                note: "Ada said no".into(),
                ..Default::default()
            }),
        };
        let out = scrub_event_payload(&HandoffChanged::type_url(), &event.encode_to_vec()).unwrap();
        let e = HandoffChanged::decode(out.as_slice()).unwrap();
        let h = e.handoff.unwrap();
        assert_eq!((h.notes.as_str(), h.lost_reason.as_str()), ("", ""));
        assert_eq!(h.rejection_reason, "no_budget");
        assert_eq!(
            (h.steps[0].note.as_str(), h.steps[0].actor.as_str()),
            ("", "fs0")
        );
        assert_eq!(e.step.unwrap().note, "");
        assert_eq!(scrub_event_payload("type.googleapis.com/x", b"1"), None);
    }
}
