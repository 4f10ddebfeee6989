//! Keyset pagination: a page token is the opaque, versioned form of the last row's sequence number.

use sea_orm::{
    ColumnTrait, ConnectionTrait, DbErr, EntityTrait, QueryFilter, QueryOrder, QuerySelect, Select,
};

use crate::error::Violations;

const DEFAULT_PAGE_SIZE: u64 = 100;
const MAX_PAGE_SIZE: u64 = 1000;
const PREFIX: &str = "v1.";

/// A validated page request: rows with `seq > after_seq`, at most `limit` of them.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Page {
    pub after_seq: i64,
    pub limit: u64,
}

impl Page {
    /// Validates `page_size` (0 = default, 1..=1000) and `page_token` (empty or from a previous page).
    pub fn parse(page_size: i32, page_token: &str, violations: &mut Violations) -> Page {
        let limit = match page_size {
            0 => DEFAULT_PAGE_SIZE,
            n if n < 0 || n as u64 > MAX_PAGE_SIZE => {
                violations.add(
                    "page_size",
                    format!("must be between 0 and {MAX_PAGE_SIZE}"),
                );
                DEFAULT_PAGE_SIZE
            }
            n => n as u64,
        };
        let after_seq = if page_token.is_empty() {
            0
        } else {
            match page_token
                .strip_prefix(PREFIX)
                .and_then(|s| s.parse::<i64>().ok())
            {
                Some(seq) if seq >= 0 => seq,
                _ => {
                    violations.add("page_token", "not a token returned by this API");
                    0
                }
            }
        };
        Page { after_seq, limit }
    }

    /// The token for the next page given the rows returned (fetch `limit + 1` to know if there is one).
    pub fn next_token(&self, seqs: &[i64]) -> String {
        if (seqs.len() as u64) > self.limit {
            format!("{PREFIX}{}", seqs[self.limit as usize - 1])
        } else {
            String::new()
        }
    }
}

/// Fetches one page of `query`, ordered by the monotonic `seq` column: the rows and the next page's
/// token (empty on the last page).
pub async fn fetch_page<E, C>(
    query: Select<E>,
    seq: E::Column,
    seq_of: fn(&E::Model) -> i64,
    page: Page,
    db: &C,
) -> Result<(Vec<E::Model>, String), DbErr>
where
    E: EntityTrait,
    C: ConnectionTrait,
{
    let mut rows = query
        .filter(seq.gt(page.after_seq))
        .order_by_asc(seq)
        .limit(page.limit + 1)
        .all(db)
        .await?;
    let token = page.next_token(&rows.iter().map(seq_of).collect::<Vec<_>>());
    rows.truncate(page.limit as usize);
    Ok((rows, token))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn tokens_round_trip_and_garbage_is_rejected() {
        let mut v = Violations::new();
        let p = Page::parse(2, "", &mut v);
        let token = p.next_token(&[5, 9, 12]);
        assert_eq!(Page::parse(2, &token, &mut v).after_seq, 9);
        assert!(v.is_empty());
        Page::parse(-1, "garbage", &mut v);
        assert_eq!(v.fields().collect::<Vec<_>>(), ["page_size", "page_token"]);
    }

    #[test]
    fn last_page_has_no_token() {
        let p = Page {
            after_seq: 0,
            limit: 3,
        };
        assert_eq!(p.next_token(&[1, 2, 3]), "");
    }
}
