//! The lead path through all five services, over real sockets.

use std::{
    collections::{HashMap, HashSet},
    time::Duration,
};

use baton_e2e::{TestSuite, activity, captured_id, eventually, lead, rep};
use baton_proto::{
    capture::v1::{ActivityKind, EraseLeadRequest, MergeLeadsRequest, PageKind},
    distribution::v1::{Assignment, AssignmentState, ListAssignmentsRequest},
    nurture::v1::{ActivateSequenceRequest, EnrollmentState, ListEnrollmentsRequest},
    qualification::v1::{GetScoreRequest, Stage},
    reporting::v1::{Funnel, GetFunnelRequest},
};
use baton_shared::{ServiceName, time};
use chrono::Utc;

const PATIENCE: Duration = Duration::from_secs(60);

async fn all_assignments(suite: &TestSuite) -> Vec<Assignment> {
    let mut client = suite.distribution().await;
    let mut all = Vec::new();
    let mut page_token = String::new();
    loop {
        let page = client
            .list_assignments(ListAssignmentsRequest {
                page_size: 50,
                page_token,
                rep_id: String::new(),
            })
            .await
            .unwrap()
            .into_inner();
        all.extend(page.assignments);
        if page.next_page_token.is_empty() {
            return all;
        }
        page_token = page.next_page_token;
    }
}

/// Turns on nurture's welcome sequence (seeded as a draft): every new lead is enrolled from now on.
async fn welcome_active(suite: &TestSuite) {
    suite
        .nurture()
        .await
        .activate_sequence(ActivateSequenceRequest {
            key: "welcome".into(),
        })
        .await
        .unwrap();
}

async fn funnel_today(suite: &TestSuite) -> Funnel {
    let now = Utc::now();
    suite
        .reporting()
        .await
        .get_funnel(GetFunnelRequest {
            start_time: Some(time::to_proto(now - chrono::Duration::hours(1))),
            end_time: Some(time::to_proto(now + chrono::Duration::hours(1))),
            group_by: Vec::new(),
        })
        .await
        .unwrap()
        .into_inner()
}

/// 200 leads; every third books a meeting and starts a trial (25 + 25 = the MQL threshold of 50);
/// the rest open an e-mail and view a blog page (5 points). Every MQL is assigned exactly once, by
/// round robin over 4 reps, and the funnel counts are exact.
#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn every_mql_is_assigned_exactly_once_and_the_funnel_is_exact() {
    const LEADS: usize = 200;
    const REPS: usize = 4;
    let suite = TestSuite::start().await;
    welcome_active(&suite).await;
    let mut distribution = suite.distribution().await;
    let mut rep_ids = Vec::new();
    for r in 0..REPS {
        rep_ids.push(
            distribution
                .create_rep(rep(r))
                .await
                .unwrap()
                .into_inner()
                .rep_id,
        );
    }

    let mut capture = suite.capture().await;
    let mut hot_leads = HashSet::new();
    let mut lead_ids = Vec::new();
    for n in 0..LEADS {
        let lead_id = captured_id(&mut capture, lead(n)).await;
        let hot = n % 3 == 0;
        let kinds: &[(ActivityKind, PageKind)] = if hot {
            &[
                (ActivityKind::MeetingBooked, PageKind::Unspecified),
                (ActivityKind::FreeTrialStarted, PageKind::Unspecified),
            ]
        } else {
            &[
                (ActivityKind::EmailOpened, PageKind::Unspecified),
                (ActivityKind::PageViewed, PageKind::Blog),
            ]
        };
        for (k, (kind, page)) in kinds.iter().enumerate() {
            capture
                .record_activity(activity(&lead_id, &format!("{n}-{k}"), *kind, *page))
                .await
                .unwrap();
        }
        // A redelivered request changes nothing.
        capture
            .record_activity(activity(
                &lead_id,
                &format!("{n}-0"),
                kinds[0].0,
                kinds[0].1,
            ))
            .await
            .unwrap();
        if hot {
            hot_leads.insert(lead_id.clone());
        }
        lead_ids.push(lead_id);
    }
    let expected_mqls = hot_leads.len();
    assert_eq!(expected_mqls, LEADS.div_ceil(3));

    let assignments = eventually("every MQL assigned", PATIENCE, || async {
        let a = all_assignments(&suite).await;
        (a.len() >= expected_mqls).then_some(a)
    })
    .await;
    // Let any straggling duplicate show up before judging "exactly once".
    tokio::time::sleep(Duration::from_millis(500)).await;
    let assignments_after = all_assignments(&suite).await;
    assert_eq!(assignments_after.len(), assignments.len());
    let assigned: HashSet<_> = assignments.iter().map(|a| a.lead_id.clone()).collect();
    assert_eq!(
        assigned.len(),
        assignments.len(),
        "a lead was assigned twice"
    );
    assert_eq!(assigned, hot_leads, "assigned leads are exactly the MQLs");
    assert!(
        assignments
            .iter()
            .all(|a| a.state == AssignmentState::Assigned as i32)
    );
    let mut per_rep: HashMap<String, usize> = HashMap::new();
    for a in &assignments {
        *per_rep.entry(a.rep_id.clone()).or_default() += 1;
    }
    let (min, max) = (
        per_rep.values().min().unwrap(),
        per_rep.values().max().unwrap(),
    );
    assert_eq!(per_rep.len(), REPS);
    assert!(max - min <= 1, "round robin is uneven: {per_rep:?}");

    // Scores explain themselves.
    let mut qualification = suite.qualification().await;
    let hot = qualification
        .get_score(GetScoreRequest {
            lead_id: lead_ids[0].clone(),
        })
        .await
        .unwrap()
        .into_inner();
    assert_eq!(hot.score, 50);
    assert_eq!(hot.stage, Stage::Mql as i32);
    let rules: Vec<_> = hot
        .fired_rules
        .iter()
        .map(|r| r.rule_key.as_str())
        .collect();
    assert_eq!(rules, ["meeting_booked", "free_trial_started"]);
    let cold = qualification
        .get_score(GetScoreRequest {
            lead_id: lead_ids[1].clone(),
        })
        .await
        .unwrap()
        .into_inner();
    assert_eq!((cold.score, cold.stage), (5, Stage::Lead as i32));

    let funnel = eventually("funnel caught up", PATIENCE, || async {
        let f = funnel_today(&suite).await;
        (f.leads == LEADS as i64
            && f.enrollments == LEADS as i64
            && f.assignments == expected_mqls as i64)
            .then_some(f)
    })
    .await;
    assert_eq!(funnel.mqls, expected_mqls as i64);
    assert!((funnel.lead_to_mql_rate - expected_mqls as f64 / LEADS as f64).abs() < 1e-12);
    assert_eq!(funnel.mql_to_assignment_rate, 1.0);

    let enrolled = suite
        .nurture()
        .await
        .list_enrollments(ListEnrollmentsRequest {
            page_size: 1000,
            ..Default::default()
        })
        .await
        .unwrap()
        .into_inner();
    assert_eq!(enrolled.enrollments.len(), LEADS);
    suite.stop().await;
}

/// Qualification is down while 100 leads are captured; when it comes back it scores each exactly
/// once, and distribution assigns the resulting MQLs.
#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn leads_captured_while_qualification_is_down_are_scored_exactly_once_after_restart() {
    const LEADS: usize = 100;
    let mut suite = TestSuite::start().await;
    suite.distribution().await.create_rep(rep(0)).await.unwrap();
    suite
        .suite
        .stop_service(ServiceName::Qualification)
        .await
        .unwrap();

    let mut capture = suite.capture().await;
    let mut lead_ids = Vec::new();
    for n in 0..LEADS {
        let lead_id = captured_id(&mut capture, lead(n)).await;
        let kind = if n % 2 == 0 {
            ActivityKind::MeetingBooked
        } else {
            ActivityKind::EmailClicked
        };
        capture
            .record_activity(activity(
                &lead_id,
                &format!("{n}-a"),
                kind,
                PageKind::Unspecified,
            ))
            .await
            .unwrap();
        capture
            .record_activity(activity(
                &lead_id,
                &format!("{n}-b"),
                kind,
                PageKind::Unspecified,
            ))
            .await
            .unwrap();
        lead_ids.push(lead_id);
    }

    suite
        .suite
        .start_service(ServiceName::Qualification)
        .await
        .unwrap();
    let mut qualification = suite.qualification().await;
    for (n, lead_id) in lead_ids.iter().enumerate() {
        let (points, stage) = if n % 2 == 0 {
            (50, Stage::Mql)
        } else {
            (20, Stage::Lead)
        };
        let score = eventually("lead scored", PATIENCE, || {
            let mut q = qualification.clone();
            let lead_id = lead_id.clone();
            async move {
                let s = q
                    .get_score(GetScoreRequest { lead_id })
                    .await
                    .ok()?
                    .into_inner();
                (s.fired_rules.len() == 2).then_some(s)
            }
        })
        .await;
        assert_eq!(
            score.score, points,
            "lead {n} scored {} instead of {points}",
            score.score
        );
        assert_eq!(score.stage, stage as i32);
    }
    // Restarting again replays nothing: scores stay the same.
    suite
        .suite
        .stop_service(ServiceName::Qualification)
        .await
        .unwrap();
    suite
        .suite
        .start_service(ServiceName::Qualification)
        .await
        .unwrap();
    qualification = suite.qualification().await;
    tokio::time::sleep(Duration::from_millis(500)).await;
    let s = qualification
        .get_score(GetScoreRequest {
            lead_id: lead_ids[0].clone(),
        })
        .await
        .unwrap()
        .into_inner();
    assert_eq!((s.score, s.fired_rules.len()), (50, 2));

    let assignments = eventually("MQLs assigned", PATIENCE, || async {
        let a = all_assignments(&suite).await;
        (a.len() >= LEADS / 2).then_some(a)
    })
    .await;
    assert_eq!(assignments.len(), LEADS / 2);
    suite.stop().await;
}

/// Erasing a lead stops its nurturing and leaves the funnel's counts as they were.
#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn an_erased_lead_leaves_nurture_and_the_funnel_counts_stay() {
    let suite = TestSuite::start().await;
    welcome_active(&suite).await;
    let mut capture = suite.capture().await;
    let mut ids = Vec::new();
    for n in 0..3 {
        ids.push(captured_id(&mut capture, lead(n)).await);
    }
    eventually("three enrolled", PATIENCE, || async {
        let f = funnel_today(&suite).await;
        (f.leads == 3 && f.enrollments == 3).then_some(())
    })
    .await;
    capture
        .erase_lead(EraseLeadRequest {
            lead_id: ids[0].clone(),
        })
        .await
        .unwrap();
    let mut nurture = suite.nurture().await;
    let state = eventually("enrolment exited", PATIENCE, || {
        let mut n = nurture.clone();
        let lead_id = ids[0].clone();
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
            (e.first()?.state == EnrollmentState::Exited as i32).then_some(e[0].state)
        }
    })
    .await;
    assert_eq!(state, EnrollmentState::Exited as i32);
    let others = nurture
        .list_enrollments(ListEnrollmentsRequest {
            lead_id: ids[1].clone(),
            ..Default::default()
        })
        .await
        .unwrap()
        .into_inner();
    assert_eq!(others.enrollments[0].state, EnrollmentState::Active as i32);
    let f = funnel_today(&suite).await;
    assert_eq!((f.leads, f.enrollments), (3, 3));
    suite.stop().await;
}

/// Two records of one person, each half-way to MQL, become one lead at the threshold when merged:
/// qualification adds up their scores and distribution assigns the survivor.
#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn merging_two_half_qualified_duplicates_makes_one_mql() {
    let suite = TestSuite::start().await;
    suite.distribution().await.create_rep(rep(0)).await.unwrap();
    let mut capture = suite.capture().await;
    let a = captured_id(&mut capture, lead(1)).await;
    let b = captured_id(&mut capture, lead(2)).await;
    capture
        .record_activity(activity(
            &a,
            "a",
            ActivityKind::MeetingBooked,
            PageKind::Unspecified,
        ))
        .await
        .unwrap();
    capture
        .record_activity(activity(
            &b,
            "b",
            ActivityKind::FreeTrialStarted,
            PageKind::Unspecified,
        ))
        .await
        .unwrap();
    let mut qualification = suite.qualification().await;
    for id in [&a, &b] {
        eventually("scored", PATIENCE, || {
            let mut q = qualification.clone();
            let lead_id = id.clone();
            async move {
                (q.get_score(GetScoreRequest { lead_id })
                    .await
                    .ok()?
                    .into_inner()
                    .score
                    == 25)
                    .then_some(())
            }
        })
        .await;
    }
    capture
        .merge_leads(MergeLeadsRequest {
            survivor_lead_id: a.clone(),
            merged_lead_id: b.clone(),
        })
        .await
        .unwrap();
    let merged = eventually("combined score", PATIENCE, || {
        let mut q = qualification.clone();
        let lead_id = a.clone();
        async move {
            let s = q
                .get_score(GetScoreRequest { lead_id })
                .await
                .ok()?
                .into_inner();
            (s.score == 50).then_some(s)
        }
    })
    .await;
    assert_eq!(merged.stage, Stage::Mql as i32);
    assert_eq!(merged.fired_rules.len(), 2);
    let gone = qualification
        .get_score(GetScoreRequest { lead_id: b.clone() })
        .await
        .unwrap_err();
    assert_eq!(gone.code(), tonic::Code::NotFound);
    let assignments = eventually("assigned", PATIENCE, || async {
        let a = all_assignments(&suite).await;
        (!a.is_empty()).then_some(a)
    })
    .await;
    assert_eq!(assignments.len(), 1);
    assert_eq!(assignments[0].lead_id, a);
    // The KPI engine counts the person once: one lead, one MQL; and in the funnel, one capture.
    let now = chrono::Utc::now();
    let kpis = suite.kpis().await;
    let request = baton_proto::reporting::v1::GetKpisRequest {
        kpis: vec!["leads".into(), "mqls".into()],
        start_time: Some(time::to_proto(now - chrono::Duration::hours(1))),
        end_time: Some(time::to_proto(now + chrono::Duration::hours(1))),
        granularity: baton_proto::reporting::v1::Granularity::Whole as i32,
        ..Default::default()
    };
    baton_e2e::kpis_when(&kpis, "the merge counted once", &request, |s| {
        let n = |key| baton_e2e::first_numerator(s, key);
        n("leads") == Some(1.0) && n("mqls") == Some(1.0)
    })
    .await;
    assert_eq!(funnel_today(&suite).await.leads, 1);
    suite.stop().await;
}
