//! A sales floor for handoff tests: reporting (for contracts) and distribution running, event logs
//! standing where capture and qualification run (so a test announces a lead, its BANT and its move
//! to MQL without scoring it), an IS team with one rep that routing sends every lead to, and an FS
//! team.

// Each test crate that includes this module uses a part of it.
#![allow(dead_code)]

use std::{sync::Arc, time::Duration};

use baton_proto::{
    capture::v1::{Lead, LeadCaptured, LeadErased, LeadsMerged},
    distribution::v1::{
        AssignmentState, CreateRepRequest, CreateTeamRequest, ExplainAssignmentRequest, RepRouting,
        RoutingMethod, RoutingRule, SetRoutingRulesRequest, TeamFunction,
        distribution_service_client::DistributionServiceClient,
    },
    qualification::v1::{BantRecorded, Stage, StageChanged},
    reporting::v1::{
        ApproveContractRequest, ContractTerms, CreateContractRequest,
        contract_service_client::ContractServiceClient,
    },
};
use baton_shared::{
    ServiceName, Settings, TenantId,
    events::EventLog,
    peer::AuthChannel,
    testing::{
        EventLogStandIn, RunningService, TestDatabase, as_user, bind_ephemeral, channel,
        eventually, settings_with, spawn,
    },
};
use sea_orm::TransactionTrait;

pub const IS_TEAM: &str = "is-tokyo";
pub const IS_OWNER: &str = "is-lead@example.com";
pub const FS_OWNER: &str = "fs-lead@example.com";
pub const FS_TEAM: &str = "fs-tokyo";

pub struct Floor {
    pub settings: Arc<Settings>,
    pub reporting: RunningService,
    pub distribution: RunningService,
    pub d: DistributionServiceClient<AuthChannel>,
    pub distribution_db: TestDatabase,
    capture: EventLogStandIn,
    qualification: EventLogStandIn,
    _dbs: [TestDatabase; 3],
}

/// What a test announces of a lead before handing it off.
#[derive(Debug, Clone, Copy, Default)]
pub struct LeadSetup {
    pub budget: bool,
    pub need: bool,
}

impl Floor {
    /// Starts the floor; `tune` adjusts the settings first (e.g. the SLA worker's interval).
    pub async fn start(tune: impl FnOnce(&mut Settings)) -> Self {
        let reporting_db = TestDatabase::new("reporting").await;
        let distribution_db = TestDatabase::new("distribution").await;
        let capture_db = TestDatabase::new("capture").await;
        let qualification_db = TestDatabase::new("qualification").await;
        let mut settings = settings_with(&[
            (ServiceName::Reporting, &reporting_db),
            (ServiceName::Distribution, &distribution_db),
            (ServiceName::Capture, &capture_db),
            (ServiceName::Qualification, &qualification_db),
        ]);
        tune(&mut settings);
        let reporting_listener = bind_ephemeral(&mut settings, ServiceName::Reporting).await;
        let distribution_listener = bind_ephemeral(&mut settings, ServiceName::Distribution).await;
        let capture_listener = bind_ephemeral(&mut settings, ServiceName::Capture).await;
        let qualification_listener =
            bind_ephemeral(&mut settings, ServiceName::Qualification).await;
        let settings = Arc::new(settings);
        let capture = EventLogStandIn::start(
            ServiceName::Capture,
            &capture_db.url,
            &settings,
            capture_listener,
        )
        .await
        .unwrap();
        let qualification = EventLogStandIn::start(
            ServiceName::Qualification,
            &qualification_db.url,
            &settings,
            qualification_listener,
        )
        .await
        .unwrap();
        let reporting = spawn(
            ServiceName::Reporting,
            &settings,
            reporting_listener,
            baton_reporting::run,
        );
        let distribution = spawn(
            ServiceName::Distribution,
            &settings,
            distribution_listener,
            baton_distribution::run,
        );
        let mut d = DistributionServiceClient::new(channel(&distribution.endpoint).await);
        for (team, function) in [
            (IS_TEAM, TeamFunction::InsideSales),
            (FS_TEAM, TeamFunction::FieldSales),
        ] {
            d.create_team(CreateTeamRequest {
                team_id: team.into(),
                name: team.into(),
                function: function as i32,
                method: RoutingMethod::RoundRobin as i32,
            })
            .await
            .unwrap();
        }
        d.create_rep(CreateRepRequest {
            request_id: "is-rep".into(),
            name: "IS rep".into(),
            email: "is-rep@example.com".into(),
            active: true,
            routing: Some(RepRouting {
                team_id: IS_TEAM.into(),
                ..Default::default()
            }),
        })
        .await
        .unwrap();
        d.set_routing_rules(SetRoutingRulesRequest {
            rules: vec![RoutingRule {
                key: "all_to_is".into(),
                to_team: IS_TEAM.into(),
                ..Default::default()
            }],
            expected_version: 0,
        })
        .await
        .unwrap();
        Floor {
            settings,
            reporting,
            distribution,
            d,
            distribution_db,
            capture,
            qualification,
            _dbs: [reporting_db, capture_db, qualification_db],
        }
    }

    /// Announces `lead_id` as captured, its BANT as recorded and its move to MQL, and waits until
    /// distribution assigned it to the IS rep.
    pub async fn lead(&self, lead_id: &str, setup: LeadSetup) {
        self.announce_leads(&[lead_id], setup).await;
        self.assigned(lead_id).await;
    }

    /// [`Self::lead`] for many leads, announced together.
    pub async fn leads(&self, lead_ids: &[&str], setup: LeadSetup) {
        self.announce_leads(lead_ids, setup).await;
        for lead_id in lead_ids {
            self.assigned(lead_id).await;
        }
    }

    async fn announce_leads(&self, lead_ids: &[&str], setup: LeadSetup) {
        let captured: Vec<LeadCaptured> = lead_ids
            .iter()
            .map(|id| LeadCaptured {
                lead_id: (*id).into(),
                lead: Some(Lead {
                    lead_id: (*id).into(),
                    ..Default::default()
                }),
                ..Default::default()
            })
            .collect();
        publish(&self.capture, &captured, |e| &e.lead_id).await;
        let bant: Vec<BantRecorded> = lead_ids
            .iter()
            .map(|id| BantRecorded {
                lead_id: (*id).into(),
                budget: setup.budget,
                need: setup.need,
                recorded_by: "is-rep@example.com".into(),
                ..Default::default()
            })
            .collect();
        publish(&self.qualification, &bant, |e| &e.lead_id).await;
        let mqls: Vec<StageChanged> = lead_ids
            .iter()
            .map(|id| StageChanged {
                lead_id: (*id).into(),
                from_stage: Stage::Lead as i32,
                to_stage: Stage::Mql as i32,
                score: 60,
                ..Default::default()
            })
            .collect();
        publish(&self.qualification, &mqls, |e| &e.lead_id).await;
    }

    /// Capture erased `lead_id`.
    pub async fn erase(&self, lead_id: &str) {
        let erased = LeadErased {
            lead_id: lead_id.into(),
            ..Default::default()
        };
        publish(&self.capture, &[erased], |e| &e.lead_id).await;
    }

    /// Capture merged `merged` into `survivor`.
    pub async fn merge(&self, merged: &str, survivor: &str) {
        let event = LeadsMerged {
            merged_lead_id: merged.into(),
            survivor_lead_id: survivor.into(),
            ..Default::default()
        };
        publish(&self.capture, &[event], |e| &e.merged_lead_id).await;
    }

    async fn assigned(&self, lead_id: &str) {
        eventually("assigned", Duration::from_secs(30), || {
            let mut d = self.d.clone();
            let lead_id = lead_id.to_owned();
            async move {
                let a = d
                    .explain_assignment(ExplainAssignmentRequest { lead_id })
                    .await
                    .ok()?
                    .into_inner()
                    .assignment?;
                (a.state == AssignmentState::Assigned as i32).then_some(())
            }
        })
        .await;
    }

    pub async fn stop(self) {
        self.distribution.stop().await;
        self.reporting.stop().await;
        self.capture.stop().await;
        self.qualification.stop().await;
    }
}

/// Appends `events` to a stand-in's log in one transaction.
async fn publish<E: prost::Message + prost::Name>(
    log: &EventLogStandIn,
    events: &[E],
    key: impl Fn(&E) -> &String,
) {
    let tenant = TenantId::new("default");
    let txn = log.db.begin().await.unwrap();
    for event in events {
        EventLog::append(&txn, &tenant, key(event), event)
            .await
            .unwrap();
    }
    txn.commit().await.unwrap();
    log.log.notify_committed();
}

/// Creates `terms` as a contract and has both owners approve it.
pub async fn activate(
    contracts: &mut ContractServiceClient<baton_shared::peer::AuthChannel>,
    request_id: &str,
    terms: ContractTerms,
) -> baton_proto::reporting::v1::Contract {
    let draft = contracts
        .create_contract(as_user(
            "sales-ops@example.com",
            CreateContractRequest {
                request_id: request_id.into(),
                terms: Some(terms),
                created_by: "sales-ops@example.com".into(),
            },
        ))
        .await
        .unwrap()
        .into_inner();
    let mut last = draft.clone();
    for approver in [IS_OWNER, FS_OWNER] {
        last = contracts
            .approve_contract(as_user(
                approver,
                ApproveContractRequest {
                    contract_id: draft.contract_id.clone(),
                    approver: approver.into(),
                },
            ))
            .await
            .unwrap()
            .into_inner();
    }
    last
}
