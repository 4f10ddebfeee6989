//! Erasure that leaves nothing: people are captured, scored, ranked, nurtured, handed off,
//! rejected, disputed and lost through the public APIs, with their e-mail, names, phone and title
//! quoted wherever a caller can write text (activity URLs and subjects, BANT notes, stage reasons,
//! handoff notes, dispute texts, lost reasons). One of them is dead-lettered by nurture. After
//! EraseLead (of a plain lead, of a merge survivor, of a merged duplicate), every column of every
//! table of the five databases (their event logs and outboxes included), nurture's mail files and
//! the services' log output are searched for each of those strings: zero hits. A person who was
//! not erased is found in the same search, so the search can see what it looks for.

use std::{
    io::Write,
    sync::{Arc, Mutex},
    time::Duration,
};

use baton_e2e::{
    TestSuite, activity, captured_id, eventually, lead,
    sales::{
        approve_contract, in_qualification, ready_lead, record_bant, sales_floor, send_bant,
        stage_of,
    },
};
use baton_proto::{
    capture::v1::{
        ActivityKind, CaptureLeadRequest, Consent, EraseLeadRequest, MergeLeadsRequest, PageKind,
    },
    distribution::v1::{
        AcceptHandoffRequest, CreateHandoffRequest, DisputeRejectionRequest, RecordOutcomeRequest,
        RejectHandoffRequest, RuleDisputeRequest,
    },
    nurture::v1::{ActivateSequenceRequest, ListTouchesRequest},
    qualification::v1::{
        Bant, BantItem, ChangeStageRequest, FieldCondition, GetRankRulesRequest, OneOf, Rank,
        RankCondition, RankRule, SetRankRulesRequest, Stage, field_condition::Comparison,
        rank_condition::Condition,
    },
};
use baton_shared::{
    ServiceName,
    testing::{as_user, count, execute},
    time,
};
use sea_orm::{ConnectionTrait, Database, DbBackend, Statement};

const PATIENCE: Duration = Duration::from_secs(60);
const IS_OWNER: &str = "is-lead@example.co.jp";
const FS_OWNER: &str = "fs-lead@example.co.jp";
const TITLE_RULE: &str = "CHIEF ZEPHYR OFFICER";

/// A person's identifying strings, each searched for as it is (case-sensitive).
struct Person {
    email: String,
    first: String,
    last: String,
    phone: String,
    title: String,
}

impl Person {
    fn new(n: usize, first: &str, last: &str) -> Person {
        Person {
            email: format!(
                "{}.{}{n}@erasure-test.example",
                first.to_lowercase(),
                last.to_lowercase()
            ),
            first: first.into(),
            last: last.into(),
            phone: format!("+81-3-5550-01{n:02}"),
            title: "Chief Zephyr Officer".into(),
        }
    }

    fn needles(&self) -> Vec<String> {
        let digits: String = self.phone.chars().filter(char::is_ascii_digit).collect();
        vec![
            self.email.clone(),
            self.first.clone(),
            self.last.clone(),
            self.phone.clone(),
            digits,
        ]
    }

    fn request(&self, n: usize) -> CaptureLeadRequest {
        CaptureLeadRequest {
            email: self.email.clone(),
            first_name: self.first.clone(),
            last_name: self.last.clone(),
            phone: self.phone.clone(),
            title: self.title.clone(),
            consent: Some(Consent {
                email_opt_in: true,
                ..Default::default()
            }),
            ..lead(n)
        }
    }

    /// Text a person writes about this lead.
    fn quoted(&self, what: &str) -> String {
        format!(
            "{what} {} {} ({}, {})",
            self.first, self.last, self.email, self.phone
        )
    }
}

/// Log output, kept to be searched.
#[derive(Clone, Default)]
struct Captured(Arc<Mutex<Vec<u8>>>);

impl Write for Captured {
    fn write(&mut self, buf: &[u8]) -> std::io::Result<usize> {
        self.0.lock().unwrap().extend_from_slice(buf);
        std::io::stdout().write(buf)
    }
    fn flush(&mut self) -> std::io::Result<()> {
        Ok(())
    }
}

/// The SQL condition "column `c` holds the `n`-th bound needle", text or bytes (protobuf
/// payloads, JSON documents).
fn holds(backend: DbBackend, column: &str, ty: &str, n: usize) -> String {
    match backend {
        DbBackend::Postgres if ty == "bytea" => {
            format!("position(convert_to(${n}, 'UTF8') in \"{column}\") > 0")
        }
        DbBackend::Postgres => format!("strpos(\"{column}\"::text, ${n}) > 0"),
        _ => format!("instr(CAST(\"{column}\" AS BLOB), CAST(${n} AS BLOB)) > 0"),
    }
}

/// For each of `needles` held somewhere in the database at `url`, the needle and its
/// `table.column`. One query per column for all needles; one per needle where that one hits.
async fn hits_in_database(url: &str, needles: &[String]) -> Vec<(String, String)> {
    let db = Database::connect(url).await.expect("connect");
    let backend = db.get_database_backend();
    let columns = match backend {
        DbBackend::Postgres => {
            "SELECT table_name AS t, column_name AS c, data_type AS ty \
             FROM information_schema.columns WHERE table_schema = current_schema()"
        }
        _ => {
            "SELECT m.name AS t, p.name AS c, p.type AS ty FROM sqlite_master m \
             JOIN pragma_table_info(m.name) p WHERE m.type = 'table'"
        }
    };
    let rows = db
        .query_all_raw(Statement::from_string(backend, columns))
        .await
        .expect("columns");
    let count = |sql: String, values: Vec<sea_orm::Value>| {
        let db = &db;
        async move {
            db.query_one_raw(Statement::from_sql_and_values(backend, sql, values))
                .await
                .expect("search")
                .map(|r| r.try_get::<i64>("", "n").unwrap())
                .unwrap_or(0)
        }
    };
    let mut found = Vec::new();
    for row in rows {
        let table: String = row.try_get("", "t").unwrap();
        let column: String = row.try_get("", "c").unwrap();
        let ty: String = row.try_get("", "ty").unwrap();
        let any = (1..=needles.len())
            .map(|n| holds(backend, &column, &ty, n))
            .collect::<Vec<_>>()
            .join(" OR ");
        let values = needles.iter().map(|n| n.as_str().into()).collect();
        let sql = format!("SELECT COUNT(*) AS n FROM \"{table}\" WHERE {any}");
        if count(sql, values).await == 0 {
            continue;
        }
        for needle in needles {
            let one = holds(backend, &column, &ty, 1);
            let sql = format!("SELECT COUNT(*) AS n FROM \"{table}\" WHERE {one}");
            let n = count(sql, vec![needle.as_str().into()]).await;
            if n > 0 {
                found.push((needle.clone(), format!("{table}.{column} ({n})")));
            }
        }
    }
    db.close().await.ok();
    found
}

/// Every place of the suite holding one of `needles` (database columns, mail files, log
/// output), as "needle in place".
async fn hits(suite: &TestSuite, logs: &Captured, needles: &[String]) -> Vec<String> {
    let mut found = Vec::new();
    for name in ServiceName::ALL {
        for (needle, place) in hits_in_database(&suite.database_url(name), needles).await {
            found.push(format!("{needle:?} in {}: {place}", name.as_str()));
        }
    }
    let outbox = &suite.suite.settings().delivery.outbox_dir;
    for entry in std::fs::read_dir(outbox).into_iter().flatten().flatten() {
        let bytes = std::fs::read(entry.path()).unwrap_or_default();
        for needle in needles.iter().filter(|n| contains(&bytes, n.as_bytes())) {
            found.push(format!(
                "{needle:?} in mail file {}",
                entry.path().display()
            ));
        }
    }
    let logged = logs.0.lock().unwrap().clone();
    for needle in needles.iter().filter(|n| contains(&logged, n.as_bytes())) {
        found.push(format!("{needle:?} in log output"));
    }
    found
}

fn contains(haystack: &[u8], needle: &[u8]) -> bool {
    haystack.windows(needle.len()).any(|w| w == needle)
}

/// Waits until nurture's file sink holds a mail to `email` (lead `lead_id`).
async fn mailed(suite: &TestSuite, email: &str, lead_id: &str) {
    let outbox = std::path::PathBuf::from(&suite.suite.settings().delivery.outbox_dir);
    let deadline = std::time::Instant::now() + PATIENCE;
    while !std::fs::read_dir(&outbox)
        .into_iter()
        .flatten()
        .flatten()
        .any(|f| {
            contains(
                &std::fs::read(f.path()).unwrap_or_default(),
                email.as_bytes(),
            )
        })
    {
        if std::time::Instant::now() > deadline {
            let touches = suite
                .nurture()
                .await
                .list_touches(ListTouchesRequest {
                    lead_id: lead_id.into(),
                    ..Default::default()
                })
                .await
                .map(|t| t.into_inner().touches);
            let enrollments = suite
                .nurture()
                .await
                .list_enrollments(baton_proto::nurture::v1::ListEnrollmentsRequest {
                    lead_id: lead_id.into(),
                    ..Default::default()
                })
                .await
                .map(|e| e.into_inner().enrollments);
            let url = suite.database_url(ServiceName::Nurture);
            let replica =
                format!("SELECT COUNT(*) AS n FROM nurture_lead WHERE lead_id = '{lead_id}'");
            let dead = count(&url, "SELECT COUNT(*) AS n FROM event_dead_letter").await;
            panic!(
                "no mail to {email}; its touches: {touches:?}, enrolments: {enrollments:?}, \
                 replica rows: {}, dead letters: {dead}",
                count(&url, &replica).await
            );
        }
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
}

/// A rank rule that quotes the lead's title in its reasons ("title Chief Zephyr Officer in …").
async fn rank_rule_on_title(suite: &TestSuite) {
    let mut q = suite.qualification().await;
    let mut rules = q
        .get_rank_rules(GetRankRulesRequest {})
        .await
        .unwrap()
        .into_inner();
    rules.rules.insert(
        0,
        RankRule {
            key: "zephyr_title".into(),
            rank: Rank::Hot as i32,
            description: "the title the test quotes".into(),
            conditions: vec![RankCondition {
                condition: Some(Condition::Field(FieldCondition {
                    field: "title".into(),
                    comparison: Some(Comparison::OneOf(OneOf {
                        values: vec![TITLE_RULE.into()],
                    })),
                    ..Default::default()
                })),
            }],
        },
    );
    let version = rules.version;
    rules.rerank = None;
    q.set_rank_rules(SetRankRulesRequest {
        rules: Some(rules),
        expected_version: version,
    })
    .await
    .unwrap();
}

/// nurture's database refuses the replica row of `email` (its e-mail is set by an UPDATE) until
/// the returned statement runs.
async fn refuse_in_nurture(url: &str, email: &str) -> &'static str {
    let (refuse, mend) = if url.starts_with("postgres") {
        (
            format!(
                "CREATE FUNCTION refuse_erasure_test() RETURNS trigger AS $$ BEGIN \
                   IF NEW.email = '{email}' THEN RAISE EXCEPTION 'refused by the test'; END IF; \
                   RETURN NEW; END $$ LANGUAGE plpgsql; \
                 CREATE TRIGGER refuse_erasure_test BEFORE INSERT OR UPDATE ON nurture_lead \
                 FOR EACH ROW EXECUTE FUNCTION refuse_erasure_test();"
            ),
            "DROP TRIGGER refuse_erasure_test ON nurture_lead",
        )
    } else {
        (
            format!(
                "CREATE TRIGGER refuse_erasure_test BEFORE UPDATE ON nurture_lead \
                 WHEN NEW.email = '{email}' \
                 BEGIN SELECT RAISE(ABORT, 'refused by the test'); END;"
            ),
            "DROP TRIGGER refuse_erasure_test",
        )
    };
    execute(url, &refuse).await;
    mend
}

/// Records an activity whose URL and subject quote `person`.
async fn quoted_activities(suite: &TestSuite, lead_id: &str, person: &Person, key: &str) {
    let mut capture = suite.capture().await;
    let mut view = activity(
        lead_id,
        &format!("{key}-view"),
        ActivityKind::PageViewed,
        PageKind::Pricing,
    );
    view.url = format!(
        "https://example.com/pricing?email={}&name={}",
        person.email, person.last
    );
    capture.record_activity(view).await.unwrap();
    let mut reply = activity(
        lead_id,
        &format!("{key}-reply"),
        ActivityKind::EmailReplied,
        PageKind::Unspecified,
    );
    reply.subject = person.quoted("Re: a quote for");
    capture.record_activity(reply).await.unwrap();
}

async fn bant_with_notes(suite: &TestSuite, lead_id: &str, person: &Person) {
    let item = |what: &str| {
        Some(BantItem {
            confirmed: true,
            note: person.quoted(what),
        })
    };
    let bant = Bant {
        budget: item("budget signed off by"),
        authority: item("decides:"),
        need: item("needs it, says"),
        timeframe: item("this quarter, per"),
    };
    send_bant(suite, lead_id, bant).await;
}

/// The whole IS → FS journey of `lead_id` with every free text quoting `person`: handed off,
/// rejected, disputed, the rejection overturned, accepted, lost.
async fn handoff_journey(suite: &TestSuite, lead_id: &str, person: &Person) {
    let mut d = suite.distribution().await;
    let handoff = d
        .create_handoff(as_user(
            "is0@example.co.jp",
            CreateHandoffRequest {
                request_id: "erasure-h-1".into(),
                lead_id: lead_id.into(),
                is_team: "is-tokyo".into(),
                fs_team: "fs-tokyo".into(),
                meeting_at: Some(time::to_proto(
                    chrono::Utc::now() + chrono::Duration::days(2),
                )),
                notes: person.quoted("Demo for"),
                handed_off_by: "is0@example.co.jp".into(),
                ..Default::default()
            },
        ))
        .await
        .unwrap()
        .into_inner();
    let id = handoff.handoff_id;
    d.reject_handoff(as_user(
        "fs0@example.co.jp",
        RejectHandoffRequest {
            handoff_id: id.clone(),
            reason_code: "no_budget".into(),
            note: person.quoted("No budget according to"),
            decided_by: "fs0@example.co.jp".into(),
        },
    ))
    .await
    .unwrap();
    d.dispute_rejection(as_user(
        "is0@example.co.jp",
        DisputeRejectionRequest {
            handoff_id: id.clone(),
            disputed_by: "is0@example.co.jp".into(),
            argument: person.quoted("Budget confirmed in writing by"),
        },
    ))
    .await
    .unwrap();
    d.rule_dispute(as_user(
        IS_OWNER,
        RuleDisputeRequest {
            handoff_id: id.clone(),
            ruled_by: IS_OWNER.into(),
            uphold_rejection: false,
            note: person.quoted("Overturned: the mail of"),
        },
    ))
    .await
    .unwrap();
    d.accept_handoff(as_user(
        "fs0@example.co.jp",
        AcceptHandoffRequest {
            handoff_id: id.clone(),
            decided_by: "fs0@example.co.jp".into(),
        },
    ))
    .await
    .unwrap();
    stage_of(suite, lead_id, Stage::Opportunity).await;
    d.record_outcome(as_user(
        "fs0@example.co.jp",
        RecordOutcomeRequest {
            handoff_id: id,
            won: false,
            lost_reason: person.quoted("Went with a competitor, said"),
            recorded_by: "fs0@example.co.jp".into(),
            ..Default::default()
        },
    ))
    .await
    .unwrap();
    stage_of(suite, lead_id, Stage::Lost).await;
}

async fn merge(suite: &TestSuite, survivor: &str, merged: &str) {
    suite
        .capture()
        .await
        .merge_leads(MergeLeadsRequest {
            survivor_lead_id: survivor.into(),
            merged_lead_id: merged.into(),
        })
        .await
        .unwrap();
}

async fn erase(suite: &TestSuite, lead_id: &str) {
    suite
        .capture()
        .await
        .erase_lead(EraseLeadRequest {
            lead_id: lead_id.into(),
        })
        .await
        .unwrap();
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn erased_people_are_found_nowhere_in_the_five_databases_their_logs_mails_or_log_output() {
    let logs = Captured::default();
    let writer = logs.clone();
    tracing_subscriber::fmt()
        .with_env_filter("info")
        .with_writer(move || writer.clone())
        .with_ansi(false)
        .init();
    let suite = TestSuite::start_with(|s| {
        s.events.dead_letter_after_attempts = 2;
        s.events.reconnect_min_ms = 20;
        s.events.reconnect_max_ms = 200;
    })
    .await;
    let mut contracts = suite.contracts().await;
    let mut d = suite.distribution().await;
    let terms = baton_shared::contract::example_terms("is-tokyo", "fs-tokyo", IS_OWNER, FS_OWNER);
    approve_contract(&mut contracts, "erasure", terms).await;
    sales_floor(&mut d, "is-tokyo", "fs-tokyo", 1).await;
    rank_rule_on_title(&suite).await;
    let mut nurture = suite.nurture().await;
    nurture
        .activate_sequence(ActivateSequenceRequest {
            key: "welcome".into(),
        })
        .await
        .unwrap();

    let plain = Person::new(1, "Zephyrine", "Quillfeather");
    let survivor = Person::new(2, "Oswin", "Marblethorpe");
    let duplicate = Person::new(3, "Oswinna", "Marblethorpe-Vale");
    let survivor_b = Person::new(4, "Ysolde", "Featherstonehaugh");
    let duplicate_b = Person::new(5, "Ysolda", "Featherstone-Quince");
    let poisoned = Person::new(6, "Thaddeus", "Poisonwood");
    let kept = Person {
        title: "Head of Keeping".into(),
        ..Person::new(7, "Keeper", "Staysforever")
    };

    // The plain lead: MQL, assigned, ranked on its title, mailed, the whole handoff journey.
    // Its welcome mail is written before it becomes an MQL (which ends its nurturing).
    let mut capture = suite.capture().await;
    let plain_id = captured_id(&mut capture, plain.request(1)).await;
    mailed(&suite, &plain.email, &plain_id).await;
    assert_eq!(ready_lead(&suite, 1, plain.request(1)).await, plain_id);
    quoted_activities(&suite, &plain_id, &plain, "plain").await;
    bant_with_notes(&suite, &plain_id, &plain).await;
    record_bant(
        &suite,
        &plain_id,
        &["budget", "authority", "need", "timeframe"],
    )
    .await;
    handoff_journey(&suite, &plain_id, &plain).await;

    // Two merged pairs, each with activities, BANT notes and a stage moved by a person.
    let mut pairs = Vec::new();
    for (n, (s, m)) in [
        (2, (&survivor, &duplicate)),
        (4, (&survivor_b, &duplicate_b)),
    ] {
        let s_id = captured_id(&mut capture, s.request(n)).await;
        let m_id = captured_id(&mut capture, m.request(n + 1)).await;
        quoted_activities(&suite, &s_id, s, &format!("s{n}")).await;
        quoted_activities(&suite, &m_id, m, &format!("m{n}")).await;
        in_qualification(&suite, &m_id).await;
        suite
            .qualification()
            .await
            .change_stage(as_user(
                "is0@example.co.jp",
                ChangeStageRequest {
                    lead_id: m_id.clone(),
                    to_stage: Stage::Sql as i32,
                    reason: m.quoted("Qualified on the phone with"),
                    changed_by: "is0@example.co.jp".into(),
                    override_reason: s.quoted("Referred by"),
                },
            ))
            .await
            .unwrap();
        bant_with_notes(&suite, &m_id, m).await;
        merge(&suite, &s_id, &m_id).await;
        pairs.push((s_id, m_id));
    }
    // The poisoned lead: nurture cannot store it and dead-letters its capture.
    let nurture_db = suite.database_url(ServiceName::Nurture);
    let mend = refuse_in_nurture(&nurture_db, &poisoned.email).await;
    let poisoned_id = captured_id(&mut capture, poisoned.request(6)).await;
    let kept_id = captured_id(&mut capture, kept.request(7)).await;
    quoted_activities(&suite, &kept_id, &kept, "kept").await;
    let dead = "SELECT COUNT(*) AS n FROM event_dead_letter";
    eventually(
        "nurture dead-letters the poisoned capture",
        PATIENCE,
        || {
            let url = nurture_db.clone();
            async move { (count(&url, dead).await >= 1).then_some(()) }
        },
    )
    .await;
    execute(&nurture_db, mend).await;

    // The kept lead's welcome mail is written (the merged duplicates' may or may not be: a
    // merge can end an enrolment before its first mail).
    mailed(&suite, &kept.email, &kept_id).await;
    let kept_in_nurture =
        format!("SELECT COUNT(*) AS n FROM lead_activity WHERE lead_id = '{kept_id}'");
    eventually("nurture has the last activity", PATIENCE, || {
        let (url, sql) = (nurture_db.clone(), kept_in_nurture.clone());
        async move { (count(&url, &sql).await >= 1).then_some(()) }
    })
    .await;
    for person in [&plain, &duplicate, &survivor_b, &poisoned] {
        let found = hits(&suite, &logs, std::slice::from_ref(&person.email)).await;
        assert!(
            !found.is_empty(),
            "{} is stored before erasure",
            person.email
        );
    }
    let quoted_title = hits(&suite, &logs, std::slice::from_ref(&plain.title)).await;
    assert!(
        quoted_title
            .iter()
            .any(|h| h.contains("qualification: lead_rank.reasons")),
        "the rank rule quotes the title: {quoted_title:?}"
    );

    // Erase: the plain lead, the first pair through its duplicate, the second through its
    // survivor, the poisoned lead.
    erase(&suite, &plain_id).await;
    erase(&suite, &pairs[0].1).await;
    erase(&suite, &pairs[1].0).await;
    erase(&suite, &poisoned_id).await;
    // Every consumer applies the erasures in its own time: search until nothing is left, or
    // report what is.
    let needles: Vec<String> = [
        &plain,
        &survivor,
        &duplicate,
        &survivor_b,
        &duplicate_b,
        &poisoned,
    ]
    .iter()
    .flat_map(|p| p.needles())
    .chain([plain.title.clone()])
    .collect();
    let deadline = std::time::Instant::now() + PATIENCE;
    let left = loop {
        let left = hits(&suite, &logs, &needles).await;
        if left.is_empty() || std::time::Instant::now() > deadline {
            break left;
        }
        tokio::time::sleep(Duration::from_millis(500)).await;
    };
    assert!(left.is_empty(), "left after erasure:\n{}", left.join("\n"));
    // The erased leads' touches stay, without what identified them.
    let touches = nurture
        .list_touches(ListTouchesRequest {
            lead_id: plain_id.clone(),
            ..Default::default()
        })
        .await
        .unwrap()
        .into_inner()
        .touches;
    assert!(
        !touches.is_empty(),
        "the plain lead's welcome touch is kept"
    );

    // The person who was not erased is still everywhere the others were.
    let found = hits(&suite, &logs, std::slice::from_ref(&kept.email)).await;
    for place in [
        "capture: lead.email",
        "nurture: nurture_lead.email",
        "capture: activity.url",
        "mail file",
    ] {
        assert!(
            found.iter().any(|h| h.contains(place)),
            "{place} in {found:?}"
        );
    }
    suite.stop().await;
}
