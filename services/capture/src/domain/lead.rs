//! Leads: who they are, how they are identified (normalised e-mail), what a valid capture is.

use baton_proto::capture::v1 as pb;
use baton_shared::{Violations, time};
use chrono::{DateTime, Utc};

use super::profile::{self, CompanyInput, Consent, LeadProfile, Source};

const MAX_EMAIL_LEN: usize = 254;
use baton_shared::fields::MAX_ID_LEN as MAX_KEY_LEN;

/// A validated capture request.
#[derive(Debug, Clone, PartialEq)]
pub struct NewLead {
    pub request_id: String,
    pub email: String,
    pub email_normalized: String,
    pub profile: LeadProfile,
    pub source: Source,
    pub captured_at: DateTime<Utc>,
    /// Canonical form of what the caller sent, to detect a request_id reused for another payload.
    pub fingerprint: String,
}

/// The identity of a lead within a tenant: the e-mail trimmed and lower-cased.
pub fn normalize_email(email: &str) -> String {
    email.trim().to_lowercase()
}

/// A deliberately permissive syntax check: one `@`, a non-empty local part, a dotted domain, no spaces.
pub fn is_plausible_email(normalized: &str) -> bool {
    let Some((local, domain)) = normalized.split_once('@') else {
        return false;
    };
    !local.is_empty()
        && !domain.contains('@')
        && domain.contains('.')
        && !domain.starts_with('.')
        && !domain.ends_with('.')
        && !normalized.chars().any(char::is_whitespace)
}

/// Validates an idempotency key (request_id, idempotency_key): 1-128 characters.
pub fn check_key(field: &str, key: &str, violations: &mut Violations) {
    if key.trim().is_empty() {
        violations.add(field, "is required");
    } else if key.len() > MAX_KEY_LEN {
        violations.add(field, format!("must be at most {MAX_KEY_LEN} bytes"));
    }
}

/// Validates an e-mail address; returns its normalised form.
pub fn check_email(field: &str, email: &str, violations: &mut Violations) -> String {
    let normalized = normalize_email(email);
    if normalized.is_empty() {
        violations.add(field, "is required");
    } else if normalized.len() > MAX_EMAIL_LEN {
        violations.add(field, format!("must be at most {MAX_EMAIL_LEN} bytes"));
    } else if !is_plausible_email(&normalized) {
        violations.add(field, "is not an e-mail address");
    }
    normalized
}

/// Converts proto custom attributes to domain values (`None` for an empty oneof).
pub fn attributes_from_proto(
    map: &std::collections::HashMap<String, pb::AttributeValue>,
) -> Vec<(String, Option<profile::AttributeValue>)> {
    use pb::attribute_value::Value;
    map.iter()
        .map(|(k, v)| {
            let value = v.value.as_ref().and_then(|value| match value {
                Value::StringValue(s) => Some(profile::AttributeValue::String(s.clone())),
                Value::IntValue(i) => Some(profile::AttributeValue::Int(*i)),
                Value::DoubleValue(d) => Some(profile::AttributeValue::Double(*d)),
                Value::BoolValue(b) => Some(profile::AttributeValue::Bool(*b)),
                Value::TimeValue(t) => time::from_proto(t).map(profile::AttributeValue::Time),
            });
            (k.clone(), value)
        })
        .collect()
}

/// Validates a company given in a request (`prefix` is its proto path, e.g. "company.").
pub fn company_from_proto(
    prefix: &str,
    company: Option<&pb::Company>,
    fallback_name: &str,
    email_domain: Option<&str>,
    violations: &mut Violations,
) -> Option<profile::CompanyProfile> {
    let c = company.cloned().unwrap_or_default();
    let name = if c.name.trim().is_empty() {
        fallback_name
    } else {
        c.name.as_str()
    };
    profile::company(
        prefix,
        CompanyInput {
            name,
            web_domain: &c.web_domain,
            industry: &c.industry,
            employees: c.employees,
            annual_revenue: c
                .annual_revenue
                .as_ref()
                .map(|m| (m.currency_code.as_str(), m.amount_minor)),
            country: &c.country,
            region: &c.region,
        },
        email_domain,
        violations,
    )
}

fn person_of(req: &pb::CaptureLeadRequest) -> profile::Person {
    profile::Person {
        first_name: req.first_name.clone(),
        last_name: req.last_name.clone(),
        phone: req.phone.clone(),
        title: req.title.clone(),
        role: req.role.clone(),
        department: req.department.clone(),
    }
}

/// Validates a capture; every problem is reported, not only the first. `now` is the default
/// capture time.
pub fn validate_capture(
    req: &pb::CaptureLeadRequest,
    now: DateTime<Utc>,
    violations: &mut Violations,
) -> NewLead {
    check_key("request_id", &req.request_id, violations);
    let email_normalized = check_email("email", &req.email, violations);
    let captured_at_sent = req.captured_at.as_ref().and_then(time::from_proto);
    let captured_at = time::past_or_now("captured_at", req.captured_at.as_ref(), now, violations);
    let person = profile::person("", &person_of(req), violations);
    let company = company_from_proto(
        "company.",
        req.company.as_ref(),
        &req.company_name,
        profile::email_domain(&email_normalized),
        violations,
    );
    let consent = req
        .consent
        .map(|c| Consent {
            email_opt_in: c.email_opt_in,
            unsubscribed: c.unsubscribed,
            do_not_contact: c.do_not_contact,
        })
        .unwrap_or_default();
    let custom_attributes = profile::custom_attributes(
        "custom_attributes",
        attributes_from_proto(&req.custom_attributes),
        violations,
    );
    let raw_source = req.source.clone().unwrap_or_default();
    let source = profile::source(
        "source.",
        Source {
            channel: raw_source.channel,
            campaign: raw_source.campaign,
            lead_magnet: raw_source.lead_magnet,
            funnel_position: raw_source.funnel_position,
            utm_source: raw_source.utm_source,
            utm_medium: raw_source.utm_medium,
            utm_campaign: raw_source.utm_campaign,
            utm_term: raw_source.utm_term,
            utm_content: raw_source.utm_content,
        },
        violations,
    );
    let profile = LeadProfile {
        first_name: person.first_name,
        last_name: person.last_name,
        phone: person.phone,
        title: person.title,
        role: person.role,
        department: person.department,
        company,
        consent,
        custom_attributes,
    };
    let fingerprint =
        serde_json::to_string(&(&email_normalized, &profile, &source, captured_at_sent))
            .unwrap_or_default();
    NewLead {
        request_id: req.request_id.trim().to_owned(),
        email: req.email.trim().to_owned(),
        email_normalized,
        profile,
        source,
        captured_at,
        fingerprint,
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn request(email: &str, channel: &str) -> pb::CaptureLeadRequest {
        pb::CaptureLeadRequest {
            request_id: "r1".into(),
            email: email.into(),
            first_name: "Aiko".into(),
            last_name: "Tanaka".into(),
            company_name: "Kaisha".into(),
            source: Some(pb::LeadSource {
                channel: channel.into(),
                ..Default::default()
            }),
            ..Default::default()
        }
    }

    #[test]
    fn the_same_person_is_identified_whatever_the_case_and_spaces() {
        assert_eq!(
            normalize_email("  Aiko.Tanaka@Example.COM "),
            "aiko.tanaka@example.com"
        );
    }

    #[test]
    fn implausible_emails_are_rejected() {
        for bad in [
            "",
            "no-at-sign",
            "a@b",
            "a@@b.com",
            "@example.com",
            "a b@example.com",
            "a@.com",
        ] {
            assert!(
                !is_plausible_email(&normalize_email(bad)),
                "{bad:?} accepted"
            );
        }
        assert!(is_plausible_email("aiko@example.co.jp"));
    }

    #[test]
    fn every_invalid_field_is_reported() {
        let mut v = Violations::new();
        let mut req = request("nope", " ");
        req.source.as_mut().unwrap().funnel_position = 9;
        validate_capture(&req, Utc::now(), &mut v);
        assert_eq!(
            v.fields().collect::<Vec<_>>(),
            ["email", "source.channel", "source.funnel_position"]
        );
    }

    #[test]
    fn fingerprint_ignores_case_of_email_but_not_names() {
        let mut v = Violations::new();
        let now = Utc::now();
        let a = validate_capture(&request("A@x.com", "web_form"), now, &mut v);
        let b = validate_capture(&request("a@x.com", "web_form"), now, &mut v);
        assert_eq!(a.fingerprint, b.fingerprint);
        let mut other = request("a@x.com", "web_form");
        other.first_name = "Ken".into();
        assert_ne!(
            validate_capture(&other, now, &mut v).fingerprint,
            a.fingerprint
        );
        assert!(v.is_empty());
    }

    #[test]
    fn company_name_alone_still_makes_a_company_matched_by_the_email_domain() {
        let mut v = Violations::new();
        let lead = validate_capture(
            &request("aiko@kaisha.co.jp", "web_form"),
            Utc::now(),
            &mut v,
        );
        let company = lead.profile.company.unwrap();
        assert_eq!(
            (company.name.as_str(), company.web_domain.as_str()),
            ("Kaisha", "kaisha.co.jp")
        );
    }
}
