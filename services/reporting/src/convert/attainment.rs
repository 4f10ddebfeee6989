//! Attainment to its proto message: every target judged on a period's numbers, in total and per
//! rep.

use baton_proto::reporting::v1::{
    self as pb, AttainmentStatus, ContractSide, GetAttainmentRequest, RepAttainment,
    TargetAttainment,
};
use baton_shared::time;
use chrono::{DateTime, Utc};

use crate::{
    domain::attainment::{self, Counts, Judged, Side, Status},
    error::Error,
    store::attainment::PeriodNumbers,
};

/// A GetAttainment request, checked.
#[derive(Debug, Clone)]
pub struct AttainmentQuery {
    pub contract_id: String,
    pub period_start: Option<DateTime<Utc>>,
    pub as_of: Option<DateTime<Utc>>,
    pub by_rep: bool,
}

pub fn attainment_query(req: &GetAttainmentRequest) -> Result<AttainmentQuery, Error> {
    let mut v = baton_shared::Violations::new();
    let contract_id = v.required(
        "contract_id",
        &req.contract_id,
        baton_shared::fields::MAX_ID_LEN,
    );
    let stamp = baton_shared::fields::optional_time;
    let period_start = stamp("period_start", req.period_start.as_ref(), &mut v);
    let as_of = stamp("as_of", req.as_of.as_ref(), &mut v);
    let mut by_rep = false;
    for (i, g) in req.group_by.iter().enumerate() {
        if g == "rep" {
            by_rep = true;
        } else {
            v.add(format!("group_by[{i}]"), "must be \"rep\"");
        }
    }
    v.into_result()?;
    Ok(AttainmentQuery {
        contract_id,
        period_start,
        as_of,
        by_rep,
    })
}

fn status(s: Status) -> AttainmentStatus {
    match s {
        Status::Met => AttainmentStatus::Met,
        Status::OnTrack => AttainmentStatus::OnTrack,
        Status::AtRisk => AttainmentStatus::AtRisk,
        Status::Missed => AttainmentStatus::Missed,
        Status::NoData => AttainmentStatus::NoData,
        Status::NoTarget => AttainmentStatus::NoTarget,
    }
}

fn side(s: Side) -> ContractSide {
    match s {
        Side::InsideSales => ContractSide::InsideSales,
        Side::FieldSales => ContractSide::FieldSales,
    }
}

fn target_to_proto(j: &Judged, currency: &str) -> TargetAttainment {
    TargetAttainment {
        target: j.target.name.to_owned(),
        side: side(j.target.side) as i32,
        target_value: j.target.value.unwrap_or(0.0),
        actual: j.actual,
        numerator: j.numerator,
        denominator: j.denominator,
        projected: j.projected,
        status: status(j.status) as i32,
        currency_code: if j.target.name == "won_amount" {
            currency.to_owned()
        } else {
            String::new()
        },
        definition: j.target.definition.to_owned(),
    }
}

/// Every target of `n`'s contract of `only` side (all when None), judged on `counts`.
fn judged(
    n: &PeriodNumbers,
    counts: &Counts,
    as_of: DateTime<Utc>,
    only: Option<Side>,
) -> Vec<TargetAttainment> {
    let currency = n
        .terms
        .is_targets
        .as_ref()
        .map(|t| t.currency_code.clone())
        .unwrap_or_default();
    attainment::targets(&n.terms)
        .into_iter()
        .filter(|t| only.is_none_or(|s| s == t.side))
        .map(|t| target_to_proto(&attainment::judge(t, counts, n.period, as_of), &currency))
        .collect()
}

/// Sums the counts of the reps `rep_of` picks (the IS rep or the FS rep of each row).
fn per_rep(
    n: &PeriodNumbers,
    rep_of: impl Fn(&(String, String, Counts)) -> &str,
) -> Vec<(String, Counts)> {
    let mut reps: Vec<(String, Counts)> = Vec::new();
    for row in &n.by_reps {
        let rep = rep_of(row);
        match reps.iter_mut().find(|(r, _)| r == rep) {
            Some((_, c)) => *c = c.plus(row.2),
            None => reps.push((rep.to_owned(), row.2)),
        }
    }
    reps.sort_by(|a, b| a.0.cmp(&b.0));
    reps
}

pub fn attainment_to_proto(
    n: &PeriodNumbers,
    as_of: DateTime<Utc>,
    by_rep: bool,
) -> pb::Attainment {
    let mut reps = Vec::new();
    if by_rep {
        for (rep, c) in per_rep(n, |r| r.0.as_str()) {
            reps.push(RepAttainment {
                rep,
                side: ContractSide::InsideSales as i32,
                targets: judged(n, &c, as_of, Some(Side::InsideSales)),
            });
        }
        for (rep, c) in per_rep(n, |r| r.1.as_str()) {
            reps.push(RepAttainment {
                rep,
                side: ContractSide::FieldSales as i32,
                targets: judged(n, &c, as_of, Some(Side::FieldSales)),
            });
        }
    }
    pb::Attainment {
        contract_id: n.contract.contract_id.clone(),
        contract_version: n.contract.version,
        period_start: Some(time::to_proto(n.period.start)),
        period_end: Some(time::to_proto(n.period.end)),
        as_of: Some(time::to_proto(as_of)),
        targets: judged(n, &n.totals, as_of, None),
        reps,
        human_breaches: n.totals.human_breaches,
        system_breaches: n.totals.system_breaches,
    }
}

/// A CloseScorecard request, checked: (contract id, period start).
pub fn close_query(req: &pb::CloseScorecardRequest) -> Result<(String, DateTime<Utc>), Error> {
    let mut v = baton_shared::Violations::new();
    let contract_id = v.required(
        "contract_id",
        &req.contract_id,
        baton_shared::fields::MAX_ID_LEN,
    );
    let start =
        baton_shared::fields::required_time("period_start", req.period_start.as_ref(), &mut v);
    v.into_result()?;
    Ok((contract_id, start.unwrap_or_default()))
}

fn approval(by: &str, at: Option<DateTime<Utc>>) -> Option<pb::Approval> {
    at.map(|at| pb::Approval {
        approver: by.to_owned(),
        approved_at: Some(time::to_proto(at)),
    })
}

pub fn scorecard_to_proto(
    (card, adjustments): &crate::store::scorecards::ScorecardView,
) -> pb::Scorecard {
    let signed = card.is_signed_at.is_some() && card.fs_signed_at.is_some();
    pb::Scorecard {
        scorecard_id: card.scorecard_id.clone(),
        contract_id: card.contract_id.clone(),
        contract_version: card.contract_version,
        period_start: Some(time::to_proto(card.period_start)),
        period_end: Some(time::to_proto(card.period_end)),
        status: if signed {
            pb::ScorecardStatus::Signed
        } else {
            pb::ScorecardStatus::Closed
        } as i32,
        attainment: prost::Message::decode(card.attainment.as_slice()).ok(),
        closed_at: Some(time::to_proto(card.closed_at)),
        closed_by: card.closed_by.clone(),
        is_signature: approval(&card.is_signed_by, card.is_signed_at),
        fs_signature: approval(&card.fs_signed_by, card.fs_signed_at),
        adjustments: adjustments.iter().map(adjustment_to_proto).collect(),
    }
}

fn adjustment_to_proto(
    a: &crate::store::entities::scorecard_adjustment::Model,
) -> pb::ScorecardAdjustment {
    let delta = crate::store::scorecards::delta_of(a);
    let targets = attainment::targets(&Default::default())
        .into_iter()
        .filter_map(|t| {
            let (n, d) = attainment::fraction(t.name, &delta);
            (n != 0 || d != 0).then(|| pb::AdjustedTarget {
                target: t.name.to_owned(),
                numerator_delta: n,
                denominator_delta: d,
            })
        })
        .collect();
    pb::ScorecardAdjustment {
        handoff_id: a.handoff_id.clone(),
        cause: a.cause.clone(),
        at: Some(time::to_proto(a.at)),
        counted_in: a.counted_in.map(time::to_proto),
        targets,
    }
}
