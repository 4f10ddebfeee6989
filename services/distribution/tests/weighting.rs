//! Performance-weighted routing over real sockets: a weighted IS team opts in, its reps' factors
//! move by the win rate of the leads they handed off, inside the guardrails, every move an event
//! with its reason, and ExplainAssignment shows where each weight came from.

mod common;

use std::{collections::BTreeMap, time::Duration};

use baton_proto::{
    capture::v1::Money,
    distribution::v1::{
        AcceptHandoffRequest, ApplyPerformanceWeightsRequest, CreateHandoffRequest,
        CreateRepRequest, CreateTeamRequest, ExplainAssignmentRequest, GetTeamWeightingRequest,
        RecordOutcomeRequest, RejectHandoffRequest, RepRouting, RoutingMethod, RoutingRule,
        SetRoutingRulesRequest, SetTeamWeightingRequest, TeamFunction, TeamWeighting, WeightBasis,
        WeightGuardrails, distribution_service_client::DistributionServiceClient,
    },
    reporting::v1::contract_service_client::ContractServiceClient,
};
use baton_shared::{
    peer::AuthChannel,
    testing::{as_user, channel, count, eventually},
    time,
};
use common::{FS_OWNER, FS_TEAM, Floor, IS_OWNER, IS_TEAM, LeadSetup, activate};
use tonic::Code;
use tonic_types::StatusExt;

const TEAM: &str = "is-osaka";
const FS_REP: &str = "fs-rep@example.com";

type Client = DistributionServiceClient<AuthChannel>;

/// A rep of the weighted team, with its e-mail as the name the tests use for it.
async fn add_rep(d: &mut Client, name: &str) -> String {
    d.create_rep(CreateRepRequest {
        request_id: name.into(),
        name: name.into(),
        email: format!("{name}@example.com"),
        active: true,
        routing: Some(RepRouting {
            team_id: TEAM.into(),
            ..Default::default()
        }),
    })
    .await
    .unwrap()
    .into_inner()
    .rep_id
}

/// The rep each lead is assigned to.
async fn holders(d: &mut Client, leads: &[String]) -> Vec<String> {
    let mut out = Vec::new();
    for lead_id in leads {
        let e = d
            .explain_assignment(ExplainAssignmentRequest {
                lead_id: lead_id.clone(),
            })
            .await
            .unwrap()
            .into_inner();
        out.push(e.assignment.unwrap().rep_id);
    }
    out
}

#[derive(Clone, Copy)]
enum Verdict {
    Won,
    Lost,
    Rejected,
}

/// `lead` handed off by `by` to FS, then decided as `verdict`.
async fn hand_off(d: &mut Client, lead: &str, by: &str, verdict: Verdict) {
    let request = CreateHandoffRequest {
        request_id: format!("h-{lead}"),
        lead_id: lead.into(),
        is_team: TEAM.into(),
        fs_team: FS_TEAM.into(),
        meeting_at: Some(time::to_proto(
            chrono::Utc::now() + chrono::Duration::days(3),
        )),
        handed_off_by: by.into(),
        ..Default::default()
    };
    // The first handoff waits for distribution to have the contract.
    let h = eventually("contract replicated", Duration::from_secs(20), || {
        let mut d = d.clone();
        let request = request.clone();
        async move { d.create_handoff(as_user(by, request)).await.ok() }
    })
    .await
    .into_inner();
    let id = h.handoff_id;
    if let Verdict::Rejected = verdict {
        let reject = RejectHandoffRequest {
            handoff_id: id,
            reason_code: "no_budget".into(),
            ..Default::default()
        };
        d.reject_handoff(as_user(FS_REP, reject)).await.unwrap();
        return;
    }
    let accept = AcceptHandoffRequest {
        handoff_id: id.clone(),
        ..Default::default()
    };
    d.accept_handoff(as_user(FS_REP, accept)).await.unwrap();
    let won = matches!(verdict, Verdict::Won);
    let outcome = RecordOutcomeRequest {
        handoff_id: id,
        won,
        lost_reason: if won { "" } else { "went with a rival" }.into(),
        amount: Some(Money {
            currency_code: "JPY".into(),
            amount_minor: 1_000_000,
        }),
        ..Default::default()
    };
    d.record_outcome(as_user(FS_REP, outcome)).await.unwrap();
}

fn guardrails() -> WeightGuardrails {
    WeightGuardrails {
        window_days: 90,
        min_decided: 4,
        min_weight: Some(0.8),
        max_weight: Some(1.4),
        max_change_per_period: Some(0.3),
        period_days: 7,
    }
}

fn set(enabled: bool, expected_version: i32) -> SetTeamWeightingRequest {
    SetTeamWeightingRequest {
        team_id: TEAM.into(),
        enabled,
        basis: WeightBasis::HandedOff as i32,
        guardrails: Some(guardrails()),
        expected_version,
        reason: "pilot: route more to who converts".into(),
    }
}

/// (factor, reason) of each rep, in queue order.
fn factors(w: &TeamWeighting) -> Vec<(f64, String)> {
    w.reps
        .iter()
        .map(|r| {
            let reason = r.origin.as_ref().map(|o| o.reason.clone());
            (r.factor, reason.unwrap_or_default())
        })
        .collect()
}

/// A weighted team whose reps handed off leads with known outcomes; the weighting refuses bad
/// input, moves each factor inside its guardrails (clamped to the maximum and capped by the
/// period's change for the strong rep, clamped to the minimum for the weak one, left at 1 for the
/// one with too few decided handoffs), announces every move, does not move again in the same
/// period, routes by the new weights as ExplainAssignment shows, and turning it off puts every rep
/// back on its own weight.
#[tokio::test]
async fn a_teams_weights_follow_its_reps_win_rates_inside_the_guardrails() {
    // The worker recomputes every second (the default is hourly).
    let floor = Floor::start(|s| s.routing.performance_weights_interval_seconds = 1).await;
    let mut d = floor.d.clone();
    let mut contracts = ContractServiceClient::new(channel(&floor.reporting.endpoint).await);
    d.create_team(CreateTeamRequest {
        team_id: TEAM.into(),
        name: "IS Osaka".into(),
        function: TeamFunction::InsideSales as i32,
        method: RoutingMethod::WeightedRoundRobin as i32,
    })
    .await
    .unwrap();
    let reps = [
        add_rep(&mut d, "rep-a").await,
        add_rep(&mut d, "rep-b").await,
        add_rep(&mut d, "rep-c").await,
    ];
    d.set_routing_rules(SetRoutingRulesRequest {
        rules: vec![RoutingRule {
            key: "all_to_osaka".into(),
            to_team: TEAM.into(),
            ..Default::default()
        }],
        expected_version: 1,
    })
    .await
    .unwrap();
    let terms = baton_shared::contract::example_terms(TEAM, FS_TEAM, IS_OWNER, FS_OWNER);
    activate(&mut contracts, "osaka", terms).await;

    // Refusals: a round-robin team, bad guardrails (each field named), applying before opting in,
    // an unknown team.
    let mut rr = set(true, 0);
    rr.team_id = IS_TEAM.into();
    let refused = d.set_team_weighting(rr).await.unwrap_err();
    assert_eq!(refused.code(), Code::FailedPrecondition);
    assert!(
        refused.message().contains("weighted_method_required"),
        "{refused:?}"
    );
    let mut bad = set(true, 0);
    bad.guardrails = Some(WeightGuardrails {
        min_weight: Some(1.5),
        max_change_per_period: Some(0.0),
        window_days: -1,
        ..guardrails()
    });
    let invalid = d.set_team_weighting(bad).await.unwrap_err();
    assert_eq!(invalid.code(), Code::InvalidArgument);
    let fields: Vec<String> = invalid
        .get_details_bad_request()
        .unwrap()
        .field_violations
        .into_iter()
        .map(|f| f.field)
        .collect();
    assert_eq!(
        fields,
        [
            "guardrails.window_days",
            "guardrails.min_weight",
            "guardrails.max_change_per_period"
        ]
    );
    let early = ApplyPerformanceWeightsRequest {
        team_id: TEAM.into(),
    };
    let early = d.apply_performance_weights(early).await.unwrap_err();
    assert!(early.message().contains("weighting_disabled"), "{early:?}");
    let unknown = GetTeamWeightingRequest {
        team_id: "nowhere".into(),
    };
    assert_eq!(
        d.get_team_weighting(unknown).await.unwrap_err().code(),
        Code::NotFound
    );

    // Twelve leads, shared a, b, c, a, b, c… (equal weights, ties by queue order).
    let leads: Vec<String> = (0..12).map(|i| format!("lead-{i}")).collect();
    let ids: Vec<&str> = leads.iter().map(String::as_str).collect();
    let ready = LeadSetup {
        budget: true,
        need: true,
    };
    floor.leads(&ids, ready).await;
    let held = holders(&mut d, &leads).await;
    let mut of: BTreeMap<&str, Vec<&str>> = BTreeMap::new();
    for (lead, rep) in leads.iter().zip(&held) {
        of.entry(rep.as_str()).or_default().push(lead.as_str());
    }
    assert_eq!(of.values().map(Vec::len).collect::<Vec<_>>(), [4, 4, 4]);

    // a: 3 won, 1 lost (75%); b: 1 won, 2 lost, 1 rejected (25%); c: 1 won, 1 rejected, two
    // never handed off (2 decided, fewer than 4). Team: 5 won of 10 decided = 50%.
    use Verdict::*;
    let plan = [
        ("rep-a", vec![Won, Won, Won, Lost]),
        ("rep-b", vec![Won, Lost, Lost, Rejected]),
        ("rep-c", vec![Won, Rejected]),
    ];
    for ((name, verdicts), rep_id) in plan.iter().zip(&reps) {
        let by = format!("{name}@example.com");
        for (lead, verdict) in of[rep_id.as_str()].iter().zip(verdicts) {
            hand_off(&mut d, lead, &by, *verdict).await;
        }
    }

    // Opting in computes at once: a 1.5 → clamped to 1.4 → capped at 1.0 + 0.3; b 0.5 → clamped
    // to 0.8 (a move of 0.2); c stays 1 (no change, so no origin).
    let on = d
        .set_team_weighting(set(true, 0))
        .await
        .unwrap()
        .into_inner();
    assert_eq!((on.enabled, on.version), (true, 1));
    assert_eq!(
        factors(&on),
        [
            (1.3, "capped_by_max_change".to_owned()),
            (0.8, "clamped_min".to_owned()),
            (1.0, String::new()),
        ]
    );
    let a = on.reps[0].origin.clone().unwrap();
    assert_eq!(
        (a.won, a.decided, a.team_won, a.team_decided, a.raw_factor),
        (3, 4, 5, 10, 1.5)
    );
    assert_eq!(on.reps[0].weight, 1.3);
    let b = on.reps[1].origin.clone().unwrap();
    assert_eq!((b.won, b.decided, b.raw_factor), (1, 4, 0.5));
    let url = &floor.distribution_db.url;
    // On PostgreSQL an event waits in the outbox until the relay moves it to the log.
    let events = "SELECT (SELECT COUNT(*) FROM event_log WHERE type_url LIKE '%RepWeightChanged') \
                  + (SELECT COUNT(*) FROM event_outbox WHERE type_url LIKE '%RepWeightChanged') AS n";
    assert_eq!(count(url, events).await, 2);

    // Again in the same period: a may not pass 1.3, b is where its clamp holds it.
    let again = ApplyPerformanceWeightsRequest {
        team_id: TEAM.into(),
    };
    let again = d
        .apply_performance_weights(again)
        .await
        .unwrap()
        .into_inner();
    assert!(again.changes.is_empty(), "{:?}", again.changes);
    assert_eq!(count(url, events).await, 2);

    // Twenty more leads by weights 1.3, 0.8, 1.0 from counters 4, 4, 4 (each pick adds
    // 1/weight; lowest counter wins, ties by queue order), worked by hand: a 8, b 5, c 7.
    let more: Vec<String> = (12..32).map(|i| format!("lead-{i}")).collect();
    let ids: Vec<&str> = more.iter().map(String::as_str).collect();
    floor.leads(&ids, ready).await;
    let held = holders(&mut d, &more).await;
    let got: Vec<usize> = reps
        .iter()
        .map(|r| held.iter().filter(|h| *h == r).count())
        .collect();
    assert_eq!(got, [8, 5, 7]);
    let explained = d
        .explain_assignment(ExplainAssignmentRequest {
            lead_id: "lead-31".into(),
        })
        .await
        .unwrap()
        .into_inner();
    let weights: Vec<f64> = explained.candidates.iter().map(|c| c.weight).collect();
    assert_eq!(weights, [1.3, 0.8, 1.0]);
    let origin = explained.candidates[0].weight_origin.clone().unwrap();
    assert_eq!(origin.change_id, a.change_id);
    assert!(
        origin.detail.contains("75.0% (3 of 4)"),
        "{}",
        origin.detail
    );
    assert!(explained.candidates[2].weight_origin.is_none());
    // A decision taken before the weighting shows the weights it used then.
    let before = d
        .explain_assignment(ExplainAssignmentRequest {
            lead_id: "lead-0".into(),
        })
        .await
        .unwrap()
        .into_inner();
    let weights: Vec<f64> = before.candidates.iter().map(|c| c.weight).collect();
    assert_eq!(weights, [1.0, 1.0, 1.0]);

    // c wins two more of its leads, and the worker moves the weights without being asked: c 3 of
    // 4 = 75% vs the team's 7 of 12 = 58.3%: 9/7 = 1.2857 (a move of 0.29, inside the cap); a's
    // ratio is now 1.2857 too, under its 1.3; b's 0.43 stays clamped at 0.8.
    let c_leads: Vec<&String> = more
        .iter()
        .zip(&held)
        .filter(|(_, h)| **h == reps[2])
        .map(|(l, _)| l)
        .collect();
    for lead in &c_leads[..2] {
        hand_off(&mut d, lead, "rep-c@example.com", Won).await;
    }
    let moved = eventually("the worker moved c", Duration::from_secs(20), || {
        let mut d = d.clone();
        async move {
            let w = d
                .get_team_weighting(GetTeamWeightingRequest {
                    team_id: TEAM.into(),
                })
                .await
                .ok()?
                .into_inner();
            (w.reps[2].factor != 1.0).then_some(w)
        }
    })
    .await;
    assert_eq!(
        factors(&moved),
        [
            (1.2857, "performance".to_owned()),
            (0.8, "clamped_min".to_owned()),
            (1.2857, "performance".to_owned()),
        ]
    );
    let c = moved.reps[2].origin.clone().unwrap();
    assert_eq!(
        (c.won, c.decided, c.team_won, c.team_decided),
        (3, 4, 7, 12)
    );
    assert_eq!(count(url, events).await, 4);

    // A stale version is refused; turning it off puts every rep back on its own weight.
    let stale = d.set_team_weighting(set(false, 7)).await.unwrap_err();
    assert!(stale.message().contains("version_conflict"), "{stale:?}");
    let off = d
        .set_team_weighting(set(false, 1))
        .await
        .unwrap()
        .into_inner();
    let disabled = (1.0, "weighting_disabled".to_owned());
    assert_eq!(
        factors(&off),
        [disabled.clone(), disabled.clone(), disabled]
    );
    assert_eq!(count(url, events).await, 7);
    floor.stop().await;
}
