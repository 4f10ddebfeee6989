//! The activity outbox: what nurture must record in capture (EMAIL_DELIVERED, EMAIL_BOUNCED,
//! EMAIL_OPENED, EMAIL_CLICKED, EMAIL_UNSUBSCRIBED), written in the transaction of the touch it
//! comes from and sent by the relay with an idempotency key, so nothing is lost or recorded twice.

use baton_proto::capture::v1::ActivityKind;
use baton_shared::time;
use chrono::{DateTime, Duration, Utc};
use sea_orm::{
    ActiveValue::NotSet, ConnectionTrait, DbErr, EntityTrait, QueryFilter, QueryOrder, QuerySelect,
    Set, prelude::*,
};

use super::entities::activity_outbox;

/// One activity for capture.
#[derive(Debug, Clone)]
pub struct Activity {
    pub tenant: String,
    pub lead_id: String,
    /// Unique per activity: `nurture:<touch id>`.
    pub idempotency_key: String,
    pub kind: ActivityKind,
    pub at: DateTime<Utc>,
    /// The e-mail's subject: `<sequence key>/<step id>`.
    pub subject: String,
    pub url: String,
    pub machine_reason: Option<String>,
}

fn row(a: &Activity) -> activity_outbox::ActiveModel {
    activity_outbox::ActiveModel {
        seq: NotSet,
        tenant_id: Set(a.tenant.clone()),
        idempotency_key: Set(a.idempotency_key.clone()),
        lead_id: Set(a.lead_id.clone()),
        kind: Set(a.kind as i32),
        occurred_at: Set(a.at),
        subject: Set(a.subject.clone()),
        url: Set(a.url.clone()),
        machine_reason: Set(a.machine_reason.clone()),
        attempts: Set(0),
        next_attempt_at: Set(time::now()),
        last_error: Set(String::new()),
    }
}

pub async fn push_many<C: ConnectionTrait>(db: &C, activities: &[Activity]) -> Result<(), DbErr> {
    if activities.is_empty() {
        return Ok(());
    }
    activity_outbox::Entity::insert_many(activities.iter().map(row))
        .exec(db)
        .await?;
    Ok(())
}

/// Rows due for sending, oldest first.
pub async fn due<C: ConnectionTrait>(
    db: &C,
    limit: u64,
) -> Result<Vec<activity_outbox::Model>, DbErr> {
    activity_outbox::Entity::find()
        .filter(activity_outbox::Column::NextAttemptAt.lte(time::now()))
        .order_by_asc(activity_outbox::Column::Seq)
        .limit(limit)
        .all(db)
        .await
}

/// Rows capture has recorded.
pub async fn delete<C: ConnectionTrait>(db: &C, seqs: &[i64]) -> Result<(), DbErr> {
    if seqs.is_empty() {
        return Ok(());
    }
    activity_outbox::Entity::delete_many()
        .filter(activity_outbox::Column::Seq.is_in(seqs.iter().copied()))
        .exec(db)
        .await?;
    Ok(())
}

/// A row capture could not take now: try again later (doubling, at most an hour).
pub async fn retry_later<C: ConnectionTrait>(
    db: &C,
    row: &activity_outbox::Model,
    error: &str,
) -> Result<(), DbErr> {
    let attempts = row.attempts.saturating_add(1);
    let backoff = Duration::seconds(1_i64 << attempts.clamp(0, 12)).min(Duration::hours(1));
    activity_outbox::Entity::update_many()
        .col_expr(activity_outbox::Column::Attempts, Expr::value(attempts))
        .col_expr(
            activity_outbox::Column::NextAttemptAt,
            Expr::value(time::now() + backoff),
        )
        .col_expr(
            activity_outbox::Column::LastError,
            Expr::value(error.chars().take(500).collect::<String>()),
        )
        .filter(activity_outbox::Column::Seq.eq(row.seq))
        .exec(db)
        .await?;
    Ok(())
}
