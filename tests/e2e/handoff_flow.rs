//! The IS → FS handoff through all five services, over real sockets: a contract both owners
//! approved, routing to the IS team, the response SLA (met by a call, or breached and escalated by
//! reassignment), a handoff judged by the gate on the lead's real score and rank, and FS's
//! decisions moving the lead's stage in qualification.

use baton_shared::testing::as_user;
use std::time::Duration;

use baton_e2e::{
    TestSuite, activity, captured_id, eventually, lead,
    sales::{approve_contract, record_bant, sales_floor, stage_of},
};
use baton_proto::{
    capture::v1::{ActivityKind, CallDetails, CallOutcome, PageKind},
    distribution::v1::{
        AcceptHandoffRequest, AssignmentState, CreateHandoffRequest, CreateRepRequest,
        CreateTeamRequest, ExplainAssignmentRequest, RecordOutcomeRequest, RejectHandoffRequest,
        RepRouting, RoutingMethod, RoutingRule, SetRoutingRulesRequest, TeamFunction,
    },
    nurture::v1::{ActivateSequenceRequest, ListEnrollmentsRequest},
    qualification::v1::{GetStageRequest, Stage},
    reporting::v1::{ContractTerms, GetKpisRequest, Granularity, HandoffGate, SlaEscalation},
};
use baton_shared::{ServiceName, testing::count, time};
use sea_orm::{ConnectionTrait, Statement, Value};
use tonic::Code;
use tonic_types::StatusExt;

const PATIENCE: Duration = Duration::from_secs(60);
const IS_OWNER: &str = "is-lead@example.co.jp";
const FS_OWNER: &str = "fs-lead@example.co.jp";

fn terms() -> ContractTerms {
    ContractTerms {
        gate: Some(HandoffGate {
            required_fields: vec!["meeting_at".into()],
            bant_items: vec!["budget".into(), "need".into()],
            min_score: Some(40),
            allowed_ranks: vec!["RANK_HOT".into(), "RANK_WARM".into()],
        }),
        response_sla_working_hours: true,
        response_sla_escalation: SlaEscalation::Reassign as i32,
        ..baton_shared::contract::example_terms("is-tokyo", "fs-tokyo", IS_OWNER, FS_OWNER)
    }
}

/// A time column (`due_at`, `resolved_at`) of `lead_id`'s response SLA timer, once it is set.
async fn response_timer(
    url: &str,
    lead_id: &str,
    column: &'static str,
) -> Option<chrono::DateTime<chrono::Utc>> {
    let settings = baton_shared::Settings::defaults().unwrap();
    let db = baton_shared::db::connect(url, &settings.database)
        .await
        .unwrap();
    let backend = db.get_database_backend();
    let parameter = match backend {
        sea_orm::DbBackend::Postgres => "$1",
        _ => "?",
    };
    let sql = format!(
        "SELECT {column} AS at FROM sla_timer \
         WHERE kind = 1 AND lead_id = {parameter} AND {column} IS NOT NULL"
    );
    let row = db
        .query_one_raw(Statement::from_sql_and_values(
            backend,
            sql,
            [Value::from(lead_id)],
        ))
        .await
        .unwrap();
    // One short-lived pool per poll: close it, so polling never piles up connections.
    db.close().await.unwrap();
    row?.try_get::<chrono::DateTime<chrono::Utc>>("", "at").ok()
}

/// When the response SLA of `lead_id` falls due, once it exists.
async fn response_due(url: &str, lead_id: &str) -> Option<chrono::DateTime<chrono::Utc>> {
    response_timer(url, lead_id, "due_at").await
}

/// When the response SLA of `lead_id` was met, once it was.
async fn response_met_at(url: &str, lead_id: &str) -> Option<chrono::DateTime<chrono::Utc>> {
    response_timer(url, lead_id, "resolved_at").await
}

/// Makes every open response SLA of the distribution database due (time passes).
async fn make_response_slas_due(url: &str) {
    let settings = baton_shared::Settings::defaults().unwrap();
    let db = baton_shared::db::connect(url, &settings.database)
        .await
        .unwrap();
    let backend = db.get_database_backend();
    let sql = match backend {
        sea_orm::DbBackend::Postgres => "UPDATE sla_timer SET due_at = $1 WHERE kind = 1",
        _ => "UPDATE sla_timer SET due_at = ? WHERE kind = 1",
    };
    db.execute_raw(Statement::from_sql_and_values(
        backend,
        sql,
        [Value::from(
            chrono::Utc::now() - chrono::Duration::minutes(1),
        )],
    ))
    .await
    .unwrap();
    db.close().await.unwrap();
}

#[tokio::test]
async fn a_lead_goes_from_is_to_fs_under_a_contract_and_every_sla_and_stage_follows() {
    let suite = TestSuite::start().await;
    let mut contracts = suite.contracts().await;
    let mut d = suite.distribution().await;
    let mut capture = suite.capture().await;

    approve_contract(&mut contracts, "tokyo", terms()).await;
    sales_floor(&mut d, "is-tokyo", "fs-tokyo", 2).await;

    // Two MQLs, one per IS rep.
    let mut leads = Vec::new();
    for n in 0..2 {
        let id = captured_id(&mut capture, lead(n)).await;
        for (k, kind) in [ActivityKind::MeetingBooked, ActivityKind::FreeTrialStarted]
            .into_iter()
            .enumerate()
        {
            capture
                .record_activity(activity(
                    &id,
                    &format!("{n}-{k}"),
                    kind,
                    PageKind::Unspecified,
                ))
                .await
                .unwrap();
        }
        leads.push(id);
    }
    let owner_of = |lead_id: String| {
        let d = d.clone();
        async move {
            let e = d
                .clone()
                .explain_assignment(ExplainAssignmentRequest { lead_id })
                .await
                .ok()?
                .into_inner();
            let a = e.assignment?;
            (a.state == AssignmentState::Assigned as i32).then_some((a.rep_id, e.history.len()))
        }
    };
    let first = eventually("first lead assigned", PATIENCE, || {
        owner_of(leads[0].clone())
    })
    .await;
    let second = eventually("second lead assigned", PATIENCE, || {
        owner_of(leads[1].clone())
    })
    .await;
    assert_ne!(first.0, second.0, "round robin over the IS team");

    // The response SLA counts 30 minutes of the rep's working hours (Tokyo, 9:00-18:00, Mon-Fri).
    let url = suite.database_url(ServiceName::Distribution);
    let assigned_at = d
        .clone()
        .explain_assignment(ExplainAssignmentRequest {
            lead_id: leads[0].clone(),
        })
        .await
        .unwrap()
        .into_inner()
        .assignment
        .and_then(|a| a.assigned_at)
        .and_then(|t| time::from_proto(&t))
        .unwrap();
    let due = eventually("a response SLA", PATIENCE, || {
        let url = url.clone();
        let lead = leads[0].clone();
        async move { response_due(&url, &lead).await }
    })
    .await;
    let expected = baton_distribution::domain::sla::due_at(
        assigned_at,
        30,
        baton_distribution::domain::sla::WorkingHours::of("Asia/Tokyo", 9, 18),
    );
    assert!(
        (due - expected).num_milliseconds().abs() < 5,
        "due {due}, expected {expected}"
    );

    // The first lead's rep calls it; the second lead is never touched.
    let mut call = activity(
        &leads[0],
        "call-0",
        ActivityKind::Call,
        PageKind::Unspecified,
    );
    call.call = Some(CallDetails {
        outcome: CallOutcome::Connected as i32,
        duration_seconds: 240,
        reached_target_department: true,
    });
    capture.record_activity(call).await.unwrap();
    let url = suite.database_url(ServiceName::Distribution);
    eventually(
        "the call meets the first response SLA",
        PATIENCE,
        || async {
            (count(
                &url,
                "SELECT COUNT(*) AS n FROM sla_timer WHERE kind = 1 AND resolved_at IS NOT NULL",
            )
            .await
                == 1)
                .then_some(())
        },
    )
    .await;
    make_response_slas_due(&suite.database_url(ServiceName::Distribution)).await;
    let moved = eventually("breached lead reassigned", PATIENCE, || async {
        let (rep, earlier) = owner_of(leads[1].clone()).await?;
        (earlier == 1).then_some(rep)
    })
    .await;
    assert_eq!(moved, first.0, "escalated to the other IS rep, never back");
    assert_eq!(
        owner_of(leads[0].clone()).await,
        Some((first.0.clone(), 0)),
        "the called lead met its SLA and stays"
    );

    // Handoff of the called lead: the gate reads its real score (50), rank and BANT as
    // qualification recorded it (need only, so far).
    record_bant(&suite, &leads[0], &["need"]).await;
    let request = CreateHandoffRequest {
        request_id: "h-1".into(),
        lead_id: leads[0].clone(),
        is_team: "is-tokyo".into(),
        fs_team: "fs-tokyo".into(),
        meeting_at: Some(time::to_proto(
            chrono::Utc::now() + chrono::Duration::days(2),
        )),
        notes: "Demo for 40 seats".into(),
        handed_off_by: "tester".into(),
        ..Default::default()
    };
    let refused = d.create_handoff(request.clone()).await.unwrap_err();
    assert_eq!(refused.code(), Code::FailedPrecondition);
    let items: Vec<String> = refused
        .get_details_precondition_failure()
        .unwrap()
        .violations
        .into_iter()
        .map(|v| v.subject)
        .collect();
    assert_eq!(
        items,
        vec!["bant.budget"],
        "score 50 >= 40 and the rank pass"
    );
    record_bant(&suite, &leads[0], &["budget", "need"]).await;
    let handoff = d.create_handoff(request).await.unwrap().into_inner();
    d.accept_handoff(as_user(
        "fs0@example.co.jp",
        AcceptHandoffRequest {
            handoff_id: handoff.handoff_id.clone(),
            decided_by: "fs0@example.co.jp".into(),
        },
    ))
    .await
    .unwrap();
    stage_of(&suite, &leads[0], Stage::Opportunity).await;
    d.record_outcome(as_user(
        "fs0@example.co.jp",
        RecordOutcomeRequest {
            handoff_id: handoff.handoff_id.clone(),
            won: true,
            recorded_by: "fs0@example.co.jp".into(),
            ..Default::default()
        },
    ))
    .await
    .unwrap();
    stage_of(&suite, &leads[0], Stage::Customer).await;
    let history = suite
        .qualification()
        .await
        .get_stage(GetStageRequest {
            lead_id: leads[0].clone(),
        })
        .await
        .unwrap()
        .into_inner()
        .history;
    let last = history.last().unwrap();
    assert_eq!(
        (last.reason.as_str(), last.changed_by.as_str()),
        ("handoff_won", "fs0@example.co.jp")
    );

    // The other lead is handed off and rejected for budget: the contract recycles it to nurture,
    // whose re-engagement sequence (a draft until someone activates it) takes it.
    suite
        .nurture()
        .await
        .activate_sequence(ActivateSequenceRequest {
            key: "re_engagement".into(),
        })
        .await
        .unwrap();
    record_bant(&suite, &leads[1], &["budget", "need"]).await;
    let second_handoff = d
        .create_handoff(as_user(
            "is0@example.co.jp",
            CreateHandoffRequest {
                request_id: "h-2".into(),
                lead_id: leads[1].clone(),
                is_team: "is-tokyo".into(),
                fs_team: "fs-tokyo".into(),
                meeting_at: Some(time::to_proto(
                    chrono::Utc::now() + chrono::Duration::days(3),
                )),
                handed_off_by: "is0@example.co.jp".into(),
                ..Default::default()
            },
        ))
        .await
        .unwrap()
        .into_inner();
    d.reject_handoff(as_user(
        "fs1@example.co.jp",
        RejectHandoffRequest {
            handoff_id: second_handoff.handoff_id,
            reason_code: "no_budget".into(),
            note: "Frozen until next fiscal year".into(),
            decided_by: "fs1@example.co.jp".into(),
        },
    ))
    .await
    .unwrap();
    stage_of(&suite, &leads[1], Stage::Recycled).await;
    let mut nurture = suite.nurture().await;
    eventually("re-engagement enrolment", PATIENCE, || {
        let mut n = nurture.clone();
        let lead_id = leads[1].clone();
        async move {
            let e = n
                .list_enrollments(ListEnrollmentsRequest {
                    lead_id,
                    ..Default::default()
                })
                .await
                .ok()?
                .into_inner()
                .enrollments;
            e.iter()
                .any(|e| e.sequence_key == "re_engagement")
                .then_some(())
        }
    })
    .await;
    let _ = &mut nurture;

    // The KPIs of the handoffs: 2 created (opportunities), 1 won, 1 decided (the rejection is no
    // outcome): win rate 1 / 1 = 100 %.
    let kpis = suite.kpis().await;
    let now = chrono::Utc::now();
    let whole = GetKpisRequest {
        kpis: vec!["opportunities".into(), "wins".into(), "win_rate".into()],
        start_time: Some(time::to_proto(now - chrono::Duration::days(1))),
        end_time: Some(time::to_proto(now + chrono::Duration::days(1))),
        granularity: Granularity::Whole as i32,
        group_by: vec!["channel".into()],
        ..Default::default()
    };
    let series = eventually("handoff KPIs", PATIENCE, || {
        let mut k = kpis.clone();
        let req = whole.clone();
        async move {
            let s = k.get_kpis(req).await.ok()?.into_inner().series;
            let opportunities = s.iter().find(|x| x.kpi == "opportunities")?;
            (opportunities.points[0].numerator == 2.0).then_some(s)
        }
    })
    .await;
    let point = |key: &str| {
        let s = series.iter().find(|x| x.kpi == key).unwrap();
        assert_eq!(s.group.get("channel").map(String::as_str), Some("web_form"));
        (
            s.points[0].numerator,
            s.points[0].denominator,
            s.points[0].value,
        )
    };
    assert_eq!(point("opportunities"), (2.0, None, Some(2.0)));
    assert_eq!(point("wins"), (1.0, None, Some(1.0)));
    assert_eq!(point("win_rate"), (1.0, Some(1.0), Some(100.0)));
    // The funnel counts the same steps per lead: both leads handed off, one won.
    let funnel = suite
        .reporting()
        .await
        .get_funnel(baton_proto::reporting::v1::GetFunnelRequest {
            start_time: whole.start_time,
            end_time: whole.end_time,
            group_by: Vec::new(),
        })
        .await
        .unwrap()
        .into_inner();
    assert_eq!(
        (funnel.leads, funnel.mqls, funnel.opportunities, funnel.won),
        (2, 2, 2, 1)
    );
    suite.stop().await;
}

#[tokio::test]
async fn the_tenants_touch_rules_decide_which_activity_meets_the_response_sla() {
    use baton_proto::distribution::v1::{SetTouchRulesRequest, TouchRules};

    let suite = TestSuite::start().await;
    let mut contracts = suite.contracts().await;
    let mut d = suite.distribution().await;
    let mut capture = suite.capture().await;
    approve_contract(
        &mut contracts,
        "touch",
        ContractTerms {
            response_sla_working_hours: false,
            ..terms()
        },
    )
    .await;
    d.create_team(CreateTeamRequest {
        team_id: "is-tokyo".into(),
        name: "IS Tokyo".into(),
        function: TeamFunction::InsideSales as i32,
        method: RoutingMethod::RoundRobin as i32,
    })
    .await
    .unwrap();
    d.create_rep(CreateRepRequest {
        request_id: "is-0".into(),
        name: "IS rep".into(),
        email: "is0@example.co.jp".into(),
        active: true,
        routing: Some(RepRouting {
            team_id: "is-tokyo".into(),
            ..Default::default()
        }),
    })
    .await
    .unwrap();
    d.set_routing_rules(SetRoutingRulesRequest {
        rules: vec![RoutingRule {
            key: "all_to_inside_sales".into(),
            to_team: "is-tokyo".into(),
            ..Default::default()
        }],
        expected_version: 0,
    })
    .await
    .unwrap();
    // This tenant counts only a reply to the rep's e-mail as a touch; a call does not count.
    d.set_touch_rules(SetTouchRulesRequest {
        rules: Some(TouchRules {
            touch_kinds: vec![ActivityKind::EmailReplied as i32],
            ..Default::default()
        }),
        expected_version: 1,
    })
    .await
    .unwrap();

    let id = captured_id(&mut capture, lead(7)).await;
    for (k, kind) in [ActivityKind::MeetingBooked, ActivityKind::FreeTrialStarted]
        .into_iter()
        .enumerate()
    {
        capture
            .record_activity(activity(
                &id,
                &format!("mql-{k}"),
                kind,
                PageKind::Unspecified,
            ))
            .await
            .unwrap();
    }
    let url = suite.database_url(ServiceName::Distribution);
    eventually("a response SLA", PATIENCE, || {
        let url = url.clone();
        let lead = id.clone();
        async move { response_due(&url, &lead).await }
    })
    .await;

    let called_at = chrono::Utc::now();
    let mut call = activity(&id, "call", ActivityKind::Call, PageKind::Unspecified);
    call.occurred_at = Some(time::to_proto(called_at));
    call.call = Some(CallDetails {
        outcome: CallOutcome::Connected as i32,
        duration_seconds: 60,
        reached_target_department: true,
    });
    capture.record_activity(call).await.unwrap();
    tokio::time::sleep(Duration::from_millis(300)).await;
    let replied_at = chrono::Utc::now();
    let mut reply = activity(
        &id,
        "reply",
        ActivityKind::EmailReplied,
        PageKind::Unspecified,
    );
    reply.occurred_at = Some(time::to_proto(replied_at));
    capture.record_activity(reply).await.unwrap();

    // Capture's events reach distribution in order: had the call counted, the SLA would have been
    // met at the call.
    let met = eventually("the reply meets the response SLA", PATIENCE, || {
        let url = url.clone();
        let lead = id.clone();
        async move { response_met_at(&url, &lead).await }
    })
    .await;
    assert!(
        (met - replied_at).num_milliseconds().abs() < 5,
        "met at {met}, the reply was at {replied_at} and the call at {called_at}"
    );
}
