//! nurture's gRPC API over a real socket, fed by a real capture service: sequences validated
//! whole and versioned, enrolments and their refusals, settings.

mod common;

use std::collections::HashMap;

use baton_proto::nurture::v1::{
    self as pb, EnrollmentState, ListEnrollmentsRequest, SequenceState,
};
use common::{Floor, PATIENCE, Sink, active_sequence, email, enroll, wait};
use tonic::Code;
use tonic_types::StatusExt;

fn bad_fields(status: &tonic::Status) -> Vec<String> {
    status
        .get_details_bad_request()
        .map(|b| b.field_violations.iter().map(|v| v.field.clone()).collect())
        .unwrap_or_default()
}

fn rule(status: &tonic::Status) -> String {
    status
        .get_details_precondition_failure()
        .and_then(|p| p.violations.first().map(|v| v.subject.clone()))
        .unwrap_or_default()
}

fn definition(steps: Vec<pb::Step>) -> Option<pb::SequenceDefinition> {
    Some(pb::SequenceDefinition {
        steps,
        enrollment: None,
    })
}

#[tokio::test]
async fn a_sequence_is_validated_whole_then_versioned_through_draft_active_and_paused() {
    let floor = Floor::start(Sink::File).await;
    let mut n = floor.nurture.clone();

    // Every problem at once, each under its field.
    let broken = n
        .create_sequence(pb::CreateSequenceRequest {
            key: "Bad Key".into(),
            name: String::new(),
            definition: definition(vec![
                common::branch("b", pb::BranchCondition::Opened, 0, "nowhere", ""),
                pb::Step {
                    id: "x".into(),
                    kind: Some(pb::step::Kind::SendEmail(pb::SendEmail {
                        subject: "Hi {{nickname}}".into(),
                        text_body: "t".into(),
                        from_address: "not-an-address".into(),
                        ..Default::default()
                    })),
                },
                wait("x", 0),
            ]),
        })
        .await
        .unwrap_err();
    assert_eq!(broken.code(), Code::InvalidArgument);
    assert_eq!(
        bad_fields(&broken),
        vec![
            "key",
            "name",
            "definition.steps[0].branch.within_hours",
            "definition.steps[0].branch.condition",
            "definition.steps[0].branch.then_step",
            "definition.steps[1].send_email.subject",
            "definition.steps[1].send_email.from_address",
            "definition.steps[2].id",
            "definition.steps[2].wait.seconds",
        ]
    );

    // A draft is edited in place; activating it makes it enrol.
    let steps = vec![email("hello", "Hello", "<p>Hi</p>"), wait("pause", 3600)];
    let created = n
        .create_sequence(pb::CreateSequenceRequest {
            key: "intro".into(),
            name: "Intro".into(),
            definition: definition(steps.clone()),
        })
        .await
        .unwrap()
        .into_inner();
    assert_eq!(
        (created.version, created.state),
        (1, SequenceState::Draft as i32)
    );
    let again = n
        .create_sequence(pb::CreateSequenceRequest {
            key: "intro".into(),
            name: "Intro".into(),
            definition: definition(steps.clone()),
        })
        .await
        .unwrap_err();
    assert_eq!(again.code(), Code::AlreadyExists);
    let edited = n
        .update_sequence(pb::UpdateSequenceRequest {
            key: "intro".into(),
            name: "Intro, edited".into(),
            definition: definition(steps.clone()),
            expected_version: 1,
        })
        .await
        .unwrap()
        .into_inner();
    assert_eq!(
        (edited.version, edited.sequence_id.as_str()),
        (1, created.sequence_id.as_str())
    );

    let lead = floor.lead("ren@example.co.jp", "Ren", true).await;
    let not_active = n
        .enroll(pb::EnrollRequest {
            request_id: "e1".into(),
            lead_id: lead.clone(),
            sequence_key: "intro".into(),
        })
        .await
        .unwrap_err();
    assert_eq!(
        (not_active.code(), rule(&not_active).as_str()),
        (Code::FailedPrecondition, "sequence_not_active")
    );

    let active = n
        .activate_sequence(pb::ActivateSequenceRequest {
            key: "intro".into(),
        })
        .await
        .unwrap()
        .into_inner();
    assert_eq!(active.state, SequenceState::Active as i32);
    let twice = n
        .activate_sequence(pb::ActivateSequenceRequest {
            key: "intro".into(),
        })
        .await
        .unwrap_err();
    assert_eq!(rule(&twice), "already_active");
    let on_v1 = enroll(&floor, &lead, "intro").await;
    assert_eq!(
        (on_v1.sequence_version, on_v1.enrolled_by.as_str()),
        (1, "manual")
    );

    // Editing the active sequence makes version 2; the running enrolment stays on version 1.
    let stale = n
        .update_sequence(pb::UpdateSequenceRequest {
            key: "intro".into(),
            name: "Intro".into(),
            definition: definition(steps.clone()),
            expected_version: 7,
        })
        .await
        .unwrap_err();
    assert_eq!(rule(&stale), "version_conflict");
    let v2 = n
        .update_sequence(pb::UpdateSequenceRequest {
            key: "intro".into(),
            name: "Intro v2".into(),
            definition: definition(vec![email("hello", "Hello again", "<p>Hi</p>")]),
            expected_version: 1,
        })
        .await
        .unwrap()
        .into_inner();
    assert_eq!((v2.version, v2.state), (2, SequenceState::Active as i32));
    let v1 = n
        .get_sequence(pb::GetSequenceRequest {
            key: "intro".into(),
            version: 1,
        })
        .await
        .unwrap()
        .into_inner();
    assert_eq!(v1.state, SequenceState::Superseded as i32);
    let mine = n
        .list_enrollments(ListEnrollmentsRequest {
            lead_id: lead.clone(),
            ..Default::default()
        })
        .await
        .unwrap()
        .into_inner()
        .enrollments;
    assert_eq!(mine.len(), 1);
    assert_eq!(
        (mine[0].sequence_version, mine[0].sequence_id.as_str()),
        (1, created.sequence_id.as_str())
    );

    let paused = n
        .pause_sequence(pb::PauseSequenceRequest {
            key: "intro".into(),
        })
        .await
        .unwrap()
        .into_inner();
    assert_eq!(
        (paused.version, paused.state),
        (2, SequenceState::Paused as i32)
    );
    let listed = n
        .list_sequences(pb::ListSequencesRequest::default())
        .await
        .unwrap()
        .into_inner()
        .sequences;
    let by_key: HashMap<&str, (i32, i32)> = listed
        .iter()
        .map(|s| (s.key.as_str(), (s.version, s.state)))
        .collect();
    // The defaults are seeded as drafts beside the tenant's own; superseded versions are not listed.
    assert_eq!(by_key["intro"], (2, SequenceState::Paused as i32));
    for default in ["welcome", "re_engagement", "win_back"] {
        assert_eq!(
            by_key[default],
            (1, SequenceState::Draft as i32),
            "{default}"
        );
    }
    assert_eq!(listed.len(), 4);
    let missing = n
        .get_sequence(pb::GetSequenceRequest {
            key: "nope".into(),
            version: 0,
        })
        .await
        .unwrap_err();
    assert_eq!(missing.code(), Code::NotFound);
    floor.stop().await;
}

#[tokio::test]
async fn enrolment_is_idempotent_and_refused_by_rule() {
    let floor = Floor::start(Sink::File).await;
    let mut n = floor.nurture.clone();
    floor.tune(|s| s.max_active_enrollments = 1).await;
    active_sequence(
        &floor,
        "slow",
        vec![email("a", "A", "<p>a</p>"), wait("w", 86_400)],
    )
    .await;
    active_sequence(
        &floor,
        "other",
        vec![email("b", "B", "<p>b</p>"), wait("w", 86_400)],
    )
    .await;
    let lead = floor.lead("mio@example.co.jp", "Mio", true).await;

    let req = |id: &str, key: &str| pb::EnrollRequest {
        request_id: id.into(),
        lead_id: lead.clone(),
        sequence_key: key.into(),
    };
    let first = n.enroll(req("r1", "slow")).await.unwrap().into_inner();
    let replay = n.enroll(req("r1", "slow")).await.unwrap().into_inner();
    assert_eq!(
        first.enrollment_id, replay.enrollment_id,
        "the same request_id is the same enrolment"
    );
    let twice = n.enroll(req("r2", "slow")).await.unwrap_err();
    assert_eq!(rule(&twice), "already_enrolled");
    let limit = n.enroll(req("r3", "other")).await.unwrap_err();
    assert_eq!(rule(&limit), "too_many_active");
    let reused = n.enroll(req("r1", "other")).await.unwrap_err();
    assert_eq!(bad_fields(&reused), vec!["request_id"]);
    let unknown = n
        .enroll(pb::EnrollRequest {
            request_id: "r4".into(),
            lead_id: "no-such-lead".into(),
            sequence_key: "slow".into(),
        })
        .await
        .unwrap_err();
    assert_eq!(unknown.code(), Code::NotFound);
    let empty = n.enroll(pb::EnrollRequest::default()).await.unwrap_err();
    assert_eq!(
        bad_fields(&empty),
        vec!["request_id", "lead_id", "sequence_key"]
    );

    let exited = n
        .exit_enrollment(pb::ExitEnrollmentRequest {
            enrollment_id: first.enrollment_id.clone(),
        })
        .await
        .unwrap()
        .into_inner();
    assert_eq!(
        (exited.state, exited.exit_reason),
        (
            EnrollmentState::Exited as i32,
            pb::ExitReason::Manual as i32
        )
    );
    let ended = n
        .exit_enrollment(pb::ExitEnrollmentRequest {
            enrollment_id: first.enrollment_id.clone(),
        })
        .await
        .unwrap_err();
    assert_eq!(rule(&ended), "active_only");
    // With the first one ended, the limit lets the other sequence in.
    n.enroll(req("r5", "other")).await.unwrap();
    floor.stop().await;
}

#[tokio::test]
async fn the_welcome_sequence_enrols_every_new_lead_once_when_it_is_active() {
    let floor = Floor::start(Sink::File).await;
    let mut n = floor.nurture.clone();
    n.activate_sequence(pb::ActivateSequenceRequest {
        key: "welcome".into(),
    })
    .await
    .unwrap();
    let a = floor.lead("a@example.com", "A", false).await;
    let b = floor.lead("b@example.com", "B", false).await;
    let again = floor.lead("A@Example.com", "A", false).await;
    assert_eq!(a, again, "the same person is one lead");
    let enrolments = baton_shared::testing::eventually("two enrolments", PATIENCE, || {
        let mut n = n.clone();
        async move {
            let e = n
                .list_enrollments(ListEnrollmentsRequest {
                    sequence_key: "welcome".into(),
                    ..Default::default()
                })
                .await
                .ok()?
                .into_inner()
                .enrollments;
            (e.len() == 2).then_some(e)
        }
    })
    .await;
    let mut leads: Vec<&str> = enrolments.iter().map(|e| e.lead_id.as_str()).collect();
    leads.sort_unstable();
    let mut expected = vec![a.as_str(), b.as_str()];
    expected.sort_unstable();
    assert_eq!(leads, expected);
    assert!(enrolments.iter().all(|e| e.enrolled_by == "captured"));
    // Neither opted in: the welcome e-mail is skipped, with why, and the sequence goes on.
    let skipped = floor
        .touch(&b, "the skipped welcome", |t| {
            t.kind == pb::TouchKind::Skipped as i32
        })
        .await;
    assert_eq!(
        (skipped.skip_reason.as_str(), skipped.step_id.as_str()),
        ("no_opt_in", "welcome_email")
    );
    let bad = n
        .list_enrollments(ListEnrollmentsRequest {
            page_size: -1,
            ..Default::default()
        })
        .await
        .unwrap_err();
    assert_eq!(bad.code(), Code::InvalidArgument);
    floor.stop().await;
}

#[tokio::test]
async fn settings_are_validated_whole_and_versioned() {
    let floor = Floor::start(Sink::File).await;
    let mut n = floor.nurture.clone();
    let defaults = n
        .get_nurture_settings(pb::GetNurtureSettingsRequest {})
        .await
        .unwrap()
        .into_inner();
    assert_eq!(
        (
            defaults.version,
            defaults.cap_max_emails,
            defaults.cap_window_days,
            defaults.require_opt_in
        ),
        (1, 3, 7, true)
    );
    assert_eq!(
        (defaults.quiet_start_hour, defaults.quiet_end_hour),
        (20, 8)
    );
    assert_eq!(defaults.cooldown_hours.get("lost"), Some(&2160));
    let mut bad = defaults.clone();
    bad.cap_max_emails = 0;
    bad.default_time_zone = "Nowhere/Land".into();
    bad.bot_rules
        .as_mut()
        .unwrap()
        .networks
        .push("10.0.0.0/33".into());
    let refused = n
        .set_nurture_settings(pb::SetNurtureSettingsRequest {
            settings: Some(bad),
            expected_version: 1,
        })
        .await
        .unwrap_err();
    assert_eq!(
        bad_fields(&refused),
        vec![
            "settings.cap_max_emails",
            "settings.default_time_zone",
            "settings.bot_rules.networks"
        ]
    );
    let mut next = defaults.clone();
    next.default_time_zone = "Asia/Tokyo".into();
    let stored = n
        .set_nurture_settings(pb::SetNurtureSettingsRequest {
            settings: Some(next.clone()),
            expected_version: 1,
        })
        .await
        .unwrap()
        .into_inner();
    assert_eq!(
        (stored.version, stored.default_time_zone.as_str()),
        (2, "Asia/Tokyo")
    );
    let stale = n
        .set_nurture_settings(pb::SetNurtureSettingsRequest {
            settings: Some(next),
            expected_version: 1,
        })
        .await
        .unwrap_err();
    assert_eq!(rule(&stale), "version_conflict");
    floor.stop().await;
}
