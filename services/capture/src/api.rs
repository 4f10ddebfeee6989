//! capture's gRPC edge: validate, call the store, map errors. No SQL here.

use baton_proto::capture::v1::{
    CaptureLeadRequest, CaptureLeadResponse, EraseLeadRequest, FieldViolation, GetLeadRequest,
    ImportAnswer, ImportLeadsRequest, ImportLeadsResponse, ImportRowResult, ImportRowStatus, Lead,
    ListLeadsRequest, ListLeadsResponse, MergeLeadsRequest, RecordActivityRequest,
    RecordActivityResponse, RecordVisitsRequest, RecordVisitsResponse, UpdateLeadRequest,
    capture_service_server::CaptureService,
};
use baton_shared::{TenantId, Violations, fields, paging::Page, time};
use tonic::{Request, Response, Status, Streaming};

use crate::error::Error;
use crate::{
    convert::{self, activity_to_proto, lead_to_proto},
    domain::{
        activity::{ActivityInput, validate_activity},
        lead::{check_key, validate_capture},
        update::apply_update,
        visits::validate_visits,
    },
    store::group_commit::GroupCommit,
    store::{CaptureOutcome, LeadFilter, Store},
};

pub struct Api {
    store: Store,
    /// CaptureLead's group commit in front of the store.
    writer: GroupCommit,
    /// Most row results one ImportLeads answer holds.
    max_import_results: usize,
}

impl Api {
    pub fn new(store: Store, writer: GroupCommit, max_import_results: u32) -> Self {
        Api {
            store,
            writer,
            max_import_results: max_import_results as usize,
        }
    }
}

/// RESOURCE_EXHAUSTED for an import whose answer would hold more than `max` row results, after
/// `imported` rows were imported.
fn too_many_results(imported: i64, max: usize) -> Status {
    Status::resource_exhausted(format!(
        "the answer would hold more than {max} row results (import.max_results_per_call): rows 1 to {imported} were imported, and running them again with the same import_id answers ALREADY_IMPORTED; send fewer rows per call, or ask for answer = IMPORT_ANSWER_REJECTED_ONLY or IMPORT_ANSWER_SUMMARY"
    ))
}

/// Rows per ImportLeads message.
const MAX_IMPORT_BATCH: usize = 1000;

impl Api {
    /// One import row: rejected with its violations (nothing stored), or captured.
    /// One import message: rows that fail validation are rejected with their violations (nothing
    /// stored); the rest are captured together in one transaction.
    async fn import_batch(
        &self,
        tenant: &TenantId,
        first_row_number: i64,
        rows: &[CaptureLeadRequest],
    ) -> Result<Vec<ImportRowResult>, Error> {
        let mut results: Vec<ImportRowResult> = Vec::with_capacity(rows.len());
        let mut valid = Vec::new();
        let mut valid_at = Vec::new();
        for (i, row) in rows.iter().enumerate() {
            let mut violations = Violations::new();
            let new = validate_capture(&convert::capture_input(row), time::now(), &mut violations);
            results.push(ImportRowResult {
                row_number: first_row_number + i as i64,
                status: ImportRowStatus::Rejected as i32,
                lead_id: String::new(),
                violations: field_violations(&violations),
            });
            if violations.is_empty() {
                valid.push(new);
                valid_at.push(i);
            }
        }
        let answers = self.store.capture_batch(tenant, &valid).await?;
        for (i, answer) in valid_at.into_iter().zip(answers) {
            let result = &mut results[i];
            match answer {
                Ok((view, outcome)) => {
                    result.status = match outcome {
                        CaptureOutcome::Created => ImportRowStatus::Created,
                        CaptureOutcome::MatchedExisting => ImportRowStatus::MatchedExisting,
                        CaptureOutcome::Replayed { .. } => ImportRowStatus::AlreadyImported,
                    } as i32;
                    result.lead_id = view.lead.lead_id;
                }
                // A row key reused for a different row is that row's problem, not the import's.
                Err(Error::Invalid(v)) => result.violations = field_violations(&v),
                Err(other) => return Err(other),
            }
        }
        Ok(results)
    }
}

fn field_violations(violations: &Violations) -> Vec<FieldViolation> {
    violations
        .iter()
        .map(|(field, description)| FieldViolation {
            field: field.into(),
            description: description.into(),
        })
        .collect()
}

#[tonic::async_trait]
impl CaptureService for Api {
    async fn capture_lead(
        &self,
        request: Request<CaptureLeadRequest>,
    ) -> Result<Response<CaptureLeadResponse>, Status> {
        let tenant = TenantId::of(&request)?;
        let mut violations = Violations::new();
        let new = validate_capture(
            &convert::capture_input(request.get_ref()),
            time::now(),
            &mut violations,
        );
        violations.into_result()?;
        let (view, outcome) = self.writer.capture(&tenant, new).await?;
        Ok(Response::new(CaptureLeadResponse {
            lead: Some(lead_to_proto(&view)),
            created: outcome.created(),
        }))
    }

    async fn record_activity(
        &self,
        request: Request<RecordActivityRequest>,
    ) -> Result<Response<RecordActivityResponse>, Status> {
        let tenant = TenantId::of(&request)?;
        let req = request.into_inner();
        let mut violations = Violations::new();
        let occurred_at = time::past_or_now(
            "occurred_at",
            req.occurred_at.as_ref(),
            time::now(),
            &mut violations,
        );
        let new = validate_activity(
            ActivityInput {
                idempotency_key: &req.idempotency_key,
                lead_id: &req.lead_id,
                kind: req.kind,
                occurred_at,
                url: &req.url,
                page_kind: req.page_kind,
                call: req.call.map(convert::call_facts),
                subject: &req.subject,
                performed_by: &req.performed_by,
                machine_generated: req.machine_generated,
                machine_reason: &req.machine_reason,
            },
            &mut violations,
        );
        violations.into_result()?;
        let (activity, created) = self.store.record_activity(&tenant, &new).await?;
        Ok(Response::new(RecordActivityResponse {
            activity: Some(activity_to_proto(&activity)),
            created,
        }))
    }

    async fn get_lead(&self, request: Request<GetLeadRequest>) -> Result<Response<Lead>, Status> {
        let tenant = TenantId::of(&request)?;
        let lead_id = fields::required_id("lead_id", &request.get_ref().lead_id)?;
        let view = self.store.get_lead(&tenant, &lead_id).await?;
        Ok(Response::new(lead_to_proto(&view)))
    }

    async fn update_lead(
        &self,
        request: Request<UpdateLeadRequest>,
    ) -> Result<Response<Lead>, Status> {
        let tenant = TenantId::of(&request)?;
        let req = request.into_inner();
        let lead_id = fields::required_id("lead_id", &req.lead_id)?;
        let patch = req.lead.unwrap_or_default();
        let paths = req.update_mask.map(|m| m.paths).unwrap_or_default();
        let view = self
            .store
            .update_lead(&tenant, &lead_id, |current, email_domain| {
                let mut violations = Violations::new();
                let (next, changed) = apply_update(
                    current,
                    &convert::lead_patch(&patch),
                    &paths,
                    email_domain,
                    &mut violations,
                );
                violations
                    .into_result()
                    .map(|()| (next, changed))
                    .map_err(Error::from)
            })
            .await?;
        Ok(Response::new(lead_to_proto(&view)))
    }

    async fn import_leads(
        &self,
        request: Request<Streaming<ImportLeadsRequest>>,
    ) -> Result<Response<ImportLeadsResponse>, Status> {
        let tenant = TenantId::of(&request)?;
        let mut stream = request.into_inner();
        let mut import = ImportLeadsResponse::default();
        let mut answer = ImportAnswer::EveryRow;
        while let Some(batch) = stream.message().await? {
            let given = batch.import_id.trim();
            if import.import_id.is_empty() {
                let mut violations = Violations::new();
                check_key("import_id", given, &mut violations);
                answer = match ImportAnswer::try_from(batch.answer) {
                    Ok(ImportAnswer::Unspecified) => ImportAnswer::EveryRow,
                    Ok(a) => a,
                    Err(_) => {
                        violations.add("answer", "must be an ImportAnswer");
                        ImportAnswer::EveryRow
                    }
                };
                violations.into_result()?;
                import.import_id = given.to_owned();
            } else if !given.is_empty() && given != import.import_id {
                return Err(Error::invalid("import_id", "must not change during an import").into());
            }
            if batch.rows.len() > MAX_IMPORT_BATCH {
                return Err(Error::invalid(
                    "rows",
                    format!("at most {MAX_IMPORT_BATCH} rows per message"),
                )
                .into());
            }
            if answer == ImportAnswer::EveryRow
                && import.results.len() + batch.rows.len() > self.max_import_results
            {
                return Err(too_many_results(import.rows, self.max_import_results));
            }
            let first_row_number = import.rows + 1;
            let mut rows = batch.rows;
            for row in rows.iter_mut() {
                import.rows += 1;
                if row.request_id.trim().is_empty() {
                    row.request_id = format!("{}:{}", import.import_id, import.rows);
                }
            }
            for result in self.import_batch(&tenant, first_row_number, &rows).await? {
                match ImportRowStatus::try_from(result.status) {
                    Ok(ImportRowStatus::Created) => import.created += 1,
                    Ok(ImportRowStatus::MatchedExisting) => import.matched_existing += 1,
                    Ok(ImportRowStatus::AlreadyImported) => import.already_imported += 1,
                    _ => import.rejected += 1,
                }
                let keep = match answer {
                    ImportAnswer::Summary => false,
                    ImportAnswer::RejectedOnly => result.status == ImportRowStatus::Rejected as i32,
                    _ => true,
                };
                if keep {
                    import.results.push(result);
                }
            }
            if import.results.len() > self.max_import_results {
                return Err(too_many_results(import.rows, self.max_import_results));
            }
        }
        if import.import_id.is_empty() {
            return Err(Error::invalid("import_id", "is required on the first message").into());
        }
        Ok(Response::new(import))
    }

    async fn merge_leads(
        &self,
        request: Request<MergeLeadsRequest>,
    ) -> Result<Response<Lead>, Status> {
        let tenant = TenantId::of(&request)?;
        let req = request.get_ref();
        let mut violations = Violations::new();
        for (field, value) in [
            ("survivor_lead_id", &req.survivor_lead_id),
            ("merged_lead_id", &req.merged_lead_id),
        ] {
            if value.trim().is_empty() {
                violations.add(field, "is required");
            }
        }
        if !req.survivor_lead_id.trim().is_empty()
            && req.survivor_lead_id.trim() == req.merged_lead_id.trim()
        {
            violations.add("merged_lead_id", "must differ from survivor_lead_id");
        }
        violations.into_result()?;
        let view = self
            .store
            .merge_leads(
                &tenant,
                req.survivor_lead_id.trim(),
                req.merged_lead_id.trim(),
            )
            .await?;
        Ok(Response::new(lead_to_proto(&view)))
    }

    async fn erase_lead(
        &self,
        request: Request<EraseLeadRequest>,
    ) -> Result<Response<Lead>, Status> {
        let tenant = TenantId::of(&request)?;
        let lead_id = fields::required_id("lead_id", &request.get_ref().lead_id)?;
        let view = self.store.erase_lead(&tenant, &lead_id).await?;
        Ok(Response::new(lead_to_proto(&view)))
    }

    async fn record_visits(
        &self,
        request: Request<RecordVisitsRequest>,
    ) -> Result<Response<RecordVisitsResponse>, Status> {
        let tenant = TenantId::of(&request)?;
        let req = request.into_inner();
        let mut violations = Violations::new();
        let visits = validate_visits(
            &req.channel,
            &req.campaign,
            &req.day,
            req.visitors,
            &mut violations,
        );
        violations.into_result()?;
        self.store.record_visits(&tenant, &visits).await?;
        Ok(Response::new(RecordVisitsResponse {
            channel: visits.channel,
            day: visits.day,
            visitors: visits.visitors,
            campaign: visits.campaign,
        }))
    }

    async fn list_leads(
        &self,
        request: Request<ListLeadsRequest>,
    ) -> Result<Response<ListLeadsResponse>, Status> {
        let tenant = TenantId::of(&request)?;
        let req = request.into_inner();
        let mut violations = Violations::new();
        let page = Page::parse(req.page_size, &req.page_token, &mut violations);
        let mut time_of = |field: &str, t: Option<&prost_types::Timestamp>| {
            fields::optional_time(field, t, &mut violations)
        };
        let filter = LeadFilter {
            company_id: Some(req.company_id.trim().to_owned()).filter(|s| !s.is_empty()),
            channel: Some(req.channel.trim().to_owned()).filter(|s| !s.is_empty()),
            captured_from: time_of("captured_from", req.captured_from.as_ref()),
            captured_to: time_of("captured_to", req.captured_to.as_ref()),
        };
        violations.into_result()?;
        let (views, next_page_token) = self.store.list_leads(&tenant, &filter, page).await?;
        Ok(Response::new(ListLeadsResponse {
            leads: views.iter().map(lead_to_proto).collect(),
            next_page_token,
        }))
    }
}
