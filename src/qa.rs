//! The scoring stage: pick the campaign's scorecard, score the transcript, store the
//! explained result and apply the blacklist policy (opt-outs, complaint thresholds).

use crate::app::App;
use anyhow::{Context, Result};
use callqa_ingest::transcript::{CallMeta, Transcript};
use callqa_qa::{apply_policy, score_call, store_result, QaResult, Scorecard};
use std::path::PathBuf;

/// Directory holding `<campaign>.toml` scorecards.
pub fn scorecards_dir(app: &App) -> PathBuf {
    app.cfg
        .qa
        .scorecards_dir
        .clone()
        .unwrap_or_else(|| app.data_dir.join("scorecards"))
}

/// The campaign's scorecard, or the built-in default.
pub fn scorecard_for(app: &App, campaign: Option<&str>) -> Result<Scorecard> {
    if let Some(c) = campaign.filter(|c| !c.is_empty() && !c.contains(['/', '\\', '.'])) {
        let path = scorecards_dir(app).join(format!("{c}.toml"));
        if path.is_file() {
            let text = std::fs::read_to_string(&path)
                .with_context(|| format!("cannot read scorecard {}", path.display()))?;
            return Scorecard::from_toml(&text)
                .with_context(|| format!("scorecard {} is invalid", path.display()));
        }
    }
    Ok(Scorecard::default_card())
}

/// Scores one call, stores the result and applies the blacklist policy.
pub async fn score_and_store(app: &App, meta: &CallMeta, t: &Transcript) -> Result<QaResult> {
    let card = scorecard_for(app, meta.campaign.as_deref())?;
    let result = score_call(&card, meta, t);
    store_result(app.db.pool(), meta, &result)
        .await
        .with_context(|| format!("cannot store the QA result of {}", meta.call_id))?;
    if let Some(entry) = apply_policy(app.db.pool(), meta, &result, &app.cfg.qa.blacklist)
        .await
        .with_context(|| format!("cannot apply the blacklist policy for {}", meta.call_id))?
    {
        tracing::info!(call_id = %meta.call_id, number = %entry.number, reason = %entry.reason, "number blacklisted");
    }
    tracing::info!(call_id = %meta.call_id, score = result.score, flags = ?result.flags, "scored");
    Ok(result)
}
