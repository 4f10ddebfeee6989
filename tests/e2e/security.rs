//! Identity at the edge of every service: every method of every service (read from the descriptor
//! set, so a new RPC cannot be left out) refuses calls without a valid token, refuses roles the
//! policy does not allow, and serves the allowed ones; health and reflection stay open.

use std::str::FromStr;

use baton_e2e::TestSuite;
use baton_shared::{
    ServiceName,
    auth::{
        Role,
        policy::{Allowed, Policy},
    },
    testing::{TEST_SECRET, plain_channel, token},
};
use jsonwebtoken::{Algorithm, EncodingKey, Header};
use prost::Message;
use tonic::{Code, transport::Channel};

/// One RPC of the descriptor set.
#[derive(Debug, Clone)]
struct Method {
    /// `/package.Service/Method`.
    path: String,
    client_streaming: bool,
    server_streaming: bool,
}

/// Every method of every Baton service, with the services that serve it.
fn methods() -> Vec<(Method, Vec<ServiceName>)> {
    let set = prost_types::FileDescriptorSet::decode(baton_proto::FILE_DESCRIPTOR_SET)
        .expect("descriptor set decodes");
    let mut out = Vec::new();
    for file in &set.file {
        let package = file.package();
        for service in &file.service {
            let servers = match package {
                "baton.capture.v1" => vec![ServiceName::Capture],
                "baton.nurture.v1" => vec![ServiceName::Nurture],
                "baton.qualification.v1" => vec![ServiceName::Qualification],
                "baton.distribution.v1" => vec![ServiceName::Distribution],
                "baton.reporting.v1" => vec![ServiceName::Reporting],
                // Every service serves its own event log.
                "baton.events.v1" => ServiceName::ALL.to_vec(),
                other => panic!("a service in package {other} that no test knows where to call"),
            };
            for m in &service.method {
                out.push((
                    Method {
                        path: format!("/{package}.{}/{}", service.name(), m.name()),
                        client_streaming: m.client_streaming(),
                        server_streaming: m.server_streaming(),
                    },
                    servers.clone(),
                ));
            }
        }
    }
    assert!(
        out.len() > 60,
        "only {} methods in the descriptor set",
        out.len()
    );
    out
}

/// Calls `method` with an empty message (valid for every message type) and `authorization`,
/// and returns the status code of the answer (OK for a stream that opened).
async fn call(channel: &Channel, method: &Method, authorization: Option<&str>) -> Code {
    let mut grpc = tonic::client::Grpc::new(channel.clone());
    grpc.ready().await.expect("channel ready");
    let path = http::uri::PathAndQuery::from_str(&method.path).expect("a path");
    let codec = tonic_prost::ProstCodec::<(), ()>::default();
    let mut meta = tonic::metadata::MetadataMap::new();
    if let Some(v) = authorization {
        meta.insert("authorization", v.parse().expect("ASCII metadata"));
    }
    let result = match (method.client_streaming, method.server_streaming) {
        (false, false) => {
            let req = tonic::Request::from_parts(meta, Default::default(), ());
            grpc.unary(req, path, codec).await.map(|_| ())
        }
        (false, true) => {
            let req = tonic::Request::from_parts(meta, Default::default(), ());
            grpc.server_streaming(req, path, codec).await.map(|_| ())
        }
        (true, false) => {
            let req =
                tonic::Request::from_parts(meta, Default::default(), tokio_stream::empty::<()>());
            grpc.client_streaming(req, path, codec).await.map(|_| ())
        }
        (true, true) => {
            let req =
                tonic::Request::from_parts(meta, Default::default(), tokio_stream::empty::<()>());
            grpc.streaming(req, path, codec).await.map(|_| ())
        }
    };
    match result {
        Ok(()) => Code::Ok,
        Err(status) => status.code(),
    }
}

/// A token with exactly these claims, signed HS256 with `secret` (the servers' test key unless
/// a test says otherwise).
fn signed(claims: serde_json::Value, secret: &[u8]) -> String {
    jsonwebtoken::encode(
        &Header::new(Algorithm::HS256),
        &claims,
        &EncodingKey::from_secret(secret),
    )
    .expect("sign")
}

fn now() -> i64 {
    chrono::Utc::now().timestamp()
}

fn claims(overrides: serde_json::Value) -> serde_json::Value {
    let mut c = serde_json::json!({
        "sub": "mallory", "tenant": "default", "roles": ["admin"],
        "iss": "baton", "aud": "baton", "iat": now(), "nbf": now(), "exp": now() + 600,
    });
    for (k, v) in overrides.as_object().expect("an object") {
        if v.is_null() {
            c.as_object_mut().expect("an object").remove(k);
        } else {
            c[k] = v.clone();
        }
    }
    c
}

/// Each kind of bad credentials, named.
fn bad_credentials() -> Vec<(&'static str, String)> {
    let bearer = |t: String| format!("Bearer {t}");
    let key = TEST_SECRET.as_bytes();
    vec![
        ("not a JWT", bearer("not-a-jwt".into())),
        (
            "another scheme",
            format!("Basic {}", signed(claims(serde_json::json!({})), key)),
        ),
        (
            "expired",
            bearer(signed(
                claims(serde_json::json!({"exp": now() - 3600})),
                key,
            )),
        ),
        (
            "not valid yet",
            bearer(signed(
                claims(serde_json::json!({"nbf": now() + 3600})),
                key,
            )),
        ),
        (
            "wrong audience",
            bearer(signed(claims(serde_json::json!({"aud": "billing"})), key)),
        ),
        (
            "wrong issuer",
            bearer(signed(claims(serde_json::json!({"iss": "evil"})), key)),
        ),
        (
            "wrong signature",
            bearer(signed(
                claims(serde_json::json!({})),
                b"another-secret-0123456789abcdef0123456789",
            )),
        ),
        (
            "no exp",
            bearer(signed(claims(serde_json::json!({"exp": null})), key)),
        ),
        (
            "no tenant",
            bearer(signed(claims(serde_json::json!({"tenant": null})), key)),
        ),
        (
            "an unknown role",
            bearer(signed(
                claims(serde_json::json!({"roles": ["wizard"]})),
                key,
            )),
        ),
        (
            "no role",
            bearer(signed(claims(serde_json::json!({"roles": []})), key)),
        ),
        (
            "over 8 KiB",
            bearer(signed(
                claims(serde_json::json!({"pad": "x".repeat(9 * 1024)})),
                key,
            )),
        ),
    ]
}

/// A role the policy does not allow on `path`, if there is one.
fn denied_role(policy: &Policy, path: &str) -> Option<Role> {
    match policy.rule(path) {
        Some(Allowed::Roles(allowed)) => Role::ALL.into_iter().find(|r| !allowed.contains(r)),
        _ => None,
    }
}

/// An allowed role on `path`.
fn allowed_role(policy: &Policy, path: &str) -> Role {
    match policy.rule(path) {
        Some(Allowed::Roles(allowed)) => allowed[0],
        Some(Allowed::Anyone) => Role::FieldSales,
        None => panic!("the policy has no rule for {path}"),
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn every_method_of_every_service_needs_a_valid_token_and_an_allowed_role() {
    let suite = TestSuite::start().await;
    let policy = Policy::builtin();
    let bad = bad_credentials();
    let mut checked = 0;
    for name in ServiceName::ALL {
        let channel = plain_channel(&suite.suite.endpoint(name)).await;
        for (method, servers) in methods() {
            if !servers.contains(&name) {
                continue;
            }
            let path = method.path.as_str();
            assert_eq!(
                call(&channel, &method, None).await,
                Code::Unauthenticated,
                "{name} {path} without a token"
            );
            for (kind, value) in &bad {
                assert_eq!(
                    call(&channel, &method, Some(value)).await,
                    Code::Unauthenticated,
                    "{name} {path} with a token that is {kind}"
                );
            }
            if let Some(role) = denied_role(&policy, path) {
                let t = token("eve", "default", &[role]);
                assert_eq!(
                    call(&channel, &method, Some(&format!("Bearer {t}"))).await,
                    Code::PermissionDenied,
                    "{name} {path} as {role}, which the policy does not allow"
                );
            }
            let role = allowed_role(&policy, path);
            let tenant = if role == Role::Service && path.ends_with("/Subscribe") {
                "*"
            } else {
                "default"
            };
            let t = token("alice", tenant, &[role]);
            let code = call(&channel, &method, Some(&format!("Bearer {t}"))).await;
            assert!(
                !matches!(code, Code::Unauthenticated | Code::PermissionDenied),
                "{name} {path} as {role}, which the policy allows, answered {code:?}"
            );
            checked += 1;
        }
    }
    assert!(checked > 60, "{checked} methods checked");

    // Health and reflection answer without a token (probes, grpcurl).
    let channel = plain_channel(&suite.suite.endpoint(ServiceName::Capture)).await;
    let health = Method {
        path: "/grpc.health.v1.Health/Check".into(),
        client_streaming: false,
        server_streaming: false,
    };
    assert_eq!(call(&channel, &health, None).await, Code::Ok);
    suite.stop().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_token_for_every_tenant_only_subscribes_and_a_refusal_says_what_to_do() {
    let suite = TestSuite::start().await;
    let channel = plain_channel(&suite.suite.endpoint(ServiceName::Capture)).await;
    let get_lead = Method {
        path: "/baton.capture.v1.CaptureService/GetLead".into(),
        client_streaming: false,
        server_streaming: false,
    };
    let all = token("service:x", "*", &[Role::Service]);
    assert_eq!(
        call(&channel, &get_lead, Some(&format!("Bearer {all}"))).await,
        Code::PermissionDenied
    );
    // "*" is only for the service role.
    let wide = signed(
        claims(serde_json::json!({"tenant": "*", "roles": ["admin"]})),
        TEST_SECRET.as_bytes(),
    );
    assert_eq!(
        call(&channel, &get_lead, Some(&format!("Bearer {wide}"))).await,
        Code::Unauthenticated
    );

    // The reasons a client can act on.
    let mut capture = baton_proto::capture::v1::capture_service_client::CaptureServiceClient::new(
        channel.clone(),
    );
    let missing = capture
        .get_lead(baton_proto::capture::v1::GetLeadRequest::default())
        .await
        .unwrap_err();
    assert!(missing.message().contains("Bearer"), "{missing:?}");
    let mut req = tonic::Request::new(baton_proto::capture::v1::GetLeadRequest::default());
    let expired = signed(
        claims(serde_json::json!({"exp": now() - 3600})),
        TEST_SECRET.as_bytes(),
    );
    req.metadata_mut().insert(
        "authorization",
        format!("Bearer {expired}").parse().unwrap(),
    );
    let status = capture.get_lead(req).await.unwrap_err();
    assert!(status.message().contains("expired"), "{status:?}");
    assert!(
        !status.message().contains(&expired),
        "the token is never echoed"
    );
    let mut req = tonic::Request::new(baton_proto::capture::v1::EraseLeadRequest::default());
    let marketing = token("m", "default", &[Role::Marketing]);
    req.metadata_mut().insert(
        "authorization",
        format!("Bearer {marketing}").parse().unwrap(),
    );
    let denied = capture.erase_lead(req).await.unwrap_err();
    assert_eq!(denied.code(), Code::PermissionDenied);
    assert!(
        denied.message().contains("requires the role admin"),
        "{denied:?}"
    );
    suite.stop().await;
}
