//! `db::find_by_unique_key` and `db::find_in` against a real database (SQLite, and PostgreSQL when
//! BATON_TEST_DATABASE_URL is set): every stored key asked for comes back once, with its own row,
//! whatever characters it holds; keys of another tenant and keys not stored do not.

use baton_shared::{
    Settings,
    db::{self, find_by_unique_key, find_in},
    testing::TestDatabase,
};
use sea_orm::{ColumnTrait, ConnectionTrait, EntityTrait, QueryFilter};

mod keyed {
    use sea_orm::entity::prelude::*;

    #[derive(Clone, Debug, PartialEq, Eq, DeriveEntityModel)]
    #[sea_orm(table_name = "keyed")]
    pub struct Model {
        #[sea_orm(primary_key, auto_increment = false)]
        pub tenant_id: String,
        #[sea_orm(primary_key, auto_increment = false)]
        pub key: String,
        pub n: i64,
    }

    #[derive(Copy, Clone, Debug, EnumIter, DeriveRelation)]
    pub enum Relation {}

    impl ActiveModelBehavior for ActiveModel {}
}

/// Keys that JSON, SQL or an IN list could mangle, and enough plain ones to span several IN chunks.
fn awkward_keys() -> Vec<String> {
    let mut keys: Vec<String> = [
        "plain",
        "with \"double\" quotes",
        "back\\slash\\",
        "o'brien",
        "日本語のキー",
        "emoji 🎯",
        "[1, 2]",
        "{\"k\": 1}",
        " padded ",
        "tab\there",
        "line\nbreak",
        "%_like_wildcards_%",
        "$1",
    ]
    .iter()
    .map(|k| String::from(*k))
    .collect();
    keys.extend((0..1200).map(|n| format!("key-{n:04}")));
    keys
}

#[tokio::test]
async fn lookups_by_unique_key_return_each_stored_key_of_the_tenant_once() {
    let test_db = TestDatabase::new("lookups").await;
    let settings = Settings::defaults().expect("defaults");
    let conn = db::connect(&test_db.url, &settings.database)
        .await
        .expect("connect");
    conn.execute_unprepared(
        "CREATE TABLE keyed (tenant_id TEXT NOT NULL, key TEXT NOT NULL, n BIGINT NOT NULL, \
         PRIMARY KEY (tenant_id, key))",
    )
    .await
    .expect("create table");

    let keys = awkward_keys();
    // Tenant a holds every other key; tenant b holds all of them, with other numbers.
    let mut rows = Vec::new();
    for (n, key) in keys.iter().enumerate() {
        if n % 2 == 0 {
            rows.push(("a", key.clone(), n as i64));
        }
        rows.push(("b", key.clone(), -(n as i64)));
    }
    for chunk in rows.chunks(300) {
        keyed::Entity::insert_many(chunk.iter().map(|(tenant, key, n)| keyed::ActiveModel {
            tenant_id: sea_orm::Set(String::from(*tenant)),
            key: sea_orm::Set(key.clone()),
            n: sea_orm::Set(*n),
        }))
        .exec_without_returning(&conn)
        .await
        .expect("insert");
    }

    let mut asked: Vec<&str> = keys.iter().map(String::as_str).collect();
    asked.push("not stored");
    asked.push("PLAIN");
    let query = || keyed::Entity::find().filter(keyed::Column::TenantId.eq("a"));
    let expected: Vec<(String, i64)> = keys
        .iter()
        .enumerate()
        .filter(|(n, _)| n % 2 == 0)
        .map(|(n, key)| (key.clone(), n as i64))
        .collect();
    let sorted = |rows: Vec<keyed::Model>| {
        let mut found: Vec<(String, i64)> = rows.into_iter().map(|r| (r.key, r.n)).collect();
        found.sort();
        found
    };
    let mut expected_sorted = expected.clone();
    expected_sorted.sort();

    let by_unique_key = find_by_unique_key(&conn, query(), keyed::Column::Key, &asked)
        .await
        .expect("find_by_unique_key");
    assert_eq!(sorted(by_unique_key), expected_sorted);
    let by_in_list = find_in(&conn, query(), keyed::Column::Key, &asked)
        .await
        .expect("find_in");
    assert_eq!(sorted(by_in_list), expected_sorted);
    let none = find_by_unique_key(&conn, query(), keyed::Column::Key, &[])
        .await
        .expect("no keys");
    assert!(none.is_empty());
}
