//! The metrics an operator alerts on, scraped over HTTP from the suite's Prometheus endpoint while
//! the suite works: RPC durations by method and status, consumer lag while qualification catches
//! up after a restart, a dead letter, an open SLA timer, nurture's scheduler backlog, database
//! pools, and on PostgreSQL the outbox relay (latency, and the depth while the relay is held up);
//! then readiness while a database is taken away.
//! (Its own test binary: the meter provider is process-wide.)

use std::time::{Duration, Instant};

use baton_e2e::{
    TestSuite, lead,
    sales::{approve_contract, ready_lead, sales_floor},
};
use baton_proto::{
    capture::v1::{GetLeadRequest, capture_service_client::CaptureServiceClient},
    nurture::v1::{ActivateSequenceRequest, ListSequencesRequest},
};
use baton_shared::{ServiceName, peer::AuthChannel, testing::execute};

const PATIENCE: Duration = Duration::from_secs(60);

/// The samples of metric `name` in a Prometheus text exposition: (labels, value).
fn samples(text: &str, name: &str) -> Vec<(String, f64)> {
    text.lines()
        .filter(|l| !l.starts_with('#'))
        .filter_map(|l| {
            let (series, value) = l.rsplit_once(' ')?;
            let (metric, labels) = match series.split_once('{') {
                Some((m, rest)) => (m, rest.trim_end_matches('}')),
                None => (series, ""),
            };
            if metric != name {
                return None;
            }
            Some((labels.to_owned(), value.parse().ok()?))
        })
        .collect()
}

async fn scrape(url: &str) -> String {
    reqwest::get(url)
        .await
        .expect("the metrics endpoint answers")
        .text()
        .await
        .expect("a body")
}

/// Scrapes until `check` finds what it wants in the exposition, or panics with the last one.
async fn scrape_until(url: &str, what: &str, check: impl Fn(&str) -> bool) -> String {
    let deadline = Instant::now() + PATIENCE;
    loop {
        let text = scrape(url).await;
        if check(&text) {
            return text;
        }
        if Instant::now() > deadline {
            panic!("no {what} in:\n{text}");
        }
        tokio::time::sleep(Duration::from_millis(5)).await;
    }
}

fn any_positive(text: &str, name: &str, labels: &[&str]) -> bool {
    samples(text, name)
        .iter()
        .any(|(l, v)| *v > 0.0 && labels.iter().all(|want| l.contains(want)))
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn a_scrape_shows_every_metric_an_operator_alerts_on() {
    let mut suite = TestSuite::start_with(|s| {
        s.telemetry.metrics_listen = "127.0.0.1:0".into();
        s.telemetry.sample_interval_ms = 100;
        // Small pages, so a consumer catching up applies many batches and reports its lag.
        s.events.batch_size = 5;
        s.events.dead_letter_after_attempts = 1;
        // The scheduler runs rarely, so enrolments due now wait for it (its backlog).
        s.delivery.scheduler_interval_ms = 600_000;
    })
    .await;
    let addr = suite.suite.metrics_addr().expect("metrics are served");
    let url = format!("http://{addr}/metrics");

    // RPCs: one that works, one a caller gets wrong.
    let mut capture = suite.capture().await;
    let nurture = suite.nurture().await;
    nurture
        .clone()
        .list_sequences(ListSequencesRequest::default())
        .await
        .unwrap();
    let refused = capture
        .get_lead(GetLeadRequest {
            lead_id: "no-such-lead".into(),
        })
        .await
        .unwrap_err();
    assert_eq!(refused.code(), tonic::Code::NotFound);
    nurture
        .clone()
        .activate_sequence(ActivateSequenceRequest {
            key: "welcome".into(),
        })
        .await
        .unwrap();

    // A dead letter: nurture's database refuses one lead's replica row.
    let nurture_db = suite.database_url(ServiceName::Nurture);
    let refuse = if nurture_db.starts_with("postgres") {
        "CREATE FUNCTION refuse_metrics() RETURNS trigger AS $$ BEGIN \
           IF NEW.email LIKE 'stuck%' THEN RAISE EXCEPTION 'refused by the test'; END IF; \
           RETURN NEW; END $$ LANGUAGE plpgsql; \
         CREATE TRIGGER refuse_metrics BEFORE INSERT OR UPDATE ON nurture_lead \
         FOR EACH ROW EXECUTE FUNCTION refuse_metrics();"
    } else {
        "CREATE TRIGGER refuse_metrics BEFORE UPDATE ON nurture_lead \
         WHEN NEW.email LIKE 'stuck%' BEGIN SELECT RAISE(ABORT, 'refused by the test'); END;"
    };
    execute(&nurture_db, refuse).await;
    let mut stuck = lead(9_999);
    stuck.email = "stuck@example.co.jp".into();
    capture.capture_lead(stuck).await.unwrap();

    // An open SLA timer: an MQL assigned under a contract gets its response timer.
    let mut contracts = suite.contracts().await;
    let mut d = suite.distribution().await;
    let terms = baton_shared::contract::example_terms(
        "is-tokyo",
        "fs-tokyo",
        "is-lead@example.co.jp",
        "fs-lead@example.co.jp",
    );
    approve_contract(&mut contracts, "metrics", terms).await;
    sales_floor(&mut d, "is-tokyo", "fs-tokyo", 1).await;
    ready_lead(&suite, 1, lead(1)).await;

    // Consumer lag: qualification is down while 200 leads come in, then catches up in pages of 5.
    suite
        .suite
        .stop_service(ServiceName::Qualification)
        .await
        .unwrap();
    for n in 100..300 {
        capture.capture_lead(lead(n)).await.unwrap();
    }
    suite
        .suite
        .start_service(ServiceName::Qualification)
        .await
        .unwrap();
    let lag = ["service=\"qualification\"", "source=\"capture\""];
    let behind = scrape_until(&url, "consumer lag", |t| {
        any_positive(t, "baton_consumer_lag", &lag)
            && any_positive(t, "baton_consumer_lag_time_seconds", &lag)
    })
    .await;
    assert!(any_positive(&behind, "baton_consumer_lag", &lag));

    let text = scrape_until(&url, "every metric", |t| {
        any_positive(
            t,
            "baton_events_dead_letters_total",
            &["service=\"nurture\""],
        ) && any_positive(t, "baton_sla_timers", &["state=\"due\""])
            && any_positive(t, "baton_scheduler_backlog", &["service=\"nurture\""])
    })
    .await;
    let rpc = "rpc_server_duration_milliseconds_count";
    assert!(
        any_positive(
            &text,
            rpc,
            &[
                "rpc_method=\"GetLead\"",
                "rpc_service=\"baton.capture.v1.CaptureService\"",
                "rpc_grpc_status_code=\"5\"",
            ]
        ),
        "the refused GetLead, NOT_FOUND = 5: {:?}",
        samples(&text, rpc)
    );
    assert!(any_positive(
        &text,
        rpc,
        &["rpc_method=\"CaptureLead\"", "rpc_grpc_status_code=\"0\""]
    ));
    for service in ServiceName::ALL {
        let who = format!("service=\"{}\"", service.as_str());
        assert!(
            any_positive(&text, "db_client_connections_max", &[&who]),
            "{who}: {:?}",
            samples(&text, "db_client_connections_max")
        );
        assert!(
            !samples(&text, "db_client_connections_usage")
                .iter()
                .filter(|(l, _)| l.contains(&who))
                .collect::<Vec<_>>()
                .is_empty()
        );
    }
    if nurture_db.starts_with("postgres") {
        assert!(
            any_positive(
                &text,
                "baton_events_relay_latency_milliseconds_count",
                &["service=\"capture\""]
            ),
            "{:?}",
            samples(&text, "baton_events_relay_latency_milliseconds_count")
        );
        outbox_depth_shows_a_stalled_relay(&suite, &url, &mut capture).await;
    }
    readiness_follows_the_database(&suite, &url).await;
    suite.stop().await;
}

/// On PostgreSQL a capture commits to `event_outbox` and the relay moves it into `event_log`:
/// while the test holds a lock on capture's `event_log` the relay waits, the captures pile up in
/// the outbox, and its depth shows them; once the lock goes the relay empties it.
async fn outbox_depth_shows_a_stalled_relay(
    suite: &TestSuite,
    url: &str,
    capture: &mut CaptureServiceClient<AuthChannel>,
) {
    use sea_orm::{ConnectionTrait, TransactionTrait};
    let capture_db = sea_orm::Database::connect(suite.database_url(ServiceName::Capture))
        .await
        .unwrap();
    let lock = capture_db.begin().await.unwrap();
    lock.execute_unprepared("LOCK TABLE event_log IN EXCLUSIVE MODE")
        .await
        .unwrap();
    for n in 400..405 {
        capture.capture_lead(lead(n)).await.unwrap();
    }
    let capture_only = ["service=\"capture\""];
    scrape_until(url, "outbox depth", |t| {
        samples(t, "baton_events_outbox_depth")
            .iter()
            .any(|(l, v)| *v >= 5.0 && l.contains(capture_only[0]))
    })
    .await;
    lock.rollback().await.unwrap();
    scrape_until(url, "the relay empties the outbox", |t| {
        samples(t, "baton_events_outbox_depth")
            .iter()
            .any(|(l, v)| *v == 0.0 && l.contains(capture_only[0]))
    })
    .await;
}

/// Readiness (grpc.health.v1 and `/readyz`) follows the service's database; liveness does not.
/// On PostgreSQL the test takes reporting's database away (no new connections, the open ones
/// ended) and gives it back; SQLite's file cannot be taken from an open connection, so there
/// the test checks that a working suite is ready and alive.
async fn readiness_follows_the_database(suite: &TestSuite, metrics: &str) {
    use tonic_health::pb::{HealthCheckRequest, health_check_response::ServingStatus};
    let base = metrics.trim_end_matches("/metrics");
    let status = |path: &'static str| {
        let url = format!("{base}{path}");
        async move {
            let r = reqwest::get(&url).await.expect("the probe answers");
            (r.status().as_u16(), r.text().await.unwrap_or_default())
        }
    };
    assert_eq!(status("/livez").await.0, 200);
    assert_eq!(status("/readyz").await.0, 200);
    let url = suite.database_url(ServiceName::Reporting);
    if !url.starts_with("postgres") {
        return;
    }
    let name = url
        .rsplit('/')
        .next()
        .unwrap()
        .split('?')
        .next()
        .unwrap()
        .to_owned();
    let admin = std::env::var("BATON_TEST_DATABASE_URL").unwrap();
    let mut health = tonic_health::pb::health_client::HealthClient::new(
        baton_shared::testing::plain_channel(&suite.suite.endpoint(ServiceName::Reporting)).await,
    );
    let reporting = |service: &str| HealthCheckRequest {
        service: service.into(),
    };
    execute(
        &admin,
        &format!(
            "ALTER DATABASE {name} ALLOW_CONNECTIONS false; \
             SELECT pg_terminate_backend(pid) FROM pg_stat_activity WHERE datname = '{name}'"
        ),
    )
    .await;
    let (code, body) = {
        let deadline = Instant::now() + PATIENCE;
        loop {
            let (code, body) = status("/readyz").await;
            if code == 503 || Instant::now() > deadline {
                break (code, body);
            }
            tokio::time::sleep(Duration::from_millis(50)).await;
        }
    };
    assert_eq!(code, 503, "{body}");
    assert!(body.contains("reporting"), "{body}");
    let checked = health
        .check(reporting("baton.reporting.v1.ReportingService"))
        .await
        .unwrap()
        .into_inner();
    assert_eq!(checked.status, ServingStatus::NotServing as i32);
    let alive = health
        .check(reporting("baton.liveness"))
        .await
        .unwrap()
        .into_inner();
    assert_eq!(alive.status, ServingStatus::Serving as i32);
    assert_eq!(status("/livez").await.0, 200);

    execute(
        &admin,
        &format!("ALTER DATABASE {name} ALLOW_CONNECTIONS true"),
    )
    .await;
    let deadline = Instant::now() + PATIENCE;
    while status("/readyz").await.0 != 200 {
        assert!(
            Instant::now() < deadline,
            "reporting never became ready again"
        );
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
    let checked = health
        .check(reporting("baton.reporting.v1.ReportingService"))
        .await
        .unwrap()
        .into_inner();
    assert_eq!(checked.status, ServingStatus::Serving as i32);
}
