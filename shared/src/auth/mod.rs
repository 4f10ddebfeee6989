//! Identity: who is calling, for which tenant, in which roles. Every RPC carries
//! `authorization: Bearer <JWT>`; [`layer::AuthLayer`] validates it once for every service
//! ([`keys`]), checks the caller's roles against the policy ([`policy`]), applies the tenant's rate
//! limit, and puts the [`Identity`] and its [`TenantId`] into the request's extensions, where
//! handlers read them. [`token`] mints tokens (the CLI, development, services calling peers).

pub mod keys;
pub mod layer;
pub mod policy;
pub mod token;

use std::{fmt, str::FromStr};

use serde::{Deserialize, Serialize};

use crate::{error::ApiError, tenant::TenantId};

/// The `tenant` claim of a service token that may read every tenant's event log.
pub const ALL_TENANTS: &str = "*";

/// A role a token can carry (claim `roles`).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum Role {
    Marketing,
    InsideSales,
    FieldSales,
    SalesOps,
    Admin,
    Service,
}

impl Role {
    pub const ALL: [Role; 6] = [
        Role::Marketing,
        Role::InsideSales,
        Role::FieldSales,
        Role::SalesOps,
        Role::Admin,
        Role::Service,
    ];

    pub fn as_str(self) -> &'static str {
        match self {
            Role::Marketing => "marketing",
            Role::InsideSales => "inside_sales",
            Role::FieldSales => "field_sales",
            Role::SalesOps => "sales_ops",
            Role::Admin => "admin",
            Role::Service => "service",
        }
    }
}

impl fmt::Display for Role {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.as_str())
    }
}

impl FromStr for Role {
    type Err = String;
    fn from_str(s: &str) -> Result<Self, Self::Err> {
        Role::ALL
            .into_iter()
            .find(|r| r.as_str() == s)
            .ok_or_else(|| {
                format!(
                    "unknown role {s:?}; roles are marketing, inside_sales, field_sales, sales_ops, admin, service"
                )
            })
    }
}

/// Which tenants a token speaks for.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Scope {
    Tenant(TenantId),
    /// `tenant = "*"` on a `service` token: every tenant, for event log subscriptions only.
    AllTenants,
}

/// The caller of one request, as its token says.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Identity {
    /// The person or service (`sub`).
    pub sub: String,
    pub scope: Scope,
    pub roles: Vec<Role>,
}

impl Identity {
    /// The identity the auth layer attached to this request.
    pub fn of<T>(request: &tonic::Request<T>) -> Result<Identity, ApiError> {
        request
            .extensions()
            .get::<Identity>()
            .cloned()
            .ok_or(ApiError::Unauthenticated)
    }

    pub fn has(&self, role: Role) -> bool {
        self.roles.contains(&role)
    }

    /// The actor of a decision: the caller. `given` is what the request's `field` says; empty
    /// means the caller, and naming anyone else is refused (a caller cannot act in another's name).
    pub fn actor(&self, field: &str, given: &str) -> Result<String, ApiError> {
        let given = given.trim();
        if given.is_empty() || given == self.sub {
            Ok(self.sub.clone())
        } else {
            Err(ApiError::PermissionDenied(format!(
                "{field} names {given:?} but the caller is {:?}; the actor of a decision is the token's subject (leave {field} empty)",
                self.sub
            )))
        }
    }
}
