//! qualification — scores leads with a scoring model kept as data and moves them through lifecycle
//! stages. Consumes capture's events; produces `StageChanged` on its event log.

pub mod api;
pub mod consume;
pub mod convert;
pub mod domain;
pub mod error;
pub mod migration;
pub mod store;

use std::sync::Arc;

use baton_proto::qualification::v1::qualification_service_server::QualificationServiceServer;
use baton_shared::{
    BootError, ServiceName, Settings, db,
    events::{Consumer, EventLog},
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
    let background = vec![
        Consumer::of(
            ServiceName::Capture,
            &settings,
            db.clone(),
            consume::CaptureEvents,
            &log,
        )
        .spawn(shutdown.clone()),
        Consumer::of(
            ServiceName::Distribution,
            &settings,
            db.clone(),
            consume::DistributionEvents,
            &log,
        )
        .spawn(shutdown.clone()),
        tokio::spawn(store::models::run_worker(
            store::models::Worker::new(
                db.clone(),
                settings.scoring.batch_size,
                chrono::Duration::seconds(settings.scoring.lease_seconds as i64),
            ),
            std::time::Duration::from_millis(settings.scoring.worker_interval_ms),
            shutdown.clone(),
        )),
    ];
    let api = api::Api::new(store::Store::new(db));
    let routes = Routes::new(QualificationServiceServer::new(api))
        .add_service(log.grpc_service(shutdown.clone()));
    let api_name = <QualificationServiceServer<api::Api> as NamedService>::NAME;
    let options = ServeOptions::for_service(ServiceName::Qualification, api_name, &settings)
        .long_running(api_name, "SimulateModel");
    server::serve_with_background(listener, routes, options, shutdown, background).await
}
