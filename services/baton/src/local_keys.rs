//! The key material `baton up` makes on first start for the files its settings name and that do
//! not exist yet: the HS256 development secret (loopback only), or, for a suite that listens
//! beyond loopback (the container image's default), an ES256 signing key with its JWKS and a TLS
//! certificate authority with a server certificate. Production mounts these files (Kubernetes
//! Secrets, docs/operations.md); `baton serve` never makes any.

use std::path::{Path, PathBuf};

use base64::{Engine, engine::general_purpose::URL_SAFE_NO_PAD};
use baton_shared::{BootError, ServiceName, Settings, auth::token};
use rcgen::{BasicConstraints, CertificateParams, DnType, IsCa, Issuer, KeyPair, KeyUsagePurpose};

/// The `kid` of a generated signing key when the settings name none.
const DEFAULT_KEY_ID: &str = "baton-local";

fn settings_error(path: &Path, e: impl std::fmt::Display) -> BootError {
    BootError::Settings(format!("{}: {e}", path.display()))
}

fn named(path: &str) -> Option<&Path> {
    (!path.is_empty()).then(|| Path::new(path))
}

/// Writes `text` to `path` (its directory created), readable by the owner only when `private`.
fn write(path: &Path, text: &str, private: bool) -> Result<(), BootError> {
    if let Some(dir) = path.parent() {
        std::fs::create_dir_all(dir).map_err(|e| settings_error(dir, e))?;
    }
    if private {
        token::write_private(path, text.as_bytes())
    } else {
        std::fs::write(path, text).map_err(|e| settings_error(path, e))
    }
}

/// Makes every missing file of the settings' key material; returns the files it made.
pub fn ensure(settings: &Settings) -> Result<Vec<PathBuf>, BootError> {
    let mut made = Vec::new();
    if !settings.auth.enabled {
        return Ok(made);
    }
    if let Some(path) = named(&settings.auth.hs256_secret_file)
        && token::ensure_dev_secret(path)?
    {
        made.push(path.to_owned());
    }
    made.extend(signing_key(settings)?);
    made.extend(server_certificate(settings)?);
    Ok(made)
}

/// An ES256 key pair: the private key in auth.signing_key_file (PKCS#8 PEM) and its public half
/// in auth.jwks_file, when both are named and neither exists.
fn signing_key(settings: &Settings) -> Result<Vec<PathBuf>, BootError> {
    let auth = &settings.auth;
    let (Some(private), Some(jwks)) = (named(&auth.signing_key_file), named(&auth.jwks_file))
    else {
        return Ok(Vec::new());
    };
    if private.exists() || jwks.exists() {
        return Ok(Vec::new());
    }
    let key = KeyPair::generate().map_err(|e| settings_error(private, e))?;
    let point = key.public_key_raw();
    // An uncompressed P-256 point: 0x04, then x and y, 32 bytes each.
    let (Some(x), Some(y)) = (point.get(1..33), point.get(33..65)) else {
        return Err(settings_error(private, "not a P-256 public key"));
    };
    let kid = if auth.signing_key_id.is_empty() {
        DEFAULT_KEY_ID
    } else {
        auth.signing_key_id.as_str()
    };
    let document = serde_json::json!({
        "keys": [{
            "kty": "EC",
            "crv": "P-256",
            "alg": "ES256",
            "use": "sig",
            "kid": kid,
            "x": URL_SAFE_NO_PAD.encode(x),
            "y": URL_SAFE_NO_PAD.encode(y),
        }]
    });
    write(private, &key.serialize_pem(), true)?;
    write(jwks, &format!("{document:#}\n"), false)?;
    Ok(vec![private.to_owned(), jwks.to_owned()])
}

/// The names a client of this suite may use for it: loopback, this host's name, and the host of
/// every service endpoint.
fn server_names(settings: &Settings) -> Vec<String> {
    let mut names = vec!["localhost".to_owned(), "127.0.0.1".into(), "::1".into()];
    if let Ok(host) = std::fs::read_to_string("/etc/hostname") {
        names.push(host.trim().to_owned());
    }
    for service in ServiceName::ALL {
        let endpoint = &settings.service(service).endpoint;
        let host = endpoint
            .split("://")
            .nth(1)
            .and_then(|rest| rest.rsplit_once(':'))
            .map(|(host, _)| host.trim_matches(['[', ']']).to_owned());
        names.extend(host);
    }
    names.retain(|n| !n.is_empty());
    names.sort();
    names.dedup();
    names
}

/// A certificate authority (tls.ca_file, which clients trust) and a server certificate it
/// signed (tls.cert_file, tls.key_file), when the three are named and none exists. The
/// authority's key is not kept: a new server certificate means a new authority.
fn server_certificate(settings: &Settings) -> Result<Vec<PathBuf>, BootError> {
    let tls = &settings.tls;
    let (Some(ca_file), Some(cert_file), Some(key_file)) = (
        named(&tls.ca_file),
        named(&tls.cert_file),
        named(&tls.key_file),
    ) else {
        return Ok(Vec::new());
    };
    if ca_file.exists() || cert_file.exists() || key_file.exists() {
        return Ok(Vec::new());
    }
    let fail = |e: rcgen::Error| settings_error(cert_file, e);
    let ca_key = KeyPair::generate().map_err(fail)?;
    let mut ca = CertificateParams::new(Vec::<String>::new()).map_err(fail)?;
    ca.is_ca = IsCa::Ca(BasicConstraints::Unconstrained);
    ca.key_usages = vec![KeyUsagePurpose::KeyCertSign, KeyUsagePurpose::CrlSign];
    ca.distinguished_name
        .push(DnType::CommonName, "Baton local authority");
    let ca_cert = ca.self_signed(&ca_key).map_err(fail)?;
    let issuer = Issuer::new(ca, ca_key);
    let server_key = KeyPair::generate().map_err(fail)?;
    let mut server = CertificateParams::new(server_names(settings)).map_err(fail)?;
    server
        .distinguished_name
        .push(DnType::CommonName, "Baton suite");
    let server_cert = server.signed_by(&server_key, &issuer).map_err(fail)?;
    write(ca_file, &ca_cert.pem(), false)?;
    write(cert_file, &server_cert.pem(), false)?;
    write(key_file, &server_key.serialize_pem(), true)?;
    Ok(vec![
        ca_file.to_owned(),
        cert_file.to_owned(),
        key_file.to_owned(),
    ])
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn names_cover_loopback_and_every_endpoint_host() {
        let mut s = Settings::defaults().unwrap();
        s.capture.endpoint = "https://capture.baton.svc:50051".into();
        s.nurture.endpoint = "https://[::1]:50052".into();
        let names = server_names(&s);
        for want in ["localhost", "127.0.0.1", "::1", "capture.baton.svc"] {
            assert!(names.iter().any(|n| n == want), "{want} in {names:?}");
        }
    }
}
