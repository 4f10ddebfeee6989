//! Errors at the edges: what a service answers a caller ([`ApiError`] → `tonic::Status`, with
//! `google.rpc.BadRequest` field violations for bad input) and what stops a service from starting
//! ([`BootError`]).

use sea_orm::{DbErr, SqlErr};
use tonic::Status;

/// Field violations collected while validating a request; empty means valid.
#[derive(Debug, Default, Clone, PartialEq, Eq)]
pub struct Violations(Vec<(String, String)>);

impl Violations {
    pub fn new() -> Self {
        Self::default()
    }

    /// Records that `field` (proto field path, e.g. `source.channel`) is invalid, and why.
    pub fn add(&mut self, field: impl Into<String>, description: impl Into<String>) {
        self.0.push((field.into(), description.into()));
    }

    pub fn is_empty(&self) -> bool {
        self.0.is_empty()
    }

    /// A required text field, trimmed: recorded as invalid when empty, longer than `max` bytes
    /// or holding a control character.
    pub fn required(&mut self, field: &str, raw: &str, max: usize) -> String {
        let v = raw.trim();
        if v.is_empty() {
            self.add(field, "is required");
        } else if v.len() > max {
            self.add(field, format!("must be at most {max} bytes"));
        } else {
            self.text(field, v);
        }
        v.to_owned()
    }

    /// An optional text field, trimmed: recorded as invalid when longer than `max` bytes or
    /// holding a control character.
    pub fn optional(&mut self, field: &str, raw: &str, max: usize) -> String {
        let v = raw.trim();
        if v.len() > max {
            self.add(field, format!("must be at most {max} bytes"));
        } else {
            self.text(field, v);
        }
        v.to_owned()
    }

    /// Records `field` as invalid if `value` holds a control character (NUL and the other C0
    /// characters, DEL) other than tab, line feed and carriage return: no database stores NUL in
    /// text, and none of Baton's fields means anything by the others.
    pub fn text(&mut self, field: &str, value: &str) {
        if let Some(c) = value
            .chars()
            .find(|c| (c.is_ascii_control()) && !matches!(c, '\t' | '\n' | '\r'))
        {
            self.add(
                field,
                format!("must not contain the control character U+{:04X}", c as u32),
            );
        }
    }

    /// Each violation as (field, description).
    pub fn iter(&self) -> impl Iterator<Item = (&str, &str)> {
        self.0.iter().map(|(f, d)| (f.as_str(), d.as_str()))
    }

    pub fn fields(&self) -> impl Iterator<Item = &str> {
        self.0.iter().map(|(f, _)| f.as_str())
    }

    /// `Ok(())` if nothing was recorded, else the violations as an [`ApiError`].
    pub fn into_result(self) -> Result<(), ApiError> {
        if self.is_empty() {
            Ok(())
        } else {
            Err(ApiError::InvalidArgument(self))
        }
    }
}

/// What a gRPC call can fail with. Every service maps its failures to this one type, and this type
/// to a `tonic::Status` in exactly one place.
#[derive(Debug, thiserror::Error)]
pub enum ApiError {
    #[error("invalid argument: {}", describe(.0))]
    InvalidArgument(Violations),
    #[error("{kind} {id:?} not found")]
    NotFound { kind: &'static str, id: String },
    #[error("{0}")]
    AlreadyExists(String),
    #[error("failed precondition {rule}: {description}")]
    FailedPrecondition { rule: String, description: String },
    /// Several rules failed at once (e.g. a rule set with many problems): each (rule, description).
    #[error("failed preconditions: {}", .0.iter().map(|(r, d)| format!("{r}: {d}")).collect::<Vec<_>>().join("; "))]
    FailedPreconditions(Vec<(String, String)>),
    /// Items of one kind that failed a check (e.g. a handoff gate): each (subject, description),
    /// reported as PreconditionFailure violations of type `kind`.
    #[error("{kind}: {}", .items.iter().map(|(s, d)| format!("{s}: {d}")).collect::<Vec<_>>().join("; "))]
    FailedItems {
        kind: &'static str,
        items: Vec<(String, String)>,
    },
    #[error("permission denied: {0}")]
    PermissionDenied(String),
    #[error("no tenant on the request")]
    Unauthenticated,
    #[error("database: {0}")]
    Database(#[from] DbErr),
}

impl ApiError {
    /// One invalid field.
    pub fn invalid(field: impl Into<String>, description: impl Into<String>) -> Self {
        let mut v = Violations::new();
        v.add(field, description);
        ApiError::InvalidArgument(v)
    }

    pub fn not_found(kind: &'static str, id: impl Into<String>) -> Self {
        ApiError::NotFound {
            kind,
            id: id.into(),
        }
    }
}

fn describe(v: &Violations) -> String {
    v.0.iter()
        .map(|(f, d)| format!("{f}: {d}"))
        .collect::<Vec<_>>()
        .join("; ")
}

impl std::fmt::Display for Violations {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(&describe(self))
    }
}

/// The statuses Baton answers with, one builder per kind of failure, so that every service's
/// exhaustive `From<Error> for Status` is one line per variant and all five answer alike.
pub mod status {
    use tonic::{Code, Status};
    use tonic_types::{ErrorDetails, StatusExt};

    use super::{Violations, describe};

    /// INVALID_ARGUMENT with a `BadRequest` field violation per offending field.
    pub fn invalid_argument(violations: &Violations) -> Status {
        let mut details = ErrorDetails::new();
        for (field, description) in &violations.0 {
            details.add_bad_request_violation(field.clone(), description.clone());
        }
        Status::with_error_details(Code::InvalidArgument, describe(violations), details)
    }

    pub fn not_found(kind: &str, id: &str) -> Status {
        Status::not_found(format!("{kind} {id:?} not found"))
    }

    pub fn already_exists(message: String) -> Status {
        Status::already_exists(message)
    }

    /// FAILED_PRECONDITION naming the rule, as a `PreconditionFailure` violation of type RULE.
    pub fn failed_precondition(rule: &str, description: &str) -> Status {
        failed_items("RULE", &[(rule.to_owned(), description.to_owned())])
    }

    /// FAILED_PRECONDITION for several rules at once, each a RULE violation.
    pub fn failed_preconditions(failures: &[(String, String)]) -> Status {
        failed_items("RULE", failures)
    }

    /// FAILED_PRECONDITION for items of one kind that failed a check (e.g. a handoff gate), each
    /// a `PreconditionFailure` violation of type `kind`.
    pub fn failed_items(kind: &str, items: &[(String, String)]) -> Status {
        let listed = items
            .iter()
            .map(|(s, d)| format!("{s}: {d}"))
            .collect::<Vec<_>>()
            .join("; ");
        let message = if kind == "RULE" {
            listed
        } else {
            format!("{kind}: {listed}")
        };
        let mut details = ErrorDetails::new();
        for (subject, description) in items {
            details.add_precondition_failure_violation(kind, subject.clone(), description.clone());
        }
        Status::with_error_details(Code::FailedPrecondition, message, details)
    }

    pub fn permission_denied(message: String) -> Status {
        Status::permission_denied(message)
    }

    pub fn unauthenticated() -> Status {
        Status::unauthenticated("request carries no tenant identity")
    }

    /// UNAVAILABLE: the caller should retry with backoff.
    pub fn unavailable(message: &str) -> Status {
        Status::unavailable(message.to_owned())
    }
}

impl From<ApiError> for Status {
    fn from(err: ApiError) -> Self {
        match err {
            ApiError::InvalidArgument(violations) => status::invalid_argument(&violations),
            ApiError::NotFound { kind, id } => status::not_found(kind, &id),
            ApiError::AlreadyExists(m) => status::already_exists(m),
            ApiError::FailedPrecondition { rule, description } => {
                status::failed_precondition(&rule, &description)
            }
            ApiError::FailedPreconditions(failures) => status::failed_preconditions(&failures),
            ApiError::FailedItems { kind, items } => status::failed_items(kind, &items),
            ApiError::PermissionDenied(m) => status::permission_denied(m),
            ApiError::Unauthenticated => status::unauthenticated(),
            ApiError::Database(db) => database_status(&db),
        }
    }
}

/// Maps a database error to a status that tells the caller whether to retry, without leaking SQL.
pub fn database_status(err: &DbErr) -> Status {
    match err {
        DbErr::ConnectionAcquire(_) | DbErr::Conn(_) => {
            tracing::warn!(error = %err, "database unavailable");
            Status::unavailable("database unavailable; retry with backoff")
        }
        _ => match err.sql_err() {
            Some(SqlErr::UniqueConstraintViolation(_)) => {
                Status::aborted("concurrent write to the same record; retry")
            }
            // A last line for text no field check caught: PostgreSQL refuses NUL in text
            // (SQLSTATE 22021). The caller sent it, so it is their error, not the server's.
            _ if err
                .to_string()
                .contains("invalid byte sequence for encoding") =>
            {
                Status::invalid_argument(
                    "a text field contains a NUL character, which cannot be stored",
                )
            }
            _ => {
                tracing::error!(error = %err, "database error");
                Status::internal("internal database error")
            }
        },
    }
}

/// Why a service could not start.
#[derive(Debug, thiserror::Error)]
pub enum BootError {
    #[error("settings: {0}")]
    Settings(String),
    #[error("database {url}: {source}")]
    Database { url: String, source: DbErr },
    #[error("migrations: {0}")]
    Migration(DbErr),
    #[error("telemetry: {0}")]
    Telemetry(String),
    #[error("listen on {addr}: {source}")]
    Listen {
        addr: String,
        source: std::io::Error,
    },
    #[error("gRPC server: {0}")]
    Server(#[from] tonic::transport::Error),
    #[error("io: {0}")]
    Io(#[from] std::io::Error),
}

#[cfg(test)]
mod tests {
    use super::*;
    use tonic::Code;
    use tonic_types::StatusExt;

    #[test]
    fn invalid_argument_carries_every_field_violation() {
        let mut v = Violations::new();
        v.add("email", "must not be empty");
        v.add("source.channel", "must not be empty");
        let status: Status = v.into_result().unwrap_err().into();
        assert_eq!(status.code(), Code::InvalidArgument);
        let bad = status
            .get_details_bad_request()
            .expect("BadRequest details");
        let fields: Vec<_> = bad
            .field_violations
            .iter()
            .map(|f| f.field.as_str())
            .collect();
        assert_eq!(fields, ["email", "source.channel"]);
    }

    #[test]
    fn not_found_is_not_found() {
        let status: Status = ApiError::not_found("lead", "x").into();
        assert_eq!(status.code(), Code::NotFound);
    }
}
