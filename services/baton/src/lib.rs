//! The Baton binary's library: the whole suite in one process ([`suite`]), the demo ([`demo`]),
//! the reports ([`report`]), the dead letters ([`events`]) and CSV imports ([`import`]),
//! shared by the CLI and the end-to-end tests. The benchmarks live in their own crate
//! (`services/bench`, binary `baton-bench`), so this binary carries no test helpers.

pub mod access;
pub mod demo;
pub mod events;
pub mod import;
pub mod report;
pub mod suite;
