//! Reps: what a valid rep is.

use baton_shared::Violations;
use chrono::{DateTime, Utc};
use serde::{Deserialize, Serialize};

const MAX_NAME_LEN: usize = 200;
use baton_shared::fields::MAX_ID_LEN as MAX_KEY_LEN;

#[derive(Debug, Clone, PartialEq, Eq)]
pub struct NewRep {
    pub request_id: String,
    pub name: String,
    pub email: String,
    pub email_normalized: String,
    pub active: bool,
}

pub fn validate_rep(
    request_id: &str,
    name: &str,
    email: &str,
    active: bool,
    violations: &mut Violations,
) -> NewRep {
    violations.required("request_id", request_id, MAX_KEY_LEN);
    let name = violations.required("name", name, MAX_NAME_LEN);
    let email_normalized = email.trim().to_lowercase();
    violations.text("email", &email_normalized);
    match email_normalized.split_once('@') {
        Some((local, domain))
            if !local.is_empty() && domain.contains('.') && !domain.contains('@') => {}
        _ => violations.add("email", "is not an e-mail address"),
    }
    NewRep {
        request_id: request_id.trim().to_owned(),
        name,
        email: email.trim().to_owned(),
        email_normalized,
        active,
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn name_and_email_are_required() {
        let mut v = Violations::new();
        validate_rep("r", " ", "nope", true, &mut v);
        assert_eq!(v.fields().collect::<Vec<_>>(), ["name", "email"]);
    }
}

/// A rep's routing attributes besides team, capacity and weight (stored as JSON).
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
pub struct RepAttributes {
    #[serde(default)]
    pub territories: Vec<String>,
    #[serde(default)]
    pub industries: Vec<String>,
    #[serde(default)]
    pub seniority: String,
    #[serde(default)]
    pub time_zone: String,
    #[serde(default)]
    pub work_start_hour: i32,
    #[serde(default)]
    pub work_end_hour: i32,
    #[serde(default)]
    pub out_of_office: Vec<(DateTime<Utc>, DateTime<Utc>)>,
}

/// Everything routing reads of a rep, as set through the API.
#[derive(Debug, Clone, PartialEq)]
pub struct RepRouting {
    pub team_id: String,
    pub capacity: i32,
    pub weight: f64,
    pub attributes: RepAttributes,
}

impl Default for RepRouting {
    fn default() -> Self {
        RepRouting {
            team_id: String::new(),
            capacity: 0,
            weight: 1.0,
            attributes: RepAttributes::default(),
        }
    }
}
