//! What nurture does with capture's events (keep its lead replica; enrol on capture and lead
//! magnets; stop on consent, erasure and merges; watch replies and meetings) and with
//! qualification's (stages for goals; recycled and lost leads into their recycle sequences after
//! the cool-down; out of them when they go back to sales).

use baton_proto::{
    capture::v1::{
        ActivityKind, ActivityRecorded, LeadCaptured, LeadErased, LeadUpdated, LeadsMerged,
    },
    nurture::v1::ExitReason,
    qualification::v1::{Stage, StageChanged},
};
use baton_shared::{
    TenantId,
    events::{ConsumeError, Event, EventHandler, consumer::decode},
    time,
};
use chrono::Duration;
use sea_orm::DatabaseTransaction;

use crate::{
    domain::{definition::Trigger, settings},
    store::{enrollments, leads, leads::Signal, settings::current as current_settings, touches},
};

/// Handler for capture's event log.
pub struct CaptureEvents;

impl EventHandler for CaptureEvents {
    async fn handle(&self, txn: &DatabaseTransaction, event: &Event) -> Result<(), ConsumeError> {
        let tenant = TenantId::new(event.tenant_id.clone());
        let t = tenant.as_str();
        if let Some(captured) = decode::<LeadCaptured>(event)? {
            let Some(lead) = captured.lead.as_ref() else {
                return Err(ConsumeError::Permanent(
                    "LeadCaptured without a lead".into(),
                ));
            };
            let row = leads::upsert(txn, t, lead).await?;
            let now = time::now();
            enrollments::enroll_by_trigger(
                txn,
                &tenant,
                &row.lead_id,
                Trigger::Captured.as_str(),
                now,
                None,
            )
            .await?;
            if !row.lead_magnet.is_empty() {
                enrollments::enroll_by_trigger(
                    txn,
                    &tenant,
                    &row.lead_id,
                    Trigger::LeadMagnet.as_str(),
                    now,
                    Some(&row.lead_magnet),
                )
                .await?;
            }
        } else if let Some(updated) = decode::<LeadUpdated>(event)? {
            let Some(lead) = updated.lead.as_ref() else {
                return Ok(());
            };
            let row = leads::upsert(txn, t, lead).await?;
            if row.do_not_contact {
                enrollments::exit_lead(txn, t, &row.lead_id, ExitReason::DoNotContact, None)
                    .await?;
            } else if row.unsubscribed {
                enrollments::exit_lead(txn, t, &row.lead_id, ExitReason::Unsubscribed, None)
                    .await?;
            }
        } else if let Some(erased) = decode::<LeadErased>(event)? {
            leads::erase(txn, t, &erased.lead_id).await?;
            enrollments::exit_lead(txn, t, &erased.lead_id, ExitReason::Erased, None).await?;
        } else if let Some(merged) = decode::<LeadsMerged>(event)? {
            let (survivor, gone) = (&merged.survivor_lead_id, &merged.merged_lead_id);
            leads::merge(txn, t, survivor, gone).await?;
            enrollments::move_to_survivor(txn, t, gone, survivor).await?;
            touches::move_lead(txn, t, gone, survivor).await?;
        } else if let Some(recorded) = decode::<ActivityRecorded>(event)? {
            let Some(a) = recorded.activity.as_ref() else {
                return Ok(());
            };
            let signal = match ActivityKind::try_from(a.kind) {
                Ok(ActivityKind::EmailReplied) => Signal::Replied,
                Ok(ActivityKind::MeetingBooked) => Signal::MeetingBooked,
                _ => return Ok(()),
            };
            if a.machine_generated {
                return Ok(());
            }
            let at = a
                .occurred_at
                .as_ref()
                .and_then(time::from_proto)
                .unwrap_or_else(time::now);
            leads::record_signal(txn, t, &a.lead_id, signal, at).await?;
            enrollments::wake_lead(txn, t, &a.lead_id).await?;
        }
        Ok(())
    }
}

/// Handler for qualification's event log.
pub struct QualificationEvents;

impl EventHandler for QualificationEvents {
    async fn handle(&self, txn: &DatabaseTransaction, event: &Event) -> Result<(), ConsumeError> {
        let Some(changed) = decode::<StageChanged>(event)? else {
            return Ok(());
        };
        let tenant = TenantId::new(event.tenant_id.clone());
        let t = tenant.as_str();
        let at = changed
            .changed_at
            .as_ref()
            .and_then(time::from_proto)
            .unwrap_or_else(time::now);
        let lead = &changed.lead_id;
        leads::set_stage(txn, t, lead, changed.to_stage, &changed.reason, at).await?;
        let to = Stage::try_from(changed.to_stage).unwrap_or(Stage::Unspecified);
        let recycle = match to {
            Stage::Recycled => Some((settings::RECYCLED, Trigger::StageRecycled)),
            Stage::Lost => Some((settings::LOST, Trigger::StageLost)),
            _ => None,
        };
        if let Some((stage_key, trigger)) = recycle {
            let s = current_settings(txn, t).await?.settings;
            let hours = s.cooldown(stage_key, &changed.reason);
            let due = at + Duration::hours(i64::from(hours));
            enrollments::enroll_by_trigger(txn, &tenant, lead, trigger.as_str(), due, None).await?;
        } else if matches!(to, Stage::Sql | Stage::Opportunity | Stage::Customer) {
            // Back in sales' hands: the recycle sequences let go of it.
            for by in [Trigger::StageRecycled, Trigger::StageLost] {
                enrollments::exit_lead(txn, t, lead, ExitReason::BackToSales, Some(by.as_str()))
                    .await?;
            }
        }
        enrollments::wake_lead(txn, t, lead).await?;
        Ok(())
    }
}
