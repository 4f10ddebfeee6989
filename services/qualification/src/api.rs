//! qualification's gRPC edge: validate, call the store, map errors. No SQL here.

use baton_proto::qualification::v1::{
    Bant, BantItem, ChangeStageRequest, FieldCondition, FiredRule, GetRankRequest,
    GetRankRulesRequest, GetScoreRequest, GetStageRequest, LeadRank, LeadScore, LeadStage, OneOf,
    PageVisitsCondition, Rank, RankCondition, RankRule, RankRules, RecordBantRequest,
    SetRankRulesRequest, Stage, StageTransition, field_condition,
    qualification_service_server::QualificationService, rank_condition,
};
use baton_shared::{ApiError, TenantId, Violations, time};
use tonic::{Request, Response, Status};

use crate::{
    domain::ranks,
    store::{BantUpdate, StageView, Store},
};

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

fn rank_name(rank: i32) -> String {
    Rank::try_from(rank)
        .unwrap_or(Rank::Unspecified)
        .as_str_name()
        .to_owned()
}

/// Proto rank rules → domain (validation happens in the domain; unknown values become names the
/// validator rejects).
fn rank_rules_from_proto(rules: &RankRules) -> ranks::RankRules {
    use field_condition::Comparison;
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
                        Some(Shape::Field(f)) => {
                            let mut out = ranks::Condition {
                                field: Some(f.field.clone()),
                                currency: Some(f.currency.clone()).filter(|c| !c.is_empty()),
                                ..Default::default()
                            };
                            match &f.comparison {
                                Some(Comparison::Gte(v)) => out.gte = Some(*v),
                                Some(Comparison::Lt(v)) => out.lt = Some(*v),
                                Some(Comparison::Equals(v)) => out.equals = Some(v.clone()),
                                Some(Comparison::OneOf(v)) => out.one_of = Some(v.values.clone()),
                                Some(Comparison::Exists(v)) => out.exists = Some(*v),
                                None => {}
                            }
                            out
                        }
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
    use field_condition::Comparison;
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
                            let comparison = c
                                .gte
                                .map(Comparison::Gte)
                                .or(c.lt.map(Comparison::Lt))
                                .or(c.equals.clone().map(Comparison::Equals))
                                .or(c
                                    .one_of
                                    .clone()
                                    .map(|values| Comparison::OneOf(OneOf { values })))
                                .or(c.exists.map(Comparison::Exists));
                            Shape::Field(FieldCondition {
                                field: c.field.clone().unwrap_or_default(),
                                comparison,
                                currency: c.currency.clone().unwrap_or_default(),
                            })
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
            return Err(ApiError::invalid("rules", "is required").into());
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
