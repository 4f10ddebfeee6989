//! The KPI engine's facts: each lead's dimensions as captured, counters rolled up per 15-minute
//! slot and dimension group, and visitors per source and day.

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
                    .col(timestamp_with_time_zone("captured_at"))
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
        for table in ["visit_day", "kpi_rollup", "lead_dim"] {
            manager
                .drop_table(Table::drop().table(table).to_owned())
                .await?;
        }
        Ok(())
    }
}
