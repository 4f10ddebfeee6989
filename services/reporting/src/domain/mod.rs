//! Reporting's rules: funnel steps and conversion rates, the KPI engine, plans. Pure; no I/O.

pub mod accounts;
pub mod attainment;
pub mod email;
pub mod factors;
pub mod funnel;
pub mod journal;
pub mod kpis;
pub mod planning;
