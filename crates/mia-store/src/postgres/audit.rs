//! [`AuditStore`] for [`PostgresStore`]: one chain across every process, because an append
//! locks the log table against other appends (`LOCK TABLE ... IN EXCLUSIVE MODE`, which lets
//! readers through) before it reads the last entry, inside the transaction that inserts.

use async_trait::async_trait;
use mia_core::{
    AuditCheckpoint, AuditDraft, AuditEntry, AuditHash, AuditStore, Result, SubjectKey,
    canonical_json,
};

use super::PostgresStore;
use crate::codec::micros;
use crate::error::{Context, StoreError};
use crate::rows::{self, audit_columns, checkpoint_columns, seq};

/// One statement for the whole batch (appends are small: a worker's round at most).
const APPEND: &str = concat!(
    "INSERT INTO audit_log (",
    audit_columns!(),
    ") SELECT * FROM UNNEST($1::int8[], $2::int8[], $3::text[], $4::text[], $5::text[], \
       $6::text[], $7::text[], $8::text[])"
);

#[async_trait]
impl AuditStore for PostgresStore {
    async fn append_audit(&self, drafts: Vec<AuditDraft>) -> Result<Vec<AuditEntry>> {
        const DOING: &str = "append to the audit log";
        if drafts.is_empty() {
            return Ok(Vec::new());
        }
        let mut tx = self.begin().await.context(DOING)?;
        // Held until commit: appends queue here, so each one reads the head the last one left.
        sqlx::query("LOCK TABLE audit_log IN EXCLUSIVE MODE")
            .execute(&mut *tx)
            .await
            .context(DOING)?;
        let head: Option<(i64, String)> =
            sqlx::query_as("SELECT seq, hash FROM audit_log ORDER BY seq DESC LIMIT 1")
                .fetch_optional(&mut *tx)
                .await
                .context(DOING)?;
        let (mut next, mut prev) = match head {
            Some((n, h)) => (
                u64::try_from(n).unwrap_or_default(),
                AuditHash::from_hex(&h)
                    .map_err(|e| StoreError::Corrupt(format!("audit_log.hash: {e}")))
                    .context(DOING)?,
            ),
            None => (0, AuditHash::ZERO),
        };
        let mut sealed = Vec::with_capacity(drafts.len());
        for draft in drafts {
            next += 1;
            let entry = draft.seal(next, prev);
            prev = entry.hash;
            sealed.push(entry);
        }
        let column = |f: &dyn Fn(&AuditEntry) -> String| sealed.iter().map(f).collect::<Vec<_>>();
        sqlx::query(APPEND)
            .bind(sealed.iter().map(|e| seq(e.seq)).collect::<Vec<_>>())
            .bind(sealed.iter().map(|e| micros(e.at)).collect::<Vec<_>>())
            .bind(column(&|e| e.actor.clone()))
            .bind(column(&|e| e.action.as_str().to_owned()))
            .bind(sealed.iter().map(|e| e.subject.clone()).collect::<Vec<_>>())
            .bind(column(&|e| canonical_json(&e.detail)))
            .bind(column(&|e| e.prev_hash.to_hex()))
            .bind(column(&|e| e.hash.to_hex()))
            .execute(&mut *tx)
            .await
            .context(DOING)?;
        tx.commit().await.context(DOING)?;
        Ok(sealed)
    }

    async fn audit_entries(&self, after: u64, limit: usize) -> Result<Vec<AuditEntry>> {
        const DOING: &str = "read the audit log";
        let found = sqlx::query(concat!(
            "SELECT ",
            audit_columns!(),
            " FROM audit_log WHERE seq > $1 ORDER BY seq LIMIT $2"
        ))
        .bind(seq(after))
        .bind(i64::try_from(limit).unwrap_or(i64::MAX))
        .fetch_all(&self.pool)
        .await
        .context(DOING)?;
        rows::all(&found, rows::audit_entry).context(DOING)
    }

    async fn audit_entries_for(&self, subject: &str) -> Result<Vec<AuditEntry>> {
        const DOING: &str = "read a subject's audit entries";
        let found = sqlx::query(concat!(
            "SELECT ",
            audit_columns!(),
            " FROM audit_log WHERE subject = $1 ORDER BY seq"
        ))
        .bind(subject)
        .fetch_all(&self.pool)
        .await
        .context(DOING)?;
        rows::all(&found, rows::audit_entry).context(DOING)
    }

    async fn append_checkpoint(&self, checkpoint: &AuditCheckpoint) -> Result<()> {
        const DOING: &str = "append an audit checkpoint";
        sqlx::query(concat!(
            "INSERT INTO audit_checkpoints (",
            checkpoint_columns!(),
            ") VALUES ($1, $2, $3, $4, $5)"
        ))
        .bind(seq(checkpoint.size))
        .bind(checkpoint.root.to_hex())
        .bind(micros(checkpoint.at))
        .bind(checkpoint.key_id.as_str())
        .bind(checkpoint.signature.as_str())
        .execute(&self.pool)
        .await
        .context(DOING)?;
        Ok(())
    }

    async fn audit_checkpoints(&self) -> Result<Vec<AuditCheckpoint>> {
        const DOING: &str = "read audit checkpoints";
        let found = sqlx::query(concat!(
            "SELECT ",
            checkpoint_columns!(),
            " FROM audit_checkpoints ORDER BY seq"
        ))
        .fetch_all(&self.pool)
        .await
        .context(DOING)?;
        rows::all(&found, rows::checkpoint).context(DOING)
    }

    async fn audit_key(&self, candidate: &SubjectKey) -> Result<SubjectKey> {
        const DOING: &str = "read the audit subject key";
        // The kept key, or the candidate inserted now.
        let found: Option<String> = sqlx::query_scalar(
            "WITH ins AS (INSERT INTO audit_keys (name, key) VALUES ('subject', $1) \
               ON CONFLICT (name) DO NOTHING RETURNING key) \
             SELECT key FROM ins UNION ALL \
             SELECT key FROM audit_keys WHERE name = 'subject' LIMIT 1",
        )
        .bind(AuditHash(candidate.to_bytes()).to_hex())
        .fetch_optional(&self.pool)
        .await
        .context(DOING)?;
        let kept = match found {
            Some(key) => key,
            // Another connection inserted after this statement's snapshot was taken: its
            // key is committed now.
            None => sqlx::query_scalar("SELECT key FROM audit_keys WHERE name = 'subject'")
                .fetch_one(&self.pool)
                .await
                .context(DOING)?,
        };
        rows::subject_key(&kept).context(DOING)
    }
}
