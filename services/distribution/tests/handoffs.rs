//! IS → FS handoffs judged by a shared-KPI contract that both owners approved in reporting, over
//! real sockets: reporting and distribution as separate services, distribution following
//! reporting's event log.

mod common;

use baton_shared::testing::as_user;
use common::{FS_OWNER, Floor, IS_OWNER, LeadSetup, activate};
use std::time::Duration;

use baton_proto::{
    capture::v1::Money,
    distribution::v1::{
        AcceptHandoffRequest, CreateHandoffRequest, DisputeRejectionRequest, GetHandoffRequest,
        GetHandoffSettingsRequest, HandoffSettings, HandoffState, RecordOutcomeRequest,
        RejectHandoffRequest, RuleDisputeRequest, SetHandoffSettingsRequest, SlaKind,
    },
    reporting::v1::{
        ApproveContractRequest, ContractStatus, ContractTerms, CreateContractRequest,
        ListContractsRequest, UpdateContractRequest, ValidateContractRequest,
        contract_service_client::ContractServiceClient,
    },
};
use baton_shared::{
    ServiceName,
    testing::{channel, count, eventually, spawn},
    time,
};
use tonic::Code;
use tonic_types::StatusExt;

fn terms() -> ContractTerms {
    baton_shared::contract::example_terms("is-tokyo", "fs-tokyo", IS_OWNER, FS_OWNER)
}

fn handoff(request_id: &str, lead_id: &str) -> CreateHandoffRequest {
    CreateHandoffRequest {
        request_id: request_id.into(),
        lead_id: lead_id.into(),
        is_team: "is-tokyo".into(),
        fs_team: "fs-tokyo".into(),
        meeting_at: Some(time::to_proto(
            chrono::Utc::now() + chrono::Duration::days(3),
        )),
        notes: "Wants a demo for 40 seats".into(),
        handed_off_by: "is-rep@example.com".into(),
        ..Default::default()
    }
}

/// `request` made by the IS rep as soon as distribution has the contract it needs.
async fn first_handoff(
    d: &baton_proto::distribution::v1::distribution_service_client::DistributionServiceClient<
        baton_shared::peer::AuthChannel,
    >,
    request: CreateHandoffRequest,
) -> baton_proto::distribution::v1::Handoff {
    eventually("contract replicated", Duration::from_secs(20), || {
        let mut d = d.clone();
        let request = request.clone();
        async move {
            d.create_handoff(as_user("is-rep@example.com", request))
                .await
                .ok()
        }
    })
    .await
    .into_inner()
}

#[tokio::test]
async fn a_contract_both_owners_approved_gates_every_handoff_even_while_reporting_is_down() {
    let floor = Floor::start(|_| {}).await;
    let mut contracts = ContractServiceClient::new(channel(&floor.reporting.endpoint).await);
    let mut d = floor.d.clone();
    let ready = LeadSetup {
        budget: true,
        need: true,
    };
    floor
        .leads(&["lead-0", "lead-probe", "lead-2"], ready)
        .await;
    floor
        .lead(
            "lead-1",
            LeadSetup {
                need: true,
                ..LeadSetup::default()
            },
        )
        .await;

    // No contract yet: no handoff.
    let none = d
        .create_handoff(as_user("is-rep@example.com", handoff("h0", "lead-0")))
        .await
        .unwrap_err();
    assert_eq!(none.code(), Code::FailedPrecondition);
    assert!(none.message().contains("no_active_contract"), "{none:?}");

    // A draft with problems cannot be approved; every problem is listed.
    let mut broken = terms();
    broken.fs_owner = IS_OWNER.into();
    broken.rejection_reasons.clear();
    let draft = contracts
        .create_contract(as_user(
            "sales-ops@example.com",
            CreateContractRequest {
                request_id: "c1".into(),
                terms: Some(broken),
                created_by: "sales-ops@example.com".into(),
            },
        ))
        .await
        .unwrap()
        .into_inner();
    assert_eq!(
        (draft.version, draft.status),
        (1, ContractStatus::Draft as i32)
    );
    let check = contracts
        .validate_contract(ValidateContractRequest {
            contract_id: draft.contract_id.clone(),
        })
        .await
        .unwrap()
        .into_inner();
    assert!(!check.valid);
    let refused = contracts
        .approve_contract(as_user(
            IS_OWNER,
            ApproveContractRequest {
                contract_id: draft.contract_id.clone(),
                approver: IS_OWNER.into(),
            },
        ))
        .await
        .unwrap_err();
    assert_eq!(refused.code(), Code::FailedPrecondition);
    let problems = refused
        .get_details_precondition_failure()
        .unwrap()
        .violations;
    assert_eq!(problems.len(), check.problems.len());
    assert_eq!(problems.len(), 2, "{problems:?}");

    // Fixed, then approved by both sides: only the second approval activates it.
    contracts
        .update_contract(UpdateContractRequest {
            contract_id: draft.contract_id.clone(),
            terms: Some(terms()),
        })
        .await
        .unwrap();
    let stranger = contracts
        .approve_contract(as_user(
            "someone@example.com",
            ApproveContractRequest {
                contract_id: draft.contract_id.clone(),
                approver: "someone@example.com".into(),
            },
        ))
        .await
        .unwrap_err();
    assert_eq!(stranger.code(), Code::PermissionDenied);
    let half = contracts
        .approve_contract(as_user(
            IS_OWNER,
            ApproveContractRequest {
                contract_id: draft.contract_id.clone(),
                approver: IS_OWNER.into(),
            },
        ))
        .await
        .unwrap()
        .into_inner();
    assert_eq!(half.status, ContractStatus::Draft as i32);
    assert!(half.is_approval.is_some() && half.fs_approval.is_none());
    let active = contracts
        .approve_contract(as_user(
            FS_OWNER,
            ApproveContractRequest {
                contract_id: draft.contract_id.clone(),
                approver: FS_OWNER.into(),
            },
        ))
        .await
        .unwrap()
        .into_inner();
    assert_eq!(active.status, ContractStatus::Active as i32);
    let history = contracts
        .list_contracts(ListContractsRequest {
            is_team: "is-tokyo".into(),
            fs_team: "fs-tokyo".into(),
        })
        .await
        .unwrap()
        .into_inner()
        .contracts;
    assert_eq!(history.len(), 1);

    // Distribution learns of it from reporting's events.
    eventually("contract replicated", Duration::from_secs(20), || {
        let mut d = d.clone();
        async move {
            // Probe with a handoff that fails the gate, so nothing is stored once it is judged.
            let mut bad = handoff("probe", "lead-probe");
            bad.meeting_at = None;
            let status = d
                .create_handoff(as_user("is-rep@example.com", bad))
                .await
                .unwrap_err();
            (!status.message().contains("active_contract")).then_some(())
        }
    })
    .await;

    // Reporting goes away; distribution still judges handoffs by its replica.
    let Floor {
        reporting,
        distribution,
        distribution_db,
        ..
    } = floor;
    reporting.stop().await;

    // The gate reads qualification's BANT record (need only), not what the request claims.
    let mut failing = handoff("h1", "lead-1");
    failing.meeting_at = None;
    let gate = d
        .create_handoff(as_user("is-rep@example.com", failing))
        .await
        .unwrap_err();
    assert_eq!(gate.code(), Code::FailedPrecondition);
    let items: Vec<(String, String)> = gate
        .get_details_precondition_failure()
        .unwrap()
        .violations
        .into_iter()
        .map(|v| (v.r#type, v.subject))
        .collect();
    assert_eq!(
        items,
        vec![
            ("handoff_gate".to_owned(), "meeting_at".to_owned()),
            ("handoff_gate".to_owned(), "bant.budget".to_owned())
        ]
    );
    assert_eq!(
        count(&distribution_db.url, "SELECT COUNT(*) AS n FROM handoff").await,
        0,
        "a refused handoff stores nothing"
    );
    assert_eq!(
        count(
            &distribution_db.url,
            "SELECT refusals AS n FROM handoff_refusal WHERE contract_version = 1"
        )
        .await,
        2,
        "the probe's refusal and this one are counted"
    );

    let created = d
        .create_handoff(as_user("is-rep@example.com", handoff("h2", "lead-2")))
        .await
        .unwrap()
        .into_inner();
    assert_eq!(created.state, HandoffState::Pending as i32);
    assert_eq!(
        (created.contract_id.as_str(), created.contract_version),
        (active.contract_id.as_str(), 1)
    );
    let due = time::from_proto(created.decision_due_at.as_ref().unwrap()).unwrap();
    let at = time::from_proto(created.created_at.as_ref().unwrap()).unwrap();
    assert_eq!(due - at, chrono::Duration::hours(48));
    let again = d
        .create_handoff(as_user("is-rep@example.com", handoff("h2", "lead-2")))
        .await
        .unwrap()
        .into_inner();
    assert_eq!(
        again.handoff_id, created.handoff_id,
        "idempotent on request_id"
    );
    let second = d
        .create_handoff(as_user("is-rep@example.com", handoff("h3", "lead-2")))
        .await
        .unwrap_err();
    assert!(second.message().contains("one_open_handoff"), "{second:?}");

    // FS rejects with a reason from the contract; IS disputes; an owner overturns.
    let unknown = d
        .reject_handoff(as_user(
            "fs-rep@example.com",
            RejectHandoffRequest {
                handoff_id: created.handoff_id.clone(),
                reason_code: "too_small".into(),
                decided_by: "fs-rep@example.com".into(),
                ..Default::default()
            },
        ))
        .await
        .unwrap_err();
    assert_eq!(unknown.code(), Code::InvalidArgument);
    assert!(unknown.message().contains("no_budget"), "{unknown:?}");
    let rejected = d
        .reject_handoff(as_user(
            "fs-rep@example.com",
            RejectHandoffRequest {
                handoff_id: created.handoff_id.clone(),
                reason_code: "no_budget".into(),
                note: "Budget frozen until April".into(),
                decided_by: "fs-rep@example.com".into(),
            },
        ))
        .await
        .unwrap()
        .into_inner();
    assert_eq!(
        (rejected.state, rejected.rejected_lead_route.as_str()),
        (HandoffState::Rejected as i32, "nurture")
    );
    let late_accept = d
        .accept_handoff(as_user(
            "fs-rep@example.com",
            AcceptHandoffRequest {
                handoff_id: created.handoff_id.clone(),
                decided_by: "fs-rep@example.com".into(),
            },
        ))
        .await
        .unwrap_err();
    assert!(late_accept.message().contains("pending_only"));
    d.dispute_rejection(as_user(
        "is-rep@example.com",
        DisputeRejectionRequest {
            handoff_id: created.handoff_id.clone(),
            disputed_by: "is-rep@example.com".into(),
            argument: "The CFO confirmed budget on the call".into(),
        },
    ))
    .await
    .unwrap();
    let not_owner = d
        .rule_dispute(as_user(
            "fs-rep@example.com",
            RuleDisputeRequest {
                handoff_id: created.handoff_id.clone(),
                ruled_by: "fs-rep@example.com".into(),
                uphold_rejection: true,
                note: String::new(),
            },
        ))
        .await
        .unwrap_err();
    assert_eq!(not_owner.code(), Code::PermissionDenied);
    let overturned = d
        .rule_dispute(as_user(
            FS_OWNER,
            RuleDisputeRequest {
                handoff_id: created.handoff_id.clone(),
                ruled_by: FS_OWNER.into(),
                uphold_rejection: false,
                note: "Budget is real".into(),
            },
        ))
        .await
        .unwrap()
        .into_inner();
    // Overturned: the handoff re-opens for FS with the decision time it had left when it
    // rejected (the dispute paused the clock), and FS decides again.
    assert_eq!(overturned.state, HandoffState::Pending as i32);
    let resumed_due = time::from_proto(overturned.decision_due_at.as_ref().unwrap()).unwrap();
    let left = due - time::from_proto(rejected.steps[1].at.as_ref().unwrap()).unwrap();
    let resumed_at =
        time::from_proto(overturned.steps.last().unwrap().at.as_ref().unwrap()).unwrap();
    assert!(
        (resumed_due - resumed_at - left).num_seconds().abs() <= 1,
        "resumed with the time left: {left} from {resumed_at}, due {resumed_due}"
    );
    d.accept_handoff(as_user(
        "fs-rep@example.com",
        AcceptHandoffRequest {
            handoff_id: created.handoff_id.clone(),
            decided_by: "fs-rep@example.com".into(),
        },
    ))
    .await
    .unwrap();
    // A close date left unset but sent as 0 (1970-01-01) is refused, naming it; nothing changes.
    let epoch = d
        .record_outcome(as_user(
            "fs-rep@example.com",
            RecordOutcomeRequest {
                handoff_id: created.handoff_id.clone(),
                won: true,
                closed_at: Some(baton_shared::time::to_proto(chrono::DateTime::UNIX_EPOCH)),
                ..Default::default()
            },
        ))
        .await
        .unwrap_err();
    assert_eq!(epoch.code(), Code::InvalidArgument);
    assert_eq!(
        epoch
            .get_details_bad_request()
            .map(|b| b.field_violations[0].field.clone()),
        Some("closed_at".to_owned()),
        "{epoch:?}"
    );
    let won = d
        .record_outcome(as_user(
            "fs-rep@example.com",
            RecordOutcomeRequest {
                handoff_id: created.handoff_id.clone(),
                won: true,
                amount: Some(Money {
                    currency_code: "JPY".into(),
                    amount_minor: 12_000_000,
                }),
                recorded_by: "fs-rep@example.com".into(),
                ..Default::default()
            },
        ))
        .await
        .unwrap()
        .into_inner();
    assert_eq!(won.state, HandoffState::Won as i32);
    let full = d
        .get_handoff(GetHandoffRequest {
            handoff_id: created.handoff_id.clone(),
        })
        .await
        .unwrap()
        .into_inner();
    let steps: Vec<(String, String)> = full
        .steps
        .iter()
        .map(|s| (s.action.clone(), s.actor.clone()))
        .collect();
    assert_eq!(
        steps,
        vec![
            ("created".into(), "is-rep@example.com".into()),
            ("rejected".into(), "fs-rep@example.com".into()),
            ("disputed".into(), "is-rep@example.com".into()),
            ("decision_clock_paused".into(), "system".into()),
            ("dispute_overturned".into(), FS_OWNER.into()),
            ("decision_clock_resumed".into(), "system".into()),
            ("accepted".into(), "fs-rep@example.com".into()),
            ("won".into(), "fs-rep@example.com".into()),
        ]
    );
    assert_eq!(full.amount.unwrap().amount_minor, 12_000_000);
    distribution.stop().await;
}

/// Two distribution replicas (on PostgreSQL; one on SQLite, whose embedded mode runs one) share a
/// database; the decision SLAs of 20 handoffs run out; each fires exactly once, and a handoff FS
/// decided in time fires none.
#[tokio::test]
async fn each_sla_timer_fires_once_across_replicas_and_a_met_sla_never_fires() {
    use baton_distribution::store::entities::sla_timer;
    use sea_orm::{ColumnTrait, EntityTrait, PaginatorTrait, QueryFilter, sea_query::Expr};

    let floor = Floor::start(|s| s.sla.interval_ms = 50).await;
    let leads: Vec<String> = (0..20).map(|n| format!("lead-{n}")).collect();
    let ids: Vec<&str> = leads.iter().map(String::as_str).collect();
    floor
        .leads(
            &ids,
            LeadSetup {
                budget: true,
                need: true,
            },
        )
        .await;
    let Floor {
        settings,
        reporting,
        distribution,
        distribution_db,
        d,
        ..
    } = floor;
    let mut replicas = vec![distribution];
    if distribution_db.is_postgres() {
        let listener = baton_shared::server::bind("127.0.0.1:0").await.unwrap();
        replicas.push(spawn(
            ServiceName::Distribution,
            &settings,
            listener,
            baton_distribution::run,
        ));
    }
    let mut contracts = ContractServiceClient::new(channel(&reporting.endpoint).await);
    let mut d = d.clone();
    let draft = contracts
        .create_contract(as_user(
            "sales-ops@example.com",
            CreateContractRequest {
                request_id: "c1".into(),
                terms: Some(terms()),
                created_by: "sales-ops@example.com".into(),
            },
        ))
        .await
        .unwrap()
        .into_inner();
    for approver in [IS_OWNER, FS_OWNER] {
        contracts
            .approve_contract(as_user(
                approver,
                ApproveContractRequest {
                    contract_id: draft.contract_id.clone(),
                    approver: approver.into(),
                },
            ))
            .await
            .unwrap();
    }
    let first = first_handoff(&d, handoff("h0", "lead-0")).await;
    for n in 1..20 {
        d.create_handoff(as_user(
            "is-rep@example.com",
            handoff(&format!("h{n}"), &format!("lead-{n}")),
        ))
        .await
        .unwrap();
    }
    // FS decides the first one in time.
    d.accept_handoff(as_user(
        "fs-rep@example.com",
        AcceptHandoffRequest {
            handoff_id: first.handoff_id.clone(),
            decided_by: "fs-rep@example.com".into(),
        },
    ))
    .await
    .unwrap();

    // Time passes: every decision SLA is now due (the response SLAs of the assignments are not).
    let db = baton_shared::db::connect(
        &distribution_db.url,
        &baton_shared::Settings::defaults().unwrap().database,
    )
    .await
    .unwrap();
    sla_timer::Entity::update_many()
        .col_expr(
            sla_timer::Column::DueAt,
            Expr::value(chrono::Utc::now() - chrono::Duration::minutes(1)),
        )
        .filter(sla_timer::Column::Kind.eq(SlaKind::Decision as i32))
        .exec(&db)
        .await
        .unwrap();
    eventually("19 breaches", Duration::from_secs(20), || {
        let db = db.clone();
        async move {
            let fired = sla_timer::Entity::find()
                .filter(sla_timer::Column::FiredAt.is_not_null())
                .count(&db)
                .await
                .ok()?;
            (fired == 19).then_some(())
        }
    })
    .await;
    // Give a second firing every chance to happen before counting the events.
    tokio::time::sleep(Duration::from_millis(500)).await;
    let breaches = count(
        &distribution_db.url,
        "SELECT (SELECT COUNT(*) FROM event_log WHERE type_url LIKE '%SlaBreached') \
         + (SELECT COUNT(*) FROM event_outbox WHERE type_url LIKE '%SlaBreached') AS n",
    )
    .await;
    assert_eq!(
        breaches, 19,
        "one SlaBreached per due timer, none for the met SLA"
    );
    let met = sla_timer::Entity::find()
        .filter(sla_timer::Column::SubjectId.eq(first.handoff_id.as_str()))
        .one(&db)
        .await
        .unwrap()
        .unwrap();
    assert!(met.fired_at.is_none() && met.resolved_at.is_some());
    for r in replicas {
        r.stop().await;
    }
    reporting.stop().await;
}

/// A handoff names a live lead its IS team holds, under a contract in force: an unknown lead is
/// NOT_FOUND; a lead of another team, an erased one and a merged one are refused with their rule;
/// a contract whose period has not begun is no contract (unless the tenant's settings take
/// uncontracted handoffs, which then carry no gate and no decision SLA).
#[tokio::test]
async fn a_handoff_needs_a_live_lead_of_the_team_and_a_contract_in_force() {
    let floor = Floor::start(|_| {}).await;
    let mut contracts = ContractServiceClient::new(channel(&floor.reporting.endpoint).await);
    let mut d = floor.d.clone();
    let ready = LeadSetup {
        budget: true,
        need: true,
    };
    floor
        .leads(&["lead-a", "lead-b", "lead-c", "lead-d"], ready)
        .await;
    // A contract approved now for next month: not in force.
    let mut later = terms();
    let start = chrono::Utc::now() + chrono::Duration::days(30);
    later.period_start = Some(time::to_proto(start));
    later.period_end = Some(time::to_proto(start + chrono::Duration::days(30)));
    let future = activate(&mut contracts, "c-later", later).await;
    assert_eq!(future.status, ContractStatus::Active as i32);
    let refused = eventually("contract replicated", Duration::from_secs(20), || {
        let mut d = d.clone();
        async move {
            let status = d
                .create_handoff(as_user("is-rep@example.com", handoff("h-a", "lead-a")))
                .await
                .unwrap_err();
            status.message().contains("not in force").then_some(status)
        }
    })
    .await;
    assert_eq!(refused.code(), Code::FailedPrecondition);
    assert!(
        refused.message().contains("no_active_contract"),
        "{refused:?}"
    );

    // The tenant takes uncontracted handoffs: no gate, no contract, nothing due.
    let defaults = d
        .get_handoff_settings(GetHandoffSettingsRequest {})
        .await
        .unwrap()
        .into_inner();
    assert_eq!(
        (defaults.version, defaults.allow_uncontracted_handoffs),
        (1, false)
    );
    let set = |allow: bool, expected_version: i32| SetHandoffSettingsRequest {
        settings: Some(HandoffSettings {
            allow_uncontracted_handoffs: allow,
            ..Default::default()
        }),
        expected_version,
    };
    let conflict = d.set_handoff_settings(set(true, 7)).await.unwrap_err();
    assert!(
        conflict.message().contains("version_conflict"),
        "{conflict:?}"
    );
    let allowed = d
        .set_handoff_settings(set(true, 1))
        .await
        .unwrap()
        .into_inner();
    assert_eq!(allowed.version, 2);
    let mut no_meeting = handoff("h-a", "lead-a");
    no_meeting.meeting_at = None;
    let uncontracted = d
        .create_handoff(as_user("is-rep@example.com", no_meeting))
        .await
        .unwrap()
        .into_inner();
    assert_eq!(uncontracted.contract_id, "");
    assert!(uncontracted.decision_due_at.is_none());
    d.set_handoff_settings(set(false, 2)).await.unwrap();

    // A contract in force from now on.
    activate(&mut contracts, "c-now", terms()).await;
    first_handoff(&d, handoff("h-b", "lead-b")).await;

    // The lead must be known, live and held by the IS team.
    let unknown = d
        .create_handoff(as_user("is-rep@example.com", handoff("h-x", "lead-x")))
        .await
        .unwrap_err();
    assert_eq!(unknown.code(), Code::NotFound, "{unknown:?}");
    let mut other_team = handoff("h-c", "lead-c");
    other_team.is_team = "is-osaka".into();
    let not_theirs = d
        .create_handoff(as_user("is-rep@example.com", other_team))
        .await
        .unwrap_err();
    assert_eq!(not_theirs.code(), Code::FailedPrecondition);
    assert!(
        not_theirs.message().contains("lead_not_assigned_to_team"),
        "{not_theirs:?}"
    );
    // Capture's events arrive in order: once the erasure is in, so is the merge before it.
    floor.merge("lead-d", "lead-b").await;
    floor.erase("lead-c").await;
    let erased = eventually("erasure replicated", Duration::from_secs(20), || {
        let mut d = d.clone();
        async move {
            // Fails the gate until the erasure arrives, so nothing is stored meanwhile.
            let mut probe = handoff("h-c", "lead-c");
            probe.meeting_at = None;
            let status = d
                .create_handoff(as_user("is-rep@example.com", probe))
                .await
                .unwrap_err();
            status.message().contains("lead_erased").then_some(status)
        }
    })
    .await;
    assert_eq!(erased.code(), Code::FailedPrecondition);
    let merged = d
        .create_handoff(as_user("is-rep@example.com", handoff("h-d", "lead-d")))
        .await
        .unwrap_err();
    assert_eq!(merged.code(), Code::FailedPrecondition);
    assert!(
        merged.message().contains("lead_merged") && merged.message().contains("lead-b"),
        "{merged:?}"
    );
    assert_eq!(
        count(
            &floor.distribution_db.url,
            "SELECT COUNT(*) AS n FROM handoff"
        )
        .await,
        2,
        "only the uncontracted handoff and the one under the contract in force were stored"
    );
    floor.stop().await;
}

/// Makes the open timers of `kind` on `subject_id` due now.
async fn make_due(url: &str, kind: SlaKind, subject_id: &str) {
    use baton_distribution::store::entities::sla_timer;
    use sea_orm::{ColumnTrait, EntityTrait, QueryFilter, sea_query::Expr};
    let db = baton_shared::db::connect(url, &baton_shared::Settings::defaults().unwrap().database)
        .await
        .unwrap();
    sla_timer::Entity::update_many()
        .col_expr(
            sla_timer::Column::DueAt,
            Expr::value(chrono::Utc::now() - chrono::Duration::minutes(1)),
        )
        .filter(sla_timer::Column::Kind.eq(kind as i32))
        .filter(sla_timer::Column::SubjectId.eq(subject_id))
        .exec(&db)
        .await
        .unwrap();
    db.close().await.unwrap();
}

/// A dispute nobody rules by the contract's deadline goes to the escalation owner, who may then
/// rule (nobody else new may); a decision SLA that runs out while the FS rep named on the
/// handoff is unavailable is the system's breach, and one a person held is the person's, in the
/// breach event and in reporting's attainment.
#[tokio::test]
async fn a_dispute_times_out_to_its_escalation_owner_and_a_breach_is_split_by_cause() {
    use baton_proto::distribution::v1::{CreateRepRequest, RepRouting, UpdateRepRequest};
    use baton_proto::reporting::v1::{DisputeDeadlineAction, GetAttainmentRequest};
    let floor = Floor::start(|s| s.sla.interval_ms = 50).await;
    let mut contracts = ContractServiceClient::new(channel(&floor.reporting.endpoint).await);
    let mut d = floor.d.clone();
    let ready = LeadSetup {
        budget: true,
        need: true,
    };
    floor
        .leads(&["lead-e", "lead-s", "lead-h", "lead-w"], ready)
        .await;
    let mut fs_reps = Vec::new();
    for name in ["fs-a", "fs-b"] {
        fs_reps.push(
            d.create_rep(CreateRepRequest {
                request_id: name.into(),
                name: name.into(),
                email: format!("{name}@example.com"),
                active: true,
                routing: Some(RepRouting {
                    team_id: common::FS_TEAM.into(),
                    ..Default::default()
                }),
            })
            .await
            .unwrap()
            .into_inner()
            .rep_id,
        );
    }
    let mut t = terms();
    t.dispute_ruling_hours = 24;
    t.dispute_deadline_action = DisputeDeadlineAction::Escalate as i32;
    t.escalation_owner = "vp-sales@example.com".into();
    let contract = activate(&mut contracts, "c-disputes", t).await;
    let first = first_handoff(&d, handoff("h-e", "lead-e")).await;

    // FS rejects, IS disputes, nobody rules: at the deadline the dispute is escalated.
    d.reject_handoff(as_user(
        "fs-rep@example.com",
        RejectHandoffRequest {
            handoff_id: first.handoff_id.clone(),
            reason_code: "no_budget".into(),
            decided_by: "fs-rep@example.com".into(),
            ..Default::default()
        },
    ))
    .await
    .unwrap();
    let disputed = d
        .dispute_rejection(as_user(
            "is-rep@example.com",
            DisputeRejectionRequest {
                handoff_id: first.handoff_id.clone(),
                disputed_by: "is-rep@example.com".into(),
                argument: "Budget confirmed by the CFO".into(),
            },
        ))
        .await
        .unwrap()
        .into_inner();
    assert_eq!(disputed.state, HandoffState::Disputed as i32);
    let early = d
        .rule_dispute(as_user(
            "vp-sales@example.com",
            RuleDisputeRequest {
                handoff_id: first.handoff_id.clone(),
                ruled_by: "vp-sales@example.com".into(),
                uphold_rejection: true,
                note: String::new(),
            },
        ))
        .await
        .unwrap_err();
    assert_eq!(
        early.code(),
        Code::PermissionDenied,
        "not escalated yet: {early:?}"
    );
    make_due(
        &floor.distribution_db.url,
        SlaKind::DisputeRuling,
        &first.handoff_id,
    )
    .await;
    eventually("dispute escalated", Duration::from_secs(20), || {
        let mut d = d.clone();
        let handoff_id = first.handoff_id.clone();
        async move {
            let h = d
                .get_handoff(GetHandoffRequest { handoff_id })
                .await
                .ok()?
                .into_inner();
            h.steps
                .iter()
                .any(|s| s.action == "dispute_escalated" && s.actor == "system")
                .then_some(())
        }
    })
    .await;
    let stranger = d
        .rule_dispute(as_user(
            "fs-rep@example.com",
            RuleDisputeRequest {
                handoff_id: first.handoff_id.clone(),
                ruled_by: "fs-rep@example.com".into(),
                uphold_rejection: false,
                note: String::new(),
            },
        ))
        .await
        .unwrap_err();
    assert_eq!(stranger.code(), Code::PermissionDenied);
    let ruled = d
        .rule_dispute(as_user(
            "vp-sales@example.com",
            RuleDisputeRequest {
                handoff_id: first.handoff_id.clone(),
                ruled_by: "vp-sales@example.com".into(),
                uphold_rejection: true,
                note: "Budget is next year's".into(),
            },
        ))
        .await
        .unwrap()
        .into_inner();
    assert_eq!(ruled.state, HandoffState::Rejected as i32);
    let actions: Vec<&str> = ruled.steps.iter().map(|s| s.action.as_str()).collect();
    assert_eq!(
        actions,
        vec![
            "created",
            "rejected",
            "disputed",
            "decision_clock_paused",
            "dispute_escalated",
            "dispute_upheld"
        ]
    );

    // fs-b is named on lead-s's handoff and made unavailable; lead-h's handoff names nobody while
    // fs-a is there to decide.
    let mut named = handoff("h-s", "lead-s");
    named.fs_rep_id = fs_reps[1].clone();
    let system_held = d
        .create_handoff(as_user("is-rep@example.com", named))
        .await
        .unwrap()
        .into_inner();
    let person_held = d
        .create_handoff(as_user("is-rep@example.com", handoff("h-h", "lead-h")))
        .await
        .unwrap()
        .into_inner();
    d.update_rep(UpdateRepRequest {
        rep_id: fs_reps[1].clone(),
        active: false,
        routing: Some(RepRouting {
            team_id: common::FS_TEAM.into(),
            ..Default::default()
        }),
    })
    .await
    .unwrap();
    for h in [&system_held, &person_held] {
        make_due(&floor.distribution_db.url, SlaKind::Decision, &h.handoff_id).await;
    }
    let a = eventually("both breaches counted", Duration::from_secs(30), || {
        let mut c = contracts.clone();
        let contract_id = contract.contract_id.clone();
        async move {
            let a = c
                .get_attainment(GetAttainmentRequest {
                    contract_id,
                    ..Default::default()
                })
                .await
                .ok()?
                .into_inner();
            (a.human_breaches + a.system_breaches == 2).then_some(a)
        }
    })
    .await;
    assert_eq!((a.human_breaches, a.system_breaches), (1, 1));
    let adherence = a
        .targets
        .iter()
        .find(|t| t.target == "decision_sla_adherence")
        .unwrap();
    // h-e decided in time; h-s late for the system's reason; h-h late by a person: 2 of 3.
    assert_eq!((adherence.numerator, adherence.denominator), (2, 3));
    // In distribution's events: the ruling's and h-h's breaches are a person's, h-s's the system's.
    let mut causes: Vec<i64> = breach_splits(&floor.distribution_db.url)
        .await
        .into_iter()
        .map(|(cause, _)| cause)
        .collect();
    causes.sort();
    use baton_proto::distribution::v1::BreachCause;
    assert_eq!(
        causes,
        vec![
            BreachCause::Human as i64,
            BreachCause::Human as i64,
            BreachCause::System as i64
        ]
    );

    // A contract counting the decision SLA in the FS owner's working hours (9:00-18:00 in
    // Tokyo, Monday to Friday): 48 working hours are more than five working days away.
    d.create_rep(CreateRepRequest {
        request_id: "fs-owner".into(),
        name: "FS owner".into(),
        email: FS_OWNER.into(),
        active: true,
        routing: Some(RepRouting {
            team_id: common::FS_TEAM.into(),
            time_zone: "Asia/Tokyo".into(),
            work_start_hour: 9,
            work_end_hour: 18,
            ..Default::default()
        }),
    })
    .await
    .unwrap();
    let mut hours = terms();
    hours.decision_sla_working_hours = true;
    // This version also requires an FS rep on the handoff, which tells when it is replicated.
    hours
        .gate
        .as_mut()
        .unwrap()
        .required_fields
        .push("fs_rep_id".into());
    activate(&mut contracts, "c-hours", hours).await;
    eventually(
        "working-hours contract replicated",
        Duration::from_secs(20),
        || {
            let mut d = d.clone();
            async move {
                let mut probe = handoff("h-w", "lead-w");
                probe.meeting_at = None;
                let refused = d
                    .create_handoff(as_user("is-rep@example.com", probe))
                    .await
                    .unwrap_err();
                refused
                    .get_details_precondition_failure()?
                    .violations
                    .iter()
                    .any(|v| v.subject == "fs_rep_id")
                    .then_some(())
            }
        },
    )
    .await;
    let mut named = handoff("h-w2", "lead-w");
    named.fs_rep_id = fs_reps[0].clone();
    let in_hours = d
        .create_handoff(as_user("is-rep@example.com", named))
        .await
        .unwrap()
        .into_inner();
    assert_eq!(in_hours.contract_version, 2);
    let created = time::from_proto(in_hours.created_at.as_ref().unwrap()).unwrap();
    let due = time::from_proto(in_hours.decision_due_at.as_ref().unwrap()).unwrap();
    assert!(
        due - created > chrono::Duration::days(6),
        "48 working hours from {created} should end after a week, not at {due}"
    );
    floor.stop().await;
}

/// (cause, system delay seconds) of every SlaBreached distribution logged.
async fn breach_splits(url: &str) -> Vec<(i64, i64)> {
    use baton_proto::distribution::v1::SlaBreached;
    use prost::Message;
    use sea_orm::{ConnectionTrait, Statement};
    let db = baton_shared::db::connect(url, &baton_shared::Settings::defaults().unwrap().database)
        .await
        .unwrap();
    let rows = db
        .query_all_raw(Statement::from_string(
            db.get_database_backend(),
            "SELECT payload FROM event_log WHERE type_url LIKE '%SlaBreached' \
             UNION ALL SELECT payload FROM event_outbox WHERE type_url LIKE '%SlaBreached'",
        ))
        .await
        .unwrap();
    let mut out = Vec::new();
    for row in rows {
        let payload: Vec<u8> = row.try_get("", "payload").unwrap();
        let e = SlaBreached::decode(payload.as_slice()).unwrap();
        out.push((i64::from(e.cause), e.system_delay_seconds));
    }
    db.close().await.unwrap();
    out
}
