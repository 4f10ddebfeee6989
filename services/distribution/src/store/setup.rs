//! The routing setup sales-ops keeps: teams, reps and the rule list. A change that may free a rep
//! or match a rule routes the queued leads again, in the same transaction.

use baton_proto::distribution::v1::{RepCreated, RoutingMethod, TeamFunction};
use baton_shared::{
    TenantId,
    events::EventLog,
    paging::{Page, fetch_page},
    time,
};
use chrono::{DateTime, Utc};
use sea_orm::{
    ActiveValue::{NotSet, Set},
    ConnectionTrait, DbErr, EntityTrait, QueryFilter, QueryOrder, TransactionTrait,
    prelude::*,
    sea_query::OnConflict,
};

use super::{
    Store,
    entities::{rep, routing_ruleset, team},
    routing::assign_queued,
    rules::rules_of,
};
use crate::error::Error;
use crate::{
    convert::rep_to_proto,
    domain::{
        reps::{NewRep, RepRouting},
        routing::{self, Rules},
    },
};

impl Store {
    /// Creates a rep (idempotent on request_id) and, if it is active, hands it the queued leads.
    pub async fn create_rep(
        &self,
        tenant: &TenantId,
        new: &NewRep,
        routing: &RepRouting,
    ) -> Result<rep::Model, Error> {
        let txn = self.db.begin().await?;
        self.check_team(&txn, tenant, &routing.team_id).await?;
        let by_request = rep::Entity::find()
            .filter(rep::Column::TenantId.eq(tenant.as_str()))
            .filter(rep::Column::RequestId.eq(new.request_id.as_str()))
            .one(&txn)
            .await?;
        if let Some(seen) = by_request {
            if seen.email_normalized != new.email_normalized
                || seen.name != new.name
                || seen.active != new.active
            {
                return Err(Error::invalid(
                    "request_id",
                    "was already used for a different rep",
                ));
            }
            return Ok(seen);
        }
        let same_email = rep::Entity::find()
            .filter(rep::Column::TenantId.eq(tenant.as_str()))
            .filter(rep::Column::EmailNormalized.eq(new.email_normalized.as_str()))
            .one(&txn)
            .await?;
        if same_email.is_some() {
            return Err(Error::Conflict(format!(
                "a rep with e-mail {} already exists",
                new.email
            )));
        }
        let rep = rep::ActiveModel {
            seq: NotSet,
            rep_id: Set(uuid::Uuid::now_v7().to_string()),
            tenant_id: Set(tenant.to_string()),
            request_id: Set(new.request_id.clone()),
            name: Set(new.name.clone()),
            email: Set(new.email.clone()),
            email_normalized: Set(new.email_normalized.clone()),
            active: Set(new.active),
            created_at: Set(time::now()),
            team_id: Set(routing.team_id.clone()),
            routing: Set(serde_json::to_string(&routing.attributes)
                .map_err(|e| DbErr::Custom(e.to_string()))?),
            capacity: Set(routing.capacity),
            weight: Set(routing.weight),
            wrr_counter: Set(0.0),
            was_available: Set(true),
            open_leads: Set(0),
            perf_factor: Set(1.0),
            perf_team: Set(String::new()),
            perf_change_id: Set(0),
            perf_period_factor: Set(1.0),
            perf_period_start: Set(None),
        }
        .insert(&txn)
        .await?;
        EventLog::append(
            &txn,
            tenant,
            &rep.rep_id,
            &RepCreated {
                rep: Some(rep_to_proto(&rep)),
            },
        )
        .await?;
        if rep.active {
            assign_queued(&txn, tenant).await?;
        }
        txn.commit().await?;
        self.log.notify_committed();
        Ok(rep)
    }
    /// Reps of a page with their open leads.
    pub async fn list_reps(
        &self,
        tenant: &TenantId,
        page: Page,
    ) -> Result<(Vec<rep::Model>, String), Error> {
        let query = rep::Entity::find().filter(rep::Column::TenantId.eq(tenant.as_str()));
        let (rows, token) = fetch_page(query, rep::Column::Seq, |r| r.seq, page, &self.db).await?;
        Ok((rows, token))
    }
    pub async fn create_team(
        &self,
        tenant: &TenantId,
        team_id: &str,
        name: &str,
        function: TeamFunction,
        method: RoutingMethod,
    ) -> Result<team::Model, Error> {
        let txn = self.db.begin().await?;
        if let Some(existing) = team::Entity::find_by_id((tenant.to_string(), team_id.to_owned()))
            .one(&txn)
            .await?
        {
            if existing.name == name
                && existing.function == function as i32
                && existing.method == method as i32
            {
                return Ok(existing);
            }
            return Err(Error::Conflict(format!(
                "team {team_id} exists with other attributes"
            )));
        }
        let created = team::ActiveModel {
            tenant_id: Set(tenant.to_string()),
            team_id: Set(team_id.to_owned()),
            name: Set(name.to_owned()),
            function: Set(function as i32),
            method: Set(method as i32),
            created_at: Set(time::now()),
        }
        .insert(&txn)
        .await?;
        txn.commit().await?;
        Ok(created)
    }
    pub async fn list_teams(&self, tenant: &TenantId) -> Result<Vec<team::Model>, DbErr> {
        team::Entity::find()
            .filter(team::Column::TenantId.eq(tenant.as_str()))
            .order_by_asc(team::Column::CreatedAt)
            .all(&self.db)
            .await
    }
    /// Replaces a rep's routing attributes; queued leads are routed again.
    pub async fn update_rep(
        &self,
        tenant: &TenantId,
        rep_id: &str,
        active: bool,
        routing: &RepRouting,
    ) -> Result<rep::Model, Error> {
        let txn = self.db.begin().await?;
        let current = rep::Entity::find()
            .filter(rep::Column::TenantId.eq(tenant.as_str()))
            .filter(rep::Column::RepId.eq(rep_id))
            .one(&txn)
            .await?
            .ok_or_else(|| Error::not_found("rep", rep_id))?;
        self.check_team(&txn, tenant, &routing.team_id).await?;
        let mut row: rep::ActiveModel = current.into();
        row.active = Set(active);
        row.team_id = Set(routing.team_id.clone());
        row.capacity = Set(routing.capacity);
        row.weight = Set(routing.weight);
        row.routing =
            Set(serde_json::to_string(&routing.attributes)
                .map_err(|e| DbErr::Custom(e.to_string()))?);
        let saved = row.update(&txn).await?;
        assign_queued(&txn, tenant).await?;
        txn.commit().await?;
        self.log.notify_committed();
        Ok(saved)
    }
    /// INVALID_ARGUMENT unless `team_id` is empty or a team of the tenant.
    pub async fn check_team<C: ConnectionTrait>(
        &self,
        db: &C,
        tenant: &TenantId,
        team_id: &str,
    ) -> Result<(), Error> {
        if team_id.is_empty()
            || team::Entity::find_by_id((tenant.to_string(), team_id.to_owned()))
                .one(db)
                .await?
                .is_some()
        {
            Ok(())
        } else {
            Err(Error::invalid(
                "routing.team_id",
                format!("no team {team_id}"),
            ))
        }
    }
    pub async fn routing_rules(
        &self,
        tenant: &TenantId,
    ) -> Result<(i32, Rules, Option<DateTime<Utc>>), DbErr> {
        Ok(match rules_of(&self.db, tenant).await? {
            Some((row, rules)) => (row.version, rules, Some(row.updated_at)),
            None => (0, Rules::default(), None),
        })
    }
    /// Replaces the rules (validated whole) with a new version; queued leads are routed again.
    pub async fn set_routing_rules(
        &self,
        tenant: &TenantId,
        rules: &Rules,
        expected_version: i32,
    ) -> Result<(i32, DateTime<Utc>), Error> {
        let txn = self.db.begin().await?;
        let teams: Vec<String> = team::Entity::find()
            .filter(team::Column::TenantId.eq(tenant.as_str()))
            .all(&txn)
            .await?
            .into_iter()
            .map(|t| t.team_id)
            .collect();
        let reps: Vec<String> = rep::Entity::find()
            .filter(rep::Column::TenantId.eq(tenant.as_str()))
            .all(&txn)
            .await?
            .into_iter()
            .map(|r| r.rep_id)
            .collect();
        let problems = routing::validate(rules, &teams, &reps);
        if !problems.is_empty() {
            return Err(Error::RulesBroken(
                problems
                    .into_iter()
                    .map(|p| ("routing_rules_valid".to_owned(), p))
                    .collect(),
            ));
        }
        let current = rules_of(&txn, tenant).await?.map_or(0, |(r, _)| r.version);
        if expected_version != 0 && expected_version != current {
            return Err(Error::RuleBroken {
                rule: "version_conflict".into(),
                description: format!(
                    "routing rules are at version {current}, not {expected_version}"
                ),
            });
        }
        let now = time::now();
        routing_ruleset::Entity::insert(routing_ruleset::ActiveModel {
            tenant_id: Set(tenant.to_string()),
            version: Set(current + 1),
            definition: Set(
                serde_json::to_string(rules).map_err(|e| DbErr::Custom(e.to_string()))?
            ),
            updated_at: Set(now),
        })
        .on_conflict(
            OnConflict::column(routing_ruleset::Column::TenantId)
                .update_columns([
                    routing_ruleset::Column::Version,
                    routing_ruleset::Column::Definition,
                    routing_ruleset::Column::UpdatedAt,
                ])
                .to_owned(),
        )
        .exec(&txn)
        .await?;
        assign_queued(&txn, tenant).await?;
        txn.commit().await?;
        self.log.notify_committed();
        Ok((current + 1, now))
    }
}
