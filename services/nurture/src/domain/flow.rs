//! How an enrolment moves through its sequence: from the step it stands at, what happens next
//! (send an e-mail, sleep until a time, finish, or leave at a goal). Pure.

use chrono::{DateTime, Datelike, Duration, NaiveTime, TimeZone, Utc};
use chrono_tz::Tz;

use super::definition::{Condition, Definition, GoalKind, StepKind, Wait};

/// What nurture knows of the lead and of the enrolment's last e-mail when it decides.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct Facts {
    /// When the enrolment's last e-mail went out.
    pub last_sent_at: Option<DateTime<Utc>>,
    /// The first opening and clicking of that e-mail by a person.
    pub opened_at: Option<DateTime<Utc>>,
    pub clicked_at: Option<DateTime<Utc>>,
    /// The lead's latest reply and booked meeting (any time).
    pub replied_at: Option<DateTime<Utc>>,
    pub meeting_booked_at: Option<DateTime<Utc>>,
    /// The lead's stage is MQL or beyond / SQL or beyond.
    pub is_mql: bool,
    pub is_sql: bool,
    /// When the enrolment began (replies and meetings before it do not reach a goal).
    pub enrolled_at: DateTime<Utc>,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Next {
    /// Send the e-mail of step `index`; then go on at `index + 1`.
    Send {
        index: usize,
    },
    /// Nothing until `until`, then decide again at step `index`.
    /// `at_branch` when it waits at a branch (whose condition may come true before `until`),
    /// not in a wait step.
    Sleep {
        index: usize,
        until: DateTime<Utc>,
        at_branch: bool,
    },
    Complete,
    GoalReached(GoalKind),
}

/// Whether a goal holds.
pub fn goal_met(goal: GoalKind, f: &Facts) -> bool {
    let since = |t: Option<DateTime<Utc>>| t.is_some_and(|t| t >= f.enrolled_at);
    match goal {
        GoalKind::BecameMql => f.is_mql,
        GoalKind::BecameSql => f.is_sql,
        GoalKind::Replied => since(f.replied_at),
        GoalKind::MeetingBooked => since(f.meeting_booked_at),
    }
}

/// What happens next for an enrolment standing at step `index` at `now`.
pub fn next(def: &Definition, mut index: usize, f: &Facts, now: DateTime<Utc>, tz: Tz) -> Next {
    if let Some(goal) = def.goals().find(|g| goal_met(*g, f)) {
        return Next::GoalReached(goal);
    }
    // Branches only go forward (validated), so this walks each step at most once.
    for _ in 0..=def.steps.len() {
        let Some(step) = def.steps.get(index) else {
            return Next::Complete;
        };
        match &step.kind {
            StepKind::SendEmail(_) => return Next::Send { index },
            StepKind::Wait(w) => {
                return Next::Sleep {
                    index: index + 1,
                    until: wait_until(*w, now, tz),
                    at_branch: false,
                };
            }
            StepKind::Goal { .. } => index += 1,
            StepKind::Branch(b) => {
                let Some(sent) = f.last_sent_at else {
                    // Nothing was sent (every e-mail so far skipped): the condition cannot hold.
                    index = target(def, &b.else_step, index);
                    continue;
                };
                let deadline = sent + Duration::hours(i64::from(b.within_hours));
                let hit = match b.condition {
                    Condition::Opened => f.opened_at.or(f.clicked_at),
                    Condition::Clicked => f.clicked_at,
                    Condition::Replied => f.replied_at.filter(|r| *r >= sent),
                };
                if hit.is_some_and(|t| t <= deadline) {
                    index = target(def, &b.then_step, index);
                } else if now >= deadline {
                    index = target(def, &b.else_step, index);
                } else {
                    return Next::Sleep {
                        index,
                        until: deadline,
                        at_branch: true,
                    };
                }
            }
        }
    }
    Next::Complete
}

/// The step a branch goes to: the named one, or the next one for an empty name.
fn target(def: &Definition, name: &str, index: usize) -> usize {
    if name.is_empty() {
        index + 1
    } else {
        def.position(name).unwrap_or(def.steps.len())
    }
}

/// When a wait step that begins at `now` ends.
pub fn wait_until(w: Wait, now: DateTime<Utc>, tz: Tz) -> DateTime<Utc> {
    match w {
        Wait::For { seconds } => now + Duration::seconds(seconds),
        Wait::Until { weekday, hour } => next_local(now, tz, weekday, hour),
    }
}

/// The first instant after `now` that is `weekday` (1 = Monday) at `hour`:00 in `tz`.
fn next_local(now: DateTime<Utc>, tz: Tz, weekday: u8, hour: u8) -> DateTime<Utc> {
    let local = now.with_timezone(&tz).date_naive();
    let at = NaiveTime::from_hms_opt(u32::from(hour.min(23)), 0, 0).unwrap_or_default();
    for days in 0..15 {
        let day = local + Duration::days(days);
        if day.weekday().number_from_monday() != u32::from(weekday) {
            continue;
        }
        if let Some(t) = tz.from_local_datetime(&day.and_time(at)).earliest() {
            let t = t.with_timezone(&Utc);
            if t > now {
                return t;
            }
        }
    }
    now + Duration::days(7)
}

#[cfg(test)]
mod tests {
    use super::super::definition::{Branch, Email, ReEnrollment, Rules, Step, Trigger};
    use super::*;

    fn email() -> StepKind {
        StepKind::SendEmail(Email {
            subject: "s".into(),
            html_body: String::new(),
            text_body: "t".into(),
            from_address: "a@example.com".into(),
            from_name: String::new(),
            reply_to: String::new(),
        })
    }

    /// hello → wait 1 h → clicked within 48 h? → thanks : nudge; goal MQL.
    fn sequence() -> Definition {
        let step = |id: &str, kind| Step {
            id: id.into(),
            kind,
        };
        Definition {
            steps: vec![
                step("hello", email()),
                step("pause", StepKind::Wait(Wait::For { seconds: 3600 })),
                step(
                    "clicked",
                    StepKind::Branch(Branch {
                        condition: Condition::Clicked,
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
            ],
            enrollment: Rules {
                trigger: Trigger::Manual,
                lead_magnet: String::new(),
                re_enrollment: ReEnrollment::Never,
                segment_key: String::new(),
            },
        }
    }

    fn at(s: &str) -> DateTime<Utc> {
        DateTime::parse_from_rfc3339(s).unwrap().with_timezone(&Utc)
    }

    #[test]
    fn a_branch_waits_for_the_click_then_takes_the_right_way() {
        let d = sequence();
        let now = at("2026-12-02T10:00:00Z");
        let f = Facts {
            enrolled_at: now,
            ..Facts::default()
        };
        assert_eq!(
            next(&d, 0, &f, now, chrono_tz::UTC),
            Next::Send { index: 0 }
        );
        assert_eq!(
            next(&d, 1, &f, now, chrono_tz::UTC),
            Next::Sleep {
                index: 2,
                until: at("2026-12-02T11:00:00Z"),
                at_branch: false,
            }
        );
        let sent = Facts {
            last_sent_at: Some(now),
            ..f
        };
        let later = at("2026-12-02T11:00:00Z");
        assert_eq!(
            next(&d, 2, &sent, later, chrono_tz::UTC),
            Next::Sleep {
                index: 2,
                until: at("2026-12-04T10:00:00Z"),
                at_branch: true,
            }
        );
        let clicked = Facts {
            clicked_at: Some(at("2026-12-02T12:00:00Z")),
            ..sent
        };
        assert_eq!(
            next(&d, 2, &clicked, later, chrono_tz::UTC),
            Next::Send { index: 4 }
        );
        let too_late = at("2026-12-04T10:00:00Z");
        assert_eq!(
            next(&d, 2, &sent, too_late, chrono_tz::UTC),
            Next::Send { index: 3 }
        );
        // After "nudge" (index 3) the walk goes on through "thanks": the else way ends there.
        assert_eq!(next(&d, 5, &sent, too_late, chrono_tz::UTC), Next::Complete);
    }

    #[test]
    fn a_goal_ends_the_enrolment_wherever_it_stands() {
        let d = sequence();
        let now = at("2026-12-02T10:00:00Z");
        let f = Facts {
            enrolled_at: now,
            is_mql: true,
            ..Facts::default()
        };
        assert_eq!(
            next(&d, 1, &f, now, chrono_tz::UTC),
            Next::GoalReached(GoalKind::BecameMql)
        );
    }

    #[test]
    fn until_a_weekday_and_hour_is_the_leads_local_time() {
        // Wednesday 2026-12-02 10:00 UTC = 19:00 in Tokyo; next Monday 09:00 in Tokyo is
        // 2026-12-07T00:00Z.
        let tz: Tz = "Asia/Tokyo".parse().unwrap();
        let now = at("2026-12-02T10:00:00Z");
        assert_eq!(
            wait_until(
                Wait::Until {
                    weekday: 1,
                    hour: 9
                },
                now,
                tz
            ),
            at("2026-12-07T00:00:00Z")
        );
        // Wednesday 20:00 in Tokyo is later today.
        assert_eq!(
            wait_until(
                Wait::Until {
                    weekday: 3,
                    hour: 20
                },
                now,
                tz
            ),
            at("2026-12-02T11:00:00Z")
        );
    }
}
