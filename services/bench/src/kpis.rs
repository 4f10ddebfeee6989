//! The KPI engine: how fast reporting applies events while following a log (beside the rate the
//! log's stream alone delivers them), and GetKpis latency over a quarter's facts (beside the
//! same query over a quarter with no facts).

use std::{
    collections::HashMap,
    sync::Arc,
    time::{Duration, Instant},
};

use anyhow::Context;
use baton::progress;
use baton_proto::{
    capture::v1::{
        Activity, ActivityKind, ActivityRecorded, CallDetails, CallOutcome, Company, Consent, Lead,
        LeadCaptured, LeadSource,
    },
    events::v1::{SubscribeRequest, event_log_client::EventLogClient},
    reporting::v1::{GetKpisRequest, Granularity, kpi_service_client::KpiServiceClient},
};
use baton_shared::{
    ServiceName, TenantId,
    events::EventLog,
    testing::{EventLogStandIn, TestDatabase, bind_ephemeral, channel, settings_with, spawn},
    time,
};
use chrono::{DateTime, Utc};
use sea_orm::{ConnectionTrait, Statement, TransactionTrait};
use tokio_stream::StreamExt;

use crate::measure::{Latency, percentiles};

const CHANNELS: [&str; 8] = [
    "web_form",
    "webinar",
    "trade_show",
    "ad_form",
    "import",
    "referral",
    "seo",
    "partner",
];
const CAMPAIGNS: [&str; 5] = ["spring", "summer", "autumn", "winter", "always_on"];
const INDUSTRIES: [&str; 10] = [
    "manufacturing",
    "retail",
    "finance",
    "health",
    "logistics",
    "media",
    "education",
    "energy",
    "public",
    "software",
];

/// One event of capture's log.
enum CaptureEvent {
    Captured(Box<LeadCaptured>),
    Activity(ActivityRecorded),
}

/// The events of lead `n`: its capture, then `activities` activities (calls, e-mails, forms).
fn lead_events(n: usize, activities: usize, at: DateTime<Utc>) -> Vec<CaptureEvent> {
    let lead_id = format!("bench-lead-{n}");
    let source = LeadSource {
        channel: CHANNELS[n % CHANNELS.len()].into(),
        campaign: CAMPAIGNS[(n / 8) % CAMPAIGNS.len()].into(),
        ..Default::default()
    };
    let captured = LeadCaptured {
        lead_id: lead_id.clone(),
        email: format!("{lead_id}@example.com"),
        source: Some(source),
        captured_at: Some(time::to_proto(at)),
        lead: Some(Lead {
            lead_id: lead_id.clone(),
            company: Some(Company {
                industry: INDUSTRIES[n % INDUSTRIES.len()].into(),
                employees: Some((n % 2000) as i64),
                country: "JP".into(),
                ..Default::default()
            }),
            consent: Some(Consent {
                email_opt_in: true,
                ..Default::default()
            }),
            ..Default::default()
        }),
    };
    let mut out = vec![CaptureEvent::Captured(Box::new(captured))];
    let kinds = [
        ActivityKind::Call,
        ActivityKind::EmailDelivered,
        ActivityKind::EmailOpened,
        ActivityKind::Call,
        ActivityKind::EmailDelivered,
        ActivityKind::EmailClicked,
        ActivityKind::FormSubmitted,
        ActivityKind::PageViewed,
        ActivityKind::Call,
        ActivityKind::EmailDelivered,
    ];
    for k in 0..activities {
        let kind = kinds[k % kinds.len()];
        let activity = ActivityRecorded {
            activity: Some(Activity {
                activity_id: format!("{lead_id}-a{k}"),
                lead_id: lead_id.clone(),
                kind: kind as i32,
                occurred_at: Some(time::to_proto(at + chrono::Duration::minutes(k as i64 * 7))),
                call: (kind == ActivityKind::Call).then_some(CallDetails {
                    outcome: if k % 2 == 0 {
                        CallOutcome::Connected
                    } else {
                        CallOutcome::NoAnswer
                    } as i32,
                    duration_seconds: if k % 2 == 0 { 180 } else { 0 },
                    reached_target_department: k % 4 == 0,
                }),
                performed_by: format!("rep-{}", n % 40),
                ..Default::default()
            }),
        };
        out.push(CaptureEvent::Activity(activity));
    }
    out
}

/// What the apply benchmark measured.
pub struct Apply {
    pub events: usize,
    /// Events per second the log's Subscribe stream delivers to a client that does nothing.
    pub stream_rate: f64,
    /// Events per second reporting applied (from its start to its cursor reaching the end).
    pub apply_rate: f64,
    pub postgres: bool,
}

/// Writes the events of `leads` leads straight into a stand-in capture log.
async fn seed_log(
    producer: &EventLogStandIn,
    leads: usize,
    activities: usize,
) -> anyhow::Result<usize> {
    let tenant = TenantId::new("default");
    let start = Utc::now() - chrono::Duration::days(30);
    let mut events = 0;
    let bar = progress::counting(leads as u64, "seed capture's log (leads)");
    for chunk in (0..leads).collect::<Vec<_>>().chunks(500) {
        bar.inc(chunk.len() as u64);
        let txn = producer.db.begin().await?;
        for n in chunk {
            let at = start + chrono::Duration::seconds(*n as i64 * 17);
            let aggregate = format!("bench-lead-{n}");
            for event in lead_events(*n, activities, at) {
                match &event {
                    CaptureEvent::Captured(e) => {
                        EventLog::append(&txn, &tenant, &aggregate, e.as_ref()).await?
                    }
                    CaptureEvent::Activity(e) => {
                        EventLog::append(&txn, &tenant, &aggregate, e).await?
                    }
                }
                events += 1;
            }
        }
        txn.commit().await?;
    }
    producer.log.notify_committed();
    Ok(events)
}

/// The rate at which the log's stream alone delivers `events` events.
async fn stream_rate(endpoint: &str, events: usize) -> anyhow::Result<f64> {
    let mut client = EventLogClient::new(channel(endpoint).await);
    let started = Instant::now();
    let mut stream = client
        .subscribe(SubscribeRequest {
            after_position: 0,
            max_batch: 0,
            ..Default::default()
        })
        .await?
        .into_inner();
    let mut seen = 0;
    while seen < events {
        match tokio::time::timeout(Duration::from_secs(30), stream.next()).await {
            Ok(Some(Ok(_))) => seen += 1,
            _ => anyhow::bail!("the log's stream stopped after {seen} of {events} events"),
        }
    }
    Ok(events as f64 / started.elapsed().as_secs_f64())
}

/// Reporting following a capture log of `leads` leads with `activities` activities each.
pub async fn apply(leads: usize, activities: usize) -> anyhow::Result<Apply> {
    let producer_db = TestDatabase::new("bench_kpis_capture").await;
    let reporting_db = TestDatabase::new("bench_kpis_reporting").await;
    let mut settings = settings_with(&[
        (ServiceName::Capture, &producer_db),
        (ServiceName::Reporting, &reporting_db),
    ]);
    let producer_listener = bind_ephemeral(&mut settings, ServiceName::Capture).await;
    let reporting_listener = bind_ephemeral(&mut settings, ServiceName::Reporting).await;
    let settings = Arc::new(settings);
    let producer = EventLogStandIn::start(
        ServiceName::Capture,
        &producer_db.url,
        &settings,
        producer_listener,
    )
    .await?;
    let events = seed_log(&producer, leads, activities).await?;
    let endpoint = settings.service(ServiceName::Capture).endpoint.clone();
    let stream_rate = stream_rate(&endpoint, events).await?;
    let started = Instant::now();
    let reporting = spawn(
        ServiceName::Reporting,
        &settings,
        reporting_listener,
        baton_reporting::run,
    );
    let conn = baton_shared::db::connect(&reporting_db.url, &settings.database).await?;
    let last = events as i64;
    let deadline = Instant::now() + Duration::from_secs(1800);
    loop {
        let row = conn
            .query_one_raw(Statement::from_string(
                conn.get_database_backend(),
                "SELECT MAX(position) AS p FROM event_cursor WHERE source = 'capture'",
            ))
            .await
            .ok()
            .flatten();
        let position: Option<i64> = row.and_then(|r| r.try_get("", "p").ok());
        if position.is_some_and(|p| p >= last) {
            break;
        }
        anyhow::ensure!(
            Instant::now() < deadline,
            "reporting did not catch up in time"
        );
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
    let apply_rate = events as f64 / started.elapsed().as_secs_f64();
    let postgres = reporting_db.is_postgres();
    reporting.stop().await;
    producer.stop().await;
    Ok(Apply {
        events,
        stream_rate,
        apply_rate,
        postgres,
    })
}

/// The twelve KPIs the query benchmark asks for (all read from rollups).
const QUERY_KPIS: [&str; 12] = [
    "leads",
    "mqls",
    "sqls",
    "opportunities",
    "wins",
    "win_rate",
    "calls",
    "connects",
    "connect_rate",
    "talk_time_seconds",
    "emails_delivered",
    "email_clicks",
];

/// Metric name, share of leads (per mille) that have it, value per fact.
const LEAD_FACTS: [(&str, u64, i64); 7] = [
    ("leads", 1000, 1),
    ("mqls", 300, 1),
    ("sqls", 100, 1),
    ("opportunities", 50, 1),
    ("handed_off_leads", 50, 1),
    ("wins", 20, 1),
    ("decided", 40, 1),
];

/// Activity metrics per activity kind, cycling over ten activities per lead (as the apply bench).
fn activity_facts(k: usize) -> &'static [(&'static str, i64)] {
    match k % 10 {
        0 | 8 => &[("calls", 1), ("connects", 1), ("talk_time_seconds", 180)],
        3 => &[("calls", 1), ("talk_time_seconds", 0)],
        1 | 4 | 9 => &[("emails_delivered", 1)],
        5 => &[("email_clicks", 1)],
        6 => &[("form_submissions", 1)],
        _ => &[],
    }
}

/// What the query benchmark seeded and measured.
pub struct Query {
    pub cube_rows: usize,
    pub source_rows: usize,
    pub seed_seconds: f64,
    pub facts: u64,
    pub subject: Latency,
    pub baseline: Latency,
    pub postgres: bool,
}

type CubeKey = (String, i64, usize);
/// A source row of the seed: metric, level, bucket, source variant (see `source_of`).
type SourceKey = (String, &'static str, i64, usize);

/// Rows of `kpi_cube` (one per metric, slot and dimension group) and `kpi_source` (per hour and
/// day and source) for `leads` leads with `activities` activities each over `[start, start +
/// 91 days)`: what applying their events would have written, computed here and bulk-inserted.
fn seed_rows(
    leads: usize,
    activities: usize,
    start: DateTime<Utc>,
) -> (HashMap<CubeKey, i64>, HashMap<SourceKey, i64>, u64) {
    let quarter = 91 * 86_400;
    let mut cube: HashMap<CubeKey, i64> = HashMap::new();
    let mut source: HashMap<SourceKey, i64> = HashMap::new();
    let mut facts = 0;
    let mut add = |metric: &str, at: i64, n: usize, value: i64| {
        let slot = at - at.rem_euclid(900);
        // A lead's dimensions repeat every 120 leads (see `cube_values`).
        *cube.entry((metric.to_owned(), slot, n % 120)).or_default() += value;
        for (level, size) in [("h", 3_600), ("t", 10_800), ("d", 86_400)] {
            let bucket = at - at.rem_euclid(size);
            // The source, and its totals over campaigns, channels and both (see `source_of`).
            for variant in [n % 40, 40 + n % 8, 48 + (n / 8) % 5, 53] {
                *source
                    .entry((metric.to_owned(), level, bucket, variant))
                    .or_default() += value;
            }
        }
    };
    for n in 0..leads {
        // Spread evenly over the quarter (a multiplicative hash, so neighbours differ).
        let offset = ((n as u64).wrapping_mul(2_654_435_761) % quarter as u64) as i64;
        let at = start.timestamp() + offset;
        for (metric, per_mille, value) in LEAD_FACTS {
            if (n as u64 * 7919) % 1000 < per_mille {
                add(metric, at, n, value);
                facts += 1;
            }
        }
        for k in 0..activities {
            let t = (at + k as i64 * 420).min(start.timestamp() + quarter - 1);
            for (metric, value) in activity_facts(k) {
                add(metric, t, n, *value);
            }
            facts += 1;
        }
    }
    (cube, source, facts)
}

fn cube_values(n: usize) -> [String; 10] {
    [
        CHANNELS[n % 8].to_owned(),
        CAMPAIGNS[(n / 8) % 5].to_owned(),
        String::new(),
        String::new(),
        INDUSTRIES[n % 10].to_owned(),
        ["1-9", "10-49", "50-249", "250-999", "1000+"][n % 5].to_owned(),
        "JP".to_owned(),
        ["hot", "warm", "cold"][n % 3].to_owned(),
        format!("team-{}", n % 4),
        format!("rep-{}", n % 40),
    ]
}

/// The channel and campaign of a source variant: 0–39 a source, 40–47 a channel over every
/// campaign, 48–52 a campaign over every channel, 53 everything.
fn source_of(variant: usize) -> (&'static str, &'static str) {
    match variant {
        0..40 => (CHANNELS[variant % 8], CAMPAIGNS[(variant / 8) % 5]),
        40..48 => (CHANNELS[variant - 40], "*"),
        48..53 => ("*", CAMPAIGNS[variant - 48]),
        _ => ("*", "*"),
    }
}

fn quote(s: &str) -> String {
    format!("'{}'", s.replace('\'', "''"))
}

fn timestamp(secs: i64, postgres: bool) -> String {
    let t = DateTime::from_timestamp(secs, 0).unwrap_or_default();
    if postgres {
        format!("'{}'", t.to_rfc3339())
    } else {
        // sea-orm's SQLite text form of a timestamp with time zone.
        format!("'{}'", t.format("%Y-%m-%d %H:%M:%S%:z"))
    }
}

/// Inserts the seeded rows with multi-row INSERTs, 1,000 rows a statement.
async fn insert_seed(
    conn: &sea_orm::DatabaseConnection,
    cube: &HashMap<CubeKey, i64>,
    source: &HashMap<SourceKey, i64>,
    postgres: bool,
) -> anyhow::Result<()> {
    let backend = conn.get_database_backend();
    let mut rows = Vec::with_capacity(1000);
    let flush = |rows: &mut Vec<String>, head: &str| {
        let sql = format!("{head} VALUES {}", rows.join(","));
        rows.clear();
        sql
    };
    let cube_head = "INSERT INTO kpi_cube (tenant_id, metric, slot, channel, campaign, \
                     lead_magnet, funnel_position, industry, employee_band, country, rank, team, \
                     rep, currency, value)";
    let txn = conn.begin().await?;
    for ((metric, slot, n), value) in cube {
        let dims: Vec<String> = cube_values(*n).iter().map(|d| quote(d)).collect();
        rows.push(format!(
            "('default',{},{},{},'',{value})",
            quote(metric),
            timestamp(*slot, postgres),
            dims.join(",")
        ));
        if rows.len() == 1000 {
            txn.execute_raw(Statement::from_string(backend, flush(&mut rows, cube_head)))
                .await?;
        }
    }
    if !rows.is_empty() {
        txn.execute_raw(Statement::from_string(backend, flush(&mut rows, cube_head)))
            .await?;
    }
    let source_head =
        "INSERT INTO kpi_source (tenant_id, metric, level, at, channel, campaign, currency, value)";
    for ((metric, level, at, n), value) in source {
        rows.push(format!(
            "('default',{},'{level}',{},{},{},'',{value})",
            quote(metric),
            timestamp(*at, postgres),
            quote(source_of(*n).0),
            quote(source_of(*n).1),
        ));
        if rows.len() == 1000 {
            txn.execute_raw(Statement::from_string(
                backend,
                flush(&mut rows, source_head),
            ))
            .await?;
        }
    }
    if !rows.is_empty() {
        txn.execute_raw(Statement::from_string(
            backend,
            flush(&mut rows, source_head),
        ))
        .await?;
    }
    txn.commit().await?;
    if postgres {
        conn.execute_unprepared("ANALYZE kpi_cube; ANALYZE kpi_source")
            .await?;
    } else {
        conn.execute_unprepared("ANALYZE").await?;
    }
    Ok(())
}

/// GetKpis latencies of `calls` calls, one at a time.
async fn latencies(
    client: &mut KpiServiceClient<baton_shared::peer::AuthChannel>,
    request: &GetKpisRequest,
    calls: usize,
) -> anyhow::Result<Latency> {
    let mut out = Vec::with_capacity(calls);
    let bar = progress::counting(calls as u64, "GetKpis");
    for _ in 0..calls {
        let t = Instant::now();
        client.get_kpis(request.clone()).await.context("GetKpis")?;
        out.push(t.elapsed());
        bar.inc(1);
    }
    bar.finish_and_clear();
    Ok(percentiles(out))
}

/// GetKpis of the twelve KPIs over a quarter by week × channel in Asia/Tokyo, with `leads` leads
/// and `activities` activities per lead in the facts.
pub async fn query(leads: usize, activities: usize, calls: usize) -> anyhow::Result<Query> {
    let db = TestDatabase::new("bench_kpis_query").await;
    let mut settings = settings_with(&[(ServiceName::Reporting, &db)]);
    let listener = bind_ephemeral(&mut settings, ServiceName::Reporting).await;
    let settings = Arc::new(settings);
    let reporting = spawn(
        ServiceName::Reporting,
        &settings,
        listener,
        baton_reporting::run,
    );
    let ch = channel(&reporting.endpoint).await;
    let mut client = KpiServiceClient::new(ch);
    // The quarter: 2026-07-01 to 2026-09-30 in Tokyo.
    let start: DateTime<Utc> = "2026-06-30T15:00:00Z".parse()?;
    let seeded = Instant::now();
    let (cube, source, facts) = seed_rows(leads, activities, start);
    let conn = baton_shared::db::connect(&db.url, &settings.database).await?;
    // Wait for the service's migrations (the tables must exist).
    client
        .get_kpis(request(start))
        .await
        .context("warm-up GetKpis")?;
    insert_seed(&conn, &cube, &source, db.is_postgres()).await?;
    let seed_seconds = seeded.elapsed().as_secs_f64();
    let req = request(start);
    // The same query over the quarter a year before, which holds no facts.
    let empty = request(start - chrono::Duration::days(364));
    latencies(&mut client, &req, 5).await?;
    latencies(&mut client, &empty, 5).await?;
    let subject = latencies(&mut client, &req, calls).await?;
    let baseline = latencies(&mut client, &empty, calls).await?;
    let postgres = db.is_postgres();
    reporting.stop().await;
    Ok(Query {
        cube_rows: cube.len(),
        source_rows: source.len(),
        seed_seconds,
        facts,
        subject,
        baseline,
        postgres,
    })
}

fn request(start: DateTime<Utc>) -> GetKpisRequest {
    GetKpisRequest {
        kpis: QUERY_KPIS.map(String::from).to_vec(),
        start_time: Some(time::to_proto(start)),
        end_time: Some(time::to_proto(start + chrono::Duration::days(92))),
        granularity: Granularity::Week as i32,
        time_zone: "Asia/Tokyo".into(),
        group_by: vec!["channel".into()],
        ..Default::default()
    }
}

/// `baton-bench kpis`: prints both.
pub async fn print(
    leads: usize,
    activities: usize,
    apply_leads: usize,
    calls: usize,
) -> anyhow::Result<()> {
    let a = apply(apply_leads, activities).await?;
    let db = if a.postgres { "PostgreSQL" } else { "SQLite" };
    println!(
        "baton-bench kpis: reporting follows a capture log of {} events ({apply_leads} leads × \
         (1 capture + {activities} activities)), {db}",
        a.events
    );
    println!(
        "  log stream alone (baseline): {:>8.0} events/s",
        a.stream_rate
    );
    println!(
        "  reporting applies:           {:>8.0} events/s ({:.2} of the stream)",
        a.apply_rate,
        a.apply_rate / a.stream_rate
    );
    let q = query(leads, activities, calls).await?;
    println!(
        "baton-bench kpis: GetKpis of {} KPIs, a quarter by week × channel (Asia/Tokyo), {calls} \
         calls one at a time, {}; facts of {leads} leads and {} activities ({} facts) seeded as \
         the rollups applying them writes: {} cube rows and {} source rows in {:.1} s ({:.0} \
         facts/s)",
        QUERY_KPIS.len(),
        if q.postgres { "PostgreSQL" } else { "SQLite" },
        leads * activities,
        q.facts,
        q.cube_rows,
        q.source_rows,
        q.seed_seconds,
        q.facts as f64 / q.seed_seconds
    );
    let ms = |d: Duration| d.as_secs_f64() * 1000.0;
    println!(
        "  a quarter without facts (baseline): p50 {:>7.1} ms  p99 {:>7.1} ms",
        ms(q.baseline.p50),
        ms(q.baseline.p99)
    );
    println!(
        "  the quarter with the facts:         p50 {:>7.1} ms  p99 {:>7.1} ms ({:.1}× the baseline p99)",
        ms(q.subject.p50),
        ms(q.subject.p99),
        ms(q.subject.p99) / ms(q.baseline.p99).max(0.001)
    );
    Ok(())
}
