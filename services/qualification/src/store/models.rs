//! Scoring model versions (draft → active → retired), the background recompute that follows an
//! activation, the sweeper that applies decay and inactivity as time passes, explanations and
//! simulations.

use std::collections::HashMap;

use baton_proto::qualification::v1::{ModelStatus, RecomputeState, Stage};
use baton_shared::{TenantId, paging::Page, time};
use chrono::{DateTime, Datelike, Duration, NaiveDate, TimeZone, Utc};
use sea_orm::{
    ActiveValue::{NotSet, Set},
    Condition, ConnectionTrait, DatabaseConnection, DbBackend, DbErr, EntityTrait, QueryFilter,
    QueryOrder, QuerySelect, TransactionTrait,
    prelude::*,
    sea_query::{LockBehavior, LockType},
};

use super::{
    Store,
    entities::{lead_outcome, lead_score, scoring_model, stage_history},
    find_score, lead_facts, rescore,
};
use crate::domain::scoring::{self, Computation, ModelDefinition, ScoringModel};
use crate::error::Error;

/// Rule name of every activation problem.
pub const RULE_MODEL_VALID: &str = "scoring_model_valid";

pub async fn active_row<C: ConnectionTrait>(
    db: &C,
    tenant: &TenantId,
) -> Result<Option<scoring_model::Model>, DbErr> {
    scoring_model::Entity::find()
        .filter(scoring_model::Column::TenantId.eq(tenant.as_str()))
        .filter(scoring_model::Column::Status.eq(ModelStatus::Active as i32))
        .order_by_desc(scoring_model::Column::Version)
        .one(db)
        .await
}

pub fn definition_of(row: &scoring_model::Model) -> Result<ModelDefinition, Vec<String>> {
    ModelDefinition::from_json(&row.definition).map_err(|e| vec![format!("definition: {e}")])
}

static COMPILED: baton_shared::parse_cache::ParseCache<(String, i32, String), ScoringModel> =
    baton_shared::parse_cache::ParseCache::new();

pub fn compile_row(row: &scoring_model::Model) -> Result<ScoringModel, Vec<String>> {
    let key = (row.model_id.clone(), row.version, row.definition.clone());
    COMPILED
        .get_or_parse(&key, || {
            scoring::compile(row.model_id.clone(), row.version, &definition_of(row)?)
        })
        .map(|m| (*m).clone())
}

/// Stores the default model (docs/domain.md) as the tenant's active version 1.
pub async fn seed_default<C: ConnectionTrait>(
    txn: &C,
    tenant: &TenantId,
) -> Result<scoring_model::Model, DbErr> {
    let def = ModelDefinition::parse_toml(scoring::DEFAULT_MODEL_TOML)
        .map_err(|e| DbErr::Custom(format!("default scoring model: {e}")))?;
    let now = time::now();
    scoring_model::ActiveModel {
        seq: NotSet,
        model_id: Set(uuid::Uuid::now_v7().to_string()),
        tenant_id: Set(tenant.to_string()),
        version: Set(1),
        mql_threshold: Set(def.mql_threshold),
        status: Set(ModelStatus::Active as i32),
        definition: Set(def.to_json()),
        created_at: Set(now),
        created_by: Set("baton (default model)".to_owned()),
        activated_at: Set(Some(now)),
        activated_by: Set("baton (default model)".to_owned()),
        recompute_state: Set(RecomputeState::Done as i32),
        recompute_total: Set(0),
        recompute_done: Set(0),
        recompute_cursor: Set(0),
        recompute_started_at: Set(Some(now)),
        recompute_finished_at: Set(Some(now)),
        recompute_lease_until: Set(None),
    }
    .insert(txn)
    .await
}

async fn find_model<C: ConnectionTrait>(
    db: &C,
    tenant: &TenantId,
    model_id: &str,
) -> Result<scoring_model::Model, Error> {
    scoring_model::Entity::find()
        .filter(scoring_model::Column::TenantId.eq(tenant.as_str()))
        .filter(scoring_model::Column::ModelId.eq(model_id))
        .one(db)
        .await?
        .ok_or_else(|| Error::not_found("scoring model", model_id))
}

fn invalid(problems: Vec<String>) -> Error {
    Error::RulesBroken(
        problems
            .into_iter()
            .map(|p| (RULE_MODEL_VALID.to_owned(), p))
            .collect(),
    )
}

/// A lead's score explained: the live computation under the model that scores it.
pub struct Explanation {
    pub score: lead_score::Model,
    pub model: ScoringModel,
    pub computation: Computation,
    pub computed_at: DateTime<Utc>,
}

/// How a simulation buckets time.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Period {
    Day,
    Week,
    Month,
}

impl Period {
    /// The start of the period holding `t` (UTC; weeks start on Monday).
    pub fn start_of(self, t: DateTime<Utc>) -> DateTime<Utc> {
        let d = t.date_naive();
        let day = match self {
            Period::Day => d,
            Period::Week => d - Duration::days(i64::from(d.weekday().num_days_from_monday())),
            Period::Month => NaiveDate::from_ymd_opt(d.year(), d.month(), 1).unwrap_or(d),
        };
        Utc.from_utc_datetime(&day.and_hms_opt(0, 0, 0).unwrap_or_default())
    }

    pub fn after(self, start: DateTime<Utc>) -> DateTime<Utc> {
        match self {
            Period::Day => start + Duration::days(1),
            Period::Week => start + Duration::weeks(1),
            Period::Month => start
                .checked_add_months(chrono::Months::new(1))
                .unwrap_or(start + Duration::days(31)),
        }
    }
}

/// The most periods one simulation reports.
pub const MAX_PERIODS: usize = 1000;

#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct PeriodResult {
    pub start: DateTime<Utc>,
    pub end: DateTime<Utc>,
    pub mqls: i64,
    pub reached_sql: i64,
    pub reached_opportunity: i64,
    pub reached_customer: i64,
    /// Of the MQLs, those handed off and later won or lost, and the won amount per currency
    /// (sorted by currency).
    pub won: i64,
    pub lost: i64,
    pub won_amount: Vec<(String, i64)>,
}

impl PeriodResult {
    /// Adds a won deal and its amount (in its currency).
    fn add_won(&mut self, amount: Option<(&str, i64)>) {
        self.won += 1;
        if let Some((currency, minor)) = amount {
            self.add_amount(currency, minor);
        }
    }

    fn add_amount(&mut self, currency: &str, minor: i64) {
        match self.won_amount.iter_mut().find(|(c, _)| c == currency) {
            Some((_, sum)) => *sum += minor,
            None => {
                self.won_amount.push((currency.to_owned(), minor));
                self.won_amount.sort();
            }
        }
    }

    /// The sum of `periods` over `[start, end)`.
    pub fn total(periods: &[PeriodResult], start: DateTime<Utc>, end: DateTime<Utc>) -> Self {
        let mut t = PeriodResult {
            start,
            end,
            ..PeriodResult::default()
        };
        for p in periods {
            t.mqls += p.mqls;
            t.reached_sql += p.reached_sql;
            t.reached_opportunity += p.reached_opportunity;
            t.reached_customer += p.reached_customer;
            t.won += p.won;
            t.lost += p.lost;
            for (c, m) in &p.won_amount {
                t.add_amount(c, *m);
            }
        }
        t
    }
}

pub struct Simulation {
    pub leads_evaluated: i64,
    pub periods: Vec<PeriodResult>,
}

/// What to simulate: a stored version or an unsaved definition.
pub enum SimulatedModel {
    Stored(String),
    Inline(ModelDefinition),
}

impl Store {
    /// Stores `definition` as a new draft version.
    pub async fn create_model(
        &self,
        tenant: &TenantId,
        definition: &ModelDefinition,
        created_by: &str,
    ) -> Result<scoring_model::Model, Error> {
        let txn = self.db.begin().await?;
        if active_row(&txn, tenant).await?.is_none() {
            seed_default(&txn, tenant).await?;
        }
        let latest = scoring_model::Entity::find()
            .filter(scoring_model::Column::TenantId.eq(tenant.as_str()))
            .order_by_desc(scoring_model::Column::Version)
            .one(&txn)
            .await?
            .map_or(0, |m| m.version);
        let row = scoring_model::ActiveModel {
            seq: NotSet,
            model_id: Set(uuid::Uuid::now_v7().to_string()),
            tenant_id: Set(tenant.to_string()),
            version: Set(latest + 1),
            mql_threshold: Set(definition.mql_threshold),
            status: Set(ModelStatus::Draft as i32),
            definition: Set(definition.to_json()),
            created_at: Set(time::now()),
            created_by: Set(created_by.to_owned()),
            activated_at: Set(None),
            activated_by: Set(String::new()),
            recompute_state: Set(RecomputeState::Unspecified as i32),
            recompute_total: Set(0),
            recompute_done: Set(0),
            recompute_cursor: Set(0),
            recompute_started_at: Set(None),
            recompute_finished_at: Set(None),
            recompute_lease_until: Set(None),
        }
        .insert(&txn)
        .await?;
        txn.commit().await?;
        Ok(row)
    }

    /// Replaces a draft's definition.
    pub async fn update_model(
        &self,
        tenant: &TenantId,
        model_id: &str,
        definition: &ModelDefinition,
    ) -> Result<scoring_model::Model, Error> {
        let txn = self.db.begin().await?;
        let row = find_model(&txn, tenant, model_id).await?;
        if row.status != ModelStatus::Draft as i32 {
            return Err(Error::RuleBroken {
                rule: "draft_only".into(),
                description: format!(
                    "version {} is {}; only drafts can be edited (create a new version)",
                    row.version,
                    status_name(row.status)
                ),
            });
        }
        let mut active: scoring_model::ActiveModel = row.into();
        active.definition = Set(definition.to_json());
        active.mql_threshold = Set(definition.mql_threshold);
        let row = active.update(&txn).await?;
        txn.commit().await?;
        Ok(row)
    }

    /// One version, or the active one when `model_id` is empty.
    pub async fn get_model(
        &self,
        tenant: &TenantId,
        model_id: &str,
    ) -> Result<scoring_model::Model, Error> {
        if !model_id.is_empty() {
            return find_model(&self.db, tenant, model_id).await;
        }
        let txn = self.db.begin().await?;
        let row = match active_row(&txn, tenant).await? {
            Some(r) => r,
            None => seed_default(&txn, tenant).await?,
        };
        txn.commit().await?;
        Ok(row)
    }

    pub async fn list_models(
        &self,
        tenant: &TenantId,
        page: Page,
    ) -> Result<(Vec<scoring_model::Model>, String), Error> {
        self.get_model(tenant, "").await?;
        Ok(baton_shared::paging::fetch_page(
            scoring_model::Entity::find()
                .filter(scoring_model::Column::TenantId.eq(tenant.as_str())),
            scoring_model::Column::Seq,
            |m| m.seq,
            page,
            &self.db,
        )
        .await?)
    }

    /// Makes a version active (retiring the current one) and starts the recompute of every lead.
    pub async fn activate_model(
        &self,
        tenant: &TenantId,
        model_id: &str,
        activated_by: &str,
    ) -> Result<scoring_model::Model, Error> {
        let txn = self.db.begin().await?;
        let row = find_model(&txn, tenant, model_id).await?;
        if row.status == ModelStatus::Active as i32 {
            return Err(Error::RuleBroken {
                rule: "already_active".into(),
                description: format!("version {} is already the active model", row.version),
            });
        }
        compile_row(&row).map_err(invalid)?;
        scoring_model::Entity::update_many()
            .col_expr(
                scoring_model::Column::Status,
                Expr::value(ModelStatus::Retired as i32),
            )
            .filter(scoring_model::Column::TenantId.eq(tenant.as_str()))
            .filter(scoring_model::Column::Status.eq(ModelStatus::Active as i32))
            .exec(&txn)
            .await?;
        let leads = lead_score::Entity::find()
            .filter(lead_score::Column::TenantId.eq(tenant.as_str()))
            .count(&txn)
            .await?;
        let now = time::now();
        let mut active: scoring_model::ActiveModel = row.into();
        active.status = Set(ModelStatus::Active as i32);
        active.activated_at = Set(Some(now));
        active.activated_by = Set(activated_by.to_owned());
        active.recompute_state = Set(RecomputeState::Running as i32);
        active.recompute_total = Set(leads as i64);
        active.recompute_done = Set(0);
        active.recompute_cursor = Set(0);
        active.recompute_started_at = Set(Some(now));
        active.recompute_finished_at = Set(None);
        active.recompute_lease_until = Set(None);
        let row = active.update(&txn).await?;
        txn.commit().await?;
        Ok(row)
    }

    /// A lead's score as of now under the model that scores it, rule by rule.
    pub async fn explain(&self, tenant: &TenantId, lead_id: &str) -> Result<Explanation, Error> {
        let txn = baton_shared::db::begin_snapshot(&self.db).await?;
        let score = find_score(&txn, tenant, lead_id)
            .await?
            .ok_or_else(|| Error::not_found("lead", lead_id))?;
        let row = match find_model(&txn, tenant, &score.model_id).await {
            Ok(r) => r,
            Err(Error::NotFound { .. }) => active_row(&txn, tenant)
                .await?
                .ok_or_else(|| Error::not_found("scoring model", &score.model_id))?,
            Err(e) => return Err(e),
        };
        let model = compile_row(&row).map_err(invalid)?;
        let facts = lead_facts(&txn, tenant, std::slice::from_ref(&score.lead_id))
            .await?
            .remove(&score.lead_id)
            .unwrap_or_default();
        txn.commit().await?;
        let computed_at = time::now();
        Ok(Explanation {
            computation: scoring::compute(&model, &facts, computed_at),
            score,
            model,
            computed_at,
        })
    }

    /// Runs a model over every lead's stored history, changing nothing. The scoring of each batch
    /// of leads runs on a blocking thread, not on the async workers; a simulation still running
    /// after `deadline` is stopped.
    pub async fn simulate(
        &self,
        tenant: &TenantId,
        which: SimulatedModel,
        (from, to): (DateTime<Utc>, DateTime<Utc>),
        period: Period,
        deadline: std::time::Duration,
    ) -> Result<Simulation, Error> {
        let started = std::time::Instant::now();
        let txn = baton_shared::db::begin_snapshot(&self.db).await?;
        let model = match which {
            SimulatedModel::Stored(id) => compile_row(&find_model(&txn, tenant, &id).await?),
            SimulatedModel::Inline(def) => scoring::compile("inline".into(), 0, &def),
        }
        .map_err(invalid)?;
        let model = std::sync::Arc::new(model);
        let mut periods = Vec::new();
        let mut start = period.start_of(from);
        while start < to {
            let end = period.after(start);
            periods.push(PeriodResult {
                start,
                end,
                ..Default::default()
            });
            start = end;
        }
        let mut evaluated = 0;
        let mut after_seq = 0;
        loop {
            let batch = lead_score::Entity::find()
                .filter(lead_score::Column::TenantId.eq(tenant.as_str()))
                .filter(lead_score::Column::Seq.gt(after_seq))
                .order_by_asc(lead_score::Column::Seq)
                .limit(500)
                .all(&txn)
                .await?;
            let Some(last) = batch.last() else { break };
            after_seq = last.seq;
            let ids: Vec<String> = batch.iter().map(|s| s.lead_id.clone()).collect();
            let history = SimulatedHistory::read(&txn, tenant, &ids).await?;
            let model = model.clone();
            let (scored, n) = tokio::task::spawn_blocking(move || {
                let n = history.evaluate(&model, &mut periods, from, to);
                (periods, n)
            })
            .await
            .map_err(|e| DbErr::Custom(format!("simulation worker failed: {e}")))?;
            periods = scored;
            evaluated += n;
            if started.elapsed() > deadline {
                return Err(Error::DeadlineExceeded(format!(
                    "the simulation evaluated {evaluated} leads in {} s and was stopped (scoring.simulation_deadline_seconds); simulate a shorter range or fewer periods",
                    deadline.as_secs()
                )));
            }
        }
        txn.commit().await?;
        Ok(Simulation {
            leads_evaluated: evaluated,
            periods,
        })
    }
}

/// What the simulation of a batch of leads reads: their facts, their later stages and their
/// outcomes.
struct SimulatedHistory {
    facts: HashMap<String, scoring::LeadFacts>,
    later: HashMap<String, Vec<(DateTime<Utc>, i32)>>,
    outcomes: HashMap<String, lead_outcome::Model>,
}

impl SimulatedHistory {
    async fn read(
        txn: &sea_orm::DatabaseTransaction,
        tenant: &TenantId,
        ids: &[String],
    ) -> Result<Self, DbErr> {
        let facts = lead_facts(txn, tenant, ids).await?;
        let mut later: HashMap<String, Vec<(DateTime<Utc>, i32)>> = HashMap::new();
        for h in stage_history::Entity::find()
            .filter(stage_history::Column::TenantId.eq(tenant.as_str()))
            .filter(stage_history::Column::LeadId.is_in(ids.iter().cloned()))
            .filter(stage_history::Column::ToStage.is_in([
                Stage::Sql as i32,
                Stage::Opportunity as i32,
                Stage::Customer as i32,
            ]))
            .all(txn)
            .await?
        {
            later
                .entry(h.lead_id)
                .or_default()
                .push((h.changed_at, h.to_stage));
        }
        let outcomes: HashMap<String, lead_outcome::Model> = lead_outcome::Entity::find()
            .filter(lead_outcome::Column::TenantId.eq(tenant.as_str()))
            .filter(lead_outcome::Column::LeadId.is_in(ids.iter().cloned()))
            .all(txn)
            .await?
            .into_iter()
            .map(|o| (o.lead_id.clone(), o))
            .collect();
        Ok(SimulatedHistory {
            facts,
            later,
            outcomes,
        })
    }

    /// Scores every lead with `model` and counts, in the period of its first MQL, what it became
    /// afterwards; returns how many leads were evaluated. CPU only.
    fn evaluate(
        self,
        model: &ScoringModel,
        periods: &mut [PeriodResult],
        from: DateTime<Utc>,
        to: DateTime<Utc>,
    ) -> i64 {
        let SimulatedHistory {
            facts,
            later,
            outcomes,
        } = self;
        let mut evaluated = 0;
        for (lead_id, f) in facts {
            evaluated += 1;
            let computed = scoring::compute(model, &f, to);
            let Some(mql_at) =
                scoring::first_reached(&computed.contributions, model.mql_threshold, from, to)
            else {
                continue;
            };
            let Some(p) = periods
                .iter_mut()
                .find(|p| p.start <= mql_at && mql_at < p.end)
            else {
                continue;
            };
            p.mqls += 1;
            let reached: Vec<i32> = later
                .get(&lead_id)
                .into_iter()
                .flatten()
                .filter(|(at, _)| *at >= mql_at)
                .map(|(_, s)| *s)
                .collect();
            let any = |stages: &[Stage]| {
                reached
                    .iter()
                    .any(|s| stages.iter().any(|t| *t as i32 == *s))
            };
            if any(&[Stage::Sql, Stage::Opportunity, Stage::Customer]) {
                p.reached_sql += 1;
            }
            if any(&[Stage::Opportunity, Stage::Customer]) {
                p.reached_opportunity += 1;
            }
            if any(&[Stage::Customer]) {
                p.reached_customer += 1;
            }
            match outcomes.get(&lead_id).filter(|o| o.closed_at >= mql_at) {
                Some(o) if o.won => p.add_won(o.amount_currency.as_deref().zip(o.amount_minor)),
                Some(_) => p.lost += 1,
                None => {}
            }
        }
        evaluated
    }
}

pub fn status_name(status: i32) -> &'static str {
    ModelStatus::try_from(status)
        .unwrap_or(ModelStatus::Unspecified)
        .as_str_name()
}

/// Background scoring work shared by every replica: recompute after activations and the sweep of
/// scores that change with time. Each step claims its rows, so replicas do not double the work.
#[derive(Clone)]
pub struct Worker {
    db: DatabaseConnection,
    batch: u64,
    lease: Duration,
    /// The recompute job this worker holds the lease of, if any.
    held: std::sync::Arc<std::sync::Mutex<Option<String>>>,
}

impl Worker {
    pub fn new(db: DatabaseConnection, batch: u64, lease: Duration) -> Self {
        Worker {
            db,
            batch,
            lease,
            held: Default::default(),
        }
    }

    fn held(&self) -> Option<String> {
        self.held.lock().ok().and_then(|h| h.clone())
    }

    fn hold(&self, job: Option<String>) {
        if let Ok(mut h) = self.held.lock() {
            *h = job;
        }
    }

    /// One round: a batch of any running recompute, a batch of due scores, of due ranks, and of
    /// any re-ranking after a change of rank rules. Returns how many leads were rescored or
    /// re-ranked (0 = idle).
    pub async fn step(&self) -> Result<u64, DbErr> {
        Ok(self.recompute_batch().await?
            + self.sweep_batch().await?
            + self.rank_sweep_batch().await?
            + super::ranking::rerank_batch(&self.db, self.batch).await?)
    }

    /// Re-ranks leads whose rank depends on time and may have changed by now (e.g. "within 3
    /// months of first contact" ran out), emitting RankChanged as any re-rank does.
    async fn rank_sweep_batch(&self) -> Result<u64, DbErr> {
        use super::entities::lead_rank;
        let txn = self.db.begin().await?;
        let due = self
            .lock(
                lead_rank::Entity::find()
                    .filter(lead_rank::Column::NextChangeAt.lte(time::now()))
                    .order_by_asc(lead_rank::Column::NextChangeAt)
                    .limit(self.batch),
                true,
            )
            .all(&txn)
            .await?;
        for r in &due {
            super::ranking::rerank(&txn, &TenantId::new(r.tenant_id.clone()), &r.lead_id).await?;
        }
        txn.commit().await?;
        Ok(due.len() as u64)
    }

    fn lock<E: EntityTrait>(
        &self,
        query: sea_orm::Select<E>,
        skip_locked: bool,
    ) -> sea_orm::Select<E> {
        if self.db.get_database_backend() == DbBackend::Postgres {
            if skip_locked {
                query.lock_with_behavior(LockType::Update, LockBehavior::SkipLocked)
            } else {
                query.lock(LockType::Update)
            }
        } else {
            query
        }
    }

    /// Recomputes the next batch of leads of one running job, moving its cursor in the same
    /// transaction; a job another replica holds (unexpired lease) is skipped.
    async fn recompute_batch(&self) -> Result<u64, DbErr> {
        let txn = self.db.begin().await?;
        let now = time::now();
        let job = self
            .lock(
                scoring_model::Entity::find()
                    .filter(
                        scoring_model::Column::RecomputeState.eq(RecomputeState::Running as i32),
                    )
                    .filter(
                        Condition::any()
                            .add(scoring_model::Column::RecomputeLeaseUntil.is_null())
                            .add(scoring_model::Column::RecomputeLeaseUntil.lt(now))
                            .add(
                                scoring_model::Column::ModelId.eq(self.held().unwrap_or_default()),
                            ),
                    )
                    .order_by_asc(scoring_model::Column::Seq),
                true,
            )
            .one(&txn)
            .await?;
        let Some(job) = job else {
            txn.commit().await?;
            return Ok(0);
        };
        let tenant = TenantId::new(job.tenant_id.clone());
        let model = if job.status == ModelStatus::Active as i32 {
            compile_row(&job).ok()
        } else {
            None
        };
        let leads = match &model {
            Some(_) => {
                self.lock(
                    lead_score::Entity::find()
                        .filter(lead_score::Column::TenantId.eq(tenant.as_str()))
                        .filter(lead_score::Column::Seq.gt(job.recompute_cursor))
                        // Leads scored by this model already (captured or rescored since it was
                        // activated) have its score: the job does not chase them.
                        .filter(lead_score::Column::ModelId.ne(job.model_id.as_str()))
                        .order_by_asc(lead_score::Column::Seq)
                        .limit(self.batch),
                    false,
                )
                .all(&txn)
                .await?
            }
            // Superseded by a later activation (or unreadable): that job rescoring everyone.
            None => vec![],
        };
        let done = leads.len() as u64;
        let cursor = leads.last().map_or(job.recompute_cursor, |l| l.seq);
        if let Some(model) = &model {
            for lead in leads {
                rescore(&txn, &tenant, lead, model, now).await?;
            }
        }
        let (total, processed) = (job.recompute_total, job.recompute_done + done as i64);
        let job_id = job.model_id.clone();
        let mut row: scoring_model::ActiveModel = job.into();
        row.recompute_cursor = Set(cursor);
        row.recompute_done = Set(processed);
        if done == 0 {
            // Every lead of the tenant is on this model now, including those that events rescored
            // before the job reached them.
            row.recompute_state = Set(RecomputeState::Done as i32);
            row.recompute_total = Set(total.max(processed));
            row.recompute_done = Set(total.max(processed));
            row.recompute_finished_at = Set(Some(time::now()));
            row.recompute_lease_until = Set(None);
        } else {
            row.recompute_lease_until = Set(Some(now + self.lease));
        }
        row.update(&txn).await?;
        txn.commit().await?;
        self.hold((done > 0).then_some(job_id));
        Ok(done)
    }

    /// Rescores leads whose score changes by itself (points expired, inactivity fired) by now.
    async fn sweep_batch(&self) -> Result<u64, DbErr> {
        let txn = self.db.begin().await?;
        let now = time::now();
        let due = self
            .lock(
                lead_score::Entity::find()
                    .filter(lead_score::Column::NextChangeAt.lte(now))
                    .order_by_asc(lead_score::Column::NextChangeAt)
                    .limit(self.batch),
                true,
            )
            .all(&txn)
            .await?;
        let count = due.len() as u64;
        let mut models: HashMap<String, ScoringModel> = HashMap::new();
        for lead in due {
            let tenant = TenantId::new(lead.tenant_id.clone());
            if !models.contains_key(tenant.as_str()) {
                let model = super::active_model(&txn, &tenant).await?;
                models.insert(tenant.to_string(), model);
            }
            if let Some(model) = models.get(tenant.as_str()) {
                rescore(&txn, &tenant, lead, model, now).await?;
            }
        }
        txn.commit().await?;
        Ok(count)
    }
}

/// Runs the worker until `shutdown` (see [`baton_shared::background::repeat`]).
pub async fn run_worker(
    worker: Worker,
    interval: std::time::Duration,
    shutdown: tokio_util::sync::CancellationToken,
) {
    baton_shared::background::repeat("scoring worker", interval, shutdown, move || {
        let worker = worker.clone();
        async move { worker.step().await }
    })
    .await
}
