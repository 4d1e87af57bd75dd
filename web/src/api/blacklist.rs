//! Blacklist management: analysts read it, admins add, remove (with a reason) and import CSV.
//! Every change lands in the blacklist's own audit trail with the acting user.

use std::sync::Arc;

use axum::extract::{Path, State};
use axum::http::StatusCode;
use axum::Json;
use callqa_qa::{Blacklist, BlacklistEntry, Source};
use serde::Deserialize;
use serde_json::{json, Value};

use super::{opt, Params};
use crate::auth::{Role, User};
use crate::error::WebError;
use crate::WebState;

#[derive(Debug, Default, Deserialize, utoipa::IntoParams)]
#[into_params(parameter_in = Query)]
pub struct ListParams {
    /// Only entries whose number or reason contains this.
    pub q: Option<String>,
}

/// Entries matching `q` (digits are matched ignoring `+`, spaces and dashes).
pub(crate) async fn entries(
    state: &WebState,
    q: Option<&str>,
) -> Result<Vec<BlacklistEntry>, WebError> {
    let all = Blacklist::new(state.db.pool().clone()).list().await?;
    let Some(q) = q else { return Ok(all) };
    let q_digits: String = q.chars().filter(char::is_ascii_digit).collect();
    let q_lower = q.to_lowercase();
    Ok(all
        .into_iter()
        .filter(|e| {
            (!q_digits.is_empty() && e.number.contains(&q_digits))
                || e.reason.to_lowercase().contains(&q_lower)
        })
        .collect())
}

/// `{"entries": [{"number", "reason", "source", "calls", "added_at", "expires_at"}]}`.
#[utoipa::path(get, path = "/api/blacklist", tag = "blacklist", params(ListParams),
    responses((status = 200, description = "Blacklist entries"),
        (status = 401, description = "Not logged in"), (status = 403, description = "Viewers may not")),
    security(("bearer" = [])))]
pub async fn list(
    State(state): State<Arc<WebState>>,
    user: User,
    Params(p): Params<ListParams>,
) -> Result<Json<Value>, WebError> {
    user.require(Role::Analyst, "read the blacklist")?;
    Ok(Json(
        json!({ "entries": entries(&state, opt(&p.q)).await? }),
    ))
}

#[derive(Debug, Deserialize, utoipa::ToSchema)]
pub struct AddBody {
    /// Any common format; stored as E.164.
    pub number: String,
    pub reason: String,
    /// RFC 3339 or `YYYY-MM-DD`; never expires when absent.
    pub expires_at: Option<String>,
}

pub(crate) async fn add_entry(
    state: &WebState,
    user: &User,
    body: &AddBody,
) -> Result<BlacklistEntry, WebError> {
    user.require(Role::Admin, "change the blacklist")?;
    if body.reason.trim().is_empty() {
        return Err(WebError::BadRequest(
            "a reason is required to blacklist a number".into(),
        ));
    }
    let expires = match body
        .expires_at
        .as_deref()
        .map(str::trim)
        .filter(|s| !s.is_empty())
    {
        Some(s) => Some(callqa_qa::store::parse_time("expires_at", s)?),
        None => None,
    };
    let entry = Blacklist::new(state.db.pool().clone())
        .add(
            &body.number,
            body.reason.trim(),
            Source::Manual,
            &[],
            expires,
            &user.name,
        )
        .await?;
    Ok(entry)
}

/// Adds a number by hand (source `manual`).
#[utoipa::path(post, path = "/api/blacklist", tag = "blacklist", request_body = AddBody,
    responses((status = 201, description = "The entry"), (status = 400, description = "Bad number or missing reason"),
        (status = 401, description = "Not logged in"), (status = 403, description = "Only admins")),
    security(("bearer" = [])))]
pub async fn add(
    State(state): State<Arc<WebState>>,
    user: User,
    Json(body): Json<AddBody>,
) -> Result<(StatusCode, Json<BlacklistEntry>), WebError> {
    Ok((
        StatusCode::CREATED,
        Json(add_entry(&state, &user, &body).await?),
    ))
}

#[derive(Debug, Deserialize, utoipa::IntoParams)]
#[into_params(parameter_in = Query)]
pub struct RemoveParams {
    /// Why the number may be called again (required, audited).
    pub reason: Option<String>,
}

pub(crate) async fn remove_entry(
    state: &WebState,
    user: &User,
    number: &str,
    reason: Option<&str>,
) -> Result<(), WebError> {
    user.require(Role::Admin, "change the blacklist")?;
    let reason = reason
        .ok_or_else(|| WebError::BadRequest("a reason is required to remove a number".into()))?;
    if Blacklist::new(state.db.pool().clone())
        .remove(number, reason, &user.name)
        .await?
    {
        Ok(())
    } else {
        Err(WebError::NotFound(format!("{number} on the blacklist")))
    }
}

/// Removes a number; `?reason=` is required.
#[utoipa::path(delete, path = "/api/blacklist/{number}", tag = "blacklist",
    params(("number" = String, Path, description = "The number (E.164, `+` as %2B)"), RemoveParams),
    responses((status = 200, description = "{\"removed\": NUMBER}"), (status = 400, description = "Missing reason"),
        (status = 401, description = "Not logged in"), (status = 403, description = "Only admins"),
        (status = 404, description = "Not on the blacklist")),
    security(("bearer" = [])))]
pub async fn remove(
    State(state): State<Arc<WebState>>,
    user: User,
    Path(number): Path<String>,
    Params(p): Params<RemoveParams>,
) -> Result<Json<Value>, WebError> {
    remove_entry(&state, &user, &number, opt(&p.reason)).await?;
    Ok(Json(json!({ "removed": number })))
}

pub(crate) async fn import_csv(
    state: &WebState,
    user: &User,
    csv: &str,
) -> Result<callqa_qa::blacklist::ImportReport, WebError> {
    user.require(Role::Admin, "change the blacklist")?;
    let report = Blacklist::new(state.db.pool().clone())
        .import_csv(csv.as_bytes(), &user.name)
        .await?;
    Ok(report)
}

/// Imports `number,reason[,expires_at]` rows from the CSV body: `{"imported", "errors": [{"line", "message"}]}`.
#[utoipa::path(post, path = "/api/blacklist/import", tag = "blacklist",
    request_body(content = String, content_type = "text/csv", description = "number,reason[,expires_at] rows"),
    responses((status = 200, description = "How many rows were imported and which failed"),
        (status = 401, description = "Not logged in"), (status = 403, description = "Only admins")),
    security(("bearer" = [])))]
pub async fn import(
    State(state): State<Arc<WebState>>,
    user: User,
    body: String,
) -> Result<Json<Value>, WebError> {
    let report = import_csv(&state, &user, &body).await?;
    Ok(Json(json!(report)))
}
