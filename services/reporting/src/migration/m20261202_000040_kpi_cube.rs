//! The KPI engine grows every dimension of the catalogue and money:
//! - `kpi_cube` replaces `kpi_rollup`: counters per metric, 15-minute slot, every dimension a fact
//!   is counted under, and currency (empty for facts without money); the old rows move over with
//!   empty values for the new dimensions; `kpi_source` holds the same counters by source only
//!   per UTC hour and day;
//! - `lead_dim` keeps the lead's other dimensions (content, company, rank, team, rep) and its
//!   first touch (for the sales cycle);
//! - `kpi_pending` keeps the currency of a money fact;
//! - `spend_day`: spend per day, channel, campaign and currency (spread from `RecordSpend`), and
//!   `spend` the requests themselves (idempotent on request_id);
//! - `customer`: one row per won lead (monthly recurring revenue, churn); `won_deal`: each win's
//!   sales cycle, for its median;
//! - `lead_dim` also keeps the lead's qualification stage and since when (for stagnation);
//! - `plan`: plans, every version;
//! - `email_lead_slot`: the leads e-mail reached (delivered, sent, opened, clicked, unsubscribed,
//!   bounced, converted) per 15-minute slot, once each, for unique-lead rates; `lead_dim` keeps
//!   the lead's e-mail state (opt-in, unsubscribed, do not contact, bounced, erased) for the list
//!   size;
//! - `kpi_version`: the tenant's versions of a KPI's parameters;
//! - `target_accounts`: the tenant's target-account condition, every version; `lead_dim` keeps
//!   whether the lead matched it when captured.

use sea_orm_migration::{prelude::*, schema::*};

#[derive(DeriveMigrationName)]
pub struct Migration;

/// Every dimension column of `kpi_cube`, in key order.
const CUBE_DIMENSIONS: [&str; 11] = [
    "channel",
    "campaign",
    "lead_magnet",
    "funnel_position",
    "industry",
    "employee_band",
    "country",
    "rank",
    "team",
    "rep",
    "currency",
];

/// The columns `lead_dim` gains (`first_touch_at` aside).
const LEAD_DIMENSIONS: [&str; 8] = [
    "lead_magnet",
    "funnel_position",
    "industry",
    "employee_band",
    "country",
    "rank",
    "team",
    "rep",
];

async fn create_cube(manager: &SchemaManager<'_>) -> Result<(), DbErr> {
    let mut table = Table::create();
    table
        .table("kpi_cube")
        .col(string("tenant_id"))
        .col(string("metric"))
        .col(timestamp_with_time_zone("slot"));
    let mut key = Index::create();
    key.col("tenant_id").col("metric").col("slot");
    for d in CUBE_DIMENSIONS {
        table.col(string(d).default(""));
        key.col(d);
    }
    table.col(big_integer("value")).primary_key(&mut key);
    manager.create_table(table.to_owned()).await?;
    // The same counters by source only, per UTC hour, three hours and day: a query grouped and
    // filtered by source at most reads whole days, blocks and hours from here and only the edges
    // from the cube.
    manager
        .create_table(
            Table::create()
                .table("kpi_source")
                .col(string("tenant_id"))
                .col(string("metric"))
                // "h" (hour), "t" (three hours) or "d" (UTC day).
                .col(string("level"))
                .col(timestamp_with_time_zone("at"))
                .col(string("channel"))
                .col(string("campaign"))
                .col(string("currency"))
                .col(big_integer("value"))
                .primary_key(
                    Index::create()
                        .col("tenant_id")
                        .col("metric")
                        .col("level")
                        .col("at")
                        .col("channel")
                        .col("campaign")
                        .col("currency"),
                )
                .to_owned(),
        )
        .await?;
    // The old rollups move over; their facts had no other dimension and no money.
    let db = manager.get_connection();
    db.execute_unprepared(
        "INSERT INTO kpi_cube (tenant_id, metric, slot, channel, campaign, value) \
         SELECT tenant_id, metric, slot, channel, campaign, value FROM kpi_rollup",
    )
    .await?;
    let mut source = Vec::new();
    for row in db
        .query_all_raw(sea_orm::Statement::from_string(
            manager.get_database_backend(),
            "SELECT tenant_id, metric, slot, channel, campaign, value FROM kpi_rollup",
        ))
        .await?
    {
        source.push((
            row.try_get::<String>("", "tenant_id")?,
            row.try_get::<String>("", "metric")?,
            row.try_get::<chrono::DateTime<chrono::Utc>>("", "slot")?,
            row.try_get::<String>("", "channel")?,
            row.try_get::<String>("", "campaign")?,
            row.try_get::<i64>("", "value")?,
        ));
    }
    move_to_source(manager, &source).await?;
    manager
        .drop_table(Table::drop().table("kpi_rollup").to_owned())
        .await
}

/// The old rollups, summed per UTC hour and day into `kpi_source`.
/// An old rollup row: tenant, metric, slot, channel, campaign, value.
type OldRow = (
    String,
    String,
    chrono::DateTime<chrono::Utc>,
    String,
    String,
    i64,
);

async fn move_to_source(manager: &SchemaManager<'_>, rows: &[OldRow]) -> Result<(), DbErr> {
    use std::collections::BTreeMap;
    let mut sums: BTreeMap<(String, String, &str, i64, String, String), i64> = BTreeMap::new();
    for (tenant, metric, slot, channel, campaign, value) in rows {
        let secs = slot.timestamp();
        // Each source, and the totals over every campaign, every channel, and both ("*").
        let variants = [
            (channel.as_str(), campaign.as_str()),
            (channel.as_str(), "*"),
            ("*", campaign.as_str()),
            ("*", "*"),
        ];
        for (level, size) in [("h", 3_600), ("t", 10_800), ("d", 86_400)] {
            let at = secs - secs.rem_euclid(size);
            for (ch, cp) in variants {
                *sums
                    .entry((
                        tenant.clone(),
                        metric.clone(),
                        level,
                        at,
                        ch.to_owned(),
                        cp.to_owned(),
                    ))
                    .or_default() += value;
            }
        }
    }
    for ((tenant, metric, level, at, channel, campaign), value) in sums {
        let at = chrono::DateTime::from_timestamp(at, 0).unwrap_or_default();
        let mut insert = Query::insert();
        insert
            .into_table("kpi_source")
            .columns([
                "tenant_id",
                "metric",
                "level",
                "at",
                "channel",
                "campaign",
                "currency",
                "value",
            ])
            .values([
                tenant.into(),
                metric.into(),
                level.into(),
                at.into(),
                channel.into(),
                campaign.into(),
                "".into(),
                value.into(),
            ])
            .map_err(|e| DbErr::Custom(e.to_string()))?;
        manager.exec_stmt(insert).await?;
    }
    Ok(())
}

async fn grow_lead_dim(manager: &SchemaManager<'_>) -> Result<(), DbErr> {
    for d in LEAD_DIMENSIONS {
        manager
            .alter_table(
                Table::alter()
                    .table("lead_dim")
                    .add_column(string(d).default(""))
                    .to_owned(),
            )
            .await?;
    }
    manager
        .alter_table(
            Table::alter()
                .table("lead_dim")
                .add_column(timestamp_with_time_zone_null("first_touch_at"))
                .to_owned(),
        )
        .await?;
    for column in [
        string("stage").default("").to_owned(),
        timestamp_with_time_zone_null("stage_since"),
        integer("email_flags").default(0).to_owned(),
        boolean("target_account").default(false).to_owned(),
        string("prev_rank").default("").to_owned(),
        timestamp_with_time_zone_null("rank_since"),
        string("prev_team").default("").to_owned(),
        string("prev_rep").default("").to_owned(),
        timestamp_with_time_zone_null("team_since"),
    ] {
        manager
            .alter_table(
                Table::alter()
                    .table("lead_dim")
                    .add_column(column)
                    .to_owned(),
            )
            .await?;
    }
    manager
        .create_index(
            Index::create()
                .name("lead_dim_by_stage")
                .table("lead_dim")
                .col("tenant_id")
                .col("stage")
                .col("stage_since")
                .to_owned(),
        )
        .await?;
    manager
        .alter_table(
            Table::alter()
                .table("kpi_pending")
                .add_column(string("currency").default(""))
                .to_owned(),
        )
        .await
}

async fn create_spend(manager: &SchemaManager<'_>) -> Result<(), DbErr> {
    manager
        .create_table(
            Table::create()
                .table("spend")
                .col(string("tenant_id"))
                .col(string("request_id"))
                .col(string("channel"))
                .col(string("campaign"))
                .col(string("start_day"))
                .col(string("end_day"))
                .col(string("currency"))
                .col(big_integer("amount_minor"))
                .col(string("recorded_by"))
                .col(timestamp_with_time_zone("recorded_at"))
                .primary_key(Index::create().col("tenant_id").col("request_id"))
                .to_owned(),
        )
        .await?;
    manager
        .create_table(
            Table::create()
                .table("spend_day")
                .col(string("tenant_id"))
                .col(string("day"))
                .col(string("channel"))
                .col(string("campaign"))
                .col(string("currency"))
                .col(big_integer("amount_minor"))
                .primary_key(
                    Index::create()
                        .col("tenant_id")
                        .col("day")
                        .col("channel")
                        .col("campaign")
                        .col("currency"),
                )
                .to_owned(),
        )
        .await
}

/// Won deals with a known sales cycle, for its median (a median does not roll up).
async fn create_won_deal(manager: &SchemaManager<'_>) -> Result<(), DbErr> {
    let mut table = Table::create();
    table
        .table("won_deal")
        .col(string("tenant_id"))
        .col(string("lead_id"))
        .col(timestamp_with_time_zone("won_at"))
        // Where the cycle ends (the close date, else the win); -1 seconds while the lead's first
        // touch is unknown (its capture not applied yet).
        .col(timestamp_with_time_zone("cycle_end"))
        .col(big_integer("cycle_seconds"));
    for d in &CUBE_DIMENSIONS[..10] {
        table.col(string(*d).default(""));
    }
    table.primary_key(
        Index::create()
            .col("tenant_id")
            .col("lead_id")
            .col("won_at"),
    );
    manager.create_table(table.to_owned()).await?;
    manager
        .create_index(
            Index::create()
                .name("won_deal_by_time")
                .table("won_deal")
                .col("tenant_id")
                .col("won_at")
                .to_owned(),
        )
        .await
}

async fn create_customer(manager: &SchemaManager<'_>) -> Result<(), DbErr> {
    manager
        .create_table(
            Table::create()
                .table("customer")
                .col(string("tenant_id"))
                .col(string("lead_id"))
                .col(timestamp_with_time_zone("opened_at"))
                .col(string("mrr_currency"))
                .col(big_integer("mrr_minor"))
                .col(timestamp_with_time_zone_null("churned_at"))
                .col(string("churn_reason").default(""))
                .col(string("churn_key").default(""))
                .primary_key(Index::create().col("tenant_id").col("lead_id"))
                .to_owned(),
        )
        .await
}

async fn create_plan(manager: &SchemaManager<'_>) -> Result<(), DbErr> {
    manager
        .create_table(
            Table::create()
                .table("plan")
                .col(string("tenant_id"))
                .col(string("plan_id"))
                .col(integer("version"))
                .col(string("request_id"))
                .col(string("name"))
                .col(timestamp_with_time_zone("start_time"))
                .col(timestamp_with_time_zone("end_time"))
                .col(string("time_zone"))
                // Encoded PlanInputs and PlanDerived.
                .col(blob("inputs"))
                .col(blob("derived"))
                .col(string("created_by"))
                .col(timestamp_with_time_zone("created_at"))
                .primary_key(
                    Index::create()
                        .col("tenant_id")
                        .col("plan_id")
                        .col("version"),
                )
                .to_owned(),
        )
        .await?;
    manager
        .create_index(
            Index::create()
                .name("plan_by_request")
                .table("plan")
                .col("tenant_id")
                .col("request_id")
                .unique()
                .to_owned(),
        )
        .await
}

async fn create_email_and_versions(manager: &SchemaManager<'_>) -> Result<(), DbErr> {
    let mut table = Table::create();
    table
        .table("email_lead_slot")
        .col(string("tenant_id"))
        .col(string("kind"))
        .col(timestamp_with_time_zone("slot"))
        .col(string("lead_id"));
    for d in &CUBE_DIMENSIONS[..10] {
        table.col(string(*d).default(""));
    }
    // For conversions: seconds from the delivery to the conversion (the shortest).
    table
        .col(big_integer("gap_seconds").default(0))
        .primary_key(
            Index::create()
                .col("tenant_id")
                .col("kind")
                .col("slot")
                .col("lead_id"),
        );
    manager.create_table(table.to_owned()).await?;
    manager
        .create_index(
            Index::create()
                .name("email_lead_slot_by_lead")
                .table("email_lead_slot")
                .col("tenant_id")
                .col("lead_id")
                .col("kind")
                .col("slot")
                .to_owned(),
        )
        .await?;
    manager
        .create_table(
            Table::create()
                .table("kpi_version")
                .col(string("tenant_id"))
                .col(string("kpi"))
                .col(integer("version"))
                // JSON object: parameter name → value.
                .col(string("parameters"))
                .col(string("updated_by"))
                .col(timestamp_with_time_zone("updated_at"))
                .primary_key(Index::create().col("tenant_id").col("kpi").col("version"))
                .to_owned(),
        )
        .await?;
    manager
        .create_table(
            Table::create()
                .table("target_accounts")
                .col(string("tenant_id"))
                .col(integer("version"))
                // Encoded TargetAccounts.
                .col(blob("rules"))
                .primary_key(Index::create().col("tenant_id").col("version"))
                .to_owned(),
        )
        .await
}

#[async_trait::async_trait]
impl MigrationTrait for Migration {
    async fn up(&self, manager: &SchemaManager) -> Result<(), DbErr> {
        create_cube(manager).await?;
        grow_lead_dim(manager).await?;
        create_spend(manager).await?;
        create_customer(manager).await?;
        create_won_deal(manager).await?;
        create_plan(manager).await?;
        create_email_and_versions(manager).await
    }

    async fn down(&self, manager: &SchemaManager) -> Result<(), DbErr> {
        for table in [
            "kpi_version",
            "email_lead_slot",
            "plan",
            "customer",
            "spend_day",
            "spend",
            "kpi_cube",
        ] {
            manager
                .drop_table(Table::drop().table(table).to_owned())
                .await?;
        }
        Ok(())
    }
}
