//! Files a service watches (keys, certificates): what tells one version of a file from the next,
//! and the wait between looks.

use std::{path::PathBuf, time::Duration, time::SystemTime};

use tokio_util::sync::CancellationToken;

/// What identifies each file's version: its modification time and length (None if missing).
pub fn stamps(files: &[PathBuf]) -> Vec<Option<(SystemTime, u64)>> {
    files
        .iter()
        .map(|f| {
            std::fs::metadata(f)
                .ok()
                .and_then(|m| Some((m.modified().ok()?, m.len())))
        })
        .collect()
}

/// Sleeps `d` unless `token` fires first; returns false if it fired.
pub async fn sleep_or_cancel(d: Duration, token: &CancellationToken) -> bool {
    tokio::select! {
        _ = tokio::time::sleep(d) => true,
        _ = token.cancelled() => false,
    }
}
