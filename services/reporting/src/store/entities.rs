//! sea-orm entities of reporting's tables.

pub mod funnel_fact {
    use sea_orm::entity::prelude::*;

    /// One lead passing one funnel step (at most once per lead and step).
    #[derive(Clone, Debug, PartialEq, Eq, DeriveEntityModel)]
    #[sea_orm(table_name = "funnel_fact")]
    pub struct Model {
        #[sea_orm(primary_key)]
        pub seq: i64,
        pub tenant_id: String,
        pub lead_id: String,
        pub step: String,
        pub occurred_at: DateTimeUtc,
    }

    #[derive(Copy, Clone, Debug, EnumIter, DeriveRelation)]
    pub enum Relation {}

    impl ActiveModelBehavior for ActiveModel {}
}

pub mod contract {
    use sea_orm::entity::prelude::*;

    /// One version of a team pair's shared-KPI contract.
    #[derive(Clone, Debug, PartialEq, Eq, DeriveEntityModel)]
    #[sea_orm(table_name = "contract")]
    pub struct Model {
        #[sea_orm(primary_key)]
        pub seq: i64,
        pub contract_id: String,
        pub tenant_id: String,
        pub request_id: String,
        pub is_team: String,
        pub fs_team: String,
        pub version: i32,
        /// `ContractStatus` value.
        pub status: i32,
        /// Protobuf-encoded `baton.reporting.v1.ContractTerms`.
        pub terms: Vec<u8>,
        pub is_approved_by: String,
        pub is_approved_at: Option<DateTimeUtc>,
        pub fs_approved_by: String,
        pub fs_approved_at: Option<DateTimeUtc>,
        pub created_by: String,
        pub created_at: DateTimeUtc,
        pub activated_at: Option<DateTimeUtc>,
        pub superseded_at: Option<DateTimeUtc>,
    }

    #[derive(Copy, Clone, Debug, EnumIter, DeriveRelation)]
    pub enum Relation {}

    impl ActiveModelBehavior for ActiveModel {}
}

pub mod lead_dim {
    use sea_orm::entity::prelude::*;

    /// A lead's dimensions as they were when it was captured (`captured_at` null: a fact about the
    /// lead arrived before its capture; the row is the lock both take).
    #[derive(Clone, Debug, PartialEq, Eq, DeriveEntityModel)]
    #[sea_orm(table_name = "lead_dim")]
    pub struct Model {
        #[sea_orm(primary_key, auto_increment = false)]
        pub tenant_id: String,
        #[sea_orm(primary_key, auto_increment = false)]
        pub lead_id: String,
        pub channel: String,
        pub campaign: String,
        pub captured_at: Option<DateTimeUtc>,
    }

    #[derive(Copy, Clone, Debug, EnumIter, DeriveRelation)]
    pub enum Relation {}

    impl ActiveModelBehavior for ActiveModel {}
}

pub mod kpi_rollup {
    use sea_orm::entity::prelude::*;

    /// A counter of one metric in one 15-minute slot for one dimension group.
    #[derive(Clone, Debug, PartialEq, Eq, DeriveEntityModel)]
    #[sea_orm(table_name = "kpi_rollup")]
    pub struct Model {
        #[sea_orm(primary_key, auto_increment = false)]
        pub tenant_id: String,
        #[sea_orm(primary_key, auto_increment = false)]
        pub metric: String,
        #[sea_orm(primary_key, auto_increment = false)]
        pub slot: DateTimeUtc,
        #[sea_orm(primary_key, auto_increment = false)]
        pub channel: String,
        #[sea_orm(primary_key, auto_increment = false)]
        pub campaign: String,
        pub value: i64,
    }

    #[derive(Copy, Clone, Debug, EnumIter, DeriveRelation)]
    pub enum Relation {}

    impl ActiveModelBehavior for ActiveModel {}
}

pub mod visit_day {
    use sea_orm::entity::prelude::*;

    /// Anonymous visitors of one source on one calendar day (`YYYY-MM-DD`).
    #[derive(Clone, Debug, PartialEq, Eq, DeriveEntityModel)]
    #[sea_orm(table_name = "visit_day")]
    pub struct Model {
        #[sea_orm(primary_key, auto_increment = false)]
        pub tenant_id: String,
        #[sea_orm(primary_key, auto_increment = false)]
        pub day: String,
        #[sea_orm(primary_key, auto_increment = false)]
        pub channel: String,
        #[sea_orm(primary_key, auto_increment = false)]
        pub campaign: String,
        pub visitors: i64,
    }

    #[derive(Copy, Clone, Debug, EnumIter, DeriveRelation)]
    pub enum Relation {}

    impl ActiveModelBehavior for ActiveModel {}
}

pub mod kpi_pending {
    use sea_orm::entity::prelude::*;

    /// A fact about a lead whose capture had not arrived (its dimensions unknown): counted without
    /// dimensions, and moved under the lead's dimensions when its capture arrives.
    #[derive(Clone, Debug, PartialEq, Eq, DeriveEntityModel)]
    #[sea_orm(table_name = "kpi_pending")]
    pub struct Model {
        #[sea_orm(primary_key)]
        pub seq: i64,
        pub tenant_id: String,
        pub lead_id: String,
        pub metric: String,
        pub at: DateTimeUtc,
        pub value: i64,
    }

    #[derive(Copy, Clone, Debug, EnumIter, DeriveRelation)]
    pub enum Relation {}

    impl ActiveModelBehavior for ActiveModel {}
}
