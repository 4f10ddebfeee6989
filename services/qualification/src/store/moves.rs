//! Stage moves: each with a history row and a `StageChanged` event saying why and who.

use baton_proto::qualification::v1::{Stage, StageChanged};
use baton_shared::{TenantId, events::EventLog, time};
use chrono::{DateTime, Utc};
use sea_orm::{
    ActiveValue::{NotSet, Set},
    ConnectionTrait, DbErr,
    prelude::*,
};

use super::entities::{lead_score, stage_history};

/// Why and by whom automatic stage changes happen (the reason/changed_by of their history).
pub const REASON_SCORE_THRESHOLD: &str = "score_threshold";
pub const REASON_BANT_COMPLETE: &str = "bant_complete";
pub const ACTOR_SCORING: &str = "scoring";

/// Moves a lead to `to`, with a history row and a `StageChanged` event saying why and who.
pub async fn move_stage<C: ConnectionTrait>(
    txn: &C,
    tenant: &TenantId,
    current: lead_score::Model,
    to: Stage,
    reason: &str,
    changed_by: &str,
) -> Result<(), DbErr> {
    let from = Stage::try_from(current.stage).unwrap_or(Stage::Lead);
    let now = time::now();
    let mut row: lead_score::ActiveModel = current.into();
    row.stage = Set(to as i32);
    row.updated_at = Set(now);
    let updated = row.update(txn).await?;
    record_move(txn, tenant, &updated, from, to, reason, changed_by, now).await
}

/// The history row and `StageChanged` event of a stage move already stored on `moved`.
#[allow(clippy::too_many_arguments)]
pub(super) async fn record_move<C: ConnectionTrait>(
    txn: &C,
    tenant: &TenantId,
    moved: &lead_score::Model,
    from: Stage,
    to: Stage,
    reason: &str,
    changed_by: &str,
    now: DateTime<Utc>,
) -> Result<(), DbErr> {
    let (history, event) = move_of(moved, from, to, reason, changed_by, now);
    history.insert(txn).await?;
    EventLog::append(txn, tenant, &moved.lead_id, &event).await
}

/// The history row and the `StageChanged` event of a stage move.
pub(super) fn move_of(
    moved: &lead_score::Model,
    from: Stage,
    to: Stage,
    reason: &str,
    changed_by: &str,
    now: DateTime<Utc>,
) -> (stage_history::ActiveModel, StageChanged) {
    let history = stage_history::ActiveModel {
        seq: NotSet,
        tenant_id: Set(moved.tenant_id.clone()),
        lead_id: Set(moved.lead_id.clone()),
        from_stage: Set(from as i32),
        to_stage: Set(to as i32),
        score: Set(moved.score),
        changed_at: Set(now),
        reason: Set(reason.to_owned()),
        changed_by: Set(changed_by.to_owned()),
    };
    let event = StageChanged {
        lead_id: moved.lead_id.clone(),
        from_stage: from as i32,
        to_stage: to as i32,
        score: moved.score,
        model_id: moved.model_id.clone(),
        model_version: moved.model_version,
        changed_at: Some(time::to_proto(now)),
        reason: reason.to_owned(),
        changed_by: changed_by.to_owned(),
    };
    (history, event)
}
