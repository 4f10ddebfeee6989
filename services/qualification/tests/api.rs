//! qualification over a real socket, fed by a real capture service.

use baton_shared::testing::as_user;
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
use baton_shared::peer::AuthChannel;
use baton_shared::{
    ServiceName,
    testing::{
        RunningService, TestDatabase, bind_ephemeral, channel, eventually, settings_with, spawn,
    },
};
use tonic::Code;
use tonic_types::StatusExt;

struct Fixture {
    capture: CaptureServiceClient<AuthChannel>,
    qualification: QualificationServiceClient<AuthChannel>,
    qualification_endpoint: String,
    services: Vec<RunningService>,
    _dbs: (TestDatabase, TestDatabase),
}

async fn start() -> Fixture {
    start_with(|_| {}).await
}

/// [`start`] with settings `tune` changes first.
async fn start_with(tune: impl FnOnce(&mut baton_shared::Settings)) -> Fixture {
    let capture_db = TestDatabase::new("capture").await;
    let qualification_db = TestDatabase::new("qualification").await;
    let mut settings = settings_with(&[
        (ServiceName::Capture, &capture_db),
        (ServiceName::Qualification, &qualification_db),
    ]);
    tune(&mut settings);
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

    /// qualification's event log from the beginning, live.
    async fn events(&self) -> tonic::Streaming<baton_proto::events::v1::Event> {
        EventLogClient::new(channel(&self.qualification_endpoint).await)
            .subscribe(SubscribeRequest {
                after_position: 0,
                max_batch: 0,
                ..Default::default()
            })
            .await
            .unwrap()
            .into_inner()
    }

    /// Waits until the lead is at `stage`; its stage then.
    async fn stage_when(
        &self,
        lead_id: &str,
        stage: Stage,
    ) -> baton_proto::qualification::v1::LeadStage {
        eventually("stage", Duration::from_secs(20), || {
            let mut q = self.qualification.clone();
            let lead_id = lead_id.to_owned();
            async move {
                let s = q
                    .get_stage(GetStageRequest { lead_id })
                    .await
                    .ok()?
                    .into_inner();
                (s.stage == stage as i32).then_some(s)
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
    let mut events = f.events().await;
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
    let iql = f.stage_when(&lead, Stage::Iql).await;
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
        .record_bant(as_user(
            "is.rep@example.com",
            RecordBantRequest {
                lead_id: lead.clone(),
                bant: Some(partial),
                recorded_by: "is.rep@example.com".into(),
            },
        ))
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
        .record_bant(as_user(
            "is.rep@example.com",
            RecordBantRequest {
                lead_id: lead.clone(),
                bant: Some(rest),
                recorded_by: "is.rep@example.com".into(),
            },
        ))
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
        .change_stage(as_user(
            "fs.rep@example.com",
            ChangeStageRequest {
                lead_id: lead.clone(),
                to_stage: Stage::Disqualified as i32,
                reason: "student, no budget".into(),
                changed_by: "fs.rep@example.com".into(),
                ..Default::default()
            },
        ))
        .await
        .unwrap()
        .into_inner();
    assert_eq!(moved.stage, Stage::Disqualified as i32);
    assert_eq!(moved.history.len(), 3);
    let same = f
        .qualification
        .change_stage(as_user(
            "fs.rep@example.com",
            ChangeStageRequest {
                lead_id: lead.clone(),
                to_stage: Stage::Disqualified as i32,
                reason: "again".into(),
                changed_by: "fs.rep@example.com".into(),
                ..Default::default()
            },
        ))
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
            ..Default::default()
        })
        .await
        .unwrap_err();
    assert_eq!(anonymous.code(), Code::InvalidArgument);
    let unknown = f
        .qualification
        .record_bant(as_user(
            "x",
            RecordBantRequest {
                lead_id: "nope".into(),
                bant: None,
                recorded_by: "x".into(),
            },
        ))
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
async fn a_rank_that_depends_on_time_changes_when_the_time_comes_without_any_event() {
    let mut f = start().await;
    // First contact three months ago, less four seconds: hot now, warm four seconds from now.
    let first_contact = chrono::Utc::now()
        .checked_sub_months(chrono::Months::new(3))
        .unwrap()
        + chrono::Duration::seconds(4);
    let lead = f
        .capture
        .capture_lead(CaptureLeadRequest {
            request_id: "aging".into(),
            email: "cto@aging.example.com".into(),
            captured_at: Some(baton_shared::time::to_proto(first_contact)),
            company: Some(Company {
                name: "Aging KK".into(),
                employees: Some(5000),
                annual_revenue: Some(Money {
                    currency_code: "JPY".into(),
                    amount_minor: 9_000_000_000,
                }),
                ..Default::default()
            }),
            source: Some(LeadSource {
                channel: "trade_show".into(),
                ..Default::default()
            }),
            ..Default::default()
        })
        .await
        .unwrap()
        .into_inner()
        .lead
        .unwrap()
        .lead_id;
    assert_eq!(
        rank_of(&f, &lead, Rank::Hot).await.rule_key,
        "large_enterprise_recent"
    );
    let warm = rank_of(&f, &lead, Rank::Warm).await;
    assert_eq!(
        warm.rule_key, "",
        "no rule holds any more: the default rank"
    );
    f.stop().await;
}

/// A company of `employees` people and, if given, that annual revenue in yen.
fn company(employees: i64, revenue: Option<i64>) -> Company {
    Company {
        name: "Kaisha".into(),
        employees: Some(employees),
        annual_revenue: revenue.map(|r| Money {
            currency_code: "JPY".into(),
            amount_minor: r,
        }),
        ..Default::default()
    }
}

/// A capture of lead `n` (request id and e-mail from `n`) working at `c`.
fn capture_with(n: &str, c: Company) -> CaptureLeadRequest {
    CaptureLeadRequest {
        request_id: n.into(),
        email: format!("{n}@{n}.example.com"),
        company: Some(c),
        source: Some(LeadSource {
            channel: "web_form".into(),
            ..Default::default()
        }),
        ..Default::default()
    }
}

#[tokio::test]
async fn ranks_follow_the_rules_of_domain_section_2_and_say_why() {
    let mut f = start().await;
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

    let mut events = f.events().await;
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

/// Captures arriving together reach qualification in one consumer batch and are scored and
/// ranked set-based: each lead must still get its own score, rank and events.
#[tokio::test]
async fn a_burst_of_captures_is_scored_and_ranked_lead_by_lead() {
    let f = start().await;
    let mut tasks = Vec::new();
    for n in 0..40 {
        let mut capture = f.capture.clone();
        tasks.push(tokio::spawn(async move {
            let big = n % 2 == 0;
            let request = capture_with(
                &format!("burst{n}"),
                company(if big { 1200 } else { 20 }, big.then_some(6_000_000_000)),
            );
            let lead = capture.capture_lead(request).await.unwrap().into_inner();
            (lead.lead.unwrap().lead_id, big)
        }));
    }
    let mut expected = std::collections::HashMap::new();
    for t in tasks {
        let (lead_id, big) = t.await.unwrap();
        expected.insert(lead_id, if big { Rank::Hot } else { Rank::Cold } as i32);
    }
    let mut events = f.events().await;
    let mut ranked = std::collections::HashMap::new();
    while ranked.len() < expected.len() {
        let e = events.message().await.unwrap().unwrap();
        if let Some(Ok(r)) = baton_proto::any::unpack::<RankChanged>(e.payload.as_ref().unwrap()) {
            assert_eq!(r.from_rank, Rank::Unspecified as i32, "{r:?}");
            assert!(
                ranked.insert(r.lead_id.clone(), r.to_rank).is_none(),
                "one RankChanged per lead: {r:?}"
            );
        }
    }
    assert_eq!(ranked, expected);
    let mut q = f.qualification.clone();
    for lead_id in expected.keys() {
        let score = q
            .get_score(GetScoreRequest {
                lead_id: lead_id.clone(),
            })
            .await
            .unwrap()
            .into_inner();
        assert_eq!(&score.lead_id, lead_id);
        let stage = q
            .get_stage(GetStageRequest {
                lead_id: lead_id.clone(),
            })
            .await
            .unwrap()
            .into_inner();
        assert_eq!(stage.stage, Stage::Lead as i32, "{stage:?}");
    }
    drop(events);
    f.stop().await;
}

/// A lead of a 50-person company, ranked cold by the default rules.
async fn small_company_lead(f: &mut Fixture) -> String {
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
    rank_of(f, &lead, Rank::Cold).await;
    lead
}

/// Rank rules under which a company below 100 people is hot and every other lead warm.
fn small_is_hot() -> baton_proto::qualification::v1::RankRules {
    use baton_proto::qualification::v1::{
        FieldCondition, RankCondition, RankRule, RankRules, field_condition::Comparison,
        rank_condition::Condition,
    };
    RankRules {
        default_rank: Rank::Warm as i32,
        rules: vec![RankRule {
            key: "small_is_beautiful".into(),
            rank: Rank::Hot as i32,
            description: "we sell to small companies now".into(),
            conditions: vec![RankCondition {
                condition: Some(Condition::Field(FieldCondition {
                    field: "company.employees".into(),
                    comparison: Some(Comparison::Lt(100.0)),
                    ..Default::default()
                })),
            }],
        }],
        ..Default::default()
    }
}

#[tokio::test]
async fn rank_rules_are_data_validated_whole_versioned_and_applied_to_every_lead() {
    use baton_proto::qualification::v1::{
        FieldCondition, GetRankRulesRequest, PageVisitsCondition, RankCondition, RankRule,
        RankRules, RecomputeState, SetRankRulesRequest, field_condition::Comparison,
        rank_condition::Condition,
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

    let lead = small_company_lead(&mut f).await;

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

    let small_is_hot = small_is_hot();
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
    assert_eq!(defaults.rerank, None, "no re-rank before the first change");
    // The request only starts the re-rank of the tenant's one lead; the worker does it.
    let started = saved.rerank.expect("a re-rank is started");
    assert_eq!(
        (started.state, started.leads_total, started.leads_done),
        (RecomputeState::Running as i32, 1, 0)
    );
    assert_eq!(
        rank_of(&f, &lead, Rank::Hot).await.rule_key,
        "small_is_beautiful"
    );
    let finished = eventually("the re-rank finishes", Duration::from_secs(20), || {
        let mut q = f.qualification.clone();
        async move {
            let r = q
                .get_rank_rules(GetRankRulesRequest {})
                .await
                .ok()?
                .into_inner();
            r.rerank.filter(|p| p.state == RecomputeState::Done as i32)
        }
    })
    .await;
    assert_eq!((finished.leads_total, finished.leads_done), (1, 1));
    assert!(finished.finished_at.is_some());
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

/// SetRankRules only starts the re-rank: with the scoring worker's next round an hour away, the
/// answer says 0 of 1 done and the lead keeps its rank after the call (a re-rank inside the
/// request would have moved it already).
#[tokio::test]
async fn set_rank_rules_leaves_the_rerank_to_the_worker() {
    use baton_proto::qualification::v1::{RecomputeState, SetRankRulesRequest};
    let mut f = start_with(|s| s.scoring.worker_interval_ms = 3_600_000).await;
    let lead = small_company_lead(&mut f).await;
    let small_is_hot = small_is_hot();
    let saved = f
        .qualification
        .set_rank_rules(SetRankRulesRequest {
            rules: Some(small_is_hot),
            expected_version: 1,
        })
        .await
        .unwrap()
        .into_inner();
    let rerank = saved.rerank.expect("a re-rank is started");
    assert_eq!(
        (rerank.state, rerank.leads_total, rerank.leads_done),
        (RecomputeState::Running as i32, 1, 0)
    );
    tokio::time::sleep(Duration::from_millis(500)).await;
    let now = f
        .qualification
        .get_rank(GetRankRequest {
            lead_id: lead.clone(),
        })
        .await
        .unwrap()
        .into_inner();
    assert_eq!(now.rank, Rank::Cold as i32, "re-ranked inside the request");
    f.stop().await;
}

// ---- Scoring models as versioned data ----

mod models {
    use super::*;
    use baton_proto::qualification::v1::{
        ActivateScoringModelRequest, AttributeTrigger, BehaviourTrigger, CreateScoringModelRequest,
        ExplainScoreRequest, FieldCondition, GetScoringModelRequest, ListScoringModelsRequest,
        ModelStatus, Recompute, RecomputeState, ScoreCap, ScoreExplanation, ScoringModel,
        ScoringModelDefinition, ScoringRule, SimulateModelRequest, SimulationPeriod,
        UpdateScoringModelRequest, field_condition::Comparison, scoring_rule::Trigger,
        simulate_model_request,
    };
    use baton_shared::time;
    use chrono::{DateTime, Utc};

    fn behaviour(key: &str, kind: ActivityKind, points: i64) -> ScoringRule {
        ScoringRule {
            key: key.into(),
            description: format!("{key} rule"),
            points,
            trigger: Some(Trigger::Behaviour(BehaviourTrigger {
                activity_kind: kind as i32,
                ..Default::default()
            })),
            ..Default::default()
        }
    }

    fn definition(threshold: i64, rules: Vec<ScoringRule>) -> ScoringModelDefinition {
        ScoringModelDefinition {
            mql_threshold: threshold,
            rules,
        }
    }

    impl Fixture {
        async fn act_at(
            &mut self,
            lead_id: &str,
            key: &str,
            kind: ActivityKind,
            url: &str,
            at: DateTime<Utc>,
        ) {
            let req = RecordActivityRequest {
                idempotency_key: key.into(),
                lead_id: lead_id.into(),
                kind: kind as i32,
                occurred_at: Some(time::to_proto(at)),
                url: url.into(),
                page_kind: if url.is_empty() {
                    PageKind::Unspecified as i32
                } else {
                    PageKind::Pricing as i32
                },
                ..Default::default()
            };
            self.capture.record_activity(req).await.unwrap();
        }

        async fn create(&mut self, def: ScoringModelDefinition) -> ScoringModel {
            self.qualification
                .create_scoring_model(as_user(
                    "ops@example.com",
                    CreateScoringModelRequest {
                        definition: Some(def),
                        created_by: "ops@example.com".into(),
                    },
                ))
                .await
                .unwrap()
                .into_inner()
        }

        async fn activate(&mut self, model_id: &str) -> Result<ScoringModel, tonic::Status> {
            self.qualification
                .activate_scoring_model(as_user(
                    "head-of-marketing@example.com",
                    ActivateScoringModelRequest {
                        model_id: model_id.into(),
                        activated_by: "head-of-marketing@example.com".into(),
                    },
                ))
                .await
                .map(|r| r.into_inner())
        }

        /// Waits until the active model's recompute job is done, and returns its progress.
        async fn recompute_done(&self) -> Recompute {
            eventually("recompute done", Duration::from_secs(20), || {
                let mut q = self.qualification.clone();
                async move {
                    let m = q
                        .get_scoring_model(GetScoringModelRequest::default())
                        .await
                        .ok()?
                        .into_inner();
                    let r = m.recompute?;
                    (r.state == RecomputeState::Done as i32).then_some(r)
                }
            })
            .await
        }

        /// Waits until the explanation has `n` contributions.
        async fn explained(&self, lead_id: &str, n: usize) -> ScoreExplanation {
            eventually("explanation", Duration::from_secs(20), || {
                let mut q = self.qualification.clone();
                let lead_id = lead_id.to_owned();
                async move {
                    let e = q
                        .explain_score(ExplainScoreRequest { lead_id })
                        .await
                        .ok()?
                        .into_inner();
                    (e.contributions.len() == n).then_some(e)
                }
            })
            .await
        }
    }

    fn summary(e: &ScoreExplanation) -> Vec<(String, i64)> {
        e.contributions
            .iter()
            .map(|c| (c.rule_key.clone(), c.points))
            .collect()
    }

    #[tokio::test]
    async fn activating_a_model_recomputes_every_lead_deterministically_and_retires_the_old_one() {
        let mut f = start().await;
        let a = f.lead("mika@example.com").await;
        let now = Utc::now();
        let an_hour_ago = now - chrono::Duration::hours(1);
        f.act_at(&a, "a1", ActivityKind::EmailOpened, "", an_hour_ago)
            .await;
        f.act_at(
            &a,
            "a2",
            ActivityKind::PageViewed,
            "https://x.example/pricing?plan=pro",
            an_hour_ago,
        )
        .await;
        assert_eq!(
            f.score_after(&a, 2).await.score,
            15,
            "default model: 5 + 10"
        );

        let draft = f
            .create(definition(
                20,
                vec![
                    behaviour("opened", ActivityKind::EmailOpened, 7),
                    ScoringRule {
                        key: "pricing".into(),
                        points: 11,
                        trigger: Some(Trigger::Behaviour(BehaviourTrigger {
                            activity_kind: ActivityKind::PageViewed as i32,
                            url_pattern: "*/pricing*".into(),
                            ..Default::default()
                        })),
                        ..Default::default()
                    },
                    ScoringRule {
                        key: "web_form".into(),
                        points: 3,
                        trigger: Some(Trigger::Attribute(AttributeTrigger {
                            conditions: vec![FieldCondition {
                                field: "source.channel".into(),
                                comparison: Some(Comparison::Equals("web_form".into())),
                                ..Default::default()
                            }],
                        })),
                        ..Default::default()
                    },
                ],
            ))
            .await;
        assert_eq!(
            (draft.version, draft.status),
            (2, ModelStatus::Draft as i32)
        );
        // Nobody activates in another person's name; the activator is the caller.
        let forged = f
            .qualification
            .activate_scoring_model(as_user(
                "mallory@example.com",
                ActivateScoringModelRequest {
                    model_id: draft.model_id.clone(),
                    activated_by: "head-of-marketing@example.com".into(),
                },
            ))
            .await
            .unwrap_err();
        assert_eq!(forged.code(), tonic::Code::PermissionDenied, "{forged:?}");
        let active = f.activate(&draft.model_id).await.unwrap();
        assert_eq!(active.status, ModelStatus::Active as i32);
        assert_eq!(active.activated_by, "head-of-marketing@example.com");
        let recompute = active.recompute.unwrap();
        assert_eq!(recompute.leads_total, 1);

        let done = f.recompute_done().await;
        assert_eq!(done.leads_done, 1);
        let explained_a = f.explained(&a, 3).await;
        assert_eq!(explained_a.score, 21);
        assert_eq!(explained_a.model_version, 2);
        let stage = f
            .qualification
            .get_stage(GetStageRequest { lead_id: a.clone() })
            .await
            .unwrap()
            .into_inner();
        assert_eq!(stage.stage, Stage::Mql as i32, "21 >= the new threshold 20");
        assert_eq!(stage.history.last().unwrap().reason, "score_threshold");

        // A lead scored incrementally under the new model gets exactly the recomputed result.
        let b = f.lead("noa@example.com").await;
        f.act_at(&b, "b1", ActivityKind::EmailOpened, "", an_hour_ago)
            .await;
        f.act_at(
            &b,
            "b2",
            ActivityKind::PageViewed,
            "https://x.example/pricing?plan=pro",
            an_hour_ago,
        )
        .await;
        let explained_b = f.explained(&b, 3).await;
        assert_eq!(summary(&explained_b), summary(&explained_a));
        assert_eq!(explained_b.score, 21);

        let all = f
            .qualification
            .list_scoring_models(ListScoringModelsRequest::default())
            .await
            .unwrap()
            .into_inner()
            .models;
        let statuses: Vec<(i32, i32)> = all.iter().map(|m| (m.version, m.status)).collect();
        assert_eq!(
            statuses,
            vec![
                (1, ModelStatus::Retired as i32),
                (2, ModelStatus::Active as i32)
            ]
        );
        // Rolling back to version 1 is an activation like any other.
        let v1 = all[0].model_id.clone();
        f.activate(&v1).await.unwrap();
        eventually("rolled back", Duration::from_secs(20), || {
            let mut q = f.qualification.clone();
            let a = a.clone();
            async move {
                let s = q
                    .get_score(GetScoreRequest { lead_id: a })
                    .await
                    .ok()?
                    .into_inner();
                (s.model_version == 1 && s.score == 15).then_some(())
            }
        })
        .await;
        f.stop().await;
    }

    #[tokio::test]
    async fn a_recompute_covers_the_leads_there_were_and_leaves_later_captures_to_scoring() {
        let mut f = start().await;
        let first = f.lead("ilse@example.com").await;
        let q = f.qualification.clone();
        let scored = |lead_id: String, version: i32| {
            let q = q.clone();
            eventually("scored", Duration::from_secs(20), move || {
                let mut q = q.clone();
                let lead_id = lead_id.clone();
                async move {
                    let s = q
                        .get_score(GetScoreRequest { lead_id })
                        .await
                        .ok()?
                        .into_inner();
                    (s.model_version == version).then_some(s)
                }
            })
        };
        scored(first.clone(), 1).await;
        let draft = f
            .create(definition(
                20,
                vec![behaviour("opened", ActivityKind::EmailOpened, 7)],
            ))
            .await;
        let active = f.activate(&draft.model_id).await.unwrap();
        assert_eq!(active.recompute.unwrap().leads_total, 1);
        // Captured while the job runs: scored by the new model when they arrive.
        let mut later = Vec::new();
        for n in 0..5 {
            later.push(f.lead(&format!("later{n}@example.com")).await);
        }
        let done = f.recompute_done().await;
        assert_eq!(
            (done.leads_total, done.leads_done),
            (1, 1),
            "the job rescored the one lead there was, not the later captures"
        );
        for lead_id in std::iter::once(first).chain(later) {
            assert_eq!(scored(lead_id, 2).await.model_version, 2);
        }
        f.stop().await;
    }

    #[tokio::test]
    async fn invalid_models_are_refused_with_every_problem_and_only_drafts_change() {
        let mut f = start().await;
        let missing_field = f
            .qualification
            .create_scoring_model(as_user(
                "ops",
                CreateScoringModelRequest {
                    definition: Some(definition(
                        10,
                        vec![
                            ScoringRule {
                                key: "fit".into(),
                                points: 5,
                                trigger: Some(Trigger::Attribute(AttributeTrigger {
                                    conditions: vec![FieldCondition {
                                        field: " ".into(),
                                        comparison: Some(Comparison::Gte(1.0)),
                                        ..Default::default()
                                    }],
                                })),
                                ..Default::default()
                            },
                            ScoringRule {
                                key: "odd".into(),
                                points: 5,
                                trigger: Some(Trigger::Behaviour(BehaviourTrigger {
                                    activity_kind: 99,
                                    ..Default::default()
                                })),
                                ..Default::default()
                            },
                        ],
                    )),
                    created_by: "ops".into(),
                },
            ))
            .await
            .unwrap_err();
        assert_eq!(missing_field.code(), Code::InvalidArgument);
        let fields: Vec<String> = missing_field
            .get_details_bad_request()
            .unwrap()
            .field_violations
            .into_iter()
            .map(|v| v.field)
            .collect();
        assert_eq!(
            fields,
            vec![
                "definition.rules[0].attribute.conditions[0].field",
                "definition.rules[1].behaviour.activity_kind"
            ]
        );

        let broken = f
            .create(definition(
                0,
                vec![
                    behaviour("x", ActivityKind::EmailOpened, 0),
                    ScoringRule {
                        cap: Some(ScoreCap {
                            max_points: 0,
                            period_days: 7,
                        }),
                        ..behaviour("x", ActivityKind::EmailClicked, 5)
                    },
                ],
            ))
            .await;
        let refused = f.activate(&broken.model_id).await.unwrap_err();
        assert_eq!(refused.code(), Code::FailedPrecondition);
        let problems: Vec<String> = refused
            .get_details_precondition_failure()
            .unwrap()
            .violations
            .into_iter()
            .map(|v| v.description)
            .collect();
        assert_eq!(problems.len(), 4, "{problems:#?}");
        assert!(problems.iter().any(|p| p.contains("mql_threshold")));
        assert!(problems.iter().any(|p| p.contains("key used twice")));
        let still = f
            .qualification
            .get_scoring_model(GetScoringModelRequest {
                model_id: broken.model_id.clone(),
            })
            .await
            .unwrap()
            .into_inner();
        assert_eq!(still.status, ModelStatus::Draft as i32, "nothing half-done");

        // The draft is fixed in place, then activated; an active version is no longer editable.
        let fixed = f
            .qualification
            .update_scoring_model(UpdateScoringModelRequest {
                model_id: broken.model_id.clone(),
                definition: Some(definition(
                    10,
                    vec![behaviour("x", ActivityKind::EmailOpened, 5)],
                )),
            })
            .await
            .unwrap()
            .into_inner();
        assert_eq!(fixed.definition.unwrap().mql_threshold, 10);
        f.activate(&broken.model_id).await.unwrap();
        let again = f.activate(&broken.model_id).await.unwrap_err();
        assert!(again.message().contains("already_active"), "{again:?}");
        let frozen = f
            .qualification
            .update_scoring_model(UpdateScoringModelRequest {
                model_id: broken.model_id.clone(),
                definition: Some(definition(
                    99,
                    vec![behaviour("x", ActivityKind::EmailOpened, 5)],
                )),
            })
            .await
            .unwrap_err();
        assert_eq!(frozen.code(), Code::FailedPrecondition);
        assert!(frozen.message().contains("draft_only"));
        let unknown = f.activate("no-such-model").await.unwrap_err();
        assert_eq!(unknown.code(), Code::NotFound);
        f.stop().await;
    }

    #[tokio::test]
    async fn explain_score_shows_caps_expiry_and_what_no_longer_counts() {
        let mut f = start().await;
        let week = chrono::Duration::days(7);
        let epoch = DateTime::<Utc>::UNIX_EPOCH;
        // The start of last week's 7-day cap window: three opens inside it, all in the past.
        let window = epoch + week * ((Utc::now() - week - epoch).num_days() / 7) as i32;
        let model = f
            .create(definition(
                100,
                vec![
                    ScoringRule {
                        cap: Some(ScoreCap {
                            max_points: 8,
                            period_days: 7,
                        }),
                        expires_after_days: 90,
                        ..behaviour("opened", ActivityKind::EmailOpened, 5)
                    },
                    ScoringRule {
                        expires_after_days: 1,
                        ..behaviour("clicked", ActivityKind::EmailClicked, 10)
                    },
                ],
            ))
            .await;
        f.activate(&model.model_id).await.unwrap();
        let lead = f.lead("sora@example.com").await;
        for (i, h) in [1, 2, 3].iter().enumerate() {
            f.act_at(
                &lead,
                &format!("o{i}"),
                ActivityKind::EmailOpened,
                "",
                window + chrono::Duration::hours(*h),
            )
            .await;
        }
        f.act_at(
            &lead,
            "c",
            ActivityKind::EmailClicked,
            "",
            Utc::now() - chrono::Duration::days(3),
        )
        .await;
        let e = f.explained(&lead, 3).await;
        assert_eq!(e.score, 8, "5 + 3 (capped); the click expired: {e:#?}");
        let capped = &e.contributions[1];
        assert_eq!((capped.rule_key.as_str(), capped.points), ("opened", 3));
        assert!(
            capped.detail.contains("capped: 3 of 5"),
            "{}",
            capped.detail
        );
        let click = e
            .contributions
            .iter()
            .find(|c| c.rule_key == "clicked")
            .unwrap();
        assert!(click.expired);
        let first_expiry = time::from_proto(e.contributions[0].expires_at.as_ref().unwrap());
        assert_eq!(
            first_expiry,
            Some(window + chrono::Duration::hours(1) + chrono::Duration::days(90))
        );
        assert_eq!(e.next_change_at, e.contributions[0].expires_at);
        let score = f.score_after(&lead, 2).await;
        assert_eq!(
            score.score, 8,
            "the stored score agrees with the explanation"
        );
        f.stop().await;
    }

    #[tokio::test]
    async fn simulate_model_counts_mqls_per_period_and_what_became_of_them() {
        let mut f = start().await;
        let now = Utc::now();
        let days = chrono::Duration::days;
        let a = f.lead("ren@example.com").await;
        f.act_at(&a, "a1", ActivityKind::MeetingBooked, "", now - days(10))
            .await;
        f.act_at(&a, "a2", ActivityKind::FreeTrialStarted, "", now - days(9))
            .await;
        let b = f.lead("yui@example.com").await;
        f.act_at(&b, "b1", ActivityKind::EmailOpened, "", now - days(8))
            .await;
        f.score_after(&a, 2).await;
        f.score_after(&b, 1).await;
        f.qualification
            .change_stage(as_user(
                "is-rep@example.com",
                ChangeStageRequest {
                    lead_id: a.clone(),
                    to_stage: Stage::Sql as i32,
                    reason: "IS confirmed on the call".into(),
                    changed_by: "is-rep@example.com".into(),
                    override_reason: "BANT recorded in the CRM, not here".into(),
                },
            ))
            .await
            .unwrap();

        let simulate = |threshold: i64| SimulateModelRequest {
            model: Some(simulate_model_request::Model::Definition(definition(
                threshold,
                vec![
                    behaviour("meeting", ActivityKind::MeetingBooked, 25),
                    behaviour("trial", ActivityKind::FreeTrialStarted, 25),
                    behaviour("opened", ActivityKind::EmailOpened, 5),
                ],
            ))),
            start_time: Some(time::to_proto(now - days(14))),
            end_time: Some(time::to_proto(now + days(1))),
            period: SimulationPeriod::Day as i32,
        };
        let strict = f
            .qualification
            .simulate_model(simulate(30))
            .await
            .unwrap()
            .into_inner();
        assert_eq!(strict.leads_evaluated, 2);
        let total = strict.total.unwrap();
        assert_eq!((total.mqls, total.reached_sql), (1, 1));
        let day_of_mql = strict.periods.iter().find(|p| p.mqls == 1).unwrap();
        let start = time::from_proto(day_of_mql.period_start.as_ref().unwrap()).unwrap();
        assert_eq!(start.date_naive(), (now - days(9)).date_naive());
        let loose = f
            .qualification
            .simulate_model(simulate(5))
            .await
            .unwrap()
            .into_inner()
            .total
            .unwrap();
        assert_eq!(
            (loose.mqls, loose.reached_sql, loose.reached_customer),
            (2, 1, 0)
        );

        let mut backwards = simulate(30);
        backwards.end_time = Some(time::to_proto(now - days(20)));
        let bad = f.qualification.simulate_model(backwards).await.unwrap_err();
        assert_eq!(bad.code(), Code::InvalidArgument);
        assert_eq!(
            bad.get_details_bad_request().unwrap().field_violations[0].field,
            "end_time"
        );
        let invalid = f
            .qualification
            .simulate_model(simulate(0))
            .await
            .unwrap_err();
        assert_eq!(invalid.code(), Code::FailedPrecondition);
        let mut unknown = simulate(30);
        unknown.model = Some(simulate_model_request::Model::ModelId("nope".into()));
        assert_eq!(
            f.qualification
                .simulate_model(unknown)
                .await
                .unwrap_err()
                .code(),
            Code::NotFound
        );
        f.stop().await;
    }

    /// A simulation that runs past scoring.simulation_deadline_seconds (0 here: any batch of
    /// leads does) is stopped with DEADLINE_EXCEEDED; with no lead to score it answers at once.
    #[tokio::test]
    async fn a_simulation_past_its_deadline_is_stopped() {
        let mut f = start_with(|s| s.scoring.simulation_deadline_seconds = 0).await;
        let now = Utc::now();
        let days = chrono::Duration::days;
        let simulate = || SimulateModelRequest {
            model: Some(simulate_model_request::Model::Definition(definition(
                30,
                vec![behaviour("meeting", ActivityKind::MeetingBooked, 25)],
            ))),
            start_time: Some(time::to_proto(now - days(14))),
            end_time: Some(time::to_proto(now + days(1))),
            period: SimulationPeriod::Day as i32,
        };
        let empty = f
            .qualification
            .simulate_model(simulate())
            .await
            .expect("nothing to score")
            .into_inner();
        assert_eq!(empty.leads_evaluated, 0);
        let a = f.lead("sora@example.com").await;
        f.act_at(&a, "a1", ActivityKind::MeetingBooked, "", now - days(3))
            .await;
        f.score_after(&a, 1).await;
        let stopped = f
            .qualification
            .simulate_model(simulate())
            .await
            .expect_err("past its deadline");
        assert_eq!(stopped.code(), Code::DeadlineExceeded);
        assert!(
            stopped.message().contains("simulation_deadline_seconds"),
            "{}",
            stopped.message()
        );
        f.stop().await;
    }
}

#[tokio::test]
async fn stage_rules_are_data_changed_over_grpc_versioned_and_gate_manual_moves_to_sql() {
    use baton_proto::{
        distribution::v1::HandoffAction,
        qualification::v1::{
            BantKey, GetStageRulesRequest, HandoffStageMove, SetStageRulesRequest, StageRules,
        },
    };
    let mut f = start().await;
    // The seeded defaults, version 1.
    let defaults = f
        .qualification
        .get_stage_rules(GetStageRulesRequest {})
        .await
        .unwrap()
        .into_inner();
    assert_eq!(defaults.version, 1);
    assert_eq!(
        defaults.iql_activity_kinds,
        [ActivityKind::DocumentDownloaded as i32]
    );
    assert_eq!(defaults.sql_bant_items.len(), 4);
    assert_eq!(defaults.handoff_moves.len(), 5);

    // Bad rules name their fields and change nothing.
    let bad = f
        .qualification
        .set_stage_rules(SetStageRulesRequest {
            rules: Some(StageRules {
                sql_bant_items: vec![],
                handoff_moves: vec![HandoffStageMove {
                    step: HandoffAction::Won as i32,
                    to_stage: Stage::Unspecified as i32,
                    only_if_rejected_to: String::new(),
                }],
                ..Default::default()
            }),
            expected_version: 1,
        })
        .await
        .unwrap_err();
    assert_eq!(bad.code(), Code::InvalidArgument);
    let fields: Vec<String> = bad
        .get_details_bad_request()
        .expect("field violations")
        .field_violations
        .into_iter()
        .map(|v| v.field)
        .collect();
    assert_eq!(
        fields,
        ["rules.sql_bant_items", "rules.handoff_moves[0].to_stage"]
    );

    // Webinar attendance makes an IQL; budget and need make an SQL.
    let changed = f
        .qualification
        .set_stage_rules(SetStageRulesRequest {
            rules: Some(StageRules {
                iql_activity_kinds: vec![ActivityKind::WebinarAttended as i32],
                sql_bant_items: vec![BantKey::Budget as i32, BantKey::Need as i32],
                handoff_moves: defaults.handoff_moves.clone(),
                ..Default::default()
            }),
            expected_version: 1,
        })
        .await
        .unwrap()
        .into_inner();
    assert_eq!(changed.version, 2);
    let stale = f
        .qualification
        .set_stage_rules(SetStageRulesRequest {
            rules: Some(defaults.clone()),
            expected_version: 1,
        })
        .await
        .unwrap_err();
    assert_eq!(stale.code(), Code::FailedPrecondition);

    let lead = f.lead("rules@example.com").await;
    f.act(
        &lead,
        "dl",
        ActivityKind::DocumentDownloaded,
        PageKind::Unspecified,
    )
    .await;
    f.act(
        &lead,
        "web",
        ActivityKind::WebinarAttended,
        PageKind::Unspecified,
    )
    .await;
    let iql = f.stage_when(&lead, Stage::Iql).await;
    assert_eq!(iql.history.len(), 1, "the download no longer makes an IQL");
    assert_eq!(iql.history[0].reason, "webinar_attended");

    // A manual move to SQL without the gated BANT items is refused, unless overridden.
    let refused = f
        .qualification
        .change_stage(as_user(
            "is.rep@example.com",
            ChangeStageRequest {
                lead_id: lead.clone(),
                to_stage: Stage::Sql as i32,
                reason: "sounds keen".into(),
                changed_by: "is.rep@example.com".into(),
                ..Default::default()
            },
        ))
        .await
        .unwrap_err();
    assert_eq!(refused.code(), Code::FailedPrecondition);
    assert!(
        refused.message().contains("sql_gate")
            && refused.message().contains("BANT_KEY_BUDGET")
            && refused.message().contains("BANT_KEY_NEED")
            && !refused.message().contains("BANT_KEY_AUTHORITY"),
        "{}",
        refused.message()
    );
    let item = |note: &str| {
        Some(BantItem {
            confirmed: true,
            note: note.into(),
        })
    };
    let sql = f
        .qualification
        .record_bant(as_user(
            "is.rep@example.com",
            RecordBantRequest {
                lead_id: lead.clone(),
                bant: Some(Bant {
                    budget: item("approved"),
                    need: item("clear"),
                    ..Default::default()
                }),
                recorded_by: "is.rep@example.com".into(),
            },
        ))
        .await
        .unwrap()
        .into_inner();
    assert_eq!(
        sql.stage,
        Stage::Sql as i32,
        "budget and need are enough now"
    );

    let other = f.lead("override@example.com").await;
    eventually("tracked", Duration::from_secs(20), || {
        let mut q = f.qualification.clone();
        let lead_id = other.clone();
        async move { q.get_stage(GetStageRequest { lead_id }).await.ok() }
    })
    .await;
    let overridden = f
        .qualification
        .change_stage(as_user(
            "is.rep@example.com",
            ChangeStageRequest {
                lead_id: other.clone(),
                to_stage: Stage::Sql as i32,
                reason: "referral from the CEO".into(),
                changed_by: "is.rep@example.com".into(),
                override_reason: "BANT confirmed offline".into(),
            },
        ))
        .await
        .unwrap()
        .into_inner();
    assert_eq!(overridden.stage, Stage::Sql as i32);
    assert_eq!(
        overridden.history.last().unwrap().reason,
        "referral from the CEO (override: BANT confirmed offline)"
    );
    f.stop().await;
}
