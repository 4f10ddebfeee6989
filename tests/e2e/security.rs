//! Identity at the edge of every service: every method of every service (read from the descriptor
//! set, so a new RPC cannot be left out) refuses calls without a valid token, refuses roles the
//! policy does not allow, and serves the allowed ones; health and reflection stay open.

use std::str::FromStr;

use std::time::Duration;

use baton_e2e::{
    TestSuite, activity, captured_id, eventually, first_numerator, invalid_fields, kpis_when, lead,
    sales::{approve_contract, assigned, record_bant, sales_floor},
};
use baton_proto::{
    capture::v1::{
        ActivityKind, GetLeadRequest, ListLeadsRequest, PageKind,
        capture_service_client::CaptureServiceClient,
    },
    distribution::v1::{
        CreateHandoffRequest, ExplainAssignmentRequest, GetHandoffRequest,
        GetHandoffSettingsRequest, GetRoutingRulesRequest, GetTeamWeightingRequest,
        GetTouchRulesRequest, HandoffSettings, ListAssignmentsRequest, ListRepsRequest,
        ListTeamsRequest, SetHandoffSettingsRequest, SetTouchRulesRequest,
        distribution_service_client::DistributionServiceClient,
    },
    events::v1::{
        ListDeadLettersRequest, SubscribeRequest, dead_letters_client::DeadLettersClient,
        event_log_client::EventLogClient,
    },
    nurture::v1::{
        self as nurture_pb, ListEnrollmentsRequest, nurture_service_client::NurtureServiceClient,
    },
    qualification::v1::{
        ExplainScoreRequest, GetRankRequest, GetRankRulesRequest, GetScoreRequest,
        GetScoringModelRequest, GetStageRequest, GetStageRulesRequest, ListScoringModelsRequest,
        SetRankRulesRequest, SetStageRulesRequest,
        qualification_service_client::QualificationServiceClient,
    },
    reporting::v1::{
        CloseScorecardRequest, GetAttainmentRequest, GetContractRequest, GetFunnelRequest,
        GetKpisRequest, GetLeadJourneyRequest, GetPlanProgressRequest, GetPlanRequest,
        GetScorecardRequest, GetTargetAccountsRequest, GetWinFactorsRequest, Granularity,
        ListContractsRequest, ListKpisRequest, ListPlansRequest, ListScorecardsRequest,
        SetTargetAccountsRequest, TargetAccounts, contract_service_client::ContractServiceClient,
        kpi_service_client::KpiServiceClient, planning_service_client::PlanningServiceClient,
        reporting_service_client::ReportingServiceClient,
    },
};
use baton_shared::{
    ServiceName,
    auth::{
        Role,
        policy::{Allowed, Policy},
    },
    peer::AuthChannel,
    testing::{TEST_SECRET, as_user, channel_with, plain_channel, token},
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

/// Clients of every service as a caller of `tenant` with every role.
struct Tenant {
    capture: CaptureServiceClient<AuthChannel>,
    nurture: NurtureServiceClient<AuthChannel>,
    qualification: QualificationServiceClient<AuthChannel>,
    distribution: DistributionServiceClient<AuthChannel>,
    reporting: ReportingServiceClient<AuthChannel>,
    kpis: KpiServiceClient<AuthChannel>,
    plans: PlanningServiceClient<AuthChannel>,
    contracts: ContractServiceClient<AuthChannel>,
}

impl Tenant {
    async fn of(suite: &TestSuite, tenant: &str) -> Tenant {
        let t = token("tester", tenant, &Role::ALL);
        let ch = async |name| channel_with(&suite.suite.endpoint(name), &t).await;
        let reporting = ch(ServiceName::Reporting).await;
        Tenant {
            capture: CaptureServiceClient::new(ch(ServiceName::Capture).await),
            nurture: NurtureServiceClient::new(ch(ServiceName::Nurture).await),
            qualification: QualificationServiceClient::new(ch(ServiceName::Qualification).await),
            distribution: DistributionServiceClient::new(ch(ServiceName::Distribution).await),
            reporting: ReportingServiceClient::new(reporting.clone()),
            kpis: KpiServiceClient::new(reporting.clone()),
            plans: PlanningServiceClient::new(reporting.clone()),
            contracts: ContractServiceClient::new(reporting),
        }
    }
}

fn not_found<T: std::fmt::Debug>(what: &str, r: Result<tonic::Response<T>, tonic::Status>) {
    match r {
        Err(s) if s.code() == Code::NotFound => {}
        other => panic!("tenant B asked for {what} of tenant A and got {other:?}"),
    }
}

/// Events of the log at `endpoint` a subscriber with `token` receives within `wait`.
async fn events_seen(endpoint: &str, token: &str, wait: std::time::Duration) -> usize {
    let mut log = EventLogClient::new(channel_with(endpoint, token).await);
    let mut stream = log
        .subscribe(SubscribeRequest {
            after_position: 0,
            max_batch: 0,
            ..Default::default()
        })
        .await
        .expect("subscribe")
        .into_inner();
    let mut n = 0;
    while let Ok(Ok(Some(_))) = tokio::time::timeout(wait, stream.message()).await {
        n += 1;
    }
    n
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn tenant_b_sees_nothing_of_tenant_a_in_any_get_or_list() {
    let suite = TestSuite::start().await;
    let mut a = Tenant::of(&suite, "default").await;
    let mut b = Tenant::of(&suite, "tenant-b").await;

    // Tenant A: a sales floor, an approved contract, target accounts, spend, an MQL lead that
    // is assigned and handed off.
    sales_floor(&mut a.distribution, "is-a", "fs-a", 1).await;
    approve_contract(
        &mut a.contracts,
        "c-a",
        baton_shared::contract::example_terms("is-a", "fs-a", "is-a@a.example", "fs-a@a.example"),
    )
    .await;
    a.kpis
        .set_target_accounts(SetTargetAccountsRequest {
            accounts: Some(TargetAccounts {
                web_domains: vec!["a.example".into()],
                ..Default::default()
            }),
            expected_version: 0,
        })
        .await
        .unwrap();
    let lead_id = captured_id(&mut a.capture, lead(1)).await;
    for (k, kind) in [ActivityKind::MeetingBooked, ActivityKind::FreeTrialStarted]
        .into_iter()
        .enumerate()
    {
        a.capture
            .record_activity(activity(
                &lead_id,
                &format!("a-{k}"),
                kind,
                PageKind::Unspecified,
            ))
            .await
            .unwrap();
    }
    assigned(&a.distribution, &lead_id).await;
    record_bant(&suite, &lead_id, &["budget", "need"]).await;
    let handoff = a
        .distribution
        .create_handoff(as_user(
            "is0@example.co.jp",
            CreateHandoffRequest {
                request_id: "h-a".into(),
                lead_id: lead_id.clone(),
                is_team: "is-a".into(),
                fs_team: "fs-a".into(),
                meeting_at: Some(baton_shared::time::to_proto(
                    chrono::Utc::now() + chrono::Duration::days(2),
                )),
                ..Default::default()
            },
        ))
        .await
        .unwrap()
        .into_inner();
    let contract_id = a
        .contracts
        .list_contracts(ListContractsRequest {
            is_team: "is-a".into(),
            fs_team: "fs-a".into(),
        })
        .await
        .unwrap()
        .into_inner()
        .contracts[0]
        .contract_id
        .clone();
    // A's numbers of that contract, and a scorecard of an older contract whose period is over.
    let a_attainment = eventually(
        "A's attainment counts the handoff",
        Duration::from_secs(60),
        || {
            let mut c = a.contracts.clone();
            let contract_id = contract_id.clone();
            async move {
                let att = c
                    .get_attainment(GetAttainmentRequest {
                        contract_id,
                        ..Default::default()
                    })
                    .await
                    .ok()?
                    .into_inner();
                att.targets
                    .iter()
                    .any(|t| t.target == "handoffs" && t.numerator == 1)
                    .then_some(att)
            }
        },
    )
    .await;
    let mut old_terms = baton_shared::contract::example_terms(
        "is-old",
        "fs-old",
        "is-a@a.example",
        "fs-a@a.example",
    );
    old_terms.period_start = Some(baton_shared::time::to_proto(
        chrono::Utc::now() - chrono::Duration::days(40),
    ));
    old_terms.period_end = Some(baton_shared::time::to_proto(
        chrono::Utc::now() - chrono::Duration::days(10),
    ));
    let old_start = old_terms.period_start;
    let old_contract = approve_contract(&mut a.contracts, "c-old", old_terms).await;
    let a_scorecard = a
        .contracts
        .close_scorecard(CloseScorecardRequest {
            contract_id: old_contract.clone(),
            period_start: old_start,
        })
        .await
        .unwrap()
        .into_inner();
    // A saves its rank, stage and touch rules again: each gets a new version in A only.
    let rank = a
        .qualification
        .get_rank_rules(GetRankRulesRequest {})
        .await
        .unwrap()
        .into_inner();
    let rank = a
        .qualification
        .set_rank_rules(SetRankRulesRequest {
            expected_version: rank.version,
            rules: Some(rank),
        })
        .await
        .unwrap()
        .into_inner();
    let stage = a
        .qualification
        .get_stage_rules(GetStageRulesRequest {})
        .await
        .unwrap()
        .into_inner();
    let stage = a
        .qualification
        .set_stage_rules(SetStageRulesRequest {
            expected_version: stage.version,
            rules: Some(stage),
        })
        .await
        .unwrap()
        .into_inner();
    let touch = a
        .distribution
        .get_touch_rules(GetTouchRulesRequest {})
        .await
        .unwrap()
        .into_inner();
    let touch = a
        .distribution
        .set_touch_rules(SetTouchRulesRequest {
            expected_version: touch.version,
            rules: Some(touch),
        })
        .await
        .unwrap()
        .into_inner();
    let a_settings = a
        .distribution
        .set_handoff_settings(SetHandoffSettingsRequest {
            settings: Some(HandoffSettings {
                allow_uncontracted_handoffs: true,
                ..Default::default()
            }),
            expected_version: 0,
        })
        .await
        .unwrap()
        .into_inner();
    let a_models: Vec<String> = a
        .qualification
        .list_scoring_models(ListScoringModelsRequest::default())
        .await
        .unwrap()
        .into_inner()
        .models
        .into_iter()
        .map(|m| m.model_id)
        .collect();
    let today = chrono::Utc::now();
    let whole = GetKpisRequest {
        kpis: vec!["leads".into(), "mqls".into()],
        start_time: Some(baton_shared::time::to_proto(
            today - chrono::Duration::days(2),
        )),
        end_time: Some(baton_shared::time::to_proto(
            today + chrono::Duration::days(2),
        )),
        granularity: Granularity::Whole as i32,
        ..Default::default()
    };
    kpis_when(&a.kpis, "A's lead in A's KPIs", &whole, |s| {
        first_numerator(s, "leads") == Some(1.0)
    })
    .await;
    // What A sees, so that B's empty answers below are not vacuous.
    assert!(
        a.capture
            .get_lead(GetLeadRequest {
                lead_id: lead_id.clone()
            })
            .await
            .is_ok()
    );
    assert!(
        a.distribution
            .get_handoff(GetHandoffRequest {
                handoff_id: handoff.handoff_id.clone()
            })
            .await
            .is_ok()
    );

    // Tenant B, method by method.
    let mut covered = Vec::new();
    let mut cover = |m: &str| covered.push(m.to_owned());
    let id = || lead_id.clone();
    not_found(
        "GetLead",
        b.capture.get_lead(GetLeadRequest { lead_id: id() }).await,
    );
    cover("CaptureService/GetLead");
    let leads = b
        .capture
        .list_leads(ListLeadsRequest::default())
        .await
        .unwrap()
        .into_inner();
    assert!(leads.leads.is_empty(), "{leads:?}");
    cover("CaptureService/ListLeads");
    let enrolments = b
        .nurture
        .list_enrollments(ListEnrollmentsRequest {
            lead_id: id(),
            ..Default::default()
        })
        .await;
    match enrolments {
        Ok(r) => assert!(r.into_inner().enrollments.is_empty()),
        Err(s) => assert_eq!(s.code(), Code::NotFound),
    }
    let all = b
        .nurture
        .list_enrollments(ListEnrollmentsRequest::default())
        .await
        .unwrap();
    assert!(all.into_inner().enrollments.is_empty());
    cover("NurtureService/ListEnrollments");
    // Tenant A's own sequence and settings; tenant B sees its own defaults only.
    a.nurture
        .create_sequence(nurture_pb::CreateSequenceRequest {
            key: "a_only".into(),
            name: "A only".into(),
            definition: Some(nurture_pb::SequenceDefinition {
                steps: vec![nurture_pb::Step {
                    id: "hi".into(),
                    kind: Some(nurture_pb::step::Kind::SendEmail(nurture_pb::SendEmail {
                        subject: "Hi".into(),
                        text_body: "Hi".into(),
                        from_address: "a@a.example".into(),
                        ..Default::default()
                    })),
                }],
                enrollment: None,
            }),
        })
        .await
        .unwrap();
    let a_nurture = a
        .nurture
        .get_nurture_settings(nurture_pb::GetNurtureSettingsRequest {})
        .await
        .unwrap()
        .into_inner();
    a.nurture
        .set_nurture_settings(nurture_pb::SetNurtureSettingsRequest {
            settings: Some(nurture_pb::NurtureSettings {
                cap_max_emails: 9,
                ..a_nurture
            }),
            expected_version: 1,
        })
        .await
        .unwrap();
    not_found(
        "GetSequence",
        b.nurture
            .get_sequence(nurture_pb::GetSequenceRequest {
                key: "a_only".into(),
                version: 0,
            })
            .await,
    );
    cover("NurtureService/GetSequence");
    let b_sequences = b
        .nurture
        .list_sequences(nurture_pb::ListSequencesRequest::default())
        .await
        .unwrap()
        .into_inner()
        .sequences;
    assert!(
        b_sequences.iter().all(|s| s.key != "a_only"),
        "{b_sequences:?}"
    );
    cover("NurtureService/ListSequences");
    let b_touches = b
        .nurture
        .list_touches(nurture_pb::ListTouchesRequest {
            lead_id: id(),
            ..Default::default()
        })
        .await
        .unwrap()
        .into_inner();
    assert!(b_touches.touches.is_empty());
    cover("NurtureService/ListTouches");
    let b_pool = b
        .nurture
        .get_recycle_pool(nurture_pb::GetRecyclePoolRequest {})
        .await
        .unwrap()
        .into_inner();
    assert_eq!((b_pool.known_leads, b_pool.pool_leads), (0, 0));
    cover("NurtureService/GetRecyclePool");
    let b_settings = b
        .nurture
        .get_nurture_settings(nurture_pb::GetNurtureSettingsRequest {})
        .await
        .unwrap()
        .into_inner();
    assert_eq!((b_settings.version, b_settings.cap_max_emails), (1, 3));
    cover("NurtureService/GetNurtureSettings");
    a.nurture
        .create_segment(nurture_pb::CreateSegmentRequest {
            key: "a_segment".into(),
            name: "A's segment".into(),
            definition: Some(nurture_pb::SegmentDefinition::default()),
        })
        .await
        .unwrap();
    not_found(
        "GetSegment",
        b.nurture
            .get_segment(nurture_pb::GetSegmentRequest {
                key: "a_segment".into(),
                version: 0,
            })
            .await,
    );
    cover("NurtureService/GetSegment");
    let b_segments = b
        .nurture
        .list_segments(nurture_pb::ListSegmentsRequest::default())
        .await
        .unwrap()
        .into_inner();
    assert!(b_segments.segments.is_empty());
    cover("NurtureService/ListSegments");
    let b_preview = b
        .nurture
        .preview_segment(nurture_pb::PreviewSegmentRequest {
            definition: Some(nurture_pb::SegmentDefinition::default()),
            ..Default::default()
        })
        .await
        .unwrap()
        .into_inner();
    assert_eq!(
        b_preview.count, 0,
        "tenant B's segment sees none of A's leads"
    );
    not_found(
        "GetScore",
        b.qualification
            .get_score(GetScoreRequest { lead_id: id() })
            .await,
    );
    cover("QualificationService/GetScore");
    not_found(
        "GetRank",
        b.qualification
            .get_rank(GetRankRequest { lead_id: id() })
            .await,
    );
    cover("QualificationService/GetRank");
    not_found(
        "GetStage",
        b.qualification
            .get_stage(GetStageRequest { lead_id: id() })
            .await,
    );
    cover("QualificationService/GetStage");
    not_found(
        "ExplainScore",
        b.qualification
            .explain_score(ExplainScoreRequest { lead_id: id() })
            .await,
    );
    cover("QualificationService/ExplainScore");
    for model_id in &a_models {
        let got = b
            .qualification
            .get_scoring_model(GetScoringModelRequest {
                model_id: model_id.clone(),
            })
            .await;
        not_found("GetScoringModel", got);
    }
    let b_models = b
        .qualification
        .list_scoring_models(ListScoringModelsRequest::default())
        .await
        .unwrap()
        .into_inner()
        .models;
    assert!(b_models.iter().all(|m| !a_models.contains(&m.model_id)));
    cover("QualificationService/GetScoringModel");
    cover("QualificationService/ListScoringModels");
    // Rules: B's are its own, older than the versions A just saved.
    let b_rank = b
        .qualification
        .get_rank_rules(GetRankRulesRequest {})
        .await
        .unwrap()
        .into_inner();
    assert!(
        b_rank.version < rank.version,
        "A's rank rules leaked: {b_rank:?} vs {rank:?}"
    );
    cover("QualificationService/GetRankRules");
    let b_stage = b
        .qualification
        .get_stage_rules(GetStageRulesRequest {})
        .await
        .unwrap()
        .into_inner();
    assert!(
        b_stage.version < stage.version,
        "A's stage rules leaked: {b_stage:?}"
    );
    cover("QualificationService/GetStageRules");
    let teams = b
        .distribution
        .list_teams(ListTeamsRequest {})
        .await
        .unwrap()
        .into_inner();
    assert!(teams.teams.is_empty(), "{teams:?}");
    cover("DistributionService/ListTeams");
    let reps = b
        .distribution
        .list_reps(ListRepsRequest::default())
        .await
        .unwrap()
        .into_inner();
    assert!(reps.reps.is_empty(), "{reps:?}");
    cover("DistributionService/ListReps");
    let assignments = b
        .distribution
        .list_assignments(ListAssignmentsRequest::default())
        .await
        .unwrap()
        .into_inner();
    assert!(assignments.assignments.is_empty(), "{assignments:?}");
    cover("DistributionService/ListAssignments");
    not_found(
        "GetHandoff",
        b.distribution
            .get_handoff(GetHandoffRequest {
                handoff_id: handoff.handoff_id.clone(),
            })
            .await,
    );
    cover("DistributionService/GetHandoff");
    not_found(
        "ExplainAssignment",
        b.distribution
            .explain_assignment(ExplainAssignmentRequest { lead_id: id() })
            .await,
    );
    cover("DistributionService/ExplainAssignment");
    let rules = b
        .distribution
        .get_routing_rules(GetRoutingRulesRequest {})
        .await
        .unwrap()
        .into_inner();
    assert!(rules.rules.is_empty(), "A's routing rule leaked: {rules:?}");
    cover("DistributionService/GetRoutingRules");
    let b_touch = b
        .distribution
        .get_touch_rules(GetTouchRulesRequest {})
        .await
        .unwrap()
        .into_inner();
    assert!(
        b_touch.version < touch.version,
        "A's touch rules leaked: {b_touch:?}"
    );
    cover("DistributionService/GetTouchRules");
    let b_settings = b
        .distribution
        .get_handoff_settings(GetHandoffSettingsRequest {})
        .await
        .unwrap()
        .into_inner();
    assert!(
        b_settings.version < a_settings.version && !b_settings.allow_uncontracted_handoffs,
        "A's handoff settings leaked: {b_settings:?}"
    );
    cover("DistributionService/GetHandoffSettings");
    not_found(
        "GetTeamWeighting",
        b.distribution
            .get_team_weighting(GetTeamWeightingRequest {
                team_id: "is-a".into(),
            })
            .await,
    );
    cover("DistributionService/GetTeamWeighting");
    let kpis = b
        .kpis
        .get_kpis(whole.clone())
        .await
        .unwrap()
        .into_inner()
        .series;
    assert!(
        first_numerator(&kpis, "leads").unwrap_or(0.0) == 0.0,
        "A's lead counted for B: {kpis:?}"
    );
    cover("KpiService/GetKpis");
    b.kpis.list_kpis(ListKpisRequest {}).await.unwrap();
    cover("KpiService/ListKpis");
    let accounts = b
        .kpis
        .get_target_accounts(GetTargetAccountsRequest {})
        .await
        .unwrap()
        .into_inner();
    assert!(
        accounts.web_domains.is_empty(),
        "A's target accounts leaked: {accounts:?}"
    );
    cover("KpiService/GetTargetAccounts");
    let funnel = b
        .reporting
        .get_funnel(GetFunnelRequest {
            start_time: whole.start_time,
            end_time: whole.end_time,
            group_by: vec![],
        })
        .await
        .unwrap()
        .into_inner();
    assert!(
        funnel.groups.iter().all(|g| g.leads == 0),
        "A's lead in B's funnel: {funnel:?}"
    );
    cover("ReportingService/GetFunnel");
    let contracts = b
        .contracts
        .list_contracts(ListContractsRequest {
            is_team: "is-a".into(),
            fs_team: "fs-a".into(),
        })
        .await
        .unwrap()
        .into_inner();
    assert!(contracts.contracts.is_empty(), "{contracts:?}");
    cover("ContractService/ListContracts");
    not_found(
        "GetContract",
        b.contracts
            .get_contract(GetContractRequest {
                contract_id: contract_id.clone(),
            })
            .await,
    );
    cover("ContractService/GetContract");
    assert_eq!(a_attainment.contract_id, contract_id);
    not_found(
        "GetAttainment",
        b.contracts
            .get_attainment(GetAttainmentRequest {
                contract_id: contract_id.clone(),
                ..Default::default()
            })
            .await,
    );
    cover("ContractService/GetAttainment");
    not_found(
        "GetScorecard",
        b.contracts
            .get_scorecard(GetScorecardRequest {
                scorecard_id: a_scorecard.scorecard_id.clone(),
            })
            .await,
    );
    cover("ContractService/GetScorecard");
    let b_cards = b
        .contracts
        .list_scorecards(ListScorecardsRequest {
            contract_id: old_contract.clone(),
        })
        .await
        .unwrap()
        .into_inner();
    assert!(b_cards.scorecards.is_empty(), "{b_cards:?}");
    cover("ContractService/ListScorecards");
    let b_factors = b
        .contracts
        .get_win_factors(GetWinFactorsRequest {
            is_team: "is-a".into(),
            fs_team: "fs-a".into(),
            start_time: Some(baton_shared::time::to_proto(
                chrono::Utc::now() - chrono::Duration::days(1),
            )),
            end_time: Some(baton_shared::time::to_proto(
                chrono::Utc::now() + chrono::Duration::days(1),
            )),
            min_sample: 0,
            score_band_width: 0,
        })
        .await
        .unwrap()
        .into_inner();
    assert!(
        b_factors.factors.is_empty() && b_factors.decided == 0,
        "{b_factors:?}"
    );
    cover("ContractService/GetWinFactors");
    let a_journal = a
        .reporting
        .get_lead_journey(GetLeadJourneyRequest {
            lead_id: lead_id.clone(),
        })
        .await
        .unwrap()
        .into_inner();
    assert!(!a_journal.entries.is_empty());
    not_found(
        "GetLeadJourney",
        b.reporting
            .get_lead_journey(GetLeadJourneyRequest {
                lead_id: lead_id.clone(),
            })
            .await,
    );
    cover("ReportingService/GetLeadJourney");
    let plans = b
        .plans
        .list_plans(ListPlansRequest {})
        .await
        .unwrap()
        .into_inner();
    assert!(plans.plans.is_empty());
    cover("PlanningService/ListPlans");
    not_found(
        "GetPlan",
        b.plans
            .get_plan(GetPlanRequest {
                plan_id: "p-a".into(),
                version: 0,
            })
            .await,
    );
    cover("PlanningService/GetPlan");
    not_found(
        "GetPlanProgress",
        b.plans
            .get_plan_progress(GetPlanProgressRequest {
                plan_id: "p-a".into(),
                as_of: None,
            })
            .await,
    );
    cover("PlanningService/GetPlanProgress");

    // Event logs: a service token of tenant B receives none of A's events; one of A receives them.
    let capture = suite.suite.endpoint(ServiceName::Capture);
    let wait = Duration::from_millis(800);
    let of_b = token("service:b", "tenant-b", &[Role::Service]);
    assert_eq!(events_seen(&capture, &of_b, wait).await, 0);
    let of_a = token("service:a", "default", &[Role::Service]);
    assert!(events_seen(&capture, &of_a, wait).await >= 3);
    // Dead letters: a service token of tenant B lists none of A's (tests/e2e/operations.rs makes
    // one of A's and shows B neither sees nor replays it).
    let nurture = suite.suite.endpoint(ServiceName::Nurture);
    let letters =
        DeadLettersClient::new(baton_shared::testing::channel_with(&nurture, &of_b).await)
            .list_dead_letters(ListDeadLettersRequest::default())
            .await
            .expect("dead letters of B")
            .into_inner();
    assert!(letters.dead_letters.is_empty());
    cover("DeadLetters/ListDeadLetters");

    // Every Get, List and Explain method of the descriptor set was asked above.
    for (method, _) in methods() {
        let name = method.path.rsplit('/').next().unwrap_or_default();
        if ["Get", "List", "Explain"]
            .iter()
            .any(|p| name.starts_with(p))
        {
            // "/baton.capture.v1.CaptureService/GetLead" → "CaptureService/GetLead"
            let short = method.path.rsplit('.').next().unwrap_or_default();
            assert!(
                covered.iter().any(|c| c == short),
                "{} is not checked across tenants",
                method.path
            );
        }
    }
    suite.stop().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_tenant_over_its_rate_limit_is_told_when_to_retry_and_others_are_not_slowed() {
    use baton_shared::testing::{TestDatabase, bind_ephemeral, settings_with, spawn};
    use tonic_types::StatusExt;
    let db = TestDatabase::new("capture_limits").await;
    let mut settings = settings_with(&[(ServiceName::Capture, &db)]);
    settings.rate_limit.per_tenant_per_second = 1;
    settings.rate_limit.burst = 3;
    let listener = bind_ephemeral(&mut settings, ServiceName::Capture).await;
    let service = spawn(
        ServiceName::Capture,
        &std::sync::Arc::new(settings),
        listener,
        baton_capture::run,
    );
    let client = |tenant: &str| {
        let t = token("tester", tenant, &[Role::Admin]);
        let endpoint = service.endpoint.clone();
        async move { CaptureServiceClient::new(channel_with(&endpoint, &t).await) }
    };
    let mut noisy = client("noisy").await;
    let mut codes = Vec::new();
    for _ in 0..4 {
        let r = noisy.list_leads(ListLeadsRequest::default()).await;
        codes.push(r.as_ref().map_or_else(|s| s.code(), |_| Code::Ok));
        if let Err(status) = r {
            let retry = status
                .get_details_retry_info()
                .and_then(|r| r.retry_delay)
                .expect("RetryInfo with a delay");
            assert!(
                retry > Duration::ZERO && retry <= Duration::from_secs(1),
                "{retry:?}"
            );
        }
    }
    // A burst of 3, then one call per second: the fourth call at once is refused.
    assert_eq!(
        codes,
        [Code::Ok, Code::Ok, Code::Ok, Code::ResourceExhausted]
    );
    let mut quiet = client("quiet").await;
    assert!(quiet.list_leads(ListLeadsRequest::default()).await.is_ok());
    service.stop().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn control_characters_in_text_are_refused_with_their_fields_and_nothing_is_stored() {
    let suite = TestSuite::start().await;
    let mut capture = suite.capture().await;
    let mut request = lead(1);
    request.request_id = "r\0".into();
    request.first_name = "Ai\0ko".into();
    request.company_name = "Kaisha\u{1}".into();
    request.email = "ai\0ko@example.com".into();
    request.source.as_mut().unwrap().channel = "web\u{7f}".into();
    let err = capture.capture_lead(request).await.unwrap_err();
    let mut fields = invalid_fields(&err);
    fields.sort();
    assert_eq!(
        fields,
        [
            "company_name",
            "email",
            "first_name",
            "request_id",
            "source.channel"
        ]
    );
    let leads = capture
        .list_leads(ListLeadsRequest::default())
        .await
        .unwrap()
        .into_inner();
    assert!(leads.leads.is_empty());
    // A message over the 4 MiB the layer reads is refused as such, not read whole.
    let mut huge = lead(3);
    huge.first_name = "x".repeat(5 * 1024 * 1024);
    let err = capture.capture_lead(huge).await.unwrap_err();
    assert_eq!(err.code(), Code::ResourceExhausted, "{}", err.message());
    // Free text keeps its tabs and new lines.
    let mut fine = lead(2);
    fine.first_name = "Ai\tko".into();
    capture.capture_lead(fine).await.unwrap();

    let mut d = suite.distribution().await;
    let mut rep = baton_e2e::rep(1);
    rep.name = "Rep\0".into();
    let err = d.create_rep(rep).await.unwrap_err();
    assert_eq!(err.code(), Code::InvalidArgument, "{err:?}");
    assert!(err.message().contains("name"), "{err:?}");

    // Nested and repeated fields of any RPC, checked by the layer every server runs.
    let mut terms =
        baton_shared::contract::example_terms("is-1", "fs-1", "is@x.example", "fs@x.example");
    terms.is_owner = "is\u{2}@x.example".into();
    terms.rejection_reasons[0].code = "no\0budget".into();
    let err = suite
        .contracts()
        .await
        .create_contract(baton_proto::reporting::v1::CreateContractRequest {
            request_id: "c-nul".into(),
            terms: Some(terms),
            created_by: String::new(),
        })
        .await
        .unwrap_err();
    let fields = invalid_fields(&err);
    assert_eq!(
        fields,
        ["terms.is_owner", "terms.rejection_reasons[0].code"]
    );
    suite.stop().await;
}

/// `python3 args…`.
fn python(args: &[&str]) -> std::io::Result<std::process::Output> {
    std::process::Command::new("python3").args(args).output()
}

/// Installs `package` with pip unless Python can import `module` already.
fn ensure_python(module: &str, package: &str) {
    let import = format!("import {module}");
    if python(&["-c", &import]).is_ok_and(|o| o.status.success()) {
        return;
    }
    let pip = python(&[
        "-m",
        "pip",
        "install",
        "--quiet",
        "--disable-pip-version-check",
        package,
    ])
    .expect("python3 runs");
    assert!(
        pip.status.success(),
        "pip install {package}: {}",
        String::from_utf8_lossy(&pip.stderr)
    );
}

/// Runs `python3 args…` off the async threads; its stdout, once it exited 0 (else the test fails
/// with its output).
async fn python_script(args: Vec<String>) -> String {
    let out = tokio::task::spawn_blocking(move || {
        let args: Vec<&str> = args.iter().map(String::as_str).collect();
        python(&args)
    })
    .await
    .unwrap()
    .expect("python3 runs");
    let stdout = String::from_utf8_lossy(&out.stdout).into_owned();
    assert!(
        out.status.success(),
        "{stdout}{}",
        String::from_utf8_lossy(&out.stderr)
    );
    stdout
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_python_grpcio_client_is_served_with_a_token_and_refused_without() {
    // The client needs grpcio (CI's proto check installs it; a fresh machine gets it here).
    ensure_python("grpc", "grpcio>=1.60");
    let suite = TestSuite::start().await;
    let target = suite
        .suite
        .endpoint(ServiceName::Capture)
        .trim_start_matches("http://")
        .to_owned();
    let t = token("python-client", "default", &[Role::Marketing]);
    let script = concat!(env!("CARGO_MANIFEST_DIR"), "/third_party/token_client.py").to_owned();
    let stdout = python_script(vec![script, target, t]).await;
    assert!(
        stdout.contains("without a token: UNAUTHENTICATED"),
        "{stdout}"
    );
    assert!(stdout.contains("with a token: OK"), "{stdout}");
    suite.stop().await;
}

/// A client in another language: Python stubs generated from `proto/` with grpcio-tools walk the
/// README's lead flow (rep and routing, capture with two activities, the MQL and its score, the
/// assignment, the funnel with `start_time` / `end_time`).
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_generated_python_client_walks_the_lead_flow() {
    ensure_python("grpc_tools", "grpcio-tools>=1.60");
    let suite = TestSuite::start().await;
    let at = |name: ServiceName| {
        suite
            .suite
            .endpoint(name)
            .trim_start_matches("http://")
            .to_owned()
    };
    let args = [
        concat!(env!("CARGO_MANIFEST_DIR"), "/third_party/lead_flow.py").to_owned(),
        concat!(env!("CARGO_MANIFEST_DIR"), "/../proto").to_owned(),
        at(ServiceName::Capture),
        at(ServiceName::Qualification),
        at(ServiceName::Distribution),
        at(ServiceName::Reporting),
        token("python-client", "default", &Role::ALL),
    ];
    let stdout = python_script(args.to_vec()).await;
    for step in [
        "captured with a booked meeting and a free trial",
        "score 50 stage STAGE_MQL",
        "assigned to",
        "funnel: leads 1 MQLs 1",
        "lead flow walked",
    ] {
        assert!(stdout.contains(step), "{step:?} in {stdout}");
    }
    suite.stop().await;
}

/// An ES256 key pair: (private key PEM for signing, JWK of its public key with `kid`).
fn es256_key(kid: &str) -> (String, serde_json::Value) {
    use base64::Engine;
    let key = rcgen::KeyPair::generate().unwrap();
    let raw = key.public_key_raw(); // 0x04 ‖ X ‖ Y
    let b64 = |b: &[u8]| base64::engine::general_purpose::URL_SAFE_NO_PAD.encode(b);
    let jwk = serde_json::json!({
        "kty": "EC", "crv": "P-256", "alg": "ES256", "use": "sig", "kid": kid,
        "x": b64(&raw[1..33]), "y": b64(&raw[33..65]),
    });
    (key.serialize_pem(), jwk)
}

fn es256_token(private_pem: &str, kid: &str) -> String {
    let mut header = Header::new(Algorithm::ES256);
    header.kid = Some(kid.into());
    jsonwebtoken::encode(
        &header,
        &claims(serde_json::json!({"roles": ["marketing"]})),
        &EncodingKey::from_ec_pem(private_pem.as_bytes()).unwrap(),
    )
    .unwrap()
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn es256_keys_from_a_jwks_file_are_rotated_without_a_restart() {
    use baton_shared::testing::{TestDatabase, bind_ephemeral, settings_with, spawn};
    let dir = tempfile::tempdir().unwrap();
    let jwks = dir.path().join("jwks.json");
    let write = |keys: &[&serde_json::Value]| {
        let tmp = dir.path().join("jwks.tmp");
        std::fs::write(&tmp, serde_json::json!({ "keys": keys }).to_string()).unwrap();
        std::fs::rename(&tmp, &jwks).unwrap();
    };
    let (old_key, old_jwk) = es256_key("2026-11");
    let (new_key, new_jwk) = es256_key("2026-12");
    write(&[&old_jwk]);

    let db = TestDatabase::new("capture_jwks").await;
    let mut settings = settings_with(&[(ServiceName::Capture, &db)]);
    settings.auth.hs256_secret_file = String::new();
    settings.auth.jwks_file = jwks.display().to_string();
    settings.auth.reload_interval_seconds = 1;
    let listener = bind_ephemeral(&mut settings, ServiceName::Capture).await;
    let service = spawn(
        ServiceName::Capture,
        &std::sync::Arc::new(settings),
        listener,
        baton_capture::run,
    );
    let channel = plain_channel(&service.endpoint).await;
    let list = Method {
        path: "/baton.capture.v1.CaptureService/ListLeads".into(),
        client_streaming: false,
        server_streaming: false,
    };
    let old = format!("Bearer {}", es256_token(&old_key, "2026-11"));
    let new = format!("Bearer {}", es256_token(&new_key, "2026-12"));
    assert_eq!(call(&channel, &list, Some(&old)).await, Code::Ok);
    assert_eq!(
        call(&channel, &list, Some(&new)).await,
        Code::Unauthenticated
    );
    // The development key is not in force here.
    let hs = format!("Bearer {}", token("x", "default", &[Role::Admin]));
    assert_eq!(
        call(&channel, &list, Some(&hs)).await,
        Code::Unauthenticated
    );

    // Rotation, step 1: both keys; step 2: the new key only.
    write(&[&old_jwk, &new_jwk]);
    eventually("the new key verifies", Duration::from_secs(15), || {
        let (channel, list, new) = (channel.clone(), list.clone(), new.clone());
        async move { (call(&channel, &list, Some(&new)).await == Code::Ok).then_some(()) }
    })
    .await;
    assert_eq!(call(&channel, &list, Some(&old)).await, Code::Ok);
    write(&[&new_jwk]);
    eventually("the old key is retired", Duration::from_secs(15), || {
        let (channel, list, old) = (channel.clone(), list.clone(), old.clone());
        async move {
            (call(&channel, &list, Some(&old)).await == Code::Unauthenticated).then_some(())
        }
    })
    .await;
    assert_eq!(call(&channel, &list, Some(&new)).await, Code::Ok);
    // A broken file keeps the keys in force.
    std::fs::write(&jwks, "{ not json").unwrap();
    tokio::time::sleep(Duration::from_millis(2500)).await;
    assert_eq!(call(&channel, &list, Some(&new)).await, Code::Ok);
    service.stop().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn nobody_approves_a_contract_or_hands_off_in_another_persons_name() {
    use baton_proto::reporting::v1::{
        ApproveContractRequest, ContractStatus, CreateContractRequest,
    };
    let suite = TestSuite::start().await;
    let mut contracts = suite.contracts().await;
    let draft = contracts
        .create_contract(as_user(
            "ops@example.com",
            CreateContractRequest {
                request_id: "c-1".into(),
                terms: Some(baton_shared::contract::example_terms(
                    "is-1",
                    "fs-1",
                    "is-lead@example.com",
                    "fs-lead@example.com",
                )),
                created_by: String::new(),
            },
        ))
        .await
        .unwrap()
        .into_inner();
    assert_eq!(
        draft.created_by, "ops@example.com",
        "the actor is the caller"
    );
    let approve = |sub: &str, approver: &str| {
        as_user(
            sub,
            ApproveContractRequest {
                contract_id: draft.contract_id.clone(),
                approver: approver.into(),
            },
        )
    };
    // Mallory names the IS owner: refused, whatever her roles.
    let forged = contracts
        .approve_contract(approve("mallory@example.com", "is-lead@example.com"))
        .await
        .unwrap_err();
    assert_eq!(forged.code(), Code::PermissionDenied);
    assert!(forged.message().contains("approver names"), "{forged:?}");
    // Mallory as herself: not an owner.
    let stranger = contracts
        .approve_contract(approve("mallory@example.com", ""))
        .await
        .unwrap_err();
    assert_eq!(stranger.code(), Code::PermissionDenied);
    // The owners, each with their own token (the field may be left empty).
    contracts
        .approve_contract(approve("is-lead@example.com", ""))
        .await
        .unwrap();
    let active = contracts
        .approve_contract(approve("fs-lead@example.com", "fs-lead@example.com"))
        .await
        .unwrap()
        .into_inner();
    assert_eq!(active.status, ContractStatus::Active as i32);
    let approver = |a: Option<baton_proto::reporting::v1::Approval>| a.map(|a| a.approver);
    assert_eq!(
        approver(active.is_approval).as_deref(),
        Some("is-lead@example.com")
    );
    assert_eq!(
        approver(active.fs_approval).as_deref(),
        Some("fs-lead@example.com")
    );

    // A handoff names its IS rep by identity too.
    let mut d = suite.distribution().await;
    let forged = d
        .create_handoff(as_user(
            "mallory@example.com",
            CreateHandoffRequest {
                request_id: "h-x".into(),
                lead_id: "l".into(),
                is_team: "is-1".into(),
                fs_team: "fs-1".into(),
                handed_off_by: "is-rep@example.com".into(),
                ..Default::default()
            },
        ))
        .await
        .unwrap_err();
    assert_eq!(forged.code(), Code::PermissionDenied, "{forged:?}");
    suite.stop().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn health_and_reflection_can_be_closed_by_setting() {
    use baton_shared::testing::{TestDatabase, bind_ephemeral, settings_with, spawn};
    let db = TestDatabase::new("capture_closed").await;
    let mut settings = settings_with(&[(ServiceName::Capture, &db)]);
    settings.auth.open_health = false;
    settings.auth.open_reflection = false;
    let listener = bind_ephemeral(&mut settings, ServiceName::Capture).await;
    let service = spawn(
        ServiceName::Capture,
        &std::sync::Arc::new(settings),
        listener,
        baton_capture::run,
    );
    let channel = plain_channel(&service.endpoint).await;
    let health = Method {
        path: "/grpc.health.v1.Health/Check".into(),
        client_streaming: false,
        server_streaming: false,
    };
    let reflection = Method {
        path: "/grpc.reflection.v1.ServerReflection/ServerReflectionInfo".into(),
        client_streaming: true,
        server_streaming: true,
    };
    assert_eq!(call(&channel, &health, None).await, Code::Unauthenticated);
    assert_eq!(
        call(&channel, &reflection, None).await,
        Code::Unauthenticated
    );
    // Closed, they answer any valid token.
    let t = format!("Bearer {}", token("probe", "default", &[Role::Service]));
    assert_eq!(call(&channel, &health, Some(&t)).await, Code::Ok);
    service.stop().await;
}
