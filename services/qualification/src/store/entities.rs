//! sea-orm entities of qualification's tables.

pub mod scoring_model {
    use sea_orm::entity::prelude::*;

    /// One version of a tenant's scoring model; `definition` is the model as JSON.
    #[derive(Clone, Debug, PartialEq, Eq, DeriveEntityModel)]
    #[sea_orm(table_name = "scoring_model")]
    pub struct Model {
        #[sea_orm(primary_key)]
        pub seq: i64,
        pub model_id: String,
        pub tenant_id: String,
        pub version: i32,
        pub mql_threshold: i64,
        /// `ModelStatus` value.
        pub status: i32,
        pub definition: String,
        pub created_at: DateTimeUtc,
        pub created_by: String,
        pub activated_at: Option<DateTimeUtc>,
        pub activated_by: String,
        /// `RecomputeState` value (0 until first activated).
        pub recompute_state: i32,
        pub recompute_total: i64,
        pub recompute_done: i64,
        /// `lead_score.seq` of the last lead recomputed.
        pub recompute_cursor: i64,
        pub recompute_started_at: Option<DateTimeUtc>,
        pub recompute_finished_at: Option<DateTimeUtc>,
        /// A worker holds the job until then.
        pub recompute_lease_until: Option<DateTimeUtc>,
    }

    #[derive(Copy, Clone, Debug, EnumIter, DeriveRelation)]
    pub enum Relation {}

    impl ActiveModelBehavior for ActiveModel {}
}

pub mod lead_activity {
    use sea_orm::entity::prelude::*;

    /// Qualification's copy of a lead's activities (from capture's events), so that any model can
    /// be applied to the whole history.
    #[derive(Clone, Debug, PartialEq, Eq, DeriveEntityModel)]
    #[sea_orm(table_name = "lead_activity")]
    pub struct Model {
        #[sea_orm(primary_key)]
        pub seq: i64,
        pub tenant_id: String,
        pub lead_id: String,
        pub activity_id: String,
        pub kind: i32,
        pub page_kind: i32,
        pub url: String,
        pub occurred_at: DateTimeUtc,
    }

    #[derive(Copy, Clone, Debug, EnumIter, DeriveRelation)]
    pub enum Relation {}

    impl ActiveModelBehavior for ActiveModel {}
}

pub mod lead_score {
    use sea_orm::entity::prelude::*;

    #[derive(Clone, Debug, PartialEq, Eq, DeriveEntityModel)]
    #[sea_orm(table_name = "lead_score")]
    pub struct Model {
        #[sea_orm(primary_key)]
        pub seq: i64,
        pub tenant_id: String,
        pub lead_id: String,
        pub score: i64,
        pub stage: i32,
        pub model_id: String,
        pub model_version: i32,
        pub updated_at: DateTimeUtc,
        /// When the score changes by itself next (expiry, inactivity); the sweeper's schedule.
        pub next_change_at: Option<DateTimeUtc>,
    }

    #[derive(Copy, Clone, Debug, EnumIter, DeriveRelation)]
    pub enum Relation {}

    impl ActiveModelBehavior for ActiveModel {}
}

pub mod score_entry {
    use sea_orm::entity::prelude::*;

    #[derive(Clone, Debug, PartialEq, Eq, DeriveEntityModel)]
    #[sea_orm(table_name = "score_entry")]
    pub struct Model {
        #[sea_orm(primary_key)]
        pub seq: i64,
        pub tenant_id: String,
        pub lead_id: String,
        pub activity_id: String,
        pub rule_key: String,
        pub description: String,
        pub points: i64,
        /// When the rule fired.
        pub occurred_at: DateTimeUtc,
        pub expires_at: Option<DateTimeUtc>,
        /// `TriggerKind` value.
        pub trigger: i32,
        pub detail: String,
    }

    #[derive(Copy, Clone, Debug, EnumIter, DeriveRelation)]
    pub enum Relation {}

    impl ActiveModelBehavior for ActiveModel {}
}

pub mod stage_history {
    use sea_orm::entity::prelude::*;

    #[derive(Clone, Debug, PartialEq, Eq, DeriveEntityModel)]
    #[sea_orm(table_name = "stage_history")]
    pub struct Model {
        #[sea_orm(primary_key)]
        pub seq: i64,
        pub tenant_id: String,
        pub lead_id: String,
        pub from_stage: i32,
        pub to_stage: i32,
        pub score: i64,
        pub changed_at: DateTimeUtc,
        pub reason: String,
        pub changed_by: String,
    }

    #[derive(Copy, Clone, Debug, EnumIter, DeriveRelation)]
    pub enum Relation {}

    impl ActiveModelBehavior for ActiveModel {}
}

pub mod lead_bant {
    use sea_orm::entity::prelude::*;

    /// What inside sales learned of a lead's Budget, Authority, Need and Timeframe.
    #[derive(Clone, Debug, PartialEq, Eq, DeriveEntityModel)]
    #[sea_orm(table_name = "lead_bant")]
    pub struct Model {
        #[sea_orm(primary_key, auto_increment = false)]
        pub tenant_id: String,
        #[sea_orm(primary_key, auto_increment = false)]
        pub lead_id: String,
        pub budget: bool,
        pub budget_note: String,
        pub authority: bool,
        pub authority_note: String,
        pub need: bool,
        pub need_note: String,
        pub timeframe: bool,
        pub timeframe_note: String,
        pub recorded_by: String,
        pub updated_at: DateTimeUtc,
    }

    #[derive(Copy, Clone, Debug, EnumIter, DeriveRelation)]
    pub enum Relation {}

    impl ActiveModelBehavior for ActiveModel {}
}

pub mod lead_profile {
    use sea_orm::entity::prelude::*;

    /// Qualification's replica of a lead's fit attributes (from capture's events).
    #[derive(Clone, Debug, PartialEq, Eq, DeriveEntityModel)]
    #[sea_orm(table_name = "lead_profile")]
    pub struct Model {
        #[sea_orm(primary_key, auto_increment = false)]
        pub tenant_id: String,
        #[sea_orm(primary_key, auto_increment = false)]
        pub lead_id: String,
        /// JSON object of flattened attributes ("company.employees" → "1200", "attr.x" → ...).
        pub fields: String,
        pub revenue_currency: Option<String>,
        pub revenue_minor: Option<i64>,
        pub first_contact_at: Option<DateTimeUtc>,
        pub updated_at: DateTimeUtc,
    }

    #[derive(Copy, Clone, Debug, EnumIter, DeriveRelation)]
    pub enum Relation {}

    impl ActiveModelBehavior for ActiveModel {}
}

pub mod lead_page_view {
    use sea_orm::entity::prelude::*;

    #[derive(Clone, Debug, PartialEq, Eq, DeriveEntityModel)]
    #[sea_orm(table_name = "lead_page_view")]
    pub struct Model {
        #[sea_orm(primary_key)]
        pub seq: i64,
        pub tenant_id: String,
        pub lead_id: String,
        pub activity_id: String,
        pub url: String,
        pub occurred_at: DateTimeUtc,
    }

    #[derive(Copy, Clone, Debug, EnumIter, DeriveRelation)]
    pub enum Relation {}

    impl ActiveModelBehavior for ActiveModel {}
}

pub mod lead_rank {
    use sea_orm::entity::prelude::*;

    #[derive(Clone, Debug, PartialEq, Eq, DeriveEntityModel)]
    #[sea_orm(table_name = "lead_rank")]
    pub struct Model {
        #[sea_orm(primary_key, auto_increment = false)]
        pub tenant_id: String,
        #[sea_orm(primary_key, auto_increment = false)]
        pub lead_id: String,
        pub rank: i32,
        pub rule_key: String,
        /// JSON array of strings.
        pub reasons: String,
        pub ranked_at: DateTimeUtc,
        /// When a time condition may change the rank with no new event (the sweeper re-ranks).
        pub next_change_at: Option<DateTimeUtc>,
    }

    #[derive(Copy, Clone, Debug, EnumIter, DeriveRelation)]
    pub enum Relation {}

    impl ActiveModelBehavior for ActiveModel {}
}

pub mod rank_ruleset {
    use sea_orm::entity::prelude::*;

    /// A tenant's rank rules (the definition is data: TOML, validated before it is stored).
    #[derive(Clone, Debug, PartialEq, Eq, DeriveEntityModel)]
    #[sea_orm(table_name = "rank_ruleset")]
    pub struct Model {
        #[sea_orm(primary_key, auto_increment = false)]
        pub tenant_id: String,
        pub version: i32,
        pub definition: String,
        pub updated_at: DateTimeUtc,
        /// Re-ranking every lead under this version: a `RecomputeState` (0 before any change).
        pub rerank_state: i32,
        pub rerank_total: i64,
        pub rerank_done: i64,
        /// The last lead id re-ranked (leads go in lead id order).
        pub rerank_cursor: String,
        pub rerank_started_at: Option<DateTimeUtc>,
        pub rerank_finished_at: Option<DateTimeUtc>,
    }

    #[derive(Copy, Clone, Debug, EnumIter, DeriveRelation)]
    pub enum Relation {}

    impl ActiveModelBehavior for ActiveModel {}
}

pub mod stage_ruleset {
    use sea_orm::entity::prelude::*;

    /// A tenant's stage rules (JSON of `domain::stages::StoredStageRules`).
    #[derive(Clone, Debug, PartialEq, Eq, DeriveEntityModel)]
    #[sea_orm(table_name = "stage_ruleset")]
    pub struct Model {
        #[sea_orm(primary_key, auto_increment = false)]
        pub tenant_id: String,
        pub version: i32,
        pub definition: String,
        pub updated_at: DateTimeUtc,
    }

    #[derive(Copy, Clone, Debug, EnumIter, DeriveRelation)]
    pub enum Relation {}

    impl ActiveModelBehavior for ActiveModel {}
}

pub mod lead_outcome {
    use sea_orm::entity::prelude::*;

    /// How a handed-off lead ended: won (with the amount) or lost, and when.
    #[derive(Clone, Debug, PartialEq, Eq, DeriveEntityModel)]
    #[sea_orm(table_name = "lead_outcome")]
    pub struct Model {
        #[sea_orm(primary_key, auto_increment = false)]
        pub tenant_id: String,
        #[sea_orm(primary_key, auto_increment = false)]
        pub lead_id: String,
        pub won: bool,
        pub amount_currency: Option<String>,
        pub amount_minor: Option<i64>,
        pub closed_at: DateTimeUtc,
    }

    #[derive(Copy, Clone, Debug, EnumIter, DeriveRelation)]
    pub enum Relation {}

    impl ActiveModelBehavior for ActiveModel {}
}
