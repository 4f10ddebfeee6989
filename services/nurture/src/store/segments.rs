//! Segments (one row per version) and what they are evaluated on: the lead replica and the
//! leads' own activities. Entering a segment enrols in the sequences that watch it.

use std::collections::HashMap;

use baton_proto::nurture::v1::SequenceState;
use baton_shared::{
    ApiError, TenantId,
    paging::{Page, fetch_page},
    time,
};
use chrono::{DateTime, Duration, Utc};
use sea_orm::{
    ActiveModelTrait, ActiveValue::NotSet, ConnectionTrait, DbErr, EntityTrait, QueryFilter,
    QueryOrder, Set, TransactionTrait, prelude::*,
};

use super::{
    Store,
    entities::{lead, lead_activity, segment, sequence},
    leads,
};
use crate::{
    domain::{
        definition::Trigger,
        segment::{Act, SegmentDefinition, matches},
    },
    error::Error,
};

pub type Loaded = (segment::Model, SegmentDefinition);

fn parse(row: &segment::Model) -> Result<SegmentDefinition, DbErr> {
    serde_json::from_str(&row.definition)
        .map_err(|e| DbErr::Custom(format!("segment {} v{}: {e}", row.key, row.version)))
}

/// The current version of segment `key`.
pub async fn current<C: ConnectionTrait>(
    db: &C,
    tenant: &str,
    key: &str,
) -> Result<Option<Loaded>, DbErr> {
    let row = segment::Entity::find()
        .filter(segment::Column::TenantId.eq(tenant))
        .filter(segment::Column::Key.eq(key))
        .order_by_desc(segment::Column::Version)
        .one(db)
        .await?;
    match row {
        Some(r) => {
            let def = parse(&r)?;
            Ok(Some((r, def)))
        }
        None => Ok(None),
    }
}

/// A lead's own activity, kept for segments.
pub async fn record_activity<C: ConnectionTrait>(
    db: &C,
    tenant: &str,
    lead_id: &str,
    (kind, page_kind): (i32, i32),
    subject: &str,
    at: DateTime<Utc>,
) -> Result<(), DbErr> {
    lead_activity::ActiveModel {
        seq: NotSet,
        tenant_id: Set(tenant.to_owned()),
        lead_id: Set(lead_id.to_owned()),
        kind: Set(kind),
        page_kind: Set(page_kind),
        subject: Set(subject.chars().take(200).collect()),
        occurred_at: Set(at),
    }
    .insert(db)
    .await?;
    Ok(())
}

/// A merged lead's activities become the survivor's; an erased lead's are dropped.
pub async fn move_activities<C: ConnectionTrait>(
    db: &C,
    tenant: &str,
    from: &str,
    to: Option<&str>,
) -> Result<(), DbErr> {
    let q = sea_orm::Condition::all()
        .add(lead_activity::Column::TenantId.eq(tenant))
        .add(lead_activity::Column::LeadId.eq(from));
    match to {
        Some(to) => {
            lead_activity::Entity::update_many()
                .col_expr(lead_activity::Column::LeadId, Expr::value(to))
                .filter(q)
                .exec(db)
                .await?;
        }
        None => {
            lead_activity::Entity::delete_many()
                .filter(q)
                .exec(db)
                .await?;
        }
    }
    Ok(())
}

/// The activities of `lead_ids` (all the tenant's when `None`) since `since`, by lead.
async fn activities<C: ConnectionTrait>(
    db: &C,
    tenant: &str,
    lead_ids: Option<&[String]>,
    since: DateTime<Utc>,
) -> Result<HashMap<String, Vec<Act>>, DbErr> {
    let mut q = lead_activity::Entity::find()
        .filter(lead_activity::Column::TenantId.eq(tenant))
        .filter(lead_activity::Column::OccurredAt.gte(since));
    if let Some(ids) = lead_ids {
        q = q.filter(lead_activity::Column::LeadId.is_in(ids.iter().cloned()));
    }
    let mut by_lead: HashMap<String, Vec<Act>> = HashMap::new();
    for a in q.all(db).await? {
        by_lead.entry(a.lead_id).or_default().push(Act {
            kind: a.kind,
            page_kind: a.page_kind,
            subject: a.subject,
            at: a.occurred_at,
        });
    }
    Ok(by_lead)
}

fn window_start(def: &SegmentDefinition, now: DateTime<Utc>) -> DateTime<Utc> {
    now - Duration::days(i64::from(def.window_days().unwrap_or(0)))
}

/// Whether one lead is in the segment now (an erased or merged-away lead never is).
pub async fn is_member<C: ConnectionTrait>(
    db: &C,
    tenant: &str,
    lead: &lead::Model,
    def: &SegmentDefinition,
) -> Result<bool, DbErr> {
    if lead.erased || lead.merged_into.is_some() {
        return Ok(false);
    }
    let now = time::now();
    let ids = [lead.lead_id.clone()];
    let acts = if def.window_days().is_some() {
        activities(db, tenant, Some(&ids), window_start(def, now)).await?
    } else {
        HashMap::new()
    };
    let mine = acts.get(&lead.lead_id).map(Vec::as_slice).unwrap_or(&[]);
    Ok(matches(def, &leads::profile(lead), mine, now))
}

/// The segments that active sequences with TRIGGER_SEGMENT_ENTERED watch, and whether the lead
/// is in each now (taken before a change, to see what it entered after it).
pub async fn memberships<C: ConnectionTrait>(
    db: &C,
    tenant: &str,
    lead_id: &str,
) -> Result<Vec<(String, bool)>, DbErr> {
    let watched = sequence::Entity::find()
        .filter(sequence::Column::TenantId.eq(tenant))
        .filter(sequence::Column::Trigger.eq(Trigger::SegmentEntered.as_str()))
        .filter(sequence::Column::State.eq(SequenceState::Active as i32))
        .all(db)
        .await?;
    if watched.is_empty() {
        return Ok(Vec::new());
    }
    let Some(lead) = leads::find(db, tenant, lead_id).await? else {
        return Ok(Vec::new());
    };
    let mut keys: Vec<String> = Vec::new();
    for s in watched {
        let def: crate::domain::definition::Definition = serde_json::from_str(&s.definition)
            .map_err(|e| DbErr::Custom(format!("sequence {}: {e}", s.key)))?;
        if !keys.contains(&def.enrollment.segment_key) {
            keys.push(def.enrollment.segment_key);
        }
    }
    let mut out = Vec::with_capacity(keys.len());
    for key in keys {
        let member = match current(db, tenant, &key).await? {
            Some((_, def)) => is_member(db, tenant, &lead, &def).await?,
            None => false,
        };
        out.push((key, member));
    }
    Ok(out)
}

/// Leads of the tenant in a segment now, in the order nurture first saw them.
async fn members(
    db: &sea_orm::DatabaseConnection,
    tenant: &str,
    def: &SegmentDefinition,
) -> Result<Vec<(i64, String)>, DbErr> {
    let now = time::now();
    let all = lead::Entity::find()
        .filter(lead::Column::TenantId.eq(tenant))
        .filter(lead::Column::Erased.eq(false))
        .filter(lead::Column::MergedInto.is_null())
        .order_by_asc(lead::Column::Seq)
        .all(db)
        .await?;
    let acts = if def.window_days().is_some() {
        activities(db, tenant, None, window_start(def, now)).await?
    } else {
        HashMap::new()
    };
    Ok(all
        .iter()
        .filter(|l| {
            let mine = acts.get(&l.lead_id).map(Vec::as_slice).unwrap_or(&[]);
            matches(def, &leads::profile(l), mine, now)
        })
        .map(|l| (l.seq, l.lead_id.clone()))
        .collect())
}

impl Store {
    pub async fn create_segment(
        &self,
        tenant: &TenantId,
        key: &str,
        name: &str,
        def: &SegmentDefinition,
    ) -> Result<Loaded, Error> {
        let txn = self.db.begin().await?;
        if current(&txn, tenant.as_str(), key).await?.is_some() {
            return Err(ApiError::AlreadyExists(format!("segment {key:?} exists")).into());
        }
        let row = insert(&txn, tenant.as_str(), key, name, 1, def).await?;
        txn.commit().await?;
        Ok((row, def.clone()))
    }

    pub async fn update_segment(
        &self,
        tenant: &TenantId,
        key: &str,
        name: &str,
        def: &SegmentDefinition,
        expected_version: i32,
    ) -> Result<Loaded, Error> {
        let txn = self.db.begin().await?;
        let (now, _) = current(&txn, tenant.as_str(), key)
            .await?
            .ok_or_else(|| Error::not_found("segment", key))?;
        if expected_version != 0 && expected_version != now.version {
            return Err(Error::rule(
                "version_conflict",
                format!(
                    "segment {key:?} is at version {}, not {expected_version}",
                    now.version
                ),
            ));
        }
        let row = insert(&txn, tenant.as_str(), key, name, now.version + 1, def).await?;
        txn.commit().await?;
        Ok((row, def.clone()))
    }

    pub async fn get_segment(
        &self,
        tenant: &TenantId,
        key: &str,
        version: i32,
    ) -> Result<Loaded, Error> {
        let found = if version == 0 {
            current(&self.db, tenant.as_str(), key).await?
        } else {
            let row = segment::Entity::find()
                .filter(segment::Column::TenantId.eq(tenant.as_str()))
                .filter(segment::Column::Key.eq(key))
                .filter(segment::Column::Version.eq(version))
                .one(&self.db)
                .await?;
            match row {
                Some(r) => {
                    let d = parse(&r)?;
                    Some((r, d))
                }
                None => None,
            }
        };
        found.ok_or_else(|| Error::not_found("segment", key))
    }

    /// Current versions, oldest segment first.
    pub async fn list_segments(
        &self,
        tenant: &TenantId,
        page: Page,
    ) -> Result<(Vec<Loaded>, String), Error> {
        let query = segment::Entity::find()
            .filter(segment::Column::TenantId.eq(tenant.as_str()))
            .filter(segment::Column::Version.eq(1));
        let (firsts, next) =
            fetch_page(query, segment::Column::Seq, |s| s.seq, page, &self.db).await?;
        let mut out = Vec::with_capacity(firsts.len());
        for f in firsts {
            if let Some(c) = current(&self.db, tenant.as_str(), &f.key).await? {
                out.push(c);
            }
        }
        Ok((out, next))
    }

    /// How many leads are in the segment, and one page of them.
    pub async fn preview_segment(
        &self,
        tenant: &TenantId,
        def: &SegmentDefinition,
        page: Page,
    ) -> Result<(i64, Vec<String>, String), Error> {
        let all = members(&self.db, tenant.as_str(), def).await?;
        let after: Vec<&(i64, String)> = all
            .iter()
            .filter(|(seq, _)| *seq > page.after_seq)
            .collect();
        let seqs: Vec<i64> = after
            .iter()
            .take(page.limit as usize + 1)
            .map(|(s, _)| *s)
            .collect();
        let next = page.next_token(&seqs);
        let ids = after
            .iter()
            .take(page.limit as usize)
            .map(|(_, id)| id.clone())
            .collect();
        Ok((all.len() as i64, ids, next))
    }

    /// The definition of a stored segment, for a preview by key.
    pub async fn segment_definition(
        &self,
        tenant: &TenantId,
        key: &str,
    ) -> Result<SegmentDefinition, Error> {
        Ok(self.get_segment(tenant, key, 0).await?.1)
    }
}

async fn insert<C: ConnectionTrait>(
    db: &C,
    tenant: &str,
    key: &str,
    name: &str,
    version: i32,
    def: &SegmentDefinition,
) -> Result<segment::Model, DbErr> {
    segment::ActiveModel {
        seq: NotSet,
        segment_id: Set(uuid::Uuid::now_v7().to_string()),
        tenant_id: Set(tenant.to_owned()),
        key: Set(key.to_owned()),
        version: Set(version),
        name: Set(name.to_owned()),
        definition: Set(serde_json::to_string(def).map_err(|e| DbErr::Custom(e.to_string()))?),
        created_at: Set(time::now()),
    }
    .insert(db)
    .await
}
