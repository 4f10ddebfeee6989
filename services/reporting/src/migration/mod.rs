//! reporting's migrations (its own database only).

use sea_orm_migration::prelude::*;

mod m20261123_000010_create_funnel_facts;
mod m20261124_000020_contracts;
mod m20261201_000030_kpi_facts;
mod m20261202_000040_kpi_cube;
mod m20261203_000050_attainment;
mod m20261203_000060_scorecards;
mod m20261203_000070_journal;

pub struct Migrator;

#[async_trait::async_trait]
impl MigratorTrait for Migrator {
    fn migrations() -> Vec<Box<dyn MigrationTrait>> {
        vec![
            Box::new(baton_shared::events::migration::CreateEventLog),
            Box::new(baton_shared::events::migration::CreateEventConsumerTables),
            Box::new(m20261123_000010_create_funnel_facts::Migration),
            Box::new(m20261124_000020_contracts::Migration),
            Box::new(m20261201_000030_kpi_facts::Migration),
            Box::new(m20261202_000040_kpi_cube::Migration),
            Box::new(m20261203_000050_attainment::Migration),
            Box::new(m20261203_000060_scorecards::Migration),
            Box::new(m20261203_000070_journal::Migration),
            Box::new(baton_shared::events::migration::KeepDeadLetteredEvents),
            Box::new(baton_shared::events::migration::CreateEventLogIdentity),
            Box::new(baton_shared::events::migration::CursorsKnowTheirLog),
        ]
    }
}
