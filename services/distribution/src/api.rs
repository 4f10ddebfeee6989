//! distribution's gRPC edge: validate, call the store, map errors. No SQL here.

use baton_proto::distribution::v1::{
    CreateRepRequest, ListAssignmentsRequest, ListAssignmentsResponse, ListRepsRequest,
    ListRepsResponse, Rep, distribution_service_server::DistributionService,
};
use baton_shared::{TenantId, Violations, paging::Page};
use tonic::{Request, Response, Status};

use crate::{
    domain::reps::validate_rep,
    store::{Store, assignment_to_proto, rep_to_proto},
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
}
