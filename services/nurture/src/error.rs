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
    /// A failure of a shared edge helper (tenant, paging, field validation), answered as shared
    /// answers it.
    #[error(transparent)]
    Edge(#[from] ApiError),
}

impl From<Error> for Status {
    fn from(err: Error) -> Self {
        match err {
            Error::Database(e) => database_status(&e),
            Error::Edge(e) => e.into(),
        }
    }
}
