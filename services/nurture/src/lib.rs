//! nurture — sequences of e-mail touches that keep leads warm until they are ready for sales: a
//! scheduler that sends due steps over SMTP (or into a file sink) within consent, caps and quiet
//! hours; a tracking endpoint that tells people from machines; recycling of lost and handed-back
//! leads. Consumes capture's and qualification's logs; produces LeadEnrolled, EnrollmentEnded and
//! TouchRecorded, and records its e-mail activities in capture over gRPC.

pub mod api;
pub mod consume;
pub mod convert;
pub mod delivery;
pub mod domain;
pub mod error;
pub mod migration;
pub mod store;
pub mod tracking;

use std::{sync::Arc, time::Duration};

use baton_proto::nurture::v1::nurture_service_server::NurtureServiceServer;
use baton_shared::{
    BootError, ServiceName, Settings, auth::token::ensure_dev_secret, background, boot::Boot,
    server::ServeOptions,
};
use tokio::net::TcpListener;
use tokio_util::sync::CancellationToken;
use tonic::{server::NamedService, service::Routes};

use delivery::{mailer::Mailer, relay::Relay, scheduler::Scheduler};

/// Runs nurture on `listener` until `shutdown` fires; the tracking endpoint listens where the
/// settings say.
pub async fn run(
    settings: Arc<Settings>,
    listener: TcpListener,
    shutdown: CancellationToken,
) -> Result<(), BootError> {
    let tracking = TcpListener::bind(&settings.tracking.listen)
        .await
        .map_err(|e| {
            BootError::Settings(format!("tracking.listen {}: {e}", settings.tracking.listen))
        })?;
    run_with(settings, listener, tracking, shutdown).await
}

/// The tracking key: the file's bytes, created (random) on first start.
fn tracking_key(path: &str) -> Result<Vec<u8>, BootError> {
    ensure_dev_secret(std::path::Path::new(path))?;
    let key = std::fs::read(path)
        .map_err(|e| BootError::Settings(format!("tracking.key_file {path}: {e}")))?;
    if key.len() < 16 {
        return Err(BootError::Settings(format!(
            "tracking.key_file {path}: at least 16 bytes are needed"
        )));
    }
    Ok(key)
}

/// Runs nurture with its tracking endpoint on `tracking` (already bound).
pub async fn run_with(
    settings: Arc<Settings>,
    listener: TcpListener,
    tracking: TcpListener,
    shutdown: CancellationToken,
) -> Result<(), BootError> {
    let signer = domain::token::Signer::new(&tracking_key(&settings.tracking.key_file)?);
    let mailer = Arc::new(Mailer::from_settings(&settings.delivery)?);
    let capture = baton_shared::tls::endpoint(&settings.capture.endpoint, &settings.tls)
        .map_err(BootError::Settings)?
        .connect_lazy();
    let mail_files = (settings.delivery.transport == baton_shared::settings::MailTransport::File)
        .then(|| std::path::PathBuf::from(&settings.delivery.outbox_dir));
    let boot = Boot::start::<migration::Migrator>(ServiceName::Nurture, settings, shutdown)
        .await?
        .consume(ServiceName::Capture, consume::CaptureEvents { mail_files })
        .consume(ServiceName::Qualification, consume::QualificationEvents)
        .sample(store::schedule::gauges());
    let store = store::Store::new(boot.db.clone(), boot.log.clone());
    let d = boot.settings.delivery.clone();
    let t = boot.settings.tracking.clone();
    let scheduler = Arc::new(Scheduler::new(
        store.clone(),
        mailer,
        signer.clone(),
        t.base_url.clone(),
        d.clone(),
    ));
    let relay = Arc::new(Relay {
        store: store.clone(),
        capture,
        credentials: boot.access.credentials.clone(),
        batch: d.relay_batch_size,
    });
    let stop = boot.shutdown.clone();
    let api = api::Api::new(store.clone());
    let boot = boot
        .spawn(background::repeat(
            "nurture scheduler",
            Duration::from_millis(d.scheduler_interval_ms),
            stop.clone(),
            move || {
                let s = scheduler.clone();
                async move { s.round().await }
            },
        ))
        .spawn(background::repeat(
            "nurture activity relay",
            Duration::from_millis(d.relay_interval_ms),
            stop.clone(),
            move || {
                let r = relay.clone();
                async move { r.round().await }
            },
        ))
        .spawn(tracking::serve(
            store,
            signer,
            tracking,
            t.batch_max,
            Duration::from_millis(t.flush_interval_ms),
            stop,
        ));
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
