//! Leads: who they are, how they are identified (normalised e-mail), what a valid capture is.

use baton_shared::Violations;
use chrono::{DateTime, Utc};

const MAX_EMAIL_LEN: usize = 254;
const MAX_NAME_LEN: usize = 200;
const MAX_CHANNEL_LEN: usize = 64;
const MAX_KEY_LEN: usize = 128;

/// A validated capture request.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct NewLead {
    pub request_id: String,
    pub email: String,
    pub email_normalized: String,
    pub first_name: String,
    pub last_name: String,
    pub company_name: String,
    pub channel: String,
    pub campaign: String,
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

/// Raw fields of a capture request, before validation.
pub struct CaptureInput<'a> {
    pub request_id: &'a str,
    pub email: &'a str,
    pub first_name: &'a str,
    pub last_name: &'a str,
    pub company_name: &'a str,
    pub channel: &'a str,
    pub campaign: &'a str,
    /// As sent by the caller (None = not sent), already converted.
    pub captured_at_sent: Option<DateTime<Utc>>,
    /// Effective capture time (defaults to now).
    pub captured_at: DateTime<Utc>,
}

/// Validates a capture; every problem is reported, not only the first.
pub fn validate_capture(input: CaptureInput<'_>, violations: &mut Violations) -> NewLead {
    check_key("request_id", input.request_id, violations);
    let email_normalized = normalize_email(input.email);
    if email_normalized.is_empty() {
        violations.add("email", "is required");
    } else if email_normalized.len() > MAX_EMAIL_LEN {
        violations.add("email", format!("must be at most {MAX_EMAIL_LEN} bytes"));
    } else if !is_plausible_email(&email_normalized) {
        violations.add("email", "is not an e-mail address");
    }
    for (field, value) in [
        ("first_name", input.first_name),
        ("last_name", input.last_name),
        ("company_name", input.company_name),
    ] {
        if value.len() > MAX_NAME_LEN {
            violations.add(field, format!("must be at most {MAX_NAME_LEN} bytes"));
        }
    }
    let channel = input.channel.trim();
    if channel.is_empty() {
        violations.add("source.channel", "is required");
    } else if channel.len() > MAX_CHANNEL_LEN {
        violations.add(
            "source.channel",
            format!("must be at most {MAX_CHANNEL_LEN} bytes"),
        );
    }
    if input.campaign.len() > MAX_NAME_LEN {
        violations.add(
            "source.campaign",
            format!("must be at most {MAX_NAME_LEN} bytes"),
        );
    }
    let fingerprint = [
        email_normalized.as_str(),
        input.first_name.trim(),
        input.last_name.trim(),
        input.company_name.trim(),
        channel,
        input.campaign.trim(),
        &input
            .captured_at_sent
            .map(|t| t.to_rfc3339())
            .unwrap_or_default(),
    ]
    .join("\u{1f}");
    NewLead {
        request_id: input.request_id.trim().to_owned(),
        email: input.email.trim().to_owned(),
        email_normalized,
        first_name: input.first_name.trim().to_owned(),
        last_name: input.last_name.trim().to_owned(),
        company_name: input.company_name.trim().to_owned(),
        channel: channel.to_owned(),
        campaign: input.campaign.trim().to_owned(),
        captured_at: input.captured_at,
        fingerprint,
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn input<'a>(email: &'a str, channel: &'a str) -> CaptureInput<'a> {
        let now = Utc::now();
        CaptureInput {
            request_id: "r1",
            email,
            first_name: "Aiko",
            last_name: "Tanaka",
            company_name: "Kaisha",
            channel,
            campaign: "",
            captured_at_sent: None,
            captured_at: now,
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
        validate_capture(input("nope", " "), &mut v);
        assert_eq!(v.fields().collect::<Vec<_>>(), ["email", "source.channel"]);
    }

    #[test]
    fn fingerprint_ignores_case_of_email_but_not_names() {
        let mut v = Violations::new();
        let a = validate_capture(input("A@x.com", "web_form"), &mut v);
        let b = validate_capture(input("a@x.com", "web_form"), &mut v);
        assert_eq!(a.fingerprint, b.fingerprint);
        let mut other = input("a@x.com", "web_form");
        other.first_name = "Ken";
        assert_ne!(validate_capture(other, &mut v).fingerprint, a.fingerprint);
        assert!(v.is_empty());
    }
}
