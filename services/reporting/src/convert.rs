//! Every conversion of reporting between its stored rows and its proto messages.

use baton_proto::reporting::v1::{
    self as pb, Approval, Contract, ContractTerms, KpiOwner, KpiPhase, KpiUnit,
};
use baton_shared::{Violations, fields, time};
use chrono::{DateTime, Utc};
use chrono_tz::Tz;
use prost::Message;

use crate::{
    domain::kpis::{self, Granularity, Kpi, Owner, Phase, Series, Unit},
    error::Error,
    store::entities::contract as row,
};

/// The terms stored with a contract version (encoded `ContractTerms`).
pub fn terms_of(r: &row::Model) -> ContractTerms {
    ContractTerms::decode(r.terms.as_slice()).unwrap_or_default()
}

pub fn contract_to_proto(r: &row::Model) -> Contract {
    let approval = |by: &str, at: Option<chrono::DateTime<chrono::Utc>>| {
        at.map(|at| Approval {
            approver: by.to_owned(),
            approved_at: Some(time::to_proto(at)),
        })
    };
    Contract {
        contract_id: r.contract_id.clone(),
        version: r.version,
        status: r.status,
        terms: Some(terms_of(r)),
        is_approval: approval(&r.is_approved_by, r.is_approved_at),
        fs_approval: approval(&r.fs_approved_by, r.fs_approved_at),
        created_by: r.created_by.clone(),
        created_at: Some(time::to_proto(r.created_at)),
        activated_at: r.activated_at.map(time::to_proto),
        superseded_at: r.superseded_at.map(time::to_proto),
    }
}

pub fn kpi_to_proto(k: &Kpi) -> pb::KpiDefinition {
    pb::KpiDefinition {
        key: k.key.to_owned(),
        name: k.name.to_owned(),
        definition: k.definition.to_owned(),
        unit: unit_to_proto(k.unit) as i32,
        numerator: k.numerator_words.to_owned(),
        denominator: k.denominator_words.to_owned(),
        phase: match k.phase {
            Phase::Acquisition => KpiPhase::Acquisition,
            Phase::AttitudeChange => KpiPhase::AttitudeChange,
            Phase::Opportunity => KpiPhase::Opportunity,
            Phase::Closing => KpiPhase::Closing,
        } as i32,
        owner: match k.owner {
            Owner::Marketing => KpiOwner::Marketing,
            Owner::InsideSales => KpiOwner::InsideSales,
            Owner::FieldSales => KpiOwner::FieldSales,
        } as i32,
        version: k.version,
        dimensions: kpis::DIMENSIONS.iter().map(|d| (*d).to_owned()).collect(),
    }
}

fn unit_to_proto(u: Unit) -> KpiUnit {
    match u {
        Unit::Count => KpiUnit::Count,
        Unit::Percent => KpiUnit::Percent,
        Unit::Seconds => KpiUnit::Seconds,
    }
}

/// A validated GetKpis request.
pub struct KpiQuery {
    pub kpis: Vec<Kpi>,
    pub start: DateTime<Utc>,
    pub end: DateTime<Utc>,
    pub granularity: Granularity,
    pub tz: Tz,
    pub group_by: Vec<String>,
    pub filters: Vec<(String, String)>,
}

fn dimensions_listed() -> String {
    kpis::DIMENSIONS.join(", ")
}

/// Every problem of a GetKpis request, each with its field (unknown KPIs and dimensions name the
/// valid ones).
pub fn kpi_query_from_proto(req: &pb::GetKpisRequest) -> Result<KpiQuery, Error> {
    let mut v = Violations::new();
    let catalogue = kpis::catalogue();
    if req.kpis.is_empty() {
        v.add("kpis", "name at least one KPI");
    }
    let mut chosen = Vec::new();
    for (i, key) in req.kpis.iter().enumerate() {
        match catalogue.iter().find(|k| k.key == key.trim()) {
            Some(k) => chosen.push(k.clone()),
            None => v.add(
                format!("kpis[{i}]"),
                format!(
                    "unknown KPI {key:?}; one of {}",
                    catalogue
                        .iter()
                        .map(|k| k.key)
                        .collect::<Vec<_>>()
                        .join(", ")
                ),
            ),
        }
    }
    let start = fields::required_time("start_time", req.start_time.as_ref(), &mut v);
    let end = fields::required_time("end_time", req.end_time.as_ref(), &mut v);
    if let (Some(s), Some(e)) = (start, end)
        && s >= e
    {
        v.add("end_time", "must be after start_time");
    }
    let granularity = match pb::Granularity::try_from(req.granularity) {
        Ok(pb::Granularity::Day) => Granularity::Day,
        Ok(pb::Granularity::Week) => Granularity::Week,
        Ok(pb::Granularity::Month) => Granularity::Month,
        Ok(pb::Granularity::Quarter) => Granularity::Quarter,
        Ok(pb::Granularity::Whole) => Granularity::Whole,
        _ => {
            v.add(
                "granularity",
                "DAY, WEEK, MONTH, QUARTER or WHOLE is required",
            );
            Granularity::Whole
        }
    };
    let tz = match req.time_zone.trim() {
        "" => Tz::UTC,
        name => name.parse::<Tz>().unwrap_or_else(|_| {
            v.add("time_zone", format!("{name:?} is not an IANA time zone"));
            Tz::UTC
        }),
    };
    let mut group_by = Vec::new();
    for (i, d) in req.group_by.iter().enumerate() {
        if kpis::DIMENSIONS.contains(&d.as_str()) {
            if !group_by.contains(d) {
                group_by.push(d.clone());
            }
        } else {
            v.add(
                format!("group_by[{i}]"),
                format!("unknown dimension {d:?}; one of {}", dimensions_listed()),
            );
        }
    }
    let mut filters: Vec<(String, String)> = Vec::new();
    for (d, value) in &req.filters {
        if kpis::DIMENSIONS.contains(&d.as_str()) {
            filters.push((d.clone(), value.clone()));
        } else {
            v.add(
                format!("filters.{d}"),
                format!("unknown dimension; one of {}", dimensions_listed()),
            );
        }
    }
    filters.sort();
    v.into_result()?;
    match (start, end) {
        (Some(start), Some(end)) => Ok(KpiQuery {
            kpis: chosen,
            start,
            end,
            granularity,
            tz,
            group_by,
            filters,
        }),
        _ => Err(Error::invalid("start_time", "is required")),
    }
}

pub fn series_to_proto(s: &Series, group_by: &[String]) -> pb::KpiSeries {
    pb::KpiSeries {
        kpi: s.kpi.key.to_owned(),
        group: group_by
            .iter()
            .cloned()
            .zip(s.group.iter().cloned())
            .collect(),
        unit: unit_to_proto(s.kpi.unit) as i32,
        version: s.kpi.version,
        points: s
            .points
            .iter()
            .map(|p| pb::KpiPoint {
                period_start: Some(time::to_proto(p.period.start)),
                period_end: Some(time::to_proto(p.period.end)),
                value: p.value,
                numerator: p.numerator,
                denominator: p.denominator,
            })
            .collect(),
    }
}
