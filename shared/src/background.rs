//! Background rounds every service runs the same way (recomputing scores, firing SLA timers):
//! again at once while a round finds work, otherwise after an interval, until shutdown.

use std::{future::Future, time::Duration};

use sea_orm::DbErr;
use tokio_util::sync::CancellationToken;

/// Runs `round` until `shutdown`. A round returns how much it did: more than 0 runs the next one
/// at once; 0 waits `interval`. A failed round is logged and retried after `interval`.
pub async fn repeat<F, Fut>(
    what: &'static str,
    interval: Duration,
    shutdown: CancellationToken,
    mut round: F,
) where
    F: FnMut() -> Fut,
    Fut: Future<Output = Result<u64, DbErr>>,
{
    loop {
        let busy = match round().await {
            Ok(n) => n > 0,
            Err(e) => {
                tracing::warn!(error = %e, "{what}: round failed");
                false
            }
        };
        if busy && !shutdown.is_cancelled() {
            continue;
        }
        tokio::select! {
            _ = shutdown.cancelled() => return,
            _ = tokio::time::sleep(interval) => {}
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::sync::{
        Arc,
        atomic::{AtomicU64, Ordering},
    };

    #[tokio::test]
    async fn busy_rounds_run_back_to_back_and_idle_ones_wait() {
        let rounds = Arc::new(AtomicU64::new(0));
        let shutdown = CancellationToken::new();
        let counted = rounds.clone();
        let task = tokio::spawn(repeat(
            "test",
            Duration::from_secs(3600),
            shutdown.clone(),
            move || {
                let counted = counted.clone();
                async move {
                    let n = counted.fetch_add(1, Ordering::SeqCst);
                    // Three busy rounds, then idle (an hour's wait).
                    Ok(u64::from(n < 3))
                }
            },
        ));
        tokio::time::sleep(Duration::from_millis(200)).await;
        assert_eq!(rounds.load(Ordering::SeqCst), 4);
        shutdown.cancel();
        task.await.unwrap();
    }
}
