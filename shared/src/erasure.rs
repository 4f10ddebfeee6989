//! What every service does when a lead is erased, beyond its own tables: free text reduced to
//! the codes it may hold, and the dead letters about the lead stripped of the event they kept.

use baton_proto::events::v1::Event;
use prost::Message as _;
use sea_orm::{
    ActiveModelTrait, ColumnTrait, ConnectionTrait, DbErr, EntityTrait, QueryFilter, Set,
};

use crate::{TenantId, events::store::event_dead_letter};

/// What a dead letter about an erased lead says instead of its error.
pub const ERASED_DEAD_LETTER: &str = "the event was about a lead that was erased: it was dropped";

/// `text` if it is a code ("no_budget", "score_threshold", "handoff_won": lower-case letters,
/// digits and `_ - . :`, at most 64 characters), else the empty string. Codes are the service's
/// or the tenant's vocabulary and say nothing about the person; words a person wrote may.
pub fn keep_code(text: &str) -> String {
    let code = text.len() <= 64
        && text
            .chars()
            .all(|c| c.is_ascii_lowercase() || c.is_ascii_digit() || "_-.:".contains(c));
    if code { text.to_owned() } else { String::new() }
}

/// Drops the event of every dead letter of `tenant` about `aggregate_id` (the error text goes
/// too: it may quote the event), keeping the row so an operator still sees that an event was
/// skipped. A replay of such a row is refused. Returns how many rows changed.
pub async fn forget_dead_letters<C: ConnectionTrait>(
    db: &C,
    tenant: &TenantId,
    aggregate_id: &str,
) -> Result<u64, DbErr> {
    let rows = event_dead_letter::Entity::find()
        .filter(event_dead_letter::Column::TenantId.eq(tenant.as_str()))
        .filter(event_dead_letter::Column::Event.is_not_null())
        .all(db)
        .await?;
    let mut changed = 0;
    for row in rows {
        let about = row
            .event
            .as_deref()
            .and_then(|bytes| Event::decode(bytes).ok())
            .is_none_or(|e| e.aggregate_id == aggregate_id);
        if !about {
            continue;
        }
        let mut erased: event_dead_letter::ActiveModel = row.into();
        erased.event = Set(None);
        erased.error = Set(ERASED_DEAD_LETTER.to_owned());
        erased.update(db).await?;
        changed += 1;
    }
    Ok(changed)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn codes_stay_and_words_go() {
        assert_eq!(keep_code("no_budget"), "no_budget");
        assert_eq!(keep_code("score_threshold"), "score_threshold");
        assert_eq!(keep_code("Frozen until next fiscal year"), "");
        assert_eq!(keep_code("ada@example.com"), "");
        assert_eq!(keep_code("Ada"), "");
        assert_eq!(keep_code(&"a".repeat(65)), "");
        assert_eq!(keep_code(""), "");
    }
}
