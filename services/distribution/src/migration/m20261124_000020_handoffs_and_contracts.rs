//! IS → FS handoffs with their steps, the gate's refusal counts, the replica of each team pair's
//! active contract (from reporting's events) and of each lead's score and rank (from
//! qualification's events).

use sea_orm_migration::{prelude::*, schema::*};

#[derive(DeriveMigrationName)]
pub struct Migration;

#[async_trait::async_trait]
impl MigrationTrait for Migration {
    async fn up(&self, manager: &SchemaManager) -> Result<(), DbErr> {
        manager
            .create_table(
                Table::create()
                    .table("contract_replica")
                    .col(string("tenant_id"))
                    .col(string("is_team"))
                    .col(string("fs_team"))
                    .col(string("contract_id"))
                    .col(integer("version"))
                    .col(blob("terms"))
                    .col(timestamp_with_time_zone("activated_at"))
                    .primary_key(
                        Index::create()
                            .col("tenant_id")
                            .col("is_team")
                            .col("fs_team"),
                    )
                    .to_owned(),
            )
            .await?;
        manager
            .create_table(
                Table::create()
                    .table("lead_signal")
                    .col(string("tenant_id"))
                    .col(string("lead_id"))
                    .col(big_integer_null("score"))
                    .col(integer_null("stage"))
                    .col(integer_null("rank"))
                    .col(timestamp_with_time_zone("updated_at"))
                    .primary_key(Index::create().col("tenant_id").col("lead_id"))
                    .to_owned(),
            )
            .await?;
        manager
            .create_table(
                Table::create()
                    .table("handoff")
                    .col(big_pk_auto("seq"))
                    .col(string_uniq("handoff_id"))
                    .col(string("tenant_id"))
                    .col(string("request_id"))
                    .col(string("lead_id"))
                    .col(string("is_team"))
                    .col(string("fs_team"))
                    .col(string("fs_rep_id"))
                    .col(timestamp_with_time_zone_null("meeting_at"))
                    .col(boolean("bant_budget"))
                    .col(boolean("bant_authority"))
                    .col(boolean("bant_need"))
                    .col(boolean("bant_timeframe"))
                    .col(text("notes"))
                    .col(string("handed_off_by"))
                    .col(integer("state"))
                    .col(string("contract_id"))
                    .col(integer("contract_version"))
                    .col(timestamp_with_time_zone("decision_due_at"))
                    .col(string("rejection_reason"))
                    .col(string("rejected_lead_route"))
                    .col(string_null("amount_currency"))
                    .col(big_integer_null("amount_minor"))
                    .col(timestamp_with_time_zone_null("closed_at"))
                    .col(text("lost_reason"))
                    .col(timestamp_with_time_zone("created_at"))
                    .col(timestamp_with_time_zone("updated_at"))
                    .to_owned(),
            )
            .await?;
        for (name, cols) in [
            ("ux_handoff_request", vec!["tenant_id", "request_id"]),
            ("ix_handoff_lead", vec!["tenant_id", "lead_id"]),
        ] {
            let mut index = Index::create();
            index.name(name).table("handoff");
            for c in cols {
                index.col(c);
            }
            if name.starts_with("ux_") {
                index.unique();
            }
            manager.create_index(index.to_owned()).await?;
        }
        manager
            .create_table(
                Table::create()
                    .table("handoff_step")
                    .col(big_pk_auto("seq"))
                    .col(string("tenant_id"))
                    .col(string("handoff_id"))
                    .col(string("action"))
                    .col(string("actor"))
                    .col(text("note"))
                    .col(timestamp_with_time_zone("at"))
                    .to_owned(),
            )
            .await?;
        manager
            .create_index(
                Index::create()
                    .name("ix_handoff_step_handoff")
                    .table("handoff_step")
                    .col("handoff_id")
                    .to_owned(),
            )
            .await?;
        manager
            .create_table(
                Table::create()
                    .table("handoff_refusal")
                    .col(string("tenant_id"))
                    .col(string("is_team"))
                    .col(string("fs_team"))
                    .col(integer("contract_version"))
                    .col(big_integer("refusals"))
                    .col(timestamp_with_time_zone("last_refused_at"))
                    .primary_key(
                        Index::create()
                            .col("tenant_id")
                            .col("is_team")
                            .col("fs_team")
                            .col("contract_version"),
                    )
                    .to_owned(),
            )
            .await
    }
}
