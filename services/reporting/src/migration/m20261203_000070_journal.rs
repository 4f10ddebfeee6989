//! Each lead's journal: one row per decision reporting hears of, read in time order.

use sea_orm_migration::{prelude::*, schema::*};

#[derive(DeriveMigrationName)]
pub struct Migration;

#[async_trait::async_trait]
impl MigrationTrait for Migration {
    async fn up(&self, manager: &SchemaManager) -> Result<(), DbErr> {
        manager
            .create_table(
                Table::create()
                    .table("journal_entry")
                    .col(big_pk_auto("seq"))
                    .col(string("tenant_id"))
                    .col(string("lead_id"))
                    .col(timestamp_with_time_zone("at"))
                    .col(string("service"))
                    .col(string("kind"))
                    .col(string("actor"))
                    .col(text("details"))
                    .col(timestamp_with_time_zone("recorded_at"))
                    .to_owned(),
            )
            .await?;
        manager
            .create_index(
                Index::create()
                    .name("journal_entry_lead")
                    .table("journal_entry")
                    .col("tenant_id")
                    .col("lead_id")
                    .col("at")
                    .to_owned(),
            )
            .await
    }

    async fn down(&self, manager: &SchemaManager) -> Result<(), DbErr> {
        manager
            .drop_table(Table::drop().table("journal_entry").to_owned())
            .await
    }
}
