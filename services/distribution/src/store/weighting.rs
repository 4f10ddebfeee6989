//! Performance-weighted routing as a use case: a team's weighting (opt-in, guardrails), the win
//! records it reads from the team's handoffs, and the factors it moves on the reps' rows, each
//! move a `rep_weight_change` row and a `RepWeightChanged` event in the same transaction.

use std::collections::HashMap;

use baton_proto::distribution::v1::{HandoffState, RepWeightChanged, RoutingMethod};
use baton_shared::{TenantId, events::EventLog, time};
use chrono::{DateTime, Utc};
use sea_orm::{
    ActiveModelTrait,
    ActiveValue::{NotSet, Set},
    ColumnTrait, ConnectionTrait, DbBackend, DbErr, EntityTrait, QueryFilter, QueryOrder,
    QuerySelect, TransactionTrait,
    sea_query::{LockType, OnConflict},
};

use super::{
    Store,
    entities::{handoff, rep, rep_weight_change, team, team_weighting},
};
use crate::{
    convert::{self, basis_of, basis_value},
    domain::weighting::{self, Basis, Guardrails, Origin, Reason, Record, Verdict},
    error::Error,
};

/// A team's weighting as callers read it: the row (None until first set), its reps in queue
/// order, and the changes their factors came from.
pub struct WeightingView {
    pub team_id: String,
    pub row: Option<team_weighting::Model>,
    pub reps: Vec<rep::Model>,
    pub origins: HashMap<i64, rep_weight_change::Model>,
}

/// A SetTeamWeighting request, validated at the edge.
#[derive(Debug, Clone)]
pub struct NewWeighting {
    pub team_id: String,
    pub enabled: bool,
    pub basis: Basis,
    pub guardrails: Guardrails,
    pub expected_version: i32,
    pub reason: String,
    pub actor: String,
}

async fn team_of<C: ConnectionTrait>(
    db: &C,
    tenant: &TenantId,
    team_id: &str,
) -> Result<team::Model, Error> {
    team::Entity::find_by_id((tenant.to_string(), team_id.to_owned()))
        .one(db)
        .await?
        .ok_or_else(|| Error::not_found("team", team_id))
}

/// The team's weighting row; on PostgreSQL locked for the transaction, so two replicas applying
/// at once take turns instead of announcing the same change twice (SQLite serializes writers).
async fn weighting_row<C: ConnectionTrait>(
    db: &C,
    tenant: &TenantId,
    team_id: &str,
    lock: bool,
) -> Result<Option<team_weighting::Model>, DbErr> {
    let mut query = team_weighting::Entity::find()
        .filter(team_weighting::Column::TenantId.eq(tenant.as_str()))
        .filter(team_weighting::Column::TeamId.eq(team_id));
    if lock && db.get_database_backend() == DbBackend::Postgres {
        query = query.lock(LockType::Update);
    }
    query.one(db).await
}

async fn team_reps<C: ConnectionTrait>(
    db: &C,
    tenant: &TenantId,
    team_id: &str,
) -> Result<Vec<rep::Model>, DbErr> {
    rep::Entity::find()
        .filter(rep::Column::TenantId.eq(tenant.as_str()))
        .filter(rep::Column::TeamId.eq(team_id))
        .order_by_asc(rep::Column::Seq)
        .all(db)
        .await
}

fn verdict_of(state: i32) -> Option<Verdict> {
    match HandoffState::try_from(state).ok()? {
        HandoffState::Won => Some(Verdict::Won),
        HandoffState::Lost => Some(Verdict::Lost),
        HandoffState::Rejected => Some(Verdict::Rejected),
        _ => None,
    }
}

/// Decided handoffs created since `since` per rep of `reps` (by is_rep_id or fs_rep_id).
async fn records<C: ConnectionTrait>(
    db: &C,
    tenant: &TenantId,
    basis: Basis,
    reps: &[rep::Model],
    since: DateTime<Utc>,
) -> Result<HashMap<String, Record>, DbErr> {
    let column = match basis {
        Basis::HandedOff => handoff::Column::IsRepId,
        Basis::Closed => handoff::Column::FsRepId,
    };
    let states = [
        HandoffState::Won,
        HandoffState::Lost,
        HandoffState::Rejected,
    ]
    .map(|s| s as i32);
    let rows: Vec<(String, i32)> = handoff::Entity::find()
        .select_only()
        .column(column)
        .column(handoff::Column::State)
        .filter(handoff::Column::TenantId.eq(tenant.as_str()))
        .filter(column.is_in(reps.iter().map(|r| r.rep_id.clone())))
        .filter(handoff::Column::State.is_in(states))
        .filter(handoff::Column::CreatedAt.gte(since))
        .into_tuple()
        .all(db)
        .await?;
    let mut out: HashMap<String, Record> = HashMap::new();
    for (rep_id, state) in rows {
        if let Some(won) = verdict_of(state).and_then(|v| basis.tally(v)) {
            out.entry(rep_id).or_default().add(won);
        }
    }
    Ok(out)
}

/// Where one rep's factor goes under `row` at `now`, with the factor its period began at.
fn next_factor(
    row: &team_weighting::Model,
    rep: Record,
    team: Record,
    period_factor: f64,
    now: DateTime<Utc>,
) -> Origin {
    let (factor, reason, raw_factor, detail) = if row.enabled {
        weighting::propose(&row.guardrails(), rep, team, period_factor)
    } else {
        let why = "the team's performance weighting is off: the rep's own weight".to_owned();
        (1.0, Reason::WeightingDisabled, 1.0, why)
    };
    Origin {
        reason,
        detail,
        rep: (rep.won, rep.decided),
        team: (team.won, team.decided),
        raw_factor,
        factor,
        weighting_version: row.version,
        computed_at: now,
    }
}

/// Moves one rep's factor to `origin.factor`: the change row, the rep's row and the event.
async fn move_factor<C: ConnectionTrait>(
    txn: &C,
    tenant: &TenantId,
    r: &rep::Model,
    origin: &Origin,
    actor: &str,
) -> Result<RepWeightChanged, DbErr> {
    let old_factor = r.performance_factor();
    let change = rep_weight_change::ActiveModel {
        change_id: NotSet,
        tenant_id: Set(tenant.to_string()),
        team_id: Set(r.team_id.clone()),
        rep_id: Set(r.rep_id.clone()),
        old_factor: Set(old_factor),
        new_factor: Set(origin.factor),
        origin: Set(serde_json::to_string(origin).unwrap_or_default()),
        changed_by: Set(actor.to_owned()),
        at: Set(origin.computed_at),
    }
    .insert(txn)
    .await?;
    let mut row: rep::ActiveModel = r.clone().into();
    row.perf_factor = Set(origin.factor);
    row.perf_team = Set(r.team_id.clone());
    row.perf_change_id = Set(change.change_id);
    rep::Entity::update(row).exec(txn).await?;
    let event = convert::weight_change_to_proto(&change, r.weight);
    EventLog::append(txn, tenant, &r.rep_id, &event).await?;
    Ok(event)
}

/// Computes every factor of the team under `row` and moves those that change. A rep whose period
/// is over starts a new one at the factor it has now.
async fn recompute<C: ConnectionTrait>(
    txn: &C,
    tenant: &TenantId,
    row: &team_weighting::Model,
    actor: &str,
) -> Result<Vec<RepWeightChanged>, DbErr> {
    let now = time::now();
    let g = row.guardrails();
    let reps = team_reps(txn, tenant, &row.team_id).await?;
    let basis = basis_of(row.basis);
    let by_rep = records(txn, tenant, basis, &reps, weighting::window_start(&g, now)).await?;
    let team = by_rep.values().fold(Record::default(), |t, r| Record {
        won: t.won + r.won,
        decided: t.decided + r.decided,
    });
    let mut changes = Vec::new();
    for mut r in reps {
        let current = r.performance_factor();
        if row.enabled && weighting::period_over(&g, r.perf_period_start, now) {
            let mut started: rep::ActiveModel = r.clone().into();
            started.perf_period_factor = Set(current);
            started.perf_period_start = Set(Some(now));
            r = rep::Entity::update(started).exec(txn).await?;
        }
        let record = by_rep.get(&r.rep_id).copied().unwrap_or_default();
        let origin = next_factor(row, record, team, r.perf_period_factor, now);
        if (origin.factor - current).abs() >= 1e-9 {
            changes.push(move_factor(txn, tenant, &r, &origin, actor).await?);
        }
    }
    Ok(changes)
}

async fn view_of<C: ConnectionTrait>(
    db: &C,
    tenant: &TenantId,
    team_id: &str,
) -> Result<WeightingView, DbErr> {
    let row = weighting_row(db, tenant, team_id, false).await?;
    let reps = team_reps(db, tenant, team_id).await?;
    let ids: Vec<i64> = reps
        .iter()
        .filter(|r| r.weighted_by_team() && r.perf_change_id > 0)
        .map(|r| r.perf_change_id)
        .collect();
    let origins = changes_by_id(db, &ids).await?;
    Ok(WeightingView {
        team_id: team_id.to_owned(),
        row,
        reps,
        origins,
    })
}

/// The weight changes with these ids.
pub(super) async fn changes_by_id<C: ConnectionTrait>(
    db: &C,
    ids: &[i64],
) -> Result<HashMap<i64, rep_weight_change::Model>, DbErr> {
    if ids.is_empty() {
        return Ok(HashMap::new());
    }
    Ok(rep_weight_change::Entity::find()
        .filter(rep_weight_change::Column::ChangeId.is_in(ids.iter().copied()))
        .all(db)
        .await?
        .into_iter()
        .map(|c| (c.change_id, c))
        .collect())
}

impl Store {
    pub async fn team_weighting(
        &self,
        tenant: &TenantId,
        team_id: &str,
    ) -> Result<WeightingView, Error> {
        team_of(&self.db, tenant, team_id).await?;
        Ok(view_of(&self.db, tenant, team_id).await?)
    }

    /// Stores a new version of the team's weighting and moves the factors it implies at once.
    pub async fn set_team_weighting(
        &self,
        tenant: &TenantId,
        new: &NewWeighting,
    ) -> Result<WeightingView, Error> {
        let txn = self.db.begin().await?;
        let team = team_of(&txn, tenant, &new.team_id).await?;
        if new.enabled && team.method != RoutingMethod::WeightedRoundRobin as i32 {
            return Err(Error::RuleBroken {
                rule: "weighted_method_required".into(),
                description: format!(
                    "team {} routes by {}; performance weights only apply to weighted round robin",
                    team.team_id,
                    RoutingMethod::try_from(team.method)
                        .unwrap_or_default()
                        .as_str_name()
                ),
            });
        }
        let current = weighting_row(&txn, tenant, &new.team_id, true).await?;
        let version = current.as_ref().map_or(0, |c| c.version);
        if new.expected_version != 0 && new.expected_version != version {
            return Err(Error::RuleBroken {
                rule: "version_conflict".into(),
                description: format!(
                    "the team's weighting is at version {version}, not {}",
                    new.expected_version
                ),
            });
        }
        let row = team_weighting::ActiveModel {
            tenant_id: Set(tenant.to_string()),
            team_id: Set(new.team_id.clone()),
            version: Set(version + 1),
            enabled: Set(new.enabled),
            basis: Set(basis_value(new.basis)),
            guardrails: Set(serde_json::to_string(&new.guardrails).unwrap_or_default()),
            reason: Set(new.reason.clone()),
            updated_by: Set(new.actor.clone()),
            updated_at: Set(time::now()),
        };
        team_weighting::Entity::insert(row)
            .on_conflict(
                OnConflict::columns([
                    team_weighting::Column::TenantId,
                    team_weighting::Column::TeamId,
                ])
                .update_columns([
                    team_weighting::Column::Version,
                    team_weighting::Column::Enabled,
                    team_weighting::Column::Basis,
                    team_weighting::Column::Guardrails,
                    team_weighting::Column::Reason,
                    team_weighting::Column::UpdatedBy,
                    team_weighting::Column::UpdatedAt,
                ])
                .to_owned(),
            )
            .exec(&txn)
            .await?;
        let stored = weighting_row(&txn, tenant, &new.team_id, false)
            .await?
            .ok_or_else(|| DbErr::RecordNotFound("team weighting just stored".into()))?;
        recompute(&txn, tenant, &stored, &new.actor).await?;
        let view = view_of(&txn, tenant, &new.team_id).await?;
        txn.commit().await?;
        self.log.notify_committed();
        Ok(view)
    }

    /// Computes the team's factors now; returns the changes.
    pub async fn apply_performance_weights(
        &self,
        tenant: &TenantId,
        team_id: &str,
        actor: &str,
    ) -> Result<(Vec<RepWeightChanged>, WeightingView), Error> {
        let txn = self.db.begin().await?;
        team_of(&txn, tenant, team_id).await?;
        let row = weighting_row(&txn, tenant, team_id, true)
            .await?
            .filter(|r| r.enabled)
            .ok_or_else(|| Error::RuleBroken {
                rule: "weighting_disabled".into(),
                description: format!(
                    "team {team_id} has not opted in to performance weights (SetTeamWeighting)"
                ),
            })?;
        let changes = recompute(&txn, tenant, &row, actor).await?;
        let view = view_of(&txn, tenant, team_id).await?;
        txn.commit().await?;
        if !changes.is_empty() {
            self.log.notify_committed();
        }
        Ok((changes, view))
    }

    /// The worker's round: every team of every tenant that opted in, one transaction each.
    /// Returns how many factors moved.
    pub async fn apply_all_performance_weights(&self) -> Result<u64, DbErr> {
        let teams = team_weighting::Entity::find()
            .filter(team_weighting::Column::Enabled.eq(true))
            .all(&self.db)
            .await?;
        let mut moved = 0;
        for t in teams {
            let tenant = TenantId::new(&t.tenant_id);
            let txn = self.db.begin().await?;
            let Some(row) = weighting_row(&txn, &tenant, &t.team_id, true).await? else {
                continue;
            };
            if row.enabled {
                moved += recompute(&txn, &tenant, &row, "worker").await?.len() as u64;
            }
            txn.commit().await?;
        }
        if moved > 0 {
            self.log.notify_committed();
        }
        Ok(moved)
    }
}
