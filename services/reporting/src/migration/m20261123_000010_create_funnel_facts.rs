use sea_orm_migration::{prelude::*, schema::*};

#[derive(DeriveMigrationName)]
pub struct Migration;

#[async_trait::async_trait]
impl MigrationTrait for Migration {
    async fn up(&self, manager: &SchemaManager) -> Result<(), DbErr> {
        manager
            .create_table(
                Table::create()
                    .table("funnel_fact")
                    .col(big_pk_auto("seq"))
                    .col(string("tenant_id"))
                    .col(string("lead_id"))
                    .col(string("step"))
                    .col(timestamp_with_time_zone("occurred_at"))
                    .to_owned(),
            )
            .await?;
        manager
            .create_index(
                Index::create()
                    .name("ux_funnel_fact_lead_step")
                    .table("funnel_fact")
                    .col("tenant_id")
                    .col("lead_id")
                    .col("step")
                    .unique()
                    .to_owned(),
            )
            .await?;
        manager
            .create_index(
                Index::create()
                    .name("ix_funnel_fact_tenant_step_time")
                    .table("funnel_fact")
                    .col("tenant_id")
                    .col("step")
                    .col("occurred_at")
                    .to_owned(),
            )
            .await
    }
}
