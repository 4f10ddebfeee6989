//! The scheduler's data: claiming due enrolments once across replicas, what it knows when it
//! decides, and the mark on sends a stopped process left unconfirmed. The transactions around
//! a send are in [`super::sending`].

use std::{
    collections::HashMap,
    sync::{Arc, Mutex},
    time::Instant,
};

use baton_proto::{
    nurture::v1::{EnrollmentState, SequenceState, TouchKind},
    qualification::v1::Stage,
};
use baton_shared::time;
use chrono::{DateTime, Duration, Utc};
use sea_orm::{
    ActiveModelTrait, Condition, ConnectionTrait, DatabaseConnection, DbErr, EntityTrait,
    QueryFilter, QueryOrder, QuerySelect, Set, TransactionTrait,
    prelude::*,
    sea_query::{LockBehavior, LockType},
};

use super::{
    entities::{enrollment, lead, touch},
    is_postgres,
    leads::{self, LeadKey},
    sequences,
    settings::{self, Versioned},
    touches,
};
use crate::domain::{definition::Definition, flow::Facts};

/// Claims up to `batch` enrolments that are due (or woken), holding each for `lease`: on
/// PostgreSQL with `FOR UPDATE SKIP LOCKED`, so replicas take different ones; a claim that is
/// never finished runs out with its lease.
pub async fn claim(
    db: &DatabaseConnection,
    batch: u64,
    lease: Duration,
) -> Result<Vec<enrollment::Model>, DbErr> {
    let txn = db.begin().await?;
    let now = time::now();
    let mut query = enrollment::Entity::find()
        .filter(enrollment::Column::State.eq(EnrollmentState::Active as i32))
        .filter(
            Condition::any()
                .add(enrollment::Column::NextStepDueAt.lte(now))
                .add(enrollment::Column::WakeAt.lte(now)),
        )
        .filter(
            Condition::any()
                .add(enrollment::Column::LeaseUntil.is_null())
                .add(enrollment::Column::LeaseUntil.lt(now)),
        )
        .order_by_asc(enrollment::Column::NextStepDueAt)
        .limit(batch);
    if is_postgres(&txn) {
        query = query.lock_with_behavior(LockType::Update, LockBehavior::SkipLocked);
    }
    let due = query.all(&txn).await?;
    if due.is_empty() {
        return Ok(due);
    }
    let until = now + lease;
    enrollment::Entity::update_many()
        .col_expr(enrollment::Column::LeaseUntil, Expr::value(Some(until)))
        .filter(enrollment::Column::Seq.is_in(due.iter().map(|e| e.seq)))
        .exec(&txn)
        .await?;
    txn.commit().await?;
    Ok(due
        .into_iter()
        .map(|e| enrollment::Model {
            lease_until: Some(until),
            ..e
        })
        .collect())
}

/// Lets go of the claims on `seqs` that still hold until `until` (this round's): a round that
/// failed before it recorded their sends gives them back at once instead of when the lease runs
/// out, so a passing fault (SQLite busy, a dropped connection) does not hold a mail back minutes.
pub async fn release(
    db: &DatabaseConnection,
    seqs: &[i64],
    until: DateTime<Utc>,
) -> Result<u64, DbErr> {
    if seqs.is_empty() {
        return Ok(0);
    }
    let done = enrollment::Entity::update_many()
        .col_expr(
            enrollment::Column::LeaseUntil,
            Expr::value(None::<DateTime<Utc>>),
        )
        .filter(enrollment::Column::Seq.is_in(seqs.iter().copied()))
        .filter(enrollment::Column::LeaseUntil.eq(until))
        .exec(db)
        .await?;
    Ok(done.rows_affected)
}

/// Everything the scheduler needs to decide for one enrolment.
pub struct Work {
    pub enrollment: enrollment::Model,
    pub definition: Arc<Definition>,
    /// The key's current version is paused: nothing of it is sent.
    pub paused: bool,
    pub lead: lead::Model,
    pub settings: Versioned,
    pub facts: Facts,
}

impl Work {
    pub fn time_zone(&self) -> chrono_tz::Tz {
        self.lead
            .time_zone
            .parse()
            .unwrap_or_else(|_| self.settings.settings.time_zone())
    }

    /// Woken before its step is due (an open, a click, a reply, a stage change).
    pub fn woken_early(&self, now: DateTime<Utc>) -> bool {
        self.enrollment.next_step_due_at.is_none_or(|due| due > now)
    }
}

/// What the scheduler reads again and again: a sequence version's definition (never changes
/// once it runs), whether a key is paused and a tenant's settings (each looked up again after
/// [`FRESH_FOR`]).
#[derive(Default)]
pub struct Cache {
    definitions: Mutex<HashMap<String, Arc<Definition>>>,
    paused: Mutex<HashMap<(String, String), (bool, Instant)>>,
    settings: Mutex<HashMap<String, (Versioned, Instant)>>,
}

/// How long a pause or a settings change may take to reach a running scheduler.
pub const FRESH_FOR: std::time::Duration = std::time::Duration::from_secs(1);

fn fresh<K: std::hash::Hash + Eq, V: Clone>(
    map: &Mutex<HashMap<K, (V, Instant)>>,
    key: &K,
) -> Option<V> {
    let map = map.lock().unwrap_or_else(|p| p.into_inner());
    map.get(key)
        .filter(|(_, at)| at.elapsed() < FRESH_FOR)
        .map(|(v, _)| v.clone())
}

impl Cache {
    async fn definition<C: ConnectionTrait>(
        &self,
        db: &C,
        sequence_id: &str,
    ) -> Result<Arc<Definition>, DbErr> {
        let known = self
            .definitions
            .lock()
            .unwrap_or_else(|p| p.into_inner())
            .get(sequence_id)
            .cloned();
        if let Some(d) = known {
            return Ok(d);
        }
        let (_, def) = sequences::by_id(db, sequence_id)
            .await?
            .ok_or_else(|| DbErr::RecordNotFound(format!("sequence {sequence_id}")))?;
        let def = Arc::new(def);
        self.definitions
            .lock()
            .unwrap_or_else(|p| p.into_inner())
            .insert(sequence_id.to_owned(), def.clone());
        Ok(def)
    }

    async fn paused<C: ConnectionTrait>(
        &self,
        db: &C,
        tenant: &str,
        key: &str,
    ) -> Result<bool, DbErr> {
        let k = (tenant.to_owned(), key.to_owned());
        if let Some(p) = fresh(&self.paused, &k) {
            return Ok(p);
        }
        let paused = sequences::current(db, tenant, key)
            .await?
            .is_some_and(|s| s.state == SequenceState::Paused as i32);
        let mut map = self.paused.lock().unwrap_or_else(|p| p.into_inner());
        map.insert(k, (paused, Instant::now()));
        Ok(paused)
    }

    async fn settings<C: ConnectionTrait>(&self, db: &C, tenant: &str) -> Result<Versioned, DbErr> {
        if let Some(s) = fresh(&self.settings, &tenant.to_owned()) {
            return Ok(s);
        }
        let s = settings::current(db, tenant).await?;
        let mut map = self.settings.lock().unwrap_or_else(|p| p.into_inner());
        map.insert(tenant.to_owned(), (s.clone(), Instant::now()));
        Ok(s)
    }
}

/// What the scheduler needs to decide for each claimed enrolment, read set-based: the leads and
/// the human hits on their last mails in one query each, definitions, pauses and settings from
/// the cache.
pub async fn load_all<C: ConnectionTrait>(
    db: &C,
    claimed: Vec<enrollment::Model>,
    cache: &Cache,
) -> Result<Vec<Work>, DbErr> {
    let keys: Vec<LeadKey> = claimed
        .iter()
        .map(|e| (e.tenant_id.clone(), e.lead_id.clone()))
        .collect();
    let mut known = leads::find_many(db, &keys, false).await?;
    let mails: Vec<String> = claimed
        .iter()
        .filter_map(|e| e.last_sent_touch_id.clone())
        .collect();
    let hits = touches::human_hits_many(db, &mails).await?;
    let mut work = Vec::with_capacity(claimed.len());
    for (e, key) in claimed.into_iter().zip(keys) {
        let lead = match known.get(&key) {
            Some(l) => l.clone(),
            None => {
                let l = leads::ensure(db, &key.0, &key.1).await?;
                known.insert(key, l.clone());
                l
            }
        };
        let (opened_at, clicked_at) = e
            .last_sent_touch_id
            .as_ref()
            .and_then(|t| hits.get(t).copied())
            .unwrap_or_default();
        work.push(Work {
            definition: cache.definition(db, &e.sequence_id).await?,
            paused: cache.paused(db, &e.tenant_id, &e.sequence_key).await?,
            settings: cache.settings(db, &e.tenant_id).await?,
            facts: facts(&e, &lead, opened_at, clicked_at),
            enrollment: e,
            lead,
        });
    }
    Ok(work)
}

fn facts(
    e: &enrollment::Model,
    lead: &lead::Model,
    opened_at: Option<DateTime<Utc>>,
    clicked_at: Option<DateTime<Utc>>,
) -> Facts {
    let stage = Stage::try_from(lead.stage).unwrap_or(Stage::Unspecified);
    Facts {
        last_sent_at: e.last_sent_at,
        opened_at,
        clicked_at,
        replied_at: lead.replied_at,
        meeting_booked_at: lead.meeting_booked_at,
        is_mql: matches!(
            stage,
            Stage::Mql | Stage::Sql | Stage::Opportunity | Stage::Customer
        ),
        is_sql: matches!(stage, Stage::Sql | Stage::Opportunity | Stage::Customer),
        enrolled_at: e.enrolled_at,
    }
}

/// SENDING touches older than `older_than` whose process stopped during the SMTP transaction:
/// marked as such (not sent again: at most once). Returns how many.
pub async fn mark_interrupted(db: &DatabaseConnection, older_than: Duration) -> Result<u64, DbErr> {
    let txn = db.begin().await?;
    let stale = touch::Entity::find()
        .filter(touch::Column::Kind.eq(TouchKind::Sending as i32))
        .filter(touch::Column::At.lt(time::now() - older_than))
        .filter(touch::Column::Detail.eq(""))
        .limit(100)
        .all(&txn)
        .await?;
    let n = stale.len() as u64;
    for t in stale {
        let mut row: touch::ActiveModel = t.into();
        row.detail = Set(
            "interrupted: the process stopped during the SMTP transaction; the mail may or may not have left, and is not sent again"
                .into(),
        );
        let row = row.update(&txn).await?;
        touches::announce(&txn, &row).await?;
    }
    txn.commit().await?;
    Ok(n)
}

/// The scheduler's backlog gauge: active enrolments whose next step is due.
pub fn gauges() -> Vec<baton_shared::metrics::Sample> {
    let active = baton_proto::nurture::v1::EnrollmentState::Active as i32;
    vec![baton_shared::metrics::Sample {
        gauge: |m| &m.scheduler_backlog,
        attributes: Vec::new(),
        sql: format!(
            "SELECT COUNT(*) AS n FROM enrollment WHERE state = {active} \
             AND next_step_due_at IS NOT NULL AND next_step_due_at <= $1"
        ),
    }]
}
