//! A contract's attainment through all five services, over real sockets: six leads handed from IS
//! to FS under a contract, decided, won and lost through distribution's API, and every target of
//! both sides read back from reporting with numbers computed by hand, in total and per rep; a
//! decision SLA that runs out counts against FS; a watch sees an outcome arrive.

use baton_shared::testing::as_user;
use std::time::Duration;

use baton_e2e::{
    TestSuite, eventually, lead,
    sales::{approve_contract, ready_lead, sales_floor},
};
use baton_proto::{
    capture::v1::Money,
    distribution::v1::{
        AcceptHandoffRequest, CreateHandoffRequest, Handoff, RecordOutcomeRequest,
        RejectHandoffRequest, distribution_service_client::DistributionServiceClient,
    },
    reporting::v1::{
        Attainment, AttainmentStatus, ContractSide, ContractTerms, GetAttainmentRequest,
        TargetAttainment, contract_service_client::ContractServiceClient,
    },
};
use baton_shared::{ServiceName, peer::AuthChannel, time};
use chrono::{DateTime, Utc};
use tonic::Code;

const PATIENCE: Duration = Duration::from_secs(60);
const IS_OWNER: &str = "is-lead@example.co.jp";
const FS_OWNER: &str = "fs-lead@example.co.jp";

/// The example contract over ten days from `start`, one period, with targets easy to check.
fn terms(start: DateTime<Utc>) -> ContractTerms {
    let mut t = baton_shared::contract::example_terms("is-tokyo", "fs-tokyo", IS_OWNER, FS_OWNER);
    t.period_start = Some(time::to_proto(start));
    t.period_end = Some(time::to_proto(start + chrono::Duration::days(10)));
    let is = t.is_targets.as_mut().unwrap();
    is.handoffs_per_period = 10;
    is.valid_leads_per_period = 10;
    t
}

async fn hand_off(
    d: &mut DistributionServiceClient<AuthChannel>,
    n: usize,
    lead_id: &str,
    by: &str,
) -> Handoff {
    d.create_handoff(as_user(
        by,
        CreateHandoffRequest {
            request_id: format!("h-{n}"),
            lead_id: lead_id.into(),
            is_team: "is-tokyo".into(),
            fs_team: "fs-tokyo".into(),
            meeting_at: Some(time::to_proto(Utc::now() + chrono::Duration::days(2))),
            notes: "Demo booked".into(),
            ..Default::default()
        },
    ))
    .await
    .unwrap()
    .into_inner()
}

async fn accept(d: &mut DistributionServiceClient<AuthChannel>, h: &Handoff, by: &str) {
    d.accept_handoff(as_user(
        by,
        AcceptHandoffRequest {
            handoff_id: h.handoff_id.clone(),
            decided_by: by.into(),
        },
    ))
    .await
    .unwrap();
}

async fn outcome(
    d: &mut DistributionServiceClient<AuthChannel>,
    h: &Handoff,
    by: &str,
    won_jpy: Option<i64>,
) {
    d.record_outcome(as_user(
        by,
        RecordOutcomeRequest {
            handoff_id: h.handoff_id.clone(),
            won: won_jpy.is_some(),
            lost_reason: if won_jpy.is_some() {
                String::new()
            } else {
                "chose a competitor".into()
            },
            amount: won_jpy.map(|amount_minor| Money {
                currency_code: "JPY".into(),
                amount_minor,
            }),
            recorded_by: by.into(),
            ..Default::default()
        },
    ))
    .await
    .unwrap();
}

/// The attainment, once `ready` says reporting has caught up.
async fn attainment_when(
    contracts: &ContractServiceClient<AuthChannel>,
    request: GetAttainmentRequest,
    ready: impl Fn(&Attainment) -> bool,
) -> Attainment {
    eventually("attainment caught up", PATIENCE, || {
        let mut c = contracts.clone();
        let request = request.clone();
        let ready = &ready;
        async move {
            let a = c.get_attainment(request).await.ok()?.into_inner();
            ready(&a).then_some(a)
        }
    })
    .await
}

fn target<'a>(targets: &'a [TargetAttainment], name: &str) -> &'a TargetAttainment {
    targets
        .iter()
        .find(|t| t.target == name)
        .unwrap_or_else(|| panic!("no target {name} in {targets:?}"))
}

/// (numerator, denominator, actual, status) of a target.
fn numbers(targets: &[TargetAttainment], name: &str) -> (i64, i64, Option<f64>, AttainmentStatus) {
    let t = target(targets, name);
    (
        t.numerator,
        t.denominator,
        t.actual.map(|v| (v * 100.0).round() / 100.0),
        AttainmentStatus::try_from(t.status).unwrap(),
    )
}

fn handoffs_of(a: &Attainment) -> i64 {
    target(&a.targets, "handoffs").numerator
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn attainment_of_both_sides_is_computed_by_hand_in_total_and_per_rep() {
    use AttainmentStatus::*;
    let suite = TestSuite::start().await;
    let mut contracts = suite.contracts().await;
    let mut d = suite.distribution().await;
    let start = Utc::now() - chrono::Duration::days(1);
    let contract_id = approve_contract(&mut contracts, "tokyo", terms(start)).await;
    sales_floor(&mut d, "is-tokyo", "fs-tokyo", 2).await;

    // Six MQLs, each with budget and need confirmed in qualification.
    let mut leads = Vec::new();
    for n in 0..6 {
        leads.push(ready_lead(&suite, n, lead(n)).await);
    }

    // is0 hands off leads 0-3, is1 leads 4-5. FS: h0 accepted by fs0 and won (¥1,000,000),
    // h1 accepted by fs0 and lost, h2 rejected by fs1 (no budget), h3 accepted by fs1 (open),
    // h4 not decided, h5 accepted by fs0 and won (¥500,000).
    let (is0, is1, fs0, fs1) = (
        "is0@example.co.jp",
        "is1@example.co.jp",
        "fs0@example.co.jp",
        "fs1@example.co.jp",
    );
    let mut h = Vec::new();
    for (n, id) in leads.iter().enumerate() {
        h.push(hand_off(&mut d, n, id, if n < 4 { is0 } else { is1 }).await);
    }
    accept(&mut d, &h[0], fs0).await;
    outcome(&mut d, &h[0], fs0, Some(1_000_000)).await;
    accept(&mut d, &h[1], fs0).await;
    outcome(&mut d, &h[1], fs0, None).await;
    d.reject_handoff(as_user(
        fs1,
        RejectHandoffRequest {
            handoff_id: h[2].handoff_id.clone(),
            reason_code: "no_budget".into(),
            note: "Frozen until April".into(),
            decided_by: fs1.into(),
        },
    ))
    .await
    .unwrap();
    accept(&mut d, &h[3], fs1).await;
    accept(&mut d, &h[5], fs0).await;
    outcome(&mut d, &h[5], fs0, Some(500_000)).await;

    // Halfway through the period (5 of 10 days): counts project to twice what they are.
    let half = GetAttainmentRequest {
        contract_id: contract_id.clone(),
        as_of: Some(time::to_proto(start + chrono::Duration::days(5))),
        group_by: vec!["rep".into()],
        ..Default::default()
    };
    let a = attainment_when(&contracts, half.clone(), |a| {
        target(&a.targets, "won_amount").numerator == 1_500_000
            && target(&a.targets, "accepted_rate").denominator == 5
    })
    .await;
    assert_eq!(a.contract_version, 1);
    let t = &a.targets;
    // handoffs 6 → projected 12 ≥ 10.
    assert_eq!(numbers(t, "handoffs"), (6, 0, Some(6.0), OnTrack));
    assert_eq!(target(t, "handoffs").projected, Some(12.0));
    // valid leads: h0, h1, h3, h5 → projected 8 < 10.
    assert_eq!(numbers(t, "valid_leads"), (4, 0, Some(4.0), AtRisk));
    // accepted 4 of 5 decided = 80 % ≥ 70 %.
    assert_eq!(numbers(t, "accepted_rate"), (4, 5, Some(80.0), OnTrack));
    // IS win rate: 2 won of 2 won + 1 lost + 1 rejected = 50 % ≥ 25 %.
    assert_eq!(numbers(t, "win_rate"), (2, 4, Some(50.0), OnTrack));
    // ¥1,500,000 → projected ¥3,000,000 < ¥50,000,000.
    assert_eq!(
        numbers(t, "won_amount"),
        (1_500_000, 0, Some(1_500_000.0), AtRisk)
    );
    assert_eq!(target(t, "won_amount").currency_code, "JPY");
    // FS: 5 decisions due, all within 48 h.
    assert_eq!(
        numbers(t, "decision_sla_adherence"),
        (5, 5, Some(100.0), OnTrack)
    );
    assert_eq!(
        numbers(t, "reason_on_every_rejection"),
        (1, 1, Some(100.0), OnTrack)
    );
    // FS win rate of accepted: 2 won of 2 won + 1 lost.
    assert_eq!(
        numbers(t, "win_rate_of_accepted"),
        (2, 3, Some(66.67), OnTrack)
    );
    assert_eq!(numbers(t, "dispute_ruling_adherence"), (0, 0, None, NoData));
    assert_eq!(target(t, "handoffs").side, ContractSide::InsideSales as i32);

    // Per rep: IS targets by who handed off, FS targets by who decided ("" = nobody yet).
    let rep = |name: &str, side: ContractSide| {
        a.reps
            .iter()
            .find(|r| r.rep == name && r.side == side as i32)
            .unwrap_or_else(|| panic!("no {name} in {:?}", a.reps))
            .targets
            .clone()
    };
    let r = rep(is0, ContractSide::InsideSales);
    assert_eq!(numbers(&r, "handoffs").0, 4);
    assert_eq!(numbers(&r, "accepted_rate"), (3, 4, Some(75.0), OnTrack));
    assert_eq!(numbers(&r, "win_rate"), (1, 3, Some(33.33), OnTrack));
    assert_eq!(numbers(&r, "won_amount").0, 1_000_000);
    let r = rep(is1, ContractSide::InsideSales);
    assert_eq!(numbers(&r, "handoffs").0, 2);
    assert_eq!(numbers(&r, "accepted_rate"), (1, 1, Some(100.0), OnTrack));
    assert_eq!(numbers(&r, "win_rate"), (1, 1, Some(100.0), OnTrack));
    let r = rep(fs0, ContractSide::FieldSales);
    assert_eq!(
        numbers(&r, "decision_sla_adherence"),
        (3, 3, Some(100.0), OnTrack)
    );
    assert_eq!(
        numbers(&r, "reason_on_every_rejection"),
        (0, 0, None, NoData)
    );
    assert_eq!(
        numbers(&r, "win_rate_of_accepted"),
        (2, 3, Some(66.67), OnTrack)
    );
    let r = rep(fs1, ContractSide::FieldSales);
    assert_eq!(
        numbers(&r, "decision_sla_adherence"),
        (2, 2, Some(100.0), OnTrack)
    );
    assert_eq!(
        numbers(&r, "reason_on_every_rejection"),
        (1, 1, Some(100.0), OnTrack)
    );
    assert_eq!(numbers(&r, "win_rate_of_accepted"), (0, 0, None, NoData));
    assert_eq!(
        a.reps
            .iter()
            .filter(|r| r.side == ContractSide::FieldSales as i32)
            .count(),
        3,
        "fs0, fs1 and nobody (h4, undecided)"
    );

    // After the period: counts and rates are judged as they stand.
    let after = GetAttainmentRequest {
        as_of: Some(time::to_proto(start + chrono::Duration::days(11))),
        group_by: vec![],
        ..half.clone()
    };
    let a = contracts.get_attainment(after).await.unwrap().into_inner();
    assert!(a.reps.is_empty());
    assert_eq!(numbers(&a.targets, "handoffs").3, Missed);
    assert_eq!(numbers(&a.targets, "accepted_rate").3, Met);
    assert_eq!(numbers(&a.targets, "win_rate_of_accepted").3, Met);

    // h4's decision SLA runs out with nobody deciding: a person held it.
    {
        use baton_distribution::store::entities::sla_timer;
        use sea_orm::{ColumnTrait, EntityTrait, QueryFilter, sea_query::Expr};
        let url = suite.database_url(ServiceName::Distribution);
        let settings = baton_shared::Settings::defaults().unwrap();
        let db = baton_shared::db::connect(&url, &settings.database)
            .await
            .unwrap();
        sla_timer::Entity::update_many()
            .col_expr(
                sla_timer::Column::DueAt,
                Expr::value(Utc::now() - chrono::Duration::minutes(1)),
            )
            .filter(sla_timer::Column::SubjectId.eq(h[4].handoff_id.as_str()))
            .exec(&db)
            .await
            .unwrap();
        db.close().await.unwrap();
    }
    let a = attainment_when(&contracts, half.clone(), |a| a.human_breaches == 1).await;
    assert_eq!(a.system_breaches, 0);
    // 5 of 6 decisions due were in time: 83.33 % < 95 %.
    assert_eq!(
        numbers(&a.targets, "decision_sla_adherence"),
        (5, 6, Some(83.33), AtRisk)
    );

    // A watch sends the attainment now, then again when h3's outcome arrives.
    let mut watch = contracts
        .watch_attainment(GetAttainmentRequest {
            contract_id: contract_id.clone(),
            ..Default::default()
        })
        .await
        .unwrap()
        .into_inner();
    let first = watch.message().await.unwrap().unwrap();
    assert_eq!(handoffs_of(&first), 6);
    assert_eq!(target(&first.targets, "win_rate").numerator, 2);
    outcome(&mut d, &h[3], fs1, Some(250_000)).await;
    // The next message that counts it (a status moving with the clock may come first).
    let next = tokio::time::timeout(PATIENCE, async {
        loop {
            let m = watch.message().await.unwrap().unwrap();
            if target(&m.targets, "win_rate").numerator != 2 {
                return m;
            }
        }
    })
    .await
    .expect("an update within the patience");
    assert_eq!(target(&next.targets, "win_rate").numerator, 3);
    assert_eq!(target(&next.targets, "won_amount").numerator, 1_750_000);

    // Bad requests name their field; an unknown contract is NOT_FOUND.
    let bad = contracts
        .get_attainment(GetAttainmentRequest {
            contract_id: contract_id.clone(),
            period_start: Some(time::to_proto(start + chrono::Duration::hours(1))),
            group_by: vec!["team".into()],
            ..Default::default()
        })
        .await
        .unwrap_err();
    assert_eq!(bad.code(), Code::InvalidArgument);
    assert_eq!(
        baton_e2e::invalid_fields(&bad),
        vec!["group_by[0]".to_owned()]
    );
    let early = contracts
        .get_attainment(GetAttainmentRequest {
            contract_id: contract_id.clone(),
            period_start: Some(time::to_proto(start + chrono::Duration::hours(1))),
            ..Default::default()
        })
        .await
        .unwrap_err();
    assert_eq!(
        baton_e2e::invalid_fields(&early),
        vec!["period_start".to_owned()]
    );
    let missing = contracts
        .get_attainment(GetAttainmentRequest {
            contract_id: "no-such-contract".into(),
            ..Default::default()
        })
        .await
        .unwrap_err();
    assert_eq!(missing.code(), Code::NotFound);
    suite.stop().await;
}

/// A period's scorecard: closed only once the period is over, its numbers frozen, signed by both
/// owners by identity (nobody else may sign), and an outcome recorded after close listed on it as
/// an adjustment while the frozen numbers stay as they were.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_scorecard_is_frozen_at_close_signed_by_both_owners_and_lists_late_outcomes() {
    use baton_proto::reporting::v1::{
        CloseScorecardRequest, GetScorecardRequest, ListScorecardsRequest, ScorecardStatus,
        SignScorecardRequest,
    };
    let suite = TestSuite::start_with(|s| s.contracts.scorecard_grace_hours = 0).await;
    let mut contracts = suite.contracts().await;
    let mut d = suite.distribution().await;
    sales_floor(&mut d, "is-tokyo", "fs-tokyo", 1).await;
    let mut leads = Vec::new();
    for n in 0..2 {
        leads.push(ready_lead(&suite, n, lead(n)).await);
    }
    // The period ends twenty seconds from now (time enough to hand off under load).
    let start = Utc::now() - chrono::Duration::days(1);
    let end = Utc::now() + chrono::Duration::seconds(20);
    let mut t = terms(start);
    t.period_end = Some(time::to_proto(end));
    let contract_id = approve_contract(&mut contracts, "short", t).await;
    let is0 = "is0@example.co.jp";
    let fs0 = "fs0@example.co.jp";
    let first = eventually("contract replicated", PATIENCE, || {
        let mut d = d.clone();
        let lead_id = leads[0].clone();
        async move {
            d.create_handoff(as_user(
                is0,
                CreateHandoffRequest {
                    request_id: "h-0".into(),
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
    let second = hand_off(&mut d, 1, &leads[1], is0).await;
    accept(&mut d, &first, fs0).await;
    outcome(&mut d, &first, fs0, Some(300_000)).await;
    accept(&mut d, &second, fs0).await;
    let period = GetAttainmentRequest {
        contract_id: contract_id.clone(),
        period_start: Some(time::to_proto(start)),
        ..Default::default()
    };
    attainment_when(&contracts, period.clone(), |a| {
        target(&a.targets, "won_amount").numerator == 300_000
            && target(&a.targets, "valid_leads").numerator == 2
    })
    .await;
    let close = CloseScorecardRequest {
        contract_id: contract_id.clone(),
        period_start: Some(time::to_proto(start)),
    };
    let early = contracts.close_scorecard(close.clone()).await.unwrap_err();
    assert_eq!(early.code(), Code::FailedPrecondition);
    assert!(early.message().contains("period_not_over"), "{early:?}");

    let wait = (end - Utc::now()).to_std().unwrap_or_default() + Duration::from_millis(500);
    tokio::time::sleep(wait).await;
    let card = contracts
        .close_scorecard(as_user("sales-ops@example.co.jp", close.clone()))
        .await
        .unwrap()
        .into_inner();
    assert_eq!(card.status, ScorecardStatus::Closed as i32);
    assert_eq!(card.closed_by, "sales-ops@example.co.jp");
    let frozen = card.attainment.clone().unwrap();
    assert_eq!(numbers(&frozen.targets, "handoffs").0, 2);
    assert_eq!(numbers(&frozen.targets, "won_amount").0, 300_000);
    // 1 won of 1 decided (the second is still open).
    assert_eq!(
        numbers(&frozen.targets, "win_rate_of_accepted"),
        (1, 1, Some(100.0), AttainmentStatus::Met)
    );
    assert!(!frozen.reps.is_empty(), "frozen per rep too");
    let again = contracts.close_scorecard(close).await.unwrap().into_inner();
    assert_eq!(
        again.scorecard_id, card.scorecard_id,
        "closing twice is one scorecard"
    );

    // Signatures: only the two owners, each by their own identity.
    let sign = |who: &str| {
        as_user(
            who,
            SignScorecardRequest {
                scorecard_id: card.scorecard_id.clone(),
                signed_by: String::new(),
            },
        )
    };
    let stranger = contracts
        .sign_scorecard(sign("sales-ops@example.co.jp"))
        .await
        .unwrap_err();
    assert_eq!(stranger.code(), Code::PermissionDenied);
    let half = contracts
        .sign_scorecard(sign(IS_OWNER))
        .await
        .unwrap()
        .into_inner();
    assert_eq!(half.status, ScorecardStatus::Closed as i32);
    assert_eq!(half.is_signature.as_ref().unwrap().approver, IS_OWNER);
    let signed = contracts
        .sign_scorecard(sign(FS_OWNER))
        .await
        .unwrap()
        .into_inner();
    assert_eq!(signed.status, ScorecardStatus::Signed as i32);
    let is_signed_at = signed.is_signature.as_ref().unwrap().approved_at;
    let twice = contracts
        .sign_scorecard(sign(IS_OWNER))
        .await
        .unwrap()
        .into_inner();
    assert_eq!(
        twice.is_signature.unwrap().approved_at,
        is_signed_at,
        "a signature is given once"
    );

    // An outcome after close: listed on the scorecard, the frozen numbers unchanged.
    outcome(&mut d, &second, fs0, Some(200_000)).await;
    let adjusted = eventually("late outcome listed", PATIENCE, || {
        let mut c = contracts.clone();
        let scorecard_id = card.scorecard_id.clone();
        async move {
            let s = c
                .get_scorecard(GetScorecardRequest { scorecard_id })
                .await
                .ok()?
                .into_inner();
            (!s.adjustments.is_empty()).then_some(s)
        }
    })
    .await;
    assert_eq!(adjusted.status, ScorecardStatus::Signed as i32);
    assert_eq!(
        adjusted.attainment, card.attainment,
        "frozen numbers never change"
    );
    let late = &adjusted.adjustments[0];
    assert_eq!(
        (late.handoff_id.as_str(), late.cause.as_str()),
        (second.handoff_id.as_str(), "won")
    );
    // The contract has no later period, so no live period took it.
    assert!(late.counted_in.is_none());
    let moved: Vec<(String, i64, i64)> = late
        .targets
        .iter()
        .map(|t| (t.target.clone(), t.numerator_delta, t.denominator_delta))
        .collect();
    assert!(
        moved.contains(&("won_amount".into(), 200_000, 0)),
        "{moved:?}"
    );
    assert!(
        moved.contains(&("win_rate_of_accepted".into(), 1, 1)),
        "{moved:?}"
    );
    let live = contracts.get_attainment(period).await.unwrap().into_inner();
    assert_eq!(numbers(&live.targets, "won_amount").0, 300_000);
    let list = contracts
        .list_scorecards(ListScorecardsRequest {
            contract_id: contract_id.clone(),
        })
        .await
        .unwrap()
        .into_inner()
        .scorecards;
    assert_eq!(list.len(), 1);
    suite.stop().await;
}
