//! distribution — sales reps and the assignment of qualified leads to them. Consumes
//! qualification's `StageChanged`; produces `RepCreated` and `LeadAssigned`.

pub mod api;
pub mod consume;
pub mod domain;
pub mod migration;
pub mod store;

use std::sync::Arc;

use baton_proto::distribution::v1::distribution_service_server::DistributionServiceServer;
use baton_shared::{
    BootError, ServiceName, Settings, TenantId, db,
    events::{Consumer, EVENT_LOG_SERVICE_NAME, EventLog},
    server::{self, ServeOptions},
};
use tokio::net::TcpListener;
use tokio_util::sync::CancellationToken;
use tonic::{server::NamedService, service::Routes};

/// Runs distribution on `listener` until `shutdown` fires.
pub async fn run(
    settings: Arc<Settings>,
    listener: TcpListener,
    shutdown: CancellationToken,
) -> Result<(), BootError> {
    let own = settings.service(ServiceName::Distribution);
    let db = db::connect_and_migrate::<migration::Migrator>(&own.database_url, &settings.database)
        .await?;
    let log = EventLog::start(db.clone(), settings.events.clone(), shutdown.clone());
    let from_qualification = Consumer::new(
        ServiceName::Qualification.as_str(),
        settings.qualification.endpoint.clone(),
        db.clone(),
        consume::QualificationEvents,
        settings.events.clone(),
        Some(log.clone()),
    );
    let consumers = tokio::spawn(from_qualification.run(shutdown.clone()));
    let api = api::Api::new(store::Store::new(db, log.clone()));
    let routes = Routes::new(DistributionServiceServer::new(api))
        .add_service(log.grpc_service(shutdown.clone()));
    let options = ServeOptions {
        name: ServiceName::Distribution.as_str(),
        health_names: vec![
            <DistributionServiceServer<api::Api> as NamedService>::NAME,
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
