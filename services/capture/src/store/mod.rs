//! capture's persistence: one function per use case, each change and its event in one transaction.

mod batch;
pub mod entities;
pub mod group_commit;
pub mod view;

use baton_proto::capture::v1::{
    ActivityKind, ActivityRecorded, LeadCaptured, LeadErased, LeadUpdated, LeadsMerged,
};
use baton_shared::{
    TenantId,
    events::EventLog,
    paging::{Page, fetch_page},
    time,
};
use chrono::{DateTime, Utc};
use sea_orm::{
    ActiveValue::{NotSet, Set},
    ConnectionTrait, DatabaseConnection, DatabaseTransaction, DbErr, EntityTrait, QueryFilter,
    SqlErr, TransactionTrait,
    prelude::*,
    sea_query::OnConflict,
};
use tracing::{Instrument, Span};

use crate::convert::{self, activity_to_proto, lead_to_proto, profile_of};
use crate::domain::{
    activity::NewActivity,
    lead::NewLead,
    profile::{CompanyProfile, LeadProfile},
    visits::VisitCount,
};
use crate::error::Error;
use entities::{activity, capture_request, company, lead, visit_count};
pub use view::{CaptureOutcome, Captured, LeadView};

/// How often a write that lost a race on a unique key is retried (it then sees the winner's row).
const UNIQUE_RACE_RETRIES: usize = 3;

/// Filters of ListLeads.
#[derive(Debug, Clone, Default)]
pub struct LeadFilter {
    pub company_id: Option<String>,
    pub channel: Option<String>,
    pub captured_from: Option<DateTime<Utc>>,
    pub captured_to: Option<DateTime<Utc>>,
}

#[derive(Clone)]
pub struct Store {
    db: DatabaseConnection,
    log: EventLog,
}

impl Store {
    pub fn new(db: DatabaseConnection, log: EventLog) -> Self {
        Store { db, log }
    }

    /// Captures a lead: replays a known request_id, returns the existing lead of the same normalised
    /// e-mail, or creates the lead (and its company, matched by web domain) with its `LeadCaptured`
    /// event. Returns the lead and whether it was created.
    pub async fn capture_lead(&self, tenant: &TenantId, new: &NewLead) -> Captured {
        let mut attempt = 0;
        loop {
            match self.try_capture_lead(tenant, new).await {
                Err(Error::Database(e))
                    if is_unique_violation(&e) && attempt < UNIQUE_RACE_RETRIES =>
                {
                    attempt += 1
                }
                other => return other,
            }
        }
    }

    async fn try_capture_lead(&self, tenant: &TenantId, new: &NewLead) -> Captured {
        let txn = self.db.begin().await?;
        let captured = capture_in(&txn, tenant, new).await?;
        txn.commit().await?;
        if captured.1 == CaptureOutcome::Created {
            self.log.notify_committed();
        }
        Ok(captured)
    }

    /// Captures many leads in one transaction (an import batch): each row's answer, as
    /// [`Store::capture_lead`] would give it. If the batch hits a database error (a concurrent
    /// capture of the same person elsewhere), it is rolled back and the rows are captured one by one.
    pub async fn capture_batch(
        &self,
        tenant: &TenantId,
        rows: &[NewLead],
    ) -> Result<Vec<Result<(LeadView, CaptureOutcome), Error>>, Error> {
        let rows: Vec<(&NewLead, Span)> = rows.iter().map(|r| (r, Span::current())).collect();
        self.capture_traced(tenant, &rows).await
    }

    /// [`Store::capture_batch`] with each row in its own span (the request that asked for it), so
    /// its `LeadCaptured` event carries that request's trace context.
    async fn capture_traced(
        &self,
        tenant: &TenantId,
        rows: &[(&NewLead, Span)],
    ) -> Result<Vec<Result<(LeadView, CaptureOutcome), Error>>, Error> {
        let txn = self.db.begin().await?;
        let answers = match batch::capture_many(&txn, tenant, rows).await {
            Ok(answers) => txn.commit().await.map(|()| answers),
            Err(e) => {
                // Give the connection back before the rows are retried: on SQLite's single
                // connection each retried row would otherwise wait for it until the pool's
                // acquire timeout.
                if let Err(rollback) = txn.rollback().await {
                    tracing::warn!(error = %rollback, "rolling back a failed capture batch");
                }
                Err(e)
            }
        };
        let answers = match answers {
            Ok(answers) => answers,
            Err(e) => {
                // A concurrent capture of the same person or company elsewhere, most likely: each
                // row alone retries until it sees the other's rows.
                tracing::debug!(error = %e, "batch falls back to row by row");
                let mut one_by_one = Vec::with_capacity(rows.len());
                for (new, span) in rows {
                    one_by_one.push(
                        self.capture_lead(tenant, new)
                            .instrument(span.clone())
                            .await,
                    );
                }
                return Ok(one_by_one);
            }
        };
        if answers
            .iter()
            .any(|a| matches!(a, Ok((_, CaptureOutcome::Created))))
        {
            self.log.notify_committed();
        }
        Ok(answers)
    }

    /// Changes a lead: `change` gets the current profile and the lead's e-mail domain and returns
    /// the new profile and the paths that changed. Emits `LeadUpdated` when anything changed.
    pub async fn update_lead<F>(
        &self,
        tenant: &TenantId,
        lead_id: &str,
        change: F,
    ) -> Result<LeadView, Error>
    where
        F: FnOnce(&LeadProfile, Option<&str>) -> Result<(LeadProfile, Vec<String>), Error>,
    {
        let txn = self.db.begin().await?;
        let current = find_lead(&txn, tenant, lead_id).await?;
        refuse_erased(&current)?;
        let profile = profile_of(&current)?;
        let email_domain =
            crate::domain::profile::email_domain(&current.lead.email_normalized).map(str::to_owned);
        let (next, changed) = change(&profile, email_domain.as_deref())?;
        if changed.is_empty() {
            return Ok(current);
        }
        let company = if changed.iter().any(|p| p == "company") {
            upsert_company(&txn, tenant, next.company.as_ref(), true).await?
        } else {
            current.company.clone()
        };
        let mut row: lead::ActiveModel = current.lead.clone().into();
        set_profile(&mut row, &next, company.as_ref())?;
        row.updated_at = Set(Some(time::now()));
        let lead = row.update(&txn).await?;
        let view = LeadView {
            lead,
            company,
            merged_ids: current.merged_ids,
        };
        let event = LeadUpdated {
            lead: Some(lead_to_proto(&view)),
            changed_paths: changed,
        };
        EventLog::append(&txn, tenant, lead_id, &event).await?;
        txn.commit().await?;
        self.log.notify_committed();
        Ok(view)
    }

    /// Records an activity once per idempotency key, with its `ActivityRecorded` event.
    pub async fn record_activity(
        &self,
        tenant: &TenantId,
        new: &NewActivity,
    ) -> Result<(activity::Model, bool), Error> {
        let mut attempt = 0;
        loop {
            match self.try_record_activity(tenant, new).await {
                Err(Error::Database(e))
                    if is_unique_violation(&e) && attempt < UNIQUE_RACE_RETRIES =>
                {
                    attempt += 1
                }
                other => return other,
            }
        }
    }

    async fn try_record_activity(
        &self,
        tenant: &TenantId,
        new: &NewActivity,
    ) -> Result<(activity::Model, bool), Error> {
        let txn = self.db.begin().await?;
        let seen = activity::Entity::find()
            .filter(activity::Column::TenantId.eq(tenant.as_str()))
            .filter(activity::Column::IdempotencyKey.eq(new.idempotency_key.as_str()))
            .one(&txn)
            .await?;
        if let Some(seen) = seen {
            if seen.lead_id != new.lead_id || seen.kind != new.kind as i32 {
                return Err(Error::invalid(
                    "idempotency_key",
                    "was already used for a different activity",
                ));
            }
            return Ok((seen, false));
        }
        let owner = find_lead(&txn, tenant, &new.lead_id).await?;
        refuse_erased(&owner)?;
        let activity = activity::ActiveModel {
            seq: NotSet,
            activity_id: Set(uuid::Uuid::now_v7().to_string()),
            tenant_id: Set(tenant.to_string()),
            lead_id: Set(owner.lead.lead_id.clone()),
            idempotency_key: Set(new.idempotency_key.clone()),
            kind: Set(new.kind as i32),
            url: Set(new.url.clone()),
            page_kind: Set(new.page_kind as i32),
            occurred_at: Set(new.occurred_at),
            created_at: Set(time::now()),
            call_outcome: Set(new.call.outcome),
            call_duration_seconds: Set(new.call.duration_seconds),
            call_reached_target_department: Set(new.call.reached_target_department),
            subject: Set(new.subject.clone()),
            performed_by: Set(new.performed_by.clone()),
            machine_reason: Set(new.machine_reason.clone()),
        }
        .insert(&txn)
        .await?;
        let event = ActivityRecorded {
            activity: Some(activity_to_proto(&activity)),
        };
        EventLog::append(&txn, tenant, &activity.lead_id, &event).await?;
        if new.kind == ActivityKind::EmailUnsubscribed
            && new.machine_reason.is_none()
            && !owner.lead.consent_unsubscribed
        {
            unsubscribe(&txn, tenant, owner).await?;
        }
        txn.commit().await?;
        self.log.notify_committed();
        Ok((activity, true))
    }

    /// Erases the person `lead_id` stands for: the lead it resolves to (its survivor, when it was
    /// merged) and every lead merged into that one. Each loses its personal data here (profile,
    /// request fingerprints, activity URLs and subjects) and in capture's past events, and gets a
    /// `LeadErased` of its own so every service forgets it. The rows stay (pseudonymous: id,
    /// source, company, dates) so counts do not change; an erased e-mail no longer identifies a
    /// lead, so a later capture of it makes a new one. Erasing again changes nothing.
    pub async fn erase_lead(&self, tenant: &TenantId, lead_id: &str) -> Result<LeadView, Error> {
        let txn = self.db.begin().await?;
        let current = find_lead(&txn, tenant, lead_id).await?;
        let survivor_id = current.lead.lead_id.clone();
        let mut people = vec![current.lead.clone()];
        people.extend(
            lead::Entity::find()
                .filter(lead::Column::TenantId.eq(tenant.as_str()))
                .filter(lead::Column::MergedInto.eq(survivor_id.as_str()))
                .all(&txn)
                .await?,
        );
        let now = time::now();
        let mut erased_survivor = current.lead.clone();
        for person in people.into_iter().filter(|p| p.erased_at.is_none()) {
            let id = person.lead_id.clone();
            let erased = erase_one(&txn, tenant, person, now).await?;
            if id == survivor_id {
                erased_survivor = erased;
            }
        }
        txn.commit().await?;
        self.log.notify_committed();
        Ok(LeadView {
            lead: erased_survivor,
            company: current.company,
            merged_ids: current.merged_ids,
        })
    }

    /// Merges `merged_id` into `survivor_id` (see the MergeLeads RPC).
    pub async fn merge_leads(
        &self,
        tenant: &TenantId,
        survivor_id: &str,
        merged_id: &str,
    ) -> Result<LeadView, Error> {
        let txn = self.db.begin().await?;
        let survivor = find_lead(&txn, tenant, survivor_id).await?;
        let merged = find_exact(&txn, tenant, merged_id).await?;
        if merged.merged_into.as_deref() == Some(survivor.lead.lead_id.as_str()) {
            return Ok(survivor);
        }
        if merged.merged_into.is_some() {
            return Err(Error::RuleBroken {
                rule: "already_merged".into(),
                description: format!("lead {merged_id} was merged into another lead"),
            });
        }
        if merged.lead_id == survivor.lead.lead_id {
            return Err(Error::invalid(
                "merged_lead_id",
                "is (or resolves to) the survivor itself",
            ));
        }
        refuse_erased(&survivor)?;
        refuse_erased(&LeadView {
            lead: merged.clone(),
            company: None,
            merged_ids: Vec::new(),
        })?;
        let now = time::now();
        let moved: Vec<String> = activity::Entity::find()
            .filter(activity::Column::TenantId.eq(tenant.as_str()))
            .filter(activity::Column::LeadId.eq(merged_id))
            .all(&txn)
            .await?
            .into_iter()
            .map(|a| a.activity_id)
            .collect();
        activity::Entity::update_many()
            .col_expr(
                activity::Column::LeadId,
                Expr::value(survivor.lead.lead_id.clone()),
            )
            .filter(activity::Column::TenantId.eq(tenant.as_str()))
            .filter(activity::Column::LeadId.eq(merged_id))
            .exec(&txn)
            .await?;
        capture_request::Entity::update_many()
            .col_expr(
                capture_request::Column::LeadId,
                Expr::value(survivor.lead.lead_id.clone()),
            )
            .filter(capture_request::Column::TenantId.eq(tenant.as_str()))
            .filter(capture_request::Column::LeadId.eq(merged_id))
            .exec(&txn)
            .await?;
        // Leads merged into the duplicate earlier now point straight at the survivor.
        lead::Entity::update_many()
            .col_expr(
                lead::Column::MergedInto,
                Expr::value(Some(survivor.lead.lead_id.clone())),
            )
            .filter(lead::Column::TenantId.eq(tenant.as_str()))
            .filter(lead::Column::MergedInto.eq(merged_id))
            .exec(&txn)
            .await?;
        let mut gone: lead::ActiveModel = merged.clone().into();
        gone.merged_into = Set(Some(survivor.lead.lead_id.clone()));
        gone.merged_at = Set(Some(now));
        gone.updated_at = Set(Some(now));
        gone.update(&txn).await?;
        // The survivor keeps its values and takes the duplicate's where it has none.
        let merged_view = with_company(&txn, merged).await?;
        let filled = crate::domain::profile::fill_blanks(
            &profile_of(&survivor)?,
            &profile_of(&merged_view)?,
        );
        let company = match (&survivor.company, &merged_view.company) {
            (None, Some(c)) => Some(c.clone()),
            (kept, _) => kept.clone(),
        };
        let mut row: lead::ActiveModel = survivor.lead.clone().into();
        set_profile(&mut row, &filled, company.as_ref())?;
        row.updated_at = Set(Some(now));
        let lead = row.update(&txn).await?;
        let view = with_company(&txn, lead).await?;
        let event = LeadsMerged {
            survivor_lead_id: view.lead.lead_id.clone(),
            merged_lead_id: merged_id.to_owned(),
            moved_activity_ids: moved,
            merged_at: Some(time::to_proto(now)),
        };
        EventLog::append(&txn, tenant, &view.lead.lead_id, &event).await?;
        txn.commit().await?;
        self.log.notify_committed();
        Ok(view)
    }

    /// Sets the anonymous visitor count of a source (channel, campaign) on a day, with `VisitsRecorded`.
    pub async fn record_visits(&self, tenant: &TenantId, visits: &VisitCount) -> Result<(), Error> {
        let txn = self.db.begin().await?;
        let row = visit_count::ActiveModel {
            seq: NotSet,
            tenant_id: Set(tenant.to_string()),
            channel: Set(visits.channel.clone()),
            campaign: Set(visits.campaign.clone()),
            day: Set(visits.day.clone()),
            visitors: Set(visits.visitors),
            updated_at: Set(time::now()),
        };
        visit_count::Entity::insert(row)
            .on_conflict(
                OnConflict::columns([
                    visit_count::Column::TenantId,
                    visit_count::Column::Channel,
                    visit_count::Column::Campaign,
                    visit_count::Column::Day,
                ])
                .update_columns([
                    visit_count::Column::Visitors,
                    visit_count::Column::UpdatedAt,
                ])
                .to_owned(),
            )
            .exec(&txn)
            .await?;
        let aggregate = format!("{}/{}/{}", visits.channel, visits.campaign, visits.day);
        EventLog::append(&txn, tenant, &aggregate, &convert::visits_recorded(visits)).await?;
        txn.commit().await?;
        self.log.notify_committed();
        Ok(())
    }

    pub async fn get_lead(&self, tenant: &TenantId, lead_id: &str) -> Result<LeadView, Error> {
        find_lead(&self.db, tenant, lead_id).await
    }

    pub async fn list_leads(
        &self,
        tenant: &TenantId,
        filter: &LeadFilter,
        page: Page,
    ) -> Result<(Vec<LeadView>, String), Error> {
        let mut query = lead::Entity::find()
            .filter(lead::Column::TenantId.eq(tenant.as_str()))
            .filter(lead::Column::MergedInto.is_null());
        if let Some(company_id) = &filter.company_id {
            query = query.filter(lead::Column::CompanyId.eq(company_id.as_str()));
        }
        if let Some(channel) = &filter.channel {
            query = query.filter(lead::Column::SourceChannel.eq(channel.as_str()));
        }
        if let Some(from) = filter.captured_from {
            query = query.filter(lead::Column::CapturedAt.gte(from));
        }
        if let Some(to) = filter.captured_to {
            query = query.filter(lead::Column::CapturedAt.lt(to));
        }
        let txn = baton_shared::db::begin_snapshot(&self.db).await?;
        let (leads, token) = fetch_page(query, lead::Column::Seq, |l| l.seq, page, &txn).await?;
        let company_ids: Vec<String> = leads.iter().filter_map(|l| l.company_id.clone()).collect();
        let companies = if company_ids.is_empty() {
            Vec::new()
        } else {
            company::Entity::find()
                .filter(company::Column::TenantId.eq(tenant.as_str()))
                .filter(company::Column::CompanyId.is_in(company_ids))
                .all(&txn)
                .await?
        };
        let lead_ids: Vec<String> = leads.iter().map(|l| l.lead_id.clone()).collect();
        let merged = lead::Entity::find()
            .filter(lead::Column::TenantId.eq(tenant.as_str()))
            .filter(lead::Column::MergedInto.is_in(lead_ids))
            .all(&txn)
            .await?;
        txn.commit().await?;
        let views = leads
            .into_iter()
            .map(|lead| {
                let company = companies
                    .iter()
                    .find(|c| Some(&c.company_id) == lead.company_id.as_ref())
                    .cloned();
                let merged_ids = merged
                    .iter()
                    .filter(|m| m.merged_into.as_deref() == Some(lead.lead_id.as_str()))
                    .map(|m| m.lead_id.clone())
                    .collect();
                LeadView {
                    lead,
                    company,
                    merged_ids,
                }
            })
            .collect();
        Ok((views, token))
    }
}

/// The capture itself, inside `txn` (which the caller commits): replay, match or create.
async fn capture_in(txn: &DatabaseTransaction, tenant: &TenantId, new: &NewLead) -> Captured {
    if let Some(seen) =
        capture_request::Entity::find_by_id((tenant.to_string(), new.request_id.clone()))
            .one(txn)
            .await?
    {
        if seen.fingerprint != new.fingerprint {
            return Err(Error::invalid(
                "request_id",
                "was already used for a different capture",
            ));
        }
        let view = find_lead(txn, tenant, &seen.lead_id).await?;
        return Ok((
            view,
            CaptureOutcome::Replayed {
                created: seen.created,
            },
        ));
    }
    let existing = lead::Entity::find()
        .filter(lead::Column::TenantId.eq(tenant.as_str()))
        .filter(lead::Column::EmailNormalized.eq(new.email_normalized.as_str()))
        .one(txn)
        .await?;
    let now = time::now();
    let (view, created) = match existing {
        Some(lead) => (
            with_company(txn, resolve(txn, tenant, lead).await?).await?,
            false,
        ),
        None => {
            let company = upsert_company(txn, tenant, new.profile.company.as_ref(), false).await?;
            let lead_id = uuid::Uuid::now_v7().to_string();
            let row = new_lead_row(tenant, &lead_id, new, company.as_ref(), now)?;
            let lead = row.insert(txn).await?;
            (
                LeadView {
                    lead,
                    company,
                    merged_ids: Vec::new(),
                },
                true,
            )
        }
    };
    capture_request::ActiveModel {
        tenant_id: Set(tenant.to_string()),
        request_id: Set(new.request_id.clone()),
        fingerprint: Set(new.fingerprint.clone()),
        lead_id: Set(view.lead.lead_id.clone()),
        created: Set(created),
        created_at: Set(now),
    }
    .insert(txn)
    .await?;
    if created {
        let lead = lead_to_proto(&view);
        let event = LeadCaptured {
            lead_id: lead.lead_id.clone(),
            email: lead.email.clone(),
            source: lead.source.clone(),
            captured_at: lead.captured_at,
            lead: Some(lead),
        };
        EventLog::append(txn, tenant, &view.lead.lead_id, &event).await?;
    }
    Ok((
        view,
        if created {
            CaptureOutcome::Created
        } else {
            CaptureOutcome::MatchedExisting
        },
    ))
}

/// The row of a new lead.
fn new_lead_row(
    tenant: &TenantId,
    lead_id: &str,
    new: &NewLead,
    company: Option<&company::Model>,
    now: DateTime<Utc>,
) -> Result<lead::ActiveModel, DbErr> {
    let mut row = lead::ActiveModel {
        seq: NotSet,
        lead_id: Set(lead_id.to_owned()),
        tenant_id: Set(tenant.to_string()),
        email: Set(new.email.clone()),
        email_normalized: Set(new.email_normalized.clone()),
        source_channel: Set(new.source.channel.clone()),
        source_campaign: Set(new.source.campaign.clone()),
        source_lead_magnet: Set(new.source.lead_magnet.clone()),
        source_funnel_position: Set(new.source.funnel_position),
        utm_source: Set(new.source.utm_source.clone()),
        utm_medium: Set(new.source.utm_medium.clone()),
        utm_campaign: Set(new.source.utm_campaign.clone()),
        utm_term: Set(new.source.utm_term.clone()),
        utm_content: Set(new.source.utm_content.clone()),
        captured_at: Set(new.captured_at),
        created_at: Set(now),
        updated_at: Set(Some(now)),
        erased_at: Set(None),
        merged_into: Set(None),
        merged_at: Set(None),
        ..Default::default()
    };
    set_profile(&mut row, &new.profile, company)?;
    Ok(row)
}

/// Writes the profile's fields onto a lead row.
fn set_profile(
    row: &mut lead::ActiveModel,
    p: &LeadProfile,
    company: Option<&company::Model>,
) -> Result<(), DbErr> {
    row.first_name = Set(p.first_name.clone());
    row.last_name = Set(p.last_name.clone());
    row.phone = Set(p.phone.clone());
    row.title = Set(p.title.clone());
    row.role = Set(p.role.clone());
    row.department = Set(p.department.clone());
    row.company_name = Set(p
        .company
        .as_ref()
        .map(|c| c.name.clone())
        .unwrap_or_default());
    row.company_id = Set(company.map(|c| c.company_id.clone()));
    row.consent_email_opt_in = Set(p.consent.email_opt_in);
    row.consent_unsubscribed = Set(p.consent.unsubscribed);
    row.consent_do_not_contact = Set(p.consent.do_not_contact);
    row.custom_attributes = Set(serde_json::to_string(&p.custom_attributes)
        .map_err(|e| DbErr::Custom(format!("custom attributes: {e}")))?);
    Ok(())
}

/// Finds the company of `profile`'s web domain (creating it), or creates a company of its own when
/// no domain is known. On capture, known values of an existing company are kept and only blanks
/// are filled; on an explicit update (`overwrite`), the given values win.
async fn upsert_company<C: ConnectionTrait>(
    txn: &C,
    tenant: &TenantId,
    profile: Option<&CompanyProfile>,
    overwrite: bool,
) -> Result<Option<company::Model>, DbErr> {
    let Some(p) = profile else { return Ok(None) };
    let existing = if p.web_domain.is_empty() {
        None
    } else {
        company::Entity::find()
            .filter(company::Column::TenantId.eq(tenant.as_str()))
            .filter(company::Column::WebDomain.eq(p.web_domain.as_str()))
            .one(txn)
            .await?
    };
    let merged = merge_company(existing.as_ref(), tenant, p, overwrite, time::now());
    match existing {
        None => {
            let mut row: company::ActiveModel = merged.into();
            row.seq = NotSet;
            Ok(Some(row.insert(txn).await?))
        }
        Some(existing) if existing == merged => Ok(Some(existing)),
        Some(_) => {
            let mut row: company::ActiveModel = merged.into();
            for column in COMPANY_PROFILE_COLUMNS {
                row.reset(column);
            }
            Ok(Some(row.update(txn).await?))
        }
    }
}

/// The columns a company's profile sets (what an update of a known company writes).
const COMPANY_PROFILE_COLUMNS: [company::Column; 8] = [
    company::Column::Name,
    company::Column::Industry,
    company::Column::Country,
    company::Column::Region,
    company::Column::Employees,
    company::Column::RevenueCurrency,
    company::Column::RevenueMinor,
    company::Column::UpdatedAt,
];

/// `known` with `p`'s values (on capture, known values are kept and only blanks are filled; on an
/// explicit update, `overwrite`, the given values win), or a new company of `p` when none is
/// known (not yet stored: its `seq` is 0). Returned unchanged when nothing changes.
fn merge_company(
    known: Option<&company::Model>,
    tenant: &TenantId,
    p: &CompanyProfile,
    overwrite: bool,
    now: DateTime<Utc>,
) -> company::Model {
    let Some(existing) = known else {
        return company::Model {
            seq: 0,
            company_id: uuid::Uuid::now_v7().to_string(),
            tenant_id: tenant.to_string(),
            web_domain: Some(p.web_domain.clone()).filter(|d| !d.is_empty()),
            name: p.name.clone(),
            industry: p.industry.clone(),
            employees: p.employees,
            revenue_currency: p.annual_revenue.as_ref().map(|m| m.currency_code.clone()),
            revenue_minor: p.annual_revenue.as_ref().map(|m| m.amount_minor),
            country: p.country.clone(),
            region: p.region.clone(),
            created_at: now,
            updated_at: now,
        };
    };
    let pick = |given: &str, known: &str| -> String {
        if given.is_empty() || (!overwrite && !known.is_empty()) {
            known.to_owned()
        } else {
            given.to_owned()
        }
    };
    let mut merged = existing.clone();
    merged.name = pick(&p.name, &existing.name);
    merged.industry = pick(&p.industry, &existing.industry);
    merged.country = pick(&p.country, &existing.country);
    merged.region = pick(&p.region, &existing.region);
    if p.employees.is_some() && (overwrite || existing.employees.is_none()) {
        merged.employees = p.employees;
    }
    if let Some(m) = &p.annual_revenue
        && (overwrite || existing.revenue_minor.is_none())
    {
        merged.revenue_currency = Some(m.currency_code.clone());
        merged.revenue_minor = Some(m.amount_minor);
    }
    if merged != *existing {
        merged.updated_at = now;
    }
    merged
}

async fn with_company<C: ConnectionTrait>(db: &C, lead: lead::Model) -> Result<LeadView, DbErr> {
    let merged_ids = lead::Entity::find()
        .filter(lead::Column::TenantId.eq(lead.tenant_id.as_str()))
        .filter(lead::Column::MergedInto.eq(lead.lead_id.as_str()))
        .all(db)
        .await?
        .into_iter()
        .map(|m| m.lead_id)
        .collect();
    let company = match &lead.company_id {
        Some(id) => {
            company::Entity::find()
                .filter(company::Column::CompanyId.eq(id.as_str()))
                .one(db)
                .await?
        }
        None => None,
    };
    Ok(LeadView {
        lead,
        company,
        merged_ids,
    })
}

/// The lead with this id, following merges to the surviving lead.
async fn find_lead<C: ConnectionTrait>(
    db: &C,
    tenant: &TenantId,
    lead_id: &str,
) -> Result<LeadView, Error> {
    let lead = resolve(db, tenant, find_exact(db, tenant, lead_id).await?).await?;
    Ok(with_company(db, lead).await?)
}

/// The lead row with exactly this id (merged or not).
async fn find_exact<C: ConnectionTrait>(
    db: &C,
    tenant: &TenantId,
    lead_id: &str,
) -> Result<lead::Model, Error> {
    lead::Entity::find()
        .filter(lead::Column::TenantId.eq(tenant.as_str()))
        .filter(lead::Column::LeadId.eq(lead_id))
        .one(db)
        .await?
        .ok_or_else(|| Error::not_found("lead", lead_id))
}

/// Follows `merged_into` to the surviving lead (merges re-point older merges, so this is short).
async fn resolve<C: ConnectionTrait>(
    db: &C,
    tenant: &TenantId,
    mut lead: lead::Model,
) -> Result<lead::Model, Error> {
    const MAX_HOPS: usize = 16;
    for _ in 0..MAX_HOPS {
        let Some(next) = lead.merged_into.clone() else {
            return Ok(lead);
        };
        lead = find_exact(db, tenant, &next).await?;
    }
    Err(Error::RuleBroken {
        rule: "merge_chain".into(),
        description: format!(
            "lead {} is merged through more than {MAX_HOPS} leads",
            lead.lead_id
        ),
    })
}

/// Erases one lead row (see [`Store::erase_lead`]) inside `txn`, with its `LeadErased`.
async fn erase_one<C: ConnectionTrait>(
    txn: &C,
    tenant: &TenantId,
    person: lead::Model,
    now: chrono::DateTime<chrono::Utc>,
) -> Result<lead::Model, Error> {
    let lead_id = person.lead_id.clone();
    let mut row: lead::ActiveModel = person.into();
    row.email = Set(String::new());
    row.email_normalized = Set(format!("erased:{lead_id}"));
    row.first_name = Set(String::new());
    row.last_name = Set(String::new());
    row.phone = Set(String::new());
    row.title = Set(String::new());
    row.role = Set(String::new());
    row.department = Set(String::new());
    row.custom_attributes = Set("{}".to_owned());
    row.updated_at = Set(Some(now));
    row.erased_at = Set(Some(now));
    let lead = row.update(txn).await?;
    // Request fingerprints contain the e-mail: forget them (a replay then captures anew).
    capture_request::Entity::delete_many()
        .filter(capture_request::Column::TenantId.eq(tenant.as_str()))
        .filter(capture_request::Column::LeadId.eq(lead_id.as_str()))
        .exec(txn)
        .await?;
    // URLs (query strings) and subjects quote people; the kind, page kind and time stay.
    activity::Entity::update_many()
        .col_expr(activity::Column::Url, Expr::value(String::new()))
        .col_expr(activity::Column::Subject, Expr::value(String::new()))
        .filter(activity::Column::TenantId.eq(tenant.as_str()))
        .filter(activity::Column::LeadId.eq(lead_id.as_str()))
        .exec(txn)
        .await?;
    EventLog::rewrite_payloads(txn, &lead_id, convert::scrub_event_payload).await?;
    let event = LeadErased {
        lead_id: lead_id.clone(),
        erased_at: Some(time::to_proto(now)),
    };
    EventLog::append(txn, tenant, &lead_id, &event).await?;
    Ok(lead)
}

fn refuse_erased(view: &LeadView) -> Result<(), Error> {
    match view.lead.erased_at {
        Some(_) => Err(Error::RuleBroken {
            rule: "lead_erased".into(),
            description: format!(
                "lead {} was erased; capture the person again as a new lead",
                view.lead.lead_id
            ),
        }),
        None => Ok(()),
    }
}

fn is_unique_violation(e: &DbErr) -> bool {
    matches!(e.sql_err(), Some(SqlErr::UniqueConstraintViolation(_)))
}

/// The lead unsubscribed by itself (an EMAIL_UNSUBSCRIBED activity, e.g. nurture's one-click
/// link): its consent says so from now on, and `LeadUpdated` tells the services that send.
async fn unsubscribe<C: ConnectionTrait>(
    txn: &C,
    tenant: &TenantId,
    current: LeadView,
) -> Result<(), Error> {
    let mut row: lead::ActiveModel = current.lead.clone().into();
    row.consent_unsubscribed = Set(true);
    row.consent_email_opt_in = Set(false);
    row.updated_at = Set(Some(time::now()));
    let lead = row.update(txn).await?;
    let lead_id = lead.lead_id.clone();
    let view = LeadView {
        lead,
        company: current.company,
        merged_ids: current.merged_ids,
    };
    let event = LeadUpdated {
        lead: Some(lead_to_proto(&view)),
        changed_paths: vec![
            "consent.unsubscribed".to_owned(),
            "consent.email_opt_in".to_owned(),
        ],
    };
    EventLog::append(txn, tenant, &lead_id, &event).await?;
    Ok(())
}
