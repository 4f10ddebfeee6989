//! capture's migrations (its own database only).

use sea_orm_migration::prelude::*;

mod m20261123_000010_create_leads;
mod m20261123_000020_lead_profile_and_companies;
mod m20261123_000030_erasure_and_visits;
mod m20261123_000040_merges;
mod m20261202_000050_activity_performer;
mod m20261202_000060_machine_activity;

pub struct Migrator;

#[async_trait::async_trait]
impl MigratorTrait for Migrator {
    fn migrations() -> Vec<Box<dyn MigrationTrait>> {
        vec![
            Box::new(baton_shared::events::migration::CreateEventLog),
            Box::new(m20261123_000010_create_leads::Migration),
            Box::new(m20261123_000020_lead_profile_and_companies::Migration),
            Box::new(m20261123_000030_erasure_and_visits::Migration),
            Box::new(m20261123_000040_merges::Migration),
            Box::new(m20261202_000050_activity_performer::Migration),
            Box::new(m20261202_000060_machine_activity::Migration),
            Box::new(baton_shared::events::migration::CreateEventLogIdentity),
        ]
    }
}
