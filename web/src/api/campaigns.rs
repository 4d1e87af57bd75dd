//! Campaign management: every campaign's status and pacing figures, one campaign's
//! refusals grouped by reason plus the most recent ones (numbers masked for viewers), and
//! starting and pausing a campaign (admins).

use std::sync::Arc;

use axum::extract::{Path, State};
use axum::Json;
use callqa_dialer::{CampaignState, CampaignStatus, CampaignStore};
use serde::Serialize;
use serde_json::{json, Value};
use sqlx::Row;

use crate::auth::{Role, User};
use crate::error::WebError;
use crate::mask::redact;
use crate::WebState;

/// How many of a campaign's latest refusals the detail view lists.
const RECENT_REFUSALS: i64 = 100;

/// Refusals of one rule (`kind`) with one stated reason, and how many there were.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct ReasonCount {
    pub kind: String,
    pub reason: String,
    pub count: u64,
}

/// One refused dial.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct RefusalRow {
    pub number: String,
    pub kind: String,
    pub reason: String,
    /// RFC 3339 UTC.
    pub at: String,
}

/// A campaign's status with its refusals.
#[derive(Debug, Clone, Serialize)]
pub struct CampaignDetail {
    pub status: CampaignStatus,
    pub refusals_by_reason: Vec<ReasonCount>,
    pub recent_refusals: Vec<RefusalRow>,
}

async fn store(state: &WebState) -> Result<CampaignStore, WebError> {
    // `open` only creates missing tables, so a server that never dialed still answers.
    Ok(CampaignStore::open(state.db.pool().clone()).await?)
}

/// Every loaded campaign's status, by name.
pub(crate) async fn statuses(state: &WebState) -> Result<Vec<CampaignStatus>, WebError> {
    let store = store(state).await?;
    let rows = sqlx::query("SELECT name FROM campaigns ORDER BY name")
        .fetch_all(store.pool())
        .await
        .map_err(WebError::db("list campaigns"))?;
    let now = callqa_ingest::db::now_ms();
    let mut out = Vec::with_capacity(rows.len());
    for r in rows {
        let name: String = r.try_get(0).map_err(WebError::db("read campaign name"))?;
        out.push(store.status(&name, now).await?);
    }
    Ok(out)
}

fn ms_to_rfc3339(ms: i64) -> String {
    chrono::DateTime::from_timestamp_millis(ms)
        .map(|t| t.to_rfc3339_opts(chrono::SecondsFormat::Secs, true))
        .unwrap_or_else(|| ms.to_string())
}

/// One campaign's status, refusals grouped by rule and reason (most first), and the latest refusals.
pub(crate) async fn detail(state: &WebState, name: &str) -> Result<CampaignDetail, WebError> {
    let store = store(state).await?;
    let status = store.status(name, callqa_ingest::db::now_ms()).await?;
    let grouped = sqlx::query(
        "SELECT kind, reason, COUNT(*) AS n FROM refusals WHERE campaign = $1
         GROUP BY kind, reason ORDER BY n DESC, kind, reason",
    )
    .bind(name.to_string())
    .fetch_all(store.pool())
    .await
    .map_err(WebError::db(format!("count refusals of {name}")))?;
    let refusals_by_reason = grouped
        .iter()
        .map(|r| {
            let n: i64 = r.try_get(2).map_err(WebError::db("read refusal count"))?;
            Ok(ReasonCount {
                kind: r.try_get(0).map_err(WebError::db("read refusal kind"))?,
                reason: r.try_get(1).map_err(WebError::db("read refusal reason"))?,
                count: n.max(0) as u64,
            })
        })
        .collect::<Result<Vec<_>, WebError>>()?;
    let recent = sqlx::query(
        "SELECT number, kind, reason, at FROM refusals WHERE campaign = $1 ORDER BY at DESC LIMIT $2",
    )
    .bind(name.to_string())
    .bind(RECENT_REFUSALS)
    .fetch_all(store.pool())
    .await
    .map_err(WebError::db(format!("read refusals of {name}")))?;
    let recent_refusals = recent
        .iter()
        .map(|r| {
            let at: i64 = r.try_get(3).map_err(WebError::db("read refusal time"))?;
            Ok(RefusalRow {
                number: r.try_get(0).map_err(WebError::db("read refusal number"))?,
                kind: r.try_get(1).map_err(WebError::db("read refusal kind"))?,
                reason: r.try_get(2).map_err(WebError::db("read refusal reason"))?,
                at: ms_to_rfc3339(at),
            })
        })
        .collect::<Result<Vec<_>, WebError>>()?;
    Ok(CampaignDetail {
        status,
        refusals_by_reason,
        recent_refusals,
    })
}

/// `{"campaigns": [{"name", "state", "placed", "answered", "abandoned", "abandon_rate", "refused", ...}]}`.
#[utoipa::path(get, path = "/api/campaigns", tag = "campaigns",
    responses((status = 200, description = "Every campaign's status and pacing figures"),
        (status = 401, description = "Not logged in")),
    security(("bearer" = [])))]
pub async fn list(State(state): State<Arc<WebState>>, user: User) -> Result<Json<Value>, WebError> {
    user.require(Role::Viewer, "read campaigns")?;
    Ok(Json(json!({ "campaigns": statuses(&state).await? })))
}

/// `{"status": {...}, "refusals_by_reason": [{"kind", "reason", "count"}], "recent_refusals": [{"number", "kind", "reason", "at"}]}`;
/// numbers and reasons are masked for viewers.
#[utoipa::path(get, path = "/api/campaigns/{name}", tag = "campaigns",
    params(("name" = String, Path, description = "Campaign name")),
    responses((status = 200, description = "Status and refusals"),
        (status = 401, description = "Not logged in"), (status = 404, description = "No such campaign")),
    security(("bearer" = [])))]
pub async fn show(
    State(state): State<Arc<WebState>>,
    user: User,
    Path(name): Path<String>,
) -> Result<Json<Value>, WebError> {
    user.require(Role::Viewer, "read campaigns")?;
    let mut v = json!(detail(&state, &name).await?);
    if !user.sees_numbers() {
        redact(&mut v);
    }
    Ok(Json(v))
}

/// Starts campaign `name` dialing in this server process; checks the role and the state.
/// Returns the status it has now (`running`).
pub(crate) async fn start_campaign(
    state: &WebState,
    user: &User,
    name: &str,
) -> Result<CampaignStatus, WebError> {
    user.require(Role::Admin, "start or pause campaigns")?;
    let store = store(state).await?;
    let before = store.state(name).await?;
    match before {
        CampaignState::Running => {
            return Err(WebError::Conflict(format!(
            "campaign {name} is already running (here or in a `callqa campaign start` process); \
                 pause it first"
        )))
        }
        CampaignState::Done => {
            return Err(WebError::Conflict(format!(
            "campaign {name} is done: every contact is finished; load it again with new contacts"
        )))
        }
        CampaignState::Loaded | CampaignState::Paused => {}
    }
    let dialing = state.dialing.as_ref().ok_or_else(|| {
        WebError::Conflict(format!(
            "this server does not dial; run `callqa campaign start {name}` instead"
        ))
    })?;
    dialing.start(state, &store, name).await?;
    crate::audit::record(
        state.db.pool(),
        &user.name,
        "campaign_start",
        name,
        &format!("was {}", before.as_str()),
    )
    .await?;
    Ok(store.status(name, callqa_ingest::db::now_ms()).await?)
}

/// Asks campaign `name` to stop dialing, wherever it runs (as `callqa campaign pause`);
/// calls in flight finish. Returns the status it has now (`paused`).
pub(crate) async fn pause_campaign(
    state: &WebState,
    user: &User,
    name: &str,
) -> Result<CampaignStatus, WebError> {
    user.require(Role::Admin, "start or pause campaigns")?;
    let store = store(state).await?;
    let before = store.state(name).await?;
    if before == CampaignState::Done {
        return Err(WebError::Conflict(format!(
            "campaign {name} is done: nothing left to pause"
        )));
    }
    store
        .set_state(name, CampaignState::Paused, callqa_ingest::db::now_ms())
        .await?;
    crate::audit::record(
        state.db.pool(),
        &user.name,
        "campaign_pause",
        name,
        &format!("was {}", before.as_str()),
    )
    .await?;
    Ok(store.status(name, callqa_ingest::db::now_ms()).await?)
}

/// Starts dialing the campaign in the server process: `{"status": {"name", "state": "running", ...}}`.
#[utoipa::path(post, path = "/api/campaigns/{name}/start", tag = "campaigns",
    params(("name" = String, Path, description = "Campaign name")),
    responses((status = 200, description = "Started; the campaign's status"),
        (status = 401, description = "Not logged in"), (status = 403, description = "Only admins"),
        (status = 404, description = "No such campaign"),
        (status = 409, description = "Already running, done, or its settings do not allow dialing")),
    security(("bearer" = [])))]
pub async fn start(
    State(state): State<Arc<WebState>>,
    user: User,
    Path(name): Path<String>,
) -> Result<Json<Value>, WebError> {
    let status = start_campaign(&state, &user, &name).await?;
    Ok(Json(json!({ "status": status })))
}

/// Pauses the campaign wherever it runs; calls in flight finish: `{"status": {"name", "state": "paused", ...}}`.
#[utoipa::path(post, path = "/api/campaigns/{name}/pause", tag = "campaigns",
    params(("name" = String, Path, description = "Campaign name")),
    responses((status = 200, description = "Paused; the campaign's status"),
        (status = 401, description = "Not logged in"), (status = 403, description = "Only admins"),
        (status = 404, description = "No such campaign"), (status = 409, description = "The campaign is done")),
    security(("bearer" = [])))]
pub async fn pause(
    State(state): State<Arc<WebState>>,
    user: User,
    Path(name): Path<String>,
) -> Result<Json<Value>, WebError> {
    let status = pause_campaign(&state, &user, &name).await?;
    Ok(Json(json!({ "status": status })))
}
