//! Crash safety of the shipped binary: `baton up` (all five services in one process) is killed
//! with SIGKILL (no graceful shutdown, no flush) while captures and activities stream in through
//! group commit and every consumer applies batches, at a moment picked at random, three times over;
//! each time it restarts on the same databases (SQLite files, or PostgreSQL databases when
//! BATON_TEST_DATABASE_URL is set). Then:
//! - every acknowledged capture, sent again with its request id, answers the same lead, and every
//!   acknowledged activity, sent again with its key, is not recorded anew;
//! - every consumer's cursor reaches the end of capture's log (they converge);
//! - no event was applied twice: qualification's score of each lead is its fit score plus the
//!   points of exactly the activities capture holds for it, and nurture, distribution and
//!   reporting hold each lead once.

use std::{
    collections::HashMap,
    net::TcpListener,
    path::Path,
    process::{Child, Command, Stdio},
    sync::{Arc, Mutex},
    time::{Duration, Instant, SystemTime},
};

use baton_proto::{
    capture::v1::{
        ActivityKind, CaptureLeadRequest, LeadSource, PageKind, RecordActivityRequest,
        capture_service_client::CaptureServiceClient,
    },
    qualification::v1::{
        GetScoreRequest, qualification_service_client::QualificationServiceClient,
    },
};
use baton_shared::{
    ServiceName,
    peer::AuthChannel,
    testing::{TestDatabase, channel, count, eventually, test_secret_file},
};

/// Kill-and-restart rounds (each at a random moment).
const ROUNDS: usize = 3;
/// Concurrent callers of the load.
const CALLERS: usize = 16;
const PATIENCE: Duration = Duration::from_secs(90);

/// A free loopback port (bound and released; the suite binds it a moment later).
fn free_port() -> u16 {
    TcpListener::bind("127.0.0.1:0")
        .and_then(|l| l.local_addr())
        .map(|a| a.port())
        .expect("a free port")
}

/// A number from the clock's nanoseconds in [lo, hi): a random moment, without a dependency.
fn random_in(lo: u64, hi: u64) -> u64 {
    let nanos = SystemTime::now()
        .duration_since(SystemTime::UNIX_EPOCH)
        .map(|d| d.subsec_nanos() as u64)
        .unwrap_or(0);
    lo + nanos % (hi - lo)
}

/// The suite's process and where it listens.
struct Running {
    child: Child,
    endpoints: HashMap<ServiceName, String>,
}

/// Starts `baton up` in `dir` on `databases`, with fixed ports (the same across restarts).
fn start(dir: &Path, databases: &[(ServiceName, TestDatabase)], ports: &[u16]) -> Running {
    let mut cmd = Command::new(env!("CARGO_BIN_EXE_baton"));
    cmd.arg("up")
        .current_dir(dir)
        .env("BATON__AUTH__HS256_SECRET_FILE", test_secret_file())
        .env("BATON__EVENTS__POLL_INTERVAL_MS", "100")
        .env("BATON__EVENTS__RECONNECT_MIN_MS", "20")
        .env("BATON__EVENTS__RECONNECT_MAX_MS", "300")
        .env("BATON__TRACKING__LISTEN", format!("127.0.0.1:{}", ports[5]))
        .env("RUST_LOG", "warn")
        // Killed processes' connections are closed by PostgreSQL only once it notices: small
        // pools keep a restart's overlap well under its connection limit.
        .env("BATON__DATABASE__MAX_CONNECTIONS", "4")
        .stdin(Stdio::null())
        .stdout(Stdio::null());
    let log = std::fs::OpenOptions::new()
        .create(true)
        .append(true)
        .open(dir.join("baton.log"))
        .expect("log file");
    cmd.stderr(log);
    let mut endpoints = HashMap::new();
    for (i, (name, db)) in databases.iter().enumerate() {
        let section = name.as_str().to_uppercase();
        let endpoint = format!("http://127.0.0.1:{}", ports[i]);
        cmd.env(
            format!("BATON__{section}__LISTEN"),
            format!("127.0.0.1:{}", ports[i]),
        )
        .env(format!("BATON__{section}__ENDPOINT"), &endpoint)
        .env(format!("BATON__{section}__DATABASE_URL"), &db.url);
        endpoints.insert(*name, endpoint);
    }
    Running {
        child: cmd.spawn().expect("baton up starts"),
        endpoints,
    }
}

impl Running {
    async fn capture(&self) -> CaptureServiceClient<AuthChannel> {
        CaptureServiceClient::new(channel(&self.endpoints[&ServiceName::Capture]).await)
    }

    /// SIGKILL: no shutdown hook, no flush, no graceful drain.
    fn kill(mut self) {
        self.child.kill().expect("SIGKILL");
        self.child.wait().expect("reaped");
    }
}

impl Drop for Running {
    /// A test that fails half-way leaves no suite running (a reaped child's kill is a no-op).
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

fn capture_request(n: usize) -> CaptureLeadRequest {
    CaptureLeadRequest {
        request_id: format!("crash-{n}"),
        email: format!("crash{n}@example.com"),
        first_name: format!("Crash{n}"),
        last_name: "Test".into(),
        company_name: "Example KK".into(),
        source: Some(LeadSource {
            channel: "web_form".into(),
            campaign: "crash".into(),
            ..Default::default()
        }),
        ..Default::default()
    }
}

fn activity_request(lead_id: &str, n: usize) -> RecordActivityRequest {
    RecordActivityRequest {
        idempotency_key: format!("crash-activity-{n}"),
        lead_id: lead_id.into(),
        kind: ActivityKind::PageViewed as i32,
        page_kind: PageKind::Pricing as i32,
        url: "https://example.com/pricing".into(),
        ..Default::default()
    }
}

/// What the load had acknowledged: lead number → lead id, and the activities acknowledged.
#[derive(Default)]
struct Acked {
    leads: HashMap<usize, String>,
    activities: Vec<(usize, String)>,
}

/// Captures leads (one activity each) from `CALLERS` callers until a call fails (the process is
/// gone) or 2,000 leads past `from` were sent.
async fn load(endpoint: String, from: usize, acked: Arc<Mutex<Acked>>, next: Arc<Mutex<usize>>) {
    let mut tasks = Vec::new();
    for _ in 0..CALLERS {
        let mut client = CaptureServiceClient::new(channel(&endpoint).await);
        let (acked, next) = (acked.clone(), next.clone());
        tasks.push(tokio::spawn(async move {
            loop {
                let n = {
                    let mut next = next.lock().unwrap();
                    *next += 1;
                    *next
                };
                if n > from + 2_000 {
                    return;
                }
                let Ok(r) = client.capture_lead(capture_request(n)).await else {
                    return;
                };
                let id = r.into_inner().lead.expect("a lead").lead_id;
                acked.lock().unwrap().leads.insert(n, id.clone());
                if client
                    .record_activity(activity_request(&id, n))
                    .await
                    .is_err()
                {
                    return;
                }
                acked.lock().unwrap().activities.push((n, id));
            }
        }));
    }
    for t in tasks {
        t.await.ok();
    }
}

async fn ready(running: &Running) {
    let capture = running.capture().await;
    eventually("the suite answers", PATIENCE, || {
        let mut c = capture.clone();
        async move {
            c.list_leads(baton_proto::capture::v1::ListLeadsRequest::default())
                .await
                .ok()
        }
    })
    .await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn acknowledged_work_survives_sigkill_and_every_consumer_converges_without_applying_twice() {
    let dir = tempfile::tempdir().expect("a working directory");
    let mut databases = Vec::new();
    for name in ServiceName::ALL {
        databases.push((
            name,
            TestDatabase::new(&format!("crash_{}", name.as_str())).await,
        ));
    }
    let ports: Vec<u16> = (0..6).map(|_| free_port()).collect();
    let acked = Arc::new(Mutex::new(Acked::default()));
    let next = Arc::new(Mutex::new(0usize));
    for round in 0..ROUNDS {
        let running = start(dir.path(), &databases, &ports);
        ready(&running).await;
        let from = *next.lock().unwrap();
        let target = acked.lock().unwrap().leads.len() + random_in(100, 600) as usize;
        let loading = tokio::spawn(load(
            running.endpoints[&ServiceName::Capture].clone(),
            from,
            acked.clone(),
            next.clone(),
        ));
        let deadline = Instant::now() + PATIENCE;
        while acked.lock().unwrap().leads.len() < target && Instant::now() < deadline {
            tokio::time::sleep(Duration::from_millis(random_in(1, 10))).await;
        }
        running.kill();
        loading.await.ok();
        let a = acked.lock().unwrap();
        eprintln!(
            "round {round}: killed with {} captures and {} activities acknowledged",
            a.leads.len(),
            a.activities.len()
        );
    }

    let running = start(dir.path(), &databases, &ports);
    ready(&running).await;
    let mut capture = running.capture().await;
    let acked = std::mem::take(&mut *acked.lock().unwrap());
    for (n, id) in &acked.leads {
        let again = capture
            .capture_lead(capture_request(*n))
            .await
            .expect("replay");
        assert_eq!(&again.into_inner().lead.unwrap().lead_id, id, "capture {n}");
    }
    for (n, id) in &acked.activities {
        let again = capture
            .record_activity(activity_request(id, *n))
            .await
            .expect("replay")
            .into_inner();
        assert!(
            !again.created,
            "acknowledged activity {n} was recorded anew"
        );
    }

    // Every consumer reaches the end of capture's log.
    let url = |name: ServiceName| {
        databases
            .iter()
            .find(|(n, _)| *n == name)
            .map(|(_, d)| d.url.clone())
            .unwrap()
    };
    let head = count(
        &url(ServiceName::Capture),
        "SELECT MAX(position) AS n FROM event_log",
    )
    .await;
    for consumer in [
        ServiceName::Qualification,
        ServiceName::Distribution,
        ServiceName::Reporting,
        ServiceName::Nurture,
    ] {
        let db = url(consumer);
        eventually(
            &format!("{consumer} reaches capture's log head"),
            PATIENCE,
            || {
                let db = db.clone();
                async move {
                    let at = count(
                        &db,
                        "SELECT position AS n FROM event_cursor WHERE source = 'capture'",
                    )
                    .await;
                    (at >= head).then_some(())
                }
            },
        )
        .await;
    }

    // Each lead once everywhere, and each activity scored once.
    let leads = count(&url(ServiceName::Capture), "SELECT COUNT(*) AS n FROM lead").await;
    assert!(leads as usize >= acked.leads.len());
    for (name, sql) in [
        (
            ServiceName::Nurture,
            "SELECT COUNT(*) AS n FROM nurture_lead",
        ),
        (
            ServiceName::Qualification,
            "SELECT COUNT(*) AS n FROM lead_score",
        ),
        (
            ServiceName::Reporting,
            "SELECT COUNT(*) AS n FROM funnel_fact WHERE step = 'captured'",
        ),
    ] {
        assert_eq!(count(&url(name), sql).await, leads, "{name}: {sql}");
    }
    // Two control leads captured after the crashes: the fit score alone, and with one activity.
    let control = |n: usize| CaptureLeadRequest {
        request_id: format!("control-{n}"),
        email: format!("control{n}@example.com"),
        first_name: format!("Control{n}"),
        ..capture_request(n)
    };
    let bare = capture
        .capture_lead(control(1_000_001))
        .await
        .unwrap()
        .into_inner();
    let bare = bare.lead.unwrap().lead_id;
    let active = capture
        .capture_lead(control(1_000_002))
        .await
        .unwrap()
        .into_inner();
    let active = active.lead.unwrap().lead_id;
    capture
        .record_activity(activity_request(&active, 1_000_002))
        .await
        .unwrap();
    let q = QualificationServiceClient::new(
        channel(&running.endpoints[&ServiceName::Qualification]).await,
    );
    let score_of = |lead_id: String| {
        let mut q = q.clone();
        async move {
            q.get_score(GetScoreRequest { lead_id })
                .await
                .ok()
                .map(|s| s.into_inner().score)
        }
    };
    let fit = eventually("the bare control is scored", PATIENCE, || {
        score_of(bare.clone())
    })
    .await;
    let one = eventually("the control's activity is scored", PATIENCE, || {
        let s = score_of(active.clone());
        async move { s.await.filter(|s| *s != fit) }
    })
    .await;
    assert!(one > fit, "a pricing view scores: {fit} then {one}");
    let capture_db = url(ServiceName::Capture);
    let ids: Vec<String> = {
        let db = sea_orm::Database::connect(capture_db.as_str())
            .await
            .unwrap();
        use sea_orm::{ConnectionTrait, Statement};
        let rows = db
            .query_all_raw(Statement::from_string(
                db.get_database_backend(),
                "SELECT lead_id FROM lead ORDER BY lead_id",
            ))
            .await
            .unwrap();
        rows.iter()
            .map(|r| r.try_get("", "lead_id").unwrap())
            .collect()
    };
    for id in &ids {
        let activities = count(
            &capture_db,
            &format!("SELECT COUNT(*) AS n FROM activity WHERE lead_id = '{id}'"),
        )
        .await;
        let want = match activities {
            0 => fit,
            1 => one,
            n => panic!("lead {id} has {n} activities; the load records one"),
        };
        let score = eventually("a score", PATIENCE, || score_of(id.clone())).await;
        assert_eq!(score, want, "lead {id} with {activities} activities");
    }
    running.kill();
}
