//! The event backbone (DESIGN rule 2): events are never lost and never applied twice.
//!
//! - A producer writes each event into its own append-only `event_log` table in the same
//!   transaction as the change it describes ([`EventLog::append`]), then wakes its subscribers
//!   ([`EventLog::notify_committed`]).
//! - It serves the log over `baton.events.v1.EventLog/Subscribe` ([`EventLog::grpc_service`]):
//!   everything after a position, then live pushes, with a poll fallback for commits made by other
//!   replicas.
//! - A consumer ([`consumer::Consumer`]) keeps its cursor per source in its own database and
//!   advances it in the transaction that applies the event, so a crash or a redelivery can neither
//!   skip nor repeat an event; it reconnects with backoff while the producer is down.
//!
//! Ordering on PostgreSQL: positions come from a sequence, and a writer takes a transaction-scoped
//! advisory lock just before it draws a position, held until commit. Positions are therefore drawn
//! in commit order, and a reader can never see position n+1 committed while n is still in flight.
//! On SQLite the single writer gives the same guarantee.

pub mod consumer;
mod log;
pub mod migration;
pub(crate) mod store;

pub use baton_proto::events::v1::Event;
pub use consumer::{ConsumeError, Consumer, EventHandler};
pub use log::{EventLog, EventLogApi};

/// gRPC name of the event log service, for health reporting.
pub const EVENT_LOG_SERVICE_NAME: &str = "baton.events.v1.EventLog";
