//! A change of rank rules re-ranks every lead in the background: the rule set keeps the job's
//! state, its cursor (the last lead id re-ranked) and its progress.

use sea_orm_migration::{prelude::*, schema::*};

#[derive(DeriveMigrationName)]
pub struct Migration;

#[async_trait::async_trait]
impl MigrationTrait for Migration {
    async fn up(&self, manager: &SchemaManager) -> Result<(), DbErr> {
        // One column per statement: SQLite alters a table one column at a time.
        for column in [
            integer("rerank_state").default(0).to_owned(),
            big_integer("rerank_total").default(0).to_owned(),
            big_integer("rerank_done").default(0).to_owned(),
            string("rerank_cursor").default("").to_owned(),
            timestamp_with_time_zone_null("rerank_started_at"),
            timestamp_with_time_zone_null("rerank_finished_at"),
        ] {
            manager
                .alter_table(
                    Table::alter()
                        .table("rank_ruleset")
                        .add_column(column)
                        .to_owned(),
                )
                .await?;
        }
        Ok(())
    }
}
