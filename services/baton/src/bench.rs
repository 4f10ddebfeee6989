//! `baton bench`: throughput and latency of the gRPC edge, measured beside a baseline in the same
//! run. The baseline is grpc.health.v1/Check on the same server and tower layers (the "echo
//! ceiling": what the stack serves when a handler does no work); the subject is capture's
//! `CaptureLead` (validate, dedupe, insert lead + request + event in one transaction).

use std::{
    sync::{
        Arc,
        atomic::{AtomicU64, Ordering},
    },
    time::{Duration, Instant},
};

use anyhow::Context;
use baton_proto::capture::v1::{
    CaptureLeadRequest, LeadSource, capture_service_client::CaptureServiceClient,
};
use baton_shared::{
    ServiceName,
    testing::{TestDatabase, bind_ephemeral, channel, settings_with, spawn},
};
use tonic::transport::Channel;
use tonic_health::pb::{HealthCheckRequest, health_client::HealthClient};

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
fn median(mut rounds: Vec<Measurement>) -> Measurement {
    rounds.sort_by(|a, b| a.per_second().total_cmp(&b.per_second()));
    rounds.swap_remove(rounds.len() / 2)
}

/// Runs `call` from `concurrency` tasks for `duration`, on clones of one channel.
async fn drive<F, Fut>(concurrency: usize, duration: Duration, call: F) -> Measurement
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

/// Baseline and subject, for one database (SQLite when `BATON_TEST_DATABASE_URL` is unset,
/// otherwise a scratch PostgreSQL database on that server).
pub async fn capture_lead(plan: &BenchPlan) -> anyhow::Result<(Measurement, Measurement, bool)> {
    let db = TestDatabase::new("bench_capture").await;
    let mut settings = settings_with(&[(ServiceName::Capture, &db)]);
    settings.server.concurrency_limit = settings.server.concurrency_limit.max(plan.concurrency * 2);
    let listener = bind_ephemeral(&mut settings, ServiceName::Capture).await;
    let service = spawn(
        ServiceName::Capture,
        &Arc::new(settings),
        listener,
        baton_capture::run,
    );
    let ch: Channel = channel(&service.endpoint).await;

    // Warm up both paths (connections, prepared statements, migrations done).
    let mut warm = CaptureServiceClient::new(ch.clone());
    warm.capture_lead(capture_request(u64::MAX))
        .await
        .context("warm-up CaptureLead")?;

    let mut echo_rounds = Vec::new();
    let mut capture_rounds = Vec::new();
    let run_id = uuid::Uuid::now_v7().simple().to_string();
    for round in 0..plan.rounds {
        let health = HealthClient::new(ch.clone());
        echo_rounds.push(
            drive(plan.concurrency, plan.duration, move |_| {
                let mut c = health.clone();
                async move {
                    c.check(HealthCheckRequest {
                        service: String::new(),
                    })
                    .await
                    .is_ok()
                }
            })
            .await,
        );
        let client = CaptureServiceClient::new(ch.clone());
        let prefix = format!("{run_id}-{round}");
        capture_rounds.push(
            drive(plan.concurrency, plan.duration, move |n| {
                let mut c = client.clone();
                let mut req = capture_request(n);
                req.request_id = format!("{prefix}-{n}");
                req.email = format!("bench{n}.{prefix}@example.com");
                async move { c.capture_lead(req).await.is_ok() }
            })
            .await,
        );
    }
    let postgres = db.is_postgres();
    service.stop().await;
    Ok((median(echo_rounds), median(capture_rounds), postgres))
}

fn capture_request(n: u64) -> CaptureLeadRequest {
    CaptureLeadRequest {
        request_id: format!("warm-{n}"),
        email: format!("warm{n}@example.com"),
        first_name: "Bench".into(),
        last_name: "Lead".into(),
        company_name: "Bench KK".into(),
        source: Some(LeadSource {
            channel: "bench".into(),
            campaign: String::new(),
            ..Default::default()
        }),
        captured_at: None,
        ..Default::default()
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

/// ImportLeads beside PostgreSQL's COPY of the same rows into a plain table of the same database
/// (the baseline named by issue 3); on SQLite there is no COPY and only ImportLeads is measured.
/// Returns (COPY rows/s if PostgreSQL, ImportLeads rows/s), medians over `rounds`.
pub async fn import_leads(rows: usize, rounds: usize) -> anyhow::Result<(Option<f64>, f64)> {
    use baton_proto::capture::v1::ImportLeadsRequest;
    use sea_orm::{ConnectionTrait, sqlx::postgres::PgPoolCopyExt};

    let db = TestDatabase::new("bench_import").await;
    let mut settings = settings_with(&[(ServiceName::Capture, &db)]);
    let listener = bind_ephemeral(&mut settings, ServiceName::Capture).await;
    let settings = Arc::new(settings);
    let service = spawn(
        ServiceName::Capture,
        &settings,
        listener,
        baton_capture::run,
    );
    let mut client = CaptureServiceClient::new(channel(&service.endpoint).await);
    let direct = if db.is_postgres() {
        let conn = baton_shared::db::connect(&db.url, &settings.database).await?;
        conn.execute_unprepared(
            "CREATE TABLE bench_copy (email text, first_name text, last_name text, company_name text, channel text, campaign text)",
        )
        .await?;
        Some(conn)
    } else {
        None
    };
    let run_id = uuid::Uuid::now_v7().simple().to_string();
    let mut copy_rates = Vec::new();
    let mut import_rates = Vec::new();
    for round in 0..rounds {
        let prefix = format!("{run_id}-{round}");
        if let Some(conn) = &direct {
            let mut csv = String::with_capacity(rows * 80);
            for n in 0..rows {
                csv.push_str(&format!(
                    "copy{n}.{prefix}@example.com,Bench,Lead,Bench KK,bench,\n"
                ));
            }
            let started = Instant::now();
            let mut copy = conn
                .get_postgres_connection_pool()
                .copy_in_raw("COPY bench_copy FROM STDIN WITH (FORMAT csv)")
                .await?;
            copy.send(csv.into_bytes()).await?;
            copy.finish().await?;
            copy_rates.push(rows as f64 / started.elapsed().as_secs_f64());
        }
        let batches: Vec<ImportLeadsRequest> = (0..rows)
            .collect::<Vec<_>>()
            .chunks(1000)
            .enumerate()
            .map(|(i, chunk)| ImportLeadsRequest {
                import_id: if i == 0 {
                    format!("bench-{prefix}")
                } else {
                    String::new()
                },
                rows: chunk
                    .iter()
                    .map(|n| {
                        let mut r = capture_request(*n as u64);
                        r.request_id.clear();
                        r.email = format!("import{n}.{prefix}@example.com");
                        r
                    })
                    .collect(),
            })
            .collect();
        let started = Instant::now();
        let answer = client
            .import_leads(tokio_stream::iter(batches))
            .await
            .context("ImportLeads")?
            .into_inner();
        import_rates.push(rows as f64 / started.elapsed().as_secs_f64());
        anyhow::ensure!(
            answer.created == rows as i64,
            "import created {} of {rows}",
            answer.created
        );
    }
    service.stop().await;
    let median = |mut v: Vec<f64>| {
        v.sort_by(f64::total_cmp);
        v.get(v.len() / 2).copied()
    };
    Ok((median(copy_rates), median(import_rates).unwrap_or_default()))
}
