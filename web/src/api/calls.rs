//! Calls: listing, one call's metadata + transcript + QA result, recording playback with
//! HTTP Range, and the dead-letter view with retry.

use std::sync::Arc;

use axum::body::{Body, Bytes};
use axum::extract::{Path, State};
use axum::http::{header, HeaderMap, StatusCode};
use axum::response::{IntoResponse, Response};
use axum::Json;
use callqa_ingest::db::{status, CallRow};
use callqa_ingest::storage::Storage;
use callqa_ingest::transcript::Transcript;
use serde::Deserialize;
use serde_json::{json, Value};
use sqlx::AnyPool;

use super::{opt, opt_num, Params};
use crate::auth::{Role, User};
use crate::error::WebError;
use crate::WebState;

/// Largest body of one open-ended range answer: the browser asks for the rest as it plays,
/// so a long recording is never read into memory whole.
const MAX_CHUNK: u64 = 4 * 1024 * 1024;

/// The call's stored transcript, `None` before transcription. A transcript object that
/// is missing although the row names it is reported, not hidden.
pub async fn load_transcript(
    storage: &Storage,
    row: &CallRow,
) -> Result<Option<Transcript>, WebError> {
    let Some(key) = row.transcript_key.as_deref() else {
        return Ok(None);
    };
    let bytes = storage.get(key).await?;
    serde_json::from_slice(&bytes)
        .map(Some)
        .map_err(|source| WebError::Json {
            what: format!("transcript {key}"),
            source,
        })
}

/// The one builder of the `callqa calls show --json` shape, used by the CLI and by
/// `GET /api/calls/{id}`: metadata, recording, segments, QA result, error, and the source
/// file name. Numbers are in full; callers mask for roles that may not see them.
pub async fn call_json(
    storage: &Storage,
    pool: &AnyPool,
    row: &CallRow,
) -> Result<Value, WebError> {
    let transcript = load_transcript(storage, row).await?;
    let qa = callqa_qa::load_result(pool, &row.call_id).await?;
    let segments = transcript.map(|t| t.segments).unwrap_or_default();
    Ok(json!({
        "call_id": row.call_id,
        "status": row.status,
        "campaign": row.campaign,
        "agent": row.agent,
        "customer": row.customer,
        "started_at": row.started_at,
        "duration_ms": row.duration_ms,
        "language": row.language,
        "recording": {"key": row.recording_key, "bytes": row.recording_bytes},
        "segments": segments,
        "qa": qa,
        "error": row.error,
        "file": row.source_name,
    }))
}

/// The short form of a call used by lists.
pub(crate) fn summary(row: &CallRow, user: &User) -> Value {
    let mut v = json!({
        "call_id": row.call_id,
        "status": row.status,
        "campaign": row.campaign,
        "agent": row.agent,
        "customer": row.customer,
        "started_at": row.started_at,
        "duration_ms": row.duration_ms,
        "language": row.language,
        "error": row.error,
        "updated_at": row.updated_at,
    });
    if !user.sees_numbers() {
        crate::mask::redact(&mut v);
    }
    v
}

pub(crate) async fn get_row(state: &WebState, id: &str) -> Result<CallRow, WebError> {
    state
        .db
        .get_call(id)
        .await?
        .ok_or_else(|| WebError::NotFound(format!("call {id}")))
}

#[derive(Debug, Deserialize, utoipa::IntoParams)]
#[into_params(parameter_in = Query)]
pub struct ListParams {
    /// Only calls with this status (`spooled`, `stored`, `queued`, `transcribed`, `scored`,
    /// `done`, `failed`).
    pub status: Option<String>,
    /// At most this many (default 100).
    pub limit: Option<String>,
}

/// Calls, newest first: `{"calls": [{"call_id", "status", ...}]}`.
#[utoipa::path(get, path = "/api/calls", tag = "calls", params(ListParams),
    responses((status = 200, description = "Calls, newest first"), (status = 401, description = "Not logged in")),
    security(("bearer" = [])))]
pub async fn list(
    State(state): State<Arc<WebState>>,
    user: User,
    Params(p): Params<ListParams>,
) -> Result<Json<Value>, WebError> {
    user.require(Role::Viewer, "list calls")?;
    let limit = opt_num::<i64>("limit", &p.limit)?
        .unwrap_or(100)
        .clamp(1, 10_000);
    let rows = state.db.list_calls(opt(&p.status), limit).await?;
    Ok(Json(
        json!({ "calls": rows.iter().map(|r| summary(r, &user)).collect::<Vec<_>>() }),
    ))
}

/// One call as `callqa calls show --json` prints it.
#[utoipa::path(get, path = "/api/calls/{id}", tag = "calls",
    params(("id" = String, Path, description = "Call id")),
    responses((status = 200, description = "The call, its transcript and QA result"),
        (status = 401, description = "Not logged in"), (status = 404, description = "No such call")),
    security(("bearer" = [])))]
pub async fn show(
    State(state): State<Arc<WebState>>,
    user: User,
    Path(id): Path<String>,
) -> Result<Json<Value>, WebError> {
    user.require(Role::Viewer, "read calls")?;
    let row = get_row(&state, &id).await?;
    let mut v = call_json(&state.storage, state.db.pool(), &row).await?;
    if !user.sees_numbers() {
        crate::mask::redact(&mut v);
    }
    Ok(Json(v))
}

/// Content type from the recording's extension, so browsers pick the right decoder.
pub fn audio_content_type(key: &str) -> &'static str {
    match key
        .rsplit('.')
        .next()
        .map(str::to_ascii_lowercase)
        .as_deref()
    {
        Some("wav") => "audio/wav",
        Some("mp3") => "audio/mpeg",
        Some("flac") => "audio/flac",
        Some("ogg" | "oga" | "opus") => "audio/ogg",
        Some("m4a" | "mp4") => "audio/mp4",
        Some("webm") => "audio/webm",
        Some("gsm") => "audio/x-gsm",
        Some("au" | "snd") => "audio/basic",
        _ => "application/octet-stream",
    }
}

/// A recording browsers cannot play (GSM 06.10, Sun `.au`, Asterisk's headerless G.711 and
/// linear files) as a 16-bit PCM WAV, decoded afresh for each request (these decode at
/// hundreds of times real time); `None` for the others.
async fn playable_wav(storage: &Storage, key: &str, size: u64) -> Result<Option<Bytes>, WebError> {
    let extension = key.rsplit_once('.').map(|(_, e)| e.to_ascii_lowercase());
    let playable = ["mp3", "flac", "ogg", "oga", "opus", "m4a", "mp4", "webm"];
    if size == 0 || extension.as_deref().is_some_and(|e| playable.contains(&e)) {
        return Ok(None);
    }
    let head = storage.get_range(key, 0..size.min(512)).await?;
    if !callqa_ingest::decode::needs_transcoding(&head, extension.as_deref()) {
        return Ok(None);
    }
    let data = storage.get(key).await?;
    let name = key.to_string();
    tokio::task::spawn_blocking(move || callqa_ingest::decode::decode(data.to_vec(), &name))
        .await
        .map_err(|e| WebError::Task(e.to_string()))?
        .map(|audio| Some(Bytes::from(callqa_ingest::decode::pcm_wav(&audio))))
        .map_err(|e| WebError::Task(format!("recording {key}: {e}")))
}

/// A `Range` header that is malformed or lies beyond the end (HTTP 416).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Unsatisfiable;

/// Parses a single `bytes=` range against `size`; `Ok(None)` = the whole object.
/// Only the first of several ranges is served.
pub fn parse_range(value: &str, size: u64) -> Result<Option<std::ops::Range<u64>>, Unsatisfiable> {
    let spec = value.trim().strip_prefix("bytes=").ok_or(Unsatisfiable)?;
    let first = spec.split(',').next().unwrap_or("").trim();
    let (a, b) = first.split_once('-').ok_or(Unsatisfiable)?;
    let (a, b) = (a.trim(), b.trim());
    let range = if a.is_empty() {
        // Suffix range: the last N bytes.
        let n: u64 = b.parse().map_err(|_| Unsatisfiable)?;
        if n == 0 {
            return Err(Unsatisfiable);
        }
        size.saturating_sub(n)..size
    } else {
        let start: u64 = a.parse().map_err(|_| Unsatisfiable)?;
        let end = if b.is_empty() {
            size.min(start.saturating_add(MAX_CHUNK))
        } else {
            let last: u64 = b.parse().map_err(|_| Unsatisfiable)?;
            if last < start {
                return Err(Unsatisfiable);
            }
            size.min(last + 1)
        };
        start..end
    };
    if range.start >= size || range.is_empty() {
        return Err(Unsatisfiable);
    }
    Ok(Some(range))
}

/// Streams the recording; honours `Range` (206 + `Content-Range`). A request that starts
/// at byte 0 begins a playback and is written to the audit log.
#[utoipa::path(get, path = "/api/calls/{id}/audio", tag = "calls",
    params(("id" = String, Path, description = "Call id"), ("Range" = Option<String>, Header, description = "bytes=START-END")),
    responses((status = 200, description = "The whole recording", content_type = "audio/wav"),
        (status = 206, description = "The requested byte range"),
        (status = 401, description = "Not logged in"), (status = 403, description = "Viewers may not listen"),
        (status = 404, description = "No such call"), (status = 416, description = "Range not satisfiable")),
    security(("bearer" = [])))]
pub async fn audio(
    State(state): State<Arc<WebState>>,
    user: User,
    Path(id): Path<String>,
    headers: HeaderMap,
) -> Result<Response, WebError> {
    user.require(Role::Analyst, "listen to recordings")?;
    let row = get_row(&state, &id).await?;
    let key = row.recording_key.clone();
    let stored_size = state
        .storage
        .size(&key)
        .await?
        .ok_or_else(|| WebError::NotFound(format!("recording {key} of call {id}")))?;
    let (ctype, size, transcoded) = match playable_wav(&state.storage, &key, stored_size).await? {
        Some(wav) => ("audio/wav", wav.len() as u64, Some(wav)),
        None => (audio_content_type(&key), stored_size, None),
    };
    let range = match headers.get(header::RANGE).and_then(|v| v.to_str().ok()) {
        None => None,
        Some(v) => match parse_range(v, size) {
            Ok(r) => r,
            Err(Unsatisfiable) => {
                return Ok((
                    StatusCode::RANGE_NOT_SATISFIABLE,
                    [
                        (header::CONTENT_RANGE, format!("bytes */{size}")),
                        (header::ACCEPT_RANGES, "bytes".to_string()),
                    ],
                )
                    .into_response())
            }
        },
    };
    if range.as_ref().is_none_or(|r| r.start == 0) {
        crate::audit::record(state.db.pool(), &user.name, "playback", &id, &key).await?;
        crate::metrics::count_playback();
    }
    let (status, body, content_range) = match range {
        Some(r) => {
            let bytes = match &transcoded {
                Some(wav) => wav.slice(r.start as usize..r.end as usize),
                None => state.storage.get_range(&key, r.clone()).await?,
            };
            (
                StatusCode::PARTIAL_CONTENT,
                bytes,
                Some(format!("bytes {}-{}/{size}", r.start, r.end - 1)),
            )
        }
        None => match transcoded {
            Some(wav) => (StatusCode::OK, wav, None),
            None => (StatusCode::OK, state.storage.get(&key).await?, None),
        },
    };
    let mut res = Response::builder()
        .status(status)
        .header(header::CONTENT_TYPE, ctype)
        .header(header::ACCEPT_RANGES, "bytes")
        .header(header::CONTENT_LENGTH, body.len())
        .header(header::CACHE_CONTROL, "private, no-store");
    if let Some(cr) = content_range {
        res = res.header(header::CONTENT_RANGE, cr);
    }
    res.body(Body::from(body))
        .map_err(|e| WebError::Task(e.to_string()))
}

/// Failed calls with the reason each failed: `{"calls": [{"call_id", "error", ...}]}`.
#[utoipa::path(get, path = "/api/dead-letters", tag = "calls",
    responses((status = 200, description = "Failed calls, newest first"),
        (status = 401, description = "Not logged in"), (status = 403, description = "Viewers may not")),
    security(("bearer" = [])))]
pub async fn dead_letters(
    State(state): State<Arc<WebState>>,
    user: User,
) -> Result<Json<Value>, WebError> {
    user.require(Role::Analyst, "see failed calls")?;
    let rows = state.db.list_calls(Some(status::FAILED), 1000).await?;
    Ok(Json(
        json!({ "calls": rows.iter().map(|r| summary(r, &user)).collect::<Vec<_>>() }),
    ))
}

/// Re-queues a failed call from the start (transcription).
pub(crate) async fn retry_call(state: &WebState, user: &User, id: &str) -> Result<Value, WebError> {
    user.require(Role::Analyst, "retry failed calls")?;
    let row = get_row(state, id).await?;
    if row.status != status::FAILED {
        return Err(WebError::Conflict(format!(
            "call {id} is {}, not failed; only failed calls are retried",
            row.status
        )));
    }
    // Through `stored`, like a new call: a crash before the job is published leaves the call
    // for the workers' sweep, never `queued` without a job.
    state.db.set_status(id, status::STORED, None).await?;
    callqa_ingest::booking::publish_stored(&state.db, state.queue.as_ref(), id).await?;
    crate::audit::record(
        state.db.pool(),
        &user.name,
        "retry",
        id,
        row.error.as_deref().unwrap_or(""),
    )
    .await?;
    Ok(json!({ "call_id": id, "status": status::QUEUED }))
}

/// Resets a failed call to `queued` and publishes its transcription job again.
#[utoipa::path(post, path = "/api/calls/{id}/retry", tag = "calls",
    params(("id" = String, Path, description = "Call id")),
    responses((status = 200, description = "{\"call_id\", \"status\": \"queued\"}"),
        (status = 401, description = "Not logged in"), (status = 403, description = "Viewers may not"),
        (status = 404, description = "No such call"), (status = 409, description = "The call has not failed")),
    security(("bearer" = [])))]
pub async fn retry(
    State(state): State<Arc<WebState>>,
    user: User,
    Path(id): Path<String>,
) -> Result<Json<Value>, WebError> {
    Ok(Json(retry_call(&state, &user, &id).await?))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn ranges() {
        assert_eq!(parse_range("bytes=0-99", 1000), Ok(Some(0..100)));
        assert_eq!(parse_range("bytes=900-", 1000), Ok(Some(900..1000)));
        assert_eq!(parse_range("bytes=-100", 1000), Ok(Some(900..1000)));
        assert_eq!(parse_range("bytes=990-2000", 1000), Ok(Some(990..1000)));
        assert_eq!(parse_range("bytes=0-0,5-9", 1000), Ok(Some(0..1)));
        assert_eq!(parse_range("bytes=1000-", 1000), Err(Unsatisfiable));
        assert_eq!(parse_range("bytes=5-2", 1000), Err(Unsatisfiable));
        assert_eq!(parse_range("items=0-1", 1000), Err(Unsatisfiable));
        assert_eq!(
            parse_range("bytes=0-", 10 * MAX_CHUNK),
            Ok(Some(0..MAX_CHUNK))
        );
    }

    #[test]
    fn content_types() {
        assert_eq!(
            audio_content_type("recordings/2026/01/01/a.WAV"),
            "audio/wav"
        );
        assert_eq!(audio_content_type("x.mp3"), "audio/mpeg");
        assert_eq!(audio_content_type("x.flac"), "audio/flac");
        assert_eq!(audio_content_type("x.ogg"), "audio/ogg");
        assert_eq!(audio_content_type("x.webm"), "audio/webm");
        assert_eq!(audio_content_type("noext"), "application/octet-stream");
    }
}
