//! reporting — funnel facts built from every service's events, and the KPIs read from them.
//! Consumes capture, qualification, distribution and nurture.

pub mod api;
pub mod attainment;
pub mod consume;
pub mod convert;
pub mod domain;
pub mod error;
pub mod feedback;
pub mod migration;
pub mod plans;
pub mod store;

use std::sync::Arc;

use baton_proto::reporting::v1::{
    contract_service_server::ContractServiceServer, kpi_service_server::KpiServiceServer,
    planning_service_server::PlanningServiceServer,
    reporting_service_server::ReportingServiceServer,
};
use baton_shared::{BootError, ServiceName, Settings, boot::Boot, server::ServeOptions};
use tokio::net::TcpListener;
use tokio_util::sync::CancellationToken;
use tonic::{server::NamedService, service::Routes};

/// The services whose events build the funnel.
const SOURCES: [ServiceName; 4] = [
    ServiceName::Capture,
    ServiceName::Qualification,
    ServiceName::Distribution,
    ServiceName::Nurture,
];

/// Runs reporting on `listener` until `shutdown` fires.
pub async fn run(
    settings: Arc<Settings>,
    listener: TcpListener,
    shutdown: CancellationToken,
) -> Result<(), BootError> {
    let mut boot =
        Boot::start::<migration::Migrator>(ServiceName::Reporting, settings, shutdown).await?;
    for source in SOURCES {
        boot = boot.consume(source, consume::FunnelEvents);
    }
    let qualification = feedback::Qualification {
        endpoint: boot
            .settings
            .service(ServiceName::Qualification)
            .endpoint
            .clone(),
        tls: boot.settings.tls.clone(),
    };
    let api = api::Api::new(
        store::Store::new(boot.db.clone(), boot.log.clone()),
        &boot.settings.contracts,
        qualification,
    );
    let api_name = <ReportingServiceServer<api::Api> as NamedService>::NAME;
    let contracts_name = <ContractServiceServer<api::Api> as NamedService>::NAME;
    let kpis_name = <KpiServiceServer<api::Api> as NamedService>::NAME;
    let plans_name = <PlanningServiceServer<api::Api> as NamedService>::NAME;
    let settings = boot.settings.clone();
    let options = ServeOptions::for_service(ServiceName::Reporting, api_name, &settings)
        .also_serves(contracts_name)
        .also_serves(kpis_name)
        .also_serves(plans_name);
    let routes = Routes::new(ReportingServiceServer::new(api.clone()))
        .add_service(ContractServiceServer::new(api.clone()))
        .add_service(KpiServiceServer::new(api.clone()))
        .add_service(PlanningServiceServer::new(api));
    boot.serve(listener, routes, options).await
}
