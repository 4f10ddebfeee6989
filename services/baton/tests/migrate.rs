//! Every service's migrations apply to an empty database, and applying them again changes nothing
//! (SQLite, and PostgreSQL when BATON_TEST_DATABASE_URL is set).

use baton::suite::migrate_service;
use baton_shared::{
    ServiceName,
    testing::{TestDatabase, settings_with},
};

#[tokio::test]
async fn all_migrations_apply_to_empty_databases_and_are_idempotent() {
    let mut dbs = Vec::new();
    for name in ServiceName::ALL {
        dbs.push((name, TestDatabase::new(name.as_str()).await));
    }
    let refs: Vec<_> = dbs.iter().map(|(n, d)| (*n, d)).collect();
    let settings = settings_with(&refs);
    for name in ServiceName::ALL {
        migrate_service(name, &settings)
            .await
            .unwrap_or_else(|e| panic!("{name}: {e}"));
        migrate_service(name, &settings)
            .await
            .unwrap_or_else(|e| panic!("{name} again: {e}"));
    }
}
