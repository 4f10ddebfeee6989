//! Capture → MQL → assignment latency, end to end through three services.

use std::{
    collections::HashMap,
    sync::Arc,
    time::{Duration, Instant},
};

use anyhow::Context;
use baton_proto::capture::v1::capture_service_client::CaptureServiceClient;
use baton_shared::peer::AuthChannel as Channel;
use baton_shared::{
    ServiceName,
    testing::{RunningService, TestDatabase, bind_ephemeral, channel, settings_with, spawn},
};

use crate::{
    capture::capture_request,
    measure::{Latency, percentiles},
};

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
            ..Default::default()
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

/// Per lead: when CaptureLead was sent, and how long it took to answer.
type Sent = Arc<tokio::sync::Mutex<HashMap<String, (Instant, Duration)>>>;

/// Capture, qualification and distribution on scratch databases, with their channels.
struct MqlSuite {
    services: Vec<RunningService>,
    capture: Channel,
    qualification: Channel,
    distribution: Channel,
    postgres: bool,
    // Dropped (and so the scratch databases) after the services stop.
    _databases: Vec<TestDatabase>,
}

impl MqlSuite {
    async fn start() -> MqlSuite {
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
        let qualification_listener =
            bind_ephemeral(&mut settings, ServiceName::Qualification).await;
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
        MqlSuite {
            capture: channel(&capture.endpoint).await,
            qualification: channel(&qualification.endpoint).await,
            distribution: channel(&distribution.endpoint).await,
            services: vec![capture, qualification, distribution],
            postgres: capture_db.is_postgres(),
            _databases: vec![capture_db, qualification_db, distribution_db],
        }
    }

    async fn stop(self) {
        for service in self.services {
            service.stop().await;
        }
    }
}

/// Activates a scoring model whose one attribute rule makes every bench lead an MQL.
async fn activate_bench_model(qualification: Channel) -> anyhow::Result<()> {
    use baton_proto::qualification::v1::{
        ActivateScoringModelRequest, AttributeTrigger, CreateScoringModelRequest, FieldCondition,
        ScoringModelDefinition, ScoringRule, field_condition::Comparison,
        qualification_service_client::QualificationServiceClient, scoring_rule::Trigger,
    };

    let mut q = QualificationServiceClient::new(qualification);
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
            created_by: String::new(),
        })
        .await
        .context("CreateScoringModel")?
        .into_inner();
    q.activate_scoring_model(ActivateScoringModelRequest {
        model_id: model.model_id,
        activated_by: String::new(),
    })
    .await
    .context("ActivateScoringModel")?;
    Ok(())
}

/// The three logs followed from the start: LeadCaptured, StageChanged to MQL, LeadAssigned.
struct Watchers {
    tasks: Vec<tokio::task::JoinHandle<()>>,
    published: Arrivals,
    mql: Arrivals,
    assigned: Arrivals,
}

impl Watchers {
    async fn start(suite: &MqlSuite) -> anyhow::Result<Watchers> {
        use baton_proto::qualification::v1::{Stage, StageChanged};

        let (mql_task, mql) = watch_log(suite.qualification.clone(), |payload| {
            baton_proto::any::unpack::<StageChanged>(payload)
                .and_then(Result::ok)
                .filter(|changed| changed.to_stage == Stage::Mql as i32)
                .map(|changed| changed.lead_id)
        })
        .await
        .context("subscribe to qualification")?;
        let (assigned_task, assigned) = watch_log(suite.distribution.clone(), |payload| {
            baton_proto::any::unpack::<baton_proto::distribution::v1::LeadAssigned>(payload)
                .and_then(Result::ok)
                .map(|a| a.lead_id)
        })
        .await
        .context("subscribe to distribution")?;
        let (published_task, published) = watch_log(suite.capture.clone(), |payload| {
            baton_proto::any::unpack::<baton_proto::capture::v1::LeadCaptured>(payload)
                .and_then(Result::ok)
                .map(|c| c.lead_id)
        })
        .await
        .context("subscribe to capture")?;
        Ok(Watchers {
            tasks: vec![mql_task, assigned_task, published_task],
            published,
            mql,
            assigned,
        })
    }

    /// Waits (up to a minute) until every captured lead is an MQL and assigned.
    async fn wait_for(&self, sent: &Sent) {
        let wait_until = Instant::now() + Duration::from_secs(60);
        while Instant::now() < wait_until {
            let sent = sent.lock().await;
            let mql = self.mql.lock().await;
            let assigned = self.assigned.lock().await;
            if sent
                .keys()
                .all(|k| mql.contains_key(k) && assigned.contains_key(k))
            {
                break;
            }
            drop((sent, mql, assigned));
            tokio::time::sleep(Duration::from_millis(100)).await;
        }
    }
}

/// Sends `total` captures open-loop at `rate` per second; returns when the last one was sent
/// (every call has answered by then).
async fn send_open_loop(capture: Channel, rate: u64, total: u64, sent: &Sent) -> Duration {
    let run_id = uuid::Uuid::now_v7().simple().to_string();
    let client = CaptureServiceClient::new(capture);
    let mut ticker = tokio::time::interval(Duration::from_secs_f64(1.0 / rate as f64));
    ticker.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Burst);
    let started = Instant::now();
    let mut calls = Vec::with_capacity(total as usize);
    for n in 0..total {
        ticker.tick().await;
        let mut c = client.clone();
        let sent = sent.clone();
        let mut req = capture_request(n);
        req.request_id = format!("{run_id}-{n}");
        req.email = format!("mql{n}.{run_id}@example.com");
        calls.push(tokio::spawn(async move {
            let t = Instant::now();
            if let Ok(r) = c.capture_lead(req).await
                && let Some(lead) = r.into_inner().lead
            {
                sent.lock().await.insert(lead.lead_id, (t, t.elapsed()));
            }
        }));
    }
    let send_elapsed = started.elapsed();
    for c in calls {
        let _ = c.await;
    }
    send_elapsed
}

/// Measures capture → MQL and capture → assignment (see [`MqlLatency`]).
pub async fn capture_to_mql(rate: u64, duration: Duration) -> anyhow::Result<MqlLatency> {
    let suite = MqlSuite::start().await;
    routing_fixture(
        &mut baton_proto::distribution::v1::distribution_service_client::DistributionServiceClient::new(
            suite.distribution.clone(),
        ),
    )
    .await?;
    activate_bench_model(suite.qualification.clone()).await?;
    let watchers = Watchers::start(&suite).await?;

    let sent: Sent = Arc::default();
    let total = rate * duration.as_secs();
    let send_elapsed = send_open_loop(suite.capture.clone(), rate, total, &sent).await;
    let captured = sent.lock().await.len() as u64;
    watchers.wait_for(&sent).await;
    for task in &watchers.tasks {
        task.abort();
    }
    let sent = sent.lock().await;
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
        published: since_sent(&*watchers.published.lock().await),
        mql: since_sent(&*watchers.mql.lock().await),
        assigned: since_sent(&*watchers.assigned.lock().await),
        postgres: suite.postgres,
    };
    drop(sent);
    suite.stop().await;
    Ok(result)
}

/// `baton-bench mql`: prints each leg's latency.
pub async fn print(rate: u64, duration: Duration) -> anyhow::Result<()> {
    let m = capture_to_mql(rate, duration).await?;
    let db = if m.postgres { "PostgreSQL" } else { "SQLite" };
    let seconds = duration.as_secs();
    println!("baton-bench mql: {rate} captures/s open-loop for {seconds} s, {db}");
    println!(
        "sent {} in {:.2} s ({:.0}/s), captured {}, MQL events seen {}",
        m.sent,
        m.send_elapsed.as_secs_f64(),
        m.sent as f64 / m.send_elapsed.as_secs_f64(),
        m.captured,
        m.mql.count
    );
    let line = |label: &str, l: &Latency| {
        println!(
            "{label:<58} p50 {:>6.1} ms   p99 {:>6.1} ms   max {:>6.1} ms",
            l.p50.as_secs_f64() * 1e3,
            l.p99.as_secs_f64() * 1e3,
            l.max.as_secs_f64() * 1e3
        )
    };
    line("  CaptureLead answered", &m.answered);
    line("  LeadCaptured published on capture's log", &m.published);
    line("capture -> MQL visible", &m.mql);
    line(
        &format!(
            "capture -> assigned ({} leads; 200 reps, 20 rules)",
            m.assigned.count
        ),
        &m.assigned,
    );
    Ok(())
}
