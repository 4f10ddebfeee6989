//! The container image's default command, run as the image runs it (`baton --config
//! deploy/container.toml up` in an empty data directory), with only the ports moved to free ones:
//! the suite listens on 0.0.0.0, makes its ES256 key and TLS certificate on first start, serves
//! TLS with tokens signed by that key (and `baton token`, as `docker exec` runs it, signs them),
//! refuses plaintext and the HS256 development key, and keeps its keys across a restart.

use std::{
    io::{BufRead, BufReader},
    net::TcpListener,
    path::{Path, PathBuf},
    process::{Child, Command, Stdio},
    sync::mpsc,
    time::Duration,
};

use baton_proto::{
    capture::v1::{CaptureLeadRequest, LeadSource, capture_service_client::CaptureServiceClient},
    qualification::v1::{
        GetScoreRequest, qualification_service_client::QualificationServiceClient,
    },
};
use baton_shared::{
    Settings,
    auth::Role,
    peer::{AuthChannel, connect_with_token},
    settings::TlsSettings,
    testing::{TEST_TENANT, eventually, token},
};
use tonic::Code;

const SECTIONS: [&str; 5] = [
    "CAPTURE",
    "NURTURE",
    "QUALIFICATION",
    "DISTRIBUTION",
    "REPORTING",
];

fn free_port() -> u16 {
    TcpListener::bind("127.0.0.1:0")
        .and_then(|l| l.local_addr())
        .map(|a| a.port())
        .expect("a free port")
}

fn container_toml() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR")).join("../../deploy/container.toml")
}

/// `baton --config deploy/container.toml <args>` in `dir`, the ports moved to `ports`.
fn baton(dir: &Path, ports: &[u16], args: &[&str]) -> Command {
    let mut cmd = Command::new(env!("CARGO_BIN_EXE_baton"));
    cmd.arg("--config")
        .arg(container_toml())
        .args(args)
        .current_dir(dir)
        .env("RUST_LOG", "warn")
        .env(
            "BATON__TELEMETRY__METRICS_LISTEN",
            format!("0.0.0.0:{}", ports[5]),
        )
        .env("BATON__TRACKING__LISTEN", format!("0.0.0.0:{}", ports[6]))
        .stdin(Stdio::null());
    for (section, port) in SECTIONS.iter().zip(ports) {
        cmd.env(
            format!("BATON__{section}__LISTEN"),
            format!("0.0.0.0:{port}"),
        )
        .env(
            format!("BATON__{section}__ENDPOINT"),
            format!("https://127.0.0.1:{port}"),
        );
    }
    cmd
}

/// A running `baton up` and what it printed up to "baton is up" and its token line.
struct Up {
    child: Child,
    printed: String,
}

impl Up {
    fn start(dir: &Path, ports: &[u16]) -> Up {
        let mut child = baton(dir, ports, &["up"])
            .stdout(Stdio::piped())
            .stderr(Stdio::inherit())
            .spawn()
            .expect("baton up starts");
        let stdout = child.stdout.take().expect("stdout");
        let (tx, rx) = mpsc::channel();
        std::thread::spawn(move || {
            for line in BufReader::new(stdout).lines().map_while(Result::ok) {
                if tx.send(line).is_err() {
                    break;
                }
            }
        });
        let mut printed = String::new();
        loop {
            match rx.recv_timeout(Duration::from_secs(60)) {
                Ok(line) => {
                    printed.push_str(&line);
                    printed.push('\n');
                    if line.contains("export BATON_TOKEN=") {
                        break;
                    }
                }
                Err(e) => panic!("baton up did not print its token ({e}); printed:\n{printed}"),
            }
        }
        Up { child, printed }
    }

    fn admin_token(&self) -> String {
        self.printed
            .lines()
            .find_map(|l| l.trim().strip_prefix("export BATON_TOKEN="))
            .expect("a token line")
            .to_owned()
    }
}

impl Drop for Up {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

fn lead(n: u32) -> CaptureLeadRequest {
    CaptureLeadRequest {
        request_id: format!("container-{n}"),
        email: format!("container{n}@example.com"),
        source: Some(LeadSource {
            channel: "web_form".into(),
            ..Default::default()
        }),
        ..Default::default()
    }
}

/// A channel to `url` with `token`, trusting `ca_file` (empty: none).
async fn connect(url: &str, ca_file: &str, token: &str) -> Result<AuthChannel, tonic::Status> {
    let tls = TlsSettings {
        ca_file: ca_file.to_owned(),
        ..Settings::defaults().unwrap().tls
    };
    connect_with_token(url, &tls, token)
        .await
        .map_err(tonic::Status::unavailable)
}

/// CaptureLead on `url` with `token`, trusting `ca_file` (empty: none); the lead's id.
async fn capture(url: &str, ca_file: &str, token: &str, n: u32) -> Result<String, tonic::Status> {
    let channel = connect(url, ca_file, token).await?;
    let lead = CaptureServiceClient::new(channel)
        .capture_lead(lead(n))
        .await?
        .into_inner()
        .lead
        .unwrap_or_default();
    Ok(lead.lead_id)
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_images_default_command_serves_tls_and_es256_tokens_on_every_address() {
    let data = tempfile::tempdir().unwrap();
    let dir = data.path();
    let ports: Vec<u16> = (0..7).map(|_| free_port()).collect();
    let up = Up::start(dir, &ports);
    for listen in ["0.0.0.0:", "https://127.0.0.1:"] {
        assert!(up.printed.contains(listen), "{listen} in\n{}", up.printed);
    }

    let keys = dir.join("keys-and-certs");
    let made = [
        "auth/signing-key.pem",
        "auth/jwks.json",
        "tls/ca.crt",
        "tls/tls.crt",
        "tls/tls.key",
    ];
    for file in made {
        let path = keys.join(file);
        assert!(path.exists(), "{} was made", path.display());
        assert!(up.printed.contains(file), "the output names {file}");
    }
    #[cfg(unix)]
    for private in ["auth/signing-key.pem", "tls/tls.key"] {
        use std::os::unix::fs::PermissionsExt;
        let mode = std::fs::metadata(keys.join(private))
            .unwrap()
            .permissions()
            .mode();
        assert_eq!(
            mode & 0o777,
            0o600,
            "{private} is readable by its owner only"
        );
    }
    let ca = keys.join("tls/ca.crt").display().to_string();
    let url = format!("https://127.0.0.1:{}", ports[0]);

    // The printed admin token, over TLS trusting the made authority.
    let admin = up.admin_token();
    let lead_id = capture(&url, &ca, &admin, 1).await.unwrap();
    // Qualification follows capture's log over TLS with its own ES256 service token.
    let qualification = connect(&format!("https://127.0.0.1:{}", ports[2]), &ca, &admin)
        .await
        .unwrap();
    eventually(
        "qualification scores the lead",
        Duration::from_secs(30),
        || {
            let mut q = QualificationServiceClient::new(qualification.clone());
            let lead_id = lead_id.clone();
            async move { q.get_score(GetScoreRequest { lead_id }).await.ok() }
        },
    )
    .await;
    // A token from `baton token`, as `docker exec <container> baton token` makes it.
    let out = baton(
        dir,
        &ports,
        &["token", "--role", "marketing", "--sub", "ops@example.com"],
    )
    .output()
    .unwrap();
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    let minted = String::from_utf8(out.stdout).unwrap().trim().to_owned();
    capture(&url, &ca, &minted, 2).await.unwrap();
    // The development HS256 key is not accepted, and plaintext is not served.
    let hs256 = token("mallory", TEST_TENANT, &[Role::Admin]);
    assert_eq!(
        capture(&url, &ca, &hs256, 3).await.unwrap_err().code(),
        Code::Unauthenticated
    );
    let plaintext = format!("http://127.0.0.1:{}", ports[0]);
    assert!(capture(&plaintext, "", &admin, 4).await.is_err());
    // Without the authority, a client does not trust the suite.
    assert!(capture(&url, "", &admin, 5).await.is_err());

    // A restart keeps the keys: the same authority, and the first token still verifies.
    let before: Vec<Vec<u8>> = made
        .iter()
        .map(|f| std::fs::read(keys.join(f)).unwrap())
        .collect();
    drop(up);
    let again = Up::start(dir, &ports);
    assert!(
        !again.printed.contains("(first start)"),
        "{}",
        again.printed
    );
    let after: Vec<Vec<u8>> = made
        .iter()
        .map(|f| std::fs::read(keys.join(f)).unwrap())
        .collect();
    assert_eq!(before, after, "nothing is made anew on a restart");
    capture(&url, &ca, &admin, 6).await.unwrap();
}
