//! Fairness at volume: 10,000 MQLs reach distribution over gRPC from an event log, and a weighted
//! team shares them within 1 % of its weights; a rep at capacity gets no more.
//!
//! The producer is Baton's own EventLog service on its own database, standing where qualification
//! runs in production (distribution follows it exactly as it follows qualification), so the test
//! feeds 10,000 `StageChanged` events without capturing and scoring 10,000 leads first. The same
//! stand-ins feed a burst that distribution applies in one batch, with a contract's response SLA,
//! and (standing where capture runs) a burst of lead profiles that routes the leads waiting for them.

use std::{sync::Arc, time::Duration};

use baton_proto::{
    distribution::v1::{
        CreateRepRequest, CreateTeamRequest, ListRepsRequest, RepRouting, RoutingMethod,
        RoutingRule, SetRoutingRulesRequest, TeamFunction,
        distribution_service_client::DistributionServiceClient,
    },
    qualification::v1::{Stage, StageChanged},
};
use baton_shared::peer::AuthChannel;
use baton_shared::{
    ServiceName, TenantId,
    events::EventLog,
    testing::{
        EventLogStandIn, RunningService, TestDatabase, bind_ephemeral, channel, eventually,
        settings_with, spawn,
    },
};
use sea_orm::TransactionTrait;

const LEADS: usize = 10_000;

async fn rep(
    d: &mut DistributionServiceClient<AuthChannel>,
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

/// A lead's move to MQL, as qualification announces it.
fn mql(lead_id: &str) -> StageChanged {
    StageChanged {
        lead_id: lead_id.into(),
        from_stage: Stage::Lead as i32,
        to_stage: Stage::Mql as i32,
        score: 60,
        ..Default::default()
    }
}

/// An event log standing where qualification runs, one standing where reporting runs, and
/// distribution following both, with a weighted team "fs" that one rule sends every lead to.
struct Fixture {
    producer: EventLogStandIn,
    reporting: EventLogStandIn,
    capture: EventLogStandIn,
    distribution: RunningService,
    d: DistributionServiceClient<AuthChannel>,
    distribution_url: String,
    _dbs: [TestDatabase; 4],
}

impl Fixture {
    async fn start() -> Self {
        let producer_db = TestDatabase::new("qualification").await;
        let reporting_db = TestDatabase::new("reporting").await;
        let distribution_db = TestDatabase::new("distribution").await;
        let capture_db = TestDatabase::new("capture").await;
        let mut settings = settings_with(&[
            (ServiceName::Qualification, &producer_db),
            (ServiceName::Reporting, &reporting_db),
            (ServiceName::Distribution, &distribution_db),
            (ServiceName::Capture, &capture_db),
        ]);
        let producer_listener = bind_ephemeral(&mut settings, ServiceName::Qualification).await;
        let reporting_listener = bind_ephemeral(&mut settings, ServiceName::Reporting).await;
        let capture_listener = bind_ephemeral(&mut settings, ServiceName::Capture).await;
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
        let reporting = EventLogStandIn::start(
            ServiceName::Reporting,
            &reporting_db.url,
            &settings,
            reporting_listener,
        )
        .await
        .unwrap();
        let capture = EventLogStandIn::start(
            ServiceName::Capture,
            &capture_db.url,
            &settings,
            capture_listener,
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
            name: "Sales".into(),
            function: TeamFunction::FieldSales as i32,
            method: RoutingMethod::WeightedRoundRobin as i32,
        })
        .await
        .unwrap();
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
        Fixture {
            producer,
            reporting,
            capture,
            distribution,
            d,
            distribution_url: distribution_db.url.clone(),
            _dbs: [producer_db, reporting_db, distribution_db, capture_db],
        }
    }

    /// Every rep, once their open leads add up to `total`.
    async fn reps_when_open(
        &self,
        total: usize,
        within: Duration,
    ) -> Vec<baton_proto::distribution::v1::Rep> {
        eventually("every MQL assigned", within, || {
            let mut d = self.d.clone();
            async move {
                let reps = d
                    .list_reps(ListRepsRequest::default())
                    .await
                    .ok()?
                    .into_inner()
                    .reps;
                let open: i64 = reps.iter().map(|r| r.open_leads).sum();
                (open == total as i64).then_some(reps)
            }
        })
        .await
    }

    /// Publishes `events` on the stand-in qualification log, committed together.
    async fn publish(&self, events: &[StageChanged]) {
        let tenant = TenantId::new("default");
        let txn = self.producer.db.begin().await.unwrap();
        for event in events {
            EventLog::append(&txn, &tenant, &event.lead_id, event)
                .await
                .unwrap();
        }
        txn.commit().await.unwrap();
        self.producer.log.notify_committed();
    }

    async fn stop(self) {
        self.distribution.stop().await;
        self.reporting.stop().await;
        self.capture.stop().await;
        self.producer.stop().await;
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn ten_thousand_mqls_land_within_one_percent_of_the_weights_and_capacity_holds() {
    let mut f = Fixture::start().await;
    let weights = [1.0, 2.0, 3.0, 4.0];
    let mut reps = Vec::new();
    for (n, w) in weights.iter().enumerate() {
        reps.push(rep(&mut f.d, n, *w, 0).await);
    }
    // A heavy rep that may hold only 10 open leads.
    let capped = rep(&mut f.d, 9, 5.0, 10).await;
    for chunk in (0..LEADS).collect::<Vec<_>>().chunks(500) {
        let events: Vec<StageChanged> = chunk.iter().map(|n| mql(&format!("lead-{n}"))).collect();
        f.publish(&events).await;
    }

    let open = f.reps_when_open(LEADS, Duration::from_secs(180)).await;
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
    f.stop().await;
}

/// MQLs that arrive in one batch are decided together and their writes made together at the end
/// of the batch: each lead must still get its own assignment, its rep's open-lead count, its
/// `LeadAssigned` decision and, under an IS contract, its own response SLA timer.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn mqls_decided_in_one_batch_each_get_their_assignment_and_response_sla() {
    use baton_proto::reporting::v1::{Contract, ContractActivated, ContractTerms};
    const BURST: usize = 300;
    let mut f = Fixture::start().await;
    for n in 0..3 {
        rep(&mut f.d, n, 1.0, 0).await;
    }
    // The team's contract: first response within 30 minutes.
    let tenant = TenantId::new("default");
    let txn = f.reporting.db.begin().await.unwrap();
    let activated = ContractActivated {
        contract: Some(Contract {
            contract_id: "c-1".into(),
            version: 1,
            terms: Some(ContractTerms {
                is_team: "fs".into(),
                fs_team: "field".into(),
                is_owner: "is-lead@example.com".into(),
                fs_owner: "fs-lead@example.com".into(),
                response_sla_minutes: 30,
                ..Default::default()
            }),
            ..Default::default()
        }),
    };
    EventLog::append(&txn, &tenant, "c-1", &activated)
        .await
        .unwrap();
    txn.commit().await.unwrap();
    f.reporting.log.notify_committed();
    let url = f.distribution_url.clone();
    eventually(
        "the contract replicated",
        Duration::from_secs(30),
        || async {
            (baton_shared::testing::count(&url, "SELECT COUNT(*) AS n FROM contract_replica").await
                == 1)
                .then_some(())
        },
    )
    .await;

    // The burst, committed at once so it reaches distribution together.
    let mut events = Vec::new();
    for n in 0..BURST {
        let event = mql(&format!("burst-{n}"));
        events.push(event.clone());
        // The same lead again (a later stage): still one assignment.
        if n % 10 == 0 {
            events.push(StageChanged {
                from_stage: Stage::Mql as i32,
                to_stage: Stage::Sql as i32,
                ..event
            });
        }
    }
    f.publish(&events).await;

    let open = f.reps_when_open(BURST, Duration::from_secs(60)).await;
    // Equal weights: the burst is shared evenly.
    for r in &open {
        assert_eq!(r.open_leads, (BURST / 3) as i64, "{r:?}");
    }
    let count = |sql: &'static str| {
        let url = url.clone();
        async move { baton_shared::testing::count(&url, sql).await }
    };
    assert_eq!(
        count("SELECT COUNT(*) AS n FROM assignment").await,
        BURST as i64
    );
    assert_eq!(
        count("SELECT COUNT(DISTINCT lead_id) AS n FROM assignment").await,
        BURST as i64
    );
    // One response SLA per assignment, for its lead and rep.
    assert_eq!(
        count(
            "SELECT COUNT(*) AS n FROM sla_timer t JOIN assignment a \
             ON a.assignment_id = t.subject_id AND a.lead_id = t.lead_id AND a.rep_id = t.rep_id \
             WHERE t.kind = 1"
        )
        .await,
        BURST as i64
    );
    assert_eq!(
        count("SELECT COUNT(*) AS n FROM sla_timer").await,
        BURST as i64
    );
    // Every decision announced (on PostgreSQL the relay publishes from the outbox a moment later).
    eventually(
        "every decision announced",
        Duration::from_secs(30),
        || async {
            (count("SELECT COUNT(*) AS n FROM event_log WHERE type_url LIKE '%LeadAssigned'").await
                == BURST as i64)
                .then_some(())
        },
    )
    .await;
    f.stop().await;
}

/// Profiles that arrive in one batch are stored together: each lead keeps its last profile, and
/// the leads that waited in the queue for one are routed by it.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn profiles_stored_in_one_batch_route_the_queued_leads_by_their_last_profile() {
    use baton_proto::{
        capture::v1::{Company, Lead, LeadCaptured, LeadUpdated},
        distribution::v1::{AssignmentState, RoutingCondition},
    };
    const LEADS: usize = 100;
    let f = Fixture::start().await;
    let mut d = f.d.clone();
    rep(&mut d, 0, 1.0, 0).await;
    // Only leads from Japan go to the team.
    d.set_routing_rules(SetRoutingRulesRequest {
        rules: vec![RoutingRule {
            key: "japan_to_fs".into(),
            to_team: "fs".into(),
            conditions: vec![RoutingCondition {
                field: "company.country".into(),
                any_of: vec!["JP".into()],
                ..Default::default()
            }],
            ..Default::default()
        }],
        expected_version: 1,
    })
    .await
    .unwrap();
    // MQLs before their profiles: no country yet, so every one waits in the queue.
    let ids: Vec<String> = (0..LEADS).map(|n| format!("lead-{n}")).collect();
    f.publish(&ids.iter().map(|id| mql(id)).collect::<Vec<_>>())
        .await;
    let url = f.distribution_url.clone();
    let count = |sql: String| {
        let url = url.clone();
        async move { baton_shared::testing::count(&url, &sql).await }
    };
    let queued = AssignmentState::Queued as i32;
    let assigned = AssignmentState::Assigned as i32;
    eventually("every MQL queued", Duration::from_secs(60), || {
        let sql = format!("SELECT COUNT(*) AS n FROM assignment WHERE state = {queued}");
        async move { (count(sql).await == LEADS as i64).then_some(()) }
    })
    .await;

    // Every lead captured from the US, and every even one then updated to Japan, committed
    // together so that they reach distribution in one batch.
    let lead = |id: &str, country: &str| Lead {
        lead_id: id.into(),
        company: Some(Company {
            country: country.into(),
            ..Default::default()
        }),
        ..Default::default()
    };
    let tenant = TenantId::new("default");
    let txn = f.capture.db.begin().await.unwrap();
    for id in &ids {
        let captured = LeadCaptured {
            lead_id: id.clone(),
            lead: Some(lead(id, "US")),
            ..Default::default()
        };
        EventLog::append(&txn, &tenant, id, &captured)
            .await
            .unwrap();
    }
    for id in ids.iter().step_by(2) {
        let updated = LeadUpdated {
            lead: Some(lead(id, "JP")),
            changed_paths: vec!["company.country".into()],
        };
        EventLog::append(&txn, &tenant, id, &updated).await.unwrap();
    }
    txn.commit().await.unwrap();
    f.capture.log.notify_committed();

    let open = f.reps_when_open(LEADS / 2, Duration::from_secs(60)).await;
    assert_eq!(open[0].open_leads, (LEADS / 2) as i64);
    let even: Vec<String> = ids.iter().step_by(2).map(|id| format!("'{id}'")).collect();
    assert_eq!(
        count(format!(
            "SELECT COUNT(*) AS n FROM assignment WHERE state = {assigned} AND lead_id IN ({})",
            even.join(",")
        ))
        .await,
        (LEADS / 2) as i64,
        "the leads whose last profile is from Japan are assigned"
    );
    assert_eq!(
        count(format!(
            "SELECT COUNT(*) AS n FROM assignment WHERE state = {queued}"
        ))
        .await,
        (LEADS / 2) as i64,
        "the others still wait"
    );
    assert_eq!(
        count("SELECT COUNT(*) AS n FROM lead_signal WHERE fields LIKE '%\"JP\"%'".to_owned())
            .await,
        (LEADS / 2) as i64
    );
    f.stop().await;
}
