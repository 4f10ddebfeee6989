//! The tower layer every gRPC server runs: authenticate the bearer token, authorise the method by
//! policy, rate-limit the tenant, and hand the identity to the handler. Refusals are answered here
//! as gRPC statuses; the handler never runs for them.

use std::{
    future::Future,
    num::NonZeroU32,
    pin::Pin,
    sync::Arc,
    task::{Context, Poll},
};

use governor::{DefaultKeyedRateLimiter, Quota, clock::Clock};
use tonic::{Code, Status};
use tonic_types::{ErrorDetails, StatusExt};

use super::{
    Identity, Role, Scope,
    keys::Keys,
    policy::{Denied, Policy},
};
use crate::{
    settings::{AuthSettings, RateLimitSettings},
    tenant::TenantId,
};

const HEALTH_PREFIX: &str = "/grpc.health.v1.Health/";
const REFLECTION_PREFIXES: [&str; 2] = [
    "/grpc.reflection.v1.ServerReflection/",
    "/grpc.reflection.v1alpha.ServerReflection/",
];
/// The calls a token for every tenant may make: they are about the event backbone, not one
/// tenant's data (a subscription, and the dead letters of the events of every tenant).
const ALL_TENANT_CALLS: [&str; 3] = [
    "/baton.events.v1.EventLog/Subscribe",
    "/baton.events.v1.DeadLetters/ListDeadLetters",
    "/baton.events.v1.DeadLetters/ReplayDeadLetter",
];

/// What the layer checks calls against.
pub struct Gate {
    /// `None`: authentication is off (loopback only; benchmarks and local experiments), and
    /// every call is the anonymous admin of the default tenant.
    keys: Option<Keys>,
    anonymous: Identity,
    policy: Policy,
    open_health: bool,
    open_reflection: bool,
    max_token_bytes: usize,
    limiter: Option<DefaultKeyedRateLimiter<String>>,
}

impl Gate {
    /// `keys` is `None` when auth is off (`auth.enabled = false`, which the server accepts on
    /// loopback only): every call is then served as `anonymous` with every role in `tenant`.
    pub fn new(
        keys: Option<Keys>,
        policy: Policy,
        auth: &AuthSettings,
        limits: &RateLimitSettings,
        tenant: TenantId,
    ) -> Gate {
        let limiter = NonZeroU32::new(limits.per_tenant_per_second).map(|rate| {
            let burst = NonZeroU32::new(limits.burst).unwrap_or(rate);
            DefaultKeyedRateLimiter::keyed(Quota::per_second(rate).allow_burst(burst))
        });
        Gate {
            keys,
            anonymous: Identity {
                sub: "anonymous".into(),
                scope: Scope::Tenant(tenant),
                roles: Role::ALL.to_vec(),
            },
            policy,
            open_health: auth.open_health,
            open_reflection: auth.open_reflection,
            max_token_bytes: auth.max_token_bytes,
            limiter,
        }
    }

    fn is_open(&self, path: &str) -> bool {
        (self.open_health && path.starts_with(HEALTH_PREFIX))
            || (self.open_reflection && REFLECTION_PREFIXES.iter().any(|p| path.starts_with(p)))
    }

    /// The caller of a request to `path` with these headers, or the status that refuses it.
    pub fn admit(&self, path: &str, headers: &http::HeaderMap) -> Result<Option<Identity>, Status> {
        if self.is_open(path) {
            return Ok(None);
        }
        let who = match &self.keys {
            Some(keys) => {
                let who = self.authenticate(keys, headers)?;
                self.authorise(path, &who)?;
                who
            }
            None => self.anonymous.clone(),
        };
        if let (Some(limiter), Scope::Tenant(tenant)) = (&self.limiter, &who.scope)
            && let Err(not_until) = limiter.check_key(&tenant.as_str().to_owned())
        {
            let wait = not_until.wait_time_from(limiter.clock().now());
            return Err(Status::with_error_details(
                Code::ResourceExhausted,
                format!("tenant {tenant} is over its rate limit; retry after {wait:?}"),
                ErrorDetails::with_retry_info(Some(wait)),
            ));
        }
        Ok(Some(who))
    }

    fn authenticate(&self, keys: &Keys, headers: &http::HeaderMap) -> Result<Identity, Status> {
        let unauthenticated = |why: &str| Status::unauthenticated(why.to_owned());
        let values: Vec<_> = headers
            .get_all(http::header::AUTHORIZATION)
            .iter()
            .collect();
        let value = match values.as_slice() {
            [] => {
                return Err(unauthenticated(
                    "missing authorization metadata; send `authorization: Bearer <JWT>` (`baton token` mints one)",
                ));
            }
            [one] => *one,
            _ => return Err(unauthenticated("more than one authorization value")),
        };
        if value.len() > self.max_token_bytes {
            return Err(Status::unauthenticated(format!(
                "authorization is longer than {} bytes",
                self.max_token_bytes
            )));
        }
        let value = value
            .to_str()
            .map_err(|_| unauthenticated("authorization is not ASCII"))?;
        let token = match value.split_once(' ') {
            Some((scheme, token)) if scheme.eq_ignore_ascii_case("bearer") => token.trim(),
            _ => return Err(unauthenticated("authorization must be `Bearer <JWT>`")),
        };
        keys.current()
            .verify(token)
            .map_err(Status::unauthenticated)
    }

    fn authorise(&self, path: &str, who: &Identity) -> Result<(), Status> {
        if who.scope == Scope::AllTenants && !ALL_TENANT_CALLS.contains(&path) {
            return Err(Status::permission_denied(
                "a token for every tenant (tenant \"*\") may only subscribe to event logs and read or replay dead letters; use a token for one tenant",
            ));
        }
        match self.policy.check(path, who) {
            Ok(()) => Ok(()),
            Err(Denied::Unlisted) => Err(Status::permission_denied(format!(
                "no role may call {path}: the policy (version {}) has no rule for it",
                self.policy.version
            ))),
            Err(Denied::NeedsOneOf(roles)) => {
                let names: Vec<_> = roles.iter().map(|r| r.as_str()).collect();
                Err(Status::permission_denied(format!(
                    "{path} requires the role {}; the token has {}",
                    names.join(" or "),
                    who.roles
                        .iter()
                        .map(|r| r.as_str())
                        .collect::<Vec<_>>()
                        .join(", ")
                )))
            }
        }
    }
}

/// [`Gate`] as a tower layer.
#[derive(Clone)]
pub struct AuthLayer {
    gate: Arc<Gate>,
}

impl AuthLayer {
    pub fn new(gate: Gate) -> Self {
        AuthLayer {
            gate: Arc::new(gate),
        }
    }
}

impl<S> tower::Layer<S> for AuthLayer {
    type Service = Authenticated<S>;
    fn layer(&self, inner: S) -> Self::Service {
        Authenticated {
            inner,
            gate: self.gate.clone(),
        }
    }
}

#[derive(Clone)]
pub struct Authenticated<S> {
    inner: S,
    gate: Arc<Gate>,
}

type BoxFuture<T, E> = Pin<Box<dyn Future<Output = Result<T, E>> + Send>>;

impl<S, B, R> tower::Service<http::Request<B>> for Authenticated<S>
where
    S: tower::Service<http::Request<B>, Response = http::Response<R>>,
    S::Future: Send + 'static,
    R: Default + Send + 'static,
    S::Error: Send + 'static,
{
    type Response = S::Response;
    type Error = S::Error;
    type Future = BoxFuture<S::Response, S::Error>;

    fn poll_ready(&mut self, cx: &mut Context<'_>) -> Poll<Result<(), Self::Error>> {
        self.inner.poll_ready(cx)
    }

    fn call(&mut self, mut req: http::Request<B>) -> Self::Future {
        match self.gate.admit(req.uri().path(), req.headers()) {
            Ok(who) => {
                if let Some(who) = who {
                    if let Scope::Tenant(tenant) = &who.scope {
                        req.extensions_mut().insert(tenant.clone());
                    }
                    tracing::Span::current().record("sub", who.sub.as_str());
                    req.extensions_mut().insert(who);
                }
                Box::pin(self.inner.call(req))
            }
            Err(status) => {
                tracing::debug!(rpc = %req.uri().path(), code = ?status.code(), reason = status.message(), "call refused");
                let response = status.into_http::<R>();
                Box::pin(async move { Ok(response) })
            }
        }
    }
}
