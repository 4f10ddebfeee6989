//! The rules nurture never breaks, through the public APIs into the file sink: consent, the
//! frequency cap and quiet hours (each skip recorded with why); a merged lead nurtured once; a
//! lost deal recycled after its cool-down, and the recycle pool.

mod common;

use std::time::Duration;

use baton_proto::{
    capture::v1::{Consent, Lead, MergeLeadsRequest, UpdateLeadRequest},
    nurture::v1::{self as pb, EnrollmentState, ExitReason, TouchKind},
    qualification::v1::{ChangeStageRequest, GetStageRequest, Stage},
};
use baton_shared::{testing::eventually, time};
use chrono::{Timelike, Utc};
use common::{Floor, PATIENCE, Sink, active_sequence, email, enroll, wait};

fn outbox_files(floor: &Floor) -> Vec<String> {
    let dir = &floor.settings.delivery.outbox_dir;
    let mut files: Vec<_> = std::fs::read_dir(dir)
        .map(|d| d.filter_map(|e| e.ok().map(|e| e.path())).collect())
        .unwrap_or_else(|_| Vec::new());
    files.retain(|p: &std::path::PathBuf| p.extension().is_some_and(|e| e == "eml"));
    files
        .iter()
        .filter_map(|p| std::fs::read_to_string(p).ok())
        .collect()
}

async fn enrolments(floor: &Floor, lead: &str) -> Vec<pb::Enrollment> {
    let mut n = floor.nurture.clone();
    n.list_enrollments(pb::ListEnrollmentsRequest {
        lead_id: lead.into(),
        ..Default::default()
    })
    .await
    .unwrap()
    .into_inner()
    .enrollments
}

/// Enrols `lead` in an active one-mail sequence "hello" ("Hi {{first_name}}").
async fn say_hello(floor: &Floor, lead: &str) {
    active_sequence(
        floor,
        "hello",
        vec![email("hi", "Hi {{first_name}}", "<p>x</p>")],
    )
    .await;
    enroll(floor, lead, "hello").await;
}

#[tokio::test]
async fn the_file_sink_keeps_each_mail_as_an_eml_file_with_the_unsubscribe_headers() {
    let floor = Floor::start(Sink::File).await;
    floor.tune(|_| {}).await;
    let lead = floor.lead("file@example.co.jp", "Fumi", true).await;
    say_hello(&floor, &lead).await;
    let files = eventually("an .eml file", PATIENCE, || async {
        let f = outbox_files(&floor);
        (!f.is_empty()).then_some(f)
    })
    .await;
    let mail = &files[0];
    assert_eq!(common::header(mail, "Subject").as_deref(), Some("Hi Fumi"));
    assert!(common::header(mail, "List-Unsubscribe").is_some());
    assert_eq!(
        common::header(mail, "List-Unsubscribe-Post").as_deref(),
        Some("List-Unsubscribe=One-Click")
    );
    floor.stop().await;
}

#[tokio::test]
async fn consent_caps_and_quiet_hours_skip_sends_and_say_why() {
    let floor = Floor::start(Sink::File).await;
    // At most one mail in 7 days; quiet hours around the current UTC hour for leads in UTC.
    let hour = Utc::now().hour();
    floor
        .tune(|s| {
            s.cap_max_emails = 1;
            s.cap_window_days = 7;
        })
        .await;
    active_sequence(
        &floor,
        "pair",
        vec![
            email("first", "First", "<p>1</p>"),
            wait("pause", 1),
            email("second", "Second", "<p>2</p>"),
        ],
    )
    .await;

    // No opt-in: each mail is skipped, the sequence runs to its end, nothing is sent.
    let silent = floor.lead("silent@example.co.jp", "Shin", false).await;
    enroll(&floor, &silent, "pair").await;
    eventually("the silent lead's sequence ends", PATIENCE, || async {
        let e = enrolments(&floor, &silent).await.remove(0);
        (e.state == EnrollmentState::Completed as i32).then_some(())
    })
    .await;
    let skipped: Vec<(String, String)> = floor
        .touches(&silent)
        .await
        .iter()
        .map(|t| (t.skip_reason.clone(), t.step_id.clone()))
        .collect();
    assert_eq!(
        skipped,
        vec![
            ("no_opt_in".to_owned(), "first".to_owned()),
            ("no_opt_in".to_owned(), "second".to_owned())
        ]
    );

    // The cap: the first mail goes, the second waits until the first leaves the 7-day window.
    let capped = floor.lead("capped@example.co.jp", "Kai", true).await;
    enroll(&floor, &capped, "pair").await;
    let held = floor
        .touch(&capped, "the capped second mail", |t| {
            t.kind == TouchKind::Skipped as i32
        })
        .await;
    let sent = floor
        .touches(&capped)
        .await
        .into_iter()
        .find(|t| t.kind == TouchKind::Sent as i32)
        .unwrap();
    let sent_at = sent.at.as_ref().and_then(time::from_proto).unwrap();
    let retry_at = held.retry_at.as_ref().and_then(time::from_proto).unwrap();
    assert_eq!(
        (held.skip_reason.as_str(), held.step_id.as_str()),
        ("frequency_cap", "second")
    );
    assert_eq!(
        retry_at,
        sent_at + chrono::Duration::days(7) + chrono::Duration::seconds(1)
    );
    let e = enrolments(&floor, &capped).await.remove(0);
    assert_eq!(
        (e.state, e.next_step_id.as_str()),
        (EnrollmentState::Active as i32, "second")
    );
    assert_eq!(
        e.next_step_due_at.as_ref().and_then(time::from_proto),
        Some(retry_at)
    );

    // Quiet hours in the lead's own time zone: the mail waits until they end.
    floor
        .tune(|s| {
            s.quiet_start_hour = hour as i32;
            s.quiet_end_hour = ((hour + 2) % 24) as i32;
            s.cap_max_emails = 3;
        })
        .await;
    let night = floor.lead("night@example.co.jp", "Yoru", true).await;
    enroll(&floor, &night, "pair").await;
    let quiet = floor
        .touch(&night, "the quiet-hours skip", |t| {
            t.kind == TouchKind::Skipped as i32
        })
        .await;
    assert_eq!(quiet.skip_reason, "quiet_hours");
    let until = quiet.retry_at.as_ref().and_then(time::from_proto).unwrap();
    assert_eq!(
        (until.hour(), until.minute()),
        ((hour + 2) % 24, 0),
        "{until}"
    );

    // Do not contact: the enrolment ends at once, before its next step.
    let dnc = floor.lead("dnc@example.co.jp", "Dan", true).await;
    active_sequence(
        &floor,
        "long",
        vec![
            email("a", "A", "<p>a</p>"),
            wait("w", 3600),
            email("b", "B", "<p>b</p>"),
        ],
    )
    .await;
    floor.tune(|s| s.cap_max_emails = 3).await;
    enroll(&floor, &dnc, "long").await;
    floor
        .touch(&dnc, "the first mail", |t| t.kind == TouchKind::Sent as i32)
        .await;
    let mut c = floor.capture.clone();
    c.update_lead(UpdateLeadRequest {
        lead_id: dnc.clone(),
        lead: Some(Lead {
            consent: Some(Consent {
                email_opt_in: true,
                do_not_contact: true,
                ..Default::default()
            }),
            ..Default::default()
        }),
        update_mask: Some(prost_types::FieldMask {
            paths: vec!["consent.do_not_contact".into()],
        }),
    })
    .await
    .unwrap();
    eventually("the do-not-contact exit", PATIENCE, || async {
        let e = enrolments(&floor, &dnc).await.remove(0);
        (e.exit_reason == ExitReason::DoNotContact as i32).then_some(())
    })
    .await;
    floor.stop().await;
}

#[tokio::test]
async fn a_merged_lead_is_nurtured_once() {
    let floor = Floor::start(Sink::File).await;
    floor.tune(|_| {}).await;
    active_sequence(
        &floor,
        "slow",
        vec![
            email("a", "A", "<p>a</p>"),
            wait("w", 3600),
            email("b", "B", "<p>b</p>"),
        ],
    )
    .await;
    active_sequence(
        &floor,
        "other",
        vec![email("c", "C", "<p>c</p>"), wait("w", 3600)],
    )
    .await;
    let survivor = floor.lead("kenji@example.co.jp", "Kenji", true).await;
    let duplicate = floor.lead("kenji.sato@example.co.jp", "Kenji", true).await;
    enroll(&floor, &survivor, "slow").await;
    enroll(&floor, &duplicate, "slow").await;
    enroll(&floor, &duplicate, "other").await;
    // Every first mail is out before the merge: one to the survivor, two to the duplicate.
    for (lead, mails) in [(&survivor, 1), (&duplicate, 2)] {
        eventually("the first mails", PATIENCE, || async {
            let sent = floor
                .touches(lead)
                .await
                .iter()
                .filter(|t| t.kind == TouchKind::Sent as i32)
                .count();
            (sent == mails).then_some(())
        })
        .await;
    }
    let mut c = floor.capture.clone();
    c.merge_leads(MergeLeadsRequest {
        survivor_lead_id: survivor.clone(),
        merged_lead_id: duplicate.clone(),
    })
    .await
    .unwrap();
    // The duplicate's "slow" ends (the survivor is in it); its "other" moves to the survivor.
    let mine = eventually("the merge applied", PATIENCE, || async {
        let e = enrolments(&floor, &survivor).await;
        (e.len() == 2).then_some(e)
    })
    .await;
    let keys: Vec<(&str, i32)> = mine
        .iter()
        .map(|e| (e.sequence_key.as_str(), e.state))
        .collect();
    assert_eq!(
        keys,
        vec![
            ("slow", EnrollmentState::Active as i32),
            ("other", EnrollmentState::Active as i32)
        ]
    );
    let gone = enrolments(&floor, &duplicate).await;
    assert_eq!(gone.len(), 1);
    assert_eq!(
        (gone[0].sequence_key.as_str(), gone[0].exit_reason),
        ("slow", ExitReason::Merged as i32)
    );
    // The duplicate's mails are the survivor's now (the cap counts them): 3 sends, one person.
    let sent = floor
        .touches(&survivor)
        .await
        .iter()
        .filter(|t| t.kind == TouchKind::Sent as i32)
        .count();
    assert_eq!(sent, 3);
    let mut n = floor.nurture.clone();
    let refused = n
        .enroll(pb::EnrollRequest {
            request_id: "after-merge".into(),
            lead_id: duplicate.clone(),
            sequence_key: "slow".into(),
        })
        .await
        .unwrap_err();
    assert_eq!(refused.code(), tonic::Code::FailedPrecondition);
    assert!(
        refused.message().contains(&survivor),
        "{}",
        refused.message()
    );
    floor.stop().await;
}

#[tokio::test]
async fn a_lost_deal_is_recycled_after_its_cool_down_and_counted_in_the_pool() {
    let floor = Floor::start(Sink::File).await;
    floor
        .tune(|s| {
            s.cooldown_hours.insert("competitor".into(), 48);
            s.cooldown_hours.insert("timing".into(), 0);
        })
        .await;
    let mut n = floor.nurture.clone();
    n.activate_sequence(pb::ActivateSequenceRequest {
        key: "win_back".into(),
    })
    .await
    .unwrap();
    let later = floor.lead("later@example.co.jp", "Rin", true).await;
    let now_ready = floor.lead("now@example.co.jp", "Nao", true).await;
    let other = floor.lead("other@example.co.jp", "Oto", true).await;
    let mut q = floor.qualification.clone();
    for (lead, reason) in [(&later, "competitor"), (&now_ready, "timing")] {
        eventually("qualification knows the lead", PATIENCE, || {
            let mut q = q.clone();
            let lead = lead.clone();
            async move {
                q.get_stage(GetStageRequest { lead_id: lead })
                    .await
                    .ok()
                    .map(|_| ())
            }
        })
        .await;
        q.change_stage(ChangeStageRequest {
            lead_id: lead.clone(),
            to_stage: Stage::Lost as i32,
            reason: reason.into(),
            changed_by: String::new(),
            override_reason: String::new(),
        })
        .await
        .unwrap();
    }
    // "timing" cools down for 0 hours: the win-back mail goes at once.
    floor
        .touch(&now_ready, "the win-back mail", |t| {
            t.kind == TouchKind::Sent as i32
        })
        .await;
    // "competitor" cools down 48 hours: enrolled, first step due 48 h after the loss, nothing sent.
    let e = eventually("the cooling enrolment", PATIENCE, || async {
        enrolments(&floor, &later).await.into_iter().next()
    })
    .await;
    assert_eq!(
        (e.sequence_key.as_str(), e.enrolled_by.as_str(), e.next_step),
        ("win_back", "stage_lost", 0)
    );
    let changed_at = {
        let s = q
            .get_stage(GetStageRequest {
                lead_id: later.clone(),
            })
            .await
            .unwrap()
            .into_inner();
        let last = s.history.last().unwrap();
        last.changed_at.as_ref().and_then(time::from_proto).unwrap()
    };
    assert_eq!(
        e.next_step_due_at.as_ref().and_then(time::from_proto),
        Some(changed_at + chrono::Duration::hours(48))
    );
    tokio::time::sleep(Duration::from_millis(500)).await;
    assert!(
        floor.touches(&later).await.is_empty(),
        "nothing before the cool-down"
    );

    let pool = n
        .get_recycle_pool(pb::GetRecyclePoolRequest {})
        .await
        .unwrap()
        .into_inner();
    // 3 leads known, 2 lost: share 2 / 3; one cooling down, one in its sequence.
    assert_eq!((pool.known_leads, pool.pool_leads), (3, 2));
    assert!((pool.pool_share - 2.0 / 3.0).abs() < 1e-9);
    assert_eq!((pool.cooling_down, pool.in_sequence), (1, 1));
    let groups: Vec<(&str, &str, i64, i64)> = pool
        .groups
        .iter()
        .map(|g| {
            (
                g.stage.as_str(),
                g.reason.as_str(),
                g.leads,
                g.age_0_30_days,
            )
        })
        .collect();
    assert_eq!(
        groups,
        vec![("lost", "competitor", 1, 1), ("lost", "timing", 1, 1)]
    );
    let _ = other;
    floor.stop().await;
}

/// A scheduler round that fails after it claimed an enrolment (here nurture's database refuses
/// the lead's touch, as a busy SQLite or a dropped connection would fail the round) gives the
/// claim back: once the fault is gone the mail goes out at the next round, within seconds, not
/// when the claim's two-minute lease runs out.
#[tokio::test]
async fn a_failed_scheduler_round_gives_its_claims_back() {
    let floor = Floor::start(Sink::File).await;
    floor.tune(|_| {}).await;
    let lead = floor.lead("stalled@example.co.jp", "Sora", true).await;
    let url = floor.nurture_db.url.clone();
    let (refuse, mend) = if floor.nurture_db.is_postgres() {
        (
            format!(
                "CREATE FUNCTION refuse_touch() RETURNS trigger AS $$ BEGIN \
                   IF NEW.lead_id = '{lead}' THEN RAISE EXCEPTION 'refused by the test'; END IF; \
                   RETURN NEW; END $$ LANGUAGE plpgsql; \
                 CREATE TRIGGER refuse_touch BEFORE INSERT ON touch \
                 FOR EACH ROW EXECUTE FUNCTION refuse_touch();"
            ),
            "DROP TRIGGER refuse_touch ON touch",
        )
    } else {
        (
            format!(
                "CREATE TRIGGER refuse_touch BEFORE INSERT ON touch \
                 WHEN NEW.lead_id = '{lead}' BEGIN SELECT RAISE(ABORT, 'refused by the test'); END;"
            ),
            "DROP TRIGGER refuse_touch",
        )
    };
    baton_shared::testing::execute(&url, &refuse).await;
    say_hello(&floor, &lead).await;
    // Rounds run every 500 ms: several claim the enrolment and fail on its touch.
    tokio::time::sleep(Duration::from_secs(3)).await;
    assert!(outbox_files(&floor).is_empty(), "nothing is sent meanwhile");
    baton_shared::testing::execute(&url, mend).await;
    eventually(
        "the mail, well before the lease runs out",
        Duration::from_secs(20),
        || async {
            let f = outbox_files(&floor);
            f.iter().any(|m| m.contains("Hi Sora")).then_some(())
        },
    )
    .await;
    floor.stop().await;
}
