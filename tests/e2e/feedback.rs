//! What FS's verdicts teach, through all five services over real sockets: the win factors of a
//! team pair's handed-off leads with counts, lift and Wilson intervals computed by hand, a draft
//! scoring model made from them that SimulateModel judges by won deals, and a lead's journal listing every decision about it in order, kept without personal data after
//! erasure.

use baton_shared::testing::as_user;
use std::time::Duration;

use baton_e2e::{
    TestSuite, eventually, lead,
    sales::{approve_contract, ready_lead, sales_floor},
};
use baton_proto::{
    capture::v1::{Company, EraseLeadRequest, Money},
    distribution::v1::{
        AcceptHandoffRequest, CreateHandoffRequest, RecordOutcomeRequest, RejectHandoffRequest,
    },
    qualification::v1::{
        ListScoringModelsRequest, ModelStatus, SimulateModelRequest, SimulationPeriod,
        simulate_model_request,
    },
    reporting::v1::{
        DraftModelFromOutcomesRequest, GetLeadJourneyRequest, GetWinFactorsRequest, WinFactor,
        WinFactors,
    },
};
use baton_shared::time;
use chrono::Utc;
use tonic::Code;

const PATIENCE: Duration = Duration::from_secs(60);

fn factor<'a>(f: &'a WinFactors, dimension: &str, value: &str) -> &'a WinFactor {
    f.factors
        .iter()
        .find(|x| x.dimension == dimension && x.value == value)
        .unwrap_or_else(|| panic!("no {dimension}={value} in {:?}", f.factors))
}

fn round(v: Option<f64>) -> Option<f64> {
    v.map(|v| (v * 100.0).round() / 100.0)
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn win_factors_by_segment_and_a_leads_journal_are_computed_from_the_verdicts() {
    let suite = TestSuite::start().await;
    let mut contracts = suite.contracts().await;
    let mut d = suite.distribution().await;
    let mut capture = suite.capture().await;
    sales_floor(&mut d, "is-tokyo", "fs-tokyo", 1).await;
    let mut terms = baton_shared::contract::example_terms(
        "is-tokyo",
        "fs-tokyo",
        "is-lead@example.co.jp",
        "fs-lead@example.co.jp",
    );
    terms.period_start = Some(time::to_proto(Utc::now() - chrono::Duration::days(1)));
    approve_contract(&mut contracts, "tokyo", terms).await;

    // Six leads: 0-3 retail, 4-5 finance. Retail: 0, 1 and 2 won (¥1,000,000 each), 3 rejected;
    // finance: 4 and 5 lost.
    let mut leads = Vec::new();
    for n in 0..6 {
        let mut request = lead(n);
        request.company = Some(Company {
            name: format!("Company {n}"),
            // Companies are matched by web domain: one each.
            web_domain: format!("company{n}.example"),
            industry: if n < 4 { "retail" } else { "finance" }.into(),
            country: "JP".into(),
            ..Default::default()
        });
        let id = ready_lead(&suite, n, request).await;
        leads.push(id);
    }
    let (is0, fs0) = ("is0@example.co.jp", "fs0@example.co.jp");
    let from = Utc::now() - chrono::Duration::hours(1);
    let mut handoffs = Vec::new();
    for (n, id) in leads.iter().enumerate() {
        let h = eventually("contract replicated", PATIENCE, || {
            let mut d = d.clone();
            let lead_id = id.clone();
            async move {
                d.create_handoff(as_user(
                    is0,
                    CreateHandoffRequest {
                        request_id: format!("h-{n}"),
                        lead_id,
                        is_team: "is-tokyo".into(),
                        fs_team: "fs-tokyo".into(),
                        meeting_at: Some(time::to_proto(Utc::now() + chrono::Duration::days(2))),
                        ..Default::default()
                    },
                ))
                .await
                .ok()
                .map(|r| r.into_inner())
            }
        })
        .await;
        handoffs.push(h);
    }
    for (n, h) in handoffs.iter().enumerate() {
        if n == 3 {
            d.reject_handoff(as_user(
                fs0,
                RejectHandoffRequest {
                    handoff_id: h.handoff_id.clone(),
                    reason_code: "no_budget".into(),
                    decided_by: fs0.into(),
                    ..Default::default()
                },
            ))
            .await
            .unwrap();
            continue;
        }
        d.accept_handoff(as_user(
            fs0,
            AcceptHandoffRequest {
                handoff_id: h.handoff_id.clone(),
                decided_by: fs0.into(),
            },
        ))
        .await
        .unwrap();
        let won = n < 3;
        d.record_outcome(as_user(
            fs0,
            RecordOutcomeRequest {
                handoff_id: h.handoff_id.clone(),
                won,
                lost_reason: if won {
                    String::new()
                } else {
                    "went quiet".into()
                },
                amount: won.then(|| Money {
                    currency_code: "JPY".into(),
                    amount_minor: 1_000_000,
                }),
                recorded_by: fs0.into(),
                ..Default::default()
            },
        ))
        .await
        .unwrap();
    }
    let request = GetWinFactorsRequest {
        is_team: "is-tokyo".into(),
        fs_team: "fs-tokyo".into(),
        start_time: Some(time::to_proto(from)),
        end_time: Some(time::to_proto(Utc::now() + chrono::Duration::hours(1))),
        min_sample: 3,
        score_band_width: 0,
    };
    let f = eventually("every verdict counted", PATIENCE, || {
        let mut c = contracts.clone();
        let request = request.clone();
        async move {
            let f = c.get_win_factors(request).await.ok()?.into_inner();
            (f.decided == 6).then_some(f)
        }
    })
    .await;
    // Overall: 3 won of 6 decided = 50 %.
    assert_eq!(
        (f.won, f.decided, round(f.win_rate_pct)),
        (3, 6, Some(50.0))
    );
    // Retail: 3 of 4 = 75 %, lift 1.5, Wilson 95 % [30.06 %, 95.44 %].
    let retail = factor(&f, "industry", "retail");
    assert_eq!((retail.won, retail.decided), (3, 4));
    assert_eq!(round(retail.lift), Some(1.5));
    assert_eq!(
        (
            round(retail.interval_low_pct),
            round(retail.interval_high_pct)
        ),
        (Some(30.06), Some(95.44))
    );
    assert!(!retail.small_sample);
    // Finance: 0 of 2 = 0 %, lift 0, Wilson [0 %, 65.76 %], fewer than 3: flagged.
    let finance = factor(&f, "industry", "finance");
    assert_eq!(
        (finance.won, finance.decided, round(finance.lift)),
        (0, 2, Some(0.0))
    );
    assert_eq!(
        (
            round(finance.interval_low_pct),
            round(finance.interval_high_pct)
        ),
        (Some(0.0), Some(65.76))
    );
    assert!(finance.small_sample);
    // BANT at handoff: budget and need confirmed on all six, authority on none.
    assert_eq!(factor(&f, "bant.budget", "confirmed").decided, 6);
    assert_eq!(factor(&f, "bant.authority", "not_confirmed").decided, 6);
    assert_eq!(factor(&f, "channel", "web_form").decided, 6);
    let bad = contracts
        .get_win_factors(GetWinFactorsRequest {
            min_sample: -1,
            ..request.clone()
        })
        .await
        .unwrap_err();
    assert_eq!(
        baton_e2e::invalid_fields(&bad),
        vec!["min_sample".to_owned()]
    );

    // A draft model from the verdicts (finance counted too with a sample of 2), at most 15 points
    // a rule: retail gains (1.5 - 1) × 20 = 10 points, finance would lose (0 - 1) × 20 = 20 and
    // loses 15; country and channel (lift 1) give no rule.
    let drafted = contracts
        .draft_model_from_outcomes(as_user(
            "marketing@example.co.jp",
            DraftModelFromOutcomesRequest {
                factors: Some(GetWinFactorsRequest {
                    min_sample: 2,
                    ..request.clone()
                }),
                min_lift: 0.0,
                points_per_lift: 0,
                max_points: 15,
            },
        ))
        .await
        .unwrap()
        .into_inner();
    let rules: Vec<(&str, i64)> = drafted
        .rules
        .iter()
        .map(|r| (r.rule_key.as_str(), r.points))
        .collect();
    assert_eq!(
        rules,
        vec![
            ("outcome_industry_retail", 10),
            ("outcome_industry_finance", -15)
        ]
    );
    let model = drafted.model.unwrap();
    assert_eq!(model.status, ModelStatus::Draft as i32);
    assert_eq!(model.created_by, "marketing@example.co.jp");
    let keys: Vec<&str> = model
        .definition
        .as_ref()
        .unwrap()
        .rules
        .iter()
        .map(|r| r.key.as_str())
        .collect();
    assert!(keys.contains(&"meeting_booked") && keys.contains(&"outcome_industry_retail"));

    // SimulateModel says what each model's MQLs became. The active one: all six leads reach 50
    // points, 3 won (¥3,000,000) and 2 lost = 60 %. The draft: retail leads reach 60, finance
    // ones 35 (under the threshold of 50): 4 MQLs, 3 won, none lost = 100 %.
    let mut q = suite.qualification().await;
    let simulate = |model_id: String| SimulateModelRequest {
        model: Some(simulate_model_request::Model::ModelId(model_id)),
        start_time: Some(time::to_proto(from)),
        end_time: Some(time::to_proto(Utc::now() + chrono::Duration::hours(1))),
        period: SimulationPeriod::Week as i32,
    };
    let active_id = q
        .list_scoring_models(ListScoringModelsRequest::default())
        .await
        .unwrap()
        .into_inner()
        .models
        .into_iter()
        .find(|m| m.status == ModelStatus::Active as i32)
        .unwrap()
        .model_id;
    let now = q
        .simulate_model(simulate(active_id))
        .await
        .unwrap()
        .into_inner()
        .total
        .unwrap();
    assert_eq!((now.mqls, now.won, now.lost), (6, 3, 2));
    assert_eq!(round(now.win_rate_pct), Some(60.0));
    assert_eq!(
        now.won_amount,
        vec![Money {
            currency_code: "JPY".into(),
            amount_minor: 3_000_000
        }]
    );
    let draft = q
        .simulate_model(simulate(model.model_id.clone()))
        .await
        .unwrap()
        .into_inner()
        .total
        .unwrap();
    assert_eq!((draft.mqls, draft.won, draft.lost), (4, 3, 0));
    assert_eq!(round(draft.win_rate_pct), Some(100.0));
    let nothing = contracts
        .draft_model_from_outcomes(DraftModelFromOutcomesRequest {
            factors: Some(request.clone()),
            min_lift: 100.0,
            points_per_lift: 0,
            max_points: 0,
        })
        .await
        .unwrap_err();
    assert!(
        nothing.message().contains("nothing_to_draft"),
        "{nothing:?}"
    );

    // Lead 3's journal, in order: captured, MQL, assigned, handed off, rejected.
    let reporting = suite.reporting().await;
    let journal = |lead_id: String| {
        let mut r = reporting.clone();
        async move {
            r.get_lead_journey(GetLeadJourneyRequest { lead_id })
                .await
                .map(|j| j.into_inner())
        }
    };
    let j = eventually("journal complete", PATIENCE, || {
        let lead_id = leads[3].clone();
        async move {
            let j = journal(lead_id).await.ok()?;
            j.entries
                .iter()
                .any(|e| e.kind == "handoff.rejected")
                .then_some(j)
        }
    })
    .await;
    let kinds: Vec<&str> = j.entries.iter().map(|e| e.kind.as_str()).collect();
    let at = |k: &str| {
        kinds
            .iter()
            .position(|x| *x == k)
            .unwrap_or_else(|| panic!("{k} in {kinds:?}"))
    };
    assert!(at("captured") < at("stage_changed"));
    assert!(at("stage_changed") < at("assigned"));
    assert!(at("assigned") < at("handoff.created"));
    assert!(at("handoff.created") < at("handoff.rejected"));
    let rejected = &j.entries[at("handoff.rejected")];
    assert_eq!(rejected.actor, fs0);
    assert_eq!(
        rejected.details.get("reason").map(String::as_str),
        Some("no_budget")
    );
    let mql = j
        .entries
        .iter()
        .find(|e| {
            e.kind == "stage_changed" && e.details.get("to").map(String::as_str) == Some("mql")
        })
        .expect("the move to MQL");
    assert!(mql.details.contains_key("model_version"), "{mql:?}");
    let assignment = &j.entries[at("assigned")];
    assert_eq!(
        assignment.details.get("rule").map(String::as_str),
        Some("all_to_inside_sales")
    );
    let times: Vec<_> = j
        .entries
        .iter()
        .map(|e| time::from_proto(e.at.as_ref().unwrap()).unwrap())
        .collect();
    assert!(times.windows(2).all(|w| w[0] <= w[1]), "in time order");

    // Erased: the journal stays, without personal data, and says so.
    capture
        .erase_lead(EraseLeadRequest {
            lead_id: leads[3].clone(),
        })
        .await
        .unwrap();
    let erased = eventually("erasure in the journal", PATIENCE, || {
        let lead_id = leads[3].clone();
        async move {
            let j = journal(lead_id).await.ok()?;
            j.entries
                .iter()
                .any(|e| e.kind == "personal_data_erased")
                .then_some(j)
        }
    })
    .await;
    assert_eq!(erased.entries.len(), j.entries.len() + 1);
    let text = format!("{erased:?}");
    assert!(
        !text.contains("lead3@example.co.jp") && !text.contains("Lead3"),
        "{text}"
    );
    let missing = journal("no-such-lead".into()).await.unwrap_err();
    assert_eq!(missing.code(), Code::NotFound);
    suite.stop().await;
}
