//! Dead letters: the events a consumer could not apply, kept with their payload and error, and
//! their replay (`baton.events.v1.DeadLetters`, served by every service).

use std::{collections::HashMap, sync::Arc};

use baton_proto::events::v1::{
    DeadLetter, Event, ListDeadLettersRequest, ListDeadLettersResponse, ReplayDeadLetterRequest,
    ReplayDeadLetterResponse,
    dead_letters_server::{DeadLetters as DeadLettersRpc, DeadLettersServer},
};
use prost::Message as _;
use sea_orm::{DatabaseConnection, EntityTrait, QueryFilter, TransactionTrait, prelude::*};
use tonic::{Request, Response, Status};

use super::{consumer::Replay, log::EventLog, store::event_dead_letter};
use crate::{
    error::{ApiError, Violations},
    paging::{Page, fetch_page},
    time,
};

/// The `DeadLetters` service of one service: its database, and the handler of each source it
/// follows.
#[derive(Clone)]
pub struct DeadLetterApi {
    db: DatabaseConnection,
    replayers: Arc<HashMap<String, Arc<dyn Replay>>>,
    /// The service's own log, woken after a replay (a handler may append events).
    own_log: Option<EventLog>,
}

impl DeadLetterApi {
    /// The service over `db`, replaying with `replayers` (by source, from
    /// [`super::Consumer::replayer`]) and waking `own_log` after a replay.
    pub fn server(
        db: DatabaseConnection,
        replayers: HashMap<String, Arc<dyn Replay>>,
        own_log: Option<EventLog>,
    ) -> DeadLettersServer<DeadLetterApi> {
        DeadLettersServer::new(DeadLetterApi {
            db,
            replayers: Arc::new(replayers),
            own_log,
        })
    }

    async fn list(
        &self,
        tenant: Option<String>,
        r: ListDeadLettersRequest,
    ) -> Result<ListDeadLettersResponse, ApiError> {
        let mut violations = Violations::new();
        let page = Page::parse(r.page_size, &r.page_token, &mut violations);
        violations.into_result()?;
        let mut query = event_dead_letter::Entity::find();
        if let Some(t) = tenant {
            query = query.filter(event_dead_letter::Column::TenantId.eq(t));
        }
        if !r.source.is_empty() {
            query = query.filter(event_dead_letter::Column::Source.eq(r.source.as_str()));
        }
        if !r.include_replayed {
            query = query.filter(event_dead_letter::Column::ReplayedAt.is_null());
        }
        let (rows, next_page_token) = fetch_page(
            query,
            event_dead_letter::Column::Id,
            |d| d.id,
            page,
            &self.db,
        )
        .await?;
        Ok(ListDeadLettersResponse {
            dead_letters: rows.iter().map(to_proto).collect(),
            next_page_token,
        })
    }

    async fn replay(&self, tenant: Option<String>, id: i64) -> Result<DeadLetter, ApiError> {
        let txn = self.db.begin().await?;
        let row = event_dead_letter::Entity::find_by_id(id)
            .one(&txn)
            .await?
            .filter(|d| tenant.as_ref().is_none_or(|t| *t == d.tenant_id))
            .ok_or_else(|| ApiError::not_found("dead letter", id.to_string()))?;
        let refuse = |rule: &str, description: String| ApiError::FailedPrecondition {
            rule: rule.to_owned(),
            description,
        };
        if row.replayed_at.is_some() {
            return Err(refuse("replayed_once", "it was replayed already".into()));
        }
        let Some(event) = row.event.as_deref().and_then(|b| Event::decode(b).ok()) else {
            let why = if row.error == crate::erasure::ERASED_DEAD_LETTER {
                "its event was about an erased lead and was dropped"
            } else {
                "its event was dead-lettered before payloads were kept"
            };
            return Err(refuse("event_kept", why.into()));
        };
        let Some(replayer) = self.replayers.get(&row.source) else {
            return Err(refuse(
                "source_followed",
                format!("this service does not follow {:?}", row.source),
            ));
        };
        let applied = replayer.replay(&txn, &event).await;
        if let Err(e) = applied {
            txn.rollback().await?;
            let error = e.to_string();
            event_dead_letter::Entity::update_many()
                .col_expr(event_dead_letter::Column::Error, Expr::value(error.clone()))
                .filter(event_dead_letter::Column::Id.eq(id))
                .exec(&self.db)
                .await?;
            return Err(refuse(
                "applies",
                format!("applying it failed again: {error}"),
            ));
        }
        let now = time::now();
        event_dead_letter::Entity::update_many()
            .col_expr(event_dead_letter::Column::ReplayedAt, Expr::value(now))
            .filter(event_dead_letter::Column::Id.eq(id))
            .exec(&txn)
            .await?;
        txn.commit().await?;
        if let Some(log) = &self.own_log {
            log.notify_committed();
        }
        tracing::info!(id, source = %row.source, position = row.position, "dead letter replayed");
        Ok(to_proto(&event_dead_letter::Model {
            replayed_at: Some(now),
            ..row
        }))
    }
}

/// The one tenant whose dead letters the caller sees, or `None` for a token for every tenant.
fn tenant_of<T>(request: &Request<T>) -> Result<Option<String>, Status> {
    Ok(match crate::auth::Identity::of(request)?.scope {
        crate::auth::Scope::Tenant(t) => Some(t.as_str().to_owned()),
        crate::auth::Scope::AllTenants => None,
    })
}

fn to_proto(d: &event_dead_letter::Model) -> DeadLetter {
    DeadLetter {
        id: d.id,
        source: d.source.clone(),
        position: d.position,
        event_id: d.event_id.clone(),
        type_url: d.type_url.clone(),
        error: d.error.clone(),
        attempts: d.attempts,
        dead_lettered_at: Some(time::to_proto(d.created_at)),
        replayed_at: d.replayed_at.map(time::to_proto),
        tenant_id: d.tenant_id.clone(),
        event: d.event.as_deref().and_then(|b| Event::decode(b).ok()),
    }
}

#[tonic::async_trait]
impl DeadLettersRpc for DeadLetterApi {
    async fn list_dead_letters(
        &self,
        request: Request<ListDeadLettersRequest>,
    ) -> Result<Response<ListDeadLettersResponse>, Status> {
        let tenant = tenant_of(&request)?;
        Ok(Response::new(
            self.list(tenant, request.into_inner()).await?,
        ))
    }

    async fn replay_dead_letter(
        &self,
        request: Request<ReplayDeadLetterRequest>,
    ) -> Result<Response<ReplayDeadLetterResponse>, Status> {
        let tenant = tenant_of(&request)?;
        let dead_letter = self.replay(tenant, request.into_inner().id).await?;
        Ok(Response::new(ReplayDeadLetterResponse {
            dead_letter: Some(dead_letter),
        }))
    }
}
