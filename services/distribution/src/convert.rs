//! Every conversion between distribution's stored rows or domain types and its proto messages.

use baton_proto::distribution::v1 as pb;
use baton_shared::time;

use baton_proto::capture::v1::ActivityKind;
use baton_shared::Violations;

use crate::error::Error;
use crate::{
    domain::{routing::Considered, touches::TouchRules},
    store::entities::{assignment, rep, team, touch_ruleset},
};

pub fn rep_to_proto(rep: &rep::Model) -> pb::Rep {
    let a = rep.attributes();
    pb::Rep {
        rep_id: rep.rep_id.clone(),
        name: rep.name.clone(),
        email: rep.email.clone(),
        active: rep.active,
        created_at: Some(time::to_proto(rep.created_at)),
        routing: Some(pb::RepRouting {
            team_id: rep.team_id.clone(),
            territories: a.territories,
            industries: a.industries,
            seniority: a.seniority,
            capacity: rep.capacity,
            weight: Some(rep.weight),
            time_zone: a.time_zone,
            work_start_hour: a.work_start_hour,
            work_end_hour: a.work_end_hour,
            out_of_office: a
                .out_of_office
                .iter()
                .map(|(from, to)| pb::TimeRange {
                    from: Some(time::to_proto(*from)),
                    to: Some(time::to_proto(*to)),
                })
                .collect(),
        }),
        open_leads: rep.open_leads,
    }
}

pub fn assignment_to_proto(a: &assignment::Model) -> pb::Assignment {
    pb::Assignment {
        assignment_id: a.assignment_id.clone(),
        lead_id: a.lead_id.clone(),
        rep_id: a.rep_id.clone().unwrap_or_default(),
        state: a.state,
        method: a.method.clone(),
        created_at: Some(time::to_proto(a.created_at)),
        assigned_at: time::to_proto_opt(a.assigned_at),
        team_id: a.team_id.clone(),
        rule_key: a.rule_key.clone(),
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

pub fn touch_rules_to_proto(row: &touch_ruleset::Model, rules: &TouchRules) -> pb::TouchRules {
    pb::TouchRules {
        version: row.version,
        touch_kinds: rules.touch_kinds.iter().map(|k| *k as i32).collect(),
        updated_at: Some(time::to_proto(row.updated_at)),
    }
}

/// INVALID_ARGUMENT for a missing rule set or a number that is no activity kind; the rules
/// themselves are validated by the domain.
pub fn touch_rules_from_proto(raw: Option<&pb::TouchRules>) -> Result<TouchRules, Error> {
    let Some(raw) = raw else {
        return Err(Error::invalid("rules", "is required"));
    };
    let mut violations = Violations::new();
    let mut touch_kinds = Vec::with_capacity(raw.touch_kinds.len());
    for (i, value) in raw.touch_kinds.iter().enumerate() {
        match ActivityKind::try_from(*value) {
            Ok(kind) => touch_kinds.push(kind),
            Err(_) => violations.add(
                format!("rules.touch_kinds[{i}]"),
                format!("{value} is no activity kind"),
            ),
        }
    }
    violations.into_result()?;
    Ok(TouchRules { touch_kinds })
}
