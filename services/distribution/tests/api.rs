//! distribution over a real socket, fed by real capture and qualification services.

use std::{sync::Arc, time::Duration};

use baton_proto::{
    capture::v1::{
        ActivityKind, CaptureLeadRequest, LeadSource, RecordActivityRequest,
        capture_service_client::CaptureServiceClient,
    },
    distribution::v1::{
        Assignment, AssignmentState, CreateRepRequest, ListAssignmentsRequest, ListRepsRequest,
        distribution_service_client::DistributionServiceClient,
    },
};
use baton_shared::{
    ServiceName,
    testing::{
        RunningService, TestDatabase, bind_ephemeral, channel, eventually, settings_with, spawn,
    },
};
use tonic::{Code, transport::Channel};

struct Fixture {
    capture: CaptureServiceClient<Channel>,
    distribution: DistributionServiceClient<Channel>,
    services: Vec<RunningService>,
    _dbs: Vec<TestDatabase>,
}

async fn start() -> Fixture {
    let dbs = vec![
        TestDatabase::new("capture").await,
        TestDatabase::new("qualification").await,
        TestDatabase::new("distribution").await,
    ];
    let mut settings = settings_with(&[
        (ServiceName::Capture, &dbs[0]),
        (ServiceName::Qualification, &dbs[1]),
        (ServiceName::Distribution, &dbs[2]),
    ]);
    let capture_listener = bind_ephemeral(&mut settings, ServiceName::Capture).await;
    let qualification_listener = bind_ephemeral(&mut settings, ServiceName::Qualification).await;
    let distribution_listener = bind_ephemeral(&mut settings, ServiceName::Distribution).await;
    let settings = Arc::new(settings);
    let services = vec![
        spawn(
            ServiceName::Capture,
            &settings,
            capture_listener,
            baton_capture::run,
        ),
        spawn(
            ServiceName::Qualification,
            &settings,
            qualification_listener,
            baton_qualification::run,
        ),
        spawn(
            ServiceName::Distribution,
            &settings,
            distribution_listener,
            baton_distribution::run,
        ),
    ];
    Fixture {
        capture: CaptureServiceClient::new(channel(&services[0].endpoint).await),
        distribution: DistributionServiceClient::new(channel(&services[2].endpoint).await),
        services,
        _dbs: dbs,
    }
}

fn rep(n: usize, active: bool) -> CreateRepRequest {
    CreateRepRequest {
        request_id: format!("rep-{n}"),
        name: format!("Rep {n}"),
        email: format!("rep{n}@example.com"),
        active,
        routing: None,
    }
}

impl Fixture {
    /// Captures a lead and books it a meeting and a trial: 50 points, an MQL under the default model.
    async fn mql(&mut self, n: usize) -> String {
        let lead_id = self
            .capture
            .capture_lead(CaptureLeadRequest {
                request_id: format!("lead-{n}"),
                email: format!("lead{n}@example.com"),
                source: Some(LeadSource {
                    channel: "web_form".into(),
                    campaign: String::new(),
                    ..Default::default()
                }),
                ..Default::default()
            })
            .await
            .unwrap()
            .into_inner()
            .lead
            .unwrap()
            .lead_id;
        for (k, kind) in [ActivityKind::MeetingBooked, ActivityKind::FreeTrialStarted]
            .into_iter()
            .enumerate()
        {
            self.capture
                .record_activity(RecordActivityRequest {
                    idempotency_key: format!("{n}-{k}"),
                    lead_id: lead_id.clone(),
                    kind: kind as i32,
                    ..Default::default()
                })
                .await
                .unwrap();
        }
        lead_id
    }

    async fn assignments_when(
        &self,
        what: &str,
        done: impl Fn(&[Assignment]) -> bool,
    ) -> Vec<Assignment> {
        eventually(what, Duration::from_secs(20), || {
            let mut d = self.distribution.clone();
            let done = &done;
            async move {
                let a = d
                    .list_assignments(ListAssignmentsRequest {
                        page_size: 0,
                        ..Default::default()
                    })
                    .await
                    .ok()?
                    .into_inner()
                    .assignments;
                done(&a).then_some(a)
            }
        })
        .await
    }

    async fn stop(self) {
        for s in self.services {
            s.stop().await;
        }
    }
}

#[tokio::test]
async fn mqls_rotate_over_active_reps_and_skip_inactive_ones() {
    let mut f = start().await;
    let a = f
        .distribution
        .create_rep(rep(0, true))
        .await
        .unwrap()
        .into_inner();
    let _inactive = f
        .distribution
        .create_rep(rep(1, false))
        .await
        .unwrap()
        .into_inner();
    let c = f
        .distribution
        .create_rep(rep(2, true))
        .await
        .unwrap()
        .into_inner();
    let mut leads = Vec::new();
    for n in 0..4 {
        leads.push(f.mql(n).await);
    }
    let assignments = f.assignments_when("4 assignments", |a| a.len() == 4).await;
    let reps: Vec<_> = assignments.iter().map(|x| x.rep_id.clone()).collect();
    assert_eq!(
        reps,
        [
            a.rep_id.clone(),
            c.rep_id.clone(),
            a.rep_id.clone(),
            c.rep_id.clone()
        ]
    );
    let only_c = f
        .distribution
        .list_assignments(ListAssignmentsRequest {
            page_size: 0,
            page_token: String::new(),
            rep_id: c.rep_id.clone(),
        })
        .await
        .unwrap()
        .into_inner();
    assert_eq!(only_c.assignments.len(), 2);
    f.stop().await;
}

#[tokio::test]
async fn an_mql_with_nobody_to_take_it_waits_in_the_queue_until_a_rep_is_created() {
    let mut f = start().await;
    let lead = f.mql(0).await;
    let queued = f.assignments_when("queued", |a| a.len() == 1).await;
    assert_eq!(
        (queued[0].lead_id.as_str(), queued[0].state),
        (lead.as_str(), AssignmentState::Queued as i32)
    );
    assert!(queued[0].rep_id.is_empty());
    let rep = f
        .distribution
        .create_rep(rep(0, true))
        .await
        .unwrap()
        .into_inner();
    let now = f
        .assignments_when("assigned", |a| {
            a.len() == 1 && a[0].state == AssignmentState::Assigned as i32
        })
        .await;
    assert_eq!(now[0].rep_id, rep.rep_id);
    assert!(now[0].assigned_at.is_some());
    f.stop().await;
}

#[tokio::test]
async fn reps_are_validated_unique_idempotent_and_paged() {
    let mut f = start().await;
    let first = f
        .distribution
        .create_rep(rep(0, true))
        .await
        .unwrap()
        .into_inner();
    let replay = f
        .distribution
        .create_rep(rep(0, true))
        .await
        .unwrap()
        .into_inner();
    assert_eq!(first, replay);
    let mut same_email = rep(0, true);
    same_email.request_id = "other".into();
    assert_eq!(
        f.distribution
            .create_rep(same_email)
            .await
            .unwrap_err()
            .code(),
        Code::AlreadyExists
    );
    let bad = CreateRepRequest {
        request_id: String::new(),
        name: String::new(),
        email: "x".into(),
        active: true,
        routing: None,
    };
    assert_eq!(
        f.distribution.create_rep(bad).await.unwrap_err().code(),
        Code::InvalidArgument
    );
    for n in 1..5 {
        f.distribution.create_rep(rep(n, true)).await.unwrap();
    }
    let mut names = Vec::new();
    let mut page_token = String::new();
    loop {
        let page = f
            .distribution
            .list_reps(ListRepsRequest {
                page_size: 2,
                page_token,
            })
            .await
            .unwrap()
            .into_inner();
        assert!(page.reps.len() <= 2);
        names.extend(page.reps.into_iter().map(|r| r.name));
        if page.next_page_token.is_empty() {
            break;
        }
        page_token = page.next_page_token;
    }
    assert_eq!(names, ["Rep 0", "Rep 1", "Rep 2", "Rep 3", "Rep 4"]);
    let bad_page = f
        .distribution
        .list_reps(ListRepsRequest {
            page_size: 5000,
            page_token: "x".into(),
        })
        .await;
    assert_eq!(bad_page.unwrap_err().code(), Code::InvalidArgument);
    f.stop().await;
}
