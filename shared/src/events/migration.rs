//! Migrations for the event tables. A producer's migrator includes [`CreateEventLog`] and then
//! [`CreateEventLogIdentity`]; a consumer's includes [`CreateEventConsumerTables`] and then
//! [`KeepDeadLetteredEvents`] and [`CursorsKnowTheirLog`].

use sea_orm_migration::{prelude::*, schema::*};

/// Creates `event_log`, the producer's append-only log, and `event_outbox`, where PostgreSQL
/// writers append before the relay publishes.
pub struct CreateEventLog;

impl MigrationName for CreateEventLog {
    fn name(&self) -> &str {
        "m20261123_000001_create_event_log"
    }
}

#[async_trait::async_trait]
impl MigrationTrait for CreateEventLog {
    async fn up(&self, manager: &SchemaManager) -> Result<(), DbErr> {
        manager
            .create_table(
                Table::create()
                    .table("event_log")
                    .col(big_pk_auto("position"))
                    .col(string_uniq("event_id"))
                    .col(string("tenant_id"))
                    .col(string("aggregate_id"))
                    .col(string("type_url"))
                    .col(blob("payload"))
                    .col(string("traceparent"))
                    .col(string("tracestate"))
                    .col(timestamp_with_time_zone("recorded_at"))
                    .to_owned(),
            )
            .await?;
        manager
            .create_table(
                Table::create()
                    .table("event_outbox")
                    .col(big_pk_auto("id"))
                    .col(string_uniq("event_id"))
                    .col(string("tenant_id"))
                    .col(string("aggregate_id"))
                    .col(string("type_url"))
                    .col(blob("payload"))
                    .col(string("traceparent"))
                    .col(string("tracestate"))
                    .col(timestamp_with_time_zone("recorded_at"))
                    .to_owned(),
            )
            .await
    }
}

/// Creates `event_cursor` and `event_dead_letter`, the consumer's side.
pub struct CreateEventConsumerTables;

impl MigrationName for CreateEventConsumerTables {
    fn name(&self) -> &str {
        "m20261123_000002_create_event_consumer_tables"
    }
}

#[async_trait::async_trait]
impl MigrationTrait for CreateEventConsumerTables {
    async fn up(&self, manager: &SchemaManager) -> Result<(), DbErr> {
        manager
            .create_table(
                Table::create()
                    .table("event_cursor")
                    .col(string("source").primary_key())
                    .col(big_integer("position"))
                    .col(timestamp_with_time_zone("updated_at"))
                    .to_owned(),
            )
            .await?;
        manager
            .create_table(
                Table::create()
                    .table("event_dead_letter")
                    .col(big_pk_auto("id"))
                    .col(string("source"))
                    .col(big_integer("position"))
                    .col(string("event_id"))
                    .col(string("type_url"))
                    .col(text("error"))
                    .col(timestamp_with_time_zone("created_at"))
                    .to_owned(),
            )
            .await
    }
}

/// Dead letters keep the event itself (so it can be replayed), how many attempts failed, when a
/// replay applied it, and the event's tenant (a token for one tenant sees that tenant's only).
pub struct KeepDeadLetteredEvents;

impl MigrationName for KeepDeadLetteredEvents {
    fn name(&self) -> &str {
        "m20261203_000003_keep_dead_lettered_events"
    }
}

#[async_trait::async_trait]
impl MigrationTrait for KeepDeadLetteredEvents {
    async fn up(&self, manager: &SchemaManager) -> Result<(), DbErr> {
        // One column per statement: SQLite alters a table one column at a time.
        for column in [
            blob_null("event"),
            integer("attempts").default(1).to_owned(),
            timestamp_with_time_zone_null("replayed_at"),
            string("tenant_id").default("").to_owned(),
        ] {
            manager
                .alter_table(
                    Table::alter()
                        .table("event_dead_letter")
                        .add_column(column)
                        .to_owned(),
                )
                .await?;
        }
        Ok(())
    }
}

/// `event_log_identity`: the epoch of a producer's log (its one row is made on first use).
pub struct CreateEventLogIdentity;

impl MigrationName for CreateEventLogIdentity {
    fn name(&self) -> &str {
        "m20261203_000004_create_event_log_identity"
    }
}

#[async_trait::async_trait]
impl MigrationTrait for CreateEventLogIdentity {
    async fn up(&self, manager: &SchemaManager) -> Result<(), DbErr> {
        manager
            .create_table(
                Table::create()
                    .table("event_log_identity")
                    .col(integer("id").primary_key())
                    .col(string("epoch"))
                    .col(timestamp_with_time_zone("created_at"))
                    .to_owned(),
            )
            .await
    }
}

/// A consumer's cursor keeps the epoch of the log it follows and the id of the event at its
/// position, so a log that was reset, restored or replaced is told apart from the one it followed.
pub struct CursorsKnowTheirLog;

impl MigrationName for CursorsKnowTheirLog {
    fn name(&self) -> &str {
        "m20261203_000005_cursors_know_their_log"
    }
}

#[async_trait::async_trait]
impl MigrationTrait for CursorsKnowTheirLog {
    async fn up(&self, manager: &SchemaManager) -> Result<(), DbErr> {
        for column in [
            string("epoch").default("").to_owned(),
            string("last_event_id").default("").to_owned(),
        ] {
            manager
                .alter_table(
                    Table::alter()
                        .table("event_cursor")
                        .add_column(column)
                        .to_owned(),
                )
                .await?;
        }
        Ok(())
    }
}
