//! sea-orm entities of distribution's tables.

pub mod rep {
    use sea_orm::entity::prelude::*;

    #[derive(Clone, Debug, PartialEq, DeriveEntityModel)]
    #[sea_orm(table_name = "rep")]
    pub struct Model {
        /// Queue position for round robin.
        #[sea_orm(primary_key)]
        pub seq: i64,
        pub rep_id: String,
        pub tenant_id: String,
        pub request_id: String,
        pub name: String,
        pub email: String,
        pub email_normalized: String,
        pub active: bool,
        pub created_at: DateTimeUtc,
        pub team_id: String,
        /// JSON of the rep's other routing attributes (territories, industries, seniority,
        /// working hours, out-of-office periods).
        pub routing: String,
        pub capacity: i32,
        #[sea_orm(column_type = "Double")]
        pub weight: f64,
        #[sea_orm(column_type = "Double")]
        pub wrr_counter: f64,
        pub was_available: bool,
        /// Open (assigned) leads, moved with every assignment that opens or closes.
        pub open_leads: i64,
        /// Performance factor (weight = weight × factor), applied only while `perf_team` is
        /// the rep's team.
        #[sea_orm(column_type = "Double")]
        pub perf_factor: f64,
        pub perf_team: String,
        /// The `rep_weight_change` that set the factor (0 = never changed).
        pub perf_change_id: i64,
        /// The factor when the rep's current weighting period began, and when that was.
        #[sea_orm(column_type = "Double")]
        pub perf_period_factor: f64,
        pub perf_period_start: Option<DateTimeUtc>,
    }

    #[derive(Copy, Clone, Debug, EnumIter, DeriveRelation)]
    pub enum Relation {}

    impl ActiveModelBehavior for ActiveModel {}

    impl Model {
        /// The rep's routing attributes besides team, capacity and weight (stored as JSON; a row
        /// that fails to parse reads as none).
        pub fn attributes(&self) -> crate::domain::reps::RepAttributes {
            serde_json::from_str(&self.routing).unwrap_or_default()
        }

        /// Whether the performance factor on the row is the team's (set by the weighting of the
        /// team the rep is on now).
        pub fn weighted_by_team(&self) -> bool {
            !self.perf_team.is_empty() && self.perf_team == self.team_id
        }

        /// The performance factor routing applies: 1 unless the rep's team set one.
        pub fn performance_factor(&self) -> f64 {
            if self.weighted_by_team() {
                self.perf_factor
            } else {
                1.0
            }
        }
    }
}

pub mod assignment {
    use sea_orm::entity::prelude::*;

    #[derive(Clone, Debug, PartialEq, Eq, DeriveEntityModel)]
    #[sea_orm(table_name = "assignment")]
    pub struct Model {
        #[sea_orm(primary_key)]
        pub seq: i64,
        pub assignment_id: String,
        pub tenant_id: String,
        pub lead_id: String,
        pub rep_id: Option<String>,
        pub state: i32,
        pub method: String,
        pub created_at: DateTimeUtc,
        pub assigned_at: Option<DateTimeUtc>,
        pub team_id: String,
        pub rule_key: String,
        pub rules_version: i32,
        /// JSON list of the candidates considered.
        pub explanation: String,
        pub closed_at: Option<DateTimeUtc>,
    }

    #[derive(Copy, Clone, Debug, EnumIter, DeriveRelation)]
    pub enum Relation {}

    impl ActiveModelBehavior for ActiveModel {}
}

pub mod rotation {
    use sea_orm::entity::prelude::*;

    /// Where the tenant's round robin stands: the queue position of the rep assigned last.
    #[derive(Clone, Debug, PartialEq, Eq, DeriveEntityModel)]
    #[sea_orm(table_name = "rotation")]
    pub struct Model {
        #[sea_orm(primary_key, auto_increment = false)]
        pub tenant_id: String,
        pub last_rep_seq: i64,
    }

    #[derive(Copy, Clone, Debug, EnumIter, DeriveRelation)]
    pub enum Relation {}

    impl ActiveModelBehavior for ActiveModel {}
}

pub mod contract_replica {
    use sea_orm::entity::prelude::*;

    /// The active contract of a team pair, as reporting last announced it.
    #[derive(Clone, Debug, PartialEq, Eq, DeriveEntityModel)]
    #[sea_orm(table_name = "contract_replica")]
    pub struct Model {
        #[sea_orm(primary_key, auto_increment = false)]
        pub tenant_id: String,
        #[sea_orm(primary_key, auto_increment = false)]
        pub is_team: String,
        #[sea_orm(primary_key, auto_increment = false)]
        pub fs_team: String,
        pub contract_id: String,
        pub version: i32,
        /// Protobuf-encoded `baton.reporting.v1.ContractTerms`.
        pub terms: Vec<u8>,
        pub activated_at: DateTimeUtc,
    }

    #[derive(Copy, Clone, Debug, EnumIter, DeriveRelation)]
    pub enum Relation {}

    impl ActiveModelBehavior for ActiveModel {}
}

pub mod lead_signal {
    use sea_orm::entity::prelude::*;

    /// A lead's score, stage and rank as last heard from qualification.
    #[derive(Clone, Debug, PartialEq, Eq, DeriveEntityModel)]
    #[sea_orm(table_name = "lead_signal")]
    pub struct Model {
        #[sea_orm(primary_key, auto_increment = false)]
        pub tenant_id: String,
        #[sea_orm(primary_key, auto_increment = false)]
        pub lead_id: String,
        pub score: Option<i64>,
        pub stage: Option<i32>,
        pub rank: Option<i32>,
        pub updated_at: DateTimeUtc,
        /// JSON object of profile fields routing conditions read ("company.country" → "JP").
        pub fields: String,
    }

    #[derive(Copy, Clone, Debug, EnumIter, DeriveRelation)]
    pub enum Relation {}

    impl ActiveModelBehavior for ActiveModel {}
}

pub mod handoff {
    use sea_orm::entity::prelude::*;

    #[derive(Clone, Debug, PartialEq, Eq, DeriveEntityModel)]
    #[sea_orm(table_name = "handoff")]
    pub struct Model {
        #[sea_orm(primary_key)]
        pub seq: i64,
        pub handoff_id: String,
        pub tenant_id: String,
        pub request_id: String,
        pub lead_id: String,
        pub is_team: String,
        pub fs_team: String,
        pub fs_rep_id: String,
        pub meeting_at: Option<DateTimeUtc>,
        pub bant_budget: bool,
        pub bant_authority: bool,
        pub bant_need: bool,
        pub bant_timeframe: bool,
        pub notes: String,
        pub handed_off_by: String,
        /// `HandoffState` value.
        pub state: i32,
        pub contract_id: String,
        pub contract_version: i32,
        pub decision_due_at: DateTimeUtc,
        pub rejection_reason: String,
        pub rejected_lead_route: String,
        pub amount_currency: Option<String>,
        pub amount_minor: Option<i64>,
        pub mrr_currency: Option<String>,
        pub mrr_minor: Option<i64>,
        /// How long FS had left to decide when it rejected (resumed if the rejection is overturned).
        pub decision_left_seconds: Option<i64>,
        /// The lead's score and rank (`Rank` value) when the handoff was judged.
        pub score_at_handoff: Option<i64>,
        pub rank_at_handoff: Option<i32>,
        /// The IS rep whose assignment held the lead at handoff ("" for older handoffs).
        pub is_rep_id: String,
        pub closed_at: Option<DateTimeUtc>,
        pub lost_reason: String,
        pub created_at: DateTimeUtc,
        pub updated_at: DateTimeUtc,
    }

    #[derive(Copy, Clone, Debug, EnumIter, DeriveRelation)]
    pub enum Relation {}

    impl ActiveModelBehavior for ActiveModel {}
}

pub mod handoff_step {
    use sea_orm::entity::prelude::*;

    #[derive(Clone, Debug, PartialEq, Eq, DeriveEntityModel)]
    #[sea_orm(table_name = "handoff_step")]
    pub struct Model {
        #[sea_orm(primary_key)]
        pub seq: i64,
        pub tenant_id: String,
        pub handoff_id: String,
        pub action: String,
        pub actor: String,
        pub note: String,
        pub at: DateTimeUtc,
    }

    #[derive(Copy, Clone, Debug, EnumIter, DeriveRelation)]
    pub enum Relation {}

    impl ActiveModelBehavior for ActiveModel {}
}

pub mod handoff_refusal {
    use sea_orm::entity::prelude::*;

    /// How many handoffs the gate refused, per team pair and contract version.
    #[derive(Clone, Debug, PartialEq, Eq, DeriveEntityModel)]
    #[sea_orm(table_name = "handoff_refusal")]
    pub struct Model {
        #[sea_orm(primary_key, auto_increment = false)]
        pub tenant_id: String,
        #[sea_orm(primary_key, auto_increment = false)]
        pub is_team: String,
        #[sea_orm(primary_key, auto_increment = false)]
        pub fs_team: String,
        #[sea_orm(primary_key, auto_increment = false)]
        pub contract_version: i32,
        pub refusals: i64,
        pub last_refused_at: DateTimeUtc,
    }

    #[derive(Copy, Clone, Debug, EnumIter, DeriveRelation)]
    pub enum Relation {}

    impl ActiveModelBehavior for ActiveModel {}
}

pub mod team {
    use sea_orm::entity::prelude::*;

    #[derive(Clone, Debug, PartialEq, Eq, DeriveEntityModel)]
    #[sea_orm(table_name = "team")]
    pub struct Model {
        #[sea_orm(primary_key, auto_increment = false)]
        pub tenant_id: String,
        #[sea_orm(primary_key, auto_increment = false)]
        pub team_id: String,
        pub name: String,
        /// `TeamFunction` value.
        pub function: i32,
        /// `RoutingMethod` value.
        pub method: i32,
        pub created_at: DateTimeUtc,
    }

    #[derive(Copy, Clone, Debug, EnumIter, DeriveRelation)]
    pub enum Relation {}

    impl ActiveModelBehavior for ActiveModel {}
}

pub mod team_rotation {
    use sea_orm::entity::prelude::*;

    #[derive(Clone, Debug, PartialEq, Eq, DeriveEntityModel)]
    #[sea_orm(table_name = "team_rotation")]
    pub struct Model {
        #[sea_orm(primary_key, auto_increment = false)]
        pub tenant_id: String,
        #[sea_orm(primary_key, auto_increment = false)]
        pub team_id: String,
        pub last_rep_seq: i64,
    }

    #[derive(Copy, Clone, Debug, EnumIter, DeriveRelation)]
    pub enum Relation {}

    impl ActiveModelBehavior for ActiveModel {}
}

pub mod routing_ruleset {
    use sea_orm::entity::prelude::*;

    #[derive(Clone, Debug, PartialEq, Eq, DeriveEntityModel)]
    #[sea_orm(table_name = "routing_ruleset")]
    pub struct Model {
        #[sea_orm(primary_key, auto_increment = false)]
        pub tenant_id: String,
        pub version: i32,
        /// JSON of `domain::routing::Rules`.
        pub definition: String,
        pub updated_at: DateTimeUtc,
    }

    #[derive(Copy, Clone, Debug, EnumIter, DeriveRelation)]
    pub enum Relation {}

    impl ActiveModelBehavior for ActiveModel {}
}

pub mod sla_timer {
    use sea_orm::entity::prelude::*;

    #[derive(Clone, Debug, PartialEq, Eq, DeriveEntityModel)]
    #[sea_orm(table_name = "sla_timer")]
    pub struct Model {
        #[sea_orm(primary_key)]
        pub seq: i64,
        pub timer_id: String,
        pub tenant_id: String,
        /// `SlaKind` value.
        pub kind: i32,
        /// Assignment id (response) or handoff id (decision).
        pub subject_id: String,
        pub lead_id: String,
        pub rep_id: String,
        pub due_at: DateTimeUtc,
        pub escalation: String,
        pub notify: String,
        pub created_at: DateTimeUtc,
        pub fired_at: Option<DateTimeUtc>,
        pub resolved_at: Option<DateTimeUtc>,
    }

    #[derive(Copy, Clone, Debug, EnumIter, DeriveRelation)]
    pub enum Relation {}

    impl ActiveModelBehavior for ActiveModel {}
}

pub mod touch_ruleset {
    use sea_orm::entity::prelude::*;

    #[derive(Clone, Debug, PartialEq, Eq, DeriveEntityModel)]
    #[sea_orm(table_name = "touch_ruleset")]
    pub struct Model {
        #[sea_orm(primary_key, auto_increment = false)]
        pub tenant_id: String,
        pub version: i32,
        /// JSON of `domain::touches::TouchRules`.
        pub definition: String,
        pub updated_at: DateTimeUtc,
    }

    #[derive(Copy, Clone, Debug, EnumIter, DeriveRelation)]
    pub enum Relation {}

    impl ActiveModelBehavior for ActiveModel {}
}

pub mod lead_record {
    use sea_orm::entity::prelude::*;

    /// What a handoff checks of its lead: qualification's BANT record (bits: 1 budget,
    /// 2 authority, 4 need, 8 timeframe) and capture's erasure or merge.
    #[derive(Clone, Debug, PartialEq, Eq, DeriveEntityModel)]
    #[sea_orm(table_name = "lead_record")]
    pub struct Model {
        #[sea_orm(primary_key, auto_increment = false)]
        pub tenant_id: String,
        #[sea_orm(primary_key, auto_increment = false)]
        pub lead_id: String,
        pub bant: i32,
        pub bant_recorded_at: Option<DateTimeUtc>,
        pub erased_at: Option<DateTimeUtc>,
        /// The survivor this lead was merged into.
        pub merged_into: Option<String>,
        pub updated_at: DateTimeUtc,
    }

    #[derive(Copy, Clone, Debug, EnumIter, DeriveRelation)]
    pub enum Relation {}

    impl ActiveModelBehavior for ActiveModel {}
}

pub mod handoff_settings {
    use sea_orm::entity::prelude::*;

    /// The tenant's handoff settings (every change adds one to the version).
    #[derive(Clone, Debug, PartialEq, Eq, DeriveEntityModel)]
    #[sea_orm(table_name = "handoff_settings")]
    pub struct Model {
        #[sea_orm(primary_key, auto_increment = false)]
        pub tenant_id: String,
        pub version: i32,
        /// A handoff between teams with no contract in force is taken (ungated, no decision SLA).
        pub allow_uncontracted: bool,
        pub updated_at: DateTimeUtc,
    }

    #[derive(Copy, Clone, Debug, EnumIter, DeriveRelation)]
    pub enum Relation {}

    impl ActiveModelBehavior for ActiveModel {}
}

pub mod team_weighting {
    use sea_orm::entity::prelude::*;

    /// A team's performance weighting (every change adds one to the version).
    #[derive(Clone, Debug, PartialEq, Eq, DeriveEntityModel)]
    #[sea_orm(table_name = "team_weighting")]
    pub struct Model {
        #[sea_orm(primary_key, auto_increment = false)]
        pub tenant_id: String,
        #[sea_orm(primary_key, auto_increment = false)]
        pub team_id: String,
        pub version: i32,
        pub enabled: bool,
        /// A `WeightBasis` value.
        pub basis: i32,
        /// JSON of `domain::weighting::Guardrails`.
        pub guardrails: String,
        pub reason: String,
        pub updated_by: String,
        pub updated_at: DateTimeUtc,
    }

    #[derive(Copy, Clone, Debug, EnumIter, DeriveRelation)]
    pub enum Relation {}

    impl ActiveModelBehavior for ActiveModel {}

    impl Model {
        /// The guardrails (a row that fails to parse reads as the defaults).
        pub fn guardrails(&self) -> crate::domain::weighting::Guardrails {
            serde_json::from_str(&self.guardrails).unwrap_or_default()
        }
    }
}

pub mod rep_weight_change {
    use sea_orm::entity::prelude::*;

    /// One move of a rep's performance factor, with where it came from.
    #[derive(Clone, Debug, PartialEq, DeriveEntityModel)]
    #[sea_orm(table_name = "rep_weight_change")]
    pub struct Model {
        #[sea_orm(primary_key)]
        pub change_id: i64,
        pub tenant_id: String,
        pub team_id: String,
        pub rep_id: String,
        #[sea_orm(column_type = "Double")]
        pub old_factor: f64,
        #[sea_orm(column_type = "Double")]
        pub new_factor: f64,
        /// JSON of `domain::weighting::Origin`.
        pub origin: String,
        pub changed_by: String,
        pub at: DateTimeUtc,
    }

    #[derive(Copy, Clone, Debug, EnumIter, DeriveRelation)]
    pub enum Relation {}

    impl ActiveModelBehavior for ActiveModel {}
}
