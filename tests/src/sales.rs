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
    qualification::v1::{GetStageRequest, Stage},
    reporting::v1::{
        ApproveContractRequest, ContractTerms, CreateContractRequest,
        contract_service_client::ContractServiceClient,
    },
};
use baton_shared::peer::AuthChannel;

use crate::{TestSuite, eventually};

const PATIENCE: Duration = Duration::from_secs(60);

/// Creates a contract with `terms` and has both of its owners approve it (it becomes active).
pub async fn approve_contract(
    contracts: &mut ContractServiceClient<AuthChannel>,
    request_id: &str,
    terms: ContractTerms,
) {
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
    let q = suite.qualification().await;
    eventually("stage", PATIENCE, || {
        let mut q = q.clone();
        let lead_id = lead_id.to_owned();
        async move {
            let s = q
                .get_stage(GetStageRequest { lead_id })
                .await
                .ok()?
                .into_inner();
            (s.stage == want as i32).then_some(())
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
