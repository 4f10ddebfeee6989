//! The full lead profile (person, consent, source, custom attributes), companies matched by web
//! domain, and call details on activities. Existing rows get empty defaults.

use sea_orm_migration::{prelude::*, schema::*};

#[derive(DeriveMigrationName)]
pub struct Migration;

#[async_trait::async_trait]
impl MigrationTrait for Migration {
    async fn up(&self, manager: &SchemaManager) -> Result<(), DbErr> {
        manager
            .create_table(
                Table::create()
                    .table("company")
                    .col(big_pk_auto("seq"))
                    .col(string_uniq("company_id"))
                    .col(string("tenant_id"))
                    .col(string_null("web_domain"))
                    .col(string("name"))
                    .col(string("industry"))
                    .col(big_integer_null("employees"))
                    .col(string_null("revenue_currency"))
                    .col(big_integer_null("revenue_minor"))
                    .col(string("country"))
                    .col(string("region"))
                    .col(timestamp_with_time_zone("created_at"))
                    .col(timestamp_with_time_zone("updated_at"))
                    .to_owned(),
            )
            .await?;
        manager
            .create_index(
                Index::create()
                    .name("ux_company_tenant_domain")
                    .table("company")
                    .col("tenant_id")
                    .col("web_domain")
                    .unique()
                    .to_owned(),
            )
            .await?;
        // SQLite alters one column per statement.
        let lead_columns = [
            string("phone").default("").to_owned(),
            string("title").default("").to_owned(),
            string("role").default("").to_owned(),
            string("department").default("").to_owned(),
            string_null("company_id"),
            boolean("consent_email_opt_in").default(false).to_owned(),
            boolean("consent_unsubscribed").default(false).to_owned(),
            boolean("consent_do_not_contact").default(false).to_owned(),
            string("source_lead_magnet").default("").to_owned(),
            integer("source_funnel_position").default(0).to_owned(),
            string("utm_source").default("").to_owned(),
            string("utm_medium").default("").to_owned(),
            string("utm_campaign").default("").to_owned(),
            string("utm_term").default("").to_owned(),
            string("utm_content").default("").to_owned(),
            text("custom_attributes").default("{}").to_owned(),
            timestamp_with_time_zone_null("updated_at"),
        ];
        for column in lead_columns {
            manager
                .alter_table(Table::alter().table("lead").add_column(column).to_owned())
                .await?;
        }
        manager
            .create_index(
                Index::create()
                    .name("ix_lead_tenant_company")
                    .table("lead")
                    .col("tenant_id")
                    .col("company_id")
                    .to_owned(),
            )
            .await?;
        let activity_columns = [
            integer("call_outcome").default(0).to_owned(),
            integer("call_duration_seconds").default(0).to_owned(),
            boolean("call_reached_target_department")
                .default(false)
                .to_owned(),
            string("subject").default("").to_owned(),
        ];
        for column in activity_columns {
            manager
                .alter_table(
                    Table::alter()
                        .table("activity")
                        .add_column(column)
                        .to_owned(),
                )
                .await?;
        }
        Ok(())
    }
}
