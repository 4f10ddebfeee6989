//! What distribution does with qualification's events: assign each lead that becomes an MQL, or an
//! SQL without having been an MQL (BANT confirmed early), once.

use baton_proto::{
    capture::v1::{
        ActivityKind, ActivityRecorded, Lead, LeadCaptured, LeadErased, LeadUpdated, LeadsMerged,
    },
    qualification::v1::{BantRecorded, RankChanged, Stage, StageChanged},
    reporting::v1::ContractActivated,
};
use baton_shared::{
    TenantId,
    events::{ConsumeError, Event, EventHandler, consumer::decode},
    time,
};
use sea_orm::DatabaseTransaction;
use tracing::Instrument;

use crate::store::{
    batch::BatchCache,
    handoffs, leads, routing,
    signals::{self, ScoreAndStage, SignalUpdate},
    timers, touches,
};

/// Handler for qualification's event log.
pub struct QualificationEvents;

impl QualificationEvents {
    /// One event; `cache` carries what the events of its batch share (see [`BatchCache`]).
    async fn apply(
        txn: &DatabaseTransaction,
        event: &Event,
        cache: &mut BatchCache,
    ) -> Result<(), ConsumeError> {
        let tenant = TenantId::new(event.tenant_id.clone());
        if let Some(changed) = decode::<StageChanged>(event)? {
            let signal = signals::record_signal(
                txn,
                &tenant,
                &changed.lead_id,
                Some(ScoreAndStage {
                    score: changed.score,
                    stage: changed.to_stage,
                }),
                None,
            )
            .await?;
            cache.signal_stored(signal);
            if changed.to_stage == Stage::Mql as i32 || changed.to_stage == Stage::Sql as i32 {
                routing::assign_mql(txn, &tenant, &changed.lead_id, cache).await?;
            }
        } else if let Some(ranked) = decode::<RankChanged>(event)? {
            let signal =
                signals::record_signal(txn, &tenant, &ranked.lead_id, None, Some(ranked.to_rank))
                    .await?;
            cache.signal_stored(signal);
        } else if let Some(bant) = decode::<BantRecorded>(event)? {
            leads::bant_recorded(txn, &tenant, &bant).await?;
        }
        Ok(())
    }
}

impl EventHandler for QualificationEvents {
    async fn handle(&self, txn: &DatabaseTransaction, event: &Event) -> Result<(), ConsumeError> {
        Self::apply(txn, event, &mut BatchCache::default()).await
    }

    /// The batch is applied set-based: the signals of all its events are stored in one
    /// statement (each lead's latest score, stage and rank; a decision in the batch sees them as
    /// of the batch's end), which leads already have an assignment is read once, and the routing
    /// decisions share one [`BatchCache`] whose writes (assignments, rep counters, rotations,
    /// SLA timers, `LeadAssigned` events) are made together at the end.
    async fn handle_batch(
        &self,
        txn: &DatabaseTransaction,
        events: &[(&Event, tracing::Span)],
    ) -> Result<(), ConsumeError> {
        // Per tenant: each lead's latest signals, and the leads to assign (in event order).
        let mut tenants: Vec<Batch> = Vec::new();
        for (event, span) in events {
            let i = match tenants.iter().position(|b| b.tenant == event.tenant_id) {
                Some(i) => i,
                None => {
                    tenants.push(Batch {
                        tenant: event.tenant_id.clone(),
                        ..Batch::default()
                    });
                    tenants.len() - 1
                }
            };
            let batch = &mut tenants[i];
            if let Some(changed) = decode::<StageChanged>(event)? {
                batch.signal(&changed.lead_id).score_and_stage = Some(ScoreAndStage {
                    score: changed.score,
                    stage: changed.to_stage,
                });
                if changed.to_stage == Stage::Mql as i32 || changed.to_stage == Stage::Sql as i32 {
                    batch.to_assign.push((changed.lead_id, span.clone()));
                }
            } else if let Some(ranked) = decode::<RankChanged>(event)? {
                batch.signal(&ranked.lead_id).rank = Some(ranked.to_rank);
            } else if let Some(bant) = decode::<BantRecorded>(event)? {
                // The whole BANT as of the event: applying it at once keeps the order.
                leads::bant_recorded(txn, &TenantId::new(batch.tenant.clone()), &bant).await?;
            }
        }
        let mut cache = BatchCache::holding_writes();
        for batch in tenants {
            let tenant = TenantId::new(batch.tenant);
            for signal in signals::record_signals(txn, &tenant, &batch.signals).await? {
                cache.signal_stored(signal);
            }
            let leads: Vec<&str> = batch.to_assign.iter().map(|(l, _)| l.as_str()).collect();
            cache.know_assigned(txn, &tenant, &leads).await?;
            for (lead_id, span) in &batch.to_assign {
                routing::assign_mql(txn, &tenant, lead_id, &mut cache)
                    .instrument(span.clone())
                    .await?;
            }
        }
        cache.flush(txn).await?;
        Ok(())
    }
}

/// One tenant's part of a batch of qualification's events.
#[derive(Default)]
struct Batch {
    tenant: String,
    /// Per lead: its latest (score, stage) and rank, in order of first mention.
    signals: Vec<SignalUpdate>,
    to_assign: Vec<(String, tracing::Span)>,
}

impl Batch {
    fn signal(&mut self, lead_id: &str) -> &mut SignalUpdate {
        let i = match self.signals.iter().position(|s| s.lead_id == lead_id) {
            Some(i) => i,
            None => {
                self.signals.push(SignalUpdate {
                    lead_id: lead_id.to_owned(),
                    score_and_stage: None,
                    rank: None,
                });
                self.signals.len() - 1
            }
        };
        &mut self.signals[i]
    }
}

/// Handler for reporting's event log: keeps the replica of each team pair's active contract, so
/// handoffs are judged even while reporting is down.
pub struct ReportingEvents;

impl EventHandler for ReportingEvents {
    async fn handle(&self, txn: &DatabaseTransaction, event: &Event) -> Result<(), ConsumeError> {
        if let Some(activated) = decode::<ContractActivated>(event)?
            && let Some(contract) = &activated.contract
        {
            handoffs::apply_contract(txn, &TenantId::new(event.tenant_id.clone()), contract)
                .await?;
        }
        Ok(())
    }
}

/// Handler for capture's event log: keeps the profile fields routing conditions read, and meets
/// response SLAs when inside sales touches a lead (an activity of a kind the tenant's touch rules
/// name).
pub struct CaptureEvents;

impl EventHandler for CaptureEvents {
    async fn handle(&self, txn: &DatabaseTransaction, event: &Event) -> Result<(), ConsumeError> {
        let tenant = TenantId::new(event.tenant_id.clone());
        if let Some(captured) = decode::<LeadCaptured>(event)? {
            if let Some(lead) = &captured.lead {
                routing::record_profile(txn, &tenant, lead).await?;
            }
        } else if let Some(updated) = decode::<LeadUpdated>(event)? {
            if let Some(lead) = &updated.lead {
                routing::record_profile(txn, &tenant, lead).await?;
            }
        } else if let Some(erased) = decode::<LeadErased>(event)? {
            let at = erased
                .erased_at
                .as_ref()
                .and_then(time::from_proto)
                .unwrap_or_else(time::now);
            leads::erased(txn, &tenant, &erased.lead_id, at).await?;
            crate::store::erasure::erase(txn, &tenant, &erased.lead_id).await?;
        } else if let Some(merged) = decode::<LeadsMerged>(event)? {
            leads::merged(
                txn,
                &tenant,
                &merged.merged_lead_id,
                &merged.survivor_lead_id,
            )
            .await?;
            routing::merge(
                txn,
                &tenant,
                &merged.survivor_lead_id,
                &merged.merged_lead_id,
            )
            .await?;
        } else if let Some(recorded) = decode::<ActivityRecorded>(event)?
            && let Some(a) = &recorded.activity
            && let Ok(kind) = ActivityKind::try_from(a.kind)
            && touches::touch_rules(txn, &tenant).await?.1.is_touch(kind)
        {
            let at = a
                .occurred_at
                .as_ref()
                .and_then(time::from_proto)
                .unwrap_or_else(time::now);
            timers::touched(txn, &tenant, &a.lead_id, at).await?;
        }
        Ok(())
    }

    /// Runs of profiles (`LeadCaptured`, `LeadUpdated`) of one tenant are stored together (see
    /// [`routing::record_profiles`]); every other event is applied on its own, in order.
    async fn handle_batch(
        &self,
        txn: &DatabaseTransaction,
        events: &[(&Event, tracing::Span)],
    ) -> Result<(), ConsumeError> {
        let mut run: Option<(&str, Vec<Lead>)> = None;
        for (event, span) in events {
            let profile = match decode::<LeadCaptured>(event)? {
                Some(captured) => captured.lead,
                None => decode::<LeadUpdated>(event)?.and_then(|updated| updated.lead),
            };
            let continues =
                matches!((&run, &profile), (Some((t, _)), Some(_)) if *t == event.tenant_id);
            if !continues && let Some((tenant, leads)) = run.take() {
                Self::profiles(txn, tenant, &leads).await?;
            }
            match profile {
                Some(lead) => run
                    .get_or_insert_with(|| (event.tenant_id.as_str(), Vec::new()))
                    .1
                    .push(lead),
                None => self.handle(txn, event).instrument(span.clone()).await?,
            }
        }
        if let Some((tenant, leads)) = run {
            Self::profiles(txn, tenant, &leads).await?;
        }
        Ok(())
    }
}

impl CaptureEvents {
    async fn profiles(
        txn: &DatabaseTransaction,
        tenant: &str,
        leads: &[Lead],
    ) -> Result<(), ConsumeError> {
        let leads: Vec<&Lead> = leads.iter().collect();
        routing::record_profiles(txn, &TenantId::new(tenant.to_owned()), &leads).await?;
        Ok(())
    }
}
