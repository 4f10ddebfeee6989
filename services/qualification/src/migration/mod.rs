//! qualification's migrations (its own database only).

use sea_orm_migration::prelude::*;

mod m20261123_000010_create_scoring;
mod m20261123_000020_bant_and_stage_reasons;
mod m20261123_000030_ranks;
mod m20261124_000040_versioned_models;
mod m20261201_000050_stage_rules;
mod m20261203_000060_lead_outcomes;
mod m20261203_000070_rerank_in_background;

pub struct Migrator;

#[async_trait::async_trait]
impl MigratorTrait for Migrator {
    fn migrations() -> Vec<Box<dyn MigrationTrait>> {
        vec![
            Box::new(baton_shared::events::migration::CreateEventLog),
            Box::new(baton_shared::events::migration::CreateEventConsumerTables),
            Box::new(m20261123_000010_create_scoring::Migration),
            Box::new(m20261123_000020_bant_and_stage_reasons::Migration),
            Box::new(m20261123_000030_ranks::Migration),
            Box::new(m20261124_000040_versioned_models::Migration),
            Box::new(m20261201_000050_stage_rules::Migration),
            Box::new(m20261203_000060_lead_outcomes::Migration),
            Box::new(m20261203_000070_rerank_in_background::Migration),
            Box::new(baton_shared::events::migration::KeepDeadLetteredEvents),
            Box::new(baton_shared::events::migration::CreateEventLogIdentity),
            Box::new(baton_shared::events::migration::CursorsKnowTheirLog),
        ]
    }
}
