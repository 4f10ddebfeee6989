//! Touches: every send, skip, bounce, open, click and unsubscribe of a lead, each with its
//! `TouchRecorded` event; and the hits of the tracking endpoint, recorded in batches.

use std::collections::HashMap;

use baton_proto::{
    capture::v1::ActivityKind,
    nurture::v1::{ExitReason, TouchKind, TouchRecorded},
};
use baton_shared::{
    TenantId,
    events::EventLog,
    paging::{Page, fetch_page},
    time,
};
use chrono::{DateTime, Utc};
use sea_orm::{
    ActiveModelTrait, ActiveValue::NotSet, ConnectionTrait, DatabaseConnection, DbErr, EntityTrait,
    IntoActiveModel, QueryFilter, QueryOrder, QuerySelect, TransactionTrait, prelude::*,
};

use super::{
    Store, enrollments,
    entities::{lead, touch},
    leads::{self, LeadKey},
    outbox::{self, Activity},
    settings,
};
use crate::{
    convert::touch_to_proto,
    domain::{
        bots::{self, Hit},
        token::Target,
    },
    error::Error,
};

/// A touch to record (its id is chosen by the caller, so tokens can name it before it exists).
#[derive(Debug, Clone, Default)]
pub struct NewTouch {
    pub touch_id: String,
    pub tenant: String,
    pub lead_id: String,
    pub enrollment_id: String,
    pub sequence_key: String,
    pub step_id: String,
    pub kind: i32,
    pub at: DateTime<Utc>,
    pub skip_reason: String,
    pub bounce: String,
    pub detail: String,
    pub url: String,
    pub machine_reason: Option<String>,
    pub message_id: String,
    pub retry_at: Option<DateTime<Utc>>,
    pub links: Vec<String>,
    pub sent_touch_id: Option<String>,
    pub link_index: Option<i32>,
}

/// The row of a new touch, with its id drawn here when the caller chose none.
fn model(t: NewTouch) -> Result<touch::Model, DbErr> {
    Ok(touch::Model {
        seq: 0,
        touch_id: if t.touch_id.is_empty() {
            uuid::Uuid::now_v7().to_string()
        } else {
            t.touch_id
        },
        tenant_id: t.tenant,
        lead_id: t.lead_id,
        enrollment_id: t.enrollment_id,
        sequence_key: t.sequence_key,
        step_id: t.step_id,
        kind: t.kind,
        at: t.at,
        skip_reason: t.skip_reason,
        bounce: t.bounce,
        detail: t.detail,
        url: t.url,
        machine_reason: t.machine_reason,
        message_id: t.message_id,
        retry_at: t.retry_at,
        links: serde_json::to_string(&t.links).map_err(|e| DbErr::Custom(e.to_string()))?,
        sent_touch_id: t.sent_touch_id,
        link_index: t.link_index,
    })
}

fn active(m: touch::Model) -> touch::ActiveModel {
    let mut row = m.into_active_model().reset_all();
    row.seq = NotSet;
    row
}

pub async fn insert<C: ConnectionTrait>(db: &C, t: NewTouch) -> Result<touch::Model, DbErr> {
    let row = active(model(t)?).insert(db).await?;
    announce(db, &row).await?;
    Ok(row)
}

/// Several touches in one statement (per chunk), in the given order, with their
/// `TouchRecorded` events.
pub async fn insert_many<C: ConnectionTrait>(db: &C, new: Vec<NewTouch>) -> Result<(), DbErr> {
    let models = new.into_iter().map(model).collect::<Result<Vec<_>, _>>()?;
    for chunk in models.chunks(INSERT_CHUNK) {
        touch::Entity::insert_many(chunk.iter().cloned().map(active))
            .exec(db)
            .await?;
    }
    announce_many(db, &models).await
}

/// Rows per multi-row INSERT (well under either database's limit on bound parameters).
const INSERT_CHUNK: usize = 500;

/// Appends `TouchRecorded` for each touch as it is now, in order, one statement per tenant.
pub async fn announce_many<C: ConnectionTrait>(db: &C, rows: &[touch::Model]) -> Result<(), DbErr> {
    let span = tracing::Span::current();
    let mut by_tenant: Vec<(&str, Vec<(&str, TouchRecorded)>)> = Vec::new();
    for row in rows {
        let event = TouchRecorded {
            touch: Some(touch_to_proto(row)),
        };
        match by_tenant.iter_mut().find(|(t, _)| *t == row.tenant_id) {
            Some((_, events)) => events.push((&row.lead_id, event)),
            None => by_tenant.push((&row.tenant_id, vec![(&row.lead_id, event)])),
        }
    }
    for (tenant, events) in by_tenant {
        let refs: Vec<_> = events.iter().map(|(lead, e)| (*lead, e, &span)).collect();
        EventLog::append_many(db, &TenantId::new(tenant.to_owned()), &refs).await?;
    }
    Ok(())
}

/// Appends `TouchRecorded` for a touch as it is now.
pub async fn announce<C: ConnectionTrait>(db: &C, row: &touch::Model) -> Result<(), DbErr> {
    let event = TouchRecorded {
        touch: Some(touch_to_proto(row)),
    };
    EventLog::append(
        db,
        &TenantId::new(row.tenant_id.clone()),
        &row.lead_id,
        &event,
    )
    .await
}

pub async fn find<C: ConnectionTrait>(
    db: &C,
    tenant: &str,
    touch_id: &str,
) -> Result<Option<touch::Model>, DbErr> {
    touch::Entity::find()
        .filter(touch::Column::TenantId.eq(tenant))
        .filter(touch::Column::TouchId.eq(touch_id))
        .one(db)
        .await
}

/// When marketing e-mails went (or are going) to a lead since `since`.
pub async fn sent_since<C: ConnectionTrait>(
    db: &C,
    tenant: &str,
    lead_id: &str,
    since: DateTime<Utc>,
) -> Result<Vec<DateTime<Utc>>, DbErr> {
    Ok(touch::Entity::find()
        .filter(touch::Column::TenantId.eq(tenant))
        .filter(touch::Column::LeadId.eq(lead_id))
        .filter(touch::Column::Kind.is_in([TouchKind::Sending as i32, TouchKind::Sent as i32]))
        .filter(touch::Column::At.gt(since))
        .all(db)
        .await?
        .into_iter()
        .map(|t| t.at)
        .collect())
}

/// [`sent_since`] for several leads in one query, by lead.
pub async fn sent_since_many<C: ConnectionTrait>(
    db: &C,
    keys: &[LeadKey],
    since: DateTime<Utc>,
) -> Result<HashMap<LeadKey, Vec<DateTime<Utc>>>, DbErr> {
    let mut sent: HashMap<LeadKey, Vec<DateTime<Utc>>> = HashMap::new();
    if keys.is_empty() {
        return Ok(sent);
    }
    for t in touch::Entity::find()
        .filter(leads::of_leads(
            keys,
            touch::Column::TenantId,
            touch::Column::LeadId,
        ))
        .filter(touch::Column::Kind.is_in([TouchKind::Sending as i32, TouchKind::Sent as i32]))
        .filter(touch::Column::At.gt(since))
        .all(db)
        .await?
    {
        sent.entry((t.tenant_id, t.lead_id)).or_default().push(t.at);
    }
    Ok(sent)
}

/// The first opening and clicking by a person of each of several sent mails, in one query.
pub async fn human_hits_many<C: ConnectionTrait>(
    db: &C,
    sent_touch_ids: &[String],
) -> Result<HashMap<String, FirstHits>, DbErr> {
    let mut first: HashMap<String, FirstHits> = HashMap::new();
    if sent_touch_ids.is_empty() {
        return Ok(first);
    }
    for h in touch::Entity::find()
        .filter(touch::Column::SentTouchId.is_in(sent_touch_ids.iter().cloned()))
        .filter(touch::Column::MachineReason.is_null())
        .filter(touch::Column::Kind.is_in([TouchKind::Opened as i32, TouchKind::Clicked as i32]))
        .order_by_asc(touch::Column::Seq)
        .all(db)
        .await?
    {
        let hits = first
            .entry(h.sent_touch_id.unwrap_or_default())
            .or_default();
        let slot = if h.kind == TouchKind::Opened as i32 {
            &mut hits.0
        } else {
            &mut hits.1
        };
        slot.get_or_insert(h.at);
    }
    Ok(first)
}

/// When a mail was first opened and first clicked by a person.
pub type FirstHits = (Option<DateTime<Utc>>, Option<DateTime<Utc>>);

/// One request to the tracking endpoint, verified but not yet classified.
#[derive(Debug, Clone)]
pub struct TrackedHit {
    pub tenant: String,
    pub sent_touch_id: String,
    pub target: Target,
    pub at: DateTime<Utc>,
    pub head: bool,
    pub user_agent: String,
    pub addr: Option<std::net::IpAddr>,
}

/// Records a batch of tracking hits in one transaction, set-based: the mails they belong to and
/// those mails' earlier hits are read in two queries; every hit becomes a touch (flagged when a
/// machine made it), the first of its kind per mail and link an activity for capture, a
/// person's hit a wake-up for the lead's enrolments, and an unsubscribe the consent and the
/// exits. Returns how many hits were recorded (a hit on an unknown mail or link is not).
pub async fn record_hits(db: &DatabaseConnection, hits: &[TrackedHit]) -> Result<usize, DbErr> {
    let txn = db.begin().await?;
    let mut ids: Vec<String> = hits.iter().map(|h| h.sent_touch_id.clone()).collect();
    ids.sort();
    ids.dedup();
    let sent: HashMap<String, touch::Model> = touch::Entity::find()
        .filter(touch::Column::TouchId.is_in(ids.iter().cloned()))
        .all(&txn)
        .await?
        .into_iter()
        .map(|t| (t.touch_id.clone(), t))
        .collect();
    let mut rules = HashMap::new();
    for hit in hits {
        if !rules.contains_key(&hit.tenant) {
            let s = settings::current(&txn, &hit.tenant).await?;
            rules.insert(hit.tenant.clone(), s.settings.bot_rules);
        }
    }
    let mut history = mail_history(&txn, &ids, hits, &rules).await?;
    let mut batch = HitBatch::default();
    for hit in hits {
        let Some(mail) = sent
            .get(&hit.sent_touch_id)
            .filter(|m| m.tenant_id == hit.tenant)
        else {
            continue;
        };
        let before = history.entry(mail.touch_id.clone()).or_default();
        if let Some(row) = batch.add(&rules[&hit.tenant], mail, before, hit) {
            before.add(&row);
        }
    }
    let n = batch.touches.len();
    batch.write(&txn).await?;
    txn.commit().await?;
    Ok(n)
}

/// What the classification of a mail's next hit needs from its earlier hits: the clicks recent
/// enough for the all-links rule, and which (kind, link, machine-made) hits it already had (only
/// the first of each becomes an activity). Read with two small queries, however many hits the
/// mail has had.
#[derive(Debug, Default)]
struct MailHistory {
    /// (link index, time) of the clicks within the widest all-links window before the batch.
    clicks: Vec<(usize, DateTime<Utc>)>,
    seen: std::collections::HashSet<(i32, Option<i32>, bool)>,
}

impl MailHistory {
    fn add(&mut self, t: &touch::Model) {
        if t.kind == TouchKind::Clicked as i32
            && let Some(l) = t.link_index
        {
            self.clicks.push((l.max(0) as usize, t.at));
        }
        self.seen
            .insert((t.kind, t.link_index, t.machine_reason.is_some()));
    }
}

/// The history of each mail of a batch, by sent touch id.
async fn mail_history<C: ConnectionTrait>(
    db: &C,
    mails: &[String],
    hits: &[TrackedHit],
    rules: &HashMap<String, bots::BotRules>,
) -> Result<HashMap<String, MailHistory>, DbErr> {
    let mut history: HashMap<String, MailHistory> = HashMap::new();
    let kinds = touch::Column::MachineReason.is_not_null();
    let seen: Vec<(Option<String>, i32, Option<i32>, bool)> = touch::Entity::find()
        .select_only()
        .column(touch::Column::SentTouchId)
        .column(touch::Column::Kind)
        .column(touch::Column::LinkIndex)
        .column_as(kinds.clone(), "machine")
        .filter(touch::Column::SentTouchId.is_in(mails.iter().cloned()))
        .group_by(touch::Column::SentTouchId)
        .group_by(touch::Column::Kind)
        .group_by(touch::Column::LinkIndex)
        .group_by(kinds)
        .into_tuple()
        .all(db)
        .await?;
    for (mail, kind, link, machine) in seen {
        history
            .entry(mail.unwrap_or_default())
            .or_default()
            .seen
            .insert((kind, link, machine));
    }
    let widest = rules
        .values()
        .map(|r| i64::from(r.all_links_seconds))
        .max()
        .unwrap_or(0);
    let Some(first) = hits.iter().map(|h| h.at).min() else {
        return Ok(history);
    };
    let since = first - chrono::Duration::seconds(widest);
    let clicks: Vec<(Option<String>, Option<i32>, DateTime<Utc>)> = touch::Entity::find()
        .select_only()
        .column(touch::Column::SentTouchId)
        .column(touch::Column::LinkIndex)
        .column(touch::Column::At)
        .filter(touch::Column::SentTouchId.is_in(mails.iter().cloned()))
        .filter(touch::Column::Kind.eq(TouchKind::Clicked as i32))
        .filter(touch::Column::At.gte(since))
        .order_by_asc(touch::Column::Seq)
        .into_tuple()
        .all(db)
        .await?;
    for (mail, link, at) in clicks {
        if let Some(l) = link {
            history
                .entry(mail.unwrap_or_default())
                .or_default()
                .clicks
                .push((l.max(0) as usize, at));
        }
    }
    Ok(history)
}

/// What a batch of hits writes.
#[derive(Default)]
struct HitBatch {
    touches: Vec<touch::Model>,
    activities: Vec<Activity>,
    /// (tenant, lead) woken by a person's hit.
    woken: Vec<(String, String)>,
    unsubscribed: Vec<(String, String)>,
}

impl HitBatch {
    /// Classifies one hit against the mail's earlier hits and adds what it writes; returns its
    /// touch (for the hits after it), or `None` for a click on a link the mail did not have.
    fn add(
        &mut self,
        rules: &bots::BotRules,
        sent: &touch::Model,
        earlier: &MailHistory,
        hit: &TrackedHit,
    ) -> Option<touch::Model> {
        let (kind, activity, link, url) = match &hit.target {
            Target::Open => (
                TouchKind::Opened,
                ActivityKind::EmailOpened,
                None,
                String::new(),
            ),
            Target::Click(n) => {
                let links: Vec<String> = serde_json::from_str(&sent.links).unwrap_or_default();
                let url = links.get(*n)?.clone();
                (
                    TouchKind::Clicked,
                    ActivityKind::EmailClicked,
                    Some(*n),
                    url,
                )
            }
            Target::Unsubscribe => (
                TouchKind::Unsubscribed,
                ActivityKind::EmailUnsubscribed,
                None,
                String::new(),
            ),
        };
        let machine = if kind == TouchKind::Unsubscribed {
            // A one-click POST is deliberate (RFC 8058); the GET page only asks.
            None
        } else {
            let h = Hit {
                is_click: kind == TouchKind::Clicked,
                head: hit.head,
                user_agent: &hit.user_agent,
                addr: hit.addr,
                at: hit.at,
            };
            bots::machine_reason(rules, &h, Some(sent.at), link, &earlier.clicks)
        };
        let link_index = link.map(|l| l as i32);
        let first_of_kind = !earlier
            .seen
            .contains(&(kind as i32, link_index, machine.is_some()));
        let row = touch::Model {
            seq: 0,
            touch_id: uuid::Uuid::now_v7().to_string(),
            tenant_id: sent.tenant_id.clone(),
            lead_id: sent.lead_id.clone(),
            enrollment_id: sent.enrollment_id.clone(),
            sequence_key: sent.sequence_key.clone(),
            step_id: sent.step_id.clone(),
            kind: kind as i32,
            at: hit.at,
            skip_reason: String::new(),
            bounce: String::new(),
            detail: String::new(),
            url: url.clone(),
            machine_reason: machine.clone(),
            message_id: String::new(),
            retry_at: None,
            links: "[]".to_owned(),
            sent_touch_id: Some(sent.touch_id.clone()),
            link_index,
        };
        if first_of_kind {
            self.activities.push(Activity {
                tenant: sent.tenant_id.clone(),
                lead_id: sent.lead_id.clone(),
                idempotency_key: format!("nurture:{}", row.touch_id),
                kind: activity,
                at: hit.at,
                subject: format!("{}/{}", sent.sequence_key, sent.step_id),
                url,
                machine_reason: machine.clone(),
            });
        }
        let who = (sent.tenant_id.clone(), sent.lead_id.clone());
        if kind == TouchKind::Unsubscribed {
            self.unsubscribed.push(who);
        } else if machine.is_none() && !self.woken.contains(&who) {
            self.woken.push(who);
        }
        self.touches.push(row.clone());
        Some(row)
    }

    async fn write<C: ConnectionTrait>(self, txn: &C) -> Result<(), DbErr> {
        for chunk in self.touches.chunks(500) {
            let rows = chunk.iter().map(|t| {
                let mut row: touch::ActiveModel = t.clone().into();
                row.seq = NotSet;
                row
            });
            touch::Entity::insert_many(rows).exec(txn).await?;
        }
        let mut by_tenant: HashMap<&str, Vec<(String, TouchRecorded)>> = HashMap::new();
        for t in &self.touches {
            by_tenant.entry(&t.tenant_id).or_default().push((
                t.lead_id.clone(),
                TouchRecorded {
                    touch: Some(touch_to_proto(t)),
                },
            ));
        }
        let span = tracing::Span::current();
        for (tenant, events) in by_tenant {
            let refs: Vec<(&str, &TouchRecorded, &tracing::Span)> =
                events.iter().map(|(l, e)| (l.as_str(), e, &span)).collect();
            EventLog::append_many(txn, &TenantId::new(tenant), &refs).await?;
        }
        outbox::push_many(txn, &self.activities).await?;
        let mut woken: HashMap<&str, Vec<&str>> = HashMap::new();
        for (tenant, lead) in &self.woken {
            woken.entry(tenant).or_default().push(lead);
        }
        for (tenant, leads) in woken {
            enrollments::wake_leads(txn, tenant, &leads).await?;
        }
        for (tenant, lead) in &self.unsubscribed {
            unsubscribe(txn, tenant, lead).await?;
        }
        Ok(())
    }
}

/// The lead unsubscribed by one click: nothing more goes to it from now on, before capture
/// has even heard of it.
async fn unsubscribe<C: ConnectionTrait>(
    txn: &C,
    tenant: &str,
    lead_id: &str,
) -> Result<(), DbErr> {
    lead::Entity::update_many()
        .col_expr(lead::Column::Unsubscribed, Expr::value(true))
        .col_expr(lead::Column::OptedIn, Expr::value(false))
        .col_expr(lead::Column::UpdatedAt, Expr::value(time::now()))
        .filter(lead::Column::TenantId.eq(tenant))
        .filter(lead::Column::LeadId.eq(lead_id))
        .exec(txn)
        .await?;
    enrollments::exit_lead(txn, tenant, lead_id, ExitReason::Unsubscribed, None).await?;
    Ok(())
}

impl Store {
    pub async fn list_touches(
        &self,
        tenant: &TenantId,
        page: Page,
        lead_id: Option<&str>,
        enrollment_id: Option<&str>,
    ) -> Result<(Vec<touch::Model>, String), Error> {
        let mut query = touch::Entity::find().filter(touch::Column::TenantId.eq(tenant.as_str()));
        if let Some(lead_id) = lead_id {
            query = query.filter(touch::Column::LeadId.eq(lead_id));
        }
        if let Some(e) = enrollment_id {
            query = query.filter(touch::Column::EnrollmentId.eq(e));
        }
        Ok(fetch_page(query, touch::Column::Seq, |t| t.seq, page, &self.db).await?)
    }
}

/// A merged-away lead's touches become the survivor's: they were mails to the same person, and
/// the frequency cap counts them.
pub async fn move_lead<C: ConnectionTrait>(
    db: &C,
    tenant: &str,
    merged_id: &str,
    survivor_id: &str,
) -> Result<(), DbErr> {
    touch::Entity::update_many()
        .col_expr(touch::Column::LeadId, Expr::value(survivor_id))
        .filter(touch::Column::TenantId.eq(tenant))
        .filter(touch::Column::LeadId.eq(merged_id))
        .exec(db)
        .await?;
    Ok(())
}
