//! nurture's migrations (its own database only).

use sea_orm_migration::prelude::*;

mod m20261123_000010_create_sequences;
mod m20261202_000020_sequences_that_send;

pub struct Migrator;

#[async_trait::async_trait]
impl MigratorTrait for Migrator {
    fn migrations() -> Vec<Box<dyn MigrationTrait>> {
        vec![
            Box::new(baton_shared::events::migration::CreateEventLog),
            Box::new(baton_shared::events::migration::CreateEventConsumerTables),
            Box::new(m20261123_000010_create_sequences::Migration),
            Box::new(m20261202_000020_sequences_that_send::Migration),
            Box::new(baton_shared::events::migration::KeepDeadLetteredEvents),
            Box::new(baton_shared::events::migration::CreateEventLogIdentity),
            Box::new(baton_shared::events::migration::CursorsKnowTheirLog),
        ]
    }
}
