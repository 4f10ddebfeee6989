//! Nurture's rules: what a sequence is and how an enrolment moves through it, whether a mail may
//! go, templates, tracking tokens, machine-made hits, settings. Pure; no I/O.

pub mod bots;
pub mod consent;
pub mod defaults;
pub mod definition;
pub mod flow;
pub mod render;
pub mod segment;
pub mod settings;
pub mod token;
