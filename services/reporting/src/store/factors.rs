//! What win factors read: a team pair's decided handoffs of a window with the segments of their
//! leads.

use baton_proto::distribution::v1::HandoffState;
use baton_shared::TenantId;
use chrono::{DateTime, Utc};
use sea_orm::{EntityTrait, QueryFilter, prelude::*};

use super::{
    Store,
    entities::{attainment_handoff as handoff, lead_dim},
};
use crate::{
    domain::factors::{Decided, score_band},
    error::Error,
};

fn segments(
    h: &handoff::Model,
    dim: Option<&lead_dim::Model>,
    band_width: i64,
) -> Vec<(String, String)> {
    let mut out = Vec::new();
    let mut put = |d: &str, v: &str| {
        if !v.is_empty() {
            out.push((d.to_owned(), v.to_owned()));
        }
    };
    if let Some(l) = dim {
        put("industry", &l.industry);
        put("employee_band", &l.employee_band);
        put("country", &l.country);
        put("channel", &l.channel);
        put("lead_magnet", &l.lead_magnet);
        put("funnel_position", &l.funnel_position);
    }
    put("rank", &h.rank_at_handoff);
    if let Some(score) = h.score_at_handoff {
        put("score_band", &score_band(score, band_width));
    }
    for (bit, item) in ["budget", "authority", "need", "timeframe"]
        .iter()
        .enumerate()
    {
        let confirmed = h.bant & (1 << bit) != 0;
        put(
            &format!("bant.{item}"),
            if confirmed {
                "confirmed"
            } else {
                "not_confirmed"
            },
        );
    }
    out
}

impl Store {
    /// The pair's handoffs created in `[from, to)` that are decided (won, lost or rejected),
    /// with score bands of `band_width`.
    pub async fn decided_handoffs(
        &self,
        tenant: &TenantId,
        (is_team, fs_team): (&str, &str),
        (from, to): (DateTime<Utc>, DateTime<Utc>),
        band_width: i64,
    ) -> Result<Vec<Decided>, Error> {
        let decided = [
            HandoffState::Won as i32,
            HandoffState::Lost as i32,
            HandoffState::Rejected as i32,
        ];
        let rows = handoff::Entity::find()
            .filter(handoff::Column::TenantId.eq(tenant.as_str()))
            .filter(handoff::Column::IsTeam.eq(is_team))
            .filter(handoff::Column::FsTeam.eq(fs_team))
            .filter(handoff::Column::CreatedAt.gte(from))
            .filter(handoff::Column::CreatedAt.lt(to))
            .filter(handoff::Column::State.is_in(decided))
            .all(&self.db)
            .await?;
        let mut dims = std::collections::HashMap::new();
        let ids: Vec<String> = rows.iter().map(|r| r.lead_id.clone()).collect();
        for chunk in ids.chunks(baton_shared::db::IN_CHUNK) {
            for d in lead_dim::Entity::find()
                .filter(lead_dim::Column::TenantId.eq(tenant.as_str()))
                .filter(lead_dim::Column::LeadId.is_in(chunk.iter().cloned()))
                .all(&self.db)
                .await?
            {
                dims.insert(d.lead_id.clone(), d);
            }
        }
        Ok(rows
            .iter()
            .map(|h| Decided {
                segments: segments(h, dims.get(&h.lead_id), band_width),
                won: h.state == HandoffState::Won as i32,
            })
            .collect())
    }
}
