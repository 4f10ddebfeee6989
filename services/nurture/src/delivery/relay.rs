//! The relay: records nurture's e-mail activities (from the outbox) in capture over gRPC, each
//! with its idempotency key, as the tenant's service identity. Capture's answers decide: done
//! (recorded now or before), refused for good (logged and dropped), or try again later.

use std::collections::BTreeMap;

use baton_proto::capture::v1::{
    RecordActivityRequest, capture_service_client::CaptureServiceClient,
};
use baton_shared::{
    auth::token::{BearerInterceptor, ServiceCredentials},
    time,
};
use futures::StreamExt;
use sea_orm::DbErr;
use tonic::{Code, service::interceptor::InterceptedService, transport::Channel};

use crate::store::{Store, entities::activity_outbox, outbox};

/// Calls to capture in flight at once.
const IN_FLIGHT: usize = 32;

pub struct Relay {
    pub store: Store,
    pub capture: Channel,
    pub credentials: ServiceCredentials,
    pub batch: u64,
}

enum Answer {
    Done,
    Refused(String),
    Later(String),
}

impl Relay {
    /// One round; returns how many rows it took off the outbox.
    pub async fn round(&self) -> Result<u64, DbErr> {
        let rows = outbox::due(&self.store.db, self.batch.max(1)).await?;
        if rows.is_empty() {
            return Ok(0);
        }
        let mut by_tenant: BTreeMap<String, Vec<activity_outbox::Model>> = BTreeMap::new();
        for r in rows {
            by_tenant.entry(r.tenant_id.clone()).or_default().push(r);
        }
        let mut done = Vec::new();
        for (tenant, rows) in by_tenant {
            let token = match self.credentials.bearer_for_tenant(&tenant) {
                Ok(t) => t,
                Err(e) => {
                    tracing::warn!(%tenant, error = %e, "nurture relay: no service identity");
                    continue;
                }
            };
            let client = CaptureServiceClient::with_interceptor(
                self.capture.clone(),
                BearerInterceptor::new(token.as_deref()),
            );
            let answers: Vec<(activity_outbox::Model, Answer)> = futures::stream::iter(rows)
                .map(|row| {
                    let mut client = client.clone();
                    async move {
                        let answer = record(&mut client, &row).await;
                        (row, answer)
                    }
                })
                .buffer_unordered(IN_FLIGHT)
                .collect()
                .await;
            for (row, answer) in answers {
                match answer {
                    Answer::Done => done.push(row.seq),
                    Answer::Refused(why) => {
                        tracing::warn!(tenant = %row.tenant_id, lead = %row.lead_id, "capture refused nurture's activity: {why}");
                        done.push(row.seq);
                    }
                    Answer::Later(why) => outbox::retry_later(&self.store.db, &row, &why).await?,
                }
            }
        }
        let n = done.len() as u64;
        outbox::delete(&self.store.db, &done).await?;
        Ok(n)
    }
}

type Client = CaptureServiceClient<InterceptedService<Channel, BearerInterceptor>>;

async fn record(client: &mut Client, row: &activity_outbox::Model) -> Answer {
    let req = RecordActivityRequest {
        idempotency_key: row.idempotency_key.clone(),
        lead_id: row.lead_id.clone(),
        kind: row.kind,
        occurred_at: Some(time::to_proto(row.occurred_at.min(time::now()))),
        url: row.url.chars().take(2048).collect(),
        subject: row.subject.chars().take(200).collect(),
        machine_generated: row.machine_reason.is_some(),
        machine_reason: row.machine_reason.clone().unwrap_or_default(),
        ..RecordActivityRequest::default()
    };
    match client.record_activity(req).await {
        Ok(_) => Answer::Done,
        Err(s) => match s.code() {
            Code::InvalidArgument
            | Code::NotFound
            | Code::FailedPrecondition
            | Code::PermissionDenied => Answer::Refused(s.message().to_owned()),
            _ => Answer::Later(format!("{:?}: {}", s.code(), s.message())),
        },
    }
}
