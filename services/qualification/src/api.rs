//! qualification's gRPC edge: validate, call the store, map errors. No SQL here.

use baton_proto::qualification::v1::{
    ActivateScoringModelRequest, CreateScoringModelRequest, ExplainScoreRequest,
    GetScoringModelRequest, ListScoringModelsRequest, ListScoringModelsResponse, ScoreContribution,
    ScoreExplanation, ScoringModel, SimulateModelRequest, SimulateModelResponse, SimulationPeriod,
    UpdateScoringModelRequest, simulate_model_request,
};
use baton_proto::qualification::v1::{
    ChangeStageRequest, FiredRule, GetRankRequest, GetRankRulesRequest, GetScoreRequest,
    GetStageRequest, LeadRank, LeadScore, LeadStage, RankRules, RecordBantRequest,
    SetRankRulesRequest, Stage, qualification_service_server::QualificationService,
};
use baton_shared::{
    TenantId, Violations,
    auth::Identity,
    fields::{self, MAX_ACTOR_LEN, MAX_NOTE_LEN},
    paging::Page,
    time,
};
use tonic::{Request, Response, Status};

use crate::error::Error;
use crate::{
    convert::{
        self, bant_item, definition_from_proto, model_to_proto, rank_rules_from_proto,
        rank_rules_to_proto, stage_to_proto,
    },
    store::{
        BantUpdate, Store,
        models::{self, Period, SimulatedModel},
    },
};

pub struct Api {
    store: Store,
    /// How long one SimulateModel may run.
    simulation_deadline: std::time::Duration,
}

impl Api {
    pub fn new(store: Store, simulation_deadline: std::time::Duration) -> Self {
        Api {
            store,
            simulation_deadline,
        }
    }
}

#[tonic::async_trait]
impl QualificationService for Api {
    async fn record_bant(
        &self,
        request: Request<RecordBantRequest>,
    ) -> Result<Response<LeadStage>, Status> {
        let tenant = TenantId::of(&request)?;
        let who = Identity::of(&request)?;
        let mut req = request.into_inner();
        // The actor is the caller: an empty field means them, another name is refused.
        req.recorded_by = who.actor("recorded_by", &req.recorded_by)?;
        let lead_id = fields::required_id("lead_id", &req.lead_id)?;
        let mut violations = Violations::new();
        let recorded_by = violations.required("recorded_by", &req.recorded_by, MAX_ACTOR_LEN);
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
        let who = Identity::of(&request)?;
        let mut req = request.into_inner();
        // The actor is the caller: an empty field means them, another name is refused.
        req.changed_by = who.actor("changed_by", &req.changed_by)?;
        let lead_id = fields::required_id("lead_id", &req.lead_id)?;
        let mut violations = Violations::new();
        let to = match Stage::try_from(req.to_stage) {
            Ok(Stage::Unspecified) | Err(_) => {
                violations.add("to_stage", "must be a stage");
                Stage::Unspecified
            }
            Ok(stage) => stage,
        };
        let reason = violations.required("reason", &req.reason, MAX_NOTE_LEN);
        let changed_by = violations.required("changed_by", &req.changed_by, MAX_ACTOR_LEN);
        let override_reason =
            violations.optional("override_reason", &req.override_reason, MAX_NOTE_LEN);
        violations.into_result()?;
        let view = self
            .store
            .change_stage(
                &tenant,
                &lead_id,
                to,
                &reason,
                &changed_by,
                &override_reason,
            )
            .await?;
        Ok(Response::new(stage_to_proto(view)))
    }

    async fn get_rank(
        &self,
        request: Request<GetRankRequest>,
    ) -> Result<Response<LeadRank>, Status> {
        let tenant = TenantId::of(&request)?;
        let lead_id = fields::required_id("lead_id", &request.get_ref().lead_id)?;
        let (row, reasons) = self.store.get_rank(&tenant, &lead_id).await?;
        Ok(Response::new(LeadRank {
            lead_id: row.lead_id,
            rank: row.rank,
            rule_key: row.rule_key,
            reasons,
            ranked_at: Some(time::to_proto(row.ranked_at)),
        }))
    }

    async fn get_stage_rules(
        &self,
        request: Request<baton_proto::qualification::v1::GetStageRulesRequest>,
    ) -> Result<Response<baton_proto::qualification::v1::StageRules>, Status> {
        let tenant = TenantId::of(&request)?;
        let (row, rules) = self.store.stage_rules(&tenant).await?;
        Ok(Response::new(convert::stage_rules_to_proto(&row, &rules)))
    }

    async fn set_stage_rules(
        &self,
        request: Request<baton_proto::qualification::v1::SetStageRulesRequest>,
    ) -> Result<Response<baton_proto::qualification::v1::StageRules>, Status> {
        let tenant = TenantId::of(&request)?;
        let req = request.into_inner();
        let rules = convert::stage_rules_from_proto(req.rules.as_ref())?;
        let row = self
            .store
            .set_stage_rules(&tenant, &rules, req.expected_version)
            .await?;
        Ok(Response::new(convert::stage_rules_to_proto(&row, &rules)))
    }

    async fn get_rank_rules(
        &self,
        request: Request<GetRankRulesRequest>,
    ) -> Result<Response<RankRules>, Status> {
        let tenant = TenantId::of(&request)?;
        let (row, rules) = self.store.rank_rules(&tenant).await?;
        Ok(Response::new(rank_rules_to_proto(&row, &rules)))
    }

    async fn set_rank_rules(
        &self,
        request: Request<SetRankRulesRequest>,
    ) -> Result<Response<RankRules>, Status> {
        let tenant = TenantId::of(&request)?;
        let req = request.into_inner();
        let Some(rules) = req.rules else {
            return Err(Error::invalid("rules", "is required").into());
        };
        let domain = rank_rules_from_proto(&rules);
        let (row, saved) = self
            .store
            .set_rank_rules(&tenant, &domain, req.expected_version)
            .await?;
        Ok(Response::new(rank_rules_to_proto(&row, &saved)))
    }

    async fn get_stage(
        &self,
        request: Request<GetStageRequest>,
    ) -> Result<Response<LeadStage>, Status> {
        let tenant = TenantId::of(&request)?;
        let lead_id = fields::required_id("lead_id", &request.get_ref().lead_id)?;
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
            return Err(Error::invalid("lead_id", "is required").into());
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

    async fn explain_score(
        &self,
        request: Request<ExplainScoreRequest>,
    ) -> Result<Response<ScoreExplanation>, Status> {
        let tenant = TenantId::of(&request)?;
        let lead_id = fields::required_id("lead_id", &request.get_ref().lead_id)?;
        let e = self.store.explain(&tenant, &lead_id).await?;
        let at = e.computed_at;
        Ok(Response::new(ScoreExplanation {
            lead_id: e.score.lead_id,
            score: e.computation.score,
            stage: e.score.stage,
            model_id: e.model.model_id,
            model_version: e.model.version,
            mql_threshold: e.model.mql_threshold,
            contributions: e
                .computation
                .contributions
                .into_iter()
                .map(|c| ScoreContribution {
                    expired: !c.counts_at(at),
                    trigger: crate::store::trigger_value(c.trigger),
                    rule_key: c.rule_key,
                    description: c.description,
                    points: c.points,
                    fired_at: Some(time::to_proto(c.fired_at)),
                    expires_at: c.expires_at.map(time::to_proto),
                    activity_id: c.activity_id,
                    detail: c.detail,
                })
                .collect(),
            computed_at: Some(time::to_proto(at)),
            next_change_at: e.computation.next_change_at.map(time::to_proto),
        }))
    }

    async fn create_scoring_model(
        &self,
        request: Request<CreateScoringModelRequest>,
    ) -> Result<Response<ScoringModel>, Status> {
        let tenant = TenantId::of(&request)?;
        let who = Identity::of(&request)?;
        let mut req = request.into_inner();
        // The actor is the caller: an empty field means them, another name is refused.
        req.created_by = who.actor("created_by", &req.created_by)?;
        let mut violations = Violations::new();
        let def = definition_from_proto("definition", req.definition.as_ref(), &mut violations);
        let created_by = violations.required("created_by", &req.created_by, MAX_ACTOR_LEN);
        violations.into_result()?;
        let row = self.store.create_model(&tenant, &def, &created_by).await?;
        Ok(Response::new(model_to_proto(row)))
    }

    async fn update_scoring_model(
        &self,
        request: Request<UpdateScoringModelRequest>,
    ) -> Result<Response<ScoringModel>, Status> {
        let tenant = TenantId::of(&request)?;
        let req = request.into_inner();
        let model_id = fields::required_id("model_id", &req.model_id)?;
        let mut violations = Violations::new();
        let def = definition_from_proto("definition", req.definition.as_ref(), &mut violations);
        violations.into_result()?;
        let row = self.store.update_model(&tenant, &model_id, &def).await?;
        Ok(Response::new(model_to_proto(row)))
    }

    async fn get_scoring_model(
        &self,
        request: Request<GetScoringModelRequest>,
    ) -> Result<Response<ScoringModel>, Status> {
        let tenant = TenantId::of(&request)?;
        let row = self
            .store
            .get_model(&tenant, request.get_ref().model_id.trim())
            .await?;
        Ok(Response::new(model_to_proto(row)))
    }

    async fn list_scoring_models(
        &self,
        request: Request<ListScoringModelsRequest>,
    ) -> Result<Response<ListScoringModelsResponse>, Status> {
        let tenant = TenantId::of(&request)?;
        let req = request.into_inner();
        let mut violations = Violations::new();
        let page = Page::parse(req.page_size, &req.page_token, &mut violations);
        violations.into_result()?;
        let (rows, next_page_token) = self.store.list_models(&tenant, page).await?;
        Ok(Response::new(ListScoringModelsResponse {
            models: rows.into_iter().map(model_to_proto).collect(),
            next_page_token,
        }))
    }

    async fn activate_scoring_model(
        &self,
        request: Request<ActivateScoringModelRequest>,
    ) -> Result<Response<ScoringModel>, Status> {
        let tenant = TenantId::of(&request)?;
        let who = Identity::of(&request)?;
        let mut req = request.into_inner();
        // The actor is the caller: an empty field means them, another name is refused.
        req.activated_by = who.actor("activated_by", &req.activated_by)?;
        let model_id = fields::required_id("model_id", &req.model_id)?;
        let mut violations = Violations::new();
        let by = violations.required("activated_by", &req.activated_by, MAX_ACTOR_LEN);
        violations.into_result()?;
        let row = self.store.activate_model(&tenant, &model_id, &by).await?;
        Ok(Response::new(model_to_proto(row)))
    }

    async fn simulate_model(
        &self,
        request: Request<SimulateModelRequest>,
    ) -> Result<Response<SimulateModelResponse>, Status> {
        let tenant = TenantId::of(&request)?;
        let req = request.into_inner();
        let mut violations = Violations::new();
        let which = match &req.model {
            None => {
                violations.add("model", "set model_id or definition");
                None
            }
            Some(simulate_model_request::Model::ModelId(id)) if id.trim().is_empty() => {
                violations.add("model_id", "is required");
                None
            }
            Some(simulate_model_request::Model::ModelId(id)) => {
                Some(SimulatedModel::Stored(id.trim().to_owned()))
            }
            Some(simulate_model_request::Model::Definition(d)) => Some(SimulatedModel::Inline(
                definition_from_proto("definition", Some(d), &mut violations),
            )),
        };
        let from = fields::required_time("start_time", req.start_time.as_ref(), &mut violations);
        let to = fields::required_time("end_time", req.end_time.as_ref(), &mut violations);
        let period = match SimulationPeriod::try_from(req.period) {
            Ok(SimulationPeriod::Unspecified) | Ok(SimulationPeriod::Week) => Period::Week,
            Ok(SimulationPeriod::Day) => Period::Day,
            Ok(SimulationPeriod::Month) => Period::Month,
            Err(_) => {
                violations.add("period", "must be a simulation period");
                Period::Week
            }
        };
        if let (Some(f), Some(t)) = (from, to) {
            if f >= t {
                violations.add("end_time", "must be after start_time");
            } else if t > time::now() + chrono::Duration::days(366) {
                violations.add(
                    "end_time",
                    "must be at most a year ahead (history is simulated)",
                );
            } else {
                let mut n = 0;
                let mut start = period.start_of(f);
                while start < t && n <= models::MAX_PERIODS {
                    start = period.after(start);
                    n += 1;
                }
                if n > models::MAX_PERIODS {
                    violations.add(
                        "end_time",
                        format!("at most {} periods per simulation", models::MAX_PERIODS),
                    );
                }
            }
        }
        violations.into_result()?;
        let (Some(which), Some(from), Some(to)) = (which, from, to) else {
            return Err(Error::invalid("model", "is required").into());
        };
        let sim = self
            .store
            .simulate(&tenant, which, (from, to), period, self.simulation_deadline)
            .await?;
        let total = models::PeriodResult::total(&sim.periods, from, to);
        Ok(Response::new(SimulateModelResponse {
            leads_evaluated: sim.leads_evaluated,
            periods: sim.periods.iter().map(convert::period_to_proto).collect(),
            total: Some(convert::period_to_proto(&total)),
        }))
    }
}
