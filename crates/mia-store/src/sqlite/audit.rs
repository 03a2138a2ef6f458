//! [`AuditStore`] for [`SqliteStore`]: one chain, because an append reads the last entry and
//! inserts after it under SQLite's single write lock (`BEGIN IMMEDIATE`).

use async_trait::async_trait;
use mia_core::{
    AuditCheckpoint, AuditDraft, AuditEntry, AuditHash, AuditStore, Result, SubjectKey,
    canonical_json,
};

use super::SqliteStore;
use super::batch::Insert;
use crate::codec::micros;
use crate::error::{Context, StoreError};
use crate::rows::{self, audit_columns, checkpoint_columns, seq};

const APPEND: Insert = Insert {
    head: concat!("INSERT INTO audit_log (", audit_columns!(), ")"),
    row: "(?, ?, ?, ?, ?, ?, ?, ?)",
    tail: "",
};

#[async_trait]
impl AuditStore for SqliteStore {
    async fn append_audit(&self, drafts: Vec<AuditDraft>) -> Result<Vec<AuditEntry>> {
        const DOING: &str = "append to the audit log";
        if drafts.is_empty() {
            return Ok(Vec::new());
        }
        let mut tx = self.begin_write().await.context(DOING)?;
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
        APPEND
            .run(&mut tx, &sealed, |query, e| {
                Ok(query
                    .bind(seq(e.seq))
                    .bind(micros(e.at))
                    .bind(e.actor.clone())
                    .bind(e.action.as_str())
                    .bind(e.subject.clone())
                    .bind(canonical_json(&e.detail))
                    .bind(e.prev_hash.to_hex())
                    .bind(e.hash.to_hex()))
            })
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
            // `(? + 0)`: a bare bound LIMIT is compiled again on every call (see the claim).
            " FROM audit_log WHERE seq > ? ORDER BY seq LIMIT (? + 0)"
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
            " FROM audit_log WHERE subject = ? ORDER BY seq"
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
            ") VALUES (?, ?, ?, ?, ?)"
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
        let mut tx = self.begin_write().await.context(DOING)?;
        sqlx::query(
            "INSERT INTO audit_keys (name, key) VALUES ('subject', ?) \
             ON CONFLICT (name) DO NOTHING",
        )
        .bind(mia_core::AuditHash(candidate.to_bytes()).to_hex())
        .execute(&mut *tx)
        .await
        .context(DOING)?;
        let kept: String = sqlx::query_scalar("SELECT key FROM audit_keys WHERE name = 'subject'")
            .fetch_one(&mut *tx)
            .await
            .context(DOING)?;
        tx.commit().await.context(DOING)?;
        rows::subject_key(&kept).context(DOING)
    }
}
