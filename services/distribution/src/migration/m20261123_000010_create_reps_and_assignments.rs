use sea_orm_migration::{prelude::*, schema::*};

#[derive(DeriveMigrationName)]
pub struct Migration;

#[async_trait::async_trait]
impl MigrationTrait for Migration {
    async fn up(&self, manager: &SchemaManager) -> Result<(), DbErr> {
        manager
            .create_table(
                Table::create()
                    .table("rep")
                    .col(big_pk_auto("seq"))
                    .col(string_uniq("rep_id"))
                    .col(string("tenant_id"))
                    .col(string("request_id"))
                    .col(string("name"))
                    .col(string("email"))
                    .col(string("email_normalized"))
                    .col(boolean("active"))
                    .col(timestamp_with_time_zone("created_at"))
                    .to_owned(),
            )
            .await?;
        for (name, col) in [
            ("ux_rep_tenant_email", "email_normalized"),
            ("ux_rep_tenant_request", "request_id"),
        ] {
            manager
                .create_index(
                    Index::create()
                        .name(name)
                        .table("rep")
                        .col("tenant_id")
                        .col(col)
                        .unique()
                        .to_owned(),
                )
                .await?;
        }
        manager
            .create_table(
                Table::create()
                    .table("assignment")
                    .col(big_pk_auto("seq"))
                    .col(string_uniq("assignment_id"))
                    .col(string("tenant_id"))
                    .col(string("lead_id"))
                    .col(string_null("rep_id"))
                    .col(integer("state"))
                    .col(string("method"))
                    .col(timestamp_with_time_zone("created_at"))
                    .col(timestamp_with_time_zone_null("assigned_at"))
                    .to_owned(),
            )
            .await?;
        manager
            .create_index(
                Index::create()
                    .name("ux_assignment_tenant_lead")
                    .table("assignment")
                    .col("tenant_id")
                    .col("lead_id")
                    .unique()
                    .to_owned(),
            )
            .await?;
        manager
            .create_table(
                Table::create()
                    .table("rotation")
                    .col(string("tenant_id").primary_key())
                    .col(big_integer("last_rep_seq"))
                    .to_owned(),
            )
            .await
    }
}
