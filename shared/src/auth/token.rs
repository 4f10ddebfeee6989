//! Making tokens: the development key `baton up` creates, `baton token`, and the identity a
//! service presents to its peers (a mounted token file, or one it signs itself).

use std::{
    path::Path,
    sync::{Arc, Mutex},
    time::Duration,
};

use jsonwebtoken::{Algorithm, EncodingKey, Header};
use rand::RngCore;
use serde::Serialize;
use tonic::{Request, Status, metadata::MetadataValue, service::Interceptor};

use super::{ALL_TENANTS, Role};
use crate::{error::BootError, settings::AuthSettings};

/// What a token asserts.
#[derive(Debug, Clone)]
pub struct TokenSpec {
    pub sub: String,
    pub tenant: String,
    pub roles: Vec<Role>,
    pub ttl: Duration,
}

#[derive(Serialize)]
struct Claims<'a> {
    sub: &'a str,
    tenant: &'a str,
    roles: Vec<&'static str>,
    iss: &'a str,
    aud: &'a str,
    iat: i64,
    nbf: i64,
    exp: i64,
}

/// Signs tokens with a private key (RS256 / ES256 PEM) or the development HS256 secret.
#[derive(Clone)]
pub struct Signer {
    key: EncodingKey,
    alg: Algorithm,
    kid: Option<String>,
    issuer: String,
    audience: String,
}

impl Signer {
    /// The signer the settings make possible: `signing_key_file`, else the HS256 secret; `None`
    /// when neither is set (the service then needs `service_token_file`).
    pub fn from_settings(settings: &AuthSettings) -> Result<Option<Signer>, BootError> {
        let (key, alg) = if !settings.signing_key_file.is_empty() {
            let path = Path::new(&settings.signing_key_file);
            let pem = std::fs::read(path)
                .map_err(|e| BootError::Settings(format!("{}: {e}", path.display())))?;
            match EncodingKey::from_rsa_pem(&pem) {
                Ok(k) => (k, Algorithm::RS256),
                Err(_) => (
                    EncodingKey::from_ec_pem(&pem).map_err(|_| {
                        BootError::Settings(format!(
                            "{}: not an RSA or EC P-256 private key in PEM (PKCS#8)",
                            path.display()
                        ))
                    })?,
                    Algorithm::ES256,
                ),
            }
        } else if !settings.hs256_secret_file.is_empty()
            && Path::new(&settings.hs256_secret_file).exists()
        {
            let secret = std::fs::read(&settings.hs256_secret_file)
                .map_err(|e| BootError::Settings(format!("{}: {e}", settings.hs256_secret_file)))?;
            (
                EncodingKey::from_secret(secret.trim_ascii()),
                Algorithm::HS256,
            )
        } else {
            return Ok(None);
        };
        Ok(Some(Signer {
            key,
            alg,
            kid: Some(settings.signing_key_id.clone()).filter(|k| !k.is_empty()),
            issuer: settings.issuer.clone(),
            audience: settings.audience.clone(),
        }))
    }

    /// A development signer over an HS256 `secret`.
    pub fn hs256(secret: &[u8], issuer: &str, audience: &str) -> Signer {
        Signer {
            key: EncodingKey::from_secret(secret),
            alg: Algorithm::HS256,
            kid: None,
            issuer: issuer.into(),
            audience: audience.into(),
        }
    }

    /// A token for `spec`, valid from now for its ttl.
    pub fn mint(&self, spec: &TokenSpec) -> Result<String, String> {
        let now = chrono::Utc::now().timestamp();
        let ttl = i64::try_from(spec.ttl.as_secs()).unwrap_or(i64::MAX / 2);
        let claims = Claims {
            sub: &spec.sub,
            tenant: &spec.tenant,
            roles: spec.roles.iter().map(|r| r.as_str()).collect(),
            iss: &self.issuer,
            aud: &self.audience,
            iat: now,
            nbf: now,
            exp: now.saturating_add(ttl),
        };
        let mut header = Header::new(self.alg);
        header.kid = self.kid.clone();
        jsonwebtoken::encode(&header, &claims, &self.key).map_err(|e| e.to_string())
    }
}

/// Creates the development HS256 secret at `path` if it is not there (mode 0600), and says
/// whether it did.
pub fn ensure_dev_secret(path: &Path) -> Result<bool, BootError> {
    if path.exists() {
        return Ok(false);
    }
    if let Some(dir) = path.parent() {
        std::fs::create_dir_all(dir)
            .map_err(|e| BootError::Settings(format!("{}: {e}", dir.display())))?;
    }
    let mut bytes = [0u8; 48];
    rand::rng().fill_bytes(&mut bytes);
    let secret = base64::Engine::encode(&base64::engine::general_purpose::URL_SAFE_NO_PAD, bytes);
    write_private(path, secret.as_bytes())?;
    Ok(true)
}

/// Writes a new file only its owner may read (a key); refuses to overwrite one.
#[cfg(unix)]
pub fn write_private(path: &Path, bytes: &[u8]) -> Result<(), BootError> {
    use std::{io::Write, os::unix::fs::OpenOptionsExt};
    let mut file = std::fs::OpenOptions::new()
        .write(true)
        .create_new(true)
        .mode(0o600)
        .open(path)
        .map_err(|e| BootError::Settings(format!("{}: {e}", path.display())))?;
    file.write_all(bytes)
        .map_err(|e| BootError::Settings(format!("{}: {e}", path.display())))
}

/// Writes a new file (a key).
#[cfg(not(unix))]
pub fn write_private(path: &Path, bytes: &[u8]) -> Result<(), BootError> {
    std::fs::write(path, bytes).map_err(|e| BootError::Settings(format!("{}: {e}", path.display())))
}

/// How long a self-signed service token lives; a fresh one is made when half of it is gone.
const SERVICE_TOKEN_TTL: Duration = Duration::from_secs(3600);

/// The identity a service presents when it calls a peer: `service` role, every tenant.
#[derive(Clone)]
pub struct ServiceCredentials {
    source: Source,
}

/// A signed token and when to sign a fresh one.
type Cached = (String, chrono::DateTime<chrono::Utc>);

#[derive(Clone)]
enum Source {
    File(String),
    Signed {
        signer: Signer,
        sub: String,
        cached: Arc<Mutex<Option<Cached>>>,
    },
    None,
    /// Neither a token file nor a signing key: fine for a service that calls no peer; a
    /// consumer reports this reason on every attempt.
    Missing(&'static str),
}

const NO_CREDENTIALS: &str = "auth: this service calls peers and needs auth.service_token_file or a key to sign its own token (auth.signing_key_file)";

impl ServiceCredentials {
    /// The credentials of service `name` under `settings`: `service_token_file` if set, else a
    /// token it signs itself.
    pub fn from_settings(name: &str, settings: &AuthSettings) -> Result<Self, BootError> {
        let source = if !settings.enabled {
            Source::None
        } else if !settings.service_token_file.is_empty() {
            Source::File(settings.service_token_file.clone())
        } else {
            match Signer::from_settings(settings)? {
                Some(signer) => Source::Signed {
                    signer,
                    sub: format!("service:{name}"),
                    cached: Arc::new(Mutex::new(None)),
                },
                None => Source::Missing(NO_CREDENTIALS),
            }
        };
        Ok(ServiceCredentials { source })
    }

    /// The `authorization` value to send now (`None` when auth is off).
    pub fn bearer(&self) -> Result<Option<String>, String> {
        match &self.source {
            Source::None => Ok(None),
            Source::Missing(why) => Err((*why).to_owned()),
            Source::File(path) => std::fs::read_to_string(path)
                .map(|t| Some(format!("Bearer {}", t.trim())))
                .map_err(|e| format!("service token {path}: {e}")),
            Source::Signed {
                signer,
                sub,
                cached,
            } => {
                let now = chrono::Utc::now();
                let mut slot = cached
                    .lock()
                    .map_err(|_| "token cache poisoned".to_owned())?;
                if let Some((token, renew_at)) = slot.as_ref()
                    && *renew_at > now
                {
                    return Ok(Some(format!("Bearer {token}")));
                }
                let token = signer.mint(&TokenSpec {
                    sub: sub.clone(),
                    tenant: ALL_TENANTS.into(),
                    roles: vec![Role::Service],
                    ttl: SERVICE_TOKEN_TTL,
                })?;
                let renew_at = now + SERVICE_TOKEN_TTL / 2;
                *slot = Some((token.clone(), renew_at));
                Ok(Some(format!("Bearer {token}")))
            }
        }
    }

    /// The `authorization` value for a call on behalf of one tenant (a token for every tenant
    /// may only subscribe to event logs). A signed identity mints a short-lived token for
    /// `tenant`; a token file is sent as it is, so it must be that tenant's.
    pub fn bearer_for_tenant(&self, tenant: &str) -> Result<Option<String>, String> {
        match &self.source {
            Source::Signed { signer, sub, .. } => signer
                .mint(&TokenSpec {
                    sub: sub.clone(),
                    tenant: tenant.to_owned(),
                    roles: vec![Role::Service],
                    ttl: SERVICE_TOKEN_TTL,
                })
                .map(|t| Some(format!("Bearer {t}"))),
            _ => self.bearer(),
        }
    }

    /// Why this service has no identity to present, if it has none.
    pub fn missing(&self) -> Option<&'static str> {
        match self.source {
            Source::Missing(why) => Some(why),
            _ => None,
        }
    }

    /// A client interceptor adding the current token to every call.
    pub fn interceptor(&self) -> Result<BearerInterceptor, String> {
        Ok(BearerInterceptor::new(self.bearer()?.as_deref()))
    }
}

/// Adds a fixed `authorization` header to every call of a client.
#[derive(Clone)]
pub struct BearerInterceptor {
    value: Option<MetadataValue<tonic::metadata::Ascii>>,
}

impl BearerInterceptor {
    /// `authorization` = `value` (e.g. `Bearer eyJ…`); `None` sends nothing.
    pub fn new(value: Option<&str>) -> Self {
        BearerInterceptor {
            value: value.and_then(|v| v.parse().ok()),
        }
    }

    /// `Bearer <token>`.
    pub fn token(token: &str) -> Self {
        Self::new(Some(&format!("Bearer {token}")))
    }
}

impl Interceptor for BearerInterceptor {
    /// A request that already carries `authorization` (one call made as someone else) keeps it.
    fn call(&mut self, mut request: Request<()>) -> Result<Request<()>, Status> {
        if let Some(v) = &self.value
            && !request.metadata().contains_key("authorization")
        {
            request.metadata_mut().insert("authorization", v.clone());
        }
        Ok(request)
    }
}
