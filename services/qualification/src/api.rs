//! qualification's gRPC edge: validate, call the store, map errors. No SQL here.

use baton_proto::qualification::v1::{
    Bant, BantItem, ChangeStageRequest, FieldCondition, FiredRule, GetRankRequest,
    GetRankRulesRequest, GetScoreRequest, GetStageRequest, LeadRank, LeadScore, LeadStage, OneOf,
    PageVisitsCondition, Rank, RankCondition, RankRule, RankRules, RecordBantRequest,
    SetRankRulesRequest, Stage, StageTransition, field_condition,
    qualification_service_server::QualificationService, rank_condition,
};
use baton_proto::{
    capture::v1::{ActivityKind, PageKind},
    qualification::v1::{
        ActivateScoringModelRequest, AttributeTrigger, BehaviourTrigger, CreateScoringModelRequest,
        ExplainScoreRequest, GetScoringModelRequest, InactivityTrigger, ListScoringModelsRequest,
        ListScoringModelsResponse, NumberRange, Recompute, RecomputeState, ScoreCap,
        ScoreContribution, ScoreExplanation, ScoringModel, ScoringModelDefinition, ScoringRule,
        SimulateModelRequest, SimulateModelResponse, SimulatedPeriod, SimulationPeriod,
        UpdateScoringModelRequest, scoring_rule, simulate_model_request,
    },
};
use baton_shared::{
    TenantId, Violations,
    fields::{self, MAX_ACTOR_LEN, MAX_NOTE_LEN},
    paging::Page,
    time,
};
use tonic::{Request, Response, Status};

use crate::error::Error;
use crate::{
    convert,
    domain::{
        ranks,
        scoring::{self, ModelDefinition},
    },
    store::{
        BantUpdate, StageView, Store,
        entities::scoring_model,
        models::{self, Period, SimulatedModel},
    },
};

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

fn rank_name(rank: i32) -> String {
    Rank::try_from(rank)
        .unwrap_or(Rank::Unspecified)
        .as_str_name()
        .to_owned()
}

/// A proto field condition → the domain's (whose validator reports what is missing).
fn condition_from_proto(f: &FieldCondition) -> ranks::Condition {
    use field_condition::Comparison;
    let mut out = ranks::Condition {
        field: Some(f.field.trim().to_owned()),
        currency: Some(f.currency.clone()).filter(|c| !c.is_empty()),
        ..Default::default()
    };
    match &f.comparison {
        Some(Comparison::Gte(v)) => out.gte = Some(*v),
        Some(Comparison::Lt(v)) => out.lt = Some(*v),
        Some(Comparison::Equals(v)) => out.equals = Some(v.clone()),
        Some(Comparison::OneOf(v)) => out.one_of = Some(v.values.clone()),
        Some(Comparison::Exists(v)) => out.exists = Some(*v),
        Some(Comparison::Range(r)) => out.range = Some([r.gte, r.lt]),
        None => {}
    }
    out
}

fn condition_to_proto(c: &ranks::Condition) -> FieldCondition {
    use field_condition::Comparison;
    let comparison = c
        .gte
        .map(Comparison::Gte)
        .or(c.lt.map(Comparison::Lt))
        .or(c.equals.clone().map(Comparison::Equals))
        .or(c
            .one_of
            .clone()
            .map(|values| Comparison::OneOf(OneOf { values })))
        .or(c.exists.map(Comparison::Exists))
        .or(c
            .range
            .map(|[gte, lt]| Comparison::Range(NumberRange { gte, lt })));
    FieldCondition {
        field: c.field.clone().unwrap_or_default(),
        comparison,
        currency: c.currency.clone().unwrap_or_default(),
    }
}

/// Proto rank rules → domain (validation happens in the domain; unknown values become names the
/// validator rejects).
fn rank_rules_from_proto(rules: &RankRules) -> ranks::RankRules {
    use rank_condition::Condition as Shape;
    ranks::RankRules {
        default_rank: rank_name(rules.default_rank),
        rules: rules
            .rules
            .iter()
            .map(|r| ranks::RankRule {
                key: r.key.trim().to_owned(),
                rank: rank_name(r.rank),
                description: r.description.clone(),
                conditions: r
                    .conditions
                    .iter()
                    .map(|c| match &c.condition {
                        Some(Shape::Field(f)) => condition_from_proto(f),
                        Some(Shape::MonthsSinceFirstContactAtMost(m)) => ranks::Condition {
                            months_since_first_contact_at_most: Some(*m),
                            ..Default::default()
                        },
                        Some(Shape::PageVisits(p)) => ranks::Condition {
                            page_url_contains: Some(p.url_contains.clone()),
                            visits_at_least: Some(p.at_least),
                            ..Default::default()
                        },
                        None => ranks::Condition::default(),
                    })
                    .collect(),
            })
            .collect(),
    }
}

fn rank_rules_to_proto(
    version: i32,
    updated_at: chrono::DateTime<chrono::Utc>,
    rules: &ranks::RankRules,
) -> RankRules {
    use rank_condition::Condition as Shape;
    let rank_of = |name: &str| Rank::from_str_name(name).unwrap_or(Rank::Unspecified) as i32;
    RankRules {
        version,
        default_rank: rank_of(&rules.default_rank),
        rules: rules
            .rules
            .iter()
            .map(|r| RankRule {
                key: r.key.clone(),
                rank: rank_of(&r.rank),
                description: r.description.clone(),
                conditions: r
                    .conditions
                    .iter()
                    .map(|c| {
                        let shape = if let Some(m) = c.months_since_first_contact_at_most {
                            Shape::MonthsSinceFirstContactAtMost(m)
                        } else if let Some(url) = &c.page_url_contains {
                            Shape::PageVisits(PageVisitsCondition {
                                url_contains: url.clone(),
                                at_least: c.visits_at_least.unwrap_or(1),
                            })
                        } else {
                            Shape::Field(condition_to_proto(c))
                        };
                        RankCondition {
                            condition: Some(shape),
                        }
                    })
                    .collect(),
            })
            .collect(),
        updated_at: Some(time::to_proto(updated_at)),
    }
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

const MAX_RULES: usize = 500;
const MAX_KEY_LEN: usize = 100;
const MAX_PATTERN_LEN: usize = 2000;

fn activity_kind_name(field: &str, raw: i32, violations: &mut Violations) -> Option<String> {
    match ActivityKind::try_from(raw) {
        Ok(ActivityKind::Unspecified) | Err(_) => {
            violations.add(field, "must be an activity kind");
            None
        }
        Ok(k) => Some(k.as_str_name().to_owned()),
    }
}

/// Proto definition → domain, with every field-level problem (malformed, unknown enum values,
/// conditions naming no field) as INVALID_ARGUMENT. Whether the model may be activated is the
/// domain's validation, at activation.
fn definition_from_proto(
    field: &str,
    def: Option<&ScoringModelDefinition>,
    violations: &mut Violations,
) -> ModelDefinition {
    let Some(def) = def else {
        violations.add(field, "is required");
        return ModelDefinition {
            mql_threshold: 0,
            rules: vec![],
        };
    };
    if def.rules.len() > MAX_RULES {
        violations.add(
            format!("{field}.rules"),
            format!("at most {MAX_RULES} rules"),
        );
    }
    let rules = def
        .rules
        .iter()
        .enumerate()
        .map(|(i, r)| {
            let at = format!("{field}.rules[{i}]");
            let key = r.key.trim().to_owned();
            if key.is_empty() {
                violations.add(format!("{at}.key"), "is required");
            } else if key.len() > MAX_KEY_LEN {
                violations.add(
                    format!("{at}.key"),
                    format!("must be at most {MAX_KEY_LEN} bytes"),
                );
            }
            if r.description.len() > MAX_NOTE_LEN {
                violations.add(
                    format!("{at}.description"),
                    format!("must be at most {MAX_NOTE_LEN} bytes"),
                );
            }
            let mut out = scoring::RuleDefinition {
                key,
                description: r.description.trim().to_owned(),
                points: r.points,
                cap: r.cap.as_ref().map(|c| scoring::Cap {
                    max_points: c.max_points,
                    period_days: c.period_days,
                }),
                expires_after_days: Some(r.expires_after_days).filter(|d| *d > 0),
                ..Default::default()
            };
            match &r.trigger {
                None => violations.add(
                    format!("{at}.trigger"),
                    "set one of attribute, behaviour or inactivity",
                ),
                Some(scoring_rule::Trigger::Attribute(a)) => {
                    for (j, c) in a.conditions.iter().enumerate() {
                        if c.field.trim().is_empty() {
                            violations.add(
                                format!("{at}.attribute.conditions[{j}].field"),
                                "names no field",
                            );
                        }
                    }
                    out.conditions = Some(a.conditions.iter().map(condition_from_proto).collect());
                }
                Some(scoring_rule::Trigger::Behaviour(b)) => {
                    out.activity_kind = activity_kind_name(
                        &format!("{at}.behaviour.activity_kind"),
                        b.activity_kind,
                        violations,
                    );
                    match PageKind::try_from(b.page_kind) {
                        Err(_) => violations
                            .add(format!("{at}.behaviour.page_kind"), "must be a page kind"),
                        Ok(PageKind::Unspecified) => {}
                        Ok(k) => out.page_kind = Some(k.as_str_name().to_owned()),
                    }
                    let pattern = b.url_pattern.trim();
                    if pattern.len() > MAX_PATTERN_LEN {
                        violations.add(
                            format!("{at}.behaviour.url_pattern"),
                            format!("must be at most {MAX_PATTERN_LEN} bytes"),
                        );
                    }
                    out.url_pattern = Some(pattern.to_owned()).filter(|p| !p.is_empty());
                }
                Some(scoring_rule::Trigger::Inactivity(n)) => {
                    out.activity_kind = activity_kind_name(
                        &format!("{at}.inactivity.activity_kind"),
                        n.activity_kind,
                        violations,
                    );
                    out.inactive_days = Some(n.days);
                }
            }
            out
        })
        .collect();
    ModelDefinition {
        mql_threshold: def.mql_threshold,
        rules,
    }
}

fn definition_to_proto(def: &ModelDefinition) -> ScoringModelDefinition {
    let kind = |name: &Option<String>| {
        name.as_deref()
            .and_then(ActivityKind::from_str_name)
            .unwrap_or(ActivityKind::Unspecified) as i32
    };
    ScoringModelDefinition {
        mql_threshold: def.mql_threshold,
        rules: def
            .rules
            .iter()
            .map(|r| ScoringRule {
                key: r.key.clone(),
                description: r.description.clone(),
                points: r.points,
                trigger: Some(match (&r.conditions, r.inactive_days) {
                    (Some(conditions), _) => scoring_rule::Trigger::Attribute(AttributeTrigger {
                        conditions: conditions.iter().map(condition_to_proto).collect(),
                    }),
                    (None, Some(days)) => scoring_rule::Trigger::Inactivity(InactivityTrigger {
                        activity_kind: kind(&r.activity_kind),
                        days,
                    }),
                    (None, None) => scoring_rule::Trigger::Behaviour(BehaviourTrigger {
                        activity_kind: kind(&r.activity_kind),
                        page_kind: r
                            .page_kind
                            .as_deref()
                            .and_then(PageKind::from_str_name)
                            .unwrap_or(PageKind::Unspecified)
                            as i32,
                        url_pattern: r.url_pattern.clone().unwrap_or_default(),
                    }),
                }),
                cap: r.cap.map(|c| ScoreCap {
                    max_points: c.max_points,
                    period_days: c.period_days,
                }),
                expires_after_days: r.expires_after_days.unwrap_or(0),
            })
            .collect(),
    }
}

fn model_to_proto(row: scoring_model::Model) -> ScoringModel {
    let definition = models::definition_of(&row)
        .ok()
        .map(|d| definition_to_proto(&d));
    let ts = |t: Option<chrono::DateTime<chrono::Utc>>| t.map(time::to_proto);
    ScoringModel {
        model_id: row.model_id,
        version: row.version,
        status: row.status,
        definition,
        created_at: Some(time::to_proto(row.created_at)),
        created_by: row.created_by,
        activated_at: ts(row.activated_at),
        activated_by: row.activated_by,
        recompute: (row.recompute_state != RecomputeState::Unspecified as i32).then(|| Recompute {
            state: row.recompute_state,
            leads_total: row.recompute_total,
            leads_done: row.recompute_done,
            started_at: ts(row.recompute_started_at),
            finished_at: ts(row.recompute_finished_at),
        }),
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
        let req = request.into_inner();
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
        Ok(Response::new(rank_rules_to_proto(
            row.version,
            row.updated_at,
            &rules,
        )))
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
        Ok(Response::new(rank_rules_to_proto(
            row.version,
            row.updated_at,
            &saved,
        )))
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
        let req = request.into_inner();
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
        let req = request.into_inner();
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
        let from = fields::required_time("from", req.from.as_ref(), &mut violations);
        let to = fields::required_time("to", req.to.as_ref(), &mut violations);
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
                violations.add("to", "must be after from");
            } else if t > time::now() + chrono::Duration::days(366) {
                violations.add("to", "must be at most a year ahead (history is simulated)");
            } else {
                let mut n = 0;
                let mut start = period.start_of(f);
                while start < t && n <= models::MAX_PERIODS {
                    start = period.after(start);
                    n += 1;
                }
                if n > models::MAX_PERIODS {
                    violations.add(
                        "to",
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
            .simulate(&tenant, which, from, to, period)
            .await?;
        let period_to_proto = |p: &models::PeriodResult| SimulatedPeriod {
            period_start: Some(time::to_proto(p.start)),
            period_end: Some(time::to_proto(p.end)),
            mqls: p.mqls,
            reached_sql: p.reached_sql,
            reached_opportunity: p.reached_opportunity,
            reached_customer: p.reached_customer,
        };
        let total = models::PeriodResult {
            start: from,
            end: to,
            mqls: sim.periods.iter().map(|p| p.mqls).sum(),
            reached_sql: sim.periods.iter().map(|p| p.reached_sql).sum(),
            reached_opportunity: sim.periods.iter().map(|p| p.reached_opportunity).sum(),
            reached_customer: sim.periods.iter().map(|p| p.reached_customer).sum(),
        };
        Ok(Response::new(SimulateModelResponse {
            leads_evaluated: sim.leads_evaluated,
            periods: sim.periods.iter().map(period_to_proto).collect(),
            total: Some(period_to_proto(&total)),
        }))
    }
}
