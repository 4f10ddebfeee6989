//! distribution's persistence. Building blocks first, each importing only those before it:
//! [`entities`], [`outbox`] (the events of assignments), [`timers`] (SLA timer rows),
//! [`rotations`], [`rules`], [`batch`] (what a run of decisions shares and the writes it holds),
//! [`signals`] (what routing knows of a lead), [`sla`] (which timers an assignment or handoff
//! starts), [`routing`] (the decision path). Then the use cases, each an `impl Store`:
//! [`setup`] (teams, reps, rules), [`touches`] (what counts as an IS touch), [`assignments`],
//! [`leads`] (what a handoff checks of its lead; the tenant's handoff settings), [`handoffs`]
//! (creating one), [`handoff_steps`] (every later step and its clocks), [`weighting`]
//! (performance-weighted routing), and the [`sla_worker`] that fires due timers and hands what
//! must be reassigned to routing.

pub mod assignments;
pub mod batch;
pub mod entities;
pub mod erasure;
pub mod handoff_steps;
pub mod handoffs;
pub mod leads;
pub mod outbox;
pub mod rotations;
pub mod routing;
pub mod rules;
pub mod setup;
pub mod signals;
pub mod sla;
pub mod sla_worker;
pub mod timers;
pub mod touches;
pub mod weighting;

use baton_shared::events::EventLog;
use sea_orm::DatabaseConnection;

#[derive(Clone)]
pub struct Store {
    db: DatabaseConnection,
    log: EventLog,
}

impl Store {
    pub fn new(db: DatabaseConnection, log: EventLog) -> Self {
        Store { db, log }
    }
}
