//! Transport security with certificates the test makes: TLS, mutual TLS, a certificate renewed
//! on disk taking effect without a restart, and plaintext refused beyond loopback.

use std::{path::Path, sync::Arc, time::Duration};

use baton_proto::capture::v1::capture_service_client::CaptureServiceClient;
use baton_shared::{
    ServiceName,
    auth::{Role, token::BearerInterceptor},
    settings::{Plaintext, TlsSettings},
    testing::{TestDatabase, bind_ephemeral, settings_with, spawn, token},
    tls::{ServerTls, connect},
};
use rcgen::{BasicConstraints, CertificateParams, DnType, IsCa, Issuer, KeyPair, KeyUsagePurpose};
use tonic::service::interceptor::InterceptedService;
use tonic_health::pb::{HealthCheckRequest, health_client::HealthClient};

/// A certificate authority and what it can sign.
struct Ca {
    pem: String,
    issuer: Issuer<'static, KeyPair>,
}

fn ca(name: &str) -> Ca {
    let key = KeyPair::generate().unwrap();
    let mut params = CertificateParams::new(Vec::<String>::new()).unwrap();
    params.is_ca = IsCa::Ca(BasicConstraints::Unconstrained);
    params.key_usages = vec![KeyUsagePurpose::KeyCertSign, KeyUsagePurpose::CrlSign];
    params.distinguished_name.push(DnType::CommonName, name);
    let cert = params.self_signed(&key).unwrap();
    Ca {
        pem: cert.pem(),
        issuer: Issuer::new(params, key),
    }
}

/// A leaf certificate for `names`, signed by `ca`: (certificate PEM, key PEM).
fn leaf(ca: &Ca, names: &[&str]) -> (String, String) {
    let key = KeyPair::generate().unwrap();
    let params =
        CertificateParams::new(names.iter().map(|n| n.to_string()).collect::<Vec<_>>()).unwrap();
    let cert = params.signed_by(&key, &ca.issuer).unwrap();
    (cert.pem(), key.serialize_pem())
}

fn write(dir: &Path, name: &str, text: &str) -> String {
    let path = dir.join(name);
    // Write then rename, as a Secret update does: a reader never sees half a file.
    let tmp = dir.join(format!(".{name}.tmp"));
    std::fs::write(&tmp, text).unwrap();
    std::fs::rename(&tmp, &path).unwrap();
    path.display().to_string()
}

/// What a client trusts and presents.
fn client(ca_file: &str, cert: Option<(&str, &str)>) -> TlsSettings {
    TlsSettings {
        cert_file: String::new(),
        key_file: String::new(),
        client_ca_file: String::new(),
        ca_file: ca_file.into(),
        client_cert_file: cert.map(|c| c.0.to_owned()).unwrap_or_default(),
        client_key_file: cert.map(|c| c.1.to_owned()).unwrap_or_default(),
        server_name: "localhost".into(),
        plaintext: Plaintext::Never,
    }
}

/// Whether a health check and a CaptureLead (with a token) succeed over `tls` to `url`.
async fn works(url: &str, tls: &TlsSettings) -> bool {
    let Ok(channel) = connect(url, tls).await else {
        return false;
    };
    let health = HealthClient::new(channel.clone())
        .check(HealthCheckRequest::default())
        .await;
    let t = token("tester", "default", &[Role::Marketing]);
    let mut capture = CaptureServiceClient::new(InterceptedService::new(
        channel,
        BearerInterceptor::token(&t),
    ));
    let lead = capture.capture_lead(baton_e2e::lead(rand_n())).await;
    health.is_ok() && lead.is_ok()
}

fn rand_n() -> usize {
    std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .map(|d| d.subsec_nanos() as usize)
        .unwrap_or(0)
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn tls_and_mutual_tls_with_a_certificate_renewed_on_disk() {
    let dir = tempfile::tempdir().unwrap();
    let ca1 = ca("Baton test CA 1");
    let (cert, key) = leaf(&ca1, &["localhost", "127.0.0.1"]);
    let (client_cert, client_key) = leaf(&ca1, &["reporting.baton.internal"]);
    let ca1_file = write(dir.path(), "ca1.pem", &ca1.pem);
    let client_cert = write(dir.path(), "client.pem", &client_cert);
    let client_key = write(dir.path(), "client.key", &client_key);

    let db = TestDatabase::new("capture_tls").await;
    let mut settings = settings_with(&[(ServiceName::Capture, &db)]);
    settings.tls.cert_file = write(dir.path(), "tls.crt", &cert);
    settings.tls.key_file = write(dir.path(), "tls.key", &key);
    settings.tls.client_ca_file = ca1_file.clone();
    settings.tls.plaintext = Plaintext::Never;
    let listener = bind_ephemeral(&mut settings, ServiceName::Capture).await;
    let port = listener.local_addr().unwrap().port();
    let url = format!("https://localhost:{port}");
    let service = spawn(
        ServiceName::Capture,
        &Arc::new(settings.clone()),
        listener,
        baton_capture::run,
    );

    // mTLS: a client certificate from the CA is required.
    let with_cert = client(&ca1_file, Some((&client_cert, &client_key)));
    let mut up = false;
    for _ in 0..100 {
        if works(&url, &with_cert).await {
            up = true;
            break;
        }
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
    assert!(up, "a client with a certificate from the CA is served");
    assert!(
        !works(&url, &client(&ca1_file, None)).await,
        "a client without a certificate is refused"
    );
    let stranger = ca("Somebody else's CA");
    let (s_cert, s_key) = leaf(&stranger, &["mallory"]);
    let s_cert = write(dir.path(), "s.pem", &s_cert);
    let s_key = write(dir.path(), "s.key", &s_key);
    assert!(
        !works(&url, &client(&ca1_file, Some((&s_cert, &s_key)))).await,
        "a client certificate from another CA is refused"
    );
    assert!(
        !works(&format!("http://127.0.0.1:{port}"), &client("", None)).await,
        "plaintext is not served"
    );

    // Renewal: a certificate from a new CA replaces the files; new connections get it.
    let ca2 = ca("Baton test CA 2");
    let (cert2, key2) = leaf(&ca2, &["localhost"]);
    let ca2_file = write(dir.path(), "ca2.pem", &ca2.pem);
    write(dir.path(), "tls.key", &key2);
    write(dir.path(), "tls.crt", &cert2);
    let renewed = client(&ca2_file, Some((&client_cert, &client_key)));
    let mut served = false;
    for _ in 0..200 {
        if works(&url, &renewed).await {
            served = true;
            break;
        }
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
    assert!(
        served,
        "the renewed certificate is served without a restart"
    );
    assert!(
        !works(&url, &with_cert).await,
        "the old CA no longer verifies the server"
    );
    service.stop().await;
}

#[tokio::test]
async fn plaintext_is_refused_beyond_loopback_unless_a_setting_says_so() {
    let mut tls = client("", None);
    tls.plaintext = Plaintext::Loopback;
    let loopback = "127.0.0.1:50051".parse().unwrap();
    let everywhere = "0.0.0.0:50051".parse().unwrap();
    assert!(ServerTls::for_listener(&tls, loopback).unwrap().is_none());
    let err = ServerTls::for_listener(&tls, everywhere).err().unwrap();
    assert!(err.to_string().contains("tls.cert_file"), "{err}");
    tls.plaintext = Plaintext::Always;
    assert!(ServerTls::for_listener(&tls, everywhere).unwrap().is_none());
    tls.plaintext = Plaintext::Never;
    assert!(ServerTls::for_listener(&tls, loopback).is_err());
}
