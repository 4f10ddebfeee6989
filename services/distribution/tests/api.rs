//! distribution over a real socket, fed by real capture and qualification services.

use baton_shared::testing::as_user;
use std::{collections::HashMap, sync::Arc, time::Duration};

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
use baton_shared::peer::AuthChannel;
use baton_shared::{
    ServiceName,
    testing::{
        RunningService, TestDatabase, bind_ephemeral, channel, eventually, settings_with, spawn,
    },
};
use tonic::Code;

struct Fixture {
    capture: CaptureServiceClient<AuthChannel>,
    distribution: DistributionServiceClient<AuthChannel>,
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
    /// Each rep's open-lead count, as ListReps shows it.
    async fn open_leads(&mut self) -> HashMap<String, i64> {
        self.distribution
            .list_reps(ListRepsRequest {
                page_size: 500,
                page_token: String::new(),
            })
            .await
            .unwrap()
            .into_inner()
            .reps
            .into_iter()
            .map(|r| (r.rep_id, r.open_leads))
            .collect()
    }

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

// ---- Routing as data ----

mod routing {
    use super::*;
    use baton_proto::{
        capture::v1::Company,
        distribution::v1::{
            CreateTeamRequest, ExplainAssignmentRequest, ReassignLeadRequest,
            ReassignRepLeadsRequest, RepRouting, RoutingCondition, RoutingMethod, RoutingRule,
            SetRoutingRulesRequest, TeamFunction, TimeRange, UpdateRepRequest,
        },
    };
    use baton_shared::time;
    use std::collections::BTreeMap;
    use tonic_types::StatusExt;

    impl Fixture {
        /// An MQL from `country` through `channel`.
        async fn mql_from(&mut self, n: usize, country: &str, channel: &str) -> String {
            let lead_id = self
                .capture
                .capture_lead(CaptureLeadRequest {
                    request_id: format!("lead-{n}"),
                    email: format!("lead{n}@corp{n}.example.com"),
                    company: Some(Company {
                        name: format!("Corp {n}"),
                        country: country.into(),
                        ..Default::default()
                    }),
                    source: Some(LeadSource {
                        channel: channel.into(),
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

        async fn rep_in(&mut self, n: usize, team: &str, weight: f64, active: bool) -> String {
            let mut req = rep(n, active);
            req.routing = Some(RepRouting {
                team_id: team.into(),
                weight: Some(weight),
                ..Default::default()
            });
            self.distribution
                .create_rep(req)
                .await
                .unwrap()
                .into_inner()
                .rep_id
        }

        async fn team(&mut self, id: &str, function: TeamFunction, method: RoutingMethod) {
            self.distribution
                .create_team(CreateTeamRequest {
                    team_id: id.into(),
                    name: id.into(),
                    function: function as i32,
                    method: method as i32,
                })
                .await
                .unwrap();
        }
    }

    fn by_rep(assignments: &[Assignment]) -> BTreeMap<String, usize> {
        let mut m = BTreeMap::new();
        for a in assignments
            .iter()
            .filter(|a| a.state == AssignmentState::Assigned as i32)
        {
            *m.entry(a.rep_id.clone()).or_default() += 1;
        }
        m
    }

    fn when(field: &str, any_of: &[&str]) -> RoutingCondition {
        RoutingCondition {
            field: field.into(),
            any_of: any_of.iter().map(|s| s.to_string()).collect(),
            ..Default::default()
        }
    }

    #[tokio::test]
    async fn rules_pick_the_team_weights_share_the_leads_and_every_decision_is_explained() {
        let mut f = start().await;
        f.team(
            "fs-enterprise",
            TeamFunction::FieldSales,
            RoutingMethod::WeightedRoundRobin,
        )
        .await;
        f.team(
            "is-smb",
            TeamFunction::InsideSales,
            RoutingMethod::RoundRobin,
        )
        .await;
        let a = f.rep_in(1, "fs-enterprise", 1.0, true).await;
        let b = f.rep_in(2, "fs-enterprise", 2.0, true).await;
        let c = f.rep_in(3, "is-smb", 1.0, true).await;
        let d = f.rep_in(4, "is-smb", 1.0, true).await;
        let e = f.rep_in(5, "is-smb", 1.0, false).await;
        let now = chrono::Utc::now();
        let away = RepRouting {
            team_id: "is-smb".into(),
            out_of_office: vec![TimeRange {
                start_time: Some(time::to_proto(now - chrono::Duration::hours(1))),
                end_time: Some(time::to_proto(now + chrono::Duration::days(7))),
            }],
            ..Default::default()
        };
        f.distribution
            .update_rep(UpdateRepRequest {
                rep_id: d.clone(),
                active: true,
                routing: Some(away),
            })
            .await
            .unwrap();

        let rules = vec![
            RoutingRule {
                key: "japan_to_field".into(),
                conditions: vec![when("company.country", &["JP"])],
                to_team: "fs-enterprise".into(),
                ..Default::default()
            },
            RoutingRule {
                key: "web_to_inside".into(),
                conditions: vec![when("source.channel", &["web_form"])],
                to_team: "is-smb".into(),
                ..Default::default()
            },
        ];
        let mut broken = rules.clone();
        broken[1].to_team = "nobody".into();
        broken.push(RoutingRule {
            key: "japan_to_field".into(),
            ..Default::default()
        });
        let refused = f
            .distribution
            .set_routing_rules(SetRoutingRulesRequest {
                rules: broken,
                expected_version: 0,
            })
            .await
            .unwrap_err();
        assert_eq!(refused.code(), Code::FailedPrecondition);
        let problems = refused
            .get_details_precondition_failure()
            .unwrap()
            .violations;
        assert_eq!(problems.len(), 3, "{problems:?}");
        let saved = f
            .distribution
            .set_routing_rules(SetRoutingRulesRequest {
                rules,
                expected_version: 0,
            })
            .await
            .unwrap()
            .into_inner();
        assert_eq!(saved.version, 1);

        for n in 0..6 {
            f.mql_from(n, "JP", "event").await;
        }
        let web1 = f.mql_from(10, "US", "web_form").await;
        f.mql_from(11, "US", "web_form").await;
        let stray = f.mql_from(20, "US", "event").await;
        let all = f.assignments_when("nine decisions", |a| a.len() == 9).await;
        let shares = by_rep(&all);
        assert_eq!(
            (shares.get(&a), shares.get(&b), shares.get(&c)),
            (Some(&2), Some(&4), Some(&2)),
            "weights 1:2 in the field team; the inside team's only available rep: {shares:?}"
        );
        assert!(!shares.contains_key(&d) && !shares.contains_key(&e));

        let why = f
            .distribution
            .explain_assignment(ExplainAssignmentRequest {
                lead_id: web1.clone(),
            })
            .await
            .unwrap()
            .into_inner();
        assert_eq!(
            (
                why.rule_key.as_str(),
                why.team_id.as_str(),
                why.rules_version
            ),
            ("web_to_inside", "is-smb", 1)
        );
        let skipped: Vec<(String, String)> = why
            .candidates
            .iter()
            .map(|c| (c.rep_id.clone(), c.skipped_because.clone()))
            .collect();
        assert_eq!(
            skipped,
            vec![
                (c.clone(), String::new()),
                (d.clone(), "out_of_office".into()),
                (e.clone(), "inactive".into())
            ]
        );
        let fallback = f
            .distribution
            .explain_assignment(ExplainAssignmentRequest {
                lead_id: stray.clone(),
            })
            .await
            .unwrap()
            .into_inner();
        assert_eq!(
            fallback.assignment.unwrap().state,
            AssignmentState::Queued as i32,
            "no rule matched: the fallback queue, never dropped"
        );

        // Reassigned, the lead cannot go back to c and nobody else is available: it waits.
        let moved = f
            .distribution
            .reassign_lead(as_user(
                "is-manager@example.com",
                ReassignLeadRequest {
                    lead_id: web1.clone(),
                    reason: "customer asked for another rep".into(),
                    requested_by: "is-manager@example.com".into(),
                },
            ))
            .await
            .unwrap()
            .into_inner();
        assert_eq!(moved.state, AssignmentState::Queued as i32);
        // d comes back from absence: the waiting lead goes to d, not back to c.
        f.distribution
            .update_rep(UpdateRepRequest {
                rep_id: d.clone(),
                active: true,
                routing: Some(RepRouting {
                    team_id: "is-smb".into(),
                    ..Default::default()
                }),
            })
            .await
            .unwrap();
        let why = f
            .distribution
            .explain_assignment(ExplainAssignmentRequest { lead_id: web1 })
            .await
            .unwrap()
            .into_inner();
        assert_eq!(why.assignment.unwrap().rep_id, d);
        assert_eq!(why.history.len(), 1);
        assert_eq!(why.history[0].state, AssignmentState::Reassigned as i32);
        assert!(
            why.candidates
                .iter()
                .any(|x| x.rep_id == c && x.skipped_because == "already_had_lead")
        );

        // a leaves: its leads go to b, and a is no longer routed to.
        let before = f.open_leads().await;
        let handed = f
            .distribution
            .reassign_rep_leads(as_user(
                "fs-manager@example.com",
                ReassignRepLeadsRequest {
                    rep_id: a.clone(),
                    reason: "left the company".into(),
                    requested_by: "fs-manager@example.com".into(),
                    deactivate: true,
                },
            ))
            .await
            .unwrap()
            .into_inner()
            .assignments;
        assert_eq!(handed.len(), 2);
        assert!(handed.iter().all(|x| x.rep_id == b), "{handed:?}");
        // Each rep's open-lead count follows its assignments.
        let open = f.open_leads().await;
        assert_eq!(
            (open[&a], open[&b]),
            (0, before[&b] + before[&a]),
            "{before:?} {open:?}"
        );
        assert_eq!(before[&a], 2);
        f.stop().await;
    }

    #[tokio::test]
    async fn territory_rules_send_each_lead_to_the_rep_who_covers_its_country() {
        let mut f = start().await;
        f.team(
            "fs-geo",
            TeamFunction::FieldSales,
            RoutingMethod::RoundRobin,
        )
        .await;
        let mut ids = Vec::new();
        for (n, territory) in [(1, "JP"), (2, "US")] {
            let mut req = rep(n, true);
            req.routing = Some(RepRouting {
                team_id: "fs-geo".into(),
                territories: vec![territory.into()],
                ..Default::default()
            });
            ids.push(
                f.distribution
                    .create_rep(req)
                    .await
                    .unwrap()
                    .into_inner()
                    .rep_id,
            );
        }
        f.distribution
            .set_routing_rules(SetRoutingRulesRequest {
                rules: vec![RoutingRule {
                    key: "by_territory".into(),
                    to_team: "fs-geo".into(),
                    match_territory: true,
                    ..Default::default()
                }],
                expected_version: 0,
            })
            .await
            .unwrap();
        let us = f.mql_from(1, "US", "web_form").await;
        let jp = f.mql_from(2, "JP", "web_form").await;
        let de = f.mql_from(3, "DE", "web_form").await;
        f.assignments_when("three decisions", |a| a.len() == 3)
            .await;
        let explain = |lead_id: String| {
            let mut d = f.distribution.clone();
            async move {
                d.explain_assignment(ExplainAssignmentRequest { lead_id })
                    .await
                    .unwrap()
                    .into_inner()
            }
        };
        assert_eq!(explain(us).await.assignment.unwrap().rep_id, ids[1]);
        assert_eq!(explain(jp).await.assignment.unwrap().rep_id, ids[0]);
        let nobody = explain(de).await;
        assert_eq!(
            nobody.assignment.unwrap().state,
            AssignmentState::Queued as i32
        );
        assert!(
            nobody
                .candidates
                .iter()
                .all(|c| c.skipped_because == "outside_territory"),
            "{:?}",
            nobody.candidates
        );
        f.stop().await;
    }

    #[tokio::test]
    async fn merging_two_assigned_duplicates_leaves_the_survivor_one_owner() {
        let mut f = start().await;
        f.distribution.create_rep(rep(1, true)).await.unwrap();
        f.distribution.create_rep(rep(2, true)).await.unwrap();
        let survivor = f.mql_from(1, "JP", "web_form").await;
        let duplicate = f.mql_from(2, "JP", "web_form").await;
        f.assignments_when("both assigned", |a| a.len() == 2).await;
        f.capture
            .merge_leads(baton_proto::capture::v1::MergeLeadsRequest {
                survivor_lead_id: survivor.clone(),
                merged_lead_id: duplicate.clone(),
            })
            .await
            .unwrap();
        let all = f
            .assignments_when("the duplicate's closed", |a| {
                a.iter().any(|x| x.state == AssignmentState::Merged as i32)
            })
            .await;
        let open: Vec<&Assignment> = all
            .iter()
            .filter(|a| a.state == AssignmentState::Assigned as i32)
            .collect();
        assert_eq!(open.len(), 1, "{all:?}");
        assert_eq!(open[0].lead_id, survivor);
        let closed = all.iter().find(|a| a.lead_id == duplicate).unwrap();
        assert_eq!(closed.state, AssignmentState::Merged as i32);
        let counts = f.open_leads().await;
        assert_eq!(counts[&open[0].rep_id], 1, "{counts:?}");
        assert_eq!(counts.values().sum::<i64>(), 1, "{counts:?}");
        f.stop().await;
    }
}

#[tokio::test]
async fn touch_rules_are_data_changed_over_grpc_validated_and_versioned() {
    use baton_proto::distribution::v1::{GetTouchRulesRequest, SetTouchRulesRequest, TouchRules};
    use tonic_types::StatusExt;

    let mut f = start().await;
    let defaults = f
        .distribution
        .get_touch_rules(GetTouchRulesRequest {})
        .await
        .unwrap()
        .into_inner();
    assert_eq!(defaults.version, 1);
    assert_eq!(
        defaults.touch_kinds,
        [
            ActivityKind::Call as i32,
            ActivityKind::EmailDelivered as i32
        ]
    );

    let bad = f
        .distribution
        .set_touch_rules(SetTouchRulesRequest {
            rules: Some(TouchRules {
                touch_kinds: vec![ActivityKind::Call as i32, ActivityKind::Call as i32, 9_999],
                ..Default::default()
            }),
            expected_version: 1,
        })
        .await
        .unwrap_err();
    assert_eq!(bad.code(), Code::InvalidArgument);
    let fields: Vec<String> = bad
        .get_details_bad_request()
        .expect("field violations")
        .field_violations
        .into_iter()
        .map(|v| v.field)
        .collect();
    assert_eq!(fields, ["rules.touch_kinds[2]"]);
    let twice = f
        .distribution
        .set_touch_rules(SetTouchRulesRequest {
            rules: Some(TouchRules {
                touch_kinds: vec![ActivityKind::Call as i32, ActivityKind::Call as i32],
                ..Default::default()
            }),
            expected_version: 1,
        })
        .await
        .unwrap_err();
    assert_eq!(twice.code(), Code::InvalidArgument);
    assert!(
        twice.message().contains("rules.touch_kinds[1]"),
        "{}",
        twice.message()
    );

    let meetings = f
        .distribution
        .set_touch_rules(SetTouchRulesRequest {
            rules: Some(TouchRules {
                touch_kinds: vec![
                    ActivityKind::Call as i32,
                    ActivityKind::MeetingBooked as i32,
                ],
                ..Default::default()
            }),
            expected_version: 1,
        })
        .await
        .unwrap()
        .into_inner();
    assert_eq!(meetings.version, 2);
    let stale = f
        .distribution
        .set_touch_rules(SetTouchRulesRequest {
            rules: Some(defaults),
            expected_version: 1,
        })
        .await
        .unwrap_err();
    assert_eq!(stale.code(), Code::FailedPrecondition);
    let now = f
        .distribution
        .get_touch_rules(GetTouchRulesRequest {})
        .await
        .unwrap()
        .into_inner();
    assert_eq!(
        (now.version, now.touch_kinds),
        (
            2,
            vec![
                ActivityKind::Call as i32,
                ActivityKind::MeetingBooked as i32
            ]
        )
    );
    for s in f.services {
        s.stop().await;
    }
}
