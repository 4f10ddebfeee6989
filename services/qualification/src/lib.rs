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
use baton_shared::{BootError, ServiceName, Settings, boot::Boot, server::ServeOptions};
use tokio::net::TcpListener;
use tokio_util::sync::CancellationToken;
use tonic::{server::NamedService, service::Routes};

/// Runs qualification on `listener` until `shutdown` fires.
pub async fn run(
    settings: Arc<Settings>,
    listener: TcpListener,
    shutdown: CancellationToken,
) -> Result<(), BootError> {
    let boot = Boot::start::<migration::Migrator>(ServiceName::Qualification, settings, shutdown)
        .await?
        .consume(ServiceName::Capture, consume::CaptureEvents)
        .consume(ServiceName::Distribution, consume::DistributionEvents);
    let scoring = &boot.settings.scoring;
    let worker = store::models::Worker::new(
        boot.db.clone(),
        scoring.batch_size,
        chrono::Duration::seconds(scoring.lease_seconds as i64),
    );
    let interval = std::time::Duration::from_millis(scoring.worker_interval_ms);
    let shutdown = boot.shutdown.clone();
    let boot = boot.spawn(store::models::run_worker(worker, interval, shutdown));
    let deadline =
        std::time::Duration::from_secs(boot.settings.scoring.simulation_deadline_seconds);
    let api = api::Api::new(store::Store::new(boot.db.clone()), deadline);
    let api_name = <QualificationServiceServer<api::Api> as NamedService>::NAME;
    let settings = boot.settings.clone();
    let options = ServeOptions::for_service(ServiceName::Qualification, api_name, &settings)
        .long_running(api_name, "SimulateModel");
    let routes = Routes::new(QualificationServiceServer::new(api));
    boot.serve(listener, routes, options).await
}
