//! Consent records (number, scope, proof, granted/expiry times), newest first. Viewers see
//! the list with masked numbers; looking a number up needs an analyst, since a viewer could
//! otherwise confirm a full number by searching for it. Admins import CSV files in the
//! format `callqa campaign consent-import` reads.

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

/// A CSV row the import rejected.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct RejectedRow {
    /// 1-based line of the file; 0 when the dialer's message names none.
    pub line: u64,
    pub message: String,
}

/// What a consent import did, in the blacklist import's shape.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize)]
pub struct ConsentImportReport {
    pub imported: u64,
    pub errors: Vec<RejectedRow>,
}

/// Splits the dialer's `line N: reason` message.
fn rejected_row(message: &str) -> RejectedRow {
    message
        .strip_prefix("line ")
        .and_then(|rest| rest.split_once(": "))
        .and_then(|(n, reason)| {
            n.parse().ok().map(|line| RejectedRow {
                line,
                message: reason.to_string(),
            })
        })
        .unwrap_or_else(|| RejectedRow {
            line: 0,
            message: message.to_string(),
        })
}

/// Imports `number,scope,proof,granted_at[,expires_at]` rows with the dialer's own reader
/// (the `callqa campaign consent-import` format); audited.
pub(crate) async fn import_csv(
    state: &WebState,
    user: &User,
    csv: &str,
) -> Result<ConsentImportReport, WebError> {
    user.require(Role::Admin, "import consent records")?;
    let consents = Consents::open(state.db.pool().clone()).await?;
    let r = consents
        .import_csv(csv.as_bytes(), chrono::Utc::now())
        .await?;
    let report = ConsentImportReport {
        imported: r.imported,
        errors: r.errors.iter().map(|e| rejected_row(e)).collect(),
    };
    crate::audit::record(
        state.db.pool(),
        &user.name,
        "consent_import",
        "consents",
        &format!(
            "imported {}, rejected {}",
            report.imported,
            report.errors.len()
        ),
    )
    .await?;
    Ok(report)
}

/// Imports consent records from the CSV body (`number,scope,proof,granted_at[,expires_at]`,
/// RFC 3339 times, optional `number,...` header): `{"imported", "errors": [{"line", "message"}]}`.
/// Good rows are stored even when others are rejected.
#[utoipa::path(post, path = "/api/consents/import", tag = "consents",
    request_body(content = String, content_type = "text/csv",
        description = "number,scope,proof,granted_at[,expires_at] rows"),
    responses((status = 200, description = "How many rows were imported and which were rejected, by line"),
        (status = 401, description = "Not logged in"), (status = 403, description = "Only admins")),
    security(("bearer" = [])))]
pub async fn import(
    State(state): State<Arc<WebState>>,
    user: User,
    body: String,
) -> Result<Json<ConsentImportReport>, WebError> {
    Ok(Json(import_csv(&state, &user, &body).await?))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn dialer_messages_split_into_line_and_reason() {
        assert_eq!(
            rejected_row("line 3: scope and proof are required"),
            RejectedRow {
                line: 3,
                message: "scope and proof are required".into()
            }
        );
        assert_eq!(rejected_row("something else").line, 0);
        assert_eq!(rejected_row("line x: y").message, "line x: y");
    }
}
