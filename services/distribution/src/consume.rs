//! What distribution does with qualification's events: assign each lead that becomes an MQL, or an
//! SQL without having been an MQL (BANT confirmed early), once.

use baton_proto::qualification::v1::{Stage, StageChanged};
use baton_shared::{
    TenantId,
    events::{ConsumeError, Event, EventHandler, consumer::decode},
};
use sea_orm::DatabaseTransaction;

use crate::store;

/// Handler for qualification's event log.
pub struct QualificationEvents;

impl EventHandler for QualificationEvents {
    async fn handle(&self, txn: &DatabaseTransaction, event: &Event) -> Result<(), ConsumeError> {
        if let Some(changed) = decode::<StageChanged>(event)?
            && (changed.to_stage == Stage::Mql as i32 || changed.to_stage == Stage::Sql as i32)
        {
            store::assign_mql(
                txn,
                &TenantId::new(event.tenant_id.clone()),
                &changed.lead_id,
            )
            .await?;
        }
        Ok(())
    }
}
