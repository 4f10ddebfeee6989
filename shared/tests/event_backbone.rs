//! The event backbone under concurrency, over real gRPC sockets: 8 writers commit events while a
//! subscriber streams them and two consumer replicas apply them. Every event must arrive exactly
//! once and in position order. Runs on SQLite, and on PostgreSQL when BATON_TEST_DATABASE_URL is set
//! (where writers hold their transaction open after appending, so commits interleave).

use std::{collections::HashSet, time::Duration};

use baton_proto::{
    capture::v1::LeadCaptured,
    events::v1::{
        Event, ListDeadLettersRequest, ReplayDeadLetterRequest, SubscribeRequest,
        dead_letters_client::DeadLettersClient, event_log_client::EventLogClient,
    },
};
use baton_shared::{
    Settings, TenantId,
    events::{
        ConsumeError, Consumer, DeadLetterApi, EventHandler, EventLog,
        consumer::decode,
        migration::{
            CreateEventConsumerTables, CreateEventLog, CreateEventLogIdentity, CursorsKnowTheirLog,
            KeepDeadLetteredEvents,
        },
    },
    server::{self, ServeOptions},
    testing::TestDatabase,
};
use rand::Rng;
use sea_orm::{
    ConnectionTrait, DatabaseConnection, DatabaseTransaction, Statement, TransactionTrait,
};
use sea_orm_migration::{MigrationTrait, MigratorTrait};
use tokio_util::sync::CancellationToken;
use tonic::service::Routes;

const WRITERS: usize = 8;
const EVENTS_PER_WRITER: usize = 40;
const TOTAL: usize = WRITERS * EVENTS_PER_WRITER;

struct ProducerMigrator;
impl MigratorTrait for ProducerMigrator {
    fn migrations() -> Vec<Box<dyn MigrationTrait>> {
        vec![Box::new(CreateEventLog), Box::new(CreateEventLogIdentity)]
    }
}

struct ConsumerMigrator;
impl MigratorTrait for ConsumerMigrator {
    fn migrations() -> Vec<Box<dyn MigrationTrait>> {
        vec![
            Box::new(CreateEventConsumerTables),
            Box::new(KeepDeadLetteredEvents),
            Box::new(CursorsKnowTheirLog),
        ]
    }
}

/// Records each applied event in a table whose primary key makes a second application fail; an
/// event about lead "poison" cannot be applied (permanently).
struct RecordApplied;

impl EventHandler for RecordApplied {
    async fn handle(&self, txn: &DatabaseTransaction, event: &Event) -> Result<(), ConsumeError> {
        let captured = decode::<LeadCaptured>(event)?
            .ok_or_else(|| ConsumeError::Permanent("unexpected type".into()))?;
        if captured.lead_id == "poison" {
            return Err(ConsumeError::Permanent("poison".into()));
        }
        txn.execute_raw(Statement::from_sql_and_values(
            txn.get_database_backend(),
            match txn.get_database_backend() {
                sea_orm::DbBackend::Postgres => {
                    "INSERT INTO applied (lead_id, position) VALUES ($1, $2)"
                }
                _ => "INSERT INTO applied (lead_id, position) VALUES (?, ?)",
            },
            [captured.lead_id.into(), event.position.into()],
        ))
        .await?;
        Ok(())
    }
}

fn settings() -> Settings {
    let mut s = Settings::defaults().unwrap();
    s.auth.hs256_secret_file = baton_shared::testing::test_secret_file()
        .display()
        .to_string();
    s.events.poll_interval_ms = 100;
    s.events.reconnect_min_ms = 10;
    s.events.reconnect_max_ms = 200;
    s.database.max_connections = 20;
    s
}

/// Writers alternate between two replicas' logs (each with its own relay on PostgreSQL).
async fn write_concurrently(db: &DatabaseConnection, replicas: [&EventLog; 2]) {
    let tenant = TenantId::new("t1");
    let mut writers = Vec::new();
    for w in 0..WRITERS {
        let (db, log, tenant) = (db.clone(), replicas[w % 2].clone(), tenant.clone());
        writers.push(tokio::spawn(async move {
            for n in 0..EVENTS_PER_WRITER {
                let txn = db.begin().await.unwrap();
                let event = LeadCaptured {
                    lead_id: format!("w{w}-{n}"),
                    ..Default::default()
                };
                EventLog::append(&txn, &tenant, &event.lead_id, &event)
                    .await
                    .unwrap();
                // Hold the transaction open after appending, so commits interleave.
                let pause = rand::rng().random_range(0..3);
                tokio::time::sleep(Duration::from_millis(pause)).await;
                txn.commit().await.unwrap();
                log.notify_committed();
            }
        }));
    }
    for w in writers {
        w.await.unwrap();
    }
}

fn expected_ids() -> HashSet<String> {
    (0..WRITERS)
        .flat_map(|w| (0..EVENTS_PER_WRITER).map(move |n| format!("w{w}-{n}")))
        .collect()
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn concurrent_writers_are_delivered_exactly_once_in_position_order() {
    let settings = settings();
    let (_producer_db, db) = producer_database("events_producer", &settings).await;
    let shutdown = CancellationToken::new();
    let log = EventLog::start(db.clone(), settings.events.clone(), shutdown.clone());

    let listener = server::bind("127.0.0.1:0").await.unwrap();
    let endpoint = format!("http://{}", listener.local_addr().unwrap());
    let routes = Routes::new(log.grpc_service(shutdown.clone()));
    let server_settings = settings.clone();
    let server_shutdown = shutdown.clone();
    let server = tokio::spawn(async move {
        let options = ServeOptions::new(
            "producer",
            vec![baton_shared::events::EVENT_LOG_SERVICE_NAME],
            &server_settings,
        );
        server::serve(listener, routes, options, server_shutdown).await
    });

    // A live subscriber from position 0, started before any write.
    let mut client = connect(&endpoint).await;
    let mut stream = client
        .subscribe(SubscribeRequest {
            after_position: 0,
            max_batch: 7,
            ..Default::default()
        })
        .await
        .unwrap()
        .into_inner();
    let subscriber = tokio::spawn(async move {
        let mut seen = Vec::new();
        while seen.len() < TOTAL {
            match tokio::time::timeout(Duration::from_secs(30), stream.message()).await {
                Ok(Ok(Some(e))) => seen.push(e),
                other => panic!("stream ended early after {} events: {other:?}", seen.len()),
            }
        }
        seen
    });

    // Two consumer replicas sharing one consumer database.
    let (_consumer_db, cdb) = consumer_database("events_consumer", &settings).await;
    let consumers: Vec<_> = (0..2)
        .map(|_| {
            let c = Consumer::new(
                "producer",
                endpoint.clone(),
                cdb.clone(),
                RecordApplied,
                settings.events.clone(),
                None,
                access(&settings),
            );
            tokio::spawn(c.run(shutdown.clone()))
        })
        .collect();

    // A second replica of the producer on the same database: its relay competes with the first.
    let replica = EventLog::start(db.clone(), settings.events.clone(), shutdown.clone());
    write_concurrently(&db, [&log, &replica]).await;

    let seen = subscriber.await.unwrap();
    let positions: Vec<i64> = seen.iter().map(|e| e.position).collect();
    assert!(
        positions.windows(2).all(|w| w[0] < w[1]),
        "positions out of order: {positions:?}"
    );
    let ids: HashSet<String> = seen
        .iter()
        .map(|e| decode::<LeadCaptured>(e).unwrap().unwrap().lead_id)
        .collect();
    assert_eq!(ids.len(), TOTAL, "duplicates delivered");
    assert_eq!(ids, expected_ids());
    assert_eq!(*positions.last().unwrap(), log.head().await.unwrap());

    // The consumers applied every event once (a second application would violate the primary key
    // and stall them), and their cursor ends at the head of the log.
    let deadline = tokio::time::Instant::now() + Duration::from_secs(30);
    loop {
        let applied = count(&cdb, "SELECT COUNT(*) AS n FROM applied").await;
        let cursor = count(
            &cdb,
            "SELECT position AS n FROM event_cursor WHERE source = 'producer'",
        )
        .await;
        if applied == TOTAL as i64 && cursor == log.head().await.unwrap() {
            break;
        }
        assert!(
            tokio::time::Instant::now() < deadline,
            "consumers applied {applied} of {TOTAL}, cursor {cursor}"
        );
        tokio::time::sleep(Duration::from_millis(50)).await;
    }

    // A subscriber resuming mid-log gets exactly the rest.
    let middle = positions[TOTAL / 2];
    let mut resumed = client
        .subscribe(SubscribeRequest {
            after_position: middle,
            max_batch: 0,
            ..Default::default()
        })
        .await
        .unwrap()
        .into_inner();
    let mut rest = Vec::new();
    while rest.len() < TOTAL - TOTAL / 2 - 1 {
        rest.push(resumed.message().await.unwrap().unwrap().position);
    }
    assert_eq!(rest, positions[TOTAL / 2 + 1..]);

    shutdown.cancel();
    for c in consumers {
        c.await.unwrap();
    }
    server.await.unwrap().unwrap();
}

#[tokio::test]
async fn a_consumer_waits_for_a_producer_that_is_down_and_catches_up() {
    let settings = settings();
    let (_producer_db, db) = producer_database("events_late_producer", &settings).await;
    let shutdown = CancellationToken::new();
    let log = EventLog::start(db.clone(), settings.events.clone(), shutdown.clone());
    // Six events wait for the consumer, so they reach it together and are applied as one batch;
    // the poisoned one among them is dead-lettered alone and the other five are applied.
    append_leads(
        &db,
        &[
            "early-0", "early-1", "poison", "early-3", "early-4", "early-5",
        ],
    )
    .await;
    // Reserve a port, then free it: the producer is "down" there.
    let listener = server::bind("127.0.0.1:0").await.unwrap();
    let addr = listener.local_addr().unwrap();
    drop(listener);

    let (_consumer_db, cdb) = consumer_database("events_late_consumer", &settings).await;
    let consumer = Consumer::new(
        "producer",
        format!("http://{addr}"),
        cdb.clone(),
        RecordApplied,
        settings.events.clone(),
        None,
        access(&settings),
    );
    let consumer = tokio::spawn(consumer.run(shutdown.clone()));
    tokio::time::sleep(Duration::from_millis(300)).await;
    assert_eq!(count(&cdb, "SELECT COUNT(*) AS n FROM applied").await, 0);

    let listener = server::bind(&addr.to_string()).await.unwrap();
    let routes = Routes::new(log.grpc_service(shutdown.clone()));
    let server_settings = settings.clone();
    let server_shutdown = shutdown.clone();
    let server = tokio::spawn(async move {
        let options = ServeOptions::new("producer", vec![], &server_settings);
        server::serve(listener, routes, options, server_shutdown).await
    });
    let deadline = tokio::time::Instant::now() + Duration::from_secs(20);
    while count(&cdb, "SELECT COUNT(*) AS n FROM applied").await < 5 {
        assert!(
            tokio::time::Instant::now() < deadline,
            "consumer did not catch up"
        );
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
    assert_eq!(
        count(&cdb, "SELECT COUNT(*) AS n FROM event_dead_letter").await,
        1
    );
    assert_eq!(
        count(
            &cdb,
            "SELECT position AS n FROM event_cursor WHERE source = 'producer'"
        )
        .await,
        log.head().await.unwrap()
    );
    shutdown.cancel();
    consumer.await.unwrap();
    server.await.unwrap().unwrap();
}

/// An event whose handler always fails in the database with an error that is not transient (here
/// a primary key the consumer's database already holds) is tried
/// `events.dead_letter_after_attempts` times, then dead-lettered with its payload and error, and
/// the events after it are applied. Over `DeadLetters` it is listed, refused while it still
/// fails, replayed once it has been mended, and refused a second replay.
#[tokio::test]
async fn a_poison_event_is_dead_lettered_after_its_attempts_and_replayed_once_mended() {
    let mut settings = settings();
    settings.events.dead_letter_after_attempts = 3;
    let (_producer_db, db) = producer_database("events_poison_producer", &settings).await;
    let shutdown = CancellationToken::new();
    let log = EventLog::start(db.clone(), settings.events.clone(), shutdown.clone());
    append_leads(&db, &["a", "stuck", "b", "c"]).await;
    let listener = server::bind("127.0.0.1:0").await.unwrap();
    let endpoint = format!("http://{}", listener.local_addr().unwrap());
    let producer = serve_log(&log, &settings, listener, shutdown.clone());

    let (_consumer_db, cdb) = consumer_database("events_poison_consumer", &settings).await;
    // The row that makes "stuck" fail with a unique violation every time it is applied.
    cdb.execute_unprepared("INSERT INTO applied (lead_id, position) VALUES ('stuck', 0)")
        .await
        .unwrap();
    let consumer = Consumer::new(
        "producer",
        endpoint,
        cdb.clone(),
        RecordApplied,
        settings.events.clone(),
        None,
        access(&settings),
    );
    let replayers = std::collections::HashMap::from([consumer.replayer()]);
    let consumer = tokio::spawn(consumer.run(shutdown.clone()));
    let listener = server::bind("127.0.0.1:0").await.unwrap();
    let letters_endpoint = format!("http://{}", listener.local_addr().unwrap());
    let routes = Routes::new(DeadLetterApi::server(cdb.clone(), replayers, None));
    let (server_settings, server_shutdown) = (settings.clone(), shutdown.clone());
    let letters_server = tokio::spawn(async move {
        let options = ServeOptions::new("consumer", vec![], &server_settings);
        server::serve(listener, routes, options, server_shutdown).await
    });

    let deadline = tokio::time::Instant::now() + Duration::from_secs(20);
    while count(
        &cdb,
        "SELECT COUNT(*) AS n FROM applied WHERE lead_id IN ('b', 'c')",
    )
    .await
        < 2
    {
        assert!(
            tokio::time::Instant::now() < deadline,
            "the events after the poison one were never applied"
        );
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
    let token =
        baton_shared::testing::token("service:ops", "*", &[baton_shared::auth::Role::Service]);
    let mut letters = DeadLettersClient::new(
        baton_shared::testing::channel_with(&letters_endpoint, &token).await,
    );
    let listed = letters
        .list_dead_letters(ListDeadLettersRequest::default())
        .await
        .unwrap()
        .into_inner()
        .dead_letters;
    assert_eq!(listed.len(), 1, "{listed:?}");
    let letter = &listed[0];
    assert_eq!(
        (letter.source.as_str(), letter.position, letter.attempts),
        ("producer", 2, 3)
    );
    assert!(
        letter.error.to_lowercase().contains("unique"),
        "the database's error is kept: {}",
        letter.error
    );
    let kept = letter.event.as_ref().expect("the event is kept");
    assert_eq!(
        decode::<LeadCaptured>(kept).unwrap().unwrap().lead_id,
        "stuck"
    );

    let still_failing = letters
        .replay_dead_letter(ReplayDeadLetterRequest { id: letter.id })
        .await
        .unwrap_err();
    assert_eq!(still_failing.code(), tonic::Code::FailedPrecondition);
    cdb.execute_unprepared("DELETE FROM applied WHERE lead_id = 'stuck'")
        .await
        .unwrap();
    let replayed = letters
        .replay_dead_letter(ReplayDeadLetterRequest { id: letter.id })
        .await
        .unwrap()
        .into_inner()
        .dead_letter
        .unwrap();
    assert!(replayed.replayed_at.is_some());
    assert_eq!(
        count(
            &cdb,
            "SELECT position AS n FROM applied WHERE lead_id = 'stuck'"
        )
        .await,
        2,
        "the replay applied the event"
    );
    let again = letters
        .replay_dead_letter(ReplayDeadLetterRequest { id: letter.id })
        .await
        .unwrap_err();
    assert_eq!(again.code(), tonic::Code::FailedPrecondition);
    let unknown = letters
        .replay_dead_letter(ReplayDeadLetterRequest { id: 999 })
        .await
        .unwrap_err();
    assert_eq!(unknown.code(), tonic::Code::NotFound);
    let waiting = letters
        .list_dead_letters(ListDeadLettersRequest::default())
        .await
        .unwrap()
        .into_inner()
        .dead_letters;
    assert!(waiting.is_empty(), "a replayed letter no longer waits");
    let all = letters
        .list_dead_letters(ListDeadLettersRequest {
            include_replayed: true,
            ..Default::default()
        })
        .await
        .unwrap()
        .into_inner()
        .dead_letters;
    assert_eq!(all.len(), 1);
    let user = baton_shared::testing::token("u1", "t1", &[baton_shared::auth::Role::Admin]);
    let mut as_user =
        DeadLettersClient::new(baton_shared::testing::channel_with(&letters_endpoint, &user).await);
    let refused = as_user
        .list_dead_letters(ListDeadLettersRequest::default())
        .await
        .unwrap_err();
    assert_eq!(refused.code(), tonic::Code::PermissionDenied);
    shutdown.cancel();
    consumer.await.unwrap();
    producer.await.unwrap().unwrap();
    letters_server.await.unwrap().unwrap();
}

/// Appends one LeadCaptured per id to `db`'s log.
async fn append_leads(db: &DatabaseConnection, ids: &[&str]) {
    let tenant = TenantId::new("t1");
    for id in ids {
        let txn = db.begin().await.unwrap();
        let event = LeadCaptured {
            lead_id: (*id).into(),
            ..Default::default()
        };
        EventLog::append(&txn, &tenant, id, &event).await.unwrap();
        txn.commit().await.unwrap();
    }
}

/// Serves `log` on `listener` until `stop`.
fn serve_log(
    log: &EventLog,
    settings: &Settings,
    listener: tokio::net::TcpListener,
    stop: CancellationToken,
) -> tokio::task::JoinHandle<Result<(), baton_shared::BootError>> {
    let routes = Routes::new(log.grpc_service(stop.clone()));
    let settings = settings.clone();
    tokio::spawn(async move {
        let options = ServeOptions::new("producer", vec![], &settings);
        server::serve(listener, routes, options, stop).await
    })
}

/// A consumer of `endpoint` into `cdb` whose health is served over grpc.health.v1: the task, and
/// the endpoint of its health.
async fn follow_with_health(
    endpoint: &str,
    cdb: &DatabaseConnection,
    settings: &Settings,
    stop: &CancellationToken,
) -> (tokio::task::JoinHandle<()>, String) {
    let health = tonic_health::server::HealthReporter::new();
    let consumer = Consumer::new(
        "producer",
        endpoint.to_owned(),
        cdb.clone(),
        RecordApplied,
        settings.events.clone(),
        None,
        access(settings),
    )
    .with_health(health.clone());
    let listener = server::bind("127.0.0.1:0").await.unwrap();
    let health_endpoint = format!("http://{}", listener.local_addr().unwrap());
    let mut options_settings = settings.clone();
    options_settings.auth.open_health = true;
    let stop_server = stop.clone();
    tokio::spawn(async move {
        let mut options = ServeOptions::new("consumer", vec![], &options_settings);
        options.health = health;
        let _ = server::serve(listener, Routes::default(), options, stop_server).await;
    });
    (tokio::spawn(consumer.run(stop.clone())), health_endpoint)
}

async fn consumer_health(endpoint: &str) -> i32 {
    let mut client = tonic_health::pb::health_client::HealthClient::new(
        baton_shared::testing::plain_channel(endpoint).await,
    );
    client
        .check(tonic_health::pb::HealthCheckRequest {
            service: "consumer:producer".into(),
        })
        .await
        .unwrap()
        .into_inner()
        .status
}

/// Waits until the consumer task ends on its own (it stopped), failing after 20 s.
async fn stops(consumer: tokio::task::JoinHandle<()>) {
    tokio::time::timeout(Duration::from_secs(20), consumer)
        .await
        .expect("the consumer stops instead of going on")
        .unwrap();
}

/// What the producer answers a subscription from the consumer's cursor (its refusal).
async fn refusal(endpoint: &str, cdb: &DatabaseConnection) -> tonic::Status {
    let cursor = baton_shared::events::consumer::cursor(cdb, "producer")
        .await
        .unwrap()
        .unwrap();
    connect(endpoint)
        .await
        .subscribe(SubscribeRequest {
            after_position: cursor.position,
            max_batch: 0,
            expected_epoch: cursor.epoch,
            after_event_id: cursor.last_event_id,
        })
        .await
        .map(|_| ())
        .expect_err("the producer refuses the cursor")
}

async fn applied(cdb: &DatabaseConnection) -> Vec<String> {
    let rows = cdb
        .query_all_raw(Statement::from_string(
            cdb.get_database_backend(),
            "SELECT lead_id FROM applied ORDER BY position",
        ))
        .await
        .unwrap();
    rows.iter()
        .map(|r| r.try_get::<String>("", "lead_id").unwrap())
        .collect()
}

async fn producer_database(label: &str, settings: &Settings) -> (TestDatabase, DatabaseConnection) {
    let producer_db = TestDatabase::new(label).await;
    let db = baton_shared::db::connect_and_migrate::<ProducerMigrator>(
        &producer_db.url,
        &settings.database,
    )
    .await
    .unwrap();
    (producer_db, db)
}

async fn consumer_database(label: &str, settings: &Settings) -> (TestDatabase, DatabaseConnection) {
    let consumer_db = TestDatabase::new(label).await;
    let cdb = baton_shared::db::connect_and_migrate::<ConsumerMigrator>(
        &consumer_db.url,
        &settings.database,
    )
    .await
    .unwrap();
    cdb.execute_unprepared(
        "CREATE TABLE applied (lead_id VARCHAR(64) PRIMARY KEY, position BIGINT NOT NULL)",
    )
    .await
    .unwrap();
    (consumer_db, cdb)
}

/// The producer's database is replaced by another (reset, or a wrong one restored) on the same
/// address: its log has another epoch, and the consumer stops with NOT_SERVING instead of going
/// on from its old position in a log that is not the one it followed.
#[tokio::test]
async fn a_consumer_stops_when_its_producer_log_is_replaced() {
    let settings = settings();
    let (_first_db, first) = producer_database("events_epoch_first", &settings).await;
    let (_second_db, second) = producer_database("events_epoch_second", &settings).await;
    let shutdown = CancellationToken::new();
    append_leads(&first, &["a1", "a2", "a3"]).await;
    append_leads(&second, &["b1", "b2", "b3", "b4", "b5"]).await;
    let first_log = EventLog::start(first, settings.events.clone(), shutdown.clone());
    let second_log = EventLog::start(second, settings.events.clone(), shutdown.clone());
    assert_ne!(
        first_log.epoch().await.unwrap(),
        second_log.epoch().await.unwrap()
    );

    let listener = server::bind("127.0.0.1:0").await.unwrap();
    let addr = listener.local_addr().unwrap();
    let endpoint = format!("http://{addr}");
    let first_stop = CancellationToken::new();
    let first_server = serve_log(&first_log, &settings, listener, first_stop.clone());
    let (_consumer_db, cdb) = consumer_database("events_epoch_consumer", &settings).await;
    let (consumer, health) = follow_with_health(&endpoint, &cdb, &settings, &shutdown).await;
    let deadline = tokio::time::Instant::now() + Duration::from_secs(20);
    while applied(&cdb).await.len() < 3 {
        assert!(
            tokio::time::Instant::now() < deadline,
            "first log not applied"
        );
        tokio::time::sleep(Duration::from_millis(20)).await;
    }
    assert_eq!(
        consumer_health(&health).await,
        1,
        "SERVING while it follows"
    );

    first_stop.cancel();
    first_server.await.unwrap().unwrap();
    let listener = server::bind(&addr.to_string()).await.unwrap();
    let second_server = serve_log(&second_log, &settings, listener, shutdown.clone());
    stops(consumer).await;
    assert_eq!(
        applied(&cdb).await,
        ["a1", "a2", "a3"],
        "nothing of the other log"
    );
    assert_eq!(
        consumer_health(&health).await,
        2,
        "NOT_SERVING once stopped"
    );
    let refused = refusal(&endpoint, &cdb).await;
    assert_eq!(refused.code(), tonic::Code::FailedPrecondition);
    assert!(refused.message().contains("log_epoch"), "{refused:?}");
    shutdown.cancel();
    second_server.await.unwrap().unwrap();
}

/// The producer's database is restored from an older copy (same epoch, fewer events): the
/// consumer's position is beyond the log's end, and it stops. Then the restored log is written
/// again, so the consumer's position exists but holds another event: it stops again.
#[tokio::test]
async fn a_consumer_stops_when_its_producer_log_is_restored_from_an_older_copy() {
    let settings = settings();
    let (_producer_db, db) = producer_database("events_restore_producer", &settings).await;
    let shutdown = CancellationToken::new();
    append_leads(&db, &["e1", "e2", "e3", "e4", "e5"]).await;
    let log = EventLog::start(db.clone(), settings.events.clone(), shutdown.clone());
    let listener = server::bind("127.0.0.1:0").await.unwrap();
    let endpoint = format!("http://{}", listener.local_addr().unwrap());
    let producer = serve_log(&log, &settings, listener, shutdown.clone());
    let (_consumer_db, cdb) = consumer_database("events_restore_consumer", &settings).await;
    let run = CancellationToken::new();
    let (consumer, _) = follow_with_health(&endpoint, &cdb, &settings, &run).await;
    let deadline = tokio::time::Instant::now() + Duration::from_secs(20);
    while applied(&cdb).await.len() < 5 {
        assert!(tokio::time::Instant::now() < deadline, "log not applied");
        tokio::time::sleep(Duration::from_millis(20)).await;
    }
    run.cancel();
    consumer.await.unwrap();

    // "Restore" the copy taken after e3: the last two events are gone, and so is the sequence
    // that drew their positions.
    let postgres = db.get_database_backend() == sea_orm::DbBackend::Postgres;
    db.execute_unprepared("DELETE FROM event_log WHERE position > 3")
        .await
        .unwrap();
    db.execute_unprepared(if postgres {
        "SELECT setval(pg_get_serial_sequence('event_log', 'position'), 3)"
    } else {
        "UPDATE sqlite_sequence SET seq = 3 WHERE name = 'event_log'"
    })
    .await
    .unwrap();
    let refused = refusal(&endpoint, &cdb).await;
    assert!(refused.message().contains("position_in_log"), "{refused:?}");
    let stop = CancellationToken::new();
    let (consumer, health) = follow_with_health(&endpoint, &cdb, &settings, &stop).await;
    stops(consumer).await;
    assert_eq!(
        consumer_health(&health).await,
        2,
        "NOT_SERVING once stopped"
    );

    // Written again after the restore: positions 4 to 6 hold other events than e4 and e5.
    append_leads(&db, &["r4", "r5", "r6"]).await;
    log.notify_committed();
    let deadline = tokio::time::Instant::now() + Duration::from_secs(20);
    while log.head().await.unwrap() < 6 {
        assert!(
            tokio::time::Instant::now() < deadline,
            "the new events are not relayed"
        );
        tokio::time::sleep(Duration::from_millis(20)).await;
    }
    let refused = refusal(&endpoint, &cdb).await;
    assert!(
        refused.message().contains("event_at_position"),
        "{refused:?}"
    );
    let (consumer, health) = follow_with_health(&endpoint, &cdb, &settings, &stop).await;
    stops(consumer).await;
    assert_eq!(consumer_health(&health).await, 2);
    assert_eq!(
        applied(&cdb).await,
        ["e1", "e2", "e3", "e4", "e5"],
        "nothing skipped or mixed in"
    );
    stop.cancel();
    shutdown.cancel();
    producer.await.unwrap().unwrap();
}

/// Subscriptions are bounded: per client connection and in all, one more is RESOURCE_EXHAUSTED,
/// and a place comes back when a stream ends.
#[tokio::test]
async fn subscriptions_are_bounded_per_connection_and_in_all() {
    let mut settings = settings();
    settings.events.max_streams = 2;
    settings.events.max_streams_per_connection = 1;
    let (_producer_db, db) = producer_database("events_stream_limits", &settings).await;
    let shutdown = CancellationToken::new();
    append_leads(&db, &["s1"]).await;
    let log = EventLog::start(db, settings.events.clone(), shutdown.clone());
    let listener = server::bind("127.0.0.1:0").await.unwrap();
    let endpoint = format!("http://{}", listener.local_addr().unwrap());
    let producer = serve_log(&log, &settings, listener, shutdown.clone());
    let open = |mut client: EventLogClient<baton_shared::peer::AuthChannel>| async move {
        client
            .subscribe(SubscribeRequest::default())
            .await
            .map(tonic::Response::into_inner)
    };
    let first_connection = connect(&endpoint).await;
    let first = open(first_connection.clone()).await.expect("first stream");
    let same_connection = open(first_connection)
        .await
        .expect_err("one per connection");
    assert_eq!(same_connection.code(), tonic::Code::ResourceExhausted);
    assert!(
        same_connection
            .message()
            .contains("max_streams_per_connection"),
        "{same_connection:?}"
    );
    let _second = open(connect(&endpoint).await)
        .await
        .expect("second connection");
    let third = open(connect(&endpoint).await)
        .await
        .expect_err("two in all");
    assert_eq!(third.code(), tonic::Code::ResourceExhausted);
    assert!(third.message().contains("max_streams"), "{third:?}");
    drop(first);
    let deadline = tokio::time::Instant::now() + Duration::from_secs(10);
    loop {
        match open(connect(&endpoint).await).await {
            Ok(_) => break,
            Err(s) => {
                assert_eq!(s.code(), tonic::Code::ResourceExhausted);
                assert!(
                    tokio::time::Instant::now() < deadline,
                    "the ended stream's place never came back"
                );
                tokio::time::sleep(Duration::from_millis(50)).await;
            }
        }
    }
    shutdown.cancel();
    producer.await.unwrap().unwrap();
}

/// A service's access to its peers under `settings` (its token signed with the test key).
fn access(settings: &Settings) -> baton_shared::peer::PeerAccess {
    baton_shared::peer::PeerAccess::from_settings("consumer", settings).unwrap()
}

/// A subscriber with a service token for every tenant.
async fn connect(endpoint: &str) -> EventLogClient<baton_shared::peer::AuthChannel> {
    let token =
        baton_shared::testing::token("service:test", "*", &[baton_shared::auth::Role::Service]);
    EventLogClient::new(baton_shared::testing::channel_with(endpoint, &token).await)
}

async fn count(db: &DatabaseConnection, sql: &str) -> i64 {
    let row = db
        .query_one_raw(Statement::from_string(db.get_database_backend(), sql))
        .await
        .unwrap();
    row.map_or(0, |r| r.try_get::<i64>("", "n").unwrap())
}
