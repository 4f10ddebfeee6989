//! How each handed-off lead ended (won with its amount, or lost), from distribution's events, so
//! a simulation can say what the MQLs a model would have made were worth.

use sea_orm_migration::{prelude::*, schema::*};

#[derive(DeriveMigrationName)]
pub struct Migration;

#[async_trait::async_trait]
impl MigrationTrait for Migration {
    async fn up(&self, manager: &SchemaManager) -> Result<(), DbErr> {
        manager
            .create_table(
                Table::create()
                    .table("lead_outcome")
                    .col(string("tenant_id"))
                    .col(string("lead_id"))
                    .col(boolean("won"))
                    .col(string_null("amount_currency"))
                    .col(big_integer_null("amount_minor"))
                    .col(timestamp_with_time_zone("closed_at"))
                    .primary_key(Index::create().col("tenant_id").col("lead_id"))
                    .to_owned(),
            )
            .await
    }

    async fn down(&self, manager: &SchemaManager) -> Result<(), DbErr> {
        manager
            .drop_table(Table::drop().table("lead_outcome").to_owned())
            .await
    }
}
