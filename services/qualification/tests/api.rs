//! qualification over a real socket, fed by a real capture service.

use std::{sync::Arc, time::Duration};

use baton_proto::qualification::v1::{GetRankRequest, LeadRank, Rank, RankChanged};
use baton_proto::{
    capture::v1::{
        ActivityKind, CaptureLeadRequest, Company, Lead, LeadSource, Money, PageKind,
        RecordActivityRequest, UpdateLeadRequest, capture_service_client::CaptureServiceClient,
    },
    events::v1::{SubscribeRequest, event_log_client::EventLogClient},
    qualification::v1::{
        Bant, BantItem, ChangeStageRequest, GetScoreRequest, GetStageRequest, LeadScore,
        RecordBantRequest, Stage, StageChanged,
        qualification_service_client::QualificationServiceClient,
    },
};
use baton_shared::{
    ServiceName,
    testing::{
        RunningService, TestDatabase, bind_ephemeral, channel, eventually, settings_with, spawn,
    },
};
use tonic::{Code, transport::Channel};
use tonic_types::StatusExt;

struct Fixture {
    capture: CaptureServiceClient<Channel>,
    qualification: QualificationServiceClient<Channel>,
    qualification_endpoint: String,
    services: Vec<RunningService>,
    _dbs: (TestDatabase, TestDatabase),
}

async fn start() -> Fixture {
    let capture_db = TestDatabase::new("capture").await;
    let qualification_db = TestDatabase::new("qualification").await;
    let mut settings = settings_with(&[
        (ServiceName::Capture, &capture_db),
        (ServiceName::Qualification, &qualification_db),
    ]);
    let capture_listener = bind_ephemeral(&mut settings, ServiceName::Capture).await;
    let qualification_listener = bind_ephemeral(&mut settings, ServiceName::Qualification).await;
    let settings = Arc::new(settings);
    let capture = spawn(
        ServiceName::Capture,
        &settings,
        capture_listener,
        baton_capture::run,
    );
    let qualification = spawn(
        ServiceName::Qualification,
        &settings,
        qualification_listener,
        baton_qualification::run,
    );
    Fixture {
        capture: CaptureServiceClient::new(channel(&capture.endpoint).await),
        qualification: QualificationServiceClient::new(channel(&qualification.endpoint).await),
        qualification_endpoint: qualification.endpoint.clone(),
        services: vec![capture, qualification],
        _dbs: (capture_db, qualification_db),
    }
}

impl Fixture {
    async fn lead(&mut self, email: &str) -> String {
        let req = CaptureLeadRequest {
            request_id: format!("capture-{email}"),
            email: email.into(),
            source: Some(LeadSource {
                channel: "web_form".into(),
                campaign: String::new(),
                ..Default::default()
            }),
            ..Default::default()
        };
        self.capture
            .capture_lead(req)
            .await
            .unwrap()
            .into_inner()
            .lead
            .unwrap()
            .lead_id
    }

    async fn act(&mut self, lead_id: &str, key: &str, kind: ActivityKind, page_kind: PageKind) {
        let req = RecordActivityRequest {
            idempotency_key: key.into(),
            lead_id: lead_id.into(),
            kind: kind as i32,
            occurred_at: None,
            url: String::new(),
            page_kind: page_kind as i32,
            ..Default::default()
        };
        self.capture.record_activity(req).await.unwrap();
    }

    /// Waits until the lead's score explains `rules` fired rules.
    async fn score_after(&self, lead_id: &str, rules: usize) -> LeadScore {
        eventually("score", Duration::from_secs(20), || {
            let mut q = self.qualification.clone();
            let lead_id = lead_id.to_owned();
            async move {
                let s = q
                    .get_score(GetScoreRequest { lead_id })
                    .await
                    .ok()?
                    .into_inner();
                (s.fired_rules.len() == rules).then_some(s)
            }
        })
        .await
    }

    async fn stop(self) {
        for s in self.services {
            s.stop().await;
        }
    }
}

#[tokio::test]
async fn a_lead_becomes_mql_at_the_threshold_and_every_point_is_explained() {
    let mut f = start().await;
    let lead = f.lead("aiko@example.com").await;
    f.act(&lead, "1", ActivityKind::PageViewed, PageKind::Pricing)
        .await;
    f.act(&lead, "2", ActivityKind::PageViewed, PageKind::Blog)
        .await; // worth nothing
    f.act(
        &lead,
        "3",
        ActivityKind::EmailClicked,
        PageKind::Unspecified,
    )
    .await;
    f.act(
        &lead,
        "4",
        ActivityKind::EmailReplied,
        PageKind::Unspecified,
    )
    .await;
    let before = f.score_after(&lead, 3).await;
    assert_eq!((before.score, before.stage), (35, Stage::Lead as i32));
    f.act(
        &lead,
        "5",
        ActivityKind::MeetingBooked,
        PageKind::Unspecified,
    )
    .await;
    let after = f.score_after(&lead, 4).await;
    assert_eq!(
        (after.score, after.stage, after.mql_threshold),
        (60, Stage::Mql as i32, 50)
    );
    let explained: Vec<_> = after
        .fired_rules
        .iter()
        .map(|r| (r.rule_key.as_str(), r.points))
        .collect();
    assert_eq!(
        explained,
        [
            ("pricing_page_viewed", 10),
            ("email_clicked", 10),
            ("email_replied", 15),
            ("meeting_booked", 25)
        ]
    );
    assert_eq!(after.model_version, 1);

    // Exactly one StageChanged, LEAD → MQL.
    let mut events = EventLogClient::new(channel(&f.qualification_endpoint).await)
        .subscribe(SubscribeRequest {
            after_position: 0,
            max_batch: 0,
        })
        .await
        .unwrap()
        .into_inner();
    // The first StageChanged on the log (RankChanged events come and go beside it).
    let next_stage_change = async |events: &mut tonic::Streaming<
        baton_proto::events::v1::Event,
    >| loop {
        let event = events.message().await.ok()??;
        if let Some(Ok(changed)) = baton_proto::any::unpack::<StageChanged>(event.payload.as_ref()?)
        {
            return Some(changed);
        }
    };
    let changed = next_stage_change(&mut events).await.unwrap();
    assert_eq!(
        (
            changed.lead_id.as_str(),
            changed.from_stage,
            changed.to_stage
        ),
        (lead.as_str(), Stage::Lead as i32, Stage::Mql as i32)
    );
    assert_eq!(changed.score, 60);
    assert!(
        tokio::time::timeout(Duration::from_millis(500), next_stage_change(&mut events))
            .await
            .is_err()
    );
    drop(events);
    f.stop().await;
}

#[tokio::test]
async fn negative_behaviour_lowers_the_score() {
    let mut f = start().await;
    let lead = f.lead("ken@example.com").await;
    f.act(
        &lead,
        "1",
        ActivityKind::ListSubscribed,
        PageKind::Unspecified,
    )
    .await;
    f.act(
        &lead,
        "2",
        ActivityKind::EmailUnsubscribed,
        PageKind::Unspecified,
    )
    .await;
    f.act(
        &lead,
        "3",
        ActivityKind::EmailNotOpened,
        PageKind::Unspecified,
    )
    .await;
    let s = f.score_after(&lead, 3).await;
    assert_eq!((s.score, s.stage), (5 - 25 - 10, Stage::Lead as i32));
    f.stop().await;
}

#[tokio::test]
async fn get_score_validates_and_reports_unknown_leads() {
    let mut f = start().await;
    let empty = f
        .qualification
        .get_score(GetScoreRequest {
            lead_id: " ".into(),
        })
        .await
        .unwrap_err();
    assert_eq!(empty.code(), Code::InvalidArgument);
    let unknown = f
        .qualification
        .get_score(GetScoreRequest {
            lead_id: "nope".into(),
        })
        .await
        .unwrap_err();
    assert_eq!(unknown.code(), Code::NotFound);
    f.stop().await;
}

#[tokio::test]
async fn complete_bant_makes_an_sql_and_every_move_is_logged_with_who_and_why() {
    let mut f = start().await;
    let lead = f.lead("bant@example.com").await;
    f.act(
        &lead,
        "dl",
        ActivityKind::DocumentDownloaded,
        PageKind::Unspecified,
    )
    .await;
    let iql = eventually("IQL", Duration::from_secs(20), || {
        let mut q = f.qualification.clone();
        let lead_id = lead.clone();
        async move {
            let s = q
                .get_stage(GetStageRequest { lead_id })
                .await
                .ok()?
                .into_inner();
            (s.stage == Stage::Iql as i32).then_some(s)
        }
    })
    .await;
    assert_eq!(iql.history[0].reason, "document_downloaded");

    let item = |note: &str| {
        Some(BantItem {
            confirmed: true,
            note: note.into(),
        })
    };
    let partial = Bant {
        budget: item("¥5M approved"),
        authority: item("CTO decides"),
        ..Default::default()
    };
    let after_two = f
        .qualification
        .record_bant(RecordBantRequest {
            lead_id: lead.clone(),
            bant: Some(partial),
            recorded_by: "is.rep@example.com".into(),
        })
        .await
        .unwrap()
        .into_inner();
    assert_eq!(
        (after_two.stage, after_two.bant_complete),
        (Stage::Iql as i32, false)
    );
    let rest = Bant {
        need: item("manual lead routing"),
        timeframe: item("Q1"),
        ..Default::default()
    };
    let sql = f
        .qualification
        .record_bant(RecordBantRequest {
            lead_id: lead.clone(),
            bant: Some(rest),
            recorded_by: "is.rep@example.com".into(),
        })
        .await
        .unwrap()
        .into_inner();
    assert!(sql.bant_complete, "earlier items are kept");
    assert_eq!(sql.stage, Stage::Sql as i32);
    let last = sql.history.last().unwrap();
    assert_eq!(
        (last.reason.as_str(), last.changed_by.as_str()),
        ("bant_complete", "is.rep@example.com")
    );

    let moved = f
        .qualification
        .change_stage(ChangeStageRequest {
            lead_id: lead.clone(),
            to_stage: Stage::Disqualified as i32,
            reason: "student, no budget".into(),
            changed_by: "fs.rep@example.com".into(),
        })
        .await
        .unwrap()
        .into_inner();
    assert_eq!(moved.stage, Stage::Disqualified as i32);
    assert_eq!(moved.history.len(), 3);
    let same = f
        .qualification
        .change_stage(ChangeStageRequest {
            lead_id: lead.clone(),
            to_stage: Stage::Disqualified as i32,
            reason: "again".into(),
            changed_by: "fs.rep@example.com".into(),
        })
        .await
        .unwrap_err();
    assert_eq!(same.code(), Code::FailedPrecondition);
    let anonymous = f
        .qualification
        .change_stage(ChangeStageRequest {
            lead_id: lead.clone(),
            to_stage: Stage::Lead as i32,
            reason: String::new(),
            changed_by: String::new(),
        })
        .await
        .unwrap_err();
    assert_eq!(anonymous.code(), Code::InvalidArgument);
    let unknown = f
        .qualification
        .record_bant(RecordBantRequest {
            lead_id: "nope".into(),
            bant: None,
            recorded_by: "x".into(),
        })
        .await
        .unwrap_err();
    assert_eq!(unknown.code(), Code::NotFound);
    f.stop().await;
}

async fn rank_of(f: &Fixture, lead_id: &str, want: Rank) -> LeadRank {
    eventually("rank", Duration::from_secs(20), || {
        let mut q = f.qualification.clone();
        let lead_id = lead_id.to_owned();
        async move {
            let r = q
                .get_rank(GetRankRequest { lead_id })
                .await
                .ok()?
                .into_inner();
            (r.rank == want as i32).then_some(r)
        }
    })
    .await
}

#[tokio::test]
async fn ranks_follow_the_rules_of_domain_section_2_and_say_why() {
    let mut f = start().await;
    let company = |employees: i64, revenue: Option<i64>| Company {
        name: "Kaisha".into(),
        employees: Some(employees),
        annual_revenue: revenue.map(|r| Money {
            currency_code: "JPY".into(),
            amount_minor: r,
        }),
        ..Default::default()
    };
    let capture_with = |n: &str, c: Company| CaptureLeadRequest {
        request_id: n.into(),
        email: format!("{n}@{n}.example.com"),
        company: Some(c),
        source: Some(LeadSource {
            channel: "web_form".into(),
            ..Default::default()
        }),
        ..Default::default()
    };
    let big = f
        .capture
        .capture_lead(capture_with("big", company(1200, Some(6_000_000_000))))
        .await
        .unwrap();
    let big = big.into_inner().lead.unwrap().lead_id;
    let hot = rank_of(&f, &big, Rank::Hot).await;
    assert_eq!(hot.rule_key, "large_enterprise_recent");
    assert_eq!(hot.reasons.len(), 3, "{:?}", hot.reasons);

    let small = f
        .capture
        .capture_lead(capture_with("small", company(20, None)))
        .await
        .unwrap();
    let small = small.into_inner().lead.unwrap().lead_id;
    assert_eq!(
        rank_of(&f, &small, Rank::Cold).await.rule_key,
        "small_company"
    );
    for k in 0..2 {
        f.capture
            .record_activity(RecordActivityRequest {
                idempotency_key: format!("pricing-{k}"),
                lead_id: small.clone(),
                kind: ActivityKind::PageViewed as i32,
                url: "https://baton.example/pricing".into(),
                page_kind: PageKind::Pricing as i32,
                ..Default::default()
            })
            .await
            .unwrap();
    }
    assert_eq!(
        rank_of(&f, &small, Rank::Hot).await.rule_key,
        "pricing_page_repeat"
    );

    // An update of the company re-ranks: the enterprise shrinks to mid-size and becomes warm.
    f.capture
        .update_lead(UpdateLeadRequest {
            lead_id: big.clone(),
            lead: Some(Lead {
                company: Some(company(500, None)),
                ..Default::default()
            }),
            update_mask: Some(prost_types::FieldMask {
                paths: vec!["company".into()],
            }),
        })
        .await
        .unwrap();
    let warm = rank_of(&f, &big, Rank::Warm).await;
    assert!(warm.rule_key.is_empty() && warm.reasons.is_empty());

    let mut events = EventLogClient::new(channel(&f.qualification_endpoint).await)
        .subscribe(SubscribeRequest {
            after_position: 0,
            max_batch: 0,
        })
        .await
        .unwrap()
        .into_inner();
    let mut changes = Vec::new();
    while changes.len() < 4 {
        let e = events.message().await.unwrap().unwrap();
        if let Some(Ok(r)) = baton_proto::any::unpack::<RankChanged>(e.payload.as_ref().unwrap()) {
            changes.push((r.lead_id == big, r.to_rank));
        }
    }
    assert_eq!(
        changes,
        [
            (true, Rank::Hot as i32),
            (false, Rank::Cold as i32),
            (false, Rank::Hot as i32),
            (true, Rank::Warm as i32)
        ]
    );
    drop(events);
    f.stop().await;
}

#[tokio::test]
async fn rank_rules_are_data_validated_whole_versioned_and_applied_to_every_lead() {
    use baton_proto::qualification::v1::{
        FieldCondition, GetRankRulesRequest, PageVisitsCondition, RankCondition, RankRule,
        RankRules, SetRankRulesRequest, field_condition::Comparison, rank_condition::Condition,
    };
    let mut f = start().await;
    let defaults = f
        .qualification
        .get_rank_rules(GetRankRulesRequest {})
        .await
        .unwrap()
        .into_inner();
    assert_eq!(defaults.version, 1);
    let keys: Vec<_> = defaults.rules.iter().map(|r| r.key.as_str()).collect();
    assert_eq!(
        keys,
        [
            "large_enterprise_recent",
            "listed_mid_size",
            "pricing_page_repeat",
            "small_company"
        ]
    );

    let lead = f.lead("someone@tiny.example.com").await;
    let req = UpdateLeadRequest {
        lead_id: lead.clone(),
        lead: Some(Lead {
            company: Some(Company {
                employees: Some(50),
                ..Default::default()
            }),
            ..Default::default()
        }),
        update_mask: Some(prost_types::FieldMask {
            paths: vec!["company".into()],
        }),
    };
    f.capture.update_lead(req).await.unwrap();
    rank_of(&f, &lead, Rank::Cold).await;

    let field = |name: &str, c: Comparison| RankCondition {
        condition: Some(Condition::Field(FieldCondition {
            field: name.into(),
            comparison: Some(c),
            currency: String::new(),
        })),
    };
    let broken = RankRules {
        default_rank: Rank::Unspecified as i32,
        rules: vec![
            RankRule {
                key: "a".into(),
                rank: Rank::Hot as i32,
                description: String::new(),
                conditions: vec![],
            },
            RankRule {
                key: "a".into(),
                rank: Rank::Hot as i32,
                description: String::new(),
                conditions: vec![
                    RankCondition {
                        condition: Some(Condition::PageVisits(PageVisitsCondition {
                            url_contains: "/demo".into(),
                            at_least: 1,
                        })),
                    },
                    field("", Comparison::Gte(1.0)),
                ],
            },
        ],
        ..Default::default()
    };
    let status = f
        .qualification
        .set_rank_rules(SetRankRulesRequest {
            rules: Some(broken),
            expected_version: 1,
        })
        .await
        .unwrap_err();
    assert_eq!(status.code(), Code::FailedPrecondition);
    let problems = status
        .get_details_precondition_failure()
        .unwrap()
        .violations;
    assert_eq!(problems.len(), 4, "{problems:?}");

    let small_is_hot = RankRules {
        default_rank: Rank::Warm as i32,
        rules: vec![RankRule {
            key: "small_is_beautiful".into(),
            rank: Rank::Hot as i32,
            description: "we sell to small companies now".into(),
            conditions: vec![field("company.employees", Comparison::Lt(100.0))],
        }],
        ..Default::default()
    };
    let saved = f
        .qualification
        .set_rank_rules(SetRankRulesRequest {
            rules: Some(small_is_hot.clone()),
            expected_version: 1,
        })
        .await
        .unwrap()
        .into_inner();
    assert_eq!(saved.version, 2);
    assert_eq!(
        rank_of(&f, &lead, Rank::Hot).await.rule_key,
        "small_is_beautiful"
    );
    let stale = f
        .qualification
        .set_rank_rules(SetRankRulesRequest {
            rules: Some(small_is_hot),
            expected_version: 1,
        })
        .await
        .unwrap_err();
    assert_eq!(stale.code(), Code::FailedPrecondition);
    assert!(
        stale.message().contains("version_conflict"),
        "{}",
        stale.message()
    );
    f.stop().await;
}
