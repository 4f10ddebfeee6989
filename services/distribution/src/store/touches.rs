//! The tenant's touch rules, as stored: one versioned row per tenant, the defaults seeded on
//! first read.

use baton_shared::{TenantId, Violations, time};
use sea_orm::{ActiveValue::Set, ConnectionTrait, DbErr, EntityTrait, TransactionTrait};

use super::{Store, entities::touch_ruleset};
use crate::domain::touches::{self, TouchRules};
use crate::error::Error;

/// The tenant's touch rules and their row (version, time), seeding the defaults on first use.
pub async fn touch_rules<C: ConnectionTrait>(
    db: &C,
    tenant: &TenantId,
) -> Result<(touch_ruleset::Model, TouchRules), DbErr> {
    let row = match touch_ruleset::Entity::find_by_id(tenant.to_string())
        .one(db)
        .await?
    {
        Some(row) => row,
        None => {
            touch_ruleset::Entity::insert(touch_ruleset::ActiveModel {
                tenant_id: Set(tenant.to_string()),
                version: Set(1),
                definition: Set(definition_of(&TouchRules::default())?),
                updated_at: Set(time::now()),
            })
            .on_conflict_do_nothing_on([touch_ruleset::Column::TenantId])
            .exec(db)
            .await?;
            touch_ruleset::Entity::find_by_id(tenant.to_string())
                .one(db)
                .await?
                .ok_or_else(|| DbErr::RecordNotFound("touch rules just seeded".into()))?
        }
    };
    let names: Vec<String> = serde_json::from_str(&row.definition)
        .map_err(|e| DbErr::Custom(format!("stored touch rules: {e}")))?;
    Ok((row, TouchRules::from_names(&names)))
}

fn definition_of(rules: &TouchRules) -> Result<String, DbErr> {
    serde_json::to_string(&rules.names()).map_err(|e| DbErr::Custom(e.to_string()))
}

impl Store {
    pub async fn touch_rules(
        &self,
        tenant: &TenantId,
    ) -> Result<(touch_ruleset::Model, TouchRules), Error> {
        Ok(touch_rules(&self.db, tenant).await?)
    }

    /// Replaces the touch rules (validated whole) with a new version.
    pub async fn set_touch_rules(
        &self,
        tenant: &TenantId,
        rules: &TouchRules,
        expected_version: i32,
    ) -> Result<(touch_ruleset::Model, TouchRules), Error> {
        let mut violations = Violations::new();
        for (field, description) in touches::validate(rules) {
            violations.add(field, description);
        }
        violations.into_result()?;
        let txn = self.db.begin().await?;
        let (current, _) = touch_rules(&txn, tenant).await?;
        if expected_version != 0 && expected_version != current.version {
            return Err(Error::RuleBroken {
                rule: "version_conflict".into(),
                description: format!(
                    "touch rules are at version {}, not {expected_version}",
                    current.version
                ),
            });
        }
        let version = current.version + 1;
        let mut row: touch_ruleset::ActiveModel = current.into();
        row.version = Set(version);
        row.definition = Set(definition_of(rules)?);
        row.updated_at = Set(time::now());
        let saved = sea_orm::ActiveModelTrait::update(row, &txn).await?;
        txn.commit().await?;
        Ok((saved, rules.clone()))
    }
}
