//! capture — where leads enter Baton: leads, identification by normalised e-mail, idempotent
//! capture, activities. Produces `LeadCaptured` and `ActivityRecorded` on its event log.

pub mod api;
pub mod domain;
pub mod error;
pub mod migration;
pub mod store;

use std::sync::Arc;

use baton_proto::capture::v1::capture_service_server::CaptureServiceServer;
use baton_shared::{
    BootError, ServiceName, Settings, db,
    events::EventLog,
    server::{self, ServeOptions},
};
use tokio::net::TcpListener;
use tokio_util::sync::CancellationToken;
use tonic::{server::NamedService, service::Routes};

/// Most captures one shared transaction takes.
const GROUP_COMMIT_BATCH: usize = 256;

/// Runs capture on `listener` until `shutdown` fires.
pub async fn run(
    settings: Arc<Settings>,
    listener: TcpListener,
    shutdown: CancellationToken,
) -> Result<(), BootError> {
    let own = settings.service(ServiceName::Capture);
    let db = db::connect_and_migrate::<migration::Migrator>(&own.database_url, &settings.database)
        .await?;
    let log = EventLog::start(db.clone(), settings.events.clone(), shutdown.clone());
    let store = store::Store::new(db.clone(), log.clone());
    // Concurrent captures share transactions: SQLite's one writer, or on PostgreSQL half the
    // pool (the rest serves reads, the other RPCs and the relay).
    let writers = match db.get_database_backend() {
        sea_orm::DbBackend::Sqlite => 1,
        _ => (settings.database.max_connections as usize / 2).max(1),
    };
    let writer =
        store::group_commit::GroupCommit::start(store.clone(), writers, GROUP_COMMIT_BATCH);
    let api = api::Api::new(store, writer);
    let routes =
        Routes::new(CaptureServiceServer::new(api)).add_service(log.grpc_service(shutdown.clone()));
    let api_name = <CaptureServiceServer<api::Api> as NamedService>::NAME;
    let options = ServeOptions::for_service(ServiceName::Capture, api_name, &settings)
        .long_running(api_name, "ImportLeads");
    server::serve(listener, routes, options, shutdown).await
}
