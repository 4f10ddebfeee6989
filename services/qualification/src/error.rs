//! qualification's one error type: what its calls can fail with, in the domain's words. The store and
//! the domain return it; it becomes a gRPC status in exactly one place, the exhaustive
//! `From<Error> for Status` below (a new variant does not compile until its code is chosen).

use baton_shared::{
    ApiError, Violations,
    error::{database_status, status},
};
use sea_orm::DbErr;
use tonic::Status;

#[derive(Debug, thiserror::Error)]
pub enum Error {
    /// Fields of the request that are wrong, each with why.
    #[error("invalid request: {0}")]
    Invalid(Violations),
    #[error("{kind} {id:?} not found")]
    NotFound { kind: &'static str, id: String },
    /// A rule of the domain refuses the change now (the rule's name, and why).
    #[error("{rule}: {description}")]
    RuleBroken { rule: String, description: String },
    /// Several rules at once (e.g. a rule set with many problems): each (rule, description).
    #[error("rules broken: {0:?}")]
    RulesBroken(Vec<(String, String)>),
    /// Work the caller asked for ran past its deadline and was stopped (what to ask instead).
    #[error("deadline exceeded: {0}")]
    DeadlineExceeded(String),
    /// The database failed (unavailable, a lost race on a unique key, or a fault).
    #[error("database: {0}")]
    Database(#[from] DbErr),
    /// A failure of a shared edge helper (tenant, paging, field validation), answered as shared
    /// answers it.
    #[error(transparent)]
    Edge(#[from] ApiError),
}

impl Error {
    /// One invalid field.
    pub fn invalid(field: impl Into<String>, description: impl Into<String>) -> Self {
        let mut v = Violations::new();
        v.add(field, description);
        Error::Invalid(v)
    }

    pub fn not_found(kind: &'static str, id: impl Into<String>) -> Self {
        Error::NotFound {
            kind,
            id: id.into(),
        }
    }
}

impl From<Error> for Status {
    fn from(err: Error) -> Self {
        match err {
            Error::Invalid(v) => status::invalid_argument(&v),
            Error::NotFound { kind, id } => status::not_found(kind, &id),
            Error::RuleBroken { rule, description } => {
                status::failed_precondition(&rule, &description)
            }
            Error::RulesBroken(failures) => status::failed_preconditions(&failures),
            Error::DeadlineExceeded(m) => Status::deadline_exceeded(m),
            Error::Database(e) => database_status(&e),
            Error::Edge(e) => e.into(),
        }
    }
}
