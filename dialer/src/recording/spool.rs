//! The recording spool: recordings whose upload failed wait in the spool directory with a JSON
//! sidecar, and [`drain_spool`] uploads them once the store is back.

use std::path::Path as FsPath;

use object_store::path::Path;
use object_store::MultipartId;
use serde::{Deserialize, Serialize};

use super::live::CallMeta;
use super::store::{upload_file, RecordingStore, StepError};
use crate::booking::CallBook;
use crate::error::DialerError;

/// Sidecar written next to a spooled WAV.
#[derive(Debug, Clone, Serialize, Deserialize)]
pub struct SpoolEntry {
    pub call_id: String,
    pub key: String,
    pub bytes: u64,
    /// A multipart upload the call left half done, aborted once the spooled file is stored.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub abandoned_upload: Option<MultipartId>,
    /// Set when crash recovery made this entry: the call's dialer died mid-call, so nobody
    /// else books its row.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub recovered: Option<RecoveredCall>,
}

/// What a recovered call's row is made of (see [`super::recovery`]).
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct RecoveredCall {
    pub call: CallMeta,
    /// Length of the recovered audio.
    pub duration_ms: u64,
    /// Why the call has no regular end, kept as the row's error until transcription.
    pub note: String,
}

/// Writes the sidecar atomically (temp file, then rename), so a concurrent drain never reads
/// half of it.
pub(super) async fn write_sidecar(
    spool_dir: &FsPath,
    entry: &SpoolEntry,
) -> Result<(), DialerError> {
    let sidecar = spool_dir.join(format!("{}.json", entry.call_id));
    // Per process: two recoveries of one call may write at once.
    let tmp = spool_dir.join(format!("{}.json.{}.tmp", entry.call_id, std::process::id()));
    let spool_err = |path: &FsPath, source| DialerError::Spool {
        path: path.to_path_buf(),
        source,
    };
    let json = serde_json::to_vec_pretty(entry)
        .map_err(|e| spool_err(&sidecar, std::io::Error::other(e)))?;
    tokio::fs::write(&tmp, json)
        .await
        .map_err(|e| spool_err(&tmp, e))?;
    tokio::fs::rename(&tmp, &sidecar)
        .await
        .map_err(|e| spool_err(&sidecar, e))
}

/// True when `e` says the store could not be reached at all (refused, reset, timed out), as
/// opposed to an answer about this one object.
pub fn store_unreachable(e: &object_store::Error) -> bool {
    use object_store::client::{HttpError, HttpErrorKind};
    use std::io::ErrorKind;
    let mut source: Option<&(dyn std::error::Error + 'static)> = Some(e);
    while let Some(err) = source {
        if let Some(http) = err.downcast_ref::<HttpError>() {
            return matches!(
                http.kind(),
                HttpErrorKind::Connect
                    | HttpErrorKind::Request
                    | HttpErrorKind::Timeout
                    | HttpErrorKind::Interrupted
            );
        }
        if let Some(io) = err.downcast_ref::<std::io::Error>() {
            if matches!(
                io.kind(),
                ErrorKind::ConnectionRefused
                    | ErrorKind::ConnectionReset
                    | ErrorKind::ConnectionAborted
                    | ErrorKind::NotConnected
                    | ErrorKind::TimedOut
                    | ErrorKind::BrokenPipe
            ) {
                return true;
            }
        }
        source = err.source();
    }
    false
}

/// Uploads the recordings a storage failure left in `spool_dir`, each whole and removed only
/// once stored, and aborts the multipart uploads their calls left half done. Returns the keys
/// uploaded. It stops at the first sign that the store is unreachable and goes past a file the
/// store refuses; either way what is left waits for the next run. `Err` only when nothing was
/// uploaded and something failed, so keys already uploaded are never lost to a later failure.
pub async fn drain_spool(
    store: impl Into<RecordingStore>,
    spool_dir: &FsPath,
) -> Result<Vec<String>, DialerError> {
    drain(&store.into(), spool_dir, None).await
}

/// [`drain_spool`] that also books each uploaded call in `book` (row of a recovered call,
/// transcription job) before its spool files go: a crash in between repeats the upload and the
/// booking, and the booking queues a call once however often it runs.
pub async fn drain_spool_booked(
    store: impl Into<RecordingStore>,
    spool_dir: &FsPath,
    book: &CallBook,
) -> Result<Vec<String>, DialerError> {
    drain(&store.into(), spool_dir, Some(book)).await
}

async fn drain(
    store: &RecordingStore,
    spool_dir: &FsPath,
    book: Option<&CallBook>,
) -> Result<Vec<String>, DialerError> {
    let spool_err = |path: &FsPath, source| DialerError::Spool {
        path: path.to_path_buf(),
        source,
    };
    let mut uploaded = Vec::new();
    let mut dir = match tokio::fs::read_dir(spool_dir).await {
        Ok(d) => d,
        Err(e) if e.kind() == std::io::ErrorKind::NotFound => return Ok(uploaded),
        Err(e) => return Err(spool_err(spool_dir, e)),
    };
    let mut sidecars = Vec::new();
    while let Some(entry) = dir
        .next_entry()
        .await
        .map_err(|e| spool_err(spool_dir, e))?
    {
        let path = entry.path();
        if path.extension().and_then(|e| e.to_str()) == Some("json") {
            sidecars.push(path);
        }
    }
    sidecars.sort();
    let mut first_error: Option<DialerError> = None;
    for sidecar in sidecars {
        match drain_one(store, &sidecar, book).await {
            Ok(Some(key)) => uploaded.push(key),
            Ok(None) => {}
            Err((e, unreachable)) => {
                tracing::warn!(path = %sidecar.display(), error = %e, "spooled recording not uploaded yet");
                first_error.get_or_insert(e);
                if unreachable {
                    break;
                }
            }
        }
    }
    match first_error {
        Some(e) if uploaded.is_empty() => Err(e),
        _ => Ok(uploaded),
    }
}

/// Uploads one spooled recording; `Ok(None)` when there is nothing to do. The error says
/// whether the store looked unreachable.
async fn drain_one(
    store: &RecordingStore,
    sidecar: &FsPath,
    book: Option<&CallBook>,
) -> Result<Option<String>, (DialerError, bool)> {
    let spool_err = |path: &FsPath, source| {
        (
            DialerError::Spool {
                path: path.to_path_buf(),
                source,
            },
            false,
        )
    };
    let raw = match tokio::fs::read(sidecar).await {
        Ok(raw) => raw,
        // Another drain took it in between.
        Err(e) if e.kind() == std::io::ErrorKind::NotFound => return Ok(None),
        Err(e) => return Err(spool_err(sidecar, e)),
    };
    let Ok(spooled) = serde_json::from_slice::<SpoolEntry>(&raw) else {
        tracing::warn!(path = %sidecar.display(), "unreadable spool sidecar; left in place");
        return Ok(None);
    };
    let wav_path = sidecar.with_extension("wav");
    let len = match tokio::fs::metadata(&wav_path).await {
        Ok(m) => m.len(),
        Err(e) if e.kind() == std::io::ErrorKind::NotFound => {
            // The recording went up (another drain, or this one before its booking was done)
            // and only its sidecar is left.
            if book_entry(book, &spooled).await.map_err(|e| (e, false))? {
                remove_if_present(sidecar)
                    .await
                    .map_err(|e| spool_err(sidecar, e))?;
            }
            return Ok(None);
        }
        Err(e) => return Err(spool_err(&wav_path, e)),
    };
    let location = Path::from(spooled.key.as_str());
    match upload_file(store.objects.as_ref(), &wav_path, &location, len).await {
        Ok(()) => {}
        Err(StepError::Local(e)) => return Err(spool_err(&wav_path, e)),
        Err(StepError::Store(source)) => {
            let unreachable = store_unreachable(&source);
            let key = spooled.key.clone();
            return Err((DialerError::Upload { key, source }, unreachable));
        }
    }
    if let (Some(id), Some(parts)) = (&spooled.abandoned_upload, &store.parts) {
        if let Err(e) = parts
            .api
            .abort_multipart(&parts.path(&spooled.key), id)
            .await
        {
            tracing::debug!(key = %spooled.key, error = %e, "abandoned upload not aborted (maybe gone already)");
        }
    }
    let booked = book_entry(book, &spooled).await.map_err(|e| (e, false))?;
    // The WAV first: a sidecar left alone is booked and cleaned up by the next drain (above).
    remove_if_present(&wav_path)
        .await
        .map_err(|e| spool_err(&wav_path, e))?;
    if booked {
        remove_if_present(sidecar)
            .await
            .map_err(|e| spool_err(sidecar, e))?;
    } else {
        tracing::info!(key = %spooled.key, "recording stored; its call row is not there yet, booked by a later drain");
    }
    tracing::info!(key = %spooled.key, "spooled recording uploaded");
    Ok(Some(spooled.key))
}

/// Books a stored recording's call; true when its sidecar may go (always without `book`).
async fn book_entry(book: Option<&CallBook>, entry: &SpoolEntry) -> Result<bool, DialerError> {
    let Some(book) = book else {
        return Ok(true);
    };
    if let Some(row) = super::recovery::recovered_row(entry) {
        book.ensure_row(&row).await?;
    }
    book.queue_stored(&entry.call_id).await
}

pub(super) async fn remove_if_present(path: &FsPath) -> std::io::Result<()> {
    match tokio::fs::remove_file(path).await {
        Err(e) if e.kind() != std::io::ErrorKind::NotFound => Err(e),
        _ => Ok(()),
    }
}
