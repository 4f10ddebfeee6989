//! The KPI engine over gRPC, fed through the other services' public APIs. Every expected number is
//! computed by hand in the comments beside it.

use std::{collections::HashMap, time::Duration};

use baton_e2e::{TestSuite, activity, captured_id, eventually, first_numerator, kpis_when};
use baton_proto::{
    capture::v1::{
        ActivityKind, CaptureLeadRequest, Company, Consent, LeadSource, PageKind,
        RecordVisitsRequest, capture_service_client::CaptureServiceClient,
    },
    qualification::v1::{Bant, BantItem, GetStageRequest, RecordBantRequest, Stage},
    reporting::v1::{
        GetKpisRequest, GetTargetAccountsRequest, Granularity, KpiSeries, KpiUnit, ListKpisRequest,
        SetTargetAccountsRequest, TargetAccounts, UpdateKpiParametersRequest,
    },
};
use baton_shared::{testing::as_user, time};
use chrono::{DateTime, DurationRound, Utc};
use tonic::Code;
use tonic_types::StatusExt;

const PATIENCE: Duration = Duration::from_secs(60);

fn at(s: &str) -> DateTime<Utc> {
    s.parse().unwrap()
}

async fn capture_at(
    capture: &mut CaptureServiceClient<baton_shared::peer::AuthChannel>,
    n: usize,
    channel: &str,
    captured_at: Option<DateTime<Utc>>,
) -> String {
    captured_id(
        capture,
        CaptureLeadRequest {
            request_id: format!("kpi-{n}"),
            email: format!("kpi{n}@example.co.jp"),
            source: Some(LeadSource {
                channel: channel.into(),
                campaign: "autumn".into(),
                ..Default::default()
            }),
            captured_at: captured_at.map(time::to_proto),
            ..Default::default()
        },
    )
    .await
}

/// (numerator, denominator, value) of each point.
fn points(s: &KpiSeries) -> Vec<(f64, Option<f64>, Option<f64>)> {
    s.points
        .iter()
        .map(|p| (p.numerator, p.denominator, p.value))
        .collect()
}

fn of<'a>(series: &'a [KpiSeries], kpi: &str, channel: &str) -> &'a KpiSeries {
    series
        .iter()
        .find(|s| s.kpi == kpi && s.group.get("channel").map(String::as_str) == Some(channel))
        .unwrap_or_else(|| panic!("no {kpi} series for {channel}: {series:?}"))
}

#[tokio::test]
async fn acquisition_kpis_by_tokyo_day_and_channel_are_checked_by_hand() {
    let suite = TestSuite::start().await;
    let mut capture = suite.capture().await;
    let mut kpis = suite.kpis().await;

    // Visitors per source and day.
    for (channel, day, visitors) in [
        ("web_form", "2026-11-02", 40),
        ("ads", "2026-11-02", 10),
        ("web_form", "2026-11-03", 25),
    ] {
        capture
            .record_visits(RecordVisitsRequest {
                channel: channel.into(),
                campaign: "autumn".into(),
                day: day.into(),
                visitors,
            })
            .await
            .unwrap();
    }
    // Leads; Tokyo is UTC+9, so day 1 is [2026-11-01T15:00Z, 2026-11-02T15:00Z).
    let l1 = capture_at(
        &mut capture,
        1,
        "web_form",
        Some(at("2026-11-01T16:00:00Z")),
    )
    .await; // day 1
    let l2 = capture_at(
        &mut capture,
        2,
        "web_form",
        Some(at("2026-11-02T05:00:00Z")),
    )
    .await; // day 1
    capture_at(&mut capture, 3, "ads", Some(at("2026-11-02T14:30:00Z"))).await; // day 1, 23:30 JST
    let l4 = capture_at(
        &mut capture,
        4,
        "web_form",
        Some(at("2026-11-02T15:30:00Z")),
    )
    .await; // day 2
    capture_at(&mut capture, 5, "ads", Some(at("2026-11-03T03:00:00Z"))).await; // day 2
    // Forms: two on day 1 (l1, l2), one on day 2 (l4), all web_form.
    for (key, lead, when) in [
        ("f1", &l1, "2026-11-02T00:00:00Z"),
        ("f2", &l2, "2026-11-02T06:00:00Z"),
        ("f3", &l4, "2026-11-02T16:00:00Z"),
    ] {
        let mut form = activity(
            lead,
            key,
            ActivityKind::FormSubmitted,
            PageKind::Unspecified,
        );
        form.occurred_at = Some(time::to_proto(at(when)));
        capture.record_activity(form).await.unwrap();
    }

    let request =
        |group_by: Vec<String>, filters: HashMap<String, String>, g: Granularity| GetKpisRequest {
            kpis: ["leads", "visits", "opt_in_rate", "form_submissions"]
                .map(String::from)
                .to_vec(),
            start_time: Some(time::to_proto(at("2026-11-01T15:00:00Z"))),
            end_time: Some(time::to_proto(at("2026-11-03T15:00:00Z"))),
            granularity: g as i32,
            time_zone: "Asia/Tokyo".into(),
            group_by,
            filters,
        };
    let by_channel = eventually("every fact applied", PATIENCE, || {
        let mut k = kpis.clone();
        let req = request(vec!["channel".into()], HashMap::new(), Granularity::Day);
        async move {
            let series = k.get_kpis(req).await.ok()?.into_inner().series;
            let forms: f64 = series
                .iter()
                .filter(|s| s.kpi == "form_submissions")
                .flat_map(|s| s.points.iter().map(|p| p.numerator))
                .sum();
            let leads: f64 = series
                .iter()
                .filter(|s| s.kpi == "leads")
                .flat_map(|s| s.points.iter().map(|p| p.numerator))
                .sum();
            (forms == 3.0 && leads == 5.0).then_some(series)
        }
    })
    .await;
    let web = of(&by_channel, "opt_in_rate", "web_form");
    assert_eq!(web.unit, KpiUnit::Percent as i32);
    assert_eq!(web.version, 1);
    assert_eq!(
        web.points[0].period_start,
        Some(time::to_proto(at("2026-11-01T15:00:00Z")))
    );
    // web_form: day 1 = 2 leads / 40 visitors = 5 %; day 2 = 1 / 25 = 4 %.
    assert_eq!(
        points(web),
        [(2.0, Some(40.0), Some(5.0)), (1.0, Some(25.0), Some(4.0))]
    );
    // ads: day 1 = 1 / 10 = 10 %; day 2 = 1 lead and no visitors: no value.
    assert_eq!(
        points(of(&by_channel, "opt_in_rate", "ads")),
        [(1.0, Some(10.0), Some(10.0)), (1.0, Some(0.0), None)]
    );
    // A count is its numerator and has no denominator.
    assert_eq!(
        points(of(&by_channel, "form_submissions", "web_form")),
        [(2.0, None, Some(2.0)), (1.0, None, Some(1.0))]
    );
    assert_eq!(
        points(of(&by_channel, "visits", "web_form")),
        [(40.0, None, Some(40.0)), (25.0, None, Some(25.0))]
    );

    // The whole range, ads only: 2 leads / 10 visitors = 20 %.
    let ads_only = kpis
        .get_kpis(request(
            vec![],
            HashMap::from([("channel".into(), "ads".into())]),
            Granularity::Whole,
        ))
        .await
        .unwrap()
        .into_inner()
        .series;
    let rate = ads_only.iter().find(|s| s.kpi == "opt_in_rate").unwrap();
    assert!(rate.group.is_empty());
    assert_eq!(points(rate), [(2.0, Some(10.0), Some(20.0))]);
    // In UTC, lead 4 (2026-11-02T15:30Z) falls on 2 November with leads 2 and 3.
    let utc_days = kpis
        .get_kpis(GetKpisRequest {
            kpis: vec!["leads".into()],
            start_time: Some(time::to_proto(at("2026-11-01T00:00:00Z"))),
            end_time: Some(time::to_proto(at("2026-11-04T00:00:00Z"))),
            granularity: Granularity::Day as i32,
            ..Default::default()
        })
        .await
        .unwrap()
        .into_inner()
        .series;
    assert_eq!(
        utc_days[0]
            .points
            .iter()
            .map(|p| p.numerator)
            .collect::<Vec<_>>(),
        [1.0, 3.0, 1.0]
    );
    suite.stop().await;
}

#[tokio::test]
async fn mqls_and_sqls_count_each_lead_once() {
    let suite = TestSuite::start().await;
    let mut capture = suite.capture().await;
    let mut qualification = suite.qualification().await;
    let kpis = suite.kpis().await;
    let mut leads = Vec::new();
    for n in 0..3 {
        leads.push(capture_at(&mut capture, 10 + n, "webinar", None).await);
    }
    // Leads 0 and 1 reach the default model's threshold (meeting +25, trial +25).
    for (i, lead) in leads.iter().take(2).enumerate() {
        for (k, kind) in [ActivityKind::MeetingBooked, ActivityKind::FreeTrialStarted]
            .into_iter()
            .enumerate()
        {
            capture
                .record_activity(activity(
                    lead,
                    &format!("{i}-{k}"),
                    kind,
                    PageKind::Unspecified,
                ))
                .await
                .unwrap();
        }
    }
    // Lead 0 also confirms all of BANT: SQL. Recording it again changes nothing.
    let yes = || {
        Some(BantItem {
            confirmed: true,
            note: "ok".into(),
        })
    };
    let bant = RecordBantRequest {
        lead_id: leads[0].clone(),
        bant: Some(Bant {
            budget: yes(),
            authority: yes(),
            need: yes(),
            timeframe: yes(),
        }),
        recorded_by: "tester".into(),
    };
    // BANT only once both are MQLs: a lead whose BANT completes first goes straight to SQL.
    for lead in &leads[..2] {
        eventually("an MQL", PATIENCE, || {
            let mut q = qualification.clone();
            let lead_id = lead.clone();
            async move {
                let stage = q
                    .get_stage(GetStageRequest { lead_id })
                    .await
                    .ok()?
                    .into_inner()
                    .stage;
                (stage == Stage::Mql as i32).then_some(())
            }
        })
        .await;
    }
    qualification.record_bant(bant.clone()).await.unwrap();
    qualification.record_bant(bant).await.unwrap();

    let now = Utc::now();
    let whole = GetKpisRequest {
        kpis: [
            "mqls",
            "sqls",
            "leads",
            "lead_to_mql_rate",
            "mql_to_sql_rate",
        ]
        .map(String::from)
        .to_vec(),
        start_time: Some(time::to_proto(now - chrono::Duration::days(1))),
        end_time: Some(time::to_proto(now + chrono::Duration::days(1))),
        granularity: Granularity::Whole as i32,
        ..Default::default()
    };
    let series = eventually("MQLs and the SQL counted", PATIENCE, || {
        let mut k = kpis.clone();
        let req = whole.clone();
        async move {
            let s = k.get_kpis(req).await.ok()?.into_inner().series;
            let n = |key: &str| {
                s.iter()
                    .find(|x| x.kpi == key)
                    .map(|x| x.points[0].numerator)
            };
            (n("mqls") == Some(2.0) && n("sqls") == Some(1.0)).then_some(s)
        }
    })
    .await;
    // 3 leads; 2 MQLs (leads 0, 1); 1 SQL (lead 0, counted once although BANT came twice).
    let n = |key: &str| series.iter().find(|x| x.kpi == key).unwrap().points[0].numerator;
    assert_eq!((n("leads"), n("mqls"), n("sqls")), (3.0, 2.0, 1.0));
    let point = |key: &str| points(series.iter().find(|x| x.kpi == key).unwrap())[0];
    // Cohorts: of the 3 leads captured, 2 became MQL: 66.67 %; of the 2 MQLs, 1 became SQL: 50 %.
    let (num, den, value) = point("lead_to_mql_rate");
    assert_eq!((num, den), (2.0, Some(3.0)));
    assert!((value.unwrap() - 200.0 / 3.0).abs() < 1e-9, "{value:?}");
    assert_eq!(point("mql_to_sql_rate"), (1.0, Some(2.0), Some(50.0)));
    suite.stop().await;
}

#[tokio::test]
async fn bad_kpi_queries_name_the_field_and_the_catalogue_lists_every_kpi() {
    let suite = TestSuite::start().await;
    let mut kpis = suite.kpis().await;
    let catalogue = kpis
        .list_kpis(ListKpisRequest {})
        .await
        .unwrap()
        .into_inner();
    let keys: Vec<&str> = catalogue.kpis.iter().map(|k| k.key.as_str()).collect();
    for key in [
        "visits",
        "leads",
        "form_submissions",
        "opt_in_rate",
        "mqls",
        "sqls",
        "opportunities",
        "wins",
        "win_rate",
    ] {
        assert!(keys.contains(&key), "{key} missing from {keys:?}");
    }
    let rate = catalogue
        .kpis
        .iter()
        .find(|k| k.key == "opt_in_rate")
        .unwrap();
    assert!(!rate.denominator.is_empty() && rate.version == 1);

    let good = GetKpisRequest {
        kpis: vec!["leads".into()],
        start_time: Some(time::to_proto(at("2026-01-01T00:00:00Z"))),
        end_time: Some(time::to_proto(at("2026-02-01T00:00:00Z"))),
        granularity: Granularity::Week as i32,
        time_zone: "Europe/Berlin".into(),
        ..Default::default()
    };
    kpis.get_kpis(good.clone()).await.unwrap();
    let cases = [
        (
            GetKpisRequest {
                kpis: vec!["leads".into(), "happiness".into()],
                ..good.clone()
            },
            "kpis[1]",
            "opt_in_rate",
        ),
        (
            GetKpisRequest {
                group_by: vec!["colour".into()],
                ..good.clone()
            },
            "group_by[0]",
            "channel",
        ),
        (
            GetKpisRequest {
                filters: HashMap::from([("colour".into(), "red".into())]),
                ..good.clone()
            },
            "filters.colour",
            "channel",
        ),
        (
            GetKpisRequest {
                end_time: good.start_time,
                ..good.clone()
            },
            "end_time",
            "after",
        ),
        (
            GetKpisRequest {
                time_zone: "Mars/Olympus".into(),
                ..good.clone()
            },
            "time_zone",
            "IANA",
        ),
        (
            GetKpisRequest {
                start_time: Some(time::to_proto(at("2020-01-01T00:00:00Z"))),
                granularity: Granularity::Day as i32,
                ..good.clone()
            },
            "granularity",
            "1000 periods",
        ),
        (
            GetKpisRequest {
                granularity: Granularity::Unspecified as i32,
                ..good.clone()
            },
            "granularity",
            "required",
        ),
    ];
    for (request, field, words) in cases {
        let status = kpis.get_kpis(request).await.unwrap_err();
        assert_eq!(status.code(), Code::InvalidArgument, "{field}");
        let violations = status.get_details_bad_request().expect("field violations");
        let hit = violations
            .field_violations
            .iter()
            .find(|v| v.field == field)
            .unwrap_or_else(|| panic!("no violation of {field}: {violations:?}"));
        assert!(
            hit.description.contains(words),
            "{field}: {:?} lacks {words:?}",
            hit.description
        );
    }
    suite.stop().await;
}

#[tokio::test]
async fn inside_sales_call_kpis_are_checked_by_hand() {
    use baton_proto::capture::v1::{CallDetails, CallOutcome};

    let suite = TestSuite::start().await;
    let mut capture = suite.capture().await;
    let kpis = suite.kpis().await;
    let lead = capture_at(&mut capture, 20, "phone", Some(at("2026-11-10T00:00:00Z"))).await;
    // (outcome, seconds, reached the buying department, when)
    let calls = [
        (CallOutcome::Connected, 300, true, "2026-11-10T01:00:00Z"),
        (CallOutcome::Connected, 120, false, "2026-11-10T02:00:00Z"),
        (CallOutcome::NoAnswer, 0, false, "2026-11-10T03:00:00Z"),
        (CallOutcome::Voicemail, 0, false, "2026-11-10T04:00:00Z"),
        (CallOutcome::Connected, 180, true, "2026-11-10T05:00:00Z"),
        // Outside the range: not counted.
        (CallOutcome::Connected, 999, true, "2026-11-12T01:00:00Z"),
    ];
    for (n, (outcome, seconds, reached, when)) in calls.into_iter().enumerate() {
        let mut call = activity(
            &lead,
            &format!("call-{n}"),
            ActivityKind::Call,
            PageKind::Unspecified,
        );
        call.occurred_at = Some(time::to_proto(at(when)));
        call.call = Some(CallDetails {
            outcome: outcome as i32,
            duration_seconds: seconds,
            reached_target_department: reached,
        });
        // The first three calls are rep A's, the others rep B's.
        call.performed_by = if n < 3 { "rep-a" } else { "rep-b" }.into();
        capture.record_activity(call).await.unwrap();
    }
    let request = GetKpisRequest {
        kpis: [
            "calls",
            "connects",
            "valid_connects",
            "connect_rate",
            "valid_connect_rate",
            "talk_time_seconds",
            "mean_talk_time_seconds",
        ]
        .map(String::from)
        .to_vec(),
        start_time: Some(time::to_proto(at("2026-11-10T00:00:00Z"))),
        end_time: Some(time::to_proto(at("2026-11-11T00:00:00Z"))),
        granularity: Granularity::Whole as i32,
        ..Default::default()
    };
    let series = eventually("the calls counted", PATIENCE, || {
        let mut k = kpis.clone();
        let req = request.clone();
        async move {
            let s = k.get_kpis(req).await.ok()?.into_inner().series;
            let calls = s.iter().find(|x| x.kpi == "calls")?.points[0].numerator;
            (calls == 5.0).then_some(s)
        }
    })
    .await;
    let point = |key: &str| points(series.iter().find(|x| x.kpi == key).unwrap())[0];
    // 5 calls in range; 3 connected (300 + 120 + 180 = 600 s); 2 of them reached the department.
    assert_eq!(point("calls"), (5.0, None, Some(5.0)));
    assert_eq!(point("connects"), (3.0, None, Some(3.0)));
    assert_eq!(point("valid_connects"), (2.0, None, Some(2.0)));
    assert_eq!(point("connect_rate"), (3.0, Some(5.0), Some(60.0)));
    assert_eq!(point("valid_connect_rate"), (2.0, Some(5.0), Some(40.0)));
    assert_eq!(point("talk_time_seconds"), (600.0, None, Some(600.0)));
    assert_eq!(
        point("mean_talk_time_seconds"),
        (600.0, Some(3.0), Some(200.0))
    );
    // By the rep who made them: A made 3 calls, 2 connected (2 / 3); B made 2 in range, 1
    // connected (1 / 2).
    let mut k = kpis.clone();
    let by_rep = k
        .get_kpis(GetKpisRequest {
            kpis: vec!["calls".into(), "connect_rate".into()],
            group_by: vec!["rep".into()],
            ..request.clone()
        })
        .await
        .unwrap()
        .into_inner()
        .series;
    let rep = |key: &str, rep: &str| {
        let x = by_rep
            .iter()
            .find(|x| x.kpi == key && x.group["rep"] == rep)
            .unwrap_or_else(|| panic!("no {key} for {rep}: {by_rep:?}"));
        points(x)[0]
    };
    assert_eq!(rep("calls", "rep-a"), (3.0, None, Some(3.0)));
    assert_eq!(rep("calls", "rep-b"), (2.0, None, Some(2.0)));
    let a = rep("connect_rate", "rep-a");
    assert_eq!((a.0, a.1), (2.0, Some(3.0)));
    assert!((a.2.unwrap() - 200.0 / 3.0).abs() < 1e-9);
    assert_eq!(rep("connect_rate", "rep-b"), (1.0, Some(2.0), Some(50.0)));
    suite.stop().await;
}

#[tokio::test]
async fn dropping_reportings_database_and_replaying_every_log_gives_the_same_numbers() {
    let mut suite = TestSuite::start().await;
    let mut capture = suite.capture().await;
    capture
        .record_visits(RecordVisitsRequest {
            channel: "ads".into(),
            campaign: "autumn".into(),
            day: Utc::now().date_naive().to_string(),
            visitors: 30,
        })
        .await
        .unwrap();
    let mut leads = Vec::new();
    for n in 0..3 {
        leads.push(capture_at(&mut capture, 30 + n, "ads", None).await);
    }
    for (k, kind) in [ActivityKind::MeetingBooked, ActivityKind::FreeTrialStarted]
        .into_iter()
        .enumerate()
    {
        capture
            .record_activity(activity(
                &leads[0],
                &format!("m-{k}"),
                kind,
                PageKind::Unspecified,
            ))
            .await
            .unwrap();
    }
    capture
        .record_activity(activity(
            &leads[1],
            "form",
            ActivityKind::FormSubmitted,
            PageKind::Unspecified,
        ))
        .await
        .unwrap();
    let now = Utc::now();
    let request = GetKpisRequest {
        kpis: [
            "leads",
            "visits",
            "opt_in_rate",
            "form_submissions",
            "mqls",
            "lead_to_mql_rate",
        ]
        .map(String::from)
        .to_vec(),
        start_time: Some(time::to_proto(now - chrono::Duration::days(2))),
        end_time: Some(time::to_proto(now + chrono::Duration::days(2))),
        granularity: Granularity::Day as i32,
        time_zone: "Asia/Tokyo".into(),
        group_by: vec!["channel".into(), "campaign".into()],
        ..Default::default()
    };
    let total = |s: &[KpiSeries], key: &str| -> f64 {
        s.iter()
            .filter(|x| x.kpi == key)
            .flat_map(|x| x.points.iter().map(|p| p.numerator))
            .sum()
    };
    let kpis = suite.kpis().await;
    let before = eventually("every fact applied", PATIENCE, || {
        let mut k = kpis.clone();
        let req = request.clone();
        async move {
            let s = k.get_kpis(req).await.ok()?.into_inner().series;
            (total(&s, "leads") == 3.0
                && total(&s, "mqls") == 1.0
                && total(&s, "lead_to_mql_rate") == 1.0
                && total(&s, "form_submissions") == 1.0
                && total(&s, "visits") == 30.0)
                .then_some(s)
        }
    })
    .await;

    let fresh = baton_shared::testing::TestDatabase::new("reporting_replayed").await;
    suite
        .suite
        .restart_on_database(baton_shared::ServiceName::Reporting, &fresh.url)
        .await
        .unwrap();
    let kpis = suite.kpis().await;
    let after = eventually("the replay caught up", PATIENCE, || {
        let mut k = kpis.clone();
        let req = request.clone();
        let want = before.clone();
        async move {
            let s = k.get_kpis(req).await.ok()?.into_inner().series;
            (s == want).then_some(s)
        }
    })
    .await;
    assert_eq!(after, before);
    suite.stop().await;
    drop(fresh);
}

#[tokio::test]
async fn a_rank_up_is_a_move_to_a_hotter_rank() {
    use baton_proto::capture::v1::Company;

    let suite = TestSuite::start().await;
    let mut capture = suite.capture().await;
    let kpis = suite.kpis().await;
    // Lead A: a 50-person company ranks cold (a first rank is no rank-up); two pricing-page views
    // make it hot: one rank-up. Lead B: no company, warm; one pricing view changes nothing.
    let a = captured_id(
        &mut capture,
        CaptureLeadRequest {
            request_id: "rank-a".into(),
            email: "a@small.example.co.jp".into(),
            company: Some(Company {
                name: "Small KK".into(),
                employees: Some(50),
                ..Default::default()
            }),
            source: Some(LeadSource {
                channel: "seminar".into(),
                ..Default::default()
            }),
            ..Default::default()
        },
    )
    .await;
    let b = capture_at(&mut capture, 40, "seminar", None).await;
    // Reporting knows both leads (and their channel) before their ranks move: a rank change it
    // applies first is counted under the channel it knows then.
    let now = Utc::now();
    let leads = GetKpisRequest {
        kpis: vec!["leads".into()],
        start_time: Some(time::to_proto(now - chrono::Duration::days(1))),
        end_time: Some(time::to_proto(now + chrono::Duration::days(1))),
        granularity: Granularity::Whole as i32,
        group_by: vec!["channel".into()],
        ..Default::default()
    };
    eventually("reporting knows both leads", PATIENCE, || {
        let mut k = kpis.clone();
        let req = leads.clone();
        async move {
            let s = k.get_kpis(req).await.ok()?.into_inner().series;
            s.iter()
                .any(|s| {
                    s.group.get("channel").map(String::as_str) == Some("seminar")
                        && s.points.first().is_some_and(|p| p.numerator == 2.0)
                })
                .then_some(())
        }
    })
    .await;
    for (key, lead) in [("a-1", &a), ("a-2", &a), ("b-1", &b)] {
        let mut view = activity(lead, key, ActivityKind::PageViewed, PageKind::Pricing);
        view.url = "https://baton.example/pricing".into();
        capture.record_activity(view).await.unwrap();
    }
    let now = Utc::now();
    let request = GetKpisRequest {
        kpis: vec!["rank_ups".into()],
        start_time: Some(time::to_proto(now - chrono::Duration::days(1))),
        end_time: Some(time::to_proto(now + chrono::Duration::days(1))),
        granularity: Granularity::Whole as i32,
        group_by: vec!["channel".into()],
        ..Default::default()
    };
    let series = eventually("the rank-up counted", PATIENCE, || {
        let mut k = kpis.clone();
        let req = request.clone();
        async move {
            let s = k.get_kpis(req).await.ok()?.into_inner().series;
            (s.len() == 1 && s[0].points[0].numerator == 1.0).then_some(s)
        }
    })
    .await;
    assert_eq!(
        points(of(&series, "rank_ups", "seminar")),
        [(1.0, None, Some(1.0))]
    );
    // Nothing else arrives later: still one.
    tokio::time::sleep(Duration::from_millis(500)).await;
    let again = kpis
        .clone()
        .get_kpis(request)
        .await
        .unwrap()
        .into_inner()
        .series;
    assert_eq!(points(&again[0]), [(1.0, None, Some(1.0))]);
    suite.stop().await;
}

#[tokio::test]
async fn baton_report_kpis_prints_each_value_with_its_numerator_and_denominator() {
    use baton::report::{KpiReport, kpis};

    let suite = TestSuite::start().await;
    let mut capture = suite.capture().await;
    for n in 0..2 {
        capture_at(&mut capture, 50 + n, "ads", None).await;
    }
    let today = Utc::now().date_naive();
    let report = KpiReport {
        kpis: vec!["leads".into(), "opt_in_rate".into()],
        from: (today - chrono::Duration::days(1)).to_string(),
        to: (today + chrono::Duration::days(2)).to_string(),
        granularity: "whole".into(),
        time_zone: "UTC".into(),
        group_by: vec!["channel".into()],
        filters: vec![],
    };
    let settings = suite.suite.settings();
    let table = eventually("two leads in the report", PATIENCE, || {
        let report = report.clone();
        async move {
            let t = kpis(settings, &report).await.ok()?;
            t.lines()
                .any(|l| l.contains("leads") && l.contains("channel=ads") && l.contains(" 2 "))
                .then_some(t)
        }
    })
    .await;
    // 2 leads and no visitors: the opt-in rate has no value, shown as such with 2 / 0.
    let rate = table
        .lines()
        .find(|l| l.contains("opt_in_rate"))
        .unwrap_or_else(|| panic!("no opt_in_rate row in\n{table}"));
    assert!(
        rate.contains("no value") && rate.contains(" 2 ") && rate.contains(" 0 "),
        "{rate}"
    );
    assert!(
        kpis(
            settings,
            &KpiReport {
                kpis: vec!["happiness".into()],
                ..report.clone()
            }
        )
        .await
        .unwrap_err()
        .to_string()
        .contains("unknown KPI")
    );
    suite.stop().await;
}

#[tokio::test]
async fn email_kpis_count_each_lead_once_and_the_window_is_a_versioned_parameter() {
    let suite = TestSuite::start().await;
    let mut capture = suite.capture().await;
    let mut kpis = suite.kpis().await;
    let t0 = Utc::now()
        .duration_trunc(chrono::Duration::days(1))
        .unwrap();
    let d1 = t0 - chrono::Duration::days(20);
    let h = |hours: i64| d1 + chrono::Duration::hours(hours);
    // Six leads captured before D1: L1–L4 and L6 opted in, L5 not.
    let mut leads = Vec::new();
    for n in 1..=6 {
        leads.push(
            captured_id(
                &mut capture,
                CaptureLeadRequest {
                    request_id: format!("mail-{n}"),
                    email: format!("mail{n}@example.co.jp"),
                    source: Some(LeadSource {
                        channel: "newsletter".into(),
                        ..Default::default()
                    }),
                    consent: Some(Consent {
                        email_opt_in: n != 5,
                        ..Default::default()
                    }),
                    captured_at: Some(time::to_proto(d1 - chrono::Duration::days(10))),
                    ..Default::default()
                },
            )
            .await,
        );
    }
    let lead = |n: usize| leads[n - 1].clone();
    let mut n = 0;
    let mut act = |lead_id: String, kind: ActivityKind, at: DateTime<Utc>| {
        n += 1;
        let mut a = activity(
            &lead_id,
            &format!("mail-act-{n}"),
            kind,
            PageKind::Unspecified,
        );
        a.occurred_at = Some(time::to_proto(at));
        a
    };
    use ActivityKind as K;
    let script = vec![
        // D1: delivered to L1 (twice), L2, L3, L4; bounced from L6.
        act(lead(1), K::EmailDelivered, h(9)),
        act(lead(1), K::EmailDelivered, h(10)),
        act(lead(2), K::EmailDelivered, h(9)),
        act(lead(3), K::EmailDelivered, h(9)),
        act(lead(4), K::EmailDelivered, h(9)),
        act(lead(6), K::EmailBounced, h(9)),
        // L1 opens twice and clicks; L2 opens; L1 submits a form 3 hours after its delivery.
        act(lead(1), K::EmailOpened, h(12)),
        act(
            lead(1),
            K::EmailOpened,
            h(12) + chrono::Duration::minutes(30),
        ),
        act(
            lead(1),
            K::EmailClicked,
            h(12) + chrono::Duration::minutes(31),
        ),
        act(lead(2), K::EmailOpened, h(12)),
        act(lead(1), K::FormSubmitted, h(13)),
        // D2: L4 unsubscribes (after its D1 delivery); L2 gets another e-mail and clicks it.
        act(lead(4), K::EmailUnsubscribed, h(24 + 8)),
        act(lead(2), K::EmailDelivered, h(24 + 9)),
        act(lead(2), K::EmailClicked, h(24 + 10)),
        // Nine days after D1, L3 downloads a document: outside the default 7-day window.
        act(lead(3), K::DocumentDownloaded, h(9 * 24 + 9)),
    ];
    for a in script {
        capture.record_activity(a).await.unwrap();
    }
    let request = |g: Granularity| GetKpisRequest {
        kpis: [
            "emails_delivered",
            "email_clicks",
            "open_rate",
            "click_rate",
            "click_to_open_rate",
            "email_conversion_rate",
            "unsubscribe_rate",
            "bounce_rate",
            "list_size",
        ]
        .map(String::from)
        .to_vec(),
        start_time: Some(time::to_proto(d1)),
        end_time: Some(time::to_proto(d1 + chrono::Duration::days(2))),
        granularity: g as i32,
        ..Default::default()
    };
    let reader = kpis.clone();
    let get = |g: Granularity| {
        let mut k = reader.clone();
        let req = request(g);
        async move { k.get_kpis(req).await.unwrap().into_inner().series }
    };
    // Every fact the assertions below count must be in: reporting applies events in batches as
    // they come, so wait for each whole-period numerator, not only two of them.
    eventually("every e-mail fact applied", PATIENCE, || async {
        let s = get(Granularity::Whole).await;
        [
            ("emails_delivered", 6.0),
            ("email_clicks", 2.0),
            ("open_rate", 2.0),
            ("click_rate", 2.0),
            ("email_conversion_rate", 1.0),
            ("unsubscribe_rate", 1.0),
            ("bounce_rate", 1.0),
            ("list_size", 3.0),
        ]
        .iter()
        .all(|(kpi, n)| first_numerator(&s, kpi) == Some(*n))
        .then_some(())
    })
    .await;
    let whole = get(Granularity::Whole).await;
    let p = |s: &[KpiSeries], key: &str| {
        let x = s.iter().find(|x| x.kpi == key).unwrap();
        (x.version, points(x))
    };
    // Over both days: 6 e-mails delivered to 4 leads (L1–L4), 2 clicks.
    assert_eq!(
        p(&whole, "emails_delivered"),
        (1, vec![(6.0, None, Some(6.0))])
    );
    assert_eq!(p(&whole, "email_clicks"), (1, vec![(2.0, None, Some(2.0))]));
    // Openers L1, L2 of 4: 50 %. Clickers L1, L2: 50 %; of the 2 openers, 100 %.
    assert_eq!(p(&whole, "open_rate").1, [(2.0, Some(4.0), Some(50.0))]);
    assert_eq!(p(&whole, "click_rate").1, [(2.0, Some(4.0), Some(50.0))]);
    assert_eq!(
        p(&whole, "click_to_open_rate").1,
        [(2.0, Some(2.0), Some(100.0))]
    );
    // Within 7 days of a delivery only L1's form converts: 1 / 4. L4 unsubscribed: 1 / 4.
    assert_eq!(
        p(&whole, "email_conversion_rate"),
        (1, vec![(1.0, Some(4.0), Some(25.0))])
    );
    assert_eq!(
        p(&whole, "unsubscribe_rate").1,
        [(1.0, Some(4.0), Some(25.0))]
    );
    // Sent to L1–L4 and L6, bounced from L6: 1 / 5.
    assert_eq!(p(&whole, "bounce_rate").1, [(1.0, Some(5.0), Some(20.0))]);
    // Deliverable at the end: L1–L3 (L4 unsubscribed, L5 never opted in, L6 bounced).
    assert_eq!(p(&whole, "list_size").1, [(3.0, None, Some(3.0))]);

    // Per day: D1 has 4 leads delivered to, 2 openers, 1 clicker; D2 has L2 alone, a clicker
    // who opened nothing (no click-to-open rate: 1 / 0). The list is 4 after D1, 3 after D2.
    let daily = get(Granularity::Day).await;
    assert_eq!(
        p(&daily, "open_rate").1,
        [(2.0, Some(4.0), Some(50.0)), (0.0, Some(1.0), Some(0.0))]
    );
    assert_eq!(
        p(&daily, "click_rate").1,
        [(1.0, Some(4.0), Some(25.0)), (1.0, Some(1.0), Some(100.0))]
    );
    let ctor = daily
        .iter()
        .find(|x| x.kpi == "click_to_open_rate")
        .unwrap();
    assert_eq!(points(ctor)[1], (1.0, Some(0.0), None));
    assert_eq!(ctor.points[1].no_value_reason, "the denominator is 0");
    assert_eq!(
        p(&daily, "list_size").1,
        [(4.0, None, Some(4.0)), (3.0, None, Some(3.0))]
    );

    // A 10-day window (version 2) also counts L3's download, nine days after its delivery: 2 / 4.
    // Not requiring opt-in (version 2 of list_size) adds L5 to the list.
    let listed = kpis
        .list_kpis(ListKpisRequest {})
        .await
        .unwrap()
        .into_inner();
    let conversion = listed
        .kpis
        .iter()
        .find(|k| k.key == "email_conversion_rate")
        .unwrap();
    assert_eq!(
        (
            conversion.version,
            conversion.parameters[0].name.as_str(),
            conversion.parameters[0].value
        ),
        (1, "window_days", 7.0)
    );
    let updated = kpis
        .update_kpi_parameters(as_user(
            "marketing-ops@example.co.jp",
            UpdateKpiParametersRequest {
                kpi: "email_conversion_rate".into(),
                parameters: [("window_days".to_owned(), 10.0)].into(),
                expected_version: 1,
                updated_by: "marketing-ops@example.co.jp".into(),
            },
        ))
        .await
        .unwrap()
        .into_inner();
    assert_eq!((updated.version, updated.parameters[0].value), (2, 10.0));
    kpis.update_kpi_parameters(as_user(
        "marketing-ops@example.co.jp",
        UpdateKpiParametersRequest {
            kpi: "list_size".into(),
            parameters: [("requires_opt_in".to_owned(), 0.0)].into(),
            expected_version: 0,
            updated_by: String::new(),
        },
    ))
    .await
    .unwrap();
    let whole = get(Granularity::Whole).await;
    assert_eq!(
        p(&whole, "email_conversion_rate"),
        (2, vec![(2.0, Some(4.0), Some(50.0))])
    );
    assert_eq!(p(&whole, "list_size"), (2, vec![(4.0, None, Some(4.0))]));
    // A stale version, an unknown parameter, a value out of range: refused, nothing changes.
    let stale = kpis
        .update_kpi_parameters(UpdateKpiParametersRequest {
            kpi: "email_conversion_rate".into(),
            parameters: [("window_days".to_owned(), 3.0)].into(),
            expected_version: 1,
            updated_by: String::new(),
        })
        .await
        .unwrap_err();
    assert_eq!(stale.code(), Code::FailedPrecondition);
    for (kpi, name, value, field) in [
        (
            "email_conversion_rate",
            "window_days",
            91.0,
            "parameters.window_days",
        ),
        ("email_conversion_rate", "colour", 1.0, "parameters.colour"),
        ("leads", "window_days", 1.0, "kpi"),
        ("happiness", "window_days", 1.0, "kpi"),
    ] {
        let err = kpis
            .update_kpi_parameters(UpdateKpiParametersRequest {
                kpi: kpi.into(),
                parameters: [(name.to_owned(), value)].into(),
                ..Default::default()
            })
            .await
            .unwrap_err();
        assert_eq!(err.code(), Code::InvalidArgument, "{kpi}.{name}");
        let fields: Vec<String> = err
            .get_details_bad_request()
            .unwrap()
            .field_violations
            .into_iter()
            .map(|v| v.field)
            .collect();
        assert_eq!(fields, [field], "{kpi}.{name}");
    }
    let again = get(Granularity::Whole).await;
    assert_eq!(p(&again, "email_conversion_rate").0, 2);
    suite.stop().await;
}

#[tokio::test]
async fn target_account_leads_follow_the_tenants_condition_when_captured() {
    let suite = TestSuite::start().await;
    let mut capture = suite.capture().await;
    let mut kpis = suite.kpis().await;
    let company = |domain: &str, industry: &str, employees: i64| Company {
        name: format!("{domain} KK"),
        web_domain: domain.into(),
        industry: industry.into(),
        employees: Some(employees),
        country: "JP".into(),
        ..Default::default()
    };
    let capture_with = |n: usize, c: Company| CaptureLeadRequest {
        request_id: format!("ta-{n}"),
        email: format!("buyer{n}@{}", c.web_domain),
        source: Some(LeadSource {
            channel: "trade_show".into(),
            ..Default::default()
        }),
        company: Some(c),
        ..Default::default()
    };
    // Captured before any condition: not a target, whatever its company.
    captured_id(
        &mut capture,
        capture_with(0, company("big.example", "", 10)),
    )
    .await;
    let none = kpis
        .get_target_accounts(GetTargetAccountsRequest {})
        .await
        .unwrap()
        .into_inner();
    assert_eq!(none.version, 0);
    let refused = kpis
        .set_target_accounts(SetTargetAccountsRequest {
            accounts: Some(TargetAccounts::default()),
            expected_version: 0,
        })
        .await
        .unwrap_err();
    assert_eq!(refused.code(), Code::InvalidArgument);
    let set = kpis
        .set_target_accounts(as_user(
            "marketing-ops@example.co.jp",
            SetTargetAccountsRequest {
                accounts: Some(TargetAccounts {
                    web_domains: vec!["Big.Example".into()],
                    industries: vec!["Manufacturing".into()],
                    countries: vec!["jp".into()],
                    min_employees: Some(500),
                    updated_by: String::new(),
                    ..Default::default()
                }),
                expected_version: 0,
            },
        ))
        .await
        .unwrap()
        .into_inner();
    assert_eq!(
        (
            set.version,
            set.web_domains.clone(),
            set.updated_by.as_str()
        ),
        (
            1,
            vec!["big.example".to_owned()],
            "marketing-ops@example.co.jp"
        ),
        "the actor is the caller"
    );
    // Nobody changes the condition in another person's name.
    let forged = kpis
        .set_target_accounts(SetTargetAccountsRequest {
            accounts: Some(set.clone()),
            expected_version: 1,
        })
        .await
        .unwrap_err();
    assert_eq!(forged.code(), Code::PermissionDenied, "{forged:?}");
    let stale = kpis
        .set_target_accounts(as_user(
            "marketing-ops@example.co.jp",
            SetTargetAccountsRequest {
                accounts: Some(set.clone()),
                expected_version: 7,
            },
        ))
        .await
        .unwrap_err();
    assert_eq!(stale.code(), Code::FailedPrecondition);
    // Named domain: a target. Manufacturing in JP with 800 people: a target. With 100: not.
    captured_id(
        &mut capture,
        capture_with(1, company("big.example", "", 10)),
    )
    .await;
    captured_id(
        &mut capture,
        capture_with(2, company("mid.example", "manufacturing", 800)),
    )
    .await;
    captured_id(
        &mut capture,
        capture_with(3, company("small.example", "manufacturing", 100)),
    )
    .await;
    let now = Utc::now();
    let req = GetKpisRequest {
        kpis: vec!["target_account_leads".into(), "leads".into()],
        start_time: Some(time::to_proto(now - chrono::Duration::hours(1))),
        end_time: Some(time::to_proto(now + chrono::Duration::hours(1))),
        granularity: Granularity::Whole as i32,
        ..Default::default()
    };
    let s = kpis_when(&kpis, "four leads", &req, |s| {
        first_numerator(s, "leads") == Some(4.0)
    })
    .await;
    let targets = s.iter().find(|x| x.kpi == "target_account_leads").unwrap();
    assert_eq!(points(targets), [(2.0, None, Some(2.0))]);
    suite.stop().await;
}
