//! nurture's persistence: one module per kind of data, each change and its events in one
//! transaction.

pub mod enrollments;
pub mod entities;
pub mod erasure;
pub mod leads;
pub mod outbox;
pub mod recycling;
pub mod schedule;
pub mod segments;
pub mod sending;
pub mod sequences;
pub mod settings;
pub mod touches;

use baton_shared::events::EventLog;
use sea_orm::{ConnectionTrait, DatabaseConnection, DbBackend};

#[derive(Clone)]
pub struct Store {
    pub db: DatabaseConnection,
    pub log: EventLog,
}

impl Store {
    pub fn new(db: DatabaseConnection, log: EventLog) -> Self {
        Store { db, log }
    }
}

/// Whether `c` is PostgreSQL (row locks with `FOR UPDATE`, claims with `SKIP LOCKED`); SQLite
/// has one writer, which serialises the same work.
pub fn is_postgres<C: ConnectionTrait>(c: &C) -> bool {
    c.get_database_backend() == DbBackend::Postgres
}
