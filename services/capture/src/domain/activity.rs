//! Activities: what a lead did, and what makes a valid one.

use baton_proto::capture::v1::{ActivityKind, CallOutcome, PageKind};
use baton_shared::Violations;
use chrono::{DateTime, Utc};

use super::lead::check_key;

const MAX_URL_LEN: usize = 2048;
const MAX_SUBJECT_LEN: usize = 200;

/// What a call activity says of the call: its outcome, talk time, and whether it reached the
/// department that buys. As sent, `outcome` is the raw enum number (validated).
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct CallFacts {
    pub outcome: i32,
    pub duration_seconds: i32,
    pub reached_target_department: bool,
}

/// A validated activity.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct NewActivity {
    pub idempotency_key: String,
    pub lead_id: String,
    pub kind: ActivityKind,
    pub occurred_at: DateTime<Utc>,
    pub url: String,
    pub page_kind: PageKind,
    /// All zero unless the activity is a call.
    pub call: CallFacts,
    pub subject: String,
    pub performed_by: String,
    /// Why a machine made it (a privacy proxy's open, a scanner's click); `None` for the lead's own.
    pub machine_reason: Option<String>,
}

/// Raw fields of an activity request.
pub struct ActivityInput<'a> {
    pub idempotency_key: &'a str,
    pub lead_id: &'a str,
    pub kind: i32,
    pub occurred_at: DateTime<Utc>,
    pub url: &'a str,
    pub page_kind: i32,
    pub call: Option<CallFacts>,
    pub subject: &'a str,
    pub performed_by: &'a str,
    pub machine_generated: bool,
    pub machine_reason: &'a str,
}

pub fn validate_activity(input: ActivityInput<'_>, violations: &mut Violations) -> NewActivity {
    check_key("idempotency_key", input.idempotency_key, violations);
    if input.lead_id.trim().is_empty() {
        violations.add("lead_id", "is required");
    }
    let kind = match ActivityKind::try_from(input.kind) {
        Ok(ActivityKind::Unspecified) => {
            violations.add("kind", "is required");
            ActivityKind::Unspecified
        }
        Ok(kind) => kind,
        Err(_) => {
            violations.add("kind", format!("unknown activity kind {}", input.kind));
            ActivityKind::Unspecified
        }
    };
    let page_kind = PageKind::try_from(input.page_kind).unwrap_or_else(|_| {
        violations.add(
            "page_kind",
            format!("unknown page kind {}", input.page_kind),
        );
        PageKind::Unspecified
    });
    if input.url.len() > MAX_URL_LEN {
        violations.add("url", format!("must be at most {MAX_URL_LEN} bytes"));
    }
    let call = input.call.unwrap_or_default();
    if input.call.is_some() && kind != ActivityKind::Call {
        violations.add("call", "only calls have call details");
    }
    if CallOutcome::try_from(call.outcome).is_err() {
        violations.add(
            "call.outcome",
            format!("unknown call outcome {}", call.outcome),
        );
    }
    if call.duration_seconds < 0 {
        violations.add("call.duration_seconds", "must not be negative");
    }
    if kind == ActivityKind::Call && call.outcome == CallOutcome::Unspecified as i32 {
        violations.add("call.outcome", "is required for calls");
    }
    if input.subject.len() > MAX_SUBJECT_LEN {
        violations.add(
            "subject",
            format!("must be at most {MAX_SUBJECT_LEN} bytes"),
        );
    }
    if input.performed_by.trim().len() > baton_shared::fields::MAX_ID_LEN {
        violations.add(
            "performed_by",
            format!("must be at most {} bytes", baton_shared::fields::MAX_ID_LEN),
        );
    }
    let machine_reason = input.machine_reason.trim();
    if machine_reason.len() > MAX_SUBJECT_LEN {
        violations.add(
            "machine_reason",
            format!("must be at most {MAX_SUBJECT_LEN} bytes"),
        );
    }
    if input.machine_generated && machine_reason.is_empty() {
        violations.add("machine_reason", "is required for a machine-made activity");
    }
    if !input.machine_generated && !machine_reason.is_empty() {
        violations.add("machine_reason", "is only for machine-made activities");
    }
    if kind == ActivityKind::PageViewed && page_kind == PageKind::Unspecified {
        violations.add(
            "page_kind",
            "is required for page views (use PAGE_KIND_OTHER if unknown)",
        );
    }
    NewActivity {
        idempotency_key: input.idempotency_key.trim().to_owned(),
        lead_id: input.lead_id.trim().to_owned(),
        kind,
        occurred_at: input.occurred_at,
        url: input.url.to_owned(),
        page_kind,
        call,
        subject: input.subject.trim().to_owned(),
        performed_by: input.performed_by.trim().to_owned(),
        machine_reason: input.machine_generated.then(|| machine_reason.to_owned()),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn input(kind: i32, page_kind: i32) -> ActivityInput<'static> {
        ActivityInput {
            idempotency_key: "k",
            lead_id: "l",
            kind,
            occurred_at: Utc::now(),
            url: "",
            page_kind,
            call: None,
            subject: "",
            performed_by: "",
            machine_generated: false,
            machine_reason: "",
        }
    }

    #[test]
    fn kind_is_required_and_must_be_known() {
        let mut v = Violations::new();
        validate_activity(input(0, 0), &mut v);
        validate_activity(input(999, 0), &mut v);
        assert_eq!(v.fields().collect::<Vec<_>>(), ["kind", "kind"]);
    }

    #[test]
    fn calls_need_an_outcome_and_only_calls_have_call_details() {
        let mut v = Violations::new();
        validate_activity(input(ActivityKind::Call as i32, 0), &mut v);
        let mut not_a_call = input(ActivityKind::EmailOpened as i32, 0);
        not_a_call.call = Some(CallFacts {
            outcome: 1,
            duration_seconds: -3,
            reached_target_department: false,
        });
        validate_activity(not_a_call, &mut v);
        assert_eq!(
            v.fields().collect::<Vec<_>>(),
            ["call.outcome", "call", "call.duration_seconds"]
        );
    }

    #[test]
    fn a_page_view_needs_a_page_kind() {
        let mut v = Violations::new();
        validate_activity(input(ActivityKind::PageViewed as i32, 0), &mut v);
        assert_eq!(v.fields().collect::<Vec<_>>(), ["page_kind"]);
        let mut ok = Violations::new();
        validate_activity(
            input(ActivityKind::PageViewed as i32, PageKind::Pricing as i32),
            &mut ok,
        );
        assert!(ok.is_empty());
    }
}
