//! The tenant's versions of KPI parameters (version 1 is the catalogue's defaults and is not
//! stored).

use baton_shared::{TenantId, time};
use sea_orm::{
    ActiveModelTrait, ActiveValue::Set, EntityTrait, QueryFilter, QueryOrder, TransactionTrait,
    prelude::*,
};

use super::{Store, entities::kpi_version};
use crate::error::Error;

/// `name=value` lines.
fn encode(values: &[(String, f64)]) -> String {
    values.iter().map(|(n, v)| format!("{n}={v}\n")).collect()
}

pub fn decode(text: &str) -> Vec<(String, f64)> {
    text.lines()
        .filter_map(|l| {
            let (n, v) = l.split_once('=')?;
            Some((n.to_owned(), v.parse().ok()?))
        })
        .collect()
}

/// A KPI's current version for a tenant and its parameter values.
#[derive(Debug, Clone, PartialEq)]
pub struct Current {
    pub kpi: String,
    pub version: i32,
    pub values: Vec<(String, f64)>,
}

impl Store {
    /// Every KPI the tenant changed: its latest version.
    pub async fn kpi_versions(&self, tenant: &TenantId) -> Result<Vec<Current>, Error> {
        let rows = kpi_version::Entity::find()
            .filter(kpi_version::Column::TenantId.eq(tenant.as_str()))
            .order_by_asc(kpi_version::Column::Kpi)
            .order_by_desc(kpi_version::Column::Version)
            .all(&self.db)
            .await?;
        let mut out: Vec<Current> = Vec::new();
        for r in rows {
            if out.last().is_none_or(|c| c.kpi != r.kpi) {
                out.push(Current {
                    kpi: r.kpi,
                    version: r.version,
                    values: decode(&r.parameters),
                });
            }
        }
        Ok(out)
    }

    /// Stores `values` (all of the KPI's parameters) as the next version, if the current one is
    /// `expected_version` (0: do not check).
    pub async fn update_kpi_parameters(
        &self,
        tenant: &TenantId,
        kpi: &str,
        values: &[(String, f64)],
        expected_version: i32,
        updated_by: &str,
    ) -> Result<i32, Error> {
        let txn = self.db.begin().await?;
        let latest = kpi_version::Entity::find()
            .filter(kpi_version::Column::TenantId.eq(tenant.as_str()))
            .filter(kpi_version::Column::Kpi.eq(kpi))
            .order_by_desc(kpi_version::Column::Version)
            .one(&txn)
            .await?;
        let current = latest.map_or(1, |l| l.version);
        if expected_version != 0 && expected_version != current {
            return Err(Error::rule(
                "version_changed",
                format!("{kpi} is at version {current}, not {expected_version}"),
            ));
        }
        kpi_version::ActiveModel {
            tenant_id: Set(tenant.to_string()),
            kpi: Set(kpi.to_owned()),
            version: Set(current + 1),
            parameters: Set(encode(values)),
            updated_by: Set(updated_by.to_owned()),
            updated_at: Set(time::now()),
        }
        .insert(&txn)
        .await?;
        txn.commit().await?;
        Ok(current + 1)
    }
}
