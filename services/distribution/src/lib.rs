//! distribution — sales reps and the assignment of qualified leads to them. Consumes
//! qualification's `StageChanged`; produces `RepCreated` and `LeadAssigned`.

pub mod api;
pub mod consume;
pub mod convert;
pub mod domain;
pub mod error;
pub mod migration;
pub mod store;

use std::sync::Arc;

use baton_proto::distribution::v1::distribution_service_server::DistributionServiceServer;
use baton_shared::{
    BootError, ServiceName, Settings, db,
    events::{Consumer, EventLog},
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
    let background = vec![
        Consumer::of(
            ServiceName::Qualification,
            &settings,
            db.clone(),
            consume::QualificationEvents,
            &log,
        )
        .spawn(shutdown.clone()),
        Consumer::of(
            ServiceName::Reporting,
            &settings,
            db.clone(),
            consume::ReportingEvents,
            &log,
        )
        .spawn(shutdown.clone()),
        Consumer::of(
            ServiceName::Capture,
            &settings,
            db.clone(),
            consume::CaptureEvents,
            &log,
        )
        .spawn(shutdown.clone()),
        tokio::spawn(
            store::sla_worker::Timers::new(db.clone(), log.clone(), settings.sla.batch_size).run(
                std::time::Duration::from_millis(settings.sla.interval_ms),
                shutdown.clone(),
            ),
        ),
    ];
    let api = api::Api::new(store::Store::new(db, log.clone()));
    let routes = Routes::new(DistributionServiceServer::new(api))
        .add_service(log.grpc_service(shutdown.clone()));
    let api_name = <DistributionServiceServer<api::Api> as NamedService>::NAME;
    let options = ServeOptions::for_service(ServiceName::Distribution, api_name, &settings);
    server::serve_with_background(listener, routes, options, shutdown, background).await
}
