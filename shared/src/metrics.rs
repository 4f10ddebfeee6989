//! Metrics an operator can alert on: OpenTelemetry instruments, exported over OTLP (the same
//! `telemetry.otlp_endpoint` as traces) and served for Prometheus to scrape (`GET /metrics` on
//! `telemetry.metrics_listen`). One meter provider per process: `baton up` serves the five
//! services' metrics on one endpoint, each with its `service` attribute.
//!
//! | metric (OpenTelemetry name) | kind | attributes |
//! |---|---|---|
//! | `rpc.server.duration` (ms) | histogram | rpc.system, rpc.service, rpc.method, rpc.grpc.status_code |
//! | `baton.consumer.lag` (events) | gauge | service, source |
//! | `baton.consumer.lag.time` (s) | gauge | service, source |
//! | `baton.events.outbox.depth` (events) | gauge | service |
//! | `baton.events.relay.latency` (ms) | histogram | service |
//! | `baton.events.dead_letters` | counter | service, source |
//! | `baton.sla.timers` (timers) | gauge | service, state (due, overdue) |
//! | `baton.scheduler.backlog` (enrolments) | gauge | service |
//! | `db.client.connections.usage` (connections) | gauge | service, state (used, idle) |
//! | `db.client.connections.max` (connections) | gauge | service |

use std::{
    net::SocketAddr,
    sync::{Mutex, OnceLock},
    time::Duration,
};

pub use opentelemetry::KeyValue;
use opentelemetry::metrics::{Counter, Gauge, Histogram, Meter, MeterProvider as _};
use opentelemetry_otlp::WithExportConfig;
use opentelemetry_sdk::{Resource, metrics::SdkMeterProvider};
use sea_orm::{ConnectionTrait, DatabaseConnection, DbBackend, Statement};
use tokio::net::TcpListener;
use tokio_util::sync::CancellationToken;

use crate::{error::BootError, settings::TelemetrySettings};

/// The process's meter provider and the registry the scrape endpoint reads.
struct Installed {
    provider: SdkMeterProvider,
    registry: prometheus::Registry,
}

static INSTALLED: OnceLock<Installed> = OnceLock::new();
static INSTRUMENTS: OnceLock<Instruments> = OnceLock::new();
/// Databases whose pools the connection gauges read, by service.
static POOLS: Mutex<Vec<(String, DatabaseConnection)>> = Mutex::new(Vec::new());

/// Installs the process's meter provider (the first call wins; later calls change nothing):
/// a Prometheus reader always, an OTLP periodic exporter when an endpoint is set.
pub fn install(settings: &TelemetrySettings) -> Result<(), BootError> {
    if INSTALLED.get().is_some() {
        return Ok(());
    }
    let registry = prometheus::Registry::new();
    let prometheus = opentelemetry_prometheus::exporter()
        .with_registry(registry.clone())
        .without_target_info()
        .build()
        .map_err(|e| BootError::Telemetry(e.to_string()))?;
    let mut builder = SdkMeterProvider::builder()
        .with_resource(Resource::builder().with_service_name("baton").build())
        .with_reader(prometheus);
    if !settings.otlp_endpoint.is_empty() {
        let exporter = opentelemetry_otlp::MetricExporter::builder()
            .with_tonic()
            .with_endpoint(settings.otlp_endpoint.clone())
            .build()
            .map_err(|e| BootError::Telemetry(e.to_string()))?;
        builder = builder.with_periodic_exporter(exporter);
    }
    let provider = builder.build();
    if INSTALLED.set(Installed { provider, registry }).is_ok() {
        pool_gauges(&meter());
    }
    Ok(())
}

/// The meter of the installed provider (a no-op meter before [`install`]).
fn meter() -> Meter {
    match INSTALLED.get() {
        Some(i) => i.provider.meter("baton"),
        None => opentelemetry::global::meter("baton"),
    }
}

/// Flushes the OTLP exporter (at shutdown).
pub fn shutdown() {
    if let Some(i) = INSTALLED.get() {
        let _ = i.provider.force_flush();
    }
}

/// The instruments every service records into.
pub struct Instruments {
    pub rpc_duration: Histogram<f64>,
    pub consumer_lag: Gauge<i64>,
    pub consumer_lag_time: Gauge<f64>,
    pub outbox_depth: Gauge<i64>,
    pub relay_latency: Histogram<f64>,
    pub dead_letters: Counter<u64>,
    pub sla_timers: Gauge<i64>,
    pub scheduler_backlog: Gauge<i64>,
}

/// The instruments, made on first use (after [`install`], or no-ops in a process without it).
pub fn instruments() -> &'static Instruments {
    INSTRUMENTS.get_or_init(|| {
        let m = meter();
        Instruments {
            rpc_duration: m
                .f64_histogram("rpc.server.duration")
                .with_unit("ms")
                .with_description("Duration of inbound RPCs, by method and status")
                .with_boundaries(vec![
                    1.0, 2.0, 5.0, 10.0, 25.0, 50.0, 100.0, 250.0, 500.0, 1000.0, 2500.0, 10000.0,
                ])
                .build(),
            consumer_lag: m
                .i64_gauge("baton.consumer.lag")
                .with_unit("{event}")
                .with_description("Positions of a followed log not yet applied")
                .build(),
            consumer_lag_time: m
                .f64_gauge("baton.consumer.lag.time")
                .with_unit("s")
                .with_description(
                    "Age of the last applied event while the consumer is behind, else 0",
                )
                .build(),
            outbox_depth: m
                .i64_gauge("baton.events.outbox.depth")
                .with_unit("{event}")
                .with_description("Events committed but not yet in the log (PostgreSQL)")
                .build(),
            relay_latency: m
                .f64_histogram("baton.events.relay.latency")
                .with_unit("ms")
                .with_description("From an event's commit to its move into the log")
                .with_boundaries(vec![
                    1.0, 5.0, 10.0, 50.0, 100.0, 250.0, 500.0, 1000.0, 5000.0,
                ])
                .build(),
            dead_letters: m
                .u64_counter("baton.events.dead_letters")
                .with_description("Events a consumer could not apply and skipped")
                .build(),
            sla_timers: m
                .i64_gauge("baton.sla.timers")
                .with_unit("{timer}")
                .with_description("Open SLA timers, due (later) or overdue (past due, not fired)")
                .build(),
            scheduler_backlog: m
                .i64_gauge("baton.scheduler.backlog")
                .with_unit("{enrollment}")
                .with_description("Active enrolments whose next step is due")
                .build(),
        }
    })
}

/// Connection gauges of every pool given to [`watch_pool`], read at each collection.
fn pool_gauges(m: &Meter) {
    m.i64_observable_gauge("db.client.connections.usage")
        .with_unit("{connection}")
        .with_description("Connections of a service's pool, used or idle")
        .with_callback(|observer| {
            for (service, db) in POOLS.lock().unwrap_or_else(|e| e.into_inner()).iter() {
                let (size, idle, _) = pool_stats(db);
                let service = KeyValue::new("service", service.clone());
                let used = i64::from(size) - idle as i64;
                observer.observe(used, &[service.clone(), KeyValue::new("state", "used")]);
                observer.observe(idle as i64, &[service, KeyValue::new("state", "idle")]);
            }
        })
        .build();
    m.i64_observable_gauge("db.client.connections.max")
        .with_unit("{connection}")
        .with_description("Most connections a service's pool opens")
        .with_callback(|observer| {
            for (service, db) in POOLS.lock().unwrap_or_else(|e| e.into_inner()).iter() {
                let (_, _, max) = pool_stats(db);
                observer.observe(i64::from(max), &[KeyValue::new("service", service.clone())]);
            }
        })
        .build();
}

/// (open, idle, max) connections of a pool.
fn pool_stats(db: &DatabaseConnection) -> (u32, usize, u32) {
    match db.get_database_backend() {
        DbBackend::Postgres => {
            let p = db.get_postgres_connection_pool();
            (p.size(), p.num_idle(), p.options().get_max_connections())
        }
        _ => {
            let p = db.get_sqlite_connection_pool();
            (p.size(), p.num_idle(), p.options().get_max_connections())
        }
    }
}

/// Reports `db`'s pool as `service`'s in the connection gauges.
pub fn watch_pool(service: &str, db: &DatabaseConnection) {
    POOLS
        .lock()
        .unwrap_or_else(|e| e.into_inner())
        .push((service.to_owned(), db.clone()));
}

/// A gauge a sampler sets from a counting query (`SELECT COUNT(*) AS n ...`; `$1`, if it
/// appears, is bound to now).
pub struct Sample {
    pub gauge: fn(&Instruments) -> &Gauge<i64>,
    pub attributes: Vec<KeyValue>,
    pub sql: String,
}

/// Runs `samples` against `db` every `interval` until `shutdown`, setting their gauges (a failed
/// query leaves its gauge as it was and is logged at debug: the database's own health is
/// readiness's business).
pub async fn sample(
    db: DatabaseConnection,
    samples: Vec<Sample>,
    interval: Duration,
    shutdown: CancellationToken,
) {
    let mut tick = tokio::time::interval(interval);
    tick.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Delay);
    loop {
        tokio::select! {
            _ = tick.tick() => {}
            _ = shutdown.cancelled() => return,
        }
        for s in &samples {
            let backend = db.get_database_backend();
            let sql = if backend == DbBackend::Postgres {
                s.sql.to_owned()
            } else {
                s.sql.replace("$1", "?")
            };
            let values: Vec<sea_orm::Value> = if s.sql.contains("$1") {
                vec![crate::time::now().into()]
            } else {
                Vec::new()
            };
            let statement = Statement::from_sql_and_values(backend, sql, values);
            match db.query_one_raw(statement).await {
                Ok(Some(row)) => {
                    if let Ok(n) = row.try_get::<i64>("", "n") {
                        (s.gauge)(instruments()).record(n, &s.attributes);
                    }
                }
                Ok(None) => {}
                Err(e) => tracing::debug!(error = %e, sql = %s.sql, "metric sample failed"),
            }
        }
    }
}

/// Readiness of the services of this process, by name (see `boot::readiness`).
static READY: Mutex<Vec<(String, bool)>> = Mutex::new(Vec::new());

/// Records whether `service` is ready (its database answers), for `GET /readyz`.
pub fn set_ready(service: &str, ready: bool) {
    let mut all = READY.lock().unwrap_or_else(|e| e.into_inner());
    match all.iter_mut().find(|(s, _)| s == service) {
        Some(entry) => entry.1 = ready,
        None => all.push((service.to_owned(), ready)),
    }
}

/// `GET /readyz`: 200 while every service of the process is ready, else 503 naming the others.
fn readyz() -> (http::StatusCode, String) {
    let all = READY.lock().unwrap_or_else(|e| e.into_inner());
    let not_ready: Vec<&str> = all
        .iter()
        .filter(|(_, r)| !r)
        .map(|(s, _)| s.as_str())
        .collect();
    if all.is_empty() {
        (http::StatusCode::SERVICE_UNAVAILABLE, "starting\n".into())
    } else if not_ready.is_empty() {
        (http::StatusCode::OK, "ready\n".into())
    } else {
        let why = format!(
            "not ready (database unreachable): {}\n",
            not_ready.join(", ")
        );
        (http::StatusCode::SERVICE_UNAVAILABLE, why)
    }
}

/// Prometheus text exposition of every metric.
pub fn render() -> String {
    let Some(installed) = INSTALLED.get() else {
        return String::new();
    };
    prometheus::TextEncoder::new()
        .encode_to_string(&installed.registry.gather())
        .unwrap_or_default()
}

/// Serves `GET /metrics` (Prometheus text), `GET /readyz` (readiness: every service's database
/// answers) and `GET /livez` (the process answers) on `listener` until `shutdown`. Kubernetes
/// probes use the last two: kubelet's gRPC probes cannot speak TLS.
pub async fn serve(listener: TcpListener, shutdown: CancellationToken) {
    let app = axum::Router::new()
        .route(
            "/metrics",
            axum::routing::get(|| async {
                (
                    [(
                        http::header::CONTENT_TYPE,
                        "text/plain; version=0.0.4; charset=utf-8",
                    )],
                    render(),
                )
            }),
        )
        .route("/readyz", axum::routing::get(|| async { readyz() }))
        .route("/livez", axum::routing::get(|| async { "alive\n" }));
    let served = axum::serve(listener, app)
        .with_graceful_shutdown(async move { shutdown.cancelled().await })
        .await;
    if let Err(e) = served {
        tracing::warn!(error = %e, "metrics endpoint stopped");
    }
}

/// Binds `telemetry.metrics_listen` (empty: no endpoint), installs the provider and serves the
/// endpoint in the background. Returns where it listens.
pub async fn start(
    settings: &TelemetrySettings,
    shutdown: CancellationToken,
) -> Result<Option<SocketAddr>, BootError> {
    install(settings)?;
    if settings.metrics_listen.is_empty() {
        return Ok(None);
    }
    let listener = TcpListener::bind(&settings.metrics_listen)
        .await
        .map_err(|e| {
            BootError::Settings(format!(
                "telemetry.metrics_listen {}: {e}",
                settings.metrics_listen
            ))
        })?;
    let addr = listener.local_addr()?;
    tokio::spawn(serve(listener, shutdown));
    tracing::info!(%addr, "serving metrics at /metrics");
    Ok(Some(addr))
}
