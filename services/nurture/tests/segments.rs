//! Segments through the public APIs: leads captured and active in capture, replicated into
//! nurture, counted and listed by PreviewSegment, enrolled when they enter a segment, and kept
//! out of a sequence that filters on one.

mod common;

use baton_proto::{
    capture::v1::{
        ActivityKind, CaptureLeadRequest, Company, Consent, LeadSource, PageKind,
        RecordActivityRequest,
    },
    nurture::v1::{self as pb, segment_condition::Kind},
};
use baton_shared::testing::eventually;
use common::{Floor, PATIENCE, Sink, email, wait};
use tonic::Code;
use tonic_types::StatusExt;

fn condition(kind: Kind) -> pb::SegmentCondition {
    pb::SegmentCondition { kind: Some(kind) }
}

/// Decision makers in Japan at companies of 1,000 people or more who viewed pricing twice in 30
/// days and may be mailed.
fn tokyo_pricing() -> pb::SegmentDefinition {
    pb::SegmentDefinition {
        conditions: vec![
            condition(Kind::Attribute(pb::AttributeCondition {
                field: "country".into(),
                any_of: vec!["jp".into()],
                contains: String::new(),
            })),
            condition(Kind::Number(pb::NumberCondition {
                field: "employees".into(),
                min: Some(1000),
                max: None,
                currency_code: String::new(),
            })),
            condition(Kind::Activity(pb::ActivityCondition {
                kind: ActivityKind::PageViewed as i32,
                page_kind: PageKind::Pricing as i32,
                min_count: 2,
                max_count: None,
                within_days: 30,
            })),
            condition(Kind::Consent(pb::ConsentCondition { mailable: true })),
        ],
    }
}

async fn capture(floor: &Floor, email: &str, country: &str, employees: i64) -> String {
    let mut c = floor.capture.clone();
    let lead = c
        .capture_lead(CaptureLeadRequest {
            request_id: format!("c-{email}"),
            email: email.into(),
            first_name: "Test".into(),
            source: Some(LeadSource {
                channel: "web_form".into(),
                ..Default::default()
            }),
            company: Some(Company {
                name: format!("{email} Inc"),
                web_domain: format!("{}.example", email.split('@').next().unwrap()),
                country: country.into(),
                employees: Some(employees),
                ..Default::default()
            }),
            consent: Some(Consent {
                email_opt_in: true,
                ..Default::default()
            }),
            ..Default::default()
        })
        .await
        .unwrap()
        .into_inner()
        .lead
        .unwrap();
    floor.known(&lead.lead_id).await;
    lead.lead_id
}

async fn pricing_view(floor: &Floor, lead: &str, n: u32) {
    let mut c = floor.capture.clone();
    c.record_activity(RecordActivityRequest {
        idempotency_key: format!("view-{lead}-{n}"),
        lead_id: lead.into(),
        kind: ActivityKind::PageViewed as i32,
        url: "https://example.com/pricing".into(),
        page_kind: PageKind::Pricing as i32,
        ..Default::default()
    })
    .await
    .unwrap();
}

async fn preview(floor: &Floor, key: &str) -> pb::PreviewSegmentResponse {
    let mut n = floor.nurture.clone();
    n.preview_segment(pb::PreviewSegmentRequest {
        key: key.into(),
        ..Default::default()
    })
    .await
    .unwrap()
    .into_inner()
}

async fn enrolled_keys(floor: &Floor, lead: &str) -> Vec<String> {
    let mut n = floor.nurture.clone();
    n.list_enrollments(pb::ListEnrollmentsRequest {
        lead_id: lead.into(),
        ..Default::default()
    })
    .await
    .unwrap()
    .into_inner()
    .enrollments
    .into_iter()
    .map(|e| e.sequence_key)
    .collect()
}

#[tokio::test]
async fn a_segment_counts_its_leads_and_enrols_those_who_enter_it() {
    let floor = Floor::start(Sink::File).await;
    floor.tune(|_| {}).await;
    let mut n = floor.nurture.clone();

    let bad = n
        .create_segment(pb::CreateSegmentRequest {
            key: "bad".into(),
            name: "Bad".into(),
            definition: Some(pb::SegmentDefinition {
                conditions: vec![
                    condition(Kind::Attribute(pb::AttributeCondition {
                        field: "shoe_size".into(),
                        any_of: vec!["42".into()],
                        contains: String::new(),
                    })),
                    condition(Kind::Activity(pb::ActivityCondition {
                        kind: ActivityKind::PageViewed as i32,
                        within_days: 0,
                        ..Default::default()
                    })),
                ],
            }),
        })
        .await
        .unwrap_err();
    let fields: Vec<String> = bad
        .get_details_bad_request()
        .unwrap()
        .field_violations
        .iter()
        .map(|f| f.field.clone())
        .collect();
    assert_eq!(
        fields,
        vec![
            "definition.conditions[0].attribute.field",
            "definition.conditions[1].activity.within_days"
        ]
    );
    let segment = n
        .create_segment(pb::CreateSegmentRequest {
            key: "tokyo_pricing".into(),
            name: "Tokyo pricing".into(),
            definition: Some(tokyo_pricing()),
        })
        .await
        .unwrap()
        .into_inner();
    assert_eq!(segment.version, 1);

    // A sequence that names a segment that does not exist is refused.
    let missing = n
        .create_sequence(pb::CreateSequenceRequest {
            key: "ghost".into(),
            name: "Ghost".into(),
            definition: Some(pb::SequenceDefinition {
                steps: vec![email("a", "A", "<p>a</p>")],
                enrollment: Some(pb::EnrollmentRules {
                    trigger: pb::Trigger::SegmentEntered as i32,
                    segment_key: "nope".into(),
                    ..Default::default()
                }),
            }),
        })
        .await
        .unwrap_err();
    assert_eq!(missing.code(), Code::InvalidArgument);
    // One sequence enrols whoever enters the segment; another is manual but only for its members.
    for (key, trigger) in [
        ("pricing_followup", pb::Trigger::SegmentEntered),
        ("members_only", pb::Trigger::Manual),
    ] {
        n.create_sequence(pb::CreateSequenceRequest {
            key: key.into(),
            name: key.into(),
            definition: Some(pb::SequenceDefinition {
                steps: vec![email("a", "A", "<p>a</p>"), wait("w", 86_400)],
                enrollment: Some(pb::EnrollmentRules {
                    trigger: trigger as i32,
                    segment_key: "tokyo_pricing".into(),
                    ..Default::default()
                }),
            }),
        })
        .await
        .unwrap();
        n.activate_sequence(pb::ActivateSequenceRequest { key: key.into() })
            .await
            .unwrap();
    }

    let big = capture(&floor, "aoi@big.example", "JP", 1200).await;
    let small = capture(&floor, "sho@small.example", "JP", 50).await;
    let abroad = capture(&floor, "amy@abroad.example", "US", 5000).await;
    for lead in [&big, &small, &abroad] {
        pricing_view(&floor, lead, 1).await;
        pricing_view(&floor, lead, 2).await;
    }
    // Only the big Japanese company's lead meets every condition; it entered, so it is enrolled.
    let p = eventually("one lead in the segment", PATIENCE, || async {
        let p = preview(&floor, "tokyo_pricing").await;
        (p.count == 1).then_some(p)
    })
    .await;
    assert_eq!(p.lead_ids, vec![big.clone()]);
    eventually("the entering lead enrolled", PATIENCE, || async {
        (enrolled_keys(&floor, &big).await == vec!["pricing_followup".to_owned()]).then_some(())
    })
    .await;
    assert!(enrolled_keys(&floor, &small).await.is_empty());
    assert!(enrolled_keys(&floor, &abroad).await.is_empty());

    // A second big Japanese lead enters with its second pricing view, not its first.
    let second = capture(&floor, "ren@other.example", "JP", 3000).await;
    pricing_view(&floor, &second, 1).await;
    tokio::time::sleep(std::time::Duration::from_millis(600)).await;
    assert!(enrolled_keys(&floor, &second).await.is_empty());
    pricing_view(&floor, &second, 2).await;
    eventually("the second lead enrolled", PATIENCE, || async {
        (enrolled_keys(&floor, &second).await == vec!["pricing_followup".to_owned()]).then_some(())
    })
    .await;

    // The filter: a member may be enrolled by hand, others may not.
    n.enroll(pb::EnrollRequest {
        request_id: "m1".into(),
        lead_id: big.clone(),
        sequence_key: "members_only".into(),
    })
    .await
    .unwrap();
    let outsider = n
        .enroll(pb::EnrollRequest {
            request_id: "m2".into(),
            lead_id: small.clone(),
            sequence_key: "members_only".into(),
        })
        .await
        .unwrap_err();
    assert_eq!(outsider.code(), Code::FailedPrecondition);
    assert!(
        outsider.message().contains("not_in_segment"),
        "{}",
        outsider.message()
    );

    // A definition can be tried before it is stored; pages follow the token.
    let mut any_size = tokyo_pricing();
    any_size.conditions.remove(1);
    let tried = n
        .preview_segment(pb::PreviewSegmentRequest {
            definition: Some(any_size.clone()),
            page_size: 1,
            ..Default::default()
        })
        .await
        .unwrap()
        .into_inner();
    assert_eq!((tried.count, tried.lead_ids.len()), (3, 1));
    let rest = n
        .preview_segment(pb::PreviewSegmentRequest {
            definition: Some(any_size.clone()),
            page_size: 10,
            page_token: tried.next_page_token.clone(),
            ..Default::default()
        })
        .await
        .unwrap()
        .into_inner();
    let mut all: Vec<String> = tried.lead_ids.into_iter().chain(rest.lead_ids).collect();
    all.sort();
    let mut expected = vec![big.clone(), small.clone(), second.clone()];
    expected.sort();
    assert_eq!(all, expected);

    // Versions.
    let v2 = n
        .update_segment(pb::UpdateSegmentRequest {
            key: "tokyo_pricing".into(),
            name: "Tokyo pricing, any size".into(),
            definition: Some(any_size),
            expected_version: 1,
        })
        .await
        .unwrap()
        .into_inner();
    assert_eq!(v2.version, 2);
    let v1 = n
        .get_segment(pb::GetSegmentRequest {
            key: "tokyo_pricing".into(),
            version: 1,
        })
        .await
        .unwrap()
        .into_inner();
    assert_eq!(v1.definition.unwrap().conditions.len(), 4);
    let listed = n
        .list_segments(pb::ListSegmentsRequest::default())
        .await
        .unwrap()
        .into_inner()
        .segments;
    assert_eq!(
        listed
            .iter()
            .map(|s| (s.key.as_str(), s.version))
            .collect::<Vec<_>>(),
        vec![("tokyo_pricing", 2)]
    );
    assert_eq!(preview(&floor, "tokyo_pricing").await.count, 3);
    floor.stop().await;
}
