//! `callqa qa rescore`: re-score a campaign's past calls from their stored transcripts
//! through the queue (the score stage, then the index stage), then report what changed
//! between the scorecard versions.

use crate::app::App;
use crate::config::Config;
use anyhow::{Context, Result};
use callqa_ingest::queue::{Job, Stage};
use std::path::Path;

#[derive(clap::Subcommand)]
pub enum Cmd {
    /// Re-score past calls with the campaign's current scorecard.
    Rescore {
        #[arg(long)]
        campaign: String,
        /// Only calls started on or after this date (YYYY-MM-DD).
        #[arg(long)]
        since: Option<String>,
        /// Return right after queueing instead of waiting for the diff report.
        #[arg(long)]
        no_wait: bool,
    },
}

pub async fn run(cfg: Config, data_dir: &Path, cmd: Cmd) -> Result<i32> {
    let Cmd::Rescore {
        campaign,
        since,
        no_wait,
    } = cmd;
    let app = App::open(cfg, data_dir).await?;
    let card = crate::qa::scorecard_for(&app, Some(&campaign))?;
    let calls = app
        .db
        .transcribed_calls(Some(&campaign), since.as_deref())
        .await?;
    let mut old_version = None;
    let mut ids = Vec::new();
    for row in &calls {
        if let Some(r) = callqa_qa::load_result(app.db.pool(), &row.call_id).await? {
            old_version = Some(old_version.map_or(r.version, |v: u32| v.min(r.version)));
        }
        app.db.set_status(&row.call_id, "rescoring", None).await?;
        app.queue
            .publish(&Job::new(&row.call_id, Stage::Score))
            .await?;
        ids.push(row.call_id.clone());
    }
    eprintln!(
        "queued {} calls of campaign {campaign} for scorecard {} v{}",
        ids.len(),
        card.id,
        card.version
    );
    if no_wait || ids.is_empty() {
        return Ok(0);
    }
    crate::commands::ingest::wait_for(&app, &ids, &[Stage::Score, Stage::Index]).await?;
    let from = old_version.unwrap_or(card.version);
    let diff = callqa_qa::version_diff(app.db.pool(), &campaign, from, card.version)
        .await
        .context("cannot compute the version diff")?;
    crate::commands::print_json(&diff)?;
    Ok(0)
}
