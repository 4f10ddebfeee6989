//! What an operator does with a running suite: find the events a service could not apply (dead
//! letters) and replay them (one, or every waiting one) once the cause is mended, with
//! `baton events`; import a CSV of leads
//! with `baton import`.

use std::time::Duration;

use baton::events::{dead_letters, replay, replay_waiting};
use baton_e2e::{TestSuite, eventually, lead};
use baton_proto::{
    events::v1::{
        ListDeadLettersRequest, ReplayDeadLetterRequest, dead_letters_client::DeadLettersClient,
    },
    nurture::v1::ListSequencesRequest,
};
use baton_shared::{
    ServiceName,
    auth::Role,
    testing::{channel_with, count, execute, token},
};

const PATIENCE: Duration = Duration::from_secs(30);

/// nurture's database refuses the replica row of one lead (its e-mail is set by an UPDATE) (a trigger stands in for any fault of
/// the data that is not the database being down). nurture tries the capture event 3 times,
/// dead-letters it and applies the events after it; `baton events dead-letters` lists it, a
/// replay fails while the cause remains and applies it once it is gone.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn an_event_nurture_cannot_apply_is_dead_lettered_listed_and_replayed() {
    let suite = TestSuite::start_with(|s| {
        s.events.dead_letter_after_attempts = 3;
        s.events.reconnect_min_ms = 20;
        s.events.reconnect_max_ms = 200;
    })
    .await;
    // nurture answers once its database is migrated.
    let nurture = suite.nurture().await;
    eventually("nurture serves", PATIENCE, || {
        let mut nurture = nurture.clone();
        async move {
            nurture
                .list_sequences(ListSequencesRequest::default())
                .await
                .ok()
        }
    })
    .await;
    let nurture_db = suite.database_url(ServiceName::Nurture);
    let postgres = nurture_db.starts_with("postgres");
    let (refuse, mend) = if postgres {
        (
            "CREATE FUNCTION refuse_stuck() RETURNS trigger AS $$ BEGIN \
               IF NEW.email LIKE 'stuck%' THEN RAISE EXCEPTION 'refused by the test'; END IF; \
               RETURN NEW; END $$ LANGUAGE plpgsql; \
             CREATE TRIGGER refuse_stuck BEFORE INSERT OR UPDATE ON nurture_lead \
             FOR EACH ROW EXECUTE FUNCTION refuse_stuck();",
            "DROP TRIGGER refuse_stuck ON nurture_lead",
        )
    } else {
        (
            "CREATE TRIGGER refuse_stuck BEFORE UPDATE ON nurture_lead \
             WHEN NEW.email LIKE 'stuck%' \
             BEGIN SELECT RAISE(ABORT, 'refused by the test'); END;",
            "DROP TRIGGER refuse_stuck",
        )
    };
    execute(&nurture_db, refuse).await;
    let mut capture = suite.capture().await;
    let mut stuck = lead(1);
    stuck.email = "stuck@example.co.jp".into();
    capture.capture_lead(stuck).await.expect("capture");
    capture.capture_lead(lead(2)).await.expect("capture");
    let replica =
        |email: &str| format!("SELECT COUNT(*) AS n FROM nurture_lead WHERE email = '{email}'");
    eventually(
        "the lead after the refused one reaches nurture",
        PATIENCE,
        || {
            let (url, sql) = (nurture_db.clone(), replica("lead2@example.co.jp"));
            async move { (count(&url, &sql).await == 1).then_some(()) }
        },
    )
    .await;
    let settings = suite.suite.settings();
    let table = dead_letters(settings, None, false)
        .await
        .expect("dead letters");
    let rows: Vec<&str> = table
        .lines()
        .filter(|l| l.contains("LeadCaptured"))
        .collect();
    assert_eq!(rows.len(), 1, "one dead letter in\n{table}");
    assert!(
        rows[0].contains("nurture") && rows[0].contains("capture") && rows[0].contains(" 3 "),
        "service, source and attempts in {}",
        rows[0]
    );
    let id = count(&nurture_db, "SELECT id AS n FROM event_dead_letter").await;
    // The lead is the default tenant's: a service token of another tenant neither sees nor
    // replays its dead letter.
    let other = token("service:other", "tenant-b", &[Role::Service]);
    let mut as_other = DeadLettersClient::new(
        channel_with(&suite.suite.endpoint(ServiceName::Nurture), &other).await,
    );
    let seen = as_other
        .list_dead_letters(ListDeadLettersRequest::default())
        .await
        .expect("list")
        .into_inner();
    assert!(seen.dead_letters.is_empty(), "{seen:?}");
    let hidden = as_other
        .replay_dead_letter(ReplayDeadLetterRequest { id })
        .await
        .expect_err("not B's");
    assert_eq!(hidden.code(), tonic::Code::NotFound);
    let refused = replay(settings, ServiceName::Nurture, id)
        .await
        .expect_err("the cause is still there");
    assert!(refused.to_string().contains("failed again"), "{refused}");
    let all_refused = replay_waiting(settings, ServiceName::Nurture)
        .await
        .expect_err("the cause is still there");
    assert!(
        all_refused
            .to_string()
            .starts_with("nurture: 0 of 1 waiting dead letters replayed\n"),
        "{all_refused}"
    );
    assert_eq!(count(&nurture_db, &replica("stuck@example.co.jp")).await, 0);

    execute(&nurture_db, mend).await;
    // `baton events replay --all --service nurture`: every waiting one, here the one.
    let done = replay_waiting(settings, ServiceName::Nurture)
        .await
        .expect("replayed");
    assert_eq!(done, "nurture: 1 of 1 waiting dead letters replayed\n");
    assert_eq!(count(&nurture_db, &replica("stuck@example.co.jp")).await, 1);
    assert_eq!(
        dead_letters(settings, Some(ServiceName::Nurture), false)
            .await
            .expect("dead letters"),
        "no dead letters\n"
    );
    let again = replay(settings, ServiceName::Nurture, id)
        .await
        .expect_err("replayed once only");
    assert!(again.to_string().contains("replayed already"), "{again}");
    suite.stop().await;
}

/// `baton import leads.csv` streams a CSV through ImportLeads in calls of 2 rows, one row per
/// message, and writes one result per row. Five rows, counted by hand: rows 1, 2 and 5 are new
/// leads, row 3's e-mail is not one (rejected, naming `email`), row 4 is row 1's person again
/// (matched). Importing the same file again changes nothing: 4 already imported, 1 rejected.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn baton_import_streams_a_csv_and_writes_every_rows_result() {
    use baton::import::{ImportArgs, Summary, run};
    let suite = TestSuite::start().await;
    let dir = tempfile::tempdir().unwrap();
    let file = dir.path().join("leads.csv");
    std::fs::write(
        &file,
        "email,first_name,last_name,company_name,channel,email_opt_in\n\
         aiko@example.co.jp,Aiko,Tanaka,Example KK,web_form,yes\n\
         ben@example.co.jp,Ben,Ito,Example KK,web_form,no\n\
         not-an-email,Cai,Mori,Example KK,web_form,\n\
         AIKO@example.co.jp,Aiko,Tanaka,Example KK,event,\n\
         dan@example.co.jp,Dan,Ueda,Other KK,web_form,true\n",
    )
    .unwrap();
    let results = dir.path().join("results.csv");
    let args = || ImportArgs {
        file: file.clone(),
        results: Some(results.clone()),
        import_id: Some("fair-2026".into()),
        batch: 1,
        rows_per_call: 2,
    };
    let settings = suite.suite.settings();
    let first = run(settings, args()).await.expect("imported");
    assert_eq!(
        first,
        Summary {
            rows: 5,
            created: 3,
            matched_existing: 1,
            already_imported: 0,
            rejected: 1,
        }
    );
    let lines: Vec<String> = std::fs::read_to_string(&results)
        .unwrap()
        .lines()
        .map(str::to_owned)
        .collect();
    assert_eq!(lines[0], "row,status,lead_id,violations");
    let statuses: Vec<(String, String)> = lines[1..]
        .iter()
        .map(|l| {
            let f: Vec<&str> = l.splitn(4, ',').collect();
            (f[0].to_owned(), f[1].to_owned())
        })
        .collect();
    let want = [
        ("1", "created"),
        ("2", "created"),
        ("3", "rejected"),
        ("4", "matched_existing"),
        ("5", "created"),
    ];
    assert_eq!(
        statuses,
        want.map(|(r, s)| (r.to_owned(), s.to_owned())).to_vec()
    );
    assert!(
        lines[3].contains("email"),
        "row 3 names the field: {}",
        lines[3]
    );
    let lead_of = |row: usize| lines[row].split(',').nth(2).unwrap().to_owned();
    assert_eq!(lead_of(1), lead_of(4), "row 4 is row 1's lead");
    let again = run(settings, args()).await.expect("imported again");
    assert_eq!(
        again,
        Summary {
            rows: 5,
            created: 0,
            matched_existing: 0,
            already_imported: 4,
            rejected: 1,
        }
    );
    suite.stop().await;
}

/// `baton models activate <id>`: three leads are known to qualification; a draft version 2 made
/// over the API is activated by the CLI (the activator is the CLI's caller), which follows the
/// re-scoring to its end: 3 of 3 leads, and the model is active.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn baton_models_activate_follows_the_rescoring_to_its_end() {
    use baton_proto::{
        capture::v1::ActivityKind,
        qualification::v1::{
            BehaviourTrigger, CreateScoringModelRequest, GetScoreRequest, GetScoringModelRequest,
            ModelStatus, ScoringModelDefinition, ScoringRule, scoring_rule::Trigger,
        },
    };
    let suite = TestSuite::start().await;
    let mut capture = suite.capture().await;
    let mut ids = Vec::new();
    for n in 1..=3 {
        let answer = capture.capture_lead(lead(n)).await.expect("capture");
        ids.push(answer.into_inner().lead.unwrap_or_default().lead_id);
    }
    let q = suite.qualification().await;
    for id in &ids {
        eventually("qualification knows the lead", PATIENCE, || {
            let mut q = q.clone();
            let lead_id = id.clone();
            async move { q.get_score(GetScoreRequest { lead_id }).await.ok() }
        })
        .await;
    }
    let draft = q
        .clone()
        .create_scoring_model(CreateScoringModelRequest {
            definition: Some(ScoringModelDefinition {
                mql_threshold: 100,
                rules: vec![ScoringRule {
                    key: "opened".into(),
                    points: 5,
                    trigger: Some(Trigger::Behaviour(BehaviourTrigger {
                        activity_kind: ActivityKind::EmailOpened as i32,
                        ..Default::default()
                    })),
                    ..Default::default()
                }],
            }),
            created_by: String::new(),
        })
        .await
        .expect("draft")
        .into_inner();
    let printed = baton::models::activate(suite.suite.settings(), &draft.model_id, true)
        .await
        .expect("activated");
    assert!(
        printed.starts_with(&format!(
            "scoring model version 2 ({}) is active; 3 of 3 leads re-scored in ",
            draft.model_id
        )),
        "{printed}"
    );
    let model = q
        .clone()
        .get_scoring_model(GetScoringModelRequest::default())
        .await
        .expect("active model")
        .into_inner();
    assert_eq!(
        (model.model_id, model.status, model.activated_by.as_str()),
        (draft.model_id.clone(), ModelStatus::Active as i32, "cli"),
        "the CLI's caller activated it"
    );
    let again = baton::models::activate(suite.suite.settings(), &draft.model_id, true)
        .await
        .expect_err("already active");
    assert!(again.to_string().contains("already"), "{again}");
    suite.stop().await;
}
