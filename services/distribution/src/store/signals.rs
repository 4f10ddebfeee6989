//! What routing and the handoff gate know of a lead: the profile fields routing conditions read
//! (from capture's events) beside qualification's score, stage and rank.

use std::collections::{BTreeMap, HashMap};

use baton_proto::{
    capture::v1::Lead,
    qualification::v1::{Rank, Stage},
};
use baton_shared::{TenantId, time};
use sea_orm::{
    ActiveValue::Set, ConnectionTrait, DbErr, EntityTrait, prelude::Expr, sea_query::OnConflict,
};

use super::{batch::BatchCache, entities::lead_signal};
use crate::domain::routing::LeadFields;

/// What routing knows of a lead: qualification's score, stage and rank, capture's profile fields.
pub async fn lead_fields<C: ConnectionTrait>(
    db: &C,
    tenant: &TenantId,
    lead_id: &str,
    cache: &BatchCache,
) -> Result<LeadFields, DbErr> {
    let mut fields = LeadFields::new();
    let key = (tenant.to_string(), lead_id.to_owned());
    let signal = match cache.signals.get(&key) {
        Some(s) => Some(s.clone()),
        None => lead_signal::Entity::find_by_id(key).one(db).await?,
    };
    if let Some(s) = signal {
        fields = serde_json::from_str(&s.fields).unwrap_or_default();
        if let Some(score) = s.score {
            fields.insert("score".into(), score.to_string());
        }
        if let Some(stage) = s.stage.and_then(|v| Stage::try_from(v).ok()) {
            fields.insert("stage".into(), stage.as_str_name().into());
        }
        if let Some(rank) = s.rank.and_then(|v| Rank::try_from(v).ok()) {
            fields.insert("rank".into(), rank.as_str_name().into());
        }
    }
    Ok(fields)
}

/// Stores the profile fields of `leads`: one upsert per [`PROFILE_CHUNK`] leads (a lead named
/// twice keeps its last profile, as applying them in order would). Returns the leads stored.
pub async fn store_profiles<'a, C: ConnectionTrait>(
    txn: &C,
    tenant: &TenantId,
    leads: &[&'a Lead],
) -> Result<Vec<&'a str>, DbErr> {
    let now = time::now();
    let mut latest: HashMap<&str, usize> = HashMap::new();
    for (i, lead) in leads.iter().enumerate() {
        latest.insert(lead.lead_id.as_str(), i);
    }
    let mut rows = Vec::with_capacity(latest.len());
    let mut ids = Vec::with_capacity(latest.len());
    for (i, lead) in leads.iter().enumerate() {
        if latest.get(lead.lead_id.as_str()) != Some(&i) {
            continue;
        }
        ids.push(lead.lead_id.as_str());
        rows.push(lead_signal::ActiveModel {
            tenant_id: Set(tenant.to_string()),
            lead_id: Set(lead.lead_id.clone()),
            score: Set(None),
            stage: Set(None),
            rank: Set(None),
            updated_at: Set(now),
            fields: Set(profile_fields(lead)?),
        });
    }
    for chunk in rows.chunks(PROFILE_CHUNK) {
        lead_signal::Entity::insert_many(chunk.iter().cloned())
            .on_conflict(
                OnConflict::columns([lead_signal::Column::TenantId, lead_signal::Column::LeadId])
                    .update_columns([lead_signal::Column::Fields, lead_signal::Column::UpdatedAt])
                    .to_owned(),
            )
            .exec_without_returning(txn)
            .await?;
    }
    Ok(ids)
}

/// Leads per profile upsert.
const PROFILE_CHUNK: usize = baton_shared::db::IN_CHUNK;

/// The profile fields of `lead` that routing conditions read, as stored (a JSON object).
fn profile_fields(lead: &Lead) -> Result<String, DbErr> {
    let mut f = BTreeMap::new();
    let mut put = |k: &str, v: String| {
        if !v.is_empty() {
            f.insert(k.to_owned(), v);
        }
    };
    if let Some(c) = &lead.company {
        put("company.country", c.country.clone());
        put("company.region", c.region.clone());
        put("company.industry", c.industry.clone());
        put(
            "company.employees",
            c.employees.map(|e| e.to_string()).unwrap_or_default(),
        );
    }
    if let Some(s) = &lead.source {
        put("source.channel", s.channel.clone());
    }
    serde_json::to_string(&f).map_err(|e| DbErr::Custom(e.to_string()))
}

/// A lead's score with the stage it put the lead in.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct ScoreAndStage {
    pub score: i64,
    /// A `qualification.v1.Stage` number.
    pub stage: i32,
}

/// A lead's new signals; an absent one keeps what is stored.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct SignalUpdate {
    pub lead_id: String,
    pub score_and_stage: Option<ScoreAndStage>,
    /// A `qualification.v1.Rank` number.
    pub rank: Option<i32>,
}

/// Remembers what qualification last said of a lead (None leaves a value as it was).
pub async fn record_signal<C: ConnectionTrait>(
    txn: &C,
    tenant: &TenantId,
    lead_id: &str,
    score_and_stage: Option<ScoreAndStage>,
    rank: Option<i32>,
) -> Result<lead_signal::Model, DbErr> {
    let mut update = vec![lead_signal::Column::UpdatedAt];
    if score_and_stage.is_some() {
        update.extend([lead_signal::Column::Score, lead_signal::Column::Stage]);
    }
    if rank.is_some() {
        update.push(lead_signal::Column::Rank);
    }
    lead_signal::Entity::insert(lead_signal::ActiveModel {
        tenant_id: Set(tenant.to_string()),
        lead_id: Set(lead_id.to_owned()),
        score: Set(score_and_stage.map(|s| s.score)),
        stage: Set(score_and_stage.map(|s| s.stage)),
        rank: Set(rank),
        updated_at: Set(time::now()),
        fields: Set("{}".to_owned()),
    })
    .on_conflict(
        OnConflict::columns([lead_signal::Column::TenantId, lead_signal::Column::LeadId])
            .update_columns(update)
            .to_owned(),
    )
    .exec_with_returning(txn)
    .await
}

/// [`record_signal`] of many leads in one statement: per lead, its latest score and stage and its
/// latest rank (either may be absent: the stored one is kept). Returns the stored signals.
pub async fn record_signals<C: ConnectionTrait>(
    txn: &C,
    tenant: &TenantId,
    signals: &[SignalUpdate],
) -> Result<Vec<lead_signal::Model>, DbErr> {
    if signals.is_empty() {
        return Ok(Vec::new());
    }
    let now = time::now();
    let rows = signals.iter().map(|s| lead_signal::ActiveModel {
        tenant_id: Set(tenant.to_string()),
        lead_id: Set(s.lead_id.clone()),
        score: Set(s.score_and_stage.map(|x| x.score)),
        stage: Set(s.score_and_stage.map(|x| x.stage)),
        rank: Set(s.rank),
        updated_at: Set(now),
        fields: Set("{}".to_owned()),
    });
    let keep =
        |column: &str| Expr::cust(format!("COALESCE(excluded.{column}, lead_signal.{column})"));
    lead_signal::Entity::insert_many(rows)
        .on_conflict(
            OnConflict::columns([lead_signal::Column::TenantId, lead_signal::Column::LeadId])
                .value(lead_signal::Column::Score, keep("score"))
                .value(lead_signal::Column::Stage, keep("stage"))
                .value(lead_signal::Column::Rank, keep("rank"))
                .update_column(lead_signal::Column::UpdatedAt)
                .to_owned(),
        )
        .exec_with_returning(txn)
        .await
}
