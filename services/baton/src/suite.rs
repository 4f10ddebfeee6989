//! The five services in one process, each on its own gRPC socket and database (the embedded
//! default of `baton up`; the end-to-end tests use it with ephemeral ports).

use std::{collections::BTreeMap, net::SocketAddr, sync::Arc};

use baton_shared::{BootError, ServiceName, Settings, server};
use tokio::{net::TcpListener, task::JoinHandle};
use tokio_util::sync::CancellationToken;

/// Runs service `name` on `listener` until `shutdown` fires.
pub async fn run_service(
    name: ServiceName,
    settings: Arc<Settings>,
    listener: TcpListener,
    shutdown: CancellationToken,
) -> Result<(), BootError> {
    match name {
        ServiceName::Capture => baton_capture::run(settings, listener, shutdown).await,
        ServiceName::Nurture => baton_nurture::run(settings, listener, shutdown).await,
        ServiceName::Qualification => baton_qualification::run(settings, listener, shutdown).await,
        ServiceName::Distribution => baton_distribution::run(settings, listener, shutdown).await,
        ServiceName::Reporting => baton_reporting::run(settings, listener, shutdown).await,
    }
}

/// Applies the pending migrations of service `name` to the database its settings name.
pub async fn migrate_service(name: ServiceName, settings: &Settings) -> Result<(), BootError> {
    let url = &settings.service(name).database_url;
    let db = match name {
        ServiceName::Capture => {
            baton_shared::db::connect_and_migrate::<baton_capture::migration::Migrator>(
                url,
                &settings.database,
            )
            .await
        }
        ServiceName::Nurture => {
            baton_shared::db::connect_and_migrate::<baton_nurture::migration::Migrator>(
                url,
                &settings.database,
            )
            .await
        }
        ServiceName::Qualification => {
            baton_shared::db::connect_and_migrate::<baton_qualification::migration::Migrator>(
                url,
                &settings.database,
            )
            .await
        }
        ServiceName::Distribution => {
            baton_shared::db::connect_and_migrate::<baton_distribution::migration::Migrator>(
                url,
                &settings.database,
            )
            .await
        }
        ServiceName::Reporting => {
            baton_shared::db::connect_and_migrate::<baton_reporting::migration::Migrator>(
                url,
                &settings.database,
            )
            .await
        }
    }?;
    db.close().await.map_err(|source| BootError::Database {
        url: baton_shared::db::redact(url),
        source,
    })
}

struct Running {
    shutdown: CancellationToken,
    handle: JoinHandle<Result<(), BootError>>,
}

/// The running suite.
pub struct Suite {
    settings: Arc<Settings>,
    addrs: BTreeMap<&'static str, (ServiceName, SocketAddr)>,
    running: BTreeMap<&'static str, Running>,
    /// Where `GET /metrics` is served (telemetry.metrics_listen), and its stop.
    metrics: Option<SocketAddr>,
    metrics_shutdown: CancellationToken,
}

impl Suite {
    /// Binds every service's `listen` address first, so that each peer's endpoint is known (port 0
    /// included), then starts all five.
    pub async fn start(mut settings: Settings) -> Result<Suite, BootError> {
        let mut listeners = Vec::new();
        let mut addrs = BTreeMap::new();
        // The servers speak TLS when they have a certificate; peers then connect over it.
        let scheme = if settings.tls.cert_file.is_empty() {
            "http"
        } else {
            "https"
        };
        for name in ServiceName::ALL {
            let listener = server::bind(&settings.service(name).listen).await?;
            let addr = listener.local_addr()?;
            settings.service_mut(name).endpoint = format!("{scheme}://{}", reachable(addr));
            addrs.insert(name.as_str(), (name, addr));
            listeners.push((name, listener));
        }
        let settings = Arc::new(settings);
        let metrics_shutdown = CancellationToken::new();
        let metrics =
            baton_shared::metrics::start(&settings.telemetry, metrics_shutdown.clone()).await?;
        let mut running = BTreeMap::new();
        for (name, listener) in listeners {
            running.insert(name.as_str(), spawn(name, &settings, listener));
        }
        Ok(Suite {
            settings,
            addrs,
            running,
            metrics,
            metrics_shutdown,
        })
    }

    /// Where each service listens, in a stable order.
    pub fn endpoints(&self) -> Vec<(ServiceName, String)> {
        ServiceName::ALL
            .iter()
            .map(|n| (*n, self.endpoint(*n)))
            .collect()
    }

    /// The settings the suite runs with (its peers' real endpoints included).
    pub fn settings(&self) -> &Settings {
        &self.settings
    }

    pub fn endpoint(&self, name: ServiceName) -> String {
        self.settings.service(name).endpoint.clone()
    }

    pub fn local_addr(&self, name: ServiceName) -> SocketAddr {
        self.addrs[name.as_str()].1
    }

    /// Stops one service (its peers keep running and reconnect when it is back).
    pub async fn stop_service(&mut self, name: ServiceName) -> Result<(), BootError> {
        if let Some(r) = self.running.remove(name.as_str()) {
            r.shutdown.cancel();
            join(r.handle).await?;
        }
        Ok(())
    }

    /// Starts a stopped service again on the same address and database.
    pub async fn start_service(&mut self, name: ServiceName) -> Result<(), BootError> {
        let addr = self.local_addr(name);
        let listener = server::bind(&addr.to_string()).await?;
        self.running
            .insert(name.as_str(), spawn(name, &self.settings, listener));
        Ok(())
    }

    /// Stops service `name` and starts it again on the same address against another database
    /// (e.g. an empty one: a service that derives its data from the others' events rebuilds it).
    pub async fn restart_on_database(
        &mut self,
        name: ServiceName,
        database_url: &str,
    ) -> Result<(), BootError> {
        self.stop_service(name).await?;
        let mut settings = (*self.settings).clone();
        settings.service_mut(name).database_url = database_url.to_owned();
        let listener = server::bind(&self.local_addr(name).to_string()).await?;
        self.running
            .insert(name.as_str(), spawn(name, &Arc::new(settings), listener));
        Ok(())
    }

    /// Stops every service and waits for them.
    /// Where the metrics endpoint listens (`GET /metrics`), if it is served.
    pub fn metrics_addr(&self) -> Option<SocketAddr> {
        self.metrics
    }

    pub async fn stop(mut self) -> Result<(), BootError> {
        self.metrics_shutdown.cancel();
        baton_shared::metrics::shutdown();
        for r in self.running.values() {
            r.shutdown.cancel();
        }
        let mut first_error = None;
        for (_, r) in std::mem::take(&mut self.running) {
            if let Err(e) = join(r.handle).await {
                first_error.get_or_insert(e);
            }
        }
        first_error.map_or(Ok(()), Err)
    }

    /// Runs until `shutdown` fires or a service fails, then stops the rest.
    pub async fn run_until(mut self, shutdown: CancellationToken) -> Result<(), BootError> {
        let handles: Vec<_> = std::mem::take(&mut self.running).into_values().collect();
        let tokens: Vec<_> = handles.iter().map(|r| r.shutdown.clone()).collect();
        let failed = CancellationToken::new();
        let mut waits = Vec::new();
        for r in handles {
            let failed = failed.clone();
            waits.push(tokio::spawn(async move {
                let result = join(r.handle).await;
                if result.is_err() {
                    failed.cancel();
                }
                result
            }));
        }
        tokio::select! {
            _ = shutdown.cancelled() => {}
            _ = failed.cancelled() => {}
        }
        for t in &tokens {
            t.cancel();
        }
        let mut first_error = None;
        for w in waits {
            if let Ok(Err(e)) = w.await {
                first_error.get_or_insert(e);
            }
        }
        first_error.map_or(Ok(()), Err)
    }
}

fn spawn(name: ServiceName, settings: &Arc<Settings>, listener: TcpListener) -> Running {
    let shutdown = CancellationToken::new();
    let handle = tokio::spawn(run_service(
        name,
        settings.clone(),
        listener,
        shutdown.clone(),
    ));
    Running { shutdown, handle }
}

async fn join(handle: JoinHandle<Result<(), BootError>>) -> Result<(), BootError> {
    match handle.await {
        Ok(result) => result,
        Err(e) => Err(BootError::Io(std::io::Error::other(format!(
            "service task failed: {e}"
        )))),
    }
}

/// An address a client on this host can dial (a wildcard bind is reached through loopback).
fn reachable(addr: SocketAddr) -> SocketAddr {
    if addr.ip().is_unspecified() {
        let loopback = if addr.is_ipv4() {
            std::net::IpAddr::V4(std::net::Ipv4Addr::LOCALHOST)
        } else {
            std::net::IpAddr::V6(std::net::Ipv6Addr::LOCALHOST)
        };
        SocketAddr::new(loopback, addr.port())
    } else {
        addr
    }
}
