//! reporting's gRPC edge: validate, call the store, map errors. No SQL here.

use baton_proto::reporting::v1::{
    self as pb, CreatePlanRequest, GetPlanProgressRequest, GetPlanRequest, ListPlansRequest,
    ListPlansResponse, Plan, PlanProgress, planning_service_server::PlanningService,
};
use baton_proto::reporting::v1::{
    ApproveContractRequest, Contract, ContractProblem, CreateContractRequest, Customer, Funnel,
    GetContractRequest, GetFunnelRequest, GetKpisRequest, GetKpisResponse,
    GetTargetAccountsRequest, KpiDefinition, ListContractsRequest, ListContractsResponse,
    ListKpisRequest, ListKpisResponse, RecordChurnRequest, RecordSpendRequest, RecordSpendResponse,
    SetTargetAccountsRequest, TargetAccounts, UpdateContractRequest, UpdateKpiParametersRequest,
    ValidateContractRequest, ValidateContractResponse, contract_service_server::ContractService,
    kpi_service_server::KpiService, reporting_service_server::ReportingService,
};
use baton_shared::{
    TenantId, Violations,
    auth::Identity,
    fields::{self, MAX_ACTOR_LEN, MAX_ID_LEN},
    time,
};
use tonic::{Request, Response, Status};

use crate::error::Error;
use crate::{
    convert,
    domain::kpis,
    plans,
    store::{Store, kpi_sums::SumQuery},
};

#[derive(Clone)]
pub struct Api {
    store: Store,
    watch: crate::attainment::WatchPace,
    /// How long after a period's end its scorecard may be closed.
    grace: chrono::Duration,
    qualification: crate::feedback::Qualification,
}

impl Api {
    pub fn new(
        store: Store,
        contracts: &baton_shared::settings::ContractSettings,
        qualification: crate::feedback::Qualification,
    ) -> Self {
        let watch = crate::attainment::WatchPace {
            interval: std::time::Duration::from_millis(
                contracts.attainment_watch_interval_ms.max(10),
            ),
            max: std::time::Duration::from_secs(contracts.attainment_watch_max_seconds.max(1)),
        };
        let hours = i64::try_from(contracts.scorecard_grace_hours).unwrap_or(i64::MAX / 3_600_000);
        Api {
            store,
            watch,
            grace: chrono::Duration::hours(hours.min(24 * 365)),
            qualification,
        }
    }

    /// The catalogue as the tenant's current versions define it.
    async fn catalogue(&self, tenant: &TenantId) -> Result<Vec<kpis::Kpi>, Error> {
        let current = self.store.kpi_versions(tenant).await?;
        Ok(kpis::catalogue()
            .iter()
            .map(|k| match current.iter().find(|c| c.kpi == k.key) {
                Some(c) => k.with_values(c.version, &c.values),
                None => k.clone(),
            })
            .collect())
    }
}

#[tonic::async_trait]
impl ReportingService for Api {
    async fn get_lead_journey(
        &self,
        request: Request<pb::GetLeadJourneyRequest>,
    ) -> Result<Response<pb::LeadJourney>, Status> {
        let tenant = TenantId::of(&request)?;
        let lead_id = fields::required_id("lead_id", &request.get_ref().lead_id)?;
        let rows = self.store.journal(&tenant, &lead_id).await?;
        Ok(Response::new(convert::journal_to_proto(&lead_id, &rows)))
    }

    async fn get_funnel(
        &self,
        request: Request<GetFunnelRequest>,
    ) -> Result<Response<Funnel>, Status> {
        let tenant = TenantId::of(&request)?;
        let req = request.into_inner();
        let mut violations = Violations::new();
        let from = fields::required_time("start_time", req.start_time.as_ref(), &mut violations);
        let to = fields::required_time("end_time", req.end_time.as_ref(), &mut violations);
        let range = match (from, to) {
            (Some(f), Some(t)) if f < t => Some((f, t)),
            (Some(_), Some(_)) => {
                violations.add("end_time", "must be after start_time");
                None
            }
            _ => None,
        };
        let group_by = convert::group_by_from_proto(&req.group_by, &mut violations);
        violations.into_result()?;
        let Some((from, to)) = range else {
            return Err(Error::invalid("start_time", "is required").into());
        };
        let c = self.store.funnel(&tenant, from, to).await?;
        let groups = if group_by.is_empty() {
            Vec::new()
        } else {
            self.store
                .funnel_groups(&tenant, (from, to), &group_by)
                .await?
        };
        Ok(Response::new(convert::funnel_to_proto(
            (from, to),
            &c,
            &groups,
            &group_by,
        )))
    }
}

#[tonic::async_trait]
impl KpiService for Api {
    async fn list_kpis(
        &self,
        request: Request<ListKpisRequest>,
    ) -> Result<Response<ListKpisResponse>, Status> {
        let tenant = TenantId::of(&request)?;
        Ok(Response::new(ListKpisResponse {
            kpis: self
                .catalogue(&tenant)
                .await?
                .iter()
                .map(convert::kpi_to_proto)
                .collect(),
            dimensions: kpis::DIMENSIONS.iter().map(|d| (*d).to_owned()).collect(),
        }))
    }

    async fn get_kpis(
        &self,
        request: Request<GetKpisRequest>,
    ) -> Result<Response<GetKpisResponse>, Status> {
        let tenant = TenantId::of(&request)?;
        let catalogue = self.catalogue(&tenant).await?;
        let q = convert::kpi_query_from_proto(request.get_ref(), &catalogue)?;
        let periods = kpis::periods(q.start, q.end, q.granularity, q.tz).map_err(|_| {
            Error::invalid(
                "granularity",
                format!(
                    "more than {} periods; choose a coarser one",
                    kpis::MAX_PERIODS
                ),
            )
        })?;
        let metrics = kpis::metrics_of(&q.kpis);
        let sums = SumQuery {
            metrics: &metrics,
            start: q.start,
            end: q.end,
            group_by: &q.group_by,
            filters: &q.filters,
            tz: q.tz,
            periods: &periods,
            conversion_window_seconds: conversion_window(&catalogue),
        };
        let observations = self.store.kpi_sums(&tenant, &sums).await?;
        let series = kpis::series(&q.kpis, &periods, &observations, !q.group_by.is_empty());
        Ok(Response::new(GetKpisResponse {
            series: series
                .iter()
                .map(|s| convert::series_to_proto(s, &q.group_by))
                .collect(),
        }))
    }

    async fn record_spend(
        &self,
        request: Request<RecordSpendRequest>,
    ) -> Result<Response<RecordSpendResponse>, Status> {
        let tenant = TenantId::of(&request)?;
        let who = Identity::of(&request)?;
        let mut req = request.into_inner();
        // The actor is the caller: an empty field means them, another name is refused.
        req.recorded_by = who.actor("recorded_by", &req.recorded_by)?;
        let input = convert::spend_from_proto(&req)?;
        let (spend, created) = self.store.record_spend(&tenant, &input).await?;
        Ok(Response::new(RecordSpendResponse {
            spend: Some(convert::spend_to_proto(&spend)),
            created,
        }))
    }

    async fn update_kpi_parameters(
        &self,
        request: Request<UpdateKpiParametersRequest>,
    ) -> Result<Response<KpiDefinition>, Status> {
        let tenant = TenantId::of(&request)?;
        let who = Identity::of(&request)?;
        let mut req = request.into_inner();
        // The actor is the caller: an empty field means them, another name is refused.
        req.updated_by = who.actor("updated_by", &req.updated_by)?;
        let req = &req;
        let catalogue = self.catalogue(&tenant).await?;
        let (kpi, values) = convert::kpi_parameters_from_proto(req, &catalogue)?;
        let version = self
            .store
            .update_kpi_parameters(
                &tenant,
                kpi.key,
                &values,
                req.expected_version,
                req.updated_by.trim(),
            )
            .await?;
        Ok(Response::new(convert::kpi_to_proto(
            &kpi.with_values(version, &values),
        )))
    }

    async fn get_target_accounts(
        &self,
        request: Request<GetTargetAccountsRequest>,
    ) -> Result<Response<TargetAccounts>, Status> {
        let tenant = TenantId::of(&request)?;
        Ok(Response::new(self.store.target_accounts(&tenant).await?))
    }

    async fn set_target_accounts(
        &self,
        request: Request<SetTargetAccountsRequest>,
    ) -> Result<Response<TargetAccounts>, Status> {
        let tenant = TenantId::of(&request)?;
        let who = Identity::of(&request)?;
        let mut req = request.into_inner();
        if let Some(accounts) = req.accounts.as_mut() {
            // The actor is the caller: an empty field means them, another name is refused.
            accounts.updated_by = who.actor("accounts.updated_by", &accounts.updated_by)?;
        }
        let req = &req;
        let accounts = convert::target_accounts_from_proto(req)?;
        let saved = self
            .store
            .set_target_accounts(&tenant, accounts, req.expected_version)
            .await?;
        Ok(Response::new(saved))
    }

    async fn record_churn(
        &self,
        request: Request<RecordChurnRequest>,
    ) -> Result<Response<Customer>, Status> {
        let tenant = TenantId::of(&request)?;
        let input = convert::churn_from_proto(request.get_ref())?;
        let customer = self.store.record_churn(&tenant, &input).await?;
        Ok(Response::new(convert::customer_to_proto(&customer)))
    }
}

#[tonic::async_trait]
impl ContractService for Api {
    async fn create_contract(
        &self,
        request: Request<CreateContractRequest>,
    ) -> Result<Response<Contract>, Status> {
        let tenant = TenantId::of(&request)?;
        let who = Identity::of(&request)?;
        let mut req = request.into_inner();
        // The actor is the caller: an empty field means them, another name is refused.
        req.created_by = who.actor("created_by", &req.created_by)?;
        let mut violations = Violations::new();
        let request_id = violations.required("request_id", &req.request_id, MAX_ID_LEN);
        let created_by = violations.required("created_by", &req.created_by, MAX_ACTOR_LEN);
        match &req.terms {
            None => violations.add("terms", "is required"),
            Some(t) => {
                violations.required("terms.is_team", &t.is_team, MAX_ID_LEN);
                violations.required("terms.fs_team", &t.fs_team, MAX_ID_LEN);
            }
        }
        violations.into_result()?;
        let terms = req.terms.unwrap_or_default();
        let row = self
            .store
            .create_contract(&tenant, &request_id, &terms, &created_by)
            .await?;
        Ok(Response::new(convert::contract_to_proto(&row)))
    }

    async fn update_contract(
        &self,
        request: Request<UpdateContractRequest>,
    ) -> Result<Response<Contract>, Status> {
        let tenant = TenantId::of(&request)?;
        let req = request.into_inner();
        let contract_id = fields::required_id("contract_id", &req.contract_id)?;
        let Some(terms) = req.terms else {
            return Err(Error::invalid("terms", "is required").into());
        };
        let row = self
            .store
            .update_contract(&tenant, &contract_id, &terms)
            .await?;
        Ok(Response::new(convert::contract_to_proto(&row)))
    }

    async fn validate_contract(
        &self,
        request: Request<ValidateContractRequest>,
    ) -> Result<Response<ValidateContractResponse>, Status> {
        let tenant = TenantId::of(&request)?;
        let contract_id = fields::required_id("contract_id", &request.get_ref().contract_id)?;
        let problems = self.store.validate_contract(&tenant, &contract_id).await?;
        Ok(Response::new(ValidateContractResponse {
            valid: problems.is_empty(),
            problems: problems
                .into_iter()
                .map(|p| ContractProblem {
                    field: p.field,
                    description: p.description,
                })
                .collect(),
        }))
    }

    async fn approve_contract(
        &self,
        request: Request<ApproveContractRequest>,
    ) -> Result<Response<Contract>, Status> {
        let tenant = TenantId::of(&request)?;
        let who = Identity::of(&request)?;
        let mut req = request.into_inner();
        // The actor is the caller: an empty field means them, another name is refused.
        req.approver = who.actor("approver", &req.approver)?;
        let contract_id = fields::required_id("contract_id", &req.contract_id)?;
        let mut violations = Violations::new();
        let approver = violations.required("approver", &req.approver, MAX_ACTOR_LEN);
        violations.into_result()?;
        let row = self
            .store
            .approve_contract(&tenant, &contract_id, &approver)
            .await?;
        Ok(Response::new(convert::contract_to_proto(&row)))
    }

    async fn get_contract(
        &self,
        request: Request<GetContractRequest>,
    ) -> Result<Response<Contract>, Status> {
        let tenant = TenantId::of(&request)?;
        let contract_id = fields::required_id("contract_id", &request.get_ref().contract_id)?;
        let row = self.store.get_contract(&tenant, &contract_id).await?;
        Ok(Response::new(convert::contract_to_proto(&row)))
    }

    async fn list_contracts(
        &self,
        request: Request<ListContractsRequest>,
    ) -> Result<Response<ListContractsResponse>, Status> {
        let tenant = TenantId::of(&request)?;
        let req = request.into_inner();
        let mut violations = Violations::new();
        let is_team = violations.required("is_team", &req.is_team, MAX_ID_LEN);
        let fs_team = violations.required("fs_team", &req.fs_team, MAX_ID_LEN);
        violations.into_result()?;
        let rows = self
            .store
            .list_contracts(&tenant, &is_team, &fs_team)
            .await
            .map_err(Error::from)?;
        Ok(Response::new(ListContractsResponse {
            contracts: rows.iter().map(convert::contract_to_proto).collect(),
        }))
    }

    async fn get_attainment(
        &self,
        request: Request<pb::GetAttainmentRequest>,
    ) -> Result<Response<pb::Attainment>, Status> {
        let tenant = TenantId::of(&request)?;
        let attainment = crate::attainment::get(&self.store, &tenant, request.get_ref()).await?;
        Ok(Response::new(attainment))
    }

    async fn close_scorecard(
        &self,
        request: Request<pb::CloseScorecardRequest>,
    ) -> Result<Response<pb::Scorecard>, Status> {
        let tenant = TenantId::of(&request)?;
        let who = Identity::of(&request)?;
        let closed_by = who.actor("closed_by", "")?;
        let card = crate::attainment::close(
            &self.store,
            &tenant,
            request.get_ref(),
            &closed_by,
            self.grace,
        )
        .await?;
        Ok(Response::new(card))
    }

    async fn sign_scorecard(
        &self,
        request: Request<pb::SignScorecardRequest>,
    ) -> Result<Response<pb::Scorecard>, Status> {
        let tenant = TenantId::of(&request)?;
        let who = Identity::of(&request)?;
        let req = request.into_inner();
        // The signer is the caller: an empty field means them, another name is refused.
        let signer = who.actor("signed_by", &req.signed_by)?;
        let scorecard_id = fields::required_id("scorecard_id", &req.scorecard_id)?;
        let card = crate::attainment::sign(&self.store, &tenant, &scorecard_id, &signer).await?;
        Ok(Response::new(card))
    }

    async fn get_scorecard(
        &self,
        request: Request<pb::GetScorecardRequest>,
    ) -> Result<Response<pb::Scorecard>, Status> {
        let tenant = TenantId::of(&request)?;
        let scorecard_id = fields::required_id("scorecard_id", &request.get_ref().scorecard_id)?;
        let view = self.store.get_scorecard(&tenant, &scorecard_id).await?;
        Ok(Response::new(convert::attainment::scorecard_to_proto(
            &view,
        )))
    }

    async fn list_scorecards(
        &self,
        request: Request<pb::ListScorecardsRequest>,
    ) -> Result<Response<pb::ListScorecardsResponse>, Status> {
        let tenant = TenantId::of(&request)?;
        let contract_id = fields::required_id("contract_id", &request.get_ref().contract_id)?;
        let views = self.store.list_scorecards(&tenant, &contract_id).await?;
        Ok(Response::new(pb::ListScorecardsResponse {
            scorecards: views
                .iter()
                .map(convert::attainment::scorecard_to_proto)
                .collect(),
        }))
    }

    async fn get_win_factors(
        &self,
        request: Request<pb::GetWinFactorsRequest>,
    ) -> Result<Response<pb::WinFactors>, Status> {
        let tenant = TenantId::of(&request)?;
        let factors = crate::feedback::win_factors(&self.store, &tenant, request.get_ref()).await?;
        Ok(Response::new(factors))
    }

    async fn draft_model_from_outcomes(
        &self,
        request: Request<pb::DraftModelFromOutcomesRequest>,
    ) -> Result<Response<pb::DraftModelFromOutcomesResponse>, Status> {
        let tenant = TenantId::of(&request)?;
        let who = Identity::of(&request)?;
        let actor = who.actor("created_by", "")?;
        // Qualification is called as the caller, so its policy and its record name them.
        let token = request
            .metadata()
            .get("authorization")
            .and_then(|v| v.to_str().ok())
            .and_then(|v| v.strip_prefix("Bearer "))
            .unwrap_or_default()
            .to_owned();
        let drafted = crate::feedback::draft_model(
            &self.store,
            &tenant,
            request.get_ref(),
            (&token, &actor),
            &self.qualification,
        )
        .await?;
        Ok(Response::new(drafted))
    }

    type WatchAttainmentStream =
        tokio_stream::wrappers::ReceiverStream<Result<pb::Attainment, Status>>;

    async fn watch_attainment(
        &self,
        request: Request<pb::GetAttainmentRequest>,
    ) -> Result<Response<Self::WatchAttainmentStream>, Status> {
        let tenant = TenantId::of(&request)?;
        let stream =
            crate::attainment::watch(self.store.clone(), tenant, request.get_ref(), self.watch)
                .await?;
        Ok(Response::new(stream))
    }
}

#[tonic::async_trait]
impl PlanningService for Api {
    async fn create_plan(
        &self,
        request: Request<CreatePlanRequest>,
    ) -> Result<Response<Plan>, Status> {
        let tenant = TenantId::of(&request)?;
        let who = Identity::of(&request)?;
        let mut req = request.into_inner();
        // The actor is the caller: an empty field means them, another name is refused.
        req.created_by = who.actor("created_by", &req.created_by)?;
        let plan = plans::create(&self.store, &tenant, &req).await?;
        Ok(Response::new(plan))
    }

    async fn get_plan(&self, request: Request<GetPlanRequest>) -> Result<Response<Plan>, Status> {
        let tenant = TenantId::of(&request)?;
        let req = request.get_ref();
        let plan_id = fields::required_id("plan_id", &req.plan_id)?;
        if req.version < 0 {
            return Err(Error::invalid("version", "must not be negative").into());
        }
        let row = self.store.get_plan(&tenant, &plan_id, req.version).await?;
        Ok(Response::new(convert::plans::plan_to_proto(&row)))
    }

    async fn list_plans(
        &self,
        request: Request<ListPlansRequest>,
    ) -> Result<Response<ListPlansResponse>, Status> {
        let tenant = TenantId::of(&request)?;
        let rows = self.store.list_plans(&tenant).await?;
        Ok(Response::new(ListPlansResponse {
            plans: rows.iter().map(convert::plans::plan_to_proto).collect(),
        }))
    }

    async fn get_plan_progress(
        &self,
        request: Request<GetPlanProgressRequest>,
    ) -> Result<Response<PlanProgress>, Status> {
        let tenant = TenantId::of(&request)?;
        let req = request.get_ref();
        let plan_id = fields::required_id("plan_id", &req.plan_id)?;
        let as_of = match &req.as_of {
            None => None,
            Some(t) => Some(
                time::from_caller(t)
                    .ok_or_else(|| Error::invalid("as_of", "is not a valid time"))?,
            ),
        };
        let progress = plans::progress(&self.store, &tenant, &plan_id, as_of).await?;
        Ok(Response::new(progress))
    }
}

/// Seconds after a delivery an e-mail conversion counts (email_conversion_rate's window).
fn conversion_window(catalogue: &[kpis::Kpi]) -> i64 {
    let days = catalogue
        .iter()
        .find(|k| k.key == "email_conversion_rate")
        .and_then(|k| k.value(kpis::WINDOW_DAYS))
        .unwrap_or(7.0);
    (days * 86_400.0).round() as i64
}
