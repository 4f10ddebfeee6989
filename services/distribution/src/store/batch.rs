//! What a run of routing decisions in one transaction (a consumer's batch) reads once and shares,
//! and the writes it holds to make together at the end.

use std::collections::{BTreeMap, BTreeSet, HashMap};

use baton_proto::distribution::v1::LeadAssigned;
use baton_shared::{TenantId, db::IN_CHUNK, events::EventLog};
use sea_orm::{
    ActiveValue::NotSet, ConnectionTrait, DbErr, EntityTrait, QueryFilter, QuerySelect, prelude::*,
};

use super::{
    entities::{assignment, contract_replica, lead_signal, rep, routing_ruleset, sla_timer},
    outbox, rotations, timers,
};
use crate::domain::routing::{Method, Rules};

/// Which reps a decision is among: all of the tenant's, a team's, or one named rep.
#[derive(Debug, Clone, PartialEq, Eq, Hash)]
pub enum Scope {
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
pub struct BatchCache {
    pub(crate) rules: HashMap<String, Option<(routing_ruleset::Model, Rules)>>,
    pub(crate) methods: HashMap<(String, String), Method>,
    pub(crate) reps: HashMap<(String, Scope), Vec<rep::Model>>,
    pub(crate) rotations: HashMap<(String, String), Option<i64>>,
    pub(crate) contracts: HashMap<(String, String), Option<contract_replica::Model>>,
    pub(crate) signals: HashMap<(String, String), lead_signal::Model>,
    /// Leads known to have an assignment (or none yet), per (tenant, lead).
    pub(crate) assigned: HashMap<(String, String), bool>,
    /// Writes held until [`BatchCache::flush`] (a batch); `None`: written at once.
    pub(crate) held: Option<HeldWrites>,
}

/// A rep's held change.
#[derive(Debug, Default, Clone, Copy)]
pub(crate) struct RepChange {
    /// The new weighted-round-robin counter and availability, if they changed.
    wrr: Option<(f64, bool)>,
    /// Open leads added.
    opened: i64,
}

/// The writes of a run of decisions, held to be made together.
#[derive(Default)]
pub(crate) struct HeldWrites {
    /// Per (tenant, rep).
    pub(crate) reps: BTreeMap<(String, String), RepChange>,
    pub(crate) rotations: BTreeMap<(String, String), i64>,
    assignments: Vec<assignment::Model>,
    /// `LeadAssigned` of each held assignment, with the span it was decided in.
    announced: Vec<(String, LeadAssigned, tracing::Span)>,
    timers: Vec<sla_timer::ActiveModel>,
}

impl BatchCache {
    /// A cache whose writes are held until [`BatchCache::flush`].
    pub fn holding_writes() -> Self {
        BatchCache {
            held: Some(HeldWrites::default()),
            ..BatchCache::default()
        }
    }

    /// Remembers which of `lead_ids` already have an assignment (one read for a batch).
    pub async fn know_assigned<C: ConnectionTrait>(
        &mut self,
        txn: &C,
        tenant: &TenantId,
        lead_ids: &[&str],
    ) -> Result<(), DbErr> {
        for chunk in lead_ids.chunks(IN_CHUNK) {
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
        let Some(d) = self.held.replace(HeldWrites::default()) else {
            return Ok(());
        };
        for chunk in d.assignments.chunks(IN_CHUNK) {
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
                            &|c| c.wrr.map(|(v, _)| Expr::value(v)),
                            rep::Column::WrrCounter,
                        )
                        .into(),
                    )
                    .col_expr(
                        rep::Column::WasAvailable,
                        when(
                            &|c| c.wrr.map(|(_, v)| Expr::value(v)),
                            rep::Column::WasAvailable,
                        )
                        .into(),
                    )
                    .col_expr(
                        rep::Column::OpenLeads,
                        sea_orm::sea_query::ExprTrait::add(
                            Expr::col(rep::Column::OpenLeads),
                            Into::<Expr>::into(
                                when(&|c| Some(Expr::value(c.opened)), rep::Column::OpenLeads)
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
            rotations::set_last_pick(txn, &TenantId::new(tenant.clone()), team_id, *seq).await?;
        }
        timers::insert_timers(txn, d.timers).await?;
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
    pub(crate) async fn rep_write<C: ConnectionTrait>(
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
        if let Some(d) = &mut self.held {
            let held = d
                .reps
                .entry((tenant.to_string(), rep_id.to_owned()))
                .or_default();
            if counter.is_some() {
                held.wrr = counter;
            }
            held.opened += opened;
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
    pub(crate) async fn assignment_write<C: ConnectionTrait>(
        &mut self,
        txn: &C,
        tenant: &TenantId,
        row: assignment::Model,
    ) -> Result<assignment::Model, DbErr> {
        self.assigned
            .insert((tenant.to_string(), row.lead_id.clone()), true);
        if let Some(d) = &mut self.held {
            if row.rep_id.is_some() {
                d.announced.push((
                    tenant.to_string(),
                    outbox::assigned_event(&row),
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
            outbox::append_assigned(txn, tenant, &row).await?;
        }
        Ok(row)
    }

    /// A new SLA timer: started now, or held.
    pub(crate) async fn timer_write<C: ConnectionTrait>(
        &mut self,
        txn: &C,
        tenant: &TenantId,
        timer: timers::NewTimer<'_>,
    ) -> Result<(), DbErr> {
        match &mut self.held {
            Some(d) => {
                d.timers.push(timers::timer_row(tenant, &timer));
                Ok(())
            }
            None => timers::start(txn, tenant, timer).await,
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
