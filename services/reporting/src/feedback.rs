//! What FS's verdicts teach marketing: win factors of a team pair's handed-off leads, checked,
//! read and computed; and a draft scoring model made from them in qualification, for marketing to
//! simulate and adopt.

use baton_proto::{
    qualification::v1::{
        AttributeTrigger, CreateScoringModelRequest, FieldCondition, ListScoringModelsRequest,
        ModelStatus, NumberRange, ScoringModelDefinition, ScoringRule, field_condition::Comparison,
        qualification_service_client::QualificationServiceClient, scoring_rule::Trigger,
    },
    reporting::v1::{self as pb, GetWinFactorsRequest},
};
use baton_shared::{
    TenantId, Violations,
    fields::{self, MAX_ID_LEN},
    time,
};

use crate::{domain::factors, error::Error, store::Store};

/// Defaults and bounds of the request's numbers (0 in a request means the default).
const MIN_SAMPLE: i64 = 30;
const MAX_MIN_SAMPLE: i32 = 100_000;
const SCORE_BAND_WIDTH: i64 = 20;
const MAX_SCORE_BAND_WIDTH: i32 = 1_000;
const MIN_LIFT: f64 = 1.2;
const POINTS_PER_LIFT: i64 = 20;
const MAX_POINTS: i64 = 50;
const MAX_MAX_POINTS: i32 = 1_000;

/// `value`, or `default` when it is 0.
fn or_default(value: i32, default: i64) -> i64 {
    if value == 0 {
        default
    } else {
        i64::from(value)
    }
}

pub async fn win_factors(
    store: &Store,
    tenant: &TenantId,
    req: &GetWinFactorsRequest,
) -> Result<pb::WinFactors, Error> {
    let mut v = Violations::new();
    let is_team = v.required("is_team", &req.is_team, MAX_ID_LEN);
    let fs_team = v.required("fs_team", &req.fs_team, MAX_ID_LEN);
    let from = fields::required_time("start_time", req.start_time.as_ref(), &mut v);
    let to = fields::required_time("end_time", req.end_time.as_ref(), &mut v);
    if let (Some(f), Some(t)) = (from, to)
        && f >= t
    {
        v.add("end_time", "must be after start_time");
    }
    if !(0..=MAX_MIN_SAMPLE).contains(&req.min_sample) {
        v.add(
            "min_sample",
            format!("must be between 0 and {MAX_MIN_SAMPLE}"),
        );
    }
    if !(0..=MAX_SCORE_BAND_WIDTH).contains(&req.score_band_width) {
        v.add(
            "score_band_width",
            format!("must be between 0 and {MAX_SCORE_BAND_WIDTH}"),
        );
    }
    v.into_result()?;
    let (from, to) = (from.unwrap_or_default(), to.unwrap_or_default());
    let min_sample = or_default(req.min_sample, MIN_SAMPLE);
    let band_width = or_default(req.score_band_width, SCORE_BAND_WIDTH);
    let leads = store
        .decided_handoffs(tenant, (&is_team, &fs_team), (from, to), band_width)
        .await?;
    let (won, decided, found) = factors::factors(&leads, min_sample);
    let pct = |x: f64| x * 100.0;
    Ok(pb::WinFactors {
        is_team,
        fs_team,
        start_time: Some(time::to_proto(from)),
        end_time: Some(time::to_proto(to)),
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

/// How reporting reaches qualification: its endpoint and the transport settings.
#[derive(Clone)]
pub struct Qualification {
    pub endpoint: String,
    pub tls: baton_shared::settings::TlsSettings,
}

/// The scoring rule of a drafted segment.
fn rule_of(d: &factors::Drafted) -> ScoringRule {
    let condition = match &d.condition {
        factors::Condition::Equals { field, value } => FieldCondition {
            field: (*field).to_owned(),
            comparison: Some(Comparison::Equals(value.clone())),
            currency: String::new(),
        },
        factors::Condition::Range { field, gte, lt } => FieldCondition {
            field: (*field).to_owned(),
            comparison: Some(match lt {
                Some(lt) => Comparison::Range(NumberRange { gte: *gte, lt: *lt }),
                None => Comparison::Gte(*gte),
            }),
            currency: String::new(),
        },
    };
    ScoringRule {
        key: d.key.clone(),
        description: format!(
            "{} = {}: won {} of {} decided handoffs (lift {:.2})",
            d.factor.dimension,
            d.factor.value,
            d.factor.won,
            d.factor.decided,
            d.factor.lift.unwrap_or_default()
        ),
        points: d.points,
        trigger: Some(Trigger::Attribute(AttributeTrigger {
            conditions: vec![condition],
        })),
        cap: None,
        expires_after_days: 0,
    }
}

/// The tenant's active model's definition, read with the caller's channel (empty if none).
async fn active_definition(
    q: &mut QualificationServiceClient<baton_shared::peer::AuthChannel>,
) -> Result<ScoringModelDefinition, Error> {
    let mut page_token = String::new();
    loop {
        let page = q
            .list_scoring_models(ListScoringModelsRequest {
                page_size: 500,
                page_token: page_token.clone(),
            })
            .await
            .map_err(Error::Peer)?
            .into_inner();
        if let Some(active) = page
            .models
            .iter()
            .find(|m| m.status == ModelStatus::Active as i32)
        {
            return Ok(active.definition.clone().unwrap_or_default());
        }
        if page.next_page_token.is_empty() {
            return Ok(ScoringModelDefinition::default());
        }
        page_token = page.next_page_token;
    }
}

/// Drafts a scoring model from the pair's win factors and stores it in qualification as the
/// caller (`token`, `actor`).
pub async fn draft_model(
    store: &Store,
    tenant: &TenantId,
    req: &pb::DraftModelFromOutcomesRequest,
    (token, actor): (&str, &str),
    qualification: &Qualification,
) -> Result<pb::DraftModelFromOutcomesResponse, Error> {
    let mut v = Violations::new();
    if req.min_lift != 0.0 && !(1.0..=100.0).contains(&req.min_lift) {
        v.add("min_lift", "must be between 1 and 100 (0 = 1.2)");
    }
    if !(0..=100).contains(&req.points_per_lift) {
        v.add("points_per_lift", "must be between 0 and 100 (0 = 20)");
    }
    if !(0..=MAX_MAX_POINTS).contains(&req.max_points) {
        v.add(
            "max_points",
            format!("must be between 0 and {MAX_MAX_POINTS} (0 = {MAX_POINTS})"),
        );
    }
    v.into_result()?;
    let found = win_factors(store, tenant, &req.factors.clone().unwrap_or_default()).await?;
    let min_lift = if req.min_lift == 0.0 {
        MIN_LIFT
    } else {
        req.min_lift
    };
    let scale = factors::DraftScale {
        min_lift,
        points_per_lift: or_default(req.points_per_lift, POINTS_PER_LIFT),
        max_points: or_default(req.max_points, MAX_POINTS),
    };
    let computed: Vec<factors::Factor> = found
        .factors
        .iter()
        .map(|f| factors::Factor {
            dimension: f.dimension.clone(),
            value: f.value.clone(),
            won: f.won,
            decided: f.decided,
            win_rate: f.win_rate_pct.map(|p| p / 100.0),
            lift: f.lift,
            interval: None,
            small_sample: f.small_sample,
        })
        .collect();
    let drafted = factors::draft(&computed, scale);
    if drafted.is_empty() {
        return Err(Error::rule(
            "nothing_to_draft",
            format!(
                "no segment of {} decided handoffs has a lift of at least {min_lift} (or at most \
                 {:.2}) on a sample of at least {} on a field qualification scores on",
                found.decided,
                1.0 / min_lift,
                found.min_sample
            ),
        ));
    }
    let channel =
        baton_shared::peer::connect_with_token(&qualification.endpoint, &qualification.tls, token)
            .await
            .map_err(|e| Error::Peer(tonic::Status::unavailable(format!("qualification: {e}"))))?;
    let mut q = QualificationServiceClient::new(channel);
    let mut definition = active_definition(&mut q).await?;
    definition
        .rules
        .retain(|r| !r.key.starts_with(factors::DRAFTED_PREFIX));
    definition.rules.extend(drafted.iter().map(rule_of));
    let model = q
        .create_scoring_model(CreateScoringModelRequest {
            definition: Some(definition),
            created_by: actor.to_owned(),
        })
        .await
        .map_err(Error::Peer)?
        .into_inner();
    Ok(pb::DraftModelFromOutcomesResponse {
        model: Some(model),
        rules: drafted
            .iter()
            .map(|d| pb::DraftedRule {
                rule_key: d.key.clone(),
                dimension: d.factor.dimension.clone(),
                value: d.factor.value.clone(),
                lift: d.factor.lift.unwrap_or_default(),
                decided: d.factor.decided,
                points: d.points,
            })
            .collect(),
        factors: Some(found),
    })
}
