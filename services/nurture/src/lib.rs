//! nurture — sequences of touches that keep leads warm until they are ready for sales. Consumes
//! capture's `LeadCaptured`; produces `LeadEnrolled`.

pub mod api;
pub mod consume;
pub mod domain;
pub mod error;
pub mod migration;
pub mod store;

use std::sync::Arc;

use baton_proto::nurture::v1::nurture_service_server::NurtureServiceServer;
use baton_shared::{
    BootError, ServiceName, Settings, db,
    events::{Consumer, EventLog},
    server::{self, ServeOptions},
};
use tokio::net::TcpListener;
use tokio_util::sync::CancellationToken;
use tonic::{server::NamedService, service::Routes};

/// Runs nurture on `listener` until `shutdown` fires.
pub async fn run(
    settings: Arc<Settings>,
    listener: TcpListener,
    shutdown: CancellationToken,
) -> Result<(), BootError> {
    let own = settings.service(ServiceName::Nurture);
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
            ServiceName::Qualification,
            &settings,
            db.clone(),
            consume::QualificationEvents,
            &log,
        )
        .spawn(shutdown.clone()),
    ];
    let api = api::Api::new(store::Store::new(db));
    let routes =
        Routes::new(NurtureServiceServer::new(api)).add_service(log.grpc_service(shutdown.clone()));
    let api_name = <NurtureServiceServer<api::Api> as NamedService>::NAME;
    let options = ServeOptions::for_service(ServiceName::Nurture, api_name, &settings);
    server::serve_with_background(listener, routes, options, shutdown, background).await
}
