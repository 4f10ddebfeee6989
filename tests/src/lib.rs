//! Harness for the end-to-end tests: the five services in one process, each on an ephemeral port
//! and its own fresh database (SQLite files, or PostgreSQL databases when BATON_TEST_DATABASE_URL
//! is set), with clients and builders for the domain's requests.

use baton::suite::Suite;
use baton_proto::{
    capture::v1::{
        ActivityKind, CaptureLeadRequest, LeadSource, PageKind, RecordActivityRequest,
        capture_service_client::CaptureServiceClient,
    },
    distribution::v1::{CreateRepRequest, distribution_service_client::DistributionServiceClient},
    nurture::v1::nurture_service_client::NurtureServiceClient,
    qualification::v1::qualification_service_client::QualificationServiceClient,
    reporting::v1::{
        contract_service_client::ContractServiceClient, kpi_service_client::KpiServiceClient,
        planning_service_client::PlanningServiceClient,
        reporting_service_client::ReportingServiceClient,
    },
};
pub use baton_shared::testing::eventually;

pub mod sales;
use baton_shared::peer::AuthChannel;
use baton_shared::{
    ServiceName,
    testing::{TestDatabase, settings_with},
};

/// A running suite and the databases it owns (dropped after it).
pub struct TestSuite {
    pub suite: Suite,
    databases: Vec<(ServiceName, TestDatabase)>,
}

impl TestSuite {
    pub async fn start() -> TestSuite {
        Self::start_with(|_| {}).await
    }

    /// [`Self::start`] with settings `tune` changes first.
    pub async fn start_with(tune: impl FnOnce(&mut baton_shared::Settings)) -> TestSuite {
        let mut databases = Vec::new();
        for name in ServiceName::ALL {
            databases.push((name, TestDatabase::new(name.as_str()).await));
        }
        let refs: Vec<_> = databases.iter().map(|(n, d)| (*n, d)).collect();
        let mut settings = settings_with(&refs);
        tune(&mut settings);
        let suite = Suite::start(settings).await.expect("suite starts");
        TestSuite { suite, databases }
    }

    /// The database URL of service `name` (for a test that must make time pass in it).
    pub fn database_url(&self, name: ServiceName) -> String {
        self.databases
            .iter()
            .find(|(n, _)| *n == name)
            .map(|(_, d)| d.url.clone())
            .unwrap_or_default()
    }

    pub async fn contracts(&self) -> ContractServiceClient<AuthChannel> {
        ContractServiceClient::new(self.channel(ServiceName::Reporting).await)
    }

    pub async fn channel(&self, name: ServiceName) -> AuthChannel {
        baton_shared::testing::channel(&self.suite.endpoint(name)).await
    }

    pub async fn capture(&self) -> CaptureServiceClient<AuthChannel> {
        CaptureServiceClient::new(self.channel(ServiceName::Capture).await)
    }
    pub async fn qualification(&self) -> QualificationServiceClient<AuthChannel> {
        QualificationServiceClient::new(self.channel(ServiceName::Qualification).await)
    }
    pub async fn distribution(&self) -> DistributionServiceClient<AuthChannel> {
        DistributionServiceClient::new(self.channel(ServiceName::Distribution).await)
    }
    pub async fn nurture(&self) -> NurtureServiceClient<AuthChannel> {
        NurtureServiceClient::new(self.channel(ServiceName::Nurture).await)
    }
    pub async fn reporting(&self) -> ReportingServiceClient<AuthChannel> {
        ReportingServiceClient::new(self.channel(ServiceName::Reporting).await)
    }

    pub async fn kpis(&self) -> KpiServiceClient<AuthChannel> {
        KpiServiceClient::new(self.channel(ServiceName::Reporting).await)
    }

    pub async fn plans(&self) -> PlanningServiceClient<AuthChannel> {
        PlanningServiceClient::new(self.channel(ServiceName::Reporting).await)
    }

    pub async fn stop(self) {
        self.suite.stop().await.expect("suite stops cleanly");
    }
}

/// A capture request for lead number `n` of a test.
pub fn lead(n: usize) -> CaptureLeadRequest {
    CaptureLeadRequest {
        request_id: format!("lead-{n}"),
        email: format!("lead{n}@example.co.jp"),
        first_name: format!("Lead{n}"),
        last_name: "Test".into(),
        company_name: "Example KK".into(),
        source: Some(LeadSource {
            channel: "web_form".into(),
            campaign: "e2e".into(),
            ..Default::default()
        }),
        captured_at: None,
        ..Default::default()
    }
}

/// An activity of `kind` for a lead, keyed by `key`.
pub fn activity(
    lead_id: &str,
    key: &str,
    kind: ActivityKind,
    page_kind: PageKind,
) -> RecordActivityRequest {
    RecordActivityRequest {
        idempotency_key: key.into(),
        lead_id: lead_id.into(),
        kind: kind as i32,
        occurred_at: None,
        url: String::new(),
        page_kind: page_kind as i32,
        ..Default::default()
    }
}

pub fn rep(n: usize) -> CreateRepRequest {
    CreateRepRequest {
        request_id: format!("rep-{n}"),
        name: format!("Rep {n}"),
        email: format!("rep{n}@example.co.jp"),
        active: true,
        routing: None,
    }
}

/// Captures a lead that must be accepted and returns its id.
pub async fn captured_id(
    client: &mut CaptureServiceClient<AuthChannel>,
    request: CaptureLeadRequest,
) -> String {
    let response = client
        .capture_lead(request)
        .await
        .expect("capture accepted");
    response
        .into_inner()
        .lead
        .expect("a lead in the answer")
        .lead_id
}

/// Polls GetKpis with `request` until `ready` holds for its series (reporting applies events
/// asynchronously), and returns them.
pub async fn kpis_when(
    kpis: &KpiServiceClient<AuthChannel>,
    what: &str,
    request: &baton_proto::reporting::v1::GetKpisRequest,
    ready: impl Fn(&[baton_proto::reporting::v1::KpiSeries]) -> bool,
) -> Vec<baton_proto::reporting::v1::KpiSeries> {
    let ready = &ready;
    eventually(what, std::time::Duration::from_secs(60), || {
        let mut k = kpis.clone();
        let req = request.clone();
        async move {
            let s = k.get_kpis(req).await.ok()?.into_inner().series;
            ready(&s).then_some(s)
        }
    })
    .await
}

/// The numerator of the first point of `kpi`'s first series.
pub fn first_numerator(series: &[baton_proto::reporting::v1::KpiSeries], kpi: &str) -> Option<f64> {
    series
        .iter()
        .find(|x| x.kpi == kpi)
        .and_then(|x| x.points.first())
        .map(|p| p.numerator)
}

/// The fields an INVALID_ARGUMENT names in its `google.rpc.BadRequest`, in order (asserts the code).
pub fn invalid_fields(err: &tonic::Status) -> Vec<String> {
    use tonic_types::StatusExt;
    assert_eq!(err.code(), tonic::Code::InvalidArgument, "{err:?}");
    err.get_details_bad_request()
        .expect("a BadRequest")
        .field_violations
        .iter()
        .map(|v| v.field.clone())
        .collect()
}
