//! Progress bars for long work (the CLI's imports, replays and recomputes; the benchmarks' seeding
//! and measured calls), with indicatif: drawn on
//! stderr while it is a terminal, hidden otherwise (CI, pipes), so output stays machine-readable.

use indicatif::{ProgressBar, ProgressFinish, ProgressStyle};

/// A bar that clears itself when it is dropped, however its work ends.
fn styled(total: u64, template: &str) -> ProgressBar {
    ProgressBar::new(total)
        .with_style(
            ProgressStyle::with_template(template).unwrap_or_else(|_| ProgressStyle::default_bar()),
        )
        .with_finish(ProgressFinish::AndClear)
}

/// A bar over `total` things, e.g. "replay 3/10".
pub fn counting(total: u64, what: &str) -> ProgressBar {
    styled(total, "{prefix} {bar:40} {pos}/{len} {elapsed} {msg}").with_prefix(what.to_owned())
}

/// A bar over `total` bytes of a file.
pub fn bytes(total: u64) -> ProgressBar {
    styled(total, "{bar:40} {bytes}/{total_bytes} {elapsed} {msg}")
}
