//! distribution's migrations (its own database only).

use sea_orm_migration::prelude::*;

mod m20261123_000010_create_reps_and_assignments;
mod m20261124_000020_handoffs_and_contracts;
mod m20261124_000030_routing;
mod m20261124_000040_sla_timers;
mod m20261124_000050_rep_open_leads;
mod m20261201_000060_touch_rules;
mod m20261202_000070_outcome_mrr;
mod m20261203_000080_lead_records;
mod m20261203_000090_decision_clock;
mod m20261204_000100_performance_weights;

pub struct Migrator;

#[async_trait::async_trait]
impl MigratorTrait for Migrator {
    fn migrations() -> Vec<Box<dyn MigrationTrait>> {
        vec![
            Box::new(baton_shared::events::migration::CreateEventLog),
            Box::new(baton_shared::events::migration::CreateEventConsumerTables),
            Box::new(m20261123_000010_create_reps_and_assignments::Migration),
            Box::new(m20261124_000020_handoffs_and_contracts::Migration),
            Box::new(m20261124_000030_routing::Migration),
            Box::new(m20261124_000040_sla_timers::Migration),
            Box::new(m20261124_000050_rep_open_leads::Migration),
            Box::new(m20261201_000060_touch_rules::Migration),
            Box::new(m20261202_000070_outcome_mrr::Migration),
            Box::new(m20261203_000080_lead_records::Migration),
            Box::new(m20261203_000090_decision_clock::Migration),
            Box::new(m20261204_000100_performance_weights::Migration),
            Box::new(baton_shared::events::migration::KeepDeadLetteredEvents),
            Box::new(baton_shared::events::migration::CreateEventLogIdentity),
            Box::new(baton_shared::events::migration::CursorsKnowTheirLog),
        ]
    }
}
