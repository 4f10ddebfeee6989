//! A tenant's nurture settings, one row per version (the defaults until the first change).

use baton_shared::{TenantId, time};
use sea_orm::{
    ActiveModelTrait, ActiveValue::NotSet, ConnectionTrait, DbErr, EntityTrait, QueryFilter,
    QueryOrder, Set, TransactionTrait, prelude::*,
};

use super::{Store, entities::settings};
use crate::{domain::settings::NurtureSettings, error::Error};

/// The settings in force and their version (1 = the defaults, never stored).
#[derive(Debug, Clone, PartialEq)]
pub struct Versioned {
    pub version: i32,
    pub settings: NurtureSettings,
    pub updated_at: Option<DateTimeUtc>,
}

/// The tenant's settings in force.
pub async fn current<C: ConnectionTrait>(db: &C, tenant: &str) -> Result<Versioned, DbErr> {
    let row = settings::Entity::find()
        .filter(settings::Column::TenantId.eq(tenant))
        .order_by_desc(settings::Column::Version)
        .one(db)
        .await?;
    Ok(match row {
        None => Versioned {
            version: 1,
            settings: NurtureSettings::default(),
            updated_at: None,
        },
        Some(r) => Versioned {
            version: r.version,
            settings: serde_json::from_str(&r.body)
                .map_err(|e| DbErr::Custom(format!("nurture settings v{}: {e}", r.version)))?,
            updated_at: Some(r.updated_at),
        },
    })
}

impl Store {
    pub async fn settings(&self, tenant: &TenantId) -> Result<Versioned, Error> {
        Ok(current(&self.db, tenant.as_str()).await?)
    }

    /// Stores `next` as the next version (validated by the caller).
    pub async fn set_settings(
        &self,
        tenant: &TenantId,
        next: &NurtureSettings,
        expected_version: i32,
    ) -> Result<Versioned, Error> {
        let txn = self.db.begin().await?;
        let now = current(&txn, tenant.as_str()).await?;
        if expected_version != 0 && expected_version != now.version {
            return Err(Error::rule(
                "version_conflict",
                format!(
                    "the settings are at version {}, not {expected_version}",
                    now.version
                ),
            ));
        }
        let at = time::now();
        settings::ActiveModel {
            seq: NotSet,
            tenant_id: Set(tenant.to_string()),
            version: Set(now.version + 1),
            body: Set(serde_json::to_string(next).map_err(|e| DbErr::Custom(e.to_string()))?),
            updated_at: Set(at),
        }
        .insert(&txn)
        .await?;
        txn.commit().await?;
        Ok(Versioned {
            version: now.version + 1,
            settings: next.clone(),
            updated_at: Some(at),
        })
    }
}
