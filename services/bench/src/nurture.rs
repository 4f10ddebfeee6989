//! Nurture's scheduler and tracking endpoint. The scheduler sends `mails` due steps into the file
//! sink and then to a local SMTP server (aiosmtpd: `pip install -r tests/requirements.txt`),
//! each beside the transport alone (lettre sending the same number of prebuilt mails at the same
//! concurrency: the ceiling). The tracking endpoint takes open and click hits from `concurrency`
//! HTTP clients, beside its own health route (the HTTP ceiling).

use std::{
    io::{BufRead, BufReader},
    path::PathBuf,
    process::{Child, Command, Stdio},
    sync::Arc,
    time::{Duration, Instant},
};

use baton::progress;
use baton_nurture::{
    delivery::mailer::Mailer,
    domain::token::{Claim, Signer, Target},
    store::{
        entities::{enrollment, lead},
        leads,
        sending::Outgoing,
    },
};
use baton_proto::nurture::v1::{self as pb, nurture_service_client::NurtureServiceClient};
use baton_shared::{
    ServiceName,
    settings::{DeliverySettings, MailTransport, SmtpSecurity},
    testing::{TEST_TENANT, TestDatabase, bind_ephemeral, channel, count, settings_with, spawn},
    time,
};
use futures::StreamExt;
use sea_orm::{ActiveValue::NotSet, Database, EntityTrait, Set};

use crate::measure::{Measurement, drive, drive_at_rate, report};

/// Requests pending at once in the open-loop tracking run (beyond it a hit counts as an error).
const OPEN_LOOP_IN_FLIGHT: usize = 1024;
/// Sends in flight at once in the transport-alone baseline (the scheduler's default).
const TRANSPORT_CONCURRENCY: usize = 16;

struct SmtpServer {
    port: u16,
    _dir: tempfile::TempDir,
    child: Child,
}

impl SmtpServer {
    fn start() -> anyhow::Result<SmtpServer> {
        let port = std::net::TcpListener::bind("127.0.0.1:0")?
            .local_addr()?
            .port();
        let dir = tempfile::tempdir()?;
        let script =
            PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("../nurture/tests/smtp_peer.py");
        let mut child = Command::new("python3")
            .arg(script)
            .arg(port.to_string())
            .arg(dir.path())
            .stdout(Stdio::piped())
            .spawn()?;
        let mut line = String::new();
        BufReader::new(child.stdout.take().expect("stdout")).read_line(&mut line)?;
        anyhow::ensure!(
            line.starts_with("ready"),
            "aiosmtpd did not start (pip install -r tests/requirements.txt): {line:?}"
        );
        Ok(SmtpServer {
            port,
            _dir: dir,
            child,
        })
    }
}

impl Drop for SmtpServer {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

/// What one transport measured: the scheduler's rate and the transport alone.
struct Sending {
    scheduler_per_second: f64,
    transport_per_second: f64,
}

fn sequence() -> pb::CreateSequenceRequest {
    pb::CreateSequenceRequest {
        key: "bench".into(),
        name: "bench".into(),
        definition: Some(pb::SequenceDefinition {
            steps: vec![pb::Step {
                id: "hello".into(),
                kind: Some(pb::step::Kind::SendEmail(pb::SendEmail {
                    subject: "Hello {{first_name|there}}".into(),
                    html_body: r#"<p>Hi {{first_name}}</p><a href="https://example.com/a">a</a><a href="https://example.com/b">b</a>"#.into(),
                    text_body: "Hi {{first_name}}".into(),
                    from_address: "bench@baton.example".into(),
                    ..Default::default()
                })),
            }],
            enrollment: None,
        }),
    }
}

/// `mails` opted-in leads in nurture's replica, each enrolled in `sequence_id` and due now.
async fn seed(url: &str, sequence_id: &str, mails: usize, round: usize) -> anyhow::Result<()> {
    let db = Database::connect(url).await?;
    let now = time::now();
    let bar = progress::counting(mails as u64, "seed enrolled leads");
    for chunk in (0..mails).collect::<Vec<_>>().chunks(500) {
        bar.inc(chunk.len() as u64);
        let leads = chunk.iter().map(|n| {
            let mut row = leads::new_row(TEST_TENANT, &format!("lead-{round}-{n}"));
            row.email = Set(format!("lead-{round}-{n}@example.com"));
            row.first_name = Set(format!("Lead{n}"));
            row.channel = Set("web_form".into());
            row.opted_in = Set(true);
            row.stage = Set(1);
            row
        });
        lead::Entity::insert_many(leads).exec(&db).await?;
        let enrolments = chunk.iter().map(|n| enrollment::ActiveModel {
            seq: NotSet,
            enrollment_id: Set(format!("enrolment-{round}-{n}")),
            tenant_id: Set(TEST_TENANT.into()),
            lead_id: Set(format!("lead-{round}-{n}")),
            sequence_id: Set(sequence_id.into()),
            sequence_key: Set("bench".into()),
            sequence_version: Set(1),
            state: Set(pb::EnrollmentState::Active as i32),
            next_step: Set(0),
            next_step_due_at: Set(Some(now)),
            wake_at: Set(None),
            waits_on_branch: Set(false),
            lease_until: Set(None),
            enrolled_at: Set(now),
            enrolled_by: Set("manual".into()),
            request_id: Set(None),
            exit_reason: Set(0),
            ended_at: Set(None),
            last_sent_touch_id: Set(None),
            last_sent_at: Set(None),
            attempts: Set(0),
            updated_at: Set(now),
        });
        enrollment::Entity::insert_many(enrolments)
            .exec(&db)
            .await?;
    }
    db.close().await?;
    Ok(())
}

/// What the tracking endpoint measured.
struct Tracking {
    /// Open pixels from `concurrency` clients, each waiting for its answer (closed loop).
    hits: Measurement,
    /// Open pixels offered at a fixed rate (open loop).
    at_rate: Measurement,
    /// Its /healthz on the same server, closed loop: the HTTP ceiling.
    health: Measurement,
    /// Hits written per second, from the first hit until the writer had them all.
    written: f64,
}

type Tracked = Option<Tracking>;

/// Nurture sending `mails` due steps through `delivery`, then (with `track`: clients, seconds)
/// the tracking endpoint hit with the opens of those mails, then the same transport alone.
async fn sending(
    delivery: DeliverySettings,
    mails: usize,
    track: Option<(usize, u64, u32)>,
) -> anyhow::Result<(Sending, Tracked)> {
    let capture_db = TestDatabase::new("bench_nurture_capture").await;
    let nurture_db = TestDatabase::new("bench_nurture").await;
    let mut settings = settings_with(&[
        (ServiceName::Capture, &capture_db),
        (ServiceName::Nurture, &nurture_db),
    ]);
    settings.delivery = DeliverySettings {
        outbox_dir: settings.delivery.outbox_dir.clone(),
        ..delivery.clone()
    };
    let tracking = tokio::net::TcpListener::bind("127.0.0.1:0").await?;
    settings.tracking.base_url = format!("http://{}", tracking.local_addr()?);
    let capture_listener = bind_ephemeral(&mut settings, ServiceName::Capture).await;
    let nurture_listener = bind_ephemeral(&mut settings, ServiceName::Nurture).await;
    let settings = Arc::new(settings);
    let capture = spawn(
        ServiceName::Capture,
        &settings,
        capture_listener,
        baton_capture::run,
    );
    let nurture = spawn(
        ServiceName::Nurture,
        &settings,
        nurture_listener,
        move |s, l, stop| baton_nurture::run_with(s, l, tracking, stop),
    );
    let mut n = NurtureServiceClient::new(channel(&nurture.endpoint).await);
    let mut s = n
        .get_nurture_settings(pb::GetNurtureSettingsRequest {})
        .await?
        .into_inner();
    s.quiet_start_hour = 0;
    s.quiet_end_hour = 0;
    s.cap_max_emails = 100;
    s.send_rate_per_second = 10_000;
    n.set_nurture_settings(pb::SetNurtureSettingsRequest {
        settings: Some(s),
        expected_version: 1,
    })
    .await?;
    let seq = n.create_sequence(sequence()).await?.into_inner();
    seed(&nurture_db.url, &seq.sequence_id, mails, 0).await?;
    let started = Instant::now();
    n.activate_sequence(pb::ActivateSequenceRequest {
        key: "bench".into(),
    })
    .await?;
    let sql = format!(
        "SELECT COUNT(*) AS n FROM touch WHERE kind = {}",
        pb::TouchKind::Sent as i32
    );
    let deadline = started + Duration::from_secs(600);
    let bar = progress::counting(mails as u64, "mails sent");
    loop {
        let sent = count(&nurture_db.url, &sql).await;
        bar.set_position(u64::try_from(sent).unwrap_or(0));
        if sent >= mails as i64 {
            break;
        }
        anyhow::ensure!(
            Instant::now() < deadline,
            "the mails were not all sent in time"
        );
        tokio::time::sleep(Duration::from_millis(20)).await;
    }
    bar.finish_and_clear();
    let scheduler = mails as f64 / started.elapsed().as_secs_f64();
    let tracked = match track {
        Some((concurrency, seconds, rate)) => {
            let sql = format!(
                "SELECT touch_id FROM touch WHERE kind = {}",
                pb::TouchKind::Sent as i32
            );
            let ids = touch_ids(&nurture_db.url, &sql).await?;
            let key = std::fs::read(&settings.tracking.key_file)?;
            let base = settings.tracking.base_url.clone();
            let url = nurture_db.url.clone();
            Some(
                track_hits(
                    &Signer::new(&key),
                    &base,
                    &ids,
                    (concurrency, seconds, rate),
                    &url,
                )
                .await?,
            )
        }
        None => None,
    };
    nurture.stop().await;
    capture.stop().await;
    let transport = transport_alone(&delivery, &settings.delivery.outbox_dir, mails).await?;
    Ok((
        Sending {
            scheduler_per_second: scheduler,
            transport_per_second: transport,
        },
        tracked,
    ))
}

async fn touch_ids(url: &str, sql: &str) -> anyhow::Result<Vec<String>> {
    use sea_orm::{ConnectionTrait, Statement};
    let db = Database::connect(url).await?;
    let rows = db
        .query_all_raw(Statement::from_string(
            db.get_database_backend(),
            sql.to_owned(),
        ))
        .await?;
    let ids = rows
        .iter()
        .filter_map(|r| r.try_get::<String>("", "touch_id").ok())
        .collect();
    db.close().await?;
    Ok(ids)
}

/// lettre alone: `mails` prebuilt mails through the same transport, TRANSPORT_CONCURRENCY at once.
async fn transport_alone(d: &DeliverySettings, dir: &str, mails: usize) -> anyhow::Result<f64> {
    let settings = DeliverySettings {
        outbox_dir: format!("{dir}-baseline"),
        ..d.clone()
    };
    let mailer = Arc::new(Mailer::from_settings(&settings)?);
    let out = |n: usize| Outgoing {
        tenant: TEST_TENANT.into(),
        touch_id: format!("t{n}"),
        message_id: format!("<t{n}@bench.baton>"),
        to: format!("lead-{n}@example.com"),
        from_address: "bench@baton.example".into(),
        from_name: String::new(),
        reply_to: String::new(),
        subject: format!("Hello Lead{n}"),
        html: "<p>Hi Lead</p><a href=\"http://127.0.0.1/t/c/x\">a</a>".into(),
        text: "Hi Lead".into(),
        unsubscribe_url: "http://127.0.0.1/t/u/x".into(),
        before: placeholder(),
        index: 0,
    };
    let started = Instant::now();
    let sent = futures::stream::iter(0..mails)
        .map(|n| {
            let (mailer, o) = (mailer.clone(), out(n));
            async move { mailer.send(&o).await }
        })
        .buffer_unordered(TRANSPORT_CONCURRENCY)
        .filter(|r| std::future::ready(*r == baton_nurture::store::sending::Delivery::Delivered))
        .count()
        .await;
    anyhow::ensure!(sent == mails, "the transport alone sent {sent} of {mails}");
    Ok(mails as f64 / started.elapsed().as_secs_f64())
}

fn placeholder() -> enrollment::Model {
    let now = time::now();
    enrollment::Model {
        seq: 0,
        enrollment_id: String::new(),
        tenant_id: String::new(),
        lead_id: String::new(),
        sequence_id: String::new(),
        sequence_key: String::new(),
        sequence_version: 1,
        state: 1,
        next_step: 0,
        next_step_due_at: None,
        wake_at: None,
        waits_on_branch: false,
        lease_until: None,
        enrolled_at: now,
        enrolled_by: String::new(),
        request_id: None,
        exit_reason: 0,
        ended_at: None,
        last_sent_touch_id: None,
        last_sent_at: None,
        attempts: 0,
        updated_at: now,
    }
}

/// The tracking endpoint under `concurrency` clients for `seconds`: opens of the sent mails
/// with a browser's agent (people's hits: each is a touch, the first per mail an activity for
/// capture, and a wake-up of its enrolment), beside /healthz on the same server.
async fn track_hits(
    signer: &Signer,
    base: &str,
    touch_ids: &[String],
    (concurrency, seconds, rate): (usize, u64, u32),
    db_url: &str,
) -> anyhow::Result<Tracking> {
    let urls: Arc<Vec<String>> = Arc::new(
        touch_ids
            .iter()
            .map(|t| {
                let token = signer.sign(&Claim {
                    tenant: TEST_TENANT.into(),
                    touch_id: t.clone(),
                    target: Target::Open,
                });
                format!("{base}/t/o/{token}.gif")
            })
            .collect(),
    );
    anyhow::ensure!(!urls.is_empty(), "no sent mails to open");
    let client = reqwest::Client::builder()
        .pool_max_idle_per_host(concurrency)
        .build()?;
    let duration = Duration::from_secs(seconds);
    let started = Instant::now();
    let hits = {
        let (client, urls) = (client.clone(), urls.clone());
        drive(concurrency, duration, move |n| {
            let (client, urls) = (client.clone(), urls.clone());
            async move {
                let url = &urls[n as usize % urls.len()];
                client
                    .get(url)
                    .header("user-agent", "Mozilla/5.0 (Macintosh) Safari/605.1.15")
                    .send()
                    .await
                    .is_ok_and(|r| r.status() == 200)
            }
        })
        .await
    };
    // The endpoint answers before a hit is written: wait until the writer has them all.
    let sql = format!(
        "SELECT COUNT(*) AS n FROM touch WHERE kind = {}",
        pb::TouchKind::Opened as i32
    );
    let deadline = Instant::now() + Duration::from_secs(600);
    while count(db_url, &sql).await < hits.calls as i64 {
        anyhow::ensure!(Instant::now() < deadline, "the tracking writer fell behind");
        tokio::time::sleep(Duration::from_millis(20)).await;
    }
    let written = hits.calls as f64 / started.elapsed().as_secs_f64();
    let at_rate = {
        let (client, urls) = (client.clone(), urls.clone());
        drive_at_rate(rate, duration, OPEN_LOOP_IN_FLIGHT, move |n| {
            let (client, urls) = (client.clone(), urls.clone());
            async move {
                let url = &urls[n as usize % urls.len()];
                client
                    .get(url)
                    .header("user-agent", "Mozilla/5.0 (Macintosh) Safari/605.1.15")
                    .send()
                    .await
                    .is_ok_and(|r| r.status() == 200)
            }
        })
        .await
    };
    let health = {
        let (client, url) = (client.clone(), format!("{base}/healthz"));
        drive(concurrency, duration, move |_| {
            let (client, url) = (client.clone(), url.clone());
            async move {
                client
                    .get(&url)
                    .send()
                    .await
                    .is_ok_and(|r| r.status() == 200)
            }
        })
        .await
    };
    Ok(Tracking {
        hits,
        at_rate,
        health,
        written,
    })
}

pub async fn print(
    mails: usize,
    concurrency: usize,
    seconds: u64,
    rate: u32,
) -> anyhow::Result<()> {
    let backend = if std::env::var("BATON_TEST_DATABASE_URL").is_ok_and(|u| !u.is_empty()) {
        "PostgreSQL"
    } else {
        "SQLite"
    };
    let base = baton_shared::Settings::defaults()?.delivery;
    println!(
        "nurture on {backend}: {mails} due one-step enrolments; scheduler batch {}, {} sends in flight",
        base.batch_size, base.concurrency
    );
    let file = DeliverySettings {
        transport: MailTransport::File,
        ..base.clone()
    };
    let (f, tracked) = sending(file, mails, Some((concurrency, seconds, rate))).await?;
    println!(
        "file sink   scheduler {:>8.0} mails/s   lettre file transport alone {:>8.0} mails/s   ratio {:.2}",
        f.scheduler_per_second,
        f.transport_per_second,
        f.scheduler_per_second / f.transport_per_second
    );
    let smtp_server = SmtpServer::start()?;
    let smtp = DeliverySettings {
        transport: MailTransport::Smtp,
        smtp_host: "127.0.0.1".into(),
        smtp_port: smtp_server.port,
        smtp_security: SmtpSecurity::None,
        ..base.clone()
    };
    let (s, _) = sending(smtp, mails, None).await?;
    println!(
        "SMTP        scheduler {:>8.0} mails/s   lettre SMTP to the same server alone {:>8.0} mails/s   ratio {:.2}",
        s.scheduler_per_second,
        s.transport_per_second,
        s.scheduler_per_second / s.transport_per_second
    );
    drop(smtp_server);
    let t = tracked.expect("measured with the file sink");
    println!(
        "{}",
        report(
            &format!("tracking: open pixel, {concurrency} clients"),
            &t.hits
        )
    );
    println!(
        "{}",
        report(
            &format!("tracking: open pixel at {rate}/s offered"),
            &t.at_rate
        )
    );
    println!("{}", report("tracking: /healthz (HTTP ceiling)", &t.health));
    println!(
        "tracking / ceiling {:.2}; hits written {:.0}/s (first hit until all were stored)",
        t.hits.per_second() / t.health.per_second(),
        t.written
    );
    Ok(())
}
