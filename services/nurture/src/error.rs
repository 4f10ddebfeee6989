//! nurture's one error type: what its calls can fail with, in the domain's words. The store and
//! the domain return it; it becomes a gRPC status in exactly one place, the exhaustive
//! `From<Error> for Status` below (a new variant does not compile until its code is chosen).

use baton_shared::{ApiError, error::database_status};
use sea_orm::DbErr;
use tonic::Status;

#[derive(Debug, thiserror::Error)]
pub enum Error {
    /// The database failed (unavailable, a lost race on a unique key, or a fault).
    #[error("database: {0}")]
    Database(#[from] DbErr),
    /// A failure of a shared edge helper (tenant, paging, field validation) or a refusal in the
    /// shared vocabulary (not found, failed precondition, already exists), answered as shared
    /// answers it.
    #[error(transparent)]
    Edge(#[from] ApiError),
}

impl Error {
    /// FAILED_PRECONDITION naming `rule`.
    pub fn rule(rule: &str, description: impl Into<String>) -> Self {
        Error::Edge(ApiError::FailedPrecondition {
            rule: rule.to_owned(),
            description: description.into(),
        })
    }

    pub fn not_found(kind: &'static str, id: impl Into<String>) -> Self {
        Error::Edge(ApiError::not_found(kind, id))
    }
}

impl From<Error> for Status {
    fn from(err: Error) -> Self {
        match err {
            Error::Database(e) => database_status(&e),
            Error::Edge(e) => e.into(),
        }
    }
}
