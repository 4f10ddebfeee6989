//! The Baton binary's library: the whole suite in one process ([`suite`]), the demo ([`demo`]) and
//! the reports ([`report`]),
//! shared by the CLI and the end-to-end tests. The benchmarks live in their own crate
//! (`services/bench`, binary `baton-bench`), so this binary carries no test helpers.

pub mod access;
pub mod demo;
pub mod report;
pub mod suite;
