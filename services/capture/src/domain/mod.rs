//! Capture's rules: identification and validation of what callers send. Pure; no I/O.

pub mod activity;
pub mod lead;
pub mod profile;
pub mod update;
pub mod visits;
