//! Performance-weighted routing: a team's weighting (opt-in, guardrails, one versioned row per
//! team), each rep's performance factor on its row (so routing reads it with the rep), every
//! change of a factor with its reason (`rep_weight_change`), and the IS rep a handoff came from.

use sea_orm_migration::{prelude::*, schema::*};

#[derive(DeriveMigrationName)]
pub struct Migration;

#[async_trait::async_trait]
impl MigrationTrait for Migration {
    async fn up(&self, manager: &SchemaManager) -> Result<(), DbErr> {
        manager
            .create_table(
                Table::create()
                    .table("team_weighting")
                    .col(string("tenant_id"))
                    .col(string("team_id"))
                    .col(integer("version"))
                    .col(boolean("enabled"))
                    .col(integer("basis"))
                    .col(text("guardrails"))
                    .col(text("reason"))
                    .col(string("updated_by"))
                    .col(timestamp_with_time_zone("updated_at"))
                    .primary_key(Index::create().col("tenant_id").col("team_id"))
                    .to_owned(),
            )
            .await?;
        manager
            .create_table(
                Table::create()
                    .table("rep_weight_change")
                    .col(big_pk_auto("change_id"))
                    .col(string("tenant_id"))
                    .col(string("team_id"))
                    .col(string("rep_id"))
                    .col(double("old_factor"))
                    .col(double("new_factor"))
                    .col(text("origin"))
                    .col(string("changed_by"))
                    .col(timestamp_with_time_zone("at"))
                    .to_owned(),
            )
            .await?;
        for mut column in [
            double("perf_factor").default(1.0).to_owned(),
            string("perf_team").default("").to_owned(),
            big_integer("perf_change_id").default(0).to_owned(),
            double("perf_period_factor").default(1.0).to_owned(),
            timestamp_with_time_zone_null("perf_period_start"),
        ] {
            manager
                .alter_table(
                    Table::alter()
                        .table("rep")
                        .add_column(&mut column)
                        .to_owned(),
                )
                .await?;
        }
        manager
            .alter_table(
                Table::alter()
                    .table("handoff")
                    .add_column(string("is_rep_id").default("").to_owned())
                    .to_owned(),
            )
            .await?;
        manager
            .create_index(
                Index::create()
                    .name("ix_handoff_is_rep")
                    .table("handoff")
                    .col("tenant_id")
                    .col("is_rep_id")
                    .to_owned(),
            )
            .await?;
        manager
            .create_index(
                Index::create()
                    .name("ix_handoff_fs_rep")
                    .table("handoff")
                    .col("tenant_id")
                    .col("fs_rep_id")
                    .to_owned(),
            )
            .await
    }

    async fn down(&self, manager: &SchemaManager) -> Result<(), DbErr> {
        for index in ["ix_handoff_fs_rep", "ix_handoff_is_rep"] {
            manager
                .drop_index(Index::drop().name(index).table("handoff").to_owned())
                .await?;
        }
        manager
            .alter_table(
                Table::alter()
                    .table("handoff")
                    .drop_column("is_rep_id")
                    .to_owned(),
            )
            .await?;
        for column in [
            "perf_period_start",
            "perf_period_factor",
            "perf_change_id",
            "perf_team",
            "perf_factor",
        ] {
            manager
                .alter_table(Table::alter().table("rep").drop_column(column).to_owned())
                .await?;
        }
        for table in ["rep_weight_change", "team_weighting"] {
            manager
                .drop_table(Table::drop().table(table).to_owned())
                .await?;
        }
        Ok(())
    }
}
