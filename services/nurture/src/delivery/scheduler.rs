//! The scheduler: claims due enrolments, decides each one's next move with the domain's flow,
//! and sends what is due through the mailer, inside the tenant's send rate. A round's decisions
//! and SENDING records share one transaction per share of the leads (one lead's sends are checked
//! one after the other in it, so its frequency cap sees every send), and its confirmations
//! another; each is set-based (see `store::sending`).

use std::{
    collections::HashMap,
    num::NonZeroU32,
    sync::{Arc, Mutex},
};

use baton_proto::nurture::v1::ExitReason;
use baton_shared::{settings::DeliverySettings, time};
use chrono::Duration;
use futures::StreamExt;
use governor::{DefaultDirectRateLimiter, Quota, RateLimiter};
use sea_orm::DbErr;

use super::mailer::Mailer;
use crate::{
    domain::{
        definition::StepKind,
        flow::{self, Next},
        token::Signer,
    },
    store::{
        Store,
        schedule::{self, Cache, Work},
        sending::{self, Delivery, Outgoing, Plan, Settle, TrackingKeys},
        settings::Versioned,
    },
};

/// How long a paused sequence's due step waits before it is looked at again.
const PAUSED_RECHECK_SECONDS: i64 = 60;
/// A SENDING touch older than this had its process stop during the SMTP transaction.
const INTERRUPTED_AFTER_MINUTES: i64 = 10;

pub struct Scheduler {
    store: Store,
    mailer: Arc<Mailer>,
    signer: Signer,
    base_url: String,
    settings: DeliverySettings,
    limiters: Mutex<HashMap<String, (u32, Arc<DefaultDirectRateLimiter>)>>,
    cache: Cache,
}

impl Scheduler {
    pub fn new(
        store: Store,
        mailer: Arc<Mailer>,
        signer: Signer,
        base_url: String,
        settings: DeliverySettings,
    ) -> Self {
        Scheduler {
            store,
            mailer,
            signer,
            base_url,
            settings,
            limiters: Mutex::new(HashMap::new()),
            cache: Cache::default(),
        }
    }

    /// One round: claims what is due, decides each enrolment's next move, applies the decisions
    /// and records the sends in one transaction, sends the mails, and confirms them in one more.
    /// Returns how many enrolments it handled.
    pub async fn round(&self) -> Result<u64, DbErr> {
        let lease = Duration::seconds(self.settings.lease_seconds.max(10) as i64);
        let claimed =
            schedule::claim(&self.store.db, self.settings.batch_size.max(1), lease).await?;
        let n = claimed.len() as u64;
        if n == 0 {
            let stale = Duration::minutes(INTERRUPTED_AFTER_MINUTES);
            let marked = schedule::mark_interrupted(&self.store.db, stale).await?;
            if marked > 0 {
                tracing::warn!(
                    marked,
                    "nurture: sends interrupted during the SMTP transaction (not sent again)"
                );
            }
            return Ok(0);
        }
        let until = claimed
            .iter()
            .find_map(|e| e.lease_until)
            .unwrap_or_else(time::now);
        let seqs: Vec<i64> = claimed.iter().map(|e| e.seq).collect();
        let loaded = match schedule::load_all(&self.store.db, claimed, &self.cache).await {
            Ok(loaded) => loaded,
            Err(e) => return Err(self.let_go(&seqs, until, e).await),
        };
        let plans: Vec<Plan> = loaded.into_iter().map(|w| self.plan(w)).collect();
        // The tenant's send rate is waited for before a mail is recorded as SENDING.
        for plan in &plans {
            if let Plan::Send(work, _) = plan {
                let rate = work.settings.settings.send_rate_per_second;
                self.limiter(&work.enrollment.tenant_id, rate)
                    .until_ready()
                    .await;
            }
        }
        let keys = TrackingKeys {
            base_url: &self.base_url,
            signer: &self.signer,
            message_domain: &self.settings.message_id_domain,
        };
        // One transaction per share of the leads, side by side (a lead is in one share only).
        let shares = split_by_lead(plans, self.settings.concurrency.clamp(1, 8));
        let share_seqs: Vec<Vec<i64>> = shares
            .iter()
            .map(|share| share.iter().map(Plan::seq).collect())
            .collect();
        let begun = futures::future::join_all(
            shares
                .into_iter()
                .map(|share| sending::begin_batch(&self.store.db, share, &keys)),
        )
        .await;
        // A share that failed gives its claims back; the others' mails still go.
        let mut outgoing = Vec::new();
        let mut failed = None;
        for (b, seqs) in begun.into_iter().zip(share_seqs) {
            match b {
                Ok(out) => outgoing.extend(out),
                Err(e) => failed = Some(self.let_go(&seqs, until, e).await),
            }
        }
        self.store.log.notify_committed();
        let done: Vec<_> = futures::stream::iter(outgoing)
            .map(|(out, settings)| async move {
                let result = self.mailer.send(&out).await;
                (out, result, settings)
            })
            .buffer_unordered(self.settings.concurrency.max(1))
            .collect()
            .await;
        let shares = split_by_lead(done, self.settings.concurrency.clamp(1, 8));
        let finished = futures::future::join_all(
            shares
                .iter()
                .map(|share| sending::finish_batch(&self.store.db, share)),
        )
        .await;
        self.store.log.notify_committed();
        for f in finished {
            f?;
        }
        match failed {
            Some(e) => Err(e),
            None => Ok(n),
        }
    }

    /// Gives back the claims on `seqs` of a round that failed before recording their sends, so
    /// the next round takes them again; returns the round's error.
    async fn let_go(
        &self,
        seqs: &[i64],
        until: chrono::DateTime<chrono::Utc>,
        error: DbErr,
    ) -> DbErr {
        if let Err(e) = schedule::release(&self.store.db, seqs, until).await {
            tracing::warn!(error = %e, "nurture scheduler: claims not given back; they wait for their lease");
        }
        error
    }

    /// What happens next for one enrolment.
    fn plan(&self, work: Work) -> Plan {
        let now = time::now();
        let index = usize::try_from(work.enrollment.next_step).unwrap_or(0);
        let woken_early = work.woken_early(now);
        let next = flow::next(&work.definition, index, &work.facts, now, work.time_zone());
        let at_branch = work.enrollment.waits_on_branch
            && matches!(
                work.definition.steps.get(index).map(|s| &s.kind),
                Some(StepKind::Branch(_))
            );
        let settle = |how| {
            Plan::Settle(
                Box::new(work.enrollment.clone()),
                work.definition.clone(),
                how,
            )
        };
        match next {
            Next::GoalReached(_) => settle(Settle::Exit(ExitReason::GoalReached)),
            // Woken before its step is due: only a goal or the branch it waits at may move it.
            _ if woken_early && !at_branch => settle(Settle::Unchanged),
            Next::Complete => settle(Settle::Complete),
            Next::Sleep {
                index,
                until,
                at_branch,
            } => settle(Settle::Sleep {
                index,
                until,
                at_branch,
            }),
            Next::Send { index } if work.paused => settle(Settle::Sleep {
                index,
                until: now + Duration::seconds(PAUSED_RECHECK_SECONDS),
                at_branch: false,
            }),
            Next::Send { index } => Plan::Send(Box::new(work), index),
        }
    }

    /// The tenant's send-rate limiter, made anew when its rate changed.
    fn limiter(&self, tenant: &str, rate: u32) -> Arc<DefaultDirectRateLimiter> {
        let mut map = self.limiters.lock().unwrap_or_else(|p| p.into_inner());
        if let Some((r, l)) = map.get(tenant)
            && *r == rate
        {
            return l.clone();
        }
        let per_second = NonZeroU32::new(rate.max(1)).unwrap_or(NonZeroU32::MIN);
        let limiter = Arc::new(RateLimiter::direct(Quota::per_second(per_second)));
        map.insert(tenant.to_owned(), (rate, limiter.clone()));
        limiter
    }
}

/// Something that belongs to one lead.
trait OfLead {
    fn lead_key(&self) -> (&str, &str);
}

impl OfLead for Plan {
    fn lead_key(&self) -> (&str, &str) {
        self.lead()
    }
}

impl OfLead for (Outgoing, Delivery, Versioned) {
    fn lead_key(&self) -> (&str, &str) {
        (&self.0.tenant, &self.0.before.lead_id)
    }
}

/// Splits `items` into at most `shares` groups, every lead's items in one group.
fn split_by_lead<T: OfLead>(items: Vec<T>, shares: usize) -> Vec<Vec<T>> {
    use std::hash::{Hash, Hasher};
    let mut groups: Vec<Vec<T>> = (0..shares).map(|_| Vec::new()).collect();
    for item in items {
        let mut h = std::collections::hash_map::DefaultHasher::new();
        item.lead_key().hash(&mut h);
        groups[(h.finish() % shares as u64) as usize].push(item);
    }
    groups.retain(|g| !g.is_empty());
    groups
}
