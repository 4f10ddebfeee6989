//! The tenant's target-account condition, every version.

use baton_proto::reporting::v1::TargetAccounts;
use baton_shared::TenantId;
use prost::Message;
use sea_orm::{
    ActiveModelTrait, ActiveValue::Set, ConnectionTrait, DbErr, EntityTrait, QueryFilter,
    QueryOrder, TransactionTrait, prelude::*,
};

use super::{Store, entities::target_accounts};
use crate::error::Error;

/// Every version of the tenant's condition, oldest first (read once per batch).
async fn versions<C: ConnectionTrait>(
    db: &C,
    tenant: &TenantId,
) -> Result<Vec<TargetAccounts>, DbErr> {
    if let Some(cached) = super::kpis::cached_accounts(tenant) {
        return Ok(cached);
    }
    let rows = target_accounts::Entity::find()
        .filter(target_accounts::Column::TenantId.eq(tenant.as_str()))
        .order_by_asc(target_accounts::Column::Version)
        .all(db)
        .await?;
    let all: Vec<TargetAccounts> = rows
        .iter()
        .filter_map(|r| TargetAccounts::decode(r.rules.as_slice()).ok())
        .collect();
    super::kpis::cache_accounts(tenant, &all);
    Ok(all)
}

/// The tenant's current condition (version 0, nothing set, when none was given).
pub async fn current<C: ConnectionTrait>(
    db: &C,
    tenant: &TenantId,
) -> Result<TargetAccounts, DbErr> {
    Ok(versions(db, tenant).await?.pop().unwrap_or_default())
}

/// The condition in force at `at`: the latest version set at or before it (none before the
/// first), so a lead is judged by the condition of the moment it was captured, however late
/// reporting applies its capture.
pub async fn condition_at<C: ConnectionTrait>(
    db: &C,
    tenant: &TenantId,
    at: chrono::DateTime<chrono::Utc>,
) -> Result<TargetAccounts, DbErr> {
    let all = versions(db, tenant).await?;
    Ok(all
        .into_iter()
        .rev()
        .find(|v| {
            v.updated_at
                .as_ref()
                .and_then(baton_shared::time::from_proto)
                .is_some_and(|set| set <= at)
        })
        .unwrap_or_default())
}

impl Store {
    pub async fn target_accounts(&self, tenant: &TenantId) -> Result<TargetAccounts, Error> {
        Ok(current(&self.db, tenant).await?)
    }

    /// Stores `accounts` as the next version if the current one is `expected_version` (0: do not
    /// check).
    pub async fn set_target_accounts(
        &self,
        tenant: &TenantId,
        accounts: TargetAccounts,
        expected_version: i32,
    ) -> Result<TargetAccounts, Error> {
        let txn = self.db.begin().await?;
        let now = current(&txn, tenant).await?;
        if expected_version != 0 && expected_version != now.version {
            return Err(Error::rule(
                "version_changed",
                format!(
                    "the target accounts are at version {}, not {expected_version}",
                    now.version
                ),
            ));
        }
        let saved = TargetAccounts {
            version: now.version + 1,
            updated_at: Some(baton_shared::time::to_proto(baton_shared::time::now())),
            ..accounts
        };
        target_accounts::ActiveModel {
            tenant_id: Set(tenant.to_string()),
            version: Set(saved.version),
            rules: Set(saved.encode_to_vec()),
        }
        .insert(&txn)
        .await?;
        txn.commit().await?;
        Ok(saved)
    }
}
