//! The Baton binary's library: the whole suite in one process ([`suite`]), the demo ([`demo`]) and
//! the benchmarks ([`bench`]),
//! shared by the CLI and the end-to-end tests.

pub mod bench;
pub mod demo;
pub mod suite;
