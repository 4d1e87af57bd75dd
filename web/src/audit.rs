//! The audit log: who played which recording, exported which report, changed which
//! user or retried which call. Admins read it at `/api/audit`.

use serde::Serialize;
use sqlx::{AnyPool, Row};

use crate::error::WebError;

/// One audited action.
#[derive(Debug, Clone, PartialEq, Serialize, utoipa::ToSchema)]
pub struct AuditEntry {
    /// RFC 3339 UTC.
    pub at: String,
    pub actor: String,
    /// `playback`, `export`, `retry`, `user_add`, `blacklist_add`, ...
    pub action: String,
    /// What was acted on: a call id, a report, a user name.
    pub target: String,
    pub detail: String,
}

/// Appends an entry. The id is random so inserts never contend on a sequence.
pub async fn record(
    pool: &AnyPool,
    actor: &str,
    action: &str,
    target: &str,
    detail: &str,
) -> Result<(), WebError> {
    let mut id = [0u8; 12];
    rand::RngCore::fill_bytes(&mut rand::rng(), &mut id);
    sqlx::query("INSERT INTO web_audit (id, at, at_ms, actor, action, target, detail) VALUES ($1, $2, $3, $4, $5, $6, $7)")
        .bind(hex::encode(id))
        .bind(callqa_ingest::db::now_rfc3339())
        .bind(callqa_ingest::db::now_ms())
        .bind(actor.to_string())
        .bind(action.to_string())
        .bind(target.to_string())
        .bind(detail.to_string())
        .execute(pool)
        .await
        .map_err(WebError::db(format!("write audit entry {action} {target}")))?;
    Ok(())
}

/// The newest `limit` entries, newest first, optionally of one action.
pub async fn list(
    pool: &AnyPool,
    action: Option<&str>,
    limit: i64,
) -> Result<Vec<AuditEntry>, WebError> {
    let rows = sqlx::query(
        "SELECT at, actor, action, target, detail FROM web_audit WHERE ($1 = '' OR action = $1)
         ORDER BY at_ms DESC, id LIMIT $2",
    )
    .bind(action.unwrap_or("").to_string())
    .bind(limit)
    .fetch_all(pool)
    .await
    .map_err(WebError::db("read the audit log"))?;
    rows.iter()
        .map(|r| {
            let get = |c: &str| {
                r.try_get::<String, _>(c)
                    .map_err(WebError::db(format!("read web_audit.{c}")))
            };
            Ok(AuditEntry {
                at: get("at")?,
                actor: get("actor")?,
                action: get("action")?,
                target: get("target")?,
                detail: get("detail")?,
            })
        })
        .collect()
}
