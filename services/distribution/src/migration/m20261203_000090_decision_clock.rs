//! A rejected handoff remembers how long FS had left to decide, so an overturned rejection
//! re-opens it with that time (the dispute paused the clock); a handoff keeps the lead's score
//! and rank as they were when it was judged.

use sea_orm_migration::{prelude::*, schema::*};

#[derive(DeriveMigrationName)]
pub struct Migration;

#[async_trait::async_trait]
impl MigrationTrait for Migration {
    async fn up(&self, manager: &SchemaManager) -> Result<(), DbErr> {
        for column in [
            big_integer_null("decision_left_seconds"),
            big_integer_null("score_at_handoff"),
            integer_null("rank_at_handoff"),
        ] {
            manager
                .alter_table(
                    Table::alter()
                        .table("handoff")
                        .add_column(column)
                        .to_owned(),
                )
                .await?;
        }
        Ok(())
    }

    async fn down(&self, manager: &SchemaManager) -> Result<(), DbErr> {
        for column in [
            "rank_at_handoff",
            "score_at_handoff",
            "decision_left_seconds",
        ] {
            manager
                .alter_table(
                    Table::alter()
                        .table("handoff")
                        .drop_column(column)
                        .to_owned(),
                )
                .await?;
        }
        Ok(())
    }
}
