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

/// What the subscriber logged, kept to be read.
#[derive(Clone, Default)]
struct Logs(std::sync::Arc<std::sync::Mutex<Vec<u8>>>);

impl std::io::Write for Logs {
    fn write(&mut self, buf: &[u8]) -> std::io::Result<usize> {
        self.0.lock().unwrap().extend_from_slice(buf);
        Ok(buf.len())
    }
    fn flush(&mut self) -> std::io::Result<()> {
        Ok(())
    }
}

impl Logs {
    fn lines(&self) -> Vec<String> {
        String::from_utf8_lossy(&self.0.lock().unwrap())
            .lines()
            .map(str::to_owned)
            .collect()
    }
}

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
    settings.json_logs = true;
    settings.log_filter = "info,baton_shared::rpc_layer=debug".into();
    let logs = Logs::default();
    let writer = logs.clone();
    let _guard = telemetry::init_with(
        &settings,
        "baton-test",
        tracing_subscriber::fmt::writer::BoxMakeWriter::new(move || writer.clone()),
    )
    .expect("start-up does not need a collector");

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
    // A caller's mistake is logged at debug, not ERROR, with the caller's trace id and the RPC's
    // name and status in its span.
    let refused = capture
        .get_lead(traced(baton_proto::capture::v1::GetLeadRequest {
            lead_id: "no-such-lead".into(),
        }))
        .await
        .unwrap_err();
    assert_eq!(refused.code(), tonic::Code::NotFound);
    let line = logs
        .lines()
        .into_iter()
        .find(|l| l.contains("rpc refused") && l.contains("GetLead"))
        .expect("the refused call is logged");
    let json: serde_json::Value = serde_json::from_str(&line).expect("a JSON log line");
    assert_eq!(json["level"], "DEBUG", "{line}");
    assert_eq!(json["span"]["trace_id"], TRACE_ID, "{line}");
    assert_eq!(json["span"]["rpc.method"], "GetLead", "{line}");
    assert_eq!(json["span"]["rpc.grpc.status_code"], 5, "{line}");
    assert!(
        !logs
            .lines()
            .iter()
            .any(|l| l.contains("\"level\":\"ERROR\"")),
        "no ERROR for a caller's mistake"
    );

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
