//! distribution's gRPC edge: validate, call the store, map errors. No SQL here.

use baton_proto::distribution::v1::{
    AcceptHandoffRequest, CreateHandoffRequest, CreateRepRequest, DisputeRejectionRequest,
    GetHandoffRequest, Handoff, ListAssignmentsRequest, ListAssignmentsResponse, ListRepsRequest,
    ListRepsResponse, RecordOutcomeRequest, RejectHandoffRequest, Rep, RuleDisputeRequest,
    distribution_service_server::DistributionService,
};
use baton_shared::{TenantId, Violations, paging::Page, time};
use tonic::{Request, Response, Status};

use crate::{
    domain::{handoffs::Step, reps::validate_rep},
    store::{
        Store, assignment_to_proto,
        handoffs::{NewHandoff, StepDetails},
        rep_to_proto,
    },
};

const MAX_ID_LEN: usize = 128;
const MAX_ACTOR_LEN: usize = 200;
const MAX_NOTES_LEN: usize = 2000;

fn required(field: &str, raw: &str, max: usize, violations: &mut Violations) -> String {
    let v = raw.trim();
    if v.is_empty() {
        violations.add(field, "is required");
    } else if v.len() > max {
        violations.add(field, format!("must be at most {max} bytes"));
    }
    v.to_owned()
}

fn optional(field: &str, raw: &str, max: usize, violations: &mut Violations) -> String {
    let v = raw.trim();
    if v.len() > max {
        violations.add(field, format!("must be at most {max} bytes"));
    }
    v.to_owned()
}

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
        let handoff_id = required("handoff_id", call.handoff_id, MAX_ID_LEN, &mut violations);
        let actor = required(call.actor_field, call.actor, MAX_ACTOR_LEN, &mut violations);
        let note = optional("note", call.note, MAX_NOTES_LEN, &mut violations);
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
        violations.into_result()?;
        let rep = self.store.create_rep(&tenant, &new).await?;
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
        let req = request.into_inner();
        let mut v = Violations::new();
        let meeting_at = match req.meeting_at.as_ref().map(time::from_proto) {
            None => None,
            Some(None) => {
                v.add("meeting_at", "is not a valid timestamp");
                None
            }
            Some(t) => t,
        };
        let bant = req.bant.unwrap_or_default();
        let new = NewHandoff {
            request_id: required("request_id", &req.request_id, MAX_ID_LEN, &mut v),
            lead_id: required("lead_id", &req.lead_id, MAX_ID_LEN, &mut v),
            is_team: required("is_team", &req.is_team, MAX_ID_LEN, &mut v),
            fs_team: required("fs_team", &req.fs_team, MAX_ID_LEN, &mut v),
            fs_rep_id: optional("fs_rep_id", &req.fs_rep_id, MAX_ID_LEN, &mut v),
            meeting_at,
            bant: [bant.budget, bant.authority, bant.need, bant.timeframe],
            notes: optional("notes", &req.notes, MAX_NOTES_LEN, &mut v),
            handed_off_by: required("handed_off_by", &req.handed_off_by, MAX_ACTOR_LEN, &mut v),
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
        let req = request.into_inner();
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
        let req = request.into_inner();
        let mut v = Violations::new();
        let reason_code = required("reason_code", &req.reason_code, MAX_ID_LEN, &mut v);
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
        let req = request.into_inner();
        let mut v = Violations::new();
        required("argument", &req.argument, MAX_NOTES_LEN, &mut v);
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
        let req = request.into_inner();
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
        let req = request.into_inner();
        let mut v = Violations::new();
        if !req.won {
            required("lost_reason", &req.lost_reason, MAX_NOTES_LEN, &mut v);
        }
        let amount = match &req.amount {
            None => None,
            Some(m) => {
                if iso_currency::Currency::from_code(&m.currency_code).is_none() {
                    v.add("amount.currency_code", "must be an ISO 4217 code");
                }
                if m.amount_minor < 0 {
                    v.add("amount.amount_minor", "must not be negative");
                }
                Some((m.currency_code.clone(), m.amount_minor))
            }
        };
        let closed_at = match req.closed_at.as_ref().map(time::from_proto) {
            None => None,
            Some(None) => {
                v.add("closed_at", "is not a valid timestamp");
                None
            }
            Some(t) => t,
        };
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
        let id = required(
            "handoff_id",
            &request.get_ref().handoff_id,
            MAX_ID_LEN,
            &mut v,
        );
        v.into_result()?;
        let h = self.store.get_handoff(&tenant, &id).await?;
        Ok(Response::new(h))
    }
}
