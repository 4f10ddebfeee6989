//! Connecting to a service's own database (SQLite by default, PostgreSQL in production) and running
//! its migrations.

use std::{path::Path, time::Duration};

use sea_orm::{
    AccessMode, ConnectOptions, ConnectionTrait, Database, DatabaseConnection, DatabaseTransaction,
    DbBackend, DbErr, IsolationLevel, TransactionTrait,
};
use sea_orm_migration::MigratorTrait;

use crate::{error::BootError, settings::DatabaseSettings};

/// Connects to `url`. For SQLite files, creates the parent directory, and turns on WAL and foreign
/// keys. A PostgreSQL URL on a loopback host that names no `sslmode` connects without TLS (see
/// [`plain_on_loopback`]).
pub async fn connect(
    url: &str,
    settings: &DatabaseSettings,
) -> Result<DatabaseConnection, BootError> {
    let is_sqlite = url.starts_with("sqlite:");
    if is_sqlite {
        create_sqlite_parent_dir(url)?;
    }
    let url = &plain_on_loopback(url);
    let mut options = ConnectOptions::new(url.to_owned());
    options
        .max_connections(if is_sqlite {
            settings.sqlite_max_connections
        } else {
            settings.max_connections
        })
        .min_connections(if is_sqlite {
            settings.sqlite_max_connections
        } else {
            1
        })
        .acquire_timeout(Duration::from_millis(settings.acquire_timeout_ms))
        .sqlx_logging(false);
    if is_sqlite {
        // A pooled in-memory database must never be dropped while the pool is idle.
        options
            .idle_timeout(None::<Duration>)
            .max_lifetime(None::<Duration>);
    }
    let db = Database::connect(options)
        .await
        .map_err(|source| BootError::Database {
            url: redact(url),
            source,
        })?;
    if db.get_database_backend() == DbBackend::Sqlite {
        for pragma in [
            "PRAGMA journal_mode = WAL",
            "PRAGMA foreign_keys = ON",
            "PRAGMA busy_timeout = 10000",
        ] {
            db.execute_unprepared(pragma)
                .await
                .map_err(|source| BootError::Database {
                    url: redact(url),
                    source,
                })?;
        }
    }
    Ok(db)
}

/// Connects and applies every pending migration of `M`.
pub async fn connect_and_migrate<M: MigratorTrait>(
    url: &str,
    settings: &DatabaseSettings,
) -> Result<DatabaseConnection, BootError> {
    let db = connect(url, settings).await?;
    if db.get_database_backend() == DbBackend::Postgres {
        // Replicas starting together would race to create the same tables: the first one to take
        // the lock migrates, the others wait and then find nothing left to do. The lock is held
        // by the migration's transaction and released with it.
        let txn = db.begin().await.map_err(BootError::Migration)?;
        txn.execute_unprepared(&format!("SELECT pg_advisory_xact_lock({MIGRATION_LOCK})"))
            .await
            .map_err(BootError::Migration)?;
        M::up(&txn, None).await.map_err(BootError::Migration)?;
        txn.commit().await.map_err(BootError::Migration)?;
    } else {
        M::up(&db, None).await.map_err(BootError::Migration)?;
    }
    Ok(db)
}

/// The database of a starting service: migrated first when `database.migrate_on_start` is on;
/// otherwise checked, and refused while a migration is pending (the migration Job has not run).
pub async fn connect_for_service<M: MigratorTrait>(
    url: &str,
    settings: &DatabaseSettings,
) -> Result<DatabaseConnection, BootError> {
    if settings.migrate_on_start {
        return connect_and_migrate::<M>(url, settings).await;
    }
    let db = connect(url, settings).await?;
    let pending = M::get_pending_migrations(&db)
        .await
        .map_err(BootError::Migration)?;
    if let Some(first) = pending.first() {
        return Err(BootError::Settings(format!(
            "{} migration(s) of {} are pending, from {}: run `baton migrate` (the migration Job) \
             first, or set database.migrate_on_start = true",
            pending.len(),
            redact(url),
            first.name()
        )));
    }
    Ok(db)
}

/// Advisory lock key serialising migrations on one PostgreSQL server ("baton" in ASCII).
const MIGRATION_LOCK: i64 = 0x0062_6174_6f6e;

/// A read-only transaction that sees one consistent snapshot, for reads that span several queries
/// (on PostgreSQL, READ COMMITTED would let each query see a different state; SQLite's single
/// connection is consistent already).
pub async fn begin_snapshot(db: &DatabaseConnection) -> Result<DatabaseTransaction, DbErr> {
    match db.get_database_backend() {
        DbBackend::Postgres => {
            db.begin_with_config(
                Some(IsolationLevel::RepeatableRead),
                Some(AccessMode::ReadOnly),
            )
            .await
        }
        _ => db.begin().await,
    }
}

fn create_sqlite_parent_dir(url: &str) -> Result<(), BootError> {
    let path = url.trim_start_matches("sqlite:").trim_start_matches("//");
    let path = path.split('?').next().unwrap_or_default();
    if path.is_empty() || path.starts_with(":memory:") {
        return Ok(());
    }
    if let Some(parent) = Path::new(path)
        .parent()
        .filter(|p| !p.as_os_str().is_empty())
    {
        std::fs::create_dir_all(parent)?;
    }
    Ok(())
}

/// `url` with `sslmode=disable` added when it is a PostgreSQL URL on a loopback host (127.0.0.1,
/// ::1, localhost) that names no `sslmode`: traffic that never leaves the host gains nothing from
/// TLS, and sqlx 0.9 does not set TCP_NODELAY on TLS connections (sqlx#4335), so every query there
/// may stall on delayed ACKs (docs/performance.md has the measurement). Any
/// other URL, or one that says `sslmode`, is returned unchanged.
pub fn plain_on_loopback(url: &str) -> String {
    let Some(rest) = url
        .strip_prefix("postgres://")
        .or_else(|| url.strip_prefix("postgresql://"))
    else {
        return url.to_owned();
    };
    let authority = rest.split(['/', '?']).next().unwrap_or_default();
    let host_port = authority.rsplit_once('@').map_or(authority, |(_, h)| h);
    let host = match host_port.strip_prefix('[') {
        Some(v6) => v6.split(']').next().unwrap_or_default(),
        None => host_port.split(':').next().unwrap_or_default(),
    };
    let loopback = matches!(host, "127.0.0.1" | "::1" | "localhost");
    let query = url.split_once('?').map(|(_, q)| q).unwrap_or_default();
    if !loopback || query.split('&').any(|kv| kv.starts_with("sslmode=")) {
        return url.to_owned();
    }
    let separator = if url.contains('?') { '&' } else { '?' };
    format!("{url}{separator}sslmode=disable")
}

/// Keys per `IN (…)` list of [`find_in`], and rows per multi-row INSERT of [`insert_chunked`]:
/// a row of up to ~60 columns times this stays under SQLite's bound on a statement's parameters
/// (32,766).
pub const IN_CHUNK: usize = 500;

/// Inserts `rows` with one multi-row INSERT per [`IN_CHUNK`] rows, without reading them back.
pub async fn insert_chunked<A, C>(db: &C, rows: &[A]) -> Result<(), DbErr>
where
    A: sea_orm::ActiveModelTrait + Clone + Send,
    C: ConnectionTrait,
{
    for chunk in rows.chunks(IN_CHUNK) {
        <A::Entity as sea_orm::EntityTrait>::insert_many(chunk.iter().cloned())
            .exec_without_returning(db)
            .await?;
    }
    Ok(())
}

/// The rows of `query` whose `column` is one of `keys`, read with one statement per
/// [`IN_CHUNK`] keys (SQLite bounds the parameters of a statement).
pub async fn find_in<E, C>(
    db: &C,
    query: sea_orm::Select<E>,
    column: E::Column,
    keys: &[&str],
) -> Result<Vec<E::Model>, DbErr>
where
    E: sea_orm::EntityTrait,
    C: ConnectionTrait,
{
    use sea_orm::{ColumnTrait, QueryFilter};
    let mut rows = Vec::new();
    for chunk in keys.chunks(IN_CHUNK) {
        rows.extend(
            query
                .clone()
                .filter(column.is_in(chunk.iter().copied()))
                .all(db)
                .await?,
        );
    }
    Ok(rows)
}

/// The rows of `query` whose `column` is one of `keys`, where `query` pins the other columns of a
/// unique index that ends with `column` (e.g. `tenant_id = …` for a unique `(tenant_id, column)`),
/// so each key names at most one row.
///
/// On PostgreSQL this is one statement that probes that index once per key, the keys passed as one
/// JSON array (the same SQL text every call, so its prepared statement is reused). An `IN (…)`
/// list would leave the plan to the table's statistics, which lag behind a table an import is
/// filling: a tenant that looks small gets its rows scanned and compared with every key, a cost
/// that grows with the table. On SQLite, whose planner probes the unique index for an `IN` list,
/// this is [`find_in`].
pub async fn find_by_unique_key<E, C>(
    db: &C,
    query: sea_orm::Select<E>,
    column: E::Column,
    keys: &[&str],
) -> Result<Vec<E::Model>, DbErr>
where
    E: sea_orm::EntityTrait,
    C: ConnectionTrait,
{
    use sea_orm::{
        ColumnTrait, QueryFilter, QuerySelect, QueryTrait, Statement,
        sea_query::{Expr, ExprTrait},
    };
    if db.get_database_backend() != DbBackend::Postgres {
        return find_in(db, query, column, keys).await;
    }
    if keys.is_empty() {
        return Ok(Vec::new());
    }
    // Per key: the query's own statement with `column = key`, kept a subquery (LIMIT) so the
    // planner runs it as an index probe per key rather than joining the tables wholesale.
    let probe = query
        .filter(Expr::col(column.as_column_ref()).eq(Expr::cust("k.key")))
        .limit(1)
        .build(DbBackend::Postgres);
    let mut values = probe.values.map(|v| v.0).unwrap_or_default();
    let keys_json =
        serde_json::to_string(keys).map_err(|e| DbErr::Custom(format!("keys as JSON: {e}")))?;
    values.push(keys_json.into());
    let sql = format!(
        "SELECT c.* FROM jsonb_array_elements_text(${}::jsonb) AS k(key) CROSS JOIN LATERAL ({}) AS c",
        values.len(),
        probe.sql
    );
    E::find()
        .from_raw_sql(Statement::from_sql_and_values(
            DbBackend::Postgres,
            sql,
            values,
        ))
        .all(db)
        .await
}

/// The URL without its password, for logs and errors.
pub fn redact(url: &str) -> String {
    match (url.find("://"), url.rfind('@')) {
        (Some(scheme_end), Some(at)) if at > scheme_end => {
            let userinfo = &url[scheme_end + 3..at];
            match userinfo.split_once(':') {
                Some((user, _)) => format!("{}{user}:***{}", &url[..scheme_end + 3], &url[at..]),
                None => url.to_owned(),
            }
        }
        _ => url.to_owned(),
    }
}

/// Whether a database error is the database's or the connection's state rather than the
/// statement's: the connection failed or the pool ran dry, the server is shutting down or out of
/// resources, a serialization failure or deadlock, SQLite busy or locked. Retrying such an error
/// later can succeed, however often it failed; any other error (a constraint, a value, a query the
/// schema refuses) fails the same way each time.
pub fn is_transient(e: &DbErr) -> bool {
    use sea_orm::{RuntimeErr, sqlx};
    let sqlx_err = match e {
        DbErr::ConnectionAcquire(_) | DbErr::Conn(_) => return true,
        DbErr::Exec(RuntimeErr::SqlxError(e)) | DbErr::Query(RuntimeErr::SqlxError(e)) => e,
        _ => return false,
    };
    match sqlx_err.as_ref() {
        sqlx::Error::Io(_)
        | sqlx::Error::Tls(_)
        | sqlx::Error::Protocol(_)
        | sqlx::Error::PoolTimedOut
        | sqlx::Error::PoolClosed
        | sqlx::Error::WorkerCrashed => true,
        sqlx::Error::Database(db) => db.code().is_some_and(|code| transient_code(&code)),
        _ => false,
    }
}

/// PostgreSQL SQLSTATEs, always five characters (connection exceptions, serialization failure,
/// deadlock, lock not available, insufficient resources, operator intervention, system errors),
/// and SQLite's result codes, at most four digits, whose primary code is BUSY (5), LOCKED (6),
/// IOERR (10) or FULL (13).
fn transient_code(code: &str) -> bool {
    if code.len() < 5 {
        return code
            .parse::<i64>()
            .is_ok_and(|n| matches!(n & 0xff, 5 | 6 | 10 | 13));
    }
    ["08", "53", "57", "58"]
        .iter()
        .any(|class| code.starts_with(class))
        || matches!(code, "40001" | "40P01" | "55P03")
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn errors_are_told_transient_by_their_codes() {
        for (code, transient) in [
            ("08006", true),
            ("40001", true),
            ("40P01", true),
            ("53300", true),
            ("57P01", true),
            ("23505", false),
            ("23502", false),
            ("42P01", false),
            ("22003", false),
            ("5", true),
            ("517", true),
            ("6", true),
            ("19", false),
            ("2067", false),
            ("1", false),
        ] {
            assert_eq!(transient_code(code), transient, "{code}");
        }
    }

    #[test]
    fn loopback_postgres_connects_without_tls_unless_told() {
        for (given, expected) in [
            (
                "postgres://postgres@127.0.0.1:5432/postgres",
                "postgres://postgres@127.0.0.1:5432/postgres?sslmode=disable",
            ),
            (
                "postgresql://u:p@localhost/db?application_name=x",
                "postgresql://u:p@localhost/db?application_name=x&sslmode=disable",
            ),
            (
                "postgres://[::1]:5432/db",
                "postgres://[::1]:5432/db?sslmode=disable",
            ),
            (
                "postgres://postgres@127.0.0.1:5432/postgres?sslmode=require",
                "postgres://postgres@127.0.0.1:5432/postgres?sslmode=require",
            ),
            (
                "postgres://baton@db.internal:5432/capture",
                "postgres://baton@db.internal:5432/capture",
            ),
            (
                "sqlite://data/capture.db?mode=rwc",
                "sqlite://data/capture.db?mode=rwc",
            ),
        ] {
            assert_eq!(plain_on_loopback(given), expected, "{given}");
        }
    }

    #[test]
    fn passwords_are_redacted() {
        assert_eq!(
            redact("postgres://baton:s3cret@db:5432/capture"),
            "postgres://baton:***@db:5432/capture"
        );
        assert_eq!(
            redact("sqlite://data/capture.db?mode=rwc"),
            "sqlite://data/capture.db?mode=rwc"
        );
    }
}
