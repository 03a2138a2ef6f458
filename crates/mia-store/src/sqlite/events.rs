//! [`EventStore`] for [`SqliteStore`]: events deduplicated per contact by id.

use async_trait::async_trait;
use mia_core::{
    CampaignId, ContactId, Event, EventGroup, EventKind, EventStore, Result, VariantId,
};
use sqlx::sqlite::SqliteRow;

use super::SqliteStore;
use super::batch::Insert;
use crate::codec::{micros, to_json};
use crate::error::Context;
use crate::rows::{self, event_columns};

/// The columns of `events` that [`rows::event`] reads, with the id turned back into its text
/// (see [`packed_id`]).
macro_rules! columns {
    () => {
        event_columns!("CASE typeof(id) WHEN 'blob' THEN lower(hex(id)) ELSE id END AS id")
    };
}

/// The stored form of an event id that is 32 lowercase hex digits (the ids mia derives): its 16
/// bytes, which take half the room in the `(contact, id)` index (schema version 7). Any other
/// id is stored as its text. The form is canonical: an id that has one is always stored so.
fn packed_id(id: &str) -> Option<Vec<u8>> {
    fn digit(c: u8) -> Option<u8> {
        match c {
            b'0'..=b'9' => Some(c - b'0'),
            b'a'..=b'f' => Some(c - b'a' + 10),
            _ => None,
        }
    }
    let id = id.as_bytes();
    if id.len() != 32 {
        return None;
    }
    id.chunks_exact(2)
        .map(|pair| Some(digit(pair[0])? << 4 | digit(pair[1])?))
        .collect()
}

/// `OR IGNORE` rather than `ON CONFLICT (contact, id) DO NOTHING`: the same rows for this table
/// (its only unique key is `(contact, id)`; every NOT NULL column is bound from a non-optional
/// field, with the column's STRICT type), but a multi-row statement that cannot abort halfway
/// needs no statement journal. With `DO NOTHING`, SQLite copies every page a statement touches
/// to a temporary file first, which was most of the time a large batch took.
const APPEND: Insert = Insert {
    head: "INSERT OR IGNORE INTO events (id, at, contact, campaign, variant, step, kind, payload)",
    row: "(?, ?, ?, ?, ?, ?, ?, ?)",
    tail: "",
};

/// Rows per statement, largest first: 1,024 rows of 8 columns bind 8,192 parameters, far below
/// the bundled SQLite's limit of 32,766; a remainder takes at most 3 statements of each smaller
/// size, so a batch of any size runs in few statements of 6 prepared texts.
const SIZES: [usize; 6] = [1024, 256, 64, 16, 4, 1];

/// The `payload` column of `kind`: its JSON text. A kind without fields is its tag alone, the
/// same text serde writes (tested below), kept as a constant so that the common events of a
/// large batch allocate nothing for it.
fn payload(kind: &EventKind) -> Result<std::borrow::Cow<'static, str>, crate::error::StoreError> {
    let tag = match kind {
        EventKind::Sent => r#"{"kind":"sent"}"#,
        EventKind::Delivered => r#"{"kind":"delivered"}"#,
        EventKind::Read => r#"{"kind":"read"}"#,
        EventKind::Clicked => r#"{"kind":"clicked"}"#,
        EventKind::Replied => r#"{"kind":"replied"}"#,
        EventKind::OptedIn => r#"{"kind":"opted_in"}"#,
        EventKind::OptedOut => r#"{"kind":"opted_out"}"#,
        EventKind::Blocked => r#"{"kind":"blocked"}"#,
        other => return to_json(other, "event kind").map(std::borrow::Cow::Owned),
    };
    Ok(std::borrow::Cow::Borrowed(tag))
}

fn decode_all(found: &[SqliteRow], doing: &'static str) -> Result<Vec<Event>> {
    rows::all(found, rows::event).context(doing)
}

#[async_trait]
impl EventStore for SqliteStore {
    async fn append_events(&self, events: &[Event]) -> Result<u64> {
        const DOING: &str = "append events";
        if events.is_empty() {
            return Ok(0);
        }
        let events = rows::events_in_key_order(events);
        let mut conn = self.hot.acquire().await.context(DOING)?;
        let want = self.sync(false);
        let set = conn.set_for(want);
        let appended = async {
            let begin = super::Flush::begin_setting(set);
            let mut tx = sqlx::Connection::begin_with(&mut *conn, begin).await?;
            let new = APPEND
                .run_sized(&mut tx, &events, &SIZES, |query, e| {
                    let query = match packed_id(e.id.as_str()) {
                        Some(bytes) => query.bind(bytes),
                        None => query.bind(e.id.as_str()),
                    };
                    Ok(query
                        .bind(micros(e.at))
                        .bind(e.contact.as_str())
                        .bind(e.campaign.as_ref().map(CampaignId::as_str))
                        .bind(e.variant.as_ref().map(VariantId::as_str))
                        .bind(e.step.map(i64::from))
                        .bind(e.kind.name())
                        .bind(payload(&e.kind)?))
                })
                .await?;
            tx.commit().await?;
            Ok::<_, crate::error::StoreError>(new)
        }
        .await;
        conn.settled(want, &appended);
        appended.context(DOING)
    }

    async fn campaign_events(&self, campaign: &CampaignId) -> Result<Vec<Event>> {
        const DOING: &str = "read a campaign's events";
        let rows = sqlx::query(concat!(
            "SELECT ",
            columns!(),
            // `id` in ORDER BY is the text of the column list: the order of the ids' digits.
            " FROM events WHERE campaign = ? ORDER BY at, id, contact"
        ))
        .bind(campaign.as_str())
        .fetch_all(&self.pool)
        .await
        .context(DOING)?;
        decode_all(&rows, DOING)
    }

    async fn campaign_events_page(
        &self,
        campaign: &CampaignId,
        after: Option<&Event>,
        limit: usize,
    ) -> Result<Vec<Event>> {
        const DOING: &str = "read a page of a campaign's events";
        let limit = i64::try_from(limit).unwrap_or(i64::MAX);
        // `id` in ORDER BY is the text of the column list, as in `campaign_events`; the row
        // value compares the same text. `at >= ?3` lets the index start at the last time; the
        // index holds no id, so each page reads again the events of that one microsecond (few,
        // as each event takes its own time when recorded).
        let text = match after {
            None => concat!(
                "SELECT ",
                columns!(),
                " FROM events WHERE campaign = ?1 ORDER BY at, id, contact LIMIT ?2"
            ),
            Some(_) => concat!(
                "SELECT ",
                columns!(),
                " FROM events WHERE campaign = ?1 AND at >= ?3 AND (at, CASE typeof(id) \
                 WHEN 'blob' THEN lower(hex(id)) ELSE id END, contact) > (?3, ?4, ?5) \
                 ORDER BY at, id, contact LIMIT ?2"
            ),
        };
        let mut query = sqlx::query(text).bind(campaign.as_str()).bind(limit);
        if let Some(after) = after {
            query = query
                .bind(micros(after.at))
                .bind(after.id.as_str())
                .bind(after.contact.as_str());
        }
        let rows = query.fetch_all(&self.pool).await.context(DOING)?;
        decode_all(&rows, DOING)
    }

    async fn campaign_events_of(&self, campaign: &CampaignId, kind: &str) -> Result<Vec<Event>> {
        const DOING: &str = "read a campaign's events of one kind";
        let rows = sqlx::query(concat!(
            "SELECT ",
            columns!(),
            " FROM events WHERE campaign = ? AND kind = ? ORDER BY at, id, contact"
        ))
        .bind(campaign.as_str())
        .bind(kind)
        .fetch_all(&self.pool)
        .await
        .context(DOING)?;
        decode_all(&rows, DOING)
    }

    async fn event_groups(&self, campaign: &CampaignId) -> Result<Vec<EventGroup>> {
        const DOING: &str = "group a campaign's events";
        let found: Vec<rows::EventGroupRow> = sqlx::query_as(rows::event_groups_sql!(
            "?",
            "json_extract(payload, '$.value_minor')"
        ))
        .bind(campaign.as_str())
        .fetch_all(&self.pool)
        .await
        .context(DOING)?;
        Ok(rows::event_groups(found))
    }

    async fn contact_events(&self, contact: &ContactId) -> Result<Vec<Event>> {
        const DOING: &str = "read a contact's events";
        let rows = sqlx::query(concat!(
            "SELECT ",
            columns!(),
            " FROM events WHERE contact = ? ORDER BY at, id"
        ))
        .bind(contact.as_str())
        .fetch_all(&self.pool)
        .await
        .context(DOING)?;
        decode_all(&rows, DOING)
    }
}

#[cfg(test)]
mod tests {
    #![allow(clippy::unwrap_used)]

    use jiff::Timestamp;
    use mia_core::{EventId, EventKind};

    use super::*;

    fn event(n: usize, contact: &str) -> Event {
        Event {
            id: EventId::new(format!("e{n:05}")),
            at: Timestamp::from_second(1_800_000_000 + n as i64).unwrap(),
            contact: ContactId::new(contact),
            campaign: Some(CampaignId::new("c")),
            variant: n.is_multiple_of(2).then(|| VariantId::new("A")),
            step: None,
            kind: EventKind::Converted {
                value_minor: n as i64,
            },
        }
    }

    #[test]
    fn a_constant_payload_is_what_serde_writes() {
        let kinds = [
            EventKind::Sent,
            EventKind::Delivered,
            EventKind::Read,
            EventKind::Clicked,
            EventKind::Replied,
            EventKind::OptedIn,
            EventKind::OptedOut,
            EventKind::Blocked,
            EventKind::Converted { value_minor: 5 },
            EventKind::Failed {
                reason: "blocked".into(),
            },
        ];
        for kind in kinds {
            let serde = serde_json::to_string(&kind).unwrap();
            assert_eq!(payload(&kind).unwrap(), serde, "{kind:?}");
        }
    }

    #[tokio::test]
    async fn every_statement_size_keeps_the_first_of_each_id() {
        let store = SqliteStore::in_memory().await.unwrap();
        // 1,024 + 2 × 256 + 64 + 3 × 16 + 4 + 3 rows: every size, and a remainder of each.
        let n = 1024 + 512 + 64 + 48 + 4 + 3;
        let mut batch: Vec<Event> = (0..n).map(|i| event(i, "first")).collect();
        // Repeats inside the batch, and ids already stored, are skipped; the first one wins.
        let repeat = |i: usize| Event {
            at: Timestamp::from_second(1_900_000_000).unwrap(),
            ..event(i, "first")
        };
        batch.push(repeat(7));
        batch.push(repeat(n - 1));
        assert_eq!(store.append_events(&batch[..10]).await.unwrap(), 10);
        assert_eq!(store.append_events(&batch).await.unwrap(), n as u64 - 10);
        assert_eq!(store.append_events(&batch).await.unwrap(), 0);
        let stored = store.campaign_events(&CampaignId::new("c")).await.unwrap();
        // The first of each id, not the later repeat (of another time).
        assert_eq!(stored, batch[..n].to_vec());
    }
}
