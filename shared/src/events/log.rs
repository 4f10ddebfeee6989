//! The producer side: appending to the outbox and serving `EventLog/Subscribe`.

use std::{collections::HashMap, pin::Pin, sync::Arc, time::Duration};

use baton_proto::events::v1::{
    Event, SubscribeRequest,
    event_log_server::{EventLog as EventLogRpc, EventLogServer},
};

use futures::Stream;
use opentelemetry::propagation::TextMapPropagator;
use opentelemetry_sdk::propagation::TraceContextPropagator;
use prost::{Message, Name};
use sea_orm::{
    ActiveValue::Set, ConnectionTrait, DatabaseConnection, DbBackend, DbErr, EntityTrait,
    QueryFilter, QueryOrder, QuerySelect, Statement, TransactionTrait, prelude::*,
    sea_query::Query,
};
use tokio::sync::{mpsc, watch};
use tokio_stream::wrappers::ReceiverStream;
use tokio_util::sync::CancellationToken;
use tonic::{Request, Response, Status};
use tracing_opentelemetry::OpenTelemetrySpanExt;

use super::store::{event_log, event_log_identity};
use crate::{
    error::{ApiError, database_status},
    settings::EventSettings,
    tenant::TenantId,
    time,
};

/// The response header of `Subscribe` that carries the log's epoch.
pub const EPOCH_HEADER: &str = "baton-log-epoch";

/// Key of the advisory lock that lets one relay at a time assign positions in a database (each
/// service has its own database, so one key per database is enough). "baton-ev" in ASCII.
const RELAY_LOCK_KEY: i64 = 0x6261_746f_6e2d_6576;

/// Columns of an appended event, in `event_outbox` and `event_log` alike.
const EVENT_COLUMNS: [&str; 8] = [
    "event_id",
    "tenant_id",
    "aggregate_id",
    "type_url",
    "payload",
    "traceparent",
    "tracestate",
    "recorded_at",
];

/// Moves the oldest outbox rows into the log in one statement; positions are drawn here, by the
/// one relay holding the lock, so they become visible strictly in order.
const RELAY_BATCH_SQL: &str = "WITH moved AS (
    DELETE FROM event_outbox
    WHERE id IN (SELECT id FROM event_outbox ORDER BY id LIMIT $1)
    RETURNING id, event_id, tenant_id, aggregate_id, type_url, payload, traceparent, tracestate, recorded_at
)
INSERT INTO event_log (event_id, tenant_id, aggregate_id, type_url, payload, traceparent, tracestate, recorded_at)
SELECT event_id, tenant_id, aggregate_id, type_url, payload, traceparent, tracestate, recorded_at
FROM moved ORDER BY id
RETURNING recorded_at";
const MAX_BATCH: u32 = 10_000;

/// Most events one INSERT of [`EventLog::append_many`] carries (8 parameters each, well under
/// SQLite's and PostgreSQL's limits on bound parameters).
pub const APPEND_CHUNK: usize = 1000;

/// A producer's event log: append inside a transaction, notify after commit, serve subscriptions.
#[derive(Clone)]
pub struct EventLog {
    inner: Arc<Inner>,
}

struct Inner {
    db: DatabaseConnection,
    settings: EventSettings,
    /// Bumped when new events are visible in `event_log`: wakes subscriptions.
    published: watch::Sender<u64>,
    /// Bumped when a transaction that appended events committed: wakes the relay (PostgreSQL).
    appended: watch::Sender<u64>,
    /// The log's identity, read (or made) on first use.
    epoch: tokio::sync::OnceCell<String>,
    /// The subscriptions being served, in all and per client connection.
    streams: StreamLimits,
    /// The producing service, as the metrics name it (set once by [`EventLog::named`]).
    service: std::sync::OnceLock<String>,
}

/// Open streams by client connection.
type StreamsByPeer = Arc<std::sync::Mutex<HashMap<std::net::SocketAddr, u32>>>;

/// Bounds on the `Subscribe` streams one log serves.
struct StreamLimits {
    all: Arc<tokio::sync::Semaphore>,
    per_connection: StreamsByPeer,
    max_per_connection: u32,
}

/// One admitted stream: its places in the limits, given back when the stream ends.
struct StreamPermit {
    _all: tokio::sync::OwnedSemaphorePermit,
    connection: Option<(StreamsByPeer, std::net::SocketAddr)>,
}

impl Drop for StreamPermit {
    fn drop(&mut self) {
        if let Some((counts, peer)) = &self.connection {
            let mut counts = counts
                .lock()
                .unwrap_or_else(std::sync::PoisonError::into_inner);
            if let Some(n) = counts.get_mut(peer) {
                *n -= 1;
                if *n == 0 {
                    counts.remove(peer);
                }
            }
        }
    }
}

impl StreamLimits {
    fn new(settings: &EventSettings) -> Self {
        StreamLimits {
            all: Arc::new(tokio::sync::Semaphore::new(settings.max_streams as usize)),
            per_connection: Arc::new(std::sync::Mutex::new(HashMap::new())),
            max_per_connection: settings.max_streams_per_connection,
        }
    }

    /// A place for one more stream from `peer`, or RESOURCE_EXHAUSTED.
    fn admit(&self, peer: Option<std::net::SocketAddr>) -> Result<StreamPermit, Status> {
        let all = self.all.clone().try_acquire_owned().map_err(|_| {
            Status::resource_exhausted(
                "this service serves as many event streams as it may (events.max_streams); retry later",
            )
        })?;
        let Some(peer) = peer else {
            return Ok(StreamPermit {
                _all: all,
                connection: None,
            });
        };
        let mut counts = self
            .per_connection
            .lock()
            .unwrap_or_else(std::sync::PoisonError::into_inner);
        let n = counts.entry(peer).or_insert(0);
        if *n >= self.max_per_connection {
            return Err(Status::resource_exhausted(format!(
                "this connection has {n} event streams open, the most one may (events.max_streams_per_connection)"
            )));
        }
        *n += 1;
        Ok(StreamPermit {
            _all: all,
            connection: Some((self.per_connection.clone(), peer)),
        })
    }
}

impl EventLog {
    /// The log of the service whose database is `db`. On PostgreSQL it also starts the relay that
    /// publishes appended events in order, until `shutdown` fires.
    pub fn start(
        db: DatabaseConnection,
        settings: EventSettings,
        shutdown: CancellationToken,
    ) -> Self {
        let streams = StreamLimits::new(&settings);
        let (published, _) = watch::channel(0);
        let (appended, _) = watch::channel(0);
        let log = EventLog {
            inner: Arc::new(Inner {
                db,
                settings,
                published,
                appended,
                epoch: tokio::sync::OnceCell::new(),
                streams,
                service: std::sync::OnceLock::new(),
            }),
        };
        if log.inner.db.get_database_backend() == DbBackend::Postgres {
            tokio::spawn(log.clone().relay(shutdown));
        }
        log
    }

    /// Names the producing service in the metrics (the first name given stays).
    pub fn named(&self, service: &str) -> &Self {
        let _ = self.inner.service.set(service.to_owned());
        self
    }

    /// Appends `payload` inside `txn`, the transaction that makes the change it describes, with the
    /// current span's W3C trace context. On SQLite it goes straight into `event_log` (SQLite's one
    /// writer draws positions in commit order); on PostgreSQL into `event_outbox`, from which the
    /// relay publishes it — concurrent writers never wait for each other here.
    pub async fn append<C, M>(
        txn: &C,
        tenant: &TenantId,
        aggregate_id: &str,
        payload: &M,
    ) -> Result<(), DbErr>
    where
        C: ConnectionTrait,
        M: Message + Name,
    {
        let current = tracing::Span::current();
        Self::append_many(txn, tenant, &[(aggregate_id, payload, &current)]).await
    }

    /// [`EventLog::append`] of several events in one statement per [`APPEND_CHUNK`] events, each
    /// with the trace context of its own span (the request it came from), in the given order.
    pub async fn append_many<C, M>(
        txn: &C,
        tenant: &TenantId,
        events: &[(&str, &M, &tracing::Span)],
    ) -> Result<(), DbErr>
    where
        C: ConnectionTrait,
        M: Message + Name,
    {
        // Same columns in both tables; only where the row goes differs (see the doc comment).
        let table = match txn.get_database_backend() {
            DbBackend::Postgres => "event_outbox",
            _ => "event_log",
        };
        let propagator = TraceContextPropagator::new();
        let now = time::now();
        for chunk in events.chunks(APPEND_CHUNK) {
            let mut insert = Query::insert();
            insert.into_table(table).columns(EVENT_COLUMNS);
            for (aggregate_id, payload, span) in chunk {
                let mut carrier = HashMap::new();
                propagator.inject_context(&span.context(), &mut carrier);
                insert
                    .values([
                        uuid::Uuid::now_v7().to_string().into(),
                        tenant.as_str().into(),
                        (*aggregate_id).into(),
                        M::type_url().into(),
                        payload.encode_to_vec().into(),
                        carrier.remove("traceparent").unwrap_or_default().into(),
                        carrier.remove("tracestate").unwrap_or_default().into(),
                        now.into(),
                    ])
                    .map_err(|e| DbErr::Custom(format!("event insert: {e}")))?;
            }
            txn.execute(&insert).await?;
        }
        Ok(())
    }

    /// Rewrites, inside `txn`, the payloads of the events about `aggregate_id` (published or still
    /// in the outbox): `scrub` gets each event's type URL and payload and returns a replacement, or
    /// `None` to leave it. For erasure: personal data must not outlive its subject in the log.
    /// Positions, ids and types never change. Returns how many events were rewritten.
    pub async fn rewrite_payloads<C, F>(txn: &C, aggregate_id: &str, scrub: F) -> Result<u64, DbErr>
    where
        C: ConnectionTrait,
        F: Fn(&str, &[u8]) -> Option<Vec<u8>>,
    {
        let backend = txn.get_database_backend();
        let tables: &[(&str, &str)] = match backend {
            DbBackend::Postgres => &[("event_log", "position"), ("event_outbox", "id")],
            _ => &[("event_log", "position")],
        };
        if backend == DbBackend::Postgres {
            // The relay must not move an event from the outbox into the log between the two
            // passes below (it would escape both): hold its lock until this transaction ends.
            txn.execute_raw(Statement::from_sql_and_values(
                DbBackend::Postgres,
                "SELECT pg_advisory_xact_lock($1)",
                [RELAY_LOCK_KEY.into()],
            ))
            .await?;
        }
        let mut rewritten = 0;
        for (table, key) in tables {
            let select = Query::select()
                .columns([*key, "type_url", "payload"])
                .from(*table)
                .and_where(sea_orm::sea_query::ExprTrait::eq(
                    Expr::col("aggregate_id"),
                    aggregate_id,
                ))
                .to_owned();
            for row in txn.query_all(&select).await? {
                let id: i64 = row.try_get("", key)?;
                let type_url: String = row.try_get("", "type_url")?;
                let payload: Vec<u8> = row.try_get("", "payload")?;
                if let Some(replacement) = scrub(&type_url, &payload) {
                    let update = Query::update()
                        .table(*table)
                        .value("payload", replacement)
                        .and_where(sea_orm::sea_query::ExprTrait::eq(Expr::col(*key), id))
                        .to_owned();
                    txn.execute(&update).await?;
                    rewritten += 1;
                }
            }
        }
        Ok(rewritten)
    }

    /// Call after a transaction that appended events has committed: wakes the relay on PostgreSQL,
    /// live subscriptions on SQLite.
    pub fn notify_committed(&self) {
        let bump = |n: &mut u64| *n = n.wrapping_add(1);
        if self.inner.db.get_database_backend() == DbBackend::Postgres {
            self.inner.appended.send_modify(bump);
        } else {
            self.inner.published.send_modify(bump);
        }
    }

    /// Publishes appended events (PostgreSQL): on every commit notification, and at the poll
    /// interval for commits made by other replicas, move outbox rows into the log in batches.
    async fn relay(self, shutdown: CancellationToken) {
        let mut appended = self.inner.appended.subscribe();
        let poll = Duration::from_millis(self.inner.settings.poll_interval_ms);
        let batch = i64::from(self.inner.settings.batch_size.max(1));
        loop {
            appended.borrow_and_update();
            let mut moved_any = false;
            loop {
                match self.relay_batch(batch).await {
                    Ok(moved) => {
                        moved_any |= moved > 0;
                        if moved < batch as u64 {
                            break;
                        }
                    }
                    Err(e) => {
                        tracing::warn!(error = %e, "event relay failed; retrying");
                        break;
                    }
                }
            }
            if moved_any {
                self.inner.published.send_modify(|n| *n = n.wrapping_add(1));
            }
            tokio::select! {
                _ = appended.changed() => {}
                _ = tokio::time::sleep(poll) => {}
                _ = shutdown.cancelled() => return,
            }
        }
    }

    async fn relay_batch(&self, batch: i64) -> Result<u64, DbErr> {
        let txn = self.inner.db.begin().await?;
        txn.execute_raw(Statement::from_sql_and_values(
            DbBackend::Postgres,
            "SELECT pg_advisory_xact_lock($1)",
            [RELAY_LOCK_KEY.into()],
        ))
        .await?;
        let moved = txn
            .query_all_raw(Statement::from_sql_and_values(
                DbBackend::Postgres,
                RELAY_BATCH_SQL,
                [batch.into()],
            ))
            .await?;
        txn.commit().await?;
        // The relay latency of the batch: how long its oldest event waited in the outbox.
        let now = crate::time::now();
        let waited = moved
            .iter()
            .filter_map(|row| {
                row.try_get::<chrono::DateTime<chrono::Utc>>("", "recorded_at")
                    .ok()
            })
            .map(|at| (now - at).num_microseconds().unwrap_or(0).max(0) as f64 / 1000.0)
            .fold(None, |most: Option<f64>, w| {
                Some(most.map_or(w, |m| m.max(w)))
            });
        if let Some(ms) = waited {
            let service = self.inner.service.get().cloned().unwrap_or_default();
            let service = opentelemetry::KeyValue::new("service", service);
            crate::metrics::instruments()
                .relay_latency
                .record(ms, &[service]);
        }
        Ok(moved.len() as u64)
    }

    /// Reads up to `limit` events after `after_position`, in position order.
    pub async fn read(&self, after_position: i64, limit: u32) -> Result<Vec<Event>, DbErr> {
        self.read_for(None, after_position, limit).await
    }

    /// [`EventLog::read`], of one tenant's events only when `tenant` is given.
    pub async fn read_for(
        &self,
        tenant: Option<&TenantId>,
        after_position: i64,
        limit: u32,
    ) -> Result<Vec<Event>, DbErr> {
        let mut find = event_log::Entity::find();
        if let Some(t) = tenant {
            find = find.filter(event_log::Column::TenantId.eq(t.as_str()));
        }
        let rows = find
            .filter(event_log::Column::Position.gt(after_position))
            .order_by_asc(event_log::Column::Position)
            .limit(u64::from(limit))
            .all(&self.inner.db)
            .await?;
        Ok(rows.into_iter().map(to_proto).collect())
    }

    /// The highest position in the log, 0 if empty.
    pub async fn head(&self) -> Result<i64, DbErr> {
        let last = event_log::Entity::find()
            .order_by_desc(event_log::Column::Position)
            .one(&self.inner.db)
            .await?;
        Ok(last.map_or(0, |e| e.position))
    }

    /// The log's epoch: made (a UUID v7) the first time the log is used, then kept in its database.
    /// A database that was reset, or replaced by another, has another epoch; one restored from a
    /// backup keeps it (subscribers then check positions and event ids).
    pub async fn epoch(&self) -> Result<String, DbErr> {
        self.inner
            .epoch
            .get_or_try_init(|| async {
                event_log_identity::Entity::insert(event_log_identity::ActiveModel {
                    id: Set(1),
                    epoch: Set(uuid::Uuid::now_v7().to_string()),
                    created_at: Set(time::now()),
                })
                .on_conflict_do_nothing_on([event_log_identity::Column::Id])
                .exec(&self.inner.db)
                .await?;
                let row = event_log_identity::Entity::find_by_id(1)
                    .one(&self.inner.db)
                    .await?;
                row.map(|r| r.epoch)
                    .ok_or_else(|| DbErr::RecordNotFound("event_log_identity".into()))
            })
            .await
            .cloned()
    }

    /// Refuses a subscription that does not continue the log it names: another epoch, a position
    /// beyond the end, or another event at the position.
    async fn check_continues(&self, req: &SubscribeRequest) -> Result<String, Status> {
        let epoch = self.epoch().await.map_err(|e| database_status(&e))?;
        let refuse = |rule: &str, description: String| {
            Status::from(ApiError::FailedPrecondition {
                rule: rule.to_owned(),
                description,
            })
        };
        if !req.expected_epoch.is_empty() && req.expected_epoch != epoch {
            return Err(refuse(
                "log_epoch",
                format!(
                    "this log is epoch {epoch}, the subscriber followed epoch {}: the log was reset or replaced; its position means nothing here",
                    req.expected_epoch
                ),
            ));
        }
        if req.after_position == 0 {
            return Ok(epoch);
        }
        let head = self.head().await.map_err(|e| database_status(&e))?;
        if req.after_position > head {
            return Err(refuse(
                "position_in_log",
                format!(
                    "after_position {} is beyond the end of this log ({head}): it was restored from an older copy or is a standby that lags",
                    req.after_position
                ),
            ));
        }
        if req.after_event_id.is_empty() {
            return Ok(epoch);
        }
        let found = event_log::Entity::find_by_id(req.after_position)
            .one(&self.inner.db)
            .await
            .map_err(|e| database_status(&e))?
            .map(|e| e.event_id);
        if found.as_deref() != Some(req.after_event_id.as_str()) {
            return Err(refuse(
                "event_at_position",
                format!(
                    "position {} holds {}, the subscriber applied event {} there: the log was restored and written again",
                    req.after_position,
                    found.as_deref().unwrap_or("no event"),
                    req.after_event_id
                ),
            ));
        }
        Ok(epoch)
    }

    /// The `baton.events.v1.EventLog` gRPC service over this log. Streams end when `shutdown` fires.
    pub fn grpc_service(&self, shutdown: CancellationToken) -> EventLogServer<EventLogApi> {
        EventLogServer::new(EventLogApi {
            log: self.clone(),
            shutdown,
        })
    }
}

fn to_proto(row: event_log::Model) -> Event {
    Event {
        position: row.position,
        event_id: row.event_id,
        tenant_id: row.tenant_id,
        aggregate_id: row.aggregate_id,
        recorded_at: Some(time::to_proto(row.recorded_at)),
        payload: Some(prost_types::Any {
            type_url: row.type_url,
            value: row.payload,
        }),
        traceparent: row.traceparent,
        tracestate: row.tracestate,
        log_head_position: 0,
    }
}

/// gRPC edge of [`EventLog`].
pub struct EventLogApi {
    log: EventLog,
    shutdown: CancellationToken,
}

type EventStream = Pin<Box<dyn Stream<Item = Result<Event, Status>> + Send>>;

#[tonic::async_trait]
impl EventLogRpc for EventLogApi {
    type SubscribeStream = EventStream;

    async fn subscribe(
        &self,
        request: Request<SubscribeRequest>,
    ) -> Result<Response<Self::SubscribeStream>, Status> {
        // A token for one tenant sees that tenant's events only; a service token for every
        // tenant (tenant "*") sees them all.
        let tenant = match crate::auth::Identity::of(&request)?.scope {
            crate::auth::Scope::Tenant(t) => Some(t),
            crate::auth::Scope::AllTenants => None,
        };
        let peer = request.remote_addr();
        let req = request.into_inner();
        let mut violations = crate::error::Violations::new();
        if req.after_position < 0 {
            violations.add("after_position", "must be 0 or greater");
        }
        if req.max_batch < 0 || req.max_batch as u32 > MAX_BATCH {
            violations.add("max_batch", format!("must be between 0 and {MAX_BATCH}"));
        }
        violations.into_result()?;
        let epoch = self.log.check_continues(&req).await?;
        let permit = self.log.inner.streams.admit(peer)?;
        let batch = if req.max_batch == 0 {
            self.log.inner.settings.batch_size
        } else {
            req.max_batch as u32
        };
        let (tx, rx) = mpsc::channel(batch.clamp(16, 1024) as usize);
        tokio::spawn(pump(
            permit,
            self.log.clone(),
            tenant,
            req.after_position,
            batch,
            tx,
            self.shutdown.clone(),
        ));
        let mut response = Response::new(Box::pin(ReceiverStream::new(rx)) as EventStream);
        if let Ok(value) = epoch.parse() {
            response.metadata_mut().insert(EPOCH_HEADER, value);
        }
        Ok(response)
    }
}

/// Feeds one subscription: catch up in batches, then wait for a commit notification (or the poll
/// interval, for commits by other replicas) and read again. Ends when the client goes away or the
/// server shuts down.
async fn pump(
    _permit: StreamPermit,
    log: EventLog,
    tenant: Option<TenantId>,
    mut position: i64,
    batch: u32,
    tx: mpsc::Sender<Result<Event, Status>>,
    shutdown: CancellationToken,
) {
    let mut published = log.inner.published.subscribe();
    let poll = Duration::from_millis(log.inner.settings.poll_interval_ms);
    loop {
        published.borrow_and_update();
        let events = match log.read_for(tenant.as_ref(), position, batch).await {
            Ok(events) => events,
            Err(e) => {
                let _ = tx.send(Err(database_status(&e))).await;
                return;
            }
        };
        if events.is_empty() {
            tokio::select! {
                _ = published.changed() => {}
                _ = tokio::time::sleep(poll) => {}
                _ = shutdown.cancelled() => return,
                _ = tx.closed() => return,
            }
            continue;
        }
        // Where the log ends now, sent with each event so consumers can tell their lag.
        let head = log.head().await.unwrap_or(0);
        for mut event in events {
            position = event.position;
            event.log_head_position = head.max(event.position);
            tokio::select! {
                sent = tx.send(Ok(event)) => if sent.is_err() { return },
                _ = shutdown.cancelled() => return,
            }
        }
    }
}
