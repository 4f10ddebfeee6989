//! qualification's gRPC edge: validate, call the store, map errors. No SQL here.

use baton_proto::qualification::v1::{
    FiredRule, GetScoreRequest, LeadScore, qualification_service_server::QualificationService,
};
use baton_shared::{ApiError, TenantId, time};
use tonic::{Request, Response, Status};

use crate::store::Store;

pub struct Api {
    store: Store,
}

impl Api {
    pub fn new(store: Store) -> Self {
        Api { store }
    }
}

#[tonic::async_trait]
impl QualificationService for Api {
    async fn get_score(
        &self,
        request: Request<GetScoreRequest>,
    ) -> Result<Response<LeadScore>, Status> {
        let tenant = TenantId::of(&request)?;
        let lead_id = request.into_inner().lead_id;
        let lead_id = lead_id.trim();
        if lead_id.is_empty() {
            return Err(ApiError::invalid("lead_id", "is required").into());
        }
        let view = self.store.get_score(&tenant, lead_id).await?;
        Ok(Response::new(LeadScore {
            lead_id: view.score.lead_id,
            score: view.score.score,
            stage: view.score.stage,
            model_id: view.score.model_id,
            model_version: view.score.model_version,
            mql_threshold: view.mql_threshold,
            fired_rules: view
                .entries
                .into_iter()
                .map(|e| FiredRule {
                    rule_key: e.rule_key,
                    description: e.description,
                    points: e.points,
                    activity_id: e.activity_id,
                    occurred_at: Some(time::to_proto(e.occurred_at)),
                })
                .collect(),
            updated_at: Some(time::to_proto(view.score.updated_at)),
        }))
    }
}
