//! The sales floor a handoff test needs: a contract both owners approved, an IS and an FS team,
//! IS reps, routing to IS, and waits on a lead's stage.

use baton_shared::testing::as_user;
use std::time::Duration;

use baton_proto::{
    distribution::v1::{
        AssignmentState, CreateRepRequest, CreateTeamRequest, ExplainAssignmentRequest, RepRouting,
        RoutingMethod, RoutingRule, SetRoutingRulesRequest, TeamFunction,
        distribution_service_client::DistributionServiceClient,
    },
    qualification::v1::{Bant, BantItem, GetStageRequest, RecordBantRequest, Stage},
    reporting::v1::{
        ApproveContractRequest, ContractTerms, CreateContractRequest,
        contract_service_client::ContractServiceClient,
    },
};
use baton_shared::peer::AuthChannel;

use crate::{TestSuite, eventually};
use baton_shared::{ServiceName, testing::count};

const PATIENCE: Duration = Duration::from_secs(60);

/// Creates a contract with `terms` and has both of its owners approve it (it becomes active).
/// Returns its id.
pub async fn approve_contract(
    contracts: &mut ContractServiceClient<AuthChannel>,
    request_id: &str,
    terms: ContractTerms,
) -> String {
    let owners = [terms.is_owner.clone(), terms.fs_owner.clone()];
    let draft = contracts
        .create_contract(as_user(
            "sales-ops@example.co.jp",
            CreateContractRequest {
                request_id: request_id.into(),
                terms: Some(terms),
                created_by: "sales-ops@example.co.jp".into(),
            },
        ))
        .await
        .unwrap()
        .into_inner();
    for approver in owners {
        contracts
            .approve_contract(as_user(
                &approver,
                ApproveContractRequest {
                    contract_id: draft.contract_id.clone(),
                    approver: approver.clone(),
                },
            ))
            .await
            .unwrap();
    }
    draft.contract_id
}

/// Teams `is_team` (inside sales) and `fs_team` (field sales), `is_reps` IS reps working 9-18 in
/// Tokyo, and one rule routing every lead to IS. Returns the IS reps' ids.
pub async fn sales_floor(
    d: &mut DistributionServiceClient<AuthChannel>,
    is_team: &str,
    fs_team: &str,
    is_reps: usize,
) -> Vec<String> {
    for (team, function) in [
        (is_team, TeamFunction::InsideSales),
        (fs_team, TeamFunction::FieldSales),
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
    let mut reps = Vec::new();
    for n in 0..is_reps {
        reps.push(
            d.create_rep(CreateRepRequest {
                request_id: format!("{is_team}-{n}"),
                name: format!("IS rep {n}"),
                email: format!("is{n}@example.co.jp"),
                active: true,
                routing: Some(RepRouting {
                    team_id: is_team.into(),
                    time_zone: "Asia/Tokyo".into(),
                    work_start_hour: 9,
                    work_end_hour: 18,
                    ..Default::default()
                }),
            })
            .await
            .unwrap()
            .into_inner()
            .rep_id,
        );
    }
    d.set_routing_rules(SetRoutingRulesRequest {
        rules: vec![RoutingRule {
            key: "all_to_inside_sales".into(),
            to_team: is_team.into(),
            ..Default::default()
        }],
        expected_version: 0,
    })
    .await
    .unwrap();
    reps
}

/// Waits until qualification has `lead_id` in stage `want`.
pub async fn stage_of(suite: &TestSuite, lead_id: &str, want: Stage) {
    stage_where(suite, lead_id, "stage", move |s| s == want as i32).await;
}

/// Waits until qualification knows `lead_id` (has consumed its capture), in whatever stage.
pub async fn in_qualification(suite: &TestSuite, lead_id: &str) {
    stage_where(suite, lead_id, "lead in qualification", |_| true).await;
}

async fn stage_where(suite: &TestSuite, lead_id: &str, what: &str, fits: impl Fn(i32) -> bool) {
    let q = suite.qualification().await;
    let fits = &fits;
    eventually(what, PATIENCE, || {
        let mut q = q.clone();
        let lead_id = lead_id.to_owned();
        async move {
            let s = q
                .get_stage(GetStageRequest { lead_id })
                .await
                .ok()?
                .into_inner();
            fits(s.stage).then_some(())
        }
    })
    .await;
}

/// Waits until distribution has assigned `lead_id` to a rep.
pub async fn assigned(d: &DistributionServiceClient<AuthChannel>, lead_id: &str) {
    eventually("assigned", PATIENCE, || {
        let mut d = d.clone();
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

/// IS records which BANT items of `lead_id` are confirmed (`items` names them: "budget", …) in
/// qualification, and the test waits until distribution's replica, which the handoff gate reads,
/// has the lead's BANT.
pub async fn record_bant(suite: &TestSuite, lead_id: &str, items: &[&str]) {
    let item = |name: &str| {
        Some(BantItem {
            confirmed: items.contains(&name),
            note: String::new(),
        })
    };
    let bant = Bant {
        budget: item("budget"),
        authority: item("authority"),
        need: item("need"),
        timeframe: item("timeframe"),
    };
    send_bant(suite, lead_id, bant).await;
    let bits = ["budget", "authority", "need", "timeframe"]
        .iter()
        .enumerate()
        .filter(|(_, name)| items.contains(name))
        .map(|(i, _)| 1 << i)
        .sum::<i64>();
    let url = suite.database_url(ServiceName::Distribution);
    let sql = format!(
        "SELECT COUNT(*) AS n FROM lead_record WHERE lead_id = '{lead_id}' AND bant = {bits}"
    );
    eventually("BANT replicated to distribution", PATIENCE, || {
        let (url, sql) = (url.clone(), sql.clone());
        async move { (count(&url, &sql).await == 1).then_some(()) }
    })
    .await;
}

/// IS (is0@example.co.jp) records `bant` of `lead_id` in qualification.
pub async fn send_bant(suite: &TestSuite, lead_id: &str, bant: Bant) {
    suite
        .qualification()
        .await
        .record_bant(as_user(
            "is0@example.co.jp",
            RecordBantRequest {
                lead_id: lead_id.into(),
                bant: Some(bant),
                recorded_by: "is0@example.co.jp".into(),
            },
        ))
        .await
        .unwrap();
}

/// Captures `request` (lead number `n`), makes it an MQL (a booked meeting and a free trial: 50
/// points under the default model), waits until routing assigned it, and records budget and need
/// as confirmed. Returns its id.
pub async fn ready_lead(
    suite: &TestSuite,
    n: usize,
    request: baton_proto::capture::v1::CaptureLeadRequest,
) -> String {
    use baton_proto::capture::v1::{ActivityKind, PageKind};
    let mut capture = suite.capture().await;
    let id = crate::captured_id(&mut capture, request).await;
    for (k, kind) in [ActivityKind::MeetingBooked, ActivityKind::FreeTrialStarted]
        .into_iter()
        .enumerate()
    {
        capture
            .record_activity(crate::activity(
                &id,
                &format!("{n}-{k}"),
                kind,
                PageKind::Unspecified,
            ))
            .await
            .unwrap();
    }
    assigned(&suite.distribution().await, &id).await;
    record_bant(suite, &id, &["budget", "need"]).await;
    id
}
