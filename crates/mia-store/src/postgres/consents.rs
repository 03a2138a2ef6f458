//! [`ConsentStore`] for [`PostgresStore`]: an append-only ledger ordered by a `BIGSERIAL`
//! sequence, so history comes back in insertion order.

use async_trait::async_trait;
use mia_core::{ConsentRecord, ConsentStore, ContactId, Purpose, Result};
use sqlx::PgConnection;

use super::outbox::close;
use super::{CHUNK, PostgresStore};
use crate::codec::{micros, micros_opt, name_of, to_json};
use crate::error::{Context, StoreError};
use crate::rows::{self, consent_columns as columns};

/// One statement per chunk. `ORDER BY n` hands the rows to the sequence in batch order.
const APPEND: &str = concat!(
    "INSERT INTO consents (",
    columns!(),
    ") SELECT contact, purpose, status, basis, evidence::jsonb, notice_version, recorded_at, \
       expires_at \
     FROM UNNEST($1::text[], $2::text[], $3::text[], $4::text[], $5::text[], $6::text[], \
                 $7::int8[], $8::int8[]) WITH ORDINALITY \
       AS u (contact, purpose, status, basis, evidence, notice_version, recorded_at, \
             expires_at, n) \
     ORDER BY n"
);

/// Appends `records` through `conn`, inside the caller's transaction.
pub(super) async fn append(
    conn: &mut PgConnection,
    records: &[ConsentRecord],
) -> Result<(), StoreError> {
    for chunk in records.chunks(CHUNK) {
        let mut contacts = Vec::with_capacity(chunk.len());
        let mut purposes = Vec::with_capacity(chunk.len());
        let mut statuses = Vec::with_capacity(chunk.len());
        let mut bases = Vec::with_capacity(chunk.len());
        let mut evidence = Vec::with_capacity(chunk.len());
        let mut notices = Vec::with_capacity(chunk.len());
        let mut recorded = Vec::with_capacity(chunk.len());
        let mut expires = Vec::with_capacity(chunk.len());
        for r in chunk {
            contacts.push(r.contact.as_str());
            purposes.push(r.purpose.as_str());
            statuses.push(name_of(&r.status, "consent status")?);
            bases.push(name_of(&r.basis, "lawful basis")?);
            evidence.push(to_json(&r.evidence, "consent evidence")?);
            notices.push(r.notice_version.as_str());
            recorded.push(micros(r.recorded_at));
            expires.push(micros_opt(r.expires_at));
        }
        sqlx::query(APPEND)
            .bind(contacts)
            .bind(purposes)
            .bind(statuses)
            .bind(bases)
            .bind(evidence)
            .bind(notices)
            .bind(recorded)
            .bind(expires)
            .execute(&mut *conn)
            .await?;
    }
    Ok(())
}

#[async_trait]
impl ConsentStore for PostgresStore {
    async fn append_consent(&self, records: &[ConsentRecord]) -> Result<()> {
        const DOING: &str = "append consent records";
        if records.is_empty() {
            return Ok(());
        }
        let mut tx = self.begin().await.context(DOING)?;
        append(&mut tx, records).await.context(DOING)?;
        tx.commit().await.context(DOING)
    }

    async fn consent_history(&self, contact: &ContactId) -> Result<Vec<ConsentRecord>> {
        const DOING: &str = "read consent history";
        let found = sqlx::query(concat!(
            "SELECT ",
            columns!(),
            " FROM consents WHERE contact = $1 ORDER BY seq"
        ))
        .bind(contact.as_str())
        .fetch_all(&self.pool)
        .await
        .context(DOING)?;
        rows::all(&found, rows::consent).context(DOING)
    }

    async fn consent_histories(&self, contacts: &[ContactId]) -> Result<Vec<ConsentRecord>> {
        const DOING: &str = "read consent histories";
        if contacts.is_empty() {
            return Ok(Vec::new());
        }
        let found = sqlx::query(concat!(
            "SELECT ",
            columns!(),
            " FROM consents WHERE contact = ANY($1) ORDER BY seq"
        ))
        .bind(contacts.iter().map(ContactId::as_str).collect::<Vec<_>>())
        .fetch_all(&self.pool)
        .await
        .context(DOING)?;
        rows::all(&found, rows::consent).context(DOING)
    }

    async fn consents_for_purpose(&self, purpose: &Purpose) -> Result<Vec<ConsentRecord>> {
        const DOING: &str = "read consents for a purpose";
        let found = sqlx::query(concat!(
            "SELECT ",
            columns!(),
            " FROM consents WHERE purpose = $1 ORDER BY seq"
        ))
        .bind(purpose.as_str())
        .fetch_all(&self.pool)
        .await
        .context(DOING)?;
        rows::all(&found, rows::consent).context(DOING)
    }

    async fn withdraw_consent(&self, record: &ConsentRecord) -> Result<u64> {
        const DOING: &str = "withdraw consent";
        let mut tx = self.begin().await.context(DOING)?;
        append(&mut tx, std::slice::from_ref(record))
            .await
            .context(DOING)?;
        // Waits for a claim in flight on one of these jobs, then cancels it too.
        // The cancelled jobs leave the queue.
        let cancelled: i64 = sqlx::query_scalar(close!(
            "UPDATE outbox SET state = 'cancelled', outcome = 'withdrawn', lease_until = NULL, \
             updated_at = $1 \
             WHERE contact = $2 AND purpose = $3 AND state IN ('pending', 'claimed', 'held') \
             AND (state <> 'claimed' OR outcome IS NULL OR outcome <> 'send_in_flight')"
        ))
        .bind(micros(record.recorded_at))
        .bind(record.contact.as_str())
        .bind(record.purpose.as_str())
        .fetch_one(&mut *tx)
        .await
        .context(DOING)?;
        tx.commit().await.context(DOING)?;
        // COUNT(*) is never negative.
        Ok(cancelled.unsigned_abs())
    }
}
