//! What every service offers a platform team: grpc.health.v1, server reflection, clear statuses,
//! a tenant on every request, graceful shutdown.

use std::time::Duration;

use baton_e2e::{TestSuite, lead};
use baton_proto::{
    events::v1::{SubscribeRequest, event_log_client::EventLogClient},
    reporting::v1::GetFunnelRequest,
};
use baton_shared::ServiceName;
use tokio_stream::StreamExt;
use tonic::Code;
use tonic_health::pb::{
    HealthCheckRequest, health_check_response::ServingStatus, health_client::HealthClient,
};
use tonic_reflection::pb::v1::{
    ServerReflectionRequest, server_reflection_client::ServerReflectionClient,
    server_reflection_request::MessageRequest, server_reflection_response::MessageResponse,
};

const SERVICES: [(ServiceName, &str); 5] = [
    (ServiceName::Capture, "baton.capture.v1.CaptureService"),
    (ServiceName::Nurture, "baton.nurture.v1.NurtureService"),
    (
        ServiceName::Qualification,
        "baton.qualification.v1.QualificationService",
    ),
    (
        ServiceName::Distribution,
        "baton.distribution.v1.DistributionService",
    ),
    (
        ServiceName::Reporting,
        "baton.reporting.v1.ReportingService",
    ),
];

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn every_service_reports_serving_and_lists_its_services_by_reflection() {
    let suite = TestSuite::start().await;
    for (name, grpc_name) in SERVICES {
        let channel = suite.channel(name).await;
        let mut health = HealthClient::new(channel.clone());
        for service in ["", grpc_name, "baton.events.v1.EventLog"] {
            let status = health
                .check(HealthCheckRequest {
                    service: service.into(),
                })
                .await
                .unwrap_or_else(|e| panic!("{name} health {service:?}: {e}"))
                .into_inner()
                .status;
            assert_eq!(status, ServingStatus::Serving as i32, "{name} {service:?}");
        }
        let unknown = health
            .check(HealthCheckRequest {
                service: "nope.v1.Nope".into(),
            })
            .await
            .unwrap_err();
        assert_eq!(unknown.code(), Code::NotFound);

        let mut reflection = ServerReflectionClient::new(channel);
        let request = ServerReflectionRequest {
            host: String::new(),
            message_request: Some(MessageRequest::ListServices(String::new())),
        };
        let mut responses = reflection
            .server_reflection_info(tokio_stream::iter([request]))
            .await
            .unwrap()
            .into_inner();
        let response = responses.next().await.unwrap().unwrap();
        let Some(MessageResponse::ListServicesResponse(list)) = response.message_response else {
            panic!("{name}: unexpected reflection answer {response:?}")
        };
        let names: Vec<_> = list.service.into_iter().map(|s| s.name).collect();
        for expected in [
            grpc_name,
            "baton.events.v1.EventLog",
            "grpc.health.v1.Health",
        ] {
            assert!(
                names.iter().any(|n| n == expected),
                "{name} does not list {expected}: {names:?}"
            );
        }
        // Only what this port serves: the other four Baton APIs live on their own ports.
        for (_, other) in SERVICES.iter().filter(|(n, _)| *n != name) {
            assert!(
                !names.iter().any(|n| n == other),
                "{name} advertises {other}, which it does not serve"
            );
        }
    }
    suite.stop().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn bad_requests_get_invalid_argument_and_unknown_ids_not_found() {
    let suite = TestSuite::start().await;
    let status = suite
        .reporting()
        .await
        .get_funnel(GetFunnelRequest {
            start_time: None,
            end_time: None,
            group_by: Vec::new(),
        })
        .await
        .unwrap_err();
    assert_eq!(status.code(), Code::InvalidArgument);
    assert!(
        status.message().contains("start_time") && status.message().contains("end_time"),
        "{}",
        status.message()
    );

    let mut subscribe = EventLogClient::new(suite.channel(ServiceName::Capture).await);
    let status = subscribe
        .subscribe(SubscribeRequest {
            after_position: -1,
            max_batch: 0,
            ..Default::default()
        })
        .await
        .unwrap_err();
    assert_eq!(status.code(), Code::InvalidArgument);

    let status = suite
        .qualification()
        .await
        .get_score(baton_proto::qualification::v1::GetScoreRequest {
            lead_id: "unknown".into(),
        })
        .await
        .unwrap_err();
    assert_eq!(status.code(), Code::NotFound);
    suite.stop().await;
}

/// Shutdown ends open event streams (so it cannot hang on them), finishes, and the suite can be
/// started again on the same databases.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn shutdown_ends_open_streams_and_completes() {
    let mut suite = TestSuite::start().await;
    suite.capture().await.capture_lead(lead(1)).await.unwrap();
    let mut events = EventLogClient::new(suite.channel(ServiceName::Capture).await)
        .subscribe(SubscribeRequest {
            after_position: 0,
            max_batch: 0,
            ..Default::default()
        })
        .await
        .unwrap()
        .into_inner();
    assert!(events.message().await.unwrap().is_some());
    tokio::time::timeout(
        Duration::from_secs(10),
        suite.suite.stop_service(ServiceName::Capture),
    )
    .await
    .expect("capture stopped within 10 s despite an open stream")
    .unwrap();
    let end = tokio::time::timeout(Duration::from_secs(5), events.message())
        .await
        .expect("stream closed");
    assert!(
        !matches!(end, Ok(Some(_))),
        "stream still delivering after shutdown: {end:?}"
    );
    suite
        .suite
        .start_service(ServiceName::Capture)
        .await
        .unwrap();
    let mut same_person = lead(1);
    same_person.request_id = "after-restart".into();
    let again = suite
        .capture()
        .await
        .capture_lead(same_person)
        .await
        .unwrap()
        .into_inner();
    assert!(
        !again.created,
        "the lead captured before the restart is still there"
    );
    suite.stop().await;
}
