//! Leads: who they are, how they are identified (normalised e-mail), what a valid capture is.

use baton_shared::Violations;
use chrono::{DateTime, Utc};

use super::profile::{self, CompanyInput, Consent, LeadProfile, Person, Source};

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
    } else {
        violations.text(field, key);
    }
}

/// Validates an e-mail address; returns its normalised form.
pub fn check_email(field: &str, email: &str, violations: &mut Violations) -> String {
    let normalized = normalize_email(email);
    if normalized.is_empty() {
        violations.add(field, "is required");
    } else if normalized.len() > MAX_EMAIL_LEN {
        violations.add(field, format!("must be at most {MAX_EMAIL_LEN} bytes"));
    } else if !is_plausible_email(&normalized) || normalized.chars().any(|c| c.is_control()) {
        violations.add(field, "is not an e-mail address");
    }
    normalized
}

/// A company as a request gives it, before validation.
#[derive(Debug, Clone, Default, PartialEq)]
pub struct CompanyFields {
    pub name: String,
    pub web_domain: String,
    pub industry: String,
    pub employees: Option<i64>,
    /// (ISO 4217 currency code, amount in minor units).
    pub annual_revenue: Option<(String, i64)>,
    pub country: String,
    pub region: String,
}

/// A capture as the caller sent it, before validation.
#[derive(Debug, Clone, Default, PartialEq)]
pub struct CaptureInput {
    pub request_id: String,
    pub email: String,
    /// `None`: not given (now); `Some(None)`: given, but not a representable time.
    pub captured_at: Option<Option<DateTime<Utc>>>,
    pub person: Person,
    pub company: Option<CompanyFields>,
    /// The company's name when no company is given.
    pub company_name: String,
    pub consent: Option<Consent>,
    /// `None` values: an attribute sent without a value.
    pub custom_attributes: Vec<(String, Option<profile::AttributeValue>)>,
    pub source: Source,
}

/// Validates a company given in a request (`prefix` is its field path, e.g. "company.").
pub fn company_of(
    prefix: &str,
    company: Option<&CompanyFields>,
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
                .map(|(currency, amount)| (currency.as_str(), *amount)),
            country: &c.country,
            region: &c.region,
        },
        email_domain,
        violations,
    )
}

/// Validates a capture; every problem is reported, not only the first. `now` is the default
/// capture time.
pub fn validate_capture(
    req: &CaptureInput,
    now: DateTime<Utc>,
    violations: &mut Violations,
) -> NewLead {
    check_key("request_id", &req.request_id, violations);
    let email_normalized = check_email("email", &req.email, violations);
    let captured_at_sent = req.captured_at.flatten();
    let captured_at =
        baton_shared::time::past_or_now_decoded("captured_at", req.captured_at, now, violations);
    let person = profile::person("", &req.person, violations);
    let company = company_of(
        "company.",
        req.company.as_ref(),
        &req.company_name,
        profile::email_domain(&email_normalized),
        violations,
    );
    let consent = req.consent.unwrap_or_default();
    let custom_attributes = profile::custom_attributes(
        "custom_attributes",
        req.custom_attributes.clone(),
        violations,
    );
    let source = profile::source("source.", req.source.clone(), violations);
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

    use baton_proto::capture::v1 as pb;

    use crate::convert::capture_input;

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
        validate_capture(&capture_input(&req), Utc::now(), &mut v);
        assert_eq!(
            v.fields().collect::<Vec<_>>(),
            ["email", "source.channel", "source.funnel_position"]
        );
    }

    #[test]
    fn fingerprint_ignores_case_of_email_but_not_names() {
        let mut v = Violations::new();
        let now = Utc::now();
        let a = validate_capture(&capture_input(&request("A@x.com", "web_form")), now, &mut v);
        let b = validate_capture(&capture_input(&request("a@x.com", "web_form")), now, &mut v);
        assert_eq!(a.fingerprint, b.fingerprint);
        let mut other = request("a@x.com", "web_form");
        other.first_name = "Ken".into();
        assert_ne!(
            validate_capture(&capture_input(&other), now, &mut v).fingerprint,
            a.fingerprint
        );
        assert!(v.is_empty());
    }

    #[test]
    fn company_name_alone_still_makes_a_company_matched_by_the_email_domain() {
        let mut v = Violations::new();
        let lead = validate_capture(
            &capture_input(&request("aiko@kaisha.co.jp", "web_form")),
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
