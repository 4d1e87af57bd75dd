//! The recording spool: recordings whose upload failed wait in the spool directory with a JSON
//! sidecar, and [`drain_spool`] uploads them once the store is back.

use std::path::Path as FsPath;

use object_store::path::Path;
use object_store::MultipartId;
use serde::{Deserialize, Serialize};

use super::store::{upload_file, RecordingStore, StepError};
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
}

/// Writes the sidecar atomically (temp file, then rename), so a concurrent drain never reads
/// half of it.
pub(super) async fn write_sidecar(
    spool_dir: &FsPath,
    entry: &SpoolEntry,
) -> Result<(), DialerError> {
    let sidecar = spool_dir.join(format!("{}.json", entry.call_id));
    let tmp = spool_dir.join(format!("{}.json.tmp", entry.call_id));
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
    let store = store.into();
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
        match drain_one(&store, &sidecar).await {
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
            // The recording went up (another drain) and only its sidecar is left.
            remove_if_present(sidecar)
                .await
                .map_err(|e| spool_err(sidecar, e))?;
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
    // The WAV first: a sidecar left alone is cleaned up by the next drain (above), while a
    // WAV left alone would look like a recording still in progress.
    remove_if_present(&wav_path)
        .await
        .map_err(|e| spool_err(&wav_path, e))?;
    remove_if_present(sidecar)
        .await
        .map_err(|e| spool_err(sidecar, e))?;
    tracing::info!(key = %spooled.key, "spooled recording uploaded");
    Ok(Some(spooled.key))
}

async fn remove_if_present(path: &FsPath) -> std::io::Result<()> {
    match tokio::fs::remove_file(path).await {
        Err(e) if e.kind() != std::io::ErrorKind::NotFound => Err(e),
        _ => Ok(()),
    }
}
