//! nurture over a real socket, fed by a real capture service.

use std::{sync::Arc, time::Duration};

use baton_proto::{
    capture::v1::{CaptureLeadRequest, LeadSource, capture_service_client::CaptureServiceClient},
    nurture::v1::{
        EnrollmentState, ListEnrollmentsRequest, nurture_service_client::NurtureServiceClient,
    },
};
use baton_shared::{
    ServiceName,
    testing::{TestDatabase, bind_ephemeral, channel, eventually, settings_with, spawn},
    time,
};
use chrono::Utc;
use tonic::Code;

#[tokio::test]
async fn every_new_lead_is_enrolled_once_in_the_welcome_sequence() {
    let capture_db = TestDatabase::new("capture").await;
    let nurture_db = TestDatabase::new("nurture").await;
    let mut settings = settings_with(&[
        (ServiceName::Capture, &capture_db),
        (ServiceName::Nurture, &nurture_db),
    ]);
    let capture_listener = bind_ephemeral(&mut settings, ServiceName::Capture).await;
    let nurture_listener = bind_ephemeral(&mut settings, ServiceName::Nurture).await;
    let settings = Arc::new(settings);
    let capture = spawn(
        ServiceName::Capture,
        &settings,
        capture_listener,
        baton_capture::run,
    );
    let nurture = spawn(
        ServiceName::Nurture,
        &settings,
        nurture_listener,
        baton_nurture::run,
    );
    let mut capture_client = CaptureServiceClient::new(channel(&capture.endpoint).await);
    let mut nurture_client = NurtureServiceClient::new(channel(&nurture.endpoint).await);

    let captured_at =
        time::from_proto(&time::to_proto(Utc::now() - chrono::Duration::hours(2))).unwrap();
    let mut lead_ids = Vec::new();
    for (n, email) in ["a@example.com", "b@example.com", "A@Example.com"]
        .iter()
        .enumerate()
    {
        let req = CaptureLeadRequest {
            request_id: format!("r{n}"),
            email: (*email).into(),
            source: Some(LeadSource {
                channel: "webinar".into(),
                campaign: String::new(),
                ..Default::default()
            }),
            captured_at: Some(time::to_proto(captured_at)),
            ..Default::default()
        };
        lead_ids.push(
            capture_client
                .capture_lead(req)
                .await
                .unwrap()
                .into_inner()
                .lead
                .unwrap()
                .lead_id,
        );
    }
    assert_eq!(lead_ids[0], lead_ids[2], "the same person is one lead");

    let enrollments = eventually("two enrolments", Duration::from_secs(20), || {
        let mut n = nurture_client.clone();
        async move {
            let e = n
                .list_enrollments(ListEnrollmentsRequest::default())
                .await
                .ok()?
                .into_inner()
                .enrollments;
            (e.len() == 2).then_some(e)
        }
    })
    .await;
    tokio::time::sleep(Duration::from_millis(300)).await;
    let again = nurture_client
        .list_enrollments(ListEnrollmentsRequest::default())
        .await
        .unwrap()
        .into_inner();
    assert_eq!(again.enrollments.len(), 2);
    for e in &enrollments {
        assert_eq!(
            (e.sequence_key.as_str(), e.state, e.next_step),
            ("welcome", EnrollmentState::Active as i32, 0)
        );
        // The first welcome step is due at capture time.
        assert_eq!(
            e.next_step_due_at.and_then(|t| time::from_proto(&t)),
            Some(captured_at)
        );
    }
    let one = nurture_client
        .list_enrollments(ListEnrollmentsRequest {
            page_size: 0,
            page_token: String::new(),
            lead_id: lead_ids[1].clone(),
        })
        .await
        .unwrap()
        .into_inner();
    assert_eq!(one.enrollments.len(), 1);
    let bad = nurture_client
        .list_enrollments(ListEnrollmentsRequest {
            page_size: -1,
            page_token: String::new(),
            lead_id: String::new(),
        })
        .await
        .unwrap_err();
    assert_eq!(bad.code(), Code::InvalidArgument);
    capture.stop().await;
    nurture.stop().await;
}
