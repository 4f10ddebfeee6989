//! The scheduler's data: claiming due enrolments once across replicas, what it knows when it
//! decides, and the transactions around a send. A send is recorded (SENDING, the enrolment
//! moved past the step) before the SMTP transaction and confirmed (SENT / BOUNCED) after it, so
//! a crash in between leaves a SENDING touch and never sends the mail a second time: delivery
//! is at most once.

use baton_proto::{
    capture::v1::ActivityKind,
    nurture::v1::{EnrollmentState, ExitReason, SequenceState, TouchKind},
    qualification::v1::Stage,
};
use baton_shared::time;
use std::{
    collections::HashMap,
    sync::{Arc, Mutex},
    time::Instant,
};

use chrono::{DateTime, Duration, Utc};
use sea_orm::{
    ActiveModelTrait, Condition, ConnectionTrait, DatabaseConnection, DbErr, EntityTrait,
    QueryFilter, QueryOrder, QuerySelect, Set, TransactionTrait,
    prelude::*,
    sea_query::{LockBehavior, LockType},
};

use super::{
    enrollments,
    entities::{enrollment, lead, touch},
    is_postgres, leads,
    leads::Signal,
    outbox::{self, Activity},
    sequences,
    settings::{self, Versioned},
    touches::{self, NewTouch},
};
use crate::domain::{
    consent::{self, Verdict},
    definition::{Definition, StepKind},
    flow::Facts,
    render::{self, Tracking},
    token::Signer,
};

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

pub async fn load<C: ConnectionTrait>(
    db: &C,
    e: enrollment::Model,
    cache: &Cache,
) -> Result<Work, DbErr> {
    let definition = cache.definition(db, &e.sequence_id).await?;
    let paused = cache.paused(db, &e.tenant_id, &e.sequence_key).await?;
    let lead = leads::ensure(db, &e.tenant_id, &e.lead_id).await?;
    let settings = cache.settings(db, &e.tenant_id).await?;
    let (opened_at, clicked_at) = match &e.last_sent_touch_id {
        Some(t) => touches::human_hits(db, t).await?,
        None => (None, None),
    };
    let stage = Stage::try_from(lead.stage).unwrap_or(Stage::Unspecified);
    let facts = Facts {
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
    };
    Ok(Work {
        enrollment: e,
        definition,
        paused,
        lead,
        settings,
        facts,
    })
}

/// How a decision leaves an enrolment.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Settle {
    /// Decide again at step `index` at `until`.
    Sleep {
        index: usize,
        until: DateTime<Utc>,
        at_branch: bool,
    },
    Complete,
    Exit(ExitReason),
    /// Woken early and nothing changed: back to sleep until its step is due.
    Unchanged,
}

/// Applies a decision that sends nothing, and releases the claim.
pub async fn settle_in<C: ConnectionTrait>(
    txn: &C,
    e: enrollment::Model,
    how: Settle,
) -> Result<(), DbErr> {
    match how {
        Settle::Complete => {
            enrollments::end(txn, e, EnrollmentState::Completed, ExitReason::Unspecified).await?;
        }
        Settle::Exit(reason) => {
            enrollments::end(txn, e, EnrollmentState::Exited, reason).await?;
        }
        Settle::Sleep {
            index,
            until,
            at_branch,
        } => {
            let mut row: enrollment::ActiveModel = e.into();
            row.next_step = Set(index as i32);
            row.next_step_due_at = Set(Some(until));
            release(&mut row);
            row.waits_on_branch = Set(at_branch);
            row.update(txn).await?;
        }
        Settle::Unchanged => {
            let waits_on_branch = e.waits_on_branch;
            let mut row: enrollment::ActiveModel = e.into();
            release(&mut row);
            row.waits_on_branch = Set(waits_on_branch);
            row.update(txn).await?;
        }
    }
    Ok(())
}

/// Lets go of the claim (and of any wake-up: the enrolment was just looked at).
fn release(row: &mut enrollment::ActiveModel) {
    row.wake_at = Set(None);
    row.waits_on_branch = Set(false);
    row.lease_until = Set(None);
    row.updated_at = Set(time::now());
}

/// A mail recorded as SENDING, to hand to the transport.
#[derive(Debug, Clone)]
pub struct Outgoing {
    pub tenant: String,
    pub touch_id: String,
    pub message_id: String,
    pub to: String,
    pub from_address: String,
    pub from_name: String,
    pub reply_to: String,
    pub subject: String,
    pub html: String,
    pub text: String,
    pub unsubscribe_url: String,
    /// The enrolment as it was before the send moved it on (a soft bounce puts it back).
    pub before: enrollment::Model,
    pub index: usize,
}

/// Where tracking points and who signs its tokens.
pub struct TrackingKeys<'a> {
    pub base_url: &'a str,
    pub signer: &'a Signer,
    /// The domain of Message-IDs.
    pub message_domain: &'a str,
}

/// Asks the consent, cap and quiet-hour rules about step `index` of `work`, with the lead's row
/// locked so that two sends to one lead never pass the cap together. A refused send is recorded
/// as a SKIPPED touch with its reason and the enrolment moves as the verdict says; an allowed
/// one is recorded as SENDING and returned.
pub async fn begin_send_in<C: ConnectionTrait>(
    txn: &C,
    work: &Work,
    index: usize,
    keys: &TrackingKeys<'_>,
) -> Result<Option<Outgoing>, DbErr> {
    let e = &work.enrollment;
    let StepKind::SendEmail(email) = &work.definition.steps[index].kind else {
        return Err(DbErr::Custom(format!("step {index} sends no e-mail")));
    };
    let step_id = work.definition.steps[index].id.clone();
    let lead = lock_lead(txn, &e.tenant_id, &e.lead_id).await?;
    let s = &work.settings.settings;
    let now = time::now();
    let window = Duration::days(i64::from(s.cap_window_days));
    let sent = touches::sent_since(txn, &e.tenant_id, &e.lead_id, now - window).await?;
    let verdict = consent::may_send(&leads::reachability(&lead), s, &sent, now, work.time_zone());
    let skipped = |reason: &str, retry_at| NewTouch {
        tenant: e.tenant_id.clone(),
        lead_id: e.lead_id.clone(),
        enrollment_id: e.enrollment_id.clone(),
        sequence_key: e.sequence_key.clone(),
        step_id: step_id.clone(),
        kind: TouchKind::Skipped as i32,
        at: now,
        skip_reason: reason.to_owned(),
        retry_at,
        ..NewTouch::default()
    };
    let mut row: enrollment::ActiveModel = e.clone().into();
    match verdict {
        Verdict::Stop(reason) => {
            touches::insert(txn, skipped(reason, None)).await?;
            enrollments::end(txn, e.clone(), EnrollmentState::Exited, exit_reason(reason)).await?;
            return Ok(None);
        }
        Verdict::Skip(reason) => {
            touches::insert(txn, skipped(reason, None)).await?;
            row.next_step = Set(index as i32 + 1);
            row.next_step_due_at = Set(Some(now));
            release(&mut row);
            row.update(txn).await?;
            return Ok(None);
        }
        Verdict::Defer { reason, until } => {
            touches::insert(txn, skipped(reason, Some(until))).await?;
            row.next_step = Set(index as i32);
            row.next_step_due_at = Set(Some(until));
            release(&mut row);
            row.update(txn).await?;
            return Ok(None);
        }
        Verdict::Send => {}
    }
    let touch_id = uuid::Uuid::now_v7().to_string();
    let message_id = format!("<{touch_id}@{}>", keys.message_domain);
    let tracking = Tracking {
        base_url: keys.base_url,
        signer: keys.signer,
        tenant: &e.tenant_id,
        touch_id: &touch_id,
    };
    let composed = render::compose(
        &email.subject,
        &email.html_body,
        &email.text_body,
        &leads::merge_values(&lead),
        &tracking,
    );
    touches::insert(
        txn,
        NewTouch {
            touch_id: touch_id.clone(),
            kind: TouchKind::Sending as i32,
            skip_reason: String::new(),
            message_id: message_id.clone(),
            links: composed.links.clone(),
            ..skipped("", None)
        },
    )
    .await?;
    row.next_step = Set(index as i32 + 1);
    row.next_step_due_at = Set(Some(now));
    row.wake_at = Set(None);
    row.last_sent_touch_id = Set(Some(touch_id.clone()));
    row.last_sent_at = Set(Some(now));
    row.updated_at = Set(now);
    row.update(txn).await?;
    Ok(Some(Outgoing {
        tenant: e.tenant_id.clone(),
        touch_id,
        message_id,
        to: lead.email.clone(),
        from_address: email.from_address.clone(),
        from_name: email.from_name.clone(),
        reply_to: email.reply_to.clone(),
        subject: composed.subject,
        html: composed.html,
        text: composed.text,
        unsubscribe_url: composed.unsubscribe_url,
        before: e.clone(),
        index,
    }))
}

fn exit_reason(stop: &str) -> ExitReason {
    match stop {
        "unsubscribed" => ExitReason::Unsubscribed,
        "do_not_contact" => ExitReason::DoNotContact,
        "hard_bounced" => ExitReason::HardBounce,
        _ => ExitReason::Erased,
    }
}

/// The lead's row, locked for the transaction on PostgreSQL (SQLite has one writer).
async fn lock_lead<C: ConnectionTrait>(
    txn: &C,
    tenant: &str,
    lead_id: &str,
) -> Result<lead::Model, DbErr> {
    let mut q = lead::Entity::find()
        .filter(lead::Column::TenantId.eq(tenant))
        .filter(lead::Column::LeadId.eq(lead_id));
    if is_postgres(txn) {
        q = q.lock(LockType::Update);
    }
    match q.one(txn).await? {
        Some(l) => Ok(l),
        // Loaded (and so made) before the transaction; made again only if it vanished since.
        None => leads::ensure(txn, tenant, lead_id).await,
    }
}

/// How the SMTP transaction (or the file sink) ended.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Delivery {
    Delivered,
    /// 5xx: the address does not take mail.
    HardBounce(String),
    /// 4xx, or the server could not be reached: tried again with backoff.
    SoftBounce(String),
}

/// Confirms a send: SENT or BOUNCED on its touch, the activity for capture, and the enrolment's
/// next move (a hard bounce ends every enrolment of the lead; a soft one retries the step).
pub async fn finish_send_in<C: ConnectionTrait>(
    txn: &C,
    out: &Outgoing,
    result: &Delivery,
    settings: &Versioned,
) -> Result<(), DbErr> {
    let Some(t) = touches::find(txn, &out.tenant, &out.touch_id).await? else {
        return Err(DbErr::RecordNotFound(format!("touch {}", out.touch_id)));
    };
    let subject = format!("{}/{}", t.sequence_key, t.step_id);
    let activity = |kind| Activity {
        tenant: t.tenant_id.clone(),
        lead_id: t.lead_id.clone(),
        idempotency_key: format!("nurture:{}", t.touch_id),
        kind,
        at: time::now(),
        subject: subject.clone(),
        url: String::new(),
        machine_reason: None,
    };
    let s = &settings.settings;
    let mut touch: touch::ActiveModel = t.clone().into();
    let current = enrollments::find(txn, &out.tenant, &out.before.enrollment_id).await?;
    match result {
        Delivery::Delivered => {
            touch.kind = Set(TouchKind::Sent as i32);
            outbox::push_many(txn, &[activity(ActivityKind::EmailDelivered)]).await?;
            if let Some(e) = current {
                let mut row: enrollment::ActiveModel = e.into();
                row.attempts = Set(0);
                release(&mut row);
                row.update(txn).await?;
            }
        }
        Delivery::HardBounce(detail) => {
            touch.kind = Set(TouchKind::Bounced as i32);
            touch.bounce = Set("hard".into());
            touch.detail = Set(detail.clone());
            outbox::push_many(txn, &[activity(ActivityKind::EmailBounced)]).await?;
            leads::record_signal(
                txn,
                &t.tenant_id,
                &t.lead_id,
                Signal::HardBounced,
                time::now(),
            )
            .await?;
            enrollments::exit_lead(txn, &t.tenant_id, &t.lead_id, ExitReason::HardBounce, None)
                .await?;
        }
        Delivery::SoftBounce(detail) => {
            touch.kind = Set(TouchKind::Bounced as i32);
            touch.bounce = Set("soft".into());
            touch.detail = Set(detail.clone());
            let attempts = out.before.attempts.max(0) as u32;
            if let Some(e) = current {
                let mut row: enrollment::ActiveModel = e.into();
                if attempts < s.soft_bounce_retries {
                    let wait = i64::from(s.soft_bounce_backoff_seconds) << attempts.min(10);
                    let retry_at = time::now() + Duration::seconds(wait);
                    touch.retry_at = Set(Some(retry_at));
                    row.next_step = Set(out.index as i32);
                    row.next_step_due_at = Set(Some(retry_at));
                    row.attempts = Set(attempts as i32 + 1);
                    row.last_sent_touch_id = Set(out.before.last_sent_touch_id.clone());
                    row.last_sent_at = Set(out.before.last_sent_at);
                } else {
                    outbox::push_many(txn, &[activity(ActivityKind::EmailBounced)]).await?;
                    row.attempts = Set(0);
                }
                release(&mut row);
                row.update(txn).await?;
            }
        }
    }
    let touch = touch.update(txn).await?;
    touches::announce(txn, &touch).await
}

/// What the scheduler decided for one claimed enrolment.
pub enum Plan {
    Settle(Box<enrollment::Model>, Settle),
    /// Send the e-mail of step `index`.
    Send(Box<Work>, usize),
}

impl Plan {
    fn lead(&self) -> (&str, &str) {
        let e = match self {
            Plan::Settle(e, _) => e,
            Plan::Send(w, _) => &w.enrollment,
        };
        (&e.tenant_id, &e.lead_id)
    }
}

/// Applies a batch of decisions in one transaction: settles, and for each send the consent, cap
/// and quiet-hour check and the SENDING record. Leads are taken in one order, so replicas that
/// lock the same leads wait for each other instead of deadlocking. Returns the mails to send.
pub async fn begin_batch(
    db: &DatabaseConnection,
    mut plans: Vec<Plan>,
    keys: &TrackingKeys<'_>,
) -> Result<Vec<(Outgoing, Versioned)>, DbErr> {
    plans.sort_by(|a, b| a.lead().cmp(&b.lead()));
    let txn = db.begin().await?;
    let mut out = Vec::new();
    for plan in plans {
        match plan {
            Plan::Settle(e, how) => settle_in(&txn, *e, how).await?,
            Plan::Send(work, index) => {
                if let Some(o) = begin_send_in(&txn, &work, index, keys).await? {
                    out.push((o, work.settings.clone()));
                }
            }
        }
    }
    txn.commit().await?;
    Ok(out)
}

/// Confirms a batch of sends in one transaction (see [`finish_send_in`]).
pub async fn finish_batch(
    db: &DatabaseConnection,
    done: &[(Outgoing, Delivery, Versioned)],
) -> Result<(), DbErr> {
    let txn = db.begin().await?;
    for (out, result, settings) in done {
        finish_send_in(&txn, out, result, settings).await?;
    }
    txn.commit().await
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
