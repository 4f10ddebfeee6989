//! Test helpers (feature `testing`): a fresh database per test — a temporary SQLite file, or, when
//! `BATON_TEST_DATABASE_URL` points at a PostgreSQL server, a new database there, dropped afterwards.

use std::{future::Future, path::PathBuf, sync::Arc, time::Duration};

use rand::Rng;
use sea_orm::{ConnectionTrait, Database};
use tokio::net::TcpListener;
use tokio_util::sync::CancellationToken;

use crate::settings::{ServiceName, Settings};

/// The environment variable naming the PostgreSQL server tests use instead of SQLite.
pub const TEST_DATABASE_URL_ENV: &str = "BATON_TEST_DATABASE_URL";

/// A database that exists for one test.
pub struct TestDatabase {
    pub url: String,
    _dir: Option<tempfile::TempDir>,
    postgres: Option<(String, String)>,
}

impl TestDatabase {
    /// Creates a fresh database labelled `label` (letters, digits, underscores).
    pub async fn new(label: &str) -> TestDatabase {
        match std::env::var(TEST_DATABASE_URL_ENV)
            .ok()
            .filter(|u| !u.is_empty())
        {
            Some(admin_url) => {
                let suffix: u64 = rand::rng().random();
                let name = format!("baton_t_{label}_{suffix:x}");
                let admin = Database::connect(admin_url.as_str())
                    .await
                    .unwrap_or_else(|e| panic!("{TEST_DATABASE_URL_ENV} unreachable: {e}"));
                admin
                    .execute_unprepared(&format!("CREATE DATABASE {name}"))
                    .await
                    .expect("create test database");
                admin.close().await.ok();
                TestDatabase {
                    url: replace_database(&admin_url, &name),
                    _dir: None,
                    postgres: Some((admin_url, name)),
                }
            }
            None => {
                let dir = tempfile::tempdir().expect("temp dir");
                let path: PathBuf = dir.path().join(format!("{label}.db"));
                TestDatabase {
                    url: format!("sqlite://{}?mode=rwc", path.display()),
                    _dir: Some(dir),
                    postgres: None,
                }
            }
        }
    }

    pub fn is_postgres(&self) -> bool {
        self.postgres.is_some()
    }
}

impl Drop for TestDatabase {
    fn drop(&mut self) {
        if let Some((admin_url, name)) = self.postgres.take() {
            // Drop runs outside any runtime guarantee: use a private one on a plain thread.
            let _ = std::thread::spawn(move || {
                let rt = tokio::runtime::Builder::new_current_thread()
                    .enable_all()
                    .build()
                    .ok()?;
                rt.block_on(async {
                    let admin = Database::connect(admin_url.as_str()).await.ok()?;
                    admin
                        .execute_unprepared(&format!("DROP DATABASE IF EXISTS {name} WITH (FORCE)"))
                        .await
                        .ok()?;
                    admin.close().await.ok()
                })
            })
            .join();
        }
    }
}

fn replace_database(url: &str, name: &str) -> String {
    let (base, query) = match url.split_once('?') {
        Some((b, q)) => (b, Some(q)),
        None => (url, None),
    };
    let scheme_end = base.find("://").map_or(0, |i| i + 3);
    let base = match base[scheme_end..].find('/') {
        Some(i) => &base[..scheme_end + i],
        None => base,
    };
    match query {
        Some(q) => format!("{base}/{name}?{q}"),
        None => format!("{base}/{name}"),
    }
}

/// The HS256 secret every test signs its tokens with (tests run on loopback, where the
/// development key is accepted).
pub const TEST_SECRET: &str = "baton-test-secret-0123456789abcdef0123456789";

/// The tenant of [`channel`]'s token.
pub const TEST_TENANT: &str = "default";

/// A file holding [`TEST_SECRET`] (written once per machine, atomically).
pub fn test_secret_file() -> PathBuf {
    let path = std::env::temp_dir().join("baton-test-hs256.key");
    if std::fs::read(&path).ok().as_deref() != Some(TEST_SECRET.as_bytes()) {
        let tmp = path.with_extension(format!("{}.tmp", std::process::id()));
        std::fs::write(&tmp, TEST_SECRET).expect("write the test secret");
        std::fs::rename(&tmp, &path).expect("install the test secret");
    }
    path
}

/// A signer of test tokens that the servers of [`settings_with`] accept.
pub fn test_signer() -> crate::auth::token::Signer {
    crate::auth::token::Signer::hs256(TEST_SECRET.as_bytes(), "baton", "baton")
}

/// A token for `sub` in `tenant` with `roles`, valid for an hour.
pub fn token(sub: &str, tenant: &str, roles: &[crate::auth::Role]) -> String {
    test_signer()
        .mint(&crate::auth::token::TokenSpec {
            sub: sub.into(),
            tenant: tenant.into(),
            roles: roles.to_vec(),
            ttl: Duration::from_secs(3600),
        })
        .expect("mint a test token")
}

/// `message` as a request made by `sub` (every role, [`TEST_TENANT`]): the actor of a decision is
/// whoever the token names.
pub fn as_user<T>(sub: impl AsRef<str>, message: T) -> tonic::Request<T> {
    let mut request = tonic::Request::new(message);
    let value = format!(
        "Bearer {}",
        token(sub.as_ref(), TEST_TENANT, &crate::auth::Role::ALL)
    );
    if let Ok(v) = value.parse() {
        request.metadata_mut().insert("authorization", v);
    }
    request
}

/// Default settings with every service on 127.0.0.1:0, fast reconnects, the test signing key,
/// and the given databases.
pub fn settings_with(databases: &[(ServiceName, &TestDatabase)]) -> Settings {
    let mut s = Settings::defaults().expect("defaults parse");
    s.auth.hs256_secret_file = test_secret_file().display().to_string();
    s.events.poll_interval_ms = 200;
    s.events.reconnect_min_ms = 20;
    s.events.reconnect_max_ms = 500;
    s.server.shutdown_grace_seconds = 5;
    // One process holds many suites: no metrics endpoint unless a test asks for one.
    s.telemetry.metrics_listen = String::new();
    s.telemetry.sample_interval_ms = 1000;
    s.telemetry.readiness_interval_ms = 1000;
    // Two suites run at once (one per core), each with five pools, and some tests start a sixth
    // service database: 8 connections a pool keeps them under PostgreSQL's default 100.
    s.database.max_connections = 8;
    for name in ServiceName::ALL {
        s.service_mut(name).listen = "127.0.0.1:0".into();
    }
    // nurture's tracking endpoint on a free port, its key and its file sink in a fresh place.
    s.tracking.listen = "127.0.0.1:0".into();
    s.tracking.key_file = test_secret_file().display().to_string();
    let outbox = std::env::temp_dir().join(format!(
        "baton-test-outbox-{}-{}",
        std::process::id(),
        uuid::Uuid::new_v4()
    ));
    s.delivery.outbox_dir = outbox.display().to_string();
    s.delivery.scheduler_interval_ms = 50;
    s.delivery.relay_interval_ms = 50;
    for (name, db) in databases {
        s.service_mut(*name).database_url = db.url.clone();
    }
    s
}

/// Binds an ephemeral port and records its address as the service's endpoint in `settings`.
pub async fn bind_ephemeral(settings: &mut Settings, name: ServiceName) -> TcpListener {
    let listener = TcpListener::bind("127.0.0.1:0").await.expect("bind");
    settings.service_mut(name).endpoint =
        format!("http://{}", listener.local_addr().expect("addr"));
    listener
}

/// A service running in the test's runtime.
pub struct RunningService {
    pub endpoint: String,
    pub shutdown: CancellationToken,
    pub handle: tokio::task::JoinHandle<Result<(), crate::BootError>>,
}

impl RunningService {
    /// Stops the service and waits for it to finish.
    pub async fn stop(self) {
        self.shutdown.cancel();
        self.handle
            .await
            .expect("service task")
            .expect("service stopped cleanly");
    }
}

/// Spawns `run(settings, listener, shutdown)` for `name`, on the listener already bound for it.
pub fn spawn<F, Fut>(
    name: ServiceName,
    settings: &Arc<Settings>,
    listener: TcpListener,
    run: F,
) -> RunningService
where
    F: FnOnce(Arc<Settings>, TcpListener, CancellationToken) -> Fut,
    Fut: Future<Output = Result<(), crate::BootError>> + Send + 'static,
{
    let shutdown = CancellationToken::new();
    let handle = tokio::spawn(run(settings.clone(), listener, shutdown.clone()));
    RunningService {
        endpoint: settings.service(name).endpoint.clone(),
        shutdown,
        handle,
    }
}

/// A channel to `endpoint` carrying a token of `tester` in [`TEST_TENANT`] with every role, so
/// that a test of behaviour is not also a test of the policy.
pub async fn channel(endpoint: &str) -> crate::peer::AuthChannel {
    channel_with(
        endpoint,
        &token("tester", TEST_TENANT, &crate::auth::Role::ALL),
    )
    .await
}

/// A channel to `endpoint` carrying `token`.
pub async fn channel_with(endpoint: &str, token: &str) -> crate::peer::AuthChannel {
    tonic::service::interceptor::InterceptedService::new(
        plain_channel(endpoint).await,
        crate::auth::token::BearerInterceptor::token(token),
    )
}

/// A channel to `endpoint` without a token, retrying while the server is still starting.
pub async fn plain_channel(endpoint: &str) -> tonic::transport::Channel {
    let ep = tonic::transport::Channel::from_shared(endpoint.to_owned()).expect("valid endpoint");
    for _ in 0..200 {
        if let Ok(ch) = ep.connect().await {
            return ch;
        }
        tokio::time::sleep(Duration::from_millis(25)).await;
    }
    panic!("nothing answers at {endpoint}");
}

/// Polls `check` until it returns `Some`, or panics naming `what` after `timeout`.
pub async fn eventually<T, F, Fut>(what: &str, timeout: Duration, mut check: F) -> T
where
    F: FnMut() -> Fut,
    Fut: Future<Output = Option<T>>,
{
    let deadline = tokio::time::Instant::now() + timeout;
    loop {
        if let Some(v) = check().await {
            return v;
        }
        assert!(
            tokio::time::Instant::now() < deadline,
            "timed out waiting for {what}"
        );
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
}

/// The number a query returns in a column named `n` (`SELECT COUNT(*) AS n …`), on the database
/// at `url`; 0 when it returns no row.
pub async fn count(url: &str, sql: &str) -> i64 {
    let settings = Settings::defaults().expect("built-in settings");
    let db = crate::db::connect(url, &settings.database)
        .await
        .expect("test database reachable");
    let row = db
        .query_one_raw(sea_orm::Statement::from_string(
            db.get_database_backend(),
            sql,
        ))
        .await
        .expect("count query runs");
    row.map_or(0, |r| r.try_get::<i64>("", "n").expect("a column n"))
}

/// Runs statements (DDL, a fault a test sets up) on the database at `url`.
pub async fn execute(url: &str, sql: &str) {
    let settings = Settings::defaults().expect("built-in settings");
    let db = crate::db::connect(url, &settings.database)
        .await
        .expect("test database reachable");
    db.execute_unprepared(sql)
        .await
        .unwrap_or_else(|e| panic!("{sql}: {e}"));
    db.close().await.ok();
}

/// Baton's own EventLog service on its own database, serving where a producer service would
/// (e.g. qualification), so a consumer can be fed events a test or bench appends directly.
pub struct EventLogStandIn {
    pub db: sea_orm::DatabaseConnection,
    pub log: crate::events::EventLog,
    shutdown: CancellationToken,
    server: tokio::task::JoinHandle<Result<(), crate::BootError>>,
}

struct EventLogOnly;

impl sea_orm_migration::MigratorTrait for EventLogOnly {
    fn migrations() -> Vec<Box<dyn sea_orm_migration::MigrationTrait>> {
        vec![
            Box::new(crate::events::migration::CreateEventLog),
            Box::new(crate::events::migration::CreateEventLogIdentity),
        ]
    }
}

impl EventLogStandIn {
    /// Serves the log of `database_url` on `listener` as service `name`.
    pub async fn start(
        name: ServiceName,
        database_url: &str,
        settings: &Settings,
        listener: TcpListener,
    ) -> Result<Self, crate::BootError> {
        let db = crate::db::connect_and_migrate::<EventLogOnly>(database_url, &settings.database)
            .await?;
        let shutdown = CancellationToken::new();
        let log =
            crate::events::EventLog::start(db.clone(), settings.events.clone(), shutdown.clone());
        let routes = tonic::service::Routes::new(log.grpc_service(shutdown.clone()));
        let settings = settings.clone();
        let stop = shutdown.clone();
        let server = tokio::spawn(async move {
            let options = crate::server::ServeOptions::new(
                name.as_str(),
                vec![crate::events::EVENT_LOG_SERVICE_NAME],
                &settings,
            );
            crate::server::serve(listener, routes, options, stop).await
        });
        Ok(EventLogStandIn {
            db,
            log,
            shutdown,
            server,
        })
    }

    pub async fn stop(self) {
        self.shutdown.cancel();
        let _ = self.server.await;
    }
}

#[cfg(test)]
mod tests {
    #[test]
    fn database_name_is_replaced() {
        assert_eq!(
            super::replace_database(
                "postgres://postgres@127.0.0.1:5432/postgres?sslmode=disable",
                "x"
            ),
            "postgres://postgres@127.0.0.1:5432/x?sslmode=disable"
        );
        assert_eq!(
            super::replace_database("postgres://127.0.0.1", "x"),
            "postgres://127.0.0.1/x"
        );
    }
}
