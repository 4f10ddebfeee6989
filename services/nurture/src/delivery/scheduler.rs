//! The scheduler: claims due enrolments, decides each one's next move with the domain's flow,
//! and sends what is due through the mailer, inside the tenant's send rate. One lead's
//! enrolments are handled one after the other, so its frequency cap sees every send.

use std::{
    collections::{BTreeMap, HashMap},
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
        entities::enrollment,
        schedule::{self, Settle, TrackingKeys, Work},
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
        }
    }

    /// One round: claims what is due and handles it. Returns how many enrolments it handled.
    pub async fn round(&self) -> Result<u64, DbErr> {
        let lease = Duration::seconds(self.settings.lease_seconds.max(10) as i64);
        let claimed =
            schedule::claim(&self.store.db, self.settings.batch_size.max(1), lease).await?;
        let n = claimed.len() as u64;
        let mut by_lead: BTreeMap<(String, String), Vec<enrollment::Model>> = BTreeMap::new();
        for e in claimed {
            by_lead
                .entry((e.tenant_id.clone(), e.lead_id.clone()))
                .or_default()
                .push(e);
        }
        futures::stream::iter(by_lead.into_values())
            .for_each_concurrent(self.settings.concurrency.max(1), |enrolments| async move {
                for e in enrolments {
                    let id = e.enrollment_id.clone();
                    if let Err(err) = self.handle(e).await {
                        tracing::warn!(enrollment = %id, error = %err, "nurture: step failed; retried when its claim runs out");
                    }
                }
            })
            .await;
        if n == 0 {
            let stale = Duration::minutes(INTERRUPTED_AFTER_MINUTES);
            let marked = schedule::mark_interrupted(&self.store.db, stale).await?;
            if marked > 0 {
                tracing::warn!(
                    marked,
                    "nurture: sends interrupted during the SMTP transaction (not sent again)"
                );
            }
        }
        Ok(n)
    }

    async fn handle(&self, e: enrollment::Model) -> Result<(), DbErr> {
        let work = schedule::load(&self.store.db, e).await?;
        let now = time::now();
        let index = usize::try_from(work.enrollment.next_step).unwrap_or(0);
        let woken_early = work.woken_early(now);
        let next = flow::next(&work.definition, index, &work.facts, now, work.time_zone());
        let at_branch = work.enrollment.waits_on_branch
            && matches!(
                work.definition.steps.get(index).map(|s| &s.kind),
                Some(StepKind::Branch(_))
            );
        let settle = |how| schedule::settle(&self.store.db, work.enrollment.clone(), how);
        match next {
            Next::GoalReached(_) => settle(Settle::Exit(ExitReason::GoalReached)).await,
            // Woken before its step is due: only a goal or the branch it waits at may move it.
            _ if woken_early && !at_branch => settle(Settle::Unchanged).await,
            Next::Complete => settle(Settle::Complete).await,
            Next::Sleep {
                index,
                until,
                at_branch,
            } => {
                let how = Settle::Sleep {
                    index,
                    until,
                    at_branch,
                };
                settle(how).await
            }
            Next::Send { index } if work.paused => {
                let until = now + Duration::seconds(PAUSED_RECHECK_SECONDS);
                let how = Settle::Sleep {
                    index,
                    until,
                    at_branch: false,
                };
                settle(how).await
            }
            Next::Send { index } => self.send(&work, index).await,
        }
    }

    async fn send(&self, work: &Work, index: usize) -> Result<(), DbErr> {
        let rate = work.settings.settings.send_rate_per_second;
        self.limiter(&work.enrollment.tenant_id, rate)
            .until_ready()
            .await;
        let keys = TrackingKeys {
            base_url: &self.base_url,
            signer: &self.signer,
            message_domain: &self.settings.message_id_domain,
        };
        let Some(out) = schedule::begin_send(&self.store.db, work, index, &keys).await? else {
            self.store.log.notify_committed();
            return Ok(());
        };
        let result = self.mailer.send(&out).await;
        schedule::finish_send(&self.store.db, &out, &result, &work.settings).await?;
        self.store.log.notify_committed();
        Ok(())
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
