//! reporting — funnel facts built from every service's events, and the KPIs read from them.
//! Consumes capture, qualification, distribution and nurture.

pub mod api;
pub mod consume;
pub mod domain;
pub mod migration;
pub mod store;

use std::sync::Arc;

use baton_proto::reporting::v1::reporting_service_server::ReportingServiceServer;
use baton_shared::{
    BootError, ServiceName, Settings, TenantId, db,
    events::{Consumer, EVENT_LOG_SERVICE_NAME, EventLog},
    server::{self, ServeOptions},
};
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
    let own = settings.service(ServiceName::Reporting);
    let db = db::connect_and_migrate::<migration::Migrator>(&own.database_url, &settings.database)
        .await?;
    let log = EventLog::start(db.clone(), settings.events.clone(), shutdown.clone());
    let consumers: Vec<_> = SOURCES
        .into_iter()
        .map(|source| {
            let consumer = Consumer::new(
                source.as_str(),
                settings.service(source).endpoint.clone(),
                db.clone(),
                consume::FunnelEvents,
                settings.events.clone(),
                Some(log.clone()),
            );
            tokio::spawn(consumer.run(shutdown.clone()))
        })
        .collect();
    let api = api::Api::new(store::Store::new(db));
    let routes = Routes::new(ReportingServiceServer::new(api))
        .add_service(log.grpc_service(shutdown.clone()));
    let options = ServeOptions {
        name: ServiceName::Reporting.as_str(),
        health_names: vec![
            <ReportingServiceServer<api::Api> as NamedService>::NAME,
            EVENT_LOG_SERVICE_NAME,
        ],
        settings: &settings.server,
        default_tenant: TenantId::new(settings.tenancy.default_tenant.clone()),
    };
    let served = server::serve(listener, routes, options, shutdown.clone()).await;
    shutdown.cancel();
    for consumer in consumers {
        let _ = consumer.await;
    }
    served
}
