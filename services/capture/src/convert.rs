//! Every conversion of capture between its proto messages and its domain types or stored rows:
//! requests into the domain's raw inputs, rows into the messages answers and events carry.

use std::collections::{BTreeMap, HashMap};

use baton_proto::capture::v1 as pb;
use baton_shared::time;
use sea_orm::DbErr;

use crate::{
    domain::{
        activity::CallFacts,
        lead::{CaptureInput, CompanyFields},
        profile::{AttributeValue, CompanyProfile, Consent, LeadProfile, Money, Person, Source},
        update::LeadPatch,
        visits::VisitCount,
    },
    store::{entities::activity, view::LeadView},
};

/// Proto custom attributes as domain values (`None` for an empty oneof or an impossible time).
pub fn attributes_from_proto(
    map: &HashMap<String, pb::AttributeValue>,
) -> Vec<(String, Option<AttributeValue>)> {
    use pb::attribute_value::Value;
    map.iter()
        .map(|(k, v)| {
            let value = v.value.as_ref().and_then(|value| match value {
                Value::StringValue(s) => Some(AttributeValue::String(s.clone())),
                Value::IntValue(i) => Some(AttributeValue::Int(*i)),
                Value::DoubleValue(d) => Some(AttributeValue::Double(*d)),
                Value::BoolValue(b) => Some(AttributeValue::Bool(*b)),
                Value::TimeValue(t) => time::from_caller(t).map(AttributeValue::Time),
            });
            (k.clone(), value)
        })
        .collect()
}

pub fn company_fields(c: &pb::Company) -> CompanyFields {
    CompanyFields {
        name: c.name.clone(),
        web_domain: c.web_domain.clone(),
        industry: c.industry.clone(),
        employees: c.employees,
        annual_revenue: c
            .annual_revenue
            .as_ref()
            .map(|m| (m.currency_code.clone(), m.amount_minor)),
        country: c.country.clone(),
        region: c.region.clone(),
    }
}

fn consent_of(c: &pb::Consent) -> Consent {
    Consent {
        email_opt_in: c.email_opt_in,
        unsubscribed: c.unsubscribed,
        do_not_contact: c.do_not_contact,
    }
}

/// A CaptureLead request (or an import row) as the domain's raw input.
pub fn capture_input(req: &pb::CaptureLeadRequest) -> CaptureInput {
    let source = req.source.clone().unwrap_or_default();
    CaptureInput {
        request_id: req.request_id.clone(),
        email: req.email.clone(),
        captured_at: req.captured_at.as_ref().map(time::from_proto),
        person: Person {
            first_name: req.first_name.clone(),
            last_name: req.last_name.clone(),
            phone: req.phone.clone(),
            title: req.title.clone(),
            role: req.role.clone(),
            department: req.department.clone(),
        },
        company: req.company.as_ref().map(company_fields),
        company_name: req.company_name.clone(),
        consent: req.consent.as_ref().map(consent_of),
        custom_attributes: attributes_from_proto(&req.custom_attributes),
        source: Source {
            channel: source.channel,
            campaign: source.campaign,
            lead_magnet: source.lead_magnet,
            funnel_position: source.funnel_position,
            utm_source: source.utm_source,
            utm_medium: source.utm_medium,
            utm_campaign: source.utm_campaign,
            utm_term: source.utm_term,
            utm_content: source.utm_content,
        },
    }
}

/// The values of an UpdateLead's `lead`, as the domain's patch.
pub fn lead_patch(patch: &pb::Lead) -> LeadPatch {
    LeadPatch {
        person: Person {
            first_name: patch.first_name.clone(),
            last_name: patch.last_name.clone(),
            phone: patch.phone.clone(),
            title: patch.title.clone(),
            role: patch.role.clone(),
            department: patch.department.clone(),
        },
        company: patch.company.as_ref().map(company_fields),
        consent: patch.consent.as_ref().map(consent_of).unwrap_or_default(),
        custom_attributes: attributes_from_proto(&patch.custom_attributes),
    }
}

fn attributes_of(json: &str) -> Result<BTreeMap<String, AttributeValue>, DbErr> {
    serde_json::from_str(json).map_err(|e| DbErr::Custom(format!("stored custom attributes: {e}")))
}

/// The domain profile stored on a lead.
pub fn profile_of(view: &LeadView) -> Result<LeadProfile, DbErr> {
    let l = &view.lead;
    Ok(LeadProfile {
        first_name: l.first_name.clone(),
        last_name: l.last_name.clone(),
        phone: l.phone.clone(),
        title: l.title.clone(),
        role: l.role.clone(),
        department: l.department.clone(),
        company: view.company.as_ref().map(|c| CompanyProfile {
            name: c.name.clone(),
            web_domain: c.web_domain.clone().unwrap_or_default(),
            industry: c.industry.clone(),
            employees: c.employees,
            annual_revenue: c.revenue_currency.clone().zip(c.revenue_minor).map(
                |(currency_code, amount_minor)| Money {
                    currency_code,
                    amount_minor,
                },
            ),
            country: c.country.clone(),
            region: c.region.clone(),
        }),
        consent: Consent {
            email_opt_in: l.consent_email_opt_in,
            unsubscribed: l.consent_unsubscribed,
            do_not_contact: l.consent_do_not_contact,
        },
        custom_attributes: attributes_of(&l.custom_attributes)?,
    })
}

fn attribute_to_proto(v: &AttributeValue) -> pb::AttributeValue {
    use pb::attribute_value::Value;
    let value = match v {
        AttributeValue::String(s) => Value::StringValue(s.clone()),
        AttributeValue::Int(i) => Value::IntValue(*i),
        AttributeValue::Double(d) => Value::DoubleValue(*d),
        AttributeValue::Bool(b) => Value::BoolValue(*b),
        AttributeValue::Time(t) => Value::TimeValue(time::to_proto(*t)),
    };
    pb::AttributeValue { value: Some(value) }
}

pub fn lead_to_proto(view: &LeadView) -> pb::Lead {
    let l = &view.lead;
    // Stored attributes were validated on the way in; an unreadable value is shown as absent.
    let attributes: HashMap<String, pb::AttributeValue> = attributes_of(&l.custom_attributes)
        .unwrap_or_default()
        .iter()
        .map(|(k, v)| (k.clone(), attribute_to_proto(v)))
        .collect();
    pb::Lead {
        lead_id: l.lead_id.clone(),
        email: l.email.clone(),
        first_name: l.first_name.clone(),
        last_name: l.last_name.clone(),
        company_name: l.company_name.clone(),
        source: Some(pb::LeadSource {
            channel: l.source_channel.clone(),
            campaign: l.source_campaign.clone(),
            lead_magnet: l.source_lead_magnet.clone(),
            funnel_position: l.source_funnel_position,
            utm_source: l.utm_source.clone(),
            utm_medium: l.utm_medium.clone(),
            utm_campaign: l.utm_campaign.clone(),
            utm_term: l.utm_term.clone(),
            utm_content: l.utm_content.clone(),
        }),
        captured_at: Some(time::to_proto(l.captured_at)),
        created_at: Some(time::to_proto(l.created_at)),
        phone: l.phone.clone(),
        title: l.title.clone(),
        role: l.role.clone(),
        department: l.department.clone(),
        company: view.company.as_ref().map(|c| pb::Company {
            company_id: c.company_id.clone(),
            name: c.name.clone(),
            web_domain: c.web_domain.clone().unwrap_or_default(),
            industry: c.industry.clone(),
            employees: c.employees,
            annual_revenue: c.revenue_currency.clone().zip(c.revenue_minor).map(
                |(currency_code, amount_minor)| pb::Money {
                    currency_code,
                    amount_minor,
                },
            ),
            country: c.country.clone(),
            region: c.region.clone(),
        }),
        consent: Some(pb::Consent {
            email_opt_in: l.consent_email_opt_in,
            unsubscribed: l.consent_unsubscribed,
            do_not_contact: l.consent_do_not_contact,
        }),
        custom_attributes: attributes,
        updated_at: time::to_proto_opt(l.updated_at),
        erased_at: time::to_proto_opt(l.erased_at),
        merged_lead_ids: view.merged_ids.clone(),
    }
}

pub fn activity_to_proto(a: &activity::Model) -> pb::Activity {
    let call =
        (a.call_outcome != 0 || a.call_duration_seconds != 0 || a.call_reached_target_department)
            .then_some(pb::CallDetails {
                outcome: a.call_outcome,
                duration_seconds: a.call_duration_seconds,
                reached_target_department: a.call_reached_target_department,
            });
    pb::Activity {
        activity_id: a.activity_id.clone(),
        lead_id: a.lead_id.clone(),
        kind: a.kind,
        occurred_at: Some(time::to_proto(a.occurred_at)),
        url: a.url.clone(),
        page_kind: a.page_kind,
        call,
        subject: a.subject.clone(),
        performed_by: a.performed_by.clone(),
        machine_generated: a.machine_reason.is_some(),
        machine_reason: a.machine_reason.clone().unwrap_or_default(),
    }
}

/// The scrubbed form of a past event's payload, for the events that carry personal data.
pub fn scrub_event_payload(type_url: &str, payload: &[u8]) -> Option<Vec<u8>> {
    use prost::{Message, Name};
    if type_url == pb::LeadCaptured::type_url() {
        // A payload that does not decode cannot be scrubbed field by field: blank it whole rather
        // than leave personal data behind.
        let Ok(mut e) = pb::LeadCaptured::decode(payload) else {
            return Some(Vec::new());
        };
        e.email.clear();
        if let Some(lead) = e.lead.as_mut() {
            scrub_lead(lead);
        }
        Some(e.encode_to_vec())
    } else if type_url == pb::LeadUpdated::type_url() {
        let Ok(mut e) = pb::LeadUpdated::decode(payload) else {
            return Some(Vec::new());
        };
        if let Some(lead) = e.lead.as_mut() {
            scrub_lead(lead);
        }
        Some(e.encode_to_vec())
    } else if type_url == pb::ActivityRecorded::type_url() {
        let Ok(mut e) = pb::ActivityRecorded::decode(payload) else {
            return Some(Vec::new());
        };
        if let Some(a) = e.activity.as_mut() {
            a.url.clear();
            a.subject.clear();
        }
        Some(e.encode_to_vec())
    } else {
        None
    }
}

/// A lead message with every personal field emptied (for erasure of past events).
pub fn scrub_lead(lead: &mut pb::Lead) {
    lead.email.clear();
    lead.first_name.clear();
    lead.last_name.clear();
    lead.phone.clear();
    lead.title.clear();
    lead.role.clear();
    lead.department.clear();
    lead.custom_attributes.clear();
}

pub fn call_facts(c: pb::CallDetails) -> CallFacts {
    CallFacts {
        outcome: c.outcome,
        duration_seconds: c.duration_seconds,
        reached_target_department: c.reached_target_department,
    }
}

/// The event of a stored visit count.
pub fn visits_recorded(v: &VisitCount) -> pb::VisitsRecorded {
    pb::VisitsRecorded {
        channel: v.channel.clone(),
        campaign: v.campaign.clone(),
        day: v.day.clone(),
        visitors: v.visitors,
    }
}

#[cfg(test)]
mod tests {
    use prost::{Message, Name};

    use super::*;

    #[test]
    fn scrubbing_removes_personal_fields_and_blanks_what_does_not_decode() {
        let lead = pb::Lead {
            email: "a@x.com".into(),
            first_name: "Aiko".into(),
            lead_id: "l1".into(),
            ..Default::default()
        };
        let event = pb::LeadCaptured {
            lead_id: "l1".into(),
            email: "a@x.com".into(),
            lead: Some(lead),
            ..Default::default()
        };
        let scrubbed =
            scrub_event_payload(&pb::LeadCaptured::type_url(), &event.encode_to_vec()).unwrap();
        let back = pb::LeadCaptured::decode(scrubbed.as_slice()).unwrap();
        assert_eq!((back.email.as_str(), back.lead_id.as_str()), ("", "l1"));
        assert_eq!(back.lead.unwrap().first_name, "");
        assert_eq!(
            scrub_event_payload(&pb::LeadCaptured::type_url(), b"\xff\xff"),
            Some(Vec::new())
        );
        assert_eq!(scrub_event_payload("type.googleapis.com/other", b"x"), None);
    }
}
