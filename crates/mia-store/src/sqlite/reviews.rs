//! [`ReviewStore`] for [`SqliteStore`]: the human review queue, in insertion order.

use async_trait::async_trait;
use mia_core::{
    Campaign, CampaignChange, Error, Result, ReviewId, ReviewItem, ReviewStore, ReviewSubject,
};
use sqlx::{Executor, Sqlite};

use super::SqliteStore;
use super::campaigns;
use crate::codec::{micros, micros_opt, to_json};
use crate::error::{Context, StoreError};
use crate::rows::{self, review_columns as columns};

/// Inserts `item`, or overwrites the pending item with its id (keeping its place in the
/// queue); a decided item is left as it is. Returns whether a row was written; with
/// `only_existing` it never inserts.
async fn save_review<'c>(
    conn: impl Executor<'c, Database = Sqlite>,
    item: &ReviewItem,
    only_existing: bool,
) -> Result<bool, StoreError> {
    let sql = if only_existing {
        "UPDATE reviews SET campaign = ?2, subject = ?3, text = ?4, trace = ?5, state = ?6, \
         decision = ?7, reviewer = ?8, note = ?9, created_at = ?10, resolved_at = ?11 \
         WHERE id = ?1 AND state = 'pending'"
    } else {
        concat!(
            "INSERT INTO reviews (",
            columns!(),
            ", state) VALUES (?1, ?2, ?3, ?4, ?5, ?7, ?8, ?9, ?10, ?11, ?6) \
             ON CONFLICT (id) DO UPDATE SET campaign = ?2, subject = ?3, text = ?4, \
             trace = ?5, state = ?6, decision = ?7, reviewer = ?8, note = ?9, \
             created_at = ?10, resolved_at = ?11 WHERE reviews.state = 'pending'"
        )
    };
    let written = sqlx::query(sql)
        .bind(item.id.as_str())
        .bind(item.campaign.as_str())
        .bind(to_json(&item.subject, "review subject")?)
        .bind(item.text.as_str())
        .bind(to_json(&item.trace, "review trace")?)
        .bind(rows::review_state_name(&item.state))
        .bind(to_json(&item.state, "review state")?)
        .bind(item.reviewer.as_deref())
        .bind(item.note.as_deref())
        .bind(micros(item.created_at))
        .bind(micros_opt(item.resolved_at))
        .execute(conn)
        .await?
        .rows_affected();
    Ok(written > 0)
}

#[async_trait]
impl ReviewStore for SqliteStore {
    async fn insert_reviews(&self, items: &[ReviewItem]) -> Result<()> {
        const DOING: &str = "queue reviews";
        if items.is_empty() {
            return Ok(());
        }
        let mut tx = self.begin_write().await.context(DOING)?;
        for item in items {
            save_review(&mut *tx, item, false).await.context(DOING)?;
        }
        tx.commit().await.context(DOING)
    }

    async fn decide_review(
        &self,
        item: &ReviewItem,
        change: &CampaignChange<'_>,
    ) -> Result<Campaign> {
        const DOING: &str = "resolve a review";
        let at = item.decided_at()?;
        let mut tx = self.begin_write().await.context(DOING)?;
        // The campaign as stored, in the transaction that saves it: `BEGIN IMMEDIATE` holds
        // the database's write lock from the start, so no other write comes between the read
        // and the save.
        let mut campaign = sqlx::query(concat!(
            "SELECT ",
            crate::rows::campaign_columns!(),
            " FROM campaigns WHERE id = ?"
        ))
        .bind(item.campaign.as_str())
        .fetch_optional(&mut *tx)
        .await
        .context(DOING)?
        .map(|row| crate::rows::campaign(&row))
        .transpose()
        .context(DOING)?
        .ok_or_else(|| Error::NotFound {
            kind: "campaign",
            id: item.campaign.to_string(),
        })?;
        item.change_campaign(&mut campaign, change)?;
        if !save_review(&mut *tx, item, true).await.context(DOING)? {
            let exists: bool =
                sqlx::query_scalar("SELECT EXISTS (SELECT 1 FROM reviews WHERE id = ?)")
                    .bind(item.id.as_str())
                    .fetch_one(&mut *tx)
                    .await
                    .context(DOING)?;
            return Err(crate::rows::undecided_review(&item.id, exists));
        }
        campaigns::save(&mut *tx, &campaign, DOING).await?;
        if let ReviewSubject::Send { job } = &item.subject {
            // Not held any more (released by hand): nothing to do.
            super::outbox::release(&mut *tx, job, item.is_approved(), at)
                .await
                .context(DOING)?;
        }
        tx.commit().await.context(DOING)?;
        Ok(campaign)
    }

    async fn review(&self, id: &ReviewId) -> Result<Option<ReviewItem>> {
        const DOING: &str = "read a review";
        sqlx::query(concat!("SELECT ", columns!(), " FROM reviews WHERE id = ?"))
            .bind(id.as_str())
            .fetch_optional(&self.pool)
            .await
            .context(DOING)?
            .map(|row| rows::review(&row))
            .transpose()
            .context(DOING)
    }

    async fn pending_reviews(&self) -> Result<Vec<ReviewItem>> {
        const DOING: &str = "read pending reviews";
        sqlx::query(concat!(
            "SELECT ",
            columns!(),
            " FROM reviews WHERE state = 'pending' ORDER BY seq"
        ))
        .fetch_all(&self.pool)
        .await
        .context(DOING)?
        .iter()
        .map(rows::review)
        .collect::<Result<_, _>>()
        .context(DOING)
    }
}
