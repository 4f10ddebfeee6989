//! SLA timers kept in the database: they survive restarts, and a replica claims a due timer in
//! the transaction that fires it, so each fires once.

use sea_orm_migration::{prelude::*, schema::*};

#[derive(DeriveMigrationName)]
pub struct Migration;

#[async_trait::async_trait]
impl MigrationTrait for Migration {
    async fn up(&self, manager: &SchemaManager) -> Result<(), DbErr> {
        manager
            .create_table(
                Table::create()
                    .table("sla_timer")
                    .col(big_pk_auto("seq"))
                    .col(string_uniq("timer_id"))
                    .col(string("tenant_id"))
                    .col(integer("kind"))
                    .col(string("subject_id"))
                    .col(string("lead_id"))
                    .col(string("rep_id"))
                    .col(timestamp_with_time_zone("due_at"))
                    .col(string("escalation"))
                    .col(string("notify"))
                    .col(timestamp_with_time_zone("created_at"))
                    .col(timestamp_with_time_zone_null("fired_at"))
                    .col(timestamp_with_time_zone_null("resolved_at"))
                    .to_owned(),
            )
            .await?;
        manager
            .create_index(
                Index::create()
                    .name("ix_sla_timer_due")
                    .table("sla_timer")
                    .col("due_at")
                    .to_owned(),
            )
            .await?;
        manager
            .create_index(
                Index::create()
                    .name("ix_sla_timer_subject")
                    .table("sla_timer")
                    .col("tenant_id")
                    .col("subject_id")
                    .to_owned(),
            )
            .await
    }
}
