//! capture's gRPC edge: validate, call the store, map errors. No SQL here.

use baton_proto::capture::v1::{
    CaptureLeadRequest, CaptureLeadResponse, GetLeadRequest, Lead, ListLeadsRequest,
    ListLeadsResponse, RecordActivityRequest, RecordActivityResponse, UpdateLeadRequest,
    capture_service_server::CaptureService,
};
use baton_shared::{ApiError, TenantId, Violations, paging::Page, time};
use tonic::{Request, Response, Status};

use crate::{
    domain::{
        activity::{ActivityInput, validate_activity},
        lead::validate_capture,
        update::apply_update,
    },
    store::{
        LeadFilter, Store,
        convert::{activity_to_proto, lead_to_proto},
    },
};

pub struct Api {
    store: Store,
}

impl Api {
    pub fn new(store: Store) -> Self {
        Api { store }
    }
}

fn required_id(field: &str, value: &str) -> Result<String, ApiError> {
    let value = value.trim();
    if value.is_empty() {
        Err(ApiError::invalid(field, "is required"))
    } else {
        Ok(value.to_owned())
    }
}

#[tonic::async_trait]
impl CaptureService for Api {
    async fn capture_lead(
        &self,
        request: Request<CaptureLeadRequest>,
    ) -> Result<Response<CaptureLeadResponse>, Status> {
        let tenant = TenantId::of(&request)?;
        let mut violations = Violations::new();
        let new = validate_capture(request.get_ref(), time::now(), &mut violations);
        violations.into_result()?;
        let (view, created) = self.store.capture_lead(&tenant, &new).await?;
        Ok(Response::new(CaptureLeadResponse {
            lead: Some(lead_to_proto(&view)),
            created,
        }))
    }

    async fn record_activity(
        &self,
        request: Request<RecordActivityRequest>,
    ) -> Result<Response<RecordActivityResponse>, Status> {
        let tenant = TenantId::of(&request)?;
        let req = request.into_inner();
        let mut violations = Violations::new();
        let occurred_at = time::past_or_now(
            "occurred_at",
            req.occurred_at.as_ref(),
            time::now(),
            &mut violations,
        );
        let new = validate_activity(
            ActivityInput {
                idempotency_key: &req.idempotency_key,
                lead_id: &req.lead_id,
                kind: req.kind,
                occurred_at,
                url: &req.url,
                page_kind: req.page_kind,
                call: req.call,
                subject: &req.subject,
            },
            &mut violations,
        );
        violations.into_result()?;
        let (activity, created) = self.store.record_activity(&tenant, &new).await?;
        Ok(Response::new(RecordActivityResponse {
            activity: Some(activity_to_proto(&activity)),
            created,
        }))
    }

    async fn get_lead(&self, request: Request<GetLeadRequest>) -> Result<Response<Lead>, Status> {
        let tenant = TenantId::of(&request)?;
        let lead_id = required_id("lead_id", &request.get_ref().lead_id)?;
        let view = self.store.get_lead(&tenant, &lead_id).await?;
        Ok(Response::new(lead_to_proto(&view)))
    }

    async fn update_lead(
        &self,
        request: Request<UpdateLeadRequest>,
    ) -> Result<Response<Lead>, Status> {
        let tenant = TenantId::of(&request)?;
        let req = request.into_inner();
        let lead_id = required_id("lead_id", &req.lead_id)?;
        let patch = req.lead.unwrap_or_default();
        let paths = req.update_mask.map(|m| m.paths).unwrap_or_default();
        let view = self
            .store
            .update_lead(&tenant, &lead_id, |current, email_domain| {
                let mut violations = Violations::new();
                let (next, changed) =
                    apply_update(current, &patch, &paths, email_domain, &mut violations);
                violations.into_result().map(|()| (next, changed))
            })
            .await?;
        Ok(Response::new(lead_to_proto(&view)))
    }

    async fn list_leads(
        &self,
        request: Request<ListLeadsRequest>,
    ) -> Result<Response<ListLeadsResponse>, Status> {
        let tenant = TenantId::of(&request)?;
        let req = request.into_inner();
        let mut violations = Violations::new();
        let page = Page::parse(req.page_size, &req.page_token, &mut violations);
        let mut time_of = |field: &str, t: Option<&prost_types::Timestamp>| {
            t.and_then(|t| {
                let parsed = time::from_proto(t);
                if parsed.is_none() {
                    violations.add(field, "not a valid timestamp");
                }
                parsed
            })
        };
        let filter = LeadFilter {
            company_id: Some(req.company_id.trim().to_owned()).filter(|s| !s.is_empty()),
            channel: Some(req.channel.trim().to_owned()).filter(|s| !s.is_empty()),
            captured_from: time_of("captured_from", req.captured_from.as_ref()),
            captured_to: time_of("captured_to", req.captured_to.as_ref()),
        };
        violations.into_result()?;
        let (views, next_page_token) = self.store.list_leads(&tenant, &filter, page).await?;
        Ok(Response::new(ListLeadsResponse {
            leads: views.iter().map(lead_to_proto).collect(),
            next_page_token,
        }))
    }
}
