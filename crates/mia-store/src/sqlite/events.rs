//! [`EventStore`] for [`SqliteStore`]: events deduplicated by id.

use async_trait::async_trait;
use mia_core::{CampaignId, ContactId, Event, EventStore, Result, VariantId};
use sqlx::sqlite::SqliteRow;

use super::SqliteStore;
use super::batch::Insert;
use crate::codec::{micros, to_json};
use crate::error::Context;
use crate::rows::{self, event_columns as columns};

const APPEND: Insert = Insert {
    head: "INSERT INTO events (id, at, contact, campaign, variant, kind, payload)",
    row: "(?, ?, ?, ?, ?, ?, ?)",
    tail: "ON CONFLICT (id) DO NOTHING",
};

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
        let mut tx = self.begin_write().await.context(DOING)?;
        let new = APPEND
            .run(&mut tx, events, |query, e| {
                Ok(query
                    .bind(e.id.as_str())
                    .bind(micros(e.at))
                    .bind(e.contact.as_str())
                    .bind(e.campaign.as_ref().map(CampaignId::as_str))
                    .bind(e.variant.as_ref().map(VariantId::as_str))
                    .bind(e.kind.name())
                    .bind(to_json(&e.kind, "event kind")?))
            })
            .await
            .context(DOING)?;
        tx.commit().await.context(DOING)?;
        Ok(new)
    }

    async fn campaign_events(&self, campaign: &CampaignId) -> Result<Vec<Event>> {
        const DOING: &str = "read a campaign's events";
        let rows = sqlx::query(concat!(
            "SELECT ",
            columns!(),
            " FROM events WHERE campaign = ? ORDER BY at, id"
        ))
        .bind(campaign.as_str())
        .fetch_all(&self.pool)
        .await
        .context(DOING)?;
        decode_all(&rows, DOING)
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
