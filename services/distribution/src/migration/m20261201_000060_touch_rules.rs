//! The tenant's touch rules: which activity kinds count as an IS touch (versioned; the defaults
//! are seeded on first read).

use sea_orm_migration::{prelude::*, schema::*};

#[derive(DeriveMigrationName)]
pub struct Migration;

#[async_trait::async_trait]
impl MigrationTrait for Migration {
    async fn up(&self, manager: &SchemaManager) -> Result<(), DbErr> {
        manager
            .create_table(
                Table::create()
                    .table("touch_ruleset")
                    .col(string("tenant_id").primary_key())
                    .col(integer("version"))
                    .col(text("definition"))
                    .col(timestamp_with_time_zone("updated_at"))
                    .to_owned(),
            )
            .await
    }

    async fn down(&self, manager: &SchemaManager) -> Result<(), DbErr> {
        manager
            .drop_table(Table::drop().table("touch_ruleset").to_owned())
            .await
    }
}
