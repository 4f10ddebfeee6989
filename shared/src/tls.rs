//! Transport security: the servers' TLS (certificate and key from files, re-read when they change,
//! so a renewed Kubernetes Secret needs no restart), client-certificate checks against a CA bundle
//! (mTLS), and the channel a client (a consumer, the CLI, a test) opens to a peer.

use std::{
    net::SocketAddr,
    path::PathBuf,
    sync::{Arc, RwLock},
    time::Duration,
};

use futures::Stream;
use rustls_pki_types::{CertificateDer, PrivateKeyDer, pem::PemObject};
use tokio::net::{TcpListener, TcpStream};
use tokio_rustls::{
    TlsAcceptor,
    rustls::{self, RootCertStore, ServerConfig, server::WebPkiClientVerifier},
    server::TlsStream,
};
use tokio_stream::wrappers::ReceiverStream;
use tokio_util::sync::CancellationToken;
use tonic::transport::{Certificate, Channel, ClientTlsConfig, Endpoint};

use crate::{
    error::BootError,
    files::{sleep_or_cancel, stamps},
    settings::{Plaintext, TlsSettings},
};

/// How long a client may take to finish the TLS handshake.
const HANDSHAKE_TIMEOUT: Duration = Duration::from_secs(10);
/// How often the certificate files are looked at for a change.
const RELOAD_INTERVAL: Duration = Duration::from_secs(5);

fn read(path: &str) -> Result<Vec<u8>, String> {
    std::fs::read(path).map_err(|e| format!("{path}: {e}"))
}

fn certs(path: &str) -> Result<Vec<CertificateDer<'static>>, String> {
    let pem = read(path)?;
    let certs: Vec<_> = CertificateDer::pem_slice_iter(&pem)
        .collect::<Result<_, _>>()
        .map_err(|e| format!("{path}: {e}"))?;
    if certs.is_empty() {
        return Err(format!("{path}: no certificate in PEM"));
    }
    Ok(certs)
}

fn provider() -> Arc<rustls::crypto::CryptoProvider> {
    Arc::new(rustls::crypto::ring::default_provider())
}

/// The server configuration the files describe now.
fn server_config(settings: &TlsSettings) -> Result<ServerConfig, String> {
    let chain = certs(&settings.cert_file)?;
    let key = PrivateKeyDer::from_pem_slice(&read(&settings.key_file)?)
        .map_err(|e| format!("{}: {e}", settings.key_file))?;
    let builder = ServerConfig::builder_with_provider(provider())
        .with_safe_default_protocol_versions()
        .map_err(|e| e.to_string())?;
    let builder = if settings.client_ca_file.is_empty() {
        builder.with_no_client_auth()
    } else {
        let mut roots = RootCertStore::empty();
        for ca in certs(&settings.client_ca_file)? {
            roots
                .add(ca)
                .map_err(|e| format!("{}: {e}", settings.client_ca_file))?;
        }
        let verifier = WebPkiClientVerifier::builder_with_provider(Arc::new(roots), provider())
            .build()
            .map_err(|e| format!("{}: {e}", settings.client_ca_file))?;
        builder.with_client_cert_verifier(verifier)
    };
    let mut config = builder
        .with_single_cert(chain, key)
        .map_err(|e| format!("{}: {e}", settings.cert_file))?;
    config.alpn_protocols = vec![b"h2".to_vec()];
    Ok(config)
}

/// A server's TLS configuration, swapped whole when its files change.
#[derive(Clone)]
pub struct ServerTls {
    current: Arc<RwLock<Arc<ServerConfig>>>,
    settings: Arc<TlsSettings>,
}

impl ServerTls {
    /// The TLS of a server listening on `addr`: `None` for plaintext where the settings allow it,
    /// an error where they do not.
    pub fn for_listener(
        settings: &TlsSettings,
        addr: SocketAddr,
    ) -> Result<Option<ServerTls>, BootError> {
        if settings.cert_file.is_empty() {
            return match settings.plaintext {
                Plaintext::Always => Ok(None),
                Plaintext::Loopback if addr.ip().is_loopback() => Ok(None),
                _ => Err(BootError::Settings(format!(
                    "tls: {addr} is not loopback and tls.cert_file is empty; give a certificate (tls.cert_file, tls.key_file) or set tls.plaintext = \"always\""
                ))),
            };
        }
        let config =
            server_config(settings).map_err(|e| BootError::Settings(format!("tls: {e}")))?;
        Ok(Some(ServerTls {
            current: Arc::new(RwLock::new(Arc::new(config))),
            settings: Arc::new(settings.clone()),
        }))
    }

    fn acceptor(&self) -> TlsAcceptor {
        let config = self
            .current
            .read()
            .map(|c| c.clone())
            .unwrap_or_else(|p| p.into_inner().clone());
        TlsAcceptor::from(config)
    }

    fn files(&self) -> Vec<PathBuf> {
        [
            &self.settings.cert_file,
            &self.settings.key_file,
            &self.settings.client_ca_file,
        ]
        .into_iter()
        .filter(|f| !f.is_empty())
        .map(PathBuf::from)
        .collect()
    }

    /// Re-reads the certificate, key and CA files when one changes, until `shutdown`. New
    /// connections use the new files; a change that does not load keeps the old ones.
    pub async fn watch(self, shutdown: CancellationToken) {
        let mut seen = stamps(&self.files());
        while sleep_or_cancel(RELOAD_INTERVAL, &shutdown).await {
            let now = stamps(&self.files());
            if now == seen {
                continue;
            }
            seen = now;
            match server_config(&self.settings) {
                Ok(config) => {
                    if let Ok(mut current) = self.current.write() {
                        *current = Arc::new(config);
                    }
                    tracing::info!("tls: certificate reloaded");
                }
                Err(e) => {
                    tracing::warn!(error = %e, "tls: files changed but do not load; keeping the old certificate")
                }
            }
        }
    }

    /// The TLS connections accepted on `listener`: each handshake runs on its own task (a slow
    /// client holds up nobody), and failed handshakes are logged and dropped.
    pub fn incoming(
        self,
        listener: TcpListener,
        shutdown: CancellationToken,
    ) -> impl Stream<Item = Result<TlsStream<TcpStream>, std::io::Error>> {
        let (tx, rx) = tokio::sync::mpsc::channel(64);
        tokio::spawn(async move {
            loop {
                let accepted = tokio::select! {
                    a = listener.accept() => a,
                    _ = shutdown.cancelled() => return,
                };
                let (tcp, peer) = match accepted {
                    Ok(a) => a,
                    Err(e) => {
                        tracing::warn!(error = %e, "accept failed");
                        tokio::time::sleep(Duration::from_millis(50)).await;
                        continue;
                    }
                };
                let _ = tcp.set_nodelay(true);
                let acceptor = self.acceptor();
                let tx = tx.clone();
                tokio::spawn(async move {
                    match tokio::time::timeout(HANDSHAKE_TIMEOUT, acceptor.accept(tcp)).await {
                        Ok(Ok(stream)) => {
                            let _ = tx.send(Ok(stream)).await;
                        }
                        Ok(Err(e)) => tracing::debug!(%peer, error = %e, "TLS handshake failed"),
                        Err(_) => tracing::debug!(%peer, "TLS handshake timed out"),
                    }
                });
            }
        });
        ReceiverStream::new(rx)
    }
}

/// The endpoint a client opens to `url`: TLS with the configured CA (and client certificate,
/// for mTLS) when the URL is `https://` or a CA is set; plaintext for `http://` otherwise.
pub fn endpoint(url: &str, settings: &TlsSettings) -> Result<Endpoint, String> {
    let endpoint = Endpoint::from_shared(url.to_owned()).map_err(|e| format!("{url}: {e}"))?;
    if !url.starts_with("https://") {
        return Ok(endpoint);
    }
    let mut tls = ClientTlsConfig::new();
    if !settings.ca_file.is_empty() {
        tls = tls.ca_certificate(Certificate::from_pem(read(&settings.ca_file)?));
    }
    if !settings.client_cert_file.is_empty() {
        tls = tls.identity(tonic::transport::Identity::from_pem(
            read(&settings.client_cert_file)?,
            read(&settings.client_key_file)?,
        ));
    }
    if !settings.server_name.is_empty() {
        tls = tls.domain_name(settings.server_name.clone());
    }
    endpoint.tls_config(tls).map_err(|e| format!("{url}: {e}"))
}

/// Connects to `url` (see [`endpoint`]).
pub async fn connect(url: &str, settings: &TlsSettings) -> Result<Channel, String> {
    endpoint(url, settings)?
        .connect()
        .await
        .map_err(|e| format!("{url}: {e}"))
}
