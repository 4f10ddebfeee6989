//! The KPIs of deals, money and customers over gRPC, from a scenario built through the services'
//! public APIs: three leads handed from IS to FS, two won with an amount and a monthly recurring
//! revenue, one lost, one customer churned, and spend in two currencies. Every expected number is
//! computed by hand in the comments beside it.

use baton_shared::testing::as_user;
use std::time::Duration;

use baton_e2e::{
    TestSuite, activity, captured_id, eventually, first_numerator, invalid_fields, kpis_when, lead,
    sales::{approve_contract, assigned, record_bant, sales_floor, stage_of},
};
use baton_proto::{
    capture::v1::{ActivityKind, Company, LeadSource, Money, PageKind},
    distribution::v1::{AcceptHandoffRequest, CreateHandoffRequest, RecordOutcomeRequest},
    qualification::v1::Stage,
    reporting::v1::{
        ContractTerms, CreatePlanRequest, FunnelGroup, GetFunnelRequest, GetKpisRequest,
        GetPlanProgressRequest, GetPlanRequest, Granularity, HandoffGate, KpiSeries, KpiUnit,
        ListPlansRequest, Plan, PlanInputs, PlanStage, RateSource, RecordChurnRequest,
        RecordSpendRequest, SetTargetAccountsRequest, StageDwell, StageRates, TargetAccounts,
        kpi_service_client::KpiServiceClient,
    },
};
use baton_shared::peer::AuthChannel;
use baton_shared::time;
use chrono::{DateTime, Duration as Span, DurationRound, Utc};
use tonic::Code;
use tonic_types::StatusExt;

const PATIENCE: Duration = Duration::from_secs(60);

fn eur(minor: i64) -> Option<Money> {
    Some(Money {
        currency_code: "EUR".into(),
        amount_minor: minor,
    })
}

fn terms() -> ContractTerms {
    ContractTerms {
        gate: Some(HandoffGate {
            required_fields: vec!["meeting_at".into()],
            bant_items: vec!["budget".into(), "need".into()],
            min_score: Some(40),
            allowed_ranks: vec!["RANK_HOT".into(), "RANK_WARM".into()],
        }),
        ..baton_shared::contract::example_terms(
            "is-deals",
            "fs-deals",
            "is-lead@example.co.jp",
            "fs-lead@example.co.jp",
        )
    }
}

/// How each lead of the scenario ends.
enum End {
    /// Won: amount and MRR in EUR minor units, close date.
    Won(i64, i64, DateTime<Utc>),
    Lost,
    /// Lost, after IS confirmed all of BANT (the lead was an SQL before its handoff).
    LostAfterSql,
}

/// Captures a lead of channel `ads` at `captured_at`, makes it an MQL (a booked meeting and a
/// trial), waits for its assignment, hands it off to FS, has FS accept it and records its end.
async fn deal(suite: &TestSuite, n: usize, captured_at: DateTime<Utc>, end: End) -> String {
    let mut capture = suite.capture().await;
    let mut d = suite.distribution().await;
    let mut request = lead(n);
    request.source = Some(LeadSource {
        channel: "ads".into(),
        campaign: "winter".into(),
        ..Default::default()
    });
    request.captured_at = Some(time::to_proto(captured_at));
    request.company = Some(Company {
        name: format!("Deal {n} KK"),
        web_domain: format!("deal{n}.example"),
        ..Default::default()
    });
    let id = captured_id(&mut capture, request).await;
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
    assigned(&d, &id).await;
    if matches!(end, End::LostAfterSql) {
        stage_of(suite, &id, Stage::Mql).await;
        record_bant(suite, &id, &["budget", "authority", "need", "timeframe"]).await;
        stage_of(suite, &id, Stage::Sql).await;
    } else {
        record_bant(suite, &id, &["budget", "need"]).await;
    }
    let handoff = d
        .create_handoff(as_user(
            "is0@example.co.jp",
            CreateHandoffRequest {
                request_id: format!("h-{n}"),
                lead_id: id.clone(),
                is_team: "is-deals".into(),
                fs_team: "fs-deals".into(),
                meeting_at: Some(time::to_proto(Utc::now() + Span::days(2))),
                handed_off_by: "is0@example.co.jp".into(),
                ..Default::default()
            },
        ))
        .await
        .unwrap()
        .into_inner();
    d.accept_handoff(as_user(
        "fs0@example.co.jp",
        AcceptHandoffRequest {
            handoff_id: handoff.handoff_id.clone(),
            decided_by: "fs0@example.co.jp".into(),
        },
    ))
    .await
    .unwrap();
    stage_of(suite, &id, Stage::Opportunity).await;
    let outcome = match end {
        End::Won(amount, mrr, closed_at) => RecordOutcomeRequest {
            won: true,
            amount: eur(amount),
            monthly_recurring_revenue: eur(mrr),
            closed_at: Some(time::to_proto(closed_at)),
            ..Default::default()
        },
        End::Lost | End::LostAfterSql => RecordOutcomeRequest {
            won: false,
            lost_reason: "chose a competitor".into(),
            ..Default::default()
        },
    };
    d.record_outcome(as_user(
        "fs0@example.co.jp",
        RecordOutcomeRequest {
            handoff_id: handoff.handoff_id,
            recorded_by: "fs0@example.co.jp".into(),
            ..outcome
        },
    ))
    .await
    .unwrap();
    id
}

async fn spend(
    kpis: &mut KpiServiceClient<AuthChannel>,
    key: &str,
    days: (String, String),
    m: Money,
) {
    kpis.record_spend(as_user(
        "marketing-ops@example.co.jp",
        RecordSpendRequest {
            request_id: key.into(),
            channel: "ads".into(),
            campaign: "winter".into(),
            start_day: days.0,
            end_day: days.1,
            amount: Some(m),
            recorded_by: "marketing-ops@example.co.jp".into(),
        },
    ))
    .await
    .unwrap();
}

fn day(t: DateTime<Utc>) -> String {
    t.date_naive().to_string()
}

/// (numerator, denominator, value) of a series' points.
fn points(s: &KpiSeries) -> Vec<(f64, Option<f64>, Option<f64>)> {
    s.points
        .iter()
        .map(|p| (p.numerator, p.denominator, p.value))
        .collect()
}

fn find<'a>(series: &'a [KpiSeries], kpi: &str, currency: &str) -> &'a KpiSeries {
    series
        .iter()
        .find(|s| s.kpi == kpi && s.currency_code == currency)
        .unwrap_or_else(|| panic!("no {kpi} series in {currency:?}: {series:#?}"))
}

fn close(a: f64, b: f64) -> bool {
    (a - b).abs() < 1e-9
}

#[tokio::test]
async fn deal_money_and_customer_kpis_are_checked_by_hand() {
    let mut suite = TestSuite::start().await;
    let mut contracts = suite.contracts().await;
    let mut d = suite.distribution().await;
    let mut kpis = suite.kpis().await;
    approve_contract(&mut contracts, "deals", terms()).await;
    sales_floor(&mut d, "is-deals", "fs-deals", 1).await;
    // Deal 1's company is a named target account.
    kpis.set_target_accounts(SetTargetAccountsRequest {
        accounts: Some(TargetAccounts {
            web_domains: vec!["deal1.example".into()],
            ..Default::default()
        }),
        expected_version: 0,
    })
    .await
    .unwrap();

    // T0 is today's midnight (UTC). Leads are captured 20, 10 and 5 days before it.
    let t0 = Utc::now().duration_trunc(Span::days(1)).unwrap();
    // A: captured T0−20d, won 12,000.00 EUR with 1,000.00 EUR MRR, closed T0−8d: a 12-day cycle.
    let a = deal(
        &suite,
        1,
        t0 - Span::days(20),
        End::Won(1_200_000, 100_000, t0 - Span::days(8)),
    )
    .await;
    // B: captured T0−10d, won 6,000.00 EUR with 500.00 EUR MRR, closed T0−4d: a 6-day cycle.
    let b = deal(
        &suite,
        2,
        t0 - Span::days(10),
        End::Won(600_000, 50_000, t0 - Span::days(4)),
    )
    .await;
    // C: captured T0−5d, an SQL (all of BANT) before its handoff, lost.
    deal(&suite, 3, t0 - Span::days(5), End::LostAfterSql).await;
    // Spend on ads/winter: 320.00 EUR over the 32 days T0−30d..T0+1d (10.00 EUR a day), and
    // 30,000 JPY on T0 alone.
    let eur_spend = Money {
        currency_code: "EUR".into(),
        amount_minor: 32_000,
    };
    let span = (day(t0 - Span::days(30)), day(t0 + Span::days(1)));
    spend(&mut kpis, "s-eur", span, eur_spend).await;
    let jpy = Money {
        currency_code: "JPY".into(),
        amount_minor: 30_000,
    };
    spend(&mut kpis, "s-jpy", (day(t0), day(t0)), jpy).await;

    // The whole range [T0−30d, T0+2d) holds every capture, every step (all recorded now, on T0)
    // and all spend.
    let whole = GetKpisRequest {
        kpis: [
            "wins",
            "won_deals",
            "win_rate",
            "won_amount",
            "total_sales",
            "average_deal_size",
            "opportunity_rate",
            "opportunity_to_won_rate",
            "sales_conversion_rate",
            "sales_cycle_days",
            "sales_cycle_days_median",
            "cost_per_lead",
            "cost_per_mql",
            "cost_per_sql",
            "sql_to_opportunity_rate",
            "cost_per_opportunity",
            "cost_per_won_deal",
            "cpl_to_deal_size_ratio",
            "target_account_leads",
            "target_account_opportunities",
        ]
        .map(String::from)
        .to_vec(),
        start_time: Some(time::to_proto(t0 - Span::days(30))),
        end_time: Some(time::to_proto(t0 + Span::days(2))),
        granularity: Granularity::Whole as i32,
        ..Default::default()
    };
    let s = kpis_when(&kpis, "every deal fact applied", &whole, |s| {
        let decided = s
            .iter()
            .find(|x| x.kpi == "win_rate")
            .map(|x| x.points[0].denominator);
        decided == Some(Some(3.0)) && first_numerator(s, "sales_conversion_rate") == Some(2.0)
    })
    .await;
    // The same wins read from the cube (grouped by team: not a source dimension) as from the
    // source rollups above.
    let by_team = kpis
        .get_kpis(GetKpisRequest {
            kpis: vec!["wins".into(), "win_rate".into()],
            group_by: vec!["team".into()],
            ..whole.clone()
        })
        .await
        .unwrap()
        .into_inner()
        .series;
    let team = |key: &str| {
        let x = by_team.iter().find(|x| x.kpi == key).unwrap();
        (x.group["team"].clone(), points(x)[0].0, points(x)[0].1)
    };
    assert_eq!(team("wins"), ("is-deals".to_owned(), 2.0, None));
    assert_eq!(team("win_rate"), ("is-deals".to_owned(), 2.0, Some(3.0)));
    // One of the three leads, and of the three handoffs, is a target account's.
    for key in ["target_account_leads", "target_account_opportunities"] {
        assert_eq!(points(find(&s, key, "")), [(1.0, None, Some(1.0))], "{key}");
    }
    // Two wins of three decided: 2 / 3 × 100.
    assert_eq!(points(find(&s, "wins", "")), [(2.0, None, Some(2.0))]);
    assert_eq!(points(find(&s, "won_deals", "")), [(2.0, None, Some(2.0))]);
    let rate = points(find(&s, "win_rate", ""))[0];
    assert_eq!((rate.0, rate.1), (2.0, Some(3.0)));
    assert!(close(rate.2.unwrap(), 200.0 / 3.0));
    // 12,000 + 6,000 = 18,000 EUR won; 18,000 / 2 = 9,000 EUR a deal.
    let won = find(&s, "won_amount", "EUR");
    assert_eq!(won.unit, KpiUnit::Money as i32);
    assert_eq!(points(won), [(18_000.0, None, Some(18_000.0))]);
    assert_eq!(
        points(find(&s, "total_sales", "EUR")),
        [(18_000.0, None, Some(18_000.0))]
    );
    assert_eq!(
        points(find(&s, "average_deal_size", "EUR")),
        [(18_000.0, Some(2.0), Some(9_000.0))]
    );
    // Three handoffs of three leads assigned: 100 %. Of the three leads handed off, two won; of
    // the three captured, two won.
    assert_eq!(
        points(find(&s, "opportunity_rate", "")),
        [(3.0, Some(3.0), Some(100.0))]
    );
    for key in ["opportunity_to_won_rate", "sales_conversion_rate"] {
        let p = points(find(&s, key, ""))[0];
        assert_eq!((p.0, p.1), (2.0, Some(3.0)), "{key}");
        assert!(close(p.2.unwrap(), 200.0 / 3.0), "{key}");
    }
    // Cycles of 12 and 6 days: 18 days over 2 wins, 9 days each.
    assert_eq!(
        points(find(&s, "sales_cycle_days", "")),
        [(18.0, Some(2.0), Some(9.0))]
    );
    // The median of 6 and 12 days: their mean, 9 (no denominator: a median is not a ratio).
    assert_eq!(
        points(find(&s, "sales_cycle_days_median", "")),
        [(9.0, None, Some(9.0))]
    );
    // 320 EUR over 3 leads, 3 MQLs, 3 opportunities; over 2 won deals 160 EUR each.
    for key in ["cost_per_lead", "cost_per_mql", "cost_per_opportunity"] {
        let p = points(find(&s, key, "EUR"))[0];
        assert_eq!((p.0, p.1), (320.0, Some(3.0)), "{key}");
        assert!(close(p.2.unwrap(), 320.0 / 3.0), "{key}");
    }
    assert_eq!(
        points(find(&s, "cost_per_won_deal", "EUR")),
        [(320.0, Some(2.0), Some(160.0))]
    );
    // One SQL (C): 320 EUR per SQL; it was handed off: 1 / 1.
    assert_eq!(
        points(find(&s, "cost_per_sql", "EUR")),
        [(320.0, Some(1.0), Some(320.0))]
    );
    assert_eq!(
        points(find(&s, "sql_to_opportunity_rate", "")),
        [(1.0, Some(1.0), Some(100.0))]
    );
    // JPY spend is its own series: 30,000 JPY / 3 leads = 10,000 JPY.
    assert_eq!(
        points(find(&s, "cost_per_lead", "JPY")),
        [(30_000.0, Some(3.0), Some(10_000.0))]
    );
    // CPL / deal size in EUR: (320 / 3) / 9,000 × 100. In JPY there is no deal to divide by.
    let ratio = points(find(&s, "cpl_to_deal_size_ratio", "EUR"))[0];
    assert!(close(ratio.0, 320.0 / 3.0) && ratio.1 == Some(9_000.0));
    assert!(close(ratio.2.unwrap(), 320.0 / 3.0 / 9_000.0 * 100.0));
    let jpy_ratio = &find(&s, "cpl_to_deal_size_ratio", "JPY").points[0];
    assert_eq!(jpy_ratio.value, None);
    assert_eq!(
        jpy_ratio.no_value_reason,
        "the denominator is undefined: it divides by 0"
    );
    assert!(
        !s.iter()
            .any(|x| x.kpi == "average_deal_size" && x.currency_code == "JPY"),
        "no JPY deals, no JPY deal size"
    );

    // Dropping reporting's database and replaying every log from position 0 gives the same
    // numbers for every KPI derived from the logs (spend, churn and target accounts are
    // reporting's own inputs, not replayed).
    let derived = GetKpisRequest {
        kpis: [
            "wins",
            "win_rate",
            "won_amount",
            "average_deal_size",
            "opportunity_rate",
            "opportunity_to_won_rate",
            "sales_conversion_rate",
            "sales_cycle_days",
            "customers",
            "mrr",
            "arpa",
            "leads",
            "mqls",
        ]
        .map(String::from)
        .to_vec(),
        granularity: Granularity::Day as i32,
        time_zone: "Asia/Tokyo".into(),
        group_by: vec!["channel".into(), "team".into()],
        ..whole.clone()
    };
    let before = kpis.get_kpis(derived.clone()).await.unwrap().into_inner();
    assert!(
        before
            .series
            .iter()
            .any(|x| x.kpi == "mrr" && x.currency_code == "EUR")
    );
    let fresh = baton_shared::testing::TestDatabase::new("reporting_deals_replayed").await;
    suite
        .suite
        .restart_on_database(baton_shared::ServiceName::Reporting, &fresh.url)
        .await
        .unwrap();
    let mut kpis = suite.kpis().await;
    eventually("the replay caught up", PATIENCE, || {
        let mut k = kpis.clone();
        let req = derived.clone();
        let want = before.clone();
        async move { (k.get_kpis(req).await.ok()?.into_inner() == want).then_some(()) }
    })
    .await;

    // B churns on T0+1d 12:00. Days T0 and T0+1d: customers at their ends 2, then 1; MRR 1,500
    // then 1,000 EUR; churn on day 2: 1 of the 2 customers at its start, 50 %.
    let churned_at = t0 + Span::hours(36);
    let churn = RecordChurnRequest {
        idempotency_key: "churn-b".into(),
        lead_id: b.clone(),
        churned_at: Some(time::to_proto(churned_at)),
        reason: "budget cut".into(),
    };
    let customer = eventually("B is a customer", PATIENCE, || {
        let mut k = kpis.clone();
        let req = churn.clone();
        async move { k.record_churn(req).await.ok() }
    })
    .await
    .into_inner();
    assert_eq!(customer.monthly_recurring_revenue, eur(50_000));
    // The same key again answers the same churn; another key is refused, as is an unknown lead.
    let again = kpis.record_churn(churn.clone()).await.unwrap().into_inner();
    assert_eq!(again.churned_at, customer.churned_at);
    let twice = kpis
        .record_churn(RecordChurnRequest {
            idempotency_key: "churn-b-2".into(),
            ..churn.clone()
        })
        .await
        .unwrap_err();
    assert_eq!(twice.code(), Code::FailedPrecondition);
    let rule = &twice.get_details_precondition_failure().unwrap().violations[0];
    assert_eq!(
        (rule.r#type.as_str(), rule.subject.as_str()),
        ("RULE", "customer_open")
    );
    let early = kpis
        .record_churn(RecordChurnRequest {
            idempotency_key: "churn-a".into(),
            lead_id: a.clone(),
            churned_at: Some(time::to_proto(t0 - Span::days(40))),
            reason: "never".into(),
        })
        .await
        .unwrap_err();
    assert_eq!(early.code(), Code::FailedPrecondition, "{early:?}");
    let unknown = kpis
        .record_churn(RecordChurnRequest {
            idempotency_key: "churn-x".into(),
            lead_id: "no-such-lead".into(),
            ..churn.clone()
        })
        .await
        .unwrap_err();
    assert_eq!(unknown.code(), Code::NotFound);

    let daily = GetKpisRequest {
        kpis: [
            "customers",
            "mrr",
            "arpa",
            "customer_churn_rate",
            "customer_lifetime_value",
        ]
        .map(String::from)
        .to_vec(),
        start_time: Some(time::to_proto(t0)),
        end_time: Some(time::to_proto(t0 + Span::days(2))),
        granularity: Granularity::Day as i32,
        ..Default::default()
    };
    let s = kpis_when(&kpis, "the churn applied", &daily, |s| {
        let churn = s.iter().find(|x| x.kpi == "customer_churn_rate");
        churn.is_some_and(|c| c.points[1].numerator == 1.0)
    })
    .await;
    assert_eq!(
        points(find(&s, "customers", "")),
        [(2.0, None, Some(2.0)), (1.0, None, Some(1.0))]
    );
    assert_eq!(
        points(find(&s, "mrr", "EUR")),
        [
            (1_500.0, None, Some(1_500.0)),
            (1_000.0, None, Some(1_000.0))
        ]
    );
    assert_eq!(
        points(find(&s, "arpa", "EUR")),
        [
            (1_500.0, Some(2.0), Some(750.0)),
            (1_000.0, Some(1.0), Some(1_000.0))
        ]
    );
    // Day 1 starts with no customer: no churn rate. Day 2: 1 / 2 × 100.
    let churn_rate = find(&s, "customer_churn_rate", "");
    assert_eq!(
        points(churn_rate),
        [(0.0, Some(0.0), None), (1.0, Some(2.0), Some(50.0))]
    );
    assert_eq!(churn_rate.points[0].no_value_reason, "the denominator is 0");
    // CLV on day 2: ARPA 1,000 EUR / monthly churn (1 / 2 a day × 30.436875 days = 15.2184375).
    let clv = points(find(&s, "customer_lifetime_value", "EUR"));
    assert_eq!(clv[0].2, None, "no churn on day 1, no lifetime value");
    assert_eq!((clv[1].0, clv[1].1), (1_000.0, Some(15.218_437_5)));
    assert!(close(clv[1].2.unwrap(), 1_000.0 / 15.218_437_5));

    // A is erased; a churn recorded for it afterwards keeps a reason that is a code, never
    // words about the person (B's, recorded before any erasure, keeps its words).
    use baton_proto::{capture::v1::EraseLeadRequest, reporting::v1::GetLeadJourneyRequest};
    suite
        .capture()
        .await
        .erase_lead(EraseLeadRequest { lead_id: a.clone() })
        .await
        .unwrap();
    let reporting = suite.reporting().await;
    eventually("reporting applied the erasure", PATIENCE, || {
        let mut r = reporting.clone();
        let lead_id = a.clone();
        async move {
            let journey = r
                .get_lead_journey(GetLeadJourneyRequest { lead_id })
                .await
                .ok()?
                .into_inner();
            journey
                .entries
                .iter()
                .any(|e| e.kind == "personal_data_erased")
                .then_some(())
        }
    })
    .await;
    let gone = kpis
        .record_churn(RecordChurnRequest {
            idempotency_key: "churn-a-erased".into(),
            lead_id: a.clone(),
            churned_at: Some(time::to_proto(t0 + Span::days(3))),
            reason: "Left when Aiko Tanaka moved to a rival".into(),
        })
        .await
        .unwrap()
        .into_inner();
    assert_eq!(gone.churn_reason, "", "{gone:?}");
    assert_eq!(again.churn_reason, "budget cut");
    suite.stop().await;
    drop(fresh);
}

#[tokio::test]
async fn bad_spend_and_churn_requests_name_the_field_and_a_reused_request_id_is_refused() {
    let suite = TestSuite::start().await;
    let mut kpis = suite.kpis().await;
    let good = RecordSpendRequest {
        request_id: "s-1".into(),
        channel: "ads".into(),
        campaign: "winter".into(),
        start_day: "2026-11-01".into(),
        end_day: "2026-11-03".into(),
        amount: eur(30_000),
        recorded_by: "tester".into(),
    };
    let bad = |change: fn(&mut RecordSpendRequest)| {
        let mut r = good.clone();
        change(&mut r);
        r
    };
    for (request, field) in [
        (bad(|r| r.request_id.clear()), "request_id"),
        (bad(|r| r.channel.clear()), "channel"),
        (bad(|r| r.start_day = "2026-11-31".into()), "start_day"),
        (bad(|r| r.end_day = "2026-10-01".into()), "end_day"),
        (bad(|r| r.end_day = "2030-01-01".into()), "end_day"),
        (bad(|r| r.amount = eur(0)), "amount.amount_minor"),
        (
            bad(|r| r.amount = eur(1_000_000_000_000_001)),
            "amount.amount_minor",
        ),
        (bad(|r| r.amount = eur(i64::MAX)), "amount.amount_minor"),
        (bad(|r| r.amount = None), "amount"),
        (
            bad(|r| {
                r.amount = Some(Money {
                    currency_code: "XYZ".into(),
                    amount_minor: 5,
                })
            }),
            "amount.currency_code",
        ),
    ] {
        let err = kpis.record_spend(request).await.unwrap_err();
        assert_eq!(err.code(), Code::InvalidArgument);
        let fields: Vec<String> = err
            .get_details_bad_request()
            .unwrap()
            .field_violations
            .into_iter()
            .map(|v| v.field)
            .collect();
        assert_eq!(fields, [field]);
    }
    let first = kpis.record_spend(good.clone()).await.unwrap().into_inner();
    assert!(first.created);
    let again = kpis.record_spend(good.clone()).await.unwrap().into_inner();
    assert!(!again.created);
    assert_eq!(again.spend, first.spend);
    let other = kpis
        .record_spend(RecordSpendRequest {
            amount: eur(30_001),
            ..good.clone()
        })
        .await
        .unwrap_err();
    assert_eq!(other.code(), Code::AlreadyExists);
    // Nothing of the refused requests was stored: 300.00 EUR over the three days only.
    let s = kpis
        .get_kpis(GetKpisRequest {
            kpis: vec!["cost_per_lead".into()],
            start_time: Some(time::to_proto("2026-10-01T00:00:00Z".parse().unwrap())),
            end_time: Some(time::to_proto("2026-12-01T00:00:00Z".parse().unwrap())),
            granularity: Granularity::Whole as i32,
            ..Default::default()
        })
        .await
        .unwrap()
        .into_inner()
        .series;
    let p = &find(&s, "cost_per_lead", "EUR").points[0];
    assert_eq!(
        (p.numerator, p.denominator, p.value),
        (300.0, Some(0.0), None)
    );
    // Cost KPIs have only the source's dimensions.
    let err = kpis
        .get_kpis(GetKpisRequest {
            kpis: vec!["cost_per_lead".into()],
            start_time: Some(time::to_proto("2026-10-01T00:00:00Z".parse().unwrap())),
            end_time: Some(time::to_proto("2026-12-01T00:00:00Z".parse().unwrap())),
            granularity: Granularity::Whole as i32,
            group_by: vec!["industry".into()],
            ..Default::default()
        })
        .await
        .unwrap_err();
    assert_eq!(err.code(), Code::InvalidArgument);
    assert!(err.message().contains("cost_per_lead"), "{}", err.message());
    let err = kpis
        .record_churn(RecordChurnRequest::default())
        .await
        .unwrap_err();
    assert_eq!(err.code(), Code::InvalidArgument);
    let mut fields: Vec<String> = err
        .get_details_bad_request()
        .unwrap()
        .field_violations
        .into_iter()
        .map(|v| v.field)
        .collect();
    fields.sort();
    assert_eq!(
        fields,
        ["churned_at", "idempotency_key", "lead_id", "reason"]
    );
    suite.stop().await;
}

fn plan_request(key: &str, inputs: PlanInputs, t0: DateTime<Utc>) -> CreatePlanRequest {
    CreatePlanRequest {
        request_id: key.into(),
        name: format!("plan {key}"),
        start_time: Some(time::to_proto(t0 - Span::days(30))),
        end_time: Some(time::to_proto(t0 + Span::days(30))),
        inputs: Some(inputs),
        created_by: "tester".into(),
        ..Default::default()
    }
}

fn stage_numbers(p: &Plan) -> Vec<(i64, Option<f64>, i32, i64)> {
    p.derived
        .as_ref()
        .unwrap()
        .stages
        .iter()
        .map(|s| {
            (
                s.target,
                s.rate_to_next,
                s.rate_source,
                s.allowable_cost.as_ref().unwrap().amount_minor,
            )
        })
        .collect()
}

#[tokio::test]
async fn plans_work_the_mrr_back_and_progress_names_the_bottleneck_and_stagnant_leads() {
    let suite = TestSuite::start().await;
    let mut contracts = suite.contracts().await;
    let mut d = suite.distribution().await;
    let mut kpis = suite.kpis().await;
    let mut plans = suite.plans().await;
    approve_contract(&mut contracts, "deals", terms()).await;
    sales_floor(&mut d, "is-deals", "fs-deals", 1).await;
    let t0 = Utc::now().duration_trunc(Span::days(1)).unwrap();
    // The same three deals as above, and a fourth lead D, captured T0−20d and never touched.
    let _ = deal(
        &suite,
        1,
        t0 - Span::days(20),
        End::Won(1_200_000, 100_000, t0 - Span::days(8)),
    )
    .await;
    let _ = deal(
        &suite,
        2,
        t0 - Span::days(10),
        End::Won(600_000, 50_000, t0 - Span::days(4)),
    )
    .await;
    deal(&suite, 3, t0 - Span::days(5), End::Lost).await;
    let mut untouched = lead(4);
    untouched.captured_at = Some(time::to_proto(t0 - Span::days(20)));
    captured_id(&mut suite.capture().await, untouched).await;
    let span = (day(t0 - Span::days(30)), day(t0 + Span::days(1)));
    spend(
        &mut kpis,
        "s-eur",
        span,
        Money {
            currency_code: "EUR".into(),
            amount_minor: 32_000,
        },
    )
    .await;
    // Wait until every fact is in: 2 wins.
    let whole = GetKpisRequest {
        kpis: vec!["wins".into(), "leads".into()],
        start_time: Some(time::to_proto(t0 - Span::days(30))),
        end_time: Some(time::to_proto(t0 + Span::days(2))),
        granularity: Granularity::Whole as i32,
        ..Default::default()
    };
    kpis_when(&kpis, "facts applied", &whole, |s| {
        first_numerator(s, "wins") == Some(2.0) && first_numerator(s, "leads") == Some(4.0)
    })
    .await;

    // The funnel by channel and team (each lead's values now): the three deals on ads, worked by
    // is-deals; D on web_form, never assigned.
    let funnel = suite
        .reporting()
        .await
        .get_funnel(GetFunnelRequest {
            start_time: whole.start_time,
            end_time: whole.end_time,
            group_by: vec!["channel".into(), "team".into()],
        })
        .await
        .unwrap()
        .into_inner();
    let steps = |g: &FunnelGroup| {
        (
            g.group["channel"].clone(),
            g.group["team"].clone(),
            [
                g.leads,
                g.mqls,
                g.assignments,
                g.sqls,
                g.opportunities,
                g.won,
            ],
        )
    };
    assert_eq!(
        funnel.groups.iter().map(steps).collect::<Vec<_>>(),
        [
            ("ads".to_owned(), "is-deals".to_owned(), [3, 3, 3, 0, 3, 2]),
            ("web_form".to_owned(), String::new(), [1, 0, 0, 0, 0, 0]),
        ]
    );
    assert_eq!((funnel.leads, funnel.won), (4, 2), "the totals");
    let err = suite
        .reporting()
        .await
        .get_funnel(GetFunnelRequest {
            start_time: whole.start_time,
            end_time: whole.end_time,
            group_by: vec!["colour".into()],
        })
        .await
        .unwrap_err();
    assert_eq!(invalid_fields(&err), ["group_by[0]"]);

    // Plan B takes lead→MQL and opportunity→won from history [T0−30d, T0+2d): 3 MQLs of the 4
    // leads (75 %), 2 won of the 3 handed off (66.666667 %). No lead became SQL, so MQL→SQL
    // cannot come from history.
    let history = PlanInputs {
        target_mrr: eur(300_000),
        arpa: eur(50_000),
        existing_customers: 2,
        expected_churned_customers: Some(1),
        monthly_gross_profit_per_customer: eur(20_000),
        payback_months: 6.0,
        rates: Some(StageRates {
            sql_to_opportunity: Some(50.0),
            ..Default::default()
        }),
        history_start_time: whole.start_time,
        history_end_time: whole.end_time,
        ..Default::default()
    };
    let refused = plans
        .create_plan(plan_request("b", history.clone(), t0))
        .await
        .unwrap_err();
    assert_eq!(refused.code(), Code::FailedPrecondition);
    assert!(
        refused.message().contains("rates_from_history"),
        "{refused:?}"
    );
    let history = PlanInputs {
        rates: Some(StageRates {
            mql_to_sql: Some(50.0),
            sql_to_opportunity: Some(50.0),
            ..Default::default()
        }),
        ..history
    };
    let b = plans
        .create_plan(plan_request("b", history, t0))
        .await
        .unwrap()
        .into_inner();
    // 3,000 / 500 = 6 customers; 6 − 2 + 1 = 5 new = 5 won deals; 5 / 66.666667 % = 7.4999...
    // → 8 opportunities; / 50 % = 16 SQLs; / 50 % = 32 MQLs; / 75 % = 42.67 → 43 leads.
    let derived = b.derived.clone().unwrap();
    assert_eq!(
        (
            derived.required_customers,
            derived.churned_customers,
            derived.required_new_customers
        ),
        (6, 1, 5)
    );
    // Allowable: won 200 × 6 = 1,200 EUR; opportunity 1,200 × 66.666667 % = 800; SQL 400; MQL
    // 200; lead 200 × 75 % = 150.
    let (given, hist) = (RateSource::Given as i32, RateSource::History as i32);
    assert_eq!(
        stage_numbers(&b),
        [
            (43, Some(75.0), hist, 15_000),
            (32, Some(50.0), given, 20_000),
            (16, Some(50.0), given, 40_000),
            (8, Some(66.666667), hist, 80_000),
            (5, None, RateSource::Unspecified as i32, 120_000),
        ]
    );
    let cohort = |i: usize| {
        let s = &derived.stages[i];
        (s.history_numerator, s.history_denominator)
    };
    assert_eq!(cohort(0), (Some(3.0), Some(4.0)));
    assert_eq!(cohort(3), (Some(2.0), Some(3.0)));

    // Plan A: 1,500 / 500 = 3 customers, none yet: 3 of every stage at 100 %; 100 EUR of gross
    // profit × 3 months = 300 EUR allowable at every stage. Stagnation: 7 days as a lead.
    let a_inputs = PlanInputs {
        target_mrr: eur(150_000),
        arpa: eur(50_000),
        monthly_gross_profit_per_customer: eur(10_000),
        payback_months: 3.0,
        rates: Some(StageRates {
            lead_to_mql: Some(100.0),
            mql_to_sql: Some(100.0),
            sql_to_opportunity: Some(100.0),
            opportunity_to_won: Some(100.0),
        }),
        max_dwell: vec![StageDwell {
            stage: "lead".into(),
            max_days: 7.0,
        }],
        ..Default::default()
    };
    let a = plans
        .create_plan(plan_request("a", a_inputs.clone(), t0))
        .await
        .unwrap()
        .into_inner();
    assert!(stage_numbers(&a).iter().all(|s| s.0 == 3 && s.3 == 30_000));
    // At T0+1d, 31 of the period's 60 days are gone: 3 × 31/60 = 1.55 expected of each. Leads 4
    // (258.06 %), MQLs 3, SQLs 0 (0 %: the bottleneck, starving opportunities and won deals),
    // opportunities 3, won 2 (129.03 %). Spend so far: the 31 days T0−30d..T0 at 10 EUR, 310 EUR.
    let progress = plans
        .get_plan_progress(GetPlanProgressRequest {
            plan_id: a.plan_id.clone(),
            as_of: Some(time::to_proto(t0 + Span::days(1))),
        })
        .await
        .unwrap()
        .into_inner();
    assert!(close(progress.elapsed, 31.0 / 60.0));
    let actual: Vec<i64> = progress.stages.iter().map(|s| s.actual).collect();
    assert_eq!(actual, [4, 3, 0, 3, 2]);
    for s in &progress.stages {
        assert!(close(s.expected_to_date, 1.55));
        let fill = s.fill_rate.unwrap();
        assert!(close(fill, s.actual as f64 / 1.55 * 100.0), "{s:?}");
        assert!(close(s.projected.unwrap(), s.actual as f64 * 60.0 / 31.0));
    }
    let costs: Vec<Option<i64>> = progress
        .stages
        .iter()
        .map(|s| s.actual_cost.as_ref().map(|m| m.amount_minor))
        .collect();
    // 31,000 / 4 = 7,750; / 3 = 10,333.33 → 10,333; no SQL; / 3; / 2 = 15,500.
    assert_eq!(
        costs,
        [Some(7_750), Some(10_333), None, Some(10_333), Some(15_500)]
    );
    let bottleneck = progress.bottleneck.unwrap();
    assert_eq!(
        (
            bottleneck.stage,
            bottleneck.fill_rate,
            bottleneck.alert_threshold
        ),
        (PlanStage::Sqls as i32, 0.0, 80.0)
    );
    assert_eq!(
        bottleneck.starves,
        [PlanStage::Opportunities as i32, PlanStage::WonDeals as i32]
    );
    // D has been a lead since T0−20d: 21 days at T0+1d, no team yet.
    assert_eq!(progress.stagnation.len(), 1, "{:?}", progress.stagnation);
    let s = &progress.stagnation[0];
    assert_eq!(
        (s.stage.as_str(), s.owner_team.as_str(), s.leads),
        ("lead", "", 1)
    );
    assert!(close(s.oldest_days, 21.0));

    // Versions: a new version of A; the first stays readable; lists show the latest of each.
    let a2 = plans
        .create_plan(CreatePlanRequest {
            plan_id: a.plan_id.clone(),
            ..plan_request(
                "a-2",
                PlanInputs {
                    payback_months: 6.0,
                    ..a_inputs.clone()
                },
                t0,
            )
        })
        .await
        .unwrap()
        .into_inner();
    assert_eq!((a2.plan_id.as_str(), a2.version), (a.plan_id.as_str(), 2));
    assert!(stage_numbers(&a2).iter().all(|s| s.3 == 60_000));
    let first = plans
        .get_plan(GetPlanRequest {
            plan_id: a.plan_id.clone(),
            version: 1,
        })
        .await
        .unwrap()
        .into_inner();
    assert_eq!(first, a);
    let listed = plans
        .list_plans(ListPlansRequest {})
        .await
        .unwrap()
        .into_inner()
        .plans;
    let mut versions: Vec<(String, i32)> = listed
        .iter()
        .map(|p| (p.plan_id.clone(), p.version))
        .collect();
    versions.sort();
    let mut want = vec![(a.plan_id.clone(), 2), (b.plan_id.clone(), 1)];
    want.sort();
    assert_eq!(versions, want);
    // The same request again answers the same plan; its id for another plan is refused.
    let again = plans
        .create_plan(plan_request("a", a_inputs.clone(), t0))
        .await
        .unwrap()
        .into_inner();
    assert_eq!(again, a);
    let reused = plans
        .create_plan(plan_request(
            "a",
            PlanInputs {
                payback_months: 9.0,
                ..a_inputs.clone()
            },
            t0,
        ))
        .await
        .unwrap_err();
    assert_eq!(reused.code(), Code::AlreadyExists);

    // Bad input names the field; nothing is stored.
    let bad = |change: fn(&mut PlanInputs)| {
        let mut inputs = a_inputs.clone();
        change(&mut inputs);
        plan_request("bad", inputs, t0)
    };
    for (request, field) in [
        (
            bad(|i| i.rates.as_mut().unwrap().lead_to_mql = Some(0.0)),
            "inputs.rates.lead_to_mql",
        ),
        (
            bad(|i| i.rates.as_mut().unwrap().mql_to_sql = Some(120.0)),
            "inputs.rates.mql_to_sql",
        ),
        (bad(|i| i.payback_months = 0.0), "inputs.payback_months"),
        (
            bad(|i| {
                i.arpa = Some(Money {
                    currency_code: "USD".into(),
                    amount_minor: 50_000,
                })
            }),
            "inputs.arpa.currency_code",
        ),
        (bad(|i| i.churn_rate = Some(-1.0)), "inputs.churn_rate"),
        (
            bad(|i| i.max_dwell[0].stage = "limbo".into()),
            "inputs.max_dwell[0].stage",
        ),
    ] {
        let err = plans.create_plan(request).await.unwrap_err();
        assert_eq!(invalid_fields(&err), [field]);
    }
    let missing = plans
        .get_plan(GetPlanRequest {
            plan_id: "no-such-plan".into(),
            version: 0,
        })
        .await
        .unwrap_err();
    assert_eq!(missing.code(), Code::NotFound);
    let unknown_version = plans
        .create_plan(CreatePlanRequest {
            plan_id: "no-such-plan".into(),
            ..plan_request("c", a_inputs.clone(), t0)
        })
        .await
        .unwrap_err();
    assert_eq!(unknown_version.code(), Code::NotFound);
    let early = plans
        .get_plan_progress(GetPlanProgressRequest {
            plan_id: a.plan_id.clone(),
            as_of: Some(time::to_proto(t0 - Span::days(60))),
        })
        .await
        .unwrap_err();
    assert_eq!(invalid_fields(&early), ["as_of"]);
    assert_eq!(
        plans
            .list_plans(ListPlansRequest {})
            .await
            .unwrap()
            .into_inner()
            .plans
            .len(),
        2
    );
    suite.stop().await;
}
