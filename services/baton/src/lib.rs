//! The Baton binary's library: the whole suite in one process ([`suite`]), the demo ([`demo`]),
//! the reports ([`report`]), the dead letters ([`events`]), CSV imports ([`import`]) and the key
//! material `baton up` makes on first start ([`local_keys`]),
//! shared by the CLI and the end-to-end tests. The benchmarks live in their own crate
//! (`services/bench`, binary `baton-bench`), so this binary carries no test helpers.

pub mod access;
pub mod demo;
pub mod events;
pub mod import;
pub mod local_keys;
pub mod models;
pub mod progress;
pub mod report;
pub mod suite;
