//! Contract attainment: GetAttainment of a contract with `--handoffs` handoffs that reporting
//! applied from distribution's events (beside GetContract on the same server, a one-row read),
//! and how soon WatchAttainment delivers the change an outcome makes while outcomes arrive at
//! `--rate` per second.
//!
//! Distribution is an event log standing where it runs (as in the KPI bench), so the benchmark
//! feeds reporting `HandoffChanged` events without routing and handing off 100,000 leads first.

use std::{
    sync::Arc,
    time::{Duration, Instant},
};

use anyhow::Context;
use baton::progress;
use baton_proto::{
    capture::v1::Money,
    distribution::v1::{Handoff, HandoffAction, HandoffChanged, HandoffState, HandoffStep},
    reporting::v1::{
        ApproveContractRequest, CreateContractRequest, GetAttainmentRequest, GetContractRequest,
        contract_service_client::ContractServiceClient,
    },
};
use baton_shared::{
    ServiceName, TenantId,
    events::EventLog,
    peer::AuthChannel,
    testing::{
        EventLogStandIn, TestDatabase, as_user, bind_ephemeral, channel, settings_with, spawn,
    },
    time,
};
use chrono::{DateTime, Utc};
use sea_orm::TransactionTrait;

use crate::measure::{Latency, percentiles};

const IS_OWNER: &str = "is-lead@example.com";
const FS_OWNER: &str = "fs-lead@example.com";

/// A handoff's event: `action` taken, leaving the handoff in `state`.
fn changed(
    n: usize,
    contract_id: &str,
    action: HandoffAction,
    state: HandoffState,
    at: DateTime<Utc>,
) -> HandoffChanged {
    let won = state == HandoffState::Won;
    let handoff = Handoff {
        handoff_id: format!("bench-h-{n}"),
        lead_id: format!("bench-lead-{n}"),
        is_team: "is-bench".into(),
        fs_team: "fs-bench".into(),
        handed_off_by: format!("is-{}@example.com", n % 20),
        state: state as i32,
        contract_id: contract_id.into(),
        contract_version: 1,
        decision_due_at: Some(time::to_proto(at + chrono::Duration::hours(48))),
        rejection_reason: if state == HandoffState::Rejected {
            "no_budget".into()
        } else {
            String::new()
        },
        amount: won.then(|| Money {
            currency_code: "JPY".into(),
            amount_minor: 1_000_000,
        }),
        created_at: Some(time::to_proto(at)),
        ..Default::default()
    };
    HandoffChanged {
        handoff: Some(handoff),
        step: Some(HandoffStep {
            action: action
                .as_str_name()
                .trim_start_matches("HANDOFF_ACTION_")
                .to_ascii_lowercase(),
            actor: format!("fs-{}@example.com", n % 10),
            at: Some(time::to_proto(at)),
            kind: action as i32,
            ..Default::default()
        }),
    }
}

/// Appends `events` to the stand-in's log in transactions of 500.
async fn publish(log: &EventLogStandIn, events: &[HandoffChanged]) -> anyhow::Result<()> {
    let tenant = TenantId::new("default");
    let bar = progress::counting(events.len() as u64, "seed handoff events");
    for chunk in events.chunks(500) {
        let txn = log.db.begin().await?;
        for e in chunk {
            let lead = &e.handoff.as_ref().context("handoff")?.lead_id;
            EventLog::append(&txn, &tenant, lead, e).await?;
        }
        txn.commit().await?;
        bar.inc(chunk.len() as u64);
    }
    bar.finish_and_clear();
    log.log.notify_committed();
    Ok(())
}

/// What the attainment benchmark measured.
pub struct Measured {
    pub handoffs: usize,
    pub events: usize,
    pub apply_seconds: f64,
    pub get: Latency,
    pub get_by_rep: Latency,
    pub baseline: Latency,
    pub watch: Latency,
    pub outcomes: usize,
    pub rate: u64,
    pub postgres: bool,
}

async fn contract(contracts: &mut ContractServiceClient<AuthChannel>) -> anyhow::Result<String> {
    let mut terms =
        baton_shared::contract::example_terms("is-bench", "fs-bench", IS_OWNER, FS_OWNER);
    terms.period_end = Some(time::to_proto(Utc::now() + chrono::Duration::days(30)));
    let draft = contracts
        .create_contract(as_user(
            "ops@example.com",
            CreateContractRequest {
                request_id: "bench".into(),
                terms: Some(terms),
                created_by: String::new(),
            },
        ))
        .await?
        .into_inner();
    for owner in [IS_OWNER, FS_OWNER] {
        contracts
            .approve_contract(as_user(
                owner,
                ApproveContractRequest {
                    contract_id: draft.contract_id.clone(),
                    approver: String::new(),
                },
            ))
            .await?;
    }
    Ok(draft.contract_id)
}

/// `calls` sequential calls of `call`; their latencies.
async fn latencies<F, Fut>(calls: usize, call: F) -> anyhow::Result<Latency>
where
    F: Fn() -> Fut,
    Fut: std::future::Future<Output = anyhow::Result<()>>,
{
    let mut v = Vec::with_capacity(calls);
    let bar = progress::counting(calls as u64, "calls");
    for _ in 0..calls {
        let t = Instant::now();
        call().await?;
        v.push(t.elapsed());
        bar.inc(1);
    }
    bar.finish_and_clear();
    Ok(percentiles(v))
}

/// The seed: every handoff created; then 60 % accepted (of those a third won, a third lost),
/// 25 % rejected, the rest pending.
fn seed_events(handoffs: usize, contract_id: &str, at: DateTime<Utc>) -> Vec<HandoffChanged> {
    let mut events = Vec::with_capacity(handoffs * 2);
    for n in 0..handoffs {
        events.push(changed(
            n,
            contract_id,
            HandoffAction::Created,
            HandoffState::Pending,
            at,
        ));
        let (action, state) = match n % 20 {
            0..=3 => (HandoffAction::Accepted, HandoffState::Won),
            4..=7 => (HandoffAction::Accepted, HandoffState::Lost),
            8..=11 => (HandoffAction::Accepted, HandoffState::Accepted),
            12..=16 => (HandoffAction::Rejected, HandoffState::Rejected),
            _ => continue,
        };
        events.push(changed(n, contract_id, action, state, at));
    }
    events
}

/// The won count a watch message shows.
fn won(a: &baton_proto::reporting::v1::Attainment) -> i64 {
    a.targets
        .iter()
        .find(|t| t.target == "win_rate_of_accepted")
        .map_or(0, |t| t.numerator)
}

/// Outcomes at `rate` per second for `seconds`, each winning one open accepted handoff; for each,
/// the time from its commit to the first watch message that counts it.
async fn watch_latency(
    producer: &EventLogStandIn,
    contracts: &mut ContractServiceClient<AuthChannel>,
    contract_id: &str,
    (handoffs, rate, seconds): (usize, u64, u64),
) -> anyhow::Result<(Latency, usize)> {
    let mut stream = contracts
        .watch_attainment(GetAttainmentRequest {
            contract_id: contract_id.into(),
            ..Default::default()
        })
        .await?
        .into_inner();
    let first = stream.message().await?.context("first watch message")?;
    let base = won(&first);
    let open: Vec<usize> = (0..handoffs)
        .filter(|n| (8..=11).contains(&(n % 20)))
        .collect();
    let total = ((rate * seconds) as usize).min(open.len());
    let (tx, mut rx) = tokio::sync::mpsc::unbounded_channel::<Instant>();
    let log = (producer.db.clone(), producer.log.clone());
    let contract = contract_id.to_owned();
    let sender = tokio::spawn(async move {
        let mut tick = tokio::time::interval(Duration::from_micros(1_000_000 / rate.max(1)));
        let tenant = TenantId::new("default");
        for n in open.into_iter().take(total) {
            tick.tick().await;
            let e = changed(
                n,
                &contract,
                HandoffAction::Won,
                HandoffState::Won,
                Utc::now(),
            );
            let txn = log.0.begin().await?;
            EventLog::append(&txn, &tenant, &format!("bench-lead-{n}"), &e).await?;
            txn.commit().await?;
            log.1.notify_committed();
            let _ = tx.send(Instant::now());
        }
        anyhow::Ok(())
    });
    let mut committed: Vec<Instant> = Vec::with_capacity(total);
    let mut delivered = 0usize;
    let mut lat = Vec::with_capacity(total);
    while delivered < total {
        let msg = tokio::time::timeout(Duration::from_secs(30), stream.message())
            .await
            .context("no watch message for 30 s")??
            .context("the watch ended")?;
        let at = Instant::now();
        while let Ok(t) = rx.try_recv() {
            committed.push(t);
        }
        let counted = ((won(&msg) - base).max(0) as usize).min(committed.len());
        for t in &committed[delivered..counted] {
            lat.push(at.saturating_duration_since(*t));
        }
        delivered = delivered.max(counted);
    }
    sender.await??;
    Ok((percentiles(lat), total))
}

pub async fn measure(
    handoffs: usize,
    calls: usize,
    rate: u64,
    seconds: u64,
) -> anyhow::Result<Measured> {
    let producer_db = TestDatabase::new("bench_att_distribution").await;
    let reporting_db = TestDatabase::new("bench_att_reporting").await;
    let mut settings = settings_with(&[
        (ServiceName::Distribution, &producer_db),
        (ServiceName::Reporting, &reporting_db),
    ]);
    let producer_listener = bind_ephemeral(&mut settings, ServiceName::Distribution).await;
    let reporting_listener = bind_ephemeral(&mut settings, ServiceName::Reporting).await;
    let settings = Arc::new(settings);
    let producer = EventLogStandIn::start(
        ServiceName::Distribution,
        &producer_db.url,
        &settings,
        producer_listener,
    )
    .await?;
    let reporting = spawn(
        ServiceName::Reporting,
        &settings,
        reporting_listener,
        baton_reporting::run,
    );
    let mut contracts = ContractServiceClient::new(channel(&reporting.endpoint).await);
    let contract_id = contract(&mut contracts).await?;
    let events = seed_events(handoffs, &contract_id, Utc::now());
    let started = Instant::now();
    publish(&producer, &events).await?;
    let request = GetAttainmentRequest {
        contract_id: contract_id.clone(),
        ..Default::default()
    };
    loop {
        let a = contracts
            .get_attainment(request.clone())
            .await?
            .into_inner();
        let seen = a
            .targets
            .iter()
            .find(|t| t.target == "accepted_rate")
            .map_or(0, |t| t.denominator);
        // Accepted (12 of 20) + rejected (5 of 20) handoffs decided.
        if seen as usize == handoffs / 20 * 17 {
            break;
        }
        anyhow::ensure!(
            started.elapsed() < Duration::from_secs(3600),
            "reporting did not apply the seed in an hour"
        );
        tokio::time::sleep(Duration::from_millis(200)).await;
    }
    let apply_seconds = started.elapsed().as_secs_f64();
    let c = contracts.clone();
    let get = latencies(calls, || {
        let (mut c, r) = (c.clone(), request.clone());
        async move { c.get_attainment(r).await.map(|_| ()).map_err(Into::into) }
    })
    .await?;
    let by_rep_request = GetAttainmentRequest {
        group_by: vec!["rep".into()],
        ..request.clone()
    };
    let get_by_rep = latencies(calls, || {
        let (mut c, r) = (c.clone(), by_rep_request.clone());
        async move { c.get_attainment(r).await.map(|_| ()).map_err(Into::into) }
    })
    .await?;
    let baseline = latencies(calls, || {
        let mut c = c.clone();
        let contract_id = contract_id.clone();
        async move {
            c.get_contract(GetContractRequest { contract_id })
                .await
                .map(|_| ())
                .map_err(Into::into)
        }
    })
    .await?;
    let (watch, outcomes) = watch_latency(
        &producer,
        &mut contracts,
        &contract_id,
        (handoffs, rate, seconds),
    )
    .await?;
    let postgres = reporting_db.is_postgres();
    reporting.stop().await;
    producer.stop().await;
    Ok(Measured {
        handoffs,
        events: events.len(),
        apply_seconds,
        get,
        get_by_rep,
        baseline,
        watch,
        outcomes,
        rate,
        postgres,
    })
}

pub async fn print(handoffs: usize, calls: usize, rate: u64, seconds: u64) -> anyhow::Result<()> {
    let m = measure(handoffs, calls, rate, seconds).await?;
    let ms = |d: Duration| format!("{:.2} ms", d.as_secs_f64() * 1000.0);
    println!(
        "attainment on {}: {} handoffs ({} events) applied by reporting in {:.1} s ({:.0} events/s)",
        if m.postgres { "PostgreSQL" } else { "SQLite" },
        m.handoffs,
        m.events,
        m.apply_seconds,
        m.events as f64 / m.apply_seconds
    );
    for (label, l) in [
        ("GetAttainment", &m.get),
        ("GetAttainment by rep", &m.get_by_rep),
        ("GetContract (baseline)", &m.baseline),
    ] {
        println!(
            "  {label:<24} p50 {}  p99 {}  ({:.1}× the baseline's p50)",
            ms(l.p50),
            ms(l.p99),
            l.p50.as_secs_f64() / m.baseline.p50.as_secs_f64()
        );
    }
    println!(
        "  WatchAttainment: {} outcomes at {}/s, outcome committed → update received p50 {}  p99 {}  max {}",
        m.outcomes,
        m.rate,
        ms(m.watch.p50),
        ms(m.watch.p99),
        ms(m.watch.max)
    );
    Ok(())
}
