//! The keys tokens are verified with, loaded from files and re-read when the files change (keys
//! are rotated by replacing the mounted Secret: no restart), and the validation of one token.

use std::{
    path::{Path, PathBuf},
    sync::{Arc, RwLock},
    time::Duration,
};

use jsonwebtoken::{
    Algorithm, DecodingKey, Validation,
    errors::ErrorKind,
    jwk::{AlgorithmParameters, JwkSet},
};
use serde::Deserialize;
use tokio_util::sync::CancellationToken;

use super::{ALL_TENANTS, Identity, Role, Scope};
use crate::{
    error::BootError,
    files::{sleep_or_cancel, stamps},
    settings::AuthSettings,
    tenant::TenantId,
};

/// One verification key.
#[derive(Clone)]
struct VerifyKey {
    kid: Option<String>,
    alg: Algorithm,
    key: DecodingKey,
    /// Where it came from, for logs.
    origin: String,
    /// The checks with this key's algorithm (jsonwebtoken refuses a validation whose algorithms
    /// are not all of the key's family).
    validation: Validation,
}

/// Every key in force, and what a token must say.
pub struct KeyRing {
    keys: Vec<VerifyKey>,
}

/// The algorithms Baton accepts.
const ACCEPTED: [Algorithm; 3] = [Algorithm::RS256, Algorithm::ES256, Algorithm::HS256];

/// The claims Baton reads; `exp`, `iss` and `aud` are checked by the validation.
#[derive(Deserialize)]
struct Claims {
    sub: String,
    tenant: String,
    #[serde(default)]
    roles: Vec<String>,
}

impl KeyRing {
    /// Reads every key file the settings name. A file that is named but unreadable or holds no
    /// usable key is an error: a typo must not leave a service accepting nothing (or less).
    pub fn load(settings: &AuthSettings) -> Result<KeyRing, String> {
        let mut keys = Vec::new();
        if !settings.jwks_file.is_empty() {
            keys.extend(jwks_keys(Path::new(&settings.jwks_file))?);
        }
        for file in &settings.public_key_files {
            keys.push(pem_key(Path::new(file))?);
        }
        if !settings.hs256_secret_file.is_empty() {
            let path = Path::new(&settings.hs256_secret_file);
            if path.exists() {
                let secret = read(path)?;
                let secret = secret.trim_ascii();
                if secret.len() < 32 {
                    return Err(format!(
                        "{}: an HS256 secret must be at least 32 bytes",
                        path.display()
                    ));
                }
                keys.push(VerifyKey {
                    kid: None,
                    alg: Algorithm::HS256,
                    key: DecodingKey::from_secret(secret),
                    origin: path.display().to_string(),
                    validation: Validation::default(),
                });
            }
        }
        for key in &mut keys {
            let v = &mut key.validation;
            *v = Validation::new(key.alg);
            v.leeway = settings.leeway_seconds;
            v.validate_nbf = true;
            v.set_issuer(&[&settings.issuer]);
            v.set_audience(&[&settings.audience]);
            v.set_required_spec_claims(&["exp", "iss", "aud", "sub"]);
        }
        Ok(KeyRing { keys })
    }

    pub fn is_empty(&self) -> bool {
        self.keys.is_empty()
    }

    /// Whether a development (HS256) key is in force.
    pub fn has_shared_secret(&self) -> bool {
        self.keys.iter().any(|k| k.alg == Algorithm::HS256)
    }

    /// Validates `token` and returns who it names, or a reason the caller can act on (never
    /// the token itself).
    pub fn verify(&self, token: &str) -> Result<Identity, String> {
        let header = jsonwebtoken::decode_header(token)
            .map_err(|e| format!("malformed token: {}", describe(e.kind())))?;
        if !ACCEPTED.contains(&header.alg) {
            return Err(format!(
                "token algorithm {:?} is not accepted; use RS256 or ES256",
                header.alg
            ));
        }
        let candidates: Vec<&VerifyKey> = self
            .keys
            .iter()
            .filter(|k| k.alg == header.alg)
            .filter(|k| match (&header.kid, &k.kid) {
                (Some(want), Some(have)) => want == have,
                _ => true,
            })
            .collect();
        if candidates.is_empty() {
            return Err(match header.kid {
                Some(kid) => format!("no {:?} key with kid {kid:?} is configured", header.alg),
                None => format!("no {:?} key is configured", header.alg),
            });
        }
        let mut last = String::new();
        for key in candidates {
            match jsonwebtoken::decode::<Claims>(token, &key.key, &key.validation) {
                Ok(data) => return identity(data.claims),
                Err(e) if *e.kind() == ErrorKind::InvalidSignature => {
                    last = "signature does not verify with any configured key".into();
                }
                Err(e) => return Err(describe(e.kind())),
            }
        }
        Err(last)
    }
}

fn identity(claims: Claims) -> Result<Identity, String> {
    let sub = claims.sub.trim().to_owned();
    if sub.is_empty() {
        return Err("token claim sub is empty".into());
    }
    let mut roles = Vec::new();
    for r in &claims.roles {
        let role = r
            .parse::<Role>()
            .map_err(|e| format!("token claim roles: {e}"))?;
        if !roles.contains(&role) {
            roles.push(role);
        }
    }
    if roles.is_empty() {
        return Err("token claim roles is empty".into());
    }
    let tenant = claims.tenant.trim();
    let scope = if tenant == ALL_TENANTS {
        if !roles.contains(&Role::Service) {
            return Err("tenant \"*\" is only for tokens with the service role".into());
        }
        Scope::AllTenants
    } else if tenant.is_empty() {
        return Err("token claim tenant is empty".into());
    } else if tenant.len() > crate::fields::MAX_ID_LEN {
        return Err("token claim tenant is too long".into());
    } else {
        Scope::Tenant(TenantId::new(tenant))
    };
    Ok(Identity { sub, scope, roles })
}

fn describe(kind: &ErrorKind) -> String {
    match kind {
        ErrorKind::ExpiredSignature => "token expired; get a new one".into(),
        ErrorKind::ImmatureSignature => "token is not valid yet (nbf is in the future)".into(),
        ErrorKind::InvalidAudience => "token is for another audience (aud)".into(),
        ErrorKind::InvalidIssuer => "token is from another issuer (iss)".into(),
        ErrorKind::InvalidSignature => "signature does not verify with any configured key".into(),
        ErrorKind::MissingRequiredClaim(c) => format!("token lacks claim {c}"),
        ErrorKind::InvalidClaimFormat(c) => format!("token claim {c} has the wrong format"),
        ErrorKind::Json(_) => "token claims are not the expected JSON (sub, tenant, roles)".into(),
        ErrorKind::InvalidAlgorithm => "token algorithm does not match its key".into(),
        _ => "malformed token".into(),
    }
}

fn read(path: &Path) -> Result<Vec<u8>, String> {
    std::fs::read(path).map_err(|e| format!("{}: {e}", path.display()))
}

/// A PEM public key: RSA verifies RS256, EC P-256 verifies ES256.
fn pem_key(path: &Path) -> Result<VerifyKey, String> {
    let pem = read(path)?;
    let origin = path.display().to_string();
    if let Ok(key) = DecodingKey::from_rsa_pem(&pem) {
        return Ok(VerifyKey {
            kid: None,
            alg: Algorithm::RS256,
            key,
            origin,
            validation: Validation::default(),
        });
    }
    DecodingKey::from_ec_pem(&pem)
        .map(|key| VerifyKey {
            kid: None,
            alg: Algorithm::ES256,
            key,
            origin,
            validation: Validation::default(),
        })
        .map_err(|_| format!("{}: not an RSA or EC public key in PEM", path.display()))
}

/// The RSA and EC keys of a JWKS document (symmetric keys there are refused: HS256 is for
/// development and has its own setting).
fn jwks_keys(path: &Path) -> Result<Vec<VerifyKey>, String> {
    let set: JwkSet = serde_json::from_slice(&read(path)?)
        .map_err(|e| format!("{}: not a JWKS document: {e}", path.display()))?;
    let mut keys = Vec::new();
    for jwk in &set.keys {
        let alg = match &jwk.algorithm {
            AlgorithmParameters::RSA(_) => Algorithm::RS256,
            AlgorithmParameters::EllipticCurve(_) => Algorithm::ES256,
            _ => continue,
        };
        // A key declared for another algorithm (RS384, ES384, …) is not one Baton verifies with.
        if let Some(declared) = jwk.common.key_algorithm
            && !matches!(
                declared,
                jsonwebtoken::jwk::KeyAlgorithm::RS256 | jsonwebtoken::jwk::KeyAlgorithm::ES256
            )
        {
            continue;
        }
        let key = DecodingKey::from_jwk(jwk).map_err(|e| {
            format!(
                "{}: key {:?}: {e}",
                path.display(),
                jwk.common.key_id.as_deref().unwrap_or("")
            )
        })?;
        keys.push(VerifyKey {
            kid: jwk.common.key_id.clone(),
            alg,
            key,
            origin: path.display().to_string(),
            validation: Validation::default(),
        });
    }
    if keys.is_empty() {
        return Err(format!(
            "{}: no RS256 or ES256 key in the JWKS document",
            path.display()
        ));
    }
    Ok(keys)
}

/// The key ring in force, swapped whole when a key file changes.
#[derive(Clone)]
pub struct Keys {
    current: Arc<RwLock<Arc<KeyRing>>>,
    settings: Arc<AuthSettings>,
}

impl Keys {
    pub fn load(settings: &AuthSettings) -> Result<Keys, BootError> {
        let ring = KeyRing::load(settings).map_err(BootError::Settings)?;
        if ring.is_empty() {
            return Err(BootError::Settings(
                "auth: no verification key; set auth.jwks_file, auth.public_key_files or (development) auth.hs256_secret_file".into(),
            ));
        }
        Ok(Keys {
            current: Arc::new(RwLock::new(Arc::new(ring))),
            settings: Arc::new(settings.clone()),
        })
    }

    pub fn current(&self) -> Arc<KeyRing> {
        self.current
            .read()
            .map(|r| r.clone())
            .unwrap_or_else(|poisoned| poisoned.into_inner().clone())
    }

    fn files(&self) -> Vec<PathBuf> {
        let s = &self.settings;
        std::iter::once(&s.jwks_file)
            .chain(s.public_key_files.iter())
            .chain(std::iter::once(&s.hs256_secret_file))
            .filter(|f| !f.is_empty())
            .map(PathBuf::from)
            .collect()
    }

    /// Re-reads the key files whenever one changes (looked at every reload interval) until
    /// `shutdown`. A change that does not load keeps the keys in force and is logged.
    pub async fn watch(self, shutdown: CancellationToken) {
        let interval = Duration::from_secs(self.settings.reload_interval_seconds.max(1));
        let mut seen = stamps(&self.files());
        while sleep_or_cancel(interval, &shutdown).await {
            let now = stamps(&self.files());
            if now == seen {
                continue;
            }
            seen = now;
            match KeyRing::load(&self.settings) {
                Ok(ring) if !ring.is_empty() => {
                    let origins: Vec<_> = ring.keys.iter().map(|k| k.origin.clone()).collect();
                    if let Ok(mut current) = self.current.write() {
                        *current = Arc::new(ring);
                    }
                    tracing::info!(keys = ?origins, "auth: verification keys reloaded");
                }
                Ok(_) => tracing::warn!("auth: key files now hold no key; keeping the old keys"),
                Err(e) => {
                    tracing::warn!(error = %e, "auth: key files changed but do not load; keeping the old keys")
                }
            }
        }
    }
}
