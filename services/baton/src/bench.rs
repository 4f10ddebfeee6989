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
    use baton_proto::capture::v1::ImportLeadsRequest;
    use futures::TryStreamExt;
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
    let mut copy_plain = Vec::new();
    let mut copy_lead = Vec::new();
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
            copy_plain.push(rows as f64 / started.elapsed().as_secs_f64());
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
        // The lead rows this import stored, copied into a table shaped like `lead`.
        if let Some(conn) = &direct {
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
            copy_lead.push(copied as f64 / started.elapsed().as_secs_f64());
            anyhow::ensure!(
                copied == rows as u64,
                "copied {copied} of the {rows} stored lead rows"
            );
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

/// Capture → MQL, end to end: captures sent open-loop at `rate` per second for `duration`, each
/// lead made an MQL by qualification's scoring (an activated model whose attribute rule matches
/// every bench lead); latency is from sending CaptureLead to the `StageChanged` (→ MQL) event
/// arriving on a subscription to qualification's event log.
pub struct MqlLatency {
    pub sent: u64,
    pub captured: u64,
    pub send_elapsed: Duration,
    /// CaptureLead's own round trip (the lead is stored when it returns).
    pub answered: Latency,
    /// Sent → `LeadCaptured` on capture's log (published by its relay on PostgreSQL).
    pub published: Latency,
    /// Sent → `StageChanged` to MQL on qualification's log.
    pub mql: Latency,
    /// Sent → `LeadAssigned` on distribution's log (200 reps, 20 routing rules).
    pub assigned: Latency,
    pub postgres: bool,
}

/// 10 weighted teams of 20 reps and 20 routing rules; bench leads (no country) are checked against
/// all 20 and land on the last, catch-all rule.
pub async fn routing_fixture(
    d: &mut baton_proto::distribution::v1::distribution_service_client::DistributionServiceClient<
        Channel,
    >,
) -> anyhow::Result<()> {
    use baton_proto::distribution::v1::{
        CreateRepRequest, CreateTeamRequest, RepRouting, RoutingCondition, RoutingMethod,
        RoutingRule, SetRoutingRulesRequest, TeamFunction,
    };
    for t in 0..10 {
        d.create_team(CreateTeamRequest {
            team_id: format!("team-{t}"),
            name: format!("Team {t}"),
            function: TeamFunction::InsideSales as i32,
            method: RoutingMethod::WeightedRoundRobin as i32,
        })
        .await
        .context("CreateTeam")?;
        for r in 0..20 {
            d.create_rep(CreateRepRequest {
                request_id: format!("bench-rep-{t}-{r}"),
                name: format!("Rep {t}-{r}"),
                email: format!("rep{t}.{r}@bench.example.com"),
                active: true,
                routing: Some(RepRouting {
                    team_id: format!("team-{t}"),
                    weight: Some(1.0 + (r % 3) as f64),
                    ..Default::default()
                }),
            })
            .await
            .context("CreateRep")?;
        }
    }
    let mut rules: Vec<RoutingRule> = (0..19)
        .map(|i| RoutingRule {
            key: format!("country-{i}"),
            conditions: vec![RoutingCondition {
                field: "company.country".into(),
                any_of: vec![format!("C{i}")],
                ..Default::default()
            }],
            to_team: format!("team-{}", i % 10),
            ..Default::default()
        })
        .collect();
    rules.push(RoutingRule {
        key: "everyone_else".into(),
        to_team: "team-0".into(),
        ..Default::default()
    });
    d.set_routing_rules(SetRoutingRulesRequest {
        rules,
        expected_version: 0,
    })
    .await
    .context("SetRoutingRules")?;
    Ok(())
}

/// How many leads reached a point, and how long it took them: median, 99th percentile, slowest.
#[derive(Debug, Clone, Copy, Default)]
pub struct Latency {
    pub count: u64,
    pub p50: Duration,
    pub p99: Duration,
    pub max: Duration,
}

fn percentiles(mut v: Vec<Duration>) -> Latency {
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

/// When each lead's event arrived, by lead id.
type Arrivals = Arc<tokio::sync::Mutex<std::collections::HashMap<String, Instant>>>;

/// Follows a service's event log from the start; `lead_of` picks the events to time (returning
/// their lead id). Returns the follower's task and when each lead's event arrived.
async fn watch_log(
    channel: Channel,
    lead_of: impl Fn(&prost_types::Any) -> Option<String> + Send + 'static,
) -> Result<(tokio::task::JoinHandle<()>, Arrivals), tonic::Status> {
    use baton_proto::events::v1::{SubscribeRequest, event_log_client::EventLogClient};

    let seen: Arrivals = Arc::default();
    let mut events = EventLogClient::new(channel)
        .subscribe(SubscribeRequest {
            after_position: 0,
            max_batch: 0,
        })
        .await?
        .into_inner();
    let task = {
        let seen = seen.clone();
        tokio::spawn(async move {
            while let Ok(Some(event)) = events.message().await {
                if let Some(lead) = event.payload.as_ref().and_then(&lead_of) {
                    seen.lock().await.entry(lead).or_insert_with(Instant::now);
                }
            }
        })
    };
    Ok((task, seen))
}

pub async fn capture_to_mql(rate: u64, duration: Duration) -> anyhow::Result<MqlLatency> {
    use std::collections::HashMap;

    use baton_proto::qualification::v1::{
        ActivateScoringModelRequest, AttributeTrigger, CreateScoringModelRequest, FieldCondition,
        ScoringModelDefinition, ScoringRule, Stage, StageChanged, field_condition::Comparison,
        qualification_service_client::QualificationServiceClient, scoring_rule::Trigger,
    };
    use tokio::sync::Mutex;

    let capture_db = TestDatabase::new("bench_mql_capture").await;
    let qualification_db = TestDatabase::new("bench_mql_qualification").await;
    let distribution_db = TestDatabase::new("bench_mql_distribution").await;
    let mut settings = settings_with(&[
        (ServiceName::Capture, &capture_db),
        (ServiceName::Qualification, &qualification_db),
        (ServiceName::Distribution, &distribution_db),
    ]);
    settings.server.concurrency_limit = settings.server.concurrency_limit.max(4096);
    let capture_listener = bind_ephemeral(&mut settings, ServiceName::Capture).await;
    let qualification_listener = bind_ephemeral(&mut settings, ServiceName::Qualification).await;
    let distribution_listener = bind_ephemeral(&mut settings, ServiceName::Distribution).await;
    let settings = Arc::new(settings);
    let capture = spawn(
        ServiceName::Capture,
        &settings,
        capture_listener,
        baton_capture::run,
    );
    let qualification = spawn(
        ServiceName::Qualification,
        &settings,
        qualification_listener,
        baton_qualification::run,
    );
    let distribution = spawn(
        ServiceName::Distribution,
        &settings,
        distribution_listener,
        baton_distribution::run,
    );
    let capture_channel = channel(&capture.endpoint).await;
    let qualification_channel = channel(&qualification.endpoint).await;
    let distribution_channel = channel(&distribution.endpoint).await;
    routing_fixture(
        &mut baton_proto::distribution::v1::distribution_service_client::DistributionServiceClient::new(
            distribution_channel.clone(),
        ),
    )
    .await?;

    let mut q = QualificationServiceClient::new(qualification_channel.clone());
    let model = q
        .create_scoring_model(CreateScoringModelRequest {
            definition: Some(ScoringModelDefinition {
                mql_threshold: 10,
                rules: vec![ScoringRule {
                    key: "bench_lead".into(),
                    points: 10,
                    trigger: Some(Trigger::Attribute(AttributeTrigger {
                        conditions: vec![FieldCondition {
                            field: "source.channel".into(),
                            comparison: Some(Comparison::Equals("bench".into())),
                            ..Default::default()
                        }],
                    })),
                    ..Default::default()
                }],
            }),
            created_by: "baton bench".into(),
        })
        .await
        .context("CreateScoringModel")?
        .into_inner();
    q.activate_scoring_model(ActivateScoringModelRequest {
        model_id: model.model_id,
        activated_by: "baton bench".into(),
    })
    .await
    .context("ActivateScoringModel")?;

    let (watcher, arrived) = watch_log(qualification_channel, |payload| {
        baton_proto::any::unpack::<StageChanged>(payload)
            .and_then(Result::ok)
            .filter(|changed| changed.to_stage == Stage::Mql as i32)
            .map(|changed| changed.lead_id)
    })
    .await
    .context("subscribe to qualification")?;
    let (assignment_watcher, assigned) = watch_log(distribution_channel, |payload| {
        baton_proto::any::unpack::<baton_proto::distribution::v1::LeadAssigned>(payload)
            .and_then(Result::ok)
            .map(|a| a.lead_id)
    })
    .await
    .context("subscribe to distribution")?;
    let (capture_watcher, published) = watch_log(capture_channel.clone(), |payload| {
        baton_proto::any::unpack::<baton_proto::capture::v1::LeadCaptured>(payload)
            .and_then(Result::ok)
            .map(|c| c.lead_id)
    })
    .await
    .context("subscribe to capture")?;

    // Per lead: when CaptureLead was sent, and how long it took to answer.
    let sent_at: Arc<Mutex<HashMap<String, (Instant, Duration)>>> = Arc::default();
    let run_id = uuid::Uuid::now_v7().simple().to_string();
    let client = CaptureServiceClient::new(capture_channel);
    let mut ticker = tokio::time::interval(Duration::from_secs_f64(1.0 / rate as f64));
    ticker.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Burst);
    let total = rate * duration.as_secs();
    let started = Instant::now();
    let mut calls = Vec::with_capacity(total as usize);
    for n in 0..total {
        ticker.tick().await;
        let mut c = client.clone();
        let sent_at = sent_at.clone();
        let mut req = capture_request(n);
        req.request_id = format!("{run_id}-{n}");
        req.email = format!("mql{n}.{run_id}@example.com");
        calls.push(tokio::spawn(async move {
            let t = Instant::now();
            if let Ok(r) = c.capture_lead(req).await
                && let Some(lead) = r.into_inner().lead
            {
                sent_at.lock().await.insert(lead.lead_id, (t, t.elapsed()));
            }
        }));
    }
    let send_elapsed = started.elapsed();
    for c in calls {
        let _ = c.await;
    }
    let captured = sent_at.lock().await.len() as u64;
    let wait_until = Instant::now() + Duration::from_secs(60);
    while Instant::now() < wait_until {
        let sent = sent_at.lock().await;
        let arrived = arrived.lock().await;
        let assigned = assigned.lock().await;
        if sent
            .keys()
            .all(|k| arrived.contains_key(k) && assigned.contains_key(k))
        {
            break;
        }
        drop((sent, arrived, assigned));
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
    watcher.abort();
    assignment_watcher.abort();
    capture_watcher.abort();
    let sent = sent_at.lock().await;
    let since_sent = |seen: &HashMap<String, Instant>| -> Latency {
        percentiles(
            sent.iter()
                .filter_map(|(lead, (t, _))| {
                    seen.get(lead).map(|a| a.saturating_duration_since(*t))
                })
                .collect(),
        )
    };
    let result = MqlLatency {
        sent: total,
        captured,
        send_elapsed,
        answered: percentiles(sent.values().map(|(_, answered)| *answered).collect()),
        published: since_sent(&*published.lock().await),
        mql: since_sent(&*arrived.lock().await),
        assigned: since_sent(&*assigned.lock().await),
        postgres: capture_db.is_postgres(),
    };
    drop(sent);
    capture.stop().await;
    qualification.stop().await;
    distribution.stop().await;
    Ok(result)
}

/// A routing decision's latency, measured as `ReassignLead` called one at a time from one client
/// (so: gRPC round trip + closing the old assignment + the decision + storing it + its event +
/// commit — an upper bound of the decision itself), with 200 reps in 10 weighted teams and 20
/// rules every lead is checked against. `leads` MQLs are first assigned through the event path.
pub async fn route(leads: usize) -> anyhow::Result<(Measurement, bool)> {
    use baton_proto::{
        distribution::v1::{
            ListAssignmentsRequest, ReassignLeadRequest,
            distribution_service_client::DistributionServiceClient,
        },
        qualification::v1::{Stage, StageChanged},
    };
    use baton_shared::{TenantId, events::EventLog, testing::EventLogStandIn};
    use sea_orm::TransactionTrait;

    // Baton's own EventLog service stands where qualification runs, holding the MQL events.
    let producer_db = TestDatabase::new("bench_route_qualification").await;
    let distribution_db = TestDatabase::new("bench_route_distribution").await;
    let mut settings = settings_with(&[
        (ServiceName::Qualification, &producer_db),
        (ServiceName::Distribution, &distribution_db),
    ]);
    let producer_listener = bind_ephemeral(&mut settings, ServiceName::Qualification).await;
    let distribution_listener = bind_ephemeral(&mut settings, ServiceName::Distribution).await;
    let settings = Arc::new(settings);
    let producer = EventLogStandIn::start(
        ServiceName::Qualification,
        &producer_db.url,
        &settings,
        producer_listener,
    )
    .await?;
    let distribution = spawn(
        ServiceName::Distribution,
        &settings,
        distribution_listener,
        baton_distribution::run,
    );
    let mut d = DistributionServiceClient::new(channel(&distribution.endpoint).await);
    routing_fixture(&mut d).await?;
    let tenant = TenantId::new("default");
    let txn = producer.db.begin().await?;
    for n in 0..leads {
        let event = StageChanged {
            lead_id: format!("lead-{n}"),
            from_stage: Stage::Lead as i32,
            to_stage: Stage::Mql as i32,
            score: 60,
            ..Default::default()
        };
        EventLog::append(&txn, &tenant, &event.lead_id, &event).await?;
    }
    txn.commit().await?;
    producer.log.notify_committed();
    let deadline = Instant::now() + Duration::from_secs(300);
    loop {
        let page = d
            .list_assignments(ListAssignmentsRequest {
                page_size: 1,
                page_token: format!("v1.{}", leads - 1),
                ..Default::default()
            })
            .await?
            .into_inner();
        if !page.assignments.is_empty() {
            break;
        }
        anyhow::ensure!(
            Instant::now() < deadline,
            "MQLs were not all assigned in time"
        );
        tokio::time::sleep(Duration::from_millis(200)).await;
    }
    let mut latencies = Vec::with_capacity(leads);
    let started = Instant::now();
    let mut errors = 0;
    for n in 0..leads {
        let t = Instant::now();
        let ok = d
            .reassign_lead(ReassignLeadRequest {
                lead_id: format!("lead-{n}"),
                reason: "bench".into(),
                requested_by: "baton bench".into(),
            })
            .await
            .is_ok();
        if ok {
            latencies.push(t.elapsed());
        } else {
            errors += 1;
        }
    }
    let elapsed = started.elapsed();
    let Latency {
        count: calls,
        p50,
        p99,
        ..
    } = percentiles(latencies);
    let postgres = distribution_db.is_postgres();
    distribution.stop().await;
    producer.stop().await;
    Ok((
        Measurement {
            calls,
            errors,
            elapsed,
            p50,
            p99,
        },
        postgres,
    ))
}
