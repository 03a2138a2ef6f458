//! [`SubjectStore`] for [`PostgresStore`]: data subject requests, a contact's jobs, and erasure
//! in one transaction.

use async_trait::async_trait;
use jiff::Timestamp;
use mia_core::{
    ConsentRecord, ContactId, ErasureCounts, Job, Result, SubjectRequest, SubjectStore,
};

use super::PostgresStore;
use super::outbox::close;
use crate::codec::{micros, micros_opt};
use crate::error::Context;
use crate::rows::{self, job_columns, request_columns};

impl PostgresStore {
    /// After a batch of updates found `lost` jobs no longer held: a job among them whose
    /// contact was erased since its worker claimed it (the row's contact is the replacement,
    /// the claimed job's the erased id) had its results' events recorded under the erased id;
    /// they move to the replacement, as the erasure moved the others. Other lost jobs change
    /// nothing. The updates are written already, so a failure here is logged, not returned:
    /// it leaves those events where they are.
    pub(super) async fn reassign_lost(
        &self,
        updates: &[(&Job, mia_core::JobUpdate)],
        lost: &[mia_core::IdempotencyKey],
    ) {
        if lost.is_empty() {
            return;
        }
        let (mut keys, mut contacts, mut campaigns) = (Vec::new(), Vec::new(), Vec::new());
        for job in rows::lost_jobs(updates, lost) {
            keys.push(job.key.as_str());
            contacts.push(job.contact.as_str());
            campaigns.push(job.campaign.as_str());
        }
        let moved = async {
            let mut tx = self.begin().await?;
            // Each statement binds the jobs, the contacts they were claimed for and their
            // campaigns as arrays. An event the replacement has already gives way, as in the
            // erasure.
            for sql in [
                "DELETE FROM events r USING outbox o, \
                 UNNEST($1::text[], $2::text[], $3::text[]) AS l (key, contact, campaign) \
                 WHERE o.key = l.key AND o.contact <> l.contact AND r.contact = o.contact \
                 AND EXISTS (SELECT 1 FROM events e WHERE e.contact = l.contact \
                 AND e.campaign = l.campaign AND e.id = r.id)",
                "UPDATE events SET contact = o.contact FROM outbox o, \
                 UNNEST($1::text[], $2::text[], $3::text[]) AS l (key, contact, campaign) \
                 WHERE o.key = l.key AND o.contact <> l.contact \
                 AND events.contact = l.contact AND events.campaign = l.campaign",
            ] {
                sqlx::query(sql)
                    .bind(&keys)
                    .bind(&contacts)
                    .bind(&campaigns)
                    .execute(&mut *tx)
                    .await?;
            }
            tx.commit().await?;
            Ok::<(), crate::error::StoreError>(())
        };
        if let Err(e) = moved.await {
            tracing::warn!(error = %e, jobs = keys.len(), "mia-store: the events of lost jobs were not checked for an erased contact");
        }
    }
}

#[async_trait]
impl SubjectStore for PostgresStore {
    async fn save_request(&self, r: &SubjectRequest) -> Result<()> {
        const DOING: &str = "save a subject request";
        sqlx::query(concat!(
            "INSERT INTO subject_requests (",
            request_columns!(),
            ") VALUES ($1, $2, $3, $4, $5, $6, $7, $8, $9, $10) \
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
            " FROM subject_requests WHERE id = $1"
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
            " FROM outbox WHERE contact = $1 ORDER BY key"
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
        let mut tx = self.begin().await.context(DOING)?;
        // Lets the ledger's trigger through for this contact's rows, until the end of this
        // transaction only (`is_local`).
        sqlx::query("SELECT set_config('mia.erasing', $1, true)")
            .bind(who)
            .execute(&mut *tx)
            .await
            .context(DOING)?;
        let mut counts = ErasureCounts::default();
        // Nobody is sent to once erased: the open jobs are cancelled and leave the queue (a send
        // already with Telegram is left to its worker, as in a restriction).
        let cancelled: i64 = sqlx::query_scalar(close!(
            "UPDATE outbox SET state = 'cancelled', outcome = 'erased', lease_until = NULL \
             WHERE contact = $1 AND state IN ('pending', 'claimed', 'held') \
             AND (state <> 'claimed' OR outcome IS NULL OR outcome <> 'send_in_flight')"
        ))
        .bind(who)
        .fetch_one(&mut *tx)
        .await
        .context(DOING)?;
        // COUNT(*) is never negative.
        counts.cancelled = cancelled.unsigned_abs();
        let mut run = async |sql: &'static str| -> Result<u64> {
            Ok(sqlx::query(sql)
                .bind(who.to_owned())
                .bind(anon.to_owned())
                .execute(&mut *tx)
                .await
                .context(DOING)?
                .rows_affected())
        };
        // Every statement binds the contact as $1 and the replacement as $2.
        counts.contacts =
            run("DELETE FROM contacts WHERE id = $1 AND $2::text IS NOT NULL").await?;
        counts.consents = run("UPDATE consents SET contact = $2, \
             evidence = jsonb_set(evidence, '{reference}', '\"\"'::jsonb) WHERE contact = $1")
        .await?;
        // A job whose send is in flight keeps the erased id until its worker's result comes:
        // the events that worker records under it then move to the replacement (schema
        // version 9).
        counts.jobs = run(
            "UPDATE outbox SET erased_from = CASE WHEN state IN ('claimed', 'cancelled') \
             AND outcome = 'send_in_flight' AND $1 <> $2 THEN contact END, \
             contact = $2 WHERE contact = $1",
        )
        .await?;
        // An event the replacement has already (the same id, erased from another contact under
        // the same replacement) gives way to this contact's.
        run("DELETE FROM events r WHERE r.contact = $2 AND $1 <> $2 \
             AND EXISTS (SELECT 1 FROM events e WHERE e.contact = $1 AND e.id = r.id)")
        .await?;
        counts.events = run("UPDATE events SET contact = $2 WHERE contact = $1").await?;
        counts.requests = run(
            "UPDATE subject_requests SET contact = NULL WHERE contact = $1 AND $2::text IS NOT NULL",
        )
        .await?;
        tx.commit().await.context(DOING)?;
        Ok(counts)
    }

    async fn restrict_subject(&self, marker: &ConsentRecord) -> Result<u64> {
        const DOING: &str = "restrict processing";
        let mut tx = self.begin().await.context(DOING)?;
        super::consents::append(&mut tx, std::slice::from_ref(marker))
            .await
            .context(DOING)?;
        // Cancels every open job of the contact except one whose send is already with Telegram
        // (`send_in_flight`): its worker records what happened, and nothing follows it.
        // The cancelled jobs leave the queue.
        let cancelled: i64 = sqlx::query_scalar(close!(
            "UPDATE outbox SET state = 'cancelled', outcome = 'restricted', lease_until = NULL, \
             updated_at = $1 WHERE contact = $2 AND state IN ('pending', 'claimed', 'held') \
             AND (state <> 'claimed' OR outcome IS NULL OR outcome <> 'send_in_flight')"
        ))
        .bind(micros(marker.recorded_at))
        .bind(marker.contact.as_str())
        .fetch_one(&mut *tx)
        .await
        .context(DOING)?;
        tx.commit().await.context(DOING)?;
        // COUNT(*) is never negative.
        Ok(cancelled.unsigned_abs())
    }

    async fn purge_events(&self, before: Timestamp) -> Result<u64> {
        const DOING: &str = "purge old events";
        Ok(sqlx::query("DELETE FROM events WHERE at < $1")
            .bind(micros(before))
            .execute(&self.pool)
            .await
            .context(DOING)?
            .rows_affected())
    }

    async fn purge_jobs(&self, before: Timestamp) -> Result<u64> {
        const DOING: &str = "purge old jobs";
        Ok(sqlx::query(
            "DELETE FROM outbox WHERE updated_at < $1 \
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
