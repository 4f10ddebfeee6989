//! Distribution's rules: who gets the next lead, and what a valid rep is. Pure; no I/O.

pub mod handoffs;
pub mod reps;
pub mod routing;
pub mod sla;
pub mod touches;
pub mod weighting;
