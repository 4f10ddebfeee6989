//! What reporting does with everyone's events: record the funnel step each one marks.

use baton_proto::{
    capture::v1::LeadCaptured,
    distribution::v1::LeadAssigned,
    nurture::v1::LeadEnrolled,
    qualification::v1::{Stage, StageChanged},
};
use baton_shared::{
    TenantId,
    events::{ConsumeError, Event, EventHandler, consumer::decode},
    time,
};
use chrono::{DateTime, Utc};
use sea_orm::DatabaseTransaction;

use crate::{domain::funnel::Step, store};

/// Handler for the event logs of capture, qualification, distribution and nurture.
pub struct FunnelEvents;

impl EventHandler for FunnelEvents {
    async fn handle(&self, txn: &DatabaseTransaction, event: &Event) -> Result<(), ConsumeError> {
        let fact = if let Some(e) = decode::<LeadCaptured>(event)? {
            Some((e.lead_id, Step::Captured, e.captured_at))
        } else if let Some(e) = decode::<StageChanged>(event)? {
            (e.to_stage == Stage::Mql as i32).then_some((e.lead_id, Step::BecameMql, e.changed_at))
        } else if let Some(e) = decode::<LeadAssigned>(event)? {
            Some((e.lead_id, Step::Assigned, e.assigned_at))
        } else if let Some(e) = decode::<LeadEnrolled>(event)? {
            e.enrollment
                .map(|en| (en.lead_id, Step::Enrolled, en.enrolled_at))
        } else {
            None
        };
        if let Some((lead_id, step, at)) = fact {
            let at: DateTime<Utc> = at
                .as_ref()
                .and_then(time::from_proto)
                .or_else(|| event.recorded_at.as_ref().and_then(time::from_proto))
                .unwrap_or_else(time::now);
            store::record_fact(
                txn,
                &TenantId::new(event.tenant_id.clone()),
                &lead_id,
                step,
                at,
            )
            .await?;
        }
        Ok(())
    }
}
