//! What a sequence is: its steps and enrolment rules, and what makes a valid one. A definition
//! is stored as JSON (one row per version) and validated whole: every problem is reported.

use baton_shared::Violations;
use serde::{Deserialize, Serialize};

use super::render;

pub const MAX_STEPS: usize = 50;
pub const MAX_WAIT_SECONDS: i64 = 90 * 24 * 3600;
pub const MAX_WITHIN_HOURS: u32 = 720;
const MAX_SUBJECT_LEN: usize = 200;
const MAX_BODY_LEN: usize = 256 * 1024;
const MAX_KEY_LEN: usize = 64;

#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Definition {
    pub steps: Vec<Step>,
    pub enrollment: Rules,
}

#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Step {
    pub id: String,
    pub kind: StepKind,
}

#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(tag = "type", rename_all = "snake_case")]
pub enum StepKind {
    SendEmail(Email),
    Wait(Wait),
    Branch(Branch),
    Goal { goal: GoalKind },
}

#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Email {
    pub subject: String,
    pub html_body: String,
    pub text_body: String,
    pub from_address: String,
    pub from_name: String,
    pub reply_to: String,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum Wait {
    For {
        seconds: i64,
    },
    /// The next `weekday` (1 = Monday) at `hour`, in the lead's time zone.
    Until {
        weekday: u8,
        hour: u8,
    },
}

#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Branch {
    pub condition: Condition,
    pub within_hours: u32,
    pub then_step: String,
    /// Empty = the next step.
    pub else_step: String,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum Condition {
    Opened,
    Clicked,
    Replied,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum GoalKind {
    BecameMql,
    BecameSql,
    Replied,
    MeetingBooked,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum Trigger {
    Manual,
    Captured,
    StageRecycled,
    StageLost,
    LeadMagnet,
    SegmentEntered,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum ReEnrollment {
    Never,
    AfterExit,
}

#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Rules {
    pub trigger: Trigger,
    pub lead_magnet: String,
    pub re_enrollment: ReEnrollment,
    /// The segment a SegmentEntered trigger watches, or (other triggers) the filter leads must
    /// pass; empty for none.
    #[serde(default)]
    pub segment_key: String,
}

impl Trigger {
    /// How an enrolment by this trigger is named on the enrolment.
    pub fn as_str(self) -> &'static str {
        match self {
            Trigger::Manual => "manual",
            Trigger::Captured => "captured",
            Trigger::StageRecycled => "stage_recycled",
            Trigger::StageLost => "stage_lost",
            Trigger::LeadMagnet => "lead_magnet",
            Trigger::SegmentEntered => "segment_entered",
        }
    }
}

impl Definition {
    /// The index of the step named `id`.
    pub fn position(&self, id: &str) -> Option<usize> {
        self.steps.iter().position(|s| s.id == id)
    }

    /// The goals anywhere in the sequence (they end an enrolment whenever they are met).
    pub fn goals(&self) -> impl Iterator<Item = GoalKind> + '_ {
        self.steps.iter().filter_map(|s| match s.kind {
            StepKind::Goal { goal } => Some(goal),
            _ => None,
        })
    }
}

/// A key (sequence key or step id): 1-64 lower-case letters, digits and underscores, starting
/// with a letter.
pub fn check_key(field: &str, key: &str, v: &mut Violations) {
    let ok = !key.is_empty()
        && key.len() <= MAX_KEY_LEN
        && key.starts_with(|c: char| c.is_ascii_lowercase())
        && key
            .chars()
            .all(|c| c.is_ascii_lowercase() || c.is_ascii_digit() || c == '_');
    if !ok {
        v.add(
            field,
            "must be 1-64 lower-case letters, digits or underscores, starting with a letter",
        );
    }
}

/// Every problem of `def`, each under its field path (e.g. `definition.steps[2].branch.then_step`).
pub fn validate(def: &Definition, v: &mut Violations) {
    let base = "definition.steps";
    if def.steps.is_empty() || def.steps.len() > MAX_STEPS {
        v.add(base, format!("must have 1-{MAX_STEPS} steps"));
    }
    if !def
        .steps
        .iter()
        .any(|s| matches!(s.kind, StepKind::SendEmail(_)))
    {
        v.add(base, "must send at least one e-mail");
    }
    for (i, step) in def.steps.iter().enumerate() {
        let at = format!("{base}[{i}]");
        check_key(&format!("{at}.id"), &step.id, v);
        if def.steps[..i].iter().any(|s| s.id == step.id) {
            v.add(format!("{at}.id"), format!("{} is used twice", step.id));
        }
        match &step.kind {
            StepKind::SendEmail(e) => validate_email(&format!("{at}.send_email"), e, v),
            StepKind::Wait(w) => validate_wait(&format!("{at}.wait"), *w, v),
            StepKind::Branch(b) => validate_branch(def, i, &format!("{at}.branch"), b, v),
            StepKind::Goal { .. } => {}
        }
    }
    let rules = &def.enrollment;
    if rules.trigger == Trigger::LeadMagnet && rules.lead_magnet.trim().is_empty() {
        v.add(
            "definition.enrollment.lead_magnet",
            "is required for TRIGGER_LEAD_MAGNET",
        );
    }
    if rules.trigger == Trigger::SegmentEntered && rules.segment_key.is_empty() {
        v.add(
            "definition.enrollment.segment_key",
            "is required for TRIGGER_SEGMENT_ENTERED",
        );
    }
    if !rules.segment_key.is_empty() {
        check_key("definition.enrollment.segment_key", &rules.segment_key, v);
    }
    if rules.trigger != Trigger::LeadMagnet && !rules.lead_magnet.is_empty() {
        v.add(
            "definition.enrollment.lead_magnet",
            "is only for TRIGGER_LEAD_MAGNET",
        );
    }
}

fn validate_email(at: &str, e: &Email, v: &mut Violations) {
    if e.subject.trim().is_empty() || e.subject.len() > MAX_SUBJECT_LEN {
        v.add(
            format!("{at}.subject"),
            format!("must be 1-{MAX_SUBJECT_LEN} bytes"),
        );
    }
    if e.html_body.trim().is_empty() && e.text_body.trim().is_empty() {
        v.add(
            format!("{at}.text_body"),
            "a text or an HTML body is required",
        );
    }
    for (field, text) in [
        ("subject", &e.subject),
        ("html_body", &e.html_body),
        ("text_body", &e.text_body),
    ] {
        if text.len() > MAX_BODY_LEN {
            v.add(
                format!("{at}.{field}"),
                format!("must be at most {MAX_BODY_LEN} bytes"),
            );
        }
        if let Err(problem) = render::check_template(text) {
            v.add(format!("{at}.{field}"), problem);
        }
    }
    if !is_address(&e.from_address) {
        v.add(format!("{at}.from_address"), "must be an e-mail address");
    }
    if e.from_name.len() > MAX_SUBJECT_LEN || e.from_name.contains(['\r', '\n']) {
        v.add(
            format!("{at}.from_name"),
            format!("must be one line of at most {MAX_SUBJECT_LEN} bytes"),
        );
    }
    if !e.reply_to.is_empty() && !is_address(&e.reply_to) {
        v.add(format!("{at}.reply_to"), "must be an e-mail address");
    }
}

/// An address lettre can send to or from.
pub fn is_address(s: &str) -> bool {
    s.parse::<lettre::Address>().is_ok()
}

fn validate_wait(at: &str, w: Wait, v: &mut Violations) {
    match w {
        Wait::For { seconds } => {
            if !(1..=MAX_WAIT_SECONDS).contains(&seconds) {
                v.add(
                    format!("{at}.seconds"),
                    format!("must be 1-{MAX_WAIT_SECONDS} (90 days)"),
                );
            }
        }
        Wait::Until { weekday, hour } => {
            if !(1..=7).contains(&weekday) {
                v.add(
                    format!("{at}.until_weekday"),
                    "must be 1 (Monday) to 7 (Sunday)",
                );
            }
            if hour > 23 {
                v.add(format!("{at}.until_hour"), "must be 0-23");
            }
        }
    }
}

fn validate_branch(def: &Definition, i: usize, at: &str, b: &Branch, v: &mut Violations) {
    if !(1..=MAX_WITHIN_HOURS).contains(&b.within_hours) {
        v.add(
            format!("{at}.within_hours"),
            format!("must be 1-{MAX_WITHIN_HOURS}"),
        );
    }
    if !def.steps[..i]
        .iter()
        .any(|s| matches!(s.kind, StepKind::SendEmail(_)))
    {
        v.add(
            format!("{at}.condition"),
            "a branch must come after an e-mail step (it looks at the last e-mail sent)",
        );
    }
    for (field, target) in [("then_step", &b.then_step), ("else_step", &b.else_step)] {
        if field == "else_step" && target.is_empty() {
            continue;
        }
        match def.position(target) {
            None => v.add(
                format!("{at}.{field}"),
                format!("no step is named {target:?}"),
            ),
            Some(t) if t <= i => v.add(
                format!("{at}.{field}"),
                "must name a later step (a sequence may not loop)",
            ),
            Some(_) => {}
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn email() -> StepKind {
        StepKind::SendEmail(Email {
            subject: "Hi {{first_name|there}}".into(),
            html_body: "<p>Hello</p>".into(),
            text_body: String::new(),
            from_address: "news@example.com".into(),
            from_name: "Example".into(),
            reply_to: String::new(),
        })
    }

    fn def(steps: Vec<Step>) -> Definition {
        Definition {
            steps,
            enrollment: Rules {
                trigger: Trigger::Manual,
                lead_magnet: String::new(),
                re_enrollment: ReEnrollment::Never,
                segment_key: String::new(),
            },
        }
    }

    fn step(id: &str, kind: StepKind) -> Step {
        Step {
            id: id.into(),
            kind,
        }
    }

    fn fields(d: &Definition) -> Vec<String> {
        let mut v = Violations::new();
        validate(d, &mut v);
        v.fields().map(str::to_owned).collect()
    }

    #[test]
    fn a_sound_branching_sequence_passes() {
        let d = def(vec![
            step("hello", email()),
            step(
                "opened",
                StepKind::Branch(Branch {
                    condition: Condition::Opened,
                    within_hours: 48,
                    then_step: "thanks".into(),
                    else_step: "nudge".into(),
                }),
            ),
            step("nudge", email()),
            step("thanks", email()),
            step(
                "mql",
                StepKind::Goal {
                    goal: GoalKind::BecameMql,
                },
            ),
        ]);
        assert_eq!(fields(&d), Vec::<String>::new());
    }

    #[test]
    fn every_problem_is_listed_with_its_field() {
        let d = def(vec![
            step(
                "Bad Id",
                StepKind::Branch(Branch {
                    condition: Condition::Clicked,
                    within_hours: 0,
                    then_step: "missing".into(),
                    else_step: "bad_id".into(),
                }),
            ),
            step(
                "w",
                StepKind::Wait(Wait::Until {
                    weekday: 8,
                    hour: 24,
                }),
            ),
            step(
                "w",
                StepKind::SendEmail(Email {
                    subject: "{{nope}}".into(),
                    html_body: String::new(),
                    text_body: String::new(),
                    from_address: "not an address".into(),
                    from_name: String::new(),
                    reply_to: "x".into(),
                }),
            ),
        ]);
        assert_eq!(
            fields(&d),
            vec![
                "definition.steps[0].id",
                "definition.steps[0].branch.within_hours",
                "definition.steps[0].branch.condition",
                "definition.steps[0].branch.then_step",
                "definition.steps[0].branch.else_step",
                "definition.steps[1].wait.until_weekday",
                "definition.steps[1].wait.until_hour",
                "definition.steps[2].id",
                "definition.steps[2].send_email.text_body",
                "definition.steps[2].send_email.subject",
                "definition.steps[2].send_email.from_address",
                "definition.steps[2].send_email.reply_to",
            ]
        );
    }

    #[test]
    fn a_branch_back_is_a_loop_and_refused() {
        let d = def(vec![
            step("a", email()),
            step(
                "b",
                StepKind::Branch(Branch {
                    condition: Condition::Opened,
                    within_hours: 1,
                    then_step: "a".into(),
                    else_step: String::new(),
                }),
            ),
        ]);
        assert_eq!(fields(&d), vec!["definition.steps[1].branch.then_step"]);
    }
}
