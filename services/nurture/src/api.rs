//! nurture's gRPC edge: validate, call the store, map errors. No SQL here.

use baton_proto::nurture::v1::{
    ListEnrollmentsRequest, ListEnrollmentsResponse, nurture_service_server::NurtureService,
};
use baton_shared::{TenantId, Violations, paging::Page};
use tonic::{Request, Response, Status};

use crate::{convert::enrollment_to_proto, store::Store};

pub struct Api {
    store: Store,
}

impl Api {
    pub fn new(store: Store) -> Self {
        Api { store }
    }
}

#[tonic::async_trait]
impl NurtureService for Api {
    async fn list_enrollments(
        &self,
        request: Request<ListEnrollmentsRequest>,
    ) -> Result<Response<ListEnrollmentsResponse>, Status> {
        let tenant = TenantId::of(&request)?;
        let req = request.into_inner();
        let mut violations = Violations::new();
        let page = Page::parse(req.page_size, &req.page_token, &mut violations);
        violations.into_result()?;
        let lead_id = Some(req.lead_id.trim()).filter(|l| !l.is_empty());
        let (rows, next_page_token) = self.store.list_enrollments(&tenant, page, lead_id).await?;
        Ok(Response::new(ListEnrollmentsResponse {
            enrollments: rows.iter().map(enrollment_to_proto).collect(),
            next_page_token,
        }))
    }
}
