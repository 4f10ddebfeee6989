//! Qualification's rules: scoring and lifecycle stages. Pure; no I/O.

pub mod ranks;
pub mod scoring;
pub mod stages;
