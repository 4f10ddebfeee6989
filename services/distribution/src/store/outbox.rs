//! The events distribution writes about assignments, in the transaction that makes them.

use baton_proto::distribution::v1::LeadAssigned;
use baton_shared::{TenantId, events::EventLog, time};
use sea_orm::{ConnectionTrait, DbErr};

use super::entities::assignment;

/// Appends the `LeadAssigned` event of an assignment to a rep.
pub async fn append_assigned<C: ConnectionTrait>(
    txn: &C,
    tenant: &TenantId,
    row: &assignment::Model,
) -> Result<(), DbErr> {
    EventLog::append(txn, tenant, &row.lead_id, &assigned_event(row))
        .await
        .map(|_| ())
}

/// The `LeadAssigned` event of an assignment to a rep.
pub fn assigned_event(row: &assignment::Model) -> LeadAssigned {
    LeadAssigned {
        lead_id: row.lead_id.clone(),
        rep_id: row.rep_id.clone().unwrap_or_default(),
        assignment_id: row.assignment_id.clone(),
        method: row.method.clone(),
        assigned_at: time::to_proto_opt(row.assigned_at),
        team_id: row.team_id.clone(),
        rule_key: row.rule_key.clone(),
        rules_version: row.rules_version,
    }
}
