//! Starts the web UI and API (the `web` crate) on the process's shared components.

use crate::app::App;
use anyhow::{Context, Result};
use callqa_search::SearchIndex;
use std::sync::Arc;

pub async fn serve(app: App, listen: &str, stop: tokio::sync::watch::Receiver<bool>) -> Result<()> {
    let index = SearchIndex::open(&app.index_dir()).context("cannot open the search index")?;
    callqa_web::migrate(app.db.pool())
        .await
        .context("cannot create the web tables")?;
    let mut state = callqa_web::WebState::new(
        app.db.clone(),
        app.storage.clone(),
        Arc::new(index),
        app.queue.clone(),
        app.cfg.web.clone(),
    );
    state.extra_metrics = Some(Arc::new(|| {
        let mut out = String::from(
            "# HELP callqa_transcription_rtf Audio seconds transcribed per wall second.\n\
             # TYPE callqa_transcription_rtf gauge\n",
        );
        out.push_str(&format!(
            "callqa_transcription_rtf {}\n",
            callqa_ingest::metrics::real_time_factor().unwrap_or(0.0)
        ));
        out.push_str(&format!(
            "# TYPE callqa_transcriptions_total counter\ncallqa_transcriptions_total {}\n",
            callqa_ingest::metrics::transcribed_total()
        ));
        out
    }));
    callqa_web::serve(state, listen, stop)
        .await
        .with_context(|| format!("web server on {listen} failed"))
}
