//! [`SubjectStore`] for [`SqliteStore`]: data subject requests, a contact's jobs, and erasure
//! in one transaction.

use async_trait::async_trait;
use jiff::Timestamp;
use mia_core::{
    ConsentRecord, ContactId, ErasureCounts, Job, Result, SubjectRequest, SubjectStore,
};

use super::SqliteStore;
use crate::codec::{micros, micros_opt};
use crate::error::Context;
use crate::rows::{self, job_columns, request_columns};

/// Lost jobs moved by one statement of [`reassign_lost`] (three binds each).
const REASSIGN_MAX: usize = 300;

/// After a batch of updates on `conn` found `lost` jobs no longer held: a job among them whose
/// contact was erased since its worker claimed it (the row's contact is the replacement, the
/// claimed job's the erased id) had its results' events recorded under the erased id; they
/// move to the replacement, as the erasure moved the others. Other lost jobs change nothing.
/// The updates are written already, so a failure here is logged, not returned: it leaves
/// those events where they are.
pub(super) async fn reassign_lost(
    conn: &mut sqlx::SqliteConnection,
    updates: &[(&Job, mia_core::JobUpdate)],
    lost: &[mia_core::IdempotencyKey],
) {
    for chunk in rows::lost_jobs(updates, lost).chunks(REASSIGN_MAX) {
        let rows = vec!["(?, ?, ?)"; chunk.len()].join(", ");
        // `OR REPLACE`: an event the replacement has already gives way, as in the erasure.
        let sql = format!(
            "WITH l (key, contact, campaign) AS (VALUES {rows}) \
             UPDATE OR REPLACE events SET contact = o.contact FROM l JOIN outbox o ON o.key = l.key \
             WHERE o.contact <> l.contact AND events.contact = l.contact \
             AND events.campaign = l.campaign"
        );
        // Built from the constant parts above only; every value is bound. Not kept prepared:
        // its text differs with every count of lost jobs, and each count kept would push one of
        // the statements every batch runs out of the hot connection's cache, to be compiled
        // again.
        let mut query = sqlx::query(sqlx::AssertSqlSafe(sql)).persistent(false);
        for job in chunk {
            query = query
                .bind(job.key.as_str())
                .bind(job.contact.as_str())
                .bind(job.campaign.as_str());
        }
        if let Err(e) = query.execute(&mut *conn).await {
            tracing::warn!(error = %e, jobs = chunk.len(), "mia-store: the events of lost jobs were not checked for an erased contact");
        }
    }
}

#[async_trait]
impl SubjectStore for SqliteStore {
    async fn save_request(&self, r: &SubjectRequest) -> Result<()> {
        const DOING: &str = "save a subject request";
        sqlx::query(concat!(
            "INSERT INTO subject_requests (",
            request_columns!(),
            ") VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?, ?) \
             ON CONFLICT (id) DO UPDATE SET kind = excluded.kind, \
             jurisdiction = excluded.jurisdiction, contact = excluded.contact, \
             subject = excluded.subject, state = excluded.state, \
             received_at = excluded.received_at, due_at = excluded.due_at, \
             completed_at = excluded.completed_at, note = excluded.note"
        ))
        .bind(r.id.as_str())
        .bind(r.kind.as_str())
        .bind(r.jurisdiction.as_str())
        .bind(r.contact.as_ref().map(ContactId::as_str))
        .bind(r.subject.as_str())
        .bind(r.state.as_str())
        .bind(micros(r.received_at))
        .bind(micros(r.due_at))
        .bind(micros_opt(r.completed_at))
        .bind(r.note.as_deref())
        .execute(&self.pool)
        .await
        .context(DOING)?;
        Ok(())
    }

    async fn subject_request(&self, id: &str) -> Result<Option<SubjectRequest>> {
        const DOING: &str = "read a subject request";
        sqlx::query(concat!(
            "SELECT ",
            request_columns!(),
            " FROM subject_requests WHERE id = ?"
        ))
        .bind(id)
        .fetch_optional(&self.pool)
        .await
        .context(DOING)?
        .map(|row| rows::subject_request(&row))
        .transpose()
        .context(DOING)
    }

    async fn subject_requests(&self) -> Result<Vec<SubjectRequest>> {
        const DOING: &str = "read subject requests";
        let found = sqlx::query(concat!(
            "SELECT ",
            request_columns!(),
            " FROM subject_requests ORDER BY seq"
        ))
        .fetch_all(&self.pool)
        .await
        .context(DOING)?;
        rows::all(&found, rows::subject_request).context(DOING)
    }

    async fn contact_jobs(&self, contact: &ContactId) -> Result<Vec<Job>> {
        const DOING: &str = "read a contact's jobs";
        let found = sqlx::query(concat!(
            "SELECT ",
            job_columns!(),
            " FROM outbox WHERE contact = ? ORDER BY key"
        ))
        .bind(contact.as_str())
        .fetch_all(&self.pool)
        .await
        .context(DOING)?;
        rows::all(&found, rows::job).context(DOING)
    }

    async fn erase_subject(
        &self,
        contact: &ContactId,
        replacement: &ContactId,
    ) -> Result<ErasureCounts> {
        const DOING: &str = "erase a data subject";
        let (who, anon) = (contact.as_str(), replacement.as_str());
        let mut tx = self.begin_write().await.context(DOING)?;
        // Opens the ledger's update trigger for this contact's rows, until the end of this
        // transaction (the row is deleted again before commit).
        sqlx::query("INSERT INTO erasure_gate (contact) VALUES (?)")
            .bind(who)
            .execute(&mut *tx)
            .await
            .context(DOING)?;
        let mut counts = ErasureCounts::default();
        let mut run = async |sql: &'static str, first: Option<&str>| -> Result<u64> {
            let query = sqlx::query(sql);
            let query = match first {
                Some(value) => query.bind(value.to_owned()),
                None => query,
            };
            Ok(query
                .bind(who.to_owned())
                .execute(&mut *tx)
                .await
                .context(DOING)?
                .rows_affected())
        };
        counts.contacts = run("DELETE FROM contacts WHERE id = ?", None).await?;
        counts.consents = run(
            "UPDATE consents SET contact = ?, evidence = json_set(evidence, '$.reference', '') \
             WHERE contact = ?",
            Some(anon),
        )
        .await?;
        // Nobody is sent to once erased: the open jobs are cancelled (a send already with
        // Telegram is left to its worker, as in a restriction).
        counts.cancelled = run(
            "UPDATE outbox SET state = 'cancelled', outcome = 'erased', lease_until = NULL \
             WHERE contact = ? AND state IN ('pending', 'claimed', 'held') \
             AND (state <> 'claimed' OR outcome IS NULL OR outcome <> 'send_in_flight')",
            None,
        )
        .await?;
        // A job whose send is in flight keeps the erased id until its worker's result comes:
        // the events that worker records under it then move to the replacement (schema
        // version 8).
        counts.jobs = run(
            "UPDATE outbox SET erased_from = CASE WHEN state IN ('claimed', 'cancelled') \
             AND outcome = 'send_in_flight' AND contact <> ?1 THEN contact END, \
             contact = ?1 WHERE contact = ?2",
            Some(anon),
        )
        .await?;
        // `OR REPLACE`: an event the replacement has already (the same id, erased from another
        // contact under the same replacement) gives way to this contact's.
        counts.events = run(
            "UPDATE OR REPLACE events SET contact = ? WHERE contact = ?",
            Some(anon),
        )
        .await?;
        counts.requests = run(
            "UPDATE subject_requests SET contact = NULL WHERE contact = ?",
            None,
        )
        .await?;
        run("DELETE FROM erasure_gate WHERE contact = ?", None).await?;
        tx.commit().await.context(DOING)?;
        Ok(counts)
    }

    async fn restrict_subject(&self, marker: &ConsentRecord) -> Result<u64> {
        const DOING: &str = "restrict processing";
        let mut tx = self.begin_write().await.context(DOING)?;
        super::consents::append(&mut tx, std::slice::from_ref(marker))
            .await
            .context(DOING)?;
        let cancelled = sqlx::query(
            "UPDATE outbox SET state = 'cancelled', outcome = 'restricted', lease_until = NULL, \
             updated_at = ? WHERE contact = ? AND state IN ('pending', 'claimed', 'held') \
             AND (state <> 'claimed' OR outcome IS NULL OR outcome <> 'send_in_flight')",
        )
        .bind(micros(marker.recorded_at))
        .bind(marker.contact.as_str())
        .execute(&mut *tx)
        .await
        .context(DOING)?
        .rows_affected();
        tx.commit().await.context(DOING)?;
        Ok(cancelled)
    }

    async fn purge_events(&self, before: Timestamp) -> Result<u64> {
        const DOING: &str = "purge old events";
        Ok(sqlx::query("DELETE FROM events WHERE at < ?")
            .bind(micros(before))
            .execute(&self.pool)
            .await
            .context(DOING)?
            .rows_affected())
    }

    async fn purge_jobs(&self, before: Timestamp) -> Result<u64> {
        const DOING: &str = "purge old jobs";
        Ok(sqlx::query(
            "DELETE FROM outbox WHERE updated_at < ? \
             AND state IN ('sent', 'skipped', 'dead_letter', 'cancelled') \
             AND campaign IN (SELECT id FROM campaigns WHERE state IN ('completed', 'aborted'))",
        )
        .bind(micros(before))
        .execute(&self.pool)
        .await
        .context(DOING)?
        .rows_affected())
    }
}
