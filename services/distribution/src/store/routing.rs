//! Routing's persistence: teams, reps' routing attributes, the rule list, and every decision with
//! the rule, team and candidates behind it.

use std::collections::{BTreeMap, BTreeSet, HashMap, HashSet};

use baton_proto::{
    capture::v1::Lead,
    distribution::v1::{
        self as pb, AssignmentState, LeadAssigned, RoutingMethod, SlaKind, TeamFunction,
    },
    qualification::v1::{Rank, Stage},
};
use baton_shared::{ApiError, TenantId, db::find_in, events::EventLog, time};
use chrono::{DateTime, Utc};
use sea_orm::{
    ActiveValue::{NotSet, Set},
    ConnectionTrait, DbErr, EntityTrait, QueryFilter, QueryOrder, QuerySelect, TransactionTrait,
    prelude::*,
    sea_query::OnConflict,
};
use serde::{Deserialize, Serialize};

use super::{
    Store, append_assigned, assigned_event,
    entities::{
        assignment, contract_replica, lead_signal, rep, rotation, routing_ruleset, sla_timer, team,
        team_rotation,
    },
    sla,
};
use crate::domain::routing::{self, Choice, Considered, LeadFields, Method, RepView, Rules};

/// A rep's routing attributes besides team, capacity and weight (stored as JSON).
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
pub struct RepAttributes {
    #[serde(default)]
    pub territories: Vec<String>,
    #[serde(default)]
    pub industries: Vec<String>,
    #[serde(default)]
    pub seniority: String,
    #[serde(default)]
    pub time_zone: String,
    #[serde(default)]
    pub work_start_hour: i32,
    #[serde(default)]
    pub work_end_hour: i32,
    #[serde(default)]
    pub out_of_office: Vec<(DateTime<Utc>, DateTime<Utc>)>,
}

/// Everything routing reads of a rep, as set through the API.
#[derive(Debug, Clone, PartialEq)]
pub struct RepRouting {
    pub team_id: String,
    pub capacity: i32,
    pub weight: f64,
    pub attributes: RepAttributes,
}

impl Default for RepRouting {
    fn default() -> Self {
        RepRouting {
            team_id: String::new(),
            capacity: 0,
            weight: 1.0,
            attributes: RepAttributes::default(),
        }
    }
}

pub fn attributes_of(r: &rep::Model) -> RepAttributes {
    serde_json::from_str(&r.routing).unwrap_or_default()
}

fn method_of(value: i32) -> Method {
    match RoutingMethod::try_from(value) {
        Ok(RoutingMethod::WeightedRoundRobin) => Method::Weighted,
        Ok(RoutingMethod::LoadBalanced) => Method::LoadBalanced,
        _ => Method::RoundRobin,
    }
}

/// Moves a rep's count of open leads by `delta` (an assignment opened: +1, closed: -1).
async fn count_open<C: ConnectionTrait>(
    txn: &C,
    tenant: &TenantId,
    rep_id: &str,
    delta: i64,
) -> Result<(), DbErr> {
    rep::Entity::update_many()
        .col_expr(
            rep::Column::OpenLeads,
            sea_orm::sea_query::ExprTrait::add(Expr::col(rep::Column::OpenLeads), delta),
        )
        .filter(rep::Column::TenantId.eq(tenant.as_str()))
        .filter(rep::Column::RepId.eq(rep_id))
        .exec(txn)
        .await?;
    Ok(())
}

/// The tenant's rules and their version (none set: version 0, no rules).
pub async fn rules_of<C: ConnectionTrait>(
    db: &C,
    tenant: &TenantId,
) -> Result<Option<(routing_ruleset::Model, Rules)>, DbErr> {
    static PARSED: baton_shared::parsed::Parsed<String, Rules> =
        baton_shared::parsed::Parsed::new();
    let Some(row) = routing_ruleset::Entity::find_by_id(tenant.to_string())
        .one(db)
        .await?
    else {
        return Ok(None);
    };
    let rules = PARSED
        .get_or_parse(&row.definition, || serde_json::from_str(&row.definition))
        .map_err(|e| DbErr::Custom(format!("routing rules: {e}")))?;
    Ok(Some((row, (*rules).clone())))
}

/// What routing knows of a lead: qualification's score, stage and rank, capture's profile fields.
async fn lead_fields<C: ConnectionTrait>(
    db: &C,
    tenant: &TenantId,
    lead_id: &str,
    memo: &Memo,
) -> Result<LeadFields, DbErr> {
    let mut fields = LeadFields::new();
    let key = (tenant.to_string(), lead_id.to_owned());
    let signal = match memo.signals.get(&key) {
        Some(s) => Some(s.clone()),
        None => lead_signal::Entity::find_by_id(key).one(db).await?,
    };
    if let Some(s) = signal {
        fields = serde_json::from_str(&s.fields).unwrap_or_default();
        if let Some(score) = s.score {
            fields.insert("score".into(), score.to_string());
        }
        if let Some(stage) = s.stage.and_then(|v| Stage::try_from(v).ok()) {
            fields.insert("stage".into(), stage.as_str_name().into());
        }
        if let Some(rank) = s.rank.and_then(|v| Rank::try_from(v).ok()) {
            fields.insert("rank".into(), rank.as_str_name().into());
        }
    }
    Ok(fields)
}

/// Keeps the profile fields routing conditions read (from capture's events).
pub async fn record_profile<C: ConnectionTrait>(
    txn: &C,
    tenant: &TenantId,
    lead: &Lead,
) -> Result<(), DbErr> {
    record_profiles(txn, tenant, &[lead]).await
}

/// [`record_profile`] of many leads: one upsert per [`PROFILE_CHUNK`] leads (a lead named twice
/// keeps its last profile, as applying them in order would), then the queued leads among them
/// are routed again.
pub async fn record_profiles<C: ConnectionTrait>(
    txn: &C,
    tenant: &TenantId,
    leads: &[&Lead],
) -> Result<(), DbErr> {
    let now = time::now();
    let mut latest: HashMap<&str, usize> = HashMap::new();
    for (i, lead) in leads.iter().enumerate() {
        latest.insert(lead.lead_id.as_str(), i);
    }
    let mut rows = Vec::with_capacity(latest.len());
    let mut ids = Vec::with_capacity(latest.len());
    for (i, lead) in leads.iter().enumerate() {
        if latest.get(lead.lead_id.as_str()) != Some(&i) {
            continue;
        }
        ids.push(lead.lead_id.as_str());
        rows.push(lead_signal::ActiveModel {
            tenant_id: Set(tenant.to_string()),
            lead_id: Set(lead.lead_id.clone()),
            score: Set(None),
            stage: Set(None),
            rank: Set(None),
            updated_at: Set(now),
            fields: Set(profile_fields(lead)?),
        });
    }
    for chunk in rows.chunks(PROFILE_CHUNK) {
        lead_signal::Entity::insert_many(chunk.iter().cloned())
            .on_conflict(
                OnConflict::columns([lead_signal::Column::TenantId, lead_signal::Column::LeadId])
                    .update_columns([lead_signal::Column::Fields, lead_signal::Column::UpdatedAt])
                    .to_owned(),
            )
            .exec_without_returning(txn)
            .await?;
    }
    // A lead that waits because no rule matched may match now that its profile is known (capture's
    // and qualification's events reach distribution independently).
    retry_queued(txn, tenant, Some(&ids)).await
}

/// Leads per profile upsert (7 parameters each: well under SQLite's bound).
const PROFILE_CHUNK: usize = 500;

/// The profile fields of `lead` that routing conditions read, as stored (a JSON object).
fn profile_fields(lead: &Lead) -> Result<String, DbErr> {
    let mut f = BTreeMap::new();
    let mut put = |k: &str, v: String| {
        if !v.is_empty() {
            f.insert(k.to_owned(), v);
        }
    };
    if let Some(c) = &lead.company {
        put("company.country", c.country.clone());
        put("company.region", c.region.clone());
        put("company.industry", c.industry.clone());
        put(
            "company.employees",
            c.employees.map(|e| e.to_string()).unwrap_or_default(),
        );
    }
    if let Some(s) = &lead.source {
        put("source.channel", s.channel.clone());
    }
    serde_json::to_string(&f).map_err(|e| DbErr::Custom(e.to_string()))
}

/// A routing decision, ready to store.
struct Decision {
    rep: Option<rep::Model>,
    team_id: String,
    rule_key: String,
    rules_version: i32,
    method: &'static str,
    considered: Vec<Considered>,
}

/// Which reps a decision is among: all of the tenant's, a team's, or one named rep.
#[derive(Debug, Clone, PartialEq, Eq, Hash)]
enum Scope {
    All,
    Team(String),
    Rep(String),
}

/// What a run of routing decisions in one transaction (a consumer's batch) reads once and shares:
/// the tenant's rules, team methods, the reps of each scope (kept current as the run's decisions
/// change their counters and open leads), the rotation of each team, the IS team's contract, and
/// the lead signals the run just stored. A run sees these as of its first read; changes other
/// transactions commit meanwhile apply from the next run on.
#[derive(Default)]
pub struct Memo {
    rules: HashMap<String, Option<(routing_ruleset::Model, Rules)>>,
    methods: HashMap<(String, String), Method>,
    reps: HashMap<(String, Scope), Vec<rep::Model>>,
    rotations: HashMap<(String, String), Option<i64>>,
    pub(crate) contracts: HashMap<(String, String), Option<contract_replica::Model>>,
    signals: HashMap<(String, String), lead_signal::Model>,
    /// Leads known to have an assignment (or none yet), per (tenant, lead).
    assigned: HashMap<(String, String), bool>,
    /// Writes held until [`Memo::flush`] (a batch); `None`: written at once.
    deferred: Option<Deferred>,
}

/// A rep's held change: its new counter and availability (if they changed), open leads added.
type RepChange = (Option<(f64, bool)>, i64);

/// The writes of a run of decisions, held to be made together.
#[derive(Default)]
struct Deferred {
    /// Per (tenant, rep): the new counter and availability (if they changed) and open leads added.
    reps: BTreeMap<(String, String), RepChange>,
    rotations: BTreeMap<(String, String), i64>,
    assignments: Vec<assignment::Model>,
    /// `LeadAssigned` of each held assignment, with the span it was decided in.
    announced: Vec<(String, LeadAssigned, tracing::Span)>,
    timers: Vec<sla_timer::ActiveModel>,
}

impl Memo {
    /// A memo whose writes are held until [`Memo::flush`].
    pub fn deferred() -> Self {
        Memo {
            deferred: Some(Deferred::default()),
            ..Memo::default()
        }
    }

    /// Remembers which of `lead_ids` already have an assignment (one read for a batch).
    pub async fn know_assigned<C: ConnectionTrait>(
        &mut self,
        txn: &C,
        tenant: &TenantId,
        lead_ids: &[&str],
    ) -> Result<(), DbErr> {
        for chunk in lead_ids.chunks(500) {
            let found: Vec<String> = assignment::Entity::find()
                .select_only()
                .column(assignment::Column::LeadId)
                .filter(assignment::Column::TenantId.eq(tenant.as_str()))
                .filter(assignment::Column::LeadId.is_in(chunk.iter().copied()))
                .into_tuple()
                .all(txn)
                .await?;
            for id in chunk {
                self.assigned.insert(
                    (tenant.to_string(), (*id).to_owned()),
                    found.iter().any(|f| f == id),
                );
            }
        }
        Ok(())
    }

    /// Makes the held writes: assignments, rep counters and open leads, rotations, SLA timers,
    /// and the `LeadAssigned` events (each with its decision's trace context).
    pub async fn flush<C: ConnectionTrait>(&mut self, txn: &C) -> Result<(), DbErr> {
        let Some(d) = self.deferred.replace(Deferred::default()) else {
            return Ok(());
        };
        for chunk in d.assignments.chunks(500) {
            assignment::Entity::insert_many(chunk.iter().cloned().map(|a| {
                let mut row: assignment::ActiveModel = a.into();
                row.seq = NotSet;
                row
            }))
            .exec_without_returning(txn)
            .await?;
        }
        let tenants: BTreeSet<&String> = d.reps.keys().map(|(t, _)| t).collect();
        for tenant in tenants {
            let changes: Vec<(&String, &RepChange)> = d
                .reps
                .iter()
                .filter(|((t, _), _)| t == tenant)
                .map(|((_, id), c)| (id, c))
                .collect();
            for chunk in changes.chunks(200) {
                let when = |value: &dyn Fn(&RepChange) -> Option<Expr>, column: rep::Column| {
                    let mut case = sea_orm::sea_query::CaseStatement::new();
                    for (id, change) in chunk {
                        if let Some(v) = value(change) {
                            case = case.case(rep::Column::RepId.eq(id.as_str()), v);
                        }
                    }
                    case.finally(Expr::col(column))
                };
                rep::Entity::update_many()
                    .col_expr(
                        rep::Column::WrrCounter,
                        when(
                            &|c| c.0.map(|(v, _)| Expr::value(v)),
                            rep::Column::WrrCounter,
                        )
                        .into(),
                    )
                    .col_expr(
                        rep::Column::WasAvailable,
                        when(
                            &|c| c.0.map(|(_, v)| Expr::value(v)),
                            rep::Column::WasAvailable,
                        )
                        .into(),
                    )
                    .col_expr(
                        rep::Column::OpenLeads,
                        sea_orm::sea_query::ExprTrait::add(
                            Expr::col(rep::Column::OpenLeads),
                            Into::<Expr>::into(
                                when(&|c| Some(Expr::value(c.1)), rep::Column::OpenLeads)
                                    .finally(Expr::value(0i64)),
                            ),
                        ),
                    )
                    .filter(rep::Column::TenantId.eq(tenant.as_str()))
                    .filter(rep::Column::RepId.is_in(chunk.iter().map(|(id, _)| id.as_str())))
                    .exec(txn)
                    .await?;
            }
        }
        for ((tenant, team_id), seq) in &d.rotations {
            set_last_pick(txn, &TenantId::new(tenant.clone()), team_id, *seq).await?;
        }
        sla::insert_timers(txn, d.timers).await?;
        let by_tenant: BTreeSet<&String> = d.announced.iter().map(|(t, _, _)| t).collect();
        for tenant in by_tenant {
            let events: Vec<(&str, &LeadAssigned, &tracing::Span)> = d
                .announced
                .iter()
                .filter(|(t, _, _)| t == tenant)
                .map(|(_, e, span)| (e.lead_id.as_str(), e, span))
                .collect();
            EventLog::append_many(txn, &TenantId::new(tenant.clone()), &events).await?;
        }
        Ok(())
    }

    /// A rep's new counter and availability (if they changed) and open leads added: written now,
    /// or held.
    async fn rep_write<C: ConnectionTrait>(
        &mut self,
        txn: &C,
        tenant: &TenantId,
        rep_id: &str,
        counter: Option<(f64, bool)>,
        opened: i64,
    ) -> Result<(), DbErr> {
        self.rep_changed(tenant, rep_id, |r| {
            if let Some((c, a)) = counter {
                r.wrr_counter = c;
                r.was_available = a;
            }
            r.open_leads += opened;
        });
        if let Some(d) = &mut self.deferred {
            let held = d
                .reps
                .entry((tenant.to_string(), rep_id.to_owned()))
                .or_insert((None, 0));
            if counter.is_some() {
                held.0 = counter;
            }
            held.1 += opened;
            return Ok(());
        }
        let mut update = rep::Entity::update_many();
        if let Some((c, a)) = counter {
            update = update
                .col_expr(rep::Column::WrrCounter, Expr::value(c))
                .col_expr(rep::Column::WasAvailable, Expr::value(a));
        }
        if opened != 0 {
            update = update.col_expr(
                rep::Column::OpenLeads,
                sea_orm::sea_query::ExprTrait::add(Expr::col(rep::Column::OpenLeads), opened),
            );
        }
        update
            .filter(rep::Column::TenantId.eq(tenant.as_str()))
            .filter(rep::Column::RepId.eq(rep_id))
            .exec(txn)
            .await?;
        Ok(())
    }

    /// A new assignment with its `LeadAssigned` event (if it went to a rep): stored now, or held.
    async fn assignment_write<C: ConnectionTrait>(
        &mut self,
        txn: &C,
        tenant: &TenantId,
        row: assignment::Model,
    ) -> Result<assignment::Model, DbErr> {
        self.assigned
            .insert((tenant.to_string(), row.lead_id.clone()), true);
        if let Some(d) = &mut self.deferred {
            if row.rep_id.is_some() {
                d.announced.push((
                    tenant.to_string(),
                    assigned_event(&row),
                    tracing::Span::current(),
                ));
            }
            d.assignments.push(row.clone());
            return Ok(row);
        }
        let mut active: assignment::ActiveModel = row.into();
        active.seq = NotSet;
        let row = active.insert(txn).await?;
        if row.rep_id.is_some() {
            append_assigned(txn, tenant, &row).await?;
        }
        Ok(row)
    }

    /// A new SLA timer: started now, or held.
    pub(crate) async fn timer_write<C: ConnectionTrait>(
        &mut self,
        txn: &C,
        tenant: &TenantId,
        timer: sla::NewTimer<'_>,
    ) -> Result<(), DbErr> {
        match &mut self.deferred {
            Some(d) => {
                d.timers.push(sla::timer_row(tenant, &timer));
                Ok(())
            }
            None => sla::start(txn, tenant, timer).await,
        }
    }

    /// Keeps a lead's signal as just stored (the next decision about it reads it from here).
    pub fn signal_stored(&mut self, signal: lead_signal::Model) {
        self.signals
            .insert((signal.tenant_id.clone(), signal.lead_id.clone()), signal);
    }

    /// Applies `change` to every remembered copy of a rep.
    fn rep_changed(&mut self, tenant: &TenantId, rep_id: &str, change: impl Fn(&mut rep::Model)) {
        for ((t, _), reps) in self.reps.iter_mut() {
            if t.as_str() == tenant.as_str() {
                reps.iter_mut()
                    .filter(|r| r.rep_id == rep_id)
                    .for_each(&change);
            }
        }
    }
}

/// Decides where a lead goes now (storing counters, the chosen rep's open leads and the rotation),
/// excluding reps that had it. Every caller stores an assignment to the chosen rep.
async fn decide<C: ConnectionTrait>(
    txn: &C,
    tenant: &TenantId,
    lead_id: &str,
    first_assignment: bool,
    memo: &mut Memo,
) -> Result<Decision, DbErr> {
    let now = time::now();
    let had: HashSet<String> = if first_assignment {
        HashSet::new()
    } else {
        assignment::Entity::find()
            .filter(assignment::Column::TenantId.eq(tenant.as_str()))
            .filter(assignment::Column::LeadId.eq(lead_id))
            .all(txn)
            .await?
            .into_iter()
            .filter_map(|a| a.rep_id)
            .collect()
    };
    let view = |r: &rep::Model| RepView {
        rep_id: r.rep_id.clone(),
        seq: r.seq,
        active: r.active,
        out_of_office: attributes_of(r)
            .out_of_office
            .iter()
            .any(|(from, to)| *from <= now && now < *to),
        open_leads: r.open_leads,
        capacity: i64::from(r.capacity),
        weight: r.weight,
        counter: r.wrr_counter,
        was_available: r.was_available,
        had_lead: had.contains(&r.rep_id),
        mismatch: None,
    };
    let ruleset = match memo.rules.get(tenant.as_str()) {
        Some(known) => known.clone(),
        None => {
            let read = rules_of(txn, tenant).await?;
            memo.rules.insert(tenant.to_string(), read.clone());
            read
        }
    };
    let fields = match &ruleset {
        Some(_) => lead_fields(txn, tenant, lead_id, memo).await?,
        None => LeadFields::new(),
    };
    let mut matched: Option<routing::Rule> = None;
    let (team_id, rule_key, rules_version, method, scope): (String, String, i32, Method, Scope) =
        match &ruleset {
            // No rules: every active rep of the tenant in one rotation.
            None => (
                String::new(),
                String::new(),
                0,
                Method::RoundRobin,
                Scope::All,
            ),
            Some((row, rules)) => {
                matched = routing::matching_rule(rules, &fields).cloned();
                match matched.as_ref() {
                    None => {
                        return Ok(Decision {
                            rep: None,
                            team_id: String::new(),
                            rule_key: String::new(),
                            rules_version: row.version,
                            method: "fallback_queue",
                            considered: vec![],
                        });
                    }
                    Some(rule) if !rule.to_rep.is_empty() => (
                        String::new(),
                        rule.key.clone(),
                        row.version,
                        Method::RoundRobin,
                        Scope::Rep(rule.to_rep.clone()),
                    ),
                    Some(rule) => {
                        let key = (tenant.to_string(), rule.to_team.clone());
                        let method = match memo.methods.get(&key) {
                            Some(m) => *m,
                            None => {
                                let m = team::Entity::find_by_id(key.clone())
                                    .one(txn)
                                    .await?
                                    .map_or(Method::RoundRobin, |t| method_of(t.method));
                                memo.methods.insert(key, m);
                                m
                            }
                        };
                        (
                            rule.to_team.clone(),
                            rule.key.clone(),
                            row.version,
                            method,
                            Scope::Team(rule.to_team.clone()),
                        )
                    }
                }
            }
        };
    let scope_key = (tenant.to_string(), scope.clone());
    if !memo.reps.contains_key(&scope_key) {
        let mut query = rep::Entity::find().filter(rep::Column::TenantId.eq(tenant.as_str()));
        query = match &scope {
            Scope::All => query,
            Scope::Team(team) => query.filter(rep::Column::TeamId.eq(team.as_str())),
            Scope::Rep(id) => query.filter(rep::Column::RepId.eq(id.as_str())),
        };
        let reps = query.order_by_asc(rep::Column::Seq).all(txn).await?;
        memo.reps.insert(scope_key.clone(), reps);
    }
    let reps = memo.reps.get(&scope_key).cloned().unwrap_or_default();
    let views: Vec<RepView> = reps
        .iter()
        .map(|r| RepView {
            mismatch: matched.as_ref().and_then(|rule| {
                let a = attributes_of(r);
                routing::fit(rule, &a.territories, &a.industries, &fields)
            }),
            ..view(r)
        })
        .collect();
    // Only round robin reads the rotation.
    let last = if method == Method::RoundRobin {
        let key = (tenant.to_string(), team_id.clone());
        match memo.rotations.get(&key) {
            Some(last) => *last,
            None => {
                let last = last_pick(txn, tenant, &team_id).await?;
                memo.rotations.insert(key, last);
                last
            }
        }
    } else {
        None
    };
    let Choice {
        rep_id,
        considered,
        counters,
    } = routing::choose(method, &views, last);
    let chosen = rep_id.and_then(|id| reps.iter().find(|r| r.rep_id == id).cloned());
    let chosen_id = chosen.as_ref().map(|r| r.rep_id.clone());
    let mut opened = false;
    if method == Method::Weighted {
        // Only the reps whose counter or availability changed (usually just the chosen one); the
        // chosen one's open leads grow in the same update.
        let changed: Vec<(String, f64, bool)> = counters
            .into_iter()
            .filter(|(id, counter, available)| {
                Some(id) == chosen_id.as_ref()
                    || views
                        .iter()
                        .find(|v| &v.rep_id == id)
                        .is_none_or(|v| v.counter != *counter || v.was_available != *available)
            })
            .collect();
        for (id, counter, available) in changed {
            let is_chosen = Some(&id) == chosen_id.as_ref();
            opened |= is_chosen;
            memo.rep_write(
                txn,
                tenant,
                &id,
                Some((counter, available)),
                i64::from(is_chosen),
            )
            .await?;
        }
    }
    if let Some(r) = &chosen {
        if !opened {
            memo.rep_write(txn, tenant, &r.rep_id, None, 1).await?;
        }
        if method == Method::RoundRobin {
            memo.rotations
                .insert((tenant.to_string(), team_id.clone()), Some(r.seq));
            match &mut memo.deferred {
                Some(d) => {
                    d.rotations
                        .insert((tenant.to_string(), team_id.clone()), r.seq);
                }
                None => set_last_pick(txn, tenant, &team_id, r.seq).await?,
            }
        }
    }
    Ok(Decision {
        rep: chosen,
        team_id,
        rule_key,
        rules_version,
        method: method.name(),
        considered,
    })
}

async fn last_pick<C: ConnectionTrait>(
    txn: &C,
    tenant: &TenantId,
    team_id: &str,
) -> Result<Option<i64>, DbErr> {
    if team_id.is_empty() {
        return Ok(rotation::Entity::find_by_id(tenant.to_string())
            .one(txn)
            .await?
            .map(|r| r.last_rep_seq));
    }
    Ok(
        team_rotation::Entity::find_by_id((tenant.to_string(), team_id.to_owned()))
            .one(txn)
            .await?
            .map(|r| r.last_rep_seq),
    )
}

async fn set_last_pick<C: ConnectionTrait>(
    txn: &C,
    tenant: &TenantId,
    team_id: &str,
    seq: i64,
) -> Result<(), DbErr> {
    if team_id.is_empty() {
        rotation::Entity::insert(rotation::ActiveModel {
            tenant_id: Set(tenant.to_string()),
            last_rep_seq: Set(seq),
        })
        .on_conflict(
            OnConflict::column(rotation::Column::TenantId)
                .update_column(rotation::Column::LastRepSeq)
                .to_owned(),
        )
        .exec(txn)
        .await?;
    } else {
        team_rotation::Entity::insert(team_rotation::ActiveModel {
            tenant_id: Set(tenant.to_string()),
            team_id: Set(team_id.to_owned()),
            last_rep_seq: Set(seq),
        })
        .on_conflict(
            OnConflict::columns([
                team_rotation::Column::TenantId,
                team_rotation::Column::TeamId,
            ])
            .update_column(team_rotation::Column::LastRepSeq)
            .to_owned(),
        )
        .exec(txn)
        .await?;
    }
    Ok(())
}

fn explanation_json(considered: &[Considered]) -> String {
    serde_json::to_string(considered).unwrap_or_else(|_| "[]".into())
}

/// Routes a lead and stores the decision as a new assignment (assigned, or queued when nobody is
/// available or no rule matched), announcing an assignment with `LeadAssigned`.
async fn route_new<C: ConnectionTrait>(
    txn: &C,
    tenant: &TenantId,
    lead_id: &str,
    first_assignment: bool,
    memo: &mut Memo,
) -> Result<assignment::Model, DbErr> {
    let d = decide(txn, tenant, lead_id, first_assignment, memo).await?;
    let now = time::now();
    let row = assignment::Model {
        seq: 0,
        assignment_id: uuid::Uuid::now_v7().to_string(),
        tenant_id: tenant.to_string(),
        lead_id: lead_id.to_owned(),
        rep_id: d.rep.as_ref().map(|r| r.rep_id.clone()),
        state: if d.rep.is_some() {
            AssignmentState::Assigned
        } else {
            AssignmentState::Queued
        } as i32,
        method: d.method.to_owned(),
        created_at: now,
        assigned_at: d.rep.as_ref().map(|_| now),
        team_id: d.team_id,
        rule_key: d.rule_key,
        rules_version: d.rules_version,
        explanation: explanation_json(&d.considered),
        closed_at: None,
    };
    let row = memo.assignment_write(txn, tenant, row).await?;
    if row.rep_id.is_some() {
        sla::start_response(txn, tenant, &row, memo).await?;
    }
    Ok(row)
}

/// Assigns a lead that just became an MQL (or an early SQL), exactly once: a lead that already has
/// an assignment (a redelivered or repeated event) is left alone.
pub async fn assign_mql<C: ConnectionTrait>(
    txn: &C,
    tenant: &TenantId,
    lead_id: &str,
    memo: &mut Memo,
) -> Result<(), DbErr> {
    let key = (tenant.to_string(), lead_id.to_owned());
    let existing = match memo.assigned.get(&key) {
        Some(known) => *known,
        None => assignment::Entity::find()
            .filter(assignment::Column::TenantId.eq(tenant.as_str()))
            .filter(assignment::Column::LeadId.eq(lead_id))
            .one(txn)
            .await?
            .is_some(),
    };
    if !existing {
        route_new(txn, tenant, lead_id, true, memo).await?;
    }
    Ok(())
}

/// Routes queued leads again, oldest first (after a rep became available or rules changed).
pub async fn assign_queued<C: ConnectionTrait>(txn: &C, tenant: &TenantId) -> Result<(), DbErr> {
    retry_queued(txn, tenant, None).await
}

/// Routes the queued leads (all, or one lead's) again.
async fn retry_queued<C: ConnectionTrait>(
    txn: &C,
    tenant: &TenantId,
    lead_ids: Option<&[&str]>,
) -> Result<(), DbErr> {
    let query = assignment::Entity::find()
        .filter(assignment::Column::TenantId.eq(tenant.as_str()))
        .filter(assignment::Column::State.eq(AssignmentState::Queued as i32))
        .order_by_asc(assignment::Column::Seq);
    let mut queued = match lead_ids {
        Some(ids) => find_in(txn, query, assignment::Column::LeadId, ids).await?,
        None => query.all(txn).await?,
    };
    queued.sort_by_key(|a| a.seq);
    let mut memo = Memo::default();
    for waiting in queued {
        let d = decide(txn, tenant, &waiting.lead_id, false, &mut memo).await?;
        let Some(rep) = d.rep else { continue };
        let mut row: assignment::ActiveModel = waiting.into();
        row.rep_id = Set(Some(rep.rep_id.clone()));
        row.state = Set(AssignmentState::Assigned as i32);
        row.assigned_at = Set(Some(time::now()));
        row.method = Set(d.method.to_owned());
        row.team_id = Set(d.team_id);
        row.rule_key = Set(d.rule_key);
        row.rules_version = Set(d.rules_version);
        row.explanation = Set(explanation_json(&d.considered));
        let row = row.update(txn).await?;
        append_assigned(txn, tenant, &row).await?;
        sla::start_response(txn, tenant, &row, &mut memo).await?;
    }
    Ok(())
}

/// Closes a lead's open assignment and routes it again (never back to a rep who had it).
pub(crate) async fn reassign<C: ConnectionTrait>(
    txn: &C,
    tenant: &TenantId,
    open: assignment::Model,
) -> Result<assignment::Model, DbErr> {
    let lead_id = open.lead_id.clone();
    sla::resolve(txn, tenant, SlaKind::Response, &open.assignment_id).await?;
    close_open(txn, tenant, &open).await?;
    let mut closed: assignment::ActiveModel = open.into();
    closed.state = Set(AssignmentState::Reassigned as i32);
    closed.closed_at = Set(Some(time::now()));
    closed.update(txn).await?;
    route_new(txn, tenant, &lead_id, false, &mut Memo::default()).await
}

/// An assignment closes: its rep (if it was assigned to one) has one open lead less.
async fn close_open<C: ConnectionTrait>(
    txn: &C,
    tenant: &TenantId,
    closing: &assignment::Model,
) -> Result<(), DbErr> {
    match &closing.rep_id {
        Some(rep_id) if closing.state == AssignmentState::Assigned as i32 => {
            count_open(txn, tenant, rep_id, -1).await
        }
        _ => Ok(()),
    }
}

async fn open_assignment<C: ConnectionTrait>(
    db: &C,
    tenant: &TenantId,
    lead_id: &str,
) -> Result<Option<assignment::Model>, DbErr> {
    assignment::Entity::find()
        .filter(assignment::Column::TenantId.eq(tenant.as_str()))
        .filter(assignment::Column::LeadId.eq(lead_id))
        .filter(assignment::Column::State.is_in([
            AssignmentState::Assigned as i32,
            AssignmentState::Queued as i32,
        ]))
        .one(db)
        .await
}

/// An assignment with why it went where it did.
pub struct Explanation {
    pub current: assignment::Model,
    pub considered: Vec<Considered>,
    pub history: Vec<assignment::Model>,
}

impl Store {
    pub async fn create_team(
        &self,
        tenant: &TenantId,
        team_id: &str,
        name: &str,
        function: TeamFunction,
        method: RoutingMethod,
    ) -> Result<team::Model, ApiError> {
        let txn = self.db.begin().await?;
        if let Some(existing) = team::Entity::find_by_id((tenant.to_string(), team_id.to_owned()))
            .one(&txn)
            .await?
        {
            if existing.name == name
                && existing.function == function as i32
                && existing.method == method as i32
            {
                return Ok(existing);
            }
            return Err(ApiError::AlreadyExists(format!(
                "team {team_id} exists with other attributes"
            )));
        }
        let created = team::ActiveModel {
            tenant_id: Set(tenant.to_string()),
            team_id: Set(team_id.to_owned()),
            name: Set(name.to_owned()),
            function: Set(function as i32),
            method: Set(method as i32),
            created_at: Set(time::now()),
        }
        .insert(&txn)
        .await?;
        txn.commit().await?;
        Ok(created)
    }

    pub async fn list_teams(&self, tenant: &TenantId) -> Result<Vec<team::Model>, DbErr> {
        team::Entity::find()
            .filter(team::Column::TenantId.eq(tenant.as_str()))
            .order_by_asc(team::Column::CreatedAt)
            .all(&self.db)
            .await
    }

    /// Replaces a rep's routing attributes; queued leads are routed again.
    pub async fn update_rep(
        &self,
        tenant: &TenantId,
        rep_id: &str,
        active: bool,
        routing: &RepRouting,
    ) -> Result<rep::Model, ApiError> {
        let txn = self.db.begin().await?;
        let current = rep::Entity::find()
            .filter(rep::Column::TenantId.eq(tenant.as_str()))
            .filter(rep::Column::RepId.eq(rep_id))
            .one(&txn)
            .await?
            .ok_or_else(|| ApiError::not_found("rep", rep_id))?;
        self.check_team(&txn, tenant, &routing.team_id).await?;
        let mut row: rep::ActiveModel = current.into();
        row.active = Set(active);
        row.team_id = Set(routing.team_id.clone());
        row.capacity = Set(routing.capacity);
        row.weight = Set(routing.weight);
        row.routing =
            Set(serde_json::to_string(&routing.attributes)
                .map_err(|e| DbErr::Custom(e.to_string()))?);
        let saved = row.update(&txn).await?;
        assign_queued(&txn, tenant).await?;
        txn.commit().await?;
        self.log.notify_committed();
        Ok(saved)
    }

    /// INVALID_ARGUMENT unless `team_id` is empty or a team of the tenant.
    pub async fn check_team<C: ConnectionTrait>(
        &self,
        db: &C,
        tenant: &TenantId,
        team_id: &str,
    ) -> Result<(), ApiError> {
        if team_id.is_empty()
            || team::Entity::find_by_id((tenant.to_string(), team_id.to_owned()))
                .one(db)
                .await?
                .is_some()
        {
            Ok(())
        } else {
            Err(ApiError::invalid(
                "routing.team_id",
                format!("no team {team_id}"),
            ))
        }
    }

    pub async fn routing_rules(
        &self,
        tenant: &TenantId,
    ) -> Result<(i32, Rules, Option<DateTime<Utc>>), DbErr> {
        Ok(match rules_of(&self.db, tenant).await? {
            Some((row, rules)) => (row.version, rules, Some(row.updated_at)),
            None => (0, Rules::default(), None),
        })
    }

    /// Replaces the rules (validated whole) with a new version; queued leads are routed again.
    pub async fn set_routing_rules(
        &self,
        tenant: &TenantId,
        rules: &Rules,
        expected_version: i32,
    ) -> Result<(i32, DateTime<Utc>), ApiError> {
        let txn = self.db.begin().await?;
        let teams: Vec<String> = team::Entity::find()
            .filter(team::Column::TenantId.eq(tenant.as_str()))
            .all(&txn)
            .await?
            .into_iter()
            .map(|t| t.team_id)
            .collect();
        let reps: Vec<String> = rep::Entity::find()
            .filter(rep::Column::TenantId.eq(tenant.as_str()))
            .all(&txn)
            .await?
            .into_iter()
            .map(|r| r.rep_id)
            .collect();
        let problems = routing::validate(rules, &teams, &reps);
        if !problems.is_empty() {
            return Err(ApiError::FailedPreconditions(
                problems
                    .into_iter()
                    .map(|p| ("routing_rules_valid".to_owned(), p))
                    .collect(),
            ));
        }
        let current = rules_of(&txn, tenant).await?.map_or(0, |(r, _)| r.version);
        if expected_version != 0 && expected_version != current {
            return Err(ApiError::FailedPrecondition {
                rule: "version_conflict".into(),
                description: format!(
                    "routing rules are at version {current}, not {expected_version}"
                ),
            });
        }
        let now = time::now();
        routing_ruleset::Entity::insert(routing_ruleset::ActiveModel {
            tenant_id: Set(tenant.to_string()),
            version: Set(current + 1),
            definition: Set(
                serde_json::to_string(rules).map_err(|e| DbErr::Custom(e.to_string()))?
            ),
            updated_at: Set(now),
        })
        .on_conflict(
            OnConflict::column(routing_ruleset::Column::TenantId)
                .update_columns([
                    routing_ruleset::Column::Version,
                    routing_ruleset::Column::Definition,
                    routing_ruleset::Column::UpdatedAt,
                ])
                .to_owned(),
        )
        .exec(&txn)
        .await?;
        assign_queued(&txn, tenant).await?;
        txn.commit().await?;
        self.log.notify_committed();
        Ok((current + 1, now))
    }

    pub async fn explain_assignment(
        &self,
        tenant: &TenantId,
        lead_id: &str,
    ) -> Result<Explanation, ApiError> {
        let mut all = assignment::Entity::find()
            .filter(assignment::Column::TenantId.eq(tenant.as_str()))
            .filter(assignment::Column::LeadId.eq(lead_id))
            .order_by_asc(assignment::Column::Seq)
            .all(&self.db)
            .await?;
        let current = all
            .pop()
            .ok_or_else(|| ApiError::not_found("assignment of lead", lead_id))?;
        Ok(Explanation {
            considered: serde_json::from_str(&current.explanation).unwrap_or_default(),
            current,
            history: all,
        })
    }

    pub async fn reassign_lead(
        &self,
        tenant: &TenantId,
        lead_id: &str,
    ) -> Result<assignment::Model, ApiError> {
        let txn = self.db.begin().await?;
        let open = open_assignment(&txn, tenant, lead_id)
            .await?
            .ok_or_else(|| ApiError::not_found("open assignment of lead", lead_id))?;
        let next = reassign(&txn, tenant, open).await?;
        txn.commit().await?;
        self.log.notify_committed();
        Ok(next)
    }

    pub async fn reassign_rep_leads(
        &self,
        tenant: &TenantId,
        rep_id: &str,
        deactivate: bool,
    ) -> Result<Vec<assignment::Model>, ApiError> {
        let txn = self.db.begin().await?;
        let rep_row = rep::Entity::find()
            .filter(rep::Column::TenantId.eq(tenant.as_str()))
            .filter(rep::Column::RepId.eq(rep_id))
            .one(&txn)
            .await?
            .ok_or_else(|| ApiError::not_found("rep", rep_id))?;
        if deactivate {
            let mut row: rep::ActiveModel = rep_row.into();
            row.active = Set(false);
            row.update(&txn).await?;
        }
        let open = assignment::Entity::find()
            .filter(assignment::Column::TenantId.eq(tenant.as_str()))
            .filter(assignment::Column::RepId.eq(rep_id))
            .filter(assignment::Column::State.eq(AssignmentState::Assigned as i32))
            .order_by_asc(assignment::Column::Seq)
            .all(&txn)
            .await?;
        let mut moved = Vec::with_capacity(open.len());
        for a in open {
            moved.push(reassign(&txn, tenant, a).await?);
        }
        txn.commit().await?;
        self.log.notify_committed();
        Ok(moved)
    }
}

pub fn team_to_proto(t: &team::Model) -> pb::Team {
    pb::Team {
        team_id: t.team_id.clone(),
        name: t.name.clone(),
        function: t.function,
        method: t.method,
        created_at: Some(time::to_proto(t.created_at)),
    }
}

pub fn considered_to_proto(c: &Considered) -> pb::CandidateConsidered {
    pb::CandidateConsidered {
        rep_id: c.rep_id.clone(),
        skipped_because: c.skipped.map(|s| s.reason().to_owned()).unwrap_or_default(),
        counter: c.counter,
        open_leads: c.open_leads,
        capacity: c.capacity as i32,
    }
}

/// A duplicate lead was merged into a survivor: the survivor keeps one owner. If only the
/// duplicate had an open assignment, it moves to the survivor (with its SLA timers); if both had
/// one, the duplicate's is closed as merged (and its response SLA no longer runs).
pub async fn merge<C: ConnectionTrait>(
    txn: &C,
    tenant: &TenantId,
    survivor: &str,
    merged: &str,
) -> Result<(), DbErr> {
    let Some(duplicate) = open_assignment(txn, tenant, merged).await? else {
        return Ok(());
    };
    if open_assignment(txn, tenant, survivor).await?.is_some() {
        sla::resolve(txn, tenant, SlaKind::Response, &duplicate.assignment_id).await?;
        close_open(txn, tenant, &duplicate).await?;
        let mut closed: assignment::ActiveModel = duplicate.into();
        closed.state = Set(AssignmentState::Merged as i32);
        closed.closed_at = Set(Some(time::now()));
        closed.update(txn).await?;
    } else {
        sla::move_lead(txn, tenant, &duplicate.assignment_id, survivor).await?;
        let mut moved: assignment::ActiveModel = duplicate.into();
        moved.lead_id = Set(survivor.to_owned());
        moved.update(txn).await?;
    }
    Ok(())
}
