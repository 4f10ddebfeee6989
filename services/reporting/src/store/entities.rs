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
