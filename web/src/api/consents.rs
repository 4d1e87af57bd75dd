//! Consent records (number, scope, proof, granted/expiry times), newest first. Viewers see
//! the list with masked numbers; looking a number up needs an analyst, since a viewer could
//! otherwise confirm a full number by searching for it.

use std::sync::Arc;

use axum::extract::State;
use axum::Json;
use callqa_dialer::Consents;
use serde::{Deserialize, Serialize};
use serde_json::{json, Value};
use sqlx::Row;

use super::{opt, Params};
use crate::auth::{Role, User};
use crate::error::WebError;
use crate::mask::redact;
use crate::WebState;

/// Most records one answer lists.
const MAX_ROWS: i64 = 500;

#[derive(Debug, Default, Deserialize, utoipa::IntoParams)]
#[into_params(parameter_in = Query)]
pub struct ConsentParams {
    /// Only this number's records (any common format; analysts and admins only).
    pub number: Option<String>,
}

/// One stored consent; times are RFC 3339 UTC.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct ConsentRow {
    pub number: String,
    pub scope: String,
    pub proof: String,
    pub granted_at: String,
    pub expires_at: Option<String>,
    pub recorded_at: String,
}

fn rfc3339(ms: i64) -> String {
    chrono::DateTime::from_timestamp_millis(ms)
        .map(|t| t.to_rfc3339_opts(chrono::SecondsFormat::Secs, true))
        .unwrap_or_else(|| ms.to_string())
}

/// The records of `number` (normalised to E.164), or the newest of all; checks the role.
pub(crate) async fn records(
    state: &WebState,
    user: &User,
    number: Option<&str>,
) -> Result<Vec<ConsentRow>, WebError> {
    user.require(Role::Viewer, "read consent records")?;
    let pool = state.db.pool().clone();
    // `open` only creates the table when the dialer never ran here.
    Consents::open(pool.clone()).await?;
    let rows = match number {
        Some(raw) => {
            user.require(Role::Analyst, "look up a number's consent")?;
            let e164 = callqa_dialer::number::normalize(raw)
                .map_err(|e| WebError::BadRequest(format!("number {raw:?}: {e}")))?;
            sqlx::query(
                "SELECT number, scope, proof, granted_at, expires_at, recorded_at FROM consents
                 WHERE number = $1 ORDER BY granted_at DESC LIMIT $2",
            )
            .bind(e164)
            .bind(MAX_ROWS)
            .fetch_all(&pool)
            .await
        }
        None => {
            sqlx::query(
                "SELECT number, scope, proof, granted_at, expires_at, recorded_at FROM consents
                 ORDER BY granted_at DESC LIMIT $1",
            )
            .bind(MAX_ROWS)
            .fetch_all(&pool)
            .await
        }
    }
    .map_err(WebError::db("read consents"))?;
    rows.iter()
        .map(|r| {
            let get = |i: usize| -> Result<i64, WebError> {
                r.try_get(i).map_err(WebError::db("read consent time"))
            };
            let expires: Option<i64> = r.try_get(4).map_err(WebError::db("read consent expiry"))?;
            Ok(ConsentRow {
                number: r.try_get(0).map_err(WebError::db("read consent number"))?,
                scope: r.try_get(1).map_err(WebError::db("read consent scope"))?,
                proof: r.try_get(2).map_err(WebError::db("read consent proof"))?,
                granted_at: rfc3339(get(3)?),
                expires_at: expires.map(rfc3339),
                recorded_at: rfc3339(get(5)?),
            })
        })
        .collect()
}

/// `{"consents": [{"number", "scope", "proof", "granted_at", "expires_at", "recorded_at"}]}`,
/// numbers masked for viewers; `?number=` needs an analyst.
#[utoipa::path(get, path = "/api/consents", tag = "consents", params(ConsentParams),
    responses((status = 200, description = "Consent records, newest first"),
        (status = 400, description = "Unreadable number"),
        (status = 401, description = "Not logged in"),
        (status = 403, description = "Viewers may not look up a number")),
    security(("bearer" = [])))]
pub async fn list(
    State(state): State<Arc<WebState>>,
    user: User,
    Params(p): Params<ConsentParams>,
) -> Result<Json<Value>, WebError> {
    let mut v = json!({ "consents": records(&state, &user, opt(&p.number)).await? });
    if !user.sees_numbers() {
        redact(&mut v);
    }
    Ok(Json(v))
}
