//! The tenant's stage rules, as stored: one versioned row per tenant, the defaults seeded on first
//! read.

use baton_shared::{TenantId, Violations, time};
use sea_orm::{ActiveModelTrait, ActiveValue::Set, ConnectionTrait, DbErr, EntityTrait};

use super::entities::stage_ruleset;
use crate::domain::stages::{self, StageRules, StoredStageRules};
use crate::error::Error;

/// The tenant's stage rules and their row (version, time), seeding the defaults on first use.
pub async fn stage_rules<C: ConnectionTrait>(
    db: &C,
    tenant: &TenantId,
) -> Result<(stage_ruleset::Model, StageRules), DbErr> {
    let row = match stage_ruleset::Entity::find_by_id(tenant.to_string())
        .one(db)
        .await?
    {
        Some(row) => row,
        None => {
            stage_ruleset::Entity::insert(stage_ruleset::ActiveModel {
                tenant_id: Set(tenant.to_string()),
                version: Set(1),
                definition: Set(definition_of(&StageRules::default())?),
                updated_at: Set(time::now()),
            })
            .on_conflict_do_nothing_on([stage_ruleset::Column::TenantId])
            .exec(db)
            .await?;
            stage_ruleset::Entity::find_by_id(tenant.to_string())
                .one(db)
                .await?
                .ok_or_else(|| DbErr::RecordNotFound("stage rules just seeded".into()))?
        }
    };
    let stored: StoredStageRules = serde_json::from_str(&row.definition)
        .map_err(|e| DbErr::Custom(format!("stored stage rules: {e}")))?;
    Ok((row, StageRules::from_stored(&stored)))
}

fn definition_of(rules: &StageRules) -> Result<String, DbErr> {
    serde_json::to_string(&rules.to_stored()).map_err(|e| DbErr::Custom(e.to_string()))
}

/// Replaces the tenant's stage rules (validated whole) with a new version.
pub async fn set_stage_rules<C: ConnectionTrait>(
    txn: &C,
    tenant: &TenantId,
    rules: &StageRules,
    expected_version: i32,
) -> Result<stage_ruleset::Model, Error> {
    let mut violations = Violations::new();
    for (field, description) in stages::validate_rules(rules) {
        violations.add(field, description);
    }
    violations.into_result()?;
    let (current, _) = stage_rules(txn, tenant).await?;
    if expected_version != 0 && expected_version != current.version {
        return Err(Error::RuleBroken {
            rule: "version_conflict".into(),
            description: format!(
                "stage rules are at version {}, not {expected_version}",
                current.version
            ),
        });
    }
    let version = current.version + 1;
    let mut row: stage_ruleset::ActiveModel = current.into();
    row.version = Set(version);
    row.definition = Set(definition_of(rules)?);
    row.updated_at = Set(time::now());
    Ok(row.update(txn).await?)
}
