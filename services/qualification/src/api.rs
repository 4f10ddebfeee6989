//! qualification's gRPC edge: validate, call the store, map errors. No SQL here.

use baton_proto::qualification::v1::{
    Bant, BantItem, ChangeStageRequest, FiredRule, GetRankRequest, GetScoreRequest,
    GetStageRequest, LeadRank, LeadScore, LeadStage, RecordBantRequest, Stage, StageTransition,
    qualification_service_server::QualificationService,
};
use baton_shared::{ApiError, TenantId, Violations, time};
use tonic::{Request, Response, Status};

use crate::store::{BantUpdate, StageView, Store};

const MAX_ACTOR_LEN: usize = 200;
const MAX_NOTE_LEN: usize = 500;

fn lead_id_of(raw: &str) -> Result<String, ApiError> {
    let id = raw.trim();
    if id.is_empty() {
        Err(ApiError::invalid("lead_id", "is required"))
    } else {
        Ok(id.to_owned())
    }
}

fn required_text(field: &str, raw: &str, max: usize, violations: &mut Violations) -> String {
    let v = raw.trim();
    if v.is_empty() {
        violations.add(field, "is required");
    } else if v.len() > max {
        violations.add(field, format!("must be at most {max} bytes"));
    }
    v.to_owned()
}

fn bant_item(
    field: &str,
    item: Option<&BantItem>,
    violations: &mut Violations,
) -> Option<(bool, String)> {
    item.map(|i| {
        if i.note.len() > MAX_NOTE_LEN {
            violations.add(
                format!("bant.{field}.note"),
                format!("must be at most {MAX_NOTE_LEN} bytes"),
            );
        }
        (i.confirmed, i.note.trim().to_owned())
    })
}

fn stage_to_proto(view: StageView) -> LeadStage {
    let bant = view.bant.map(|b| Bant {
        budget: Some(BantItem {
            confirmed: b.budget,
            note: b.budget_note,
        }),
        authority: Some(BantItem {
            confirmed: b.authority,
            note: b.authority_note,
        }),
        need: Some(BantItem {
            confirmed: b.need,
            note: b.need_note,
        }),
        timeframe: Some(BantItem {
            confirmed: b.timeframe,
            note: b.timeframe_note,
        }),
    });
    let bant_complete = bant.as_ref().is_some_and(|b| {
        [&b.budget, &b.authority, &b.need, &b.timeframe]
            .iter()
            .all(|i| i.as_ref().is_some_and(|i| i.confirmed))
    });
    LeadStage {
        lead_id: view.score.lead_id,
        stage: view.score.stage,
        bant,
        bant_complete,
        history: view
            .history
            .into_iter()
            .map(|h| StageTransition {
                from_stage: h.from_stage,
                to_stage: h.to_stage,
                changed_at: Some(time::to_proto(h.changed_at)),
                reason: h.reason,
                changed_by: h.changed_by,
                score: h.score,
            })
            .collect(),
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
impl QualificationService for Api {
    async fn record_bant(
        &self,
        request: Request<RecordBantRequest>,
    ) -> Result<Response<LeadStage>, Status> {
        let tenant = TenantId::of(&request)?;
        let req = request.into_inner();
        let lead_id = lead_id_of(&req.lead_id)?;
        let mut violations = Violations::new();
        let recorded_by = required_text(
            "recorded_by",
            &req.recorded_by,
            MAX_ACTOR_LEN,
            &mut violations,
        );
        let bant = req.bant.unwrap_or_default();
        let update = BantUpdate {
            budget: bant_item("budget", bant.budget.as_ref(), &mut violations),
            authority: bant_item("authority", bant.authority.as_ref(), &mut violations),
            need: bant_item("need", bant.need.as_ref(), &mut violations),
            timeframe: bant_item("timeframe", bant.timeframe.as_ref(), &mut violations),
        };
        violations.into_result()?;
        let view = self
            .store
            .record_bant(&tenant, &lead_id, &update, &recorded_by)
            .await?;
        Ok(Response::new(stage_to_proto(view)))
    }

    async fn change_stage(
        &self,
        request: Request<ChangeStageRequest>,
    ) -> Result<Response<LeadStage>, Status> {
        let tenant = TenantId::of(&request)?;
        let req = request.into_inner();
        let lead_id = lead_id_of(&req.lead_id)?;
        let mut violations = Violations::new();
        let to = match Stage::try_from(req.to_stage) {
            Ok(Stage::Unspecified) | Err(_) => {
                violations.add("to_stage", "must be a stage");
                Stage::Unspecified
            }
            Ok(stage) => stage,
        };
        let reason = required_text("reason", &req.reason, MAX_NOTE_LEN, &mut violations);
        let changed_by = required_text(
            "changed_by",
            &req.changed_by,
            MAX_ACTOR_LEN,
            &mut violations,
        );
        violations.into_result()?;
        let view = self
            .store
            .change_stage(&tenant, &lead_id, to, &reason, &changed_by)
            .await?;
        Ok(Response::new(stage_to_proto(view)))
    }

    async fn get_rank(
        &self,
        request: Request<GetRankRequest>,
    ) -> Result<Response<LeadRank>, Status> {
        let tenant = TenantId::of(&request)?;
        let lead_id = lead_id_of(&request.get_ref().lead_id)?;
        let (row, reasons) = self.store.get_rank(&tenant, &lead_id).await?;
        Ok(Response::new(LeadRank {
            lead_id: row.lead_id,
            rank: row.rank,
            rule_key: row.rule_key,
            reasons,
            ranked_at: Some(time::to_proto(row.ranked_at)),
        }))
    }

    async fn get_stage(
        &self,
        request: Request<GetStageRequest>,
    ) -> Result<Response<LeadStage>, Status> {
        let tenant = TenantId::of(&request)?;
        let lead_id = lead_id_of(&request.get_ref().lead_id)?;
        let view = self.store.get_stage(&tenant, &lead_id).await?;
        Ok(Response::new(stage_to_proto(view)))
    }

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
