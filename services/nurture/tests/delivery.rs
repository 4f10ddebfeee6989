//! Mail that really leaves: a branching sequence sent to a real SMTP server (aiosmtpd), opened
//! and clicked through the tracking endpoint over HTTP; scanners told from people; one-click
//! unsubscribe; bounces.

mod common;

use std::time::Duration;

use baton_proto::{
    capture::v1::GetLeadRequest,
    nurture::v1::{self as pb, BranchCondition, EnrollmentState, ExitReason, TouchKind},
    qualification::v1::ExplainScoreRequest,
};
use baton_shared::{testing::eventually, time};
use common::{
    BROWSER, Floor, PATIENCE, SENDER, Sink, active_sequence, branch, email, enroll, header,
    tracking_urls, wait,
};

/// The rule keys that count towards a lead's score now.
async fn fired(floor: &Floor, lead_id: &str) -> Vec<String> {
    let mut q = floor.qualification.clone();
    match q
        .explain_score(ExplainScoreRequest {
            lead_id: lead_id.into(),
        })
        .await
    {
        Ok(e) => e
            .into_inner()
            .contributions
            .iter()
            .map(|r| r.rule_key.clone())
            .collect(),
        Err(_) => Vec::new(),
    }
}

fn kinds(touches: &[pb::Touch]) -> Vec<(i32, String)> {
    touches
        .iter()
        .map(|t| (t.kind, t.step_id.clone()))
        .collect()
}

#[tokio::test]
async fn a_branching_sequence_sends_waits_and_branches_on_a_real_open_and_click() {
    let floor = Floor::start(Sink::Smtp).await;
    floor.tune(|_| {}).await;
    let smtp = floor.smtp.as_ref().unwrap();
    let lead = floor.lead("aiko@example.co.jp", "Aiko", true).await;
    active_sequence(
        &floor,
        "onboarding",
        vec![
            email(
                "hello",
                "Welcome {{first_name|there}}",
                r#"<html><body><p>Hi {{first_name}}</p><a href="https://example.com/guide">Guide</a></body></html>"#,
            ),
            wait("pause", 2),
            branch("opened", BranchCondition::Opened, 24, "more", "nudge"),
            email("nudge", "Did you see it?", "<p>nudge</p>"),
            email(
                "more",
                "More for you",
                r#"<p><a href="https://example.com/pricing?plan=pro&amp;src=mail">Pricing</a> <a href="https://example.com/case">Case</a></p>"#,
            ),
            branch("clicked", BranchCondition::Clicked, 24, "thanks", "bye"),
            email("thanks", "Thanks for reading", "<p>thanks</p>"),
            wait("end", 86_400),
            email("bye", "Goodbye", "<p>bye</p>"),
        ],
    )
    .await;
    let enrolment = enroll(&floor, &lead, "onboarding").await;

    // The first mail arrives at the SMTP server with its headers.
    let first = smtp.wait_for(1).await.remove(0);
    assert_eq!(header(&first, "Subject").as_deref(), Some("Welcome Aiko"));
    assert_eq!(
        header(&first, "From").as_deref(),
        Some(format!("\"Baton News\" <{SENDER}>").as_str())
    );
    assert_eq!(header(&first, "To").as_deref(), Some("aiko@example.co.jp"));
    let unsubscribe = header(&first, "List-Unsubscribe").expect("List-Unsubscribe");
    assert!(
        unsubscribe.starts_with(&format!("<{}/t/u/", floor.tracking)) && unsubscribe.ends_with('>'),
        "{unsubscribe}"
    );
    assert_eq!(
        header(&first, "List-Unsubscribe-Post").as_deref(),
        Some("List-Unsubscribe=One-Click")
    );
    let message_id = header(&first, "Message-ID").expect("Message-ID");
    let sent = floor
        .touch(&lead, "the first send", |t| {
            t.kind == TouchKind::Sent as i32
        })
        .await;
    assert_eq!(format!("{}", sent.message_id), message_id);

    // A person opens it: the pixel is a GIF; the branch takes the "opened" way after the wait.
    let pixel = tracking_urls(&first, "/t/o/").remove(0);
    let got = floor
        .http
        .get(&pixel)
        .header("user-agent", BROWSER)
        .send()
        .await
        .unwrap();
    assert_eq!(got.status(), 200);
    assert_eq!(got.headers()["content-type"], "image/gif");
    let second = smtp.wait_for(2).await.remove(1);
    assert_eq!(header(&second, "Subject").as_deref(), Some("More for you"));
    let touches = floor.touches(&lead).await;
    let at = |kind: TouchKind, step: &str| {
        touches
            .iter()
            .find(|t| t.kind == kind as i32 && t.step_id == step)
            .and_then(|t| t.at.as_ref().and_then(time::from_proto))
            .unwrap()
    };
    assert!(
        at(TouchKind::Sent, "more") - at(TouchKind::Sent, "hello") >= chrono::Duration::seconds(2),
        "the wait of 2 s was kept"
    );

    // The tracked links redirect only to the mail's own links; a forged or foreign token is 404.
    let links = tracking_urls(&second, "/t/c/");
    assert_eq!(links.len(), 2, "{links:?}");
    let click = floor
        .http
        .get(&links[0])
        .header("user-agent", BROWSER)
        .send()
        .await
        .unwrap();
    assert_eq!(click.status(), 302);
    assert_eq!(
        click.headers()["location"],
        "https://example.com/pricing?plan=pro&src=mail"
    );
    let forged = format!("{}x", links[1]);
    let refused = floor.http.get(&forged).send().await.unwrap();
    assert_eq!(refused.status(), 404);
    let key = std::fs::read(&floor.settings.tracking.key_file).unwrap();
    let signer = baton_nurture::domain::token::Signer::new(&key);
    let sent_more = touches
        .iter()
        .find(|t| t.kind == TouchKind::Sent as i32 && t.step_id == "more")
        .unwrap();
    let not_in_mail = signer.sign(&baton_nurture::domain::token::Claim {
        tenant: baton_shared::testing::TEST_TENANT.into(),
        touch_id: sent_more.touch_id.clone(),
        target: baton_nurture::domain::token::Target::Click(9),
    });
    let open_redirect = floor
        .http
        .get(format!("{}/t/c/{not_in_mail}", floor.tracking))
        .send()
        .await
        .unwrap();
    assert_eq!(open_redirect.status(), 404, "no open redirect");

    // The click takes the "clicked" way at once (no waiting for the branch's 24 hours).
    let third = smtp.wait_for(3).await.remove(2);
    assert_eq!(
        header(&third, "Subject").as_deref(),
        Some("Thanks for reading")
    );
    tokio::time::sleep(Duration::from_millis(500)).await;
    assert_eq!(
        smtp.messages().len(),
        3,
        "neither nudge nor goodbye was sent"
    );
    let touches = floor.touches(&lead).await;
    let sent_steps: Vec<String> = touches
        .iter()
        .filter(|t| t.kind == TouchKind::Sent as i32)
        .map(|t| t.step_id.clone())
        .collect();
    assert_eq!(sent_steps, vec!["hello", "more", "thanks"]);
    let opened = touches
        .iter()
        .find(|t| t.kind == TouchKind::Opened as i32)
        .unwrap();
    assert!(!opened.machine_generated, "{opened:?}");
    let clicked = touches
        .iter()
        .find(|t| t.kind == TouchKind::Clicked as i32)
        .unwrap();
    assert_eq!(
        (clicked.url.as_str(), clicked.machine_generated),
        ("https://example.com/pricing?plan=pro&src=mail", false)
    );
    let mut n = floor.nurture.clone();
    let e = n
        .list_enrollments(pb::ListEnrollmentsRequest {
            lead_id: lead.clone(),
            ..Default::default()
        })
        .await
        .unwrap()
        .into_inner()
        .enrollments
        .remove(0);
    assert_eq!(
        (e.enrollment_id.as_str(), e.state, e.next_step_id.as_str()),
        (
            enrolment.enrollment_id.as_str(),
            EnrollmentState::Active as i32,
            "bye"
        )
    );
    // Capture recorded the open and the click (through nurture's gRPC calls) and qualification
    // scored them.
    eventually("the open and click scored", PATIENCE, || async {
        let f = fired(&floor, &lead).await;
        (f.contains(&"email_opened".to_owned()) && f.contains(&"email_clicked".to_owned()))
            .then_some(())
    })
    .await;
    let _ = kinds(&touches);
    floor.stop().await;
}

#[tokio::test]
async fn a_scanners_hits_are_flagged_with_their_rule_and_do_not_score() {
    let floor = Floor::start(Sink::Smtp).await;
    floor
        .tune(|s| s.bot_rules.as_mut().unwrap().min_seconds_after_delivery = 3)
        .await;
    let smtp = floor.smtp.as_ref().unwrap();
    let lead = floor.lead("sora@example.co.jp", "Sora", true).await;
    active_sequence(
        &floor,
        "digest",
        vec![
            email(
                "digest",
                "Your digest",
                r#"<a href="https://example.com/1">1</a><a href="https://example.com/2">2</a><a href="https://example.com/3">3</a>"#,
            ),
            wait("later", 86_400),
        ],
    )
    .await;
    enroll(&floor, &lead, "digest").await;
    let mail = smtp.wait_for(1).await.remove(0);
    let links = tracking_urls(&mail, "/t/c/");
    assert_eq!(links.len(), 3);
    // A security gateway checks every link with its own agent, and once with HEAD; a browser
    // click one second after delivery is a scanner too (the rule says 3 s).
    for link in &links {
        let r = floor
            .http
            .get(link)
            .header(
                "user-agent",
                "Mozilla/5.0 (compatible; Mimecast Security Scanner)",
            )
            .send()
            .await
            .unwrap();
        assert_eq!(r.status(), 302, "a scanner is redirected like anyone");
    }
    floor
        .http
        .head(&links[0])
        .header("user-agent", BROWSER)
        .send()
        .await
        .unwrap();
    floor
        .http
        .get(&links[1])
        .header("user-agent", BROWSER)
        .send()
        .await
        .unwrap();
    let flagged = eventually("five machine clicks", PATIENCE, || async {
        let t: Vec<pb::Touch> = floor
            .touches(&lead)
            .await
            .into_iter()
            .filter(|t| t.kind == TouchKind::Clicked as i32)
            .collect();
        (t.len() == 5).then_some(t)
    })
    .await;
    let reasons: Vec<&str> = flagged.iter().map(|t| t.machine_reason.as_str()).collect();
    assert!(flagged.iter().all(|t| t.machine_generated), "{flagged:?}");
    assert_eq!(&reasons[..3], &["user_agent:Mimecast"; 3]);
    assert_eq!(reasons[3], "head_request");
    assert!(reasons[4].starts_with("too_soon:"), "{}", reasons[4]);
    // They reached capture flagged: qualification did not score them.
    tokio::time::sleep(Duration::from_secs(2)).await;
    assert!(
        !fired(&floor, &lead)
            .await
            .contains(&"email_clicked".to_owned()),
        "a machine's click does not score"
    );
    // A person clicking later (past the 5 s in which clicks on every link are a scanner's)
    // scores.
    tokio::time::sleep(Duration::from_secs(4)).await;
    floor
        .http
        .get(&links[2])
        .header("user-agent", BROWSER)
        .send()
        .await
        .unwrap();
    eventually("the person's click scored", PATIENCE, || async {
        fired(&floor, &lead)
            .await
            .contains(&"email_clicked".to_owned())
            .then_some(())
    })
    .await;
    let human = floor
        .touch(&lead, "the human click", |t| {
            t.kind == TouchKind::Clicked as i32 && !t.machine_generated
        })
        .await;
    assert_eq!(human.url, "https://example.com/3");
    floor.stop().await;
}

#[tokio::test]
async fn an_unsubscribe_by_one_click_stops_the_next_step() {
    let floor = Floor::start(Sink::Smtp).await;
    floor.tune(|_| {}).await;
    let smtp = floor.smtp.as_ref().unwrap();
    let lead = floor.lead("haru@example.co.jp", "Haru", true).await;
    active_sequence(
        &floor,
        "two",
        vec![
            email("first", "First", "<p>one</p>"),
            wait("pause", 3),
            email("second", "Second", "<p>two</p>"),
        ],
    )
    .await;
    let e = enroll(&floor, &lead, "two").await;
    let mail = smtp.wait_for(1).await.remove(0);
    let url = header(&mail, "List-Unsubscribe")
        .unwrap()
        .trim_start_matches('<')
        .trim_end_matches('>')
        .to_owned();
    // GET only shows the button (a scanner fetching it unsubscribes nobody).
    let page = floor.http.get(&url).send().await.unwrap();
    assert_eq!(page.status(), 200);
    assert!(page.text().await.unwrap().contains("method=post"));
    let still = floor.touches(&lead).await;
    assert!(
        !still
            .iter()
            .any(|t| t.kind == TouchKind::Unsubscribed as i32)
    );
    // The mail client's one-click POST (RFC 8058).
    let done = floor
        .http
        .post(&url)
        .header("content-type", "application/x-www-form-urlencoded")
        .body("List-Unsubscribe=One-Click")
        .send()
        .await
        .unwrap();
    assert_eq!(done.status(), 200);
    let mut n = floor.nurture.clone();
    let ended = n
        .list_enrollments(pb::ListEnrollmentsRequest {
            lead_id: lead.clone(),
            ..Default::default()
        })
        .await
        .unwrap()
        .into_inner()
        .enrollments
        .remove(0);
    assert_eq!(
        (ended.enrollment_id.as_str(), ended.state, ended.exit_reason),
        (
            e.enrollment_id.as_str(),
            EnrollmentState::Exited as i32,
            ExitReason::Unsubscribed as i32
        ),
        "stopped as soon as the POST was answered"
    );
    tokio::time::sleep(Duration::from_secs(4)).await;
    assert_eq!(smtp.messages().len(), 1, "the second step was never sent");
    // Capture's consent says so too (nurture recorded EMAIL_UNSUBSCRIBED there).
    eventually("capture's consent", PATIENCE, || async {
        let mut c = floor.capture.clone();
        let l = c
            .get_lead(GetLeadRequest {
                lead_id: lead.clone(),
            })
            .await
            .ok()?
            .into_inner();
        l.consent
            .filter(|c| c.unsubscribed && !c.email_opt_in)
            .map(|_| ())
    })
    .await;
    floor.stop().await;
}

#[tokio::test]
async fn a_hard_bounce_ends_nurture_and_a_soft_one_is_retried_with_backoff() {
    let floor = Floor::start(Sink::Smtp).await;
    floor
        .tune(|s| {
            s.soft_bounce_retries = 1;
            s.soft_bounce_backoff_seconds = 1;
        })
        .await;
    active_sequence(&floor, "one", vec![email("only", "Only", "<p>x</p>")]).await;
    let hard = floor.lead("hard-bounce@example.com", "Hard", true).await;
    let soft = floor.lead("soft-bounce@example.com", "Soft", true).await;
    enroll(&floor, &hard, "one").await;
    enroll(&floor, &soft, "one").await;
    let bounced = floor
        .touch(&hard, "the hard bounce", |t| {
            t.kind == TouchKind::Bounced as i32
        })
        .await;
    assert_eq!(bounced.bounce, "hard");
    assert!(bounced.detail.contains("550"), "{}", bounced.detail);
    let n = floor.nurture.clone();
    let list = |lead: String| {
        let mut n = n.clone();
        async move {
            n.list_enrollments(pb::ListEnrollmentsRequest {
                lead_id: lead,
                ..Default::default()
            })
            .await
            .unwrap()
            .into_inner()
            .enrollments
        }
    };
    let e = list(hard.clone()).await.remove(0);
    assert_eq!(
        (e.state, e.exit_reason),
        (
            EnrollmentState::Exited as i32,
            ExitReason::HardBounce as i32
        )
    );
    // A hard-bounced address is never mailed again: the next sequence skips it for good.
    active_sequence(&floor, "next", vec![email("n", "N", "<p>n</p>")]).await;
    floor
        .nurture
        .clone()
        .enroll(pb::EnrollRequest {
            request_id: "hard-next".into(),
            lead_id: hard.clone(),
            sequence_key: "next".into(),
        })
        .await
        .unwrap();
    let skipped = floor
        .touch(&hard, "the skip", |t| t.kind == TouchKind::Skipped as i32)
        .await;
    assert_eq!(skipped.skip_reason, "hard_bounced");

    // The soft bounce is tried again after the backoff, then given up; the sequence ends.
    let soft_bounces = eventually("two soft bounces", PATIENCE, || async {
        let b: Vec<pb::Touch> = floor
            .touches(&soft)
            .await
            .into_iter()
            .filter(|t| t.kind == TouchKind::Bounced as i32)
            .collect();
        (b.len() == 2).then_some(b)
    })
    .await;
    assert!(
        soft_bounces
            .iter()
            .all(|t| t.bounce == "soft" && t.detail.contains("451"))
    );
    assert!(soft_bounces[0].retry_at.is_some() && soft_bounces[1].retry_at.is_none());
    let e = eventually("the soft sequence ends", PATIENCE, || async {
        let e = list(soft.clone()).await.remove(0);
        (e.state == EnrollmentState::Completed as i32).then_some(e)
    })
    .await;
    assert_eq!(e.exit_reason, ExitReason::Unspecified as i32);
    floor.stop().await;
}
