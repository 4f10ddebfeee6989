//! Sequences: one row per version. The latest version of a key is the only one not superseded;
//! a draft is edited in place, an active or paused sequence gets a new version.

use baton_proto::nurture::v1::SequenceState;
use baton_shared::{
    ApiError, TenantId,
    paging::{Page, fetch_page},
    time,
};
use sea_orm::{
    ActiveModelTrait, ActiveValue::NotSet, ConnectionTrait, DbErr, EntityTrait, QueryFilter,
    QueryOrder, Set, TransactionTrait, prelude::*,
};

use super::{Store, entities::sequence};
use crate::{
    domain::{defaults, definition::Definition},
    error::Error,
};

/// A stored version with its parsed definition.
pub type Loaded = (sequence::Model, Definition);

pub fn parse(row: &sequence::Model) -> Result<Definition, DbErr> {
    serde_json::from_str(&row.definition)
        .map_err(|e| DbErr::Custom(format!("sequence {} v{}: {e}", row.key, row.version)))
}

fn to_json(def: &Definition) -> Result<String, DbErr> {
    serde_json::to_string(def).map_err(|e| DbErr::Custom(e.to_string()))
}

/// The current (not superseded) version of `key`.
pub async fn current<C: ConnectionTrait>(
    db: &C,
    tenant: &str,
    key: &str,
) -> Result<Option<sequence::Model>, DbErr> {
    sequence::Entity::find()
        .filter(sequence::Column::TenantId.eq(tenant))
        .filter(sequence::Column::Key.eq(key))
        .order_by_desc(sequence::Column::Version)
        .one(db)
        .await
}

/// One version by id (the version an enrolment runs on).
pub async fn by_id<C: ConnectionTrait>(db: &C, sequence_id: &str) -> Result<Option<Loaded>, DbErr> {
    let Some(row) = sequence::Entity::find()
        .filter(sequence::Column::SequenceId.eq(sequence_id))
        .one(db)
        .await?
    else {
        return Ok(None);
    };
    let def = parse(&row)?;
    Ok(Some((row, def)))
}

/// The active sequences a trigger enrols into.
pub async fn active_for_trigger<C: ConnectionTrait>(
    db: &C,
    tenant: &str,
    trigger: &str,
) -> Result<Vec<Loaded>, DbErr> {
    seed_defaults(db, tenant).await?;
    let rows = sequence::Entity::find()
        .filter(sequence::Column::TenantId.eq(tenant))
        .filter(sequence::Column::Trigger.eq(trigger))
        .filter(sequence::Column::State.eq(SequenceState::Active as i32))
        .order_by_asc(sequence::Column::Seq)
        .all(db)
        .await?;
    rows.into_iter()
        .map(|r| parse(&r).map(|d| (r, d)))
        .collect()
}

/// Seeds the default sequences, as drafts, for a tenant that has none.
pub async fn seed_defaults<C: ConnectionTrait>(db: &C, tenant: &str) -> Result<(), DbErr> {
    let any = sequence::Entity::find()
        .filter(sequence::Column::TenantId.eq(tenant))
        .one(db)
        .await?;
    if any.is_some() {
        return Ok(());
    }
    for (key, name, def) in defaults::default_sequences() {
        insert(db, tenant, key, name, 1, SequenceState::Draft, &def).await?;
    }
    Ok(())
}

async fn insert<C: ConnectionTrait>(
    db: &C,
    tenant: &str,
    key: &str,
    name: &str,
    version: i32,
    state: SequenceState,
    def: &Definition,
) -> Result<sequence::Model, DbErr> {
    let now = time::now();
    sequence::ActiveModel {
        seq: NotSet,
        sequence_id: Set(uuid::Uuid::now_v7().to_string()),
        tenant_id: Set(tenant.to_owned()),
        key: Set(key.to_owned()),
        version: Set(version),
        name: Set(name.to_owned()),
        state: Set(state as i32),
        trigger: Set(def.enrollment.trigger.as_str().to_owned()),
        lead_magnet: Set(def.enrollment.lead_magnet.clone()),
        definition: Set(to_json(def)?),
        created_at: Set(now),
        updated_at: Set(now),
    }
    .insert(db)
    .await
}

/// A sequence that names a segment (trigger or filter) needs it to exist.
async fn segment_must_exist<C: ConnectionTrait>(
    db: &C,
    tenant: &str,
    def: &Definition,
) -> Result<(), Error> {
    let key = &def.enrollment.segment_key;
    if key.is_empty() || super::segments::current(db, tenant, key).await?.is_some() {
        return Ok(());
    }
    Err(ApiError::invalid(
        "definition.enrollment.segment_key",
        format!("no segment is named {key:?}"),
    )
    .into())
}

fn missing(key: &str) -> Error {
    Error::not_found("sequence", key)
}

impl Store {
    pub async fn create_sequence(
        &self,
        tenant: &TenantId,
        key: &str,
        name: &str,
        def: &Definition,
    ) -> Result<Loaded, Error> {
        let txn = self.db.begin().await?;
        seed_defaults(&txn, tenant.as_str()).await?;
        segment_must_exist(&txn, tenant.as_str(), def).await?;
        if current(&txn, tenant.as_str(), key).await?.is_some() {
            return Err(ApiError::AlreadyExists(format!("sequence {key:?} exists")).into());
        }
        let row = insert(
            &txn,
            tenant.as_str(),
            key,
            name,
            1,
            SequenceState::Draft,
            def,
        )
        .await?;
        txn.commit().await?;
        Ok((row, def.clone()))
    }

    pub async fn update_sequence(
        &self,
        tenant: &TenantId,
        key: &str,
        name: &str,
        def: &Definition,
        expected_version: i32,
    ) -> Result<Loaded, Error> {
        let txn = self.db.begin().await?;
        seed_defaults(&txn, tenant.as_str()).await?;
        segment_must_exist(&txn, tenant.as_str(), def).await?;
        let now = current(&txn, tenant.as_str(), key)
            .await?
            .ok_or_else(|| missing(key))?;
        if expected_version != 0 && expected_version != now.version {
            return Err(Error::rule(
                "version_conflict",
                format!(
                    "sequence {key:?} is at version {}, not {expected_version}",
                    now.version
                ),
            ));
        }
        let row = if now.state == SequenceState::Draft as i32 {
            let mut row: sequence::ActiveModel = now.into();
            row.name = Set(name.to_owned());
            row.trigger = Set(def.enrollment.trigger.as_str().to_owned());
            row.lead_magnet = Set(def.enrollment.lead_magnet.clone());
            row.definition = Set(to_json(def)?);
            row.updated_at = Set(time::now());
            row.update(&txn).await?
        } else {
            let state = SequenceState::try_from(now.state).unwrap_or(SequenceState::Paused);
            let next = insert(
                &txn,
                tenant.as_str(),
                key,
                name,
                now.version + 1,
                state,
                def,
            )
            .await?;
            let mut old: sequence::ActiveModel = now.into();
            old.state = Set(SequenceState::Superseded as i32);
            old.updated_at = Set(time::now());
            old.update(&txn).await?;
            next
        };
        txn.commit().await?;
        Ok((row, def.clone()))
    }

    /// Moves the current version of `key` to `to` (active or paused) from one of `from`.
    pub async fn set_sequence_state(
        &self,
        tenant: &TenantId,
        key: &str,
        from: &[SequenceState],
        to: SequenceState,
        rule: &str,
    ) -> Result<Loaded, Error> {
        let txn = self.db.begin().await?;
        seed_defaults(&txn, tenant.as_str()).await?;
        let now = current(&txn, tenant.as_str(), key)
            .await?
            .ok_or_else(|| missing(key))?;
        if !from.iter().any(|s| *s as i32 == now.state) {
            let state = SequenceState::try_from(now.state)
                .map(|s| s.as_str_name())
                .unwrap_or("unknown");
            return Err(Error::rule(rule, format!("sequence {key:?} is {state}")));
        }
        let mut row: sequence::ActiveModel = now.into();
        row.state = Set(to as i32);
        row.updated_at = Set(time::now());
        let row = row.update(&txn).await?;
        txn.commit().await?;
        let def = parse(&row)?;
        Ok((row, def))
    }

    /// The current version of `key`, or version `version` (0 = current).
    pub async fn get_sequence(
        &self,
        tenant: &TenantId,
        key: &str,
        version: i32,
    ) -> Result<Loaded, Error> {
        seed_defaults(&self.db, tenant.as_str()).await?;
        let row = if version == 0 {
            current(&self.db, tenant.as_str(), key).await?
        } else {
            sequence::Entity::find()
                .filter(sequence::Column::TenantId.eq(tenant.as_str()))
                .filter(sequence::Column::Key.eq(key))
                .filter(sequence::Column::Version.eq(version))
                .one(&self.db)
                .await?
        };
        let row = row.ok_or_else(|| missing(key))?;
        let def = parse(&row)?;
        Ok((row, def))
    }

    pub async fn list_sequences(
        &self,
        tenant: &TenantId,
        page: Page,
    ) -> Result<(Vec<Loaded>, String), Error> {
        seed_defaults(&self.db, tenant.as_str()).await?;
        let query = sequence::Entity::find()
            .filter(sequence::Column::TenantId.eq(tenant.as_str()))
            .filter(sequence::Column::State.ne(SequenceState::Superseded as i32));
        let (rows, next) =
            fetch_page(query, sequence::Column::Seq, |s| s.seq, page, &self.db).await?;
        let loaded = rows
            .into_iter()
            .map(|r| parse(&r).map(|d| (r, d)))
            .collect::<Result<Vec<_>, _>>()?;
        Ok((loaded, next))
    }
}
