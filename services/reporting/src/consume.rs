//! What reporting does with everyone's events: record the funnel step each one marks, and keep
//! the KPI engine's facts and rollups current, in the transaction that applies the event.

use baton_proto::{
    capture::v1::{
        ActivityKind, ActivityRecorded, CallOutcome, Consent, FunnelPosition, LeadCaptured,
        LeadErased, LeadUpdated, LeadsMerged, VisitsRecorded,
    },
    distribution::v1::{HandoffAction, HandoffChanged, LeadAssigned, SlaBreached},
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
        accounts::Company,
        email,
        funnel::Step,
        kpis::{self as kpis_domain, Metric},
    },
    store::{
        self, accounts, attainment, email as email_store,
        kpis::{self, Dims, Fact, LeadChange},
        money,
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

/// The dimensions a lead was captured with: its source, content and company.
fn dims_of_capture(e: &LeadCaptured) -> Dims {
    let source = e.source.clone().unwrap_or_default();
    let company = e
        .lead
        .as_ref()
        .and_then(|l| l.company.clone())
        .unwrap_or_default();
    let position = FunnelPosition::try_from(source.funnel_position)
        .ok()
        .filter(|p| *p != FunnelPosition::Unspecified)
        .map(|p| {
            p.as_str_name()
                .trim_start_matches("FUNNEL_POSITION_")
                .to_ascii_lowercase()
        })
        .unwrap_or_default();
    Dims {
        channel: source.channel,
        campaign: source.campaign,
        lead_magnet: source.lead_magnet,
        funnel_position: position,
        industry: company.industry,
        employee_band: kpis_domain::employee_band(company.employees).to_owned(),
        country: company.country,
        ..Dims::default()
    }
}

impl EventHandler for FunnelEvents {
    /// The batch's counters are summed in memory and written once at its end.
    async fn handle_batch(
        &self,
        txn: &DatabaseTransaction,
        events: &[(&Event, tracing::Span)],
    ) -> Result<(), ConsumeError> {
        use tracing::Instrument;
        kpis::deferred(txn, async {
            for (event, span) in events {
                self.handle(txn, event).instrument(span.clone()).await?;
            }
            Ok::<(), ConsumeError>(())
        })
        .await
    }

    async fn handle(&self, txn: &DatabaseTransaction, event: &Event) -> Result<(), ConsumeError> {
        let tenant = TenantId::new(event.tenant_id.clone());
        journal_entry(txn, &tenant, event).await?;
        if let Some(e) = decode::<LeadCaptured>(event)? {
            let at = when(e.captured_at.as_ref(), event);
            let dims = dims_of_capture(&e);
            let target = is_target(txn, &tenant, &e, event).await?;
            kpis::lead_captured(txn, &tenant, &e.lead_id, (&dims, target), at).await?;
            money::pending_cycles(txn, &tenant, &e.lead_id).await?;
            kpis::step_reached(txn, &tenant, &e.lead_id, Step::Captured, at).await?;
            let consent = e.lead.and_then(|l| l.consent).unwrap_or_default();
            consent_changed(txn, &tenant, &e.lead_id, &consent, at).await?;
        } else if let Some(e) = decode::<LeadUpdated>(event)?
            && let Some(lead) = e.lead
            && e.changed_paths.iter().any(|p| p.starts_with("consent"))
        {
            let at = when(lead.updated_at.as_ref(), event);
            let consent = lead.consent.unwrap_or_default();
            consent_changed(txn, &tenant, &lead.lead_id, &consent, at).await?;
        } else if let Some(e) = decode::<LeadsMerged>(event)? {
            let at = when(e.merged_at.as_ref(), event);
            kpis::lead_merged(txn, &tenant, &e.merged_lead_id).await?;
            let merged = |f| f | email::MERGED;
            email_store::set_email_flags(txn, &tenant, &e.merged_lead_id, merged, at).await?;
        } else if let Some(e) = decode::<LeadErased>(event)? {
            let at = when(e.erased_at.as_ref(), event);
            let erased = |f| f | email::ERASED;
            email_store::set_email_flags(txn, &tenant, &e.lead_id, erased, at).await?;
            store::erasure::erase(txn, &tenant, &e.lead_id).await?;
        } else if let Some(e) = decode::<StageChanged>(event)? {
            stage_changed(txn, &tenant, &e, when(e.changed_at.as_ref(), event)).await?;
        } else if let Some(e) = decode::<LeadAssigned>(event)? {
            lead_assigned(txn, &tenant, &e, when(e.assigned_at.as_ref(), event)).await?;
        } else if let Some(e) = decode::<LeadEnrolled>(event)? {
            if let Some(en) = e.enrollment {
                let at = when(en.enrolled_at.as_ref(), event);
                store::record_fact(txn, &tenant, &en.lead_id, Step::Enrolled, at).await?;
            }
        } else if let Some(e) = decode::<ActivityRecorded>(event)? {
            activity_recorded(txn, &tenant, &e, event).await?;
        } else if let Some(e) = decode::<VisitsRecorded>(event)? {
            let dims = Dims::source(&e.channel, &e.campaign);
            kpis::set_visits(txn, &tenant, &e.day, &dims, e.visitors).await?;
        } else if let Some(e) = decode::<HandoffChanged>(event)? {
            handoff_changed(txn, &tenant, &e, event).await?;
            let at = when(e.step.as_ref().and_then(|s| s.at.as_ref()), event);
            attainment::handoff_changed(txn, &tenant, &e, at).await?;
        } else if let Some(e) = decode::<SlaBreached>(event)? {
            attainment::sla_breached(txn, &tenant, &e).await?;
        } else if let Some(e) = decode::<RankChanged>(event)? {
            let at = when(e.changed_at.as_ref(), event);
            let change = LeadChange {
                rank: Some(kpis_domain::rank_name(e.to_rank)),
                at: Some(at),
                ..LeadChange::default()
            };
            kpis::change_lead(txn, &tenant, &e.lead_id, &change).await?;
            if kpis_domain::is_rank_up(e.from_rank, e.to_rank) {
                let fact = Fact::new(Metric::RankUps, at, 1);
                kpis::bump_for_lead(txn, &tenant, &e.lead_id, &fact).await?;
            }
        }
        Ok(())
    }
}

/// The journal entry of a decision about a lead, for the events that are one.
async fn journal_entry(
    txn: &DatabaseTransaction,
    tenant: &TenantId,
    event: &Event,
) -> Result<(), ConsumeError> {
    use crate::domain::journal as j;
    let entry = if let Some(e) = decode::<LeadCaptured>(event)? {
        Some(j::captured(&e))
    } else if let Some(e) = decode::<LeadsMerged>(event)? {
        Some(j::merged(&e))
    } else if let Some(e) = decode::<LeadErased>(event)? {
        Some(j::erased(&e))
    } else if let Some(e) = decode::<StageChanged>(event)? {
        Some(j::stage_changed(&e))
    } else if let Some(e) = decode::<RankChanged>(event)? {
        Some(j::rank_changed(&e))
    } else if let Some(e) = decode::<LeadAssigned>(event)? {
        Some(j::assigned(&e))
    } else if let Some(e) = decode::<HandoffChanged>(event)? {
        j::handoff_changed(&e)
    } else if let Some(e) = decode::<SlaBreached>(event)? {
        Some(j::sla_breached(&e))
    } else if let Some(e) = decode::<LeadEnrolled>(event)? {
        j::enrolled(&e)
    } else {
        None
    };
    if let Some(entry) = entry {
        store::journal::record(txn, tenant, entry, when(None, event)).await?;
    }
    Ok(())
}

/// Whether the captured lead's company matched the tenant's target-account condition in force
/// when it was captured.
async fn is_target(
    txn: &DatabaseTransaction,
    tenant: &TenantId,
    e: &LeadCaptured,
    event: &Event,
) -> Result<bool, ConsumeError> {
    // When capture recorded the lead (its captured_at may be backdated).
    let at = when(None, event);
    let condition = crate::convert::condition_of(&accounts::condition_at(txn, tenant, at).await?);
    if condition.is_empty() {
        return Ok(false);
    }
    let company = e
        .lead
        .as_ref()
        .and_then(|l| l.company.clone())
        .unwrap_or_default();
    Ok(condition.matches(&Company {
        web_domain: &company.web_domain,
        industry: &company.industry,
        country: &company.country,
        employees: company.employees,
    }))
}

/// The lead's address as its consent now says (the list size follows).
async fn consent_changed(
    txn: &DatabaseTransaction,
    tenant: &TenantId,
    lead_id: &str,
    c: &Consent,
    at: DateTime<Utc>,
) -> Result<(), ConsumeError> {
    let change = |f: i32| {
        email::with_consent(
            f | email::KNOWN,
            c.email_opt_in,
            c.unsubscribed,
            c.do_not_contact,
        )
    };
    email_store::set_email_flags(txn, tenant, lead_id, change, at).await?;
    Ok(())
}

/// MQL and SQL: each lead counts once, under the dimensions it was captured with.
async fn stage_changed(
    txn: &DatabaseTransaction,
    tenant: &TenantId,
    e: &StageChanged,
    at: DateTime<Utc>,
) -> Result<(), ConsumeError> {
    if let Ok(stage) = Stage::try_from(e.to_stage)
        && stage != Stage::Unspecified
    {
        let name = stage
            .as_str_name()
            .trim_start_matches("STAGE_")
            .to_ascii_lowercase();
        let change = LeadChange {
            stage: Some((&name, at)),
            ..LeadChange::default()
        };
        kpis::change_lead(txn, tenant, &e.lead_id, &change).await?;
    }
    let (step, metric) = match Stage::try_from(e.to_stage) {
        Ok(Stage::Mql) => (Step::BecameMql, Metric::Mqls),
        Ok(Stage::Sql) => (Step::BecameSql, Metric::Sqls),
        _ => return Ok(()),
    };
    if kpis::step_reached(txn, tenant, &e.lead_id, step, at).await? {
        kpis::bump_for_lead(txn, tenant, &e.lead_id, &Fact::new(metric, at, 1)).await?;
    }
    Ok(())
}

/// The lead's later facts count under its team and rep; its first assignment is a lead IS works.
async fn lead_assigned(
    txn: &DatabaseTransaction,
    tenant: &TenantId,
    e: &baton_proto::distribution::v1::LeadAssigned,
    at: DateTime<Utc>,
) -> Result<(), ConsumeError> {
    let change = LeadChange {
        team: (!e.team_id.is_empty()).then_some(e.team_id.as_str()),
        rep: Some(e.rep_id.as_str()),
        at: Some(at),
        ..LeadChange::default()
    };
    kpis::change_lead(txn, tenant, &e.lead_id, &change).await?;
    if store::record_fact(txn, tenant, &e.lead_id, Step::Assigned, at).await? {
        let fact = Fact::new(Metric::AssignedLeads, at, 1);
        kpis::bump_for_lead(txn, tenant, &e.lead_id, &fact).await?;
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
    if a.machine_generated {
        // Machine-made opens and clicks do not count in the e-mail KPIs (nor touch the lead).
        return Ok(());
    }
    let counted: Vec<(Metric, i64)> = match ActivityKind::try_from(a.kind) {
        Ok(ActivityKind::FormSubmitted) => vec![(Metric::FormSubmissions, 1)],
        Ok(ActivityKind::EmailDelivered) => vec![(Metric::EmailsDelivered, 1)],
        Ok(ActivityKind::EmailClicked) => vec![(Metric::EmailClicks, 1)],
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
        _ => Vec::new(),
    };
    let at = when(a.occurred_at.as_ref(), event);
    let touched = LeadChange {
        touched_at: Some(at),
        ..LeadChange::default()
    };
    kpis::change_lead(txn, tenant, &a.lead_id, &touched).await?;
    if let Ok(kind) = ActivityKind::try_from(a.kind) {
        email_store::record_reach(txn, tenant, &a.lead_id, kind, at).await?;
        if email::changes_flags(kind) {
            let change = |f| email::after_activity(f, kind);
            email_store::set_email_flags(txn, tenant, &a.lead_id, change, at).await?;
        }
    }
    for (metric, delta) in counted {
        let fact = Fact {
            rep: Some(a.performed_by.as_str()),
            ..Fact::new(metric, at, delta)
        };
        kpis::bump_for_lead(txn, tenant, &a.lead_id, &fact).await?;
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
    let at = when(step.at.as_ref(), event);
    let lead = handoff.lead_id.as_str();
    match kind {
        HandoffAction::Created => {
            kpis::bump_for_lead(txn, tenant, lead, &Fact::new(Metric::Opportunities, at, 1))
                .await?;
            if kpis::is_target_account(txn, tenant, lead).await? {
                let fact = Fact::new(Metric::TargetAccountOpportunities, at, 1);
                kpis::bump_for_lead(txn, tenant, lead, &fact).await?;
            }
            if kpis::step_reached(txn, tenant, lead, Step::HandedOff, at).await? {
                let fact = Fact::new(Metric::HandedOffLeads, at, 1);
                kpis::bump_for_lead(txn, tenant, lead, &fact).await?;
            }
        }
        HandoffAction::Won => {
            kpis::step_reached(txn, tenant, lead, Step::Won, at).await?;
            let money = |m: &Option<baton_proto::capture::v1::Money>| {
                m.as_ref()
                    .map(|m| (m.currency_code.clone(), m.amount_minor))
            };
            let win = money::Win {
                amount: money(&handoff.amount),
                mrr: money(&handoff.monthly_recurring_revenue),
                closed_at: handoff.closed_at.as_ref().and_then(time::from_proto),
            };
            money::won(txn, tenant, lead, at, &win).await?;
        }
        HandoffAction::Lost => {
            kpis::bump_for_lead(txn, tenant, lead, &Fact::new(Metric::Decided, at, 1)).await?;
        }
        _ => {}
    }
    Ok(())
}
