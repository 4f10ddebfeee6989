//! A rejected handoff remembers how long FS had left to decide, so an overturned rejection
//! re-opens it with that time (the dispute paused the clock).

use sea_orm_migration::{prelude::*, schema::*};

#[derive(DeriveMigrationName)]
pub struct Migration;

#[async_trait::async_trait]
impl MigrationTrait for Migration {
    async fn up(&self, manager: &SchemaManager) -> Result<(), DbErr> {
        manager
            .alter_table(
                Table::alter()
                    .table("handoff")
                    .add_column(big_integer_null("decision_left_seconds"))
                    .to_owned(),
            )
            .await
    }

    async fn down(&self, manager: &SchemaManager) -> Result<(), DbErr> {
        manager
            .alter_table(
                Table::alter()
                    .table("handoff")
                    .drop_column("decision_left_seconds")
                    .to_owned(),
            )
            .await
    }
}
