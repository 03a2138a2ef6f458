//! [`ContactStore`] for [`SqliteStore`].

use async_trait::async_trait;
use mia_core::{Contact, ContactId, ContactStore, Error, Result, TelegramPeer};
use sqlx::SqliteConnection;

use super::SqliteStore;
use super::batch::{Binds, Insert};
use crate::codec::{micros, name_of, to_json};
use crate::error::{Context, StoreError};
use crate::rows::{self, contact_columns as columns};

/// What [`ContactStore::upsert_contacts`] is doing, for its errors.
const UPSERTING: &str = "upsert contacts";

const UPSERT: Insert = Insert {
    head: concat!("INSERT INTO contacts (", columns!(), ")"),
    row: "(?, ?, ?, ?, ?, ?, ?)",
    tail: "ON CONFLICT (id) DO UPDATE SET \
           peer_kind = excluded.peer_kind, peer_id = excluded.peer_id, \
           locale = excluded.locale, time_zone = excluded.time_zone, \
           attributes = excluded.attributes, created_at = excluded.created_at",
};

fn bind(query: Binds, c: &Contact) -> Result<Binds, StoreError> {
    Ok(query
        .bind(c.id.as_str())
        .bind(name_of(&c.peer.kind, "peer kind")?)
        .bind(c.peer.id)
        .bind(c.locale.as_deref())
        .bind(c.time_zone.as_str())
        .bind(to_json(&c.attributes, "contact attributes")?)
        .bind(micros(c.created_at)))
}

/// The error for a batch that gave a Telegram peer to two contacts, naming both when it can.
/// Runs inside the failed batch's transaction (SQLite undid only the failing statement), so
/// it sees the chunks written before it. `Err` is a store error while looking.
async fn peer_taken(tx: &mut SqliteConnection, contacts: &[Contact]) -> Result<Error> {
    for c in contacts {
        let owner: Option<String> = sqlx::query_scalar(
            "SELECT id FROM contacts WHERE peer_kind = ? AND peer_id = ? AND id <> ?",
        )
        .bind(name_of(&c.peer.kind, "peer kind").context(UPSERTING)?)
        .bind(c.peer.id)
        .bind(c.id.as_str())
        .fetch_optional(&mut *tx)
        .await
        .context(UPSERTING)?;
        if let Some(other) = owner {
            return Ok(rows::peer_taken(c, &other));
        }
    }
    Ok(rows::peer_shared_in_batch(contacts).unwrap_or_else(|| {
        Error::invalid("a Telegram peer in the batch already belongs to another contact")
    }))
}

#[async_trait]
impl ContactStore for SqliteStore {
    async fn upsert_contacts(&self, contacts: &[Contact]) -> Result<()> {
        if contacts.is_empty() {
            return Ok(());
        }
        let mut tx = self.begin_write().await.context(UPSERTING)?;
        match UPSERT.run(&mut tx, contacts, bind).await {
            // The id conflict is an update, so a unique violation is the peer index.
            Err(StoreError::Sqlx(sqlx::Error::Database(db))) if db.is_unique_violation() => {
                let (Ok(err) | Err(err)) = peer_taken(&mut tx, contacts).await;
                return Err(err);
            }
            written => written.context(UPSERTING)?,
        };
        tx.commit().await.context(UPSERTING)
    }

    async fn contact(&self, id: &ContactId) -> Result<Option<Contact>> {
        const DOING: &str = "read a contact";
        sqlx::query(concat!(
            "SELECT ",
            columns!(),
            " FROM contacts WHERE id = ?"
        ))
        .bind(id.as_str())
        .fetch_optional(&self.pool)
        .await
        .context(DOING)?
        .map(|row| rows::contact(&row))
        .transpose()
        .context(DOING)
    }

    async fn contacts_by_id(&self, ids: &[ContactId]) -> Result<Vec<Contact>> {
        const DOING: &str = "read contacts by id";
        if ids.is_empty() {
            return Ok(Vec::new());
        }
        // One statement for any number of ids: they come in as one JSON array.
        let found = sqlx::query(concat!(
            "SELECT ",
            columns!(),
            " FROM contacts WHERE id IN (SELECT value FROM json_each(?)) ORDER BY id"
        ))
        .bind(rows::contact_list(ids))
        .fetch_all(&self.pool)
        .await
        .context(DOING)?;
        rows::all(&found, rows::contact).context(DOING)
    }

    async fn contact_by_peer(&self, peer: &TelegramPeer) -> Result<Option<Contact>> {
        const DOING: &str = "read a contact by peer";
        sqlx::query(concat!(
            "SELECT ",
            columns!(),
            " FROM contacts WHERE peer_kind = ? AND peer_id = ?"
        ))
        .bind(name_of(&peer.kind, "peer kind").context(DOING)?)
        .bind(peer.id)
        .fetch_optional(&self.pool)
        .await
        .context(DOING)?
        .map(|row| rows::contact(&row))
        .transpose()
        .context(DOING)
    }

    async fn contacts(&self) -> Result<Vec<Contact>> {
        const DOING: &str = "read contacts";
        sqlx::query(concat!("SELECT ", columns!(), " FROM contacts ORDER BY id"))
            .fetch_all(&self.pool)
            .await
            .context(DOING)?
            .iter()
            .map(rows::contact)
            .collect::<Result<_, _>>()
            .context(DOING)
    }
}
