//! `mia report`: one campaign's report from a store, as JSON and as a self-contained HTML page.

use std::path::{Path, PathBuf};

use clap::Args;
use mia::analytics::HtmlReport;
use mia::{CampaignId, Error, Result};

use crate::ops::DbArgs;

/// `mia report --db PATH --campaign ID [--html PATH] [--json PATH]`.
#[derive(Args, Debug)]
pub(crate) struct ReportArgs {
    #[command(flatten)]
    db: DbArgs,
    /// The campaign to report on.
    #[arg(long)]
    campaign: String,
    /// Also write the report as a self-contained HTML page (inline SVG charts) here.
    #[arg(long)]
    html: Option<PathBuf>,
    /// Write the JSON report here instead of printing it.
    #[arg(long)]
    json: Option<PathBuf>,
}

/// Reads the campaign's jobs and events and writes the report.
#[allow(clippy::print_stdout)]
pub(crate) async fn report(args: &ReportArgs) -> Result<()> {
    let store = args.db.open().await?;
    let page = HtmlReport::build(store.as_ref(), &CampaignId::new(args.campaign.clone())).await?;
    let json = serde_json::to_string_pretty(page.report())
        .map_err(|e| Error::invalid(format!("report is not serialisable: {e}")))?;
    match &args.json {
        Some(path) => write(path, &json)?,
        None => println!("{json}"),
    }
    if let Some(path) = &args.html {
        write(path, &page.render())?;
    }
    Ok(())
}

/// Writes `text` to `path`, creating its folder.
pub(crate) fn write(path: &Path, text: &str) -> Result<()> {
    if let Some(dir) = path.parent().filter(|d| !d.as_os_str().is_empty()) {
        std::fs::create_dir_all(dir)
            .map_err(|e| Error::invalid(format!("cannot create {}: {e}", dir.display())))?;
    }
    std::fs::write(path, text)
        .map_err(|e| Error::invalid(format!("cannot write {}: {e}", path.display())))
}
