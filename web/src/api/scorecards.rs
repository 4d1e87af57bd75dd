//! Scorecards and their versions as seen in stored QA results: for each version, how many
//! calls it scored, their mean score, and how many calls it is the current result of.

use std::sync::Arc;

use axum::extract::State;
use axum::Json;
use serde::Serialize;
use serde_json::{json, Value};
use sqlx::Row;

use crate::auth::{Role, User};
use crate::error::WebError;
use crate::WebState;

/// One scorecard version's use.
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct ScorecardVersion {
    pub scorecard: String,
    pub version: i64,
    /// Calls this version scored (re-scores included).
    pub calls: u64,
    /// Mean score of those calls, two decimals.
    pub mean_score: f64,
    /// Calls whose current QA result came from this version.
    pub current: u64,
    /// Latest time this version scored a call (RFC 3339).
    pub last_scored_at: Option<String>,
}

/// Every (scorecard, version) in the QA history, newest version first within a scorecard.
pub(crate) async fn versions(state: &WebState) -> Result<Vec<ScorecardVersion>, WebError> {
    let pool = state.db.pool();
    // The QA tables exist whenever QA ran; creating them here keeps a fresh server answering.
    callqa_qa::migrate(pool).await?;
    let rows = sqlx::query(
        "SELECT scorecard, version, COUNT(*) AS n, AVG(score) AS mean, MAX(scored_at) AS last
         FROM qa_history GROUP BY scorecard, version ORDER BY scorecard, version DESC",
    )
    .fetch_all(pool)
    .await
    .map_err(WebError::db("summarise qa_history"))?;
    let current = sqlx::query(
        "SELECT scorecard, version, COUNT(*) AS n FROM qa_results GROUP BY scorecard, version",
    )
    .fetch_all(pool)
    .await
    .map_err(WebError::db("count current QA results"))?;
    let mut cur: Vec<(String, i64, i64)> = Vec::with_capacity(current.len());
    for r in &current {
        cur.push((
            r.try_get(0)
                .map_err(WebError::db("read qa_results.scorecard"))?,
            r.try_get(1)
                .map_err(WebError::db("read qa_results.version"))?,
            r.try_get(2)
                .map_err(WebError::db("read qa_results count"))?,
        ));
    }
    rows.iter()
        .map(|r| {
            let scorecard: String = r.try_get(0).map_err(WebError::db("read scorecard"))?;
            let version: i64 = r.try_get(1).map_err(WebError::db("read version"))?;
            let n: i64 = r.try_get(2).map_err(WebError::db("read call count"))?;
            let mean: f64 = r.try_get(3).map_err(WebError::db("read mean score"))?;
            let last: Option<String> = r.try_get(4).map_err(WebError::db("read scored_at"))?;
            let current = cur
                .iter()
                .find(|(s, v, _)| *s == scorecard && *v == version)
                .map_or(0, |c| c.2.max(0) as u64);
            Ok(ScorecardVersion {
                scorecard,
                version,
                calls: n.max(0) as u64,
                mean_score: (mean * 100.0).round() / 100.0,
                current,
                last_scored_at: last,
            })
        })
        .collect()
}

/// `{"scorecards": [{"scorecard", "version", "calls", "mean_score", "current", "last_scored_at"}]}`.
#[utoipa::path(get, path = "/api/scorecards", tag = "scorecards",
    responses((status = 200, description = "Scorecard versions with call counts and mean scores"),
        (status = 401, description = "Not logged in")),
    security(("bearer" = [])))]
pub async fn list(State(state): State<Arc<WebState>>, user: User) -> Result<Json<Value>, WebError> {
    user.require(Role::Viewer, "read scorecards")?;
    Ok(Json(json!({ "scorecards": versions(&state).await? })))
}
