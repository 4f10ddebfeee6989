//! Enrolments: who is in which sequence version, where it stands and why it ended. Each change
//! appends its event (LeadEnrolled, EnrollmentEnded) in the same transaction.

use baton_proto::nurture::v1::{
    EnrollmentEnded, EnrollmentState, ExitReason, LeadEnrolled, SequenceState,
};
use baton_shared::{
    TenantId,
    events::EventLog,
    paging::{Page, fetch_page},
    time,
};
use std::sync::Arc;

use chrono::{DateTime, Utc};
use sea_orm::{
    ActiveModelTrait, ActiveValue::NotSet, ConnectionTrait, DbErr, EntityTrait, QueryFilter,
    QueryOrder, Set, TransactionTrait, prelude::*,
};

use super::{
    Store,
    entities::{enrollment, sequence},
    leads, segments, sequences,
    settings::current as current_settings,
};
use crate::{
    convert::enrollment_to_proto,
    domain::definition::{Definition, ReEnrollment, Trigger},
    error::Error,
};

/// Why a lead was not enrolled: (rule, description).
pub type Refusal = (&'static str, String);

/// How an enrolment comes about.
pub struct Enrolment<'a> {
    pub lead_id: &'a str,
    pub sequence: &'a sequence::Model,
    pub definition: &'a Definition,
    pub enrolled_by: &'a str,
    /// When its first step falls due (now, or after a recycling cool-down).
    pub first_due: DateTime<Utc>,
    pub request_id: Option<&'a str>,
}

/// Enrols a lead, unless a rule forbids it (erased, merged away, the re-enrolment policy, the
/// per-lead limit of active enrolments).
pub async fn enroll<C: ConnectionTrait>(
    txn: &C,
    tenant: &TenantId,
    e: &Enrolment<'_>,
) -> Result<Result<enrollment::Model, Refusal>, DbErr> {
    let lead = leads::ensure(txn, tenant.as_str(), e.lead_id).await?;
    if lead.erased {
        return Ok(Err((
            "lead_erased",
            format!("lead {} was erased", e.lead_id),
        )));
    }
    if let Some(survivor) = &lead.merged_into {
        return Ok(Err((
            "lead_merged",
            format!("lead {} was merged into {survivor}", e.lead_id),
        )));
    }
    let filter = &e.definition.enrollment.segment_key;
    if !filter.is_empty() && e.definition.enrollment.trigger != Trigger::SegmentEntered {
        let member = match segments::current(txn, tenant.as_str(), filter).await? {
            Some((_, def)) => segments::is_member(txn, tenant.as_str(), &lead, &def).await?,
            None => false,
        };
        if !member {
            return Ok(Err((
                "not_in_segment",
                format!("lead {} is not in segment {filter:?}", e.lead_id),
            )));
        }
    }
    let mine = enrollment::Entity::find()
        .filter(enrollment::Column::TenantId.eq(tenant.as_str()))
        .filter(enrollment::Column::LeadId.eq(e.lead_id))
        .all(txn)
        .await?;
    let active = EnrollmentState::Active as i32;
    let same = mine
        .iter()
        .filter(|m| m.sequence_key == e.sequence.key)
        .filter(|m| {
            e.definition.enrollment.re_enrollment == ReEnrollment::Never || m.state == active
        })
        .count();
    if same > 0 {
        return Ok(Err((
            "already_enrolled",
            format!(
                "lead {} is or was in sequence {:?} (re-enrolment {:?})",
                e.lead_id, e.sequence.key, e.definition.enrollment.re_enrollment
            ),
        )));
    }
    let limit = current_settings(txn, tenant.as_str())
        .await?
        .settings
        .max_active_enrollments as usize;
    if mine.iter().filter(|m| m.state == active).count() >= limit {
        return Ok(Err((
            "too_many_active",
            format!("lead {} has {limit} active enrolments already", e.lead_id),
        )));
    }
    let now = time::now();
    let row = enrollment::ActiveModel {
        seq: NotSet,
        enrollment_id: Set(uuid::Uuid::now_v7().to_string()),
        tenant_id: Set(tenant.to_string()),
        lead_id: Set(e.lead_id.to_owned()),
        sequence_id: Set(e.sequence.sequence_id.clone()),
        sequence_key: Set(e.sequence.key.clone()),
        sequence_version: Set(e.sequence.version),
        state: Set(active),
        next_step: Set(0),
        next_step_due_at: Set(Some(e.first_due)),
        wake_at: Set(None),
        waits_on_branch: Set(false),
        lease_until: Set(None),
        enrolled_at: Set(now),
        enrolled_by: Set(e.enrolled_by.to_owned()),
        request_id: Set(e.request_id.map(str::to_owned)),
        exit_reason: Set(ExitReason::Unspecified as i32),
        ended_at: Set(None),
        last_sent_touch_id: Set(None),
        last_sent_at: Set(None),
        attempts: Set(0),
        updated_at: Set(now),
    }
    .insert(txn)
    .await?;
    let event = LeadEnrolled {
        enrollment: Some(enrollment_to_proto(&row, e.definition)),
    };
    EventLog::append(txn, tenant, e.lead_id, &event).await?;
    Ok(Ok(row))
}

/// Enrols the lead in every active sequence of `trigger` (refusals are logged, not errors: an
/// automatic enrolment that a rule forbids simply does not happen). `only` names the lead
/// magnet (TRIGGER_LEAD_MAGNET) or the segment (TRIGGER_SEGMENT_ENTERED) the sequence must name.
pub async fn enroll_by_trigger<C: ConnectionTrait>(
    txn: &C,
    tenant: &TenantId,
    lead_id: &str,
    trigger: &str,
    first_due: DateTime<Utc>,
    only: Option<&str>,
) -> Result<(), DbErr> {
    for (seq, def) in sequences::active_for_trigger(txn, tenant.as_str(), trigger).await? {
        let named = if trigger == Trigger::SegmentEntered.as_str() {
            &def.enrollment.segment_key
        } else {
            &def.enrollment.lead_magnet
        };
        if only.is_some_and(|o| o != named) {
            continue;
        }
        let e = Enrolment {
            lead_id,
            sequence: &seq,
            definition: &def,
            enrolled_by: trigger,
            first_due,
            request_id: None,
        };
        if let Err((rule, why)) = enroll(txn, tenant, &e).await? {
            tracing::debug!(%tenant, lead_id, sequence = %seq.key, rule, "not enrolled: {why}");
        }
    }
    Ok(())
}

/// Enrols the lead in the sequences watching each segment it is in now and was not in `before`.
pub async fn enroll_entered<C: ConnectionTrait>(
    db: &C,
    tenant: &TenantId,
    lead_id: &str,
    before: &[(String, bool)],
) -> Result<(), DbErr> {
    if before.is_empty() {
        return Ok(());
    }
    let after = segments::memberships(db, tenant.as_str(), lead_id).await?;
    for (key, now_in) in after {
        let was_in = before.iter().any(|(k, m)| *k == key && *m);
        if now_in && !was_in {
            enroll_by_trigger(
                db,
                tenant,
                lead_id,
                Trigger::SegmentEntered.as_str(),
                time::now(),
                Some(&key),
            )
            .await?;
        }
    }
    Ok(())
}

/// Ends an enrolment (completed, or exited for `reason`), with `EnrollmentEnded`.
pub async fn end<C: ConnectionTrait>(
    txn: &C,
    e: enrollment::Model,
    state: EnrollmentState,
    reason: ExitReason,
) -> Result<enrollment::Model, DbErr> {
    let tenant = TenantId::new(e.tenant_id.clone());
    let now = time::now();
    let mut row: enrollment::ActiveModel = e.into();
    row.state = Set(state as i32);
    row.exit_reason = Set(reason as i32);
    row.ended_at = Set(Some(now));
    row.next_step_due_at = Set(None);
    row.wake_at = Set(None);
    row.lease_until = Set(None);
    row.updated_at = Set(now);
    let row = row.update(txn).await?;
    let def = match sequences::by_id(txn, &row.sequence_id).await? {
        Some((_, def)) => def,
        None => return Err(DbErr::RecordNotFound(row.sequence_id.clone())),
    };
    let event = EnrollmentEnded {
        enrollment: Some(enrollment_to_proto(&row, &def)),
    };
    EventLog::append(txn, &tenant, &row.lead_id, &event).await?;
    Ok(row)
}

/// Appends `EnrollmentEnded` for enrolments already ended (in the same transaction), in order,
/// one statement per tenant.
pub async fn announce_ended<C: ConnectionTrait>(
    txn: &C,
    ended: &[(enrollment::Model, Arc<Definition>)],
) -> Result<(), DbErr> {
    let span = tracing::Span::current();
    let mut by_tenant: Vec<(&str, Vec<(&str, EnrollmentEnded)>)> = Vec::new();
    for (row, def) in ended {
        let event = EnrollmentEnded {
            enrollment: Some(enrollment_to_proto(row, def)),
        };
        match by_tenant.iter_mut().find(|(t, _)| *t == row.tenant_id) {
            Some((_, events)) => events.push((&row.lead_id, event)),
            None => by_tenant.push((&row.tenant_id, vec![(&row.lead_id, event)])),
        }
    }
    for (tenant, events) in by_tenant {
        let refs: Vec<_> = events.iter().map(|(lead, e)| (*lead, e, &span)).collect();
        EventLog::append_many(txn, &TenantId::new(tenant.to_owned()), &refs).await?;
    }
    Ok(())
}

async fn active_of<C: ConnectionTrait>(
    txn: &C,
    tenant: &str,
    lead_id: &str,
) -> Result<Vec<enrollment::Model>, DbErr> {
    enrollment::Entity::find()
        .filter(enrollment::Column::TenantId.eq(tenant))
        .filter(enrollment::Column::LeadId.eq(lead_id))
        .filter(enrollment::Column::State.eq(EnrollmentState::Active as i32))
        .order_by_asc(enrollment::Column::Seq)
        .all(txn)
        .await
}

/// Ends every active enrolment of a lead for `reason` (unsubscribed, do not contact, bounced,
/// erased), or only those `enrolled_by` one trigger.
pub async fn exit_lead<C: ConnectionTrait>(
    txn: &C,
    tenant: &str,
    lead_id: &str,
    reason: ExitReason,
    enrolled_by: Option<&str>,
) -> Result<u64, DbErr> {
    let mut n = 0;
    for e in active_of(txn, tenant, lead_id).await? {
        if enrolled_by.is_some_and(|by| by != e.enrolled_by) {
            continue;
        }
        end(txn, e, EnrollmentState::Exited, reason).await?;
        n += 1;
    }
    Ok(n)
}

/// A merged-away lead's active enrolments move to the survivor, unless the survivor is in the
/// same sequence already: then the duplicate's ends (MERGED). A person is nurtured once.
pub async fn move_to_survivor<C: ConnectionTrait>(
    txn: &C,
    tenant: &str,
    merged_id: &str,
    survivor_id: &str,
) -> Result<(), DbErr> {
    let kept = active_of(txn, tenant, survivor_id).await?;
    for e in active_of(txn, tenant, merged_id).await? {
        if kept.iter().any(|k| k.sequence_key == e.sequence_key) {
            end(txn, e, EnrollmentState::Exited, ExitReason::Merged).await?;
        } else {
            let mut row: enrollment::ActiveModel = e.into();
            row.lead_id = Set(survivor_id.to_owned());
            row.updated_at = Set(time::now());
            row.update(txn).await?;
        }
    }
    Ok(())
}

/// Something a lead's enrolments wait on happened: the scheduler looks at their goals and
/// branches now instead of when their next step is due.
pub async fn wake_lead<C: ConnectionTrait>(
    txn: &C,
    tenant: &str,
    lead_id: &str,
) -> Result<(), DbErr> {
    enrollment::Entity::update_many()
        .col_expr(enrollment::Column::WakeAt, Expr::value(Some(time::now())))
        .filter(enrollment::Column::TenantId.eq(tenant))
        .filter(enrollment::Column::LeadId.eq(lead_id))
        .filter(enrollment::Column::State.eq(EnrollmentState::Active as i32))
        .exec(txn)
        .await?;
    Ok(())
}

/// [`wake_lead`] for several leads of one tenant at once.
pub async fn wake_leads<C: ConnectionTrait>(
    txn: &C,
    tenant: &str,
    lead_ids: &[&str],
) -> Result<(), DbErr> {
    enrollment::Entity::update_many()
        .col_expr(enrollment::Column::WakeAt, Expr::value(Some(time::now())))
        .filter(enrollment::Column::TenantId.eq(tenant))
        .filter(enrollment::Column::LeadId.is_in(lead_ids.iter().copied()))
        .filter(enrollment::Column::State.eq(EnrollmentState::Active as i32))
        .exec(txn)
        .await?;
    Ok(())
}

pub async fn find<C: ConnectionTrait>(
    db: &C,
    tenant: &str,
    enrollment_id: &str,
) -> Result<Option<enrollment::Model>, DbErr> {
    enrollment::Entity::find()
        .filter(enrollment::Column::TenantId.eq(tenant))
        .filter(enrollment::Column::EnrollmentId.eq(enrollment_id))
        .one(db)
        .await
}

impl Store {
    /// Enroll: idempotent on `request_id`.
    pub async fn enroll(
        &self,
        tenant: &TenantId,
        request_id: &str,
        lead_id: &str,
        key: &str,
    ) -> Result<(enrollment::Model, Definition), Error> {
        let txn = self.db.begin().await?;
        let seen = enrollment::Entity::find()
            .filter(enrollment::Column::TenantId.eq(tenant.as_str()))
            .filter(enrollment::Column::RequestId.eq(request_id))
            .one(&txn)
            .await?;
        if let Some(seen) = seen {
            if seen.lead_id != lead_id || seen.sequence_key != key {
                return Err(baton_shared::ApiError::invalid(
                    "request_id",
                    "was already used for another enrolment",
                )
                .into());
            }
            let (_, def) = sequences::by_id(&txn, &seen.sequence_id)
                .await?
                .ok_or_else(|| Error::not_found("sequence", key))?;
            return Ok((seen, def));
        }
        sequences::seed_defaults(&txn, tenant.as_str()).await?;
        let seq = sequences::current(&txn, tenant.as_str(), key)
            .await?
            .ok_or_else(|| Error::not_found("sequence", key))?;
        if seq.state != SequenceState::Active as i32 {
            return Err(Error::rule(
                "sequence_not_active",
                format!("sequence {key:?} is not active"),
            ));
        }
        if leads::find(&txn, tenant.as_str(), lead_id).await?.is_none() {
            return Err(Error::not_found("lead", lead_id));
        }
        let def = sequences::parse(&seq)?;
        let e = Enrolment {
            lead_id,
            sequence: &seq,
            definition: &def,
            enrolled_by: "manual",
            first_due: time::now(),
            request_id: Some(request_id),
        };
        let row = enroll(&txn, tenant, &e)
            .await?
            .map_err(|(rule, why)| Error::rule(rule, why))?;
        txn.commit().await?;
        self.log.notify_committed();
        Ok((row, def))
    }

    pub async fn exit_enrollment(
        &self,
        tenant: &TenantId,
        enrollment_id: &str,
    ) -> Result<(enrollment::Model, Definition), Error> {
        let txn = self.db.begin().await?;
        let e = find(&txn, tenant.as_str(), enrollment_id)
            .await?
            .ok_or_else(|| Error::not_found("enrollment", enrollment_id))?;
        if e.state != EnrollmentState::Active as i32 {
            return Err(Error::rule(
                "active_only",
                format!("enrollment {enrollment_id} has ended"),
            ));
        }
        let row = end(&txn, e, EnrollmentState::Exited, ExitReason::Manual).await?;
        let (_, def) = sequences::by_id(&txn, &row.sequence_id)
            .await?
            .ok_or_else(|| Error::not_found("sequence", row.sequence_key.clone()))?;
        txn.commit().await?;
        self.log.notify_committed();
        Ok((row, def))
    }

    pub async fn list_enrollments(
        &self,
        tenant: &TenantId,
        page: Page,
        lead_id: Option<&str>,
        key: Option<&str>,
    ) -> Result<(Vec<(enrollment::Model, Definition)>, String), Error> {
        let mut query =
            enrollment::Entity::find().filter(enrollment::Column::TenantId.eq(tenant.as_str()));
        if let Some(lead_id) = lead_id {
            query = query.filter(enrollment::Column::LeadId.eq(lead_id));
        }
        if let Some(key) = key {
            query = query.filter(enrollment::Column::SequenceKey.eq(key));
        }
        let (rows, next) =
            fetch_page(query, enrollment::Column::Seq, |e| e.seq, page, &self.db).await?;
        let mut out = Vec::with_capacity(rows.len());
        for row in rows {
            let (_, def) = sequences::by_id(&self.db, &row.sequence_id)
                .await?
                .ok_or_else(|| DbErr::RecordNotFound(row.sequence_id.clone()))?;
            out.push((row, def));
        }
        Ok((out, next))
    }
}
