//! Shared-KPI contract versions: terms (protobuf-encoded `ContractTerms`), both approvals, status.

use sea_orm_migration::{prelude::*, schema::*};

#[derive(DeriveMigrationName)]
pub struct Migration;

#[async_trait::async_trait]
impl MigrationTrait for Migration {
    async fn up(&self, manager: &SchemaManager) -> Result<(), DbErr> {
        manager
            .create_table(
                Table::create()
                    .table("contract")
                    .col(big_pk_auto("seq"))
                    .col(string_uniq("contract_id"))
                    .col(string("tenant_id"))
                    .col(string("request_id"))
                    .col(string("is_team"))
                    .col(string("fs_team"))
                    .col(integer("version"))
                    .col(integer("status"))
                    .col(blob("terms"))
                    .col(string("is_approved_by"))
                    .col(timestamp_with_time_zone_null("is_approved_at"))
                    .col(string("fs_approved_by"))
                    .col(timestamp_with_time_zone_null("fs_approved_at"))
                    .col(string("created_by"))
                    .col(timestamp_with_time_zone("created_at"))
                    .col(timestamp_with_time_zone_null("activated_at"))
                    .col(timestamp_with_time_zone_null("superseded_at"))
                    .to_owned(),
            )
            .await?;
        manager
            .create_index(
                Index::create()
                    .name("ux_contract_pair_version")
                    .table("contract")
                    .col("tenant_id")
                    .col("is_team")
                    .col("fs_team")
                    .col("version")
                    .unique()
                    .to_owned(),
            )
            .await?;
        manager
            .create_index(
                Index::create()
                    .name("ux_contract_request")
                    .table("contract")
                    .col("tenant_id")
                    .col("request_id")
                    .unique()
                    .to_owned(),
            )
            .await
    }
}
