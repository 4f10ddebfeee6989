//! sea-orm entities of distribution's tables.

pub mod rep {
    use sea_orm::entity::prelude::*;

    #[derive(Clone, Debug, PartialEq, Eq, DeriveEntityModel)]
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
    }

    #[derive(Copy, Clone, Debug, EnumIter, DeriveRelation)]
    pub enum Relation {}

    impl ActiveModelBehavior for ActiveModel {}
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
