//! Every conversion of nurture between its stored rows, its domain types and its proto messages.

use baton_proto::nurture::v1::{self as pb, step::Kind};
use baton_shared::{Violations, time};

use crate::domain::segment::{Condition as SegmentCondition, SegmentDefinition};
use crate::domain::{
    bots::BotRules,
    definition::{
        Branch, Condition, Definition, Email, GoalKind, ReEnrollment, Rules, Step, StepKind,
        Trigger, Wait,
    },
    settings::NurtureSettings,
};
use crate::store::{
    entities::{enrollment, segment, sequence, touch},
    recycling::Pool,
    settings::Versioned,
};

pub fn enrollment_to_proto(e: &enrollment::Model, def: &Definition) -> pb::Enrollment {
    pb::Enrollment {
        enrollment_id: e.enrollment_id.clone(),
        lead_id: e.lead_id.clone(),
        sequence_id: e.sequence_id.clone(),
        sequence_key: e.sequence_key.clone(),
        state: e.state,
        next_step: e.next_step,
        next_step_due_at: time::to_proto_opt(e.next_step_due_at),
        enrolled_at: Some(time::to_proto(e.enrolled_at)),
        sequence_version: e.sequence_version,
        next_step_id: usize::try_from(e.next_step)
            .ok()
            .and_then(|i| def.steps.get(i))
            .map(|s| s.id.clone())
            .unwrap_or_default(),
        exit_reason: e.exit_reason,
        ended_at: time::to_proto_opt(e.ended_at),
        enrolled_by: e.enrolled_by.clone(),
    }
}

pub fn touch_to_proto(t: &touch::Model) -> pb::Touch {
    pb::Touch {
        touch_id: t.touch_id.clone(),
        lead_id: t.lead_id.clone(),
        enrollment_id: t.enrollment_id.clone(),
        sequence_key: t.sequence_key.clone(),
        step_id: t.step_id.clone(),
        kind: t.kind,
        at: Some(time::to_proto(t.at)),
        skip_reason: t.skip_reason.clone(),
        bounce: t.bounce.clone(),
        detail: t.detail.clone(),
        url: t.url.clone(),
        machine_generated: t.machine_reason.is_some(),
        machine_reason: t.machine_reason.clone().unwrap_or_default(),
        message_id: t.message_id.clone(),
        retry_at: time::to_proto_opt(t.retry_at),
    }
}

pub fn sequence_to_proto(row: &sequence::Model, def: &Definition) -> pb::Sequence {
    pb::Sequence {
        sequence_id: row.sequence_id.clone(),
        key: row.key.clone(),
        name: row.name.clone(),
        version: row.version,
        state: row.state,
        definition: Some(definition_to_proto(def)),
        created_at: Some(time::to_proto(row.created_at)),
        updated_at: Some(time::to_proto(row.updated_at)),
    }
}

pub fn definition_to_proto(def: &Definition) -> pb::SequenceDefinition {
    pb::SequenceDefinition {
        steps: def.steps.iter().map(step_to_proto).collect(),
        enrollment: Some(pb::EnrollmentRules {
            trigger: trigger_to_proto(def.enrollment.trigger) as i32,
            lead_magnet: def.enrollment.lead_magnet.clone(),
            re_enrollment: match def.enrollment.re_enrollment {
                ReEnrollment::Never => pb::ReEnrollment::Never,
                ReEnrollment::AfterExit => pb::ReEnrollment::AfterExit,
            } as i32,
            segment_key: def.enrollment.segment_key.clone(),
        }),
    }
}

fn trigger_to_proto(t: Trigger) -> pb::Trigger {
    match t {
        Trigger::Manual => pb::Trigger::Manual,
        Trigger::Captured => pb::Trigger::Captured,
        Trigger::StageRecycled => pb::Trigger::StageRecycled,
        Trigger::StageLost => pb::Trigger::StageLost,
        Trigger::LeadMagnet => pb::Trigger::LeadMagnet,
        Trigger::SegmentEntered => pb::Trigger::SegmentEntered,
    }
}

fn step_to_proto(s: &Step) -> pb::Step {
    let kind = match &s.kind {
        StepKind::SendEmail(e) => Kind::SendEmail(pb::SendEmail {
            subject: e.subject.clone(),
            html_body: e.html_body.clone(),
            text_body: e.text_body.clone(),
            from_address: e.from_address.clone(),
            from_name: e.from_name.clone(),
            reply_to: e.reply_to.clone(),
        }),
        StepKind::Wait(Wait::For { seconds }) => Kind::Wait(pb::Wait {
            seconds: *seconds,
            ..pb::Wait::default()
        }),
        StepKind::Wait(Wait::Until { weekday, hour }) => Kind::Wait(pb::Wait {
            seconds: 0,
            until_weekday: i32::from(*weekday),
            until_hour: i32::from(*hour),
        }),
        StepKind::Branch(b) => Kind::Branch(pb::Branch {
            condition: match b.condition {
                Condition::Opened => pb::BranchCondition::Opened,
                Condition::Clicked => pb::BranchCondition::Clicked,
                Condition::Replied => pb::BranchCondition::Replied,
            } as i32,
            within_hours: b.within_hours as i32,
            then_step: b.then_step.clone(),
            else_step: b.else_step.clone(),
        }),
        StepKind::Goal { goal } => Kind::Goal(pb::Goal {
            kind: match goal {
                GoalKind::BecameMql => pb::GoalKind::BecameMql,
                GoalKind::BecameSql => pb::GoalKind::BecameSql,
                GoalKind::Replied => pb::GoalKind::Replied,
                GoalKind::MeetingBooked => pb::GoalKind::MeetingBooked,
            } as i32,
        }),
    };
    pb::Step {
        id: s.id.clone(),
        kind: Some(kind),
    }
}

/// The domain definition of a request's, with a violation for every field it cannot read
/// (the domain's `validate` then checks the rules).
pub fn definition_from_proto(d: Option<&pb::SequenceDefinition>, v: &mut Violations) -> Definition {
    let Some(d) = d else {
        v.add("definition", "is required");
        return Definition {
            steps: Vec::new(),
            enrollment: rules_from_proto(None, v),
        };
    };
    let steps = d
        .steps
        .iter()
        .enumerate()
        .filter_map(|(i, s)| step_from_proto(i, s, v))
        .collect();
    Definition {
        steps,
        enrollment: rules_from_proto(d.enrollment.as_ref(), v),
    }
}

fn rules_from_proto(r: Option<&pb::EnrollmentRules>, v: &mut Violations) -> Rules {
    let r = r.cloned().unwrap_or_default();
    let trigger = match pb::Trigger::try_from(r.trigger) {
        Ok(pb::Trigger::Unspecified | pb::Trigger::Manual) => Trigger::Manual,
        Ok(pb::Trigger::Captured) => Trigger::Captured,
        Ok(pb::Trigger::StageRecycled) => Trigger::StageRecycled,
        Ok(pb::Trigger::StageLost) => Trigger::StageLost,
        Ok(pb::Trigger::LeadMagnet) => Trigger::LeadMagnet,
        Ok(pb::Trigger::SegmentEntered) => Trigger::SegmentEntered,
        Err(_) => {
            v.add("definition.enrollment.trigger", "unknown trigger");
            Trigger::Manual
        }
    };
    let re_enrollment = match pb::ReEnrollment::try_from(r.re_enrollment) {
        Ok(pb::ReEnrollment::Unspecified | pb::ReEnrollment::Never) => ReEnrollment::Never,
        Ok(pb::ReEnrollment::AfterExit) => ReEnrollment::AfterExit,
        Err(_) => {
            v.add("definition.enrollment.re_enrollment", "unknown policy");
            ReEnrollment::Never
        }
    };
    Rules {
        trigger,
        lead_magnet: r.lead_magnet.trim().to_owned(),
        re_enrollment,
        segment_key: r.segment_key.trim().to_owned(),
    }
}

fn step_from_proto(i: usize, s: &pb::Step, v: &mut Violations) -> Option<Step> {
    let at = format!("definition.steps[{i}]");
    let kind = match &s.kind {
        None => {
            v.add(at, "needs one of send_email, wait, branch or goal");
            // Kept as a goal so that later steps keep their positions in violations.
            StepKind::Goal {
                goal: GoalKind::BecameMql,
            }
        }
        Some(Kind::SendEmail(e)) => StepKind::SendEmail(Email {
            subject: e.subject.clone(),
            html_body: e.html_body.clone(),
            text_body: e.text_body.clone(),
            from_address: e.from_address.trim().to_owned(),
            from_name: e.from_name.trim().to_owned(),
            reply_to: e.reply_to.trim().to_owned(),
        }),
        Some(Kind::Wait(w)) => wait_from_proto(&at, w, v),
        Some(Kind::Branch(b)) => {
            let condition = match pb::BranchCondition::try_from(b.condition) {
                Ok(pb::BranchCondition::Opened) => Condition::Opened,
                Ok(pb::BranchCondition::Clicked) => Condition::Clicked,
                Ok(pb::BranchCondition::Replied) => Condition::Replied,
                _ => {
                    v.add(
                        format!("{at}.branch.condition"),
                        "is required: OPENED, CLICKED or REPLIED",
                    );
                    Condition::Opened
                }
            };
            StepKind::Branch(Branch {
                condition,
                within_hours: u32::try_from(b.within_hours).unwrap_or(0),
                then_step: b.then_step.trim().to_owned(),
                else_step: b.else_step.trim().to_owned(),
            })
        }
        Some(Kind::Goal(g)) => {
            let goal = match pb::GoalKind::try_from(g.kind) {
                Ok(pb::GoalKind::BecameMql) => GoalKind::BecameMql,
                Ok(pb::GoalKind::BecameSql) => GoalKind::BecameSql,
                Ok(pb::GoalKind::Replied) => GoalKind::Replied,
                Ok(pb::GoalKind::MeetingBooked) => GoalKind::MeetingBooked,
                _ => {
                    v.add(
                        format!("{at}.goal.kind"),
                        "is required: BECAME_MQL, BECAME_SQL, REPLIED or MEETING_BOOKED",
                    );
                    GoalKind::BecameMql
                }
            };
            StepKind::Goal { goal }
        }
    };
    Some(Step {
        id: s.id.trim().to_owned(),
        kind,
    })
}

fn wait_from_proto(at: &str, w: &pb::Wait, v: &mut Violations) -> StepKind {
    let until = w.until_weekday != 0;
    if until && w.seconds != 0 {
        v.add(
            format!("{at}.wait"),
            "give either seconds or until_weekday and until_hour, not both",
        );
    }
    if !until && w.until_hour != 0 {
        v.add(format!("{at}.wait.until_hour"), "needs until_weekday");
    }
    if until {
        StepKind::Wait(Wait::Until {
            weekday: u8::try_from(w.until_weekday).unwrap_or(u8::MAX),
            hour: u8::try_from(w.until_hour).unwrap_or(u8::MAX),
        })
    } else {
        StepKind::Wait(Wait::For { seconds: w.seconds })
    }
}

pub fn settings_to_proto(s: &Versioned) -> pb::NurtureSettings {
    let n = &s.settings;
    pb::NurtureSettings {
        version: s.version,
        require_opt_in: n.require_opt_in,
        cap_max_emails: n.cap_max_emails as i32,
        cap_window_days: n.cap_window_days as i32,
        quiet_start_hour: n.quiet_start_hour as i32,
        quiet_end_hour: n.quiet_end_hour as i32,
        default_time_zone: n.default_time_zone.clone(),
        max_active_enrollments: n.max_active_enrollments as i32,
        send_rate_per_second: n.send_rate_per_second as i32,
        cooldown_hours: n
            .cooldown_hours
            .iter()
            .map(|(k, h)| (k.clone(), *h as i32))
            .collect(),
        bot_rules: Some(pb::BotRules {
            user_agents: n.bot_rules.user_agents.clone(),
            networks: n.bot_rules.networks.clone(),
            min_seconds_after_delivery: n.bot_rules.min_seconds_after_delivery as i32,
            all_links_count: n.bot_rules.all_links_count as i32,
            all_links_seconds: n.bot_rules.all_links_seconds as i32,
        }),
        soft_bounce_retries: n.soft_bounce_retries as i32,
        soft_bounce_backoff_seconds: n.soft_bounce_backoff_seconds as i32,
        updated_at: time::to_proto_opt(s.updated_at),
    }
}

/// A request's settings (whole: every field is read; negative numbers are violations).
pub fn settings_from_proto(p: Option<&pb::NurtureSettings>, v: &mut Violations) -> NurtureSettings {
    let Some(p) = p else {
        v.add("settings", "is required");
        return NurtureSettings::default();
    };
    let mut n = |field: &str, x: i32| -> u32 {
        u32::try_from(x).unwrap_or_else(|_| {
            v.add(format!("settings.{field}"), "must not be negative");
            0
        })
    };
    let rules = p.bot_rules.clone().unwrap_or_default();
    let bot_rules = BotRules {
        min_seconds_after_delivery: n(
            "bot_rules.min_seconds_after_delivery",
            rules.min_seconds_after_delivery,
        ),
        all_links_count: n("bot_rules.all_links_count", rules.all_links_count),
        all_links_seconds: n("bot_rules.all_links_seconds", rules.all_links_seconds),
        user_agents: rules
            .user_agents
            .iter()
            .map(|a| a.trim().to_owned())
            .collect(),
        networks: rules.networks.iter().map(|a| a.trim().to_owned()).collect(),
    };
    let mut cooldown_hours = std::collections::BTreeMap::new();
    for (k, h) in &p.cooldown_hours {
        cooldown_hours.insert(k.trim().to_owned(), n(&format!("cooldown_hours[{k}]"), *h));
    }
    NurtureSettings {
        require_opt_in: p.require_opt_in,
        cap_max_emails: n("cap_max_emails", p.cap_max_emails),
        cap_window_days: n("cap_window_days", p.cap_window_days),
        quiet_start_hour: n("quiet_start_hour", p.quiet_start_hour),
        quiet_end_hour: n("quiet_end_hour", p.quiet_end_hour),
        default_time_zone: p.default_time_zone.trim().to_owned(),
        max_active_enrollments: n("max_active_enrollments", p.max_active_enrollments),
        send_rate_per_second: n("send_rate_per_second", p.send_rate_per_second),
        cooldown_hours,
        bot_rules,
        soft_bounce_retries: n("soft_bounce_retries", p.soft_bounce_retries),
        soft_bounce_backoff_seconds: n(
            "soft_bounce_backoff_seconds",
            p.soft_bounce_backoff_seconds,
        ),
    }
}

pub fn pool_to_proto(p: &Pool) -> pb::RecyclePool {
    pb::RecyclePool {
        known_leads: p.known,
        pool_leads: p.pool,
        pool_share: if p.known == 0 {
            0.0
        } else {
            p.pool as f64 / p.known as f64
        },
        groups: p
            .groups
            .iter()
            .map(|((stage, reason), g)| pb::RecycleGroup {
                stage: stage.clone(),
                reason: reason.clone(),
                leads: g.leads,
                age_0_30_days: g.by_age[0],
                age_31_90_days: g.by_age[1],
                age_91_180_days: g.by_age[2],
                age_over_180_days: g.by_age[3],
            })
            .collect(),
        cooling_down: p.cooling_down,
        in_sequence: p.in_sequence,
        as_of: Some(time::to_proto(p.as_of)),
    }
}

pub fn segment_to_proto(row: &segment::Model, def: &SegmentDefinition) -> pb::Segment {
    pb::Segment {
        segment_id: row.segment_id.clone(),
        key: row.key.clone(),
        name: row.name.clone(),
        version: row.version,
        definition: Some(segment_definition_to_proto(def)),
        created_at: Some(time::to_proto(row.created_at)),
    }
}

fn segment_definition_to_proto(def: &SegmentDefinition) -> pb::SegmentDefinition {
    use pb::segment_condition::Kind as K;
    let conditions = def
        .conditions
        .iter()
        .map(|c| {
            let kind = match c.clone() {
                SegmentCondition::Attribute {
                    field,
                    any_of,
                    contains,
                } => K::Attribute(pb::AttributeCondition {
                    field,
                    any_of,
                    contains,
                }),
                SegmentCondition::Number {
                    field,
                    min,
                    max,
                    currency_code,
                } => K::Number(pb::NumberCondition {
                    field,
                    min,
                    max,
                    currency_code,
                }),
                SegmentCondition::Activity {
                    kind,
                    page_kind,
                    min_count,
                    max_count,
                    within_days,
                } => K::Activity(pb::ActivityCondition {
                    kind,
                    page_kind,
                    min_count: min_count as i32,
                    max_count: max_count.map(|m| m as i32),
                    within_days: within_days as i32,
                }),
                SegmentCondition::Stage { any_of } => K::Stage(pb::StageCondition { any_of }),
                SegmentCondition::Rank { any_of } => K::Rank(pb::RankCondition { any_of }),
                SegmentCondition::Interest {
                    lead_magnets,
                    page_kinds,
                    within_days,
                } => K::Interest(pb::InterestCondition {
                    lead_magnets,
                    page_kinds,
                    within_days: within_days as i32,
                }),
                SegmentCondition::Consent { mailable } => {
                    K::Consent(pb::ConsentCondition { mailable })
                }
            };
            pb::SegmentCondition { kind: Some(kind) }
        })
        .collect();
    pb::SegmentDefinition { conditions }
}

/// A request's segment definition; a negative number or a missing kind is a violation (the
/// domain's `validate` checks the rest).
pub fn segment_definition_from_proto(
    d: Option<&pb::SegmentDefinition>,
    v: &mut Violations,
) -> SegmentDefinition {
    use pb::segment_condition::Kind as K;
    let Some(d) = d else {
        return SegmentDefinition::default();
    };
    let mut conditions = Vec::with_capacity(d.conditions.len());
    for (i, c) in d.conditions.iter().enumerate() {
        let at = format!("definition.conditions[{i}]");
        let mut count = |field: &str, n: i32| {
            u32::try_from(n).unwrap_or_else(|_| {
                v.add(format!("{at}.{field}"), "must not be negative");
                0
            })
        };
        let condition = match c.kind.clone() {
            None => {
                v.add(at.clone(), "needs one kind of condition");
                continue;
            }
            Some(K::Attribute(a)) => SegmentCondition::Attribute {
                field: a.field.trim().to_owned(),
                any_of: a.any_of.iter().map(|x| x.trim().to_owned()).collect(),
                contains: a.contains.trim().to_owned(),
            },
            Some(K::Number(n)) => SegmentCondition::Number {
                field: n.field.trim().to_owned(),
                min: n.min,
                max: n.max,
                currency_code: n.currency_code.trim().to_uppercase(),
            },
            Some(K::Activity(a)) => SegmentCondition::Activity {
                kind: a.kind,
                page_kind: a.page_kind,
                min_count: count("activity.min_count", a.min_count),
                max_count: a.max_count.map(|m| count("activity.max_count", m)),
                within_days: count("activity.within_days", a.within_days),
            },
            Some(K::Stage(s)) => SegmentCondition::Stage { any_of: s.any_of },
            Some(K::Rank(r)) => SegmentCondition::Rank { any_of: r.any_of },
            Some(K::Interest(n)) => SegmentCondition::Interest {
                lead_magnets: n.lead_magnets.iter().map(|x| x.trim().to_owned()).collect(),
                page_kinds: n.page_kinds.clone(),
                within_days: count("interest.within_days", n.within_days),
            },
            Some(K::Consent(c)) => SegmentCondition::Consent {
                mailable: c.mailable,
            },
        };
        conditions.push(condition);
    }
    SegmentDefinition { conditions }
}
