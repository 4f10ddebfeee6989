//! `CaptureLead` beside the echo ceiling (grpc.health.v1/Check on the same server and tower
//! layers: what the stack serves when a handler does no work), and `ImportLeads` beside
//! PostgreSQL's COPY.

use std::{sync::Arc, time::Instant};

use anyhow::Context;
use baton_proto::capture::v1::{
    CaptureLeadRequest, LeadSource, capture_service_client::CaptureServiceClient,
};
use baton_shared::peer::AuthChannel as Channel;
use baton_shared::{
    ServiceName,
    testing::{RunningService, TestDatabase, bind_ephemeral, channel, settings_with, spawn},
};
use tonic_health::pb::{HealthCheckRequest, health_client::HealthClient};

use crate::measure::{BenchPlan, Measurement, drive, median, report};

/// A capture service on a scratch database (SQLite when `BATON_TEST_DATABASE_URL` is unset,
/// otherwise a scratch PostgreSQL database on that server), warmed up. With `auth`, every call
/// carries a token the server verifies and authorises (the production path); without, the server
/// runs with `auth.enabled = false`. The tenant rate limit is off, so that it caps nothing.
async fn capture_service(
    plan: &BenchPlan,
    auth: bool,
) -> anyhow::Result<(RunningService, TestDatabase, Channel)> {
    let db = TestDatabase::new("bench_capture").await;
    let mut settings = settings_with(&[(ServiceName::Capture, &db)]);
    settings.auth.enabled = auth;
    settings.rate_limit.per_tenant_per_second = 0;
    settings.server.concurrency_limit = settings.server.concurrency_limit.max(plan.concurrency * 2);
    let listener = bind_ephemeral(&mut settings, ServiceName::Capture).await;
    let service = spawn(
        ServiceName::Capture,
        &Arc::new(settings),
        listener,
        baton_capture::run,
    );
    let ch: Channel = channel(&service.endpoint).await;
    CaptureServiceClient::new(ch.clone())
        .capture_lead(capture_request(u64::MAX))
        .await
        .context("warm-up CaptureLead")?;
    Ok((service, db, ch))
}

/// CaptureLead rounds on `ch`, each of `plan.duration`, with fresh leads.
async fn capture_round(plan: &BenchPlan, ch: &Channel, prefix: String) -> Measurement {
    let client = CaptureServiceClient::new(ch.clone());
    drive(plan.concurrency, plan.duration, move |n| {
        let mut c = client.clone();
        let mut req = capture_request(n);
        req.request_id = format!("{prefix}-{n}");
        req.email = format!("bench{n}.{prefix}@example.com");
        async move { c.capture_lead(req).await.is_ok() }
    })
    .await
}

/// The echo ceiling, CaptureLead with its token verified, and CaptureLead with auth off: two
/// servers on two scratch databases of the same kind, their rounds interleaved so that both
/// see the same machine. Returns the medians and whether the databases were PostgreSQL.
pub async fn capture_lead(
    plan: &BenchPlan,
) -> anyhow::Result<(Measurement, Measurement, Measurement, bool)> {
    let (secured, db, ch) = capture_service(plan, true).await?;
    let (open, _open_db, open_ch) = capture_service(plan, false).await?;
    let mut echo_rounds = Vec::new();
    let mut capture_rounds = Vec::new();
    let mut open_rounds = Vec::new();
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
        capture_rounds.push(capture_round(plan, &ch, format!("{run_id}-{round}")).await);
        open_rounds.push(capture_round(plan, &open_ch, format!("{run_id}-open-{round}")).await);
    }
    let postgres = db.is_postgres();
    secured.stop().await;
    open.stop().await;
    Ok((
        median(echo_rounds),
        median(capture_rounds),
        median(open_rounds),
        postgres,
    ))
}

pub fn capture_request(n: u64) -> CaptureLeadRequest {
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

/// ImportLeads beside PostgreSQL's COPY: medians over the rounds, in rows per second.
pub struct ImportRates {
    /// COPY of the same number of rows into a plain table of six text columns and no index (the
    /// baseline named by issue 3). PostgreSQL only.
    pub copy_plain: Option<f64>,
    /// COPY of the very lead rows the import stored into a table shaped like capture's `lead`
    /// (same columns, constraints and indexes). PostgreSQL only.
    pub copy_lead: Option<f64>,
    /// ImportLeads of the same number of fresh leads.
    pub import: f64,
}

/// ImportLeads of `rows` fresh leads per round (1,000 rows per message) beside PostgreSQL's COPY
/// (see [`ImportRates`]); on SQLite there is no COPY and only ImportLeads is measured.
pub async fn import_leads(rows: usize, rounds: usize) -> anyhow::Result<ImportRates> {
    use sea_orm::ConnectionTrait;

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
    let mut copy_plain = Vec::new();
    let mut copy_lead = Vec::new();
    let mut import_rates = Vec::new();
    for round in 0..rounds {
        let prefix = format!("{run_id}-{round}");
        if let Some(conn) = &direct {
            copy_plain.push(copy_plain_rows(conn, rows, &prefix).await?);
        }
        import_rates.push(import_round(&mut client, rows, &prefix).await?);
        if let Some(conn) = &direct {
            copy_lead.push(copy_stored_leads(conn, rows, &prefix).await?);
        }
    }
    service.stop().await;
    let median = |mut v: Vec<f64>| {
        v.sort_by(f64::total_cmp);
        v.get(v.len() / 2).copied()
    };
    Ok(ImportRates {
        copy_plain: median(copy_plain),
        copy_lead: median(copy_lead),
        import: median(import_rates).unwrap_or_default(),
    })
}

/// The baseline: COPY of `rows` rows into the plain table; rows per second.
async fn copy_plain_rows(
    conn: &sea_orm::DatabaseConnection,
    rows: usize,
    prefix: &str,
) -> anyhow::Result<f64> {
    use sea_orm::sqlx::postgres::PgPoolCopyExt;

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
    Ok(rows as f64 / started.elapsed().as_secs_f64())
}

/// One ImportLeads stream of `rows` fresh leads in messages of 1,000; rows per second.
async fn import_round(
    client: &mut CaptureServiceClient<Channel>,
    rows: usize,
    prefix: &str,
) -> anyhow::Result<f64> {
    use baton_proto::capture::v1::ImportLeadsRequest;

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
            ..Default::default()
        })
        .collect();
    let started = Instant::now();
    let answer = client
        .import_leads(tokio_stream::iter(batches))
        .await
        .context("ImportLeads")?
        .into_inner();
    let rate = rows as f64 / started.elapsed().as_secs_f64();
    anyhow::ensure!(
        answer.created == rows as i64,
        "import created {} of {rows}",
        answer.created
    );
    Ok(rate)
}

/// The second baseline: the lead rows this round's import stored, copied into a table shaped like
/// `lead` (same columns and indexes); rows per second.
async fn copy_stored_leads(
    conn: &sea_orm::DatabaseConnection,
    rows: usize,
    prefix: &str,
) -> anyhow::Result<f64> {
    use futures::TryStreamExt;
    use sea_orm::{ConnectionTrait, sqlx::postgres::PgPoolCopyExt};

    let pool = conn.get_postgres_connection_pool();
    let stored: Vec<u8> = pool
        .copy_out_raw(&format!(
            "COPY (SELECT * FROM lead WHERE email LIKE 'import%.{prefix}@example.com') TO STDOUT"
        ))
        .await?
        .try_fold(Vec::new(), |mut all, chunk| async move {
            all.extend_from_slice(&chunk);
            Ok(all)
        })
        .await?;
    conn.execute_unprepared(
        "DROP TABLE IF EXISTS bench_lead_copy; CREATE TABLE bench_lead_copy (LIKE lead INCLUDING ALL)",
    )
    .await?;
    let started = Instant::now();
    let mut copy = pool.copy_in_raw("COPY bench_lead_copy FROM STDIN").await?;
    copy.send(stored).await?;
    let copied = copy.finish().await?;
    anyhow::ensure!(
        copied == rows as u64,
        "copied {copied} of the {rows} stored lead rows"
    );
    Ok(copied as f64 / started.elapsed().as_secs_f64())
}

/// `baton-bench capture`: prints the echo ceiling, CaptureLead, and their ratio.
pub async fn print_capture(
    concurrency: usize,
    duration: std::time::Duration,
    rounds: usize,
) -> anyhow::Result<()> {
    let plan = BenchPlan {
        concurrency,
        duration,
        rounds,
    };
    let (echo, capture, open, postgres) = capture_lead(&plan).await?;
    let db = if postgres { "PostgreSQL" } else { "SQLite" };
    println!(
        "baton-bench capture: {concurrency} concurrent calls, one connection, median of {rounds} x {} s, {db}",
        duration.as_secs()
    );
    println!("{}", report("echo ceiling (health Check)", &echo));
    println!("{}", report("CaptureLead, token verified", &capture));
    println!("{}", report("CaptureLead, auth off", &open));
    println!(
        "CaptureLead / echo ceiling: {:.1} %",
        100.0 * capture.per_second() / echo.per_second()
    );
    println!(
        "cost of the auth layer: {:.1} % of CaptureLead throughput",
        100.0 * (1.0 - capture.per_second() / open.per_second())
    );
    Ok(())
}

/// `baton-bench import`: prints both COPY baselines, ImportLeads, and the ratios.
pub async fn print_import(rows: usize, rounds: usize) -> anyhow::Result<()> {
    let r = import_leads(rows, rounds).await?;
    println!("baton-bench import: {rows} rows per round, median of {rounds}");
    if let Some(copy) = r.copy_plain {
        println!("COPY, plain table (baseline)      {copy:>9.0} rows/s");
    }
    if let Some(copy) = r.copy_lead {
        println!("COPY, stored rows, `lead`-shaped   {copy:>9.0} rows/s");
    }
    println!("ImportLeads                       {:>9.0} rows/s", r.import);
    if let Some(copy) = r.copy_plain {
        println!("ImportLeads / COPY plain: {:.1} %", 100.0 * r.import / copy);
    }
    if let Some(copy) = r.copy_lead {
        println!(
            "ImportLeads / COPY lead-shaped: {:.1} %",
            100.0 * r.import / copy
        );
    }
    Ok(())
}
