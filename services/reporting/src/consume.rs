//! What reporting does with everyone's events: record the funnel step each one marks, and keep
//! the KPI engine's facts and rollups current, in the transaction that applies the event.

use baton_proto::{
    capture::v1::{
        ActivityKind, ActivityRecorded, CallOutcome, LeadCaptured, LeadSource, VisitsRecorded,
    },
    distribution::v1::{HandoffAction, HandoffChanged, LeadAssigned},
    nurture::v1::LeadEnrolled,
    qualification::v1::{RankChanged, Stage, StageChanged},
};
use baton_shared::{
    TenantId,
    events::{ConsumeError, Event, EventHandler, consumer::decode},
    time,
};
use chrono::{DateTime, Utc};
use sea_orm::DatabaseTransaction;

use crate::{
    domain::{
        funnel::Step,
        kpis::{self as kpis_domain, Metric},
    },
    store::{
        self,
        kpis::{self, Dims},
    },
};

/// Handler for the event logs of capture, qualification, distribution and nurture.
pub struct FunnelEvents;

/// When an event's fact happened: the time it names, else when it was recorded.
fn when(at: Option<&prost_types::Timestamp>, event: &Event) -> DateTime<Utc> {
    at.and_then(time::from_proto)
        .or_else(|| event.recorded_at.as_ref().and_then(time::from_proto))
        .unwrap_or_else(time::now)
}

fn dims_of_source(source: Option<&LeadSource>) -> Dims {
    source
        .map(|s| Dims {
            channel: s.channel.clone(),
            campaign: s.campaign.clone(),
        })
        .unwrap_or_default()
}

impl EventHandler for FunnelEvents {
    async fn handle(&self, txn: &DatabaseTransaction, event: &Event) -> Result<(), ConsumeError> {
        let tenant = TenantId::new(event.tenant_id.clone());
        if let Some(e) = decode::<LeadCaptured>(event)? {
            let at = when(e.captured_at.as_ref(), event);
            let dims = dims_of_source(e.source.as_ref());
            kpis::lead_captured(txn, &tenant, &e.lead_id, &dims, at).await?;
            kpis::step_reached(txn, &tenant, &e.lead_id, Step::Captured, at).await?;
        } else if let Some(e) = decode::<StageChanged>(event)? {
            stage_changed(txn, &tenant, &e, when(e.changed_at.as_ref(), event)).await?;
        } else if let Some(e) = decode::<LeadAssigned>(event)? {
            let at = when(e.assigned_at.as_ref(), event);
            store::record_fact(txn, &tenant, &e.lead_id, Step::Assigned, at).await?;
        } else if let Some(e) = decode::<LeadEnrolled>(event)? {
            if let Some(en) = e.enrollment {
                let at = when(en.enrolled_at.as_ref(), event);
                store::record_fact(txn, &tenant, &en.lead_id, Step::Enrolled, at).await?;
            }
        } else if let Some(e) = decode::<ActivityRecorded>(event)? {
            activity_recorded(txn, &tenant, &e, event).await?;
        } else if let Some(e) = decode::<VisitsRecorded>(event)? {
            let dims = Dims {
                channel: e.channel,
                campaign: e.campaign,
            };
            kpis::set_visits(txn, &tenant, &e.day, &dims, e.visitors).await?;
        } else if let Some(e) = decode::<HandoffChanged>(event)? {
            handoff_changed(txn, &tenant, &e, event).await?;
        } else if let Some(e) = decode::<RankChanged>(event)?
            && kpis_domain::is_rank_up(e.from_rank, e.to_rank)
        {
            let at = when(e.changed_at.as_ref(), event);
            kpis::bump_for_lead(txn, &tenant, &e.lead_id, Metric::RankUps, at, 1).await?;
        }
        Ok(())
    }
}

/// MQL and SQL: each lead counts once, under the dimensions it was captured with.
async fn stage_changed(
    txn: &DatabaseTransaction,
    tenant: &TenantId,
    e: &StageChanged,
    at: DateTime<Utc>,
) -> Result<(), ConsumeError> {
    let (step, metric) = match Stage::try_from(e.to_stage) {
        Ok(Stage::Mql) => (Step::BecameMql, Metric::Mqls),
        Ok(Stage::Sql) => (Step::BecameSql, Metric::Sqls),
        _ => return Ok(()),
    };
    if kpis::step_reached(txn, tenant, &e.lead_id, step, at).await? {
        kpis::bump_for_lead(txn, tenant, &e.lead_id, metric, at, 1).await?;
    }
    Ok(())
}

async fn activity_recorded(
    txn: &DatabaseTransaction,
    tenant: &TenantId,
    e: &ActivityRecorded,
    event: &Event,
) -> Result<(), ConsumeError> {
    let Some(a) = &e.activity else {
        return Ok(());
    };
    let counted: Vec<(Metric, i64)> = match ActivityKind::try_from(a.kind) {
        Ok(ActivityKind::FormSubmitted) => vec![(Metric::FormSubmissions, 1)],
        Ok(ActivityKind::Call) => {
            let call = a.call.unwrap_or_default();
            let connected = call.outcome == CallOutcome::Connected as i32;
            let mut c = vec![
                (Metric::Calls, 1),
                (
                    Metric::TalkTimeSeconds,
                    i64::from(call.duration_seconds.max(0)),
                ),
            ];
            if connected {
                c.push((Metric::Connects, 1));
            }
            if connected && call.reached_target_department {
                c.push((Metric::ValidConnects, 1));
            }
            c
        }
        _ => return Ok(()),
    };
    let at = when(a.occurred_at.as_ref(), event);
    for (metric, delta) in counted {
        kpis::bump_for_lead(txn, tenant, &a.lead_id, metric, at, delta).await?;
    }
    Ok(())
}

/// Opportunities (handoffs created), wins, and decided handoffs (won or lost).
async fn handoff_changed(
    txn: &DatabaseTransaction,
    tenant: &TenantId,
    e: &HandoffChanged,
    event: &Event,
) -> Result<(), ConsumeError> {
    let (Some(handoff), Some(step)) = (&e.handoff, &e.step) else {
        return Ok(());
    };
    let kind = match HandoffAction::try_from(step.kind) {
        Ok(HandoffAction::Unspecified) | Err(_) => HandoffAction::from_str_name(&format!(
            "HANDOFF_ACTION_{}",
            step.action.to_ascii_uppercase()
        ))
        .unwrap_or(HandoffAction::Unspecified),
        Ok(kind) => kind,
    };
    let metrics: &[Metric] = match kind {
        HandoffAction::Created => &[Metric::Opportunities],
        HandoffAction::Won => &[Metric::Wins, Metric::Decided],
        HandoffAction::Lost => &[Metric::Decided],
        _ => &[],
    };
    if metrics.is_empty() {
        return Ok(());
    }
    let at = when(step.at.as_ref(), event);
    let funnel_step = match kind {
        HandoffAction::Created => Some(Step::HandedOff),
        HandoffAction::Won => Some(Step::Won),
        _ => None,
    };
    if let Some(funnel_step) = funnel_step {
        kpis::step_reached(txn, tenant, &handoff.lead_id, funnel_step, at).await?;
    }
    for metric in metrics {
        kpis::bump_for_lead(txn, tenant, &handoff.lead_id, *metric, at, 1).await?;
    }
    Ok(())
}
