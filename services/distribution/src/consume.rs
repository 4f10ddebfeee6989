//! What distribution does with qualification's events: assign each lead that becomes an MQL, or an
//! SQL without having been an MQL (BANT confirmed early), once.

use baton_proto::{
    capture::v1::{LeadCaptured, LeadUpdated},
    qualification::v1::{RankChanged, Stage, StageChanged},
    reporting::v1::ContractActivated,
};
use baton_shared::{
    TenantId,
    events::{ConsumeError, Event, EventHandler, consumer::decode},
};
use sea_orm::DatabaseTransaction;

use crate::store::{self, handoffs, routing};

/// Handler for qualification's event log.
pub struct QualificationEvents;

impl EventHandler for QualificationEvents {
    async fn handle(&self, txn: &DatabaseTransaction, event: &Event) -> Result<(), ConsumeError> {
        let tenant = TenantId::new(event.tenant_id.clone());
        if let Some(changed) = decode::<StageChanged>(event)? {
            handoffs::record_signal(
                txn,
                &tenant,
                &changed.lead_id,
                Some((changed.score, changed.to_stage)),
                None,
            )
            .await?;
            if changed.to_stage == Stage::Mql as i32 || changed.to_stage == Stage::Sql as i32 {
                store::assign_mql(txn, &tenant, &changed.lead_id).await?;
            }
        } else if let Some(ranked) = decode::<RankChanged>(event)? {
            handoffs::record_signal(txn, &tenant, &ranked.lead_id, None, Some(ranked.to_rank))
                .await?;
        }
        Ok(())
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

/// Handler for capture's event log: keeps the profile fields routing conditions read.
pub struct CaptureEvents;

impl EventHandler for CaptureEvents {
    async fn handle(&self, txn: &DatabaseTransaction, event: &Event) -> Result<(), ConsumeError> {
        let tenant = TenantId::new(event.tenant_id.clone());
        if let Some(captured) = decode::<LeadCaptured>(event)? {
            if let Some(lead) = &captured.lead {
                routing::record_profile(txn, &tenant, lead).await?;
            }
        } else if let Some(updated) = decode::<LeadUpdated>(event)?
            && let Some(lead) = &updated.lead
        {
            routing::record_profile(txn, &tenant, lead).await?;
        }
        Ok(())
    }
}
