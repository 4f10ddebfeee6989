//! The background worker that fires due SLA timers, reassigns what they ask to, and takes the
//! contract's action on disputes nobody ruled in time.

use baton_shared::events::EventLog;
use sea_orm::{DatabaseConnection, DbErr, TransactionTrait};

use super::{handoff_steps, routing, timers};

/// Fires due timers. Each round claims a batch inside one transaction (on PostgreSQL with
/// `FOR UPDATE SKIP LOCKED`, so replicas take different timers) and marks them fired in it, so a
/// timer fires exactly once.
#[derive(Clone)]
pub struct Timers {
    db: DatabaseConnection,
    log: EventLog,
    batch: u64,
}

impl Timers {
    pub fn new(db: DatabaseConnection, log: EventLog, batch: u64) -> Self {
        Timers { db, log, batch }
    }

    /// One round in one transaction: due timers fire exactly once, and the leads whose response
    /// timer asks for it are routed again. Returns how many timers fired.
    pub async fn fire_due(&self) -> Result<usize, DbErr> {
        let txn = self.db.begin().await?;
        let fired = timers::fire_due(&txn, self.batch).await?;
        for (tenant, open) in fired.to_reassign {
            routing::reassign(&txn, &tenant, open).await?;
        }
        for (tenant, handoff_id, action) in fired.rulings {
            handoff_steps::dispute_deadline(&txn, &tenant, &handoff_id, &action)
                .await
                .map_err(|e| match e {
                    crate::error::Error::Database(db) => db,
                    other => DbErr::Custom(other.to_string()),
                })?;
        }
        txn.commit().await?;
        if fired.count > 0 {
            self.log.notify_committed();
        }
        Ok(fired.count)
    }
    /// Runs until `shutdown` (see [`baton_shared::background::repeat`]).
    pub async fn run(
        self,
        interval: std::time::Duration,
        shutdown: tokio_util::sync::CancellationToken,
    ) {
        baton_shared::background::repeat("SLA timers", interval, shutdown, move || {
            let timers = self.clone();
            async move { timers.fire_due().await.map(|n| n as u64) }
        })
        .await
    }
}

/// The gauges of open SLA timers: due later, and overdue (past due, not fired yet: the worker
/// is behind or down).
pub fn gauges() -> Vec<baton_shared::metrics::Sample> {
    let open = |state: &'static str, sql: &'static str| baton_shared::metrics::Sample {
        gauge: |m| &m.sla_timers,
        attributes: vec![baton_shared::metrics::KeyValue::new("state", state)],
        sql: sql.to_owned(),
    };
    vec![
        open(
            "due",
            "SELECT COUNT(*) AS n FROM sla_timer \
             WHERE fired_at IS NULL AND resolved_at IS NULL AND due_at > $1",
        ),
        open(
            "overdue",
            "SELECT COUNT(*) AS n FROM sla_timer \
             WHERE fired_at IS NULL AND resolved_at IS NULL AND due_at <= $1",
        ),
    ]
}
