//! What Baton knows about a lead beyond its identity: person, company, consent, source and typed
//! custom attributes — and what makes each of them valid.

use std::collections::BTreeMap;

use baton_shared::Violations;
use chrono::{DateTime, Utc};
use serde::{Deserialize, Serialize};

const MAX_NAME_LEN: usize = 200;
const MAX_SHORT_LEN: usize = 64;
const MAX_MEDIUM_LEN: usize = 100;
const MAX_PHONE_LEN: usize = 32;
const MAX_ATTRIBUTES: usize = 50;
const MAX_ATTRIBUTE_STRING_LEN: usize = 1000;

/// Free-mail domains (data): an address there says nothing about the lead's company.
const FREE_MAIL_DOMAINS: &str = include_str!("free_mail_domains.txt");

/// The person and everything around them, as stored on the lead.
#[derive(Debug, Clone, Default, PartialEq, Serialize)]
pub struct LeadProfile {
    pub first_name: String,
    pub last_name: String,
    pub phone: String,
    pub title: String,
    pub role: String,
    pub department: String,
    pub company: Option<CompanyProfile>,
    pub consent: Consent,
    pub custom_attributes: BTreeMap<String, AttributeValue>,
}

#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize)]
pub struct CompanyProfile {
    pub name: String,
    /// Normalised: lower case, no scheme, `www.`, port or path. Empty if unknown.
    pub web_domain: String,
    pub industry: String,
    pub employees: Option<i64>,
    pub annual_revenue: Option<Money>,
    /// ISO 3166-1 alpha-2, upper case.
    pub country: String,
    pub region: String,
}

#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct Money {
    /// ISO 4217, upper case.
    pub currency_code: String,
    pub amount_minor: i64,
}

#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, Serialize)]
pub struct Consent {
    pub email_opt_in: bool,
    pub unsubscribed: bool,
    pub do_not_contact: bool,
}

/// A typed custom attribute value (stored as JSON, tagged by type).
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum AttributeValue {
    String(String),
    Int(i64),
    Double(f64),
    Bool(bool),
    Time(DateTime<Utc>),
}

/// Where the lead came from.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize)]
pub struct Source {
    pub channel: String,
    pub campaign: String,
    pub lead_magnet: String,
    /// `baton.capture.v1.FunnelPosition` value.
    pub funnel_position: i32,
    pub utm_source: String,
    pub utm_medium: String,
    pub utm_campaign: String,
    pub utm_term: String,
    pub utm_content: String,
}

/// `survivor` with its blank fields taken from `other` (for merges). Custom attributes are
/// united, the survivor's values winning; consent flags are OR-ed, so a refusal is never lost.
pub fn fill_blanks(survivor: &LeadProfile, other: &LeadProfile) -> LeadProfile {
    let pick = |mine: &String, theirs: &String| {
        if mine.is_empty() {
            theirs.clone()
        } else {
            mine.clone()
        }
    };
    let mut custom_attributes = other.custom_attributes.clone();
    custom_attributes.extend(survivor.custom_attributes.clone());
    LeadProfile {
        first_name: pick(&survivor.first_name, &other.first_name),
        last_name: pick(&survivor.last_name, &other.last_name),
        phone: pick(&survivor.phone, &other.phone),
        title: pick(&survivor.title, &other.title),
        role: pick(&survivor.role, &other.role),
        department: pick(&survivor.department, &other.department),
        company: survivor.company.clone().or_else(|| other.company.clone()),
        consent: Consent {
            email_opt_in: survivor.consent.email_opt_in && !other.consent.unsubscribed,
            unsubscribed: survivor.consent.unsubscribed || other.consent.unsubscribed,
            do_not_contact: survivor.consent.do_not_contact || other.consent.do_not_contact,
        },
        custom_attributes,
    }
}

/// Checks a string's length; trims it.
pub fn bounded(field: &str, value: &str, max: usize, violations: &mut Violations) -> String {
    let value = value.trim();
    if value.len() > max {
        violations.add(field, format!("must be at most {max} bytes"));
    } else {
        violations.text(field, value);
    }
    value.to_owned()
}

/// The person part of a profile.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct Person {
    pub first_name: String,
    pub last_name: String,
    pub phone: String,
    pub title: String,
    pub role: String,
    pub department: String,
}

/// Validates and normalises the person part of a profile (`prefix` is the proto path prefix of
/// these fields, "" for a capture request, "lead." for an update).
pub fn person(prefix: &str, raw: &Person, violations: &mut Violations) -> Person {
    let phone = bounded(
        &format!("{prefix}phone"),
        &raw.phone,
        MAX_PHONE_LEN,
        violations,
    );
    if !phone
        .chars()
        .all(|c| c.is_ascii_digit() || " +-().".contains(c))
    {
        violations.add(
            format!("{prefix}phone"),
            "may contain only digits, spaces and + - ( ) .",
        );
    }
    Person {
        first_name: bounded(
            &format!("{prefix}first_name"),
            &raw.first_name,
            MAX_NAME_LEN,
            violations,
        ),
        last_name: bounded(
            &format!("{prefix}last_name"),
            &raw.last_name,
            MAX_NAME_LEN,
            violations,
        ),
        phone,
        title: bounded(
            &format!("{prefix}title"),
            &raw.title,
            MAX_NAME_LEN,
            violations,
        ),
        role: bounded(
            &format!("{prefix}role"),
            &raw.role,
            MAX_SHORT_LEN,
            violations,
        ),
        department: bounded(
            &format!("{prefix}department"),
            &raw.department,
            MAX_NAME_LEN,
            violations,
        ),
    }
}

/// Raw company fields, before validation.
pub struct CompanyInput<'a> {
    pub name: &'a str,
    pub web_domain: &'a str,
    pub industry: &'a str,
    pub employees: Option<i64>,
    pub annual_revenue: Option<(&'a str, i64)>,
    pub country: &'a str,
    pub region: &'a str,
}

/// Validates a company; `email_domain` fills in the web domain when none is given and the address
/// is not a free-mail one. Returns `None` when nothing at all is known about the company.
pub fn company(
    prefix: &str,
    input: CompanyInput<'_>,
    email_domain: Option<&str>,
    violations: &mut Violations,
) -> Option<CompanyProfile> {
    let name = bounded(
        &format!("{prefix}name"),
        input.name,
        MAX_NAME_LEN,
        violations,
    );
    let mut web_domain = normalize_domain(input.web_domain);
    if !web_domain.is_empty() && !is_plausible_domain(&web_domain) {
        violations.add(format!("{prefix}web_domain"), "is not a domain name");
    }
    if web_domain.is_empty()
        && let Some(domain) = email_domain.filter(|d| !is_free_mail(d))
    {
        web_domain = domain.to_owned();
    }
    if let Some(n) = input.employees
        && n < 0
    {
        violations.add(format!("{prefix}employees"), "must not be negative");
    }
    let annual_revenue = input.annual_revenue.map(|(currency, amount)| {
        let currency_code = currency.trim().to_uppercase();
        if iso_currency::Currency::from_code(&currency_code).is_none() {
            violations.add(
                format!("{prefix}annual_revenue.currency_code"),
                "must be an ISO 4217 code like JPY",
            );
        }
        if amount < 0 {
            violations.add(
                format!("{prefix}annual_revenue.amount_minor"),
                "must not be negative",
            );
        }
        Money {
            currency_code,
            amount_minor: amount,
        }
    });
    let country = input.country.trim().to_uppercase();
    if !country.is_empty() && isocountry::CountryCode::for_alpha2(&country).is_err() {
        violations.add(
            format!("{prefix}country"),
            "must be an ISO 3166-1 alpha-2 code like JP",
        );
    }
    let company = CompanyProfile {
        name,
        web_domain,
        industry: bounded(
            &format!("{prefix}industry"),
            input.industry,
            MAX_MEDIUM_LEN,
            violations,
        ),
        employees: input.employees,
        annual_revenue,
        country,
        region: bounded(
            &format!("{prefix}region"),
            input.region,
            MAX_MEDIUM_LEN,
            violations,
        ),
    };
    (company != CompanyProfile::default()).then_some(company)
}

/// Validates custom attributes: key syntax, count, string sizes, finite numbers.
pub fn custom_attributes(
    field: &str,
    attributes: impl IntoIterator<Item = (String, Option<AttributeValue>)>,
    violations: &mut Violations,
) -> BTreeMap<String, AttributeValue> {
    let mut out = BTreeMap::new();
    for (key, value) in attributes {
        let path = format!("{field}.{key}");
        let valid_key = key.len() <= MAX_SHORT_LEN
            && key.chars().next().is_some_and(|c| c.is_ascii_lowercase())
            && key
                .chars()
                .all(|c| c.is_ascii_lowercase() || c.is_ascii_digit() || c == '_');
        if !valid_key {
            violations.add(path, "key must be lower-case letters, digits and underscores, starting with a letter, at most 64 bytes");
            continue;
        }
        match value {
            None => violations.add(path, "has no value"),
            Some(AttributeValue::String(s)) if s.len() > MAX_ATTRIBUTE_STRING_LEN => violations
                .add(
                    path,
                    format!("must be at most {MAX_ATTRIBUTE_STRING_LEN} bytes"),
                ),
            Some(AttributeValue::Double(d)) if !d.is_finite() => {
                violations.add(path, "must be a finite number")
            }
            Some(v) => {
                out.insert(key, v);
            }
        }
    }
    if out.len() > MAX_ATTRIBUTES {
        violations.add(field, format!("at most {MAX_ATTRIBUTES} attributes"));
    }
    out
}

/// Validates a source; `channel` is required.
pub fn source(prefix: &str, raw: Source, violations: &mut Violations) -> Source {
    let channel = bounded(
        &format!("{prefix}channel"),
        &raw.channel,
        MAX_SHORT_LEN,
        violations,
    );
    if channel.is_empty() {
        violations.add(format!("{prefix}channel"), "is required");
    }
    if !(0..=3).contains(&raw.funnel_position) {
        violations.add(
            format!("{prefix}funnel_position"),
            format!("unknown funnel position {}", raw.funnel_position),
        );
    }
    Source {
        channel,
        campaign: bounded(
            &format!("{prefix}campaign"),
            &raw.campaign,
            MAX_NAME_LEN,
            violations,
        ),
        lead_magnet: bounded(
            &format!("{prefix}lead_magnet"),
            &raw.lead_magnet,
            MAX_NAME_LEN,
            violations,
        ),
        funnel_position: raw.funnel_position,
        utm_source: bounded(
            &format!("{prefix}utm_source"),
            &raw.utm_source,
            MAX_NAME_LEN,
            violations,
        ),
        utm_medium: bounded(
            &format!("{prefix}utm_medium"),
            &raw.utm_medium,
            MAX_NAME_LEN,
            violations,
        ),
        utm_campaign: bounded(
            &format!("{prefix}utm_campaign"),
            &raw.utm_campaign,
            MAX_NAME_LEN,
            violations,
        ),
        utm_term: bounded(
            &format!("{prefix}utm_term"),
            &raw.utm_term,
            MAX_NAME_LEN,
            violations,
        ),
        utm_content: bounded(
            &format!("{prefix}utm_content"),
            &raw.utm_content,
            MAX_NAME_LEN,
            violations,
        ),
    }
}

/// `https://www.Example.co.jp:443/about` → `example.co.jp`.
pub fn normalize_domain(raw: &str) -> String {
    let d = raw.trim().to_lowercase();
    let d = d
        .strip_prefix("https://")
        .or_else(|| d.strip_prefix("http://"))
        .unwrap_or(&d);
    let d = d.split(['/', '?', '#']).next().unwrap_or_default();
    let d = d.split(':').next().unwrap_or_default();
    d.strip_prefix("www.")
        .unwrap_or(d)
        .trim_end_matches('.')
        .to_owned()
}

fn is_plausible_domain(d: &str) -> bool {
    d.len() <= 253
        && d.contains('.')
        && d.split('.').all(|label| {
            !label.is_empty()
                && label.len() <= 63
                && !label.starts_with('-')
                && label.chars().all(|c| c.is_ascii_alphanumeric() || c == '-')
        })
}

pub fn is_free_mail(domain: &str) -> bool {
    FREE_MAIL_DOMAINS
        .lines()
        .map(str::trim)
        .any(|line| !line.starts_with('#') && line == domain)
}

/// The domain of a normalised e-mail address.
pub fn email_domain(normalized_email: &str) -> Option<&str> {
    normalized_email
        .rsplit_once('@')
        .map(|(_, d)| d)
        .filter(|d| is_plausible_domain(d))
}

#[cfg(test)]
mod tests {
    use super::*;

    fn input(web_domain: &str) -> CompanyInput<'_> {
        CompanyInput {
            name: "Kaisha KK",
            web_domain,
            industry: "Manufacturing",
            employees: Some(1200),
            annual_revenue: Some(("jpy", 5_000_000_000)),
            country: "jp",
            region: "Tokyo",
        }
    }

    #[test]
    fn domains_are_normalised() {
        assert_eq!(
            normalize_domain(" https://www.Example.co.jp:443/about?x=1 "),
            "example.co.jp"
        );
        assert_eq!(normalize_domain("example.com."), "example.com");
    }

    #[test]
    fn a_business_email_names_the_company_domain_but_free_mail_does_not() {
        let mut v = Violations::new();
        let c = company("company.", input(""), Some("kaisha.co.jp"), &mut v).unwrap();
        assert_eq!(c.web_domain, "kaisha.co.jp");
        assert_eq!(
            (
                c.country.as_str(),
                c.annual_revenue.unwrap().currency_code.as_str()
            ),
            ("JP", "JPY")
        );
        let c = company("company.", input(""), Some("gmail.com"), &mut v).unwrap();
        assert_eq!(c.web_domain, "");
        assert!(v.is_empty());
    }

    #[test]
    fn bad_company_values_name_their_fields() {
        let mut v = Violations::new();
        let bad = CompanyInput {
            name: "",
            web_domain: "not a domain",
            industry: "",
            employees: Some(-1),
            annual_revenue: Some(("YEN", -5)),
            country: "XX",
            region: "",
        };
        company("company.", bad, None, &mut v);
        assert_eq!(
            v.fields().collect::<Vec<_>>(),
            [
                "company.web_domain",
                "company.employees",
                "company.annual_revenue.currency_code",
                "company.annual_revenue.amount_minor",
                "company.country"
            ]
        );
    }

    #[test]
    fn nothing_known_means_no_company() {
        let mut v = Violations::new();
        let empty = CompanyInput {
            name: "",
            web_domain: "",
            industry: "",
            employees: None,
            annual_revenue: None,
            country: "",
            region: "",
        };
        assert_eq!(company("company.", empty, Some("gmail.com"), &mut v), None);
    }

    #[test]
    fn custom_attribute_keys_and_values_are_checked() {
        let mut v = Violations::new();
        let attrs = custom_attributes(
            "custom_attributes",
            [
                (
                    "plan".to_owned(),
                    Some(AttributeValue::String("pro".into())),
                ),
                ("Seats".to_owned(), Some(AttributeValue::Int(3))),
                ("ratio".to_owned(), Some(AttributeValue::Double(f64::NAN))),
                ("empty".to_owned(), None),
            ],
            &mut v,
        );
        assert_eq!(attrs.len(), 1);
        assert_eq!(
            v.fields().collect::<Vec<_>>(),
            [
                "custom_attributes.Seats",
                "custom_attributes.ratio",
                "custom_attributes.empty"
            ]
        );
    }

    #[test]
    fn attributes_round_trip_through_json() {
        let mut m = BTreeMap::new();
        m.insert("seats".to_owned(), AttributeValue::Int(12));
        m.insert("trial".to_owned(), AttributeValue::Bool(true));
        let json = serde_json::to_string(&m).unwrap();
        assert_eq!(
            serde_json::from_str::<BTreeMap<String, AttributeValue>>(&json).unwrap(),
            m
        );
    }

    #[test]
    fn a_merge_keeps_the_survivors_values_fills_blanks_and_never_loses_a_refusal() {
        let survivor = LeadProfile {
            first_name: "Aiko".into(),
            ..Default::default()
        };
        let other = LeadProfile {
            first_name: "A.".into(),
            phone: "03-1234".into(),
            consent: Consent {
                unsubscribed: true,
                ..Default::default()
            },
            ..Default::default()
        };
        let merged = fill_blanks(&survivor, &other);
        assert_eq!(
            (merged.first_name.as_str(), merged.phone.as_str()),
            ("Aiko", "03-1234")
        );
        assert!(merged.consent.unsubscribed);
    }

    #[test]
    fn phone_numbers_allow_only_phone_characters() {
        let mut v = Violations::new();
        person(
            "",
            &Person {
                phone: "+81 (3) 1234-5678".into(),
                ..Default::default()
            },
            &mut v,
        );
        assert!(v.is_empty());
        person(
            "",
            &Person {
                phone: "call me".into(),
                ..Default::default()
            },
            &mut v,
        );
        assert_eq!(v.fields().collect::<Vec<_>>(), ["phone"]);
    }
}
