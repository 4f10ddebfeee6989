//! A contract's attainment, read once or watched: a request checked, the period's numbers read
//! and every target judged; a watch sends it again whenever one of its numbers (a numerator, a
//! denominator or a status) changes. Scorecards: a period's attainment frozen at close, signed by
//! both owners.

use std::time::Duration;

use baton_proto::reporting::v1::{self as pb, GetAttainmentRequest};
use baton_shared::{TenantId, time};
use tokio::sync::mpsc;
use tokio_stream::wrappers::ReceiverStream;

use crate::{
    convert::attainment::{self as convert, AttainmentQuery},
    error::Error,
    store::{Store, scorecards::NewScorecard},
};

/// The attainment a request asks for.
pub async fn get(
    store: &Store,
    tenant: &TenantId,
    req: &GetAttainmentRequest,
) -> Result<pb::Attainment, Error> {
    let query = convert::attainment_query(req)?;
    read(store, tenant, &query).await
}

async fn read(
    store: &Store,
    tenant: &TenantId,
    query: &AttainmentQuery,
) -> Result<pb::Attainment, Error> {
    let as_of = query.as_of.unwrap_or_else(time::now);
    let numbers = store
        .period_numbers(tenant, &query.contract_id, query.period_start, as_of)
        .await?;
    Ok(convert::attainment_to_proto(&numbers, as_of, query.by_rep))
}

/// What a watcher is told about: every number and status, not the projection (which moves with
/// the clock alone) nor the moment.
fn fingerprint(a: &pb::Attainment) -> Vec<(String, i64, i64, i32)> {
    let row = |prefix: &str, t: &pb::TargetAttainment| {
        (
            format!("{prefix}/{}", t.target),
            t.numerator,
            t.denominator,
            t.status,
        )
    };
    let mut out: Vec<_> = a.targets.iter().map(|t| row("", t)).collect();
    for r in &a.reps {
        out.extend(r.targets.iter().map(|t| row(&r.rep, t)));
    }
    out.push(("breaches".into(), a.human_breaches, a.system_breaches, 0));
    out
}

/// How often a watch looks, and for how long at most.
#[derive(Debug, Clone, Copy)]
pub struct WatchPace {
    pub interval: Duration,
    pub max: Duration,
}

/// The attainment now, then again whenever it changes, until the receiver goes away or `pace.max`
/// passes.
pub async fn watch(
    store: Store,
    tenant: TenantId,
    req: &GetAttainmentRequest,
    pace: WatchPace,
) -> Result<ReceiverStream<Result<pb::Attainment, tonic::Status>>, Error> {
    let query = convert::attainment_query(req)?;
    if query.as_of.is_some() {
        return Err(Error::invalid(
            "as_of",
            "must be unset: a watch follows the present",
        ));
    }
    let first = read(&store, &tenant, &query).await?;
    let (tx, rx) = mpsc::channel(4);
    tokio::spawn(async move {
        let mut last = fingerprint(&first);
        if tx.send(Ok(first)).await.is_err() {
            return;
        }
        let until = tokio::time::Instant::now() + pace.max;
        loop {
            tokio::select! {
                _ = tokio::time::sleep(pace.interval) => {}
                _ = tx.closed() => return,
            }
            if tokio::time::Instant::now() >= until {
                return;
            }
            let next = read(&store, &tenant, &query).await;
            let next = match next {
                Ok(a) => a,
                Err(e) => {
                    let _ = tx.send(Err(e.into())).await;
                    return;
                }
            };
            let print = fingerprint(&next);
            if print != last {
                last = print;
                if tx.send(Ok(next)).await.is_err() {
                    return;
                }
            }
        }
    });
    Ok(ReceiverStream::new(rx))
}

/// Closes a period: its attainment as of the period's end (per rep too) frozen into a
/// scorecard, once the period ended more than `grace` ago. A closed period's scorecard is
/// returned as it is.
pub async fn close(
    store: &Store,
    tenant: &TenantId,
    req: &pb::CloseScorecardRequest,
    closed_by: &str,
    grace: chrono::Duration,
) -> Result<pb::Scorecard, Error> {
    let (contract_id, period_start) = convert::close_query(req)?;
    let numbers = store
        .period_numbers(tenant, &contract_id, Some(period_start), period_start)
        .await?;
    if let Some(view) = store
        .scorecard_of_period(tenant, &contract_id, period_start)
        .await?
    {
        return Ok(convert::scorecard_to_proto(&view));
    }
    let opens = numbers.period.end + grace;
    if time::now() < opens {
        return Err(Error::rule(
            "period_not_over",
            format!(
                "the period ends {} and may be closed from {} (contracts.scorecard_grace_hours after)",
                numbers.period.end.to_rfc3339(),
                opens.to_rfc3339()
            ),
        ));
    }
    let frozen = convert::attainment_to_proto(&numbers, numbers.period.end, true);
    let view = store
        .insert_scorecard(
            tenant,
            NewScorecard {
                contract_id: contract_id.clone(),
                contract_version: numbers.contract.version,
                period_start,
                period_end: numbers.period.end,
                attainment: prost::Message::encode_to_vec(&frozen),
                closed_by: closed_by.to_owned(),
            },
        )
        .await?;
    Ok(convert::scorecard_to_proto(&view))
}

/// Signs a scorecard as the IS owner or the FS owner of its contract.
pub async fn sign(
    store: &Store,
    tenant: &TenantId,
    scorecard_id: &str,
    signer: &str,
) -> Result<pb::Scorecard, Error> {
    let (card, _) = store.get_scorecard(tenant, scorecard_id).await?;
    let terms = store.contract_terms(tenant, &card.contract_id).await?;
    let owns = |o: &str| !o.trim().is_empty() && o.trim().eq_ignore_ascii_case(signer);
    let is_side = if owns(&terms.is_owner) {
        true
    } else if owns(&terms.fs_owner) {
        false
    } else {
        return Err(Error::NotAllowed(format!(
            "{signer} is neither the IS owner nor the FS owner of the contract"
        )));
    };
    let view = store
        .sign_scorecard(tenant, scorecard_id, signer, is_side)
        .await?;
    Ok(convert::scorecard_to_proto(&view))
}
