//! sea-orm entities of nurture's tables.

pub mod sequence {
    use sea_orm::entity::prelude::*;

    #[derive(Clone, Debug, PartialEq, Eq, DeriveEntityModel)]
    #[sea_orm(table_name = "sequence")]
    pub struct Model {
        #[sea_orm(primary_key)]
        pub seq: i64,
        pub sequence_id: String,
        pub tenant_id: String,
        pub key: String,
        pub name: String,
        pub created_at: DateTimeUtc,
    }

    #[derive(Copy, Clone, Debug, EnumIter, DeriveRelation)]
    pub enum Relation {}

    impl ActiveModelBehavior for ActiveModel {}
}

pub mod sequence_step {
    use sea_orm::entity::prelude::*;

    #[derive(Clone, Debug, PartialEq, Eq, DeriveEntityModel)]
    #[sea_orm(table_name = "sequence_step")]
    pub struct Model {
        #[sea_orm(primary_key)]
        pub seq: i64,
        pub sequence_id: String,
        pub position: i32,
        pub template: String,
        pub delay_hours: i32,
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
        pub state: i32,
        pub next_step: i32,
        pub next_step_due_at: Option<DateTimeUtc>,
        pub enrolled_at: DateTimeUtc,
    }

    #[derive(Copy, Clone, Debug, EnumIter, DeriveRelation)]
    pub enum Relation {}

    impl ActiveModelBehavior for ActiveModel {}
}
