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

    /// A lead's dimensions: those of its capture (source, content, company), and those that change
    /// over its life (rank, team, rep), as they are now. `captured_at` null: a fact about the lead
    /// arrived before its capture. The row is the lock every fact of the lead takes.
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
        pub lead_magnet: String,
        pub funnel_position: String,
        pub industry: String,
        pub employee_band: String,
        pub country: String,
        pub rank: String,
        pub team: String,
        pub rep: String,
        /// The lead's earliest fact (capture or activity): where its sales cycle starts.
        pub first_touch_at: Option<DateTimeUtc>,
        /// Its qualification stage now ("lead", "mql", ...) and since when.
        pub stage: String,
        pub stage_since: Option<DateTimeUtc>,
        /// E-mail state bits (see `domain::email`).
        pub email_flags: i32,
        /// Its company matched the tenant's target-account condition when it was captured.
        pub target_account: bool,
        /// The rank before the last change, and when it changed.
        pub prev_rank: String,
        pub rank_since: Option<DateTimeUtc>,
        /// The team and rep before the last assignment, and when it happened.
        pub prev_team: String,
        pub prev_rep: String,
        pub team_since: Option<DateTimeUtc>,
    }

    #[derive(Copy, Clone, Debug, EnumIter, DeriveRelation)]
    pub enum Relation {}

    impl ActiveModelBehavior for ActiveModel {}
}

pub mod kpi_cube {
    use sea_orm::entity::prelude::*;

    /// A counter of one metric in one 15-minute slot for one group of dimension values (and one
    /// currency, for money; empty otherwise). The table's key is every column but `value` (see
    /// the migration); the entity names only its first three, as it is only ever inserted into
    /// (on conflict, added to) and filtered.
    #[derive(Clone, Debug, PartialEq, Eq, DeriveEntityModel)]
    #[sea_orm(table_name = "kpi_cube")]
    pub struct Model {
        #[sea_orm(primary_key, auto_increment = false)]
        pub tenant_id: String,
        #[sea_orm(primary_key, auto_increment = false)]
        pub metric: String,
        #[sea_orm(primary_key, auto_increment = false)]
        pub slot: DateTimeUtc,
        pub channel: String,
        pub campaign: String,
        pub lead_magnet: String,
        pub funnel_position: String,
        pub industry: String,
        pub employee_band: String,
        pub country: String,
        pub rank: String,
        pub team: String,
        pub rep: String,
        pub currency: String,
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
        /// The currency of a money fact; empty otherwise.
        pub currency: String,
    }

    #[derive(Copy, Clone, Debug, EnumIter, DeriveRelation)]
    pub enum Relation {}

    impl ActiveModelBehavior for ActiveModel {}
}

pub mod spend {
    use sea_orm::entity::prelude::*;

    /// One RecordSpend request (idempotent on its request id).
    #[derive(Clone, Debug, PartialEq, Eq, DeriveEntityModel)]
    #[sea_orm(table_name = "spend")]
    pub struct Model {
        #[sea_orm(primary_key, auto_increment = false)]
        pub tenant_id: String,
        #[sea_orm(primary_key, auto_increment = false)]
        pub request_id: String,
        pub channel: String,
        pub campaign: String,
        pub start_day: String,
        pub end_day: String,
        pub currency: String,
        pub amount_minor: i64,
        pub recorded_by: String,
        pub recorded_at: DateTimeUtc,
    }

    #[derive(Copy, Clone, Debug, EnumIter, DeriveRelation)]
    pub enum Relation {}

    impl ActiveModelBehavior for ActiveModel {}
}

pub mod spend_day {
    use sea_orm::entity::prelude::*;

    /// Spend of one channel and campaign on one calendar day (`YYYY-MM-DD`), in minor units.
    #[derive(Clone, Debug, PartialEq, Eq, DeriveEntityModel)]
    #[sea_orm(table_name = "spend_day")]
    pub struct Model {
        #[sea_orm(primary_key, auto_increment = false)]
        pub tenant_id: String,
        #[sea_orm(primary_key, auto_increment = false)]
        pub day: String,
        #[sea_orm(primary_key, auto_increment = false)]
        pub channel: String,
        #[sea_orm(primary_key, auto_increment = false)]
        pub campaign: String,
        #[sea_orm(primary_key, auto_increment = false)]
        pub currency: String,
        pub amount_minor: i64,
    }

    #[derive(Copy, Clone, Debug, EnumIter, DeriveRelation)]
    pub enum Relation {}

    impl ActiveModelBehavior for ActiveModel {}
}

pub mod customer {
    use sea_orm::entity::prelude::*;

    /// A won lead is a customer, with its monthly recurring revenue, until it churns.
    #[derive(Clone, Debug, PartialEq, Eq, DeriveEntityModel)]
    #[sea_orm(table_name = "customer")]
    pub struct Model {
        #[sea_orm(primary_key, auto_increment = false)]
        pub tenant_id: String,
        #[sea_orm(primary_key, auto_increment = false)]
        pub lead_id: String,
        pub opened_at: DateTimeUtc,
        pub mrr_currency: String,
        pub mrr_minor: i64,
        pub churned_at: Option<DateTimeUtc>,
        pub churn_reason: String,
        pub churn_key: String,
    }

    #[derive(Copy, Clone, Debug, EnumIter, DeriveRelation)]
    pub enum Relation {}

    impl ActiveModelBehavior for ActiveModel {}
}

pub mod plan {
    use sea_orm::entity::prelude::*;

    /// One version of a plan: its inputs and every number derived from them (encoded protos).
    #[derive(Clone, Debug, PartialEq, Eq, DeriveEntityModel)]
    #[sea_orm(table_name = "plan")]
    pub struct Model {
        #[sea_orm(primary_key, auto_increment = false)]
        pub tenant_id: String,
        #[sea_orm(primary_key, auto_increment = false)]
        pub plan_id: String,
        #[sea_orm(primary_key, auto_increment = false)]
        pub version: i32,
        pub request_id: String,
        pub name: String,
        pub start_time: DateTimeUtc,
        pub end_time: DateTimeUtc,
        pub time_zone: String,
        pub inputs: Vec<u8>,
        pub derived: Vec<u8>,
        pub created_by: String,
        pub created_at: DateTimeUtc,
    }

    #[derive(Copy, Clone, Debug, EnumIter, DeriveRelation)]
    pub enum Relation {}

    impl ActiveModelBehavior for ActiveModel {}
}

pub mod email_lead_slot {
    use sea_orm::entity::prelude::*;

    /// A lead e-mail reached in one way (`kind`) in one 15-minute slot, under its dimensions then.
    #[derive(Clone, Debug, PartialEq, Eq, DeriveEntityModel)]
    #[sea_orm(table_name = "email_lead_slot")]
    pub struct Model {
        #[sea_orm(primary_key, auto_increment = false)]
        pub tenant_id: String,
        #[sea_orm(primary_key, auto_increment = false)]
        pub kind: String,
        #[sea_orm(primary_key, auto_increment = false)]
        pub slot: DateTimeUtc,
        #[sea_orm(primary_key, auto_increment = false)]
        pub lead_id: String,
        pub channel: String,
        pub campaign: String,
        pub lead_magnet: String,
        pub funnel_position: String,
        pub industry: String,
        pub employee_band: String,
        pub country: String,
        pub rank: String,
        pub team: String,
        pub rep: String,
        pub gap_seconds: i64,
    }

    #[derive(Copy, Clone, Debug, EnumIter, DeriveRelation)]
    pub enum Relation {}

    impl ActiveModelBehavior for ActiveModel {}
}

pub mod kpi_version {
    use sea_orm::entity::prelude::*;

    /// One version of a KPI's parameters for a tenant (version 1, the defaults, is not stored).
    #[derive(Clone, Debug, PartialEq, Eq, DeriveEntityModel)]
    #[sea_orm(table_name = "kpi_version")]
    pub struct Model {
        #[sea_orm(primary_key, auto_increment = false)]
        pub tenant_id: String,
        #[sea_orm(primary_key, auto_increment = false)]
        pub kpi: String,
        #[sea_orm(primary_key, auto_increment = false)]
        pub version: i32,
        pub parameters: String,
        pub updated_by: String,
        pub updated_at: DateTimeUtc,
    }

    #[derive(Copy, Clone, Debug, EnumIter, DeriveRelation)]
    pub enum Relation {}

    impl ActiveModelBehavior for ActiveModel {}
}

pub mod target_accounts {
    use sea_orm::entity::prelude::*;

    /// One version of a tenant's target-account condition (encoded `TargetAccounts`).
    #[derive(Clone, Debug, PartialEq, Eq, DeriveEntityModel)]
    #[sea_orm(table_name = "target_accounts")]
    pub struct Model {
        #[sea_orm(primary_key, auto_increment = false)]
        pub tenant_id: String,
        #[sea_orm(primary_key, auto_increment = false)]
        pub version: i32,
        pub rules: Vec<u8>,
    }

    #[derive(Copy, Clone, Debug, EnumIter, DeriveRelation)]
    pub enum Relation {}

    impl ActiveModelBehavior for ActiveModel {}
}

pub mod kpi_source {
    use sea_orm::entity::prelude::*;

    /// A counter of one metric for one source (channel, campaign) and currency, per UTC hour
    /// (`level` "h") or day ("d").
    #[derive(Clone, Debug, PartialEq, Eq, DeriveEntityModel)]
    #[sea_orm(table_name = "kpi_source")]
    pub struct Model {
        #[sea_orm(primary_key, auto_increment = false)]
        pub tenant_id: String,
        #[sea_orm(primary_key, auto_increment = false)]
        pub metric: String,
        #[sea_orm(primary_key, auto_increment = false)]
        pub level: String,
        #[sea_orm(primary_key, auto_increment = false)]
        pub at: DateTimeUtc,
        #[sea_orm(primary_key, auto_increment = false)]
        pub channel: String,
        #[sea_orm(primary_key, auto_increment = false)]
        pub campaign: String,
        #[sea_orm(primary_key, auto_increment = false)]
        pub currency: String,
        pub value: i64,
    }

    #[derive(Copy, Clone, Debug, EnumIter, DeriveRelation)]
    pub enum Relation {}

    impl ActiveModelBehavior for ActiveModel {}
}

pub mod won_deal {
    use sea_orm::entity::prelude::*;

    /// A win whose lead's first touch is known: its sales cycle, under the lead's dimensions.
    #[derive(Clone, Debug, PartialEq, Eq, DeriveEntityModel)]
    #[sea_orm(table_name = "won_deal")]
    pub struct Model {
        #[sea_orm(primary_key, auto_increment = false)]
        pub tenant_id: String,
        #[sea_orm(primary_key, auto_increment = false)]
        pub lead_id: String,
        #[sea_orm(primary_key, auto_increment = false)]
        pub won_at: DateTimeUtc,
        pub cycle_end: DateTimeUtc,
        /// -1 while the lead's first touch is unknown.
        pub cycle_seconds: i64,
        pub channel: String,
        pub campaign: String,
        pub lead_magnet: String,
        pub funnel_position: String,
        pub industry: String,
        pub employee_band: String,
        pub country: String,
        pub rank: String,
        pub team: String,
        pub rep: String,
    }

    #[derive(Copy, Clone, Debug, EnumIter, DeriveRelation)]
    pub enum Relation {}

    impl ActiveModelBehavior for ActiveModel {}
}

pub mod attainment_handoff {
    use sea_orm::entity::prelude::*;

    /// What attainment knows of one handoff under a contract: its period, its reps, and the facts
    /// its contribution to the numbers is computed from.
    #[derive(Clone, Debug, PartialEq, Eq, DeriveEntityModel)]
    #[sea_orm(table_name = "attainment_handoff")]
    pub struct Model {
        #[sea_orm(primary_key, auto_increment = false)]
        pub tenant_id: String,
        #[sea_orm(primary_key, auto_increment = false)]
        pub handoff_id: String,
        pub contract_id: String,
        pub lead_id: String,
        pub is_team: String,
        pub fs_team: String,
        pub created_at: DateTimeUtc,
        /// The lead's score and rank ("hot", …) when the handoff was judged.
        pub score_at_handoff: Option<i64>,
        pub rank_at_handoff: String,
        /// BANT at handoff: bits 1 budget, 2 authority, 4 need, 8 timeframe.
        pub bant: i32,
        /// Start of the contract period the handoff was created in.
        pub period_start: DateTimeUtc,
        /// Start of the period its contribution is counted in (a later one once its own period's
        /// scorecard is closed).
        pub counted_in: DateTimeUtc,
        pub is_rep: String,
        pub fs_rep: String,
        /// `domain::attainment::State` as stored (see `store::attainment`).
        pub state: i32,
        pub reason_code: String,
        pub decided_at: Option<DateTimeUtc>,
        pub decision_due_at: Option<DateTimeUtc>,
        /// 0 none, 1 human, 2 system.
        pub decision_breach: i32,
        pub ruled_at: Option<DateTimeUtc>,
        pub ruling_due_at: Option<DateTimeUtc>,
        pub ruling_breach: i32,
        pub amount_currency: Option<String>,
        pub amount_minor: Option<i64>,
        pub updated_at: DateTimeUtc,
    }

    #[derive(Copy, Clone, Debug, EnumIter, DeriveRelation)]
    pub enum Relation {}

    impl ActiveModelBehavior for ActiveModel {}
}

pub mod attainment_counter {
    use sea_orm::entity::prelude::*;

    /// A contract period's numbers for one IS rep and FS rep pair (`domain::attainment::Counts`).
    #[derive(Clone, Debug, PartialEq, Eq, DeriveEntityModel)]
    #[sea_orm(table_name = "attainment_counter")]
    pub struct Model {
        #[sea_orm(primary_key, auto_increment = false)]
        pub tenant_id: String,
        #[sea_orm(primary_key, auto_increment = false)]
        pub contract_id: String,
        #[sea_orm(primary_key, auto_increment = false)]
        pub period_start: DateTimeUtc,
        #[sea_orm(primary_key, auto_increment = false)]
        pub is_rep: String,
        #[sea_orm(primary_key, auto_increment = false)]
        pub fs_rep: String,
        pub handoffs: i64,
        pub accepted: i64,
        pub rejected: i64,
        pub rejected_final: i64,
        pub rejected_with_reason: i64,
        pub won: i64,
        pub lost: i64,
        pub won_amount_minor: i64,
        pub decisions_due: i64,
        pub decisions_in_time: i64,
        pub human_breaches: i64,
        pub system_breaches: i64,
        pub disputes_due: i64,
        pub disputes_in_time: i64,
    }

    #[derive(Copy, Clone, Debug, EnumIter, DeriveRelation)]
    pub enum Relation {}

    impl ActiveModelBehavior for ActiveModel {}
}

pub mod scorecard {
    use sea_orm::entity::prelude::*;

    /// A contract period's attainment frozen at close, with both owners' signatures.
    #[derive(Clone, Debug, PartialEq, Eq, DeriveEntityModel)]
    #[sea_orm(table_name = "scorecard")]
    pub struct Model {
        #[sea_orm(primary_key, auto_increment = false)]
        pub tenant_id: String,
        #[sea_orm(primary_key, auto_increment = false)]
        pub scorecard_id: String,
        pub contract_id: String,
        pub contract_version: i32,
        pub period_start: DateTimeUtc,
        pub period_end: DateTimeUtc,
        /// Protobuf-encoded `baton.reporting.v1.Attainment` as of the period's end.
        pub attainment: Vec<u8>,
        pub closed_at: DateTimeUtc,
        pub closed_by: String,
        pub is_signed_by: String,
        pub is_signed_at: Option<DateTimeUtc>,
        pub fs_signed_by: String,
        pub fs_signed_at: Option<DateTimeUtc>,
    }

    #[derive(Copy, Clone, Debug, EnumIter, DeriveRelation)]
    pub enum Relation {}

    impl ActiveModelBehavior for ActiveModel {}
}

pub mod scorecard_adjustment {
    use sea_orm::entity::prelude::*;

    /// A change that reached a closed period: which handoff, why, and where it was counted.
    #[derive(Clone, Debug, PartialEq, Eq, DeriveEntityModel)]
    #[sea_orm(table_name = "scorecard_adjustment")]
    pub struct Model {
        #[sea_orm(primary_key)]
        pub seq: i64,
        pub tenant_id: String,
        pub scorecard_id: String,
        pub handoff_id: String,
        pub cause: String,
        pub at: DateTimeUtc,
        pub counted_in: Option<DateTimeUtc>,
        /// The `domain::attainment::Counts` delta, comma-separated in `COUNT_NAMES` order.
        pub delta: String,
    }

    #[derive(Copy, Clone, Debug, EnumIter, DeriveRelation)]
    pub enum Relation {}

    impl ActiveModelBehavior for ActiveModel {}
}

pub mod journal_entry {
    use sea_orm::entity::prelude::*;

    /// One entry of a lead's journal (`domain::journal::Entry`).
    #[derive(Clone, Debug, PartialEq, Eq, DeriveEntityModel)]
    #[sea_orm(table_name = "journal_entry")]
    pub struct Model {
        #[sea_orm(primary_key)]
        pub seq: i64,
        pub tenant_id: String,
        pub lead_id: String,
        pub at: DateTimeUtc,
        pub service: String,
        pub kind: String,
        pub actor: String,
        /// `name=value` lines.
        pub details: String,
        pub recorded_at: DateTimeUtc,
    }

    #[derive(Copy, Clone, Debug, EnumIter, DeriveRelation)]
    pub enum Relation {}

    impl ActiveModelBehavior for ActiveModel {}
}
