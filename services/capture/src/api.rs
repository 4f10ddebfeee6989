//! capture's gRPC edge: validate, call the store, map errors. No SQL here.

use baton_proto::capture::v1::{
    CaptureLeadRequest, CaptureLeadResponse, GetLeadRequest, Lead, RecordActivityRequest,
    RecordActivityResponse, capture_service_server::CaptureService,
};
use baton_shared::{ApiError, TenantId, Violations, time};

use tonic::{Request, Response, Status};

use crate::{
    domain::{
        activity::{ActivityInput, validate_activity},
        lead::{CaptureInput, validate_capture},
    },
    store::{Store, activity_to_proto, lead_to_proto},
};

pub struct Api {
    store: Store,
}

impl Api {
    pub fn new(store: Store) -> Self {
        Api { store }
    }
}

#[tonic::async_trait]
impl CaptureService for Api {
    async fn capture_lead(
        &self,
        request: Request<CaptureLeadRequest>,
    ) -> Result<Response<CaptureLeadResponse>, Status> {
        let tenant = TenantId::of(&request)?;
        let req = request.into_inner();
        let now = time::now();
        let mut violations = Violations::new();
        let captured_at_sent = req.captured_at.as_ref().and_then(time::from_proto);
        let captured_at = time::past_or_now(
            "captured_at",
            req.captured_at.as_ref(),
            now,
            &mut violations,
        );
        let source = req.source.unwrap_or_default();
        let new = validate_capture(
            CaptureInput {
                request_id: &req.request_id,
                email: &req.email,
                first_name: &req.first_name,
                last_name: &req.last_name,
                company_name: &req.company_name,
                channel: &source.channel,
                campaign: &source.campaign,
                captured_at_sent,
                captured_at,
            },
            &mut violations,
        );
        violations.into_result()?;
        let (lead, created) = self.store.capture_lead(&tenant, &new).await?;
        Ok(Response::new(CaptureLeadResponse {
            lead: Some(lead_to_proto(&lead)),
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
        let lead_id = request.into_inner().lead_id;
        if lead_id.trim().is_empty() {
            return Err(ApiError::invalid("lead_id", "is required").into());
        }
        let lead = self.store.get_lead(&tenant, lead_id.trim()).await?;
        Ok(Response::new(lead_to_proto(&lead)))
    }
}
