//! The sequences a tenant starts with, seeded as drafts on first use: nothing is sent until
//! someone has read them, set the sender and activated them.

use super::definition::{
    Branch, Condition, Definition, Email, GoalKind, ReEnrollment, Rules, Step, StepKind, Trigger,
    Wait,
};

/// The placeholder sender of the seeded drafts (replace it before activating).
pub const DRAFT_SENDER: &str = "marketing@example.com";

/// (key, name, definition) of each default sequence.
pub fn default_sequences() -> Vec<(&'static str, &'static str, Definition)> {
    vec![
        ("welcome", "Welcome", welcome()),
        ("re_engagement", "Re-engagement", re_engagement()),
        ("win_back", "Win-back", win_back()),
    ]
}

fn step(id: &str, kind: StepKind) -> Step {
    Step {
        id: id.to_owned(),
        kind,
    }
}

fn email(subject: &str, text: &str) -> StepKind {
    StepKind::SendEmail(Email {
        subject: subject.to_owned(),
        html_body: format!("<p>{}</p>", text.replace('\n', "</p><p>")),
        text_body: text.to_owned(),
        from_address: DRAFT_SENDER.to_owned(),
        from_name: String::new(),
        reply_to: String::new(),
    })
}

fn wait_days(days: i64) -> StepKind {
    StepKind::Wait(Wait::For {
        seconds: days * 86_400,
    })
}

/// Every new lead: a welcome, a checklist three days later, then a case study for those who
/// opened neither (a reminder for the rest); leaves on becoming MQL.
fn welcome() -> Definition {
    Definition {
        steps: vec![
            step(
                "welcome_email",
                email("Welcome, {{first_name|there}}", "Thanks for your interest."),
            ),
            step("wait_3_days", wait_days(3)),
            step(
                "getting_started_checklist",
                email("Your getting-started checklist", "Here is where to begin."),
            ),
            step(
                "opened_checklist",
                StepKind::Branch(Branch {
                    condition: Condition::Opened,
                    within_hours: 96,
                    then_step: "case_study".to_owned(),
                    else_step: "reminder".to_owned(),
                }),
            ),
            step(
                "reminder",
                email("Did you see this?", "A short reminder of the checklist."),
            ),
            step(
                "case_study",
                email("How teams like yours did it", "A case study."),
            ),
            step(
                "became_mql",
                StepKind::Goal {
                    goal: GoalKind::BecameMql,
                },
            ),
        ],
        enrollment: Rules {
            trigger: Trigger::Captured,
            lead_magnet: String::new(),
            re_enrollment: ReEnrollment::Never,
            segment_key: String::new(),
        },
    }
}

/// A lead sales handed back (recycled) after its cool-down: three touches over six weeks; leaves
/// on replying or booking a meeting.
fn re_engagement() -> Definition {
    Definition {
        steps: vec![
            step(
                "we_kept_you_in_mind",
                email(
                    "We kept you in mind",
                    "Here is what changed since we spoke.",
                ),
            ),
            step("wait_2_weeks", wait_days(14)),
            step(
                "new_case_studies",
                email("New case studies", "Teams like yours, a year on."),
            ),
            step("wait_4_weeks", wait_days(28)),
            step(
                "invitation_to_webinar",
                email("An invitation", "Join our next webinar."),
            ),
            step(
                "replied",
                StepKind::Goal {
                    goal: GoalKind::Replied,
                },
            ),
            step(
                "meeting",
                StepKind::Goal {
                    goal: GoalKind::MeetingBooked,
                },
            ),
        ],
        enrollment: Rules {
            trigger: Trigger::StageRecycled,
            lead_magnet: String::new(),
            re_enrollment: ReEnrollment::AfterExit,
            segment_key: String::new(),
        },
    }
}

/// A lost deal after its cool-down: one touch, a second a month later; leaves on a reply or a
/// meeting.
fn win_back() -> Definition {
    Definition {
        steps: vec![
            step(
                "checking_in",
                email("Checking in, {{first_name|there}}", "Is now a better time?"),
            ),
            step("wait_4_weeks", wait_days(28)),
            step(
                "what_is_new",
                email(
                    "What is new since we last spoke",
                    "Three things we shipped.",
                ),
            ),
            step(
                "replied",
                StepKind::Goal {
                    goal: GoalKind::Replied,
                },
            ),
            step(
                "meeting",
                StepKind::Goal {
                    goal: GoalKind::MeetingBooked,
                },
            ),
        ],
        enrollment: Rules {
            trigger: Trigger::StageLost,
            lead_magnet: String::new(),
            re_enrollment: ReEnrollment::AfterExit,
            segment_key: String::new(),
        },
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use baton_shared::Violations;

    #[test]
    fn the_defaults_are_valid_sequences() {
        for (key, _, def) in default_sequences() {
            let mut v = Violations::new();
            super::super::definition::validate(&def, &mut v);
            assert!(v.is_empty(), "{key}: {v}");
        }
    }
}
