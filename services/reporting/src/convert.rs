//! Every conversion of reporting between its stored rows and its proto messages.

use baton_proto::reporting::v1::{Approval, Contract, ContractTerms};
use baton_shared::time;
use prost::Message;

use crate::store::entities::contract as row;

/// The terms stored with a contract version (encoded `ContractTerms`).
pub fn terms_of(r: &row::Model) -> ContractTerms {
    ContractTerms::decode(r.terms.as_slice()).unwrap_or_default()
}

pub fn contract_to_proto(r: &row::Model) -> Contract {
    let approval = |by: &str, at: Option<chrono::DateTime<chrono::Utc>>| {
        at.map(|at| Approval {
            approver: by.to_owned(),
            approved_at: Some(time::to_proto(at)),
        })
    };
    Contract {
        contract_id: r.contract_id.clone(),
        version: r.version,
        status: r.status,
        terms: Some(terms_of(r)),
        is_approval: approval(&r.is_approved_by, r.is_approved_at),
        fs_approval: approval(&r.fs_approved_by, r.fs_approved_at),
        created_by: r.created_by.clone(),
        created_at: Some(time::to_proto(r.created_at)),
        activated_at: r.activated_at.map(time::to_proto),
        superseded_at: r.superseded_at.map(time::to_proto),
    }
}
