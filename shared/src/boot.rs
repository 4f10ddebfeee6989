//! One boot sequence for every service: connect to its database and migrate it, start its event
//! log, start the consumers of other services' logs and any background task, then serve its gRPC
//! routes (with the event log, its dead letters when it follows other logs, health and
//! reflection) until shutdown, and stop the background tasks after the server.

use std::{collections::HashMap, future::Future, sync::Arc, time::Duration};

use sea_orm::DatabaseConnection;
use sea_orm_migration::MigratorTrait;
use tokio::{net::TcpListener, task::JoinHandle};
use tokio_util::sync::CancellationToken;
use tonic::service::Routes;
use tonic_health::server::HealthReporter;

use crate::{
    db,
    error::BootError,
    events::{Consumer, DeadLetterApi, EventHandler, EventLog, Replay},
    metrics::Sample,
    peer::PeerAccess,
    server::{self, ServeOptions},
    settings::{ServiceName, Settings},
};

/// A service being started: its database, its event log and its background tasks so far.
pub struct Boot {
    pub name: ServiceName,
    pub settings: Arc<Settings>,
    pub db: DatabaseConnection,
    pub log: EventLog,
    pub shutdown: CancellationToken,
    /// How this service reaches its peers (TLS, its service token).
    pub access: PeerAccess,
    background: Vec<JoinHandle<()>>,
    /// The handler of each source followed, to replay its dead letters.
    replayers: HashMap<String, Arc<dyn Replay>>,
    /// What grpc.health.v1 will serve; each consumer reports under `consumer:<source>`.
    health: HealthReporter,
    /// Why the service cannot run as configured (found while wiring it), reported by `serve`.
    broken: Option<&'static str>,
}

impl Boot {
    /// Connects to the database the settings name for `name`, applies `M`'s pending migrations and
    /// starts the service's event log.
    pub async fn start<M: MigratorTrait>(
        name: ServiceName,
        settings: Arc<Settings>,
        shutdown: CancellationToken,
    ) -> Result<Boot, BootError> {
        let access = PeerAccess::from_settings(name.as_str(), &settings)?;
        let own = settings.service(name);
        let db = db::connect_for_service::<M>(&own.database_url, &settings.database).await?;
        let log = EventLog::start(db.clone(), settings.events.clone(), shutdown.clone());
        log.named(name.as_str());
        crate::metrics::install(&settings.telemetry)?;
        crate::metrics::watch_pool(name.as_str(), &db);
        let boot = Boot {
            name,
            settings,
            db,
            log,
            shutdown,
            access,
            background: Vec::new(),
            replayers: HashMap::new(),
            health: HealthReporter::new(),
            broken: None,
        };
        let outbox = boot.db.get_database_backend() == sea_orm::DbBackend::Postgres;
        Ok(if outbox {
            boot.sample(vec![Sample {
                gauge: |m| &m.outbox_depth,
                attributes: Vec::new(),
                sql: "SELECT COUNT(*) AS n FROM event_outbox".into(),
            }])
        } else {
            boot
        })
    }

    /// Follows `source`'s event log with `handler` (cursor kept in this service's database).
    pub fn consume<H: EventHandler>(mut self, source: ServiceName, handler: H) -> Self {
        if let Some(why) = self.access.credentials.missing() {
            tracing::error!(service = %self.name, %source, "{why}");
            self.broken.get_or_insert(why);
        }
        let consumer = Consumer::of(
            source,
            &self.settings,
            self.db.clone(),
            handler,
            &self.log,
            self.access.clone(),
        )
        .with_health(self.health.clone())
        .named(self.name.as_str());
        let (source, replayer) = consumer.replayer();
        self.replayers.insert(source, replayer);
        self.background.push(consumer.spawn(self.shutdown.clone()));
        self
    }

    /// Runs `task` beside the server (it must end when [`Boot::shutdown`] fires).
    /// Samples the gauges `samples` from this service's database in the background (every
    /// `telemetry.sample_interval_ms`), each with the `service` attribute added.
    pub fn sample(self, mut samples: Vec<Sample>) -> Self {
        for s in &mut samples {
            s.attributes
                .push(opentelemetry::KeyValue::new("service", self.name.as_str()));
        }
        let interval = Duration::from_millis(self.settings.telemetry.sample_interval_ms.max(10));
        let task =
            crate::metrics::sample(self.db.clone(), samples, interval, self.shutdown.clone());
        self.spawn(task)
    }

    pub fn spawn(mut self, task: impl Future<Output = ()> + Send + 'static) -> Self {
        self.background.push(tokio::spawn(task));
        self
    }

    /// Serves `routes` plus the service's event log on `listener` until shutdown; then stops the
    /// background tasks and waits for them.
    pub async fn serve(
        self,
        listener: TcpListener,
        routes: Routes,
        mut options: ServeOptions<'_>,
    ) -> Result<(), BootError> {
        options.health = self.health.clone();
        if let Some(why) = self.broken {
            self.shutdown.cancel();
            return Err(BootError::Settings(why.to_owned()));
        }
        let mut routes = routes.add_service(self.log.grpc_service(self.shutdown.clone()));
        if !self.replayers.is_empty() {
            routes = routes.add_service(DeadLetterApi::server(
                self.db.clone(),
                self.replayers,
                Some(self.log.clone()),
            ));
        }
        let mut background = self.background;
        background.push(tokio::spawn(readiness(
            self.name.as_str(),
            self.db.clone(),
            self.health.clone(),
            options.health_names.clone(),
            Duration::from_millis(self.settings.telemetry.readiness_interval_ms.max(10)),
            self.shutdown.clone(),
        )));
        server::serve_with_background(listener, routes, options, self.shutdown, background).await
    }
}

/// Readiness: while the service's database does not answer a ping, grpc.health.v1 says
/// NOT_SERVING for the server ("") and the service's names, and SERVING again once it does.
/// Liveness is the process answering at all (the `baton.liveness` name stays SERVING).
async fn readiness(
    service: &'static str,
    db: DatabaseConnection,
    health: HealthReporter,
    names: Vec<&'static str>,
    interval: Duration,
    shutdown: CancellationToken,
) {
    use tonic_health::ServingStatus;
    health
        .set_service_status(LIVENESS, ServingStatus::Serving)
        .await;
    let mut ready = true;
    crate::metrics::set_ready(service, true);
    loop {
        tokio::select! {
            _ = tokio::time::sleep(interval) => {}
            _ = shutdown.cancelled() => return,
        }
        let answers = tokio::time::timeout(interval, db.ping())
            .await
            .is_ok_and(|r| r.is_ok());
        if answers == ready || shutdown.is_cancelled() {
            continue;
        }
        ready = answers;
        crate::metrics::set_ready(service, ready);
        let status = if ready {
            tracing::info!("database answers again: ready");
            ServingStatus::Serving
        } else {
            tracing::warn!("database does not answer: not ready (health NOT_SERVING)");
            ServingStatus::NotServing
        };
        for name in std::iter::once("").chain(names.iter().copied()) {
            health.set_service_status(name, status).await;
        }
    }
}

/// The grpc.health.v1 service name of liveness: SERVING while the process runs, whatever its
/// database does (a Kubernetes liveness probe asks for it; readiness asks for "").
pub const LIVENESS: &str = "baton.liveness";
