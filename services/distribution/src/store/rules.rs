//! The tenant's routing rule list, as stored (one versioned row per tenant).

use baton_shared::TenantId;
use sea_orm::{ConnectionTrait, DbErr, EntityTrait};

use super::entities::routing_ruleset;
use crate::domain::routing::Rules;

/// The tenant's rules and their version (none set: version 0, no rules).
pub async fn rules_of<C: ConnectionTrait>(
    db: &C,
    tenant: &TenantId,
) -> Result<Option<(routing_ruleset::Model, Rules)>, DbErr> {
    static PARSED: baton_shared::parse_cache::ParseCache<String, Rules> =
        baton_shared::parse_cache::ParseCache::new();
    let Some(row) = routing_ruleset::Entity::find_by_id(tenant.to_string())
        .one(db)
        .await?
    else {
        return Ok(None);
    };
    let rules = PARSED
        .get_or_parse(&row.definition, || serde_json::from_str(&row.definition))
        .map_err(|e| DbErr::Custom(format!("routing rules: {e}")))?;
    Ok(Some((row, (*rules).clone())))
}
