//! The Baton binary's library: the whole suite in one process ([`suite`]) and the demo ([`demo`]),
//! shared by the CLI and the end-to-end tests.

pub mod demo;
pub mod suite;
