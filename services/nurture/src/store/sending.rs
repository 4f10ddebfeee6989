//! The transactions around a send, set-based. A round's decisions and SENDING records share one
//! transaction of a few statements whatever the batch's size (the leads locked and their recent
//! sends read in one query each, the touches inserted in one, the enrolments moved in one UPDATE
//! per set of columns), and its confirmations another.
//!
//! A send is recorded (SENDING, the enrolment moved past the step) before the SMTP transaction
//! and confirmed (SENT / BOUNCED) after it, so a crash in between leaves a SENDING touch and
//! never sends the mail a second time: delivery is at most once.

use std::{collections::BTreeMap, sync::Arc};

use baton_proto::{
    capture::v1::ActivityKind,
    nurture::v1::{EnrollmentState, ExitReason, TouchKind},
};
use baton_shared::time;
use chrono::{DateTime, Duration, Utc};
use sea_orm::{
    ActiveModelTrait, ConnectionTrait, DatabaseConnection, DbErr, EntityTrait, IdenStatic,
    QueryFilter, Set, TransactionTrait, Value,
    prelude::*,
    sea_query::{CaseStatement, Expr},
};

use super::{
    enrollments,
    entities::{enrollment, lead, touch},
    leads::{self, LeadKey, Signal},
    outbox::{self, Activity},
    schedule::Work,
    settings::Versioned,
    touches::{self, NewTouch},
};
use crate::domain::{
    consent::{self, Verdict},
    definition::{Definition, StepKind},
    render::{self, Tracking},
    token::Signer,
};

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

/// How the SMTP transaction (or the file sink) ended.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Delivery {
    Delivered,
    /// 5xx: the address does not take mail.
    HardBounce(String),
    /// 4xx, or the server could not be reached: tried again with backoff.
    SoftBounce(String),
}

/// What the scheduler decided for one claimed enrolment.
pub enum Plan {
    /// Move it without sending (its sequence's definition names it in the events).
    Settle(Box<enrollment::Model>, Arc<Definition>, Settle),
    /// Send the e-mail of step `index`.
    Send(Box<Work>, usize),
}

impl Plan {
    fn enrollment(&self) -> &enrollment::Model {
        match self {
            Plan::Settle(e, _, _) => e,
            Plan::Send(w, _) => &w.enrollment,
        }
    }

    pub fn lead(&self) -> (&str, &str) {
        let e = self.enrollment();
        (&e.tenant_id, &e.lead_id)
    }

    /// The enrolment's row (what its claim is on).
    pub fn seq(&self) -> i64 {
        self.enrollment().seq
    }
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

/// Applies a batch of decisions in one transaction: settles, and for each send the consent, cap
/// and quiet-hour check and the SENDING record. Leads are locked in one order, so replicas that
/// lock the same leads wait for each other instead of deadlocking, and one lead's sends are
/// checked one after the other, so its frequency cap sees every send of the batch. Returns the
/// mails to send.
pub async fn begin_batch(
    db: &DatabaseConnection,
    mut plans: Vec<Plan>,
    keys: &TrackingKeys<'_>,
) -> Result<Vec<(Outgoing, Versioned)>, DbErr> {
    plans.sort_by(|a, b| a.lead().cmp(&b.lead()));
    let txn = db.begin().await?;
    let mut changes = Changes::default();
    let mut sends = Vec::new();
    for plan in plans {
        match plan {
            Plan::Settle(e, def, how) => changes.settle(*e, def, how),
            Plan::Send(work, index) => sends.push((work, index)),
        }
    }
    let out = decide_sends(&txn, sends, keys, &mut changes).await?;
    changes.apply(&txn).await?;
    txn.commit().await?;
    Ok(out)
}

/// Each send's consent, cap and quiet-hour verdict, recorded in `changes`: a refused send as a
/// SKIPPED touch with its reason (and the enrolment moved as the verdict says), an allowed one
/// as SENDING and returned.
async fn decide_sends<C: ConnectionTrait>(
    txn: &C,
    sends: Vec<(Box<Work>, usize)>,
    keys: &TrackingKeys<'_>,
    changes: &mut Changes,
) -> Result<Vec<(Outgoing, Versioned)>, DbErr> {
    let mut out = Vec::new();
    if sends.is_empty() {
        return Ok(out);
    }
    let now = time::now();
    let wanted: Vec<LeadKey> = sends
        .iter()
        .map(|(w, _)| (w.enrollment.tenant_id.clone(), w.enrollment.lead_id.clone()))
        .collect();
    let mut locked = leads::find_many(txn, &wanted, true).await?;
    let longest = sends
        .iter()
        .map(|(w, _)| w.settings.settings.cap_window_days)
        .max()
        .unwrap_or(0);
    let since = now - Duration::days(i64::from(longest));
    let mut history = touches::sent_since_many(txn, &wanted, since).await?;
    for ((work, index), key) in sends.into_iter().zip(wanted) {
        let lead = match locked.get(&key) {
            Some(l) => l.clone(),
            // Loaded (and so made) before the transaction; made again only if it vanished since.
            None => {
                let l = leads::ensure(txn, &key.0, &key.1).await?;
                locked.insert(key.clone(), l.clone());
                l
            }
        };
        let s = &work.settings.settings;
        let window_start = now - Duration::days(i64::from(s.cap_window_days));
        let sent = history.entry(key).or_default();
        let recent: Vec<_> = sent.iter().copied().filter(|t| *t > window_start).collect();
        let verdict = consent::may_send(
            &leads::reachability(&lead),
            s,
            &recent,
            now,
            work.time_zone(),
        );
        if let Some(o) = changes.send(&work, index, &lead, verdict, keys, now)? {
            sent.push(now);
            out.push((o, work.settings.clone()));
        }
    }
    Ok(out)
}

/// One column's new value.
type ColumnValue = (enrollment::Column, Value);

/// What a batch changes, gathered in memory and written set-based by [`Changes::apply`].
#[derive(Default)]
struct Changes {
    /// Per enrolment (by seq), the columns it sets.
    updates: Vec<(i64, Vec<ColumnValue>)>,
    /// Enrolments ended, as they are after the change, for their events.
    ended: Vec<(enrollment::Model, Arc<Definition>)>,
    touches: Vec<NewTouch>,
}

/// Lets go of the claim (and of any wake-up: the enrolment was just looked at).
fn released(now: DateTime<Utc>) -> Vec<ColumnValue> {
    vec![
        (enrollment::Column::WakeAt, None::<DateTime<Utc>>.into()),
        (enrollment::Column::WaitsOnBranch, false.into()),
        (enrollment::Column::LeaseUntil, None::<DateTime<Utc>>.into()),
        (enrollment::Column::UpdatedAt, now.into()),
    ]
}

fn moved_to(index: usize, due: DateTime<Utc>, now: DateTime<Utc>) -> Vec<ColumnValue> {
    let mut cols = vec![
        (enrollment::Column::NextStep, (index as i32).into()),
        (enrollment::Column::NextStepDueAt, Some(due).into()),
    ];
    cols.extend(released(now));
    cols
}

impl Changes {
    /// A decision that sends nothing; it releases the claim.
    fn settle(&mut self, e: enrollment::Model, def: Arc<Definition>, how: Settle) {
        let now = time::now();
        match how {
            Settle::Complete => {
                self.end(e, def, EnrollmentState::Completed, ExitReason::Unspecified)
            }
            Settle::Exit(reason) => self.end(e, def, EnrollmentState::Exited, reason),
            Settle::Sleep {
                index,
                until,
                at_branch,
            } => {
                let mut cols = moved_to(index, until, now);
                for (c, v) in &mut cols {
                    if c.as_str() == enrollment::Column::WaitsOnBranch.as_str() {
                        *v = at_branch.into();
                    }
                }
                self.updates.push((e.seq, cols));
            }
            Settle::Unchanged => {
                // Still waiting where it waited (at a branch, if it did).
                let mut cols = released(now);
                cols.retain(|(c, _)| c.as_str() != enrollment::Column::WaitsOnBranch.as_str());
                self.updates.push((e.seq, cols));
            }
        }
    }

    fn end(
        &mut self,
        e: enrollment::Model,
        def: Arc<Definition>,
        state: EnrollmentState,
        reason: ExitReason,
    ) {
        let now = time::now();
        let ended = enrollment::Model {
            state: state as i32,
            exit_reason: reason as i32,
            ended_at: Some(now),
            next_step_due_at: None,
            wake_at: None,
            lease_until: None,
            updated_at: now,
            ..e
        };
        self.updates.push((
            ended.seq,
            vec![
                (enrollment::Column::State, ended.state.into()),
                (enrollment::Column::ExitReason, ended.exit_reason.into()),
                (enrollment::Column::EndedAt, ended.ended_at.into()),
                (
                    enrollment::Column::NextStepDueAt,
                    None::<DateTime<Utc>>.into(),
                ),
                (enrollment::Column::WakeAt, None::<DateTime<Utc>>.into()),
                (enrollment::Column::LeaseUntil, None::<DateTime<Utc>>.into()),
                (enrollment::Column::UpdatedAt, now.into()),
            ],
        ));
        self.ended.push((ended, def));
    }

    /// Records the verdict on step `index` of `work`: a refusal as a SKIPPED touch with its
    /// reason, a send as a SENDING touch, returned to be sent.
    fn send(
        &mut self,
        work: &Work,
        index: usize,
        lead: &lead::Model,
        verdict: Verdict,
        keys: &TrackingKeys<'_>,
        now: DateTime<Utc>,
    ) -> Result<Option<Outgoing>, DbErr> {
        let e = &work.enrollment;
        let step = work.definition.steps.get(index);
        let Some(StepKind::SendEmail(email)) = step.map(|s| &s.kind) else {
            return Err(DbErr::Custom(format!("step {index} sends no e-mail")));
        };
        let skipped = |reason: &str, retry_at| NewTouch {
            tenant: e.tenant_id.clone(),
            lead_id: e.lead_id.clone(),
            enrollment_id: e.enrollment_id.clone(),
            sequence_key: e.sequence_key.clone(),
            step_id: step.map(|s| s.id.clone()).unwrap_or_default(),
            kind: TouchKind::Skipped as i32,
            at: now,
            skip_reason: reason.to_owned(),
            retry_at,
            ..NewTouch::default()
        };
        match verdict {
            Verdict::Stop(reason) => {
                self.touches.push(skipped(reason, None));
                let def = work.definition.clone();
                self.end(e.clone(), def, EnrollmentState::Exited, exit_reason(reason));
                return Ok(None);
            }
            Verdict::Skip(reason) => {
                self.touches.push(skipped(reason, None));
                self.updates.push((e.seq, moved_to(index + 1, now, now)));
                return Ok(None);
            }
            Verdict::Defer { reason, until } => {
                self.touches.push(skipped(reason, Some(until)));
                self.updates.push((e.seq, moved_to(index, until, now)));
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
            &leads::merge_values(lead),
            &tracking,
        );
        self.touches.push(NewTouch {
            touch_id: touch_id.clone(),
            kind: TouchKind::Sending as i32,
            message_id: message_id.clone(),
            links: composed.links.clone(),
            ..skipped("", None)
        });
        // The claim is kept until the send is confirmed.
        self.updates.push((
            e.seq,
            vec![
                (enrollment::Column::NextStep, (index as i32 + 1).into()),
                (enrollment::Column::NextStepDueAt, Some(now).into()),
                (enrollment::Column::WakeAt, None::<DateTime<Utc>>.into()),
                (
                    enrollment::Column::LastSentTouchId,
                    Some(touch_id.clone()).into(),
                ),
                (enrollment::Column::LastSentAt, Some(now).into()),
                (enrollment::Column::UpdatedAt, now.into()),
            ],
        ));
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

    async fn apply<C: ConnectionTrait>(self, txn: &C) -> Result<(), DbErr> {
        touches::insert_many(txn, self.touches).await?;
        update_each(txn, &self.updates).await?;
        enrollments::announce_ended(txn, &self.ended).await
    }
}

/// Rows per batched UPDATE.
const UPDATE_CHUNK: usize = 100;

/// Writes per-enrolment column values in one UPDATE per set of columns (per [`UPDATE_CHUNK`]
/// rows): a column whose value is the same for every row is set to it, one whose values differ
/// gets a CASE on the row's seq.
async fn update_each<C: ConnectionTrait>(
    txn: &C,
    rows: &[(i64, Vec<ColumnValue>)],
) -> Result<(), DbErr> {
    let mut groups: BTreeMap<Vec<&'static str>, Vec<&(i64, Vec<ColumnValue>)>> = BTreeMap::new();
    for row in rows {
        let names = row.1.iter().map(|(c, _)| c.as_str()).collect();
        groups.entry(names).or_default().push(row);
    }
    for group in groups.values() {
        for chunk in group.chunks(UPDATE_CHUNK) {
            let mut update = enrollment::Entity::update_many();
            for (i, (column, first)) in chunk[0].1.iter().enumerate() {
                let same = chunk.iter().all(|(_, cols)| cols[i].1 == *first);
                let expr: Expr = if same {
                    Expr::value(first.clone())
                } else {
                    chunk
                        .iter()
                        .fold(CaseStatement::new(), |case, (seq, cols)| {
                            case.case(
                                enrollment::Column::Seq.eq(*seq),
                                Expr::value(cols[i].1.clone()),
                            )
                        })
                        .into()
                };
                update = update.col_expr(*column, expr);
            }
            update
                .filter(enrollment::Column::Seq.is_in(chunk.iter().map(|(seq, _)| *seq)))
                .exec(txn)
                .await?;
        }
    }
    Ok(())
}

/// Confirms a batch of sends in one transaction: the deliveries set-based, each bounce on its
/// own (see [`finish_one_in`]).
pub async fn finish_batch(
    db: &DatabaseConnection,
    done: &[(Outgoing, Delivery, Versioned)],
) -> Result<(), DbErr> {
    let txn = db.begin().await?;
    let (delivered, bounced): (Vec<_>, Vec<_>) = done
        .iter()
        .partition(|(_, result, _)| *result == Delivery::Delivered);
    let delivered: Vec<&Outgoing> = delivered.into_iter().map(|(out, _, _)| out).collect();
    confirm_delivered(&txn, &delivered).await?;
    for (out, result, settings) in bounced {
        finish_one_in(&txn, out, result, settings).await?;
    }
    txn.commit().await
}

/// SENT on the touches, EMAIL_DELIVERED for capture, the claims released: a few statements for
/// the whole batch. A touch erased during its send is passed over.
async fn confirm_delivered<C: ConnectionTrait>(txn: &C, done: &[&Outgoing]) -> Result<(), DbErr> {
    if done.is_empty() {
        return Ok(());
    }
    let now = time::now();
    let ids: Vec<String> = done.iter().map(|o| o.touch_id.clone()).collect();
    let mut sent = touch::Entity::find()
        .filter(touch::Column::TouchId.is_in(ids.iter().cloned()))
        .all(txn)
        .await?;
    sent.retain(|t| {
        done.iter()
            .any(|o| o.touch_id == t.touch_id && o.tenant == t.tenant_id)
    });
    if sent.len() < done.len() {
        tracing::warn!(
            missing = done.len() - sent.len(),
            "nurture: touches gone before their delivery was confirmed (erased meanwhile)"
        );
    }
    touch::Entity::update_many()
        .col_expr(touch::Column::Kind, Expr::value(TouchKind::Sent as i32))
        .filter(touch::Column::TouchId.is_in(sent.iter().map(|t| t.touch_id.clone())))
        .exec(txn)
        .await?;
    let activities: Vec<Activity> = sent
        .iter()
        .map(|t| Activity {
            tenant: t.tenant_id.clone(),
            lead_id: t.lead_id.clone(),
            idempotency_key: format!("nurture:{}", t.touch_id),
            kind: ActivityKind::EmailDelivered,
            at: now,
            subject: format!("{}/{}", t.sequence_key, t.step_id),
            url: String::new(),
            machine_reason: None,
        })
        .collect();
    outbox::push_many(txn, &activities).await?;
    let mut cols = released(now);
    cols.push((enrollment::Column::Attempts, 0.into()));
    let rows: Vec<_> = done.iter().map(|o| (o.before.seq, cols.clone())).collect();
    update_each(txn, &rows).await?;
    for t in &mut sent {
        t.kind = TouchKind::Sent as i32;
    }
    touches::announce_many(txn, &sent).await
}

/// Confirms one send on its own: SENT or BOUNCED on its touch, the activity for capture, and
/// the enrolment's next move (a hard bounce ends every enrolment of the lead; a soft one
/// retries the step). Bounces take this path; deliveries are confirmed together by
/// [`confirm_delivered`].
async fn finish_one_in<C: ConnectionTrait>(
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

fn exit_reason(stop: &str) -> ExitReason {
    match stop {
        "unsubscribed" => ExitReason::Unsubscribed,
        "do_not_contact" => ExitReason::DoNotContact,
        "hard_bounced" => ExitReason::HardBounce,
        _ => ExitReason::Erased,
    }
}

/// [`released`] on one row.
fn release(row: &mut enrollment::ActiveModel) {
    row.wake_at = Set(None);
    row.waits_on_branch = Set(false);
    row.lease_until = Set(None);
    row.updated_at = Set(time::now());
}
