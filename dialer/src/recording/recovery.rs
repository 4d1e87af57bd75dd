//! Crash recovery: a recording whose `.live` marker names a process that is gone gets an exact
//! WAV header and a spool entry, and its call a row, so the spool drain stores and queues it.

use std::io::SeekFrom;
use std::path::{Path as FsPath, PathBuf};

use callqa_ingest::db::{now_rfc3339, status, CallRow};
use tokio::io::{AsyncReadExt, AsyncSeekExt, AsyncWriteExt};

use super::live::{LiveRecording, Liveness, LIVE_EXT};
use super::spool::{drain_spool_booked, remove_if_present, write_sidecar, RecoveredCall};
use super::store::RecordingStore;
use super::{SpoolEntry, SAMPLE_RATE};
use crate::booking::CallBook;
use crate::error::DialerError;
use crate::wav;

/// Bytes per stereo 16-bit frame.
const FRAME_BYTES: u64 = 4;

/// Length and data size of a recording file of `file_len` bytes once repaired: a trailing half
/// frame is cut off, and a file shorter than its header becomes a header with no audio.
pub fn repaired_len(file_len: u64) -> (u64, u64) {
    let header = wav::HEADER_LEN as u64;
    let data = file_len.saturating_sub(header) / FRAME_BYTES * FRAME_BYTES;
    (header + data, data)
}

/// Gives the recording at `path` exact header sizes for what it holds; returns the data bytes.
/// Running it twice changes nothing the second time.
pub async fn repair_wav(path: &FsPath) -> std::io::Result<u64> {
    let mut file = tokio::fs::OpenOptions::new()
        .read(true)
        .write(true)
        .open(path)
        .await?;
    let len = file.metadata().await?.len();
    let (new_len, data) = repaired_len(len);
    if new_len != len {
        file.set_len(new_len).await?;
    }
    file.seek(SeekFrom::Start(0)).await?;
    file.write_all(&wav::header(2, SAMPLE_RATE, Some(data)))
        .await?;
    file.flush().await?;
    file.sync_all().await?;
    Ok(data)
}

/// Whether the recording at `path` has the exact sizes hangup writes, not the placeholders
/// of a call still running: its dialer died after the call ended.
async fn has_final_header(path: &FsPath) -> bool {
    let mut header = [0u8; wav::HEADER_LEN];
    let Ok(mut file) = tokio::fs::File::open(path).await else {
        return false;
    };
    if file.read_exact(&mut header).await.is_err() {
        return false;
    }
    header[40..44] != u32::MAX.to_le_bytes()
}

/// The row crash recovery books for `entry`, when recovery made it.
pub fn recovered_row(entry: &SpoolEntry) -> Option<CallRow> {
    let r = entry.recovered.as_ref()?;
    let ts = now_rfc3339();
    Some(CallRow {
        call_id: entry.call_id.clone(),
        status: status::SPOOLED.into(),
        campaign: r.call.campaign.clone(),
        agent: Some("prompt".into()),
        customer: Some(r.call.customer.clone()),
        started_at: r.call.started_at.clone(),
        duration_ms: Some(r.duration_ms as i64),
        recording_key: entry.key.clone(),
        recording_bytes: entry.bytes as i64,
        source_name: Some(format!("{}.wav", entry.call_id)),
        error: Some(r.note.clone()),
        created_at: ts.clone(),
        updated_at: ts,
        ..Default::default()
    })
}

/// Recovers every recording in `spool_dir` whose dialer process is gone: its WAV gets exact
/// sizes, its call a `spooled` row noting the crash, and it becomes a spool entry (with the
/// half-done multipart upload to abort). Recordings of live processes, this one included, are
/// not touched; an unreadable marker is logged and left with its WAV. Returns the call ids
/// recovered; `Err` only when none was and something failed. Safe to rerun, also after a crash
/// in the middle of it: every step is idempotent.
pub async fn recover_orphans(
    spool_dir: &FsPath,
    book: &CallBook,
) -> Result<Vec<String>, DialerError> {
    let spool_err = |path: &FsPath, source| DialerError::Spool {
        path: path.to_path_buf(),
        source,
    };
    let mut dir = match tokio::fs::read_dir(spool_dir).await {
        Ok(d) => d,
        Err(e) if e.kind() == std::io::ErrorKind::NotFound => return Ok(Vec::new()),
        Err(e) => return Err(spool_err(spool_dir, e)),
    };
    let mut markers = Vec::new();
    while let Some(entry) = dir
        .next_entry()
        .await
        .map_err(|e| spool_err(spool_dir, e))?
    {
        let path = entry.path();
        if path.extension().and_then(|e| e.to_str()) == Some(LIVE_EXT) {
            markers.push(path);
        }
    }
    markers.sort();
    let mut recovered = Vec::new();
    let mut first_error = None;
    for marker in markers {
        match recover_one(spool_dir, &marker, book).await {
            Ok(Some(call_id)) => recovered.push(call_id),
            Ok(None) => {}
            Err(e) => {
                tracing::warn!(path = %marker.display(), error = %e, "orphaned recording not recovered yet");
                first_error.get_or_insert(e);
            }
        }
    }
    match first_error {
        Some(e) if recovered.is_empty() => Err(e),
        _ => Ok(recovered),
    }
}

/// Recovers orphans, then drains the spool with booking: what a worker runs every few seconds.
/// A recovery failure is logged and left for the next run; the drain's result is returned.
pub async fn recover_and_drain(
    store: impl Into<RecordingStore>,
    spool_dir: &FsPath,
    book: &CallBook,
) -> Result<Vec<String>, DialerError> {
    if let Err(e) = recover_orphans(spool_dir, book).await {
        tracing::warn!(error = %e, "crash recovery of recordings failed; retried on the next run");
    }
    drain_spool_booked(store, spool_dir, book).await
}

/// Recovers one marker; `Ok(None)` when it is not an orphan (or not readable, or gone).
async fn recover_one(
    spool_dir: &FsPath,
    marker: &FsPath,
    book: &CallBook,
) -> Result<Option<String>, DialerError> {
    let spool_err = |path: &FsPath, source| DialerError::Spool {
        path: path.to_path_buf(),
        source,
    };
    let raw = match tokio::fs::read(marker).await {
        Ok(raw) => raw,
        // Its call ended, or another recovery took it, in between.
        Err(e) if e.kind() == std::io::ErrorKind::NotFound => return Ok(None),
        Err(e) => return Err(spool_err(marker, e)),
    };
    let stem = marker.file_stem().and_then(|s| s.to_str()).unwrap_or("");
    let live = match serde_json::from_slice::<LiveRecording>(&raw) {
        Ok(live) if live.call_id == stem => live,
        Ok(_) => {
            tracing::warn!(path = %marker.display(), "in-progress marker names another call; left in place with its recording");
            return Ok(None);
        }
        Err(e) => {
            tracing::warn!(path = %marker.display(), error = %e, "unreadable in-progress marker; left in place with its recording");
            return Ok(None);
        }
    };
    match live.owner.liveness() {
        Liveness::Dead => {}
        Liveness::Alive | Liveness::Unknown => return Ok(None),
    }
    let wav_path = spool_dir.join(format!("{}.wav", live.call_id));
    let hung_up = has_final_header(&wav_path).await;
    let data = match repair_wav(&wav_path).await {
        Ok(data) => data,
        Err(e) if e.kind() == std::io::ErrorKind::NotFound => {
            // Died before its first byte of audio, or released after its call was booked
            // (the local copy goes first): in either case nothing is left here to keep.
            tracing::warn!(call_id = %live.call_id, "in-progress marker without a recording; removed");
            remove_if_present(marker)
                .await
                .map_err(|e| spool_err(marker, e))?;
            return Ok(None);
        }
        Err(e) => return Err(spool_err(&wav_path, e)),
    };
    let sidecar: PathBuf = spool_dir.join(format!("{}.json", live.call_id));
    // A hangup that spooled just before the crash may have named an upload already.
    let earlier_upload = tokio::fs::read(&sidecar)
        .await
        .ok()
        .and_then(|raw| serde_json::from_slice::<SpoolEntry>(&raw).ok())
        .and_then(|e| e.abandoned_upload);
    let duration_ms = data / FRAME_BYTES * 1000 / u64::from(SAMPLE_RATE);
    let entry = SpoolEntry {
        call_id: live.call_id.clone(),
        key: live.key.clone(),
        bytes: wav::HEADER_LEN as u64 + data,
        abandoned_upload: live.upload.clone().or(earlier_upload),
        recovered: Some(RecoveredCall {
            call: live.call.clone(),
            duration_ms,
            note: if hung_up {
                format!(
                    "the dialer (process {}) stopped after the call ended, before booking it; \
                     its recording was recovered whole",
                    live.owner.pid
                )
            } else {
                format!(
                    "the dialer (process {}) stopped before the call ended; its recording was \
                     recovered up to the last frame written",
                    live.owner.pid
                )
            },
        }),
    };
    if let Some(row) = recovered_row(&entry) {
        book.ensure_row(&row).await?;
    }
    write_sidecar(spool_dir, &entry).await?;
    remove_if_present(marker)
        .await
        .map_err(|e| spool_err(marker, e))?;
    tracing::warn!(call_id = %live.call_id, duration_ms, pid = live.owner.pid, "recovered the recording of a call whose dialer died");
    Ok(Some(live.call_id))
}

#[cfg(test)]
mod tests {
    use std::sync::Arc;

    use callqa_ingest::config::DatabaseConfig;
    use callqa_ingest::db::Db;
    use callqa_ingest::queue::{EmbeddedQueue, JobQueue, Stage};
    use object_store::memory::InMemory;
    use object_store::ObjectStore;

    use super::super::live::{live_path, CallMeta, Owner};
    use super::super::{release, RecordingWriter};
    use super::*;

    fn le32(b: &[u8], at: usize) -> u32 {
        u32::from_le_bytes([b[at], b[at + 1], b[at + 2], b[at + 3]])
    }

    /// A recording as a killed dialer leaves it: placeholder sizes, `data` bytes of audio.
    fn killed_wav(path: &FsPath, data: usize) {
        let mut bytes = wav::header(2, SAMPLE_RATE, None).to_vec();
        bytes.extend((0..data).map(|i| (i % 251) as u8));
        std::fs::write(path, bytes).unwrap();
    }

    #[test]
    fn repaired_len_cuts_half_frames_and_short_headers() {
        assert_eq!(repaired_len(44), (44, 0));
        assert_eq!(repaired_len(44 + 4_000), (44 + 4_000, 4_000));
        assert_eq!(repaired_len(44 + 4_003), (44 + 4_000, 4_000));
        assert_eq!(repaired_len(44 + 1), (44, 0));
        assert_eq!(repaired_len(10), (44, 0));
        assert_eq!(repaired_len(0), (44, 0));
    }

    #[tokio::test]
    async fn repair_wav_writes_exact_sizes_and_is_idempotent() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("c.wav");
        killed_wav(&path, 8_002);
        assert_eq!(repair_wav(&path).await.unwrap(), 8_000);
        let first = std::fs::read(&path).unwrap();
        assert_eq!(first.len(), 44 + 8_000);
        assert_eq!(le32(&first, 4), 36 + 8_000);
        assert_eq!(le32(&first, 40), 8_000);
        let pcm = wav::parse(&first).unwrap();
        assert_eq!((pcm.channels, pcm.sample_rate), (2, 8_000));
        assert_eq!(pcm.samples.len(), 4_000);
        // The audio itself is untouched.
        assert_eq!(
            first[44..],
            (0..8_000).map(|i| (i % 251) as u8).collect::<Vec<_>>()[..]
        );
        assert_eq!(repair_wav(&path).await.unwrap(), 8_000);
        assert_eq!(std::fs::read(&path).unwrap(), first);

        // Killed while writing the header itself.
        std::fs::write(&path, b"RIFF").unwrap();
        assert_eq!(repair_wav(&path).await.unwrap(), 0);
        assert_eq!(std::fs::read(&path).unwrap().len(), 44);
    }

    async fn book(dir: &FsPath) -> (CallBook, Db) {
        let db = Db::connect(&DatabaseConfig::default(), dir).await.unwrap();
        let queue: Arc<dyn JobQueue> = Arc::new(EmbeddedQueue::new(db.clone(), "callqa"));
        (CallBook::new(db.clone(), queue), db)
    }

    fn marker(call_id: &str, owner: Owner, upload: Option<&str>) -> LiveRecording {
        LiveRecording {
            call_id: call_id.into(),
            key: format!("recordings/{call_id}.wav"),
            call: CallMeta {
                campaign: Some("spring".into()),
                customer: "+8613800138000".into(),
                caller_id: Some("+861012345678".into()),
                trunk: Some("carrier-a".into()),
                started_at: "2026-11-25T10:00:00.000Z".into(),
                answered_at: "2026-11-25T10:00:02.000Z".into(),
            },
            owner,
            upload: upload.map(str::to_string),
        }
    }

    fn dead_owner() -> Owner {
        let mut child = std::process::Command::new("true").spawn().unwrap();
        let pid = child.id();
        child.wait().unwrap();
        Owner {
            pid,
            ..Owner::current()
        }
    }

    fn put_marker(spool: &FsPath, rec: &LiveRecording) {
        std::fs::write(
            live_path(spool, &rec.call_id),
            serde_json::to_vec(rec).unwrap(),
        )
        .unwrap();
    }

    #[cfg(target_os = "linux")]
    #[tokio::test]
    async fn orphans_are_booked_once_and_live_or_unreadable_ones_left_alone() {
        let data_dir = tempfile::tempdir().unwrap();
        let spool = data_dir.path().join("spool");
        std::fs::create_dir_all(&spool).unwrap();
        let (book, db) = book(data_dir.path()).await;

        // Orphan: its dialer is gone; 2.5 s of audio and half a frame.
        put_marker(&spool, &marker("dead", dead_owner(), Some("upload-1")));
        killed_wav(&spool.join("dead.wav"), 80_002);
        // A call of this very process, still running.
        put_marker(&spool, &marker("running", Owner::current(), None));
        killed_wav(&spool.join("running.wav"), 4_000);
        // A marker nobody can read: left with its WAV.
        std::fs::write(spool.join("garbled.live"), b"{\"call_id\": ").unwrap();
        killed_wav(&spool.join("garbled.wav"), 4_000);

        let recovered = recover_orphans(&spool, &book).await.unwrap();
        assert_eq!(recovered, vec!["dead".to_string()]);
        assert!(!spool.join("dead.live").exists());
        let entry: SpoolEntry =
            serde_json::from_slice(&std::fs::read(spool.join("dead.json")).unwrap()).unwrap();
        assert_eq!(entry.bytes, 44 + 80_000);
        assert_eq!(entry.abandoned_upload.as_deref(), Some("upload-1"));
        let row = db.get_call("dead").await.unwrap().expect("row");
        assert_eq!(row.status, status::SPOOLED);
        assert_eq!(row.duration_ms, Some(2_500));
        assert_eq!(row.campaign.as_deref(), Some("spring"));
        assert_eq!(row.customer.as_deref(), Some("+8613800138000"));
        assert_eq!(row.started_at, "2026-11-25T10:00:00.000Z");
        assert!(
            row.error.as_deref().unwrap_or("").contains("stopped"),
            "{row:?}"
        );
        for kept in ["running.live", "running.wav", "garbled.live", "garbled.wav"] {
            assert!(spool.join(kept).exists(), "{kept}");
        }
        assert_eq!(
            std::fs::read(spool.join("running.wav")).unwrap().len(),
            44 + 4_000
        );
        assert_eq!(
            le32(&std::fs::read(spool.join("running.wav")).unwrap(), 40),
            u32::MAX
        );

        // A second run (or one after a crash mid-recovery) finds nothing more to do.
        assert!(recover_orphans(&spool, &book).await.unwrap().is_empty());
        // The crash-mid-recovery case: marker back, entry and row already there.
        put_marker(&spool, &marker("dead", dead_owner(), None));
        assert_eq!(
            recover_orphans(&spool, &book).await.unwrap(),
            vec!["dead".to_string()]
        );
        let again: SpoolEntry =
            serde_json::from_slice(&std::fs::read(spool.join("dead.json")).unwrap()).unwrap();
        assert_eq!(
            again.abandoned_upload.as_deref(),
            Some("upload-1"),
            "kept from before"
        );
        assert_eq!(db.list_calls(None, 10).await.unwrap().len(), 1);

        // The booked drain stores it and queues it once, however often it runs.
        let objects = Arc::new(InMemory::new());
        let queue = EmbeddedQueue::new(db.clone(), "callqa");
        let uploaded = recover_and_drain(objects.clone(), &spool, &book)
            .await
            .unwrap();
        assert_eq!(uploaded, vec!["recordings/dead.wav".to_string()]);
        assert_eq!(queue.depth(Stage::Transcribe).await.unwrap(), 1);
        assert_eq!(
            db.get_call("dead").await.unwrap().unwrap().status,
            status::QUEUED
        );
        let stored = objects
            .get(&object_store::path::Path::from("recordings/dead.wav"))
            .await
            .unwrap()
            .bytes()
            .await
            .unwrap();
        assert_eq!(stored.len(), 44 + 80_000);
        assert_eq!(le32(&stored, 40), 80_000);
        assert!(!spool.join("dead.json").exists() && !spool.join("dead.wav").exists());
        assert!(recover_and_drain(objects.clone(), &spool, &book)
            .await
            .unwrap()
            .is_empty());
        assert_eq!(queue.depth(Stage::Transcribe).await.unwrap(), 1);
        assert_eq!(db.list_calls(None, 10).await.unwrap().len(), 1);
        assert!(spool.join("garbled.live").exists() && spool.join("garbled.wav").exists());
    }

    #[cfg(target_os = "linux")]
    #[tokio::test]
    async fn a_spooled_call_without_its_row_yet_is_queued_once_the_row_exists() {
        let data_dir = tempfile::tempdir().unwrap();
        let spool = data_dir.path().join("spool");
        std::fs::create_dir_all(&spool).unwrap();
        let (book, db) = book(data_dir.path()).await;
        killed_wav(&spool.join("late.wav"), 400);
        repair_wav(&spool.join("late.wav")).await.unwrap();
        let entry = SpoolEntry {
            call_id: "late".into(),
            key: "recordings/late.wav".into(),
            bytes: 444,
            abandoned_upload: None,
            recovered: None,
        };
        write_sidecar(&spool, &entry).await.unwrap();
        let objects = Arc::new(InMemory::new());
        let queue = EmbeddedQueue::new(db.clone(), "callqa");
        // Uploaded, but its dialer has not booked the row yet: the sidecar waits for it.
        let uploaded = drain_spool_booked(objects.clone(), &spool, &book)
            .await
            .unwrap();
        assert_eq!(uploaded.len(), 1);
        assert!(spool.join("late.json").exists() && !spool.join("late.wav").exists());
        assert_eq!(queue.depth(Stage::Transcribe).await.unwrap(), 0);
        let ts = now_rfc3339();
        db.insert_call(&CallRow {
            call_id: "late".into(),
            status: status::SPOOLED.into(),
            started_at: ts.clone(),
            recording_key: entry.key.clone(),
            recording_bytes: 444,
            created_at: ts.clone(),
            updated_at: ts,
            ..Default::default()
        })
        .await
        .unwrap();
        drain_spool_booked(objects.clone(), &spool, &book)
            .await
            .unwrap();
        drain_spool_booked(objects.clone(), &spool, &book)
            .await
            .unwrap();
        assert!(!spool.join("late.json").exists());
        assert_eq!(queue.depth(Stage::Transcribe).await.unwrap(), 1);
        assert_eq!(
            db.get_call("late").await.unwrap().unwrap().status,
            status::QUEUED
        );
    }

    /// A dialer that dies after hangup, with the recording stored but before its row is
    /// booked, leaves the marker and the local copy, and recovery books the call from them;
    /// one that books it releases both.
    #[cfg(target_os = "linux")]
    #[tokio::test]
    async fn a_call_stored_but_not_booked_when_its_dialer_dies_is_booked_by_recovery() {
        let data_dir = tempfile::tempdir().unwrap();
        let spool = data_dir.path().join("spool");
        let (book, db) = book(data_dir.path()).await;
        let objects = Arc::new(InMemory::new());
        let queue = EmbeddedQueue::new(db.clone(), "callqa");
        let record = |call_id: &'static str| {
            let (objects, spool) = (objects.clone(), spool.clone());
            async move {
                let call = marker(call_id, Owner::current(), None).call;
                let key = format!("recordings/{call_id}.wav");
                let mut w =
                    RecordingWriter::create_live(objects, &key, call_id, &spool, 1 << 20, call)
                        .await
                        .unwrap();
                w.write(&[7u8; 8_000]).await.unwrap();
                let rec = w.finish().await.unwrap();
                assert!(!rec.spooled, "{rec:?}");
                rec
            }
        };

        // Stored, not booked yet: the marker and the local copy still claim the recording.
        record("hungup").await;
        assert!(spool.join("hungup.live").exists() && spool.join("hungup.wav").exists());
        // Its dialer dies here: the marker now names a process that is gone.
        let mut live: LiveRecording =
            serde_json::from_slice(&std::fs::read(live_path(&spool, "hungup")).unwrap()).unwrap();
        live.owner = dead_owner();
        put_marker(&spool, &live);
        let uploaded = recover_and_drain(objects.clone(), &spool, &book)
            .await
            .unwrap();
        assert_eq!(uploaded, vec!["recordings/hungup.wav".to_string()]);
        let row = db.get_call("hungup").await.unwrap().expect("row");
        assert_eq!(row.status, status::QUEUED);
        assert_eq!(row.recording_bytes, 44 + 8_000);
        assert_eq!(row.duration_ms, Some(250));
        assert!(
            row.error
                .as_deref()
                .unwrap_or("")
                .contains("after the call ended"),
            "{row:?}"
        );
        assert_eq!(queue.depth(Stage::Transcribe).await.unwrap(), 1);
        assert_eq!(std::fs::read_dir(&spool).unwrap().count(), 0);

        // Booked by its dialer: released, nothing left for recovery.
        let rec = record("booked").await;
        release(&spool, "booked", &rec).await.unwrap();
        assert_eq!(std::fs::read_dir(&spool).unwrap().count(), 0);
        assert!(recover_orphans(&spool, &book).await.unwrap().is_empty());
        let stored = objects
            .get(&object_store::path::Path::from("recordings/booked.wav"))
            .await
            .unwrap();
        assert_eq!(stored.meta.size, 44 + 8_000);
    }
}
