//! Reporting's rules: funnel steps and conversion rates. Pure; no I/O.

pub mod funnel;
pub mod kpis;
