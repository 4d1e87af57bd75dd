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
    )
    // Admins start campaigns from the UI; they dial here, like `callqa campaign start`.
    .with_dialing(
        app.cfg.dialer.clone(),
        crate::commands::dial::spool_dir(&app),
    )
    .with_scorecards_dir(crate::qa::scorecards_dir(&app));
    callqa_dialer::campaign_store::CampaignStore::open(app.db.pool().clone())
        .await
        .context("cannot create the dialer tables")?;
    let dialer_text = Arc::new(std::sync::Mutex::new(String::new()));
    tokio::spawn(refresh_dialer_metrics(
        app.clone(),
        dialer_text.clone(),
        stop.clone(),
    ));
    state.extra_metrics = Some(Arc::new(move || {
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
        if let Ok(d) = dialer_text.lock() {
            out.push_str(&d);
        }
        out
    }));
    callqa_web::serve(state, listen, stop)
        .await
        .with_context(|| format!("web server on {listen} failed"))
}

/// Dialer counters (placed / answered / abandoned calls, refusals) from the campaign
/// tables, refreshed in the background so `/metrics` never waits on the database.
async fn refresh_dialer_metrics(
    app: App,
    text: Arc<std::sync::Mutex<String>>,
    mut stop: tokio::sync::watch::Receiver<bool>,
) {
    use sqlx::Row;
    loop {
        let counts = sqlx::query(
            "SELECT COUNT(*) AS placed, \
             CAST(COALESCE(SUM(CASE WHEN answered_at IS NOT NULL THEN 1 ELSE 0 END), 0) AS BIGINT) AS answered, \
             CAST(COALESCE(SUM(abandoned), 0) AS BIGINT) AS abandoned, \
             (SELECT COUNT(*) FROM refusals) AS refused FROM dial_attempts",
        )
        .fetch_one(app.db.pool())
        .await;
        match counts {
            Ok(r) => {
                let get = |c: &str| r.try_get::<i64, _>(c).unwrap_or(0);
                let body = format!(
                    "# TYPE callqa_calls_placed_total counter\ncallqa_calls_placed_total {}\n\
                     # TYPE callqa_calls_answered_total counter\ncallqa_calls_answered_total {}\n\
                     # TYPE callqa_calls_abandoned_total counter\ncallqa_calls_abandoned_total {}\n\
                     # TYPE callqa_dial_refusals_total counter\ncallqa_dial_refusals_total {}\n",
                    get("placed"),
                    get("answered"),
                    get("abandoned"),
                    get("refused")
                );
                if let Ok(mut t) = text.lock() {
                    *t = body;
                }
            }
            Err(e) => tracing::debug!(error = %e, "dialer metrics not refreshed"),
        }
        tokio::select! {
            _ = tokio::time::sleep(std::time::Duration::from_secs(10)) => {}
            _ = stop.changed() => return,
        }
    }
}
