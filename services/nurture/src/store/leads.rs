//! Nurture's replica of the leads it mails: address, merge fields, time zone and consent from
//! capture; stage from qualification; replies and meetings from capture's activities.

use baton_proto::capture::v1::{Lead, attribute_value};
use baton_shared::time;
use chrono::{DateTime, Utc};
use std::collections::{BTreeMap, HashMap};

use sea_orm::{
    ActiveModelTrait, ActiveValue::NotSet, Condition, ConnectionTrait, DbErr, EntityTrait,
    QueryFilter, QueryOrder, QuerySelect, Set, prelude::*, sea_query::LockType,
};

use super::entities::lead;
use crate::domain::{consent::Reachability, render::MergeValues, segment::Profile};

/// The custom attribute that names a lead's time zone (IANA, e.g. "Asia/Tokyo").
pub const TIME_ZONE_ATTRIBUTE: &str = "time_zone";

pub async fn find<C: ConnectionTrait>(
    db: &C,
    tenant: &str,
    lead_id: &str,
) -> Result<Option<lead::Model>, DbErr> {
    lead::Entity::find()
        .filter(lead::Column::TenantId.eq(tenant))
        .filter(lead::Column::LeadId.eq(lead_id))
        .one(db)
        .await
}

/// A lead's replica key: tenant and lead id.
pub type LeadKey = (String, String);

/// The rows of several leads in one query (on PostgreSQL locked for the transaction with
/// `lock`, in tenant and lead order, so writers that lock the same leads wait instead of
/// deadlocking). A lead nurture has not seen is absent.
pub async fn find_many<C: ConnectionTrait>(
    db: &C,
    keys: &[LeadKey],
    lock: bool,
) -> Result<HashMap<LeadKey, lead::Model>, DbErr> {
    let mut found = HashMap::new();
    if keys.is_empty() {
        return Ok(found);
    }
    let mut q = lead::Entity::find()
        .filter(of_leads(keys, lead::Column::TenantId, lead::Column::LeadId))
        .order_by_asc(lead::Column::TenantId)
        .order_by_asc(lead::Column::LeadId);
    if lock && super::is_postgres(db) {
        q = q.lock(LockType::Update);
    }
    for row in q.all(db).await? {
        found.insert((row.tenant_id.clone(), row.lead_id.clone()), row);
    }
    Ok(found)
}

/// A condition that matches the rows of `keys`: per tenant, the lead id is one of its leads.
pub fn of_leads<T: ColumnTrait, L: ColumnTrait>(keys: &[LeadKey], tenant: T, lead: L) -> Condition {
    let mut by_tenant: BTreeMap<&str, Vec<&str>> = BTreeMap::new();
    for (t, l) in keys {
        by_tenant.entry(t).or_default().push(l);
    }
    by_tenant
        .into_iter()
        .fold(Condition::any(), |any, (t, ids)| {
            any.add(
                Condition::all()
                    .add(tenant.eq(t))
                    .add(lead.is_in(ids.into_iter().map(str::to_owned))),
            )
        })
}

/// The row of a lead, made empty (no address yet) if nurture has not seen it: events of
/// different logs may arrive in any order.
pub async fn ensure<C: ConnectionTrait>(
    db: &C,
    tenant: &str,
    lead_id: &str,
) -> Result<lead::Model, DbErr> {
    if let Some(row) = find(db, tenant, lead_id).await? {
        return Ok(row);
    }
    new_row(tenant, lead_id).insert(db).await
}

/// A lead nurture knows nothing of yet: no address, no consent, no stage.
pub fn new_row(tenant: &str, lead_id: &str) -> lead::ActiveModel {
    lead::ActiveModel {
        seq: NotSet,
        tenant_id: Set(tenant.to_owned()),
        lead_id: Set(lead_id.to_owned()),
        email: Set(String::new()),
        first_name: Set(String::new()),
        last_name: Set(String::new()),
        company_name: Set(String::new()),
        title: Set(String::new()),
        role: Set(String::new()),
        department: Set(String::new()),
        industry: Set(String::new()),
        employees: Set(None),
        revenue_minor: Set(None),
        revenue_currency: Set(String::new()),
        country: Set(String::new()),
        region: Set(String::new()),
        channel: Set(String::new()),
        rank: Set(0),
        score: Set(0),
        time_zone: Set(String::new()),
        opted_in: Set(false),
        unsubscribed: Set(false),
        do_not_contact: Set(false),
        hard_bounced: Set(false),
        erased: Set(false),
        merged_into: Set(None),
        lead_magnet: Set(String::new()),
        stage: Set(0),
        stage_reason: Set(String::new()),
        stage_changed_at: Set(None),
        replied_at: Set(None),
        meeting_booked_at: Set(None),
        updated_at: Set(time::now()),
    }
}

/// Takes the lead as capture has it now (captured or updated). An erased lead stays erased.
pub async fn upsert<C: ConnectionTrait>(
    db: &C,
    tenant: &str,
    lead: &Lead,
) -> Result<lead::Model, DbErr> {
    let current = ensure(db, tenant, &lead.lead_id).await?;
    if current.erased {
        return Ok(current);
    }
    let consent = lead.consent.unwrap_or_default();
    let company = lead
        .company
        .as_ref()
        .map(|c| c.name.clone())
        .filter(|n| !n.is_empty())
        .unwrap_or_else(|| lead.company_name.clone());
    let time_zone = match lead
        .custom_attributes
        .get(TIME_ZONE_ATTRIBUTE)
        .and_then(|v| v.value.as_ref())
    {
        Some(attribute_value::Value::StringValue(tz)) => tz.clone(),
        _ => String::new(),
    };
    let source = lead.source.clone().unwrap_or_default();
    let firm = lead.company.clone().unwrap_or_default();
    let revenue = firm.annual_revenue.clone().unwrap_or_default();
    let mut row: lead::ActiveModel = current.into();
    row.email = Set(lead.email.clone());
    row.first_name = Set(lead.first_name.clone());
    row.last_name = Set(lead.last_name.clone());
    row.company_name = Set(company);
    row.title = Set(lead.title.clone());
    row.role = Set(lead.role.clone());
    row.department = Set(lead.department.clone());
    row.industry = Set(firm.industry.clone());
    row.employees = Set(firm.employees);
    row.revenue_minor = Set(firm.annual_revenue.as_ref().map(|r| r.amount_minor));
    row.revenue_currency = Set(revenue.currency_code.clone());
    row.country = Set(firm.country.clone());
    row.region = Set(firm.region.clone());
    row.channel = Set(source.channel.clone());
    row.time_zone = Set(time_zone);
    row.opted_in = Set(consent.email_opt_in);
    row.unsubscribed = Set(consent.unsubscribed);
    row.do_not_contact = Set(consent.do_not_contact);
    row.lead_magnet = Set(source.lead_magnet.clone());
    row.updated_at = Set(time::now());
    row.update(db).await
}

/// The lead's personal data was erased: nurture forgets it too and never mails it again.
pub async fn erase<C: ConnectionTrait>(db: &C, tenant: &str, lead_id: &str) -> Result<(), DbErr> {
    let current = ensure(db, tenant, lead_id).await?;
    let current_reason = current.stage_reason.clone();
    let mut row: lead::ActiveModel = current.into();
    for field in [
        &mut row.email,
        &mut row.first_name,
        &mut row.last_name,
        &mut row.company_name,
        &mut row.title,
        &mut row.role,
        &mut row.department,
        &mut row.time_zone,
    ] {
        *field = Set(String::new());
    }
    row.stage_reason = Set(baton_shared::erasure::keep_code(&current_reason));
    row.erased = Set(true);
    row.updated_at = Set(time::now());
    row.update(db).await?;
    Ok(())
}

/// `merged_id` was merged into `survivor_id`: the survivor is unsubscribed or not to be
/// contacted if either was, and has opted in only if it had and the duplicate did not
/// unsubscribe (as capture merges consent). Its own address and bounces stay its own.
pub async fn merge<C: ConnectionTrait>(
    db: &C,
    tenant: &str,
    survivor_id: &str,
    merged_id: &str,
) -> Result<(), DbErr> {
    let survivor = ensure(db, tenant, survivor_id).await?;
    let merged = ensure(db, tenant, merged_id).await?;
    let mut gone: lead::ActiveModel = merged.clone().into();
    gone.merged_into = Set(Some(survivor_id.to_owned()));
    gone.updated_at = Set(time::now());
    gone.update(db).await?;
    let mut row: lead::ActiveModel = survivor.clone().into();
    row.unsubscribed = Set(survivor.unsubscribed || merged.unsubscribed);
    row.do_not_contact = Set(survivor.do_not_contact || merged.do_not_contact);
    row.opted_in = Set(survivor.opted_in && !merged.unsubscribed);
    row.replied_at = Set(survivor.replied_at.max(merged.replied_at));
    row.meeting_booked_at = Set(survivor.meeting_booked_at.max(merged.meeting_booked_at));
    row.updated_at = Set(time::now());
    row.update(db).await?;
    Ok(())
}

/// The lead's stage changed (qualification).
pub async fn set_stage<C: ConnectionTrait>(
    db: &C,
    tenant: &str,
    lead_id: &str,
    (stage, score): (i32, i64),
    reason: &str,
    at: DateTime<Utc>,
) -> Result<lead::Model, DbErr> {
    let current = ensure(db, tenant, lead_id).await?;
    let mut row: lead::ActiveModel = current.into();
    row.stage = Set(stage);
    row.score = Set(score);
    row.stage_reason = Set(reason.to_owned());
    row.stage_changed_at = Set(Some(at));
    row.updated_at = Set(time::now());
    row.update(db).await
}

/// What the lead did that a sequence's goals or branches wait for.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Signal {
    Replied,
    MeetingBooked,
    HardBounced,
}

pub async fn record_signal<C: ConnectionTrait>(
    db: &C,
    tenant: &str,
    lead_id: &str,
    signal: Signal,
    at: DateTime<Utc>,
) -> Result<(), DbErr> {
    let current = ensure(db, tenant, lead_id).await?;
    let mut row: lead::ActiveModel = current.clone().into();
    match signal {
        Signal::Replied => row.replied_at = Set(current.replied_at.max(Some(at))),
        Signal::MeetingBooked => {
            row.meeting_booked_at = Set(current.meeting_booked_at.max(Some(at)))
        }
        Signal::HardBounced => row.hard_bounced = Set(true),
    }
    row.updated_at = Set(time::now());
    row.update(db).await?;
    Ok(())
}

/// Whether and how the lead can be mailed.
pub fn reachability(l: &lead::Model) -> Reachability {
    Reachability {
        has_address: !l.email.trim().is_empty(),
        opted_in: l.opted_in,
        unsubscribed: l.unsubscribed,
        do_not_contact: l.do_not_contact,
        hard_bounced: l.hard_bounced,
        erased: l.erased,
    }
}

pub fn merge_values(l: &lead::Model) -> MergeValues {
    MergeValues {
        first_name: l.first_name.clone(),
        last_name: l.last_name.clone(),
        company_name: l.company_name.clone(),
        title: l.title.clone(),
        email: l.email.clone(),
    }
}

/// The lead's rank changed (qualification).
pub async fn set_rank<C: ConnectionTrait>(
    db: &C,
    tenant: &str,
    lead_id: &str,
    rank: i32,
) -> Result<(), DbErr> {
    let current = ensure(db, tenant, lead_id).await?;
    let mut row: lead::ActiveModel = current.into();
    row.rank = Set(rank);
    row.updated_at = Set(time::now());
    row.update(db).await?;
    Ok(())
}

/// What segments look at of a lead.
pub fn profile(l: &lead::Model) -> Profile {
    Profile {
        role: l.role.clone(),
        title: l.title.clone(),
        department: l.department.clone(),
        industry: l.industry.clone(),
        country: l.country.clone(),
        region: l.region.clone(),
        channel: l.channel.clone(),
        lead_magnet: l.lead_magnet.clone(),
        employees: l.employees,
        revenue: l.revenue_minor.map(|r| (r, l.revenue_currency.clone())),
        score: l.score,
        stage: l.stage,
        rank: l.rank,
        reach: reachability(l),
    }
}
