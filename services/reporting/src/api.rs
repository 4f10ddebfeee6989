//! reporting's gRPC edge: validate, call the store, map errors. No SQL here.

use baton_proto::reporting::v1::{
    Funnel, GetFunnelRequest, reporting_service_server::ReportingService,
};
use baton_shared::{ApiError, TenantId, Violations, time};
use tonic::{Request, Response, Status};

use crate::{domain::funnel::conversion_rate, store::Store};

pub struct Api {
    store: Store,
}

impl Api {
    pub fn new(store: Store) -> Self {
        Api { store }
    }
}

#[tonic::async_trait]
impl ReportingService for Api {
    async fn get_funnel(
        &self,
        request: Request<GetFunnelRequest>,
    ) -> Result<Response<Funnel>, Status> {
        let tenant = TenantId::of(&request)?;
        let req = request.into_inner();
        let mut violations = Violations::new();
        let from = required_time("from", req.from.as_ref(), &mut violations);
        let to = required_time("to", req.to.as_ref(), &mut violations);
        let range = match (from, to) {
            (Some(f), Some(t)) if f < t => Some((f, t)),
            (Some(_), Some(_)) => {
                violations.add("to", "must be after from");
                None
            }
            _ => None,
        };
        violations.into_result()?;
        let Some((from, to)) = range else {
            return Err(ApiError::invalid("from", "is required").into());
        };
        let c = self.store.funnel(&tenant, from, to).await?;
        Ok(Response::new(Funnel {
            from: Some(time::to_proto(from)),
            to: Some(time::to_proto(to)),
            leads: c.leads,
            mqls: c.mqls,
            assignments: c.assignments,
            enrollments: c.enrollments,
            lead_to_mql_rate: conversion_rate(c.mqls, c.leads),
            mql_to_assignment_rate: conversion_rate(c.assignments, c.mqls),
        }))
    }
}

fn required_time(
    field: &str,
    t: Option<&prost_types::Timestamp>,
    violations: &mut Violations,
) -> Option<chrono::DateTime<chrono::Utc>> {
    match t {
        None => {
            violations.add(field, "is required");
            None
        }
        Some(t) => time::from_proto(t).or_else(|| {
            violations.add(field, "not a valid timestamp");
            None
        }),
    }
}
