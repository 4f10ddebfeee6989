//! Group commit for CaptureLead: concurrent captures are queued and written in shared
//! transactions (one commit, one fsync, and a few set-based statements for every capture that
//! arrived meanwhile), each answered as if it had been alone. A capture's answer is sent only
//! after its transaction committed. SQLite has one writer task; PostgreSQL several.

use std::sync::Arc;

use baton_shared::TenantId;
use tokio::sync::{Mutex, mpsc, oneshot};
use tracing::{Instrument, Span};

use super::{Captured, Store};
use crate::domain::lead::NewLead;
use crate::error::Error;

struct Job {
    tenant: TenantId,
    lead: NewLead,
    span: Span,
    reply: oneshot::Sender<Captured>,
}

/// The queue in front of the writers.
#[derive(Clone)]
pub struct GroupCommit {
    queue: mpsc::Sender<Job>,
    store: Store,
}

impl GroupCommit {
    /// Starts `writers` tasks (1 for SQLite's single writer; a few for PostgreSQL's pool), each
    /// taking up to `max_batch` waiting captures per transaction. They stop when every
    /// `GroupCommit` handle is dropped.
    pub fn start(store: Store, writers: usize, max_batch: usize) -> Self {
        let (queue, jobs) = mpsc::channel::<Job>(max_batch * writers.max(1) * 4);
        let jobs = Arc::new(Mutex::new(jobs));
        for _ in 0..writers.max(1) {
            let (store, jobs) = (store.clone(), jobs.clone());
            tokio::spawn(async move {
                loop {
                    let batch = {
                        let mut jobs = jobs.lock().await;
                        let Some(first) = jobs.recv().await else {
                            return;
                        };
                        let mut batch = vec![first];
                        while batch.len() < max_batch {
                            match jobs.try_recv() {
                                Ok(job) => batch.push(job),
                                Err(_) => break,
                            }
                        }
                        batch
                    };
                    write(&store, batch).await;
                }
            });
        }
        GroupCommit { queue, store }
    }

    /// Captures one lead in the next shared transaction.
    pub async fn capture(&self, tenant: &TenantId, lead: NewLead) -> Captured {
        let (reply, answer) = oneshot::channel();
        let job = Job {
            tenant: tenant.clone(),
            lead,
            span: Span::current(),
            reply,
        };
        match self.queue.send(job).await {
            Ok(()) => match answer.await {
                Ok(answer) => answer,
                // The writer went away (shutting down) before answering: UNAVAILABLE, so the
                // client retries (request_id makes a retry safe whether or not it was written).
                Err(_) => Err(Error::WriterStopped),
            },
            Err(mpsc::error::SendError(job)) => self.store.capture_lead(tenant, &job.lead).await,
        }
    }
}

/// Writes one batch, tenant by tenant, and answers every job.
async fn write(store: &Store, batch: Vec<Job>) {
    let mut by_tenant: Vec<(TenantId, Vec<Job>)> = Vec::new();
    for job in batch {
        match by_tenant.iter_mut().find(|(t, _)| *t == job.tenant) {
            Some((_, jobs)) => jobs.push(job),
            None => by_tenant.push((job.tenant.clone(), vec![job])),
        }
    }
    for (tenant, jobs) in by_tenant {
        let rows: Vec<(&NewLead, Span)> = jobs.iter().map(|j| (&j.lead, j.span.clone())).collect();
        let answers = store.capture_traced(&tenant, &rows).await;
        drop(rows);
        match answers {
            Ok(answers) => {
                for (job, answer) in jobs.into_iter().zip(answers) {
                    let _ = job.reply.send(answer);
                }
            }
            Err(_) => {
                // The shared transaction could not even begin: each capture is tried alone and
                // gets its own answer (and error status).
                for job in jobs {
                    let answer = store
                        .capture_lead(&tenant, &job.lead)
                        .instrument(job.span.clone())
                        .await;
                    let _ = job.reply.send(answer);
                }
            }
        }
    }
}
