//! Where each round-robin rotation stands: the last rep picked, per tenant (no rules) or per team.

use baton_shared::TenantId;
use sea_orm::{ActiveValue::Set, ConnectionTrait, DbErr, EntityTrait, sea_query::OnConflict};

use super::entities::{rotation, team_rotation};

/// The sequence number of the rep a rotation picked last, if any.
pub async fn last_pick<C: ConnectionTrait>(
    txn: &C,
    tenant: &TenantId,
    team_id: &str,
) -> Result<Option<i64>, DbErr> {
    if team_id.is_empty() {
        return Ok(rotation::Entity::find_by_id(tenant.to_string())
            .one(txn)
            .await?
            .map(|r| r.last_rep_seq));
    }
    Ok(
        team_rotation::Entity::find_by_id((tenant.to_string(), team_id.to_owned()))
            .one(txn)
            .await?
            .map(|r| r.last_rep_seq),
    )
}

/// Records the rep a rotation picked.
pub async fn set_last_pick<C: ConnectionTrait>(
    txn: &C,
    tenant: &TenantId,
    team_id: &str,
    seq: i64,
) -> Result<(), DbErr> {
    if team_id.is_empty() {
        rotation::Entity::insert(rotation::ActiveModel {
            tenant_id: Set(tenant.to_string()),
            last_rep_seq: Set(seq),
        })
        .on_conflict(
            OnConflict::column(rotation::Column::TenantId)
                .update_column(rotation::Column::LastRepSeq)
                .to_owned(),
        )
        .exec(txn)
        .await?;
    } else {
        team_rotation::Entity::insert(team_rotation::ActiveModel {
            tenant_id: Set(tenant.to_string()),
            team_id: Set(team_id.to_owned()),
            last_rep_seq: Set(seq),
        })
        .on_conflict(
            OnConflict::columns([
                team_rotation::Column::TenantId,
                team_rotation::Column::TeamId,
            ])
            .update_column(team_rotation::Column::LastRepSeq)
            .to_owned(),
        )
        .exec(txn)
        .await?;
    }
    Ok(())
}
