//! reporting over a real socket, fed by a real capture service (the other sources are down, and
//! reporting keeps serving what it has).

use std::{sync::Arc, time::Duration};

use baton_proto::{
    capture::v1::{CaptureLeadRequest, LeadSource, capture_service_client::CaptureServiceClient},
    reporting::v1::{GetFunnelRequest, reporting_service_client::ReportingServiceClient},
};
use baton_shared::{
    ServiceName,
    testing::{TestDatabase, bind_ephemeral, channel, eventually, settings_with, spawn},
    time,
};
use chrono::{Duration as Span, Utc};
use tonic::Code;
use tonic_types::StatusExt;

#[tokio::test]
async fn the_funnel_counts_leads_by_when_they_were_captured() {
    let capture_db = TestDatabase::new("capture").await;
    let reporting_db = TestDatabase::new("reporting").await;
    let mut settings = settings_with(&[
        (ServiceName::Capture, &capture_db),
        (ServiceName::Reporting, &reporting_db),
    ]);
    let capture_listener = bind_ephemeral(&mut settings, ServiceName::Capture).await;
    let reporting_listener = bind_ephemeral(&mut settings, ServiceName::Reporting).await;
    // Nothing listens at the other sources' endpoints.
    for down in [
        ServiceName::Qualification,
        ServiceName::Distribution,
        ServiceName::Nurture,
    ] {
        drop(bind_ephemeral(&mut settings, down).await);
    }
    let settings = Arc::new(settings);
    let capture = spawn(
        ServiceName::Capture,
        &settings,
        capture_listener,
        baton_capture::run,
    );
    let reporting = spawn(
        ServiceName::Reporting,
        &settings,
        reporting_listener,
        baton_reporting::run,
    );
    let mut capture_client = CaptureServiceClient::new(channel(&capture.endpoint).await);
    let mut reporting_client = ReportingServiceClient::new(channel(&reporting.endpoint).await);

    let now = Utc::now();
    let yesterday = now - Span::days(1);
    for (n, at) in [yesterday, yesterday + Span::minutes(5), now]
        .into_iter()
        .enumerate()
    {
        let req = CaptureLeadRequest {
            request_id: format!("r{n}"),
            email: format!("l{n}@example.com"),
            source: Some(LeadSource {
                channel: "trade_show".into(),
                campaign: String::new(),
                ..Default::default()
            }),
            captured_at: Some(time::to_proto(at)),
            ..Default::default()
        };
        capture_client.capture_lead(req).await.unwrap();
    }
    let range = |from: chrono::DateTime<Utc>, to: chrono::DateTime<Utc>| GetFunnelRequest {
        start_time: Some(time::to_proto(from)),
        end_time: Some(time::to_proto(to)),
        group_by: Vec::new(),
    };
    let all = eventually("three leads", Duration::from_secs(20), || {
        let mut r = reporting_client.clone();
        let req = range(yesterday - Span::hours(1), now + Span::hours(1));
        async move {
            let f = r.get_funnel(req).await.ok()?.into_inner();
            (f.leads == 3).then_some(f)
        }
    })
    .await;
    assert_eq!(
        (all.mqls, all.assignments, all.lead_to_mql_rate),
        (0, 0, 0.0)
    );
    let day_before = reporting_client
        .get_funnel(range(yesterday, yesterday + Span::hours(1)))
        .await
        .unwrap();
    assert_eq!(day_before.into_inner().leads, 2);
    // [from, to) is half-open: a lead captured exactly at `to` is not counted.
    let up_to_now = reporting_client
        .get_funnel(range(yesterday + Span::minutes(5), now))
        .await
        .unwrap();
    assert_eq!(up_to_now.into_inner().leads, 1);

    let backwards = reporting_client
        .get_funnel(range(now, yesterday))
        .await
        .unwrap_err();
    assert_eq!(backwards.code(), Code::InvalidArgument);
    let fields: Vec<_> = backwards
        .get_details_bad_request()
        .unwrap()
        .field_violations
        .into_iter()
        .map(|v| v.field)
        .collect();
    assert_eq!(fields, ["end_time"]);
    capture.stop().await;
    reporting.stop().await;
}
