//! What every benchmark reports: throughput and latency percentiles of a measurement, and the
//! median of several rounds.

use std::{
    sync::{
        Arc,
        atomic::{AtomicU64, Ordering},
    },
    time::{Duration, Instant},
};

/// What to measure.
pub struct BenchPlan {
    pub concurrency: usize,
    pub duration: Duration,
    pub rounds: usize,
}

/// One measurement: calls completed, wall time, latency percentiles.
#[derive(Debug, Clone)]
pub struct Measurement {
    pub calls: u64,
    pub errors: u64,
    pub elapsed: Duration,
    pub p50: Duration,
    pub p99: Duration,
}

impl Measurement {
    pub fn per_second(&self) -> f64 {
        self.calls as f64 / self.elapsed.as_secs_f64()
    }
}

/// Median of several rounds (by throughput), with its own percentiles.
pub fn median(mut rounds: Vec<Measurement>) -> Measurement {
    rounds.sort_by(|a, b| a.per_second().total_cmp(&b.per_second()));
    rounds.swap_remove(rounds.len() / 2)
}

/// Runs `call` from `concurrency` tasks for `duration`, on clones of one channel.
pub async fn drive<F, Fut>(concurrency: usize, duration: Duration, call: F) -> Measurement
where
    F: Fn(u64) -> Fut + Send + Sync + 'static,
    Fut: std::future::Future<Output = bool> + Send,
{
    let call = Arc::new(call);
    let counter = Arc::new(AtomicU64::new(0));
    let started = Instant::now();
    let deadline = started + duration;
    let mut tasks = Vec::new();
    for _ in 0..concurrency {
        let (call, counter) = (call.clone(), counter.clone());
        tasks.push(tokio::spawn(async move {
            let mut latencies = Vec::new();
            let mut errors = 0u64;
            while Instant::now() < deadline {
                let n = counter.fetch_add(1, Ordering::Relaxed);
                let t = Instant::now();
                if call(n).await {
                    latencies.push(t.elapsed());
                } else {
                    errors += 1;
                }
            }
            (latencies, errors)
        }));
    }
    let mut latencies = Vec::new();
    let mut errors = 0;
    for t in tasks {
        let (l, e) = t.await.expect("bench task");
        latencies.extend(l);
        errors += e;
    }
    let elapsed = started.elapsed();
    latencies.sort();
    let pct = |p: f64| {
        latencies
            .get(((latencies.len() as f64 * p) as usize).min(latencies.len().saturating_sub(1)))
            .copied()
    };
    Measurement {
        calls: latencies.len() as u64,
        errors,
        elapsed,
        p50: pct(0.50).unwrap_or_default(),
        p99: pct(0.99).unwrap_or_default(),
    }
}

/// Starts `call` at a fixed `rate` per second for `duration` whatever the answers (an open
/// loop: a slow answer does not hold back the next call), at most `in_flight` at once. Each
/// latency runs from the moment its call was due, not from when it started, so a stall counts
/// against every call it delayed (no coordinated omission). A call that could not start because
/// `in_flight` were pending counts as an error.
pub async fn drive_at_rate<F, Fut>(
    rate: u32,
    duration: Duration,
    in_flight: usize,
    call: F,
) -> Measurement
where
    F: Fn(u64) -> Fut + Send + Sync + 'static,
    Fut: std::future::Future<Output = bool> + Send + 'static,
{
    let call = Arc::new(call);
    let limit = Arc::new(tokio::sync::Semaphore::new(in_flight.max(1)));
    let interval = Duration::from_secs_f64(1.0 / f64::from(rate.max(1)));
    let total = (duration.as_secs_f64() * f64::from(rate)) as u64;
    let started = Instant::now();
    let mut tasks = Vec::with_capacity(total as usize);
    let mut refused = 0u64;
    for n in 0..total {
        let due = started + interval.mul_f64(n as f64);
        // Due times are absolute: after a late wake-up the calls behind catch up at once.
        if due > Instant::now() {
            tokio::time::sleep_until(due.into()).await;
        }
        let Ok(permit) = limit.clone().try_acquire_owned() else {
            refused += 1;
            continue;
        };
        let call = call.clone();
        tasks.push(tokio::spawn(async move {
            let ok = call(n).await;
            drop(permit);
            ok.then(|| due.elapsed())
        }));
    }
    let mut latencies = Vec::with_capacity(tasks.len());
    let mut errors = refused;
    for t in tasks {
        match t.await {
            Ok(Some(l)) => latencies.push(l),
            _ => errors += 1,
        }
    }
    let elapsed = started.elapsed();
    latencies.sort();
    let pct = |p: f64| {
        latencies
            .get(((latencies.len() as f64 * p) as usize).min(latencies.len().saturating_sub(1)))
            .copied()
            .unwrap_or_default()
    };
    Measurement {
        calls: latencies.len() as u64,
        errors,
        elapsed,
        p50: pct(0.50),
        p99: pct(0.99),
    }
}

pub fn report(label: &str, m: &Measurement) -> String {
    format!(
        "{label:<34} {:>9.0} req/s   p50 {:>7.2} ms   p99 {:>7.2} ms   ({} calls, {} errors)",
        m.per_second(),
        m.p50.as_secs_f64() * 1e3,
        m.p99.as_secs_f64() * 1e3,
        m.calls,
        m.errors
    )
}

/// How many leads reached a point, and how long it took them: median, 99th percentile, slowest.
#[derive(Debug, Clone, Copy, Default)]
pub struct Latency {
    pub count: u64,
    pub p50: Duration,
    pub p99: Duration,
    pub max: Duration,
}

pub fn percentiles(mut v: Vec<Duration>) -> Latency {
    v.sort();
    let pct = |p: f64| {
        v.get(((v.len() as f64 * p) as usize).min(v.len().saturating_sub(1)))
            .copied()
            .unwrap_or_default()
    };
    Latency {
        count: v.len() as u64,
        p50: pct(0.50),
        p99: pct(0.99),
        max: v.last().copied().unwrap_or_default(),
    }
}
