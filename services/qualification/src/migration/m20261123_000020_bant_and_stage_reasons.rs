//! BANT per lead, and who/why on every stage change.

use sea_orm_migration::{prelude::*, schema::*};

#[derive(DeriveMigrationName)]
pub struct Migration;

#[async_trait::async_trait]
impl MigrationTrait for Migration {
    async fn up(&self, manager: &SchemaManager) -> Result<(), DbErr> {
        for column in [
            string("reason").default("").to_owned(),
            string("changed_by").default("").to_owned(),
        ] {
            manager
                .alter_table(
                    Table::alter()
                        .table("stage_history")
                        .add_column(column)
                        .to_owned(),
                )
                .await?;
        }
        manager
            .create_index(
                Index::create()
                    .name("ix_stage_history_tenant_lead")
                    .table("stage_history")
                    .col("tenant_id")
                    .col("lead_id")
                    .to_owned(),
            )
            .await?;
        manager
            .create_table(
                Table::create()
                    .table("lead_bant")
                    .col(string("tenant_id"))
                    .col(string("lead_id"))
                    .col(boolean("budget"))
                    .col(text("budget_note"))
                    .col(boolean("authority"))
                    .col(text("authority_note"))
                    .col(boolean("need"))
                    .col(text("need_note"))
                    .col(boolean("timeframe"))
                    .col(text("timeframe_note"))
                    .col(string("recorded_by"))
                    .col(timestamp_with_time_zone("updated_at"))
                    .primary_key(Index::create().col("tenant_id").col("lead_id"))
                    .to_owned(),
            )
            .await
    }
}
