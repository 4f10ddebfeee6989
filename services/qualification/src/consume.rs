//! What qualification does with capture's events: start tracking new leads, keep a replica of
//! their fit attributes, score activities, rank, combine merged leads, forget erased ones.

use baton_proto::{
    capture::v1::{ActivityRecorded, LeadCaptured, LeadErased, LeadUpdated, LeadsMerged},
    distribution::v1::{HandoffAction, HandoffChanged},
};
use baton_shared::{
    TenantId,
    events::{ConsumeError, Event, EventHandler, consumer::decode},
    time,
};
use sea_orm::DatabaseTransaction;
use tracing::Instrument;

use crate::{
    domain::stages,
    store::{self, ranking, stage_rules},
};

/// Handler for capture's event log.
pub struct CaptureEvents;

impl EventHandler for CaptureEvents {
    async fn handle(&self, txn: &DatabaseTransaction, event: &Event) -> Result<(), ConsumeError> {
        Self::apply(txn, event, &mut store::captured::ActiveRules::default()).await
    }

    /// The batch's events share one [`store::captured::ActiveRules`] (the active scoring model and the rank rules
    /// are read once per batch), and consecutive `LeadCaptured` events of a tenant are applied
    /// together, set-based. Other events are applied one by one, in order.
    async fn handle_batch(
        &self,
        txn: &DatabaseTransaction,
        events: &[(&Event, tracing::Span)],
    ) -> Result<(), ConsumeError> {
        let mut active = store::captured::ActiveRules::default();
        // A run of captures: (tenant, the decoded events with their spans).
        let mut run: Option<(String, Vec<(LeadCaptured, &tracing::Span)>)> = None;
        for (event, span) in events {
            let captured = decode::<LeadCaptured>(event)?;
            let continues =
                matches!((&run, &captured), (Some((t, _)), Some(_)) if *t == event.tenant_id);
            if !continues && let Some((tenant, captures)) = run.take() {
                Self::captured(txn, &TenantId::new(tenant), &captures, &mut active).await?;
            }
            match captured {
                Some(c) => {
                    run.get_or_insert_with(|| (event.tenant_id.clone(), Vec::new()))
                        .1
                        .push((c, span));
                }
                None => {
                    Self::apply(txn, event, &mut active)
                        .instrument(span.clone())
                        .await?
                }
            }
        }
        if let Some((tenant, captures)) = run {
            Self::captured(txn, &TenantId::new(tenant), &captures, &mut active).await?;
        }
        Ok(())
    }
}

impl CaptureEvents {
    /// `LeadCaptured` events of one tenant, applied together.
    async fn captured(
        txn: &DatabaseTransaction,
        tenant: &TenantId,
        captures: &[(LeadCaptured, &tracing::Span)],
        active: &mut store::captured::ActiveRules,
    ) -> Result<(), ConsumeError> {
        let leads: Vec<store::captured::CapturedLead> = captures
            .iter()
            .map(|(c, span)| store::captured::CapturedLead {
                lead_id: &c.lead_id,
                lead: c.lead.as_ref(),
                first_contact_at: c.captured_at.as_ref().and_then(time::from_proto),
                span,
            })
            .collect();
        store::captured::leads_captured(txn, tenant, &leads, active).await?;
        Ok(())
    }

    /// One event; `active` carries what the events of its batch share.
    async fn apply(
        txn: &DatabaseTransaction,
        event: &Event,
        active: &mut store::captured::ActiveRules,
    ) -> Result<(), ConsumeError> {
        let tenant = TenantId::new(event.tenant_id.clone());
        if let Some(captured) = decode::<LeadCaptured>(event)? {
            let current = tracing::Span::current();
            Self::captured(txn, &tenant, &[(captured, &current)], active).await?;
        } else if let Some(updated) = decode::<LeadUpdated>(event)? {
            if let Some(lead) = &updated.lead {
                ranking::upsert_profile(txn, &tenant, lead, None).await?;
                store::rescore_lead(txn, &tenant, &lead.lead_id).await?;
                ranking::rerank(txn, &tenant, &lead.lead_id).await?;
            }
        } else if let Some(recorded) = decode::<ActivityRecorded>(event)? {
            let activity = recorded.activity.ok_or_else(|| {
                ConsumeError::Permanent("ActivityRecorded without an activity".into())
            })?;
            if activity.machine_generated {
                // A privacy proxy's open or a link scanner's click: kept by capture, never scored.
                return Ok(());
            }
            store::score_activity(txn, &tenant, &activity).await?;
            if ranking::record_page_view(txn, &tenant, &activity).await? {
                ranking::rerank(txn, &tenant, &activity.lead_id).await?;
            }
        } else if let Some(merged) = decode::<LeadsMerged>(event)? {
            store::merge_scores(
                txn,
                &tenant,
                &merged.survivor_lead_id,
                &merged.merged_lead_id,
            )
            .await?;
            ranking::merge(
                txn,
                &tenant,
                &merged.survivor_lead_id,
                &merged.merged_lead_id,
            )
            .await?;
            ranking::rerank(txn, &tenant, &merged.survivor_lead_id).await?;
        } else if let Some(erased) = decode::<LeadErased>(event)? {
            ranking::forget(txn, &tenant, &erased.lead_id).await?;
            store::erasure::erase(txn, &tenant, &erased.lead_id).await?;
            ranking::rerank(txn, &tenant, &erased.lead_id).await?;
        }
        Ok(())
    }
}

/// Handler for distribution's event log: what field sales does with a handed-off lead moves its
/// stage as the tenant's stage rules say (by default accepted or a rejection overturned →
/// opportunity, won → customer, lost → lost, rejected back to nurture → recycled). Each move is
/// logged with the step and who took it.
pub struct DistributionEvents;

impl EventHandler for DistributionEvents {
    async fn handle(&self, txn: &DatabaseTransaction, event: &Event) -> Result<(), ConsumeError> {
        let Some(changed) = decode::<HandoffChanged>(event)? else {
            return Ok(());
        };
        let (Some(handoff), Some(step)) = (&changed.handoff, &changed.step) else {
            return Ok(());
        };
        let tenant = TenantId::new(event.tenant_id.clone());
        // Events written before steps carried their kind name it only in words.
        let kind = match HandoffAction::try_from(step.kind) {
            Ok(HandoffAction::Unspecified) | Err(_) => HandoffAction::from_str_name(&format!(
                "HANDOFF_ACTION_{}",
                step.action.to_ascii_uppercase()
            ))
            .unwrap_or(HandoffAction::Unspecified),
            Ok(kind) => kind,
        };
        if matches!(kind, HandoffAction::Won | HandoffAction::Lost) {
            let at = handoff
                .closed_at
                .as_ref()
                .or(step.at.as_ref())
                .and_then(baton_shared::time::from_proto)
                .unwrap_or_else(baton_shared::time::now);
            let amount = handoff
                .amount
                .as_ref()
                .filter(|_| kind == HandoffAction::Won)
                .map(|m| (m.currency_code.clone(), m.amount_minor));
            let won = kind == HandoffAction::Won;
            store::record_outcome(txn, &tenant, &handoff.lead_id, won, amount, at).await?;
        }
        let (_, rules) = stage_rules::stage_rules(txn, &tenant).await?;
        let Some(to) = stages::stage_after_handoff(&rules, kind, &handoff.rejected_lead_route)
        else {
            return Ok(());
        };
        store::handoff_moved(
            txn,
            &tenant,
            &handoff.lead_id,
            to,
            &format!("handoff_{}", step.action),
            &step.actor,
        )
        .await?;
        Ok(())
    }
}
