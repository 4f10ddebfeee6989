//! The event backbone (docs/architecture.md): events are never lost and never applied twice.
//!
//! - A producer writes each event in the same transaction as the change it describes
//!   ([`EventLog::append`]), then says so ([`EventLog::notify_committed`]).
//! - It serves the log over `baton.events.v1.EventLog/Subscribe` ([`EventLog::grpc_service`]):
//!   everything after a position, then live pushes, with a poll fallback for commits made by other
//!   replicas.
//! - A consumer ([`consumer::Consumer`]) keeps its cursor per source in its own database and
//!   advances it in the transaction that applies the event, so a crash or a redelivery can neither
//!   skip nor repeat an event; it reconnects with backoff while the producer is down.
//!
//! Ordering: a reader must never see position n+1 while n is still in flight, or it would skip n.
//! On PostgreSQL, writers append to `event_outbox` without waiting for each other, and a relay
//! (one at a time per database, under a transaction-scoped advisory lock) moves outbox rows into
//! `event_log` in batches, drawing positions there: each batch commits whole, after the previous
//! one, so positions become visible strictly in order. On SQLite writers append to `event_log`
//! directly: its single writer already draws positions in commit order.

pub mod consumer;
mod dead_letters;
mod log;
pub mod migration;
pub mod store;

pub use baton_proto::events::v1::Event;
pub use consumer::Replay;
pub use consumer::{ConsumeError, Consumer, EventHandler};
pub use dead_letters::DeadLetterApi;
pub use log::{EventLog, EventLogApi};

/// gRPC name of the event log service, for health reporting.
pub const EVENT_LOG_SERVICE_NAME: &str = "baton.events.v1.EventLog";

/// gRPC name of the dead-letter service, for health reporting.
pub const DEAD_LETTERS_SERVICE_NAME: &str = "baton.events.v1.DeadLetters";
