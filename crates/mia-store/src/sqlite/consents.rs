//! [`ConsentStore`] for [`SqliteStore`]: an append-only ledger ordered by an autoincrement
//! sequence, so history comes back in insertion order.

use async_trait::async_trait;
use mia_core::{ConsentRecord, ConsentStore, ContactId, Purpose, Result};
use sqlx::SqliteConnection;

use super::SqliteStore;
use super::batch::Insert;
use crate::codec::{micros, micros_opt, name_of, to_json};
use crate::error::{Context, StoreError};
use crate::rows::{self, consent_columns as columns};

const APPEND: Insert = Insert {
    head: concat!("INSERT INTO consents (", columns!(), ")"),
    row: "(?, ?, ?, ?, ?, ?, ?, ?)",
    tail: "",
};

/// Appends `records` through `conn`, inside the caller's transaction.
pub(super) async fn append(
    conn: &mut SqliteConnection,
    records: &[ConsentRecord],
) -> Result<(), StoreError> {
    APPEND
        .run(conn, records, |query, r| {
            Ok(query
                .bind(r.contact.as_str())
                .bind(r.purpose.as_str())
                .bind(name_of(&r.status, "consent status")?)
                .bind(name_of(&r.basis, "lawful basis")?)
                .bind(to_json(&r.evidence, "consent evidence")?)
                .bind(r.notice_version.as_str())
                .bind(micros(r.recorded_at))
                .bind(micros_opt(r.expires_at)))
        })
        .await?;
    Ok(())
}

#[async_trait]
impl ConsentStore for SqliteStore {
    async fn append_consent(&self, records: &[ConsentRecord]) -> Result<()> {
        const DOING: &str = "append consent records";
        if records.is_empty() {
            return Ok(());
        }
        let mut tx = self.begin_write().await.context(DOING)?;
        append(&mut tx, records).await.context(DOING)?;
        tx.commit().await.context(DOING)
    }

    async fn consent_history(&self, contact: &ContactId) -> Result<Vec<ConsentRecord>> {
        const DOING: &str = "read consent history";
        sqlx::query(concat!(
            "SELECT ",
            columns!(),
            " FROM consents WHERE contact = ? ORDER BY seq"
        ))
        .bind(contact.as_str())
        .fetch_all(&self.pool)
        .await
        .context(DOING)?
        .iter()
        .map(rows::consent)
        .collect::<Result<_, _>>()
        .context(DOING)
    }

    async fn consent_histories(&self, contacts: &[ContactId]) -> Result<Vec<ConsentRecord>> {
        const DOING: &str = "read consent histories";
        if contacts.is_empty() {
            return Ok(Vec::new());
        }
        let found = sqlx::query(concat!(
            "SELECT ",
            columns!(),
            " FROM consents WHERE contact IN (SELECT value FROM json_each(?)) ORDER BY seq"
        ))
        .bind(rows::contact_list(contacts))
        .fetch_all(&self.pool)
        .await
        .context(DOING)?;
        rows::all(&found, rows::consent).context(DOING)
    }

    async fn consents_for_purpose(&self, purpose: &Purpose) -> Result<Vec<ConsentRecord>> {
        const DOING: &str = "read consents for a purpose";
        sqlx::query(concat!(
            "SELECT ",
            columns!(),
            " FROM consents WHERE purpose = ? ORDER BY seq"
        ))
        .bind(purpose.as_str())
        .fetch_all(&self.pool)
        .await
        .context(DOING)?
        .iter()
        .map(rows::consent)
        .collect::<Result<_, _>>()
        .context(DOING)
    }

    async fn withdraw_consent(&self, record: &ConsentRecord) -> Result<u64> {
        const DOING: &str = "withdraw consent";
        let mut tx = self.begin_write().await.context(DOING)?;
        append(&mut tx, std::slice::from_ref(record))
            .await
            .context(DOING)?;
        let cancelled = sqlx::query(
            "UPDATE outbox SET state = 'cancelled', outcome = 'withdrawn', lease_until = NULL, \
             updated_at = ? \
             WHERE contact = ? AND purpose = ? AND state IN ('pending', 'claimed', 'held') \
             AND (state <> 'claimed' OR outcome IS NULL OR outcome <> 'send_in_flight')",
        )
        .bind(micros(record.recorded_at))
        .bind(record.contact.as_str())
        .bind(record.purpose.as_str())
        .execute(&mut *tx)
        .await
        .context(DOING)?
        .rows_affected();
        tx.commit().await.context(DOING)?;
        Ok(cancelled)
    }
}
