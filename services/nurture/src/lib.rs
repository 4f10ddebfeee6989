//! nurture — sequences of touches that keep leads warm until they are ready for sales. Consumes
//! capture's `LeadCaptured`; produces `LeadEnrolled`.

pub mod api;
pub mod consume;
pub mod convert;
pub mod domain;
pub mod error;
pub mod migration;
pub mod store;

use std::sync::Arc;

use baton_proto::nurture::v1::nurture_service_server::NurtureServiceServer;
use baton_shared::{BootError, ServiceName, Settings, boot::Boot, server::ServeOptions};
use tokio::net::TcpListener;
use tokio_util::sync::CancellationToken;
use tonic::{server::NamedService, service::Routes};

/// Runs nurture on `listener` until `shutdown` fires.
pub async fn run(
    settings: Arc<Settings>,
    listener: TcpListener,
    shutdown: CancellationToken,
) -> Result<(), BootError> {
    let boot = Boot::start::<migration::Migrator>(ServiceName::Nurture, settings, shutdown)
        .await?
        .consume(ServiceName::Capture, consume::CaptureEvents)
        .consume(ServiceName::Qualification, consume::QualificationEvents);
    let api = api::Api::new(store::Store::new(boot.db.clone()));
    let api_name = <NurtureServiceServer<api::Api> as NamedService>::NAME;
    let settings = boot.settings.clone();
    let options = ServeOptions::for_service(ServiceName::Nurture, api_name, &settings);
    boot.serve(
        listener,
        Routes::new(NurtureServiceServer::new(api)),
        options,
    )
    .await
}
