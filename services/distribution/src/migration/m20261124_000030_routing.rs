//! Routing as data: teams with a method, reps' routing attributes and weighted-round-robin
//! counters, per-team rotation, the tenant's rule list, each assignment's rule, team and the
//! candidates it considered, and the lead profile fields routing conditions read.

use sea_orm_migration::{prelude::*, schema::*};

#[derive(DeriveMigrationName)]
pub struct Migration;

#[async_trait::async_trait]
impl MigrationTrait for Migration {
    async fn up(&self, manager: &SchemaManager) -> Result<(), DbErr> {
        manager
            .create_table(
                Table::create()
                    .table("team")
                    .col(string("tenant_id"))
                    .col(string("team_id"))
                    .col(string("name"))
                    .col(integer("function"))
                    .col(integer("method"))
                    .col(timestamp_with_time_zone("created_at"))
                    .primary_key(Index::create().col("tenant_id").col("team_id"))
                    .to_owned(),
            )
            .await?;
        manager
            .create_table(
                Table::create()
                    .table("team_rotation")
                    .col(string("tenant_id"))
                    .col(string("team_id"))
                    .col(big_integer("last_rep_seq"))
                    .primary_key(Index::create().col("tenant_id").col("team_id"))
                    .to_owned(),
            )
            .await?;
        manager
            .create_table(
                Table::create()
                    .table("routing_ruleset")
                    .col(string("tenant_id").primary_key())
                    .col(integer("version"))
                    .col(text("definition"))
                    .col(timestamp_with_time_zone("updated_at"))
                    .to_owned(),
            )
            .await?;
        let columns: [(&str, ColumnDef); 11] = [
            ("rep", string("team_id").default("").to_owned()),
            ("rep", text("routing").default("{}").to_owned()),
            ("rep", integer("capacity").default(0).to_owned()),
            ("rep", double("weight").default(1.0).to_owned()),
            ("rep", double("wrr_counter").default(0.0).to_owned()),
            ("rep", boolean("was_available").default(true).to_owned()),
            ("assignment", string("team_id").default("").to_owned()),
            ("assignment", string("rule_key").default("").to_owned()),
            ("assignment", integer("rules_version").default(0).to_owned()),
            ("assignment", text("explanation").default("[]").to_owned()),
            ("lead_signal", text("fields").default("{}").to_owned()),
        ];
        for (table, column) in columns {
            manager
                .alter_table(Table::alter().table(table).add_column(column).to_owned())
                .await?;
        }
        manager
            .alter_table(
                Table::alter()
                    .table("assignment")
                    .add_column(timestamp_with_time_zone_null("closed_at"))
                    .to_owned(),
            )
            .await?;
        // A lead routed again has several assignments (one open at a time).
        manager
            .drop_index(
                Index::drop()
                    .name("ux_assignment_tenant_lead")
                    .table("assignment")
                    .to_owned(),
            )
            .await?;
        // Open leads per rep, read at every routing decision.
        manager
            .create_index(
                Index::create()
                    .name("ix_assignment_rep_state")
                    .table("assignment")
                    .col("tenant_id")
                    .col("rep_id")
                    .col("state")
                    .to_owned(),
            )
            .await?;
        manager
            .create_index(
                Index::create()
                    .name("ix_assignment_tenant_lead")
                    .table("assignment")
                    .col("tenant_id")
                    .col("lead_id")
                    .to_owned(),
            )
            .await
    }
}
