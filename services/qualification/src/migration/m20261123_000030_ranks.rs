//! Ranks: a replica of each lead's fit attributes, its page views, its rank, and the tenant's
//! rank rules (as data).

use sea_orm_migration::{prelude::*, schema::*};

#[derive(DeriveMigrationName)]
pub struct Migration;

#[async_trait::async_trait]
impl MigrationTrait for Migration {
    async fn up(&self, manager: &SchemaManager) -> Result<(), DbErr> {
        manager
            .create_table(
                Table::create()
                    .table("lead_profile")
                    .col(string("tenant_id"))
                    .col(string("lead_id"))
                    .col(text("fields"))
                    .col(string_null("revenue_currency"))
                    .col(big_integer_null("revenue_minor"))
                    .col(timestamp_with_time_zone_null("first_contact_at"))
                    .col(timestamp_with_time_zone("updated_at"))
                    .primary_key(Index::create().col("tenant_id").col("lead_id"))
                    .to_owned(),
            )
            .await?;
        manager
            .create_table(
                Table::create()
                    .table("lead_page_view")
                    .col(big_pk_auto("seq"))
                    .col(string("tenant_id"))
                    .col(string("lead_id"))
                    .col(string_uniq("activity_id"))
                    .col(text("url"))
                    .col(timestamp_with_time_zone("occurred_at"))
                    .to_owned(),
            )
            .await?;
        manager
            .create_index(
                Index::create()
                    .name("ix_lead_page_view_lead")
                    .table("lead_page_view")
                    .col("tenant_id")
                    .col("lead_id")
                    .to_owned(),
            )
            .await?;
        manager
            .create_table(
                Table::create()
                    .table("lead_rank")
                    .col(string("tenant_id"))
                    .col(string("lead_id"))
                    .col(integer("rank"))
                    .col(string("rule_key"))
                    .col(text("reasons"))
                    .col(timestamp_with_time_zone("ranked_at"))
                    .primary_key(Index::create().col("tenant_id").col("lead_id"))
                    .to_owned(),
            )
            .await?;
        manager
            .create_table(
                Table::create()
                    .table("rank_ruleset")
                    .col(string("tenant_id").primary_key())
                    .col(integer("version"))
                    .col(text("definition"))
                    .col(timestamp_with_time_zone("updated_at"))
                    .to_owned(),
            )
            .await
    }
}
