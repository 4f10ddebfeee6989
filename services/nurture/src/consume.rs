//! What nurture does with capture's events (keep its lead replica and the leads' own
//! activities; enrol on capture, lead magnets and segments entered; stop on consent, erasure
//! and merges; watch replies and meetings) and with qualification's (stages, scores and ranks
//! for goals and segments; recycled and lost leads into their recycle sequences after the
//! cool-down; out of them when they go back to sales).

use baton_proto::{
    capture::v1::{
        Activity, ActivityKind, ActivityRecorded, LeadCaptured, LeadErased, LeadUpdated,
        LeadsMerged,
    },
    nurture::v1::ExitReason,
    qualification::v1::{RankChanged, Stage, StageChanged},
};
use baton_shared::{
    TenantId,
    events::{ConsumeError, Event, EventHandler, consumer::decode},
    time,
};
use chrono::Duration;
use sea_orm::DatabaseTransaction;
use std::path::PathBuf;

use crate::{
    domain::{definition::Trigger, settings},
    store::{
        enrollments, erasure, leads, leads::Signal, segments,
        settings::current as current_settings, touches,
    },
};

/// Handler for capture's event log.
pub struct CaptureEvents {
    /// The file sink's directory, when mail goes there: an erased lead's mails are deleted.
    pub mail_files: Option<PathBuf>,
}

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
            let before = segments::memberships(txn, t, &lead.lead_id).await?;
            let row = leads::upsert(txn, t, lead).await?;
            let now = time::now();
            let captured = Trigger::Captured.as_str();
            enrollments::enroll_by_trigger(txn, &tenant, &row.lead_id, captured, now, None).await?;
            if !row.lead_magnet.is_empty() {
                let magnet = Some(row.lead_magnet.as_str());
                let by = Trigger::LeadMagnet.as_str();
                enrollments::enroll_by_trigger(txn, &tenant, &row.lead_id, by, now, magnet).await?;
            }
            enrollments::enroll_entered(txn, &tenant, &row.lead_id, &before).await?;
        } else if let Some(updated) = decode::<LeadUpdated>(event)? {
            let Some(lead) = updated.lead.as_ref() else {
                return Ok(());
            };
            let before = segments::memberships(txn, t, &lead.lead_id).await?;
            let row = leads::upsert(txn, t, lead).await?;
            if row.do_not_contact {
                enrollments::exit_lead(txn, t, &row.lead_id, ExitReason::DoNotContact, None)
                    .await?;
            } else if row.unsubscribed {
                enrollments::exit_lead(txn, t, &row.lead_id, ExitReason::Unsubscribed, None)
                    .await?;
            }
            enrollments::enroll_entered(txn, &tenant, &row.lead_id, &before).await?;
        } else if let Some(erased) = decode::<LeadErased>(event)? {
            leads::erase(txn, t, &erased.lead_id).await?;
            segments::move_activities(txn, t, &erased.lead_id, None).await?;
            enrollments::exit_lead(txn, t, &erased.lead_id, ExitReason::Erased, None).await?;
            let touches = erasure::erase(txn, &tenant, &erased.lead_id).await?;
            if let Some(dir) = &self.mail_files
                && let Err(e) = erasure::delete_mail_files(dir, &touches).await
            {
                // The database's erasure must not wait on the file sink (a developer's outbox).
                tracing::warn!(dir = %dir.display(), error = %e, "erased lead: mail files not deleted");
            }
        } else if let Some(merged) = decode::<LeadsMerged>(event)? {
            let (survivor, gone) = (&merged.survivor_lead_id, &merged.merged_lead_id);
            leads::merge(txn, t, survivor, gone).await?;
            enrollments::move_to_survivor(txn, t, gone, survivor).await?;
            touches::move_lead(txn, t, gone, survivor).await?;
            segments::move_activities(txn, t, gone, Some(survivor)).await?;
        } else if let Some(recorded) = decode::<ActivityRecorded>(event)?
            && let Some(a) = recorded.activity.as_ref()
        {
            activity(txn, &tenant, a).await?;
        }
        Ok(())
    }
}

/// A lead's activity: kept for segments (unless a machine made it), a reply or meeting noted for
/// goals and branches, and the segments it may have entered.
async fn activity(
    txn: &DatabaseTransaction,
    tenant: &TenantId,
    a: &Activity,
) -> Result<(), ConsumeError> {
    if a.machine_generated {
        return Ok(());
    }
    let t = tenant.as_str();
    let at = a
        .occurred_at
        .as_ref()
        .and_then(time::from_proto)
        .unwrap_or_else(time::now);
    let before = segments::memberships(txn, t, &a.lead_id).await?;
    segments::record_activity(txn, t, &a.lead_id, (a.kind, a.page_kind), &a.subject, at).await?;
    let signal = match ActivityKind::try_from(a.kind) {
        Ok(ActivityKind::EmailReplied) => Some(Signal::Replied),
        Ok(ActivityKind::MeetingBooked) => Some(Signal::MeetingBooked),
        _ => None,
    };
    if let Some(signal) = signal {
        leads::record_signal(txn, t, &a.lead_id, signal, at).await?;
        enrollments::wake_lead(txn, t, &a.lead_id).await?;
    }
    enrollments::enroll_entered(txn, tenant, &a.lead_id, &before).await?;
    Ok(())
}

/// Handler for qualification's event log.
pub struct QualificationEvents;

impl EventHandler for QualificationEvents {
    async fn handle(&self, txn: &DatabaseTransaction, event: &Event) -> Result<(), ConsumeError> {
        let tenant = TenantId::new(event.tenant_id.clone());
        let t = tenant.as_str();
        if let Some(ranked) = decode::<RankChanged>(event)? {
            let before = segments::memberships(txn, t, &ranked.lead_id).await?;
            leads::set_rank(txn, t, &ranked.lead_id, ranked.to_rank).await?;
            enrollments::enroll_entered(txn, &tenant, &ranked.lead_id, &before).await?;
            return Ok(());
        }
        let Some(changed) = decode::<StageChanged>(event)? else {
            return Ok(());
        };
        stage_changed(txn, &tenant, &changed).await
    }
}

async fn stage_changed(
    txn: &DatabaseTransaction,
    tenant: &TenantId,
    changed: &StageChanged,
) -> Result<(), ConsumeError> {
    let t = tenant.as_str();
    let at = changed
        .changed_at
        .as_ref()
        .and_then(time::from_proto)
        .unwrap_or_else(time::now);
    let lead = &changed.lead_id;
    let before = segments::memberships(txn, t, lead).await?;
    let stage = (changed.to_stage, changed.score);
    leads::set_stage(txn, t, lead, stage, &changed.reason, at).await?;
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
        enrollments::enroll_by_trigger(txn, tenant, lead, trigger.as_str(), due, None).await?;
    } else if matches!(to, Stage::Sql | Stage::Opportunity | Stage::Customer) {
        // Back in sales' hands: the recycle sequences let go of it.
        for by in [Trigger::StageRecycled, Trigger::StageLost] {
            enrollments::exit_lead(txn, t, lead, ExitReason::BackToSales, Some(by.as_str()))
                .await?;
        }
    }
    enrollments::wake_lead(txn, t, lead).await?;
    enrollments::enroll_entered(txn, tenant, lead, &before).await?;
    Ok(())
}
