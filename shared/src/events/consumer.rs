//! The consumer side: follow another service's event log and apply each event exactly once.

use std::{collections::HashMap, future::Future, pin::Pin, sync::Arc, time::Duration};

use baton_proto::events::v1::{Event, SubscribeRequest, event_log_client::EventLogClient};

use opentelemetry::propagation::TextMapPropagator;
use opentelemetry_sdk::propagation::TraceContextPropagator;
use prost::Message as _;
use sea_orm::{
    ActiveValue::Set, ConnectionTrait, DatabaseConnection, DatabaseTransaction, DbErr, EntityTrait,
    QueryFilter, TransactionTrait, prelude::*,
};
use tokio_util::sync::CancellationToken;
use tracing::{Instrument, info_span};
use tracing_opentelemetry::OpenTelemetrySpanExt;

use tonic_health::{ServingStatus, server::HealthReporter};

use super::{
    log::{EPOCH_HEADER, EventLog},
    store::{event_cursor, event_dead_letter},
};
use crate::{
    peer::PeerAccess,
    settings::{EventSettings, ServiceName, Settings},
    time,
};

/// Most events applied in one transaction.
const MAX_BATCH: usize = 256;

/// Why an event could not be applied.
#[derive(Debug, thiserror::Error)]
pub enum ConsumeError {
    /// A database error. The event is applied again later: without limit while the error is
    /// transient (the database down or busy, see [`crate::db::is_transient`]); any other error
    /// (a constraint, a value the schema refuses) dead-letters the event after
    /// `events.dead_letter_after_attempts` failures in a row, so it cannot block its stream.
    #[error("database: {0}")]
    Database(#[from] DbErr),
    /// The event can never be applied (e.g. a payload that does not decode): it is recorded in
    /// `event_dead_letter` and skipped, so one bad event cannot stop the stream.
    #[error("permanent: {0}")]
    Permanent(String),
}

/// What a service does with another service's events.
pub trait EventHandler: Send + Sync + 'static {
    /// Applies `event` inside `txn`; the consumer advances its cursor in the same transaction.
    /// Events of types the handler does not care about must return `Ok(())`.
    fn handle(
        &self,
        txn: &DatabaseTransaction,
        event: &Event,
    ) -> impl Future<Output = Result<(), ConsumeError>> + Send;

    /// Applies events that arrived together, in order, inside one transaction; each comes with
    /// the span to apply it in (a child of the trace that produced it). The default applies each
    /// with [`EventHandler::handle`]. A handler may override it to share work across the batch,
    /// e.g. read settings that the batch cannot change once instead of once per event. If it
    /// fails, the transaction is rolled back and the events are applied one by one with `handle`.
    fn handle_batch(
        &self,
        txn: &DatabaseTransaction,
        events: &[(&Event, tracing::Span)],
    ) -> impl Future<Output = Result<(), ConsumeError>> + Send {
        async move {
            for (event, span) in events {
                self.handle(txn, event).instrument(span.clone()).await?;
            }
            Ok(())
        }
    }
}

/// Follows one source's `EventLog` and applies its events with an [`EventHandler`].
pub struct Consumer<H> {
    source: String,
    endpoint: String,
    db: DatabaseConnection,
    handler: Arc<H>,
    settings: EventSettings,
    /// The consuming service's own log, woken after a handler's transaction commits (handlers may
    /// append events of their own).
    own_log: Option<EventLog>,
    /// TLS and the service token the subscription is opened with.
    access: PeerAccess,
    /// The position of the event that failed last with a non-transient error, and how many
    /// times in a row it did.
    failures: std::sync::Mutex<(i64, u32)>,
    /// Where the consumer reports itself (`consumer:<source>`): NOT_SERVING once it stopped
    /// because the log it followed is gone.
    health: Option<HealthReporter>,
    /// The consuming service, as the metrics name it.
    service: String,
}

/// Why a subscription ended without shutdown.
enum Interrupted {
    /// The producer is down or the stream broke: reconnect with backoff.
    Retry(String),
    /// The producer's log is not the one this consumer followed: stop, never skip.
    Stop(String),
}

/// The grpc.health.v1 name under which a consumer of `source` reports.
pub fn health_name(source: &str) -> String {
    format!("consumer:{source}")
}

impl<H: EventHandler> Consumer<H> {
    /// `source` names the producer (its cursor key, e.g. "capture"); `endpoint` is its gRPC URL.
    pub fn new(
        source: impl Into<String>,
        endpoint: impl Into<String>,
        db: DatabaseConnection,
        handler: H,
        settings: EventSettings,
        own_log: Option<EventLog>,
        access: PeerAccess,
    ) -> Self {
        Consumer {
            source: source.into(),
            endpoint: endpoint.into(),
            db,
            handler: Arc::new(handler),
            settings,
            own_log,
            access,
            failures: std::sync::Mutex::new((0, 0)),
            health: None,
            service: String::new(),
        }
    }

    /// Reports the consumer's state to `health` under [`health_name`].
    pub fn with_health(mut self, health: HealthReporter) -> Self {
        self.health = Some(health);
        self
    }

    /// Names the consuming service in the metrics (lag, dead letters).
    pub fn named(mut self, service: &str) -> Self {
        self.service = service.to_owned();
        self
    }

    fn metric_attributes(&self) -> [opentelemetry::KeyValue; 2] {
        [
            opentelemetry::KeyValue::new("service", self.service.clone()),
            opentelemetry::KeyValue::new("source", self.source.clone()),
        ]
    }

    /// The lag after applying up to `last`: positions of the log not yet applied (the producer
    /// says where its log ends with each event) and, while behind, how old `last` is.
    fn record_lag(&self, last: &Event) {
        let behind = (last.log_head_position - last.position).max(0);
        let age = if behind > 0 {
            last.recorded_at
                .as_ref()
                .and_then(crate::time::from_proto)
                .map_or(0.0, |at| {
                    (crate::time::now() - at).num_milliseconds().max(0) as f64 / 1000.0
                })
        } else {
            0.0
        };
        let m = crate::metrics::instruments();
        let attributes = self.metric_attributes();
        m.consumer_lag.record(behind, &attributes);
        m.consumer_lag_time.record(age, &attributes);
    }

    async fn report(&self, status: ServingStatus) {
        if let Some(h) = &self.health {
            h.set_service_status(health_name(&self.source), status)
                .await;
        }
    }

    /// The source this consumer follows, and its handler as a replayer of dead letters.
    pub fn replayer(&self) -> (String, Arc<dyn Replay>) {
        (
            self.source.clone(),
            Arc::new(HandlerReplay(self.handler.clone())),
        )
    }

    /// Follows `source`'s log at the endpoint `settings` name for it, applying to `db` and waking
    /// `own_log` after each applied event.
    pub fn of(
        source: ServiceName,
        settings: &Settings,
        db: DatabaseConnection,
        handler: H,
        own_log: &EventLog,
        access: PeerAccess,
    ) -> Self {
        Self::new(
            source.as_str(),
            settings.service(source).endpoint.clone(),
            db,
            handler,
            settings.events.clone(),
            Some(own_log.clone()),
            access,
        )
    }

    /// Runs the consumer on its own task until `shutdown`.
    pub fn spawn(self, shutdown: CancellationToken) -> tokio::task::JoinHandle<()> {
        tokio::spawn(self.run(shutdown))
    }

    /// Runs until `shutdown`: connect, subscribe from the stored cursor, apply; on any failure wait
    /// (exponential backoff) and start again from the stored cursor. Stops for good, reporting
    /// NOT_SERVING, when the producer says its log is not the one this consumer followed (reset,
    /// replaced, restored from an older copy): skipping or re-applying would be silent damage.
    pub async fn run(self, shutdown: CancellationToken) {
        let min = Duration::from_millis(self.settings.reconnect_min_ms);
        let max = Duration::from_millis(self.settings.reconnect_max_ms);
        let mut backoff = min;
        self.report(ServingStatus::Serving).await;
        while !shutdown.is_cancelled() {
            match self.follow(&shutdown).await {
                Ok(applied_any) if applied_any => backoff = min,
                Ok(_) => {}
                Err(Interrupted::Retry(reason)) => {
                    tracing::debug!(source = %self.source, %reason, ?backoff, "event stream interrupted; reconnecting")
                }
                Err(Interrupted::Stop(reason)) => {
                    tracing::error!(
                        source = %self.source,
                        %reason,
                        health = %health_name(&self.source),
                        "the log this consumer followed is gone; it stopped and applies nothing until an operator resets its cursor"
                    );
                    self.report(ServingStatus::NotServing).await;
                    return;
                }
            }
            tokio::select! {
                _ = tokio::time::sleep(backoff) => {}
                _ = shutdown.cancelled() => return,
            }
            backoff = (backoff * 2).min(max);
        }
    }

    /// One connection: returns when the stream ends or fails; `Ok(true)` if it applied anything.
    async fn follow(&self, shutdown: &CancellationToken) -> Result<bool, Interrupted> {
        let retry = |e: &dyn std::fmt::Display| Interrupted::Retry(e.to_string());
        let cursor = self.ensure_cursor().await.map_err(|e| retry(&e))?;
        let connected = self.access.connect(&self.endpoint).await;
        let mut client = EventLogClient::new(connected.map_err(|e| retry(&e))?);
        let response = client
            .subscribe(SubscribeRequest {
                after_position: cursor.position,
                max_batch: 0,
                expected_epoch: cursor.epoch.clone(),
                after_event_id: cursor.last_event_id.clone(),
            })
            .await
            .map_err(|s| match s.code() {
                tonic::Code::FailedPrecondition => Interrupted::Stop(s.message().to_owned()),
                _ => retry(&s),
            })?;
        let epoch = response
            .metadata()
            .get(EPOCH_HEADER)
            .and_then(|v| v.to_str().ok())
            .unwrap_or_default()
            .to_owned();
        if !epoch.is_empty() && !cursor.epoch.is_empty() && epoch != cursor.epoch {
            return Err(Interrupted::Stop(format!(
                "the log is epoch {epoch}, this consumer followed epoch {}",
                cursor.epoch
            )));
        }
        if cursor.epoch.is_empty() && !epoch.is_empty() {
            self.learn_epoch(&epoch).await.map_err(|e| retry(&e))?;
        }
        let mut stream = response.into_inner();
        let after_position = cursor.position;
        tracing::info!(source = %self.source, after_position, %epoch, "following event log");
        let mut applied_any = false;
        loop {
            let next = tokio::select! {
                next = stream.message() => next,
                _ = shutdown.cancelled() => return Ok(applied_any),
            };
            match next {
                Ok(Some(event)) => {
                    // Whatever else has already arrived is applied with it, in one transaction.
                    let mut batch = vec![event];
                    let mut after = None;
                    while batch.len() < MAX_BATCH {
                        match tokio::time::timeout(Duration::ZERO, stream.message()).await {
                            Ok(Ok(Some(more))) => batch.push(more),
                            Ok(other) => {
                                after = Some(other);
                                break;
                            }
                            Err(_) => break,
                        }
                    }
                    self.apply_batch(&batch).await.map_err(|e| retry(&e))?;
                    if let Some(last) = batch.last() {
                        self.record_lag(last);
                    }
                    applied_any = true;
                    match after {
                        Some(Ok(None)) => return Ok(applied_any),
                        Some(Err(status)) => return Err(retry(&status)),
                        _ => {}
                    }
                }
                Ok(None) => return Ok(applied_any),
                Err(status) => return Err(retry(&status)),
            }
        }
    }

    /// The stored cursor, created at 0 on first use.
    async fn ensure_cursor(&self) -> Result<event_cursor::Model, DbErr> {
        let row = event_cursor::ActiveModel {
            source: Set(self.source.clone()),
            position: Set(0),
            updated_at: Set(time::now()),
            epoch: Set(String::new()),
            last_event_id: Set(String::new()),
        };
        event_cursor::Entity::insert(row)
            .on_conflict_do_nothing_on([event_cursor::Column::Source])
            .exec(&self.db)
            .await?;
        event_cursor::Entity::find_by_id(self.source.clone())
            .one(&self.db)
            .await?
            .ok_or_else(|| DbErr::RecordNotFound(format!("event_cursor {}", self.source)))
    }

    /// Keeps the epoch of the log the cursor's positions belong to (a cursor made before logs had
    /// one, or a first subscription).
    async fn learn_epoch(&self, epoch: &str) -> Result<(), DbErr> {
        event_cursor::Entity::update_many()
            .col_expr(event_cursor::Column::Epoch, Expr::value(epoch))
            .filter(event_cursor::Column::Source.eq(self.source.as_str()))
            .filter(event_cursor::Column::Epoch.eq(""))
            .exec(&self.db)
            .await?;
        Ok(())
    }

    /// Applies one event exactly once. The cursor moves first, conditionally: if another replica (or
    /// an earlier delivery) already moved it past this event, nothing is applied. On PostgreSQL the
    /// update also locks the cursor row, so concurrent replicas apply each event once.
    async fn apply(&self, event: &Event) -> Result<(), DbErr> {
        let span = self.span_of(event);
        async {
            let txn = self.begin().await?;
            if !self.advance_cursor(&txn, event).await? {
                txn.rollback().await?;
                return Ok(());
            }
            match self.handler.handle(&txn, event).await {
                Ok(()) => {
                    txn.commit().await?;
                    if let Some(log) = &self.own_log {
                        log.notify_committed();
                    }
                    Ok(())
                }
                Err(ConsumeError::Database(e)) => {
                    txn.rollback().await?;
                    if crate::db::is_transient(&e) {
                        return Err(e);
                    }
                    let attempts = self.failed(event.position);
                    if attempts < self.settings.dead_letter_after_attempts.max(1) {
                        tracing::warn!(error = %e, attempts, "event failed to apply; it is tried again");
                        return Err(e);
                    }
                    tracing::error!(error = %e, attempts, "event keeps failing; dead-lettered and skipped");
                    self.dead_letter(event, &e.to_string(), attempts).await
                }
                Err(ConsumeError::Permanent(reason)) => {
                    txn.rollback().await?;
                    tracing::error!(%reason, "event cannot be applied; dead-lettered and skipped");
                    self.dead_letter(event, &reason, 1).await
                }
            }
        }
        .instrument(span)
        .await
    }

    /// Applies events that arrived together in one transaction (one commit instead of one per
    /// event). The cursor row is read (and on PostgreSQL locked) first; events at or before it were
    /// applied already, by this replica or another, and are skipped. If any event fails, the whole
    /// transaction is rolled back and the events are applied one by one, so one bad event is
    /// dead-lettered alone.
    async fn apply_batch(&self, batch: &[Event]) -> Result<(), DbErr> {
        if batch.len() == 1 {
            return self.apply(&batch[0]).await;
        }
        let span = info_span!("consume_batch", source = %self.source, events = batch.len());
        let applied: Result<bool, DbErr> = async {
            let txn = self.begin().await?;
            let mut query = event_cursor::Entity::find_by_id(self.source.clone());
            if txn.get_database_backend() == sea_orm::DbBackend::Postgres {
                query = sea_orm::QuerySelect::lock(query, sea_orm::sea_query::LockType::Update);
            }
            let cursor = query.one(&txn).await?.map_or(0, |c| c.position);
            let fresh: Vec<&Event> = batch.iter().filter(|e| e.position > cursor).collect();
            let Some(last) = fresh.last().copied() else {
                txn.rollback().await?;
                return Ok(true);
            };
            let events: Vec<(&Event, tracing::Span)> =
                fresh.into_iter().map(|e| (e, self.span_of(e))).collect();
            if self.handler.handle_batch(&txn, &events).await.is_err() {
                txn.rollback().await?;
                return Ok(false);
            }
            if !self.advance_cursor(&txn, last).await? {
                txn.rollback().await?;
                return Ok(false);
            }
            txn.commit().await?;
            Ok(true)
        }
        .instrument(span)
        .await;
        if applied? {
            if let Some(log) = &self.own_log {
                log.notify_committed();
            }
            return Ok(());
        }
        for event in batch {
            self.apply(event).await?;
        }
        Ok(())
    }

    /// A transaction to apply events in: on PostgreSQL without waiting for the WAL flush unless
    /// `consumer_synchronous_commit` is set (see [`EventSettings`] for why that is safe).
    async fn begin(&self) -> Result<DatabaseTransaction, DbErr> {
        let txn = self.db.begin().await?;
        if txn.get_database_backend() == sea_orm::DbBackend::Postgres
            && !self.settings.consumer_synchronous_commit
        {
            txn.execute_unprepared("SET LOCAL synchronous_commit TO OFF")
                .await?;
        }
        Ok(txn)
    }

    /// A span for applying `event`, child of the trace that produced it.
    fn span_of(&self, event: &Event) -> tracing::Span {
        let span = info_span!("consume", source = %self.source, position = event.position, event_type = %type_of(event));
        let mut carrier = HashMap::new();
        carrier.insert("traceparent".to_owned(), event.traceparent.clone());
        carrier.insert("tracestate".to_owned(), event.tracestate.clone());
        let _ = span.set_parent(TraceContextPropagator::new().extract(&carrier));
        span
    }

    async fn advance_cursor(&self, txn: &DatabaseTransaction, to: &Event) -> Result<bool, DbErr> {
        let position = to.position;
        let moved = event_cursor::Entity::update_many()
            .col_expr(event_cursor::Column::Position, Expr::value(position))
            .col_expr(
                event_cursor::Column::LastEventId,
                Expr::value(to.event_id.as_str()),
            )
            .col_expr(event_cursor::Column::UpdatedAt, Expr::value(time::now()))
            .filter(event_cursor::Column::Source.eq(self.source.as_str()))
            .filter(event_cursor::Column::Position.lt(position))
            .exec(txn)
            .await?;
        Ok(moved.rows_affected == 1)
    }

    /// Counts a non-transient failure of the event at `position`: how many in a row it has had.
    fn failed(&self, position: i64) -> u32 {
        let mut failures = self
            .failures
            .lock()
            .unwrap_or_else(std::sync::PoisonError::into_inner);
        if failures.0 == position {
            failures.1 += 1;
        } else {
            *failures = (position, 1);
        }
        failures.1
    }

    async fn dead_letter(&self, event: &Event, reason: &str, attempts: u32) -> Result<(), DbErr> {
        let txn = self.db.begin().await?;
        let recorded = self.advance_cursor(&txn, event).await?;
        if recorded {
            record_dead_letter(&txn, &self.source, event, reason, attempts).await?;
        }
        txn.commit().await?;
        if recorded {
            let attributes = self.metric_attributes();
            crate::metrics::instruments()
                .dead_letters
                .add(1, &attributes);
        }
        Ok(())
    }
}

/// Applies a dead-lettered event again with its source's handler.
pub trait Replay: Send + Sync {
    fn replay<'a>(
        &'a self,
        txn: &'a DatabaseTransaction,
        event: &'a Event,
    ) -> Pin<Box<dyn Future<Output = Result<(), ConsumeError>> + Send + 'a>>;
}

/// A consumer's handler, as a [`Replay`].
pub(crate) struct HandlerReplay<H>(pub Arc<H>);

impl<H: EventHandler> Replay for HandlerReplay<H> {
    fn replay<'a>(
        &'a self,
        txn: &'a DatabaseTransaction,
        event: &'a Event,
    ) -> Pin<Box<dyn Future<Output = Result<(), ConsumeError>> + Send + 'a>> {
        Box::pin(self.0.handle(txn, event))
    }
}

/// Records a dead letter inside `txn` (the caller also moves the cursor past the event there).
async fn record_dead_letter<C: ConnectionTrait>(
    txn: &C,
    source: &str,
    event: &Event,
    error: &str,
    attempts: u32,
) -> Result<(), DbErr> {
    event_dead_letter::Entity::insert(event_dead_letter::ActiveModel {
        id: sea_orm::ActiveValue::NotSet,
        source: Set(source.to_owned()),
        position: Set(event.position),
        event_id: Set(event.event_id.clone()),
        type_url: Set(type_of(event).to_owned()),
        error: Set(error.to_owned()),
        created_at: Set(time::now()),
        event: Set(Some(event.encode_to_vec())),
        attempts: Set(i32::try_from(attempts).unwrap_or(i32::MAX)),
        replayed_at: Set(None),
        tenant_id: Set(event.tenant_id.clone()),
    })
    .exec(txn)
    .await?;
    Ok(())
}

/// The cursor a consumer keeps for `source` in `db`, if it has one.
pub async fn cursor(
    db: &DatabaseConnection,
    source: &str,
) -> Result<Option<event_cursor::Model>, DbErr> {
    event_cursor::Entity::find_by_id(source.to_owned())
        .one(db)
        .await
}

fn type_of(event: &Event) -> &str {
    event.payload.as_ref().map_or("", |p| p.type_url.as_str())
}

/// Decodes the event's payload as `M`: `Ok(None)` if it is another type, a permanent error if it
/// claims to be `M` but does not decode.
pub fn decode<M: prost::Message + prost::Name + Default>(
    event: &Event,
) -> Result<Option<M>, ConsumeError> {
    match event
        .payload
        .as_ref()
        .and_then(baton_proto::any::unpack::<M>)
    {
        None => Ok(None),
        Some(Ok(m)) => Ok(Some(m)),
        Some(Err(e)) => Err(ConsumeError::Permanent(format!(
            "{} does not decode: {e}",
            M::full_name()
        ))),
    }
}
