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
        pub phone: String,
        pub title: String,
        pub role: String,
        pub department: String,
        pub company_id: Option<String>,
        pub consent_email_opt_in: bool,
        pub consent_unsubscribed: bool,
        pub consent_do_not_contact: bool,
        pub source_lead_magnet: String,
        pub source_funnel_position: i32,
        pub utm_source: String,
        pub utm_medium: String,
        pub utm_campaign: String,
        pub utm_term: String,
        pub utm_content: String,
        /// JSON object of typed values (`domain::profile::AttributeValue`).
        pub custom_attributes: String,
        pub updated_at: Option<DateTimeUtc>,
        pub erased_at: Option<DateTimeUtc>,
        /// Set when this lead was merged into another: its id resolves to that lead.
        pub merged_into: Option<String>,
        pub merged_at: Option<DateTimeUtc>,
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
        pub call_outcome: i32,
        pub call_duration_seconds: i32,
        pub call_reached_target_department: bool,
        pub subject: String,
        pub performed_by: String,
        pub machine_reason: Option<String>,
    }

    #[derive(Copy, Clone, Debug, EnumIter, DeriveRelation)]
    pub enum Relation {}

    impl ActiveModelBehavior for ActiveModel {}
}

pub mod company {
    use sea_orm::entity::prelude::*;

    /// A company, shared by the leads of the same web domain (one row per lead when no domain is known).
    #[derive(Clone, Debug, PartialEq, Eq, DeriveEntityModel)]
    #[sea_orm(table_name = "company")]
    pub struct Model {
        #[sea_orm(primary_key)]
        pub seq: i64,
        pub company_id: String,
        pub tenant_id: String,
        pub web_domain: Option<String>,
        pub name: String,
        pub industry: String,
        pub employees: Option<i64>,
        pub revenue_currency: Option<String>,
        pub revenue_minor: Option<i64>,
        pub country: String,
        pub region: String,
        pub created_at: DateTimeUtc,
        pub updated_at: DateTimeUtc,
    }

    #[derive(Copy, Clone, Debug, EnumIter, DeriveRelation)]
    pub enum Relation {}

    impl ActiveModelBehavior for ActiveModel {}
}

pub mod visit_count {
    use sea_orm::entity::prelude::*;

    /// Anonymous visitors a source brought on a day (UTC, `YYYY-MM-DD`).
    #[derive(Clone, Debug, PartialEq, Eq, DeriveEntityModel)]
    #[sea_orm(table_name = "visit_count")]
    pub struct Model {
        #[sea_orm(primary_key)]
        pub seq: i64,
        pub tenant_id: String,
        pub channel: String,
        pub campaign: String,
        pub day: String,
        pub visitors: i64,
        pub updated_at: DateTimeUtc,
    }

    #[derive(Copy, Clone, Debug, EnumIter, DeriveRelation)]
    pub enum Relation {}

    impl ActiveModelBehavior for ActiveModel {}
}
