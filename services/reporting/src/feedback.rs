//! What FS's verdicts teach marketing: win factors of a team pair's handed-off leads, checked,
//! read and computed.

use baton_proto::reporting::v1::{self as pb, GetWinFactorsRequest};
use baton_shared::{TenantId, Violations, fields::MAX_ID_LEN, time};

use crate::{domain::factors, error::Error, store::Store};

/// Default and largest `min_sample`.
const MIN_SAMPLE: i64 = 30;
const MAX_MIN_SAMPLE: i32 = 100_000;

pub async fn win_factors(
    store: &Store,
    tenant: &TenantId,
    req: &GetWinFactorsRequest,
) -> Result<pb::WinFactors, Error> {
    let mut v = Violations::new();
    let is_team = v.required("is_team", &req.is_team, MAX_ID_LEN);
    let fs_team = v.required("fs_team", &req.fs_team, MAX_ID_LEN);
    let mut stamp = |field: &str, t: Option<&prost_types::Timestamp>| match t.map(time::from_proto)
    {
        Some(Some(t)) => Some(t),
        Some(None) => {
            v.add(field, "is not a valid timestamp");
            None
        }
        None => {
            v.add(field, "is required");
            None
        }
    };
    let from = stamp("from", req.from.as_ref());
    let to = stamp("to", req.to.as_ref());
    if let (Some(f), Some(t)) = (from, to)
        && f >= t
    {
        v.add("to", "must be after from");
    }
    if !(0..=MAX_MIN_SAMPLE).contains(&req.min_sample) {
        v.add(
            "min_sample",
            format!("must be between 0 and {MAX_MIN_SAMPLE}"),
        );
    }
    v.into_result()?;
    let (from, to) = (from.unwrap_or_default(), to.unwrap_or_default());
    let min_sample = if req.min_sample == 0 {
        MIN_SAMPLE
    } else {
        i64::from(req.min_sample)
    };
    let leads = store
        .decided_handoffs(tenant, (&is_team, &fs_team), (from, to))
        .await?;
    let (won, decided, found) = factors::factors(&leads, min_sample);
    let pct = |x: f64| x * 100.0;
    Ok(pb::WinFactors {
        is_team,
        fs_team,
        from: Some(time::to_proto(from)),
        to: Some(time::to_proto(to)),
        won,
        decided,
        win_rate_pct: (decided > 0).then(|| pct(won as f64 / decided as f64)),
        min_sample: min_sample as i32,
        factors: found
            .into_iter()
            .map(|f| pb::WinFactor {
                dimension: f.dimension,
                value: f.value,
                won: f.won,
                decided: f.decided,
                win_rate_pct: f.win_rate.map(pct),
                lift: f.lift,
                interval_low_pct: f.interval.map(|i| pct(i.0)),
                interval_high_pct: f.interval.map(|i| pct(i.1)),
                small_sample: f.small_sample,
            })
            .collect(),
    })
}
