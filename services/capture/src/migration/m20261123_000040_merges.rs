//! Merged leads point at their survivor.

use sea_orm_migration::{prelude::*, schema::*};

#[derive(DeriveMigrationName)]
pub struct Migration;

#[async_trait::async_trait]
impl MigrationTrait for Migration {
    async fn up(&self, manager: &SchemaManager) -> Result<(), DbErr> {
        manager
            .alter_table(
                Table::alter()
                    .table("lead")
                    .add_column(string_null("merged_into"))
                    .to_owned(),
            )
            .await?;
        manager
            .alter_table(
                Table::alter()
                    .table("lead")
                    .add_column(timestamp_with_time_zone_null("merged_at"))
                    .to_owned(),
            )
            .await?;
        manager
            .create_index(
                Index::create()
                    .name("ix_lead_tenant_merged_into")
                    .table("lead")
                    .col("tenant_id")
                    .col("merged_into")
                    .to_owned(),
            )
            .await
    }
}
