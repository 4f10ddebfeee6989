//! capture over a real socket, on SQLite (and PostgreSQL when BATON_TEST_DATABASE_URL is set).

use std::{collections::HashMap, sync::Arc};

use baton_proto::capture::v1::{LeadsMerged, MergeLeadsRequest};
use baton_proto::{
    capture::v1::{
        ActivityKind, AttributeValue, CallDetails, CallOutcome, CaptureLeadRequest, Company,
        Consent, EraseLeadRequest, FunnelPosition, GetLeadRequest, ImportAnswer,
        ImportLeadsRequest, ImportRowStatus, Lead, LeadCaptured, LeadSource, LeadUpdated,
        ListLeadsRequest, Money, PageKind, RecordActivityRequest, RecordVisitsRequest,
        UpdateLeadRequest, VisitsRecorded, attribute_value::Value,
        capture_service_client::CaptureServiceClient,
    },
    events::v1::{SubscribeRequest, event_log_client::EventLogClient},
};
use baton_shared::peer::AuthChannel;
use baton_shared::{
    ServiceName,
    testing::{RunningService, TestDatabase, bind_ephemeral, channel, settings_with, spawn},
};
use prost_types::FieldMask;
use tonic::Code;
use tonic_types::StatusExt;

struct Fixture {
    service: RunningService,
    client: CaptureServiceClient<AuthChannel>,
    db: TestDatabase,
}

impl Fixture {
    /// Captures a lead that must be accepted, and returns it.
    async fn captured(&mut self, request: CaptureLeadRequest) -> Lead {
        let response = self
            .client
            .capture_lead(request)
            .await
            .expect("capture accepted");
        response.into_inner().lead.expect("a lead in the answer")
    }
}

async fn start() -> Fixture {
    start_with(|_| {}).await
}

/// [`start`] with settings `tune` changes first.
async fn start_with(tune: impl FnOnce(&mut baton_shared::Settings)) -> Fixture {
    let db = TestDatabase::new("capture").await;
    let mut settings = settings_with(&[(ServiceName::Capture, &db)]);
    tune(&mut settings);
    let listener = bind_ephemeral(&mut settings, ServiceName::Capture).await;
    let service = spawn(
        ServiceName::Capture,
        &Arc::new(settings),
        listener,
        baton_capture::run,
    );
    let client = CaptureServiceClient::new(channel(&service.endpoint).await);
    Fixture {
        service,
        client,
        db,
    }
}

/// capture's event log from the beginning, live.
async fn capture_events(endpoint: &str) -> tonic::Streaming<baton_proto::events::v1::Event> {
    EventLogClient::new(channel(endpoint).await)
        .subscribe(SubscribeRequest {
            after_position: 0,
            max_batch: 0,
            ..Default::default()
        })
        .await
        .expect("subscribe")
        .into_inner()
}

fn capture(request_id: &str, email: &str) -> CaptureLeadRequest {
    CaptureLeadRequest {
        request_id: request_id.into(),
        email: email.into(),
        first_name: "Aiko".into(),
        last_name: "Tanaka".into(),
        company_name: "Kaisha KK".into(),
        source: Some(LeadSource {
            channel: "web_form".into(),
            campaign: "spring".into(),
            ..Default::default()
        }),
        captured_at: None,
        ..Default::default()
    }
}

#[tokio::test]
async fn a_lead_is_captured_once_per_request_and_once_per_email() {
    let mut f = start().await;
    let first = f
        .client
        .capture_lead(capture("r1", "Aiko@Example.com"))
        .await
        .unwrap()
        .into_inner();
    assert!(first.created);
    let replay = f
        .client
        .capture_lead(capture("r1", "Aiko@Example.com"))
        .await
        .unwrap()
        .into_inner();
    assert_eq!(replay.lead, first.lead);
    let same_person = f
        .client
        .capture_lead(capture("r2", " aiko@example.COM "))
        .await
        .unwrap()
        .into_inner();
    assert!(!same_person.created);
    assert_eq!(
        same_person.lead.unwrap().lead_id,
        first.lead.clone().unwrap().lead_id
    );

    let reused = f
        .client
        .capture_lead(capture("r1", "someone.else@example.com"))
        .await
        .unwrap_err();
    assert_eq!(reused.code(), Code::InvalidArgument);

    // Exactly one LeadCaptured on the log.
    let mut events = capture_events(&f.service.endpoint).await;
    let event = events.message().await.unwrap().unwrap();
    let captured: LeadCaptured = baton_proto::any::unpack(event.payload.as_ref().unwrap())
        .unwrap()
        .unwrap();
    assert_eq!(captured.lead_id, first.lead.unwrap().lead_id);
    let next = tokio::time::timeout(std::time::Duration::from_millis(700), events.message()).await;
    assert!(next.is_err(), "a second event was published: {next:?}");
    drop(events);
    f.service.stop().await;
}

#[tokio::test]
async fn concurrent_captures_of_one_person_yield_one_lead() {
    let f = start().await;
    let mut tasks = Vec::new();
    for i in 0..8 {
        let mut client = f.client.clone();
        tasks.push(tokio::spawn(async move {
            client
                .capture_lead(capture(&format!("c{i}"), "race@example.com"))
                .await
                .unwrap()
                .into_inner()
        }));
    }
    let mut ids = std::collections::HashSet::new();
    let mut created = 0;
    for t in tasks {
        let r = t.await.unwrap();
        created += usize::from(r.created);
        ids.insert(r.lead.unwrap().lead_id);
    }
    assert_eq!(ids.len(), 1);
    assert_eq!(created, 1);
    f.service.stop().await;
}

/// Many captures at once (which the embedded SQLite mode writes in shared transactions): each is
/// answered as if alone — new people created, repeats of one person matched, a reused request_id
/// refused — and one refusal spoils nothing for the others.
#[tokio::test]
async fn a_crowd_of_captures_is_answered_one_by_one() {
    let mut f = start().await;
    f.captured(capture("reused", "first@example.com")).await;
    let mut tasks = Vec::new();
    for i in 0..60 {
        let mut client = f.client.clone();
        let request = match i {
            0 => capture("reused", "someone-else@example.com"),
            i if i % 6 == 0 => capture(&format!("same-{i}"), "same@example.com"),
            i => capture(&format!("crowd-{i}"), &format!("crowd{i}@example.com")),
        };
        tasks.push(tokio::spawn(async move {
            (i, client.capture_lead(request).await)
        }));
    }
    let (mut created, mut same) = (0, std::collections::HashSet::new());
    for t in tasks {
        match t.await.unwrap() {
            (0, answer) => {
                let status = answer.unwrap_err();
                assert_eq!(status.code(), Code::InvalidArgument);
                assert!(status.message().contains("request_id"), "{status:?}");
            }
            (i, answer) => {
                let answer = answer.unwrap().into_inner();
                if i % 6 == 0 {
                    same.insert(answer.lead.unwrap().lead_id);
                    created += usize::from(answer.created);
                } else {
                    assert!(answer.created, "crowd {i}");
                }
            }
        }
    }
    assert_eq!(same.len(), 1, "one lead for the person captured 9 times");
    assert_eq!(created, 1);
    f.service.stop().await;
}

#[tokio::test]
async fn bad_input_names_every_offending_field() {
    let mut f = start().await;
    let mut req = capture("", "not-an-email");
    req.source = None;
    let status = f.client.capture_lead(req).await.unwrap_err();
    assert_eq!(status.code(), Code::InvalidArgument);
    let fields: Vec<_> = status
        .get_details_bad_request()
        .unwrap()
        .field_violations
        .into_iter()
        .map(|v| v.field)
        .collect();
    assert_eq!(fields, ["request_id", "email", "source.channel"]);

    // A time left unset but sent as 0 (1970-01-01) is refused, not stored as 1970; so is one
    // past 2100. Nothing is captured.
    let field_of = |status: tonic::Status| {
        assert_eq!(status.code(), Code::InvalidArgument, "{status:?}");
        status
            .get_details_bad_request()
            .unwrap()
            .field_violations
            .into_iter()
            .map(|v| v.field)
            .collect::<Vec<_>>()
    };
    for seconds in [0, 946_684_799, 4_102_444_800] {
        let mut req = capture("r-time", "time@example.com");
        req.captured_at = Some(prost_types::Timestamp { seconds, nanos: 0 });
        let status = f.client.capture_lead(req).await.unwrap_err();
        assert_eq!(field_of(status), ["captured_at"], "{seconds}");
        let status = f
            .client
            .list_leads(ListLeadsRequest {
                captured_from: Some(prost_types::Timestamp { seconds, nanos: 0 }),
                ..Default::default()
            })
            .await
            .unwrap_err();
        assert_eq!(field_of(status), ["captured_from"], "{seconds}");
    }

    let status = f
        .client
        .get_lead(GetLeadRequest {
            lead_id: "nope".into(),
        })
        .await
        .unwrap_err();
    assert_eq!(status.code(), Code::NotFound);

    let status = f
        .client
        .record_activity(RecordActivityRequest {
            idempotency_key: "a1".into(),
            lead_id: "missing".into(),
            kind: ActivityKind::EmailOpened as i32,
            ..Default::default()
        })
        .await
        .unwrap_err();
    assert_eq!(status.code(), Code::NotFound);
    f.service.stop().await;
}

#[tokio::test]
async fn activities_are_recorded_once_per_idempotency_key() {
    let mut f = start().await;
    let lead = f.captured(capture("r1", "a@example.com")).await;
    let req = RecordActivityRequest {
        idempotency_key: "view-1".into(),
        lead_id: lead.lead_id.clone(),
        kind: ActivityKind::PageViewed as i32,
        occurred_at: None,
        url: "https://example.com/pricing".into(),
        page_kind: PageKind::Pricing as i32,
        ..Default::default()
    };
    let first = f
        .client
        .record_activity(req.clone())
        .await
        .unwrap()
        .into_inner();
    let again = f.client.record_activity(req).await.unwrap().into_inner();
    assert!(first.created && !again.created);
    assert_eq!(first.activity, again.activity);
    let got = f
        .client
        .get_lead(GetLeadRequest {
            lead_id: lead.lead_id.clone(),
        })
        .await
        .unwrap()
        .into_inner();
    assert_eq!(got, lead);
    f.service.stop().await;
}

fn full_request(request_id: &str, email: &str) -> CaptureLeadRequest {
    CaptureLeadRequest {
        request_id: request_id.into(),
        email: email.into(),
        first_name: "Aiko".into(),
        last_name: "Tanaka".into(),
        phone: "+81 3-1234-5678".into(),
        title: "CTO".into(),
        role: "decision_maker".into(),
        department: "IT".into(),
        company: Some(Company {
            name: "Kaisha KK".into(),
            web_domain: "https://www.kaisha.co.jp/".into(),
            industry: "Manufacturing".into(),
            employees: Some(1200),
            annual_revenue: Some(Money {
                currency_code: "JPY".into(),
                amount_minor: 5_000_000_000,
            }),
            country: "jp".into(),
            region: "Tokyo".into(),
            ..Default::default()
        }),
        consent: Some(Consent {
            email_opt_in: true,
            ..Default::default()
        }),
        custom_attributes: HashMap::from([
            (
                "seats".to_owned(),
                AttributeValue {
                    value: Some(Value::IntValue(40)),
                },
            ),
            (
                "plan".to_owned(),
                AttributeValue {
                    value: Some(Value::StringValue("enterprise".into())),
                },
            ),
        ]),
        source: Some(LeadSource {
            channel: "webinar".into(),
            campaign: "autumn".into(),
            lead_magnet: "DX checklist".into(),
            funnel_position: FunnelPosition::Top as i32,
            utm_source: "newsletter".into(),
            ..Default::default()
        }),
        ..Default::default()
    }
}

#[tokio::test]
async fn the_whole_profile_is_kept_and_colleagues_share_their_company() {
    let mut f = start().await;
    let aiko = f.captured(full_request("r1", "aiko@kaisha.co.jp")).await;
    let got = f
        .client
        .get_lead(GetLeadRequest {
            lead_id: aiko.lead_id.clone(),
        })
        .await
        .unwrap()
        .into_inner();
    assert_eq!(got, aiko);
    assert_eq!(
        (got.phone.as_str(), got.title.as_str(), got.role.as_str()),
        ("+81 3-1234-5678", "CTO", "decision_maker")
    );
    let company = got.company.clone().unwrap();
    assert_eq!(
        (
            company.web_domain.as_str(),
            company.country.as_str(),
            company.employees
        ),
        ("kaisha.co.jp", "JP", Some(1200))
    );
    assert_eq!(company.annual_revenue.unwrap().amount_minor, 5_000_000_000);
    assert!(got.consent.unwrap().email_opt_in);
    assert_eq!(
        got.custom_attributes["seats"].value,
        Some(Value::IntValue(40))
    );
    assert_eq!(
        got.source.unwrap().funnel_position,
        FunnelPosition::Top as i32
    );

    // A colleague with only a company name is matched to the same company by the e-mail domain;
    // what the company already knows is kept.
    let mut ken = capture("r2", "ken@kaisha.co.jp");
    ken.company_name = "Kaisha".into();
    let ken = f.captured(ken).await;
    let ken_company = ken.company.unwrap();
    assert_eq!(ken_company.company_id, company.company_id);
    assert_eq!(ken_company.name, "Kaisha KK");
    // A free-mail address matches no company.
    let mut solo = capture("r3", "solo@gmail.com");
    solo.company_name = "Solo LLC".into();
    let solo = f.captured(solo).await;
    assert_ne!(solo.company.unwrap().company_id, company.company_id);

    let colleagues = f
        .client
        .list_leads(ListLeadsRequest {
            company_id: company.company_id.clone(),
            ..Default::default()
        })
        .await
        .unwrap()
        .into_inner();
    let ids: Vec<_> = colleagues.leads.iter().map(|l| l.lead_id.clone()).collect();
    assert_eq!(ids, [aiko.lead_id.clone(), ken.lead_id.clone()]);
    let webinar = f
        .client
        .list_leads(ListLeadsRequest {
            channel: "webinar".into(),
            ..Default::default()
        })
        .await
        .unwrap();
    assert_eq!(webinar.into_inner().leads.len(), 1);
    f.service.stop().await;
}

#[tokio::test]
async fn update_lead_changes_only_masked_fields_and_emits_lead_updated() {
    let mut f = start().await;
    let lead = f.captured(full_request("r1", "aiko@kaisha.co.jp")).await;
    let patch = Lead {
        title: "CEO".into(),
        first_name: "ignored".into(),
        consent: Some(Consent {
            unsubscribed: true,
            ..Default::default()
        }),
        ..Default::default()
    };
    let mask = FieldMask {
        paths: vec!["title".into(), "consent.unsubscribed".into()],
    };
    let updated = f
        .client
        .update_lead(UpdateLeadRequest {
            lead_id: lead.lead_id.clone(),
            lead: Some(patch),
            update_mask: Some(mask),
        })
        .await
        .unwrap()
        .into_inner();
    assert_eq!(
        (updated.title.as_str(), updated.first_name.as_str()),
        ("CEO", "Aiko")
    );
    let consent = updated.consent.unwrap();
    assert!(
        consent.unsubscribed && consent.email_opt_in,
        "other consent flags are kept"
    );
    let at = |t: Option<prost_types::Timestamp>| {
        t.and_then(|t| baton_shared::time::from_proto(&t)).unwrap()
    };
    assert!(at(updated.updated_at) >= at(lead.updated_at));

    let mut events = capture_events(&f.service.endpoint).await;
    let _captured = events.message().await.unwrap().unwrap();
    let event = events.message().await.unwrap().unwrap();
    let changed: LeadUpdated = baton_proto::any::unpack(event.payload.as_ref().unwrap())
        .unwrap()
        .unwrap();
    assert_eq!(changed.changed_paths, ["title", "consent.unsubscribed"]);
    drop(events);

    for (mask, field) in [(vec!["email"], "update_mask"), (vec![], "update_mask")] {
        let status = f
            .client
            .update_lead(UpdateLeadRequest {
                lead_id: lead.lead_id.clone(),
                lead: Some(Lead::default()),
                update_mask: Some(FieldMask {
                    paths: mask.into_iter().map(String::from).collect(),
                }),
            })
            .await
            .unwrap_err();
        assert_eq!(status.code(), Code::InvalidArgument);
        assert_eq!(
            status.get_details_bad_request().unwrap().field_violations[0].field,
            field
        );
    }
    let missing = f
        .client
        .update_lead(UpdateLeadRequest {
            lead_id: "nope".into(),
            lead: None,
            update_mask: Some(FieldMask {
                paths: vec!["title".into()],
            }),
        })
        .await
        .unwrap_err();
    assert_eq!(missing.code(), Code::NotFound);
    f.service.stop().await;
}

#[tokio::test]
async fn bad_profile_values_are_refused_with_their_fields_and_nothing_is_stored() {
    let mut f = start().await;
    let mut req = full_request("r1", "aiko@kaisha.co.jp");
    let company = req.company.as_mut().unwrap();
    company.employees = Some(-5);
    company.annual_revenue = Some(Money {
        currency_code: "yen".into(),
        amount_minor: 1,
    });
    req.custom_attributes.insert(
        "Bad Key".into(),
        AttributeValue {
            value: Some(Value::BoolValue(true)),
        },
    );
    let status = f.client.capture_lead(req).await.unwrap_err();
    assert_eq!(status.code(), Code::InvalidArgument);
    let fields: Vec<_> = status
        .get_details_bad_request()
        .unwrap()
        .field_violations
        .into_iter()
        .map(|v| v.field)
        .collect();
    assert_eq!(
        fields,
        [
            "company.employees",
            "company.annual_revenue.currency_code",
            "custom_attributes.Bad Key"
        ]
    );
    let none = f
        .client
        .list_leads(ListLeadsRequest::default())
        .await
        .unwrap()
        .into_inner();
    assert!(none.leads.is_empty());
    f.service.stop().await;
}

#[tokio::test]
async fn calls_keep_their_outcome_talk_time_and_target_department() {
    let mut f = start().await;
    let lead = f.captured(capture("r1", "a@example.com")).await;
    let call = CallDetails {
        outcome: CallOutcome::Connected as i32,
        duration_seconds: 340,
        reached_target_department: true,
    };
    let recorded = f
        .client
        .record_activity(RecordActivityRequest {
            idempotency_key: "call-1".into(),
            lead_id: lead.lead_id.clone(),
            kind: ActivityKind::Call as i32,
            call: Some(call),
            subject: "discovery call".into(),
            ..Default::default()
        })
        .await
        .unwrap()
        .into_inner()
        .activity
        .unwrap();
    assert_eq!(recorded.call, Some(call));
    assert_eq!(recorded.subject, "discovery call");
    let no_outcome = f
        .client
        .record_activity(RecordActivityRequest {
            idempotency_key: "call-2".into(),
            lead_id: lead.lead_id.clone(),
            kind: ActivityKind::Call as i32,
            ..Default::default()
        })
        .await
        .unwrap_err();
    assert_eq!(no_outcome.code(), Code::InvalidArgument);
    f.service.stop().await;
}

fn import_batch(import_id: &str, rows: Vec<CaptureLeadRequest>) -> ImportLeadsRequest {
    ImportLeadsRequest {
        import_id: import_id.into(),
        rows,
        ..Default::default()
    }
}

fn row(email: &str) -> CaptureLeadRequest {
    let mut r = capture("", email);
    r.request_id.clear();
    r
}

#[tokio::test]
async fn an_import_answers_every_row_and_running_it_again_changes_nothing() {
    let mut f = start().await;
    let existing = f
        .client
        .capture_lead(capture("before", "known@example.com"))
        .await
        .unwrap()
        .into_inner();
    let file = || {
        let mut bad = row("not-an-email");
        bad.company = Some(Company {
            country: "ZZ".into(),
            ..Default::default()
        });
        vec![
            import_batch(
                "crm-2026-11.csv",
                vec![row("a@example.com"), row("known@example.com"), bad],
            ),
            import_batch("", vec![row("b@example.com"), row("a@example.com")]),
        ]
    };
    let first = f
        .client
        .import_leads(tokio_stream::iter(file()))
        .await
        .unwrap()
        .into_inner();
    assert_eq!(
        (
            first.rows,
            first.created,
            first.matched_existing,
            first.rejected
        ),
        (5, 2, 2, 1)
    );
    let statuses: Vec<_> = first
        .results
        .iter()
        .map(|r| (r.row_number, r.status))
        .collect();
    assert_eq!(
        statuses,
        [
            (1, ImportRowStatus::Created as i32),
            (2, ImportRowStatus::MatchedExisting as i32),
            (3, ImportRowStatus::Rejected as i32),
            (4, ImportRowStatus::Created as i32),
            (5, ImportRowStatus::MatchedExisting as i32),
        ]
    );
    assert_eq!(first.results[1].lead_id, existing.lead.unwrap().lead_id);
    assert_eq!(
        first.results[4].lead_id, first.results[0].lead_id,
        "the same person twice in a file is one lead"
    );
    let rejected: Vec<_> = first.results[2]
        .violations
        .iter()
        .map(|v| v.field.as_str())
        .collect();
    assert_eq!(rejected, ["email", "company.country"]);

    let again = f
        .client
        .import_leads(tokio_stream::iter(file()))
        .await
        .unwrap()
        .into_inner();
    assert_eq!(
        (again.created, again.already_imported, again.rejected),
        (0, 4, 1)
    );
    let all = f
        .client
        .list_leads(ListLeadsRequest::default())
        .await
        .unwrap()
        .into_inner();
    assert_eq!(all.leads.len(), 3, "known, a and b");

    let no_id = f
        .client
        .import_leads(tokio_stream::iter(vec![import_batch(
            "",
            vec![row("c@example.com")],
        )]))
        .await;
    assert_eq!(no_id.unwrap_err().code(), Code::InvalidArgument);
    f.service.stop().await;
}

/// A batch that fails in the database is rolled back before its rows are retried one by one:
/// on SQLite's single connection a retried row would otherwise wait for the failed batch's
/// connection until the pool's acquire timeout (shortened here, so the fault shows quickly).
#[tokio::test]
async fn a_failed_import_batch_is_released_before_its_rows_are_retried() {
    let Fixture {
        service,
        mut client,
        db,
    } = start_with(|s| s.database.acquire_timeout_ms = 2_000).await;
    // Once migrated, make every statement that inserts two leads with the same creation time (a
    // batch does; captures one at a time never do) fail in the database.
    client
        .capture_lead(capture("warm-up", "first@example.com"))
        .await
        .expect("first capture");
    let fault = if db.is_postgres() {
        "CREATE FUNCTION one_lead_per_instant() RETURNS trigger AS $$ BEGIN \
           IF EXISTS (SELECT 1 FROM lead WHERE tenant_id = NEW.tenant_id \
                      AND created_at = NEW.created_at) THEN \
             RAISE EXCEPTION 'two leads of one instant'; END IF; RETURN NEW; END $$ \
         LANGUAGE plpgsql; \
         CREATE TRIGGER one_lead_per_instant BEFORE INSERT ON lead \
         FOR EACH ROW EXECUTE FUNCTION one_lead_per_instant();"
    } else {
        "CREATE TRIGGER one_lead_per_instant BEFORE INSERT ON lead \
         WHEN EXISTS (SELECT 1 FROM lead WHERE tenant_id = NEW.tenant_id \
                      AND created_at = NEW.created_at) \
         BEGIN SELECT RAISE(ABORT, 'two leads of one instant'); END;"
    };
    baton_shared::testing::execute(&db.url, fault).await;
    let rows = ["r1@example.com", "r2@example.com", "r3@example.com"]
        .into_iter()
        .map(row)
        .collect();
    let answer = client
        .import_leads(tokio_stream::iter(vec![import_batch("retried.csv", rows)]))
        .await
        .expect("import answered")
        .into_inner();
    let statuses: Vec<(i32, usize)> = answer
        .results
        .iter()
        .map(|r| (r.status, r.violations.len()))
        .collect();
    let created = ImportRowStatus::Created as i32;
    assert_eq!(
        statuses,
        [(created, 0), (created, 0), (created, 0)],
        "each row, retried alone, is created"
    );
    let n = baton_shared::testing::count(&db.url, "SELECT COUNT(*) AS n FROM lead").await;
    assert_eq!(n, 4, "the warm-up lead and the three rows");
    service.stop().await;
}

/// An import's answer is bounded: every row's results up to import.max_results_per_call (3
/// here), then RESOURCE_EXHAUSTED before the message that would pass it, with what came before
/// imported; the rejected rows' results only; or the counts only, with no bound on the rows.
#[tokio::test]
async fn an_import_answer_holds_at_most_its_limit_of_row_results() {
    let Fixture {
        service,
        mut client,
        db: _db,
    } = start_with(|s| s.import.max_results_per_call = 3).await;
    let message = |id: &str, emails: &[&str], answer: ImportAnswer| ImportLeadsRequest {
        import_id: id.into(),
        rows: emails.iter().map(|e| row(e)).collect(),
        answer: answer as i32,
    };
    let too_many = client
        .import_leads(tokio_stream::iter(vec![
            message(
                "every.csv",
                &["e1@example.com", "e2@example.com"],
                ImportAnswer::Unspecified,
            ),
            message(
                "",
                &["e3@example.com", "e4@example.com"],
                ImportAnswer::Unspecified,
            ),
        ]))
        .await
        .expect_err("4 results are more than 3");
    assert_eq!(too_many.code(), Code::ResourceExhausted);
    assert!(
        too_many.message().contains("rows 1 to 2 were imported"),
        "{}",
        too_many.message()
    );
    let stored = |client: &mut CaptureServiceClient<AuthChannel>| {
        let mut client = client.clone();
        async move {
            client
                .list_leads(ListLeadsRequest::default())
                .await
                .unwrap()
                .into_inner()
                .leads
                .len()
        }
    };
    assert_eq!(
        stored(&mut client).await,
        2,
        "the first message was imported, the second not"
    );

    let summary = client
        .import_leads(tokio_stream::iter(vec![
            message(
                "summary.csv",
                &["s1@example.com", "s2@example.com", "s3@example.com"],
                ImportAnswer::Summary,
            ),
            message(
                "",
                &["s4@example.com", "s5@example.com"],
                ImportAnswer::Unspecified,
            ),
        ]))
        .await
        .expect("a summary has no bound")
        .into_inner();
    assert_eq!(
        (summary.rows, summary.created, summary.results.len()),
        (5, 5, 0)
    );

    let rejected_only = client
        .import_leads(tokio_stream::iter(vec![message(
            "rejected.csv",
            &[
                "r1@example.com",
                "not-an-email",
                "r3@example.com",
                "r4@example.com",
            ],
            ImportAnswer::RejectedOnly,
        )]))
        .await
        .expect("one rejected row is within the bound")
        .into_inner();
    assert_eq!(
        (
            rejected_only.rows,
            rejected_only.created,
            rejected_only.rejected
        ),
        (4, 3, 1)
    );
    let results: Vec<(i64, i32)> = rejected_only
        .results
        .iter()
        .map(|r| (r.row_number, r.status))
        .collect();
    assert_eq!(results, [(2, ImportRowStatus::Rejected as i32)]);
    assert_eq!(stored(&mut client).await, 10);

    let unknown = client
        .import_leads(tokio_stream::iter(vec![ImportLeadsRequest {
            answer: 99,
            ..message("bad.csv", &["b1@example.com"], ImportAnswer::Unspecified)
        }]))
        .await
        .expect_err("an unknown answer");
    assert_eq!(unknown.code(), Code::InvalidArgument);
    service.stop().await;
}

/// One import message is written set-based: rows within it must still see each other as if
/// captured one after the other.
#[tokio::test]
async fn rows_of_one_message_see_each_other() {
    let mut f = start().await;
    let mut events = capture_events(&f.service.endpoint).await;
    let mut first = row("mei@acme-corp.example");
    first.company = Some(Company {
        name: "Acme".into(),
        country: "JP".into(),
        ..Default::default()
    });
    let mut colleague = row("jun@acme-corp.example");
    colleague.company = Some(Company {
        name: "Acme Corporation".into(),
        industry: "manufacturing".into(),
        employees: Some(300),
        ..Default::default()
    });
    let answer = f
        .client
        .import_leads(tokio_stream::iter(vec![import_batch(
            "one-message",
            vec![first, row("MEI@acme-corp.example"), colleague],
        )]))
        .await
        .unwrap()
        .into_inner();
    let statuses: Vec<_> = answer.results.iter().map(|r| r.status).collect();
    assert_eq!(
        statuses,
        [
            ImportRowStatus::Created as i32,
            ImportRowStatus::MatchedExisting as i32,
            ImportRowStatus::Created as i32,
        ]
    );
    assert_eq!(
        answer.results[1].lead_id, answer.results[0].lead_id,
        "the same person twice in one message is one lead"
    );
    let jun = f
        .client
        .get_lead(GetLeadRequest {
            lead_id: answer.results[2].lead_id.clone(),
        })
        .await
        .unwrap()
        .into_inner();
    let company = jun.company.unwrap();
    // Colleagues share the company; the first row's values are kept, the later one fills blanks.
    assert_eq!(
        (
            company.web_domain.as_str(),
            company.name.as_str(),
            company.country.as_str(),
            company.industry.as_str(),
            company.employees
        ),
        (
            "acme-corp.example",
            "Acme",
            "JP",
            "manufacturing",
            Some(300)
        )
    );
    let mei = f
        .client
        .get_lead(GetLeadRequest {
            lead_id: answer.results[0].lead_id.clone(),
        })
        .await
        .unwrap()
        .into_inner();
    assert_eq!(mei.company.unwrap().company_id, company.company_id);
    // One LeadCaptured per created lead, in row order.
    let mut captured = Vec::new();
    while captured.len() < 2 {
        let event = events.message().await.unwrap().unwrap();
        if let Some(c) = baton_shared::events::consumer::decode::<LeadCaptured>(&event).unwrap() {
            captured.push(c.lead_id);
        }
    }
    assert_eq!(
        captured,
        [
            answer.results[0].lead_id.clone(),
            answer.results[2].lead_id.clone()
        ]
    );
    // A request_id sent twice in one crowd of captures is one capture, replayed.
    let mut tasks = Vec::new();
    for _ in 0..2 {
        let mut client = f.client.clone();
        tasks.push(tokio::spawn(async move {
            client
                .capture_lead(capture("twice", "twice@example.com"))
                .await
                .unwrap()
                .into_inner()
        }));
    }
    let mut ids = Vec::new();
    for t in tasks {
        let answer = t.await.unwrap();
        assert!(answer.created, "both answers say the lead was created");
        ids.push(answer.lead.unwrap().lead_id);
    }
    assert_eq!(ids[0], ids[1]);
    f.service.stop().await;
}

#[tokio::test]
async fn erasure_removes_personal_data_here_and_in_past_events() {
    let mut f = start().await;
    let lead = f.captured(full_request("r1", "aiko@kaisha.co.jp")).await;
    let patch = Lead {
        title: "CEO".into(),
        ..Default::default()
    };
    f.client
        .update_lead(UpdateLeadRequest {
            lead_id: lead.lead_id.clone(),
            lead: Some(patch),
            update_mask: Some(FieldMask {
                paths: vec!["title".into()],
            }),
        })
        .await
        .unwrap();
    let erased = f
        .client
        .erase_lead(EraseLeadRequest {
            lead_id: lead.lead_id.clone(),
        })
        .await
        .unwrap()
        .into_inner();
    assert!(erased.erased_at.is_some());
    for (field, value) in [
        ("email", &erased.email),
        ("first_name", &erased.first_name),
        ("last_name", &erased.last_name),
        ("phone", &erased.phone),
        ("title", &erased.title),
    ] {
        assert!(value.is_empty(), "{field} kept: {value}");
    }
    assert!(erased.custom_attributes.is_empty());
    assert_eq!(
        erased.company.unwrap().web_domain,
        "kaisha.co.jp",
        "company data is not personal"
    );
    // Idempotent.
    let again = f
        .client
        .erase_lead(EraseLeadRequest {
            lead_id: lead.lead_id.clone(),
        })
        .await
        .unwrap()
        .into_inner();
    assert_eq!(again.erased_at, erased.erased_at);

    // No event in the log still carries the e-mail or the names.
    let mut events = capture_events(&f.service.endpoint).await;
    let mut types = Vec::new();
    while types.len() < 3 {
        let e = events.message().await.unwrap().unwrap();
        let payload = e.payload.unwrap();
        let text = String::from_utf8_lossy(&payload.value).to_string();
        assert!(
            !text.contains("aiko") && !text.contains("Tanaka") && !text.contains("1234-5678"),
            "{text}"
        );
        types.push(payload.type_url.rsplit('.').next().unwrap().to_owned());
    }
    assert_eq!(types, ["LeadCaptured", "LeadUpdated", "LeadErased"]);
    drop(events);

    // The erased lead takes no more activity; the same person captured again is a new lead.
    let status = f
        .client
        .record_activity(RecordActivityRequest {
            idempotency_key: "after-erasure".into(),
            lead_id: lead.lead_id.clone(),
            kind: ActivityKind::EmailOpened as i32,
            ..Default::default()
        })
        .await
        .unwrap_err();
    assert_eq!(status.code(), Code::FailedPrecondition);
    let back = f
        .client
        .capture_lead(full_request("r1", "aiko@kaisha.co.jp"))
        .await
        .unwrap()
        .into_inner();
    assert!(back.created);
    assert_ne!(back.lead.unwrap().lead_id, lead.lead_id);
    let missing = f
        .client
        .erase_lead(EraseLeadRequest {
            lead_id: "nope".into(),
        })
        .await
        .unwrap_err();
    assert_eq!(missing.code(), Code::NotFound);
    f.service.stop().await;
}

#[tokio::test]
async fn visits_are_counted_per_source_and_day_and_replaced_when_sent_again() {
    let mut f = start().await;
    let visits = |n| RecordVisitsRequest {
        channel: "ad_form".into(),
        day: "2026-11-20".into(),
        visitors: n,
        campaign: String::new(),
    };
    f.client.record_visits(visits(900)).await.unwrap();
    let answer = f
        .client
        .record_visits(visits(1200))
        .await
        .unwrap()
        .into_inner();
    assert_eq!(answer.visitors, 1200);
    let mut events = capture_events(&f.service.endpoint).await;
    let mut counts = Vec::new();
    for _ in 0..2 {
        let e = events.message().await.unwrap().unwrap();
        let v: VisitsRecorded = baton_proto::any::unpack(e.payload.as_ref().unwrap())
            .unwrap()
            .unwrap();
        counts.push(v.visitors);
    }
    assert_eq!(counts, [900, 1200]);
    drop(events);
    let bad = f
        .client
        .record_visits(RecordVisitsRequest {
            channel: String::new(),
            day: "yesterday".into(),
            visitors: -1,
            campaign: String::new(),
        })
        .await
        .unwrap_err();
    let fields: Vec<_> = bad
        .get_details_bad_request()
        .unwrap()
        .field_violations
        .into_iter()
        .map(|v| v.field)
        .collect();
    assert_eq!(fields, ["channel", "day", "visitors"]);
    f.service.stop().await;
}

#[tokio::test]
async fn a_merged_lead_resolves_to_its_survivor_forever() {
    let mut f = start().await;
    let survivor = f.captured(capture("r1", "aiko@kaisha.co.jp")).await;
    let mut dup = capture("r2", "a.tanaka@kaisha.co.jp");
    dup.phone = "03-1111-2222".into();
    let duplicate = f.captured(dup).await;
    f.client
        .record_activity(RecordActivityRequest {
            idempotency_key: "dup-open".into(),
            lead_id: duplicate.lead_id.clone(),
            kind: ActivityKind::EmailOpened as i32,
            ..Default::default()
        })
        .await
        .unwrap();
    let merge = MergeLeadsRequest {
        survivor_lead_id: survivor.lead_id.clone(),
        merged_lead_id: duplicate.lead_id.clone(),
    };
    let merged = f
        .client
        .merge_leads(merge.clone())
        .await
        .unwrap()
        .into_inner();
    assert_eq!(merged.lead_id, survivor.lead_id);
    assert_eq!(
        merged.phone, "03-1111-2222",
        "blank filled from the duplicate"
    );
    assert_eq!(merged.first_name, "Aiko");
    assert_eq!(
        merged.merged_lead_ids,
        std::slice::from_ref(&duplicate.lead_id)
    );
    assert_eq!(
        f.client
            .merge_leads(merge)
            .await
            .unwrap()
            .into_inner()
            .lead_id,
        survivor.lead_id,
        "idempotent"
    );

    // The duplicate's id, e-mail and activities now lead to the survivor.
    let by_old_id = f
        .client
        .get_lead(GetLeadRequest {
            lead_id: duplicate.lead_id.clone(),
        })
        .await
        .unwrap()
        .into_inner();
    assert_eq!(by_old_id.lead_id, survivor.lead_id);
    let recaptured = f
        .client
        .capture_lead(capture("r3", "A.Tanaka@kaisha.co.jp"))
        .await
        .unwrap()
        .into_inner();
    assert!(!recaptured.created);
    assert_eq!(recaptured.lead.unwrap().lead_id, survivor.lead_id);
    let later = f
        .client
        .record_activity(RecordActivityRequest {
            idempotency_key: "after-merge".into(),
            lead_id: duplicate.lead_id.clone(),
            kind: ActivityKind::EmailClicked as i32,
            ..Default::default()
        })
        .await
        .unwrap()
        .into_inner()
        .activity
        .unwrap();
    assert_eq!(later.lead_id, survivor.lead_id);
    let listed = f
        .client
        .list_leads(ListLeadsRequest::default())
        .await
        .unwrap()
        .into_inner();
    assert_eq!(listed.leads.len(), 1, "merged leads are not listed");

    let mut events = capture_events(&f.service.endpoint).await;
    let mut found = None;
    while found.is_none() {
        let e = events.message().await.unwrap().unwrap();
        found = baton_proto::any::unpack::<LeadsMerged>(e.payload.as_ref().unwrap())
            .map(|m| m.unwrap());
    }
    assert_eq!(found.unwrap().moved_activity_ids.len(), 1);
    drop(events);

    let itself = f
        .client
        .merge_leads(MergeLeadsRequest {
            survivor_lead_id: survivor.lead_id.clone(),
            merged_lead_id: survivor.lead_id.clone(),
        })
        .await
        .unwrap_err();
    assert_eq!(itself.code(), Code::InvalidArgument);
    let missing = f
        .client
        .merge_leads(MergeLeadsRequest {
            survivor_lead_id: survivor.lead_id.clone(),
            merged_lead_id: "nope".into(),
        })
        .await
        .unwrap_err();
    assert_eq!(missing.code(), Code::NotFound);
    f.service.stop().await;
}

/// A client-streaming import may take longer than the request timeout; other calls may not.
#[tokio::test]
async fn a_slow_import_outlasts_the_request_timeout() {
    let db = TestDatabase::new("capture").await;
    let mut settings = settings_with(&[(ServiceName::Capture, &db)]);
    settings.server.request_timeout_ms = 300;
    let listener = bind_ephemeral(&mut settings, ServiceName::Capture).await;
    let service = spawn(
        ServiceName::Capture,
        &Arc::new(settings),
        listener,
        baton_capture::run,
    );
    let mut client = CaptureServiceClient::new(channel(&service.endpoint).await);
    let slow_file = async_stream_of(vec![
        import_batch("slow.csv", vec![row("s1@example.com")]),
        import_batch("", vec![row("s2@example.com")]),
        import_batch("", vec![row("s3@example.com")]),
    ]);
    let answer = client
        .import_leads(slow_file)
        .await
        .expect("import outlives the 300 ms timeout")
        .into_inner();
    assert_eq!(answer.created, 3);
    service.stop().await;
}

/// Yields each batch 250 ms after the previous one (the whole stream takes longer than 300 ms).
fn async_stream_of(
    batches: Vec<ImportLeadsRequest>,
) -> impl tokio_stream::Stream<Item = ImportLeadsRequest> {
    use tokio_stream::StreamExt;
    tokio_stream::iter(batches).throttle(std::time::Duration::from_millis(250))
}

/// Two imports of the same people at once: every row is answered and each person is one lead
/// (a batch that collides with the other import falls back to row-by-row capture).
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn concurrent_imports_of_the_same_people_make_one_lead_each() {
    let f = start().await;
    let file = |import_id: &str| {
        (0..4)
            .map(|b| {
                let rows = (0..50)
                    .map(|n| row(&format!("p{}@example.com", b * 50 + n)))
                    .collect();
                import_batch(if b == 0 { import_id } else { "" }, rows)
            })
            .collect::<Vec<_>>()
    };
    let (mut a, mut b) = (f.client.clone(), f.client.clone());
    let (fa, fb) = (file("a.csv"), file("b.csv"));
    let (ra, rb) = tokio::join!(
        a.import_leads(tokio_stream::iter(fa)),
        b.import_leads(tokio_stream::iter(fb))
    );
    let (ra, rb) = (ra.unwrap().into_inner(), rb.unwrap().into_inner());
    assert_eq!((ra.rows, rb.rows), (200, 200));
    assert_eq!(ra.created + rb.created, 200, "each person created once");
    assert_eq!(ra.matched_existing + rb.matched_existing, 200);
    assert_eq!(ra.rejected + rb.rejected, 0);
    let mut all = Vec::new();
    let mut page_token = String::new();
    loop {
        let page = f
            .client
            .clone()
            .list_leads(ListLeadsRequest {
                page_size: 1000,
                page_token,
                ..Default::default()
            })
            .await
            .unwrap()
            .into_inner();
        all.extend(page.leads);
        if page.next_page_token.is_empty() {
            break;
        }
        page_token = page.next_page_token;
    }
    assert_eq!(all.len(), 200);
    f.service.stop().await;
}
