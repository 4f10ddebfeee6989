//! sea-orm entities of the event tables (`event_outbox` is only written and relayed with SQL).

pub mod event_log {
    use sea_orm::entity::prelude::*;

    /// One event in a producer's log.
    #[derive(Clone, Debug, PartialEq, Eq, DeriveEntityModel)]
    #[sea_orm(table_name = "event_log")]
    pub struct Model {
        #[sea_orm(primary_key)]
        pub position: i64,
        #[sea_orm(unique)]
        pub event_id: String,
        pub tenant_id: String,
        pub aggregate_id: String,
        pub type_url: String,
        pub payload: Vec<u8>,
        pub traceparent: String,
        pub tracestate: String,
        pub recorded_at: DateTimeUtc,
    }

    #[derive(Copy, Clone, Debug, EnumIter, DeriveRelation)]
    pub enum Relation {}

    impl ActiveModelBehavior for ActiveModel {}
}

pub mod event_cursor {
    use sea_orm::entity::prelude::*;

    /// How far a consumer has applied one source's log.
    #[derive(Clone, Debug, PartialEq, Eq, DeriveEntityModel)]
    #[sea_orm(table_name = "event_cursor")]
    pub struct Model {
        #[sea_orm(primary_key, auto_increment = false)]
        pub source: String,
        pub position: i64,
        pub updated_at: DateTimeUtc,
        /// The epoch of the source's log the position belongs to (empty until first learnt).
        pub epoch: String,
        /// The id of the event at `position` (empty at 0).
        pub last_event_id: String,
    }

    #[derive(Copy, Clone, Debug, EnumIter, DeriveRelation)]
    pub enum Relation {}

    impl ActiveModelBehavior for ActiveModel {}
}

pub mod event_dead_letter {
    use sea_orm::entity::prelude::*;

    /// An event a consumer could never apply (it is skipped, and kept here for an operator).
    #[derive(Clone, Debug, PartialEq, Eq, DeriveEntityModel)]
    #[sea_orm(table_name = "event_dead_letter")]
    pub struct Model {
        #[sea_orm(primary_key)]
        pub id: i64,
        pub source: String,
        pub position: i64,
        pub event_id: String,
        pub type_url: String,
        pub error: String,
        pub created_at: DateTimeUtc,
        /// The event as received (encoded `baton.events.v1.Event`); empty for rows older than
        /// the column.
        pub event: Option<Vec<u8>>,
        /// How many times it failed before it was dead-lettered.
        pub attempts: i32,
        /// When a replay applied it.
        pub replayed_at: Option<DateTimeUtc>,
        /// The event's tenant.
        pub tenant_id: String,
    }

    #[derive(Copy, Clone, Debug, EnumIter, DeriveRelation)]
    pub enum Relation {}

    impl ActiveModelBehavior for ActiveModel {}
}

pub mod event_log_identity {
    use sea_orm::entity::prelude::*;

    /// The identity of a producer's log: one row, made when the log is first used. A log that was
    /// reset or replaced by another database has another epoch.
    #[derive(Clone, Debug, PartialEq, Eq, DeriveEntityModel)]
    #[sea_orm(table_name = "event_log_identity")]
    pub struct Model {
        #[sea_orm(primary_key, auto_increment = false)]
        pub id: i32,
        pub epoch: String,
        pub created_at: DateTimeUtc,
    }

    #[derive(Copy, Clone, Debug, EnumIter, DeriveRelation)]
    pub enum Relation {}

    impl ActiveModelBehavior for ActiveModel {}
}
