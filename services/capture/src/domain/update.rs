//! UpdateLead: which fields a field mask may name, and applying it to a profile.

use baton_shared::Violations;

use super::{
    lead::{CompanyFields, company_of},
    profile::{self, AttributeValue, Consent, LeadProfile, Person},
};

/// The new values an UpdateLead sends (only the paths of its mask are applied).
#[derive(Debug, Clone, Default, PartialEq)]
pub struct LeadPatch {
    pub person: Person,
    pub company: Option<CompanyFields>,
    pub consent: Consent,
    pub custom_attributes: Vec<(String, Option<AttributeValue>)>,
}

/// The paths UpdateLead accepts. The e-mail is the lead's identity and cannot change.
pub const UPDATABLE_PATHS: [&str; 12] = [
    "first_name",
    "last_name",
    "phone",
    "title",
    "role",
    "department",
    "company",
    "consent",
    "consent.email_opt_in",
    "consent.unsubscribed",
    "consent.do_not_contact",
    "custom_attributes",
];

/// Applies the fields of `patch` named by `paths` to `current`; returns the new profile and the
/// paths whose value actually changed. Unknown paths and invalid values are violations.
pub fn apply_update(
    current: &LeadProfile,
    patch: &LeadPatch,
    paths: &[String],
    email_domain: Option<&str>,
    violations: &mut Violations,
) -> (LeadProfile, Vec<String>) {
    if paths.is_empty() {
        violations.add("update_mask", "must name at least one field");
    }
    let mut next = current.clone();
    let person = profile::person("lead.", &patch.person, violations);
    let consent = patch.consent;
    let mut changed = Vec::new();
    for path in paths {
        let before = next.clone();
        match path.as_str() {
            "first_name" => next.first_name = person.first_name.clone(),
            "last_name" => next.last_name = person.last_name.clone(),
            "phone" => next.phone = person.phone.clone(),
            "title" => next.title = person.title.clone(),
            "role" => next.role = person.role.clone(),
            "department" => next.department = person.department.clone(),
            "company" => {
                next.company = company_of(
                    "lead.company.",
                    patch.company.as_ref(),
                    "",
                    email_domain,
                    violations,
                )
            }
            "consent" => next.consent = consent,
            "consent.email_opt_in" => next.consent.email_opt_in = consent.email_opt_in,
            "consent.unsubscribed" => next.consent.unsubscribed = consent.unsubscribed,
            "consent.do_not_contact" => next.consent.do_not_contact = consent.do_not_contact,
            "custom_attributes" => {
                next.custom_attributes = profile::custom_attributes(
                    "lead.custom_attributes",
                    patch.custom_attributes.clone(),
                    violations,
                )
            }
            other => violations.add(
                "update_mask",
                format!(
                    "cannot update {other:?}; updatable: {}",
                    UPDATABLE_PATHS.join(", ")
                ),
            ),
        }
        if next != before && !changed.contains(path) {
            changed.push(path.clone());
        }
    }
    (next, changed)
}

#[cfg(test)]
mod tests {
    use baton_proto::capture::v1 as pb;

    use super::*;
    use crate::convert::lead_patch;

    fn paths(p: &[&str]) -> Vec<String> {
        p.iter().map(|s| s.to_string()).collect()
    }

    #[test]
    fn only_masked_fields_change() {
        let current = LeadProfile {
            first_name: "Aiko".into(),
            title: "CTO".into(),
            ..Default::default()
        };
        let patch = pb::Lead {
            first_name: "Ai".into(),
            title: "ignored".into(),
            ..Default::default()
        };
        let mut v = Violations::new();
        let (next, changed) = apply_update(
            &current,
            &lead_patch(&patch),
            &paths(&["first_name"]),
            None,
            &mut v,
        );
        assert!(v.is_empty());
        assert_eq!(
            (next.first_name.as_str(), next.title.as_str()),
            ("Ai", "CTO")
        );
        assert_eq!(changed, ["first_name"]);
    }

    #[test]
    fn consent_can_change_one_flag_at_a_time() {
        let current = LeadProfile {
            consent: profile::Consent {
                email_opt_in: true,
                ..Default::default()
            },
            ..Default::default()
        };
        let patch = pb::Lead {
            consent: Some(pb::Consent {
                unsubscribed: true,
                ..Default::default()
            }),
            ..Default::default()
        };
        let mut v = Violations::new();
        let (next, _) = apply_update(
            &current,
            &lead_patch(&patch),
            &paths(&["consent.unsubscribed"]),
            None,
            &mut v,
        );
        assert_eq!(
            next.consent,
            profile::Consent {
                email_opt_in: true,
                unsubscribed: true,
                do_not_contact: false
            }
        );
    }

    #[test]
    fn email_and_unknown_paths_are_refused_and_an_empty_mask_too() {
        let mut v = Violations::new();
        apply_update(
            &LeadProfile::default(),
            &LeadPatch::default(),
            &paths(&["email", "nope"]),
            None,
            &mut v,
        );
        apply_update(
            &LeadProfile::default(),
            &LeadPatch::default(),
            &[],
            None,
            &mut v,
        );
        assert_eq!(
            v.fields().collect::<Vec<_>>(),
            ["update_mask", "update_mask", "update_mask"]
        );
    }

    #[test]
    fn unchanged_values_are_not_reported_as_changes() {
        let current = LeadProfile {
            first_name: "Aiko".into(),
            ..Default::default()
        };
        let patch = pb::Lead {
            first_name: "Aiko".into(),
            ..Default::default()
        };
        let mut v = Violations::new();
        let (_, changed) = apply_update(
            &current,
            &lead_patch(&patch),
            &paths(&["first_name"]),
            None,
            &mut v,
        );
        assert!(changed.is_empty());
    }
}
