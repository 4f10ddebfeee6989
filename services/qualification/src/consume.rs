//! What qualification does with capture's events: start tracking new leads, score activities,
//! combine the scores of merged leads.

use baton_proto::capture::v1::{ActivityRecorded, LeadCaptured, LeadsMerged};
use baton_shared::{
    TenantId,
    events::{ConsumeError, Event, EventHandler, consumer::decode},
};
use sea_orm::DatabaseTransaction;

use crate::store;

/// Handler for capture's event log.
pub struct CaptureEvents;

impl EventHandler for CaptureEvents {
    async fn handle(&self, txn: &DatabaseTransaction, event: &Event) -> Result<(), ConsumeError> {
        let tenant = TenantId::new(event.tenant_id.clone());
        if let Some(captured) = decode::<LeadCaptured>(event)? {
            store::start_lead(txn, &tenant, &captured.lead_id).await?;
        } else if let Some(recorded) = decode::<ActivityRecorded>(event)? {
            let activity = recorded.activity.ok_or_else(|| {
                ConsumeError::Permanent("ActivityRecorded without an activity".into())
            })?;
            store::score_activity(txn, &tenant, &activity).await?;
        } else if let Some(merged) = decode::<LeadsMerged>(event)? {
            store::merge_scores(
                txn,
                &tenant,
                &merged.survivor_lead_id,
                &merged.merged_lead_id,
            )
            .await?;
        }
        Ok(())
    }
}
