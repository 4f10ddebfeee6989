//! Ranking's persistence: the profile replica, page views, the rank and its rules.

use std::collections::BTreeMap;

use baton_proto::{
    capture::v1::{Activity, ActivityKind, FunnelPosition, Lead, attribute_value::Value},
    qualification::v1::{Rank, RankChanged, RecomputeState},
};
use baton_shared::{TenantId, events::EventLog, time};
use chrono::{DateTime, Utc};
use sea_orm::{
    ActiveValue::{NotSet, Set},
    ConnectionTrait, DatabaseConnection, DbErr, EntityTrait, PaginatorTrait, QueryFilter,
    QueryOrder, QuerySelect, TransactionTrait,
    prelude::*,
    sea_query::OnConflict,
    sea_query::{LockBehavior, LockType},
};

use super::entities::{lead_page_view, lead_profile, lead_rank, rank_ruleset};
use crate::domain::ranks::{self, RankFacts, RankRules};
use crate::error::Error;

/// Flattens the attributes ranking conditions may name.
pub(crate) fn fields_of(lead: &Lead) -> BTreeMap<String, String> {
    let mut f = BTreeMap::new();
    let mut put = |k: &str, v: String| {
        if !v.is_empty() {
            f.insert(k.to_owned(), v);
        }
    };
    put("role", lead.role.clone());
    put("title", lead.title.clone());
    put("department", lead.department.clone());
    if let Some(c) = &lead.company {
        put("company.name", c.name.clone());
        put("company.web_domain", c.web_domain.clone());
        put("company.industry", c.industry.clone());
        put("company.country", c.country.clone());
        put("company.region", c.region.clone());
        put(
            "company.employees",
            c.employees.map(|e| e.to_string()).unwrap_or_default(),
        );
    }
    if let Some(src) = &lead.source {
        put("source.channel", src.channel.clone());
        put("source.campaign", src.campaign.clone());
        put("source.lead_magnet", src.lead_magnet.clone());
        if let Ok(p) = FunnelPosition::try_from(src.funnel_position)
            && p != FunnelPosition::Unspecified
        {
            put(
                "source.funnel_position",
                p.as_str_name()
                    .trim_start_matches("FUNNEL_POSITION_")
                    .to_ascii_lowercase(),
            );
        }
        put("source.utm_source", src.utm_source.clone());
        put("source.utm_medium", src.utm_medium.clone());
        put("source.utm_campaign", src.utm_campaign.clone());
    }
    if let Some(c) = &lead.consent {
        put("consent.email_opt_in", c.email_opt_in.to_string());
        put("consent.unsubscribed", c.unsubscribed.to_string());
    }
    for (k, v) in &lead.custom_attributes {
        let text = match &v.value {
            Some(Value::StringValue(s)) => s.clone(),
            Some(Value::IntValue(i)) => i.to_string(),
            Some(Value::DoubleValue(d)) => d.to_string(),
            Some(Value::BoolValue(b)) => b.to_string(),
            Some(Value::TimeValue(t)) => time::from_proto(t)
                .map(|t| t.to_rfc3339())
                .unwrap_or_default(),
            None => String::new(),
        };
        put(&format!("attr.{k}"), text);
    }
    f
}

/// Stores (or replaces) the replica of a lead's profile; `first_contact_at` is kept once known.
pub async fn upsert_profile<C: ConnectionTrait>(
    txn: &C,
    tenant: &TenantId,
    lead: &Lead,
    first_contact_at: Option<DateTime<Utc>>,
) -> Result<(), DbErr> {
    upsert_profiles(txn, tenant, &[(lead, first_contact_at)]).await
}

/// [`upsert_profile`] of many leads, one statement per group (first contact known or not).
pub async fn upsert_profiles<C: ConnectionTrait>(
    txn: &C,
    tenant: &TenantId,
    leads: &[(&Lead, Option<DateTime<Utc>>)],
) -> Result<(), DbErr> {
    let now = time::now();
    for first_contact_known in [true, false] {
        let mut rows = Vec::new();
        for (lead, first_contact_at) in leads {
            if first_contact_at.is_some() != first_contact_known {
                continue;
            }
            let fields = serde_json::to_string(&fields_of(lead))
                .map_err(|e| DbErr::Custom(e.to_string()))?;
            let revenue = lead.company.as_ref().and_then(|c| c.annual_revenue.clone());
            rows.push(lead_profile::ActiveModel {
                tenant_id: Set(tenant.to_string()),
                lead_id: Set(lead.lead_id.clone()),
                fields: Set(fields),
                revenue_currency: Set(revenue.as_ref().map(|m| m.currency_code.clone())),
                revenue_minor: Set(revenue.as_ref().map(|m| m.amount_minor)),
                first_contact_at: Set(*first_contact_at),
                updated_at: Set(now),
            });
        }
        if rows.is_empty() {
            continue;
        }
        let mut update = vec![
            lead_profile::Column::Fields,
            lead_profile::Column::RevenueCurrency,
            lead_profile::Column::RevenueMinor,
            lead_profile::Column::UpdatedAt,
        ];
        if first_contact_known {
            update.push(lead_profile::Column::FirstContactAt);
        }
        lead_profile::Entity::insert_many(rows)
            .on_conflict(
                OnConflict::columns([lead_profile::Column::TenantId, lead_profile::Column::LeadId])
                    .update_columns(update)
                    .to_owned(),
            )
            .exec_without_returning(txn)
            .await?;
    }
    Ok(())
}

/// Remembers a page view (once per activity) for page-visit conditions.
pub async fn record_page_view<C: ConnectionTrait>(
    txn: &C,
    tenant: &TenantId,
    activity: &Activity,
) -> Result<bool, DbErr> {
    if activity.kind != ActivityKind::PageViewed as i32 || activity.url.is_empty() {
        return Ok(false);
    }
    let inserted = lead_page_view::Entity::insert(lead_page_view::ActiveModel {
        seq: NotSet,
        tenant_id: Set(tenant.to_string()),
        lead_id: Set(activity.lead_id.clone()),
        activity_id: Set(activity.activity_id.clone()),
        url: Set(activity.url.clone()),
        occurred_at: Set(activity
            .occurred_at
            .as_ref()
            .and_then(time::from_proto)
            .unwrap_or_else(time::now)),
    })
    .on_conflict_do_nothing_on([lead_page_view::Column::ActivityId])
    .exec(txn)
    .await?;
    Ok(!matches!(inserted, sea_orm::TryInsertResult::Conflicted))
}

/// Drops what ranking holds about an erased lead.
pub async fn forget<C: ConnectionTrait>(
    txn: &C,
    tenant: &TenantId,
    lead_id: &str,
) -> Result<(), DbErr> {
    lead_profile::Entity::delete_many()
        .filter(lead_profile::Column::TenantId.eq(tenant.as_str()))
        .filter(lead_profile::Column::LeadId.eq(lead_id))
        .exec(txn)
        .await?;
    lead_page_view::Entity::delete_many()
        .filter(lead_page_view::Column::TenantId.eq(tenant.as_str()))
        .filter(lead_page_view::Column::LeadId.eq(lead_id))
        .exec(txn)
        .await?;
    Ok(())
}

/// Moves a merged duplicate's page views to the survivor and drops its rank and profile.
pub async fn merge<C: ConnectionTrait>(
    txn: &C,
    tenant: &TenantId,
    survivor: &str,
    merged: &str,
) -> Result<(), DbErr> {
    lead_page_view::Entity::update_many()
        .col_expr(
            lead_page_view::Column::LeadId,
            Expr::value(survivor.to_owned()),
        )
        .filter(lead_page_view::Column::TenantId.eq(tenant.as_str()))
        .filter(lead_page_view::Column::LeadId.eq(merged))
        .exec(txn)
        .await?;
    lead_profile::Entity::delete_many()
        .filter(lead_profile::Column::TenantId.eq(tenant.as_str()))
        .filter(lead_profile::Column::LeadId.eq(merged))
        .exec(txn)
        .await?;
    lead_rank::Entity::delete_many()
        .filter(lead_rank::Column::TenantId.eq(tenant.as_str()))
        .filter(lead_rank::Column::LeadId.eq(merged))
        .exec(txn)
        .await?;
    Ok(())
}

static PARSED: baton_shared::parse_cache::ParseCache<String, RankRules> =
    baton_shared::parse_cache::ParseCache::new();

/// The tenant's rank rules, seeding the defaults (docs/domain.md) on first use.
async fn rules<C: ConnectionTrait>(txn: &C, tenant: &TenantId) -> Result<RankRules, DbErr> {
    Ok(ruleset(txn, tenant).await?.1)
}

/// The tenant's stored rule set and its parsed rules (seeding the defaults on first use).
pub async fn ruleset<C: ConnectionTrait>(
    txn: &C,
    tenant: &TenantId,
) -> Result<(rank_ruleset::Model, RankRules), DbErr> {
    let stored = rank_ruleset::Entity::find_by_id(tenant.to_string())
        .one(txn)
        .await?;
    let row = match stored {
        Some(r) => r,
        None => {
            rank_ruleset::Entity::insert(rank_ruleset::ActiveModel {
                tenant_id: Set(tenant.to_string()),
                version: Set(1),
                definition: Set(ranks::DEFAULT_RANK_RULES_TOML.to_owned()),
                updated_at: Set(time::now()),
                rerank_state: Set(RecomputeState::Unspecified as i32),
                rerank_total: Set(0),
                rerank_done: Set(0),
                rerank_cursor: Set(String::new()),
                rerank_started_at: Set(None),
                rerank_finished_at: Set(None),
            })
            .on_conflict_do_nothing_on([rank_ruleset::Column::TenantId])
            .exec(txn)
            .await?;
            rank_ruleset::Entity::find_by_id(tenant.to_string())
                .one(txn)
                .await?
                .ok_or_else(|| DbErr::RecordNotFound("rank rules just seeded".into()))?
        }
    };
    let rules = PARSED
        .get_or_parse(&row.definition, || ranks::parse_rules(&row.definition))
        .map_err(|p| DbErr::Custom(format!("rank rules: {}", p.join("; "))))?;
    let rules = (*rules).clone();
    Ok((row, rules))
}

/// Replaces the tenant's rules with a new version (after validation), then re-ranks every lead.
pub async fn set_rules<C: ConnectionTrait>(
    txn: &C,
    tenant: &TenantId,
    rules: &RankRules,
    expected_version: i32,
) -> Result<rank_ruleset::Model, Error> {
    let problems = ranks::validate(rules);
    if !problems.is_empty() {
        return Err(Error::RulesBroken(
            problems
                .into_iter()
                .map(|p| ("rank_rules_valid".to_owned(), p))
                .collect(),
        ));
    }
    let (current, _) = ruleset(txn, tenant).await?;
    if expected_version != 0 && expected_version != current.version {
        return Err(Error::RuleBroken {
            rule: "version_conflict".into(),
            description: format!(
                "rank rules are at version {}, not {expected_version}",
                current.version
            ),
        });
    }
    let definition = serde_json::to_string(rules).map_err(|e| DbErr::Custom(e.to_string()))?;
    let version = current.version + 1;
    let leads = lead_rank::Entity::find()
        .filter(lead_rank::Column::TenantId.eq(tenant.as_str()))
        .count(txn)
        .await?;
    let now = time::now();
    let mut row: rank_ruleset::ActiveModel = current.into();
    row.version = Set(version);
    row.definition = Set(definition);
    row.updated_at = Set(now);
    // Every lead is re-ranked in the background (the scoring worker), not inside the request.
    row.rerank_state = Set(RecomputeState::Running as i32);
    row.rerank_total = Set(i64::try_from(leads).unwrap_or(i64::MAX));
    row.rerank_done = Set(0);
    row.rerank_cursor = Set(String::new());
    row.rerank_started_at = Set(Some(now));
    row.rerank_finished_at = Set(None);
    Ok(row.update(txn).await?)
}

/// Re-ranks the next `batch` leads of one tenant whose rank rules changed, moving the job's
/// cursor in the same transaction; returns how many leads it re-ranked (0 = nothing to do). On
/// PostgreSQL the job's row is locked, SKIP LOCKED, so replicas share the jobs and never run one
/// job's batch twice.
pub async fn rerank_batch(db: &DatabaseConnection, batch: u64) -> Result<u64, DbErr> {
    let txn = db.begin().await?;
    let mut query = rank_ruleset::Entity::find()
        .filter(rank_ruleset::Column::RerankState.eq(RecomputeState::Running as i32))
        .order_by_asc(rank_ruleset::Column::UpdatedAt);
    if db.get_database_backend() == sea_orm::DbBackend::Postgres {
        query = query.lock_with_behavior(LockType::Update, LockBehavior::SkipLocked);
    }
    let Some(job) = query.one(&txn).await? else {
        txn.commit().await?;
        return Ok(0);
    };
    let tenant = TenantId::new(job.tenant_id.clone());
    let leads = lead_rank::Entity::find()
        .filter(lead_rank::Column::TenantId.eq(tenant.as_str()))
        .filter(lead_rank::Column::LeadId.gt(job.rerank_cursor.as_str()))
        .order_by_asc(lead_rank::Column::LeadId)
        .limit(batch)
        .all(&txn)
        .await?;
    for lead in &leads {
        rerank(&txn, &tenant, &lead.lead_id).await?;
    }
    let n = leads.len() as u64;
    let done = job.rerank_done + n as i64;
    let total = job.rerank_total;
    let mut row: rank_ruleset::ActiveModel = job.into();
    row.rerank_done = Set(done);
    if let Some(last) = leads.last() {
        row.rerank_cursor = Set(last.lead_id.clone());
    }
    if n < batch {
        row.rerank_state = Set(RecomputeState::Done as i32);
        row.rerank_total = Set(total.max(done));
        row.rerank_finished_at = Set(Some(time::now()));
    }
    row.update(&txn).await?;
    txn.commit().await?;
    Ok(n)
}

async fn facts<C: ConnectionTrait>(
    txn: &C,
    tenant: &TenantId,
    lead_id: &str,
) -> Result<RankFacts, DbErr> {
    let profile = lead_profile::Entity::find_by_id((tenant.to_string(), lead_id.to_owned()))
        .one(txn)
        .await?;
    let page_views = lead_page_view::Entity::find()
        .filter(lead_page_view::Column::TenantId.eq(tenant.as_str()))
        .filter(lead_page_view::Column::LeadId.eq(lead_id))
        .all(txn)
        .await?
        .into_iter()
        .map(|v| v.url)
        .collect();
    Ok(match profile {
        Some(p) => RankFacts {
            fields: serde_json::from_str(&p.fields).map_err(|e| DbErr::Custom(e.to_string()))?,
            revenue: p.revenue_currency.zip(p.revenue_minor),
            first_contact_at: p.first_contact_at,
            page_views,
        },
        None => RankFacts {
            page_views,
            ..Default::default()
        },
    })
}

/// What ranking knows of a lead just captured: its profile from the event, no page views yet.
pub fn captured_facts(lead: &Lead, first_contact_at: Option<DateTime<Utc>>) -> RankFacts {
    let revenue = lead.company.as_ref().and_then(|c| c.annual_revenue.clone());
    RankFacts {
        fields: fields_of(lead),
        revenue: revenue.map(|m| (m.currency_code, m.amount_minor)),
        first_contact_at,
        page_views: Vec::new(),
    }
}

/// Re-ranks a lead; stores the decision and emits `RankChanged` when the rank changes.
pub async fn rerank<C: ConnectionTrait>(
    txn: &C,
    tenant: &TenantId,
    lead_id: &str,
) -> Result<(), DbErr> {
    let facts = facts(txn, tenant, lead_id).await?;
    rerank_with(txn, tenant, lead_id, facts).await
}

/// Re-ranks a lead on facts the caller already has.
pub async fn rerank_with<C: ConnectionTrait>(
    txn: &C,
    tenant: &TenantId,
    lead_id: &str,
    facts: RankFacts,
) -> Result<(), DbErr> {
    let rules = rules(txn, tenant).await?;
    rerank_on(txn, tenant, lead_id, facts, &rules).await
}

/// Re-ranks a lead on facts and rules the caller already has.
pub async fn rerank_on<C: ConnectionTrait>(
    txn: &C,
    tenant: &TenantId,
    lead_id: &str,
    facts: RankFacts,
    rules: &RankRules,
) -> Result<(), DbErr> {
    let previous = lead_rank::Entity::find_by_id((tenant.to_string(), lead_id.to_owned()))
        .one(txn)
        .await?;
    let change = rank_change(
        tenant,
        lead_id,
        &facts,
        rules,
        previous.as_ref(),
        time::now(),
    )?;
    let current = tracing::Span::current();
    store_ranks(txn, tenant, change.into_iter().collect(), &[&current]).await
}

/// A lead's rank decision, when it differs from what is stored: the row to store, and the
/// `RankChanged` event when the rank itself changes.
pub struct RankChange {
    row: lead_rank::ActiveModel,
    event: Option<RankChanged>,
}

/// Ranks a lead on `facts`; `None` when the stored decision (`previous`) already says the same.
pub fn rank_change(
    tenant: &TenantId,
    lead_id: &str,
    facts: &RankFacts,
    rules: &RankRules,
    previous: Option<&lead_rank::Model>,
    now: DateTime<Utc>,
) -> Result<Option<RankChange>, DbErr> {
    let decision = ranks::rank(rules, facts, now);
    let next_change_at = ranks::next_change(rules, facts, now);
    let rule_key = decision.rule_key.clone().unwrap_or_default();
    let reasons =
        serde_json::to_string(&decision.reasons).map_err(|e| DbErr::Custom(e.to_string()))?;
    if previous.is_some_and(|p| {
        p.rank == decision.rank as i32
            && p.rule_key == rule_key
            && p.reasons == reasons
            && p.next_change_at == next_change_at
    }) {
        return Ok(None);
    }
    let row = lead_rank::ActiveModel {
        tenant_id: Set(tenant.to_string()),
        lead_id: Set(lead_id.to_owned()),
        rank: Set(decision.rank as i32),
        rule_key: Set(rule_key.clone()),
        reasons: Set(reasons),
        ranked_at: Set(now),
        next_change_at: Set(next_change_at),
    };
    let from = previous.map_or(Rank::Unspecified as i32, |p| p.rank);
    let event = (from != decision.rank as i32).then(|| RankChanged {
        lead_id: lead_id.to_owned(),
        from_rank: from,
        to_rank: decision.rank as i32,
        rule_key,
        reasons: decision.reasons,
        changed_at: Some(time::to_proto(now)),
    });
    Ok(Some(RankChange { row, event }))
}

/// Stores rank changes in one statement and emits their `RankChanged` events, each in the span at
/// the same index of `spans` (the last one for any beyond).
pub async fn store_ranks<C: ConnectionTrait>(
    txn: &C,
    tenant: &TenantId,
    changes: Vec<RankChange>,
    spans: &[&tracing::Span],
) -> Result<(), DbErr> {
    if changes.is_empty() {
        return Ok(());
    }
    let mut rows = Vec::with_capacity(changes.len());
    let mut events = Vec::new();
    for (i, change) in changes.into_iter().enumerate() {
        rows.push(change.row);
        if let Some(event) = change.event {
            events.push((i, event));
        }
    }
    lead_rank::Entity::insert_many(rows)
        .on_conflict(
            OnConflict::columns([lead_rank::Column::TenantId, lead_rank::Column::LeadId])
                .update_columns([
                    lead_rank::Column::Rank,
                    lead_rank::Column::RuleKey,
                    lead_rank::Column::Reasons,
                    lead_rank::Column::RankedAt,
                    lead_rank::Column::NextChangeAt,
                ])
                .to_owned(),
        )
        .exec_without_returning(txn)
        .await?;
    let current = tracing::Span::current();
    let last = spans.last().copied().unwrap_or(&current);
    let events: Vec<(&str, &RankChanged, &tracing::Span)> = events
        .iter()
        .map(|(i, e)| {
            (
                e.lead_id.as_str(),
                e,
                spans.get(*i).copied().unwrap_or(last),
            )
        })
        .collect();
    EventLog::append_many(txn, tenant, &events).await
}

/// A lead's current rank (reasons decoded).
pub async fn get<C: ConnectionTrait>(
    db: &C,
    tenant: &TenantId,
    lead_id: &str,
) -> Result<(lead_rank::Model, Vec<String>), Error> {
    let row = lead_rank::Entity::find_by_id((tenant.to_string(), lead_id.to_owned()))
        .one(db)
        .await?
        .ok_or_else(|| Error::not_found("lead", lead_id))?;
    let reasons = serde_json::from_str(&row.reasons).unwrap_or_default();
    Ok((row, reasons))
}
