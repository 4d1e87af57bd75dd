//! Scorecards and their versions as seen in stored QA results: for each version, how many
//! calls it scored, their mean score, and how many calls it is the current result of; and
//! each campaign's scorecard text, which admins edit and save as a new version.

use std::sync::Arc;

use axum::extract::{Path, State};
use axum::Json;
use serde::{Deserialize, Serialize};
use serde_json::{json, Value};
use sqlx::Row;

use super::{opt, opt_num, Params};
use crate::auth::{Role, User};
use crate::error::WebError;
use crate::scorecard_files::{self, CardText, Saved};
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

#[derive(Debug, Default, Deserialize, utoipa::IntoParams)]
#[into_params(parameter_in = Query)]
pub struct ShowParams {
    /// A saved version's text instead of the one in force.
    pub version: Option<String>,
}

/// The campaign's scorecard text (or a saved version of it) and the versions saved.
pub(crate) async fn card_text(
    state: &WebState,
    user: &User,
    campaign: &str,
    version: Option<u32>,
) -> Result<(CardText, Vec<u32>), WebError> {
    user.require(Role::Viewer, "read scorecards")?;
    let dir = scorecard_files::dir_of(state)?;
    let mut card = scorecard_files::current(dir, campaign).await?;
    let versions = scorecard_files::history(dir, campaign).await?;
    if let Some(v) = version.filter(|v| *v != card.version || card.builtin) {
        let text = scorecard_files::version_text(dir, campaign, v).await?;
        let parsed = scorecard_files::check(&text).ok();
        card = CardText {
            campaign: campaign.to_string(),
            scorecard: parsed.as_ref().map_or_else(String::new, |c| c.id.clone()),
            version: v,
            name: parsed.as_ref().map_or_else(String::new, |c| c.name.clone()),
            items: parsed.as_ref().map_or(0, |c| c.items.len()),
            builtin: false,
            toml: text,
        };
    }
    Ok((card, versions))
}

/// Saves `text` as the campaign's scorecard (a new version); audited.
pub(crate) async fn save_card(
    state: &WebState,
    user: &User,
    campaign: &str,
    text: &str,
) -> Result<Saved, WebError> {
    user.require(Role::Admin, "edit scorecards")?;
    let dir = scorecard_files::dir_of(state)?;
    let saved = scorecard_files::save(state, dir, campaign, text).await?;
    crate::audit::record(
        state.db.pool(),
        &user.name,
        "scorecard_save",
        campaign,
        &format!(
            "{} v{} (was v{})",
            saved.scorecard, saved.version, saved.previous_version
        ),
    )
    .await?;
    Ok(saved)
}

/// `{"campaign", "scorecard", "version", "name", "items", "builtin", "toml", "versions": [N, ...]}`:
/// the TOML the campaign's calls are scored with (`builtin` = the default card, no file of
/// its own) and the versions saved from here, newest first.
#[utoipa::path(get, path = "/api/scorecards/{name}", tag = "scorecards",
    params(("name" = String, Path, description = "Campaign name"), ShowParams),
    responses((status = 200, description = "The campaign's scorecard text"),
        (status = 400, description = "Not a usable campaign name"),
        (status = 401, description = "Not logged in"), (status = 404, description = "No such saved version")),
    security(("bearer" = [])))]
pub async fn show(
    State(state): State<Arc<WebState>>,
    user: User,
    Path(name): Path<String>,
    Params(p): Params<ShowParams>,
) -> Result<Json<Value>, WebError> {
    let version = opt_num::<u32>("version", &p.version)?;
    let (card, versions) = card_text(&state, &user, &name, version).await?;
    let mut v = json!(card);
    v["versions"] = json!(versions);
    Ok(Json(v))
}

#[derive(Debug, Default, Deserialize, utoipa::IntoParams)]
#[into_params(parameter_in = Query)]
pub struct SaveParams {
    /// `true`: only check the text, save nothing.
    pub check: Option<String>,
}

/// Checks the TOML body with the scoring stage's parser and saves it as the campaign's
/// scorecard, as a new version (`version` is raised when the text does not raise it):
/// `{"campaign", "scorecard", "version", "previous_version", "bumped"}`. With `?check=true`
/// only checks: `{"valid": true, "scorecard", "version", "items"}`. A refused text answers
/// 400 `{"error", "line", "column"}`.
#[utoipa::path(put, path = "/api/scorecards/{name}", tag = "scorecards",
    params(("name" = String, Path, description = "Campaign name"), SaveParams),
    request_body(content = String, content_type = "application/toml", description = "The scorecard TOML"),
    responses((status = 200, description = "Saved (or, with check, valid)"),
        (status = 400, description = "Invalid scorecard, with the line of the fault when known"),
        (status = 401, description = "Not logged in"), (status = 403, description = "Only admins"),
        (status = 409, description = "Unchanged, or this server cannot edit scorecards")),
    security(("bearer" = [])))]
pub async fn save(
    State(state): State<Arc<WebState>>,
    user: User,
    Path(name): Path<String>,
    Params(p): Params<SaveParams>,
    body: String,
) -> Result<Json<Value>, WebError> {
    user.require(Role::Admin, "edit scorecards")?;
    if matches!(opt(&p.check), Some("true" | "1")) {
        let card = scorecard_files::check(&body).map_err(WebError::InvalidScorecard)?;
        return Ok(Json(json!({
            "valid": true, "scorecard": card.id, "version": card.version, "items": card.items.len(),
        })));
    }
    Ok(Json(json!(save_card(&state, &user, &name, &body).await?)))
}
