//! The KPI engine's facts: each lead's dimensions as captured, counters rolled up per 15-minute
//! slot and dimension group, facts of leads whose capture has not arrived yet (counted without
//! dimensions until it does), and visitors per source and day.

use sea_orm_migration::{prelude::*, schema::*};

#[derive(DeriveMigrationName)]
pub struct Migration;

#[async_trait::async_trait]
impl MigrationTrait for Migration {
    async fn up(&self, manager: &SchemaManager) -> Result<(), DbErr> {
        manager
            .create_table(
                Table::create()
                    .table("lead_dim")
                    .col(string("tenant_id"))
                    .col(string("lead_id"))
                    .col(string("channel"))
                    .col(string("campaign"))
                    // Null until the lead's capture arrives (a later fact may arrive first).
                    .col(timestamp_with_time_zone_null("captured_at"))
                    .primary_key(Index::create().col("tenant_id").col("lead_id"))
                    .to_owned(),
            )
            .await?;
        manager
            .create_table(
                Table::create()
                    .table("kpi_rollup")
                    .col(string("tenant_id"))
                    .col(string("metric"))
                    .col(timestamp_with_time_zone("slot"))
                    .col(string("channel"))
                    .col(string("campaign"))
                    .col(big_integer("value"))
                    .primary_key(
                        Index::create()
                            .col("tenant_id")
                            .col("metric")
                            .col("slot")
                            .col("channel")
                            .col("campaign"),
                    )
                    .to_owned(),
            )
            .await?;
        manager
            .create_table(
                Table::create()
                    .table("kpi_pending")
                    .col(pk_auto("seq").big_integer())
                    .col(string("tenant_id"))
                    .col(string("lead_id"))
                    .col(string("metric"))
                    .col(timestamp_with_time_zone("at"))
                    .col(big_integer("value"))
                    .to_owned(),
            )
            .await?;
        manager
            .create_index(
                Index::create()
                    .name("kpi_pending_by_lead")
                    .table("kpi_pending")
                    .col("tenant_id")
                    .col("lead_id")
                    .to_owned(),
            )
            .await?;
        manager
            .create_table(
                Table::create()
                    .table("visit_day")
                    .col(string("tenant_id"))
                    .col(string("day"))
                    .col(string("channel"))
                    .col(string("campaign"))
                    .col(big_integer("visitors"))
                    .primary_key(
                        Index::create()
                            .col("tenant_id")
                            .col("day")
                            .col("channel")
                            .col("campaign"),
                    )
                    .to_owned(),
            )
            .await
    }

    async fn down(&self, manager: &SchemaManager) -> Result<(), DbErr> {
        for table in ["visit_day", "kpi_pending", "kpi_rollup", "lead_dim"] {
            manager
                .drop_table(Table::drop().table(table).to_owned())
                .await?;
        }
        Ok(())
    }
}
