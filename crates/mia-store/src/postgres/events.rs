//! [`EventStore`] for [`PostgresStore`]: events deduplicated per contact by id.

use async_trait::async_trait;
use mia_core::{CampaignId, ContactId, Event, EventGroup, EventStore, Result, VariantId};
use sqlx::Connection;

use super::{CHUNK, PostgresStore};
use crate::codec::{micros, to_json};
use crate::error::{Context, StoreError};
use crate::rows::{self, event_columns as columns};

/// One statement per chunk, for a batch whose ids are all new.
const INSERT: &str = "INSERT INTO events (id, at, contact, campaign, variant, step, kind, payload) \
     SELECT id, at, contact, campaign, variant, step, kind, payload::jsonb \
     FROM UNNEST($1::text[], $2::int8[], $3::text[], $4::text[], $5::text[], $6::int8[], \
                 $7::text[], $8::text[]) \
       AS u (id, at, contact, campaign, variant, step, kind, payload)";

/// [`INSERT`] skipping every `(contact, id)` that exists: the batch again after [`INSERT`]
/// found one.
const APPEND: &str = concat!(
    "INSERT INTO events (id, at, contact, campaign, variant, step, kind, payload) \
     SELECT id, at, contact, campaign, variant, step, kind, payload::jsonb \
     FROM UNNEST($1::text[], $2::int8[], $3::text[], $4::text[], $5::text[], $6::int8[], \
                 $7::text[], $8::text[]) \
       AS u (id, at, contact, campaign, variant, step, kind, payload) ",
    "ON CONFLICT (contact, id) DO NOTHING"
);

/// Appends `events` (in a transaction, on `conn`) that are not stored yet; returns how many.
///
/// Most batches are all new (a repeat is a retry of a batch whose commit was not
/// acknowledged), so the batch first goes in with plain INSERTs under a savepoint, and only if
/// one of its events exists does it go in again with `ON CONFLICT DO NOTHING`. That conflict
/// check is a speculative insertion: a probe of the primary key before each row and one more WAL
/// record after it, about a quarter of the server's work in an ingest. A concurrent writer of
/// the same id makes the plain INSERT wait for it, then fail, and the second pass skips the
/// id; the result is the same as with `ON CONFLICT` alone.
async fn append(conn: &mut sqlx::PgConnection, events: &[Event]) -> Result<u64, StoreError> {
    let events = rows::events_in_key_order(events);
    let mut attempt = conn.begin().await?;
    match insert(&mut attempt, &events, INSERT).await {
        Ok(new) => {
            attempt.commit().await?;
            Ok(new)
        }
        Err(StoreError::Sqlx(sqlx::Error::Database(db))) if db.is_unique_violation() => {
            attempt.rollback().await?;
            insert(conn, &events, APPEND).await
        }
        Err(err) => Err(err),
    }
}

/// Runs `sql` ([`INSERT`] or [`APPEND`]) on `events`, [`CHUNK`] to a statement; returns the
/// rows inserted.
async fn insert(
    conn: &mut sqlx::PgConnection,
    events: &[&Event],
    sql: &'static str,
) -> Result<u64, StoreError> {
    let mut new = 0;
    for chunk in events.chunks(CHUNK) {
        let mut ids = Vec::with_capacity(chunk.len());
        let mut at = Vec::with_capacity(chunk.len());
        let mut contacts = Vec::with_capacity(chunk.len());
        let mut campaigns = Vec::with_capacity(chunk.len());
        let mut variants = Vec::with_capacity(chunk.len());
        let mut steps = Vec::with_capacity(chunk.len());
        let mut kinds = Vec::with_capacity(chunk.len());
        let mut payloads = Vec::with_capacity(chunk.len());
        for e in chunk {
            ids.push(e.id.as_str());
            at.push(micros(e.at));
            contacts.push(e.contact.as_str());
            campaigns.push(e.campaign.as_ref().map(CampaignId::as_str));
            variants.push(e.variant.as_ref().map(VariantId::as_str));
            steps.push(e.step.map(i64::from));
            kinds.push(e.kind.name());
            payloads.push(to_json(&e.kind, "event kind")?);
        }
        new += sqlx::query(sql)
            .bind(ids)
            .bind(at)
            .bind(contacts)
            .bind(campaigns)
            .bind(variants)
            .bind(steps)
            .bind(kinds)
            .bind(payloads)
            .execute(&mut *conn)
            .await?
            .rows_affected();
    }
    Ok(new)
}

#[async_trait]
impl EventStore for PostgresStore {
    async fn append_events(&self, events: &[Event]) -> Result<u64> {
        const DOING: &str = "append events";
        if events.is_empty() {
            return Ok(0);
        }
        let mut tx = self.begin().await.context(DOING)?;
        let new = append(&mut tx, events).await.context(DOING)?;
        tx.commit().await.context(DOING)?;
        Ok(new)
    }

    async fn campaign_events(&self, campaign: &CampaignId) -> Result<Vec<Event>> {
        const DOING: &str = "read a campaign's events";
        let found = sqlx::query(concat!(
            "SELECT ",
            columns!(),
            " FROM events WHERE campaign = $1 ORDER BY at, id, contact"
        ))
        .bind(campaign.as_str())
        .fetch_all(&self.pool)
        .await
        .context(DOING)?;
        rows::all(&found, rows::event).context(DOING)
    }

    async fn campaign_events_page(
        &self,
        campaign: &CampaignId,
        after: Option<&Event>,
        limit: usize,
    ) -> Result<Vec<Event>> {
        const DOING: &str = "read a page of a campaign's events";
        let limit = i64::try_from(limit).unwrap_or(i64::MAX);
        let text = match after {
            None => concat!(
                "SELECT ",
                columns!(),
                " FROM events WHERE campaign = $1 ORDER BY at, id, contact LIMIT $2"
            ),
            Some(_) => concat!(
                "SELECT ",
                columns!(),
                " FROM events WHERE campaign = $1 AND (at, id, contact) > ($3, $4, $5) \
                 ORDER BY at, id, contact LIMIT $2"
            ),
        };
        let mut query = sqlx::query(text).bind(campaign.as_str()).bind(limit);
        if let Some(after) = after {
            query = query
                .bind(micros(after.at))
                .bind(after.id.as_str())
                .bind(after.contact.as_str());
        }
        let found = query.fetch_all(&self.pool).await.context(DOING)?;
        rows::all(&found, rows::event).context(DOING)
    }

    async fn campaign_events_of(&self, campaign: &CampaignId, kind: &str) -> Result<Vec<Event>> {
        const DOING: &str = "read a campaign's events of one kind";
        let found = sqlx::query(concat!(
            "SELECT ",
            columns!(),
            " FROM events WHERE campaign = $1 AND kind = $2 ORDER BY at, id, contact"
        ))
        .bind(campaign.as_str())
        .bind(kind)
        .fetch_all(&self.pool)
        .await
        .context(DOING)?;
        rows::all(&found, rows::event).context(DOING)
    }

    async fn event_groups(&self, campaign: &CampaignId) -> Result<Vec<EventGroup>> {
        const DOING: &str = "group a campaign's events";
        let found: Vec<rows::EventGroupRow> = sqlx::query_as(rows::event_groups_sql!(
            "$1",
            "(payload->>'value_minor')::bigint"
        ))
        .bind(campaign.as_str())
        .fetch_all(&self.pool)
        .await
        .context(DOING)?;
        Ok(rows::event_groups(found))
    }

    async fn contact_events(&self, contact: &ContactId) -> Result<Vec<Event>> {
        const DOING: &str = "read a contact's events";
        let found = sqlx::query(concat!(
            "SELECT ",
            columns!(),
            " FROM events WHERE contact = $1 ORDER BY at, id"
        ))
        .bind(contact.as_str())
        .fetch_all(&self.pool)
        .await
        .context(DOING)?;
        rows::all(&found, rows::event).context(DOING)
    }
}
