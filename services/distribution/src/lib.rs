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
use baton_shared::{BootError, ServiceName, Settings, boot::Boot, server::ServeOptions};
use tokio::net::TcpListener;
use tokio_util::sync::CancellationToken;
use tonic::{server::NamedService, service::Routes};

/// Runs distribution on `listener` until `shutdown` fires.
pub async fn run(
    settings: Arc<Settings>,
    listener: TcpListener,
    shutdown: CancellationToken,
) -> Result<(), BootError> {
    let boot = Boot::start::<migration::Migrator>(ServiceName::Distribution, settings, shutdown)
        .await?
        .consume(ServiceName::Qualification, consume::QualificationEvents)
        .consume(ServiceName::Reporting, consume::ReportingEvents)
        .consume(ServiceName::Capture, consume::CaptureEvents)
        .sample(store::sla_worker::gauges());
    let sla = &boot.settings.sla;
    let timers = store::sla_worker::Timers::new(boot.db.clone(), boot.log.clone(), sla.batch_size);
    let interval = std::time::Duration::from_millis(sla.interval_ms);
    let shutdown = boot.shutdown.clone();
    let boot = boot.spawn(timers.run(interval, shutdown));
    let store = store::Store::new(boot.db.clone(), boot.log.clone());
    let every = std::time::Duration::from_secs(
        boot.settings
            .routing
            .performance_weights_interval_seconds
            .max(1),
    );
    let shutdown = boot.shutdown.clone();
    let weights = store.clone();
    let boot = boot.spawn(async move {
        baton_shared::background::repeat("performance weights", every, shutdown, move || {
            let store = weights.clone();
            async move { store.apply_all_performance_weights().await }
        })
        .await
    });
    let api = api::Api::new(store);
    let api_name = <DistributionServiceServer<api::Api> as NamedService>::NAME;
    let settings = boot.settings.clone();
    let options = ServeOptions::for_service(ServiceName::Distribution, api_name, &settings);
    let routes = Routes::new(DistributionServiceServer::new(api));
    boot.serve(listener, routes, options).await
}
