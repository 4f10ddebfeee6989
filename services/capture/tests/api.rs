//! capture over a real socket, on SQLite (and PostgreSQL when BATON_TEST_DATABASE_URL is set).

use std::sync::Arc;

use baton_proto::{
    capture::v1::{
        ActivityKind, CaptureLeadRequest, GetLeadRequest, LeadCaptured, LeadSource, PageKind,
        RecordActivityRequest, capture_service_client::CaptureServiceClient,
    },
    events::v1::{SubscribeRequest, event_log_client::EventLogClient},
};
use baton_shared::{
    ServiceName,
    testing::{RunningService, TestDatabase, bind_ephemeral, channel, settings_with, spawn},
};
use tonic::{Code, transport::Channel};
use tonic_types::StatusExt;

struct Fixture {
    service: RunningService,
    client: CaptureServiceClient<Channel>,
    _db: TestDatabase,
}

async fn start() -> Fixture {
    let db = TestDatabase::new("capture").await;
    let mut settings = settings_with(&[(ServiceName::Capture, &db)]);
    let listener = bind_ephemeral(&mut settings, ServiceName::Capture).await;
    let service = spawn(
        ServiceName::Capture,
        &Arc::new(settings),
        listener,
        baton_capture::run,
    );
    let client = CaptureServiceClient::new(channel(&service.endpoint).await);
    Fixture {
        service,
        client,
        _db: db,
    }
}

fn capture(request_id: &str, email: &str) -> CaptureLeadRequest {
    CaptureLeadRequest {
        request_id: request_id.into(),
        email: email.into(),
        first_name: "Aiko".into(),
        last_name: "Tanaka".into(),
        company_name: "Kaisha KK".into(),
        source: Some(LeadSource {
            channel: "web_form".into(),
            campaign: "spring".into(),
        }),
        captured_at: None,
    }
}

#[tokio::test]
async fn a_lead_is_captured_once_per_request_and_once_per_email() {
    let mut f = start().await;
    let first = f
        .client
        .capture_lead(capture("r1", "Aiko@Example.com"))
        .await
        .unwrap()
        .into_inner();
    assert!(first.created);
    let replay = f
        .client
        .capture_lead(capture("r1", "Aiko@Example.com"))
        .await
        .unwrap()
        .into_inner();
    assert_eq!(replay.lead, first.lead);
    let same_person = f
        .client
        .capture_lead(capture("r2", " aiko@example.COM "))
        .await
        .unwrap()
        .into_inner();
    assert!(!same_person.created);
    assert_eq!(
        same_person.lead.unwrap().lead_id,
        first.lead.clone().unwrap().lead_id
    );

    let reused = f
        .client
        .capture_lead(capture("r1", "someone.else@example.com"))
        .await
        .unwrap_err();
    assert_eq!(reused.code(), Code::InvalidArgument);

    // Exactly one LeadCaptured on the log.
    let mut events = EventLogClient::connect(f.service.endpoint.clone())
        .await
        .unwrap()
        .subscribe(SubscribeRequest {
            after_position: 0,
            max_batch: 0,
        })
        .await
        .unwrap()
        .into_inner();
    let event = events.message().await.unwrap().unwrap();
    let captured: LeadCaptured = baton_proto::any::unpack(event.payload.as_ref().unwrap())
        .unwrap()
        .unwrap();
    assert_eq!(captured.lead_id, first.lead.unwrap().lead_id);
    let next = tokio::time::timeout(std::time::Duration::from_millis(700), events.message()).await;
    assert!(next.is_err(), "a second event was published: {next:?}");
    drop(events);
    f.service.stop().await;
}

#[tokio::test]
async fn concurrent_captures_of_one_person_yield_one_lead() {
    let f = start().await;
    let mut tasks = Vec::new();
    for i in 0..8 {
        let mut client = f.client.clone();
        tasks.push(tokio::spawn(async move {
            client
                .capture_lead(capture(&format!("c{i}"), "race@example.com"))
                .await
                .unwrap()
                .into_inner()
        }));
    }
    let mut ids = std::collections::HashSet::new();
    let mut created = 0;
    for t in tasks {
        let r = t.await.unwrap();
        created += usize::from(r.created);
        ids.insert(r.lead.unwrap().lead_id);
    }
    assert_eq!(ids.len(), 1);
    assert_eq!(created, 1);
    f.service.stop().await;
}

#[tokio::test]
async fn bad_input_names_every_offending_field() {
    let mut f = start().await;
    let mut req = capture("", "not-an-email");
    req.source = None;
    let status = f.client.capture_lead(req).await.unwrap_err();
    assert_eq!(status.code(), Code::InvalidArgument);
    let fields: Vec<_> = status
        .get_details_bad_request()
        .unwrap()
        .field_violations
        .into_iter()
        .map(|v| v.field)
        .collect();
    assert_eq!(fields, ["request_id", "email", "source.channel"]);

    let status = f
        .client
        .get_lead(GetLeadRequest {
            lead_id: "nope".into(),
        })
        .await
        .unwrap_err();
    assert_eq!(status.code(), Code::NotFound);

    let status = f
        .client
        .record_activity(RecordActivityRequest {
            idempotency_key: "a1".into(),
            lead_id: "missing".into(),
            kind: ActivityKind::EmailOpened as i32,
            ..Default::default()
        })
        .await
        .unwrap_err();
    assert_eq!(status.code(), Code::NotFound);
    f.service.stop().await;
}

#[tokio::test]
async fn activities_are_recorded_once_per_idempotency_key() {
    let mut f = start().await;
    let lead = f
        .client
        .capture_lead(capture("r1", "a@example.com"))
        .await
        .unwrap()
        .into_inner()
        .lead
        .unwrap();
    let req = RecordActivityRequest {
        idempotency_key: "view-1".into(),
        lead_id: lead.lead_id.clone(),
        kind: ActivityKind::PageViewed as i32,
        occurred_at: None,
        url: "https://example.com/pricing".into(),
        page_kind: PageKind::Pricing as i32,
    };
    let first = f
        .client
        .record_activity(req.clone())
        .await
        .unwrap()
        .into_inner();
    let again = f.client.record_activity(req).await.unwrap().into_inner();
    assert!(first.created && !again.created);
    assert_eq!(first.activity, again.activity);
    let got = f
        .client
        .get_lead(GetLeadRequest {
            lead_id: lead.lead_id.clone(),
        })
        .await
        .unwrap()
        .into_inner();
    assert_eq!(got, lead);
    f.service.stop().await;
}
