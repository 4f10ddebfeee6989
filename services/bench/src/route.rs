//! A routing decision's latency.

use std::{
    sync::Arc,
    time::{Duration, Instant},
};

use baton::progress;
use baton_shared::{
    ServiceName,
    testing::{TestDatabase, bind_ephemeral, channel, settings_with, spawn},
};

use crate::{
    measure::{Latency, Measurement, percentiles},
    mql::routing_fixture,
};

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
    let bar = progress::counting(leads as u64, "ReassignLead");
    for n in 0..leads {
        bar.inc(1);
        let t = Instant::now();
        let ok = d
            .reassign_lead(ReassignLeadRequest {
                lead_id: format!("lead-{n}"),
                reason: "bench".into(),
                requested_by: String::new(),
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

/// `baton-bench route`: prints the decision's latency.
pub async fn print(rows: usize) -> anyhow::Result<()> {
    let (m, postgres) = route(rows).await?;
    let db = if postgres { "PostgreSQL" } else { "SQLite" };
    println!(
        "baton-bench route: {rows} ReassignLead calls one at a time, 200 reps, 20 rules, {db}"
    );
    println!(
        "{}",
        crate::measure::report("routing decision (ReassignLead)", &m)
    );
    Ok(())
}
