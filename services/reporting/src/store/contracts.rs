//! Contract versions: drafts, both owners' approvals, activation (superseding the pair's previous
//! version) with `ContractActivated` in the same transaction.

use baton_proto::reporting::v1::{ContractActivated, ContractStatus, ContractTerms};
use baton_shared::{TenantId, contract, events::EventLog, time};
use prost::Message;
use sea_orm::{
    ActiveValue::{NotSet, Set},
    ConnectionTrait, DbErr, EntityTrait, QueryFilter, QueryOrder, TransactionTrait,
    prelude::*,
};

use super::{Store, entities::contract as row};

use crate::error::Error;

/// Rule name of every approval-blocking problem.
pub const RULE_CONTRACT_VALID: &str = "contract_valid";

async fn find<C: ConnectionTrait>(
    db: &C,
    tenant: &TenantId,
    contract_id: &str,
) -> Result<row::Model, Error> {
    row::Entity::find()
        .filter(row::Column::TenantId.eq(tenant.as_str()))
        .filter(row::Column::ContractId.eq(contract_id))
        .one(db)
        .await?
        .ok_or_else(|| Error::not_found("contract", contract_id))
}

fn draft_only(r: &row::Model) -> Result<(), Error> {
    if r.status == ContractStatus::Draft as i32 {
        Ok(())
    } else {
        Err(Error::RuleBroken {
            rule: "draft_only".into(),
            description: format!(
                "version {} is {}; create a new version instead",
                r.version,
                ContractStatus::try_from(r.status)
                    .unwrap_or(ContractStatus::Unspecified)
                    .as_str_name()
            ),
        })
    }
}

fn invalid(problems: Vec<contract::Problem>) -> Error {
    Error::RulesBroken(
        problems
            .into_iter()
            .map(|p| {
                (
                    RULE_CONTRACT_VALID.to_owned(),
                    format!("{}: {}", p.field, p.description),
                )
            })
            .collect(),
    )
}

impl Store {
    pub async fn create_contract(
        &self,
        tenant: &TenantId,
        request_id: &str,
        terms: &ContractTerms,
        created_by: &str,
    ) -> Result<row::Model, Error> {
        let txn = self.db.begin().await?;
        let seen = row::Entity::find()
            .filter(row::Column::TenantId.eq(tenant.as_str()))
            .filter(row::Column::RequestId.eq(request_id))
            .one(&txn)
            .await?;
        if let Some(seen) = seen {
            if crate::convert::terms_of(&seen) != *terms {
                return Err(Error::invalid(
                    "request_id",
                    "was already used for different terms",
                ));
            }
            return Ok(seen);
        }
        let (is_team, fs_team) = (terms.is_team.trim(), terms.fs_team.trim());
        let latest = row::Entity::find()
            .filter(row::Column::TenantId.eq(tenant.as_str()))
            .filter(row::Column::IsTeam.eq(is_team))
            .filter(row::Column::FsTeam.eq(fs_team))
            .order_by_desc(row::Column::Version)
            .one(&txn)
            .await?
            .map_or(0, |r| r.version);
        let created = row::ActiveModel {
            seq: NotSet,
            contract_id: Set(uuid::Uuid::now_v7().to_string()),
            tenant_id: Set(tenant.to_string()),
            request_id: Set(request_id.to_owned()),
            is_team: Set(is_team.to_owned()),
            fs_team: Set(fs_team.to_owned()),
            version: Set(latest + 1),
            status: Set(ContractStatus::Draft as i32),
            terms: Set(terms.encode_to_vec()),
            is_approved_by: Set(String::new()),
            is_approved_at: Set(None),
            fs_approved_by: Set(String::new()),
            fs_approved_at: Set(None),
            created_by: Set(created_by.to_owned()),
            created_at: Set(time::now()),
            activated_at: Set(None),
            superseded_at: Set(None),
        }
        .insert(&txn)
        .await?;
        txn.commit().await?;
        Ok(created)
    }

    pub async fn update_contract(
        &self,
        tenant: &TenantId,
        contract_id: &str,
        terms: &ContractTerms,
    ) -> Result<row::Model, Error> {
        let txn = self.db.begin().await?;
        let current = find(&txn, tenant, contract_id).await?;
        draft_only(&current)?;
        if terms.is_team.trim() != current.is_team || terms.fs_team.trim() != current.fs_team {
            return Err(Error::invalid(
                "terms.is_team",
                "a version keeps its team pair; create a contract for another pair",
            ));
        }
        let mut r: row::ActiveModel = current.into();
        r.terms = Set(terms.encode_to_vec());
        r.is_approved_by = Set(String::new());
        r.is_approved_at = Set(None);
        r.fs_approved_by = Set(String::new());
        r.fs_approved_at = Set(None);
        let updated = r.update(&txn).await?;
        txn.commit().await?;
        Ok(updated)
    }

    pub async fn validate_contract(
        &self,
        tenant: &TenantId,
        contract_id: &str,
    ) -> Result<Vec<contract::Problem>, Error> {
        let r = find(&self.db, tenant, contract_id).await?;
        Ok(contract::validate(&crate::convert::terms_of(&r)))
    }

    /// One owner's approval; the second one activates the version.
    pub async fn approve_contract(
        &self,
        tenant: &TenantId,
        contract_id: &str,
        approver: &str,
    ) -> Result<row::Model, Error> {
        let txn = self.db.begin().await?;
        let current = find(&txn, tenant, contract_id).await?;
        draft_only(&current)?;
        let terms = crate::convert::terms_of(&current);
        let problems = contract::validate(&terms);
        if !problems.is_empty() {
            return Err(invalid(problems));
        }
        let now = time::now();
        let is_side = approver.eq_ignore_ascii_case(terms.is_owner.trim());
        let fs_side = approver.eq_ignore_ascii_case(terms.fs_owner.trim());
        if !is_side && !fs_side {
            return Err(Error::NotAllowed(format!(
                "{approver} is neither the IS owner nor the FS owner of this contract"
            )));
        }
        let both = (is_side || current.is_approved_at.is_some())
            && (fs_side || current.fs_approved_at.is_some());
        let (pair_is, pair_fs) = (current.is_team.clone(), current.fs_team.clone());
        let mut r: row::ActiveModel = current.into();
        if is_side {
            r.is_approved_by = Set(approver.to_owned());
            r.is_approved_at = Set(Some(now));
        }
        if fs_side {
            r.fs_approved_by = Set(approver.to_owned());
            r.fs_approved_at = Set(Some(now));
        }
        if both {
            row::Entity::update_many()
                .col_expr(
                    row::Column::Status,
                    Expr::value(ContractStatus::Superseded as i32),
                )
                .col_expr(row::Column::SupersededAt, Expr::value(Some(now)))
                .filter(row::Column::TenantId.eq(tenant.as_str()))
                .filter(row::Column::IsTeam.eq(pair_is.as_str()))
                .filter(row::Column::FsTeam.eq(pair_fs.as_str()))
                .filter(row::Column::Status.eq(ContractStatus::Active as i32))
                .exec(&txn)
                .await?;
            r.status = Set(ContractStatus::Active as i32);
            r.activated_at = Set(Some(now));
        }
        let saved = r.update(&txn).await?;
        if both {
            let event = ContractActivated {
                contract: Some(crate::convert::contract_to_proto(&saved)),
            };
            EventLog::append(&txn, tenant, &saved.contract_id, &event).await?;
        }
        txn.commit().await?;
        if both {
            self.log.notify_committed();
        }
        Ok(saved)
    }

    pub async fn get_contract(
        &self,
        tenant: &TenantId,
        contract_id: &str,
    ) -> Result<row::Model, Error> {
        find(&self.db, tenant, contract_id).await
    }

    pub async fn list_contracts(
        &self,
        tenant: &TenantId,
        is_team: &str,
        fs_team: &str,
    ) -> Result<Vec<row::Model>, DbErr> {
        row::Entity::find()
            .filter(row::Column::TenantId.eq(tenant.as_str()))
            .filter(row::Column::IsTeam.eq(is_team))
            .filter(row::Column::FsTeam.eq(fs_team))
            .order_by_asc(row::Column::Version)
            .all(&self.db)
            .await
    }
}
