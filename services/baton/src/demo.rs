//! `baton demo`: drives the capture → qualification → distribution path against a running suite
//! and returns the funnel.

use std::time::Duration;

use anyhow::Context;
use baton_proto::{
    capture::v1::{
        ActivityKind, CaptureLeadRequest, LeadSource, PageKind, RecordActivityRequest,
        capture_service_client::CaptureServiceClient,
    },
    distribution::v1::{CreateRepRequest, distribution_service_client::DistributionServiceClient},
    reporting::v1::{Funnel, GetFunnelRequest, reporting_service_client::ReportingServiceClient},
};
use baton_shared::{ServiceName, Settings, time};
use chrono::Utc;

/// What the demo does.
pub struct DemoPlan {
    pub leads: usize,
    /// Every `hot_every`-th lead books a meeting and starts a trial (25 + 25 points: an MQL under
    /// the default model); the others only open an e-mail.
    pub hot_every: usize,
    pub reps: usize,
}

impl Default for DemoPlan {
    fn default() -> Self {
        DemoPlan {
            leads: 20,
            hot_every: 4,
            reps: 3,
        }
    }
}

/// Runs the plan against the endpoints in `settings`; waits (up to `patience`) until reporting has
/// seen every expected assignment, and returns the funnel of the last day.
pub async fn run(
    settings: &Settings,
    plan: &DemoPlan,
    patience: Duration,
) -> anyhow::Result<Funnel> {
    let run_id = uuid::Uuid::now_v7().simple().to_string();
    let started = Utc::now() - chrono::Duration::days(1);
    let channel = async |name: ServiceName| {
        crate::access::connect(settings, &settings.service(name).endpoint)
            .await
            .with_context(|| format!("connect to {name}"))
    };
    let mut capture = CaptureServiceClient::new(channel(ServiceName::Capture).await?);
    let mut distribution =
        DistributionServiceClient::new(channel(ServiceName::Distribution).await?);
    let mut reporting = ReportingServiceClient::new(channel(ServiceName::Reporting).await?);

    for r in 0..plan.reps {
        distribution
            .create_rep(CreateRepRequest {
                request_id: format!("demo-{run_id}-rep-{r}"),
                name: format!("Demo Rep {r}"),
                email: format!("rep{r}.{run_id}@demo.baton.example"),
                active: true,
                routing: None,
            })
            .await
            .context("create rep")?;
    }
    let mut hot = 0;
    for i in 0..plan.leads {
        let lead = capture
            .capture_lead(CaptureLeadRequest {
                request_id: format!("demo-{run_id}-lead-{i}"),
                email: format!("lead{i}.{run_id}@demo.baton.example"),
                first_name: format!("Lead{i}"),
                last_name: "Demo".into(),
                company_name: "Demo KK".into(),
                source: Some(LeadSource {
                    channel: "web_form".into(),
                    campaign: "demo".into(),
                    ..Default::default()
                }),
                captured_at: None,
                ..Default::default()
            })
            .await
            .context("capture lead")?
            .into_inner()
            .lead
            .context("capture returned no lead")?;
        let kinds: &[(ActivityKind, PageKind)] = if i % plan.hot_every == 0 {
            hot += 1;
            &[
                (ActivityKind::MeetingBooked, PageKind::Unspecified),
                (ActivityKind::FreeTrialStarted, PageKind::Unspecified),
            ]
        } else {
            &[
                (ActivityKind::EmailOpened, PageKind::Unspecified),
                (ActivityKind::PageViewed, PageKind::Blog),
            ]
        };
        for (k, (kind, page_kind)) in kinds.iter().enumerate() {
            capture
                .record_activity(RecordActivityRequest {
                    idempotency_key: format!("demo-{run_id}-lead-{i}-act-{k}"),
                    lead_id: lead.lead_id.clone(),
                    kind: *kind as i32,
                    occurred_at: None,
                    url: String::new(),
                    page_kind: *page_kind as i32,
                    ..Default::default()
                })
                .await
                .context("record activity")?;
        }
    }

    let deadline = tokio::time::Instant::now() + patience;
    loop {
        let funnel = reporting
            .get_funnel(GetFunnelRequest {
                start_time: Some(time::to_proto(started)),
                end_time: Some(time::to_proto(Utc::now() + chrono::Duration::minutes(1))),
                group_by: Vec::new(),
            })
            .await
            .context("get funnel")?
            .into_inner();
        if funnel.assignments >= hot as i64 || tokio::time::Instant::now() >= deadline {
            return Ok(funnel);
        }
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
}

/// The funnel as a small table for people.
pub fn render(funnel: &Funnel) -> String {
    format!(
        "funnel (last 24 h)\n  leads         {:>8}\n  enrolled      {:>8}\n  MQLs          {:>8}   lead → MQL        {:>6.1} %\n  assigned      {:>8}   MQL → assignment  {:>6.1} %\n",
        funnel.leads,
        funnel.enrollments,
        funnel.mqls,
        funnel.lead_to_mql_rate * 100.0,
        funnel.assignments,
        funnel.mql_to_assignment_rate * 100.0
    )
}
