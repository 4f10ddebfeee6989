//! capture — where leads enter Baton: leads, identification by normalised e-mail, idempotent
//! capture, activities. Produces `LeadCaptured` and `ActivityRecorded` on its event log.

pub mod api;
pub mod convert;
pub mod domain;
pub mod error;
pub mod migration;
pub mod store;

use std::sync::Arc;

use baton_proto::capture::v1::capture_service_server::CaptureServiceServer;
use baton_shared::{BootError, ServiceName, Settings, boot::Boot, server::ServeOptions};
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
    let boot = Boot::start::<migration::Migrator>(ServiceName::Capture, settings, shutdown).await?;
    let store = store::Store::new(boot.db.clone(), boot.log.clone());
    // Concurrent captures share transactions: SQLite's one writer, or on PostgreSQL half the
    // pool (the rest serves reads, the other RPCs and the relay).
    let writers = match boot.db.get_database_backend() {
        sea_orm::DbBackend::Sqlite => 1,
        _ => (boot.settings.database.max_connections as usize / 2).max(1),
    };
    let writer =
        store::group_commit::GroupCommit::start(store.clone(), writers, GROUP_COMMIT_BATCH);
    let api = api::Api::new(store, writer, boot.settings.import.max_results_per_call);
    let api_name = <CaptureServiceServer<api::Api> as NamedService>::NAME;
    let settings = boot.settings.clone();
    let options = ServeOptions::for_service(ServiceName::Capture, api_name, &settings)
        .long_running(api_name, "ImportLeads");
    boot.serve(
        listener,
        Routes::new(CaptureServiceServer::new(api)),
        options,
    )
    .await
}
