//! Scorecards: a contract period's attainment frozen at close, both owners' signatures, and the
//! adjustments that reached the period after it closed.

use sea_orm_migration::{prelude::*, schema::*};

#[derive(DeriveMigrationName)]
pub struct Migration;

#[async_trait::async_trait]
impl MigrationTrait for Migration {
    async fn up(&self, manager: &SchemaManager) -> Result<(), DbErr> {
        manager
            .create_table(
                Table::create()
                    .table("scorecard")
                    .col(string("tenant_id"))
                    .col(string("scorecard_id"))
                    .col(string("contract_id"))
                    .col(integer("contract_version"))
                    .col(timestamp_with_time_zone("period_start"))
                    .col(timestamp_with_time_zone("period_end"))
                    .col(blob("attainment"))
                    .col(timestamp_with_time_zone("closed_at"))
                    .col(string("closed_by"))
                    .col(string("is_signed_by"))
                    .col(timestamp_with_time_zone_null("is_signed_at"))
                    .col(string("fs_signed_by"))
                    .col(timestamp_with_time_zone_null("fs_signed_at"))
                    .primary_key(Index::create().col("tenant_id").col("scorecard_id"))
                    .to_owned(),
            )
            .await?;
        manager
            .create_index(
                Index::create()
                    .name("scorecard_period")
                    .table("scorecard")
                    .col("tenant_id")
                    .col("contract_id")
                    .col("period_start")
                    .unique()
                    .to_owned(),
            )
            .await?;
        manager
            .create_table(
                Table::create()
                    .table("scorecard_adjustment")
                    .col(big_pk_auto("seq"))
                    .col(string("tenant_id"))
                    .col(string("scorecard_id"))
                    .col(string("handoff_id"))
                    .col(string("cause"))
                    .col(timestamp_with_time_zone("at"))
                    .col(timestamp_with_time_zone_null("counted_in"))
                    .col(text("delta"))
                    .to_owned(),
            )
            .await?;
        manager
            .create_index(
                Index::create()
                    .name("scorecard_adjustment_card")
                    .table("scorecard_adjustment")
                    .col("tenant_id")
                    .col("scorecard_id")
                    .to_owned(),
            )
            .await
    }

    async fn down(&self, manager: &SchemaManager) -> Result<(), DbErr> {
        for table in ["scorecard_adjustment", "scorecard"] {
            manager
                .drop_table(Table::drop().table(table).to_owned())
                .await?;
        }
        Ok(())
    }
}
