//! [`CampaignStore`] for [`SqliteStore`].

use async_trait::async_trait;
use mia_core::{Campaign, CampaignId, CampaignState, CampaignStore, Error, Result};
use sqlx::{Executor, Sqlite};

use super::SqliteStore;
use crate::codec::{micros, to_json};
use crate::error::Context;
use crate::rows::{self, campaign_columns as columns};

/// Overwrites a campaign through `conn` (a transaction or the pool).
///
/// # Errors
/// [`Error::NotFound`] if there is no campaign with that id.
pub(super) async fn save<'c>(
    conn: impl Executor<'c, Database = Sqlite>,
    campaign: &Campaign,
    doing: &'static str,
) -> Result<()> {
    let saved = sqlx::query(
        "UPDATE campaigns SET spec = ?, variants = ?, state = ?, state_reason = ?, \
         created_at = ?, updated_at = ? WHERE id = ?",
    )
    .bind(to_json(&campaign.spec, "campaign spec").context(doing)?)
    .bind(to_json(&campaign.variants, "campaign variants").context(doing)?)
    .bind(campaign.state.as_str())
    .bind(campaign.state_reason.as_deref())
    .bind(micros(campaign.created_at))
    .bind(micros(campaign.updated_at))
    .bind(campaign.id.as_str())
    .execute(conn)
    .await
    .context(doing)?
    .rows_affected();
    if saved == 0 {
        return Err(Error::NotFound {
            kind: "campaign",
            id: campaign.id.to_string(),
        });
    }
    Ok(())
}

#[async_trait]
impl CampaignStore for SqliteStore {
    async fn insert_campaign(&self, campaign: &Campaign) -> Result<()> {
        const DOING: &str = "insert a campaign";
        let inserted = sqlx::query(concat!(
            "INSERT INTO campaigns (",
            columns!(),
            ") VALUES (?, ?, ?, ?, ?, ?, ?) ON CONFLICT (id) DO NOTHING"
        ))
        .bind(campaign.id.as_str())
        .bind(to_json(&campaign.spec, "campaign spec").context(DOING)?)
        .bind(to_json(&campaign.variants, "campaign variants").context(DOING)?)
        .bind(campaign.state.as_str())
        .bind(campaign.state_reason.as_deref())
        .bind(micros(campaign.created_at))
        .bind(micros(campaign.updated_at))
        .execute(&self.pool)
        .await
        .context(DOING)?
        .rows_affected();
        if inserted == 0 {
            return Err(Error::invalid(format!(
                "campaign {} already exists",
                campaign.id
            )));
        }
        Ok(())
    }

    async fn update_campaign(&self, campaign: &Campaign) -> Result<()> {
        const DOING: &str = "update a campaign";
        save(&self.pool, campaign, DOING).await
    }

    async fn campaign(&self, id: &CampaignId) -> Result<Option<Campaign>> {
        const DOING: &str = "read a campaign";
        sqlx::query(concat!(
            "SELECT ",
            columns!(),
            " FROM campaigns WHERE id = ?"
        ))
        .bind(id.as_str())
        .fetch_optional(&self.pool)
        .await
        .context(DOING)?
        .map(|row| rows::campaign(&row))
        .transpose()
        .context(DOING)
    }

    async fn campaign_state(&self, id: &CampaignId) -> Result<Option<CampaignState>> {
        const DOING: &str = "read a campaign's state";
        let state: Option<String> = sqlx::query_scalar("SELECT state FROM campaigns WHERE id = ?")
            .bind(id.as_str())
            .fetch_optional(&self.pool)
            .await
            .context(DOING)?;
        state
            .map(|name| rows::campaign_state(&name))
            .transpose()
            .context(DOING)
    }

    async fn campaigns(&self) -> Result<Vec<Campaign>> {
        const DOING: &str = "read campaigns";
        let found = sqlx::query(concat!(
            "SELECT ",
            columns!(),
            " FROM campaigns ORDER BY seq"
        ))
        .fetch_all(&self.pool)
        .await
        .context(DOING)?;
        rows::all(&found, rows::campaign).context(DOING)
    }

    async fn campaigns_in(&self, state: CampaignState) -> Result<Vec<Campaign>> {
        const DOING: &str = "read campaigns in a state";
        let found = sqlx::query(concat!(
            "SELECT ",
            columns!(),
            " FROM campaigns WHERE state = ? ORDER BY seq"
        ))
        .bind(state.as_str())
        .fetch_all(&self.pool)
        .await
        .context(DOING)?;
        rows::all(&found, rows::campaign).context(DOING)
    }
}
