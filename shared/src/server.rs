//! The gRPC server every service runs: its own services plus grpc.health.v1 and server reflection
//! (v1 and v1alpha), over TLS (or plaintext where the settings allow it), behind one stack of
//! tower layers (an RPC span with W3C trace context and the RPC metrics, authentication / authorisation / tenant rate
//! limit, load shedding, concurrency limit, timeout), with graceful shutdown.

use std::{future::Future, path::PathBuf, sync::Arc, time::Duration};

use tokio::net::TcpListener;
use tokio_util::sync::CancellationToken;
use tonic::{
    Status,
    service::Routes,
    transport::{Server, server::TcpIncoming},
};
use tonic_health::ServingStatus;
use tower::{BoxError, ServiceBuilder};

use crate::{
    auth::{
        keys::Keys,
        layer::{AuthLayer, Gate},
        policy::Policy,
    },
    error::BootError,
    settings::{ServiceName, Settings},
    telemetry,
    text::{Inputs, TextLayer},
    tls::ServerTls,
};

/// What one service asks the bootstrap to serve.
pub struct ServeOptions<'a> {
    /// Short name for logs, e.g. "capture".
    pub name: &'a str,
    /// Fully-qualified gRPC service names reported by grpc.health.v1 (e.g. `baton.capture.v1.CaptureService`).
    pub health_names: Vec<&'static str>,
    pub settings: &'a Settings,
    /// Paths (`/package.Service/Method`) of calls that may legitimately outlast the request
    /// timeout, such as client-streaming imports; the timeout layer lets them run.
    pub long_running: Vec<String>,
    /// The statuses grpc.health.v1 serves: the server sets those of `health_names`; background
    /// work may report under names of its own (an event consumer: `consumer:<source>`).
    pub health: tonic_health::server::HealthReporter,
}

impl<'a> ServeOptions<'a> {
    /// The options of one Baton service: health for its API (`api`, a fully-qualified gRPC name)
    /// and its event log, the configured server settings and default tenant.
    pub fn for_service(name: ServiceName, api: &'static str, settings: &'a Settings) -> Self {
        ServeOptions::new(
            name.as_str(),
            vec![api, crate::events::EVENT_LOG_SERVICE_NAME],
            settings,
        )
    }

    /// Options serving `health_names` as `name` under `settings`.
    pub fn new(name: &'a str, health_names: Vec<&'static str>, settings: &'a Settings) -> Self {
        ServeOptions {
            name,
            health_names,
            settings,
            long_running: Vec::new(),
            health: tonic_health::server::HealthReporter::new(),
        }
    }

    /// A second gRPC service served beside the API (health and reflection report it too).
    pub fn also_serves(mut self, api: &'static str) -> Self {
        self.health_names.insert(1, api);
        self
    }

    /// Exempts `method` of gRPC service `service` from the request timeout.
    pub fn long_running(mut self, service: &str, method: &str) -> Self {
        self.long_running.push(format!("/{service}/{method}"));
        self
    }
}

/// [`serve`], then, once the server has stopped, stops the service's background tasks (event
/// consumers) and waits for them, so nothing is left running against the database.
pub async fn serve_with_background(
    listener: TcpListener,
    routes: Routes,
    options: ServeOptions<'_>,
    shutdown: CancellationToken,
    background: Vec<tokio::task::JoinHandle<()>>,
) -> Result<(), BootError> {
    let served = serve(listener, routes, options, shutdown.clone()).await;
    shutdown.cancel();
    for task in background {
        let _ = task.await;
    }
    served
}

/// Binds `addr` (port 0 = any free port).
pub async fn bind(addr: &str) -> Result<TcpListener, BootError> {
    TcpListener::bind(addr)
        .await
        .map_err(|source| BootError::Listen {
            addr: addr.to_owned(),
            source,
        })
}

/// Serves `routes` on `listener` until `shutdown` fires, then stops accepting, reports NOT_SERVING,
/// and lets in-flight calls finish for up to the configured grace period.
pub async fn serve(
    listener: TcpListener,
    routes: Routes,
    options: ServeOptions<'_>,
    shutdown: CancellationToken,
) -> Result<(), BootError> {
    let health = options.health.clone();
    let health_service = tonic_health::pb::health_server::HealthServer::new(
        tonic_health::server::HealthService::from_health_reporter(health.clone()),
    );
    for name in &options.health_names {
        health
            .set_service_status(*name, ServingStatus::Serving)
            .await;
    }
    let reflection_v1 = reflection(&options.health_names)
        .build_v1()
        .map_err(|e| BootError::Settings(format!("reflection: {e}")))?;
    let reflection_v1alpha = reflection(&options.health_names)
        .build_v1alpha()
        .map_err(|e| BootError::Settings(format!("reflection: {e}")))?;

    let local = listener.local_addr()?;
    let gate = gate(options.settings, local, &shutdown)?;
    let tls = ServerTls::for_listener(&options.settings.tls, local)?;
    let server_settings = &options.settings.server;
    let timeout = server_settings.request_timeout();
    let layers = ServiceBuilder::new()
        .layer(crate::rpc_layer::RpcLayer)
        .layer(AuthLayer::new(gate))
        .layer(TextLayer::new(
            Inputs::from_descriptor_set(baton_proto::FILE_DESCRIPTOR_SET),
            timeout,
        ))
        .map_err(overload_to_status)
        .load_shed()
        .concurrency_limit(server_settings.concurrency_limit)
        .layer(RequestTimeoutLayer {
            timeout,
            exempt: Arc::new(options.long_running.clone()),
        })
        .into_inner();

    tracing::info!(service = options.name, %local, tls = tls.is_some(), "serving gRPC");
    let grace = server_settings.shutdown_grace();
    let drained = CancellationToken::new();
    let signal = {
        let shutdown = shutdown.clone();
        let health = health.clone();
        let names = options.health_names.clone();
        async move {
            shutdown.cancelled().await;
            for name in names {
                health
                    .set_service_status(name, ServingStatus::NotServing)
                    .await;
            }
        }
    };
    let mut builder = Server::builder();
    if server_settings.max_connection_age_seconds > 0 {
        builder = builder
            .max_connection_age(Duration::from_secs(
                server_settings.max_connection_age_seconds,
            ))
            .max_connection_age_grace(Duration::from_secs(
                server_settings.max_connection_age_grace_seconds,
            ));
    }
    let router = builder
        .layer(layers)
        .add_routes(routes)
        .add_service(health_service)
        .add_service(reflection_v1)
        .add_service(reflection_v1alpha);
    let server: std::pin::Pin<
        Box<dyn Future<Output = Result<(), tonic::transport::Error>> + Send>,
    > = match tls {
        Some(tls) => {
            tokio::spawn(tls.clone().watch(shutdown.clone()));
            let incoming = tls.incoming(listener, shutdown.clone());
            Box::pin(router.serve_with_incoming_shutdown(incoming, signal))
        }
        None => {
            let incoming = TcpIncoming::from(listener).with_nodelay(Some(true));
            Box::pin(router.serve_with_incoming_shutdown(incoming, signal))
        }
    };
    let name = options.name.to_owned();
    let grace_timer = {
        let drained = drained.clone();
        async move {
            shutdown.cancelled().await;
            tokio::select! {
                _ = tokio::time::sleep(grace) => tracing::warn!(service = %name, ?grace, "grace period over; dropping calls still in flight"),
                _ = drained.cancelled() => {}
            }
        }
    };
    tokio::select! {
        result = server => { drained.cancel(); result?; }
        _ = grace_timer => {}
    }
    tracing::info!(service = options.name, "stopped");
    Ok(())
}

/// The auth gate of a server listening on `local`: its keys (watched for rotation until
/// `shutdown`), its policy and its tenants' rate limit. A development (HS256) key is refused on a
/// server that listens beyond loopback.
fn gate(
    settings: &Settings,
    local: std::net::SocketAddr,
    shutdown: &CancellationToken,
) -> Result<Gate, BootError> {
    let auth = &settings.auth;
    let keys = if auth.enabled {
        let keys = Keys::load(auth)?;
        if keys.current().has_shared_secret() && !local.ip().is_loopback() {
            return Err(BootError::Settings(format!(
                "auth: the HS256 development secret ({}) is only accepted on loopback, and this server listens on {local}; use RS256/ES256 keys (auth.jwks_file, auth.public_key_files) and set auth.hs256_secret_file = \"\"",
                auth.hs256_secret_file
            )));
        }
        tokio::spawn(keys.clone().watch(shutdown.clone()));
        Some(keys)
    } else if local.ip().is_loopback() {
        tracing::warn!(%local, "auth.enabled is false: every call is served as an anonymous admin of the default tenant");
        None
    } else {
        return Err(BootError::Settings(format!(
            "auth.enabled = false is only accepted on loopback, and this server listens on {local}"
        )));
    };
    let policy = if auth.policy_file.is_empty() {
        Policy::builtin()
    } else {
        let text = std::fs::read_to_string(&auth.policy_file)
            .map_err(|e| BootError::Settings(format!("{}: {e}", auth.policy_file)))?;
        Policy::parse(&text).map_err(BootError::Settings)?
    };
    Ok(Gate::new(
        keys,
        policy,
        auth,
        &settings.rate_limit,
        crate::tenant::TenantId::new(settings.tenancy.default_tenant.clone()),
    ))
}

/// Reflection that advertises exactly what this server serves: its own services, health and
/// reflection (the descriptor set holds every Baton service, most of which live elsewhere).
fn reflection(served: &[&'static str]) -> tonic_reflection::server::Builder<'static> {
    let builder = tonic_reflection::server::Builder::configure()
        .register_encoded_file_descriptor_set(baton_proto::FILE_DESCRIPTOR_SET)
        .register_encoded_file_descriptor_set(tonic_health::pb::FILE_DESCRIPTOR_SET);
    served
        .iter()
        .copied()
        .chain([
            "grpc.health.v1.Health",
            "grpc.reflection.v1.ServerReflection",
            "grpc.reflection.v1alpha.ServerReflection",
        ])
        .fold(builder, |b, name| b.with_service_name(name))
}

/// The request timeout, except for the long-running paths (client-streaming imports would
/// otherwise be cut off after `timeout` however healthy). Expiry is tower's `Elapsed`, mapped to
/// DEADLINE_EXCEEDED like the rest of the stack's errors.
#[derive(Clone)]
struct RequestTimeoutLayer {
    timeout: Duration,
    exempt: Arc<Vec<String>>,
}

impl<S> tower::Layer<S> for RequestTimeoutLayer {
    type Service = RequestTimeout<S>;
    fn layer(&self, inner: S) -> Self::Service {
        RequestTimeout {
            inner,
            timeout: self.timeout,
            exempt: self.exempt.clone(),
        }
    }
}

#[derive(Clone)]
struct RequestTimeout<S> {
    inner: S,
    timeout: Duration,
    exempt: Arc<Vec<String>>,
}

impl<S, B> tower::Service<http::Request<B>> for RequestTimeout<S>
where
    S: tower::Service<http::Request<B>>,
    S::Error: Into<BoxError>,
    S::Future: Send + 'static,
{
    type Response = S::Response;
    type Error = BoxError;
    type Future = std::pin::Pin<Box<dyn Future<Output = Result<S::Response, BoxError>> + Send>>;

    fn poll_ready(
        &mut self,
        cx: &mut std::task::Context<'_>,
    ) -> std::task::Poll<Result<(), BoxError>> {
        self.inner.poll_ready(cx).map_err(Into::into)
    }

    fn call(&mut self, req: http::Request<B>) -> Self::Future {
        let exempt = self.exempt.iter().any(|p| p == req.uri().path());
        let timeout = self.timeout;
        let call = self.inner.call(req);
        Box::pin(async move {
            if exempt {
                return call.await.map_err(Into::into);
            }
            match tokio::time::timeout(timeout, call).await {
                Ok(result) => result.map_err(Into::into),
                Err(_) => Err(Box::new(tower::timeout::error::Elapsed::new()) as BoxError),
            }
        })
    }
}

/// Maps the errors of tower's timeout and load-shed layers to gRPC statuses callers can act on.
fn overload_to_status(err: BoxError) -> BoxError {
    if err.is::<tower::timeout::error::Elapsed>() {
        Box::new(Status::deadline_exceeded("request timed out on the server"))
    } else if err.is::<tower::load_shed::error::Overloaded>() {
        Box::new(Status::resource_exhausted(
            "server is at its concurrency limit; retry with backoff",
        ))
    } else {
        err
    }
}

/// Waits for SIGTERM or SIGINT, then cancels `token`.
pub async fn cancel_on_signal(token: CancellationToken) {
    let ctrl_c = tokio::signal::ctrl_c();
    #[cfg(unix)]
    {
        let mut term =
            match tokio::signal::unix::signal(tokio::signal::unix::SignalKind::terminate()) {
                Ok(s) => s,
                Err(e) => {
                    tracing::error!(error = %e, "cannot listen for SIGTERM");
                    let _ = ctrl_c.await;
                    token.cancel();
                    return;
                }
            };
        tokio::select! {
            _ = ctrl_c => {}
            _ = term.recv() => {}
        }
    }
    #[cfg(not(unix))]
    let _ = ctrl_c.await;
    tracing::info!("shutdown requested; draining in-flight calls");
    token.cancel();
}

pub use crate::files::sleep_or_cancel;

/// `baton serve <service>`: loads settings (`config` optional), starts telemetry, binds the
/// service's `listen` address and runs it until SIGTERM/SIGINT.
pub async fn run_one<F, Fut>(
    name: ServiceName,
    config: Option<PathBuf>,
    run: F,
) -> Result<(), BootError>
where
    F: FnOnce(Arc<Settings>, TcpListener, CancellationToken) -> Fut,
    Fut: Future<Output = Result<(), BootError>>,
{
    let settings = Arc::new(Settings::load(config.as_deref())?);
    let _telemetry = telemetry::init(&settings.telemetry, &format!("baton-{name}"))?;
    let listener = bind(&settings.service(name).listen).await?;
    let shutdown = CancellationToken::new();
    tokio::spawn(cancel_on_signal(shutdown.clone()));
    crate::metrics::start(&settings.telemetry, shutdown.clone()).await?;
    let result = run(settings, listener, shutdown).await;
    crate::metrics::shutdown();
    result
}

#[cfg(test)]
mod tests {
    use super::*;

    fn code_of(err: BoxError) -> tonic::Code {
        err.downcast::<Status>()
            .map(|s| s.code())
            .unwrap_or(tonic::Code::Unknown)
    }

    #[test]
    fn timeouts_and_shedding_become_statuses_callers_can_act_on() {
        let elapsed: BoxError = Box::new(tower::timeout::error::Elapsed::new());
        assert_eq!(
            code_of(overload_to_status(elapsed)),
            tonic::Code::DeadlineExceeded
        );
        let shed: BoxError = Box::new(tower::load_shed::error::Overloaded::new());
        assert_eq!(
            code_of(overload_to_status(shed)),
            tonic::Code::ResourceExhausted
        );
        let other: BoxError = "boom".into();
        assert_eq!(code_of(overload_to_status(other)), tonic::Code::Unknown);
    }
}
