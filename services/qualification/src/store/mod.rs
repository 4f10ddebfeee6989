//! qualification's persistence: scoring models as rows, scores, score entries, stage history.

pub mod captured;
pub mod entities;
pub mod erasure;
pub mod models;
pub mod moves;
pub mod ranking;
pub mod stage_rules;

use baton_proto::{
    capture::v1::{Activity, ActivityKind, PageKind},
    qualification::v1::{BantRecorded, Stage},
};
use std::collections::HashMap;

use baton_shared::{
    TenantId,
    db::{self},
    events::EventLog,
    time,
};
use chrono::{DateTime, Utc};
use sea_orm::{
    ActiveValue::{NotSet, Set},
    ConnectionTrait, DatabaseConnection, DbErr, EntityTrait, QueryFilter, QueryOrder,
    TransactionTrait,
    prelude::*,
};

use crate::domain::{
    ranks::RankRules,
    scoring::{self, ActivityFact, Computation, LeadFacts, ScoringModel, TriggerKind},
    stages,
};
use crate::error::Error;
use entities::{
    lead_activity, lead_bant, lead_profile, lead_score, score_entry, scoring_model, stage_history,
};
use moves::{ACTOR_SCORING, REASON_BANT_COMPLETE, REASON_SCORE_THRESHOLD, move_stage, record_move};

#[derive(Clone)]
pub struct Store {
    db: DatabaseConnection,
}

/// A lead's score with the rules that produced it.
pub struct ScoreView {
    pub score: lead_score::Model,
    pub mql_threshold: i64,
    pub entries: Vec<score_entry::Model>,
}

/// A lead's stage with its BANT and history.
pub struct StageView {
    pub score: lead_score::Model,
    pub bant: Option<lead_bant::Model>,
    pub history: Vec<stage_history::Model>,
}

/// BANT items given in a request: `None` leaves an item as it was.
#[derive(Debug, Clone, Default)]
pub struct BantUpdate {
    pub budget: Option<(bool, String)>,
    pub authority: Option<(bool, String)>,
    pub need: Option<(bool, String)>,
    pub timeframe: Option<(bool, String)>,
}

impl Store {
    pub fn new(db: DatabaseConnection) -> Self {
        Store { db }
    }

    /// Records BANT items; a complete BANT moves a marketing-stage lead to SQL.
    pub async fn record_bant(
        &self,
        tenant: &TenantId,
        lead_id: &str,
        update: &BantUpdate,
        recorded_by: &str,
    ) -> Result<StageView, Error> {
        let txn = self.db.begin().await?;
        let score = find_score(&txn, tenant, lead_id)
            .await?
            .ok_or_else(|| Error::not_found("lead", lead_id))?;
        let existing = lead_bant::Entity::find_by_id((tenant.to_string(), lead_id.to_owned()))
            .one(&txn)
            .await?;
        let mut row = match existing.clone() {
            Some(b) => b,
            None => lead_bant::Model {
                tenant_id: tenant.to_string(),
                lead_id: lead_id.to_owned(),
                budget: false,
                budget_note: String::new(),
                authority: false,
                authority_note: String::new(),
                need: false,
                need_note: String::new(),
                timeframe: false,
                timeframe_note: String::new(),
                recorded_by: String::new(),
                updated_at: time::now(),
            },
        };
        if let Some((c, n)) = &update.budget {
            (row.budget, row.budget_note) = (*c, n.clone());
        }
        if let Some((c, n)) = &update.authority {
            (row.authority, row.authority_note) = (*c, n.clone());
        }
        if let Some((c, n)) = &update.need {
            (row.need, row.need_note) = (*c, n.clone());
        }
        if let Some((c, n)) = &update.timeframe {
            (row.timeframe, row.timeframe_note) = (*c, n.clone());
        }
        row.recorded_by = recorded_by.to_owned();
        row.updated_at = time::now();
        let status = stages::BantStatus {
            budget: row.budget,
            authority: row.authority,
            need: row.need,
            timeframe: row.timeframe,
        };
        let mut active: lead_bant::ActiveModel = row.into();
        if existing.is_some() {
            for c in [
                lead_bant::Column::Budget,
                lead_bant::Column::BudgetNote,
                lead_bant::Column::Authority,
                lead_bant::Column::AuthorityNote,
                lead_bant::Column::Need,
                lead_bant::Column::NeedNote,
                lead_bant::Column::Timeframe,
                lead_bant::Column::TimeframeNote,
                lead_bant::Column::RecordedBy,
                lead_bant::Column::UpdatedAt,
            ] {
                active.reset(c);
            }
            active.update(&txn).await?;
        } else {
            lead_bant::Entity::insert(active).exec(&txn).await?;
        }
        announce_bant(&txn, tenant, lead_id, status, recorded_by).await?;
        let stage = Stage::try_from(score.stage).unwrap_or(Stage::Lead);
        let (_, rules) = stage_rules::stage_rules(&txn, tenant).await?;
        if let Some(to) = stages::stage_after_bant(stage, status, &rules) {
            move_stage(&txn, tenant, score, to, REASON_BANT_COMPLETE, recorded_by).await?;
        }
        let view = stage_view(&txn, tenant, lead_id).await?;
        txn.commit().await?;
        Ok(view)
    }

    /// Moves a lead by hand, logged with who and why.
    pub async fn change_stage(
        &self,
        tenant: &TenantId,
        lead_id: &str,
        to: Stage,
        reason: &str,
        changed_by: &str,
        override_reason: &str,
    ) -> Result<StageView, Error> {
        let txn = self.db.begin().await?;
        let score = find_score(&txn, tenant, lead_id)
            .await?
            .ok_or_else(|| Error::not_found("lead", lead_id))?;
        let from = Stage::try_from(score.stage).unwrap_or(Stage::Lead);
        if let Err(rule) = stages::check_manual_move(from, to) {
            return Err(Error::RuleBroken {
                rule: rule.into(),
                description: format!("lead {lead_id} is already {}", from.as_str_name()),
            });
        }
        let mut reason = reason.to_owned();
        if to == Stage::Sql {
            let missing = self.sql_gate_missing(&txn, tenant, lead_id).await?;
            if !missing.is_empty() && override_reason.is_empty() {
                return Err(Error::RuleBroken {
                    rule: "sql_gate".into(),
                    description: format!(
                        "BANT items not confirmed: {}; state override_reason to move anyway",
                        missing.join(", ")
                    ),
                });
            }
            if !missing.is_empty() {
                reason = format!("{reason} (override: {override_reason})");
            }
        }
        move_stage(&txn, tenant, score, to, &reason, changed_by).await?;
        let view = stage_view(&txn, tenant, lead_id).await?;
        txn.commit().await?;
        Ok(view)
    }

    /// The BANT items the tenant's SQL gate needs that the lead has not confirmed.
    async fn sql_gate_missing<C: ConnectionTrait>(
        &self,
        txn: &C,
        tenant: &TenantId,
        lead_id: &str,
    ) -> Result<Vec<&'static str>, DbErr> {
        let (_, rules) = stage_rules::stage_rules(txn, tenant).await?;
        let status = lead_bant::Entity::find_by_id((tenant.to_string(), lead_id.to_owned()))
            .one(txn)
            .await?
            .map(|b| stages::BantStatus {
                budget: b.budget,
                authority: b.authority,
                need: b.need,
                timeframe: b.timeframe,
            })
            .unwrap_or_default();
        Ok(status
            .missing(&rules)
            .into_iter()
            .map(|item| item.as_str_name())
            .collect())
    }

    pub async fn stage_rules(
        &self,
        tenant: &TenantId,
    ) -> Result<(entities::stage_ruleset::Model, stages::StageRules), Error> {
        Ok(stage_rules::stage_rules(&self.db, tenant).await?)
    }

    /// Replaces the stage rules with a new version (see [`stage_rules::set_stage_rules`]).
    pub async fn set_stage_rules(
        &self,
        tenant: &TenantId,
        rules: &stages::StageRules,
        expected_version: i32,
    ) -> Result<entities::stage_ruleset::Model, Error> {
        let txn = self.db.begin().await?;
        let saved = stage_rules::set_stage_rules(&txn, tenant, rules, expected_version).await?;
        txn.commit().await?;
        Ok(saved)
    }

    pub async fn get_rank(
        &self,
        tenant: &TenantId,
        lead_id: &str,
    ) -> Result<(entities::lead_rank::Model, Vec<String>), Error> {
        ranking::get(&self.db, tenant, lead_id).await
    }

    pub async fn rank_rules(
        &self,
        tenant: &TenantId,
    ) -> Result<(entities::rank_ruleset::Model, RankRules), Error> {
        let txn = self.db.begin().await?;
        let found = ranking::ruleset(&txn, tenant).await?;
        txn.commit().await?;
        Ok(found)
    }

    /// Replaces the rank rules and starts the re-rank of every lead under them, as a job the
    /// scoring worker runs in batches ([`ranking::rerank_batch`]).
    pub async fn set_rank_rules(
        &self,
        tenant: &TenantId,
        rules: &RankRules,
        expected_version: i32,
    ) -> Result<(entities::rank_ruleset::Model, RankRules), Error> {
        let txn = self.db.begin().await?;
        let saved = ranking::set_rules(&txn, tenant, rules, expected_version).await?;
        txn.commit().await?;
        Ok((saved, rules.clone()))
    }

    pub async fn get_stage(&self, tenant: &TenantId, lead_id: &str) -> Result<StageView, Error> {
        let txn = baton_shared::db::begin_snapshot(&self.db).await?;
        let view = stage_view(&txn, tenant, lead_id).await?;
        txn.commit().await?;
        Ok(view)
    }

    pub async fn get_score(&self, tenant: &TenantId, lead_id: &str) -> Result<ScoreView, Error> {
        let txn = baton_shared::db::begin_snapshot(&self.db).await?;
        let score = find_score(&txn, tenant, lead_id)
            .await?
            .ok_or_else(|| Error::not_found("lead", lead_id))?;
        let threshold = scoring_model::Entity::find()
            .filter(scoring_model::Column::ModelId.eq(score.model_id.as_str()))
            .one(&txn)
            .await?
            .map_or(0, |m| m.mql_threshold);
        let entries = score_entry::Entity::find()
            .filter(score_entry::Column::TenantId.eq(tenant.as_str()))
            .filter(score_entry::Column::LeadId.eq(lead_id))
            .order_by_asc(score_entry::Column::Seq)
            .all(&txn)
            .await?
            .into_iter()
            .filter(|e| e.expires_at.is_none_or(|x| x > score.updated_at))
            .collect();
        txn.commit().await?;
        Ok(ScoreView {
            score,
            mql_threshold: threshold,
            entries,
        })
    }
}

async fn stage_view<C: ConnectionTrait>(
    txn: &C,
    tenant: &TenantId,
    lead_id: &str,
) -> Result<StageView, Error> {
    let score = find_score(txn, tenant, lead_id)
        .await?
        .ok_or_else(|| Error::not_found("lead", lead_id))?;
    let bant = lead_bant::Entity::find_by_id((tenant.to_string(), lead_id.to_owned()))
        .one(txn)
        .await?;
    let history = stage_history::Entity::find()
        .filter(stage_history::Column::TenantId.eq(tenant.as_str()))
        .filter(stage_history::Column::LeadId.eq(lead_id))
        .order_by_asc(stage_history::Column::Seq)
        .all(txn)
        .await?;
    Ok(StageView {
        score,
        bant,
        history,
    })
}

async fn insert_score<C: ConnectionTrait>(
    txn: &C,
    tenant: &TenantId,
    lead_id: &str,
    model: &ScoringModel,
) -> Result<lead_score::Model, DbErr> {
    lead_score::ActiveModel {
        seq: NotSet,
        tenant_id: Set(tenant.to_string()),
        lead_id: Set(lead_id.to_owned()),
        score: Set(0),
        stage: Set(Stage::Lead as i32),
        model_id: Set(model.model_id.clone()),
        model_version: Set(model.version),
        updated_at: Set(time::now()),
        next_change_at: Set(None),
    }
    .insert(txn)
    .await
}

/// Starts tracking a newly captured lead at score 0, stage LEAD (idempotent).
pub async fn start_lead<C: ConnectionTrait>(
    txn: &C,
    tenant: &TenantId,
    lead_id: &str,
) -> Result<lead_score::Model, DbErr> {
    if let Some(existing) = find_score(txn, tenant, lead_id).await? {
        return Ok(existing);
    }
    let model = active_model(txn, tenant).await?;
    insert_score(txn, tenant, lead_id, &model).await
}

/// Scores one activity: keeps it in the lead's history, moves a lead that downloaded a document
/// to IQL, and recomputes the lead's score under the active model (moving the stage, with a
/// `StageChanged` event, when the threshold is crossed). A redelivered activity changes nothing.
pub async fn score_activity<C: ConnectionTrait>(
    txn: &C,
    tenant: &TenantId,
    activity: &Activity,
) -> Result<(), DbErr> {
    let current = start_lead(txn, tenant, &activity.lead_id).await?;
    let kind = ActivityKind::try_from(activity.kind).unwrap_or(ActivityKind::Unspecified);
    let occurred_at = activity
        .occurred_at
        .as_ref()
        .and_then(time::from_proto)
        .unwrap_or_else(time::now);
    let inserted = lead_activity::Entity::insert(lead_activity::ActiveModel {
        seq: NotSet,
        tenant_id: Set(tenant.to_string()),
        lead_id: Set(activity.lead_id.clone()),
        activity_id: Set(activity.activity_id.clone()),
        kind: Set(activity.kind),
        page_kind: Set(activity.page_kind),
        url: Set(activity.url.clone()),
        occurred_at: Set(occurred_at),
    })
    .on_conflict_do_nothing_on([
        lead_activity::Column::TenantId,
        lead_activity::Column::ActivityId,
    ])
    .exec(txn)
    .await?;
    if matches!(inserted, sea_orm::TryInsertResult::Conflicted) {
        return Ok(());
    }
    let (_, rules) = stage_rules::stage_rules(txn, tenant).await?;
    let current = match stages::stage_after_activity(
        Stage::try_from(current.stage).unwrap_or(Stage::Lead),
        kind,
        &rules,
    ) {
        Some(to) => {
            move_stage(
                txn,
                tenant,
                current.clone(),
                to,
                &stages::iql_reason(kind),
                ACTOR_SCORING,
            )
            .await?;
            find_score(txn, tenant, &activity.lead_id)
                .await?
                .unwrap_or(current)
        }
        None => current,
    };
    let model = active_model(txn, tenant).await?;
    rescore(txn, tenant, current, &model, time::now()).await
}

/// Recomputes a known lead's score under the active model (after its profile changed).
pub async fn rescore_lead<C: ConnectionTrait>(
    txn: &C,
    tenant: &TenantId,
    lead_id: &str,
) -> Result<(), DbErr> {
    let current = start_lead(txn, tenant, lead_id).await?;
    let model = active_model(txn, tenant).await?;
    rescore(txn, tenant, current, &model, time::now()).await
}

/// Everything the scoring of these leads depends on besides the model, loaded in three queries.
pub async fn lead_facts<C: ConnectionTrait>(
    txn: &C,
    tenant: &TenantId,
    lead_ids: &[String],
) -> Result<HashMap<String, LeadFacts>, DbErr> {
    let mut facts: HashMap<String, LeadFacts> = lead_ids
        .iter()
        .map(|id| (id.clone(), LeadFacts::default()))
        .collect();
    for chunk in lead_ids.chunks(db::IN_CHUNK) {
        let profiles = lead_profile::Entity::find()
            .filter(lead_profile::Column::TenantId.eq(tenant.as_str()))
            .filter(lead_profile::Column::LeadId.is_in(chunk.iter().cloned()))
            .all(txn)
            .await?;
        for p in profiles {
            if let Some(f) = facts.get_mut(&p.lead_id) {
                f.fields = serde_json::from_str(&p.fields).unwrap_or_default();
                f.revenue = p.revenue_currency.zip(p.revenue_minor);
                f.first_seen_at = p.first_contact_at;
            }
        }
        let activities = lead_activity::Entity::find()
            .filter(lead_activity::Column::TenantId.eq(tenant.as_str()))
            .filter(lead_activity::Column::LeadId.is_in(chunk.iter().cloned()))
            .all(txn)
            .await?;
        for a in activities {
            if let Some(f) = facts.get_mut(&a.lead_id) {
                f.activities.push(ActivityFact {
                    activity_id: a.activity_id,
                    kind: ActivityKind::try_from(a.kind).unwrap_or(ActivityKind::Unspecified),
                    page_kind: PageKind::try_from(a.page_kind).unwrap_or(PageKind::Unspecified),
                    url: a.url,
                    occurred_at: a.occurred_at,
                });
            }
        }
    }
    Ok(facts)
}

/// Recomputes one lead's score under `model` at `now`: replaces its score entries with the
/// computation's contributions, stores the score and when it next changes by itself, and moves the
/// stage when the threshold is crossed.
pub async fn rescore<C: ConnectionTrait>(
    txn: &C,
    tenant: &TenantId,
    current: lead_score::Model,
    model: &ScoringModel,
    now: DateTime<Utc>,
) -> Result<(), DbErr> {
    let facts = lead_facts(txn, tenant, std::slice::from_ref(&current.lead_id))
        .await?
        .remove(&current.lead_id)
        .unwrap_or_default();
    rescore_facts(txn, tenant, current, model, &facts, now, false).await
}

/// [`rescore`] on facts the caller has; `fresh` says the lead has no score entries yet.
async fn rescore_facts<C: ConnectionTrait>(
    txn: &C,
    tenant: &TenantId,
    current: lead_score::Model,
    model: &ScoringModel,
    facts: &LeadFacts,
    now: DateTime<Utc>,
    fresh: bool,
) -> Result<(), DbErr> {
    let computed = scoring::compute(model, facts, now);
    if !fresh {
        score_entry::Entity::delete_many()
            .filter(score_entry::Column::TenantId.eq(tenant.as_str()))
            .filter(score_entry::Column::LeadId.eq(current.lead_id.as_str()))
            .exec(txn)
            .await?;
    }
    insert_entries(txn, tenant, &current.lead_id, &computed).await?;
    set_score(txn, tenant, current, &computed, model).await
}

/// Stores the contributions of a computation as the lead's score entries.
async fn insert_entries<C: ConnectionTrait>(
    txn: &C,
    tenant: &TenantId,
    lead_id: &str,
    computed: &Computation,
) -> Result<(), DbErr> {
    let entries = entry_rows(tenant, lead_id, computed);
    if !entries.is_empty() {
        score_entry::Entity::insert_many(entries).exec(txn).await?;
    }
    Ok(())
}

/// The score entries of a computation's contributions.
fn entry_rows(
    tenant: &TenantId,
    lead_id: &str,
    computed: &Computation,
) -> Vec<score_entry::ActiveModel> {
    computed
        .contributions
        .iter()
        .map(|c| score_entry::ActiveModel {
            seq: NotSet,
            tenant_id: Set(tenant.to_string()),
            lead_id: Set(lead_id.to_owned()),
            activity_id: Set(c.activity_id.clone()),
            rule_key: Set(c.rule_key.clone()),
            description: Set(c.description.clone()),
            points: Set(c.points),
            occurred_at: Set(c.fired_at),
            expires_at: Set(c.expires_at),
            trigger: Set(trigger_value(c.trigger)),
            detail: Set(c.detail.clone()),
        })
        .collect()
}

pub fn trigger_value(t: TriggerKind) -> i32 {
    use baton_proto::qualification::v1::TriggerKind as Proto;
    (match t {
        TriggerKind::Attribute => Proto::Attribute,
        TriggerKind::Behaviour => Proto::Behaviour,
        TriggerKind::Inactivity => Proto::Inactivity,
    }) as i32
}

/// Stores a lead's new score under `model` and, when the score crosses the model's threshold,
/// its new stage in the same update (with history and a `StageChanged` event).
async fn set_score<C: ConnectionTrait>(
    txn: &C,
    tenant: &TenantId,
    current: lead_score::Model,
    computed: &Computation,
    model: &ScoringModel,
) -> Result<(), DbErr> {
    let from = Stage::try_from(current.stage).unwrap_or(Stage::Lead);
    let next = stages::stage_after_scoring(from, computed.score, model.mql_threshold);
    let now = time::now();
    let mut row: lead_score::ActiveModel = current.into();
    row.score = Set(computed.score);
    row.model_id = Set(model.model_id.clone());
    row.model_version = Set(model.version);
    row.next_change_at = Set(computed.next_change_at);
    row.updated_at = Set(now);
    if let Some(to) = next {
        row.stage = Set(to as i32);
    }
    let updated = row.update(txn).await?;
    match next {
        Some(to) => {
            record_move(
                txn,
                tenant,
                &updated,
                from,
                to,
                REASON_SCORE_THRESHOLD,
                ACTOR_SCORING,
                now,
            )
            .await
        }
        None => Ok(()),
    }
}

/// Field sales moved a handed-off lead (accepted, won, lost, rejected to nurture): its stage
/// follows, with the step as the reason. A lead qualification has not seen, or already there, is
/// left alone.
pub async fn handoff_moved<C: ConnectionTrait>(
    txn: &C,
    tenant: &TenantId,
    lead_id: &str,
    to: Stage,
    reason: &str,
    changed_by: &str,
) -> Result<(), DbErr> {
    let Some(current) = find_score(txn, tenant, lead_id).await? else {
        return Ok(());
    };
    if current.stage == to as i32 {
        return Ok(());
    }
    move_stage(txn, tenant, current, to, reason, changed_by).await
}

/// A duplicate lead was merged into a survivor in capture: its activities move to the survivor,
/// whose score is recomputed over the combined history (the stage may move); the duplicate's own
/// score and entries are dropped.
pub async fn merge_scores<C: ConnectionTrait>(
    txn: &C,
    tenant: &TenantId,
    survivor_id: &str,
    merged_id: &str,
) -> Result<(), DbErr> {
    let survivor = start_lead(txn, tenant, survivor_id).await?;
    lead_activity::Entity::update_many()
        .col_expr(
            lead_activity::Column::LeadId,
            Expr::value(survivor_id.to_owned()),
        )
        .filter(lead_activity::Column::TenantId.eq(tenant.as_str()))
        .filter(lead_activity::Column::LeadId.eq(merged_id))
        .exec(txn)
        .await?;
    score_entry::Entity::delete_many()
        .filter(score_entry::Column::TenantId.eq(tenant.as_str()))
        .filter(score_entry::Column::LeadId.eq(merged_id))
        .exec(txn)
        .await?;
    lead_score::Entity::delete_many()
        .filter(lead_score::Column::TenantId.eq(tenant.as_str()))
        .filter(lead_score::Column::LeadId.eq(merged_id))
        .exec(txn)
        .await?;
    let model = active_model(txn, tenant).await?;
    rescore(txn, tenant, survivor, &model, time::now()).await
}

/// Drops an erased lead's activity history and score entries (they may name pages and
/// campaigns it saw). Its score and stage stay, so counts do not change; it no longer decays.
pub async fn forget_lead<C: ConnectionTrait>(
    txn: &C,
    tenant: &TenantId,
    lead_id: &str,
) -> Result<(), DbErr> {
    lead_activity::Entity::delete_many()
        .filter(lead_activity::Column::TenantId.eq(tenant.as_str()))
        .filter(lead_activity::Column::LeadId.eq(lead_id))
        .exec(txn)
        .await?;
    score_entry::Entity::delete_many()
        .filter(score_entry::Column::TenantId.eq(tenant.as_str()))
        .filter(score_entry::Column::LeadId.eq(lead_id))
        .exec(txn)
        .await?;
    lead_score::Entity::update_many()
        .col_expr(
            lead_score::Column::NextChangeAt,
            Expr::value(Option::<DateTime<Utc>>::None),
        )
        .filter(lead_score::Column::TenantId.eq(tenant.as_str()))
        .filter(lead_score::Column::LeadId.eq(lead_id))
        .exec(txn)
        .await?;
    Ok(())
}

async fn find_score<C: ConnectionTrait>(
    db: &C,
    tenant: &TenantId,
    lead_id: &str,
) -> Result<Option<lead_score::Model>, DbErr> {
    lead_score::Entity::find()
        .filter(lead_score::Column::TenantId.eq(tenant.as_str()))
        .filter(lead_score::Column::LeadId.eq(lead_id))
        .one(db)
        .await
}

/// The tenant's active scoring model, seeding the default one (docs/domain.md) on first use.
pub async fn active_model<C: ConnectionTrait>(
    txn: &C,
    tenant: &TenantId,
) -> Result<ScoringModel, DbErr> {
    let row = match models::active_row(txn, tenant).await? {
        Some(m) => m,
        None => models::seed_default(txn, tenant).await?,
    };
    models::compile_row(&row).map_err(|p| {
        DbErr::Custom(format!(
            "active scoring model {} is invalid: {}",
            row.model_id,
            p.join("; ")
        ))
    })
}

/// The `BantRecorded` event of a lead's whole BANT after a change (before any stage move it
/// causes, so a consumer knows the BANT when it sees the move).
async fn announce_bant<C: ConnectionTrait>(
    txn: &C,
    tenant: &TenantId,
    lead_id: &str,
    status: stages::BantStatus,
    recorded_by: &str,
) -> Result<(), DbErr> {
    let event = BantRecorded {
        lead_id: lead_id.to_owned(),
        budget: status.budget,
        authority: status.authority,
        need: status.need,
        timeframe: status.timeframe,
        recorded_by: recorded_by.to_owned(),
        recorded_at: Some(time::to_proto(time::now())),
    };
    EventLog::append(txn, tenant, lead_id, &event).await
}

/// A handed-off lead's outcome (the last one recorded wins).
pub async fn record_outcome<C: ConnectionTrait>(
    txn: &C,
    tenant: &TenantId,
    lead_id: &str,
    won: bool,
    amount: Option<(String, i64)>,
    closed_at: DateTime<Utc>,
) -> Result<(), DbErr> {
    use sea_orm::sea_query::OnConflict;
    entities::lead_outcome::Entity::insert(entities::lead_outcome::ActiveModel {
        tenant_id: Set(tenant.to_string()),
        lead_id: Set(lead_id.to_owned()),
        won: Set(won),
        amount_currency: Set(amount.as_ref().map(|(c, _)| c.clone())),
        amount_minor: Set(amount.map(|(_, m)| m)),
        closed_at: Set(closed_at),
    })
    .on_conflict(
        OnConflict::columns([
            entities::lead_outcome::Column::TenantId,
            entities::lead_outcome::Column::LeadId,
        ])
        .update_columns([
            entities::lead_outcome::Column::Won,
            entities::lead_outcome::Column::AmountCurrency,
            entities::lead_outcome::Column::AmountMinor,
            entities::lead_outcome::Column::ClosedAt,
        ])
        .to_owned(),
    )
    .exec_without_returning(txn)
    .await?;
    Ok(())
}
