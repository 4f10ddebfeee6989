//! A marketing floor for nurture's tests: real capture, qualification and nurture over real
//! sockets, nurture's tracking endpoint over HTTP, and (when asked) a real SMTP server
//! (aiosmtpd, `pip install -r tests/requirements.txt`) that keeps what it receives.

// Each test crate that includes this module uses a part of it.
#![allow(dead_code)]

use std::{
    io::{BufRead, BufReader},
    path::PathBuf,
    process::{Child, Command, Stdio},
    sync::Arc,
    time::Duration,
};

use baton_proto::{
    capture::v1::{
        CaptureLeadRequest, Consent, LeadSource, capture_service_client::CaptureServiceClient,
    },
    nurture::v1::{
        self as pb, ListTouchesRequest, NurtureSettings, SetNurtureSettingsRequest, Touch,
        nurture_service_client::NurtureServiceClient,
    },
    qualification::v1::qualification_service_client::QualificationServiceClient,
};
use baton_shared::{
    ServiceName, Settings,
    peer::AuthChannel,
    settings::{MailTransport, SmtpSecurity},
    testing::{
        RunningService, TestDatabase, bind_ephemeral, channel, eventually, settings_with, spawn,
    },
};

pub const PATIENCE: Duration = Duration::from_secs(30);
pub const SENDER: &str = "news@baton.example";

/// A real SMTP server for the test, stopped when dropped.
pub struct SmtpPeer {
    pub port: u16,
    pub dir: tempfile::TempDir,
    child: Child,
}

/// Where aiosmtpd can be imported from: nowhere extra when Python has it (CI installs
/// tests/requirements.txt), else a private directory it is installed into once (pinned version),
/// so `cargo test --workspace` needs no step of its own on a fresh machine.
fn python_path() -> Option<PathBuf> {
    static PATH: std::sync::OnceLock<Option<PathBuf>> = std::sync::OnceLock::new();
    PATH.get_or_init(|| {
        let has = |path: Option<&PathBuf>| {
            let mut c = Command::new("python3");
            c.args(["-c", "import aiosmtpd"]);
            if let Some(p) = path {
                c.env("PYTHONPATH", p);
            }
            c.stderr(Stdio::null()).status().is_ok_and(|s| s.success())
        };
        if has(None) {
            return None;
        }
        let dir = std::env::temp_dir().join("baton-test-python-aiosmtpd-1.4.6");
        if !has(Some(&dir)) {
            let requirements =
                PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("../../tests/requirements.txt");
            let staging = dir.with_extension(format!("{}.tmp", std::process::id()));
            let ok = Command::new("python3")
                .args([
                    "-m",
                    "pip",
                    "install",
                    "--quiet",
                    "--disable-pip-version-check",
                ])
                .arg("--target")
                .arg(&staging)
                .arg("-r")
                .arg(&requirements)
                .status()
                .is_ok_and(|s| s.success());
            assert!(ok, "pip could not install {}", requirements.display());
            // Another test process may have won the race: either copy will do.
            if std::fs::rename(&staging, &dir).is_err() {
                let _ = std::fs::remove_dir_all(&staging);
            }
        }
        Some(dir)
    })
    .clone()
}

impl SmtpPeer {
    pub fn start() -> SmtpPeer {
        let port = std::net::TcpListener::bind("127.0.0.1:0")
            .and_then(|l| l.local_addr())
            .expect("a free port")
            .port();
        let dir = tempfile::tempdir().expect("temp dir");
        let script = PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("tests/smtp_peer.py");
        let mut command = Command::new("python3");
        if let Some(path) = python_path() {
            command.env("PYTHONPATH", path);
        }
        let mut child = command
            .arg(&script)
            .arg(port.to_string())
            .arg(dir.path())
            .stdout(Stdio::piped())
            .stderr(Stdio::inherit())
            .spawn()
            .expect("python3 runs");
        let mut line = String::new();
        BufReader::new(child.stdout.take().expect("stdout"))
            .read_line(&mut line)
            .expect("the SMTP peer answers");
        assert!(
            line.starts_with("ready"),
            "the SMTP peer did not start (is aiosmtpd installed? pip install -r tests/requirements.txt): {line:?}"
        );
        SmtpPeer { port, dir, child }
    }

    /// Every message received so far, oldest first.
    pub fn messages(&self) -> Vec<String> {
        let mut files: Vec<PathBuf> = std::fs::read_dir(self.dir.path())
            .map(|d| d.filter_map(|e| e.ok().map(|e| e.path())).collect())
            .unwrap_or_default();
        files.retain(|p| p.extension().is_some_and(|e| e == "eml"));
        files.sort();
        files
            .iter()
            .filter_map(|p| std::fs::read_to_string(p).ok())
            .collect()
    }

    /// Waits until `n` messages have arrived and returns them.
    pub async fn wait_for(&self, n: usize) -> Vec<String> {
        eventually(
            &format!("{n} mails at the SMTP server"),
            PATIENCE,
            || async {
                let m = self.messages();
                (m.len() >= n).then_some(m)
            },
        )
        .await
    }
}

impl Drop for SmtpPeer {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

pub struct Floor {
    pub settings: Arc<Settings>,
    pub capture: CaptureServiceClient<AuthChannel>,
    pub nurture: NurtureServiceClient<AuthChannel>,
    pub qualification: QualificationServiceClient<AuthChannel>,
    /// The tracking endpoint, e.g. http://127.0.0.1:40123.
    pub tracking: String,
    pub http: reqwest::Client,
    pub nurture_db: TestDatabase,
    pub smtp: Option<SmtpPeer>,
    services: Vec<RunningService>,
    _dbs: Vec<TestDatabase>,
}

/// How the floor delivers mail.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Sink {
    Smtp,
    File,
}

impl Floor {
    pub async fn start(sink: Sink) -> Floor {
        let capture_db = TestDatabase::new("capture").await;
        let qualification_db = TestDatabase::new("qualification").await;
        let nurture_db = TestDatabase::new("nurture").await;
        let mut settings = settings_with(&[
            (ServiceName::Capture, &capture_db),
            (ServiceName::Qualification, &qualification_db),
            (ServiceName::Nurture, &nurture_db),
        ]);
        let smtp = (sink == Sink::Smtp).then(SmtpPeer::start);
        if let Some(peer) = &smtp {
            settings.delivery.transport = MailTransport::Smtp;
            settings.delivery.smtp_host = "127.0.0.1".into();
            settings.delivery.smtp_port = peer.port;
            settings.delivery.smtp_security = SmtpSecurity::None;
            settings.delivery.smtp_timeout_seconds = 5;
        }
        let tracking_listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
        let tracking = format!("http://{}", tracking_listener.local_addr().unwrap());
        settings.tracking.base_url = tracking.clone();
        let capture_listener = bind_ephemeral(&mut settings, ServiceName::Capture).await;
        let qualification_listener =
            bind_ephemeral(&mut settings, ServiceName::Qualification).await;
        let nurture_listener = bind_ephemeral(&mut settings, ServiceName::Nurture).await;
        let settings = Arc::new(settings);
        let services = vec![
            spawn(
                ServiceName::Capture,
                &settings,
                capture_listener,
                baton_capture::run,
            ),
            spawn(
                ServiceName::Qualification,
                &settings,
                qualification_listener,
                baton_qualification::run,
            ),
            spawn(
                ServiceName::Nurture,
                &settings,
                nurture_listener,
                move |s, l, stop| baton_nurture::run_with(s, l, tracking_listener, stop),
            ),
        ];
        let capture = CaptureServiceClient::new(channel(&services[0].endpoint).await);
        let qualification = QualificationServiceClient::new(channel(&services[1].endpoint).await);
        let nurture = NurtureServiceClient::new(channel(&services[2].endpoint).await);
        let http = reqwest::Client::builder()
            .redirect(reqwest::redirect::Policy::none())
            .build()
            .unwrap();
        Floor {
            settings,
            capture,
            nurture,
            qualification,
            tracking,
            http,
            nurture_db,
            smtp,
            services,
            _dbs: vec![capture_db, qualification_db],
        }
    }

    /// Settings for tests: no quiet hours (a test runs at any hour), opt-in required, scanner
    /// timing off unless `min_seconds` is set.
    pub async fn tune(&self, edit: impl FnOnce(&mut NurtureSettings)) -> NurtureSettings {
        let mut n = self.nurture.clone();
        let mut s = n
            .get_nurture_settings(pb::GetNurtureSettingsRequest {})
            .await
            .unwrap()
            .into_inner();
        s.quiet_start_hour = 0;
        s.quiet_end_hour = 0;
        s.bot_rules.as_mut().unwrap().min_seconds_after_delivery = 0;
        edit(&mut s);
        let expected_version = s.version;
        let stored = n
            .set_nurture_settings(SetNurtureSettingsRequest {
                settings: Some(s),
                expected_version,
            })
            .await
            .unwrap()
            .into_inner();
        // A running scheduler reads settings again after this long.
        tokio::time::sleep(baton_nurture::store::schedule::FRESH_FOR).await;
        stored
    }

    /// Captures a lead (opted in unless `opt_in` is false) and waits until nurture knows it.
    pub async fn lead(&self, email: &str, first_name: &str, opt_in: bool) -> String {
        let mut c = self.capture.clone();
        let lead = c
            .capture_lead(CaptureLeadRequest {
                request_id: format!("capture-{email}"),
                email: email.into(),
                first_name: first_name.into(),
                source: Some(LeadSource {
                    channel: "web_form".into(),
                    ..Default::default()
                }),
                consent: Some(Consent {
                    email_opt_in: opt_in,
                    ..Default::default()
                }),
                ..Default::default()
            })
            .await
            .unwrap()
            .into_inner()
            .lead
            .unwrap();
        self.known(&lead.lead_id).await;
        lead.lead_id
    }

    /// Waits until nurture's replica has the lead (an Enroll then finds it).
    pub async fn known(&self, lead_id: &str) {
        let url = self.nurture_db.url.clone();
        let sql = format!(
            "SELECT COUNT(*) AS n FROM nurture_lead WHERE lead_id = '{lead_id}' AND email <> ''"
        );
        eventually("nurture knows the lead", PATIENCE, || {
            let (url, sql) = (url.clone(), sql.clone());
            async move { (baton_shared::testing::count(&url, &sql).await == 1).then_some(()) }
        })
        .await;
    }

    pub async fn touches(&self, lead_id: &str) -> Vec<Touch> {
        let mut n = self.nurture.clone();
        n.list_touches(ListTouchesRequest {
            lead_id: lead_id.into(),
            page_size: 1000,
            ..Default::default()
        })
        .await
        .unwrap()
        .into_inner()
        .touches
    }

    /// Waits until the lead has a touch that `pick` accepts.
    pub async fn touch(&self, lead_id: &str, what: &str, pick: impl Fn(&Touch) -> bool) -> Touch {
        eventually(what, PATIENCE, || async {
            self.touches(lead_id).await.into_iter().find(|t| pick(t))
        })
        .await
    }

    pub async fn stop(self) {
        for s in self.services {
            s.stop().await;
        }
    }
}

/// A send step.
pub fn email(id: &str, subject: &str, html: &str) -> pb::Step {
    pb::Step {
        id: id.into(),
        kind: Some(pb::step::Kind::SendEmail(pb::SendEmail {
            subject: subject.into(),
            html_body: html.into(),
            text_body: format!("{subject} (text)"),
            from_address: SENDER.into(),
            from_name: "Baton News".into(),
            reply_to: String::new(),
        })),
    }
}

pub fn wait(id: &str, seconds: i64) -> pb::Step {
    pb::Step {
        id: id.into(),
        kind: Some(pb::step::Kind::Wait(pb::Wait {
            seconds,
            ..Default::default()
        })),
    }
}

pub fn branch(
    id: &str,
    condition: pb::BranchCondition,
    hours: i32,
    then: &str,
    other: &str,
) -> pb::Step {
    pb::Step {
        id: id.into(),
        kind: Some(pb::step::Kind::Branch(pb::Branch {
            condition: condition as i32,
            within_hours: hours,
            then_step: then.into(),
            else_step: other.into(),
        })),
    }
}

/// Creates and activates a manual sequence.
pub async fn active_sequence(floor: &Floor, key: &str, steps: Vec<pb::Step>) -> pb::Sequence {
    let mut n = floor.nurture.clone();
    n.create_sequence(pb::CreateSequenceRequest {
        key: key.into(),
        name: key.into(),
        definition: Some(pb::SequenceDefinition {
            steps,
            enrollment: None,
        }),
    })
    .await
    .unwrap();
    n.activate_sequence(pb::ActivateSequenceRequest { key: key.into() })
        .await
        .unwrap()
        .into_inner()
}

pub async fn enroll(floor: &Floor, lead_id: &str, key: &str) -> pb::Enrollment {
    let mut n = floor.nurture.clone();
    n.enroll(pb::EnrollRequest {
        request_id: format!("enroll-{lead_id}-{key}"),
        lead_id: lead_id.into(),
        sequence_key: key.into(),
    })
    .await
    .unwrap()
    .into_inner()
}

/// The value of header `name` in a raw message (unfolded).
pub fn header(message: &str, name: &str) -> Option<String> {
    let head = message.split("\r\n\r\n").next().unwrap_or(message);
    let unfolded = head.replace("\r\n ", " ").replace("\r\n\t", " ");
    unfolded.lines().find_map(|l| {
        let (k, v) = l.split_once(':')?;
        k.eq_ignore_ascii_case(name).then(|| v.trim().to_owned())
    })
}

/// The decoded HTML part of a raw message (quoted-printable undone), for finding its links.
pub fn html_of(message: &str) -> String {
    let unfolded = message.replace("=\r\n", "").replace("=\n", "");
    let mut out = String::with_capacity(unfolded.len());
    let bytes = unfolded.as_bytes();
    let mut i = 0;
    while i < bytes.len() {
        if bytes[i] == b'='
            && i + 2 < bytes.len()
            && let Ok(b) = u8::from_str_radix(&unfolded[i + 1..i + 3], 16)
        {
            out.push(b as char);
            i += 3;
            continue;
        }
        out.push(bytes[i] as char);
        i += 1;
    }
    out
}

/// Every URL of the tracking endpoint in a message with `path` (e.g. "/t/c/").
pub fn tracking_urls(message: &str, path: &str) -> Vec<String> {
    let html = html_of(message);
    let mut urls = Vec::new();
    for part in html.split('"') {
        if part.contains(path) && part.starts_with("http") && !urls.contains(&part.to_owned()) {
            urls.push(part.to_owned());
        }
    }
    urls
}

/// A browser's User-Agent.
pub const BROWSER: &str = "Mozilla/5.0 (Macintosh; Intel Mac OS X 14_5) AppleWebKit/605.1.15 (KHTML, like Gecko) Version/17.5 Safari/605.1.15";
