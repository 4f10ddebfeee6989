//! A contract's attainment, kept as events arrive: what reporting knows of each handoff under a
//! contract (`attainment_handoff`, also what win factors segment by), and each period's numbers per IS rep and FS rep
//! (`attainment_counter`), moved by each handoff's change of contribution.

use sea_orm_migration::{prelude::*, schema::*};

use crate::domain::attainment::COUNT_NAMES;

#[derive(DeriveMigrationName)]
pub struct Migration;

#[async_trait::async_trait]
impl MigrationTrait for Migration {
    async fn up(&self, manager: &SchemaManager) -> Result<(), DbErr> {
        manager
            .create_table(
                Table::create()
                    .table("attainment_handoff")
                    .col(string("tenant_id"))
                    .col(string("handoff_id"))
                    .col(string("contract_id"))
                    .col(string("lead_id"))
                    .col(string("is_team"))
                    .col(string("fs_team"))
                    .col(timestamp_with_time_zone("created_at"))
                    .col(big_integer_null("score_at_handoff"))
                    .col(string("rank_at_handoff"))
                    .col(integer("bant"))
                    .col(timestamp_with_time_zone("period_start"))
                    .col(timestamp_with_time_zone("counted_in"))
                    .col(string("is_rep"))
                    .col(string("fs_rep"))
                    .col(integer("state"))
                    .col(string("reason_code"))
                    .col(timestamp_with_time_zone_null("decided_at"))
                    .col(timestamp_with_time_zone_null("decision_due_at"))
                    .col(integer("decision_breach"))
                    .col(timestamp_with_time_zone_null("ruled_at"))
                    .col(timestamp_with_time_zone_null("ruling_due_at"))
                    .col(integer("ruling_breach"))
                    .col(string_null("amount_currency"))
                    .col(big_integer_null("amount_minor"))
                    .col(timestamp_with_time_zone("updated_at"))
                    .primary_key(Index::create().col("tenant_id").col("handoff_id"))
                    .to_owned(),
            )
            .await?;
        manager
            .create_index(
                Index::create()
                    .name("attainment_handoff_pair")
                    .table("attainment_handoff")
                    .col("tenant_id")
                    .col("is_team")
                    .col("fs_team")
                    .col("created_at")
                    .to_owned(),
            )
            .await?;
        let mut counter = Table::create();
        counter
            .table("attainment_counter")
            .col(string("tenant_id"))
            .col(string("contract_id"))
            .col(timestamp_with_time_zone("period_start"))
            .col(string("is_rep"))
            .col(string("fs_rep"));
        for name in COUNT_NAMES {
            counter.col(big_integer(name).default(0));
        }
        counter.primary_key(
            Index::create()
                .col("tenant_id")
                .col("contract_id")
                .col("period_start")
                .col("is_rep")
                .col("fs_rep"),
        );
        manager.create_table(counter.to_owned()).await
    }

    async fn down(&self, manager: &SchemaManager) -> Result<(), DbErr> {
        for table in ["attainment_counter", "attainment_handoff"] {
            manager
                .drop_table(Table::drop().table(table).to_owned())
                .await?;
        }
        Ok(())
    }
}
