//! Fairness at volume: 10,000 MQLs reach distribution over gRPC from an event log, and a weighted
//! team shares them within 1 % of its weights; a rep at capacity gets no more.
//!
//! The producer is Baton's own EventLog service on its own database, standing where qualification
//! runs in production (distribution follows it exactly as it follows qualification), so the test
//! feeds 10,000 `StageChanged` events without capturing and scoring 10,000 leads first.

use std::{sync::Arc, time::Duration};

use baton_proto::{
    distribution::v1::{
        CreateRepRequest, CreateTeamRequest, ListRepsRequest, RepRouting, RoutingMethod,
        RoutingRule, SetRoutingRulesRequest, TeamFunction,
        distribution_service_client::DistributionServiceClient,
    },
    qualification::v1::{Stage, StageChanged},
};
use baton_shared::{
    ServiceName, TenantId,
    events::EventLog,
    testing::{
        EventLogStandIn, TestDatabase, bind_ephemeral, channel, eventually, settings_with, spawn,
    },
};
use sea_orm::TransactionTrait;
use tonic::transport::Channel;

const LEADS: usize = 10_000;

async fn rep(
    d: &mut DistributionServiceClient<Channel>,
    n: usize,
    weight: f64,
    capacity: i32,
) -> String {
    d.create_rep(CreateRepRequest {
        request_id: format!("rep-{n}"),
        name: format!("Rep {n}"),
        email: format!("rep{n}@example.com"),
        active: true,
        routing: Some(RepRouting {
            team_id: "fs".into(),
            weight: Some(weight),
            capacity,
            ..Default::default()
        }),
    })
    .await
    .unwrap()
    .into_inner()
    .rep_id
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn ten_thousand_mqls_land_within_one_percent_of_the_weights_and_capacity_holds() {
    let producer_db = TestDatabase::new("qualification").await;
    let distribution_db = TestDatabase::new("distribution").await;
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
    .await
    .unwrap();
    let distribution = spawn(
        ServiceName::Distribution,
        &settings,
        distribution_listener,
        baton_distribution::run,
    );
    let mut d = DistributionServiceClient::new(channel(&distribution.endpoint).await);
    d.create_team(CreateTeamRequest {
        team_id: "fs".into(),
        name: "Field sales".into(),
        function: TeamFunction::FieldSales as i32,
        method: RoutingMethod::WeightedRoundRobin as i32,
    })
    .await
    .unwrap();
    let weights = [1.0, 2.0, 3.0, 4.0];
    let mut reps = Vec::new();
    for (n, w) in weights.iter().enumerate() {
        reps.push(rep(&mut d, n, *w, 0).await);
    }
    // A heavy rep that may hold only 10 open leads.
    let capped = rep(&mut d, 9, 5.0, 10).await;
    d.set_routing_rules(SetRoutingRulesRequest {
        rules: vec![RoutingRule {
            key: "everyone_to_fs".into(),
            to_team: "fs".into(),
            ..Default::default()
        }],
        expected_version: 0,
    })
    .await
    .unwrap();

    let tenant = TenantId::new("default");
    for chunk in (0..LEADS).collect::<Vec<_>>().chunks(500) {
        let txn = producer.db.begin().await.unwrap();
        for n in chunk {
            let event = StageChanged {
                lead_id: format!("lead-{n}"),
                from_stage: Stage::Lead as i32,
                to_stage: Stage::Mql as i32,
                score: 60,
                ..Default::default()
            };
            EventLog::append(&txn, &tenant, &event.lead_id, &event)
                .await
                .unwrap();
        }
        txn.commit().await.unwrap();
        producer.log.notify_committed();
    }

    let open = eventually("every MQL assigned", Duration::from_secs(180), || {
        let mut d = d.clone();
        async move {
            let reps = d
                .list_reps(ListRepsRequest::default())
                .await
                .ok()?
                .into_inner()
                .reps;
            let total: i64 = reps.iter().map(|r| r.open_leads).sum();
            (total == LEADS as i64).then_some(reps)
        }
    })
    .await;
    let of = |id: &str| open.iter().find(|r| r.rep_id == id).unwrap().open_leads;
    assert_eq!(of(&capped), 10, "capacity holds");
    let shared = (LEADS - 10) as f64;
    let total_weight: f64 = weights.iter().sum();
    for (id, w) in reps.iter().zip(weights) {
        let expected = shared * w / total_weight;
        let got = of(id) as f64;
        assert!(
            (got - expected).abs() <= 0.01 * expected,
            "weight {w}: {got} leads, expected {expected:.0} ± 1 %"
        );
    }
    distribution.stop().await;
    producer.stop().await;
}
