//! Activities made by machines (privacy proxies, link scanners) keep why; scoring and KPIs skip them.

use sea_orm_migration::{prelude::*, schema::*};

#[derive(DeriveMigrationName)]
pub struct Migration;

#[async_trait::async_trait]
impl MigrationTrait for Migration {
    async fn up(&self, manager: &SchemaManager) -> Result<(), DbErr> {
        manager
            .alter_table(
                Table::alter()
                    .table("activity")
                    .add_column(string_null("machine_reason"))
                    .to_owned(),
            )
            .await
    }

    async fn down(&self, manager: &SchemaManager) -> Result<(), DbErr> {
        manager
            .alter_table(
                Table::alter()
                    .table("activity")
                    .drop_column("machine_reason")
                    .to_owned(),
            )
            .await
    }
}
