//! Handoffs and what judges them: the replica of each team pair's active contract and of each
//! lead's score and rank, the gate's refusal counts, and every step with its event.

use baton_proto::{
    distribution::v1::{AssignmentState, Handoff, HandoffChanged, HandoffState},
    qualification::v1::Rank,
    reporting::v1::{Contract, ContractTerms, RejectedLeadRoute},
};
use baton_shared::{
    TenantId,
    contract::{self, HandoffFacts},
    events::EventLog,
    time,
};
use chrono::{DateTime, Utc};
use prost::Message;
use sea_orm::{
    ActiveValue::{NotSet, Set},
    ConnectionTrait, DbErr, EntityTrait, QueryFilter, QueryOrder, TransactionTrait,
    prelude::*,
    sea_query::OnConflict,
};

use super::{
    Store,
    entities::{contract_replica, handoff, handoff_refusal, handoff_step, lead_signal, rep},
    leads, routing, sla,
};
use crate::error::Error;
use crate::{
    convert,
    domain::{
        handoffs::{self, Bant, LeadStanding},
        sla::{WorkingHours, due_at},
    },
};

/// A handoff as IS submits it (validated at the edge).
#[derive(Debug, Clone)]
pub struct NewHandoff {
    pub request_id: String,
    pub lead_id: String,
    pub is_team: String,
    pub fs_team: String,
    pub fs_rep_id: String,
    pub meeting_at: Option<DateTime<Utc>>,
    pub notes: String,
    pub handed_off_by: String,
}

/// What a step brings besides who and why.
#[derive(Debug, Clone, Default)]
pub struct StepDetails {
    pub reason_code: String,
    pub amount: Option<(String, i64)>,
    /// Monthly recurring revenue of the customer a win opens.
    pub mrr: Option<(String, i64)>,
    pub closed_at: Option<DateTime<Utc>>,
}

/// Kind of every gate violation in the FAILED_PRECONDITION answer.
pub const GATE: &str = "handoff_gate";

/// Keeps the newest activated version of a team pair's contract.
pub async fn apply_contract<C: ConnectionTrait>(
    txn: &C,
    tenant: &TenantId,
    activated: &Contract,
) -> Result<(), DbErr> {
    let Some(terms) = &activated.terms else {
        return Ok(());
    };
    let (is_team, fs_team) = (terms.is_team.trim(), terms.fs_team.trim());
    let current =
        contract_replica::Entity::find_by_id((tenant.to_string(), is_team.into(), fs_team.into()))
            .one(txn)
            .await?;
    if current.is_some_and(|c| c.version >= activated.version) {
        return Ok(());
    }
    contract_replica::Entity::insert(contract_replica::ActiveModel {
        tenant_id: Set(tenant.to_string()),
        is_team: Set(is_team.to_owned()),
        fs_team: Set(fs_team.to_owned()),
        contract_id: Set(activated.contract_id.clone()),
        version: Set(activated.version),
        terms: Set(terms.encode_to_vec()),
        activated_at: Set(activated
            .activated_at
            .as_ref()
            .and_then(time::from_proto)
            .unwrap_or_else(time::now)),
    })
    .on_conflict(
        OnConflict::columns([
            contract_replica::Column::TenantId,
            contract_replica::Column::IsTeam,
            contract_replica::Column::FsTeam,
        ])
        .update_columns([
            contract_replica::Column::ContractId,
            contract_replica::Column::Version,
            contract_replica::Column::Terms,
            contract_replica::Column::ActivatedAt,
        ])
        .to_owned(),
    )
    .exec(txn)
    .await?;
    Ok(())
}

pub(super) fn terms_of(replica: &contract_replica::Model) -> ContractTerms {
    ContractTerms::decode(replica.terms.as_slice()).unwrap_or_default()
}

pub(super) async fn replica_of<C: ConnectionTrait>(
    db: &C,
    tenant: &TenantId,
    is_team: &str,
    fs_team: &str,
) -> Result<Option<contract_replica::Model>, DbErr> {
    contract_replica::Entity::find_by_id((tenant.to_string(), is_team.into(), fs_team.into()))
        .one(db)
        .await
}

pub(super) async fn steps_of<C: ConnectionTrait>(
    db: &C,
    handoff_id: &str,
) -> Result<Vec<handoff_step::Model>, DbErr> {
    handoff_step::Entity::find()
        .filter(handoff_step::Column::HandoffId.eq(handoff_id))
        .order_by_asc(handoff_step::Column::Seq)
        .all(db)
        .await
}

/// Stores a step and announces it.
pub(super) async fn log_step<C: ConnectionTrait>(
    txn: &C,
    tenant: &TenantId,
    h: &handoff::Model,
    action: &str,
    actor: &str,
    note: &str,
) -> Result<(), DbErr> {
    let step = handoff_step::ActiveModel {
        seq: NotSet,
        tenant_id: Set(tenant.to_string()),
        handoff_id: Set(h.handoff_id.clone()),
        action: Set(action.to_owned()),
        actor: Set(actor.to_owned()),
        note: Set(note.to_owned()),
        at: Set(time::now()),
    }
    .insert(txn)
    .await?;
    let event = HandoffChanged {
        handoff: Some(convert::handoff_to_proto(h, &[])),
        step: Some(convert::step_to_proto(&step)),
    };
    EventLog::append(txn, tenant, &h.lead_id, &event).await
}

fn gate_facts(new: &NewHandoff, bant: Bant, signal: Option<&lead_signal::Model>) -> HandoffFacts {
    HandoffFacts {
        has_meeting: new.meeting_at.is_some(),
        has_notes: !new.notes.is_empty(),
        has_fs_rep: !new.fs_rep_id.is_empty(),
        bant_confirmed: bant.confirmed().into_iter().collect(),
        score: signal.and_then(|s| s.score),
        rank: signal
            .and_then(|s| s.rank)
            .and_then(|r| Rank::try_from(r).ok()),
    }
}

pub(super) fn route_name(route: i32) -> &'static str {
    match RejectedLeadRoute::try_from(route) {
        Ok(RejectedLeadRoute::Nurture) => "nurture",
        _ => "inside_sales",
    }
}

/// FAILED_PRECONDITION when the lead already has an open handoff.
async fn ensure_no_open_handoff<C: ConnectionTrait>(
    txn: &C,
    tenant: &TenantId,
    lead_id: &str,
) -> Result<(), Error> {
    let open = handoff::Entity::find()
        .filter(handoff::Column::TenantId.eq(tenant.as_str()))
        .filter(handoff::Column::LeadId.eq(lead_id))
        .all(txn)
        .await?
        .into_iter()
        .find(|h| handoffs::is_open(HandoffState::try_from(h.state).unwrap_or_default()));
    if let Some(open) = open {
        return Err(Error::RuleBroken {
            rule: "one_open_handoff".into(),
            description: format!(
                "lead {} already has open handoff {}",
                lead_id, open.handoff_id
            ),
        });
    }
    Ok(())
}

/// The row of a new pending handoff, judged under `replica`'s contract (pure).
fn new_handoff_row(
    tenant: &TenantId,
    new: &NewHandoff,
    (bant, is_rep_id, signal): (Bant, &str, Option<&lead_signal::Model>),
    contract: Option<(&contract_replica::Model, DateTime<Utc>)>,
    now: DateTime<Utc>,
) -> handoff::ActiveModel {
    let (contract_id, contract_version, decision_due_at) = match contract {
        Some((replica, due)) => (replica.contract_id.clone(), replica.version, due),
        // Uncontracted: nothing is due.
        None => (String::new(), 0, now),
    };
    handoff::ActiveModel {
        seq: NotSet,
        handoff_id: Set(uuid::Uuid::now_v7().to_string()),
        tenant_id: Set(tenant.to_string()),
        request_id: Set(new.request_id.clone()),
        lead_id: Set(new.lead_id.clone()),
        is_team: Set(new.is_team.clone()),
        fs_team: Set(new.fs_team.clone()),
        fs_rep_id: Set(new.fs_rep_id.clone()),
        meeting_at: Set(new.meeting_at),
        bant_budget: Set(bant.budget),
        bant_authority: Set(bant.authority),
        bant_need: Set(bant.need),
        bant_timeframe: Set(bant.timeframe),
        notes: Set(new.notes.clone()),
        handed_off_by: Set(new.handed_off_by.clone()),
        state: Set(HandoffState::Pending as i32),
        contract_id: Set(contract_id),
        contract_version: Set(contract_version),
        decision_due_at: Set(decision_due_at),
        rejection_reason: Set(String::new()),
        rejected_lead_route: Set(String::new()),
        amount_currency: Set(None),
        amount_minor: Set(None),
        mrr_currency: Set(None),
        mrr_minor: Set(None),
        decision_left_seconds: Set(None),
        score_at_handoff: Set(signal.and_then(|s| s.score)),
        rank_at_handoff: Set(signal.and_then(|s| s.rank)),
        is_rep_id: Set(is_rep_id.to_owned()),
        closed_at: Set(None),
        lost_reason: Set(String::new()),
        created_at: Set(now),
        updated_at: Set(now),
    }
}

/// When FS must decide a handoff judged at `now`: the contract's decision SLA, on the clock or in
/// the FS owner's working hours (those of the rep with the owner's e-mail) if the contract says so.
pub(super) async fn decision_due<C: ConnectionTrait>(
    txn: &C,
    tenant: &TenantId,
    terms: &ContractTerms,
    now: DateTime<Utc>,
) -> Result<DateTime<Utc>, DbErr> {
    let hours = if terms.decision_sla_working_hours {
        rep::Entity::find()
            .filter(rep::Column::TenantId.eq(tenant.as_str()))
            .filter(rep::Column::EmailNormalized.eq(terms.fs_owner.trim().to_lowercase()))
            .one(txn)
            .await?
            .and_then(|r| {
                let a = r.attributes();
                WorkingHours::of(&a.time_zone, a.work_start_hour, a.work_end_hour)
            })
    } else {
        None
    };
    Ok(due_at(
        now,
        terms.decision_sla_hours.saturating_mul(60),
        hours,
    ))
}

/// The handoff an earlier call with the same request_id made (INVALID_ARGUMENT if it was for
/// another lead or pair).
async fn seen_request<C: ConnectionTrait>(
    txn: &C,
    tenant: &TenantId,
    new: &NewHandoff,
) -> Result<Option<Handoff>, Error> {
    let seen = handoff::Entity::find()
        .filter(handoff::Column::TenantId.eq(tenant.as_str()))
        .filter(handoff::Column::RequestId.eq(new.request_id.as_str()))
        .one(txn)
        .await?;
    let Some(seen) = seen else {
        return Ok(None);
    };
    if seen.lead_id != new.lead_id || seen.is_team != new.is_team || seen.fs_team != new.fs_team {
        return Err(Error::invalid(
            "request_id",
            "was already used for a different handoff",
        ));
    }
    let steps = steps_of(txn, &seen.handoff_id).await?;
    Ok(Some(convert::handoff_to_proto(&seen, &steps)))
}

/// The lead may be handed off by the IS team (known, not erased or merged away, assigned to a rep
/// of the team); returns its BANT as qualification recorded it, and the rep holding it.
async fn check_lead<C: ConnectionTrait>(
    txn: &C,
    tenant: &TenantId,
    new: &NewHandoff,
) -> Result<(Bant, String), Error> {
    let record = leads::record_of(txn, tenant, &new.lead_id).await?;
    let assignment = routing::open_assignment(txn, tenant, &new.lead_id).await?;
    let known = record.is_some()
        || assignment.is_some()
        || lead_signal::Entity::find_by_id((tenant.to_string(), new.lead_id.clone()))
            .one(txn)
            .await?
            .is_some();
    let standing = LeadStanding {
        known,
        erased: record.as_ref().is_some_and(|r| r.erased_at.is_some()),
        merged_into: record.as_ref().and_then(|r| r.merged_into.as_deref()),
        assigned_team: assignment
            .as_ref()
            .filter(|a| a.state == AssignmentState::Assigned as i32)
            .map(|a| a.team_id.as_str()),
    };
    match handoffs::may_hand_off(&new.lead_id, &new.is_team, &standing) {
        Ok(()) => Ok((
            Bant::from_bits(record.map_or(0, |r| r.bant)),
            assignment.and_then(|a| a.rep_id).unwrap_or_default(),
        )),
        Err(("not_found", _)) => Err(Error::not_found("lead", &new.lead_id)),
        Err((rule, description)) => Err(Error::RuleBroken {
            rule: rule.into(),
            description,
        }),
    }
}

/// The pair's contract in force now, or None when the tenant takes uncontracted handoffs;
/// FAILED_PRECONDITION "no_active_contract" otherwise.
async fn contract_in_force<C: ConnectionTrait>(
    txn: &C,
    tenant: &TenantId,
    new: &NewHandoff,
) -> Result<Option<(contract_replica::Model, ContractTerms)>, Error> {
    let now = time::now();
    let replica = replica_of(txn, tenant, &new.is_team, &new.fs_team).await?;
    let why = match replica {
        Some(replica) => {
            let terms = terms_of(&replica);
            if contract::in_force(&terms, now) {
                return Ok(Some((replica, terms)));
            }
            format!(
                "the contract of teams {} and {} (version {}) is not in force now: it covers {} to {}",
                new.is_team,
                new.fs_team,
                replica.version,
                period_bound(terms.period_start.as_ref().and_then(time::from_proto)),
                period_bound(terms.period_end.as_ref().and_then(time::from_proto)),
            )
        }
        None => format!(
            "teams {} and {} have no active contract; both owners must approve one first",
            new.is_team, new.fs_team
        ),
    };
    if leads::settings(txn, tenant).await?.allow_uncontracted {
        return Ok(None);
    }
    Err(Error::RuleBroken {
        rule: "no_active_contract".into(),
        description: why,
    })
}

fn period_bound(at: Option<DateTime<Utc>>) -> String {
    at.map_or_else(|| "(open)".to_owned(), |t| t.to_rfc3339())
}

impl Store {
    /// Judges a handoff against the pair's contract in force; stores it if it passes the gate, or
    /// only counts the refusal if it does not.
    pub async fn create_handoff(
        &self,
        tenant: &TenantId,
        new: &NewHandoff,
    ) -> Result<Handoff, Error> {
        let txn = self.db.begin().await?;
        if let Some(seen) = seen_request(&txn, tenant, new).await? {
            return Ok(seen);
        }
        let (bant, is_rep_id) = check_lead(&txn, tenant, new).await?;
        let contract = contract_in_force(&txn, tenant, new).await?;
        let signal = lead_signal::Entity::find_by_id((tenant.to_string(), new.lead_id.clone()))
            .one(&txn)
            .await?;
        if let Some((replica, terms)) = &contract {
            let failures = contract::check_gate(
                &terms.gate.clone().unwrap_or_default(),
                &gate_facts(new, bant, signal.as_ref()),
            );
            if !failures.is_empty() {
                txn.rollback().await?;
                self.count_refusal(tenant, replica).await?;
                return Err(Error::GateFailed {
                    kind: GATE,
                    items: failures
                        .into_iter()
                        .map(|f| (f.item, f.description))
                        .collect(),
                });
            }
        }
        ensure_no_open_handoff(&txn, tenant, &new.lead_id).await?;
        let now = time::now();
        let judged = match &contract {
            Some((r, t)) => Some((r, decision_due(&txn, tenant, t, now).await?)),
            None => None,
        };
        let held = (bant, is_rep_id.as_str(), signal.as_ref());
        let created = new_handoff_row(tenant, new, held, judged, now)
            .insert(&txn)
            .await?;
        log_step(
            &txn,
            tenant,
            &created,
            "created",
            &new.handed_off_by,
            &new.notes,
        )
        .await?;
        if let Some((_, terms)) = &contract {
            sla::start_decision(
                &txn,
                tenant,
                &created.handoff_id,
                &created.lead_id,
                &created.fs_rep_id,
                created.decision_due_at,
                terms,
            )
            .await?;
        }
        let steps = steps_of(&txn, &created.handoff_id).await?;
        txn.commit().await?;
        self.log.notify_committed();
        Ok(convert::handoff_to_proto(&created, &steps))
    }

    async fn count_refusal(
        &self,
        tenant: &TenantId,
        replica: &contract_replica::Model,
    ) -> Result<(), DbErr> {
        handoff_refusal::Entity::insert(handoff_refusal::ActiveModel {
            tenant_id: Set(tenant.to_string()),
            is_team: Set(replica.is_team.clone()),
            fs_team: Set(replica.fs_team.clone()),
            contract_version: Set(replica.version),
            refusals: Set(1),
            last_refused_at: Set(time::now()),
        })
        .on_conflict(
            OnConflict::columns([
                handoff_refusal::Column::TenantId,
                handoff_refusal::Column::IsTeam,
                handoff_refusal::Column::FsTeam,
                handoff_refusal::Column::ContractVersion,
            ])
            .value(
                handoff_refusal::Column::Refusals,
                sea_orm::sea_query::ExprTrait::add(
                    Expr::col((handoff_refusal::Entity, handoff_refusal::Column::Refusals)),
                    1,
                ),
            )
            .update_column(handoff_refusal::Column::LastRefusedAt)
            .to_owned(),
        )
        .exec(&self.db)
        .await?;
        Ok(())
    }

    /// Gate refusals of a team pair under its contract version.
    pub async fn refusals(
        &self,
        tenant: &TenantId,
        is_team: &str,
        fs_team: &str,
        version: i32,
    ) -> Result<i64, DbErr> {
        Ok(handoff_refusal::Entity::find_by_id((
            tenant.to_string(),
            is_team.to_owned(),
            fs_team.to_owned(),
            version,
        ))
        .one(&self.db)
        .await?
        .map_or(0, |r| r.refusals))
    }

    pub async fn get_handoff(&self, tenant: &TenantId, handoff_id: &str) -> Result<Handoff, Error> {
        let h = handoff::Entity::find()
            .filter(handoff::Column::TenantId.eq(tenant.as_str()))
            .filter(handoff::Column::HandoffId.eq(handoff_id))
            .one(&self.db)
            .await?
            .ok_or_else(|| Error::not_found("handoff", handoff_id))?;
        let steps = steps_of(&self.db, handoff_id).await?;
        Ok(convert::handoff_to_proto(&h, &steps))
    }
}
