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

/// The tenant's current condition (version 0, nothing set, when none was given).
pub async fn current<C: ConnectionTrait>(
    db: &C,
    tenant: &TenantId,
) -> Result<TargetAccounts, DbErr> {
    if let Some(cached) = super::kpis::cached_accounts(tenant) {
        return Ok(cached);
    }
    let latest = target_accounts::Entity::find()
        .filter(target_accounts::Column::TenantId.eq(tenant.as_str()))
        .order_by_desc(target_accounts::Column::Version)
        .one(db)
        .await?;
    let accounts = latest
        .and_then(|r| TargetAccounts::decode(r.rules.as_slice()).ok())
        .unwrap_or_default();
    super::kpis::cache_accounts(tenant, &accounts);
    Ok(accounts)
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
