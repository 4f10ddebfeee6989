//! An erasure that overtakes an event: reporting follows capture's and qualification's logs
//! separately, so it can apply capture's LeadErased before a StageChanged or RankChanged that
//! qualification wrote earlier and had not yet scrubbed. Such an event quoting the person must
//! reach the journal scrubbed, as the erasure would have left it. Runs on SQLite, and on
//! PostgreSQL when BATON_TEST_DATABASE_URL is set.

use baton_proto::{
    any,
    capture::v1::{Lead, LeadCaptured, LeadErased, LeadSource},
    events::v1::Event,
    qualification::v1::{Rank, RankChanged, Stage, StageChanged},
};
use baton_reporting::{consume::FunnelEvents, migration::Migrator};
use baton_shared::{events::EventHandler, testing::TestDatabase, time};
use sea_orm::{ConnectionTrait, Database, DatabaseConnection, Statement, TransactionTrait};
use sea_orm_migration::MigratorTrait;

const LEAD: &str = "lead-1";
const NAME: &str = "Quillfeather";

fn event<M: prost::Message + prost::Name>(position: i64, message: &M) -> Event {
    Event {
        position,
        event_id: format!("e-{position}"),
        tenant_id: "default".into(),
        aggregate_id: LEAD.into(),
        recorded_at: Some(time::to_proto(time::now())),
        payload: Some(any::pack(message)),
        ..Default::default()
    }
}

async fn apply(db: &DatabaseConnection, e: Event) {
    let txn = db.begin().await.unwrap();
    FunnelEvents.handle(&txn, &e).await.unwrap();
    txn.commit().await.unwrap();
}

fn stage_changed(to: Stage, reason: &str) -> StageChanged {
    StageChanged {
        lead_id: LEAD.into(),
        from_stage: Stage::Lead as i32,
        to_stage: to as i32,
        changed_at: Some(time::to_proto(time::now())),
        reason: reason.into(),
        changed_by: "is0@example.co.jp".into(),
        ..Default::default()
    }
}

/// The details of the lead's journal entries of `kind`, in the order they were stored.
async fn details(db: &DatabaseConnection, kind: &str) -> Vec<String> {
    let rows = db
        .query_all_raw(Statement::from_sql_and_values(
            db.get_database_backend(),
            match db.get_database_backend() {
                sea_orm::DbBackend::Postgres => {
                    "SELECT details FROM journal_entry WHERE lead_id = $1 AND kind = $2 ORDER BY seq"
                }
                _ => "SELECT details FROM journal_entry WHERE lead_id = ? AND kind = ? ORDER BY seq",
            },
            [LEAD.into(), kind.into()],
        ))
        .await
        .unwrap();
    rows.iter()
        .map(|r| r.try_get::<String>("", "details").unwrap())
        .collect()
}

#[tokio::test]
async fn events_applied_after_the_erasure_reach_the_journal_scrubbed() {
    let test_db = TestDatabase::new("reporting_race").await;
    let db = Database::connect(test_db.url.as_str()).await.unwrap();
    Migrator::up(&db, None).await.unwrap();

    let lead = Lead {
        lead_id: LEAD.into(),
        source: Some(LeadSource {
            channel: "web_form".into(),
            ..Default::default()
        }),
        ..Default::default()
    };
    let captured = LeadCaptured {
        lead_id: LEAD.into(),
        captured_at: Some(time::to_proto(time::now())),
        lead: Some(lead),
        ..Default::default()
    };
    apply(&db, event(1, &captured)).await;
    // Before the erasure, a reason in words is kept as given.
    let before = format!("Qualified on the phone with {NAME}");
    apply(&db, event(2, &stage_changed(Stage::Sql, &before))).await;
    assert_eq!(
        details(&db, "stage_changed").await,
        [format!("from=lead\nto=sql\nreason={before}\nscore=0")],
        "a journal entry before the erasure keeps its words"
    );

    let erased = LeadErased {
        lead_id: LEAD.into(),
        erased_at: Some(time::to_proto(time::now())),
    };
    apply(&db, event(3, &erased)).await;
    // The erasure scrubbed the entry stored before it ...
    assert!(
        !details(&db, "stage_changed").await[0].contains(NAME),
        "the erasure scrubs what was stored before it"
    );
    // ... and qualification's events read after it, still quoting the person, are stored
    // scrubbed; a reason that is a code stays.
    apply(
        &db,
        event(
            4,
            &stage_changed(Stage::Opportunity, &format!("Per {NAME}")),
        ),
    )
    .await;
    apply(&db, event(5, &stage_changed(Stage::Lost, "no_budget"))).await;
    let ranked = RankChanged {
        lead_id: LEAD.into(),
        from_rank: Rank::Warm as i32,
        to_rank: Rank::Hot as i32,
        rule_key: "title_head".into(),
        reasons: vec![format!("title Head of {NAME} in [head]")],
        changed_at: Some(time::to_proto(time::now())),
    };
    apply(&db, event(6, &ranked)).await;

    let stages = details(&db, "stage_changed").await;
    assert_eq!(stages.len(), 3, "{stages:?}");
    assert!(
        stages[1].contains("to=opportunity\nreason=\n"),
        "{:?}",
        stages[1]
    );
    assert!(stages[2].contains("reason=no_budget"), "{:?}", stages[2]);
    let ranks = details(&db, "rank_changed").await;
    assert_eq!(
        ranks,
        ["from=warm\nto=hot\nrule=title_head\nreasons="],
        "the rank reasons quote the person's title"
    );
    let everything = db
        .query_all_raw(Statement::from_string(
            db.get_database_backend(),
            "SELECT details FROM journal_entry",
        ))
        .await
        .unwrap();
    for row in everything {
        let d: String = row.try_get("", "details").unwrap();
        assert!(!d.contains(NAME), "{d:?} quotes the erased person");
    }
}
