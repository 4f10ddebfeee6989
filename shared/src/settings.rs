//! Typed settings, loaded in one place with the precedence
//! built-in defaults < `./baton.toml` < `--config FILE` < environment `BATON__SECTION__KEY`.

use std::{collections::HashMap, fmt, path::Path, str::FromStr, time::Duration};

use config::{Config, Environment, File, FileFormat};
use serde::Deserialize;

use crate::error::BootError;

/// The defaults, as a TOML document (also the reference for every key).
pub const DEFAULTS_TOML: &str = include_str!("defaults.toml");

/// Every setting of every service. Each service reads its own section and its peers' `endpoint`s.
#[derive(Debug, Clone, Deserialize)]
pub struct Settings {
    pub server: ServerSettings,
    pub telemetry: TelemetrySettings,
    pub tenancy: TenancySettings,
    pub auth: AuthSettings,
    pub rate_limit: RateLimitSettings,
    pub tls: TlsSettings,
    pub events: EventSettings,
    pub database: DatabaseSettings,
    pub scoring: ScoringSettings,
    pub sla: SlaSettings,
    pub routing: RoutingSettings,
    pub contracts: ContractSettings,
    pub delivery: DeliverySettings,
    pub tracking: TrackingSettings,
    pub import: ImportSettings,
    pub capture: ServiceSettings,
    pub nurture: ServiceSettings,
    pub qualification: ServiceSettings,
    pub distribution: ServiceSettings,
    pub reporting: ServiceSettings,
}

/// capture's ImportLeads.
#[derive(Debug, Clone, Deserialize)]
pub struct ImportSettings {
    /// Most row results one ImportLeads answer holds (every row's, or the rejected rows' only);
    /// an import asking for them that would hold more is RESOURCE_EXHAUSTED. 50,000 results stay
    /// under gRPC's default 4 MB message limit of most clients. A summary-only answer has no limit.
    pub max_results_per_call: u32,
}

/// How one service listens, where its peers reach it, and which database it owns.
#[derive(Debug, Clone, Deserialize)]
pub struct ServiceSettings {
    /// Socket address to bind, e.g. `127.0.0.1:50051`; port 0 picks a free port.
    pub listen: String,
    /// URL other services use to reach this one, e.g. `http://capture:50051` on Kubernetes.
    pub endpoint: String,
    /// sea-orm URL of the service's own database (`sqlite://data/capture.db?mode=rwc`, `postgres://…`).
    pub database_url: String,
}

#[derive(Debug, Clone, Deserialize)]
pub struct ServerSettings {
    /// Deadline for one unary call (and for opening a stream), in milliseconds.
    pub request_timeout_ms: u64,
    /// Calls served at once per service; more wait, and are shed when the queue is full.
    pub concurrency_limit: usize,
    /// After SIGTERM/SIGINT, how long in-flight calls may take to finish before the server stops.
    pub shutdown_grace_seconds: u64,
    /// A client connection older than this is asked to reconnect (HTTP/2 GOAWAY), so clients
    /// behind a ClusterIP Service spread over new replicas; 0 = never. Streams get
    /// `max_connection_age_grace_seconds` to finish (event consumers then resume from their
    /// cursor).
    pub max_connection_age_seconds: u64,
    pub max_connection_age_grace_seconds: u64,
}

#[derive(Debug, Clone, Deserialize)]
pub struct TelemetrySettings {
    /// `tracing` filter directives, e.g. `info,baton=debug`.
    pub log_filter: String,
    /// One JSON object per log line (for Kubernetes log collectors) instead of human-readable text.
    pub json_logs: bool,
    /// OTLP/gRPC collector endpoint, e.g. `http://otel-collector:4317`; empty = no export.
    /// Traces and metrics both go there.
    pub otlp_endpoint: String,
    /// Where `GET /metrics` (Prometheus text) is served, e.g. `0.0.0.0:9464`; empty = nowhere.
    pub metrics_listen: String,
    /// How often the gauges read from a database (SLA timers, scheduler backlog, outbox depth)
    /// are sampled, in milliseconds.
    pub sample_interval_ms: u64,
    /// How often a service checks that its database answers (readiness), in milliseconds.
    pub readiness_interval_ms: u64,
}

#[derive(Debug, Clone, Deserialize)]
pub struct TenancySettings {
    /// The tenant of the admin token the embedded mode prints (calls take theirs from the token).
    pub default_tenant: String,
}

/// Who may call: token validation, the role policy, and the identity services present to peers.
#[derive(Debug, Clone, Deserialize)]
pub struct AuthSettings {
    /// Off only in a rig that tests something else; every call is then refused except health.
    pub enabled: bool,
    pub issuer: String,
    pub audience: String,
    /// Clock skew allowed on `exp` and `nbf`, in seconds.
    pub leeway_seconds: u64,
    pub jwks_file: String,
    pub public_key_files: Vec<String>,
    /// HS256 shared secret (development only).
    pub hs256_secret_file: String,
    pub reload_interval_seconds: u64,
    pub open_health: bool,
    pub open_reflection: bool,
    pub max_token_bytes: usize,
    pub service_token_file: String,
    pub signing_key_file: String,
    pub signing_key_id: String,
    pub policy_file: String,
}

#[derive(Debug, Clone, Deserialize)]
pub struct RateLimitSettings {
    /// Calls per second per tenant and service replica; 0 = unlimited.
    pub per_tenant_per_second: u32,
    pub burst: u32,
}

/// Transport security of every gRPC server and client.
#[derive(Debug, Clone, Deserialize)]
pub struct TlsSettings {
    pub cert_file: String,
    pub key_file: String,
    pub client_ca_file: String,
    pub ca_file: String,
    pub client_cert_file: String,
    pub client_key_file: String,
    pub server_name: String,
    pub plaintext: Plaintext,
}

/// Where a server may listen without TLS.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum Plaintext {
    Loopback,
    Always,
    Never,
}

#[derive(Debug, Clone, Deserialize)]
pub struct EventSettings {
    /// How often a subscription re-reads the log when no commit notification arrived (other replicas).
    pub poll_interval_ms: u64,
    /// Events read from the database per round trip.
    pub batch_size: u32,
    /// Consumer reconnect backoff: first delay and cap, in milliseconds.
    pub reconnect_min_ms: u64,
    pub reconnect_max_ms: u64,
    /// Whether a consumer's transaction (an applied event, its effects and the moved cursor) waits
    /// for its WAL flush on PostgreSQL. Off by default: a crash can then lose only the last few
    /// applied events together with their cursor, so they are applied again from the producer's
    /// log; what they emitted is never published before it is durable, because the relay's own
    /// (synchronous) commit flushes the WAL before it. Requests answered to callers always commit
    /// synchronously.
    pub consumer_synchronous_commit: bool,
    /// How many times a consumer applies an event that fails with a non-transient error (a
    /// constraint, a value the schema refuses, a handler's bug) before it dead-letters the event,
    /// with its payload and the error, and goes on. Transient errors (the database down or busy)
    /// are retried without limit.
    pub dead_letter_after_attempts: u32,
    /// Most `Subscribe` streams a service serves at once (each holds a task that reads the log);
    /// one more is refused with RESOURCE_EXHAUSTED.
    pub max_streams: u32,
    /// Most `Subscribe` streams on one client connection.
    pub max_streams_per_connection: u32,
}

/// qualification's background scoring work (recompute after activation, decay and inactivity).
#[derive(Debug, Clone, Deserialize)]
pub struct ScoringSettings {
    /// How often an idle worker looks for work, in milliseconds.
    pub worker_interval_ms: u64,
    /// Leads rescored per transaction.
    pub batch_size: u64,
    /// How long a replica holds a recompute job without progress before another may take it.
    pub lease_seconds: u64,
    /// How long one SimulateModel may run; past it the call is DEADLINE_EXCEEDED.
    pub simulation_deadline_seconds: u64,
}

/// distribution's SLA timers.
#[derive(Debug, Clone, Deserialize)]
pub struct SlaSettings {
    /// How often a replica looks for due timers, in milliseconds.
    pub interval_ms: u64,
    /// Timers fired per transaction.
    pub batch_size: u64,
}

/// distribution's performance-weighted routing.
#[derive(Debug, Clone, Deserialize)]
pub struct RoutingSettings {
    /// How often a replica recomputes the performance weights of every team that opted in, in
    /// seconds.
    pub performance_weights_interval_seconds: u64,
}

/// reporting's contract attainment.
#[derive(Debug, Clone, Deserialize)]
pub struct ContractSettings {
    /// How often WatchAttainment looks for changed numbers, in milliseconds.
    pub attainment_watch_interval_ms: u64,
    /// Longest a WatchAttainment stream stays open, in seconds.
    pub attainment_watch_max_seconds: u64,
    /// Hours after a period's end before its scorecard may be closed.
    pub scorecard_grace_hours: u64,
}

/// How nurture delivers mail, and how its scheduler runs.
#[derive(Debug, Clone, Deserialize)]
pub struct DeliverySettings {
    /// "file": every mail becomes an .eml file under `outbox_dir` (the embedded default);
    /// "smtp": sent to `smtp_host`.
    pub transport: MailTransport,
    pub outbox_dir: String,
    pub smtp_host: String,
    pub smtp_port: u16,
    /// "none" (plain, e.g. a local relay), "starttls", or "tls" (implicit TLS, port 465).
    pub smtp_security: SmtpSecurity,
    /// With a username, the password is read from `smtp_password_file` (a mounted Secret).
    pub smtp_username: String,
    pub smtp_password_file: String,
    pub smtp_timeout_seconds: u64,
    /// Connections kept open to the SMTP server.
    pub smtp_pool_size: u32,
    /// The domain of the Message-IDs nurture makes.
    pub message_id_domain: String,
    /// How often the scheduler looks for due steps when it found none, in milliseconds.
    pub scheduler_interval_ms: u64,
    /// Enrolments claimed at once, how long a claim holds, and sends in flight at once.
    pub batch_size: u64,
    pub lease_seconds: u64,
    pub concurrency: usize,
    /// How often the relay records nurture's activities in capture when it found none, in ms.
    pub relay_interval_ms: u64,
    pub relay_batch_size: u64,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum MailTransport {
    File,
    Smtp,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum SmtpSecurity {
    None,
    Starttls,
    Tls,
}

/// nurture's tracking endpoint (open pixel, click redirect, one-click unsubscribe).
#[derive(Debug, Clone, Deserialize)]
pub struct TrackingSettings {
    /// Where it listens (HTTP), and the public URL mails point at (e.g. behind an ingress).
    pub listen: String,
    pub base_url: String,
    /// The HMAC key of tracking tokens (created on first start if missing).
    pub key_file: String,
    /// Hits are recorded in batches: at most this many per transaction, waiting at most
    /// flush_interval_ms for a batch to fill.
    pub batch_max: usize,
    pub flush_interval_ms: u64,
}

#[derive(Debug, Clone, Deserialize)]
pub struct DatabaseSettings {
    /// Pool size for PostgreSQL.
    pub max_connections: u32,
    /// Pool size for SQLite. 1 serialises access, which is what SQLite's single writer does anyway,
    /// and avoids SQLITE_BUSY on lock upgrades.
    pub sqlite_max_connections: u32,
    /// How long a caller waits for a pooled connection, in milliseconds.
    pub acquire_timeout_ms: u64,
    /// Apply pending migrations when a service starts. Off where a migration Job runs them
    /// (`baton migrate`, deploy/k8s): a service then refuses to start while any is pending.
    pub migrate_on_start: bool,
}

impl ServerSettings {
    pub fn request_timeout(&self) -> Duration {
        Duration::from_millis(self.request_timeout_ms)
    }
    pub fn shutdown_grace(&self) -> Duration {
        Duration::from_secs(self.shutdown_grace_seconds)
    }
}

impl Settings {
    /// Loads settings: defaults, then `./baton.toml` if present, then `config_file` (must exist),
    /// then environment variables `BATON__SECTION__KEY` (e.g. `BATON__CAPTURE__LISTEN`).
    pub fn load(config_file: Option<&Path>) -> Result<Self, BootError> {
        Self::load_from(Path::new("."), config_file, None)
    }

    /// [`Settings::load`] with `baton.toml` looked up in `dir`, and, for tests, the environment
    /// given as a map instead of read from the process.
    pub fn load_from(
        dir: &Path,
        config_file: Option<&Path>,
        environment: Option<HashMap<String, String>>,
    ) -> Result<Self, BootError> {
        let mut builder = Config::builder()
            .add_source(File::from_str(DEFAULTS_TOML, FileFormat::Toml))
            .add_source(
                File::from(dir.join("baton.toml"))
                    .format(FileFormat::Toml)
                    .required(false),
            );
        if let Some(path) = config_file {
            builder = builder.add_source(File::from(path).format(FileFormat::Toml).required(true));
        }
        builder = builder.add_source(
            Environment::with_prefix("BATON")
                .prefix_separator("__")
                .separator("__")
                .try_parsing(true)
                .source(environment),
        );
        Self::from_config(builder.build())
    }

    /// The built-in defaults only (tests start from these and override what they need).
    pub fn defaults() -> Result<Self, BootError> {
        Self::from_config(
            Config::builder()
                .add_source(File::from_str(DEFAULTS_TOML, FileFormat::Toml))
                .build(),
        )
    }

    fn from_config(config: Result<Config, config::ConfigError>) -> Result<Self, BootError> {
        config
            .and_then(|c| c.try_deserialize::<Settings>())
            .map_err(|e| BootError::Settings(e.to_string()))
    }

    pub fn service(&self, name: ServiceName) -> &ServiceSettings {
        match name {
            ServiceName::Capture => &self.capture,
            ServiceName::Nurture => &self.nurture,
            ServiceName::Qualification => &self.qualification,
            ServiceName::Distribution => &self.distribution,
            ServiceName::Reporting => &self.reporting,
        }
    }

    pub fn service_mut(&mut self, name: ServiceName) -> &mut ServiceSettings {
        match name {
            ServiceName::Capture => &mut self.capture,
            ServiceName::Nurture => &mut self.nurture,
            ServiceName::Qualification => &mut self.qualification,
            ServiceName::Distribution => &mut self.distribution,
            ServiceName::Reporting => &mut self.reporting,
        }
    }
}

/// The five services.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum ServiceName {
    Capture,
    Nurture,
    Qualification,
    Distribution,
    Reporting,
}

impl ServiceName {
    pub const ALL: [ServiceName; 5] = [
        ServiceName::Capture,
        ServiceName::Nurture,
        ServiceName::Qualification,
        ServiceName::Distribution,
        ServiceName::Reporting,
    ];

    pub fn as_str(self) -> &'static str {
        match self {
            ServiceName::Capture => "capture",
            ServiceName::Nurture => "nurture",
            ServiceName::Qualification => "qualification",
            ServiceName::Distribution => "distribution",
            ServiceName::Reporting => "reporting",
        }
    }
}

impl fmt::Display for ServiceName {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.as_str())
    }
}

impl FromStr for ServiceName {
    type Err = String;
    fn from_str(s: &str) -> Result<Self, Self::Err> {
        Self::ALL
            .into_iter()
            .find(|n| n.as_str() == s)
            .ok_or_else(|| format!("unknown service {s:?}; expected one of capture, nurture, qualification, distribution, reporting"))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn defaults_parse_and_name_the_documented_ports() {
        let s = Settings::defaults().unwrap();
        assert_eq!(s.capture.listen, "127.0.0.1:50051");
        assert_eq!(s.nurture.listen, "127.0.0.1:50052");
        assert_eq!(s.qualification.listen, "127.0.0.1:50053");
        assert_eq!(s.distribution.listen, "127.0.0.1:50054");
        assert_eq!(s.reporting.listen, "127.0.0.1:50055");
        assert!(
            s.capture
                .database_url
                .starts_with("sqlite://data/capture.db")
        );
    }

    #[test]
    fn later_sources_win_defaults_then_baton_toml_then_config_file_then_environment() {
        let dir = tempfile::tempdir().unwrap();
        std::fs::write(
            dir.path().join("baton.toml"),
            "[capture]\nlisten = \"0.0.0.0:1\"\n[nurture]\nlisten = \"0.0.0.0:2\"\n[qualification]\nlisten = \"0.0.0.0:3\"\n",
        )
        .unwrap();
        let file = dir.path().join("override.toml");
        std::fs::write(
            &file,
            "[nurture]\nlisten = \"0.0.0.0:20\"\n[qualification]\nlisten = \"0.0.0.0:30\"\n",
        )
        .unwrap();
        let env = HashMap::from([
            (
                "BATON__QUALIFICATION__LISTEN".to_owned(),
                "0.0.0.0:300".to_owned(),
            ),
            (
                "BATON__SERVER__CONCURRENCY_LIMIT".to_owned(),
                "7".to_owned(),
            ),
        ]);
        let s = Settings::load_from(dir.path(), Some(&file), Some(env)).unwrap();
        assert_eq!(s.capture.listen, "0.0.0.0:1", "baton.toml over defaults");
        assert_eq!(s.nurture.listen, "0.0.0.0:20", "--config over baton.toml");
        assert_eq!(
            s.qualification.listen, "0.0.0.0:300",
            "environment over everything"
        );
        assert_eq!(
            s.server.concurrency_limit, 7,
            "numbers parse from the environment"
        );
        assert_eq!(
            s.distribution.listen, "127.0.0.1:50054",
            "defaults where nothing overrides"
        );
    }

    #[test]
    fn a_missing_config_file_is_an_error_and_bad_values_are_reported() {
        let dir = tempfile::tempdir().unwrap();
        assert!(
            Settings::load_from(
                dir.path(),
                Some(&dir.path().join("nope.toml")),
                Some(HashMap::new())
            )
            .is_err()
        );
        let env = HashMap::from([(
            "BATON__SERVER__CONCURRENCY_LIMIT".to_owned(),
            "many".to_owned(),
        )]);
        let err = Settings::load_from(dir.path(), None, Some(env)).unwrap_err();
        assert!(err.to_string().contains("concurrency_limit"), "{err}");
    }

    #[test]
    fn service_names_round_trip() {
        for n in ServiceName::ALL {
            assert_eq!(n.as_str().parse::<ServiceName>().unwrap(), n);
        }
        assert!("billing".parse::<ServiceName>().is_err());
    }
}
