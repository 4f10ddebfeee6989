//! sea-orm entities of capture's tables.

pub mod lead {
    use sea_orm::entity::prelude::*;

    #[derive(Clone, Debug, PartialEq, Eq, DeriveEntityModel)]
    #[sea_orm(table_name = "lead")]
    pub struct Model {
        #[sea_orm(primary_key)]
        pub seq: i64,
        pub lead_id: String,
        pub tenant_id: String,
        pub email: String,
        pub email_normalized: String,
        pub first_name: String,
        pub last_name: String,
        pub company_name: String,
        pub source_channel: String,
        pub source_campaign: String,
        pub captured_at: DateTimeUtc,
        pub created_at: DateTimeUtc,
    }

    #[derive(Copy, Clone, Debug, EnumIter, DeriveRelation)]
    pub enum Relation {}

    impl ActiveModelBehavior for ActiveModel {}
}

pub mod capture_request {
    use sea_orm::entity::prelude::*;

    #[derive(Clone, Debug, PartialEq, Eq, DeriveEntityModel)]
    #[sea_orm(table_name = "capture_request")]
    pub struct Model {
        #[sea_orm(primary_key, auto_increment = false)]
        pub tenant_id: String,
        #[sea_orm(primary_key, auto_increment = false)]
        pub request_id: String,
        pub fingerprint: String,
        pub lead_id: String,
        pub created: bool,
        pub created_at: DateTimeUtc,
    }

    #[derive(Copy, Clone, Debug, EnumIter, DeriveRelation)]
    pub enum Relation {}

    impl ActiveModelBehavior for ActiveModel {}
}

pub mod activity {
    use sea_orm::entity::prelude::*;

    #[derive(Clone, Debug, PartialEq, Eq, DeriveEntityModel)]
    #[sea_orm(table_name = "activity")]
    pub struct Model {
        #[sea_orm(primary_key)]
        pub seq: i64,
        pub activity_id: String,
        pub tenant_id: String,
        pub lead_id: String,
        pub idempotency_key: String,
        pub kind: i32,
        pub url: String,
        pub page_kind: i32,
        pub occurred_at: DateTimeUtc,
        pub created_at: DateTimeUtc,
    }

    #[derive(Copy, Clone, Debug, EnumIter, DeriveRelation)]
    pub enum Relation {}

    impl ActiveModelBehavior for ActiveModel {}
}
