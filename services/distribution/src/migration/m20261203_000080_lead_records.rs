//! What a handoff checks of its lead beyond score and rank: qualification's BANT record, and
//! whether capture erased the lead or merged it into another (`lead_record`); and the tenant's
//! handoff settings (`handoff_settings`, one versioned row per tenant).

use sea_orm_migration::{prelude::*, schema::*};

#[derive(DeriveMigrationName)]
pub struct Migration;

#[async_trait::async_trait]
impl MigrationTrait for Migration {
    async fn up(&self, manager: &SchemaManager) -> Result<(), DbErr> {
        manager
            .create_table(
                Table::create()
                    .table("lead_record")
                    .col(string("tenant_id"))
                    .col(string("lead_id"))
                    .col(integer("bant").default(0))
                    .col(timestamp_with_time_zone_null("bant_recorded_at"))
                    .col(timestamp_with_time_zone_null("erased_at"))
                    .col(string_null("merged_into"))
                    .col(timestamp_with_time_zone("updated_at"))
                    .primary_key(Index::create().col("tenant_id").col("lead_id"))
                    .to_owned(),
            )
            .await?;
        manager
            .create_table(
                Table::create()
                    .table("handoff_settings")
                    .col(string("tenant_id").primary_key())
                    .col(integer("version"))
                    .col(boolean("allow_uncontracted"))
                    .col(timestamp_with_time_zone("updated_at"))
                    .to_owned(),
            )
            .await
    }

    async fn down(&self, manager: &SchemaManager) -> Result<(), DbErr> {
        for table in ["handoff_settings", "lead_record"] {
            manager
                .drop_table(Table::drop().table(table).to_owned())
                .await?;
        }
        Ok(())
    }
}
