//! Scoring models as versioned data: a model's definition is one JSON document with a status
//! (draft / active / retired) and recompute progress; qualification keeps each lead's activities
//! so any model can be (re)applied to the whole history; score entries carry their expiry; scores
//! and ranks record when they next change by themselves.
//!
//! Models stored as rule rows by the first migration are converted to definitions and the rule
//! table is dropped.

use std::collections::BTreeMap;

use baton_proto::{
    capture::v1::{ActivityKind, PageKind},
    qualification::v1::ModelStatus,
};
use sea_orm::{ConnectionTrait, Statement, Value};
use sea_orm_migration::{prelude::*, schema::*};

use crate::domain::scoring::{ModelDefinition, RuleDefinition};

#[derive(DeriveMigrationName)]
pub struct Migration;

#[async_trait::async_trait]
impl MigrationTrait for Migration {
    async fn up(&self, manager: &SchemaManager) -> Result<(), DbErr> {
        manager
            .create_table(
                Table::create()
                    .table("lead_activity")
                    .col(big_pk_auto("seq"))
                    .col(string("tenant_id"))
                    .col(string("lead_id"))
                    .col(string("activity_id"))
                    .col(integer("kind"))
                    .col(integer("page_kind"))
                    .col(text("url"))
                    .col(timestamp_with_time_zone("occurred_at"))
                    .to_owned(),
            )
            .await?;
        manager
            .create_index(
                Index::create()
                    .name("ux_lead_activity_tenant_activity")
                    .table("lead_activity")
                    .col("tenant_id")
                    .col("activity_id")
                    .unique()
                    .to_owned(),
            )
            .await?;
        manager
            .create_index(
                Index::create()
                    .name("ix_lead_activity_tenant_lead")
                    .table("lead_activity")
                    .col("tenant_id")
                    .col("lead_id")
                    .to_owned(),
            )
            .await?;
        for column in [
            integer("status")
                .default(ModelStatus::Draft as i32)
                .to_owned(),
            text("definition").default("").to_owned(),
            string("created_by").default("").to_owned(),
            timestamp_with_time_zone_null("activated_at").to_owned(),
            string("activated_by").default("").to_owned(),
            integer("recompute_state").default(0).to_owned(),
            big_integer("recompute_total").default(0).to_owned(),
            big_integer("recompute_done").default(0).to_owned(),
            big_integer("recompute_cursor").default(0).to_owned(),
            timestamp_with_time_zone_null("recompute_started_at").to_owned(),
            timestamp_with_time_zone_null("recompute_finished_at").to_owned(),
            timestamp_with_time_zone_null("recompute_lease_until").to_owned(),
        ] {
            manager
                .alter_table(
                    Table::alter()
                        .table("scoring_model")
                        .add_column(column)
                        .to_owned(),
                )
                .await?;
        }
        convert_rule_rows(manager).await?;
        manager
            .drop_table(Table::drop().table("scoring_rule").to_owned())
            .await?;
        manager
            .alter_table(
                Table::alter()
                    .table("scoring_model")
                    .drop_column("active")
                    .to_owned(),
            )
            .await?;
        manager
            .drop_index(
                Index::drop()
                    .name("ux_score_entry_activity_rule")
                    .table("score_entry")
                    .to_owned(),
            )
            .await?;
        for column in [
            timestamp_with_time_zone_null("expires_at").to_owned(),
            integer("trigger").default(2).to_owned(),
            text("detail").default("").to_owned(),
        ] {
            manager
                .alter_table(
                    Table::alter()
                        .table("score_entry")
                        .add_column(column)
                        .to_owned(),
                )
                .await?;
        }
        for table in ["lead_score", "lead_rank"] {
            manager
                .alter_table(
                    Table::alter()
                        .table(table)
                        .add_column(timestamp_with_time_zone_null("next_change_at"))
                        .to_owned(),
                )
                .await?;
        }
        manager
            .create_index(
                Index::create()
                    .name("ix_lead_rank_next_change")
                    .table("lead_rank")
                    .col("next_change_at")
                    .to_owned(),
            )
            .await?;
        manager
            .create_index(
                Index::create()
                    .name("ix_lead_score_next_change")
                    .table("lead_score")
                    .col("next_change_at")
                    .to_owned(),
            )
            .await
    }
}

/// Turns each model's rule rows (first schema) into a definition document.
async fn convert_rule_rows(manager: &SchemaManager<'_>) -> Result<(), DbErr> {
    let db = manager.get_connection();
    let backend = db.get_database_backend();
    let models = db
        .query_all_raw(Statement::from_string(
            backend,
            "SELECT model_id, mql_threshold, active FROM scoring_model",
        ))
        .await?;
    let rules = db
        .query_all_raw(Statement::from_string(
            backend,
            "SELECT model_id, rule_key, description, activity_kind, page_kind, points \
             FROM scoring_rule ORDER BY seq",
        ))
        .await?;
    let mut by_model: BTreeMap<String, Vec<RuleDefinition>> = BTreeMap::new();
    for r in rules {
        let page_kind: i32 = r.try_get("", "page_kind")?;
        let activity_kind: i32 = r.try_get("", "activity_kind")?;
        by_model
            .entry(r.try_get("", "model_id")?)
            .or_default()
            .push(RuleDefinition {
                key: r.try_get("", "rule_key")?,
                description: r.try_get("", "description")?,
                points: r.try_get("", "points")?,
                activity_kind: ActivityKind::try_from(activity_kind)
                    .ok()
                    .map(|k| k.as_str_name().to_owned()),
                page_kind: PageKind::try_from(page_kind)
                    .ok()
                    .filter(|p| *p != PageKind::Unspecified)
                    .map(|p| p.as_str_name().to_owned()),
                ..Default::default()
            });
    }
    for m in models {
        let model_id: String = m.try_get("", "model_id")?;
        let active: bool = m.try_get("", "active")?;
        let definition = ModelDefinition {
            mql_threshold: m.try_get("", "mql_threshold")?,
            rules: by_model.remove(&model_id).unwrap_or_default(),
        };
        let status = if active {
            ModelStatus::Active
        } else {
            ModelStatus::Retired
        };
        db.execute_raw(Statement::from_sql_and_values(
            backend,
            match backend {
                sea_orm::DatabaseBackend::Postgres => {
                    "UPDATE scoring_model SET definition = $1, status = $2 WHERE model_id = $3"
                }
                _ => "UPDATE scoring_model SET definition = ?, status = ? WHERE model_id = ?",
            },
            [
                Value::from(definition.to_json()),
                Value::from(status as i32),
                Value::from(model_id),
            ],
        ))
        .await?;
    }
    Ok(())
}
