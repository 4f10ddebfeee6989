//! The routing decision path: where a lead goes (rules → team or rep → method → rep), stored as
//! an assignment with the rule, team and candidates behind it; queued leads retried; reassignment.
//! Each decision is split into named steps: reads (once per batch, through [`BatchCache`]), a
//! pure plan ([`target_of`], [`views_of`], `routing::choose`), the writes, the answer.

use std::collections::HashSet;

use baton_proto::{
    capture::v1::Lead,
    distribution::v1::{AssignmentState, RoutingMethod, SlaKind},
};
use baton_shared::{TenantId, db::find_in, time};
use chrono::{DateTime, Utc};
use sea_orm::{
    ActiveValue::Set, ConnectionTrait, DbErr, EntityTrait, QueryFilter, QueryOrder, prelude::*,
};

use super::{
    batch::{BatchCache, Scope},
    entities::{assignment, rep, routing_ruleset, team},
    outbox, rotations,
    rules::rules_of,
    signals, sla, timers,
};
use crate::domain::routing::{self, Choice, Considered, LeadFields, Method, RepView, Rules};

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

/// Keeps the profile fields routing conditions read (from capture's events).
pub async fn record_profile<C: ConnectionTrait>(
    txn: &C,
    tenant: &TenantId,
    lead: &Lead,
) -> Result<(), DbErr> {
    record_profiles(txn, tenant, &[lead]).await
}

/// [`record_profile`] of many leads (see [`signals::store_profiles`]); then the queued leads among
/// them are routed again.
pub async fn record_profiles<C: ConnectionTrait>(
    txn: &C,
    tenant: &TenantId,
    leads: &[&Lead],
) -> Result<(), DbErr> {
    let ids = signals::store_profiles(txn, tenant, leads).await?;
    // A lead that waits because no rule matched may match now that its profile is known (capture's
    // and qualification's events reach distribution independently).
    retry_queued(txn, tenant, Some(&ids)).await
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

/// Where a decision looks, from the rules: the rule that matched (if any), its team, key, the rules'
/// version, the method and the reps in scope.
#[derive(Debug, Clone, PartialEq)]
struct Target {
    rule: Option<routing::Rule>,
    team_id: String,
    rule_key: String,
    rules_version: i32,
    method: Method,
    scope: Scope,
}

/// Where the rules send a lead with `fields` (pure; a team's method is looked up after).
/// `Err(version)`: rules exist and none matched, so the lead waits in the fallback queue.
fn target_of(
    ruleset: Option<&(routing_ruleset::Model, Rules)>,
    fields: &LeadFields,
) -> Result<Target, i32> {
    let Some((row, rules)) = ruleset else {
        // No rules: every active rep of the tenant in one rotation.
        return Ok(Target {
            rule: None,
            team_id: String::new(),
            rule_key: String::new(),
            rules_version: 0,
            method: Method::RoundRobin,
            scope: Scope::All,
        });
    };
    let rule = routing::matching_rule(rules, fields).ok_or(row.version)?;
    let (team_id, scope) = if rule.to_rep.is_empty() {
        (rule.to_team.clone(), Scope::Team(rule.to_team.clone()))
    } else {
        (String::new(), Scope::Rep(rule.to_rep.clone()))
    };
    Ok(Target {
        rule: Some(rule.clone()),
        team_id,
        rule_key: rule.key.clone(),
        rules_version: row.version,
        method: Method::RoundRobin,
        scope,
    })
}

/// The reps that had the lead before (none for a first assignment).
async fn reps_that_had<C: ConnectionTrait>(
    txn: &C,
    tenant: &TenantId,
    lead_id: &str,
    first_assignment: bool,
) -> Result<HashSet<String>, DbErr> {
    if first_assignment {
        return Ok(HashSet::new());
    }
    Ok(assignment::Entity::find()
        .filter(assignment::Column::TenantId.eq(tenant.as_str()))
        .filter(assignment::Column::LeadId.eq(lead_id))
        .all(txn)
        .await?
        .into_iter()
        .filter_map(|a| a.rep_id)
        .collect())
}

/// The tenant's rules, read once per batch.
async fn cached_rules<C: ConnectionTrait>(
    txn: &C,
    tenant: &TenantId,
    cache: &mut BatchCache,
) -> Result<Option<(routing_ruleset::Model, Rules)>, DbErr> {
    if let Some(known) = cache.rules.get(tenant.as_str()) {
        return Ok(known.clone());
    }
    let read = rules_of(txn, tenant).await?;
    cache.rules.insert(tenant.to_string(), read.clone());
    Ok(read)
}

/// A team's routing method, read once per batch.
async fn team_method<C: ConnectionTrait>(
    txn: &C,
    tenant: &TenantId,
    team_id: &str,
    cache: &mut BatchCache,
) -> Result<Method, DbErr> {
    let key = (tenant.to_string(), team_id.to_owned());
    if let Some(m) = cache.methods.get(&key) {
        return Ok(*m);
    }
    let m = team::Entity::find_by_id(key.clone())
        .one(txn)
        .await?
        .map_or(Method::RoundRobin, |t| method_of(t.method));
    cache.methods.insert(key, m);
    Ok(m)
}

/// The reps in a scope, in queue order, read once per batch (and kept current by its decisions).
async fn scope_reps<C: ConnectionTrait>(
    txn: &C,
    tenant: &TenantId,
    scope: &Scope,
    cache: &mut BatchCache,
) -> Result<Vec<rep::Model>, DbErr> {
    let key = (tenant.to_string(), scope.clone());
    if !cache.reps.contains_key(&key) {
        let query = rep::Entity::find().filter(rep::Column::TenantId.eq(tenant.as_str()));
        let query = match scope {
            Scope::All => query,
            Scope::Team(team) => query.filter(rep::Column::TeamId.eq(team.as_str())),
            Scope::Rep(id) => query.filter(rep::Column::RepId.eq(id.as_str())),
        };
        let reps = query.order_by_asc(rep::Column::Seq).all(txn).await?;
        cache.reps.insert(key.clone(), reps);
    }
    Ok(cache.reps.get(&key).cloned().unwrap_or_default())
}

/// What the choice sees of each rep at `now` (pure).
fn views_of(
    reps: &[rep::Model],
    had: &HashSet<String>,
    rule: Option<&routing::Rule>,
    fields: &LeadFields,
    now: DateTime<Utc>,
) -> Vec<RepView> {
    reps.iter()
        .map(|r| {
            let a = r.attributes();
            RepView {
                rep_id: r.rep_id.clone(),
                seq: r.seq,
                active: r.active,
                out_of_office: a
                    .out_of_office
                    .iter()
                    .any(|(from, to)| *from <= now && now < *to),
                open_leads: r.open_leads,
                capacity: i64::from(r.capacity),
                weight: r.weight * r.performance_factor(),
                weight_change: if r.weighted_by_team() {
                    r.perf_change_id
                } else {
                    0
                },
                counter: r.wrr_counter,
                was_available: r.was_available,
                had_lead: had.contains(&r.rep_id),
                mismatch: rule
                    .and_then(|rule| routing::fit(rule, &a.territories, &a.industries, fields)),
            }
        })
        .collect()
}

/// The rep a rotation picked last (only round robin reads it), once per batch.
async fn cached_last_pick<C: ConnectionTrait>(
    txn: &C,
    tenant: &TenantId,
    team_id: &str,
    cache: &mut BatchCache,
) -> Result<Option<i64>, DbErr> {
    let key = (tenant.to_string(), team_id.to_owned());
    if let Some(last) = cache.rotations.get(&key) {
        return Ok(*last);
    }
    let last = rotations::last_pick(txn, tenant, team_id).await?;
    cache.rotations.insert(key, last);
    Ok(last)
}

/// The reps whose weighted-round-robin counter or availability changed (usually just the chosen
/// one), with whether each is the chosen one (pure).
fn changed_counters(
    counters: Vec<(String, f64, bool)>,
    views: &[RepView],
    chosen: Option<&str>,
) -> Vec<(String, f64, bool, bool)> {
    counters
        .into_iter()
        .filter(|(id, counter, available)| {
            Some(id.as_str()) == chosen
                || views
                    .iter()
                    .find(|v| &v.rep_id == id)
                    .is_none_or(|v| v.counter != *counter || v.was_available != *available)
        })
        .map(|(id, counter, available)| {
            let is_chosen = Some(id.as_str()) == chosen;
            (id, counter, available, is_chosen)
        })
        .collect()
}

/// Stores what a choice moved: counters (weighted), the chosen rep's open leads (in the same
/// update when its counter moved too) and the rotation (round robin).
async fn store_choice<C: ConnectionTrait>(
    txn: &C,
    tenant: &TenantId,
    target: &Target,
    changed: Vec<(String, f64, bool, bool)>,
    chosen: Option<&rep::Model>,
    cache: &mut BatchCache,
) -> Result<(), DbErr> {
    let mut opened = false;
    for (id, counter, available, is_chosen) in changed {
        opened |= is_chosen;
        cache
            .rep_write(
                txn,
                tenant,
                &id,
                Some((counter, available)),
                i64::from(is_chosen),
            )
            .await?;
    }
    let Some(r) = chosen else {
        return Ok(());
    };
    if !opened {
        cache.rep_write(txn, tenant, &r.rep_id, None, 1).await?;
    }
    if target.method == Method::RoundRobin {
        let key = (tenant.to_string(), target.team_id.clone());
        cache.rotations.insert(key.clone(), Some(r.seq));
        match &mut cache.held {
            Some(held) => {
                held.rotations.insert(key, r.seq);
            }
            None => rotations::set_last_pick(txn, tenant, &target.team_id, r.seq).await?,
        }
    }
    Ok(())
}

/// Decides where a lead goes now (storing counters, the chosen rep's open leads and the rotation),
/// excluding reps that had it. Every caller stores an assignment to the chosen rep.
async fn decide<C: ConnectionTrait>(
    txn: &C,
    tenant: &TenantId,
    lead_id: &str,
    first_assignment: bool,
    cache: &mut BatchCache,
) -> Result<Decision, DbErr> {
    let now = time::now();
    let had = reps_that_had(txn, tenant, lead_id, first_assignment).await?;
    let ruleset = cached_rules(txn, tenant, cache).await?;
    let fields = match &ruleset {
        Some(_) => signals::lead_fields(txn, tenant, lead_id, cache).await?,
        None => LeadFields::new(),
    };
    let mut target = match target_of(ruleset.as_ref(), &fields) {
        Ok(target) => target,
        Err(rules_version) => {
            return Ok(Decision {
                rep: None,
                team_id: String::new(),
                rule_key: String::new(),
                rules_version,
                method: "fallback_queue",
                considered: vec![],
            });
        }
    };
    if let Scope::Team(team_id) = &target.scope {
        target.method = team_method(txn, tenant, team_id, cache).await?;
    }
    let reps = scope_reps(txn, tenant, &target.scope, cache).await?;
    let views = views_of(&reps, &had, target.rule.as_ref(), &fields, now);
    let last = match target.method {
        Method::RoundRobin => cached_last_pick(txn, tenant, &target.team_id, cache).await?,
        _ => None,
    };
    let Choice {
        rep_id,
        considered,
        counters,
    } = routing::choose(target.method, &views, last);
    let chosen = rep_id.and_then(|id| reps.iter().find(|r| r.rep_id == id).cloned());
    let changed = match target.method {
        Method::Weighted => {
            changed_counters(counters, &views, chosen.as_ref().map(|r| r.rep_id.as_str()))
        }
        _ => Vec::new(),
    };
    store_choice(txn, tenant, &target, changed, chosen.as_ref(), cache).await?;
    Ok(Decision {
        rep: chosen,
        team_id: target.team_id,
        rule_key: target.rule_key,
        rules_version: target.rules_version,
        method: target.method.name(),
        considered,
    })
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
    cache: &mut BatchCache,
) -> Result<assignment::Model, DbErr> {
    let d = decide(txn, tenant, lead_id, first_assignment, cache).await?;
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
    let row = cache.assignment_write(txn, tenant, row).await?;
    if row.rep_id.is_some() {
        sla::start_response(txn, tenant, &row, cache).await?;
    }
    Ok(row)
}

/// Assigns a lead that just became an MQL (or an early SQL), exactly once: a lead that already has
/// an assignment (a redelivered or repeated event) is left alone.
pub async fn assign_mql<C: ConnectionTrait>(
    txn: &C,
    tenant: &TenantId,
    lead_id: &str,
    cache: &mut BatchCache,
) -> Result<(), DbErr> {
    let key = (tenant.to_string(), lead_id.to_owned());
    let existing = match cache.assigned.get(&key) {
        Some(known) => *known,
        None => assignment::Entity::find()
            .filter(assignment::Column::TenantId.eq(tenant.as_str()))
            .filter(assignment::Column::LeadId.eq(lead_id))
            .one(txn)
            .await?
            .is_some(),
    };
    if !existing {
        route_new(txn, tenant, lead_id, true, cache).await?;
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
    let mut cache = BatchCache::default();
    for waiting in queued {
        let d = decide(txn, tenant, &waiting.lead_id, false, &mut cache).await?;
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
        outbox::append_assigned(txn, tenant, &row).await?;
        sla::start_response(txn, tenant, &row, &mut cache).await?;
    }
    Ok(())
}

/// Closes a lead's open assignment and routes it again (never back to a rep who had it).
pub async fn reassign<C: ConnectionTrait>(
    txn: &C,
    tenant: &TenantId,
    open: assignment::Model,
) -> Result<assignment::Model, DbErr> {
    let lead_id = open.lead_id.clone();
    timers::resolve(txn, tenant, SlaKind::Response, &open.assignment_id).await?;
    close_open(txn, tenant, &open).await?;
    let mut closed: assignment::ActiveModel = open.into();
    closed.state = Set(AssignmentState::Reassigned as i32);
    closed.closed_at = Set(Some(time::now()));
    closed.update(txn).await?;
    route_new(txn, tenant, &lead_id, false, &mut BatchCache::default()).await
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

pub(crate) async fn open_assignment<C: ConnectionTrait>(
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
        timers::resolve(txn, tenant, SlaKind::Response, &duplicate.assignment_id).await?;
        close_open(txn, tenant, &duplicate).await?;
        let mut closed: assignment::ActiveModel = duplicate.into();
        closed.state = Set(AssignmentState::Merged as i32);
        closed.closed_at = Set(Some(time::now()));
        closed.update(txn).await?;
    } else {
        timers::move_lead(txn, tenant, &duplicate.assignment_id, survivor).await?;
        let mut moved: assignment::ActiveModel = duplicate.into();
        moved.lead_id = Set(survivor.to_owned());
        moved.update(txn).await?;
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::domain::routing::Condition;

    fn ruleset(rules: Vec<routing::Rule>) -> (routing_ruleset::Model, Rules) {
        (
            routing_ruleset::Model {
                tenant_id: "t".into(),
                version: 7,
                definition: String::new(),
                updated_at: time::now(),
            },
            Rules { rules },
        )
    }

    fn rule(key: &str, country: Option<&str>, to_team: &str, to_rep: &str) -> routing::Rule {
        routing::Rule {
            key: key.into(),
            conditions: country
                .map(|c| {
                    vec![Condition {
                        field: "company.country".into(),
                        any_of: vec![c.into()],
                        ..Default::default()
                    }]
                })
                .unwrap_or_default(),
            to_team: to_team.into(),
            to_rep: to_rep.into(),
            ..Default::default()
        }
    }

    #[test]
    fn without_rules_every_rep_of_the_tenant_shares_one_rotation() {
        let target = target_of(None, &LeadFields::new()).expect("a target");
        assert_eq!(target.scope, Scope::All);
        assert_eq!(target.method, Method::RoundRobin);
        assert_eq!(target.rules_version, 0);
    }

    #[test]
    fn a_lead_no_rule_matches_waits_in_the_fallback_queue_under_the_rules_version() {
        let rules = ruleset(vec![rule("jp", Some("JP"), "team-jp", "")]);
        let mut fields = LeadFields::new();
        fields.insert("company.country".into(), "DE".into());
        assert_eq!(target_of(Some(&rules), &fields), Err(7));
    }

    #[test]
    fn the_first_matching_rule_names_the_team_or_the_rep() {
        let rules = ruleset(vec![
            rule("vip", Some("JP"), "", "rep-1"),
            rule("rest", None, "team-all", ""),
        ]);
        let mut fields = LeadFields::new();
        fields.insert("company.country".into(), "JP".into());
        let to_rep = target_of(Some(&rules), &fields).expect("a target");
        assert_eq!(
            (to_rep.rule_key.as_str(), to_rep.scope),
            ("vip", Scope::Rep("rep-1".into()))
        );
        fields.insert("company.country".into(), "US".into());
        let to_team = target_of(Some(&rules), &fields).expect("a target");
        assert_eq!(to_team.scope, Scope::Team("team-all".into()));
        assert_eq!(to_team.team_id, "team-all");
        assert_eq!(to_team.rules_version, 7);
    }

    #[test]
    fn only_reps_whose_counter_or_availability_moved_are_written_and_the_chosen_one_always() {
        let view = |id: &str, counter: f64| RepView {
            rep_id: id.into(),
            seq: 1,
            active: true,
            out_of_office: false,
            open_leads: 0,
            capacity: 0,
            weight: 1.0,
            weight_change: 0,
            counter,
            was_available: true,
            had_lead: false,
            mismatch: None,
        };
        let views = [view("a", 1.0), view("b", 2.0), view("c", 3.0)];
        let counters = vec![
            ("a".to_owned(), 1.0, true),
            ("b".to_owned(), 2.5, true),
            ("c".to_owned(), 3.0, true),
        ];
        let changed = changed_counters(counters, &views, Some("c"));
        assert_eq!(
            changed,
            vec![
                ("b".to_owned(), 2.5, true, false),
                ("c".to_owned(), 3.0, true, true)
            ]
        );
    }
}
