//! sea-orm entities of nurture's tables.

pub mod sequence {
    use sea_orm::entity::prelude::*;

    /// One version of a sequence; the definition is the domain's JSON.
    #[derive(Clone, Debug, PartialEq, Eq, DeriveEntityModel)]
    #[sea_orm(table_name = "sequence")]
    pub struct Model {
        #[sea_orm(primary_key)]
        pub seq: i64,
        pub sequence_id: String,
        pub tenant_id: String,
        pub key: String,
        pub version: i32,
        pub name: String,
        pub state: i32,
        pub trigger: String,
        pub lead_magnet: String,
        pub definition: String,
        pub created_at: DateTimeUtc,
        pub updated_at: DateTimeUtc,
    }

    #[derive(Copy, Clone, Debug, EnumIter, DeriveRelation)]
    pub enum Relation {}

    impl ActiveModelBehavior for ActiveModel {}
}

pub mod enrollment {
    use sea_orm::entity::prelude::*;

    #[derive(Clone, Debug, PartialEq, Eq, DeriveEntityModel)]
    #[sea_orm(table_name = "enrollment")]
    pub struct Model {
        #[sea_orm(primary_key)]
        pub seq: i64,
        pub enrollment_id: String,
        pub tenant_id: String,
        pub lead_id: String,
        pub sequence_id: String,
        pub sequence_key: String,
        pub sequence_version: i32,
        pub state: i32,
        pub next_step: i32,
        pub next_step_due_at: Option<DateTimeUtc>,
        /// Set when something the enrolment waits on happened (an open, a click, a reply, a
        /// stage): the scheduler looks at its goals and branch before the step is due.
        pub wake_at: Option<DateTimeUtc>,
        /// It sleeps at a branch (an open, click or reply moves it on at once), not in a wait.
        pub waits_on_branch: bool,
        /// A scheduler holds it until then (claims survive restarts: the lease runs out).
        pub lease_until: Option<DateTimeUtc>,
        pub enrolled_at: DateTimeUtc,
        pub enrolled_by: String,
        pub request_id: Option<String>,
        pub exit_reason: i32,
        pub ended_at: Option<DateTimeUtc>,
        pub last_sent_touch_id: Option<String>,
        pub last_sent_at: Option<DateTimeUtc>,
        /// Soft-bounce attempts of the current step.
        pub attempts: i32,
        pub updated_at: DateTimeUtc,
    }

    #[derive(Copy, Clone, Debug, EnumIter, DeriveRelation)]
    pub enum Relation {}

    impl ActiveModelBehavior for ActiveModel {}
}

pub mod touch {
    use sea_orm::entity::prelude::*;

    #[derive(Clone, Debug, PartialEq, Eq, DeriveEntityModel)]
    #[sea_orm(table_name = "touch")]
    pub struct Model {
        #[sea_orm(primary_key)]
        pub seq: i64,
        pub touch_id: String,
        pub tenant_id: String,
        pub lead_id: String,
        pub enrollment_id: String,
        pub sequence_key: String,
        pub step_id: String,
        pub kind: i32,
        pub at: DateTimeUtc,
        pub skip_reason: String,
        pub bounce: String,
        pub detail: String,
        pub url: String,
        pub machine_reason: Option<String>,
        pub message_id: String,
        pub retry_at: Option<DateTimeUtc>,
        /// For a sent mail: its tracked links, a JSON array (the only places a click redirects to).
        pub links: String,
        /// For opens, clicks and unsubscribes: the sent touch they belong to.
        pub sent_touch_id: Option<String>,
        /// For clicks: which link.
        pub link_index: Option<i32>,
    }

    #[derive(Copy, Clone, Debug, EnumIter, DeriveRelation)]
    pub enum Relation {}

    impl ActiveModelBehavior for ActiveModel {}
}

pub mod lead {
    use sea_orm::entity::prelude::*;

    /// Nurture's replica of what it needs of a lead, from capture's and qualification's events.
    #[derive(Clone, Debug, PartialEq, Eq, DeriveEntityModel)]
    #[sea_orm(table_name = "nurture_lead")]
    pub struct Model {
        #[sea_orm(primary_key)]
        pub seq: i64,
        pub tenant_id: String,
        pub lead_id: String,
        pub email: String,
        pub first_name: String,
        pub last_name: String,
        pub company_name: String,
        pub title: String,
        pub role: String,
        pub department: String,
        pub industry: String,
        pub employees: Option<i64>,
        pub revenue_minor: Option<i64>,
        pub revenue_currency: String,
        pub country: String,
        pub region: String,
        pub channel: String,
        pub rank: i32,
        /// As of the lead's last stage change (qualification's StageChanged carries it).
        pub score: i64,
        pub time_zone: String,
        pub opted_in: bool,
        pub unsubscribed: bool,
        pub do_not_contact: bool,
        pub hard_bounced: bool,
        pub erased: bool,
        pub merged_into: Option<String>,
        pub lead_magnet: String,
        pub stage: i32,
        pub stage_reason: String,
        pub stage_changed_at: Option<DateTimeUtc>,
        pub replied_at: Option<DateTimeUtc>,
        pub meeting_booked_at: Option<DateTimeUtc>,
        pub updated_at: DateTimeUtc,
    }

    #[derive(Copy, Clone, Debug, EnumIter, DeriveRelation)]
    pub enum Relation {}

    impl ActiveModelBehavior for ActiveModel {}
}

pub mod settings {
    use sea_orm::entity::prelude::*;

    /// One version of a tenant's nurture settings (the domain's JSON).
    #[derive(Clone, Debug, PartialEq, Eq, DeriveEntityModel)]
    #[sea_orm(table_name = "nurture_settings")]
    pub struct Model {
        #[sea_orm(primary_key)]
        pub seq: i64,
        pub tenant_id: String,
        pub version: i32,
        pub body: String,
        pub updated_at: DateTimeUtc,
    }

    #[derive(Copy, Clone, Debug, EnumIter, DeriveRelation)]
    pub enum Relation {}

    impl ActiveModelBehavior for ActiveModel {}
}

pub mod activity_outbox {
    use sea_orm::entity::prelude::*;

    /// An activity to record in capture (delivered, bounced, opened, clicked, unsubscribed),
    /// written with the touch it comes from; the relay sends it and deletes it.
    #[derive(Clone, Debug, PartialEq, Eq, DeriveEntityModel)]
    #[sea_orm(table_name = "activity_outbox")]
    pub struct Model {
        #[sea_orm(primary_key)]
        pub seq: i64,
        pub tenant_id: String,
        pub idempotency_key: String,
        pub lead_id: String,
        pub kind: i32,
        pub occurred_at: DateTimeUtc,
        pub subject: String,
        pub url: String,
        pub machine_reason: Option<String>,
        pub attempts: i32,
        pub next_attempt_at: DateTimeUtc,
        pub last_error: String,
    }

    #[derive(Copy, Clone, Debug, EnumIter, DeriveRelation)]
    pub enum Relation {}

    impl ActiveModelBehavior for ActiveModel {}
}

pub mod lead_activity {
    use sea_orm::entity::prelude::*;

    /// A lead's own activities (not machine-made), for segments' behaviour and interests.
    #[derive(Clone, Debug, PartialEq, Eq, DeriveEntityModel)]
    #[sea_orm(table_name = "lead_activity")]
    pub struct Model {
        #[sea_orm(primary_key)]
        pub seq: i64,
        pub tenant_id: String,
        pub lead_id: String,
        pub kind: i32,
        pub page_kind: i32,
        pub subject: String,
        pub occurred_at: DateTimeUtc,
    }

    #[derive(Copy, Clone, Debug, EnumIter, DeriveRelation)]
    pub enum Relation {}

    impl ActiveModelBehavior for ActiveModel {}
}

pub mod segment {
    use sea_orm::entity::prelude::*;

    /// One version of a segment (the domain's JSON).
    #[derive(Clone, Debug, PartialEq, Eq, DeriveEntityModel)]
    #[sea_orm(table_name = "segment")]
    pub struct Model {
        #[sea_orm(primary_key)]
        pub seq: i64,
        pub segment_id: String,
        pub tenant_id: String,
        pub key: String,
        pub version: i32,
        pub name: String,
        pub definition: String,
        pub created_at: DateTimeUtc,
    }

    #[derive(Copy, Clone, Debug, EnumIter, DeriveRelation)]
    pub enum Relation {}

    impl ActiveModelBehavior for ActiveModel {}
}
