//! Newly captured leads: their profiles kept, scored and ranked set-based across a consumer
//! batch (a few statements for all of them), with what the batch's events share read once.

use std::collections::HashMap;

use baton_proto::qualification::v1::{Stage, StageChanged};
use baton_shared::{
    TenantId,
    db::{self, find_in},
    events::EventLog,
    time,
};
use chrono::{DateTime, Utc};
use sea_orm::{ActiveValue::NotSet, ConnectionTrait, DbErr, EntityTrait, QueryFilter, prelude::*};

use super::{
    active_model, entities,
    entities::{lead_score, stage_history},
    entry_rows, find_score, insert_score,
    moves::move_of,
    moves::{ACTOR_SCORING, REASON_SCORE_THRESHOLD},
    ranking, rescore,
};
use crate::domain::{
    ranks::{RankFacts, RankRules},
    scoring::{self, LeadFacts, ScoringModel},
    stages,
};

/// What one `LeadCaptured` event says: the lead, its profile (if the event carries it), when it
/// was first contacted, and the span of the event (its trace).
pub struct CapturedLead<'a> {
    pub lead_id: &'a str,
    pub lead: Option<&'a baton_proto::capture::v1::Lead>,
    pub first_contact_at: Option<DateTime<Utc>>,
    pub span: &'a tracing::Span,
}

/// Starts tracking newly captured leads: keeps their profiles, scores and ranks them. A new lead
/// with a profile is scored and ranked on that profile (no read-back), set-based across `captured`
/// (a few statements for all of them); a lead already tracked (or without a profile) is rescored
/// and re-ranked over what is stored, one at a time.
pub async fn leads_captured<C: ConnectionTrait>(
    txn: &C,
    tenant: &TenantId,
    captured: &[CapturedLead<'_>],
    active: &mut ActiveRules,
) -> Result<(), DbErr> {
    let model = active.model(txn, tenant).await?;
    let ids: Vec<&str> = captured.iter().map(|c| c.lead_id).collect();
    let query = lead_score::Entity::find().filter(lead_score::Column::TenantId.eq(tenant.as_str()));
    let tracked: HashMap<String, lead_score::Model> =
        find_in(txn, query, lead_score::Column::LeadId, &ids)
            .await?
            .into_iter()
            .map(|row| (row.lead_id.clone(), row))
            .collect();
    ranking::upsert_profiles(txn, tenant, &latest_profiles(captured)).await?;

    let now = time::now();
    let (fresh, one_by_one) = split_fresh(captured, &tracked);
    if !fresh.is_empty() {
        score_fresh(txn, tenant, &model, &fresh, now).await?;
        rank_fresh(txn, tenant, &fresh, active, now).await?;
    }
    for c in one_by_one {
        use tracing::Instrument;
        async {
            let current = match find_score(txn, tenant, c.lead_id).await? {
                Some(current) => current,
                None => insert_score(txn, tenant, c.lead_id, &model).await?,
            };
            rescore(txn, tenant, current, &model, now).await?;
            ranking::rerank(txn, tenant, c.lead_id).await
        }
        .instrument(c.span.clone())
        .await?;
    }
    Ok(())
}

/// The profiles of `captured`, the last one of a lead named twice winning (as applying them in
/// order would), in capture order.
fn latest_profiles<'a>(
    captured: &[CapturedLead<'a>],
) -> Vec<(&'a baton_proto::capture::v1::Lead, Option<DateTime<Utc>>)> {
    let mut profiles: Vec<(&baton_proto::capture::v1::Lead, Option<DateTime<Utc>>)> = Vec::new();
    for c in captured.iter().rev() {
        if let Some(lead) = c.lead
            && !profiles.iter().any(|(l, _)| l.lead_id == lead.lead_id)
        {
            profiles.push((lead, c.first_contact_at));
        }
    }
    profiles.reverse();
    profiles
}

/// A lead seen for the first time, with a profile: scored and ranked set-based.
struct FreshLead<'b, 'a> {
    captured: &'b CapturedLead<'a>,
    facts: RankFacts,
}

/// New leads with a profile (each once), and the rest, to rescore one at a time.
fn split_fresh<'b, 'a>(
    captured: &'b [CapturedLead<'a>],
    tracked: &HashMap<String, lead_score::Model>,
) -> (Vec<FreshLead<'b, 'a>>, Vec<&'b CapturedLead<'a>>) {
    let mut seen: std::collections::HashSet<&str> = std::collections::HashSet::new();
    let mut fresh = Vec::new();
    let mut one_by_one = Vec::new();
    for c in captured {
        match c.lead {
            Some(lead) if !tracked.contains_key(c.lead_id) && seen.insert(c.lead_id) => {
                fresh.push(FreshLead {
                    captured: c,
                    facts: ranking::captured_facts(lead, c.first_contact_at),
                })
            }
            _ => one_by_one.push(c),
        }
    }
    (fresh, one_by_one)
}

/// Scores the fresh leads on their profiles: score rows, score entries, stage moves and their
/// `StageChanged` events, a few statements for all.
async fn score_fresh<C: ConnectionTrait>(
    txn: &C,
    tenant: &TenantId,
    model: &ScoringModel,
    fresh: &[FreshLead<'_, '_>],
    now: DateTime<Utc>,
) -> Result<(), DbErr> {
    let mut scores = Vec::with_capacity(fresh.len());
    let mut entries = Vec::new();
    let mut moves = Vec::new();
    for FreshLead {
        captured: c,
        facts: rank_facts,
    } in fresh
    {
        let facts = LeadFacts {
            fields: rank_facts.fields.clone(),
            revenue: rank_facts.revenue.clone(),
            first_seen_at: c.first_contact_at,
            activities: Vec::new(),
        };
        let computed = scoring::compute(model, &facts, now);
        let next = stages::stage_after_scoring(Stage::Lead, computed.score, model.mql_threshold);
        let score = lead_score::Model {
            seq: 0,
            tenant_id: tenant.to_string(),
            lead_id: c.lead_id.to_owned(),
            score: computed.score,
            stage: next.unwrap_or(Stage::Lead) as i32,
            model_id: model.model_id.clone(),
            model_version: model.version,
            updated_at: now,
            next_change_at: computed.next_change_at,
        };
        entries.extend(entry_rows(tenant, c.lead_id, &computed));
        if let Some(to) = next {
            let (history, event) = move_of(
                &score,
                Stage::Lead,
                to,
                REASON_SCORE_THRESHOLD,
                ACTOR_SCORING,
                now,
            );
            moves.push((history, event, c.span));
        }
        let mut row: lead_score::ActiveModel = score.into();
        row.seq = NotSet;
        scores.push(row);
    }
    db::insert_chunked(txn, &scores).await?;
    db::insert_chunked(txn, &entries).await?;
    for chunk in moves.chunks(CHUNK) {
        stage_history::Entity::insert_many(chunk.iter().map(|(h, _, _)| h.clone()))
            .exec_without_returning(txn)
            .await?;
    }
    let events: Vec<(&str, &StageChanged, &tracing::Span)> = moves
        .iter()
        .map(|(_, e, span)| (e.lead_id.as_str(), e, *span))
        .collect();
    EventLog::append_many(txn, tenant, &events).await?;
    Ok(())
}

/// Ranks the fresh leads on their profiles under the tenant's rank rules.
async fn rank_fresh<C: ConnectionTrait>(
    txn: &C,
    tenant: &TenantId,
    fresh: &[FreshLead<'_, '_>],
    active: &mut ActiveRules,
    now: DateTime<Utc>,
) -> Result<(), DbErr> {
    let rules = active.rank_rules(txn, tenant).await?;
    let fresh_ids: Vec<&str> = fresh.iter().map(|f| f.captured.lead_id).collect();
    let query = entities::lead_rank::Entity::find()
        .filter(entities::lead_rank::Column::TenantId.eq(tenant.as_str()));
    let ranked: HashMap<String, entities::lead_rank::Model> =
        find_in(txn, query, entities::lead_rank::Column::LeadId, &fresh_ids)
            .await?
            .into_iter()
            .map(|row| (row.lead_id.clone(), row))
            .collect();
    let mut changes = Vec::new();
    let mut spans = Vec::new();
    for FreshLead {
        captured: c,
        facts: rank_facts,
    } in fresh
    {
        let previous = ranked.get(c.lead_id);
        if let Some(change) =
            ranking::rank_change(tenant, c.lead_id, rank_facts, &rules, previous, now)?
        {
            changes.push(change);
            spans.push(c.span);
        }
    }
    ranking::store_ranks(txn, tenant, changes, &spans).await?;
    Ok(())
}

/// Rows per multi-row INSERT.
const CHUNK: usize = db::IN_CHUNK;

/// What the events of one consumer batch share: each tenant's active scoring model and rank
/// rules, read once per batch. A batch sees them as of its first read; an activation committed
/// meanwhile applies from the next batch on (and its recompute rescores every lead anyway).
#[derive(Default)]
pub struct ActiveRules {
    models: HashMap<String, ScoringModel>,
    rank_rules: HashMap<String, RankRules>,
}

impl ActiveRules {
    pub async fn model<C: ConnectionTrait>(
        &mut self,
        txn: &C,
        tenant: &TenantId,
    ) -> Result<ScoringModel, DbErr> {
        if let Some(m) = self.models.get(tenant.as_str()) {
            return Ok(m.clone());
        }
        let m = active_model(txn, tenant).await?;
        self.models.insert(tenant.to_string(), m.clone());
        Ok(m)
    }

    pub async fn rank_rules<C: ConnectionTrait>(
        &mut self,
        txn: &C,
        tenant: &TenantId,
    ) -> Result<RankRules, DbErr> {
        if let Some(r) = self.rank_rules.get(tenant.as_str()) {
            return Ok(r.clone());
        }
        let r = ranking::ruleset(txn, tenant).await?.1;
        self.rank_rules.insert(tenant.to_string(), r.clone());
        Ok(r)
    }
}
