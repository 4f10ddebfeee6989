//! Telemetry: an unreachable OTLP collector does not stop start-up, and the W3C trace context of a
//! request travels into the events it causes, across services. (Its own test binary: telemetry
//! installs a process-wide subscriber.)

use std::time::Duration;

use baton_e2e::{TestSuite, activity, eventually, lead};
use baton_proto::{
    capture::v1::{ActivityKind, PageKind},
    events::v1::{Event, SubscribeRequest, event_log_client::EventLogClient},
};
use baton_shared::{ServiceName, Settings, telemetry};
use tonic::Request;

const TRACE_ID: &str = "4bf92f3577b34da6a3ce929d0e0e4736";

fn traced<T>(message: T) -> Request<T> {
    let mut request = Request::new(message);
    let traceparent = format!("00-{TRACE_ID}-00f067aa0ba902b7-01");
    request
        .metadata_mut()
        .insert("traceparent", traceparent.parse().unwrap());
    request
}

async fn events(suite: &TestSuite, name: ServiceName, wanted: usize) -> Vec<Event> {
    let mut client = EventLogClient::new(suite.channel(name).await);
    let mut stream = client
        .subscribe(SubscribeRequest {
            after_position: 0,
            max_batch: 0,
            ..Default::default()
        })
        .await
        .unwrap()
        .into_inner();
    let mut out = Vec::new();
    while out.len() < wanted {
        let next = tokio::time::timeout(Duration::from_secs(20), stream.message()).await;
        out.push(next.expect("event in time").unwrap().expect("stream open"));
    }
    out
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn trace_context_flows_from_request_to_events_across_services_without_a_collector() {
    let mut settings = Settings::defaults().unwrap().telemetry;
    settings.otlp_endpoint = "http://127.0.0.1:9".into(); // nothing listens there
    let _guard =
        telemetry::init(&settings, "baton-test").expect("start-up does not need a collector");

    let suite = TestSuite::start().await;
    let mut capture = suite.capture().await;
    let lead_id = capture
        .capture_lead(traced(lead(1)))
        .await
        .unwrap()
        .into_inner()
        .lead
        .unwrap()
        .lead_id;
    for (k, kind) in [ActivityKind::MeetingBooked, ActivityKind::FreeTrialStarted]
        .into_iter()
        .enumerate()
    {
        capture
            .record_activity(traced(activity(
                &lead_id,
                &format!("a{k}"),
                kind,
                PageKind::Unspecified,
            )))
            .await
            .unwrap();
    }
    let captured = events(&suite, ServiceName::Capture, 3).await;
    for e in &captured {
        assert!(
            e.traceparent.contains(TRACE_ID),
            "capture event without the caller's trace: {:?}",
            e.traceparent
        );
    }
    // qualification's StageChanged was caused by capture's event, so it continues the same trace.
    let changed = eventually("StageChanged", Duration::from_secs(20), || async {
        Some(events(&suite, ServiceName::Qualification, 1).await)
    })
    .await;
    assert!(
        changed[0].traceparent.contains(TRACE_ID),
        "qualification lost the trace: {:?}",
        changed[0].traceparent
    );
    suite.stop().await;
}
