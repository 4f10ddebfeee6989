//! Nurture's rules: sequences and when their steps fall due. Pure; no I/O.

pub mod sequences;
