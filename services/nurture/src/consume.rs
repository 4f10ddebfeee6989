//! What nurture does with capture's events (enrol each new lead in the welcome sequence; stop
//! nurturing a lead whose personal data was erased) and with qualification's (enrol a recycled
//! lead in the re-engagement sequence; take it out when it goes back to sales).

use baton_proto::{
    capture::v1::{LeadCaptured, LeadErased},
    qualification::v1::{Stage, StageChanged},
};
use baton_shared::{
    TenantId,
    events::{ConsumeError, Event, EventHandler, consumer::decode},
    time,
};
use sea_orm::DatabaseTransaction;

use crate::store;

/// Handler for capture's event log.
pub struct CaptureEvents;

impl EventHandler for CaptureEvents {
    async fn handle(&self, txn: &DatabaseTransaction, event: &Event) -> Result<(), ConsumeError> {
        if let Some(captured) = decode::<LeadCaptured>(event)? {
            let captured_at = captured
                .captured_at
                .as_ref()
                .and_then(time::from_proto)
                .unwrap_or_else(time::now);
            store::enroll_in_welcome(
                txn,
                &TenantId::new(event.tenant_id.clone()),
                &captured.lead_id,
                captured_at,
            )
            .await?;
        } else if let Some(erased) = decode::<LeadErased>(event)? {
            store::exit_all(
                txn,
                &TenantId::new(event.tenant_id.clone()),
                &erased.lead_id,
            )
            .await?;
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
        if changed.to_stage == Stage::Recycled as i32 {
            let at = changed
                .changed_at
                .as_ref()
                .and_then(time::from_proto)
                .unwrap_or_else(time::now);
            store::enroll_recycled(txn, &tenant, &changed.lead_id, at).await?;
        } else if changed.from_stage == Stage::Recycled as i32 {
            store::exit_recycled(txn, &tenant, &changed.lead_id).await?;
        }
        Ok(())
    }
}
