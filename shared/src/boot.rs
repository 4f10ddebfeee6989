//! One boot sequence for every service: connect to its database and migrate it, start its event
//! log, start the consumers of other services' logs and any background task, then serve its gRPC
//! routes (with the event log, its dead letters when it follows other logs, health and
//! reflection) until shutdown, and stop the background tasks after the server.

use std::{collections::HashMap, future::Future, sync::Arc};

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
        let db = db::connect_and_migrate::<M>(&own.database_url, &settings.database).await?;
        let log = EventLog::start(db.clone(), settings.events.clone(), shutdown.clone());
        Ok(Boot {
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
        .with_health(self.health.clone());
        let (source, replayer) = consumer.replayer();
        self.replayers.insert(source, replayer);
        self.background.push(consumer.spawn(self.shutdown.clone()));
        self
    }

    /// Runs `task` beside the server (it must end when [`Boot::shutdown`] fires).
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
        server::serve_with_background(listener, routes, options, self.shutdown, self.background)
            .await
    }
}
