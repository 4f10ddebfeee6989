//! qualification — scores leads with a scoring model kept as data and moves them through lifecycle
//! stages. Consumes capture's events; produces `StageChanged` on its event log.

pub mod api;
pub mod consume;
pub mod domain;
pub mod migration;
pub mod store;

use std::sync::Arc;

use baton_proto::qualification::v1::qualification_service_server::QualificationServiceServer;
use baton_shared::{
    BootError, ServiceName, Settings, TenantId, db,
    events::{Consumer, EVENT_LOG_SERVICE_NAME, EventLog},
    server::{self, ServeOptions},
};
use tokio::net::TcpListener;
use tokio_util::sync::CancellationToken;
use tonic::{server::NamedService, service::Routes};

/// Runs qualification on `listener` until `shutdown` fires.
pub async fn run(
    settings: Arc<Settings>,
    listener: TcpListener,
    shutdown: CancellationToken,
) -> Result<(), BootError> {
    let own = settings.service(ServiceName::Qualification);
    let db = db::connect_and_migrate::<migration::Migrator>(&own.database_url, &settings.database)
        .await?;
    let log = EventLog::start(db.clone(), settings.events.clone(), shutdown.clone());
    let from_capture = Consumer::new(
        ServiceName::Capture.as_str(),
        settings.capture.endpoint.clone(),
        db.clone(),
        consume::CaptureEvents,
        settings.events.clone(),
        Some(log.clone()),
    );
    let consumers = tokio::spawn(from_capture.run(shutdown.clone()));
    let api = api::Api::new(store::Store::new(db));
    let routes = Routes::new(QualificationServiceServer::new(api))
        .add_service(log.grpc_service(shutdown.clone()));
    let options = ServeOptions {
        name: ServiceName::Qualification.as_str(),
        health_names: vec![
            <QualificationServiceServer<api::Api> as NamedService>::NAME,
            EVENT_LOG_SERVICE_NAME,
        ],
        settings: &settings.server,
        default_tenant: TenantId::new(settings.tenancy.default_tenant.clone()),
    };
    let served = server::serve(listener, routes, options, shutdown.clone()).await;
    shutdown.cancel();
    let _ = consumers.await;
    served
}
