//! The KPI engine's facts. Written in the transaction that applies each event, so the rollups are
//! always current: counters per metric, 15-minute slot, dimension group and currency (every IANA
//! offset is a multiple of 15 minutes, so any time zone's periods are whole slots), and visitors
//! and spend per day. Queries sum rollups; they never scan raw events.

use baton_shared::TenantId;
use chrono::{DateTime, Utc};
use sea_orm::{
    ActiveModelTrait, ActiveValue::Set, ConnectionTrait, DbErr, EntityTrait, QueryFilter,
    QuerySelect, prelude::*, sea_query::OnConflict,
};

use super::entities::{
    email_lead_slot, funnel_fact, kpi_cube, kpi_pending, kpi_source, lead_dim, visit_day,
};
use crate::domain::{
    funnel::Step,
    kpis::{self, Metric},
};

/// The dimensions a fact is counted under (see [`kpis::DIMENSIONS`]).
#[derive(Debug, Clone, Default, PartialEq, Eq, Hash)]
pub struct Dims {
    pub channel: String,
    pub campaign: String,
    pub lead_magnet: String,
    pub funnel_position: String,
    pub industry: String,
    pub employee_band: String,
    pub country: String,
    pub rank: String,
    pub team: String,
    pub rep: String,
}

impl Dims {
    /// The value of dimension `name`.
    pub fn value(&self, name: &str) -> &str {
        match name {
            "channel" => &self.channel,
            "campaign" => &self.campaign,
            "lead_magnet" => &self.lead_magnet,
            "funnel_position" => &self.funnel_position,
            "industry" => &self.industry,
            "employee_band" => &self.employee_band,
            "country" => &self.country,
            "rank" => &self.rank,
            "team" => &self.team,
            "rep" => &self.rep,
            _ => "",
        }
    }

    /// Only a source (visits, spend).
    pub fn source(channel: &str, campaign: &str) -> Dims {
        Dims {
            channel: channel.to_owned(),
            campaign: campaign.to_owned(),
            ..Dims::default()
        }
    }

    pub fn of_lead(row: &lead_dim::Model) -> Dims {
        Dims {
            channel: row.channel.clone(),
            campaign: row.campaign.clone(),
            lead_magnet: row.lead_magnet.clone(),
            funnel_position: row.funnel_position.clone(),
            industry: row.industry.clone(),
            employee_band: row.employee_band.clone(),
            country: row.country.clone(),
            rank: row.rank.clone(),
            team: row.team.clone(),
            rep: row.rep.clone(),
        }
    }
}

/// The dimensions a win was counted under.
pub fn dims_of_won(row: &super::entities::won_deal::Model) -> Dims {
    Dims {
        channel: row.channel.clone(),
        campaign: row.campaign.clone(),
        lead_magnet: row.lead_magnet.clone(),
        funnel_position: row.funnel_position.clone(),
        industry: row.industry.clone(),
        employee_band: row.employee_band.clone(),
        country: row.country.clone(),
        rank: row.rank.clone(),
        team: row.team.clone(),
        rep: row.rep.clone(),
    }
}

/// The dimensions of a fact of the lead at `at`: a fact from before the lead's last change of
/// rank, team or rep counts under the values it had then (one change back), however late the
/// change's event was applied.
pub fn dims_at(row: &lead_dim::Model, at: DateTime<Utc>) -> Dims {
    let mut dims = Dims::of_lead(row);
    if row.rank_since.is_some_and(|since| at < since) {
        dims.rank.clone_from(&row.prev_rank);
    }
    if row.team_since.is_some_and(|since| at < since) {
        dims.team.clone_from(&row.prev_team);
        dims.rep.clone_from(&row.prev_rep);
    }
    dims
}

/// The dimensions a lead's facts count under now.
pub fn dims_of(row: &lead_dim::Model) -> Dims {
    Dims::of_lead(row)
}

/// One counted fact about a lead.
#[derive(Debug, Clone)]
pub struct Fact<'a> {
    pub metric: Metric,
    pub at: DateTime<Utc>,
    pub delta: i64,
    /// The fact's currency (money, and counts kept per currency); empty otherwise.
    pub currency: &'a str,
    /// Who did it, when not the lead's rep (a call logged by another rep).
    pub rep: Option<&'a str>,
}

impl Fact<'_> {
    pub fn new(metric: Metric, at: DateTime<Utc>, delta: i64) -> Fact<'static> {
        Fact {
            metric,
            at,
            delta,
            currency: "",
            rep: None,
        }
    }
}

/// The start of the 15-minute slot that holds `at`.
pub fn slot_of(at: DateTime<Utc>) -> DateTime<Utc> {
    let secs = at.timestamp();
    let start = secs - secs.rem_euclid(15 * 60);
    DateTime::from_timestamp(start, 0).unwrap_or(at)
}

/// The lead's row, created as a placeholder (no capture yet) when missing, and locked for the rest
/// of the transaction on PostgreSQL: a lead's capture and its other facts arrive on different logs
/// and may be applied concurrently; the row orders them.
pub async fn lock_lead<C: ConnectionTrait>(
    txn: &C,
    tenant: &TenantId,
    lead_id: &str,
) -> Result<lead_dim::Model, DbErr> {
    // Locked already in this batch's transaction: the row as it was last written.
    let key = (tenant.to_string(), lead_id.to_owned());
    if let Ok(Some(row)) = DEFERRED.try_with(|d| d.borrow().leads.get(&key).cloned()) {
        return Ok(row);
    }
    let (row, fresh) = lock_lead_row(txn, tenant, lead_id).await?;
    remember(&row);
    if fresh {
        let _ = DEFERRED.try_with(|d| d.borrow_mut().fresh.insert(key));
    }
    Ok(row)
}

/// Keeps the lead's row as read in this batch (no-op outside one).
fn remember(row: &lead_dim::Model) {
    let key = (row.tenant_id.clone(), row.lead_id.clone());
    let _ = DEFERRED.try_with(|d| d.borrow_mut().leads.insert(key, row.clone()));
}

/// Writes a change to the lead's row: in a batch, kept in memory and written with the batch's
/// other rows at its end (every read of the row in the batch goes through [`lock_lead`]);
/// outside one, at once.
pub async fn save_lead<C: ConnectionTrait>(
    txn: &C,
    row: lead_dim::ActiveModel,
) -> Result<lead_dim::Model, DbErr> {
    use sea_orm::TryIntoModel;
    let model = row.clone().try_into_model()?;
    let key = (model.tenant_id.clone(), model.lead_id.clone());
    let kept = DEFERRED.try_with(|d| {
        let mut d = d.borrow_mut();
        d.leads.insert(key.clone(), model.clone());
        d.dirty.insert(key);
    });
    if kept.is_ok() {
        return Ok(model);
    }
    row.update(txn).await
}

/// The lead's row, and whether this call created it (then the insert itself holds its lock, and
/// no select is needed).
async fn lock_lead_row<C: ConnectionTrait>(
    txn: &C,
    tenant: &TenantId,
    lead_id: &str,
) -> Result<(lead_dim::Model, bool), DbErr> {
    let placeholder = lead_dim::Model {
        tenant_id: tenant.to_string(),
        lead_id: lead_id.to_owned(),
        channel: String::new(),
        campaign: String::new(),
        captured_at: None,
        lead_magnet: String::new(),
        funnel_position: String::new(),
        industry: String::new(),
        employee_band: String::new(),
        country: String::new(),
        rank: String::new(),
        team: String::new(),
        rep: String::new(),
        first_touch_at: None,
        stage: String::new(),
        stage_since: None,
        email_flags: 0,
        target_account: false,
        prev_rank: String::new(),
        rank_since: None,
        prev_team: String::new(),
        prev_rep: String::new(),
        team_since: None,
    };
    let active: lead_dim::ActiveModel = placeholder.clone().into();
    let inserted = lead_dim::Entity::insert(active.reset_all())
        .on_conflict_do_nothing_on([lead_dim::Column::TenantId, lead_dim::Column::LeadId])
        .exec_without_returning(txn)
        .await?;
    if matches!(inserted, sea_orm::TryInsertResult::Inserted(n) if n > 0) {
        return Ok((placeholder, true));
    }
    let mut query = lead_dim::Entity::find_by_id((tenant.to_string(), lead_id.to_owned()));
    if txn.get_database_backend() == sea_orm::DbBackend::Postgres {
        query = query.lock_exclusive();
    }
    let row = query
        .one(txn)
        .await?
        .ok_or_else(|| DbErr::RecordNotFound(format!("lead_dim {lead_id}")))?;
    Ok((row, false))
}

/// A lead was captured: its dimensions are kept and `leads` counts it, once; facts of the lead
/// that arrived first move under its dimensions.
pub async fn lead_captured<C: ConnectionTrait>(
    txn: &C,
    tenant: &TenantId,
    lead_id: &str,
    (dims, target_account): (&Dims, bool),
    at: DateTime<Utc>,
) -> Result<(), DbErr> {
    let row = lock_lead(txn, tenant, lead_id).await?;
    if row.captured_at.is_some() {
        return Ok(());
    }
    let first_touch = row.first_touch_at.map_or(at, |t| t.min(at));
    // Rank, team and rep may have arrived before the capture: they stay, and each fact counts
    // under the values it had at its own time.
    let mut captured: lead_dim::ActiveModel = row.into();
    captured.channel = Set(dims.channel.clone());
    captured.campaign = Set(dims.campaign.clone());
    captured.lead_magnet = Set(dims.lead_magnet.clone());
    captured.funnel_position = Set(dims.funnel_position.clone());
    captured.industry = Set(dims.industry.clone());
    captured.employee_band = Set(dims.employee_band.clone());
    captured.country = Set(dims.country.clone());
    captured.captured_at = Set(Some(at));
    captured.first_touch_at = Set(Some(first_touch));
    captured.target_account = Set(target_account);
    if captured.stage.as_ref().is_empty() {
        captured.stage = Set("lead".to_owned());
        captured.stage_since = Set(Some(at));
    }
    let row = save_lead(txn, captured).await?;
    let then = dims_at(&row, at);
    bump(txn, tenant, &Fact::new(Metric::Leads, at, 1), &then).await?;
    if target_account {
        let fact = Fact::new(Metric::TargetAccountLeads, at, 1);
        bump(txn, tenant, &fact, &then).await?;
    }
    if created_in_batch(tenant, lead_id) {
        return Ok(());
    }
    move_pending(txn, tenant, &row).await
}

/// Facts counted without dimensions before the lead's capture move under its dimensions (as
/// they were at each fact's time).
async fn move_pending<C: ConnectionTrait>(
    txn: &C,
    tenant: &TenantId,
    row: &lead_dim::Model,
) -> Result<(), DbErr> {
    let lead_id = row.lead_id.as_str();
    let pending = kpi_pending::Entity::find()
        .filter(kpi_pending::Column::TenantId.eq(tenant.as_str()))
        .filter(kpi_pending::Column::LeadId.eq(lead_id))
        .all(txn)
        .await?;
    for p in &pending {
        let Some(metric) = Metric::from_name(&p.metric) else {
            continue;
        };
        let fact = |delta| Fact {
            metric,
            at: p.at,
            delta,
            currency: &p.currency,
            rep: None,
        };
        bump(txn, tenant, &fact(-p.value), &Dims::default()).await?;
        bump(txn, tenant, &fact(p.value), &dims_at(row, p.at)).await?;
    }
    if !pending.is_empty() {
        kpi_pending::Entity::delete_many()
            .filter(kpi_pending::Column::TenantId.eq(tenant.as_str()))
            .filter(kpi_pending::Column::LeadId.eq(lead_id))
            .exec(txn)
            .await?;
    }
    Ok(())
}

/// A duplicate was merged into a survivor: the duplicate stops counting as a lead (and as a
/// target-account lead) where it was captured, and leaves the funnel's capture step, so the
/// person counts once. Returns false if it was merged already or never captured.
pub async fn lead_merged<C: ConnectionTrait>(
    txn: &C,
    tenant: &TenantId,
    merged_lead_id: &str,
) -> Result<bool, DbErr> {
    let row = lock_lead(txn, tenant, merged_lead_id).await?;
    let Some(captured_at) = row.captured_at else {
        return Ok(false);
    };
    if row.stage == "merged" {
        return Ok(false);
    }
    let dims = dims_at(&row, captured_at);
    bump(
        txn,
        tenant,
        &Fact::new(Metric::Leads, captured_at, -1),
        &dims,
    )
    .await?;
    if row.target_account {
        let fact = Fact::new(Metric::TargetAccountLeads, captured_at, -1);
        bump(txn, tenant, &fact, &dims).await?;
    }
    funnel_fact::Entity::delete_many()
        .filter(funnel_fact::Column::TenantId.eq(tenant.as_str()))
        .filter(funnel_fact::Column::LeadId.eq(merged_lead_id))
        .filter(funnel_fact::Column::Step.eq(Step::Captured.as_str()))
        .exec(txn)
        .await?;
    let mut active: lead_dim::ActiveModel = row.into();
    active.stage = Set("merged".to_owned());
    save_lead(txn, active).await?;
    Ok(true)
}

/// Whether the lead matched the target-account condition when it was captured.
pub async fn is_target_account<C: ConnectionTrait>(
    txn: &C,
    tenant: &TenantId,
    lead_id: &str,
) -> Result<bool, DbErr> {
    Ok(lock_lead(txn, tenant, lead_id).await?.target_account)
}

/// What changes about a lead over its life (each `Some` replaces the value).
#[derive(Debug, Default)]
pub struct LeadChange<'a> {
    /// Its qualification stage, and since when.
    pub stage: Option<(&'a str, DateTime<Utc>)>,
    pub rank: Option<&'a str>,
    pub team: Option<&'a str>,
    pub rep: Option<&'a str>,
    /// When the rank, team or rep changed (facts from before it keep the previous values).
    pub at: Option<DateTime<Utc>>,
    /// An activity: the first touch moves earlier if this is earlier.
    pub touched_at: Option<DateTime<Utc>>,
}

/// Later facts of the lead are counted under its new rank, team or rep.
pub async fn change_lead<C: ConnectionTrait>(
    txn: &C,
    tenant: &TenantId,
    lead_id: &str,
    change: &LeadChange<'_>,
) -> Result<(), DbErr> {
    let row = lock_lead(txn, tenant, lead_id).await?;
    let first_touch = match (row.first_touch_at, change.touched_at) {
        (Some(a), Some(b)) => Some(a.min(b)),
        (a, b) => a.or(b),
    };
    let unchanged = change.rank.is_none_or(|r| r == row.rank)
        && change.team.is_none_or(|t| t == row.team)
        && change.rep.is_none_or(|r| r == row.rep)
        && change
            .stage
            .is_none_or(|(s, at)| s == row.stage && Some(at) == row.stage_since)
        && first_touch == row.first_touch_at;
    if unchanged {
        return Ok(());
    }
    let since = change.at.unwrap_or_else(baton_shared::time::now);
    let mut active: lead_dim::ActiveModel = row.clone().into();
    if let Some(rank) = change.rank.filter(|r| *r != row.rank) {
        active.prev_rank = Set(row.rank.clone());
        active.rank_since = Set(Some(since));
        active.rank = Set(rank.to_owned());
    }
    let team = change.team.filter(|t| *t != row.team);
    let rep = change.rep.filter(|r| *r != row.rep);
    if team.is_some() || rep.is_some() {
        active.prev_team = Set(row.team.clone());
        active.prev_rep = Set(row.rep.clone());
        active.team_since = Set(Some(since));
    }
    if let Some(team) = team {
        active.team = Set(team.to_owned());
    }
    if let Some(rep) = rep {
        active.rep = Set(rep.to_owned());
    }
    if let Some((stage, since)) = change.stage {
        active.stage = Set(stage.to_owned());
        active.stage_since = Set(Some(since));
    }
    active.first_touch_at = Set(first_touch);
    save_lead(txn, active).await?;
    Ok(())
}

/// A lead reached a funnel step: the step is recorded once, and the cohort conversions it closes
/// are counted (at the moment the lead reached the cohort's first step, whichever of the two steps
/// arrives last). Returns whether this was the first time the lead reached the step.
pub async fn step_reached<C: ConnectionTrait>(
    txn: &C,
    tenant: &TenantId,
    lead_id: &str,
    step: Step,
    at: DateTime<Utc>,
) -> Result<bool, DbErr> {
    // The lead's row orders this against the lead's other steps arriving on other logs.
    lock_lead(txn, tenant, lead_id).await?;
    if !super::record_fact(txn, tenant, lead_id, step, at).await? {
        return Ok(false);
    }
    // A lead whose row this batch created has reached no other step yet.
    if step == Step::Captured && created_in_batch(tenant, lead_id) {
        return Ok(true);
    }
    for cohort in &kpis::COHORTS {
        let first_at = if cohort.second == step {
            step_time(txn, tenant, lead_id, cohort.first).await?
        } else if cohort.first == step
            && step_time(txn, tenant, lead_id, cohort.second)
                .await?
                .is_some()
        {
            Some(at)
        } else {
            None
        };
        if let Some(first_at) = first_at {
            let fact = Fact::new(cohort.metric, first_at, 1);
            bump_for_lead(txn, tenant, lead_id, &fact).await?;
        }
    }
    Ok(true)
}

/// When the lead first reached `step`, if it did.
async fn step_time<C: ConnectionTrait>(
    txn: &C,
    tenant: &TenantId,
    lead_id: &str,
    step: Step,
) -> Result<Option<DateTime<Utc>>, DbErr> {
    Ok(funnel_fact::Entity::find()
        .filter(funnel_fact::Column::TenantId.eq(tenant.as_str()))
        .filter(funnel_fact::Column::LeadId.eq(lead_id))
        .filter(funnel_fact::Column::Step.eq(step.as_str()))
        .one(txn)
        .await?
        .map(|f| f.occurred_at))
}

/// Counts a fact about a lead under the dimensions it has now; before its capture has arrived,
/// without dimensions (kept pending, moved when the capture arrives).
pub async fn bump_for_lead<C: ConnectionTrait>(
    txn: &C,
    tenant: &TenantId,
    lead_id: &str,
    fact: &Fact<'_>,
) -> Result<(), DbErr> {
    if fact.delta == 0 {
        return Ok(());
    }
    let row = lock_lead(txn, tenant, lead_id).await?;
    let dims = if row.captured_at.is_some() {
        let mut dims = dims_at(&row, fact.at);
        if let Some(rep) = fact.rep.filter(|r| !r.is_empty()) {
            rep.clone_into(&mut dims.rep);
        }
        dims
    } else {
        kpi_pending::Entity::insert(kpi_pending::ActiveModel {
            seq: sea_orm::ActiveValue::NotSet,
            tenant_id: Set(tenant.to_string()),
            lead_id: Set(lead_id.to_owned()),
            metric: Set(fact.metric.as_str().to_owned()),
            at: Set(fact.at),
            value: Set(fact.delta),
            currency: Set(fact.currency.to_owned()),
        })
        .exec(txn)
        .await?;
        Dims::default()
    };
    bump(txn, tenant, fact, &dims).await
}

/// An e-mail reach of a lead: tenant, reach, slot, lead.
pub type ReachKey = (String, &'static str, DateTime<Utc>, String);

/// A counter of the cube: tenant, metric, slot, dimensions, currency.
type CubeKey = (String, Metric, DateTime<Utc>, Dims, String);
/// A counter of the source rollups: tenant, metric, level, bucket, channel, campaign, currency.
type SourceKey = (
    String,
    Metric,
    &'static str,
    DateTime<Utc>,
    String,
    String,
    String,
);

/// The counters a batch of events changes, summed, written once at the end of the batch.
#[derive(Debug, Default)]
pub struct Deferred {
    cube: std::collections::HashMap<CubeKey, i64>,
    source: std::collections::HashMap<SourceKey, i64>,
    /// The leads' rows this batch locked, as last written.
    leads: std::collections::HashMap<(String, String), lead_dim::Model>,
    /// Leads whose row this batch created (no fact of theirs was pending).
    fresh: std::collections::HashSet<(String, String)>,
    /// Leads whose row this batch changed (written at its end).
    dirty: std::collections::HashSet<(String, String)>,
    /// How e-mail reached leads in this batch: (tenant, reach, slot, lead) → (dims, gap).
    reach: std::collections::HashMap<ReachKey, (Dims, i64)>,
    /// The tenants' target-account conditions (every version), read once per batch.
    accounts: std::collections::HashMap<String, Vec<baton_proto::reporting::v1::TargetAccounts>>,
}

/// The tenant's target-account conditions as this batch read them, if it did.
pub fn cached_accounts(
    tenant: &TenantId,
) -> Option<Vec<baton_proto::reporting::v1::TargetAccounts>> {
    DEFERRED
        .try_with(|d| d.borrow().accounts.get(tenant.as_str()).cloned())
        .ok()
        .flatten()
}

/// Keeps the tenant's conditions for the rest of the batch (no-op outside one).
pub fn cache_accounts(tenant: &TenantId, accounts: &[baton_proto::reporting::v1::TargetAccounts]) {
    let _ = DEFERRED.try_with(|d| {
        d.borrow_mut()
            .accounts
            .insert(tenant.to_string(), accounts.to_vec())
    });
}

/// Whether this batch created the lead's row (then nothing of it can be pending).
pub fn created_in_batch(tenant: &TenantId, lead_id: &str) -> bool {
    let key = (tenant.to_string(), lead_id.to_owned());
    DEFERRED
        .try_with(|d| d.borrow().fresh.contains(&key))
        .unwrap_or(false)
}

tokio::task_local! {
    /// Set while a batch is applied with [`deferred`]: `bump` adds to it instead of writing.
    static DEFERRED: std::cell::RefCell<Deferred>;
}

impl Deferred {
    fn add(&mut self, tenant: &TenantId, fact: &Fact<'_>, dims: &Dims, currency: &str) {
        let key = (
            tenant.to_string(),
            fact.metric,
            slot_of(fact.at),
            dims.clone(),
            currency.to_owned(),
        );
        let sum = self.cube.entry(key).or_default();
        *sum = sum.saturating_add(fact.delta);
        for (level, size) in SOURCE_LEVELS {
            for (channel, campaign) in source_variants(dims) {
                let key = (
                    tenant.to_string(),
                    fact.metric,
                    level,
                    bucket_of(fact.at, size),
                    channel.to_owned(),
                    campaign.to_owned(),
                    currency.to_owned(),
                );
                let sum = self.source.entry(key).or_default();
                *sum = sum.saturating_add(fact.delta);
            }
        }
    }
}

/// Runs `apply` with every counter it bumps summed in memory, then writes the sums in a few
/// multi-row statements of `txn`: a batch of events costs a handful of upserts, not several per
/// fact. Nothing reads the counters while events are applied, so deferring them to the end of
/// the same transaction changes no number.
pub async fn deferred<C, F, T, E>(txn: &C, apply: F) -> Result<T, E>
where
    C: ConnectionTrait,
    F: std::future::Future<Output = Result<T, E>>,
    E: From<DbErr>,
{
    DEFERRED
        .scope(std::cell::RefCell::new(Deferred::default()), async {
            let out = apply.await?;
            let sums = DEFERRED.with(|d| d.take());
            write_deferred(txn, sums).await?;
            Ok(out)
        })
        .await
}

async fn write_deferred<C: ConnectionTrait>(txn: &C, mut sums: Deferred) -> Result<(), DbErr> {
    write_leads(txn, &mut sums).await?;
    write_reaches(txn, std::mem::take(&mut sums.reach)).await?;
    let cube: Vec<_> = sums.cube.into_iter().filter(|(_, v)| *v != 0).collect();
    for chunk in cube.chunks(500) {
        let rows = chunk
            .iter()
            .map(|((tenant, metric, slot, dims, currency), value)| {
                cube_row(tenant, *metric, *slot, dims, currency, *value)
            });
        kpi_cube::Entity::insert_many(rows)
            .on_conflict(cube_conflict())
            .exec_without_returning(txn)
            .await?;
    }
    let source: Vec<_> = sums.source.into_iter().filter(|(_, v)| *v != 0).collect();
    for chunk in source.chunks(500) {
        let rows = chunk.iter().map(
            |((tenant, metric, level, at, channel, campaign, currency), value)| {
                kpi_source::ActiveModel {
                    tenant_id: Set(tenant.clone()),
                    metric: Set(metric.as_str().to_owned()),
                    level: Set((*level).to_owned()),
                    at: Set(*at),
                    channel: Set(channel.clone()),
                    campaign: Set(campaign.clone()),
                    currency: Set(currency.clone()),
                    value: Set(*value),
                }
            },
        );
        kpi_source::Entity::insert_many(rows)
            .on_conflict(source_conflict())
            .exec_without_returning(txn)
            .await?;
    }
    // A counter that went down may have reached 0: no empty row stays behind.
    for ((tenant, metric, slot, dims, currency), value) in &cube {
        if *value < 0 {
            delete_empty_cube(txn, tenant, *metric, *slot, dims, currency).await?;
        }
    }
    for ((tenant, metric, level, at, channel, campaign, currency), value) in &source {
        if *value < 0 {
            delete_empty_source(
                txn,
                tenant,
                (*metric, level),
                *at,
                (channel, campaign),
                currency,
            )
            .await?;
        }
    }
    Ok(())
}

/// The leads' rows this batch changed, in multi-row upserts.
async fn write_leads<C: ConnectionTrait>(txn: &C, sums: &mut Deferred) -> Result<(), DbErr> {
    use lead_dim::Column as L;
    let rows: Vec<lead_dim::ActiveModel> = sums
        .dirty
        .drain()
        .filter_map(|key| sums.leads.get(&key).cloned())
        .map(|m| lead_dim::ActiveModel::from(m).reset_all())
        .collect();
    for chunk in rows.chunks(200) {
        lead_dim::Entity::insert_many(chunk.to_vec())
            .on_conflict(
                OnConflict::columns([L::TenantId, L::LeadId])
                    .update_columns([
                        L::Channel,
                        L::Campaign,
                        L::CapturedAt,
                        L::LeadMagnet,
                        L::FunnelPosition,
                        L::Industry,
                        L::EmployeeBand,
                        L::Country,
                        L::Rank,
                        L::Team,
                        L::Rep,
                        L::FirstTouchAt,
                        L::Stage,
                        L::StageSince,
                        L::EmailFlags,
                        L::TargetAccount,
                        L::PrevRank,
                        L::RankSince,
                        L::PrevTeam,
                        L::PrevRep,
                        L::TeamSince,
                    ])
                    .to_owned(),
            )
            .exec_without_returning(txn)
            .await?;
    }
    Ok(())
}

/// Keeps an e-mail reach for the end of the batch; returns false outside one (write it now).
pub fn defer_reach(key: ReachKey, dims: &Dims, gap: i64) -> bool {
    DEFERRED
        .try_with(|d| {
            let mut d = d.borrow_mut();
            let entry = d.reach.entry(key).or_insert_with(|| (dims.clone(), gap));
            entry.1 = entry.1.min(gap);
        })
        .is_ok()
}

/// The latest delivery to the lead this batch recorded at or before `slot` and after `since`.
pub fn batch_delivery(
    tenant: &TenantId,
    lead_id: &str,
    (since, slot): (DateTime<Utc>, DateTime<Utc>),
) -> Option<DateTime<Utc>> {
    DEFERRED
        .try_with(|d| {
            d.borrow()
                .reach
                .keys()
                .filter(|(t, kind, s, l)| {
                    t == tenant.as_str()
                        && *kind == "delivered"
                        && l == lead_id
                        && *s <= slot
                        && *s >= since
                })
                .map(|k| k.2)
                .max()
        })
        .ok()
        .flatten()
}

/// The reaches a batch recorded, in multi-row inserts (a conversion keeps the shortest gap).
async fn write_reaches<C: ConnectionTrait>(
    txn: &C,
    reaches: std::collections::HashMap<ReachKey, (Dims, i64)>,
) -> Result<(), DbErr> {
    use email_lead_slot::Column as C;
    let (converted, others): (Vec<_>, Vec<_>) = reaches
        .into_iter()
        .partition(|((_, kind, _, _), _)| *kind == "converted");
    for (rows, keep_shortest) in [(converted, true), (others, false)] {
        for chunk in rows.chunks(300) {
            let models = chunk
                .iter()
                .map(|((tenant, kind, slot, lead), (dims, gap))| {
                    reach_row(tenant, kind, *slot, lead, dims, *gap)
                });
            let mut on_conflict = OnConflict::columns([C::TenantId, C::Kind, C::Slot, C::LeadId]);
            if keep_shortest {
                on_conflict.value(C::GapSeconds, Expr::cust(SHORTEST_GAP));
            } else {
                on_conflict.do_nothing();
            }
            email_lead_slot::Entity::insert_many(models)
                .on_conflict(on_conflict)
                .exec_without_returning(txn)
                .await?;
        }
    }
    Ok(())
}

pub const SHORTEST_GAP: &str = "CASE WHEN excluded.gap_seconds < email_lead_slot.gap_seconds \
                            THEN excluded.gap_seconds ELSE email_lead_slot.gap_seconds END";

pub fn reach_row(
    tenant: &str,
    kind: &str,
    slot: DateTime<Utc>,
    lead_id: &str,
    dims: &Dims,
    gap: i64,
) -> email_lead_slot::ActiveModel {
    let s = |v: &str| Set(v.to_owned());
    email_lead_slot::ActiveModel {
        tenant_id: s(tenant),
        kind: s(kind),
        slot: Set(slot),
        lead_id: s(lead_id),
        channel: s(&dims.channel),
        campaign: s(&dims.campaign),
        lead_magnet: s(&dims.lead_magnet),
        funnel_position: s(&dims.funnel_position),
        industry: s(&dims.industry),
        employee_band: s(&dims.employee_band),
        country: s(&dims.country),
        rank: s(&dims.rank),
        team: s(&dims.team),
        rep: s(&dims.rep),
        gap_seconds: Set(gap),
    }
}

fn cube_row(
    tenant: &str,
    metric: Metric,
    slot: DateTime<Utc>,
    dims: &Dims,
    currency: &str,
    value: i64,
) -> kpi_cube::ActiveModel {
    let s = |v: &str| Set(v.to_owned());
    kpi_cube::ActiveModel {
        tenant_id: s(tenant),
        metric: s(metric.as_str()),
        slot: Set(slot),
        channel: s(&dims.channel),
        campaign: s(&dims.campaign),
        lead_magnet: s(&dims.lead_magnet),
        funnel_position: s(&dims.funnel_position),
        industry: s(&dims.industry),
        employee_band: s(&dims.employee_band),
        country: s(&dims.country),
        rank: s(&dims.rank),
        team: s(&dims.team),
        rep: s(&dims.rep),
        currency: s(currency),
        value: Set(value),
    }
}

fn cube_conflict() -> OnConflict {
    use kpi_cube::Column as C;
    OnConflict::columns([
        C::TenantId,
        C::Metric,
        C::Slot,
        C::Channel,
        C::Campaign,
        C::LeadMagnet,
        C::FunnelPosition,
        C::Industry,
        C::EmployeeBand,
        C::Country,
        C::Rank,
        C::Team,
        C::Rep,
        C::Currency,
    ])
    .value(C::Value, Expr::cust("kpi_cube.value + excluded.value"))
    .to_owned()
}

fn source_conflict() -> OnConflict {
    use kpi_source::Column as S;
    OnConflict::columns([
        S::TenantId,
        S::Metric,
        S::Level,
        S::At,
        S::Channel,
        S::Campaign,
        S::Currency,
    ])
    .value(S::Value, Expr::cust("kpi_source.value + excluded.value"))
    .to_owned()
}

async fn delete_empty_cube<C: ConnectionTrait>(
    txn: &C,
    tenant: &str,
    metric: Metric,
    slot: DateTime<Utc>,
    dims: &Dims,
    currency: &str,
) -> Result<(), DbErr> {
    use kpi_cube::Column as C;
    let mut delete = kpi_cube::Entity::delete_many()
        .filter(C::TenantId.eq(tenant))
        .filter(C::Metric.eq(metric.as_str()))
        .filter(C::Slot.eq(slot))
        .filter(C::Currency.eq(currency))
        .filter(C::Value.eq(0));
    for d in kpis::DIMENSIONS {
        if let Ok(column) = d.parse::<C>() {
            delete = delete.filter(column.eq(dims.value(d)));
        }
    }
    delete.exec(txn).await?;
    Ok(())
}

async fn delete_empty_source<C: ConnectionTrait>(
    txn: &C,
    tenant: &str,
    (metric, level): (Metric, &str),
    at: DateTime<Utc>,
    (channel, campaign): (&str, &str),
    currency: &str,
) -> Result<(), DbErr> {
    use kpi_source::Column as S;
    kpi_source::Entity::delete_many()
        .filter(S::TenantId.eq(tenant))
        .filter(S::Metric.eq(metric.as_str()))
        .filter(S::Level.eq(level))
        .filter(S::At.eq(at))
        .filter(S::Channel.eq(channel))
        .filter(S::Campaign.eq(campaign))
        .filter(S::Currency.eq(currency))
        .filter(S::Value.eq(0))
        .exec(txn)
        .await?;
    Ok(())
}

/// Adds the fact's delta to its metric in the slot of its time, for `dims` and its currency
/// (summed in memory while a batch is applied with [`deferred`]).
pub async fn bump<C: ConnectionTrait>(
    txn: &C,
    tenant: &TenantId,
    fact: &Fact<'_>,
    dims: &Dims,
) -> Result<(), DbErr> {
    if fact.delta == 0 {
        return Ok(());
    }
    let currency = if fact.metric.carries_currency() {
        fact.currency
    } else {
        ""
    };
    if DEFERRED
        .try_with(|d| d.borrow_mut().add(tenant, fact, dims, currency))
        .is_ok()
    {
        return Ok(());
    }
    let slot = slot_of(fact.at);
    kpi_cube::Entity::insert(cube_row(
        tenant.as_str(),
        fact.metric,
        slot,
        dims,
        currency,
        fact.delta,
    ))
    .on_conflict(cube_conflict())
    .exec(txn)
    .await?;
    if fact.delta < 0 {
        delete_empty_cube(txn, tenant.as_str(), fact.metric, slot, dims, currency).await?;
    }
    bump_source(txn, tenant, fact, dims, currency).await
}

/// Levels of `kpi_source`: name and length in seconds (those of
/// [`kpis::LEVEL_SECONDS`]: hour, three hours, UTC day).
pub const SOURCE_LEVELS: [(&str, i64); 3] = [("h", 3_600), ("t", 10_800), ("d", 86_400)];

/// The start of the `size`-second bucket (UTC) that holds `at`.
pub fn bucket_of(at: DateTime<Utc>, size: i64) -> DateTime<Utc> {
    let secs = at.timestamp();
    DateTime::from_timestamp(secs - secs.rem_euclid(size), 0).unwrap_or(at)
}

/// The same delta on the source's hour and day counters.
/// The value that stands for "every channel" or "every campaign" in `kpi_source`.
pub const ALL_SOURCES: &str = "*";

/// The source rows a fact counts in: its channel and campaign, and the totals over every
/// campaign, every channel, and both (so a query grouped by channel, or not at all, reads a
/// fifth or less of the rows).
pub fn source_variants(dims: &Dims) -> [(&str, &str); 4] {
    let (channel, campaign) = (dims.channel.as_str(), dims.campaign.as_str());
    [
        (channel, campaign),
        (channel, ALL_SOURCES),
        (ALL_SOURCES, campaign),
        (ALL_SOURCES, ALL_SOURCES),
    ]
}

async fn bump_source<C: ConnectionTrait>(
    txn: &C,
    tenant: &TenantId,
    fact: &Fact<'_>,
    dims: &Dims,
    currency: &str,
) -> Result<(), DbErr> {
    for ((level, size), (channel, campaign)) in SOURCE_LEVELS
        .into_iter()
        .flat_map(|l| source_variants(dims).map(|v| (l, v)))
    {
        let at = bucket_of(fact.at, size);
        kpi_source::Entity::insert(kpi_source::ActiveModel {
            tenant_id: Set(tenant.to_string()),
            metric: Set(fact.metric.as_str().to_owned()),
            level: Set(level.to_owned()),
            at: Set(at),
            channel: Set(channel.to_owned()),
            campaign: Set(campaign.to_owned()),
            currency: Set(currency.to_owned()),
            value: Set(fact.delta),
        })
        .on_conflict(source_conflict())
        .exec(txn)
        .await?;
        if fact.delta < 0 {
            let source = (channel, campaign);
            delete_empty_source(
                txn,
                tenant.as_str(),
                (fact.metric, level),
                at,
                source,
                currency,
            )
            .await?;
        }
    }
    Ok(())
}

/// Sets the visitors of a source on a day (a later count for the same day replaces the earlier).
pub async fn set_visits<C: ConnectionTrait>(
    txn: &C,
    tenant: &TenantId,
    day: &str,
    dims: &Dims,
    visitors: i64,
) -> Result<(), DbErr> {
    visit_day::Entity::insert(visit_day::ActiveModel {
        tenant_id: Set(tenant.to_string()),
        day: Set(day.to_owned()),
        channel: Set(dims.channel.clone()),
        campaign: Set(dims.campaign.clone()),
        visitors: Set(visitors),
    })
    .on_conflict(
        OnConflict::columns([
            visit_day::Column::TenantId,
            visit_day::Column::Day,
            visit_day::Column::Channel,
            visit_day::Column::Campaign,
        ])
        .update_column(visit_day::Column::Visitors)
        .to_owned(),
    )
    .exec(txn)
    .await?;
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn slots_are_quarter_hours() {
        let at: DateTime<Utc> = "2026-12-01T10:44:59Z".parse().unwrap();
        assert_eq!(slot_of(at).to_rfc3339(), "2026-12-01T10:30:00+00:00");
        let on: DateTime<Utc> = "2026-12-01T10:45:00Z".parse().unwrap();
        assert_eq!(slot_of(on), on);
    }

    #[test]
    fn every_dimension_is_a_cube_column() {
        for d in kpis::DIMENSIONS {
            assert!(d.parse::<kpi_cube::Column>().is_ok(), "{d}");
            assert!(d.parse::<lead_dim::Column>().is_ok(), "{d}");
        }
    }
}
