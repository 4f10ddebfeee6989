//! `baton models activate <model_id>`: makes a scoring model version the active one and follows
//! the re-scoring of every lead it starts, with a progress bar, until it is done.

use std::time::{Duration, Instant};

use anyhow::Context;
use baton_proto::qualification::v1::{
    ActivateScoringModelRequest, GetScoringModelRequest, RecomputeState, ScoringModel,
    qualification_service_client::QualificationServiceClient,
};
use baton_shared::{ServiceName, Settings, peer::AuthChannel};

/// How often the recompute's progress is read.
const POLL: Duration = Duration::from_millis(200);

/// Activates `model_id` (the caller is the activator); with `wait`, follows the recompute until
/// every lead is re-scored. Returns what to print.
pub async fn activate(settings: &Settings, model_id: &str, wait: bool) -> anyhow::Result<String> {
    let endpoint = &settings.service(ServiceName::Qualification).endpoint;
    let mut client = QualificationServiceClient::new(
        crate::access::connect(settings, endpoint)
            .await
            .with_context(|| format!("qualification at {endpoint}"))?,
    );
    let started = Instant::now();
    let model = client
        .activate_scoring_model(ActivateScoringModelRequest {
            model_id: model_id.to_owned(),
            activated_by: String::new(),
        })
        .await
        .map_err(|s| anyhow::anyhow!("ActivateScoringModel {model_id}: {}", s.message()))?
        .into_inner();
    let model = if wait {
        follow(&mut client, model).await?
    } else {
        model
    };
    let recompute = model.recompute.unwrap_or_default();
    let state = if recompute.state == RecomputeState::Done as i32 {
        format!(
            "{} of {} leads re-scored in {:.1} s",
            recompute.leads_done,
            recompute.leads_total,
            started.elapsed().as_secs_f64()
        )
    } else {
        format!(
            "re-scoring {} leads in the background (GetScoringModel shows the progress)",
            recompute.leads_total
        )
    };
    Ok(format!(
        "scoring model version {} ({}) is active; {state}\n",
        model.version, model.model_id
    ))
}

/// Reads the model until its recompute is done, moving a bar over its leads.
async fn follow(
    client: &mut QualificationServiceClient<AuthChannel>,
    mut model: ScoringModel,
) -> anyhow::Result<ScoringModel> {
    let total = model.recompute.as_ref().map_or(0, |r| r.leads_total);
    let bar = crate::progress::counting(u64::try_from(total).unwrap_or(0), "re-score");
    loop {
        let recompute = model.recompute.unwrap_or_default();
        bar.set_position(u64::try_from(recompute.leads_done).unwrap_or(0));
        if recompute.state == RecomputeState::Done as i32 {
            bar.finish_and_clear();
            return Ok(model);
        }
        tokio::time::sleep(POLL).await;
        model = client
            .get_scoring_model(GetScoringModelRequest {
                model_id: model.model_id.clone(),
            })
            .await
            .map_err(|s| anyhow::anyhow!("GetScoringModel {}: {}", model.model_id, s.message()))?
            .into_inner();
    }
}
