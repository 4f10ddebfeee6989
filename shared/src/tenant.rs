//! The tenant of a request. Every row and every query carries it (docs/architecture.md).
//!
//! The auth layer (`auth::layer`) puts the tenant of the caller's token into each request's
//! extensions; handlers read it with [`TenantId::of`]. A request has no other source of tenant.

use std::fmt;

use crate::error::ApiError;

#[derive(Debug, Clone, PartialEq, Eq, Hash)]
pub struct TenantId(String);

impl TenantId {
    pub fn new(id: impl Into<String>) -> Self {
        TenantId(id.into())
    }

    pub fn as_str(&self) -> &str {
        &self.0
    }

    /// The tenant a layer attached to this request.
    pub fn of<T>(request: &tonic::Request<T>) -> Result<TenantId, ApiError> {
        request
            .extensions()
            .get::<TenantId>()
            .cloned()
            .ok_or(ApiError::Unauthenticated)
    }
}

impl fmt::Display for TenantId {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&self.0)
    }
}
