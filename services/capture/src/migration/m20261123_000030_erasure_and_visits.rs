//! Erasure marker on leads, and anonymous visit counts per source and day.

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
                    .add_column(timestamp_with_time_zone_null("erased_at"))
                    .to_owned(),
            )
            .await?;
        manager
            .create_table(
                Table::create()
                    .table("visit_count")
                    .col(big_pk_auto("seq"))
                    .col(string("tenant_id"))
                    .col(string("channel"))
                    .col(string("campaign"))
                    .col(string("day"))
                    .col(big_integer("visitors"))
                    .col(timestamp_with_time_zone("updated_at"))
                    .to_owned(),
            )
            .await?;
        manager
            .create_index(
                Index::create()
                    .name("ux_visit_count_source_day")
                    .table("visit_count")
                    .col("tenant_id")
                    .col("channel")
                    .col("campaign")
                    .col("day")
                    .unique()
                    .to_owned(),
            )
            .await
    }
}
