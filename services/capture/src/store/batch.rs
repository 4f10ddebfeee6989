//! Set-based capture of many leads inside one transaction (a group-commit batch or an import
//! message): a handful of statements per batch instead of several per lead, with every row
//! answered exactly as [`super::Store::capture_lead`] would have answered it, had the rows been
//! captured one after the other in the given order.

use std::collections::HashMap;

use baton_proto::capture::v1::LeadCaptured;
use baton_shared::{
    TenantId,
    db::{self, find_by_unique_key},
    events::EventLog,
    time,
};
use sea_orm::{
    ActiveValue::{NotSet, Set},
    ConnectionTrait, DatabaseTransaction, DbErr, EntityTrait, QueryFilter,
    prelude::*,
};
use tracing::Span;

use super::{
    CaptureOutcome, Captured, LeadView,
    entities::{capture_request, company, lead},
    find_lead, merge_company, new_lead_row, resolve, with_company,
};
use crate::error::Error;
use crate::{convert::lead_to_proto, domain::lead::NewLead};

/// Rows per multi-row INSERT (a lead, the widest row, has 33 columns).
const CHUNK: usize = db::IN_CHUNK;

/// What a row turned out to be, before anything is written.
enum Plan {
    /// Refused (nothing written for it).
    Refused(Error),
    /// Its request_id was stored by an earlier call.
    Replay { view: LeadView, created: bool },
    /// Its request_id was used by an earlier row of this batch (that row's answer, replayed).
    ReplayOfRow { row: usize },
    /// Its e-mail belongs to a stored lead.
    Match { view: LeadView },
    /// Its e-mail belongs to a lead an earlier row of this batch creates.
    MatchOfRow { row: usize },
    /// A new lead (its row, not yet inserted).
    Create { lead_id: String },
}

/// Captures `rows` inside `txn` (which the caller commits). A database error fails the whole
/// batch (the caller rolls back and may retry row by row); a row's own problem (a request_id
/// reused for another payload, a merge chain too long) is that row's answer only.
pub(super) async fn capture_many(
    txn: &DatabaseTransaction,
    tenant: &TenantId,
    rows: &[(&NewLead, Span)],
) -> Result<Vec<Captured>, DbErr> {
    if txn.get_database_backend() == sea_orm::DbBackend::Postgres {
        // Plan each statement of the batch for the tables as they are now: with generic plans
        // allowed, some statement of the batch keeps a plan that stops fitting as the tables grow
        // (docs/performance.md has the measurement).
        txn.execute_unprepared("SET LOCAL plan_cache_mode TO force_custom_plan")
            .await?;
    }
    let now = time::now();
    let stored_requests = known_requests(txn, tenant, rows).await?;
    let stored_leads = leads_by_email(txn, tenant, rows, &stored_requests).await?;
    let stored_companies = companies_by_domain(txn, tenant, rows, &stored_leads).await?;
    let planned = plan_rows(
        txn,
        tenant,
        rows,
        &stored_requests,
        &stored_leads,
        stored_companies.clone(),
        now,
    )
    .await?;
    let company_rows = write_companies(
        txn,
        planned.companies,
        planned.own_companies,
        &stored_companies,
    )
    .await?;
    let lead_rows = write_leads(txn, &planned.new_leads).await?;
    let (answers, requests) =
        answers_of(tenant, rows, planned.plans, lead_rows, &company_rows, now)?;
    db::insert_chunked(txn, &requests).await?;
    append_captured(txn, tenant, rows, &answers).await?;
    Ok(answers)
}

/// Every row's plan, and the rows a batch will write.
struct PlannedBatch {
    plans: Vec<Plan>,
    new_leads: Vec<lead::ActiveModel>,
    /// Companies by web domain, as they will be after the batch (stored ones with blanks filled).
    companies: HashMap<String, company::Model>,
    /// Companies of no web domain: one of their own per lead.
    own_companies: Vec<company::Model>,
}

/// Decides every row in order, as sequential captures would (reads only: a replayed or matched
/// lead and its merges).
async fn plan_rows(
    txn: &DatabaseTransaction,
    tenant: &TenantId,
    rows: &[(&NewLead, Span)],
    stored_requests: &HashMap<String, capture_request::Model>,
    stored_leads: &HashMap<String, lead::Model>,
    mut companies: HashMap<String, company::Model>,
    now: chrono::DateTime<chrono::Utc>,
) -> Result<PlannedBatch, DbErr> {
    let mut plans: Vec<Plan> = Vec::with_capacity(rows.len());
    let mut request_row: HashMap<&str, usize> = HashMap::new();
    let mut email_row: HashMap<&str, usize> = HashMap::new();
    let mut new_leads: Vec<lead::ActiveModel> = Vec::new();
    let mut own_companies: Vec<company::Model> = Vec::new();
    for (i, (new, _)) in rows.iter().enumerate() {
        let plan = if let Some(seen) = stored_requests.get(new.request_id.as_str()) {
            if seen.fingerprint == new.fingerprint {
                match find_lead(txn, tenant, &seen.lead_id).await {
                    Ok(view) => Plan::Replay {
                        view,
                        created: seen.created,
                    },
                    Err(Error::Database(e)) => return Err(e),
                    Err(e) => Plan::Refused(e),
                }
            } else {
                Plan::Refused(reused_request_id())
            }
        } else if let Some(&row) = request_row.get(new.request_id.as_str()) {
            if rows[row].0.fingerprint == new.fingerprint {
                Plan::ReplayOfRow { row }
            } else {
                Plan::Refused(reused_request_id())
            }
        } else if let Some(lead) = stored_leads.get(new.email_normalized.as_str()) {
            match resolve(txn, tenant, lead.clone()).await {
                Ok(lead) => Plan::Match {
                    view: with_company(txn, lead).await?,
                },
                Err(Error::Database(e)) => return Err(e),
                Err(e) => Plan::Refused(e),
            }
        } else if let Some(&row) = email_row.get(new.email_normalized.as_str()) {
            Plan::MatchOfRow { row }
        } else {
            let company = match &new.profile.company {
                None => None,
                Some(p) if p.web_domain.is_empty() => {
                    let own = merge_company(None, tenant, p, false, now);
                    own_companies.push(own.clone());
                    Some(own)
                }
                Some(p) => {
                    let known = companies.get(p.web_domain.as_str());
                    let next = merge_company(known, tenant, p, false, now);
                    companies.insert(p.web_domain.clone(), next.clone());
                    Some(next)
                }
            };
            let lead_id = uuid::Uuid::now_v7().to_string();
            match new_lead_row(tenant, &lead_id, new, company.as_ref(), now) {
                Ok(row) => {
                    new_leads.push(row);
                    email_row.insert(new.email_normalized.as_str(), i);
                    Plan::Create { lead_id }
                }
                Err(e) => Plan::Refused(e.into()),
            }
        };
        if matches!(
            plan,
            Plan::Match { .. } | Plan::MatchOfRow { .. } | Plan::Create { .. }
        ) {
            request_row.insert(new.request_id.as_str(), i);
        }
        plans.push(plan);
    }
    Ok(PlannedBatch {
        plans,
        new_leads,
        companies,
        own_companies,
    })
}

/// Writes the batch's companies (new ones inserted, known ones whose blanks were filled updated);
/// returns every company a lead of the batch names, by id.
async fn write_companies(
    txn: &DatabaseTransaction,
    companies: HashMap<String, company::Model>,
    own_companies: Vec<company::Model>,
    stored_companies: &HashMap<String, company::Model>,
) -> Result<HashMap<String, company::Model>, DbErr> {
    let mut company_rows: HashMap<String, company::Model> = HashMap::new();
    let mut inserts = own_companies;
    for (domain, c) in companies {
        let stored = stored_companies.get(&domain);
        if stored.is_none() {
            inserts.push(c);
        } else if stored != Some(&c) {
            let mut row: company::ActiveModel = c.into();
            for column in super::COMPANY_PROFILE_COLUMNS {
                row.reset(column);
            }
            let c = row.update(txn).await?;
            company_rows.insert(c.company_id.clone(), c);
        } else {
            company_rows.insert(c.company_id.clone(), c);
        }
    }
    for chunk in inserts.chunks(CHUNK) {
        let rows = chunk.iter().map(|c| {
            let mut row: company::ActiveModel = c.clone().into();
            row.seq = NotSet;
            row
        });
        for c in company::Entity::insert_many(rows)
            .exec_with_returning(txn)
            .await?
        {
            company_rows.insert(c.company_id.clone(), c);
        }
    }
    Ok(company_rows)
}

/// Inserts the new leads; returns them by id. The stored rows are what was built (every column
/// set; times to the microsecond), so they are not read back; `seq` is the one column the
/// database draws and no answer shows it.
async fn write_leads(
    txn: &DatabaseTransaction,
    new_leads: &[lead::ActiveModel],
) -> Result<HashMap<String, lead::Model>, DbErr> {
    let mut lead_rows: HashMap<String, lead::Model> = HashMap::new();
    for row in new_leads {
        let mut built = row.clone();
        built.seq = Set(0);
        let model = sea_orm::TryIntoModel::try_into_model(built)?;
        lead_rows.insert(model.lead_id.clone(), model);
    }
    db::insert_chunked(txn, new_leads).await?;
    Ok(lead_rows)
}

/// Every answer, in row order (an earlier row's answer is ready when a later row names it), and
/// the request fingerprints to store for the rows that created or matched a lead (pure).
fn answers_of(
    tenant: &TenantId,
    rows: &[(&NewLead, Span)],
    plans: Vec<Plan>,
    mut lead_rows: HashMap<String, lead::Model>,
    company_rows: &HashMap<String, company::Model>,
    now: chrono::DateTime<chrono::Utc>,
) -> Result<(Vec<Captured>, Vec<capture_request::ActiveModel>), DbErr> {
    let mut answers: Vec<Captured> = Vec::with_capacity(rows.len());
    let mut requests: Vec<capture_request::ActiveModel> = Vec::new();
    let no_answer = |row: usize| DbErr::Custom(format!("row {row} of the batch has no answer"));
    for (i, plan) in plans.into_iter().enumerate() {
        let new = rows[i].0;
        let answer = match plan {
            Plan::Refused(e) => Err(e),
            Plan::Replay { view, created } => Ok((view, CaptureOutcome::Replayed { created })),
            Plan::Match { view } => Ok((view, CaptureOutcome::MatchedExisting)),
            // The rows named here were planned to succeed, and their answers precede this one.
            Plan::ReplayOfRow { row } => match answers.get(row) {
                Some(Ok((view, outcome))) => Ok((
                    view.clone(),
                    CaptureOutcome::Replayed {
                        created: outcome.created(),
                    },
                )),
                _ => return Err(no_answer(row)),
            },
            Plan::MatchOfRow { row } => match answers.get(row) {
                Some(Ok((view, _))) => Ok((view.clone(), CaptureOutcome::MatchedExisting)),
                _ => return Err(no_answer(row)),
            },
            Plan::Create { lead_id } => {
                let lead = lead_rows
                    .remove(&lead_id)
                    .ok_or_else(|| DbErr::RecordNotInserted)?;
                let company = lead
                    .company_id
                    .as_ref()
                    .and_then(|id| company_rows.get(id))
                    .cloned();
                Ok((
                    LeadView {
                        lead,
                        company,
                        merged_ids: Vec::new(),
                    },
                    CaptureOutcome::Created,
                ))
            }
        };
        if let Ok((view, outcome @ (CaptureOutcome::Created | CaptureOutcome::MatchedExisting))) =
            &answer
        {
            requests.push(capture_request::ActiveModel {
                tenant_id: Set(tenant.to_string()),
                request_id: Set(new.request_id.clone()),
                fingerprint: Set(new.fingerprint.clone()),
                lead_id: Set(view.lead.lead_id.clone()),
                created: Set(outcome.created()),
                created_at: Set(now),
            });
        }
        answers.push(answer);
    }
    Ok((answers, requests))
}

/// Appends `LeadCaptured` for each created lead, with the span of the capture that made it.
async fn append_captured(
    txn: &DatabaseTransaction,
    tenant: &TenantId,
    rows: &[(&NewLead, Span)],
    answers: &[Captured],
) -> Result<(), DbErr> {
    let events: Vec<(String, LeadCaptured, &Span)> = answers
        .iter()
        .zip(rows)
        .filter_map(|(answer, (_, span))| match answer {
            Ok((view, CaptureOutcome::Created)) => {
                let lead = lead_to_proto(view);
                Some((
                    view.lead.lead_id.clone(),
                    LeadCaptured {
                        lead_id: lead.lead_id.clone(),
                        email: lead.email.clone(),
                        source: lead.source.clone(),
                        captured_at: lead.captured_at,
                        lead: Some(lead),
                    },
                    span,
                ))
            }
            _ => None,
        })
        .collect();
    let events: Vec<(&str, &LeadCaptured, &Span)> = events
        .iter()
        .map(|(id, event, span)| (id.as_str(), event, *span))
        .collect();
    EventLog::append_many(txn, tenant, &events).await?;
    Ok(())
}

fn reused_request_id() -> Error {
    Error::invalid("request_id", "was already used for a different capture")
}

/// The stored fingerprints of the rows' request_ids.
async fn known_requests(
    txn: &DatabaseTransaction,
    tenant: &TenantId,
    rows: &[(&NewLead, Span)],
) -> Result<HashMap<String, capture_request::Model>, DbErr> {
    let mut ids: Vec<&str> = rows.iter().map(|(r, _)| r.request_id.as_str()).collect();
    ids.sort_unstable();
    ids.dedup();
    let query = capture_request::Entity::find()
        .filter(capture_request::Column::TenantId.eq(tenant.as_str()));
    let rows = find_by_unique_key(txn, query, capture_request::Column::RequestId, &ids).await?;
    Ok(rows
        .into_iter()
        .map(|r| (r.request_id.clone(), r))
        .collect())
}

/// The stored leads of the e-mails of rows that are not replays.
async fn leads_by_email(
    txn: &DatabaseTransaction,
    tenant: &TenantId,
    rows: &[(&NewLead, Span)],
    replays: &HashMap<String, capture_request::Model>,
) -> Result<HashMap<String, lead::Model>, DbErr> {
    let mut emails: Vec<&str> = rows
        .iter()
        .filter(|(r, _)| !replays.contains_key(&r.request_id))
        .map(|(r, _)| r.email_normalized.as_str())
        .collect();
    emails.sort_unstable();
    emails.dedup();
    let query = lead::Entity::find().filter(lead::Column::TenantId.eq(tenant.as_str()));
    let rows = find_by_unique_key(txn, query, lead::Column::EmailNormalized, &emails).await?;
    Ok(rows
        .into_iter()
        .map(|l| (l.email_normalized.clone(), l))
        .collect())
}

/// The stored companies of the web domains of rows that may create a lead.
async fn companies_by_domain(
    txn: &DatabaseTransaction,
    tenant: &TenantId,
    rows: &[(&NewLead, Span)],
    stored_leads: &HashMap<String, lead::Model>,
) -> Result<HashMap<String, company::Model>, DbErr> {
    let mut domains: Vec<&str> = rows
        .iter()
        .filter(|(r, _)| !stored_leads.contains_key(&r.email_normalized))
        .filter_map(|(r, _)| r.profile.company.as_ref())
        .map(|c| c.web_domain.as_str())
        .filter(|d| !d.is_empty())
        .collect();
    domains.sort_unstable();
    domains.dedup();
    let query = company::Entity::find().filter(company::Column::TenantId.eq(tenant.as_str()));
    let rows = find_by_unique_key(txn, query, company::Column::WebDomain, &domains).await?;
    Ok(rows
        .into_iter()
        .filter_map(|c| c.web_domain.clone().map(|d| (d, c)))
        .collect())
}
