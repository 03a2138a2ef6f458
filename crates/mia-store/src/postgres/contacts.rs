//! [`ContactStore`] for [`PostgresStore`].

use std::collections::HashMap;

use async_trait::async_trait;
use mia_core::{Contact, ContactId, ContactStore, Error, Result, TelegramPeer};
use sqlx::PgConnection;

use super::{CHUNK, PostgresStore};
use crate::codec::{micros, name_of, to_json};
use crate::error::{Context, StoreError};
use crate::rows::{self, contact_columns as columns};

/// What [`ContactStore::upsert_contacts`] is doing, for its errors.
const UPSERTING: &str = "upsert contacts";

/// One statement per chunk: the columns arrive as arrays and `UNNEST` turns them into rows.
const UPSERT: &str = concat!(
    "INSERT INTO contacts (",
    columns!(),
    ") SELECT id, peer_kind, peer_id, locale, time_zone, attributes::jsonb, created_at \
     FROM UNNEST($1::text[], $2::text[], $3::int8[], $4::text[], $5::text[], $6::text[], \
                 $7::int8[]) \
       AS u (id, peer_kind, peer_id, locale, time_zone, attributes, created_at) \
     ON CONFLICT (id) DO UPDATE SET \
       peer_kind = excluded.peer_kind, peer_id = excluded.peer_id, \
       locale = excluded.locale, time_zone = excluded.time_zone, \
       attributes = excluded.attributes, created_at = excluded.created_at"
);

/// The last version of each contact in `contacts`, in batch order: one statement may not
/// update a row twice, and a later entry replaces an earlier one anyway.
fn last_of_each(contacts: &[Contact]) -> Vec<&Contact> {
    let last: HashMap<&ContactId, usize> = contacts
        .iter()
        .enumerate()
        .map(|(i, c)| (&c.id, i))
        .collect();
    contacts
        .iter()
        .enumerate()
        .filter(|(i, c)| last.get(&c.id) == Some(i))
        .map(|(_, c)| c)
        .collect()
}

async fn upsert(conn: &mut PgConnection, contacts: &[&Contact]) -> Result<(), StoreError> {
    for chunk in contacts.chunks(CHUNK) {
        let mut ids = Vec::with_capacity(chunk.len());
        let mut kinds = Vec::with_capacity(chunk.len());
        let mut peers = Vec::with_capacity(chunk.len());
        let mut locales = Vec::with_capacity(chunk.len());
        let mut zones = Vec::with_capacity(chunk.len());
        let mut attributes = Vec::with_capacity(chunk.len());
        let mut created = Vec::with_capacity(chunk.len());
        for c in chunk {
            ids.push(c.id.as_str());
            kinds.push(name_of(&c.peer.kind, "peer kind")?);
            peers.push(c.peer.id);
            locales.push(c.locale.as_deref());
            zones.push(c.time_zone.as_str());
            attributes.push(to_json(&c.attributes, "contact attributes")?);
            created.push(micros(c.created_at));
        }
        sqlx::query(UPSERT)
            .bind(ids)
            .bind(kinds)
            .bind(peers)
            .bind(locales)
            .bind(zones)
            .bind(attributes)
            .bind(created)
            .execute(&mut *conn)
            .await?;
    }
    Ok(())
}

/// The error for a batch that gave a Telegram peer to two contacts, naming both when it can.
/// Runs after the failed transaction rolled back, so it compares the batch with what is
/// committed. `Err` is a store error while looking.
async fn peer_taken(store: &PostgresStore, contacts: &[&Contact]) -> Result<Error> {
    let mut ids = Vec::with_capacity(contacts.len());
    let mut kinds = Vec::with_capacity(contacts.len());
    let mut peers = Vec::with_capacity(contacts.len());
    for c in contacts {
        ids.push(c.id.as_str());
        kinds.push(name_of(&c.peer.kind, "peer kind").context(UPSERTING)?);
        peers.push(c.peer.id);
    }
    let clash: Option<(String, String)> = sqlx::query_as(
        "SELECT u.id, c.id FROM UNNEST($1::text[], $2::text[], $3::int8[]) WITH ORDINALITY \
           AS u (id, peer_kind, peer_id, n) \
         JOIN contacts c ON c.peer_kind = u.peer_kind AND c.peer_id = u.peer_id \
           AND c.id <> u.id \
         ORDER BY u.n LIMIT 1",
    )
    .bind(ids)
    .bind(kinds)
    .bind(peers)
    .fetch_optional(&store.pool)
    .await
    .context(UPSERTING)?;
    let named = clash.and_then(|(id, owner)| {
        let c = contacts.iter().find(|c| c.id.as_str() == id)?;
        Some(rows::peer_taken(c, &owner))
    });
    Ok(named.unwrap_or_else(|| {
        Error::invalid("a Telegram peer in the batch already belongs to another contact")
    }))
}

#[async_trait]
impl ContactStore for PostgresStore {
    async fn upsert_contacts(&self, contacts: &[Contact]) -> Result<()> {
        if contacts.is_empty() {
            return Ok(());
        }
        if let Some(err) = rows::peer_shared_in_batch(contacts) {
            return Err(err);
        }
        let batch = last_of_each(contacts);
        let mut tx = self.begin().await.context(UPSERTING)?;
        match upsert(&mut tx, &batch).await {
            // The id conflict is an update, so a unique violation is the peer constraint.
            Err(StoreError::Sqlx(sqlx::Error::Database(db))) if db.is_unique_violation() => {
                // Postgres has aborted the transaction; look at what is committed instead.
                tx.rollback().await.context(UPSERTING)?;
                let (Ok(err) | Err(err)) = peer_taken(self, &batch).await;
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
            " FROM contacts WHERE id = $1"
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
        let found = sqlx::query(concat!(
            "SELECT ",
            columns!(),
            " FROM contacts WHERE id = ANY($1) ORDER BY id"
        ))
        .bind(ids.iter().map(ContactId::as_str).collect::<Vec<_>>())
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
            " FROM contacts WHERE peer_kind = $1 AND peer_id = $2"
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
        let found = sqlx::query(concat!("SELECT ", columns!(), " FROM contacts ORDER BY id"))
            .fetch_all(&self.pool)
            .await
            .context(DOING)?;
        rows::all(&found, rows::contact).context(DOING)
    }
}

#[cfg(test)]
mod tests {
    #![allow(clippy::unwrap_used)]

    use super::*;

    #[test]
    fn a_repeated_contact_keeps_its_last_version() {
        let t = jiff::Timestamp::from_second(0).unwrap();
        let a1 = Contact::new("a", TelegramPeer::user(1), "UTC", t).unwrap();
        let b = Contact::new("b", TelegramPeer::user(2), "UTC", t).unwrap();
        let a2 = Contact::new("a", TelegramPeer::user(3), "UTC", t).unwrap();
        let batch = [a1, b.clone(), a2.clone()];
        assert_eq!(last_of_each(&batch), vec![&b, &a2]);
    }
}
