//! distribution's gRPC edge: validate, call the store, map errors. No SQL here.

use baton_proto::distribution::v1::{
    self as pb, AcceptHandoffRequest, AssignmentExplanation, CreateHandoffRequest,
    CreateRepRequest, CreateTeamRequest, DisputeRejectionRequest, ExplainAssignmentRequest,
    GetHandoffRequest, GetRoutingRulesRequest, Handoff, ListAssignmentsRequest,
    ListAssignmentsResponse, ListRepsRequest, ListRepsResponse, ListTeamsRequest,
    ListTeamsResponse, ReassignLeadRequest, ReassignRepLeadsRequest, ReassignRepLeadsResponse,
    RecordOutcomeRequest, RejectHandoffRequest, Rep, RoutingMethod, RuleDisputeRequest,
    SetRoutingRulesRequest, Team, TeamFunction, UpdateRepRequest,
    distribution_service_server::DistributionService,
};
use baton_shared::{
    TenantId, Violations,
    auth::Identity,
    fields::{self, MAX_ACTOR_LEN, MAX_ID_LEN},
    paging::Page,
};
use tonic::{Request, Response, Status};

use crate::error::Error;
use crate::{
    convert::{
        assignment_to_proto, basis_of, considered_to_proto, guardrails_from_proto,
        handoff_settings_to_proto, rep_to_proto, routing_from_proto, rules_from_proto,
        rules_to_proto, team_to_proto, touch_rules_from_proto, touch_rules_to_proto,
        weighting_to_proto,
    },
    domain::{handoffs::Step, reps::validate_rep},
    store::{
        Store,
        handoffs::{NewHandoff, StepDetails},
        weighting::{NewWeighting, WeightingView},
    },
};

fn weighting_view_to_proto(view: &WeightingView) -> pb::TeamWeighting {
    weighting_to_proto(&view.team_id, view.row.as_ref(), &view.reps, &view.origins)
}

const MAX_NOTES_LEN: usize = 2000;

/// One step on a handoff as requested: which, by whom (and the request field naming them), why.
struct StepCall<'a> {
    handoff_id: &'a str,
    step: Step,
    actor_field: &'static str,
    actor: &'a str,
    note: &'a str,
    details: StepDetails,
}

impl Api {
    /// Validates the handoff id and actor of a step (beside the caller's own `violations`), then
    /// takes it.
    async fn step(
        &self,
        tenant: &TenantId,
        call: StepCall<'_>,
        mut violations: Violations,
    ) -> Result<Response<Handoff>, Status> {
        let handoff_id = violations.required("handoff_id", call.handoff_id, MAX_ID_LEN);
        let actor = violations.required(call.actor_field, call.actor, MAX_ACTOR_LEN);
        let note = violations.optional("note", call.note, MAX_NOTES_LEN);
        violations.into_result()?;
        let h = self
            .store
            .handoff_step(tenant, &handoff_id, call.step, &actor, &note, &call.details)
            .await?;
        Ok(Response::new(h))
    }
}

pub struct Api {
    store: Store,
}

impl Api {
    pub fn new(store: Store) -> Self {
        Api { store }
    }
}

#[tonic::async_trait]
impl DistributionService for Api {
    async fn create_rep(
        &self,
        request: Request<CreateRepRequest>,
    ) -> Result<Response<Rep>, Status> {
        let tenant = TenantId::of(&request)?;
        let req = request.into_inner();
        let mut violations = Violations::new();
        let new = validate_rep(
            &req.request_id,
            &req.name,
            &req.email,
            req.active,
            &mut violations,
        );
        let routing = routing_from_proto(req.routing.as_ref(), &mut violations);
        violations.into_result()?;
        let rep = self.store.create_rep(&tenant, &new, &routing).await?;
        Ok(Response::new(rep_to_proto(&rep)))
    }

    async fn list_reps(
        &self,
        request: Request<ListRepsRequest>,
    ) -> Result<Response<ListRepsResponse>, Status> {
        let tenant = TenantId::of(&request)?;
        let req = request.into_inner();
        let mut violations = Violations::new();
        let page = Page::parse(req.page_size, &req.page_token, &mut violations);
        violations.into_result()?;
        let (reps, next_page_token) = self.store.list_reps(&tenant, page).await?;
        Ok(Response::new(ListRepsResponse {
            reps: reps.iter().map(rep_to_proto).collect(),
            next_page_token,
        }))
    }

    async fn list_assignments(
        &self,
        request: Request<ListAssignmentsRequest>,
    ) -> Result<Response<ListAssignmentsResponse>, Status> {
        let tenant = TenantId::of(&request)?;
        let req = request.into_inner();
        let mut violations = Violations::new();
        let page = Page::parse(req.page_size, &req.page_token, &mut violations);
        violations.into_result()?;
        let rep_id = Some(req.rep_id.trim()).filter(|r| !r.is_empty());
        let (rows, next_page_token) = self.store.list_assignments(&tenant, page, rep_id).await?;
        Ok(Response::new(ListAssignmentsResponse {
            assignments: rows.iter().map(assignment_to_proto).collect(),
            next_page_token,
        }))
    }

    async fn create_handoff(
        &self,
        request: Request<CreateHandoffRequest>,
    ) -> Result<Response<Handoff>, Status> {
        let tenant = TenantId::of(&request)?;
        let who = Identity::of(&request)?;
        let mut req = request.into_inner();
        // The actor is the caller: an empty field means them, another name is refused.
        req.handed_off_by = who.actor("handed_off_by", &req.handed_off_by)?;
        let mut v = Violations::new();
        let meeting_at = fields::optional_time("meeting_at", req.meeting_at.as_ref(), &mut v);
        let new = NewHandoff {
            request_id: v.required("request_id", &req.request_id, MAX_ID_LEN),
            lead_id: v.required("lead_id", &req.lead_id, MAX_ID_LEN),
            is_team: v.required("is_team", &req.is_team, MAX_ID_LEN),
            fs_team: v.required("fs_team", &req.fs_team, MAX_ID_LEN),
            fs_rep_id: v.optional("fs_rep_id", &req.fs_rep_id, MAX_ID_LEN),
            meeting_at,
            notes: v.optional("notes", &req.notes, MAX_NOTES_LEN),
            handed_off_by: v.required("handed_off_by", &req.handed_off_by, MAX_ACTOR_LEN),
        };
        v.into_result()?;
        Ok(Response::new(
            self.store.create_handoff(&tenant, &new).await?,
        ))
    }

    async fn accept_handoff(
        &self,
        request: Request<AcceptHandoffRequest>,
    ) -> Result<Response<Handoff>, Status> {
        let tenant = TenantId::of(&request)?;
        let who = Identity::of(&request)?;
        let mut req = request.into_inner();
        // The actor is the caller: an empty field means them, another name is refused.
        req.decided_by = who.actor("decided_by", &req.decided_by)?;
        self.step(
            &tenant,
            StepCall {
                handoff_id: &req.handoff_id,
                step: Step::Accept,
                actor_field: "decided_by",
                actor: &req.decided_by,
                note: "",
                details: StepDetails::default(),
            },
            Violations::new(),
        )
        .await
    }

    async fn reject_handoff(
        &self,
        request: Request<RejectHandoffRequest>,
    ) -> Result<Response<Handoff>, Status> {
        let tenant = TenantId::of(&request)?;
        let who = Identity::of(&request)?;
        let mut req = request.into_inner();
        // The actor is the caller: an empty field means them, another name is refused.
        req.decided_by = who.actor("decided_by", &req.decided_by)?;
        let mut v = Violations::new();
        let reason_code = v.required("reason_code", &req.reason_code, MAX_ID_LEN);
        self.step(
            &tenant,
            StepCall {
                handoff_id: &req.handoff_id,
                step: Step::Reject,
                actor_field: "decided_by",
                actor: &req.decided_by,
                note: &req.note,
                details: StepDetails {
                    reason_code,
                    ..Default::default()
                },
            },
            v,
        )
        .await
    }

    async fn dispute_rejection(
        &self,
        request: Request<DisputeRejectionRequest>,
    ) -> Result<Response<Handoff>, Status> {
        let tenant = TenantId::of(&request)?;
        let who = Identity::of(&request)?;
        let mut req = request.into_inner();
        // The actor is the caller: an empty field means them, another name is refused.
        req.disputed_by = who.actor("disputed_by", &req.disputed_by)?;
        let mut v = Violations::new();
        v.required("argument", &req.argument, MAX_NOTES_LEN);
        self.step(
            &tenant,
            StepCall {
                handoff_id: &req.handoff_id,
                step: Step::Dispute,
                actor_field: "disputed_by",
                actor: &req.disputed_by,
                note: &req.argument,
                details: StepDetails::default(),
            },
            v,
        )
        .await
    }

    async fn rule_dispute(
        &self,
        request: Request<RuleDisputeRequest>,
    ) -> Result<Response<Handoff>, Status> {
        let tenant = TenantId::of(&request)?;
        let who = Identity::of(&request)?;
        let mut req = request.into_inner();
        // The actor is the caller: an empty field means them, another name is refused.
        req.ruled_by = who.actor("ruled_by", &req.ruled_by)?;
        let step = if req.uphold_rejection {
            Step::Uphold
        } else {
            Step::Overturn
        };
        self.step(
            &tenant,
            StepCall {
                handoff_id: &req.handoff_id,
                step,
                actor_field: "ruled_by",
                actor: &req.ruled_by,
                note: &req.note,
                details: StepDetails::default(),
            },
            Violations::new(),
        )
        .await
    }

    async fn record_outcome(
        &self,
        request: Request<RecordOutcomeRequest>,
    ) -> Result<Response<Handoff>, Status> {
        let tenant = TenantId::of(&request)?;
        let who = Identity::of(&request)?;
        let mut req = request.into_inner();
        // The actor is the caller: an empty field means them, another name is refused.
        req.recorded_by = who.actor("recorded_by", &req.recorded_by)?;
        let mut v = Violations::new();
        if !req.won {
            v.required("lost_reason", &req.lost_reason, MAX_NOTES_LEN);
        }
        let amount = money_field("amount", req.amount.as_ref(), &mut v);
        let mrr = money_field(
            "monthly_recurring_revenue",
            req.monthly_recurring_revenue.as_ref(),
            &mut v,
        );
        if mrr.is_some() && !req.won {
            v.add("monthly_recurring_revenue", "is only for a won deal");
        }
        if let (Some((a, _)), Some((m, _))) = (&amount, &mrr)
            && a != m
        {
            v.add(
                "monthly_recurring_revenue.currency_code",
                format!("must be the amount's currency {a}"),
            );
        }
        let closed_at = fields::optional_time("closed_at", req.closed_at.as_ref(), &mut v);
        let (step, note) = if req.won {
            (Step::Win, String::new())
        } else {
            (Step::Lose, req.lost_reason.clone())
        };
        self.step(
            &tenant,
            StepCall {
                handoff_id: &req.handoff_id,
                step,
                actor_field: "recorded_by",
                actor: &req.recorded_by,
                note: &note,
                details: StepDetails {
                    amount,
                    mrr,
                    closed_at,
                    ..Default::default()
                },
            },
            v,
        )
        .await
    }

    async fn get_handoff(
        &self,
        request: Request<GetHandoffRequest>,
    ) -> Result<Response<Handoff>, Status> {
        let tenant = TenantId::of(&request)?;
        let mut v = Violations::new();
        let id = v.required("handoff_id", &request.get_ref().handoff_id, MAX_ID_LEN);
        v.into_result()?;
        let h = self.store.get_handoff(&tenant, &id).await?;
        Ok(Response::new(h))
    }

    async fn create_team(
        &self,
        request: Request<CreateTeamRequest>,
    ) -> Result<Response<Team>, Status> {
        let tenant = TenantId::of(&request)?;
        let req = request.into_inner();
        let mut v = Violations::new();
        let team_id = v.required("team_id", &req.team_id, MAX_ID_LEN);
        let name = v.required("name", &req.name, MAX_ACTOR_LEN);
        let function = match TeamFunction::try_from(req.function) {
            Ok(TeamFunction::Unspecified) | Err(_) => {
                v.add("function", "must be a team function");
                TeamFunction::Unspecified
            }
            Ok(f) => f,
        };
        let method = match RoutingMethod::try_from(req.method) {
            Ok(RoutingMethod::Unspecified) => RoutingMethod::RoundRobin,
            Ok(m) => m,
            Err(_) => {
                v.add("method", "must be a routing method");
                RoutingMethod::RoundRobin
            }
        };
        v.into_result()?;
        let team = self
            .store
            .create_team(&tenant, &team_id, &name, function, method)
            .await?;
        Ok(Response::new(team_to_proto(&team)))
    }

    async fn list_teams(
        &self,
        request: Request<ListTeamsRequest>,
    ) -> Result<Response<ListTeamsResponse>, Status> {
        let tenant = TenantId::of(&request)?;
        let teams = self.store.list_teams(&tenant).await.map_err(Error::from)?;
        Ok(Response::new(ListTeamsResponse {
            teams: teams.iter().map(team_to_proto).collect(),
        }))
    }

    async fn update_rep(
        &self,
        request: Request<UpdateRepRequest>,
    ) -> Result<Response<Rep>, Status> {
        let tenant = TenantId::of(&request)?;
        let req = request.into_inner();
        let mut v = Violations::new();
        let rep_id = v.required("rep_id", &req.rep_id, MAX_ID_LEN);
        let routing = routing_from_proto(req.routing.as_ref(), &mut v);
        v.into_result()?;
        let rep = self
            .store
            .update_rep(&tenant, &rep_id, req.active, &routing)
            .await?;
        Ok(Response::new(rep_to_proto(&rep)))
    }

    async fn get_routing_rules(
        &self,
        request: Request<GetRoutingRulesRequest>,
    ) -> Result<Response<pb::RoutingRules>, Status> {
        let tenant = TenantId::of(&request)?;
        let (version, rules, updated_at) = self
            .store
            .routing_rules(&tenant)
            .await
            .map_err(Error::from)?;
        Ok(Response::new(rules_to_proto(version, &rules, updated_at)))
    }

    async fn get_handoff_settings(
        &self,
        request: Request<pb::GetHandoffSettingsRequest>,
    ) -> Result<Response<pb::HandoffSettings>, Status> {
        let tenant = TenantId::of(&request)?;
        let row = self.store.handoff_settings(&tenant).await?;
        Ok(Response::new(handoff_settings_to_proto(&row)))
    }

    async fn set_handoff_settings(
        &self,
        request: Request<pb::SetHandoffSettingsRequest>,
    ) -> Result<Response<pb::HandoffSettings>, Status> {
        let tenant = TenantId::of(&request)?;
        let req = request.into_inner();
        let Some(settings) = req.settings else {
            return Err(Error::invalid("settings", "is required").into());
        };
        let row = self
            .store
            .set_handoff_settings(
                &tenant,
                settings.allow_uncontracted_handoffs,
                req.expected_version,
            )
            .await?;
        Ok(Response::new(handoff_settings_to_proto(&row)))
    }

    async fn get_team_weighting(
        &self,
        request: Request<pb::GetTeamWeightingRequest>,
    ) -> Result<Response<pb::TeamWeighting>, Status> {
        let tenant = TenantId::of(&request)?;
        let mut v = Violations::new();
        let team_id = v.required("team_id", &request.get_ref().team_id, MAX_ID_LEN);
        v.into_result()?;
        let view = self.store.team_weighting(&tenant, &team_id).await?;
        Ok(Response::new(weighting_view_to_proto(&view)))
    }

    async fn set_team_weighting(
        &self,
        request: Request<pb::SetTeamWeightingRequest>,
    ) -> Result<Response<pb::TeamWeighting>, Status> {
        let tenant = TenantId::of(&request)?;
        let who = Identity::of(&request)?;
        let req = request.into_inner();
        let mut v = Violations::new();
        let team_id = v.required("team_id", &req.team_id, MAX_ID_LEN);
        let reason = v.optional("reason", &req.reason, MAX_NOTES_LEN);
        let guardrails = guardrails_from_proto(req.guardrails.as_ref(), &mut v);
        if pb::WeightBasis::try_from(req.basis).is_err() {
            v.add("basis", format!("{} is not a WeightBasis", req.basis));
        }
        v.into_result()?;
        let new = NewWeighting {
            team_id,
            enabled: req.enabled,
            basis: basis_of(req.basis),
            guardrails,
            expected_version: req.expected_version,
            reason,
            actor: who.sub.clone(),
        };
        let view = self.store.set_team_weighting(&tenant, &new).await?;
        Ok(Response::new(weighting_view_to_proto(&view)))
    }

    async fn apply_performance_weights(
        &self,
        request: Request<pb::ApplyPerformanceWeightsRequest>,
    ) -> Result<Response<pb::ApplyPerformanceWeightsResponse>, Status> {
        let tenant = TenantId::of(&request)?;
        let who = Identity::of(&request)?;
        let mut v = Violations::new();
        let team_id = v.required("team_id", &request.get_ref().team_id, MAX_ID_LEN);
        v.into_result()?;
        let (changes, view) = self
            .store
            .apply_performance_weights(&tenant, &team_id, &who.sub)
            .await?;
        Ok(Response::new(pb::ApplyPerformanceWeightsResponse {
            changes,
            weighting: Some(weighting_view_to_proto(&view)),
        }))
    }

    async fn get_touch_rules(
        &self,
        request: Request<pb::GetTouchRulesRequest>,
    ) -> Result<Response<pb::TouchRules>, Status> {
        let tenant = TenantId::of(&request)?;
        let (row, rules) = self.store.touch_rules(&tenant).await?;
        Ok(Response::new(touch_rules_to_proto(&row, &rules)))
    }

    async fn set_touch_rules(
        &self,
        request: Request<pb::SetTouchRulesRequest>,
    ) -> Result<Response<pb::TouchRules>, Status> {
        let tenant = TenantId::of(&request)?;
        let req = request.into_inner();
        let rules = touch_rules_from_proto(req.rules.as_ref())?;
        let (row, rules) = self
            .store
            .set_touch_rules(&tenant, &rules, req.expected_version)
            .await?;
        Ok(Response::new(touch_rules_to_proto(&row, &rules)))
    }

    async fn set_routing_rules(
        &self,
        request: Request<SetRoutingRulesRequest>,
    ) -> Result<Response<pb::RoutingRules>, Status> {
        let tenant = TenantId::of(&request)?;
        let req = request.into_inner();
        let rules = rules_from_proto(&req.rules);
        let (version, updated_at) = self
            .store
            .set_routing_rules(&tenant, &rules, req.expected_version)
            .await?;
        Ok(Response::new(rules_to_proto(
            version,
            &rules,
            Some(updated_at),
        )))
    }

    async fn explain_assignment(
        &self,
        request: Request<ExplainAssignmentRequest>,
    ) -> Result<Response<AssignmentExplanation>, Status> {
        let tenant = TenantId::of(&request)?;
        let mut v = Violations::new();
        let lead_id = v.required("lead_id", &request.get_ref().lead_id, MAX_ID_LEN);
        v.into_result()?;
        let e = self.store.explain_assignment(&tenant, &lead_id).await?;
        Ok(Response::new(AssignmentExplanation {
            rule_key: e.current.rule_key.clone(),
            rules_version: e.current.rules_version,
            team_id: e.current.team_id.clone(),
            candidates: e
                .considered
                .iter()
                .map(|c| considered_to_proto(c, &e.origins))
                .collect(),
            history: e.history.iter().map(assignment_to_proto).collect(),
            assignment: Some(assignment_to_proto(&e.current)),
        }))
    }

    async fn reassign_lead(
        &self,
        request: Request<ReassignLeadRequest>,
    ) -> Result<Response<pb::Assignment>, Status> {
        let tenant = TenantId::of(&request)?;
        let who = Identity::of(&request)?;
        let mut req = request.into_inner();
        // The actor is the caller: an empty field means them, another name is refused.
        req.requested_by = who.actor("requested_by", &req.requested_by)?;
        let mut v = Violations::new();
        let lead_id = v.required("lead_id", &req.lead_id, MAX_ID_LEN);
        v.required("requested_by", &req.requested_by, MAX_ACTOR_LEN);
        v.into_result()?;
        let a = self.store.reassign_lead(&tenant, &lead_id).await?;
        Ok(Response::new(assignment_to_proto(&a)))
    }

    async fn reassign_rep_leads(
        &self,
        request: Request<ReassignRepLeadsRequest>,
    ) -> Result<Response<ReassignRepLeadsResponse>, Status> {
        let tenant = TenantId::of(&request)?;
        let who = Identity::of(&request)?;
        let mut req = request.into_inner();
        // The actor is the caller: an empty field means them, another name is refused.
        req.requested_by = who.actor("requested_by", &req.requested_by)?;
        let mut v = Violations::new();
        let rep_id = v.required("rep_id", &req.rep_id, MAX_ID_LEN);
        v.required("requested_by", &req.requested_by, MAX_ACTOR_LEN);
        v.into_result()?;
        let moved = self
            .store
            .reassign_rep_leads(&tenant, &rep_id, req.deactivate)
            .await?;
        Ok(Response::new(ReassignRepLeadsResponse {
            assignments: moved.iter().map(assignment_to_proto).collect(),
        }))
    }
}

/// An optional amount of money: an ISO 4217 currency and a non-negative amount.
fn money_field(
    field: &str,
    money: Option<&baton_proto::capture::v1::Money>,
    v: &mut Violations,
) -> Option<(String, i64)> {
    let m = money?;
    if iso_currency::Currency::from_code(&m.currency_code).is_none() {
        v.add(format!("{field}.currency_code"), "must be an ISO 4217 code");
    }
    if !(0..=baton_shared::fields::MAX_AMOUNT_MINOR).contains(&m.amount_minor) {
        v.add(
            format!("{field}.amount_minor"),
            format!(
                "must be from 0 to {} (minor units)",
                baton_shared::fields::MAX_AMOUNT_MINOR
            ),
        );
    }
    Some((m.currency_code.clone(), m.amount_minor))
}
