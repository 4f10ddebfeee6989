//! Each rep keeps its count of open (assigned) leads, moved with every assignment that opens or
//! closes, instead of counting assignments at every routing decision (which grew with the number
//! of open leads and dominated a decision's cost).

use sea_orm_migration::{prelude::*, schema::*};

#[derive(DeriveMigrationName)]
pub struct Migration;

#[async_trait::async_trait]
impl MigrationTrait for Migration {
    async fn up(&self, manager: &SchemaManager) -> Result<(), DbErr> {
        manager
            .alter_table(
                Table::alter()
                    .table("rep")
                    .add_column(big_integer("open_leads").default(0))
                    .to_owned(),
            )
            .await?;
        manager
            .get_connection()
            .execute_unprepared(&format!(
                "UPDATE rep SET open_leads = (SELECT COUNT(*) FROM assignment a \
                 WHERE a.tenant_id = rep.tenant_id AND a.rep_id = rep.rep_id AND a.state = {})",
                baton_proto::distribution::v1::AssignmentState::Assigned as i32
            ))
            .await?;
        Ok(())
    }

    async fn down(&self, manager: &SchemaManager) -> Result<(), DbErr> {
        manager
            .alter_table(
                Table::alter()
                    .table("rep")
                    .drop_column("open_leads")
                    .to_owned(),
            )
            .await
    }
}
