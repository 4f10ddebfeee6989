//! A lead's erasure in nurture, beyond its replica row and segment activities: its touches keep
//! what happened and when but lose their detail, URL and links; activities still waiting to be
//! sent to capture lose their subject and URL; nurture's own past events about it are scrubbed
//! alike; the dead letters about it lose their event; and the mails the file sink wrote to it are
//! deleted.

use std::path::Path;

use baton_proto::nurture::v1::TouchRecorded;
use baton_shared::{TenantId, erasure::forget_dead_letters, events::EventLog};
use prost::{Message, Name};
use sea_orm::{ColumnTrait, ConnectionTrait, DbErr, EntityTrait, QueryFilter, sea_query::Expr};

use super::entities::{activity_outbox, touch};

/// Everything nurture keeps in its database that could identify `lead_id`, erased inside
/// `txn`. Returns the ids of the lead's touches (their mails carry them in the Message-ID).
pub async fn erase<C: ConnectionTrait>(
    txn: &C,
    tenant: &TenantId,
    lead_id: &str,
) -> Result<Vec<String>, DbErr> {
    let t = tenant.as_str();
    let touch_ids: Vec<String> = touch::Entity::find()
        .filter(touch::Column::TenantId.eq(t))
        .filter(touch::Column::LeadId.eq(lead_id))
        .all(txn)
        .await?
        .into_iter()
        .map(|row| row.touch_id)
        .collect();
    touch::Entity::update_many()
        .col_expr(touch::Column::Detail, Expr::value(String::new()))
        .col_expr(touch::Column::Url, Expr::value(String::new()))
        .col_expr(touch::Column::Links, Expr::value("[]"))
        .filter(touch::Column::TenantId.eq(t))
        .filter(touch::Column::LeadId.eq(lead_id))
        .exec(txn)
        .await?;
    activity_outbox::Entity::update_many()
        .col_expr(activity_outbox::Column::Subject, Expr::value(String::new()))
        .col_expr(activity_outbox::Column::Url, Expr::value(String::new()))
        .filter(activity_outbox::Column::TenantId.eq(t))
        .filter(activity_outbox::Column::LeadId.eq(lead_id))
        .exec(txn)
        .await?;
    EventLog::rewrite_payloads(txn, lead_id, scrub_event_payload).await?;
    forget_dead_letters(txn, tenant, lead_id).await?;
    Ok(touch_ids)
}

/// Deletes the mail files under `dir` (the file sink's) of the touches `touch_ids`: a mail's
/// Message-ID is `<touch id@domain>`. Reads every file of the sink, which is the embedded
/// default for trying Baton out, not a production transport. Returns how many were deleted.
pub async fn delete_mail_files(dir: &Path, touch_ids: &[String]) -> std::io::Result<usize> {
    if touch_ids.is_empty() {
        return Ok(0);
    }
    let needles: Vec<String> = touch_ids.iter().map(|id| format!("<{id}@")).collect();
    let mut entries = match tokio::fs::read_dir(dir).await {
        Ok(entries) => entries,
        Err(e) if e.kind() == std::io::ErrorKind::NotFound => return Ok(0),
        Err(e) => return Err(e),
    };
    let mut deleted = 0;
    while let Some(entry) = entries.next_entry().await? {
        let path = entry.path();
        if path.extension().is_none_or(|e| e != "eml") {
            continue;
        }
        let Ok(bytes) = tokio::fs::read(&path).await else {
            continue;
        };
        let text = String::from_utf8_lossy(&bytes);
        if needles.iter().any(|n| text.contains(n.as_str())) {
            tokio::fs::remove_file(&path).await?;
            deleted += 1;
        }
    }
    Ok(deleted)
}

/// Nurture's touch events about an erased lead without detail and URL. A payload that does not
/// decode is blanked whole.
pub fn scrub_event_payload(type_url: &str, payload: &[u8]) -> Option<Vec<u8>> {
    if type_url != TouchRecorded::type_url() {
        return None;
    }
    let Ok(mut e) = TouchRecorded::decode(payload) else {
        return Some(Vec::new());
    };
    if let Some(t) = e.touch.as_mut() {
        t.detail.clear();
        t.url.clear();
    }
    Some(e.encode_to_vec())
}

#[cfg(test)]
mod tests {
    use baton_proto::nurture::v1::Touch;

    use super::*;

    #[test]
    fn touch_events_lose_detail_and_url() {
        let e = TouchRecorded {
            touch: Some(Touch {
                touch_id: "t1".into(),
                detail: "550 no such user ada@example.com".into(),
                url: "https://example.com/?who=ada".into(),
                ..Default::default()
            }),
        };
        let out = scrub_event_payload(&TouchRecorded::type_url(), &e.encode_to_vec()).unwrap();
        let t = TouchRecorded::decode(out.as_slice())
            .unwrap()
            .touch
            .unwrap();
        assert_eq!(
            (t.touch_id.as_str(), t.detail.as_str(), t.url.as_str()),
            ("t1", "", "")
        );
    }

    #[tokio::test]
    async fn only_the_touches_mails_are_deleted() {
        let dir = tempfile::tempdir().unwrap();
        std::fs::write(
            dir.path().join("a.eml"),
            "Message-ID: <t1@mail.example>\r\n",
        )
        .unwrap();
        std::fs::write(
            dir.path().join("b.eml"),
            "Message-ID: <t2@mail.example>\r\n",
        )
        .unwrap();
        std::fs::write(dir.path().join("c.txt"), "<t1@mail.example>").unwrap();
        let deleted = delete_mail_files(dir.path(), &["t1".into()]).await.unwrap();
        assert_eq!(deleted, 1);
        assert!(!dir.path().join("a.eml").exists());
        assert!(dir.path().join("b.eml").exists() && dir.path().join("c.txt").exists());
        let missing = dir.path().join("missing");
        assert_eq!(
            delete_mail_files(&missing, &["t1".into()]).await.unwrap(),
            0
        );
    }
}
